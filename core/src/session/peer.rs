//! The authentication decision and what a session knows about its peer.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::zmtp::socket::IDENTITY;
use crate::zmtp::{Dialect, Metadata, SocketType};

/// Property name of the authenticated user id (set only by the authentication decision).
pub const USER_ID: &str = "User-Id";

/// Property names that only the local side may set: a peer's metadata can never supply them
/// (wire.md §8.6: with libzmq a client could claim `X-SN: 1` whenever ZAP did not set it).
/// Every name set by an [`AuthDecision::Allow`] is reserved in addition.
pub const RESERVED_PROPERTIES: [&str; 4] = [USER_ID, "X-AuthLevel", "X-SN", "Peer-Address"];

/// How a denial is reported, mirroring ZAP status codes.
///
/// Exhaustive on purpose: ZAP defines exactly these three failure statuses, and embedders map
/// them one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyStatus {
    /// 300: temporary failure. The connection closes silently (no ERROR); the peer reconnects.
    Temporary,
    /// 400: authentication failure. `ERROR "400"` is sent, then the connection closes; a libzmq
    /// peer does not reconnect.
    Denied,
    /// 500: internal error. `ERROR "500"` is sent, then the connection closes.
    Internal,
}

impl DenyStatus {
    /// The ZAP status code.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::Temporary => 300,
            Self::Denied => 400,
            Self::Internal => 500,
        }
    }

    /// The ERROR reason sent to the peer, if any (300 closes silently).
    #[must_use]
    pub const fn error_reason(self) -> Option<&'static [u8]> {
        match self {
            Self::Temporary => None,
            Self::Denied => Some(b"400"),
            Self::Internal => Some(b"500"),
        }
    }
}

impl fmt::Display for DenyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Temporary => "temporary failure",
            Self::Denied => "denied",
            Self::Internal => "internal error",
        };
        write!(f, "{} {text}", self.code())
    }
}

/// The embedder's answer to [`super::SessionEvent::AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthDecision {
    /// Accept the peer.
    Allow {
        /// Becomes the `User-Id` property.
        user_id: Bytes,
        /// Local properties (e.g. `X-AuthLevel`, `X-SN`); they take priority over, and hide,
        /// any peer-supplied property of the same name.
        properties: Vec<(String, Bytes)>,
    },
    /// Refuse the peer.
    Deny {
        /// How the refusal is reported.
        status: DenyStatus,
    },
}

impl AuthDecision {
    /// An [`AuthDecision::Allow`].
    #[must_use]
    pub fn allow(user_id: impl Into<Bytes>, properties: Vec<(String, Bytes)>) -> Self {
        Self::Allow {
            user_id: user_id.into(),
            properties,
        }
    }

    /// An [`AuthDecision::Deny`].
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn deny(status: DenyStatus) -> Self {
        Self::Deny { status }
    }
}

/// What the session learned about its peer during the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    socket_type: Option<SocketType>,
    identity: Bytes,
    dialect: Dialect,
    properties: Metadata,
    user_id: Option<Bytes>,
    auth_properties: Vec<(String, Bytes)>,
}

impl PeerInfo {
    /// Combines the peer's handshake metadata with the local decision, dropping every peer
    /// property whose name the local side owns.
    pub(crate) fn new(
        mut peer_metadata: Metadata,
        socket_type: Option<SocketType>,
        dialect: Dialect,
        decision: Option<(Bytes, Vec<(String, Bytes)>)>,
    ) -> Self {
        let identity = peer_metadata.get(IDENTITY).cloned().unwrap_or_default();
        let (user_id, auth_properties) = match decision {
            Some((u, p)) => (Some(u), p),
            None => (None, Vec::new()),
        };
        peer_metadata.retain(|name, _| {
            !RESERVED_PROPERTIES.iter().any(|r| r.as_bytes() == name)
                && !auth_properties.iter().any(|(n, _)| n.as_bytes() == name)
        });
        Self {
            socket_type,
            identity,
            dialect,
            properties: peer_metadata,
            user_id,
            auth_properties,
        }
    }

    /// The peer's `Socket-Type` (`None` if it sent none, which libzmq accepts).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn socket_type(&self) -> Option<SocketType> {
        self.socket_type
    }

    /// The peer's `Identity` property (empty if absent): its routing id on a ROUTER.
    #[must_use]
    pub fn identity(&self) -> &Bytes {
        &self.identity
    }

    /// The ZMTP dialect spoken with the peer.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The peer's handshake metadata, minus the names the local side owns.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn properties(&self) -> &Metadata {
        &self.properties
    }

    /// The user id from the authentication decision (`None` if no decision was made).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn user_id(&self) -> Option<&Bytes> {
        self.user_id.as_ref()
    }

    /// The properties from the authentication decision.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn auth_properties(&self) -> &[(String, Bytes)] {
        &self.auth_properties
    }

    /// Looks a property up the way libzmq's message properties resolve, but safely: `User-Id`
    /// and the decision's properties first, then the peer's (which can never supply a reserved
    /// name). Case-sensitive.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn property(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        if name == USER_ID.as_bytes() {
            if let Some(u) = &self.user_id {
                return Some(u);
            }
        }
        if let Some((_, v)) = self
            .auth_properties
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
        {
            return Some(v);
        }
        self.properties.get(name).map(|v| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn peer_md() -> Metadata {
        let mut m = Metadata::new();
        m.push("Socket-Type", "DEALER").unwrap();
        m.push("Identity", "pk").unwrap();
        m.push("X-SN", "1").unwrap();
        m.push("User-Id", "admin").unwrap();
        m.push("X-AuthLevel", "admin").unwrap();
        m.push("Peer-Address", "1.2.3.4").unwrap();
        m.push("X-Custom", "c").unwrap();
        m.push("X-Mine", "peer").unwrap();
        m
    }

    #[test]
    fn reserved_names_cannot_come_from_the_peer() {
        // No decision at all (client side, or NULL without auth): still filtered.
        let p = PeerInfo::new(peer_md(), Some(SocketType::Dealer), Dialect::Zmtp31, None);
        assert_eq!(p.property("X-SN"), None);
        assert_eq!(p.property("User-Id"), None);
        assert_eq!(p.property("X-AuthLevel"), None);
        assert_eq!(p.property("Peer-Address"), None);
        assert_eq!(p.property("X-Custom"), Some(&b"c"[..]));
        assert_eq!(p.identity().as_ref(), b"pk");
        assert_eq!(p.user_id(), None);
        assert_eq!(p.properties().len(), 4);
    }

    #[test]
    fn decision_properties_take_priority_and_hide_peer_values() {
        let decision = (
            Bytes::from_static(b"abcd"),
            vec![
                (String::from("X-AuthLevel"), Bytes::from_static(b"basic")),
                (String::from("X-Mine"), Bytes::from_static(b"local")),
            ],
        );
        let p = PeerInfo::new(
            peer_md(),
            Some(SocketType::Dealer),
            Dialect::Zmtp31,
            Some(decision),
        );
        assert_eq!(p.property("User-Id"), Some(&b"abcd"[..]));
        assert_eq!(p.property("X-AuthLevel"), Some(&b"basic"[..]));
        assert_eq!(p.property("X-Mine"), Some(&b"local"[..]));
        assert_eq!(
            p.property("X-SN"),
            None,
            "decision did not set it; peer cannot"
        );
        assert!(p.properties().get("X-Mine").is_none());
        assert_eq!(p.property("x-custom"), None, "case-sensitive");
        assert_eq!(p.socket_type(), Some(SocketType::Dealer));
        assert_eq!(p.auth_properties().len(), 2);
    }

    #[test]
    fn deny_status_codes() {
        assert_eq!(DenyStatus::Temporary.code(), 300);
        assert_eq!(DenyStatus::Temporary.error_reason(), None);
        assert_eq!(DenyStatus::Denied.error_reason(), Some(&b"400"[..]));
        assert_eq!(DenyStatus::Internal.error_reason(), Some(&b"500"[..]));
        assert_eq!(alloc::format!("{}", DenyStatus::Denied), "400 denied");
    }
}
