//! Key files: a node's long-term x25519 secret key on disk.
//!
//! # Format
//!
//! A key file holds the 32-byte secret key as exactly 64 hex digits (either case), optionally
//! followed by one line ending (`\n` or `\r\n`), and nothing else: no other whitespace, no
//! comment, no second line. The public key is not stored; it is derived from the secret.
//! [`write_new`] writes the digits in lower case followed by `\n`.
//!
//! A key file is a secret: [`write_new`] creates it with mode 0600 (owner read/write only) on
//! Unix whatever the umask, and [`is_private`] tells a caller whether an existing file is still
//! that private, so it can warn.
//!
//! ```
//! use lokimq::keyfile;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("node.key");
//! let (keypair, created) = keyfile::load_or_create(&path)?;
//! assert!(created);
//! // The next start finds the same identity.
//! let (again, created) = keyfile::load_or_create(&path)?;
//! assert!(!created);
//! assert_eq!(again.public(), keypair.public());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::OpenOptions;
use std::io::{self, ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use lokimq_core::encoding::hex;
use lokimq_core::keys::{KEY_LEN, Keypair};
use rand_core::OsRng;

/// Why a key file could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened or read.
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file could not be created, written, made private, synced or (to replace it) removed.
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file was read but does not follow the [format](self#format).
    #[error(
        "key file {} must hold 64 hex digits (an x25519 secret key) and at most one trailing newline: {reason}",
        path.display()
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its content.
        reason: String,
    },
    /// [`write_new`] without `replace` found a file (or anything else) at the path.
    #[error("key file {} already exists; not overwriting it", path.display())]
    AlreadyExists {
        /// The key file.
        path: PathBuf,
    },
}

impl KeyFileError {
    /// The key file the error is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::Write { path, .. }
            | Self::Malformed { path, .. }
            | Self::AlreadyExists { path } => path,
        }
    }
}

/// Reads the keypair from the key file at `path`, which must follow the [format](self#format)
/// exactly.
///
/// ```
/// use lokimq::keyfile::{self, KeyFileError};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("node.key");
/// std::fs::write(&path, format!("{}\r\n", "AB".repeat(32)))?;
/// let keypair = keyfile::read(&path)?;
/// assert_eq!(keypair.secret().to_bytes(), [0xab; 32]);
///
/// std::fs::write(&path, "not a key\n")?;
/// assert!(matches!(keyfile::read(&path), Err(KeyFileError::Malformed { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read(path: &Path) -> Result<Keypair, KeyFileError> {
    let content = std::fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&content).map_err(|reason| KeyFileError::Malformed {
        path: path.to_owned(),
        reason,
    })
}

/// The secret in a key file's content, or why the content is not a key file.
fn parse(content: &[u8]) -> Result<Keypair, String> {
    let digits = content
        .strip_suffix(b"\r\n")
        .or_else(|| content.strip_suffix(b"\n"))
        .unwrap_or(content);
    if digits.len() != 2 * KEY_LEN {
        return Err(format!("the file holds {} bytes", content.len()));
    }
    let secret: [u8; KEY_LEN] = hex::decode_array(digits).map_err(|e| e.to_string())?;
    Ok(Keypair::from_secret_bytes(secret))
}

/// Writes `keypair`'s secret to a new key file at `path`: 64 lower-case hex digits and `\n`,
/// mode 0600 on Unix (set explicitly, so the umask cannot loosen or tighten it), synced to disk
/// before returning.
///
/// An existing file is [`KeyFileError::AlreadyExists`] unless `replace`, which removes it first.
/// The file is always created anew, never opened in place, so a symlink planted at `path` is
/// neither followed nor written through.
///
/// ```
/// use lokimq::Keypair;
/// use lokimq::keyfile::{self, KeyFileError};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("node.key");
/// let keypair = Keypair::from_secret_bytes([7; 32]);
/// keyfile::write_new(&path, &keypair, false)?;
/// assert_eq!(std::fs::read_to_string(&path)?, format!("{}\n", "07".repeat(32)));
/// assert!(matches!(
///     keyfile::write_new(&path, &keypair, false),
///     Err(KeyFileError::AlreadyExists { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_new(path: &Path, keypair: &Keypair, replace: bool) -> Result<(), KeyFileError> {
    let failed = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };
    if replace {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            KeyFileError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            failed(e)
        }
    })?;
    #[cfg(unix)]
    {
        // The umask can only clear bits of the mode asked for at creation; make it exactly 0600.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
    }
    let text = format!("{}\n", hex::encode(keypair.secret().to_bytes()));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)
}

/// Reads the key file at `path`, or, if nothing is there, generates a keypair from OS randomness
/// and writes it there with [`write_new`]. Returns the keypair and whether it was just created.
///
/// A path that exists but cannot be read (a directory, say), or a malformed file, is an error:
/// it is never replaced.
pub fn load_or_create(path: &Path) -> Result<(Keypair, bool), KeyFileError> {
    // `symlink_metadata`: a dangling symlink counts as existing, and `write_new` refuses it
    // rather than creating the file it points to.
    match std::fs::symlink_metadata(path) {
        Ok(_) => read(path).map(|keypair| (keypair, false)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let keypair = Keypair::generate(&mut OsRng);
            write_new(path, &keypair, false)?;
            Ok((keypair, true))
        }
        Err(source) => Err(KeyFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether only the file's owner may access it: `false` if its group or other users have any
/// permission (read, write or execute), which for a key file deserves a warning. Always `true`
/// where there are no Unix permissions.
pub fn is_private(path: &Path) -> io::Result<bool> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Ok(meta.permissions().mode() & 0o077 == 0)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4b6a1ab6e4e6a5a1a4f2c4a0d7e8d9c4b6a1ab6e4e6a5a1a4f2c4a0d7e8d9c4b";

    fn keypair(seed: u8) -> Keypair {
        Keypair::from_secret_bytes([seed; KEY_LEN])
    }

    #[test]
    fn written_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let kp = keypair(3);
        write_new(&path, &kp, false).unwrap();
        assert_eq!(read(&path).unwrap().public(), kp.public());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", "03".repeat(32))
        );
        assert!(is_private(&path).unwrap());
    }

    #[test]
    fn load_or_create_creates_once_then_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (kp, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.public(), kp.public());
        assert_eq!(again.secret().to_bytes(), kp.secret().to_bytes());
    }

    #[test]
    fn existing_files_are_not_overwritten_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, &keypair(1), false).unwrap();
        let err = write_new(&path, &keypair(2), false).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::AlreadyExists { path: p } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(read(&path).unwrap().public(), keypair(1).public());

        write_new(&path, &keypair(2), true).unwrap();
        assert_eq!(read(&path).unwrap().public(), keypair(2).public());
        // Replacing where nothing exists just creates.
        let fresh = dir.path().join("fresh");
        write_new(&fresh, &keypair(4), true).unwrap();
        assert_eq!(read(&fresh).unwrap().public(), keypair(4).public());
    }

    #[cfg(unix)]
    #[test]
    fn new_and_replaced_files_are_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        write_new(&path, &keypair(1), false).unwrap();
        assert_eq!(mode(&path), 0o600);
        // A loose file that is replaced comes back private.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!is_private(&path).unwrap());
        write_new(&path, &keypair(2), true).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(is_private(&path).unwrap());
        let (_, created) = load_or_create(&dir.path().join("created")).unwrap();
        assert!(created);
        assert_eq!(mode(&dir.path().join("created")), 0o600);
    }

    #[test]
    fn one_trailing_newline_or_crlf_and_either_case_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let want = Keypair::from_secret_bytes(hex::decode_array(HEX).unwrap());
        for (i, content) in [
            HEX.to_owned(),
            format!("{HEX}\n"),
            format!("{HEX}\r\n"),
            HEX.to_uppercase(),
            format!("{}\r\n", HEX.to_uppercase()),
        ]
        .iter()
        .enumerate()
        {
            let path = dir.path().join(format!("k{i}"));
            std::fs::write(&path, content).unwrap();
            assert_eq!(read(&path).unwrap().public(), want.public(), "{content:?}");
        }
    }

    #[test]
    fn malformed_files_are_refused_with_a_message_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (i, content) in [
            String::new(),
            "\n".to_owned(),
            HEX[..63].to_owned(),
            format!("{}\n", &HEX[..62]),
            format!("{HEX}ab"),
            format!("{HEX}\n\n"),
            format!("{HEX}\r\n\r\n"),
            format!("{HEX}\r"),
            format!("{HEX} "),
            format!(" {HEX}"),
            format!("\n{HEX}"),
            "g".repeat(64),
            format!("{}é", &HEX[..62]),
        ]
        .iter()
        .enumerate()
        {
            let path = dir.path().join(format!("bad{i}.key"));
            std::fs::write(&path, content).unwrap();
            let err = read(&path).unwrap_err();
            assert!(
                matches!(&err, KeyFileError::Malformed { path: p, .. } if *p == path),
                "{content:?}: {err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("64 hex digits"), "{text}");
            assert_eq!(err.path(), path);
            // A malformed file is never replaced.
            assert!(matches!(
                load_or_create(&path),
                Err(KeyFileError::Malformed { .. })
            ));
            assert_eq!(&std::fs::read_to_string(&path).unwrap(), content);
        }
    }

    #[test]
    fn malformed_reasons_say_what_is_wrong() {
        assert_eq!(
            parse(format!("{HEX}\n\n").as_bytes()).unwrap_err(),
            "the file holds 66 bytes"
        );
        assert_eq!(
            parse("g".repeat(64).as_bytes()).unwrap_err(),
            "invalid hex character 'g' at index 0"
        );
    }

    #[test]
    fn unreadable_paths_are_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = read(&missing).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::Read { source, .. } if source.kind() == ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("cannot read key file "),
            "{err}"
        );
        // A directory exists, so load_or_create reads it (and fails) rather than creating.
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, KeyFileError::Read { .. }), "{err:?}");
        assert_eq!(err.path(), dir.path());
    }

    #[test]
    fn writing_where_the_directory_is_missing_is_a_write_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("k");
        let err = write_new(&path, &keypair(1), false).unwrap_err();
        assert!(matches!(err, KeyFileError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        let err = load_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Write { .. }), "{err:?}");
    }
}
