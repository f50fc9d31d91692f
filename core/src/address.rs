//! Remote addresses in OxenMQ's text format: where to connect, and which key to expect there.
//!
//! A plain ZeroMQ endpoint (`tcp://HOST:PORT`, `ipc://PATH`) does not say whether a connection is
//! encrypted or which server key to expect, so OxenMQ extends it. [`Address`] parses and writes
//! every form OxenMQ's `address` class does, with the same rules and the same error texts:
//!
//! | Text | [`Protocol`] |
//! |---|---|
//! | `tcp://HOST:PORT` | [`Tcp`](Protocol::Tcp) |
//! | `curve://HOST:PORT/PUBKEY`, `tcp+curve://HOST:PORT/PUBKEY` | [`TcpCurve`](Protocol::TcpCurve) |
//! | `ipc://PATH` (absolute `ipc:///x`, relative `ipc://x`, `ipc://../x`) | [`Ipc`](Protocol::Ipc) |
//! | `ipc+curve://PATH/PUBKEY` | [`IpcCurve`](Protocol::IpcCurve) |
//! | `TCP://HOST:PORT`, `CURVE://HOST:PORT/PUBKEY` (QR-code form) | `Tcp`, `TcpCurve` |
//!
//! `HOST` is a name, an IPv4 address or a bracketed IPv6 address (`[::1]`). `PUBKEY` is 64 hex
//! digits (either case), 52 z-base-32 characters (either case) or 43 base64 characters optionally
//! followed by one `=`. The QR form exists so an address fits QR's compact alphanumeric mode: it
//! allows only `A-Z 0-9 $ : / . -`, writes IPv6 as `$…$`, takes the key as hex or z-base-32 (never
//! base64, whose value changes with case), and its host is lower-cased when parsed.
//!
//! Like OxenMQ, parsing checks the shape of an address, not whether a host name resolves or a
//! socket path exists. Unlike OxenMQ, it also refuses a few shapes OxenMQ accepts but that can
//! never be connected to (empty IPv6 brackets, an empty `ipc+curve://` socket path, a base64 key
//! that decodes to fewer than 32 bytes); each such case is noted on its [`AddressError`] variant.
//!
//! ```
//! use lokimq_core::address::{Address, Encoding, Protocol};
//!
//! let key = "6fi4kseo88aeupbkopyzknjo1odw4dcuxjh6kx1hhhax1tzbjqry";
//! let a: Address = format!("curve://example.com:4567/{key}").parse()?;
//! assert_eq!(a.protocol(), Protocol::TcpCurve);
//! assert_eq!(a.zmq_address(), "tcp://example.com:4567");
//! assert_eq!(
//!     a.qr_address()?,
//!     format!("CURVE://EXAMPLE.COM:4567/{}", key.to_ascii_uppercase())
//! );
//! assert_eq!(a, Address::parse(&a.full_address(Encoding::Hex))?);
//! # Ok::<(), lokimq_core::address::AddressError>(())
//! ```

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::cmp::Ordering;
use core::fmt::{self, Write as _};
use core::hash::{Hash, Hasher};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

use crate::encoding::{base32z, base64, hex};
use crate::keys::{KEY_LEN, PublicKey};

/// Transport and encryption of an address.
///
/// Exhaustive on purpose: it is the product of OxenMQ's two transports and two security modes, and
/// a driver must handle every combination when it dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Plaintext TCP.
    Tcp,
    /// CurveZMQ-encrypted TCP.
    TcpCurve,
    /// Plaintext unix-domain socket.
    Ipc,
    /// CurveZMQ-encrypted unix-domain socket.
    IpcCurve,
}

impl Protocol {
    /// Whether the connection is CurveZMQ-encrypted.
    #[must_use]
    pub const fn is_curve(self) -> bool {
        matches!(self, Self::TcpCurve | Self::IpcCurve)
    }

    /// Whether the transport is TCP (with or without encryption).
    #[must_use]
    pub const fn is_tcp(self) -> bool {
        matches!(self, Self::Tcp | Self::TcpCurve)
    }

    /// Whether the transport is a unix-domain socket (with or without encryption).
    #[must_use]
    pub const fn is_ipc(self) -> bool {
        !self.is_tcp()
    }

    /// The scheme [`Address::full_address`] writes for this protocol.
    #[must_use]
    pub const fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::TcpCurve => "curve",
            Self::Ipc => "ipc",
            Self::IpcCurve => "ipc+curve",
        }
    }
}

/// How [`Address::full_address`] and [`Address::encode_pubkey`] write a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// 64 lower-case hex digits.
    Hex,
    /// 52 lower-case z-base-32 characters (OxenMQ's default).
    #[default]
    Base32z,
    /// 43 base64 characters, without the trailing `=`.
    Base64,
    /// 52 upper-case z-base-32 characters, for QR codes.
    Base32zUpper,
}

impl Encoding {
    /// Writes `key` in this encoding.
    #[must_use]
    pub fn encode(self, key: &PublicKey) -> String {
        match self {
            Self::Hex => hex::encode(key),
            Self::Base32z => base32z::encode(key),
            Self::Base64 => base64::encode_unpadded(key),
            Self::Base32zUpper => {
                let mut text = base32z::encode(key);
                text.make_ascii_uppercase();
                text
            }
        }
    }
}

/// Why an address could not be parsed, changed or written. Display texts are OxenMQ's, except
/// where a variant's documentation says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// There is no `://`, or nothing before it.
    #[error("Invalid address: no protocol found")]
    NoProtocol,
    /// Nothing follows `://`.
    #[error("Invalid address: no value specified after protocol")]
    NoValue,
    /// The scheme is none of `tcp`, `curve`, `tcp+curve`, `ipc`, `ipc+curve`, `TCP`, `CURVE`.
    #[error("Invalid protocol '{0}'")]
    InvalidProtocol(String),
    /// A `TCP://` or `CURVE://` address holds a character outside `A-Z 0-9 $ : / . -`.
    #[error("Found non-QR-alphanumeric value in QR TCP:// or CURVE:// address")]
    NonQrCharacter,
    /// An IPv6 host runs to the end of the text without a closing bracket.
    #[error("Could not find terminating ] while parsing an IPv6 address")]
    UnterminatedIpv6,
    /// An IPv6 host holds a character that is neither an address character nor the closing
    /// bracket (`]`, or `$` in the QR form).
    #[error("Expected {expected} to close IPv6 address but found {found}")]
    UnclosedIpv6 {
        /// The closing bracket the form requires.
        expected: char,
        /// The character found instead.
        found: char,
    },
    /// A non-IPv6 host is not followed by `:`.
    #[error("Could not determine host (no following ':port' found)")]
    NoHostPort,
    /// The host is empty. OxenMQ also accepts an empty IPv6 host (`[]`); we reject it here too.
    #[error("Host cannot be empty")]
    EmptyHost,
    /// The host is not followed by `:` and at least one more character.
    #[error("Could not find :port in address string")]
    MissingPort,
    /// The port does not start with a digit.
    #[error("Could not find numeric port in address string")]
    NonNumericPort,
    /// The port is 0.
    #[error("Could not parse numeric port in address string")]
    ZeroPort,
    /// The port is above 65535.
    #[error("Invalid port: port must be in range 1-65535")]
    PortOutOfRange,
    /// A curve TCP address has no `/` after its port, or too few characters for a key.
    #[error("Invalid address: expected /PUBKEY after port")]
    ExpectedPubkey,
    /// The text after `/` starts with no valid key encoding.
    #[error("No pubkey found")]
    NoPubkey,
    /// Something follows the key of a curve TCP address.
    #[error("Invalid address: found unexpected trailing data after pubkey")]
    TrailingAfterPubkey,
    /// Something follows the port of a plaintext TCP address.
    #[error("Invalid address: found unexpected trailing data after port")]
    TrailingAfterPort,
    /// An `ipc+curve://` address does not end in `/PUBKEY`. (OxenMQ's text misspells the scheme
    /// as `icp+curve://`; this one spells it right.) Also returned for a 44-character base64 key
    /// ending in `==`, which OxenMQ accepts as a 31-byte key.
    #[error("ipc+curve:// requires a trailing /PUBKEY value, got: {0}")]
    IpcMissingPubkey(String),
    /// An `ipc+curve://` address has an empty socket path (`ipc+curve:///PUBKEY`). Not in
    /// OxenMQ, which accepts it and then cannot connect; the text is ours.
    #[error("Invalid address: ipc+curve:// socket path cannot be empty")]
    EmptySocketPath,
    /// [`Address::set_pubkey_bytes`] was given something other than 0 or 32 bytes.
    #[error("Invalid pubkey passed to set_pubkey(): require 0- or 32-byte pubkey")]
    InvalidPubkeyLength {
        /// The length given.
        len: usize,
    },
    /// [`Address::qr_address`] was called on a unix-socket address.
    #[error("Cannot construct a QR-friendly address for a non-TCP address")]
    QrNotTcp,
    /// [`Address::qr_address`] was called on an address with an empty host.
    #[error("Cannot construct a QR-friendly address with an empty TCP host")]
    QrEmptyHost,
    /// [`Address::qr_address`] was called on a host holding characters the QR form cannot carry
    /// (e.g. `_`). Not in OxenMQ, which writes such an address anyway and then cannot parse it
    /// back; the text is ours.
    #[error(
        "Cannot construct a QR-friendly address: host contains characters outside A-Z 0-9 $ : / . -"
    )]
    QrUnencodableHost,
}

/// Where the address points, with only the fields its transport uses.
#[derive(Clone)]
enum Target {
    Tcp { host: String, port: u16 },
    Ipc { path: String },
}

/// A remote endpoint in OxenMQ's format: TCP host and port or unix socket path, plus the server's
/// public key when the connection is CurveZMQ-encrypted.
///
/// The protocol is curve exactly when a key is present, so an address never carries a key it will
/// not use nor lacks one it needs. Equality, ordering and hashing look only at the fields the
/// protocol uses (protocol, then host and port or socket path, then key), so two spellings of the
/// same key compare equal, but `foo.sock` and `./foo.sock`, or two spellings of one IP address,
/// do not. `Display` writes [`full_address`](Self::full_address) with z-base-32 keys.
#[derive(Clone)]
pub struct Address {
    target: Target,
    pubkey: Option<PublicKey>,
    /// How the key was written when the address was parsed, so that messages about the
    /// address show it the way the user wrote it (z-base-32, OxenMQ's, otherwise). Not part of
    /// the address's identity: equality and ordering ignore it.
    key_encoding: Encoding,
}

impl Address {
    /// A plaintext TCP address. The host is not validated (as in OxenMQ), except that a bare IPv6
    /// address is wrapped in the brackets the text form needs (`::1` becomes `[::1]`).
    #[must_use]
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        let mut host = host.into();
        if Ipv6Addr::from_str(&host).is_ok() {
            host = alloc::format!("[{host}]");
        }
        Self {
            target: Target::Tcp { host, port },
            pubkey: None,
            key_encoding: Encoding::Base32z,
        }
    }

    /// A CurveZMQ TCP address expecting the server key `pubkey`; the host is treated as in
    /// [`tcp`](Self::tcp).
    #[must_use]
    pub fn tcp_curve(host: impl Into<String>, port: u16, pubkey: PublicKey) -> Self {
        Self::tcp(host, port).with_pubkey(Some(pubkey))
    }

    /// A plaintext unix-socket address. The path is not validated.
    #[must_use]
    pub fn ipc(path: impl Into<String>) -> Self {
        Self {
            target: Target::Ipc { path: path.into() },
            pubkey: None,
            key_encoding: Encoding::Base32z,
        }
    }

    /// A CurveZMQ unix-socket address expecting the server key `pubkey`.
    #[must_use]
    pub fn ipc_curve(path: impl Into<String>, pubkey: PublicKey) -> Self {
        Self::ipc(path).with_pubkey(Some(pubkey))
    }

    /// A plaintext TCP address for a socket address (IPv6 written in brackets).
    #[must_use]
    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        let host = match addr.ip() {
            IpAddr::V4(ip) => alloc::format!("{ip}"),
            IpAddr::V6(ip) => alloc::format!("[{ip}]"),
        };
        Self {
            target: Target::Tcp {
                host,
                port: addr.port(),
            },
            pubkey: None,
            key_encoding: Encoding::Base32z,
        }
    }

    /// Parses any of the forms in the [module docs](self).
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let (scheme, rest) = match text.find("://") {
            None | Some(0) => return Err(AddressError::NoProtocol),
            Some(end) => (&text[..end], &text[end + 3..]),
        };
        if rest.is_empty() {
            return Err(AddressError::NoValue);
        }
        let (protocol, qr) = match scheme {
            "tcp" => (Protocol::Tcp, false),
            "tcp+curve" | "curve" => (Protocol::TcpCurve, false),
            "ipc" => (Protocol::Ipc, false),
            "ipc+curve" => (Protocol::IpcCurve, false),
            "TCP" => (Protocol::Tcp, true),
            "CURVE" => (Protocol::TcpCurve, true),
            other => return Err(AddressError::InvalidProtocol(other.to_owned())),
        };
        if qr && !rest.bytes().all(is_qr_char) {
            return Err(AddressError::NonQrCharacter);
        }
        match protocol {
            Protocol::Tcp | Protocol::TcpCurve => parse_tcp(rest, qr, protocol.is_curve()),
            Protocol::Ipc => Ok(Self::ipc(rest)),
            Protocol::IpcCurve => parse_ipc_curve(rest),
        }
    }

    /// OxenMQ's two-argument constructor: parses `text`, then replaces its key (if any) with
    /// `pubkey` as [`set_pubkey_bytes`](Self::set_pubkey_bytes) does.
    pub fn parse_with_pubkey(text: &str, pubkey: &[u8]) -> Result<Self, AddressError> {
        let mut address = Self::parse(text)?;
        address.set_pubkey_bytes(pubkey)?;
        Ok(address)
    }

    /// This address with `pubkey` as its key: `Some` makes it a curve address, `None` a plaintext
    /// one.
    #[must_use]
    pub fn with_pubkey(mut self, pubkey: Option<PublicKey>) -> Self {
        self.pubkey = pubkey;
        self
    }

    /// Replaces the key: `Some` makes the address a curve address, `None` a plaintext one.
    pub fn set_pubkey(&mut self, pubkey: Option<PublicKey>) -> &mut Self {
        self.pubkey = pubkey;
        self
    }

    /// Replaces the key from raw bytes: 32 bytes set it (curve), 0 bytes remove it (plaintext).
    pub fn set_pubkey_bytes(&mut self, pubkey: &[u8]) -> Result<&mut Self, AddressError> {
        let key = match pubkey.len() {
            0 => None,
            KEY_LEN => {
                let mut bytes = [0; KEY_LEN];
                bytes.copy_from_slice(pubkey);
                Some(PublicKey::from_bytes(bytes))
            }
            len => return Err(AddressError::InvalidPubkeyLength { len }),
        };
        Ok(self.set_pubkey(key))
    }

    /// The protocol.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        match (&self.target, self.pubkey.is_some()) {
            (Target::Tcp { .. }, false) => Protocol::Tcp,
            (Target::Tcp { .. }, true) => Protocol::TcpCurve,
            (Target::Ipc { .. }, false) => Protocol::Ipc,
            (Target::Ipc { .. }, true) => Protocol::IpcCurve,
        }
    }

    /// Whether the connection is CurveZMQ-encrypted (OxenMQ's `curve()`).
    #[must_use]
    pub fn is_curve(&self) -> bool {
        self.pubkey.is_some()
    }

    /// Whether the transport is TCP (OxenMQ's `tcp()`).
    #[must_use]
    pub fn is_tcp(&self) -> bool {
        matches!(self.target, Target::Tcp { .. })
    }

    /// Whether the transport is a unix socket (OxenMQ's `ipc()`).
    #[must_use]
    pub fn is_ipc(&self) -> bool {
        matches!(self.target, Target::Ipc { .. })
    }

    /// The TCP host as written in the address (IPv6 in brackets); `None` for a unix socket.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        match &self.target {
            Target::Tcp { host, .. } => Some(host),
            Target::Ipc { .. } => None,
        }
    }

    /// The TCP port; `None` for a unix socket.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        match self.target {
            Target::Tcp { port, .. } => Some(port),
            Target::Ipc { .. } => None,
        }
    }

    /// The unix socket path; `None` for TCP.
    #[must_use]
    pub fn socket(&self) -> Option<&str> {
        match &self.target {
            Target::Ipc { path } => Some(path),
            Target::Tcp { .. } => None,
        }
    }

    /// The server key a curve address expects; `None` for plaintext.
    #[must_use]
    pub fn pubkey(&self) -> Option<&PublicKey> {
        self.pubkey.as_ref()
    }

    /// The host as an IP address, if it is an IP literal (IPv4, or IPv6 in brackets) rather than
    /// a name.
    #[must_use]
    pub fn host_ip(&self) -> Option<IpAddr> {
        let host = self.host()?;
        match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(inner) => Ipv6Addr::from_str(inner).ok().map(IpAddr::V6),
            None => Ipv4Addr::from_str(host).ok().map(IpAddr::V4),
        }
    }

    /// The socket address to dial, if this is TCP to an IP literal.
    #[must_use]
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.host_ip()?, self.port()?))
    }

    /// The key written in `encoding`; `None` for plaintext.
    #[must_use]
    pub fn encode_pubkey(&self, encoding: Encoding) -> Option<String> {
        self.pubkey.as_ref().map(|key| encoding.encode(key))
    }

    /// The plain ZeroMQ endpoint, without key: `tcp://HOST:PORT` or `ipc://PATH`.
    #[must_use]
    pub fn zmq_address(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = match &self.target {
            Target::Tcp { host, port } => write!(out, "tcp://{host}:{port}"),
            Target::Ipc { path } => write!(out, "ipc://{path}"),
        };
        out
    }

    /// The full address, which [`parse`](Self::parse) reads back: `tcp://HOST:PORT`,
    /// `curve://HOST:PORT/PUBKEY`, `ipc://PATH` or `ipc+curve://PATH/PUBKEY`, the key written in
    /// `encoding`.
    #[must_use]
    pub fn full_address(&self, encoding: Encoding) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_full(&mut out, encoding);
        out
    }

    fn write_full(&self, out: &mut impl fmt::Write, encoding: Encoding) -> fmt::Result {
        out.write_str(self.protocol().scheme())?;
        out.write_str("://")?;
        match &self.target {
            Target::Tcp { host, port } => write!(out, "{host}:{port}")?,
            Target::Ipc { path } => out.write_str(path)?,
        }
        if let Some(key) = &self.pubkey {
            out.write_char('/')?;
            out.write_str(&encoding.encode(key))?;
        }
        Ok(())
    }

    /// The QR-code form: `TCP://HOST:PORT` or `CURVE://HOST:PORT/PUBKEY`, all upper case, IPv6
    /// written `$…$`, key in upper-case z-base-32. Only for TCP addresses with a non-empty host
    /// made of characters the form can carry.
    pub fn qr_address(&self) -> Result<String, AddressError> {
        let Target::Tcp { host, port } = &self.target else {
            return Err(AddressError::QrNotTcp);
        };
        if host.is_empty() {
            return Err(AddressError::QrEmptyHost);
        }
        let mut upper = host.to_ascii_uppercase();
        if let Some(inner) = upper.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            upper = alloc::format!("${inner}$");
        }
        if !upper.bytes().all(is_qr_char) {
            return Err(AddressError::QrUnencodableHost);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = match &self.pubkey {
            None => write!(out, "TCP://{upper}:{port}"),
            Some(key) => write!(
                out,
                "CURVE://{upper}:{port}/{}",
                Encoding::Base32zUpper.encode(key)
            ),
        };
        Ok(out)
    }

    /// The fields that identify the address, in comparison order. `0` stands in for the port of
    /// a unix socket, which has none.
    fn key(&self) -> (Protocol, &str, u16, Option<&PublicKey>) {
        let (place, port) = match &self.target {
            Target::Tcp { host, port } => (host.as_str(), *port),
            Target::Ipc { path } => (path.as_str(), 0),
        };
        (self.protocol(), place, port, self.pubkey.as_ref())
    }
}

/// The characters QR alphanumeric mode shares with addresses (it also has space, `%`, `*`, `+`,
/// which no address needs).
const fn is_qr_char(c: u8) -> bool {
    matches!(c, b'A'..=b'Z' | b'0'..=b'9' | b'$' | b':' | b'/' | b'.' | b'-')
}

/// Parses `HOST:PORT` or `HOST:PORT/PUBKEY` (after the scheme).
fn parse_tcp(text: &str, qr: bool, curve: bool) -> Result<Address, AddressError> {
    let bytes = text.as_bytes();
    let opens_ipv6 = |c: u8| c == b'[' || (qr && c == b'$');
    let (mut host, rest) = if bytes.first().copied().is_some_and(opens_ipv6) {
        // As in OxenMQ this is a lexical check only; `host_ip` does the real IPv6 parse.
        let close = bytes
            .iter()
            .skip(1)
            .position(|&c| !(c == b':' || c == b'.' || c.is_ascii_hexdigit()))
            .map(|p| p + 1)
            .ok_or(AddressError::UnterminatedIpv6)?;
        let closes_ipv6 = bytes[close] == b']' || (qr && bytes[close] == b'$');
        if !closes_ipv6 {
            return Err(AddressError::UnclosedIpv6 {
                expected: if qr { '$' } else { ']' },
                // Every byte before `close` is ASCII, so `close` is on a character boundary.
                found: text[close..].chars().next().unwrap_or('\u{fffd}'),
            });
        }
        if close == 1 {
            return Err(AddressError::EmptyHost);
        }
        let host = alloc::format!("[{}]", &text[1..close]);
        (host, &text[close + 1..])
    } else {
        match text.find(':') {
            None => return Err(AddressError::NoHostPort),
            Some(0) => return Err(AddressError::EmptyHost),
            Some(colon) => (text[..colon].to_owned(), &text[colon..]),
        }
    };
    if qr {
        host.make_ascii_lowercase();
    }

    let rest = match rest.strip_prefix(':') {
        Some(after) if !after.is_empty() => after,
        _ => return Err(AddressError::MissingPort),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(AddressError::NonNumericPort);
    }
    // Saturate well above the range so arbitrarily long digit strings cannot overflow.
    let value = rest.as_bytes()[..digits].iter().fold(0u32, |acc, &d| {
        acc.saturating_mul(10)
            .saturating_add(u32::from(d - b'0'))
            .min(1 << 20)
    });
    if value == 0 {
        return Err(AddressError::ZeroPort);
    }
    let port = u16::try_from(value).map_err(|_| AddressError::PortOutOfRange)?;
    let rest = &rest[digits..];

    let pubkey = if curve {
        // The shortest key the form allows: base64 (43) normally, z-base-32 (52) in QR form.
        let min_key = if qr { 52 } else { 43 };
        let key_text = match rest.strip_prefix('/') {
            Some(key_text) if key_text.len() >= min_key => key_text,
            _ => return Err(AddressError::ExpectedPubkey),
        };
        let (key, encoding, trailing) = decode_leading_pubkey(key_text, qr)?;
        if !trailing.is_empty() {
            return Err(AddressError::TrailingAfterPubkey);
        }
        Some((key, encoding))
    } else {
        if !rest.is_empty() {
            return Err(AddressError::TrailingAfterPort);
        }
        None
    };
    Ok(Address {
        target: Target::Tcp { host, port },
        pubkey: pubkey.map(|(k, _)| k),
        key_encoding: pubkey.map_or(Encoding::Base32z, |(_, e)| e),
    })
}

/// Decodes the key at the start of `text` (hex, then z-base-32, then base64 unless `qr`, as
/// OxenMQ tries them) and returns it with the text after it.
fn decode_leading_pubkey(
    text: &str,
    qr: bool,
) -> Result<(PublicKey, Encoding, &str), AddressError> {
    // `PublicKey`'s `FromStr` picks the encoding by length, so parsing a 64-, 52- or 43-byte
    // prefix tries exactly hex, z-base-32 or base64. `str::get` returns `None` off a character
    // boundary, which can only be a non-key anyway.
    let try_prefix = |len: usize, encoding: Encoding| {
        let key = text.get(..len)?.parse::<PublicKey>().ok()?;
        Some((key, encoding, &text[len..]))
    };
    if let Some(found) = try_prefix(64, Encoding::Hex).or_else(|| try_prefix(52, Encoding::Base32z))
    {
        return Ok(found);
    }
    if !qr {
        if let Some((key, encoding, rest)) = try_prefix(43, Encoding::Base64) {
            return Ok((key, encoding, rest.strip_prefix('=').unwrap_or(rest)));
        }
    }
    Err(AddressError::NoPubkey)
}

/// Parses `PATH/PUBKEY` (after the scheme): the key is the trailing component, tried as hex,
/// z-base-32, then base64 (with or without its `=`).
fn parse_ipc_curve(text: &str) -> Result<Address, AddressError> {
    let split = |len: usize, decode: fn(&str) -> Option<[u8; KEY_LEN]>| {
        let sep = text.len().checked_sub(len + 1)?;
        if text.as_bytes()[sep] != b'/' {
            return None;
        }
        let key = decode(text.get(sep + 1..)?)?;
        Some((&text[..sep], PublicKey::from_bytes(key)))
    };
    let b64_len = if text.ends_with('=') { 44 } else { 43 };
    let (path, key, encoding) = split(64, |t| hex::decode_array(t).ok())
        .map(|(p, k)| (p, k, Encoding::Hex))
        .or_else(|| {
            split(52, |t| base32z::decode_array(t).ok()).map(|(p, k)| (p, k, Encoding::Base32z))
        })
        .or_else(|| {
            split(b64_len, |t| base64::decode_array(t).ok()).map(|(p, k)| (p, k, Encoding::Base64))
        })
        .ok_or_else(|| AddressError::IpcMissingPubkey(text.to_owned()))?;
    if path.is_empty() {
        return Err(AddressError::EmptySocketPath);
    }
    let mut address = Address::ipc_curve(path, key);
    address.key_encoding = encoding;
    Ok(address)
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<&str> for Address {
    type Error = AddressError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Self::from_socket_addr(addr)
    }
}

impl fmt::Display for Address {
    /// The full address, with the key written as it was parsed (z-base-32, OxenMQ's usual
    /// form, for an address built in code). [`full_address`](Address::full_address) picks an
    /// encoding explicitly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_full(f, self.key_encoding)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(")?;
        self.write_full(f, self.key_encoding)?;
        f.write_str(")")
    }
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Address {}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Address {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // OxenMQ's own address-test key, in every spelling its tests use.
    use crate::encoding::test_key::{PK, PK_B32Z, PK_B64_UNPADDED as PK_B64, PK_HEX};
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use alloc::{format, vec};
    use core::hash::BuildHasher;
    use proptest::prelude::*;
    use std::collections::hash_map::RandomState;

    const PK_HEX_UPPER: &str = "F16BA5591039F089B42A834175093094074D0D937A79E53E5CE730F946E14B88";
    const PK_B32Z_UPPER: &str = "6FI4KSEO88AEUPBKOPYZKNJO1ODW4DCUXJH6KX1HHHAX1TZBJQRY";

    fn pk() -> PublicKey {
        PublicKey::from_bytes(PK)
    }

    fn parse(text: &str) -> Address {
        Address::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> AddressError {
        Address::parse(text).expect_err(text)
    }

    fn hash_of(a: &Address, state: &RandomState) -> u64 {
        state.hash_one(a)
    }

    #[test]
    fn tcp_addresses() {
        let a = parse("tcp://1.2.3.4:5678");
        assert_eq!(a.host(), Some("1.2.3.4"));
        assert_eq!(a.port(), Some(5678));
        assert_eq!(a.socket(), None);
        assert_eq!(a.protocol(), Protocol::Tcp);
        assert!(!a.is_curve() && a.is_tcp() && !a.is_ipc());
        assert_eq!(a.pubkey(), None);
        assert_eq!(a.zmq_address(), "tcp://1.2.3.4:5678");
        assert_eq!(a.full_address(Encoding::Base32z), "tcp://1.2.3.4:5678");
        assert_eq!(a.qr_address().unwrap(), "TCP://1.2.3.4:5678");
        assert_eq!(a.to_string(), "tcp://1.2.3.4:5678");

        let b = Address::tcp("example.com", 80);
        assert_eq!(b.host(), Some("example.com"));
        assert_eq!(b.port(), Some(80));
        assert_eq!(b.zmq_address(), "tcp://example.com:80");
        assert_eq!(b.full_address(Encoding::default()), "tcp://example.com:80");
        assert_eq!(b.qr_address().unwrap(), "TCP://EXAMPLE.COM:80");

        let c = parse("tcp://[::1]:1111");
        assert_eq!(c.host(), Some("[::1]"));
        assert_eq!(c.port(), Some(1111));
        assert_eq!(c.zmq_address(), "tcp://[::1]:1111");
    }

    #[test]
    fn tcp_rejects_oxenmq_bad_examples() {
        assert_eq!(err("tcp://1:1:1"), AddressError::TrailingAfterPort);
        assert_eq!(
            err("tcpz://localhost:123"),
            AddressError::InvalidProtocol("tcpz".into())
        );
        assert_eq!(err("tcp://abc"), AddressError::NoHostPort);
        assert_eq!(err("tcp://localhost:0"), AddressError::ZeroPort);
        assert_eq!(err("tcp://[::1:1080"), AddressError::UnterminatedIpv6);
    }

    #[test]
    fn unix_sockets() {
        let a = parse("ipc:///path/to/foo");
        assert_eq!(a.socket(), Some("/path/to/foo"));
        assert_eq!(a.host(), None);
        assert_eq!(a.port(), None);
        assert!(!a.is_curve() && !a.is_tcp() && a.is_ipc());
        assert_eq!(a.protocol(), Protocol::Ipc);
        assert_eq!(a.zmq_address(), "ipc:///path/to/foo");
        assert_eq!(a.full_address(Encoding::Hex), "ipc:///path/to/foo");

        let b = Address::ipc("../foo");
        assert_eq!(b.socket(), Some("../foo"));
        assert_eq!(b.zmq_address(), "ipc://../foo");
        assert_eq!(b.full_address(Encoding::Base32z), "ipc://../foo");
        // Plain ipc takes the rest of the text as the path, whatever it holds.
        assert_eq!(parse("ipc://a:b/c?d").socket(), Some("a:b/c?d"));
    }

    #[test]
    fn pubkey_formats_tcp() {
        let a = parse(&format!("tcp+curve://a:1/{PK_HEX}"));
        let b = parse(&format!("curve://a:1/{PK_B32Z}"));
        let c = parse(&format!("curve://a:1/{PK_B64}"));
        let c_padded = parse(&format!("curve://a:1/{PK_B64}="));
        let d = parse(&format!("CURVE://A:1/{PK_B32Z_UPPER}"));
        let e = parse(&format!("curve://a:1/{PK_HEX_UPPER}"));
        for x in [&a, &b, &c, &c_padded, &d, &e] {
            assert!(x.is_curve() && x.is_tcp());
            assert_eq!(x.protocol(), Protocol::TcpCurve);
            assert_eq!(x.host(), Some("a"));
            assert_eq!(x.port(), Some(1));
            assert_eq!(x.pubkey(), Some(&pk()));
            assert_eq!(x, &a);
        }
        assert_eq!(
            d.full_address(Encoding::Hex),
            format!("curve://a:1/{PK_HEX}")
        );
        assert_eq!(
            c.full_address(Encoding::Base32z),
            format!("curve://a:1/{PK_B32Z}")
        );
        assert_eq!(
            b.full_address(Encoding::Base32zUpper),
            format!("curve://a:1/{PK_B32Z_UPPER}")
        );
        assert_eq!(
            a.full_address(Encoding::Base64),
            format!("curve://a:1/{PK_B64}")
        );
        // Display shows the key as it was written (messages about an address the user typed
        // should look like what they typed); built in code, an address uses z-base-32.
        assert_eq!(a.to_string(), format!("curve://a:1/{PK_HEX}"));
        assert_eq!(b.to_string(), format!("curve://a:1/{PK_B32Z}"));
        assert_eq!(c.to_string(), format!("curve://a:1/{PK_B64}"));
        assert_eq!(e.to_string(), format!("curve://a:1/{PK_HEX}"));
        assert_eq!(
            Address::tcp_curve("a", 1, pk()).to_string(),
            format!("curve://a:1/{PK_B32Z}")
        );
        assert_eq!(a.zmq_address(), "tcp://a:1");
    }

    #[test]
    fn pubkey_formats_ipc() {
        let e = parse(&format!("ipc+curve://my.sock/{PK_HEX}"));
        let f = parse(&format!("ipc+curve://../my.sock/{PK_B32Z}"));
        let g = parse(&format!("ipc+curve:///my.sock/{PK_B32Z_UPPER}"));
        let h = parse(&format!("ipc+curve://./my.sock/{PK_B64}"));
        let i = parse(&format!("ipc+curve://./my.sock/{PK_B64}="));
        for x in [&e, &f, &g, &h, &i] {
            assert!(x.is_curve() && x.is_ipc() && !x.is_tcp());
            assert_eq!(x.protocol(), Protocol::IpcCurve);
            assert_eq!(x.pubkey(), Some(&pk()));
        }
        assert_eq!(e.socket(), Some("my.sock"));
        assert_eq!(f.socket(), Some("../my.sock"));
        assert_eq!(g.socket(), Some("/my.sock"));
        assert_eq!(h.socket(), Some("./my.sock"));
        assert_eq!(h, i);
        assert_eq!(e.to_string(), format!("ipc+curve://my.sock/{PK_HEX}"));
        assert_eq!(h.to_string(), format!("ipc+curve://./my.sock/{PK_B64}"));
        assert_eq!(
            h.full_address(Encoding::Hex),
            format!("ipc+curve://./my.sock/{PK_HEX}")
        );
        assert_eq!(
            g.full_address(Encoding::Base32z),
            format!("ipc+curve:///my.sock/{PK_B32Z}")
        );
        assert_eq!(
            f.full_address(Encoding::Base32zUpper),
            format!("ipc+curve://../my.sock/{PK_B32Z_UPPER}")
        );
        assert_eq!(
            e.full_address(Encoding::Base64),
            format!("ipc+curve://my.sock/{PK_B64}")
        );
        assert_eq!(e.zmq_address(), "ipc://my.sock");
        // A key-shaped component in the middle of the path is just part of the path.
        let nested = parse(&format!("ipc+curve:///run/{PK_HEX}/s/{PK_B32Z}"));
        assert_eq!(nested.socket(), Some(format!("/run/{PK_HEX}/s").as_str()));
    }

    #[test]
    fn ipc_curve_needs_a_trailing_key() {
        for text in [
            format!("ipc+curve://my.sock/{}", &PK_HEX[..63]),
            format!("ipc+curve://my.sock/{}", &PK_B32Z[..51]),
            format!("ipc+curve://my.sock/{}", &PK_B32Z_UPPER[..51]),
            format!("ipc+curve://my.sock/{}", &PK_B64[..42]),
            "ipc+curve://my.sock".to_string(),
            "ipc+curve://my.sock/".to_string(),
        ] {
            let rest = text.strip_prefix("ipc+curve://").unwrap();
            assert_eq!(
                err(&text),
                AddressError::IpcMissingPubkey(rest.into()),
                "{text}"
            );
        }
        assert_eq!(
            err("ipc+curve://my.sock").to_string(),
            "ipc+curve:// requires a trailing /PUBKEY value, got: my.sock"
        );
        // A key with no separator before it is not a trailing component.
        assert!(matches!(
            err(&format!("ipc+curve://x{PK_HEX}")),
            AddressError::IpcMissingPubkey(_)
        ));
        // "==" padding leaves 42 characters: 31 bytes, which OxenMQ would keep as a key.
        assert!(matches!(
            err(&format!("ipc+curve://s/{}==", &PK_B64[..42])),
            AddressError::IpcMissingPubkey(_)
        ));
    }

    #[test]
    fn ipc_curve_rejects_an_empty_path() {
        assert_eq!(
            err(&format!("ipc+curve:///{PK_HEX}")),
            AddressError::EmptySocketPath
        );
        assert_eq!(
            AddressError::EmptySocketPath.to_string(),
            "Invalid address: ipc+curve:// socket path cannot be empty"
        );
        // Only the separator is stripped: "//" leaves the absolute root as the path.
        assert_eq!(
            parse(&format!("ipc+curve:////{PK_HEX}")).socket(),
            Some("/")
        );
    }

    #[test]
    fn qr_addresses() {
        let a = parse("tcp://public.loki.foundation:12345");
        let a_qr = parse("TCP://PUBLIC.LOKI.FOUNDATION:12345");
        let b = parse("tcp://PUBLIC.LOKI.FOUNDATION:12345");
        assert_eq!(a, a_qr);
        assert_ne!(a, b);
        assert_eq!(a_qr.host(), Some("public.loki.foundation"));
        assert_eq!(
            a.qr_address().unwrap(),
            "TCP://PUBLIC.LOKI.FOUNDATION:12345"
        );

        let c = Address::tcp_curve("public.loki.foundation", 12345, pk());
        assert_eq!(
            c.qr_address().unwrap(),
            format!("CURVE://PUBLIC.LOKI.FOUNDATION:12345/{PK_B32Z_UPPER}")
        );
        assert_eq!(
            parse(&format!(
                "CURVE://PUBLIC.LOKI.FOUNDATION:12345/{PK_B32Z_UPPER}"
            )),
            c
        );
        // Upper-case hex is accepted though never produced.
        assert_eq!(
            parse(&format!(
                "CURVE://PUBLIC.LOKI.FOUNDATION:12345/{PK_HEX_UPPER}"
            )),
            c
        );
    }

    #[test]
    fn qr_form_rejects_lower_case_and_base64() {
        for text in [
            format!("CURVE://PUBLIC.LOKI.FOUNDATiON:12345/{PK_B32Z_UPPER}"),
            format!("CURVE://PUBLIC.LOKI.FOUNDATION:12345/{PK_B32Z}"),
            format!("CURVE://PUBLIC.LOKI.FOUNDATION:12345/{PK_HEX}"),
            "CURVE://PUBLIC.LOKI.FOUNDATION:12345/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                .to_string(),
            "TCP://[::1]:80".to_string(),
            "TCP://A_B:80".to_string(),
        ] {
            assert_eq!(err(&text), AddressError::NonQrCharacter, "{text}");
        }
        // All upper-case and QR-legal, but base64 is not allowed in the QR form.
        assert_eq!(
            err("CURVE://PUBLIC.LOKI.FOUNDATION:12345/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            AddressError::ExpectedPubkey
        );
        let b64_only = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.";
        assert_eq!(
            err(&format!("CURVE://H:1/{b64_only}")),
            AddressError::NoPubkey
        );
        assert_eq!(
            err("Tcp://a:1"),
            AddressError::InvalidProtocol("Tcp".into())
        );
    }

    #[test]
    fn qr_ipv6_uses_dollars() {
        let a = Address::tcp_curve("[fe80::abcd:1]", 22, pk());
        let qr = a.qr_address().unwrap();
        assert_eq!(qr, format!("CURVE://$FE80::ABCD:1$:22/{PK_B32Z_UPPER}"));
        let back = parse(&qr);
        assert_eq!(back, a);
        assert_eq!(back.host(), Some("[fe80::abcd:1]"));
        assert_eq!(err("TCP://$::1:80"), AddressError::UnterminatedIpv6);
        assert_eq!(
            err("TCP://$::1/:80"),
            AddressError::UnclosedIpv6 {
                expected: '$',
                found: '/'
            }
        );
    }

    #[test]
    fn qr_address_errors() {
        assert_eq!(
            Address::ipc("x").qr_address().unwrap_err(),
            AddressError::QrNotTcp
        );
        assert_eq!(
            Address::ipc_curve("x", pk()).qr_address().unwrap_err(),
            AddressError::QrNotTcp
        );
        assert_eq!(
            Address::tcp("", 1).qr_address().unwrap_err(),
            AddressError::QrEmptyHost
        );
        assert_eq!(
            Address::tcp("my_host", 1).qr_address().unwrap_err(),
            AddressError::QrUnencodableHost
        );
    }

    #[test]
    fn ipv6_hosts() {
        let a = parse("tcp://[2001:db8::1]:443");
        assert_eq!(a.host(), Some("[2001:db8::1]"));
        assert_eq!(
            a.host_ip(),
            Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
        );
        assert_eq!(
            a.socket_addr(),
            Some(SocketAddr::new(a.host_ip().unwrap(), 443))
        );
        // IPv4-mapped addresses contain dots.
        let mapped = parse("tcp://[::ffff:1.2.3.4]:9");
        assert_eq!(
            mapped.host_ip(),
            Some(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()))
        );
        assert_eq!(
            err("tcp://[fe80::1%eth0]:1"),
            AddressError::UnclosedIpv6 {
                expected: ']',
                found: '%'
            }
        );
        assert_eq!(
            err("tcp://[::1$:1"),
            AddressError::UnclosedIpv6 {
                expected: ']',
                found: '$'
            }
        );
        assert_eq!(
            err("tcp://[::é]:1"),
            AddressError::UnclosedIpv6 {
                expected: ']',
                found: 'é'
            }
        );
        assert_eq!(err("tcp://[]:1"), AddressError::EmptyHost);
        assert_eq!(err("tcp://[::1]"), AddressError::MissingPort);
        assert_eq!(err("tcp://[::1]80"), AddressError::MissingPort);
    }

    #[test]
    fn port_rules() {
        assert_eq!(parse("tcp://h:1").port(), Some(1));
        assert_eq!(parse("tcp://h:65535").port(), Some(65535));
        assert_eq!(parse("tcp://h:0080").port(), Some(80));
        assert_eq!(err("tcp://h:65536"), AddressError::PortOutOfRange);
        assert_eq!(
            err("tcp://h:99999999999999999999999999999"),
            AddressError::PortOutOfRange
        );
        assert_eq!(err("tcp://h:0"), AddressError::ZeroPort);
        assert_eq!(err("tcp://h:000"), AddressError::ZeroPort);
        assert_eq!(err("tcp://h:"), AddressError::MissingPort);
        assert_eq!(err("tcp://h:x1"), AddressError::NonNumericPort);
        assert_eq!(err("tcp://h:-1"), AddressError::NonNumericPort);
        assert_eq!(err("tcp://h:80x"), AddressError::TrailingAfterPort);
        assert_eq!(err("tcp://h:80/"), AddressError::TrailingAfterPort);
        assert_eq!(err("tcp://:80"), AddressError::EmptyHost);
    }

    #[test]
    fn curve_tcp_key_rules() {
        assert_eq!(err("curve://h:1"), AddressError::ExpectedPubkey);
        assert_eq!(
            err(&format!("curve://h:1{PK_HEX}")),
            AddressError::ExpectedPubkey
        );
        assert_eq!(
            err(&format!("curve://h:1/{}", &PK_B64[..42])),
            AddressError::ExpectedPubkey
        );
        assert_eq!(
            err(&format!("curve://h:1/{PK_HEX}x")),
            AddressError::TrailingAfterPubkey
        );
        assert_eq!(
            err(&format!("curve://h:1/{PK_B64}==")),
            AddressError::TrailingAfterPubkey
        );
        // A broken z-base-32 key still starts with 43 valid base64 characters, which OxenMQ
        // reads as a base64 key followed by junk.
        assert_eq!(
            err(&format!("curve://h:1/{}!", &PK_B32Z[..51])),
            AddressError::TrailingAfterPubkey
        );
        assert_eq!(
            err(&format!("curve://h:1/!{PK_B64}")),
            AddressError::NoPubkey
        );
        // The hex prefix wins even when the text goes on, as OxenMQ reads it.
        assert_eq!(
            err(&format!("curve://h:1/{PK_HEX}{PK_HEX}")),
            AddressError::TrailingAfterPubkey
        );
        // Multi-byte characters inside the key window never split a character.
        assert_eq!(
            err(&format!("curve://h:1/{}é{}", &PK_HEX[..42], &PK_HEX[..20])),
            AddressError::NoPubkey
        );
        // tcp:// does not take a key.
        assert_eq!(
            err(&format!("tcp://h:1/{PK_HEX}")),
            AddressError::TrailingAfterPort
        );
    }

    #[test]
    fn scheme_errors() {
        assert_eq!(err("localhost:80"), AddressError::NoProtocol);
        assert_eq!(err("://localhost:80"), AddressError::NoProtocol);
        assert_eq!(err(""), AddressError::NoProtocol);
        assert_eq!(err("tcp://"), AddressError::NoValue);
        assert_eq!(err("ipc://"), AddressError::NoValue);
        assert_eq!(err("ipc+curve://"), AddressError::NoValue);
        assert_eq!(
            err("udp://h:1"),
            AddressError::InvalidProtocol("udp".into())
        );
        assert_eq!(
            err("inproc://x"),
            AddressError::InvalidProtocol("inproc".into())
        );
    }

    #[test]
    fn error_texts_are_oxenmqs() {
        let cases: Vec<(AddressError, &str)> = vec![
            (
                AddressError::NoProtocol,
                "Invalid address: no protocol found",
            ),
            (
                AddressError::NoValue,
                "Invalid address: no value specified after protocol",
            ),
            (
                AddressError::InvalidProtocol("x".into()),
                "Invalid protocol 'x'",
            ),
            (
                AddressError::NonQrCharacter,
                "Found non-QR-alphanumeric value in QR TCP:// or CURVE:// address",
            ),
            (
                AddressError::UnterminatedIpv6,
                "Could not find terminating ] while parsing an IPv6 address",
            ),
            (
                AddressError::UnclosedIpv6 {
                    expected: ']',
                    found: '%',
                },
                "Expected ] to close IPv6 address but found %",
            ),
            (
                AddressError::NoHostPort,
                "Could not determine host (no following ':port' found)",
            ),
            (AddressError::EmptyHost, "Host cannot be empty"),
            (
                AddressError::MissingPort,
                "Could not find :port in address string",
            ),
            (
                AddressError::NonNumericPort,
                "Could not find numeric port in address string",
            ),
            (
                AddressError::ZeroPort,
                "Could not parse numeric port in address string",
            ),
            (
                AddressError::PortOutOfRange,
                "Invalid port: port must be in range 1-65535",
            ),
            (
                AddressError::ExpectedPubkey,
                "Invalid address: expected /PUBKEY after port",
            ),
            (AddressError::NoPubkey, "No pubkey found"),
            (
                AddressError::TrailingAfterPubkey,
                "Invalid address: found unexpected trailing data after pubkey",
            ),
            (
                AddressError::TrailingAfterPort,
                "Invalid address: found unexpected trailing data after port",
            ),
            (
                AddressError::InvalidPubkeyLength { len: 3 },
                "Invalid pubkey passed to set_pubkey(): require 0- or 32-byte pubkey",
            ),
            (
                AddressError::QrNotTcp,
                "Cannot construct a QR-friendly address for a non-TCP address",
            ),
            (
                AddressError::QrEmptyHost,
                "Cannot construct a QR-friendly address with an empty TCP host",
            ),
            (
                AddressError::QrUnencodableHost,
                "Cannot construct a QR-friendly address: host contains characters outside A-Z 0-9 $ : / . -",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn set_pubkey_switches_curve() {
        let mut a = parse("tcp://h:1");
        a.set_pubkey(Some(pk()));
        assert_eq!(a.protocol(), Protocol::TcpCurve);
        assert_eq!(a.to_string(), format!("curve://h:1/{PK_B32Z}"));
        a.set_pubkey(None);
        assert_eq!(a.protocol(), Protocol::Tcp);
        assert_eq!(a.to_string(), "tcp://h:1");

        let mut b = Address::ipc("s");
        b.set_pubkey_bytes(&PK).unwrap();
        assert_eq!(b.protocol(), Protocol::IpcCurve);
        assert_eq!(b.pubkey(), Some(&pk()));
        b.set_pubkey_bytes(&[]).unwrap();
        assert_eq!(b.protocol(), Protocol::Ipc);
        assert_eq!(
            b.set_pubkey_bytes(&PK[..31]).unwrap_err(),
            AddressError::InvalidPubkeyLength { len: 31 }
        );
        assert_eq!(b.protocol(), Protocol::Ipc, "a failed set leaves it alone");

        let c = Address::ipc_curve("s", pk()).with_pubkey(None);
        assert_eq!(c, Address::ipc("s"));
    }

    #[test]
    fn parse_with_pubkey_replaces_the_key() {
        let other = [7u8; 32];
        let a = Address::parse_with_pubkey(&format!("curve://h:1/{PK_HEX}"), &other).unwrap();
        assert_eq!(a.pubkey(), Some(&PublicKey::from_bytes(other)));
        let b = Address::parse_with_pubkey(&format!("curve://h:1/{PK_HEX}"), &[]).unwrap();
        assert_eq!(b, parse("tcp://h:1"));
        let c = Address::parse_with_pubkey("ipc://s", &PK).unwrap();
        assert_eq!(c, Address::ipc_curve("s", pk()));
        assert_eq!(
            Address::parse_with_pubkey("tcp://h:1", &[1, 2]).unwrap_err(),
            AddressError::InvalidPubkeyLength { len: 2 }
        );
        assert_eq!(
            Address::parse_with_pubkey("tcp://h", &PK).unwrap_err(),
            AddressError::NoHostPort
        );
    }

    #[test]
    fn encode_pubkey_in_every_encoding() {
        let a = Address::tcp_curve("h", 1, pk());
        assert_eq!(a.encode_pubkey(Encoding::Hex).unwrap(), PK_HEX);
        assert_eq!(a.encode_pubkey(Encoding::Base32z).unwrap(), PK_B32Z);
        assert_eq!(
            a.encode_pubkey(Encoding::Base32zUpper).unwrap(),
            PK_B32Z_UPPER
        );
        assert_eq!(a.encode_pubkey(Encoding::Base64).unwrap(), PK_B64);
        assert_eq!(Address::tcp("h", 1).encode_pubkey(Encoding::Hex), None);
        assert_eq!(Encoding::default(), Encoding::Base32z);
    }

    #[test]
    fn equality_ordering_and_hash_use_relevant_fields_only() {
        let state = RandomState::new();
        // Two spellings of one key.
        let a = parse(&format!("curve://h:1/{PK_HEX}"));
        let b = parse(&format!("tcp+curve://h:1/{PK_B64}="));
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_eq!(hash_of(&a, &state), hash_of(&b, &state));
        // The key makes the difference between plain and curve.
        let plain = a.clone().with_pubkey(None);
        assert_ne!(a, plain);
        assert!(plain < a, "tcp sorts before curve");
        // Different keys, hosts, ports, paths differ.
        assert_ne!(
            a,
            Address::tcp_curve("h", 1, PublicKey::from_bytes([0; 32]))
        );
        assert_ne!(plain, Address::tcp("h", 2));
        assert_ne!(plain, Address::tcp("H", 1));
        assert_ne!(Address::ipc("foo.sock"), Address::ipc("./foo.sock"));
        // A host named like a socket path is still a different address.
        assert_ne!(Address::tcp("s", 0), Address::ipc("s"));
        let mut sorted = [
            Address::ipc_curve("a", pk()),
            Address::ipc("b"),
            Address::tcp_curve("c", 1, pk()),
            Address::tcp("d", 1),
        ];
        sorted.sort();
        let protocols: Vec<Protocol> = sorted.iter().map(Address::protocol).collect();
        assert_eq!(
            protocols,
            [
                Protocol::Tcp,
                Protocol::TcpCurve,
                Protocol::Ipc,
                Protocol::IpcCurve
            ]
        );
    }

    #[test]
    fn bare_ipv6_hosts_get_brackets() {
        let a = Address::tcp("::1", 80);
        assert_eq!(a.host(), Some("[::1]"));
        assert_eq!(a.zmq_address(), "tcp://[::1]:80");
        assert_eq!(parse("tcp://[::1]:80"), a);
        assert_eq!(Address::tcp("[::1]", 80), a);
        // Names and IPv4 stay as given.
        assert_eq!(Address::tcp("10.0.0.1", 80).host(), Some("10.0.0.1"));
    }

    #[test]
    fn socket_addr_helpers() {
        let v4: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let a = Address::from(v4);
        assert_eq!(a.zmq_address(), "tcp://10.1.2.3:4567");
        assert_eq!(a.socket_addr(), Some(v4));
        let v6: SocketAddr = "[2001:db8::5]:9".parse().unwrap();
        let b = Address::from_socket_addr(v6);
        assert_eq!(b.zmq_address(), "tcp://[2001:db8::5]:9");
        assert_eq!(b.socket_addr(), Some(v6));
        assert_eq!(parse("tcp://example.com:1").host_ip(), None);
        assert_eq!(parse("tcp://[1.2.3.4]:1").host_ip(), None);
        assert_eq!(parse("tcp://1.2.3.4.5:1").host_ip(), None);
        assert_eq!(Address::ipc("/x").socket_addr(), None);
        assert_eq!(Address::ipc("/x").host_ip(), None);
    }

    #[test]
    fn from_str_try_from_and_debug() {
        let a: Address = "tcp://h:1".parse().unwrap();
        assert_eq!(Address::try_from("tcp://h:1").unwrap(), a);
        assert_eq!(format!("{a:?}"), "Address(tcp://h:1)");
        assert_eq!(
            "nope".parse::<Address>().unwrap_err(),
            AddressError::NoProtocol
        );
    }

    #[test]
    fn protocol_predicates_and_schemes() {
        let all = [
            Protocol::Tcp,
            Protocol::TcpCurve,
            Protocol::Ipc,
            Protocol::IpcCurve,
        ];
        let flags: Vec<(bool, bool, bool, &str)> = all
            .iter()
            .map(|p| (p.is_curve(), p.is_tcp(), p.is_ipc(), p.scheme()))
            .collect();
        assert_eq!(
            flags,
            [
                (false, true, false, "tcp"),
                (true, true, false, "curve"),
                (false, false, true, "ipc"),
                (true, false, true, "ipc+curve"),
            ]
        );
    }

    // ---- property tests ----

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
    }

    fn hostname() -> impl Strategy<Value = String> {
        proptest::collection::vec(label(), 1..4).prop_map(|labels| labels.join("."))
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            hostname(),
            any::<[u8; 4]>().prop_map(|b| Ipv4Addr::from(b).to_string()),
            any::<[u8; 16]>().prop_map(|b| format!("[{}]", Ipv6Addr::from(b))),
        ]
    }

    fn socket_path() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._/=+-]{1,40}"
    }

    fn key() -> impl Strategy<Value = Option<PublicKey>> {
        proptest::option::of(any::<[u8; 32]>().prop_map(PublicKey::from_bytes))
    }

    fn encoding() -> impl Strategy<Value = Encoding> {
        prop_oneof![
            Just(Encoding::Hex),
            Just(Encoding::Base32z),
            Just(Encoding::Base64),
            Just(Encoding::Base32zUpper),
        ]
    }

    fn address() -> impl Strategy<Value = Address> {
        prop_oneof![
            (host(), 1..=u16::MAX, key()).prop_map(|(h, p, k)| Address::tcp(h, p).with_pubkey(k)),
            (socket_path(), key()).prop_map(|(s, k)| Address::ipc(s).with_pubkey(k)),
        ]
    }

    proptest! {
        #[test]
        fn full_address_round_trips(a in address(), enc in encoding()) {
            let text = a.full_address(enc);
            let back = Address::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&back, &a);
            prop_assert_eq!(back.full_address(enc), text);
            prop_assert_eq!(back.zmq_address(), a.zmq_address());
        }

        #[test]
        fn display_round_trips(a in address()) {
            prop_assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        }

        #[test]
        fn qr_address_round_trips(h in host(), port in 1..=u16::MAX, k in key()) {
            let a = Address::tcp(h, port).with_pubkey(k);
            let qr = a.qr_address().unwrap();
            prop_assert!(qr.bytes().all(is_qr_char), "{}", qr);
            prop_assert_eq!(Address::parse(&qr).unwrap(), a);
        }

        #[test]
        fn ip_hosts_give_socket_addrs(ip in any::<[u8; 16]>(), v4 in any::<bool>(), port in 1..=u16::MAX) {
            let ip = if v4 {
                IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
            } else {
                IpAddr::V6(Ipv6Addr::from(ip))
            };
            let sa = SocketAddr::new(ip, port);
            let a = Address::from(sa);
            prop_assert_eq!(a.socket_addr(), Some(sa));
            let parsed = Address::parse(&a.zmq_address()).unwrap();
            prop_assert_eq!(parsed.socket_addr(), Some(sa));
        }

        #[test]
        fn equal_addresses_hash_equal(a in address(), enc in encoding()) {
            let state = RandomState::new();
            let b = Address::parse(&a.full_address(enc)).unwrap();
            prop_assert_eq!(hash_of(&a, &state), hash_of(&b, &state));
            prop_assert_eq!(a.cmp(&b), Ordering::Equal);
        }

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            let _ = Address::parse(&text);
        }

        #[test]
        fn address_like_strings_never_panic(
            scheme in "(tcp|curve|tcp\\+curve|ipc|ipc\\+curve|TCP|CURVE|x)",
            body in "[\\[\\]$:./a-fA-F0-9yY=+é%-]{0,120}",
        ) {
            let text = format!("{scheme}://{body}");
            if let Ok(a) = Address::parse(&text) {
                // Whatever parses must write out as something that parses to the same address.
                prop_assert_eq!(Address::parse(&a.full_address(Encoding::Hex)).unwrap(), a);
            }
        }

        #[test]
        fn keyed_strings_never_panic(
            scheme in "(curve|ipc\\+curve|CURVE)",
            head in "[A-Za-z0-9:./$\\[\\]]{0,12}",
            k in any::<[u8; 32]>(),
            enc in encoding(),
            cut in 0usize..70,
            tail in "[A-Za-z0-9=/é]{0,3}",
        ) {
            let mut encoded = Encoding::encode(enc, &PublicKey::from_bytes(k));
            encoded.truncate(cut.min(encoded.len()));
            let text = format!("{scheme}://{head}/{encoded}{tail}");
            let _ = Address::parse(&text);
        }
    }
}
