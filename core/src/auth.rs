//! Access control: auth levels, the access a category requires, and the check between the two.
//!
//! Every connection carries an [`AuthLevel`] (decided by the embedder's allow function for
//! incoming connections, by the connect options for outgoing ones, and `Admin` for in-process
//! connections), and every command category requires an [`Access`]. When a command arrives the
//! node calls [`check_access`] with what it knows about the caller ([`PeerAccess`]) and the
//! category's requirement; the [`Verdict`] names the error word sent back when access is refused.
//!
//! The check order is OxenMQ's (`proxy_check_auth`): auth level first, then "this node must be a
//! service node", then "the caller must be a service node". A caller that fails several
//! conditions therefore always gets the word for the first one, exactly as an OxenMQ peer would.
//! (The command lookup before it and the missing-reply-tag check after it belong to the registry
//! and the message layer.)

use core::fmt;
use core::str::FromStr;

/// Why an auth level could not be converted strictly.
///
/// Only the strict conversions ([`FromStr`], [`TryFrom<i32>`]) fail; the lenient ones
/// ([`AuthLevel::parse`], [`AuthLevel::from_i32`], [`AuthLevel::from_u8`]) follow OxenMQ and turn
/// anything unrecognised into [`AuthLevel::Denied`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The text is not one of `denied`, `none`, `basic`, `admin` (matching is case-sensitive).
    #[error("unknown auth level name (expected denied, none, basic or admin)")]
    UnknownName,
    /// The number is outside OxenMQ's `AuthLevel` range `0..=3`.
    #[error("auth level {0} is out of range (expected 0..=3)")]
    OutOfRange(i32),
}

/// How much a peer is trusted. Higher levels imply the lower ones.
///
/// The numeric values are OxenMQ's (`denied` = 0 … `admin` = 3). `Denied` is not a level a
/// connection can hold: an allow function returns it to refuse a connection, and [`check_access`]
/// refuses a `Denied` peer whatever the category requires.
// Deliberately exhaustive (no `#[non_exhaustive]`): the ordering of these four levels is the whole
// point of the type and callers compare and match on it; a new level would change the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum AuthLevel {
    /// Refuse the connection (only meaningful as an allow-function answer).
    Denied = 0,
    /// No authentication: any connection may call commands of this level.
    None = 1,
    /// Basic authentication, e.g. a login or a node configured as a public node.
    Basic = 2,
    /// Administrative access, e.g. from localhost or the in-process connection.
    Admin = 3,
}

impl AuthLevel {
    /// Every level, in ascending order.
    pub const ALL: [Self; 4] = [Self::Denied, Self::None, Self::Basic, Self::Admin];

    /// The level's name as OxenMQ writes it: `"denied"`, `"none"`, `"basic"` or `"admin"`.
    ///
    /// This is also the value of the `X-AuthLevel` ZMTP property.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::None => "none",
            Self::Basic => "basic",
            Self::Admin => "admin",
        }
    }

    /// Lenient parse, OxenMQ's `auth_from_string`: `"none"`, `"basic"` and `"admin"` map to their
    /// level and anything else (including `"denied"`, other spellings and other cases) is
    /// [`AuthLevel::Denied`].
    ///
    /// Used for the `X-AuthLevel` metadata of a received message, where an unrecognised value
    /// must never grant access. For strict parsing use [`FromStr`].
    #[must_use]
    pub fn parse(name: &str) -> Self {
        Self::parse_bytes(name.as_bytes())
    }

    /// [`AuthLevel::parse`] for raw metadata bytes; non-UTF-8 input is [`AuthLevel::Denied`].
    #[must_use]
    pub fn parse_bytes(name: &[u8]) -> Self {
        match name {
            b"none" => Self::None,
            b"basic" => Self::Basic,
            b"admin" => Self::Admin,
            _ => Self::Denied,
        }
    }

    /// The level's numeric value in OxenMQ (`0..=3`).
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Lenient conversion from OxenMQ's numeric value: `1..=3` map to their level and every
    /// other value (0 and anything out of range) is [`AuthLevel::Denied`].
    ///
    /// This is how OxenMQ treats an allow function's answer: `auth <= denied || auth > admin`
    /// refuses the connection.
    #[must_use]
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::None,
            2 => Self::Basic,
            3 => Self::Admin,
            _ => Self::Denied,
        }
    }

    /// [`AuthLevel::from_u8`] for a signed value (as a C++ `enum class` can hold): negative and
    /// out-of-range values are [`AuthLevel::Denied`].
    #[must_use]
    pub const fn from_i32(value: i32) -> Self {
        match value {
            1 => Self::None,
            2 => Self::Basic,
            3 => Self::Admin,
            _ => Self::Denied,
        }
    }
}

impl fmt::Display for AuthLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Strict parse: exactly `"denied"`, `"none"`, `"basic"` or `"admin"`; anything else is an error
/// (use it for configuration, where a typo should not silently become `Denied`).
impl FromStr for AuthLevel {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "denied" => Ok(Self::Denied),
            "none" => Ok(Self::None),
            "basic" => Ok(Self::Basic),
            "admin" => Ok(Self::Admin),
            _ => Err(AuthError::UnknownName),
        }
    }
}

/// Strict conversion from OxenMQ's numeric value; out-of-range values are an error rather than
/// `Denied` (see [`AuthLevel::from_i32`] for the lenient form).
impl TryFrom<i32> for AuthLevel {
    type Error = AuthError;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::Denied),
            1..=3 => Ok(Self::from_i32(value)),
            _ => Err(AuthError::OutOfRange(value)),
        }
    }
}

impl From<AuthLevel> for u8 {
    fn from(level: AuthLevel) -> Self {
        level.as_u8()
    }
}

/// What a command category requires of a caller. All conditions must hold.
///
/// The default (`none`, no service-node conditions) lets anyone call. An [`AuthLevel`] converts
/// into an `Access` with both service-node conditions off, as OxenMQ's implicit conversion does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access {
    /// Minimum auth level of the caller's connection.
    pub auth: AuthLevel,
    /// The caller must be a recognised service node.
    pub remote_sn: bool,
    /// This node must be running as a service node.
    pub local_sn: bool,
}

impl Access {
    /// An access requirement with every field given.
    #[must_use]
    pub const fn new(auth: AuthLevel, remote_sn: bool, local_sn: bool) -> Self {
        Self {
            auth,
            remote_sn,
            local_sn,
        }
    }
}

impl Default for Access {
    fn default() -> Self {
        Self::new(AuthLevel::None, false, false)
    }
}

impl From<AuthLevel> for Access {
    fn from(auth: AuthLevel) -> Self {
        Self::new(auth, false, false)
    }
}

/// What the node knows about a caller when a command arrives; also what a handler sees as the
/// message's access (OxenMQ's `Message::access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAccess {
    /// The auth level of the connection the command arrived on.
    pub auth: AuthLevel,
    /// The caller is a service node: its key is in the active set (incoming), or the connection
    /// was made to a service node by key (outgoing).
    pub remote_sn: bool,
    /// This node is running as a service node.
    pub local_sn: bool,
}

impl PeerAccess {
    /// A caller description with every field given.
    #[must_use]
    pub const fn new(auth: AuthLevel, remote_sn: bool, local_sn: bool) -> Self {
        Self {
            auth,
            remote_sn,
            local_sn,
        }
    }
}

impl Default for PeerAccess {
    fn default() -> Self {
        Self::new(AuthLevel::None, false, false)
    }
}

/// The outcome of [`check_access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// The caller may run the command.
    Allowed,
    /// The caller's auth level is below the category's (or the caller is `Denied`).
    Forbidden,
    /// The category needs this node to be a service node, and it is not.
    NotAServiceNode,
    /// The category needs the caller to be a service node, and it is not.
    ForbiddenSn,
}

impl Verdict {
    /// The error word sent back to the caller, or `None` when access is allowed.
    #[must_use]
    pub const fn wire_word(self) -> Option<&'static str> {
        match self {
            Self::Allowed => None,
            Self::Forbidden => Some("FORBIDDEN"),
            Self::NotAServiceNode => Some("NOT_A_SERVICE_NODE"),
            Self::ForbiddenSn => Some("FORBIDDEN_SN"),
        }
    }

    /// Whether the caller may run the command.
    #[must_use]
    pub const fn is_allowed(self) -> bool {
        matches!(self, Self::Allowed)
    }
}

/// Decides whether `peer` may call a command whose category requires `required`.
///
/// Conditions are checked in OxenMQ's order and the first failure decides the verdict:
/// 1. auth level: the peer's level must be at least the category's, and a `Denied` peer is
///    refused whatever the category says → [`Verdict::Forbidden`];
/// 2. `local_sn`: this node must be a service node → [`Verdict::NotAServiceNode`];
/// 3. `remote_sn`: the caller must be a service node → [`Verdict::ForbiddenSn`].
#[must_use]
pub fn check_access(peer: &PeerAccess, required: &Access) -> Verdict {
    // A Denied connection should never have been accepted; refusing it here as well means a
    // category that (oddly) requires only `Denied` still never admits one.
    if peer.auth == AuthLevel::Denied || peer.auth < required.auth {
        Verdict::Forbidden
    } else if required.local_sn && !peer.local_sn {
        Verdict::NotAServiceNode
    } else if required.remote_sn && !peer.remote_sn {
        Verdict::ForbiddenSn
    } else {
        Verdict::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const BOOLS: [bool; 2] = [false, true];

    #[test]
    fn levels_are_ordered() {
        assert!(AuthLevel::Denied < AuthLevel::None);
        assert!(AuthLevel::None < AuthLevel::Basic);
        assert!(AuthLevel::Basic < AuthLevel::Admin);
        let mut sorted = [
            AuthLevel::Admin,
            AuthLevel::Denied,
            AuthLevel::Basic,
            AuthLevel::None,
        ];
        sorted.sort();
        assert_eq!(sorted, AuthLevel::ALL);
    }

    #[test]
    fn names_match_oxenmq() {
        let names: [&str; 4] = AuthLevel::ALL.map(AuthLevel::as_str);
        assert_eq!(names, ["denied", "none", "basic", "admin"]);
        for level in AuthLevel::ALL {
            assert_eq!(level.to_string(), level.as_str());
        }
    }

    #[test]
    fn lenient_parse_follows_auth_from_string() {
        assert_eq!(AuthLevel::parse("none"), AuthLevel::None);
        assert_eq!(AuthLevel::parse("basic"), AuthLevel::Basic);
        assert_eq!(AuthLevel::parse("admin"), AuthLevel::Admin);
        assert_eq!(AuthLevel::parse("denied"), AuthLevel::Denied);
        for junk in ["", "Admin", "ADMIN", "admin ", " none", "root", "(unknown)"] {
            assert_eq!(AuthLevel::parse(junk), AuthLevel::Denied, "{junk:?}");
        }
        assert_eq!(AuthLevel::parse_bytes(b"\xffadmin"), AuthLevel::Denied);
        assert_eq!(AuthLevel::parse_bytes(b"basic"), AuthLevel::Basic);
    }

    #[test]
    fn display_and_parse_round_trip() {
        for level in AuthLevel::ALL {
            assert_eq!(AuthLevel::parse(&level.to_string()), level);
            assert_eq!(level.to_string().parse::<AuthLevel>(), Ok(level));
        }
    }

    #[test]
    fn strict_parse_rejects_unknown_names() {
        assert_eq!("Basic".parse::<AuthLevel>(), Err(AuthError::UnknownName));
        assert_eq!("".parse::<AuthLevel>(), Err(AuthError::UnknownName));
        assert_eq!(
            AuthError::UnknownName.to_string(),
            "unknown auth level name (expected denied, none, basic or admin)"
        );
    }

    #[test]
    fn numeric_values_match_oxenmq_and_out_of_range_is_denied() {
        assert_eq!(AuthLevel::ALL.map(AuthLevel::as_u8), [0, 1, 2, 3]);
        for level in AuthLevel::ALL {
            assert_eq!(AuthLevel::from_u8(level.as_u8()), level);
            assert_eq!(AuthLevel::from_i32(i32::from(level.as_u8())), level);
            assert_eq!(AuthLevel::try_from(i32::from(u8::from(level))), Ok(level));
        }
        for v in [4u8, 5, 200, u8::MAX] {
            assert_eq!(AuthLevel::from_u8(v), AuthLevel::Denied);
        }
        for v in [-1, 4, i32::MIN, i32::MAX] {
            assert_eq!(AuthLevel::from_i32(v), AuthLevel::Denied);
            assert_eq!(AuthLevel::try_from(v), Err(AuthError::OutOfRange(v)));
        }
        assert_eq!(
            AuthError::OutOfRange(-1).to_string(),
            "auth level -1 is out of range (expected 0..=3)"
        );
    }

    #[test]
    fn access_defaults_and_conversion() {
        assert_eq!(
            Access::default(),
            Access {
                auth: AuthLevel::None,
                remote_sn: false,
                local_sn: false
            }
        );
        assert_eq!(
            Access::from(AuthLevel::Admin),
            Access::new(AuthLevel::Admin, false, false)
        );
        assert_eq!(
            PeerAccess::default(),
            PeerAccess::new(AuthLevel::None, false, false)
        );
    }

    #[test]
    fn wire_words() {
        assert_eq!(Verdict::Allowed.wire_word(), None);
        assert_eq!(Verdict::Forbidden.wire_word(), Some("FORBIDDEN"));
        assert_eq!(
            Verdict::NotAServiceNode.wire_word(),
            Some("NOT_A_SERVICE_NODE")
        );
        assert_eq!(Verdict::ForbiddenSn.wire_word(), Some("FORBIDDEN_SN"));
        assert!(Verdict::Allowed.is_allowed());
        assert!(!Verdict::ForbiddenSn.is_allowed());
    }

    #[test]
    fn auth_level_must_be_at_least_the_categorys() {
        let need_basic = Access::from(AuthLevel::Basic);
        let peer = |auth| PeerAccess::new(auth, false, false);
        assert_eq!(
            check_access(&peer(AuthLevel::None), &need_basic),
            Verdict::Forbidden
        );
        assert_eq!(
            check_access(&peer(AuthLevel::Basic), &need_basic),
            Verdict::Allowed
        );
        assert_eq!(
            check_access(&peer(AuthLevel::Admin), &need_basic),
            Verdict::Allowed
        );
        assert_eq!(
            check_access(&peer(AuthLevel::Basic), &Access::from(AuthLevel::Admin)),
            Verdict::Forbidden
        );
    }

    #[test]
    fn denied_peer_is_always_forbidden() {
        for local in BOOLS {
            for remote in BOOLS {
                let peer = PeerAccess::new(AuthLevel::Denied, remote, local);
                for auth in AuthLevel::ALL {
                    let required = Access::new(auth, false, false);
                    assert_eq!(check_access(&peer, &required), Verdict::Forbidden);
                }
            }
        }
        // A category requiring only `Denied` admits every real level.
        let open = Access::from(AuthLevel::Denied);
        assert!(check_access(&PeerAccess::default(), &open).is_allowed());
    }

    #[test]
    fn local_sn_requires_this_node_to_be_an_sn() {
        let required = Access::new(AuthLevel::None, false, true);
        let not_sn = PeerAccess::new(AuthLevel::Admin, true, false);
        let sn = PeerAccess::new(AuthLevel::None, false, true);
        assert_eq!(check_access(&not_sn, &required), Verdict::NotAServiceNode);
        assert_eq!(check_access(&sn, &required), Verdict::Allowed);
    }

    #[test]
    fn remote_sn_requires_the_caller_to_be_an_sn() {
        let required = Access::new(AuthLevel::None, true, false);
        let client = PeerAccess::new(AuthLevel::Admin, false, true);
        let sn = PeerAccess::new(AuthLevel::None, true, false);
        assert_eq!(check_access(&client, &required), Verdict::ForbiddenSn);
        assert_eq!(check_access(&sn, &required), Verdict::Allowed);
    }

    #[test]
    fn auth_failure_beats_remote_sn_failure() {
        let required = Access::new(AuthLevel::Basic, true, false);
        let peer = PeerAccess::new(AuthLevel::None, false, false);
        assert_eq!(check_access(&peer, &required), Verdict::Forbidden);
    }

    #[test]
    fn auth_failure_beats_local_sn_failure() {
        let required = Access::new(AuthLevel::Admin, true, true);
        let peer = PeerAccess::new(AuthLevel::Basic, false, false);
        assert_eq!(check_access(&peer, &required), Verdict::Forbidden);
    }

    #[test]
    fn local_sn_failure_beats_remote_sn_failure() {
        let required = Access::new(AuthLevel::None, true, true);
        let peer = PeerAccess::new(AuthLevel::None, false, false);
        assert_eq!(check_access(&peer, &required), Verdict::NotAServiceNode);
    }

    /// Every combination of peer and requirement against an independently written model: the
    /// first failing condition in OxenMQ's order names the verdict.
    #[test]
    fn exhaustive_against_model() {
        let mut seen = [false; 4];
        for pa in AuthLevel::ALL {
            for pr in BOOLS {
                for pl in BOOLS {
                    for ra in AuthLevel::ALL {
                        for rr in BOOLS {
                            for rl in BOOLS {
                                let conditions = [
                                    (
                                        pa.as_u8() >= ra.as_u8() && pa.as_u8() > 0,
                                        Verdict::Forbidden,
                                    ),
                                    (pl || !rl, Verdict::NotAServiceNode),
                                    (pr || !rr, Verdict::ForbiddenSn),
                                ];
                                let expected = conditions
                                    .iter()
                                    .find(|(ok, _)| !ok)
                                    .map_or(Verdict::Allowed, |&(_, v)| v);
                                let got = check_access(
                                    &PeerAccess::new(pa, pr, pl),
                                    &Access::new(ra, rr, rl),
                                );
                                assert_eq!(got, expected, "{pa} {pr} {pl} / {ra} {rr} {rl}");
                                seen[match got {
                                    Verdict::Allowed => 0,
                                    Verdict::Forbidden => 1,
                                    Verdict::NotAServiceNode => 2,
                                    Verdict::ForbiddenSn => 3,
                                }] = true;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen, [true; 4], "every verdict is reachable");
    }
}
