//! [`BtValue`], the owned bt tree, and the integer types it converts to and from.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use super::{BtKind, EscapedBytes};

/// A bt list.
pub type BtList = Vec<BtValue>;

/// A bt dict: byte-string keys, kept in the byte order that bt requires.
pub type BtDict = BTreeMap<Vec<u8>, BtValue>;

/// An owned bt value (oxenc's `bt_value`).
///
/// Decoding puts negative integers in [`BtValue::Int`] and non-negative ones in
/// [`BtValue::UInt`], as oxenc does. A value built by hand may hold a non-negative number in
/// `Int`; it encodes the same way, and equality compares integers by value, so
/// `BtValue::Int(5) == BtValue::UInt(5)`. The `From` conversions normalise.
// Exhaustive on purpose: these are bencode's four types (integers split by sign), and callers
// match on all of them.
#[derive(Clone)]
pub enum BtValue {
    /// A byte string (not necessarily UTF-8).
    Bytes(Vec<u8>),
    /// A signed integer; decoding uses it for negative numbers only.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A list.
    List(BtList),
    /// A dict with keys in byte order.
    Dict(BtDict),
}

impl BtValue {
    /// Which of the four bt kinds this is.
    #[must_use]
    pub const fn kind(&self) -> BtKind {
        match self {
            Self::Bytes(_) => BtKind::Bytes,
            Self::Int(_) | Self::UInt(_) => BtKind::Integer,
            Self::List(_) => BtKind::List,
            Self::Dict(_) => BtKind::Dict,
        }
    }

    /// The bytes of a byte string.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A byte string as text, if it is UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// An integer that fits in `u64` (any non-negative one).
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        self.as_int()
    }

    /// An integer that fits in `i64`.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        self.as_int()
    }

    /// An integer converted to `I`, or `None` if this is not an integer or does not fit
    /// (oxenc's checked `get_int<I>`).
    #[must_use]
    pub fn as_int<I: BtInteger>(&self) -> Option<I> {
        match *self {
            Self::Int(i) => I::from_wide(i128::from(i)),
            Self::UInt(u) => I::from_wide(i128::from(u)),
            _ => None,
        }
    }

    /// The elements of a list.
    #[must_use]
    pub fn as_list(&self) -> Option<&[Self]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The entries of a dict.
    #[must_use]
    pub fn as_dict(&self) -> Option<&BtDict> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value under `key`, if this is a dict that has it.
    #[must_use]
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&Self> {
        self.as_dict().and_then(|d| d.get(key.as_ref()))
    }

    /// The integer value as an `i128`, if this is an integer.
    fn wide(&self) -> Option<i128> {
        match *self {
            Self::Int(i) => Some(i128::from(i)),
            Self::UInt(u) => Some(i128::from(u)),
            _ => None,
        }
    }
}

impl PartialEq for BtValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Bytes(a), Self::Bytes(b)) => a == b,
            (Self::List(a), Self::List(b)) => a == b,
            (Self::Dict(a), Self::Dict(b)) => a == b,
            _ => match (self.wide(), other.wide()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }
}

impl Eq for BtValue {}

impl fmt::Debug for BtValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "b{:?}", EscapedBytes(b)),
            Self::Int(i) => write!(f, "{i}"),
            Self::UInt(u) => write!(f, "{u}"),
            Self::List(l) => f.debug_list().entries(l).finish(),
            Self::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (EscapedBytes(k), v)))
                .finish(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The primitive integer types that bt integers convert to and from (8 to 64 bits, signed and
/// unsigned, and `usize`/`isize`). Sealed.
pub trait BtInteger: Copy + sealed::Sealed {
    /// Converts from a number in `i64::MIN..=u64::MAX`, or `None` if it does not fit.
    fn from_wide(v: i128) -> Option<Self>;
    /// Widens losslessly.
    fn to_wide(self) -> i128;
}

macro_rules! bt_integer {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl BtInteger for $t {
            fn from_wide(v: i128) -> Option<Self> {
                Self::try_from(v).ok()
            }
            fn to_wide(self) -> i128 {
                // Every implementing type is at most 64 bits wide (Rust has no target with a
                // wider usize), so the cast is lossless.
                self as i128
            }
        }
        impl From<$t> for BtValue {
            fn from(v: $t) -> Self {
                let wide = BtInteger::to_wide(v);
                if wide < 0 {
                    // A negative value of a type of at most 64 bits fits in i64.
                    Self::Int(wide as i64)
                } else {
                    // A non-negative value of a type of at most 64 bits fits in u64.
                    Self::UInt(wide as u64)
                }
            }
        }
    )*};
}

bt_integer!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl From<&[u8]> for BtValue {
    fn from(v: &[u8]) -> Self {
        Self::Bytes(v.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for BtValue {
    fn from(v: [u8; N]) -> Self {
        Self::Bytes(v.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for BtValue {
    fn from(v: &[u8; N]) -> Self {
        Self::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for BtValue {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

impl From<&str> for BtValue {
    fn from(v: &str) -> Self {
        Self::Bytes(v.as_bytes().to_vec())
    }
}

impl From<String> for BtValue {
    fn from(v: String) -> Self {
        Self::Bytes(v.into_bytes())
    }
}

impl From<Bytes> for BtValue {
    fn from(v: Bytes) -> Self {
        Self::Bytes(v.to_vec())
    }
}

impl From<BtList> for BtValue {
    fn from(v: BtList) -> Self {
        Self::List(v)
    }
}

impl<K: Into<Vec<u8>>, V: Into<Self>> From<BTreeMap<K, V>> for BtValue {
    /// Builds a dict. Keys are re-sorted by their bytes, so a map whose key type orders
    /// differently still yields a canonical dict; later duplicates (by bytes) win.
    fn from(v: BTreeMap<K, V>) -> Self {
        Self::Dict(v.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl FromIterator<Self> for BtValue {
    /// Collects into a list.
    fn from_iter<T: IntoIterator<Item = Self>>(iter: T) -> Self {
        Self::List(iter.into_iter().collect())
    }
}

macro_rules! tuple_into_list {
    ($($name:ident)+) => {
        impl<$($name: Into<BtValue>),+> From<($($name,)+)> for BtValue {
            /// Builds a list, one element per tuple field (oxenc serialises tuples as lists).
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Self {
                Self::List(alloc::vec![$($name.into()),+])
            }
        }
    };
}

tuple_into_list!(A);
tuple_into_list!(A B);
tuple_into_list!(A B C);
tuple_into_list!(A B C D);
tuple_into_list!(A B C D E);
tuple_into_list!(A B C D E F);
