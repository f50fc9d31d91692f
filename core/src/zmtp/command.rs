//! ZMTP command bodies: READY, ERROR, PING, PONG, SUBSCRIBE, CANCEL.
//!
//! A command body is `name_len(1) name data`. These functions work on bodies (the bytes after
//! the frame header), so they serve both NULL, where commands are plain command frames, and
//! CURVE, where post-handshake commands travel inside MESSAGE boxes with the COMMAND payload flag.

use core::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::metadata::Metadata;
use super::{WireText, ZmtpError};

/// `READY` (handshake; NULL carries metadata in it).
pub const READY: &[u8] = b"READY";
/// `ERROR` (handshake failure notice).
pub const ERROR: &[u8] = b"ERROR";
/// `PING` (ZMTP 3.1 heartbeat).
pub const PING: &[u8] = b"PING";
/// `PONG` (ZMTP 3.1 heartbeat answer).
pub const PONG: &[u8] = b"PONG";
/// `SUBSCRIBE` (ZMTP 3.1, PUB/SUB only).
pub const SUBSCRIBE: &[u8] = b"SUBSCRIBE";
/// `CANCEL` (ZMTP 3.1, PUB/SUB only).
pub const CANCEL: &[u8] = b"CANCEL";

/// The longest PING context we send, and the most of a received context a PONG echoes.
pub const MAX_PING_CONTEXT: usize = 16;
/// Every PING is at least this long: name length, `PING`, 2-byte TTL.
#[cfg(any(test, feature = "internals"))]
pub const MIN_PING_BODY: usize = 7;

/// A command split into name and data, both O(1) slices of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    /// The command name (may be empty: libzmq does not refuse a zero name length on receipt).
    pub name: Bytes,
    /// Everything after the name.
    pub data: Bytes,
}

impl RawCommand {
    /// Splits a command body. Fails, as libzmq does, if the body is empty or shorter than its
    /// declared name.
    pub fn parse(body: &Bytes) -> Result<Self, ZmtpError> {
        let Some(&len) = body.first() else {
            return Err(ZmtpError::MalformedCommand {
                command: "command",
                reason: "empty body",
            });
        };
        let len = usize::from(len);
        if body.len() < 1 + len {
            return Err(ZmtpError::MalformedCommand {
                command: "command",
                reason: "name runs past the end of the body",
            });
        }
        Ok(Self {
            name: body.slice(1..1 + len),
            data: body.slice(1 + len..),
        })
    }

    /// True if the name is exactly `name`.
    #[must_use]
    pub fn is(&self, name: &[u8]) -> bool {
        self.name.as_ref() == name
    }

    /// The name, for error messages.
    #[must_use]
    pub fn name_text(&self) -> WireText {
        WireText::new(self.name.clone())
    }
}

fn body_with(name: &[u8], extra: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(1 + name.len() + extra);
    // Lossless: every name here is one of this module's constants (≤ 9 bytes).
    b.put_u8(name.len() as u8);
    b.extend_from_slice(name);
    b
}

/// A NULL READY body: `05 READY` + metadata.
#[must_use]
pub fn ready_body(metadata: &Metadata) -> Bytes {
    let mut b = body_with(READY, metadata.encoded_len());
    metadata.encode(&mut b);
    b.freeze()
}

/// An ERROR command: `05 ERROR` + reason length + reason (0..=255 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCommand {
    reason: Bytes,
}

impl ErrorCommand {
    /// An ERROR with `reason` (at most 255 bytes).
    pub fn new(reason: impl Into<Bytes>) -> Result<Self, ZmtpError> {
        let reason = reason.into();
        if reason.len() > 255 {
            return Err(ZmtpError::ReasonTooLong { len: reason.len() });
        }
        Ok(Self { reason })
    }

    /// The reason text.
    #[must_use]
    pub fn reason(&self) -> &Bytes {
        &self.reason
    }

    /// Parses the data after the `ERROR` name with libzmq's checks: at least the length byte,
    /// and a reason that fits. Bytes after the reason are ignored, as libzmq ignores them.
    pub fn parse_data(data: &Bytes) -> Result<Self, ZmtpError> {
        let Some(&len) = data.first() else {
            return Err(ZmtpError::MalformedCommand {
                command: "ERROR",
                reason: "missing reason length",
            });
        };
        let len = usize::from(len);
        if data.len() - 1 < len {
            return Err(ZmtpError::MalformedCommand {
                command: "ERROR",
                reason: "reason runs past the end",
            });
        }
        Ok(Self {
            reason: data.slice(1..1 + len),
        })
    }

    /// The command body.
    #[must_use]
    pub fn body(&self) -> Bytes {
        let mut b = body_with(ERROR, 1 + self.reason.len());
        // Lossless: `new` and `parse_data` keep reasons ≤ 255 bytes.
        b.put_u8(self.reason.len() as u8);
        b.extend_from_slice(&self.reason);
        b.freeze()
    }

    /// The authentication status if the reason is exactly `300`, `400` or `500`: how libzmq
    /// recognises a ZAP failure (its `HANDSHAKE_FAILED_AUTH` event).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn status_code(&self) -> Option<u16> {
        status_code(&self.reason)
    }
}

/// `Some(300 | 400 | 500)` if `reason` is exactly that 3-character status.
#[must_use]
pub fn status_code(reason: &[u8]) -> Option<u16> {
    match reason {
        b"300" => Some(300),
        b"400" => Some(400),
        b"500" => Some(500),
        _ => None,
    }
}

/// A PING: TTL in tenths of a second and an opaque context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Time to live announced by the sender, in deciseconds (0 = none).
    pub ttl: u16,
    /// The context the PONG must echo (received PINGs may carry more than 16 bytes; only 16 are
    /// echoed).
    pub context: Bytes,
}

impl Ping {
    /// A PING to send. The context is at most 16 bytes.
    #[cfg(any(test, feature = "internals"))]
    pub fn new(ttl: u16, context: impl Into<Bytes>) -> Result<Self, ZmtpError> {
        let context = context.into();
        if context.len() > MAX_PING_CONTEXT {
            return Err(ZmtpError::MalformedCommand {
                command: "PING",
                reason: "context longer than 16 bytes",
            });
        }
        Ok(Self { ttl, context })
    }

    /// Parses the data after the `PING` name. It must hold the 2-byte TTL (libzmq reads it
    /// without checking; we refuse a shorter PING). Any context length is accepted.
    pub fn parse_data(data: &Bytes) -> Result<Self, ZmtpError> {
        if data.len() < 2 {
            return Err(ZmtpError::MalformedCommand {
                command: "PING",
                reason: "shorter than 7 bytes",
            });
        }
        Ok(Self {
            ttl: u16::from_be_bytes([data[0], data[1]]),
            context: data.slice(2..),
        })
    }

    /// The TTL as a duration.
    #[must_use]
    pub fn ttl_duration(&self) -> Duration {
        Duration::from_millis(u64::from(self.ttl) * 100)
    }

    /// The command body (always at least 7 bytes).
    #[must_use]
    pub fn body(&self) -> Bytes {
        let mut b = body_with(PING, 2 + self.context.len());
        b.put_u16(self.ttl);
        b.extend_from_slice(&self.context);
        b.freeze()
    }

    /// The answer: a PONG echoing at most 16 bytes of our context, as libzmq does.
    #[must_use]
    pub fn pong(&self) -> Pong {
        let n = self.context.len().min(MAX_PING_CONTEXT);
        Pong {
            context: self.context.slice(..n),
        }
    }
}

/// A PONG: the echoed PING context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// The echoed context.
    pub context: Bytes,
}

impl Pong {
    /// The command body.
    #[must_use]
    pub fn body(&self) -> Bytes {
        let mut b = body_with(PONG, self.context.len());
        b.extend_from_slice(&self.context);
        b.freeze()
    }
}

/// A command received after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrafficCommand {
    /// A heartbeat to answer.
    Ping(Ping),
    /// A heartbeat answer.
    Pong(Pong),
    /// A subscription (only meaningful to PUB-type sockets; ignored by ours).
    Subscribe(Bytes),
    /// A subscription cancellation (ignored by ours).
    Cancel(Bytes),
    /// Anything else: libzmq drops these silently.
    Unknown(RawCommand),
}

impl TrafficCommand {
    /// Parses a post-handshake command body.
    pub fn parse(body: &Bytes) -> Result<Self, ZmtpError> {
        let raw = RawCommand::parse(body)?;
        Ok(if raw.is(PING) {
            Self::Ping(Ping::parse_data(&raw.data)?)
        } else if raw.is(PONG) {
            Self::Pong(Pong { context: raw.data })
        } else if raw.is(SUBSCRIBE) {
            Self::Subscribe(raw.data)
        } else if raw.is(CANCEL) {
            Self::Cancel(raw.data)
        } else {
            Self::Unknown(raw)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn raw_command_split_and_checks() {
        let c = RawCommand::parse(&Bytes::from_static(b"\x05READYabc")).unwrap();
        assert!(c.is(READY));
        assert_eq!(c.data.as_ref(), b"abc");
        assert!(RawCommand::parse(&Bytes::new()).is_err());
        assert!(RawCommand::parse(&Bytes::from_static(b"\x05READ")).is_err());
        let c = RawCommand::parse(&Bytes::from_static(b"\x00xyz")).unwrap();
        assert!(c.name.is_empty());
    }

    #[test]
    fn ready_body_matches_libzmq_router() {
        let mut m = Metadata::new();
        m.push("Socket-Type", "ROUTER").unwrap();
        m.push("Identity", "").unwrap();
        let body = ready_body(&m);
        assert_eq!(body.len(), 0x29);
        assert_eq!(&body[..6], b"\x05READY");
    }

    #[test]
    fn error_command_bytes_and_libzmq_checks() {
        let e = ErrorCommand::new(&b"400"[..]).unwrap();
        // wire.md §7.8: 054552524f5203343030
        assert_eq!(e.body().as_ref(), b"\x05ERROR\x03400");
        assert_eq!(e.status_code(), Some(400));
        assert!(ErrorCommand::new(vec![b'x'; 256]).is_err());
        assert!(ErrorCommand::new(vec![b'x'; 255]).is_ok());
        // Parsing: length byte required; reason must fit; trailing bytes ignored.
        assert!(ErrorCommand::parse_data(&Bytes::new()).is_err());
        assert!(ErrorCommand::parse_data(&Bytes::from_static(b"\x04abc")).is_err());
        let e = ErrorCommand::parse_data(&Bytes::from_static(b"\x03500xx")).unwrap();
        assert_eq!(e.reason().as_ref(), b"500");
        assert_eq!(e.status_code(), Some(500));
        let e = ErrorCommand::parse_data(&Bytes::from_static(b"\x00")).unwrap();
        assert!(e.reason().is_empty());
        assert_eq!(e.status_code(), None);
        assert_eq!(status_code(b"200"), None);
        assert_eq!(status_code(b"300"), Some(300));
        assert_eq!(status_code(b"4000"), None);
    }

    #[test]
    fn ping_bytes_match_libzmq() {
        // null-handshake-capture.txt: HEARTBEAT_TTL=2000 ms -> 0450494e470014.
        let p = Ping::new(20, Bytes::new()).unwrap();
        assert_eq!(p.body().as_ref(), b"\x04PING\x00\x14");
        assert_eq!(p.ttl_duration(), Duration::from_secs(2));
        assert!(Ping::new(0, vec![0u8; 17]).is_err());
        // PONG with empty context: 04504f4e47.
        assert_eq!(p.pong().body().as_ref(), b"\x04PONG");
    }

    #[test]
    fn test_heartbeats_lol_and_long_context() {
        // libzmq test_heartbeats: PING 04 0a 04 'PING' 00 00 'LOL' -> PONG 04 08 04 'PONG' 'LOL'.
        let body = Bytes::from_static(b"\x04PING\x00\x00LOL");
        let TrafficCommand::Ping(p) = TrafficCommand::parse(&body).unwrap() else {
            panic!("not a ping");
        };
        assert_eq!(p.ttl, 0);
        assert_eq!(p.pong().body().as_ref(), b"\x04PONGLOL");
        // 58 context bytes -> PONG body of 5 + 16 = 21 (frame 04 15).
        let mut long = BytesMut::from(&b"\x04PING\x00\x00"[..]);
        long.extend_from_slice(&[b'c'; 58]);
        let TrafficCommand::Ping(p) = TrafficCommand::parse(&long.freeze()).unwrap() else {
            panic!("not a ping");
        };
        assert_eq!(p.context.len(), 58);
        let pong = p.pong().body();
        assert_eq!(pong.len(), 0x15);
        assert_eq!(&pong[5..], &[b'c'; 16]);
    }

    #[test]
    fn short_ping_is_malformed() {
        assert!(TrafficCommand::parse(&Bytes::from_static(b"\x04PING")).is_err());
        assert!(TrafficCommand::parse(&Bytes::from_static(b"\x04PING\x00")).is_err());
        assert!(TrafficCommand::parse(&Bytes::from_static(b"\x04PING\x00\x01")).is_ok());
    }

    #[test]
    fn traffic_commands() {
        assert_eq!(
            TrafficCommand::parse(&Bytes::from_static(b"\x04PONGctx")).unwrap(),
            TrafficCommand::Pong(Pong {
                context: Bytes::from_static(b"ctx")
            })
        );
        assert_eq!(
            TrafficCommand::parse(&Bytes::from_static(b"\x09SUBSCRIBEtopic")).unwrap(),
            TrafficCommand::Subscribe(Bytes::from_static(b"topic"))
        );
        assert_eq!(
            TrafficCommand::parse(&Bytes::from_static(b"\x06CANCELt")).unwrap(),
            TrafficCommand::Cancel(Bytes::from_static(b"t"))
        );
        let TrafficCommand::Unknown(raw) =
            TrafficCommand::parse(&Bytes::from_static(b"\x03FOObar")).unwrap()
        else {
            panic!("FOO is unknown");
        };
        assert!(raw.is(b"FOO"));
        // "ping" is not PING.
        assert!(matches!(
            TrafficCommand::parse(&Bytes::from_static(b"\x04ping")).unwrap(),
            TrafficCommand::Unknown(_)
        ));
    }
}
