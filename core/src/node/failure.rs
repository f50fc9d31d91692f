//! Why connections fail to come up ([`ConnectError`], [`HandshakeError`]) and why established
//! ones end ([`DisconnectReason`]): typed, so that an application can tell a server that is
//! down from a wrong key, a refusal or a timeout without parsing text.
//!
//! How a failure is classified:
//!
//! | what happened | while | error |
//! |---|---|---|
//! | the driver reports [`DisconnectCause::Refused`] | dialling | [`ConnectError::Refused`] |
//! | [`DisconnectCause::ConnectFailed`] (unreachable, OS connect timeout, no name) | dialling | [`ConnectError::Unreachable`] |
//! | [`DisconnectCause::InvalidAddress`] | dialling | [`ConnectError::InvalidAddress`] |
//! | EOF or reset after our CURVE `HELLO`, before `WELCOME` | handshaking | [`HandshakeError::WrongServerKey`] |
//! | the peer's greeting names another mechanism | handshaking | [`HandshakeError::MechanismMismatch`] |
//! | a ZMTP `ERROR` (a ZAP denial: `"400"`) | handshaking | [`HandshakeError::Denied`] |
//! | any other EOF or reset (also a drop before `HELLO`) | handshaking | [`HandshakeError::PeerClosed`] |
//! | the ZMTP handshake timer | handshaking | [`HandshakeError::Timeout`] |
//! | any other protocol error | handshaking | [`HandshakeError::Protocol`] |
//! | no `HELLO` by the connect timeout | any | [`ConnectError::TimedOut`] |
//!
//! [`DisconnectCause::Refused`]: super::DisconnectCause::Refused
//! [`DisconnectCause::ConnectFailed`]: super::DisconnectCause::ConnectFailed
//! [`DisconnectCause::InvalidAddress`]: super::DisconnectCause::InvalidAddress

use alloc::string::String;
use core::fmt;

use crate::session::SessionError;
use crate::zmtp::{Mechanism, WireText, ZmtpError};

use super::io::DisconnectCause;

/// Why an outgoing connection could not be established (carried by
/// [`Job::ConnectFailed`](super::Job::ConnectFailed) and
/// [`Event::LinkFailed`](super::Event::LinkFailed)).
///
/// `Display` keeps OxenMQ's texts where OxenMQ has one ("connection attempt timed out",
/// "connect() failed: …"), since users see and search for them (oxen-io/lokinet#1489).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing accepts connections at the address: the transport's connect was refused
    /// (`ECONNREFUSED`). Usually the server is not running.
    #[error("connect() failed: Connection refused")]
    Refused,
    /// The transport's connect failed otherwise: host or network unreachable, the operating
    /// system's connect timeout, a name that does not resolve. `reason` is the driver's text
    /// (the OS error message).
    #[error("connect() failed: {reason}")]
    Unreachable {
        /// The driver's description of the failure.
        reason: String,
    },
    /// The address cannot be dialled at all (bad host, unusable path); never retried.
    #[error("connect() failed: {reason}")]
    InvalidAddress {
        /// The driver's description of the problem.
        reason: String,
    },
    /// The transport connected but the ZMTP/CurveZMQ handshake (or OxenMQ's `HI`/`HELLO`)
    /// failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// No `HELLO` within the connect timeout (OxenMQ's only failure text; also the result of
    /// [`ConnectOptions::retry_refused`](super::ConnectOptions::retry_refused) running out of
    /// time).
    #[error("connection attempt timed out")]
    TimedOut,
    /// We gave the connection up before it came up ([`Node::disconnect`](super::Node::disconnect)).
    #[error("connection closed before it was established")]
    Closed,
    /// The service-node lookup ([`Event::LookupSn`](super::Event::LookupSn)) found no address.
    #[error("peer lookup failed")]
    LookupFailed,
}

/// How a connection's handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server closed the connection after our CurveZMQ `HELLO` without a `WELCOME`. A
    /// server cannot open a `HELLO` sealed to another key, and libzmq (like this crate's
    /// listeners) then closes without a word: almost always the address carries the wrong
    /// server key.
    #[error("the server closed the connection after our CURVE HELLO (wrong server key?)")]
    WrongServerKey,
    /// The peer's greeting names another security mechanism than ours (e.g. a `curve://`
    /// address pointing at a plain listener).
    #[error("security mechanism mismatch: we use {ours}, the server {}", Theirs(*.theirs))]
    MechanismMismatch {
        /// Our mechanism.
        ours: Mechanism,
        /// The peer's, when its greeting names one we know (`None` for an unknown name).
        theirs: Option<Mechanism>,
    },
    /// The server refused us with a ZMTP `ERROR` (libzmq's ZAP denial; an OxenMQ listener
    /// whose allow function returned `denied` sends `"400"`). libzmq never retries after one.
    #[error("connection refused by the remote: {reason}")]
    Denied {
        /// The `ERROR` command's reason text.
        reason: WireText,
    },
    /// The peer closed (or reset) the connection before the handshake completed, in a way
    /// that names no cause; also a drop after the ZMTP handshake but before OxenMQ's `HELLO`.
    #[error("the server closed the connection during the handshake")]
    PeerClosed,
    /// The ZMTP handshake did not complete within [`Config::handshake_timeout`](super::Config::handshake_timeout).
    #[error("the handshake did not complete in time")]
    Timeout,
    /// The peer broke the protocol during the handshake.
    #[error("{0}")]
    Protocol(SessionError),
}

/// Display helper for [`HandshakeError::MechanismMismatch`].
struct Theirs(Option<Mechanism>);

impl fmt::Display for Theirs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(m) => write!(f, "uses {m}"),
            None => f.write_str("uses an unknown mechanism"),
        }
    }
}

impl HandshakeError {
    /// Classifies the error that closed a session during its handshake.
    pub(crate) fn from_session(e: &SessionError) -> Self {
        match e {
            SessionError::PeerError(reason) => Self::Denied {
                reason: reason.clone(),
            },
            SessionError::Protocol(ZmtpError::MechanismMismatch { ours, theirs, .. }) => {
                Self::MechanismMismatch {
                    ours: *ours,
                    theirs: *theirs,
                }
            }
            SessionError::HandshakeTimeout => Self::Timeout,
            other => Self::Protocol(other.clone()),
        }
    }
}

/// Why an established connection ended (carried by
/// [`Event::PeerDisconnected`](super::Event::PeerDisconnected)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// We closed it: [`Node::disconnect`](super::Node::disconnect), or the peer's key left the
    /// service-node set.
    #[error("closed by us")]
    Closed,
    /// An outgoing service-node connection was idle for its keep-alive.
    #[error("idle expiry")]
    IdleExpired,
    /// The remote asked us to disconnect with OxenMQ's `BYE`.
    #[error("the remote sent BYE")]
    Bye,
    /// The peer closed the stream (it read end of stream).
    #[error("closed by the peer")]
    PeerClosed,
    /// The transport failed (reset, broken pipe, …); `reason` is the driver's text.
    #[error("connection reset: {reason}")]
    Reset {
        /// The driver's description.
        reason: String,
    },
    /// Nothing arrived within the heartbeat timeout after our PING, or within the TTL the
    /// peer announced.
    #[error("heartbeat timeout")]
    HeartbeatTimeout,
    /// The peer broke the protocol, or sent a ZMTP `ERROR`.
    #[error("protocol error: {0}")]
    Protocol(SessionError),
    /// Another connection with the same routing id (the same client reconnecting) took this
    /// one's route on our listener (libzmq's ROUTER handover).
    #[error("replaced by a newer connection with the same routing id")]
    Replaced,
}

impl DisconnectReason {
    /// What a transport end reported by the driver means for an established connection.
    pub(crate) fn from_transport(cause: &DisconnectCause) -> Self {
        match cause {
            DisconnectCause::Eof => Self::PeerClosed,
            DisconnectCause::Reset(reason) => Self::Reset {
                reason: reason.clone(),
            },
            other => Self::Reset {
                reason: alloc::format!("{other}"),
            },
        }
    }

    /// What a session error means for an established connection.
    pub(crate) fn from_session(e: &SessionError) -> Self {
        match e {
            SessionError::HeartbeatTimeout | SessionError::TtlExpired => Self::HeartbeatTimeout,
            SessionError::LocallyClosed => Self::Closed,
            other => Self::Protocol(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn texts_keep_oxenmq_wording() {
        assert_eq!(
            ConnectError::TimedOut.to_string(),
            "connection attempt timed out"
        );
        assert_eq!(
            ConnectError::Refused.to_string(),
            "connect() failed: Connection refused"
        );
        assert_eq!(
            ConnectError::Unreachable {
                reason: "No route to host".into()
            }
            .to_string(),
            "connect() failed: No route to host"
        );
        assert_eq!(ConnectError::LookupFailed.to_string(), "peer lookup failed");
        let mismatch = HandshakeError::MechanismMismatch {
            ours: Mechanism::Curve,
            theirs: Some(Mechanism::Null),
        };
        assert_eq!(
            ConnectError::from(mismatch).to_string(),
            "handshake failed: security mechanism mismatch: we use CURVE, the server uses NULL"
        );
        assert_eq!(
            HandshakeError::Denied {
                reason: WireText::from("400")
            }
            .to_string(),
            "connection refused by the remote: \"400\""
        );
    }

    #[test]
    fn session_errors_are_classified() {
        assert_eq!(
            HandshakeError::from_session(&SessionError::PeerError(WireText::from("400"))),
            HandshakeError::Denied {
                reason: WireText::from("400")
            }
        );
        assert_eq!(
            HandshakeError::from_session(&SessionError::HandshakeTimeout),
            HandshakeError::Timeout
        );
        assert_eq!(
            DisconnectReason::from_session(&SessionError::TtlExpired),
            DisconnectReason::HeartbeatTimeout
        );
        assert_eq!(
            DisconnectReason::from_transport(&DisconnectCause::Eof),
            DisconnectReason::PeerClosed
        );
    }
}
