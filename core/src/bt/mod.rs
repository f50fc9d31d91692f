//! bt (bencode): OxenMQ's serialisation for control payloads, strict and `no_std`.
//!
//! bt is BitTorrent's bencode as OxenMQ (oxenc) uses it: byte strings (`3:abc`), 64-bit integers
//! (`i-5e`), lists (`l…e`) and dicts with byte-string keys in strictly increasing order
//! (`d1:ai1e1:bi2ee`). This module is the single place in the crate that knows about the
//! third-party `bendy` codec, and the only place that parses bt at all.
//!
//! What it offers:
//!
//! - [`BtValue`]: an owned tree (`Bytes`, `Int` for negatives, `UInt` for non-negatives, `List`,
//!   `Dict` with sorted keys), with [`decode`] and [`encode`]/[`encode_into`].
//! - [`ToBt`]: writes Rust values (integers, strings, byte slices, `Vec`, `BTreeMap`, tuples as
//!   lists) straight into a buffer without building a [`BtValue`] first.
//! - [`BtListConsumer`] and [`BtDictConsumer`]: walk an encoded list or dict in place, borrowing
//!   from the input and allocating nothing, like oxenc's `bt_list_consumer`/`bt_dict_consumer`.
//! - [`BtListProducer`] and [`BtDictProducer`]: append to a `Vec<u8>`, with dict key order
//!   enforced as an error.
//! - With the `serde` feature: `to_bt` and `from_bt`, our own `no_std` serde format.
//!
//! # Strictness
//!
//! Decoding accepts only canonical bt, exactly one value, and nothing deeper than [`MAX_DEPTH`]
//! nested lists/dicts. [`decode`], the consumers and `from_bt` share one validator, so they
//! accept and reject exactly the same inputs with the same [`BtError`]; a value that decodes
//! re-encodes to the identical bytes. See `docs/bt.md` for the full rule list and for which rules
//! `bendy` enforces itself and which this module adds.
//!
//! # Allocation
//!
//! [`validate`], the consumers and the producers (beyond growing the caller's buffer) allocate
//! nothing. [`decode`] allocates the value it returns (proportional to the input) plus a fixed
//! scratch state stack inside `bendy`'s decoder (2048 entries, about 144 KiB, whatever the input
//! size); invalid input is rejected before `bendy` is called, so it costs no allocation. Hot paths
//! should read with the consumers.

mod bendy_adapter;
mod consumer;
#[cfg(feature = "serde")]
mod de;
mod encode;
mod producer;
mod scan;
#[cfg(feature = "serde")]
mod ser;
mod value;

#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "serde"))]
mod tests_serde;

use alloc::vec::Vec;
use core::fmt;

pub use consumer::{BtDictConsumer, BtListConsumer};
#[cfg(feature = "serde")]
pub use de::from_bt;
pub use encode::{BtKey, ToBt};
pub use producer::{BtDictProducer, BtListProducer};
#[cfg(feature = "serde")]
pub use ser::to_bt;
pub use value::{BtDict, BtInteger, BtList, BtValue};

/// The deepest nesting of lists and dicts that decoding accepts.
///
/// A top-level list or dict is at depth 1; `64` therefore allows 64 containers inside each other
/// (`l` × 64 followed by `e` × 64) and rejects 65 with [`BtError::TooDeep`]. Decoding recurses
/// once per level, so this bounds stack use. OxenMQ's control payloads are at most three levels
/// deep. Encoding does not enforce the bound (except `to_bt`, which refuses to produce what
/// `from_bt` would reject); a value nested deeper than this encodes but will not decode.
pub const MAX_DEPTH: usize = 64;

/// The four kinds of bt value.
// Exhaustive on purpose: bencode has exactly these four types, and matching on all of them is
// the point of the enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BtKind {
    /// A byte string (`3:abc`).
    Bytes,
    /// An integer (`i42e`).
    Integer,
    /// A list (`l…e`).
    List,
    /// A dict (`d…e`).
    Dict,
}

impl fmt::Display for BtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bytes => "byte string",
            Self::Integer => "integer",
            Self::List => "list",
            Self::Dict => "dict",
        })
    }
}

/// Why an encoding is not canonical bt (the detail of [`BtError::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// A byte that cannot start a value here (anything but `0`–`9`, `i`, `l`, `d`; or an `e`
    /// with no list or dict to close).
    UnexpectedByte(u8),
    /// An integer or a string length with a superfluous leading zero (`i03e`, `03:abc`).
    LeadingZero,
    /// The integer `-0` (`i-0e`), which has the canonical form `i0e`.
    NegativeZero,
    /// An integer with no digits (`ie`, `i-e`) or with a byte that is not a digit (`i1.5e`).
    MalformedInteger,
    /// A string length followed by something other than digits and `:` (`3abc`).
    MalformedLength,
    /// A dict key that is not a byte string (`di1ei2ee`).
    KeyNotString,
    /// A dict key with no value before the dict ends (`d1:ae`).
    MissingValue,
    /// A dict key smaller than the key before it.
    UnsortedKeys,
    /// A dict key equal to the key before it.
    DuplicateKey,
    /// The `bendy` codec rejected input that this module's own validator accepted. The two are
    /// property-tested to agree, so this signals a bug rather than bad input.
    RejectedByCodec,
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedByte(b) => {
                write!(
                    f,
                    "unexpected byte {:?}",
                    EscapedBytes(core::slice::from_ref(b))
                )
            }
            Self::LeadingZero => f.write_str("number with a leading zero"),
            Self::NegativeZero => f.write_str("negative zero"),
            Self::MalformedInteger => f.write_str("malformed integer"),
            Self::MalformedLength => f.write_str("malformed string length"),
            Self::KeyNotString => f.write_str("dict key is not a byte string"),
            Self::MissingValue => f.write_str("dict key without a value"),
            Self::UnsortedKeys => f.write_str("dict keys out of order"),
            Self::DuplicateKey => f.write_str("duplicate dict key"),
            Self::RejectedByCodec => f.write_str("rejected by the bencode codec"),
        }
    }
}

/// Everything that can go wrong reading or writing bt.
///
/// `offset`s are byte positions in the input that was handed to the decoder, consumer or
/// deserializer (for producers: in the output buffer). Like oxenc, which separates
/// `bt_deserialize_invalid_type` from `bt_deserialize_invalid`, [`BtError::WrongType`] (and
/// [`BtError::Exhausted`]) mean the data is fine but not what the caller asked for, and a
/// consumer that returns them has not moved, so the caller may try another type; every other
/// variant means the data itself is bad (or, for producers and serde, the caller's value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtError {
    /// The input ended in the middle of a value (or was empty).
    #[error("bt: unexpected end of input at byte {offset}")]
    UnexpectedEnd {
        /// Where the input ended.
        offset: usize,
    },
    /// The input is not canonical bt.
    #[error("bt: invalid encoding at byte {offset}: {reason}")]
    Invalid {
        /// Where the offending byte is.
        offset: usize,
        /// What is wrong there.
        reason: InvalidReason,
    },
    /// A complete value was followed by more bytes.
    #[error("bt: trailing bytes after the value, starting at byte {offset}")]
    TrailingGarbage {
        /// Where the trailing bytes start.
        offset: usize,
    },
    /// An integer outside the range asked for (always outside `i64::MIN..=u64::MAX` for
    /// decoding; outside the target type's range for typed reads).
    #[error("bt: integer at byte {offset} is out of range")]
    IntegerOutOfRange {
        /// Where the integer starts (its `i`).
        offset: usize,
    },
    /// Lists and dicts nested deeper than [`MAX_DEPTH`].
    #[error("bt: nesting deeper than {max} at byte {offset}", max = MAX_DEPTH)]
    TooDeep {
        /// Where the first container beyond the limit starts.
        offset: usize,
    },
    /// The next value is valid but of another kind than requested. Nothing was consumed.
    #[error("bt: expected a {expected} at byte {offset}, found a {found}")]
    WrongType {
        /// Where the value starts.
        offset: usize,
        /// What the caller asked for.
        expected: BtKind,
        /// What is there.
        found: BtKind,
    },
    /// A value was requested but the list or dict has no more elements. Nothing was consumed.
    #[error("bt: no more elements in the list or dict at byte {offset}")]
    Exhausted {
        /// Where the closing `e` is.
        offset: usize,
    },
    /// `finish` was called on a consumer that still has elements, or a typed read (serde
    /// tuple, enum) left elements unread.
    #[error("bt: unconsumed elements at byte {offset}")]
    ExtraElements {
        /// Where the first unconsumed element starts.
        offset: usize,
    },
    /// A required dict key is absent.
    #[error("bt: missing dict key {}", EscapedBytes(key))]
    MissingKey {
        /// The key that was looked for.
        key: Vec<u8>,
    },
    /// A producer or serializer was given a dict key that is not greater than the key before it
    /// (out of order, or repeated).
    #[error("bt: dict key {} is out of order or repeated", EscapedBytes(key))]
    KeyOrder {
        /// The rejected key.
        key: Vec<u8>,
    },
    /// A byte string read as text is not UTF-8.
    #[cfg(feature = "serde")]
    #[error("bt: byte string at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// The Rust value has no bt representation (floats, `None` inside a list, non-string dict
    /// keys).
    #[cfg(feature = "serde")]
    #[error("bt: cannot represent {0} in bt")]
    Unsupported(&'static str),
    /// A message from a serde `Serialize`/`Deserialize` implementation.
    #[cfg(feature = "serde")]
    #[error("bt: {0}")]
    Serde(alloc::string::String),
}

impl BtError {
    /// True for the "valid data, wrong request" errors ([`BtError::WrongType`],
    /// [`BtError::Exhausted`]) after which a consumer is unchanged; oxenc's
    /// `bt_deserialize_invalid_type`.
    #[must_use]
    pub const fn is_wrong_type(&self) -> bool {
        matches!(self, Self::WrongType { .. } | Self::Exhausted { .. })
    }
}

/// Displays bytes as a quoted string with non-printable bytes escaped (`"a\x00b"`).
struct EscapedBytes<'a>(&'a [u8]);

impl fmt::Display for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            write!(f, "{}", core::ascii::escape_default(b))?;
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Decodes exactly one canonical bt value.
///
/// The input is first checked by this module's allocation-free validator (so every rejection is
/// a precise [`BtError`] and costs no allocation), then the value is built through `bendy`.
/// Rejects empty input, trailing bytes, non-canonical encodings, integers outside
/// `i64::MIN..=u64::MAX` and nesting deeper than [`MAX_DEPTH`]. Never panics.
pub fn decode(input: &[u8]) -> Result<BtValue, BtError> {
    scan::validate(input)?;
    bendy_adapter::build(input)
}

/// Encodes a value to canonical bt.
#[must_use]
pub fn encode(value: &BtValue) -> Vec<u8> {
    value.to_bt_vec()
}

/// Appends the canonical bt encoding of a value to `out`.
pub fn encode_into(value: &BtValue, out: &mut Vec<u8>) {
    value.write_bt(out);
}

/// Checks that `input` is exactly one canonical bt value, without building it and without
/// allocating. Accepts exactly what [`decode`] accepts.
pub fn validate(input: &[u8]) -> Result<(), BtError> {
    scan::validate(input)
}
