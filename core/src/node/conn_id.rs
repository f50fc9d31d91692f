//! [`ConnectionId`]: how the application names a peer it talks to.
//!
//! OxenMQ has three flavours of connection id, and so do we:
//!
//! * **Service node** ids name a peer by its public key alone. Any connection to that key, in
//!   either direction, can carry a message to it, and a send may open a new outgoing connection.
//!   Two SN ids are equal iff their keys are.
//! * **Outgoing** ids name one `connect_remote`/`connect_inproc` connection by the number the node
//!   handed out. The remote's public key (if the connection is CURVE) is carried for information
//!   and ignored by equality, exactly as OxenMQ does.
//! * **Incoming** ids name a non-service-node peer on one of our listeners by the listener and the
//!   peer's ZMTP routing id ("route"). A peer that reconnects with the same routing id (OxenMQ's
//!   `L` + pubkey ids do) is reached by the same id after the ROUTER handover.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

use bytes::Bytes;

use crate::ids::ListenerId;
use crate::keys::PublicKey;

/// A peer as the application addresses it. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
#[non_exhaustive]
pub enum ConnectionId {
    /// A service node, by public key (any connection to it will do).
    Sn(PublicKey),
    /// One outgoing connection made with `connect_remote` or `connect_inproc`.
    Outgoing {
        /// The number the node assigned when the connection was requested.
        id: u64,
        /// The remote's CURVE key, if the connection is encrypted (not part of equality).
        pubkey: Option<PublicKey>,
    },
    /// A non-service-node peer connected to one of our listeners.
    Incoming {
        /// The listener it connected to.
        listener: ListenerId,
        /// Its ZMTP routing id on that listener.
        route: Bytes,
        /// Its CURVE key, if the listener is a CURVE listener (not part of equality).
        pubkey: Option<PublicKey>,
    },
}

impl ConnectionId {
    /// The peer's public key, if known.
    #[must_use]
    pub fn pubkey(&self) -> Option<&PublicKey> {
        match self {
            Self::Sn(pk) => Some(pk),
            Self::Outgoing { pubkey, .. } | Self::Incoming { pubkey, .. } => pubkey.as_ref(),
        }
    }

    /// True for a service-node id.
    #[must_use]
    pub fn is_sn(&self) -> bool {
        matches!(self, Self::Sn(_))
    }

    /// The routing id of an incoming connection (empty for the other kinds).
    #[must_use]
    pub fn route(&self) -> &[u8] {
        match self {
            Self::Incoming { route, .. } => route,
            _ => &[],
        }
    }

    /// A key that orders and compares ids the way OxenMQ does (pubkey ignored for non-SN ids).
    fn key(&self) -> (u8, &[u8], u64, &[u8]) {
        match self {
            Self::Sn(pk) => (0, pk.as_bytes(), 0, &[]),
            Self::Outgoing { id, .. } => (1, &[], *id, &[]),
            Self::Incoming {
                listener, route, ..
            } => (2, &[], u64::from(listener.get()), route),
        }
    }
}

impl PartialEq for ConnectionId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ConnectionId {}

impl PartialOrd for ConnectionId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ConnectionId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl Hash for ConnectionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl From<PublicKey> for ConnectionId {
    fn from(pk: PublicKey) -> Self {
        Self::Sn(pk)
    }
}

impl fmt::Display for ConnectionId {
    /// OxenMQ's `ConnectionID::to_string()` texts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sn(pk) => write!(f, "SN {pk}"),
            Self::Outgoing {
                pubkey: Some(pk), ..
            }
            | Self::Incoming {
                pubkey: Some(pk), ..
            } => write!(f, "non-SN authenticated remote {pk}"),
            Self::Outgoing { id, pubkey: None } => write!(f, "unauthenticated remote [{id}]"),
            Self::Incoming {
                listener,
                pubkey: None,
                ..
            } => write!(f, "unauthenticated remote [{}]", listener.get()),
        }
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incoming { route, .. } => {
                write!(f, "{self} (route ")?;
                for b in route.iter() {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
            _ => fmt::Display::fmt(self, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::string::ToString;

    fn pk(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn sn_ids_compare_by_pubkey() {
        assert_eq!(ConnectionId::Sn(pk(1)), ConnectionId::from(pk(1)));
        assert_ne!(ConnectionId::Sn(pk(1)), ConnectionId::Sn(pk(2)));
    }

    #[test]
    fn non_sn_ids_ignore_pubkey() {
        let a = ConnectionId::Outgoing {
            id: 3,
            pubkey: Some(pk(1)),
        };
        let b = ConnectionId::Outgoing {
            id: 3,
            pubkey: None,
        };
        assert_eq!(a, b);
        let c = ConnectionId::Incoming {
            listener: ListenerId(0),
            route: Bytes::from_static(b"r1"),
            pubkey: None,
        };
        let d = ConnectionId::Incoming {
            listener: ListenerId(0),
            route: Bytes::from_static(b"r2"),
            pubkey: None,
        };
        assert_ne!(c, d, "two plain clients on one listener are distinct");
        let set: BTreeSet<_> = [a, b, c, d].into_iter().collect();
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn display_matches_oxenmq() {
        assert_eq!(
            ConnectionId::Sn(pk(0xab)).to_string(),
            alloc::format!("SN {}", "ab".repeat(32))
        );
        assert_eq!(
            ConnectionId::Outgoing {
                id: 7,
                pubkey: None
            }
            .to_string(),
            "unauthenticated remote [7]"
        );
        assert_eq!(
            ConnectionId::Incoming {
                listener: ListenerId(2),
                route: Bytes::new(),
                pubkey: Some(pk(1))
            }
            .to_string(),
            alloc::format!("non-SN authenticated remote {}", "01".repeat(32))
        );
    }
}
