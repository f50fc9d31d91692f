//! Why a session closed, and why a send was refused.

use super::peer::DenyStatus;
use crate::zmtp::command::status_code;
use crate::zmtp::{SocketType, WireText, ZmtpError};

/// Why a session ended (or could not be created). The first one is latched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer broke the ZMTP protocol (bad greeting, oversize frame, malformed or unexpected
    /// command, bad metadata, incompatible socket type…). Closed without ERROR, like libzmq.
    #[error("protocol error: {0}")]
    Protocol(#[from] ZmtpError),
    /// The handshake (greeting, mechanism, authentication decision) did not finish in time.
    #[error("handshake did not complete within the handshake timeout")]
    HandshakeTimeout,
    /// Nothing arrived within the heartbeat timeout after one of our PINGs.
    #[error("no traffic from the peer within the heartbeat timeout")]
    HeartbeatTimeout,
    /// Nothing arrived within the TTL the peer announced in its PING.
    #[error("no traffic from the peer within the TTL it announced")]
    TtlExpired,
    /// The embedder denied authentication (400/500 were announced to the peer with ERROR).
    #[error("authentication denied ({0})")]
    AuthDenied(DenyStatus),
    /// The peer sent an ERROR command with this reason.
    #[error("peer sent ERROR {0}")]
    PeerError(WireText),
    /// [`super::Session::close`] was called.
    #[error("closed locally")]
    LocallyClosed,
    /// The CURVE mechanism failed (box open failure, nonce replay, bad cookie, …).
    #[error("CURVE: {0}")]
    Crypto(#[from] crate::curve::CurveError),
    /// Sessions implement DEALER and ROUTER only.
    #[error("socket type {0} is not supported by sessions (DEALER and ROUTER only)")]
    UnsupportedSocketType(SocketType),
    /// A configured value is out of range.
    #[error("invalid session configuration: {0}")]
    InvalidConfig(&'static str),
    /// A configured routing id or property cannot be sent.
    #[error("invalid session property: {0}")]
    InvalidProperty(ZmtpError),
    /// The peer sent more than [`super::config::AUTH_BACKLOG_LIMIT`] bytes while we waited for
    /// the authentication decision.
    #[error("more than {limit} bytes received while waiting for the authentication decision")]
    AuthBacklogExceeded {
        /// The limit.
        limit: usize,
    },
}

impl SessionError {
    /// For [`SessionError::PeerError`]: the authentication status (300/400/500) if the reason is
    /// exactly that code, as libzmq recognises ZAP failures.
    #[must_use]
    pub fn peer_status_code(&self) -> Option<u16> {
        match self {
            Self::PeerError(reason) => status_code(reason.as_bytes()),
            _ => None,
        }
    }
}

/// Why [`super::Session::send`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A message needs at least one frame.
    #[error("a message needs at least one frame")]
    EmptyMessage,
    /// The handshake is not complete and the pre-ready queue is full.
    #[error("{limit} messages are already queued waiting for the handshake")]
    QueueFull {
        /// The configured bound.
        limit: usize,
    },
    /// The session is closing or closed.
    #[error("the session is closed")]
    Closed,
}
