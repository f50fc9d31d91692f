//! Keys: `keygen`, key files (64 hex digits of an x25519 secret, created with mode 0600) and
//! the `--allow PUBKEY=LEVEL` rule.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write as _};
use std::path::Path;

use lokimq::core::encoding::{base32z, base64, hex};
use lokimq::{AuthLevel, Keypair, PublicKey};
use rand_core::OsRng;

use crate::fail::Failure;

/// One `--allow PUBKEY=LEVEL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Allow {
    /// The client's CURVE key.
    pub(crate) key: PublicKey,
    /// The level its connections get.
    pub(crate) level: AuthLevel,
}

/// A public key as 64 hex digits, 52 z-base-32 characters or 43 base64 characters (optionally
/// followed by `=`), either case where the encoding allows it.
pub(crate) fn parse_pubkey(text: &str) -> Result<PublicKey, String> {
    let bytes = match text.len() {
        64 => hex::decode_array(text).map_err(|e| e.to_string()),
        52 => base32z::decode_array(text).map_err(|e| e.to_string()),
        43 | 44 => base64::decode_array(text).map_err(|e| e.to_string()),
        n => Err(format!(
            "expected 64 hex digits or 52 z-base-32 characters, got {n} characters"
        )),
    };
    bytes
        .map(PublicKey::from_bytes)
        .map_err(|e| format!("`{text}` is not a public key: {e}"))
}

/// Parses `--allow PUBKEY=LEVEL` (clap reports an error as a usage error, exit 2).
pub(crate) fn parse_allow(text: &str) -> Result<Allow, String> {
    let (key, level) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not PUBKEY=LEVEL"))?;
    let key = parse_pubkey(key)?;
    let level = match level {
        "none" => AuthLevel::None,
        "basic" => AuthLevel::Basic,
        "admin" => AuthLevel::Admin,
        other => {
            return Err(format!(
                "unknown auth level `{other}` (expected none, basic or admin)"
            ));
        }
    };
    Ok(Allow { key, level })
}

/// Reads a key file: 64 hex digits, surrounding whitespace (a trailing newline) ignored.
pub(crate) fn read_key_file(path: &Path) -> Result<Keypair, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_input(format!("cannot read key file {}: {e}", path.display())))?;
    let text = text.trim();
    if text.len() != 64 {
        return Err(Failure::bad_input(format!(
            "key file {} must hold 64 hex digits (an x25519 secret key), found {} characters",
            path.display(),
            text.len()
        )));
    }
    let secret: [u8; 32] = hex::decode_array(text)
        .map_err(|e| Failure::bad_input(format!("key file {} is not hex: {e}", path.display())))?;
    warn_if_readable_by_others(path);
    Ok(Keypair::from_secret_bytes(secret))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "key file {} is accessible by other users (mode {mode:03o}); chmod 600 it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Reads the key file, or creates it with a fresh key if it does not exist; `true` if created.
pub(crate) fn load_or_create(path: &Path) -> Result<(Keypair, bool), Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => read_key_file(path).map(|k| (k, false)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let kp = Keypair::generate(&mut OsRng);
            write_key_file(path, &kp, false)?;
            Ok((kp, true))
        }
        Err(e) => Err(Failure::bad_input(format!(
            "cannot read key file {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the secret as 64 lower-case hex digits and a newline to a new file with mode 0600.
/// An existing file is an error unless `force`, which replaces it.
pub(crate) fn write_key_file(path: &Path, kp: &Keypair, force: bool) -> Result<(), Failure> {
    let shown = path.display();
    if force {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Failure::other(format!("cannot replace {shown}: {e}"))),
        }
    }
    let mut opts = OpenOptions::new();
    // create_new: never follow a planted symlink or truncate someone else's file.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            Failure::other(format!(
                "{shown} already exists; not overwriting it (use --force to replace it)"
            ))
        } else {
            Failure::other(format!("cannot create {shown}: {e}"))
        }
    })?;
    #[cfg(unix)]
    {
        // The umask can only clear bits of the mode asked for; make sure it is exactly 0600.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Failure::other(format!("cannot chmod {shown}: {e}")))?;
    }
    let text = format!("{}\n", hex::encode(kp.secret().to_bytes()));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::other(format!("cannot write {shown}: {e}")))
}

/// `lokimq keygen`: prints the public key (and the secret, unless it goes to `out`).
pub(crate) fn keygen(out: Option<&Path>, force: bool) -> Result<(), Failure> {
    let kp = Keypair::generate(&mut OsRng);
    if let Some(path) = out {
        write_key_file(path, &kp, force)?;
        eprintln!("secret key written to {} (mode 0600)", path.display());
    }
    println!("pubkey hex: {}", kp.public().to_hex());
    println!(
        "pubkey base32z: {}",
        base32z::encode(kp.public().as_bytes())
    );
    if out.is_none() {
        println!("secret hex: {}", hex::encode(kp.secret().to_bytes()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4b6a1ab6e4e6a5a1a4f2c4a0d7e8d9c4b6a1ab6e4e6a5a1a4f2c4a0d7e8d9c4b";

    #[test]
    fn pubkeys_parse_in_every_encoding() {
        let key = parse_pubkey(HEX).unwrap();
        let b32 = base32z::encode(key.as_bytes());
        assert_eq!(parse_pubkey(&b32).unwrap(), key);
        assert_eq!(parse_pubkey(&HEX.to_uppercase()).unwrap(), key);
        assert_eq!(
            parse_pubkey(&base64::encode_unpadded(key.as_bytes())).unwrap(),
            key
        );
        assert!(parse_pubkey("abcd").is_err());
        assert!(parse_pubkey(&HEX.replace('4', "x")).is_err());
    }

    #[test]
    fn allow_rules_need_a_key_and_a_known_level() {
        let a = parse_allow(&format!("{HEX}=admin")).unwrap();
        assert_eq!(a.level, AuthLevel::Admin);
        assert_eq!(a.key.to_hex(), HEX);
        assert!(parse_allow(&format!("{HEX}=root")).is_err());
        assert!(parse_allow(&format!("{HEX}=denied")).is_err());
        assert!(parse_allow(HEX).is_err());
        assert!(parse_allow("nokey=basic").is_err());
    }

    #[test]
    fn key_files_round_trip_and_refuse_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let (kp, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.public(), kp.public());
        let err = write_key_file(&path, &kp, false).unwrap_err();
        assert!(err.message.contains("already exists"), "{}", err.message);
        let other = Keypair::generate(&mut OsRng);
        write_key_file(&path, &other, true).unwrap();
        assert_eq!(read_key_file(&path).unwrap().public(), other.public());
        std::fs::write(&path, "zz\n").unwrap();
        assert_eq!(read_key_file(&path).unwrap_err().exit.code(), 7);
    }
}
