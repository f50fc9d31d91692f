//! The ZMTP 3.x wire codec: greeting, framing, commands, metadata, socket types and the ROUTER
//! routing table.
//!
//! Everything here is a pure function of its input bytes: no IO, no clock, no randomness except
//! where a caller passes an RNG in ([`router::RouterTable::new`]). The per-connection state
//! machine that strings these pieces together is [`crate::session`].
//!
//! ## What is checked, and when
//!
//! The codec follows libzmq 4.3 rather than the RFC text wherever the two differ (wire.md §12):
//!
//! * [`greeting`]: the peer's 64-byte greeting is validated byte by byte as it arrives, so a
//!   non-ZMTP-3 peer is refused at its first wrong byte (byte 0 for ZMTP 1.0, byte 10 for a 2.0
//!   revision, the first differing mechanism byte for a mechanism mismatch).
//! * [`frame`]: a frame's declared size is checked against the limit as soon as the size field is
//!   complete, before a single body byte is buffered; with no limit the body buffer still only
//!   grows with bytes actually received. Reserved flag bits are ignored, the long size form is
//!   accepted for small sizes, and a command frame with MORE set is refused.
//! * [`metadata`]: decoded with libzmq's exact acceptance rules (zero-length names accepted, one
//!   trailing byte or an overrunning length refused).
//! * [`command`]: READY/ERROR bodies, PING/PONG (context cut to 16 bytes when echoed),
//!   SUBSCRIBE/CANCEL, and unknown commands (reported, so the session can drop and count them).
//!
//! ## ZMTP 3.0 versus 3.1
//!
//! A peer announcing minor version 0 speaks ZMTP 3.0. The framing is identical for our purposes;
//! the differences are that 3.0 has no PING/PONG commands (libzmq sends heartbeats regardless,
//! and so do we) and that subscriptions travel as data frames rather than SUBSCRIBE/CANCEL
//! commands. Our sessions are DEALER/ROUTER only, so we never send subscriptions.

pub mod command;
pub mod frame;
pub mod greeting;
pub mod heartbeat;
pub mod metadata;
pub mod router;
pub mod socket;

use core::fmt;

use bytes::Bytes;

// Re-exports for the tests, benches and fuzz targets (the `internals` feature): the crate
// itself names these through their modules.
#[cfg(any(test, feature = "internals"))]
pub use command::{ErrorCommand, Ping, Pong, RawCommand, TrafficCommand};
pub use frame::{Frame, FrameDecoder, FrameHeader};
pub use greeting::{Dialect, GreetingDecoder, Mechanism, PeerGreeting};
pub use heartbeat::{Heartbeat, HeartbeatConfig, HeartbeatExpiry};
pub use metadata::Metadata;
#[cfg(any(test, feature = "internals"))]
pub use router::{Attached, RouterTable};
pub use socket::SocketType;

/// Everything that can be wrong with ZMTP bytes, received or about to be sent.
///
/// Received-side variants describe a peer that broke the protocol; the session closes the
/// connection on them (without an ERROR command, as libzmq does). Encode-side variants
/// ([`ZmtpError::InvalidProperty`], [`ZmtpError::InvalidCommandName`],
/// [`ZmtpError::ReasonTooLong`]) describe local misuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZmtpError {
    /// Byte 0 of the greeting is not `0xFF`, or byte 9 lacks its lowest bit: a ZMTP 1.0 peer,
    /// which we refuse (libzmq refuses them too whenever authentication is on).
    #[error("not a ZMTP 3 greeting (byte {offset} is {byte:#04x}); ZMTP 1.0/2.0 peers are refused")]
    BadSignature {
        /// Offset of the offending byte in the greeting (0 or 9).
        offset: usize,
        /// The byte received there.
        byte: u8,
    },
    /// The greeting's major version is 0 or 1 (versioned ZMTP 1.0 / the ZMTP 2.0 revision).
    #[error("peer announces ZMTP revision {major} (1.0/2.0); only ZMTP 3.x is supported")]
    UnsupportedVersion {
        /// The major version byte (offset 10).
        major: u8,
    },
    /// The peer's 20-byte mechanism field differs from ours. libzmq closes without ERROR.
    #[error(
        "security mechanism mismatch: we use {ours}, the peer's greeting differs at byte {offset}"
    )]
    MechanismMismatch {
        /// Our mechanism.
        ours: Mechanism,
        /// The peer's mechanism, if the bytes received up to the mismatch name exactly one
        /// known mechanism (the peer's name is not read past the first differing byte).
        theirs: Option<Mechanism>,
        /// Offset in the greeting (12..32) of the first differing byte.
        offset: usize,
    },
    /// A frame header declared a body larger than the configured limit.
    #[error("frame body of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The declared body size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A command frame had the MORE flag set.
    #[error("command frame with the MORE flag set")]
    CommandWithMore,
    /// A command body is too short for its own name length, or a known command's body does not
    /// have the required layout.
    #[error("malformed {command} command: {reason}")]
    MalformedCommand {
        /// Which command (or "command" when the name itself could not be read).
        command: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A command that is not allowed at this point of the handshake.
    #[error("unexpected command {name} during the handshake")]
    UnexpectedCommand {
        /// The command name received.
        name: WireText,
    },
    /// A data frame arrived before the handshake finished.
    #[error("data frame received before the handshake finished")]
    UnexpectedDataFrame,
    /// Connection metadata could not be decoded.
    #[error("malformed metadata: {0}")]
    BadMetadata(&'static str),
    /// The peer's `Socket-Type` value names no socket type (names are case-sensitive).
    #[error("unknown peer Socket-Type {0}")]
    UnknownSocketType(WireText),
    /// The peer's socket type cannot talk to ours.
    #[error("peer socket type {peer} is incompatible with our {ours}")]
    IncompatibleSocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's announced socket type.
        peer: SocketType,
    },
    /// An inbound multipart message has more frames than allowed.
    #[error("multipart message exceeds {limit} frames")]
    TooManyParts {
        /// The frame-count limit.
        limit: usize,
    },
    /// An inbound multipart message is larger in total than allowed.
    #[error("multipart message exceeds {limit} bytes in total")]
    MessageTooLarge {
        /// The total-size limit.
        limit: u64,
    },
    /// A property we were asked to send is not encodable or not allowed.
    #[error("invalid property {name}: {reason}")]
    InvalidProperty {
        /// The property name.
        name: WireText,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A command name we were asked to encode is not 1..=255 bytes.
    #[error("command name must be 1..=255 bytes, got {len}")]
    InvalidCommandName {
        /// The length given.
        len: usize,
    },
    /// An ERROR reason we were asked to encode is longer than 255 bytes.
    #[error("ERROR reason must be at most 255 bytes, got {len}")]
    ReasonTooLong {
        /// The length given.
        len: usize,
    },
}

/// Bytes received from (or destined for) the wire, shown as text in error messages.
///
/// Printable ASCII is shown as is and everything else as `\xNN`, so a hostile peer cannot inject
/// control characters into logs through a command name or a Socket-Type value.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WireText(Bytes);

impl WireText {
    /// Wraps raw bytes.
    #[must_use]
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, owned.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<&'static str> for WireText {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

impl fmt::Display for WireText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0.iter() {
            if (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for WireText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn wire_text_escapes_non_printable_bytes() {
        let t = WireText::new(&b"ab\x00\n\"\\\xffz"[..]);
        assert_eq!(t.to_string(), r#""ab\x00\x0a\x22\x5c\xffz""#);
        assert_eq!(t.as_bytes(), b"ab\x00\n\"\\\xffz");
    }

    #[test]
    fn errors_render_readably() {
        let e = ZmtpError::UnexpectedCommand {
            name: WireText::from("HELLO"),
        };
        assert_eq!(
            e.to_string(),
            "unexpected command \"HELLO\" during the handshake"
        );
        let e = ZmtpError::FrameTooLarge { size: 9, limit: 4 };
        assert_eq!(
            e.to_string(),
            "frame body of 9 bytes exceeds the limit of 4 bytes"
        );
    }
}
