//! The 64-byte ZMTP 3.x greeting: our encoder and an incremental validator for the peer's.
//!
//! Layout (wire.md §2): `FF`, 8 padding bytes, `7F`, major, minor, mechanism (20 bytes, NUL
//! padded), as-server, 31 filler bytes. We send exactly what libzmq 4.x sends: padding = u64 BE
//! `len(routing id) + 1`, version 3.1, as-server 0. On the receiving side only byte 0, the lowest
//! bit of byte 9, the major version and the 20 mechanism bytes matter; the padding, the minor
//! version (beyond choosing 3.0 or 3.1), as-server and the filler are ignored, as libzmq does.

use core::fmt;

use super::ZmtpError;

/// Length of a ZMTP 3 greeting.
pub const GREETING_LEN: usize = 64;
/// Length of the signature (`FF` + padding + `7F`), the part libzmq sends first.
#[cfg(any(test, feature = "internals"))]
pub const SIGNATURE_LEN: usize = 10;
/// Length of the mechanism field.
pub const MECHANISM_LEN: usize = 20;

const MAJOR_OFFSET: usize = 10;
const MINOR_OFFSET: usize = 11;
const MECHANISM_OFFSET: usize = 12;
const AS_SERVER_OFFSET: usize = 32;

/// The major version we announce.
pub const VERSION_MAJOR: u8 = 3;
/// The minor version we announce (3.1: PING/PONG, SUBSCRIBE/CANCEL commands).
pub const VERSION_MINOR: u8 = 1;

/// A ZMTP security mechanism, as named in the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `NULL`: no security.
    Null,
    /// `PLAIN`: clear-text user name and password (named for parsing only; not implemented).
    Plain,
    /// `CURVE`: CurveZMQ.
    Curve,
}

impl Mechanism {
    /// The mechanism name as it appears in the greeting (without padding).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Plain => "PLAIN",
            Self::Curve => "CURVE",
        }
    }

    /// The exact 20-byte greeting field: the name followed by NUL bytes.
    #[must_use]
    pub fn wire_name(self) -> [u8; MECHANISM_LEN] {
        let mut out = [0u8; MECHANISM_LEN];
        let name = self.name().as_bytes();
        out[..name.len()].copy_from_slice(name);
        out
    }

    /// The mechanism whose 20-byte greeting field is exactly `field`, if any.
    #[must_use]
    pub fn from_wire_name(field: &[u8]) -> Option<Self> {
        [Self::Null, Self::Plain, Self::Curve]
            .into_iter()
            .find(|m| m.wire_name().as_slice() == field)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which ZMTP 3 dialect to speak with a peer, chosen from its greeting.
///
/// Ordered and exhaustive on purpose: there are exactly two 3.x dialects and callers compare them
/// (`dialect >= Dialect::Zmtp31`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dialect {
    /// ZMTP 3.0 (RFC 23): no PING/PONG, subscriptions as data frames.
    Zmtp30,
    /// ZMTP 3.1 (RFC 37).
    Zmtp31,
}

/// What we learned from a peer's valid greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerGreeting {
    /// The major version byte (2, or 3 and above; 0 and 1 are refused).
    pub major: u8,
    /// The minor version byte.
    pub minor: u8,
    /// The peer's mechanism (equal to ours, or the greeting would have been refused).
    pub mechanism: Mechanism,
    /// The as-server byte, informational only: libzmq always sends 0 and never reads it.
    pub as_server: bool,
    /// The 8 padding bytes (libzmq: u64 BE routing-id length + 1). Never validated.
    pub padding: [u8; 8],
}

impl PeerGreeting {
    /// The dialect to speak: 3.0 for major ≤ 3 with minor 0, otherwise 3.1.
    ///
    /// Major 2 is treated as 3.x (OxenMQ/libzmq do the same); a higher major than ours means we
    /// answer with our own 3.1, as the RFC requires.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        if self.major <= VERSION_MAJOR && self.minor == 0 {
            Dialect::Zmtp30
        } else {
            Dialect::Zmtp31
        }
    }
}

/// Encodes our full greeting, byte-identical to libzmq 4.x's.
///
/// `routing_id_len` is the length of our routing id (0..=255); libzmq stores `len + 1` in the
/// padding as a ZMTP 1.0 compatibility trick, and we copy it so captures compare equal.
#[must_use]
pub fn encode_greeting(mechanism: Mechanism, routing_id_len: usize) -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xff;
    let padding = u64::try_from(routing_id_len)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    g[1..9].copy_from_slice(&padding.to_be_bytes());
    g[9] = 0x7f;
    g[MAJOR_OFFSET] = VERSION_MAJOR;
    g[MINOR_OFFSET] = VERSION_MINOR;
    g[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN].copy_from_slice(&mechanism.wire_name());
    // as-server (32) and the filler (33..64) stay zero: libzmq always sends 0.
    g
}

/// Incremental validator for the peer's greeting.
///
/// Feed it whatever bytes arrive; it consumes at most the 64 greeting bytes and fails at the first
/// byte that rules the peer out.
#[derive(Debug, Clone)]
pub struct GreetingDecoder {
    ours: Mechanism,
    ours_wire: [u8; MECHANISM_LEN],
    buf: [u8; GREETING_LEN],
    len: usize,
    done: bool,
}

impl GreetingDecoder {
    /// A decoder expecting a peer that uses mechanism `ours`.
    #[must_use]
    pub fn new(ours: Mechanism) -> Self {
        Self {
            ours,
            ours_wire: ours.wire_name(),
            buf: [0; GREETING_LEN],
            len: 0,
            done: false,
        }
    }

    /// How many greeting bytes have been accepted so far.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn received(&self) -> usize {
        self.len
    }

    /// True once the whole greeting has been accepted.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes greeting bytes from the front of `input` (advancing it).
    ///
    /// Returns `Ok(Some(_))` exactly once, when byte 63 arrives; `Ok(None)` while more bytes are
    /// needed, and also after completion (nothing more is consumed then). Bytes after the
    /// greeting are left in `input`. On error the offending byte has been consumed and the
    /// decoder must not be fed again.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<PeerGreeting>, ZmtpError> {
        if self.done {
            return Ok(None);
        }
        while let Some((&b, rest)) = input.split_first() {
            let at = self.len;
            *input = rest;
            self.buf[at] = b;
            self.len += 1;
            self.check_byte(at, b)?;
            if self.len == GREETING_LEN {
                self.done = true;
                return Ok(Some(self.finish()));
            }
        }
        Ok(None)
    }

    fn check_byte(&self, at: usize, b: u8) -> Result<(), ZmtpError> {
        match at {
            0 if b != 0xff => Err(ZmtpError::BadSignature { offset: 0, byte: b }),
            9 if b & 1 == 0 => Err(ZmtpError::BadSignature { offset: 9, byte: b }),
            MAJOR_OFFSET if b < 2 => Err(ZmtpError::UnsupportedVersion { major: b }),
            MECHANISM_OFFSET..AS_SERVER_OFFSET if b != self.ours_wire[at - MECHANISM_OFFSET] => {
                Err(ZmtpError::MechanismMismatch {
                    ours: self.ours,
                    theirs: self.theirs(at),
                    offset: at,
                })
            }
            _ => Ok(()),
        }
    }

    /// The known mechanism whose name the peer's mechanism bytes so far (up to and including
    /// offset `at`) begin, if exactly one does: the three names differ in their first letter,
    /// so a mismatch is named as soon as it is seen, without waiting for the rest.
    fn theirs(&self, at: usize) -> Option<Mechanism> {
        let seen = &self.buf[MECHANISM_OFFSET..=at];
        let mut matching = [Mechanism::Null, Mechanism::Plain, Mechanism::Curve]
            .into_iter()
            .filter(|m| m.wire_name().starts_with(seen));
        match (matching.next(), matching.next()) {
            (Some(m), None) => Some(m),
            _ => None,
        }
    }

    fn finish(&self) -> PeerGreeting {
        let mut padding = [0u8; 8];
        padding.copy_from_slice(&self.buf[1..9]);
        PeerGreeting {
            major: self.buf[MAJOR_OFFSET],
            minor: self.buf[MINOR_OFFSET],
            mechanism: self.ours,
            as_server: self.buf[AS_SERVER_OFFSET] != 0,
            padding,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> alloc::vec::Vec<u8> {
        crate::encoding::hex::decode(s).unwrap()
    }

    // Greeting lines from vectors/null-handshake-capture.txt and vectors/curve-kat.txt.
    const NULL_DEALER_A: &str = "ff00000000000000097f03014e554c4c000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
    const NULL_NO_ID: &str = "ff00000000000000017f03014e554c4c000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
    const CURVE_NO_ID: &str = "ff00000000000000017f030143555256450000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn encodes_libzmq_greetings_byte_for_byte() {
        assert_eq!(
            encode_greeting(Mechanism::Null, 8).as_slice(),
            hex(NULL_DEALER_A)
        );
        assert_eq!(
            encode_greeting(Mechanism::Null, 0).as_slice(),
            hex(NULL_NO_ID)
        );
        assert_eq!(
            encode_greeting(Mechanism::Curve, 0).as_slice(),
            hex(CURVE_NO_ID)
        );
    }

    #[test]
    fn accepts_recorded_greetings_whole_and_bytewise() {
        for (g, mech) in [
            (NULL_DEALER_A, Mechanism::Null),
            (NULL_NO_ID, Mechanism::Null),
            (CURVE_NO_ID, Mechanism::Curve),
        ] {
            let bytes = hex(g);
            let mut d = GreetingDecoder::new(mech);
            let mut input = &bytes[..];
            let pg = d.decode(&mut input).unwrap().unwrap();
            assert!(input.is_empty());
            assert_eq!((pg.major, pg.minor, pg.as_server), (3, 1, false));
            assert_eq!(pg.dialect(), Dialect::Zmtp31);

            let mut d = GreetingDecoder::new(mech);
            for (i, b) in bytes.iter().enumerate() {
                let mut one = core::slice::from_ref(b);
                let r = d.decode(&mut one).unwrap();
                assert_eq!(r.is_some(), i == 63);
            }
            assert!(d.is_done());
        }
    }

    #[test]
    fn leaves_bytes_after_the_greeting() {
        let mut bytes = hex(NULL_NO_ID);
        bytes.extend_from_slice(&[4, 0x29]);
        let mut d = GreetingDecoder::new(Mechanism::Null);
        let mut input = &bytes[..];
        assert!(d.decode(&mut input).unwrap().is_some());
        assert_eq!(input, &[4, 0x29]);
        // Completed decoders consume nothing more.
        assert_eq!(d.decode(&mut input).unwrap(), None);
        assert_eq!(input.len(), 2);
    }

    #[test]
    fn refuses_zmtp_1_at_byte_zero() {
        let mut d = GreetingDecoder::new(Mechanism::Curve);
        let mut input: &[u8] = &[0x01, 0x00, 0x08];
        assert_eq!(
            d.decode(&mut input),
            Err(ZmtpError::BadSignature { offset: 0, byte: 1 })
        );
        assert_eq!(input.len(), 2, "fails at the first byte");
    }

    #[test]
    fn refuses_byte_nine_without_low_bit() {
        let mut g = hex(NULL_NO_ID);
        g[9] = 0x7e;
        let mut d = GreetingDecoder::new(Mechanism::Null);
        let mut input = &g[..];
        assert_eq!(
            d.decode(&mut input),
            Err(ZmtpError::BadSignature {
                offset: 9,
                byte: 0x7e
            })
        );
        assert_eq!(input.len(), 54);
        // Only the lowest bit matters.
        g[9] = 0x01;
        assert!(
            GreetingDecoder::new(Mechanism::Null)
                .decode(&mut &g[..])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn refuses_revisions_zero_and_one_at_byte_ten() {
        for major in [0u8, 1] {
            let mut g = hex(NULL_NO_ID);
            g[10] = major;
            let mut input = &g[..];
            assert_eq!(
                GreetingDecoder::new(Mechanism::Null).decode(&mut input),
                Err(ZmtpError::UnsupportedVersion { major })
            );
            assert_eq!(input.len(), 53);
        }
    }

    #[test]
    fn treats_major_two_and_above_as_zmtp3() {
        for (major, minor, dialect) in [
            (2u8, 0u8, Dialect::Zmtp30),
            (2, 1, Dialect::Zmtp31),
            (3, 0, Dialect::Zmtp30),
            (3, 7, Dialect::Zmtp31),
            (4, 0, Dialect::Zmtp31),
            (255, 255, Dialect::Zmtp31),
        ] {
            let mut g = hex(NULL_NO_ID);
            g[10] = major;
            g[11] = minor;
            let pg = GreetingDecoder::new(Mechanism::Null)
                .decode(&mut &g[..])
                .unwrap()
                .unwrap();
            assert_eq!((pg.major, pg.minor, pg.dialect()), (major, minor, dialect));
        }
    }

    #[test]
    fn mechanism_mismatch_fails_at_first_differing_byte() {
        // A NULL peer talking to a CURVE decoder differs at byte 12 ('N' vs 'C').
        let g = hex(NULL_NO_ID);
        let mut input = &g[..];
        assert_eq!(
            GreetingDecoder::new(Mechanism::Curve).decode(&mut input),
            Err(ZmtpError::MechanismMismatch {
                ours: Mechanism::Curve,
                theirs: Some(Mechanism::Null),
                offset: 12
            })
        );
        assert_eq!(input.len(), 51);
        // NUL padding must match too: "NULLX" differs at byte 16.
        let mut g = hex(NULL_NO_ID);
        g[16] = b'X';
        assert_eq!(
            GreetingDecoder::new(Mechanism::Null).decode(&mut &g[..]),
            Err(ZmtpError::MechanismMismatch {
                ours: Mechanism::Null,
                theirs: None,
                offset: 16
            })
        );
        // Lowercase is a different mechanism.
        let mut g = hex(NULL_NO_ID);
        g[12] = b'n';
        assert!(matches!(
            GreetingDecoder::new(Mechanism::Null).decode(&mut &g[..]),
            Err(ZmtpError::MechanismMismatch { offset: 12, .. })
        ));
    }

    #[test]
    fn ignores_padding_as_server_and_filler() {
        let mut g = hex(NULL_NO_ID);
        g[1..9].copy_from_slice(&[0xde; 8]);
        g[32] = 1;
        g[33..].fill(0xaa);
        let pg = GreetingDecoder::new(Mechanism::Null)
            .decode(&mut &g[..])
            .unwrap()
            .unwrap();
        assert!(pg.as_server);
        assert_eq!(pg.padding, [0xde; 8]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_any_split_same_verdict(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            valid_prefix in 0usize..64,
            cut in 0usize..80,
        ) {
            // Start from a valid greeting so that later bytes get examined too.
            let mut bytes = hex(NULL_NO_ID);
            bytes.truncate(valid_prefix);
            bytes.extend_from_slice(&data);
            let whole = GreetingDecoder::new(Mechanism::Null).decode(&mut &bytes[..]);
            let cut = cut.min(bytes.len());
            let mut d = GreetingDecoder::new(Mechanism::Null);
            let mut first = &bytes[..cut];
            let split = match d.decode(&mut first) {
                Err(e) => Err(e),
                Ok(Some(g)) => Ok(Some(g)),
                Ok(None) => d.decode(&mut &bytes[cut..]),
            };
            proptest::prop_assert_eq!(whole, split);
        }
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in [Mechanism::Null, Mechanism::Plain, Mechanism::Curve] {
            assert_eq!(Mechanism::from_wire_name(&m.wire_name()), Some(m));
        }
        assert_eq!(Mechanism::from_wire_name(b"NULL"), None);
        assert_eq!(Mechanism::from_wire_name(&[0; 20]), None);
    }
}
