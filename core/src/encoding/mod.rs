//! Text encodings of binary data, bit-compatible with oxenc (the encoding library OxenMQ uses).
//!
//! Three schemes, one module each: [`hex`], [`base32z`] (z-base-32) and [`base64`] (standard
//! alphabet). Every encoder is total. Every decoder validates its whole input and reports the
//! first problem as an [`EncodingError`]; oxenc's decoders instead leave invalid input undefined,
//! so where oxenc's `is_*` predicate accepts a string our decoder accepts it and yields the same
//! bytes, and where the predicate rejects it our decoder returns an error.
//!
//! ## Superfluous trailing bits
//!
//! base32z and base64 carry 5 and 6 bits per character, so the last character of an encoding
//! usually holds a few bits beyond the last whole byte. The encoders always write them as zero.
//! The ordinary decoders ignore them, as oxenc does, so `"9999"` and `"999o"` both decode to
//! `ff ff` in base32z; this keeps every address OxenMQ accepts acceptable here. When one
//! canonical text per value matters (for example a key used as a map key), use the `decode_strict`
//! variants, which reject non-zero superfluous bits with [`EncodingError::NonZeroTrailingBits`].
//!
//! Decoders take `impl AsRef<[u8]>`, so both `&str` and raw bytes from the network work; error
//! indices are byte offsets into that input.
//!
//! ```
//! use lokimq_core::encoding::{base32z, base64, hex, EncodingError, Scheme};
//!
//! assert_eq!(base32z::encode([0u8; 5]), "yyyyyyyy");
//! assert_eq!(base64::decode("SGVsbG8")?, b"Hello");
//! assert_eq!(hex::decode_array::<2>("ff42")?, [0xff, 0x42]);
//! assert_eq!(
//!     hex::decode("abc"),
//!     Err(EncodingError::InvalidLength { scheme: Scheme::Hex, len: 3 })
//! );
//! # Ok::<(), EncodingError>(())
//! ```

pub mod base32z;
pub mod base64;
pub mod hex;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Which encoding an [`EncodingError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// Hexadecimal.
    Hex,
    /// z-base-32.
    Base32z,
    /// Standard base64.
    Base64,
}

impl Scheme {
    /// The rule an input length must obey, for error messages.
    const fn length_rule(self) -> &'static str {
        match self {
            Self::Hex => "hex input must have an even length",
            Self::Base32z => "base32z length modulo 8 cannot be 1, 3 or 6",
            Self::Base64 => "base64 length modulo 4 cannot be 1",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hex => "hex",
            Self::Base32z => "base32z",
            Self::Base64 => "base64",
        })
    }
}

/// Why a text could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// No encoder produces a text of this length.
    #[error("invalid {scheme} length {len}: {}", scheme.length_rule())]
    InvalidLength {
        /// The encoding.
        scheme: Scheme,
        /// The input length in bytes (padding included).
        len: usize,
    },
    /// A byte outside the alphabet.
    #[error("invalid {scheme} character '{}' at index {index}", core::ascii::escape_default(*byte))]
    InvalidCharacter {
        /// The encoding.
        scheme: Scheme,
        /// Byte offset of the offending byte.
        index: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A base64 `=` somewhere other than the one or two final characters of a length-4n text.
    #[error("misplaced base64 padding '=' at index {index}")]
    InvalidPadding {
        /// Byte offset of the misplaced `=`.
        index: usize,
    },
    /// The text is valid but does not decode to the fixed size the caller asked for.
    #[error("{scheme} input decodes to {actual} bytes, expected {expected}")]
    WrongDecodedLength {
        /// The encoding.
        scheme: Scheme,
        /// The size the caller asked for.
        expected: usize,
        /// The size the input decodes to.
        actual: usize,
    },
    /// A strict decoder found non-zero bits after the last whole byte.
    #[error(
        "non-canonical {scheme}: the superfluous trailing bits of the last character are not zero"
    )]
    NonZeroTrailingBits {
        /// The encoding.
        scheme: Scheme,
    },
}

/// How one scheme reads text. The length and size checks every decoder makes, and their order
/// (length, then size, then characters, then trailing bits), are written once here.
struct Codec {
    scheme: Scheme,
    /// Checks the input length and returns the symbols to read (base64 drops its padding).
    symbols: fn(&[u8]) -> Result<&[u8], EncodingError>,
    /// How many bytes that many symbols decode to.
    decoded_len: fn(usize) -> usize,
    /// Fills `out` (exactly `decoded_len` bytes) from the symbols and returns the superfluous
    /// trailing bits, as [`unpack`] does.
    fill: fn(&[u8], &mut [u8]) -> Result<u32, EncodingError>,
}

impl Codec {
    /// Decodes to a new buffer; also returns the superfluous trailing bits.
    fn decode_with_rest(&self, input: &[u8]) -> Result<(Vec<u8>, u32), EncodingError> {
        let symbols = (self.symbols)(input)?;
        let mut out = vec![0; (self.decoded_len)(symbols.len())];
        let rest = (self.fill)(symbols, &mut out)?;
        Ok((out, rest))
    }

    /// Decodes, ignoring superfluous trailing bits.
    fn decode(&self, input: &[u8]) -> Result<Vec<u8>, EncodingError> {
        Ok(self.decode_with_rest(input)?.0)
    }

    /// Decodes, rejecting non-zero superfluous trailing bits.
    fn decode_strict(&self, input: &[u8]) -> Result<Vec<u8>, EncodingError> {
        match self.decode_with_rest(input)? {
            (out, 0) => Ok(out),
            _ => Err(EncodingError::NonZeroTrailingBits {
                scheme: self.scheme,
            }),
        }
    }

    /// Decodes exactly `N` bytes without allocating, ignoring superfluous trailing bits.
    fn decode_array<const N: usize>(&self, input: &[u8]) -> Result<[u8; N], EncodingError> {
        let symbols = (self.symbols)(input)?;
        let actual = (self.decoded_len)(symbols.len());
        if actual != N {
            return Err(EncodingError::WrongDecodedLength {
                scheme: self.scheme,
                expected: N,
                actual,
            });
        }
        let mut out = [0; N];
        (self.fill)(symbols, &mut out)?;
        Ok(out)
    }
}

/// Passes `input` on when `valid` (its length is one the scheme's encoder can produce).
const fn length_checked(scheme: Scheme, input: &[u8], valid: bool) -> Result<&[u8], EncodingError> {
    if valid {
        Ok(input)
    } else {
        Err(EncodingError::InvalidLength {
            scheme,
            len: input.len(),
        })
    }
}

/// Marks bytes outside an alphabet in a reverse lookup table.
const INVALID: u8 = 0xff;

/// Builds the byte → symbol-value table for `alphabet`; with `fold_case`, the upper-case form of
/// each lower-case letter decodes to the same value.
const fn reverse_table(alphabet: &[u8], fold_case: bool) -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        let c = alphabet[i];
        // Alphabets hold at most 64 symbols, so the index always fits in a byte.
        table[c as usize] = i as u8;
        if fold_case && c.is_ascii_lowercase() {
            table[c.to_ascii_uppercase() as usize] = i as u8;
        }
        i += 1;
    }
    table
}

/// Writes `bytes` as `width`-bit symbols, most significant bit first; a final partial symbol is
/// padded with zero bits. `alphabet` must hold exactly `1 << width` symbols.
fn pack(bytes: &[u8], width: u32, alphabet: &[u8], out: &mut alloc::string::String) {
    debug_assert_eq!(alphabet.len(), 1 << width);
    let mask = (1u32 << width) - 1;
    let symbol = |v: u32| char::from(alphabet[(v & mask) as usize]);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= width {
            bits -= width;
            out.push(symbol(acc >> bits));
        }
        // Keep only the bits not yet written so `acc` never grows past 8 + width bits.
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(symbol(acc << (width - bits)));
    }
}

/// Reads `width`-bit symbols through `table` into `out`, which must be exactly as long as the
/// number of whole bytes the input carries. Returns the superfluous trailing bits (as a number;
/// zero in a canonical encoding).
fn unpack(
    input: &[u8],
    scheme: Scheme,
    table: &[u8; 256],
    width: u32,
    out: &mut [u8],
) -> Result<u32, EncodingError> {
    let mut slots = out.iter_mut();
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for (index, &byte) in input.iter().enumerate() {
        let value = table[usize::from(byte)];
        if value == INVALID {
            return Err(EncodingError::InvalidCharacter {
                scheme,
                index,
                byte,
            });
        }
        acc = (acc << width) | u32::from(value);
        bits += width;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = slots.next() {
                // `acc` holds exactly `bits + 8` significant bits, so this is one whole byte.
                *slot = (acc >> bits) as u8;
            }
            acc &= (1 << bits) - 1;
        }
    }
    debug_assert!(
        slots.next().is_none(),
        "output longer than the input carries"
    );
    Ok(acc)
}

/// The key oxenc and OxenMQ use in their own encoding and address tests, in each spelling.
#[cfg(test)]
pub(crate) mod test_key {
    pub(crate) const PK: [u8; 32] = [
        0xf1, 0x6b, 0xa5, 0x59, 0x10, 0x39, 0xf0, 0x89, 0xb4, 0x2a, 0x83, 0x41, 0x75, 0x09, 0x30,
        0x94, 0x07, 0x4d, 0x0d, 0x93, 0x7a, 0x79, 0xe5, 0x3e, 0x5c, 0xe7, 0x30, 0xf9, 0x46, 0xe1,
        0x4b, 0x88,
    ];
    pub(crate) const PK_HEX: &str =
        "f16ba5591039f089b42a834175093094074d0d937a79e53e5ce730f946e14b88";
    pub(crate) const PK_B32Z: &str = "6fi4kseo88aeupbkopyzknjo1odw4dcuxjh6kx1hhhax1tzbjqry";
    pub(crate) const PK_B64: &str = "8WulWRA58Im0KoNBdQkwlAdNDZN6eeU+XOcw+UbhS4g=";
    pub(crate) const PK_B64_UNPADDED: &str = "8WulWRA58Im0KoNBdQkwlAdNDZN6eeU+XOcw+UbhS4g";
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn error_texts_are_clear() {
        assert_eq!(
            EncodingError::InvalidLength {
                scheme: Scheme::Hex,
                len: 3
            }
            .to_string(),
            "invalid hex length 3: hex input must have an even length"
        );
        assert_eq!(
            EncodingError::InvalidLength {
                scheme: Scheme::Base32z,
                len: 3
            }
            .to_string(),
            "invalid base32z length 3: base32z length modulo 8 cannot be 1, 3 or 6"
        );
        assert_eq!(
            EncodingError::InvalidLength {
                scheme: Scheme::Base64,
                len: 5
            }
            .to_string(),
            "invalid base64 length 5: base64 length modulo 4 cannot be 1"
        );
        assert_eq!(
            EncodingError::InvalidCharacter {
                scheme: Scheme::Hex,
                index: 2,
                byte: b'g'
            }
            .to_string(),
            "invalid hex character 'g' at index 2"
        );
        assert_eq!(
            EncodingError::InvalidCharacter {
                scheme: Scheme::Base64,
                index: 0,
                byte: 0xc3
            }
            .to_string(),
            "invalid base64 character '\\xc3' at index 0"
        );
        assert_eq!(
            EncodingError::InvalidPadding { index: 5 }.to_string(),
            "misplaced base64 padding '=' at index 5"
        );
        assert_eq!(
            EncodingError::WrongDecodedLength {
                scheme: Scheme::Base32z,
                expected: 32,
                actual: 31
            }
            .to_string(),
            "base32z input decodes to 31 bytes, expected 32"
        );
        assert_eq!(
            EncodingError::NonZeroTrailingBits {
                scheme: Scheme::Base64
            }
            .to_string(),
            "non-canonical base64: the superfluous trailing bits of the last character are not zero"
        );
    }

    #[test]
    fn reverse_table_folds_case_only_when_asked() {
        let folded = reverse_table(b"ab", true);
        assert_eq!(
            (folded[usize::from(b'a')], folded[usize::from(b'B')]),
            (0, 1)
        );
        let exact = reverse_table(b"ab", false);
        assert_eq!(exact[usize::from(b'B')], INVALID);
        assert_eq!(exact[usize::from(b'b')], 1);
    }
}
