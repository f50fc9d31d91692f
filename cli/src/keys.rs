//! Keys: `keygen`, key files (64 hex digits of an x25519 secret, created with mode 0600) and
//! the `--allow PUBKEY=LEVEL` rule.

use std::path::Path;

use lokimq::core::encoding::{base32z, hex};
use lokimq::keyfile::{self, KeyFileError};
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
    text.parse()
        .map_err(|e| format!("`{text}` is not a public key: {e}"))
}

/// Parses `--allow PUBKEY=LEVEL` (clap reports an error as a usage error, exit 2).
pub(crate) fn parse_allow(text: &str) -> Result<Allow, String> {
    let (key, level) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}` is not PUBKEY=LEVEL"))?;
    let key = parse_pubkey(key)?;
    // `denied` is a level only an allow function returns, never one to grant.
    let level = match level.parse() {
        Ok(AuthLevel::Denied) | Err(_) => {
            return Err(format!(
                "unknown auth level `{level}` (expected none, basic or admin)"
            ));
        }
        Ok(level) => level,
    };
    Ok(Allow { key, level })
}

/// A key-file error as a failure: an unusable existing file is bad input (exit 7), a file that
/// cannot be created or written is any other failure (exit 1).
fn key_file_failure(e: KeyFileError) -> Failure {
    match e {
        KeyFileError::Read { .. } | KeyFileError::Malformed { .. } => {
            Failure::bad_input(e.to_string())
        }
        _ => Failure::other(e.to_string()),
    }
}

/// Warns (does not fail) when a key file in use is accessible by other users.
fn warn_if_readable_by_others(path: &Path) {
    if let Ok(false) = keyfile::is_private(path) {
        tracing::warn!(
            "key file {} is accessible by other users; chmod 600 it",
            path.display()
        );
    }
}

/// Reads the key file, or creates it with a fresh key if it does not exist; `true` if created.
pub(crate) fn load_or_create(path: &Path) -> Result<(Keypair, bool), Failure> {
    let (keypair, created) = keyfile::load_or_create(path).map_err(key_file_failure)?;
    if !created {
        warn_if_readable_by_others(path);
    }
    Ok((keypair, created))
}

/// `lokimq keygen`: prints the public key (and the secret, unless it goes to `out`).
pub(crate) fn keygen(out: Option<&Path>, force: bool) -> Result<(), Failure> {
    let kp = Keypair::generate(&mut OsRng);
    if let Some(path) = out {
        keyfile::write_new(path, &kp, force).map_err(|e| match e {
            KeyFileError::AlreadyExists { .. } => {
                Failure::other(format!("{e} (use --force to replace it)"))
            }
            e => key_file_failure(e),
        })?;
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
    fn pubkey_errors_name_the_text() {
        let err = parse_pubkey("abcd").unwrap_err();
        assert!(err.starts_with("`abcd` is not a public key: "), "{err}");
        assert!(parse_pubkey(&HEX.replace('4', "x")).is_err());
        assert_eq!(parse_pubkey(HEX).unwrap().to_hex(), HEX);
    }

    #[test]
    fn allow_rules_need_a_key_and_a_grantable_level() {
        let a = parse_allow(&format!("{HEX}=admin")).unwrap();
        assert_eq!(a.level, AuthLevel::Admin);
        assert_eq!(a.key.to_hex(), HEX);
        let b32 = base32z::encode(a.key.as_bytes());
        assert_eq!(parse_allow(&format!("{b32}=none")).unwrap().key, a.key);
        // A padded base64 key keeps its `=`: the level is what follows the last one.
        let b64 = lokimq::core::encoding::base64::encode(a.key.as_bytes());
        assert!(b64.ends_with('='));
        assert_eq!(
            parse_allow(&format!("{b64}=basic")).unwrap(),
            Allow {
                key: a.key,
                level: AuthLevel::Basic
            }
        );
        assert!(parse_allow(&format!("{HEX}=root")).is_err());
        assert!(parse_allow(&format!("{HEX}=Admin")).is_err());
        let denied = parse_allow(&format!("{HEX}=denied")).unwrap_err();
        assert!(denied.contains("unknown auth level `denied`"), "{denied}");
        assert!(parse_allow(HEX).is_err());
        assert!(parse_allow("nokey=basic").is_err());
    }

    #[test]
    fn key_file_failures_keep_their_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let kp = load_or_create(&path).unwrap().0;
        let exists = keygen(Some(&path), false).unwrap_err();
        assert_eq!(exists.exit.code(), 1);
        assert!(
            exists.message.contains("already exists") && exists.message.contains("--force"),
            "{}",
            exists.message
        );
        assert_eq!(load_or_create(&path).unwrap().0.public(), kp.public());

        std::fs::write(&path, "zz\n").unwrap();
        let bad = load_or_create(&path).unwrap_err();
        assert_eq!(bad.exit.code(), 7);
        assert!(bad.message.contains("64 hex digits"), "{}", bad.message);
        // Surrounding whitespace is no longer trimmed: the key file format is strict.
        std::fs::write(&path, format!("  {HEX}\n")).unwrap();
        assert_eq!(load_or_create(&path).unwrap_err().exit.code(), 7);

        assert_eq!(load_or_create(dir.path()).unwrap_err().exit.code(), 7);
        let unwritable = dir.path().join("missing-dir").join("key");
        assert_eq!(load_or_create(&unwritable).unwrap_err().exit.code(), 1);
    }
}
