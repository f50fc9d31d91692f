//! Command body sizes, and the ERROR command (the one CURVE command with no box).

#[cfg(any(test, feature = "internals"))]
use alloc::vec::Vec;

use super::error::{Command, CurveError};

/// HELLO body size: name (6), version (2), padding (72), C' (32), nonce (8), signature box (80).
pub const HELLO_LEN: usize = 200;
/// WELCOME body size: name (8), long nonce (16), box of S' and the cookie (144).
pub const WELCOME_LEN: usize = 168;
/// Smallest INITIATE body (no metadata): name (9), cookie (96), nonce (8), box of C, vouch
/// nonce and vouch (144).
pub const INITIATE_MIN_LEN: usize = 257;
/// Smallest READY body (no metadata): name (6), nonce (8), tag (16).
pub const READY_MIN_LEN: usize = 30;
/// Smallest ERROR body (empty reason): name (6), reason length (1).
pub const ERROR_MIN_LEN: usize = 7;
/// Longest ERROR reason: its length is one byte.
#[cfg(any(test, feature = "internals"))]
pub const ERROR_REASON_MAX: usize = 255;

/// Builds an ERROR command body: `05 'ERROR'`, the reason's length (1 byte), the reason.
/// libzmq's server sends ERROR only after refusing authentication, with reason `400` or `500`.
///
/// Fails with [`CurveError::ReasonTooLong`] for a reason over 255 bytes.
#[cfg(any(test, feature = "internals"))]
pub fn error_body(reason: &[u8]) -> Result<Vec<u8>, CurveError> {
    let len =
        u8::try_from(reason.len()).map_err(|_| CurveError::ReasonTooLong { len: reason.len() })?;
    let mut out = Vec::with_capacity(ERROR_MIN_LEN + reason.len());
    out.extend_from_slice(Command::Error.wire_name());
    out.push(len);
    out.extend_from_slice(reason);
    Ok(out)
}

/// Parses an ERROR command body and returns its reason. As libzmq: the name must be
/// `05 'ERROR'` (`UnexpectedCommand`), the size at least 7 and the reason length at most
/// size − 7 (`Malformed`). Bytes after the reason are ignored, as libzmq ignores them.
///
/// The client accepts ERROR only while waiting for WELCOME or READY
/// ([`CurveClient::handle_error`](super::CurveClient::handle_error) enforces that).
pub fn parse_error(body: &[u8]) -> Result<&[u8], CurveError> {
    if !Command::Error.matches(body) {
        return Err(CurveError::UnexpectedCommand {
            expected: Command::Error,
        });
    }
    let malformed = CurveError::Malformed {
        command: Command::Error,
    };
    let len = usize::from(*body.get(ERROR_MIN_LEN - 1).ok_or(malformed)?);
    body.get(ERROR_MIN_LEN..ERROR_MIN_LEN + len)
        .ok_or(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_matches_libzmq_bytes() {
        // wire.md §7.8: the body libzmq sends after a ZAP 400.
        assert_eq!(error_body(b"400").unwrap(), b"\x05ERROR\x03400");
        assert_eq!(error_body(b"").unwrap(), b"\x05ERROR\x00");
        assert_eq!(error_body(&[b'x'; 255]).unwrap().len(), 7 + 255);
        assert_eq!(
            error_body(&[b'x'; 256]),
            Err(CurveError::ReasonTooLong { len: 256 })
        );
    }

    #[test]
    fn parse_error_accepts_and_rejects_like_libzmq() {
        assert_eq!(parse_error(b"\x05ERROR\x03400").unwrap(), b"400");
        assert_eq!(parse_error(b"\x05ERROR\x00").unwrap(), b"");
        // Trailing bytes after the reason are ignored.
        assert_eq!(parse_error(b"\x05ERROR\x03500junk").unwrap(), b"500");
        let malformed = Err(CurveError::Malformed {
            command: Command::Error,
        });
        // Missing length byte.
        assert_eq!(parse_error(b"\x05ERROR"), malformed);
        // reason_len > size - 7.
        assert_eq!(parse_error(b"\x05ERROR\x0440"), malformed);
        assert_eq!(parse_error(b"\x05ERROR\xff"), malformed);
        assert_eq!(
            parse_error(b"\x05READY\x00"),
            Err(CurveError::UnexpectedCommand {
                expected: Command::Error
            })
        );
        assert!(parse_error(b"").is_err());
        for reason in [&b""[..], b"400", &[0xaa; 255]] {
            assert_eq!(parse_error(&error_body(reason).unwrap()).unwrap(), reason);
        }
    }

    #[test]
    fn command_names() {
        for c in Command::ALL {
            assert_eq!(c.wire_name()[0] as usize, c.name().len());
            assert_eq!(&c.wire_name()[1..], c.name().as_bytes());
            let mut body = c.wire_name().to_vec();
            body.push(0);
            assert_eq!(Command::of(&body), Some(c));
            assert_eq!(Command::of(&body[..body.len() - 2]), None);
        }
        assert_eq!(Command::of(b"\x04PING\x00\x1e"), None);
        assert_eq!(Command::of(b"\x05HELLX"), None);
        assert_eq!(Command::of(b""), None);
        assert_eq!(std::format!("{}", Command::Initiate), "INITIATE");
    }
}
