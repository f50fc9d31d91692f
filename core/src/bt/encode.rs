//! Encoding: [`ToBt`] writes Rust values as canonical bt straight into a `Vec<u8>`.
//!
//! The writer is ours rather than `bendy`'s `Encoder`: bt output is a few lines of formatting,
//! `bendy`'s encoder allocates a fixed state stack per call plus a `String` per integer and
//! string length, and it reports impossible errors for input that a `BTreeMap` already keeps
//! sorted. The property tests check our output against `bendy`'s encoder byte for byte.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;

use super::value::{BtInteger, BtValue};

/// Appends `n` in decimal.
fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 decimal digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // n % 10 < 10, so the cast cannot truncate.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a byte string (`<len>:<bytes>`).
pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize is at most 64 bits on every Rust target, so the length fits in u64.
    write_decimal(out, bytes.len() as u64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Appends an integer (`i<n>e`). Every caller passes a widened integer of at most 64 bits, so
/// `|v| <= u64::MAX`.
pub(crate) fn write_int(out: &mut Vec<u8>, v: i128) {
    out.push(b'i');
    if v < 0 {
        out.push(b'-');
    }
    // |v| fits in u64 (see above), so the cast cannot truncate.
    write_decimal(out, v.unsigned_abs() as u64);
    out.push(b'e');
}

/// A Rust value with a bt encoding.
///
/// Integers (all primitive integers up to 64 bits except `u8`) encode as bt integers; `str`,
/// `String`, `[u8]`, `Vec<u8>`, `[u8; N]` and [`Bytes`] as byte strings; other slices and `Vec`s
/// as lists; tuples (up to six fields) as lists, as oxenc does; `BTreeMap`s with byte-string-like
/// keys (see [`BtKey`]) as dicts. `u8` is left out so that `[u8]` and `Vec<u8>` can mean byte
/// strings (bt's main type) rather than lists of small integers; use [`BtValue::from`] or widen
/// to `u16` for a lone byte-sized number.
pub trait ToBt {
    /// Appends this value's canonical bt encoding to `out`.
    fn write_bt(&self, out: &mut Vec<u8>);

    /// This value's canonical bt encoding.
    #[must_use]
    fn to_bt_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_bt(&mut out);
        out
    }
}

macro_rules! int_to_bt {
    ($($t:ty),*) => {$(
        impl ToBt for $t {
            fn write_bt(&self, out: &mut Vec<u8>) {
                write_int(out, BtInteger::to_wide(*self));
            }
        }
    )*};
}

int_to_bt!(u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// Byte-string types: each writes its bytes as one bt string.
macro_rules! bytes_to_bt {
    ($($t:ty => |$b:ident| $bytes:expr),* $(,)?) => {$(
        impl ToBt for $t {
            fn write_bt(&self, out: &mut Vec<u8>) {
                let $b = self;
                write_bytes(out, $bytes);
            }
        }
    )*};
}

bytes_to_bt!(
    [u8] => |b| b,
    Vec<u8> => |b| b,
    str => |b| b.as_bytes(),
    String => |b| b.as_bytes(),
    Bytes => |b| b,
);

impl<const N: usize> ToBt for [u8; N] {
    fn write_bt(&self, out: &mut Vec<u8>) {
        write_bytes(out, self);
    }
}

impl<T: ToBt + ?Sized> ToBt for &T {
    fn write_bt(&self, out: &mut Vec<u8>) {
        (**self).write_bt(out);
    }
}

impl<T: ToBt> ToBt for [T] {
    fn write_bt(&self, out: &mut Vec<u8>) {
        out.push(b'l');
        for v in self {
            v.write_bt(out);
        }
        out.push(b'e');
    }
}

impl<T: ToBt> ToBt for Vec<T> {
    fn write_bt(&self, out: &mut Vec<u8>) {
        self.as_slice().write_bt(out);
    }
}

impl ToBt for BtValue {
    fn write_bt(&self, out: &mut Vec<u8>) {
        match self {
            Self::Bytes(b) => write_bytes(out, b),
            Self::Int(i) => write_int(out, i128::from(*i)),
            Self::UInt(u) => write_int(out, i128::from(*u)),
            Self::List(l) => l.write_bt(out),
            Self::Dict(d) => d.write_bt(out),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Map key types whose `Ord` is the byte order bt requires, so a `BTreeMap` of them iterates in
/// canonical order. Sealed.
pub trait BtKey: Ord + sealed::Sealed {
    /// The key's bytes.
    fn key_bytes(&self) -> &[u8];
}

macro_rules! bt_key {
    ($($t:ty => |$k:ident| $bytes:expr),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl BtKey for $t {
            fn key_bytes(&self) -> &[u8] {
                let $k = self;
                $bytes
            }
        }
    )*};
}

bt_key!(
    Vec<u8> => |k| k,
    String => |k| k.as_bytes(),
    &str => |k| k.as_bytes(),
    &[u8] => |k| k,
    Bytes => |k| k,
);

impl<const N: usize> sealed::Sealed for [u8; N] {}
impl<const N: usize> BtKey for [u8; N] {
    fn key_bytes(&self) -> &[u8] {
        self
    }
}

impl<K: BtKey, V: ToBt> ToBt for BTreeMap<K, V> {
    fn write_bt(&self, out: &mut Vec<u8>) {
        out.push(b'd');
        for (k, v) in self {
            write_bytes(out, k.key_bytes());
            v.write_bt(out);
        }
        out.push(b'e');
    }
}

macro_rules! tuple_to_bt {
    ($($name:ident)+) => {
        impl<$($name: ToBt),+> ToBt for ($($name,)+) {
            #[allow(non_snake_case)]
            fn write_bt(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                out.push(b'l');
                $($name.write_bt(out);)+
                out.push(b'e');
            }
        }
    };
}

tuple_to_bt!(A);
tuple_to_bt!(A B);
tuple_to_bt!(A B C);
tuple_to_bt!(A B C D);
tuple_to_bt!(A B C D E);
tuple_to_bt!(A B C D E F);
