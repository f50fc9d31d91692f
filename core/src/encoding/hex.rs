//! Hexadecimal: two digits per byte, written lower-case, read in either case.

use alloc::string::String;
use alloc::vec::Vec;

use super::{EncodingError, Scheme};

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Number of hex digits that encode `byte_len` bytes (saturating at `usize::MAX`).
#[must_use]
pub const fn encoded_len(byte_len: usize) -> usize {
    byte_len.saturating_mul(2)
}

/// Number of bytes `hex_len` digits decode to (an odd trailing digit does not count).
#[must_use]
pub const fn decoded_len(hex_len: usize) -> usize {
    hex_len / 2
}

/// Whether `c` is a hex digit (`0-9`, `a-f`, `A-F`).
#[must_use]
pub const fn is_hex_digit(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// Whether `input` is a complete hex encoding: only hex digits, and an even number of them.
#[must_use]
pub fn is_hex(input: impl AsRef<[u8]>) -> bool {
    let input = input.as_ref();
    input.len() % 2 == 0 && input.iter().all(|&c| is_hex_digit(c))
}

/// Encodes `bytes` as lower-case hex.
#[must_use]
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

const CODEC: super::Codec = super::Codec {
    scheme: Scheme::Hex,
    symbols: |input| super::length_checked(Scheme::Hex, input, input.len() % 2 == 0),
    decoded_len,
    fill: decode_into,
};

/// Decodes hex digits of either case; the length must be even.
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, EncodingError> {
    CODEC.decode(input.as_ref())
}

/// Decodes hex that must encode exactly `N` bytes (e.g. a 32-byte key), without allocating.
pub fn decode_array<const N: usize>(input: impl AsRef<[u8]>) -> Result<[u8; N], EncodingError> {
    CODEC.decode_array(input.as_ref())
}

/// `out` must be exactly half as long as `input`. Hex has no superfluous bits, so the rest is
/// always zero.
fn decode_into(input: &[u8], out: &mut [u8]) -> Result<u32, EncodingError> {
    let digit = |index: usize| {
        let byte = input[index];
        nibble(byte).ok_or(EncodingError::InvalidCharacter {
            scheme: Scheme::Hex,
            index,
            byte,
        })
    };
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = (digit(2 * i)? << 4) | digit(2 * i + 1)?;
    }
    Ok(0)
}

const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_key::{PK, PK_HEX};
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn encodes_lower_case() {
        assert_eq!(encode([0xff, 0x42, 0x12, 0x34]), "ff421234");
        assert_eq!(encode([1, 10, 100, 254]), "010a64fe");
        assert_eq!(encode([]), "");
        assert_eq!(encode(PK), PK_HEX);
    }

    #[test]
    fn decodes_either_case() {
        assert_eq!(
            decode("12345678ffEDbca9").unwrap(),
            [0x12, 0x34, 0x56, 0x78, 0xff, 0xed, 0xbc, 0xa9]
        );
        assert_eq!(decode("48656c6c6f").unwrap(), b"Hello");
        assert_eq!(decode(PK_HEX.to_ascii_uppercase()).unwrap(), PK);
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode_array::<32>(PK_HEX).unwrap(), PK);
    }

    #[test]
    fn is_hex_requires_even_length_and_digits() {
        assert!(is_hex("1234567890abcdefABCDEF1234567890abcdefABCDEF"));
        assert!(!is_hex("1234567890abcdefABCDEF1234567890aGcdefABCDEF"));
        assert!(!is_hex("1234567890abcdefABCDEF1234567890agcdefABCDEF"));
        assert!(!is_hex(b"\x11\xff"));
        assert!(!is_hex("1234567890abcdefABCDEF1234567890abcdefABCDE"));
        assert!(!is_hex("0"));
        assert!(is_hex(""));
        assert!(
            "1234567890abcdefABCDEF1234567890abcdefABCDE"
                .bytes()
                .all(is_hex_digit)
        );
        assert!(!is_hex_digit(b'g') && !is_hex_digit(b' ') && !is_hex_digit(0xff));
    }

    #[test]
    fn rejects_odd_length_and_bad_digits() {
        assert_eq!(
            decode("abc").unwrap_err(),
            EncodingError::InvalidLength {
                scheme: Scheme::Hex,
                len: 3
            }
        );
        assert_eq!(
            decode("0g").unwrap_err(),
            EncodingError::InvalidCharacter {
                scheme: Scheme::Hex,
                index: 1,
                byte: b'g'
            }
        );
        assert_eq!(
            decode("00é00").unwrap_err().to_string(),
            "invalid hex character '\\xc3' at index 2"
        );
    }

    #[test]
    fn decode_array_checks_the_size_first() {
        assert_eq!(
            decode_array::<32>(&PK_HEX[..62]).unwrap_err(),
            EncodingError::WrongDecodedLength {
                scheme: Scheme::Hex,
                expected: 32,
                actual: 31
            }
        );
        assert!(matches!(
            decode_array::<32>(&PK_HEX[..63]).unwrap_err(),
            EncodingError::InvalidLength { len: 63, .. }
        ));
        let mut bad = PK_HEX.as_bytes().to_vec();
        bad[40] = b'x';
        assert!(matches!(
            decode_array::<32>(&bad).unwrap_err(),
            EncodingError::InvalidCharacter { index: 40, .. }
        ));
    }

    #[test]
    fn size_helpers() {
        for (bytes, chars) in [(1, 2), (2, 4), (3, 6), (4, 8), (100, 200)] {
            assert_eq!(encoded_len(bytes), chars);
        }
        for (chars, bytes) in [(2, 1), (4, 2), (6, 3), (98, 49), (7, 3)] {
            assert_eq!(decoded_len(chars), bytes);
        }
        assert_eq!(encoded_len(usize::MAX), usize::MAX);
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = encode(&bytes);
            prop_assert_eq!(text.len(), encoded_len(bytes.len()));
            prop_assert!(is_hex(&text));
            prop_assert_eq!(&decode(&text).unwrap(), &bytes);
            prop_assert_eq!(&decode(text.to_ascii_uppercase()).unwrap(), &bytes);
        }

        #[test]
        fn arbitrary_input_never_panics_and_agrees_with_is_hex(
            input in proptest::collection::vec(any::<u8>(), 0..80)
        ) {
            let decoded = decode(&input);
            prop_assert_eq!(decoded.is_ok(), is_hex(&input));
            if let Ok(bytes) = decoded {
                prop_assert_eq!(bytes.len(), decoded_len(input.len()));
            }
            let _ = decode_array::<4>(&input);
        }

        #[test]
        fn arbitrary_strings_never_panic(input in ".{0,40}") {
            prop_assert_eq!(decode(&input).is_ok(), is_hex(&input));
        }
    }
}
