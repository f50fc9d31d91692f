//! ZMQ socket types, libzmq's compatibility table, and the handshake properties we send.

use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use super::metadata::Metadata;
use super::{WireText, ZmtpError};

/// Property name announcing the socket type.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// Property name carrying the routing id.
pub const IDENTITY: &str = "Identity";

/// A ZMQ socket type, as named in the `Socket-Type` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SocketType {
    /// `PAIR`
    Pair,
    /// `PUB`
    Pub,
    /// `SUB`
    Sub,
    /// `REQ`
    Req,
    /// `REP`
    Rep,
    /// `DEALER`
    Dealer,
    /// `ROUTER`
    Router,
    /// `PULL`
    Pull,
    /// `PUSH`
    Push,
    /// `XPUB`
    XPub,
    /// `XSUB`
    XSub,
}

const ALL: [SocketType; 11] = [
    SocketType::Pair,
    SocketType::Pub,
    SocketType::Sub,
    SocketType::Req,
    SocketType::Rep,
    SocketType::Dealer,
    SocketType::Router,
    SocketType::Pull,
    SocketType::Push,
    SocketType::XPub,
    SocketType::XSub,
];

impl SocketType {
    /// The exact `Socket-Type` value (upper case).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pair => "PAIR",
            Self::Pub => "PUB",
            Self::Sub => "SUB",
            Self::Req => "REQ",
            Self::Rep => "REP",
            Self::Dealer => "DEALER",
            Self::Router => "ROUTER",
            Self::Pull => "PULL",
            Self::Push => "PUSH",
            Self::XPub => "XPUB",
            Self::XSub => "XSUB",
        }
    }

    /// Parses a `Socket-Type` value. Exact match only: `dealer` is not `DEALER` (libzmq refuses
    /// it too).
    #[must_use]
    pub fn from_name(value: &[u8]) -> Option<Self> {
        ALL.into_iter().find(|t| t.name().as_bytes() == value)
    }

    /// Whether a peer of type `peer` may talk to us (libzmq's `check_socket_type`).
    #[must_use]
    pub fn is_compatible_with(self, peer: Self) -> bool {
        use SocketType::*;
        match self {
            Req => matches!(peer, Rep | Router),
            Rep => matches!(peer, Req | Dealer),
            Dealer => matches!(peer, Rep | Dealer | Router),
            Router => matches!(peer, Req | Dealer | Router),
            Pull => peer == Push,
            Push => peer == Pull,
            Pub => matches!(peer, Sub | XSub),
            Sub => matches!(peer, Pub | XPub),
            XPub => matches!(peer, Sub | XSub),
            XSub => matches!(peer, Pub | XPub),
            Pair => peer == Pair,
        }
    }

    /// Whether libzmq sends an `Identity` property for this type (REQ, DEALER, ROUTER).
    #[must_use]
    pub const fn sends_identity(self) -> bool {
        matches!(self, Self::Req | Self::Dealer | Self::Router)
    }

    /// Checks every `Socket-Type` property in the peer's metadata against us.
    ///
    /// Returns the peer's type (`None` if it sent none: libzmq accepts a missing Socket-Type), or
    /// the error to close with. Every occurrence is checked, as libzmq does.
    pub(crate) fn check_peer(self, peer_metadata: &Metadata) -> Result<Option<Self>, ZmtpError> {
        let mut found = None;
        for value in peer_metadata.get_all(SOCKET_TYPE.as_bytes()) {
            let peer = Self::from_name(value)
                .ok_or_else(|| ZmtpError::UnknownSocketType(WireText::new(value.clone())))?;
            if !self.is_compatible_with(peer) {
                return Err(ZmtpError::IncompatibleSocketType { ours: self, peer });
            }
            found.get_or_insert(peer);
        }
        Ok(found)
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds the properties we send in the handshake, in libzmq's order: `Socket-Type`, then
/// `Identity` (REQ/DEALER/ROUTER only; our routing id, possibly empty: libzmq ROUTERs send an
/// empty one), then the application's `X-` properties sorted by name.
///
/// Application property names must start with `X-` and be at most 255 bytes (libzmq's
/// `ZMQ_METADATA` rules); a name given twice is refused.
pub fn handshake_metadata(
    socket_type: SocketType,
    routing_id: &Bytes,
    properties: &[(impl AsRef<str>, Bytes)],
) -> Result<Metadata, ZmtpError> {
    let mut m = Metadata::new();
    m.push(SOCKET_TYPE, socket_type.name())?;
    if socket_type.sends_identity() {
        if routing_id.len() > 255 {
            return Err(ZmtpError::InvalidProperty {
                name: WireText::from(IDENTITY),
                reason: "routing ids are at most 255 bytes",
            });
        }
        m.push(IDENTITY, routing_id.clone())?;
    }
    let mut extra: Vec<(&str, &Bytes)> = properties.iter().map(|(n, v)| (n.as_ref(), v)).collect();
    extra.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for pair in extra.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(ZmtpError::InvalidProperty {
                name: WireText::new(Bytes::copy_from_slice(pair[0].0.as_bytes())),
                reason: "given more than once",
            });
        }
    }
    for (name, value) in extra {
        if !name.starts_with("X-") {
            return Err(ZmtpError::InvalidProperty {
                name: WireText::new(Bytes::copy_from_slice(name.as_bytes())),
                reason: "application properties must start with \"X-\"",
            });
        }
        m.push(Bytes::copy_from_slice(name.as_bytes()), value.clone())?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    #[test]
    fn names_are_exact() {
        for t in ALL {
            assert_eq!(SocketType::from_name(t.name().as_bytes()), Some(t));
        }
        assert_eq!(SocketType::from_name(b"dealer"), None);
        assert_eq!(SocketType::from_name(b"DEALER "), None);
        assert_eq!(SocketType::from_name(b""), None);
    }

    #[test]
    fn compatibility_table_matches_libzmq() {
        use SocketType::*;
        let ok = |a: SocketType, b: SocketType| a.is_compatible_with(b);
        assert!(ok(Dealer, Rep) && ok(Dealer, Dealer) && ok(Dealer, Router));
        assert!(!ok(Dealer, Req) && !ok(Dealer, Pub) && !ok(Dealer, Pair));
        assert!(ok(Router, Req) && ok(Router, Dealer) && ok(Router, Router));
        assert!(!ok(Router, Rep) && !ok(Router, Sub));
        assert!(ok(Req, Rep) && ok(Req, Router) && !ok(Req, Dealer));
        assert!(ok(Pub, Sub) && ok(Pub, XSub) && !ok(Pub, Pub));
        assert!(ok(Push, Pull) && !ok(Push, Push));
        assert!(ok(Pair, Pair) && !ok(Pair, Dealer));
        // The table is symmetric.
        for a in ALL {
            for b in ALL {
                assert_eq!(ok(a, b), ok(b, a), "{a} {b}");
            }
        }
    }

    #[test]
    fn check_peer_rules() {
        let mut m = Metadata::new();
        assert_eq!(
            SocketType::Router.check_peer(&m),
            Ok(None),
            "missing is accepted"
        );
        m.push("Socket-Type", "DEALER").unwrap();
        assert_eq!(
            SocketType::Router.check_peer(&m),
            Ok(Some(SocketType::Dealer))
        );
        assert_eq!(
            SocketType::Dealer.check_peer(&m),
            Ok(Some(SocketType::Dealer))
        );
        m.push("Socket-Type", "PUB").unwrap();
        assert_eq!(
            SocketType::Router.check_peer(&m),
            Err(ZmtpError::IncompatibleSocketType {
                ours: SocketType::Router,
                peer: SocketType::Pub
            }),
            "every occurrence is checked"
        );
        let mut m = Metadata::new();
        m.push("Socket-Type", "dealer").unwrap();
        assert!(matches!(
            SocketType::Router.check_peer(&m),
            Err(ZmtpError::UnknownSocketType(_))
        ));
        // A lowercase property name is just another property (libzmq does not validate it).
        let mut m = Metadata::new();
        m.push("socket-type", "PUB").unwrap();
        assert_eq!(SocketType::Router.check_peer(&m), Ok(None));
    }

    #[test]
    fn handshake_metadata_order_and_bytes() {
        let m = handshake_metadata(
            SocketType::Dealer,
            &Bytes::from_static(b"dealer-A"),
            &[] as &[(String, Bytes)],
        )
        .unwrap();
        let names: Vec<&[u8]> = m.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, vec![&b"Socket-Type"[..], b"Identity"]);
        let m = handshake_metadata(
            SocketType::Router,
            &Bytes::new(),
            &[
                ("X-Zeta", Bytes::from_static(b"z")),
                ("X-Alpha", Bytes::from_static(b"a")),
                ("X-Beta", Bytes::new()),
            ],
        )
        .unwrap();
        let names: Vec<&[u8]> = m.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(
            names,
            vec![
                &b"Socket-Type"[..],
                b"Identity",
                b"X-Alpha",
                b"X-Beta",
                b"X-Zeta"
            ]
        );
        // PUB sends no Identity.
        let m =
            handshake_metadata(SocketType::Pub, &Bytes::new(), &[] as &[(&str, Bytes)]).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn handshake_metadata_refuses_bad_properties() {
        let no_x = [("Foo", Bytes::new())];
        assert!(handshake_metadata(SocketType::Dealer, &Bytes::new(), &no_x).is_err());
        let dup = [("X-A", Bytes::new()), ("X-A", Bytes::new())];
        assert!(handshake_metadata(SocketType::Dealer, &Bytes::new(), &dup).is_err());
        let long_id = Bytes::from(vec![1u8; 256]);
        assert!(handshake_metadata(SocketType::Dealer, &long_id, &[] as &[(&str, Bytes)]).is_err());
        let long_name = [(String::from("X-") + &"a".repeat(254), Bytes::new())];
        assert!(handshake_metadata(SocketType::Dealer, &Bytes::new(), &long_name).is_err());
    }
}
