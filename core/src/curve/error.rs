//! The CURVE layer's error type and the names it uses to say where a failure happened.

use core::fmt;
use core::ops::RangeBounds;

/// A CurveZMQ command, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// `05 'HELLO'`, client → server.
    Hello,
    /// `07 'WELCOME'`, server → client.
    Welcome,
    /// `08 'INITIATE'`, client → server.
    Initiate,
    /// `05 'READY'`, server → client.
    Ready,
    /// `07 'MESSAGE'`, both directions after the handshake.
    Message,
    /// `05 'ERROR'`, server → client during the handshake.
    Error,
}

impl Command {
    /// Every command, in handshake order.
    pub const ALL: [Self; 6] = [
        Self::Hello,
        Self::Welcome,
        Self::Initiate,
        Self::Ready,
        Self::Message,
        Self::Error,
    ];

    /// The command's name as it starts a command body: the length byte then the ASCII name.
    #[must_use]
    pub const fn wire_name(self) -> &'static [u8] {
        match self {
            Self::Hello => b"\x05HELLO",
            Self::Welcome => b"\x07WELCOME",
            Self::Initiate => b"\x08INITIATE",
            Self::Ready => b"\x05READY",
            Self::Message => b"\x07MESSAGE",
            Self::Error => b"\x05ERROR",
        }
    }

    /// The ASCII name without its length byte.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "HELLO",
            Self::Welcome => "WELCOME",
            Self::Initiate => "INITIATE",
            Self::Ready => "READY",
            Self::Message => "MESSAGE",
            Self::Error => "ERROR",
        }
    }

    /// Checks that `body` carries this command ([`CurveError::UnexpectedCommand`] otherwise),
    /// then that its size lies in `sizes` ([`CurveError::Malformed`] otherwise): libzmq's first
    /// two checks of every command, in its order.
    pub(crate) fn check_body(
        self,
        body: &[u8],
        sizes: impl RangeBounds<usize>,
    ) -> Result<(), CurveError> {
        if !self.matches(body) {
            return Err(CurveError::UnexpectedCommand { expected: self });
        }
        if !sizes.contains(&body.len()) {
            return Err(CurveError::Malformed { command: self });
        }
        Ok(())
    }

    /// Which CurveZMQ command a command body carries, judged by its name only (sizes and boxes
    /// are checked by the handler). `None` for any other name, or a body too short to hold one.
    #[must_use]
    pub fn of(body: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.matches(body))
    }

    /// Whether `body` starts with this command's name.
    #[must_use]
    pub fn matches(self, body: &[u8]) -> bool {
        body.starts_with(self.wire_name())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The box (or key agreement) a cryptographic failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// HELLO's signature box, `Box[64 zeros](C'→S)`; also the client's own `(S, c')` key.
    Hello,
    /// WELCOME's box, `Box[S' ‖ cookie](S→C')`, and the session key made from its S'.
    Welcome,
    /// The server's cookie, `secretbox(C' ‖ s')` under the per-connection cookie key.
    Cookie,
    /// INITIATE's box, `Box[C ‖ vouch ‖ metadata](C'→S')`.
    Initiate,
    /// The vouch inside INITIATE, `Box[C' ‖ S](C→S')`.
    Vouch,
    /// READY's box, `Box[metadata](S'→C')`.
    Ready,
    /// A post-handshake MESSAGE box.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hello => "HELLO",
            Self::Welcome => "WELCOME",
            Self::Cookie => "cookie",
            Self::Initiate => "INITIATE",
            Self::Vouch => "vouch",
            Self::Ready => "READY",
            Self::Message => "MESSAGE",
        })
    }
}

/// Why a CURVE handshake step or a MESSAGE failed. Every variant ends the connection; none
/// carries secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CurveError {
    /// The body does not start with the command name this step expects (libzmq:
    /// `ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND`).
    #[error("unexpected command: expected {expected}")]
    UnexpectedCommand {
        /// The command that was expected.
        expected: Command,
    },
    /// The command has the right name but the wrong size, or a length field overruns it
    /// (libzmq: `MALFORMED_COMMAND_*`).
    #[error("malformed {command} command")]
    Malformed {
        /// The command that was malformed.
        command: Command,
    },
    /// HELLO carries a CURVE version other than 1.0.
    #[error("unsupported CURVE version {major}.{minor} in HELLO")]
    Version {
        /// Major version byte received.
        major: u8,
        /// Minor version byte received.
        minor: u8,
    },
    /// A box did not open (wrong key, tampering) or, for HELLO, opened to something other than
    /// 64 zero bytes (libzmq: `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`).
    #[error("cryptographic failure in the {stage} box")]
    Cryptographic {
        /// Which box failed.
        stage: Stage,
    },
    /// The vouch does not name the client's short-term key C' (libzmq:
    /// `ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE`).
    #[error("vouch does not carry the client's short-term key")]
    KeyExchange,
    /// The vouch names a server key other than ours. libzmq never checks this half; see the
    /// module documentation.
    #[error("vouch names a different server key")]
    VouchServerKey,
    /// An x25519 key agreement produced the all-zero secret (a low-order public key), which
    /// libsodium's `crypto_box` refuses.
    #[error("non-contributory key agreement in {stage}")]
    NonContributory {
        /// The step whose public key was of low order.
        stage: Stage,
    },
    /// A MESSAGE nonce was not strictly greater than the last one accepted (libzmq:
    /// `ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE`).
    #[error("MESSAGE nonce {received} is not above the last accepted nonce {last}")]
    InvalidSequence {
        /// The nonce in the rejected MESSAGE.
        received: u64,
        /// The last nonce accepted from the peer.
        last: u64,
    },
    /// The cookie opened but does not hold this connection's C' ‖ s'.
    #[error("INITIATE cookie does not belong to this connection")]
    BadCookie,
    /// Our short-nonce counter has used its last value (u64::MAX); sending more would reuse a
    /// nonce.
    #[error("short nonce counter exhausted")]
    NonceExhausted,
    /// The call does not fit the handshake's current state (including any call after a
    /// failure: errors latch).
    #[error("CURVE call in the wrong handshake state")]
    WrongState,
    /// An ERROR reason longer than the 255 bytes its length byte can express.
    #[error("ERROR reason is {len} bytes; at most 255 fit")]
    ReasonTooLong {
        /// Length of the reason given.
        len: usize,
    },
    /// A caller buffer for in-place sealing is shorter than the 33-byte MESSAGE overhead.
    #[error("MESSAGE buffer of {len} bytes is shorter than the 33-byte overhead")]
    BufferTooShort {
        /// Length of the buffer given.
        len: usize,
    },
}
