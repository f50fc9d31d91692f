//! z-base-32: five bits per character from the alphabet `ybndrfg8ejkmcpqxot1uwisza345h769`,
//! written lower-case, read in either case, never padded.
//!
//! Bits are packed most significant first with no block structure, as oxenc does: `n` bytes
//! become `⌈8n/5⌉` characters (32 bytes ↔ 52 characters, 5 zero bytes ↔ `yyyyyyyy`), and the
//! final character carries the leftover bits followed by zeros. A text whose length modulo 8 is
//! 1, 3 or 6 cannot come out of the encoder and is rejected. See the [module
//! docs](super#superfluous-trailing-bits) for how non-zero leftover bits are treated.

use alloc::string::String;
use alloc::vec::Vec;

use super::{EncodingError, Scheme};

/// The z-base-32 alphabet, in symbol order.
pub const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

const TABLE: [u8; 256] = super::reverse_table(ALPHABET, true);
const WIDTH: u32 = 5;

/// Number of characters that encode `byte_len` bytes: `⌈8n/5⌉` (saturating at `usize::MAX`).
#[must_use]
pub const fn encoded_len(byte_len: usize) -> usize {
    // Characters needed for the 0..=4 bytes left after whole 5-byte groups.
    const TAIL: [usize; 5] = [0, 2, 4, 5, 7];
    (byte_len / 5)
        .saturating_mul(8)
        .saturating_add(TAIL[byte_len % 5])
}

/// Number of bytes `len` characters decode to: `⌊5·len/8⌋` (exact for every valid length).
#[must_use]
pub const fn decoded_len(len: usize) -> usize {
    (len / 8) * 5 + (len % 8) * 5 / 8
}

/// Whether some byte string encodes to exactly `len` characters (`len % 8` is not 1, 3 or 6).
#[must_use]
pub const fn is_valid_len(len: usize) -> bool {
    !matches!(len % 8, 1 | 3 | 6)
}

/// Whether `input` is a z-base-32 encoding: alphabet characters only (either case) and a length
/// the encoder can produce.
#[must_use]
pub fn is_base32z(input: impl AsRef<[u8]>) -> bool {
    let input = input.as_ref();
    is_valid_len(input.len())
        && input
            .iter()
            .all(|&c| TABLE[usize::from(c)] != super::INVALID)
}

/// Encodes `bytes` as lower-case z-base-32.
#[must_use]
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    super::pack(bytes, WIDTH, ALPHABET, &mut out);
    out
}

const CODEC: super::Codec = super::Codec {
    scheme: Scheme::Base32z,
    symbols: |input| super::length_checked(Scheme::Base32z, input, is_valid_len(input.len())),
    decoded_len,
    fill: |symbols, out| super::unpack(symbols, Scheme::Base32z, &TABLE, WIDTH, out),
};

/// Decodes z-base-32 of either case, ignoring the superfluous bits of the last character.
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, EncodingError> {
    CODEC.decode(input.as_ref())
}

/// Like [`decode`], but the superfluous bits of the last character must be zero, so every byte
/// string has exactly one accepted spelling (up to letter case).
pub fn decode_strict(input: impl AsRef<[u8]>) -> Result<Vec<u8>, EncodingError> {
    CODEC.decode_strict(input.as_ref())
}

/// Decodes z-base-32 that must encode exactly `N` bytes (e.g. 52 characters for a 32-byte key),
/// without allocating. Superfluous trailing bits are ignored as in [`decode`].
pub fn decode_array<const N: usize>(input: impl AsRef<[u8]>) -> Result<[u8; N], EncodingError> {
    CODEC.decode_array(input.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_key::{PK, PK_B32Z};
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn counting() -> Vec<u8> {
        [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef].repeat(4)
    }
    const COUNTING_B32Z: &str = "yrtwk3hjixg66yjdeiuauk6p7hy1gtm8tgih55abrpnsxnpm3zzo";

    #[test]
    fn oxenc_vectors_encode() {
        assert_eq!(encode([0u8; 5]), "yyyyyyyy");
        assert_eq!(encode(counting()), COUNTING_B32Z);
        assert_eq!(encode(PK), PK_B32Z);
        assert_eq!(encode(b"hello"), "pb1sa5dx");
        assert_eq!(encode(b"Hello"), "jb1sa5dx");
        assert_eq!(encode([0x00, 0xff]), "yd9o");
        assert_eq!(encode([0x00, 0x44, 0x32, 0x17]), "ybndrfa");
        assert_eq!(encode([]), "");
    }

    #[test]
    fn oxenc_vectors_decode() {
        assert_eq!(decode("yyyyyyyy").unwrap(), [0u8; 5]);
        assert_eq!(decode(COUNTING_B32Z).unwrap(), counting());
        assert_eq!(
            decode(COUNTING_B32Z.to_ascii_uppercase()).unwrap(),
            counting()
        );
        assert_eq!(decode("ybndrfg8").unwrap(), [0x00, 0x44, 0x32, 0x14, 0xc7]);
        assert_eq!(decode("ybndrfa").unwrap(), [0x00, 0x44, 0x32, 0x17]);
        assert_eq!(decode("yojky").unwrap(), [0x04, 0x12, 0xa0]);
        assert_eq!(decode("yd9o").unwrap(), [0x00, 0xff]);
        assert_eq!(decode_array::<32>(PK_B32Z).unwrap(), PK);
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn superfluous_bits_are_ignored_by_decode_and_rejected_by_strict() {
        // The last character of a 7-character text carries 3 superfluous bits.
        assert_eq!(decode("ybndrf4").unwrap(), [0x00, 0x44, 0x32, 0x17]);
        assert_eq!(encode(decode("ybndrf4").unwrap()), "ybndrfa");
        assert_eq!(decode("9999").unwrap(), [0xff, 0xff]);
        assert_eq!(decode("999o").unwrap(), [0xff, 0xff]);
        assert_eq!(decode_strict("999o").unwrap(), [0xff, 0xff]);
        assert_eq!(
            decode_strict("9999").unwrap_err(),
            EncodingError::NonZeroTrailingBits {
                scheme: Scheme::Base32z
            }
        );
        assert!(decode_strict("ybndrf4").is_err());
        assert_eq!(decode_strict("YBNDRFA").unwrap(), [0x00, 0x44, 0x32, 0x17]);
    }

    #[test]
    fn is_base32z_rejects_impossible_lengths() {
        let lengths: Vec<bool> = (0..=9).map(|n| is_base32z("y".repeat(n))).collect();
        assert_eq!(
            lengths,
            [
                true, false, true, false, true, true, false, true, true, false
            ]
        );
        assert!(is_base32z(PK_B32Z));
        assert!(is_base32z(PK_B32Z.to_ascii_uppercase()));
    }

    #[test]
    fn is_base32z_rejects_characters_outside_the_alphabet() {
        // l, v, 0 and 2 are the letters and digits z-base-32 leaves out.
        for bad in ["abcl", "abcv", "abc0", "abc2", "ab c", "ab=c"] {
            assert!(!is_base32z(bad), "{bad}");
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            decode("abc").unwrap_err(),
            EncodingError::InvalidLength {
                scheme: Scheme::Base32z,
                len: 3
            }
        );
        assert_eq!(
            decode("abcdefghijkmno").unwrap_err(),
            EncodingError::InvalidLength {
                scheme: Scheme::Base32z,
                len: 14
            }
        );
        assert_eq!(
            decode("abcl").unwrap_err().to_string(),
            "invalid base32z character 'l' at index 3"
        );
        assert_eq!(
            decode_array::<32>(&PK_B32Z[..50]).unwrap_err(),
            EncodingError::WrongDecodedLength {
                scheme: Scheme::Base32z,
                expected: 32,
                actual: 31
            }
        );
        assert!(matches!(
            decode_array::<32>(&PK_B32Z[..51]).unwrap_err(),
            EncodingError::InvalidLength { len: 51, .. }
        ));
    }

    #[test]
    fn size_helpers_match_oxenc() {
        for (bytes, chars) in [
            (1, 2),
            (2, 4),
            (3, 5),
            (4, 7),
            (5, 8),
            (30, 48),
            (31, 50),
            (32, 52),
            (33, 53),
            (100, 160),
        ] {
            assert_eq!(encoded_len(bytes), chars, "{bytes} bytes");
            if is_valid_len(chars) {
                assert_eq!(decoded_len(chars), bytes, "{chars} chars");
            }
        }
        assert_eq!(decoded_len(53), 33);
        assert_eq!(encoded_len(usize::MAX), usize::MAX);
        assert_eq!(decoded_len(usize::MAX), usize::MAX / 8 * 5 + 4);
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = encode(&bytes);
            prop_assert_eq!(text.len(), encoded_len(bytes.len()));
            prop_assert!(is_base32z(&text));
            prop_assert_eq!(&decode(&text).unwrap(), &bytes);
            prop_assert_eq!(&decode_strict(&text).unwrap(), &bytes);
            prop_assert_eq!(&decode(text.to_ascii_uppercase()).unwrap(), &bytes);
        }

        #[test]
        fn key_sized_round_trip(key in any::<[u8; 32]>()) {
            let text = encode(key);
            prop_assert_eq!(text.len(), 52);
            prop_assert_eq!(decode_array::<32>(&text).unwrap(), key);
        }

        #[test]
        fn strict_accepts_exactly_the_canonical_spelling(
            text in (0usize..4, proptest::sample::select(&[0usize, 2, 4, 5, 7][..]))
                .prop_flat_map(|(groups, tail)| {
                    proptest::collection::vec(proptest::sample::select(&ALPHABET[..]), 8 * groups + tail)
                })
                .prop_map(|chars| String::from_utf8(chars).unwrap())
        ) {
            let bytes = decode(&text).unwrap();
            prop_assert_eq!(bytes.len(), decoded_len(text.len()));
            prop_assert_eq!(decode_strict(&text).is_ok(), encode(&bytes) == text);
        }

        #[test]
        fn arbitrary_input_never_panics_and_agrees_with_is_base32z(
            input in proptest::collection::vec(any::<u8>(), 0..80)
        ) {
            let decoded = decode(&input);
            prop_assert_eq!(decoded.is_ok(), is_base32z(&input));
            let _ = decode_strict(&input);
            let _ = decode_array::<32>(&input);
        }

        #[test]
        fn arbitrary_strings_never_panic(input in ".{0,60}") {
            prop_assert_eq!(decode(&input).is_ok(), is_base32z(&input));
        }
    }
}
