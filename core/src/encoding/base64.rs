//! Base64 with the standard alphabet (`A-Z a-z 0-9 + /`), as oxenc does it.
//!
//! The encoder writes `=` padding ([`encode`]) or none ([`encode_unpadded`]). The decoders accept
//! both: `=` is allowed only as the last one or two characters of a text whose total length is a
//! multiple of 4. A text of length `4n+1` cannot come out of any encoder and is rejected. See the
//! [module docs](super#superfluous-trailing-bits) for how non-zero leftover bits are treated.

use alloc::string::String;
use alloc::vec::Vec;

use super::{EncodingError, Scheme};

/// The base64 alphabet, in symbol order.
pub const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const TABLE: [u8; 256] = super::reverse_table(ALPHABET, false);
const WIDTH: u32 = 6;

/// Number of characters [`encode`] writes for `byte_len` bytes, padding included (saturating at
/// `usize::MAX`).
#[must_use]
pub const fn encoded_len(byte_len: usize) -> usize {
    let tail = if byte_len % 3 == 0 { 0 } else { 4 };
    (byte_len / 3).saturating_mul(4).saturating_add(tail)
}

/// Number of characters [`encode_unpadded`] writes for `byte_len` bytes: `⌈4n/3⌉` (saturating at
/// `usize::MAX`).
#[must_use]
pub const fn encoded_len_unpadded(byte_len: usize) -> usize {
    const TAIL: [usize; 3] = [0, 2, 3];
    (byte_len / 3)
        .saturating_mul(4)
        .saturating_add(TAIL[byte_len % 3])
}

/// Upper bound on the bytes `len` characters decode to: `⌊3·len/4⌋`. Exact for unpadded text; a
/// padded text decodes to one byte less per `=`.
#[must_use]
pub const fn decoded_len(len: usize) -> usize {
    (len / 4) * 3 + (len % 4) * 3 / 4
}

/// Whether `input` is base64: alphabet characters, optionally followed by one or two `=` that pad
/// the total length to a multiple of 4, and a length other than `4n+1`.
#[must_use]
pub fn is_base64(input: impl AsRef<[u8]>) -> bool {
    strip_padding(input.as_ref()).is_ok_and(|data| {
        data.iter()
            .all(|&c| TABLE[usize::from(c)] != super::INVALID)
    })
}

/// Encodes `bytes` as base64 with `=` padding.
#[must_use]
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    super::pack(bytes, WIDTH, ALPHABET, &mut out);
    while out.len() % 4 != 0 {
        out.push('=');
    }
    out
}

/// Encodes `bytes` as base64 without padding.
#[must_use]
pub fn encode_unpadded(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(encoded_len_unpadded(bytes.len()));
    super::pack(bytes, WIDTH, ALPHABET, &mut out);
    out
}

const CODEC: super::Codec = super::Codec {
    scheme: Scheme::Base64,
    symbols: strip_padding,
    decoded_len,
    fill: unpack,
};

/// Decodes base64, padded or not, ignoring the superfluous bits of the last character.
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, EncodingError> {
    CODEC.decode(input.as_ref())
}

/// Like [`decode`], but the superfluous bits of the last character must be zero, so every byte
/// string has exactly one accepted spelling (with or without its padding).
pub fn decode_strict(input: impl AsRef<[u8]>) -> Result<Vec<u8>, EncodingError> {
    CODEC.decode_strict(input.as_ref())
}

/// Decodes base64 (padded or not) that must encode exactly `N` bytes, without allocating.
/// Superfluous trailing bits are ignored as in [`decode`].
pub fn decode_array<const N: usize>(input: impl AsRef<[u8]>) -> Result<[u8; N], EncodingError> {
    CODEC.decode_array(input.as_ref())
}

/// Checks the length and returns the input without its (valid) trailing padding. Any `=` left in
/// the result is misplaced, which [`unpack`] reports.
fn strip_padding(input: &[u8]) -> Result<&[u8], EncodingError> {
    let input = super::length_checked(Scheme::Base64, input, input.len() % 4 != 1)?;
    if input.len() % 4 != 0 {
        return Ok(input);
    }
    let mut data = input;
    for _ in 0..2 {
        if let Some(rest) = data.strip_suffix(b"=") {
            data = rest;
        }
    }
    Ok(data)
}

fn unpack(data: &[u8], out: &mut [u8]) -> Result<u32, EncodingError> {
    super::unpack(data, Scheme::Base64, &TABLE, WIDTH, out).map_err(|e| match e {
        EncodingError::InvalidCharacter {
            index, byte: b'=', ..
        } => EncodingError::InvalidPadding { index },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_key::{PK, PK_B64};
    use alloc::string::ToString;
    use proptest::prelude::*;

    const LEVIATHAN: &str = "Man is distinguished, not only by his reason, but by this singular passion from other animals, which is a lust of the mind, that by a perseverance of delight in the continued and indefatigable generation of knowledge, exceeds the short vehemence of any carnal pleasure.";
    const LEVIATHAN_B64: &str = "TWFuIGlzIGRpc3Rpbmd1aXNoZWQsIG5vdCBvbmx5IGJ5IGhpcyByZWFzb24sIGJ1dCBieSB0aGlzIHNpbmd1bGFyIHBhc3Npb24gZnJvbSBvdGhlciBhbmltYWxzLCB3aGljaCBpcyBhIGx1c3Qgb2YgdGhlIG1pbmQsIHRoYXQgYnkgYSBwZXJzZXZlcmFuY2Ugb2YgZGVsaWdodCBpbiB0aGUgY29udGludWVkIGFuZCBpbmRlZmF0aWdhYmxlIGdlbmVyYXRpb24gb2Yga25vd2xlZGdlLCBleGNlZWRzIHRoZSBzaG9ydCB2ZWhlbWVuY2Ugb2YgYW55IGNhcm5hbCBwbGVhc3VyZS4=";

    #[test]
    fn rfc4648_vectors() {
        for (plain, padded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain), padded);
            assert_eq!(encode_unpadded(plain), padded.trim_end_matches('='));
            assert_eq!(decode(padded).unwrap(), plain.as_bytes());
            assert_eq!(
                decode(padded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
    }

    #[test]
    fn oxenc_vectors() {
        assert_eq!(encode([0, 0, 0]), "AAAA");
        assert_eq!(encode([1, 2, 3]), "AQID");
        assert_eq!(encode([0, 0, 0, 0]), "AAAAAA==");
        assert_eq!(encode([0, 0, 0, 0xff]), "AAAA/w==");
        assert_eq!(encode([0, 0, 0, 0xff, 0xff]), "AAAA//8=");
        assert_eq!(encode([0, 0, 0, 0xff, 0xff, 0xff]), "AAAA////");
        assert_eq!(encode([0x00, 0xff]), "AP8=");
        assert_eq!(encode(LEVIATHAN), LEVIATHAN_B64);
        assert_eq!(decode(LEVIATHAN_B64).unwrap(), LEVIATHAN.as_bytes());
        assert_eq!(decode("A+/A").unwrap(), [0x03, 0xef, 0xc0]);
        assert_eq!(decode("/wA=").unwrap(), [0xff, 0x00]);
        assert_eq!(decode("yojk").unwrap(), [0xca, 0x88, 0xe4]);
        assert_eq!(decode("SGVsbG8=").unwrap(), b"Hello");
        assert_eq!(decode("SGVsbG8").unwrap(), b"Hello");
        assert_eq!(encode(PK), PK_B64);
        assert_eq!(encode_unpadded(PK), &PK_B64[..43]);
        assert_eq!(decode_array::<32>(PK_B64).unwrap(), PK);
        assert_eq!(decode_array::<32>(&PK_B64[..43]).unwrap(), PK);
    }

    #[test]
    fn superfluous_bits_are_ignored_by_decode_and_rejected_by_strict() {
        for text in ["YWJjZA==", "YWJjZA", "YWJjZB", "YWJjZP"] {
            assert_eq!(decode(text).unwrap(), b"abcd", "{text}");
        }
        for text in ["//8=", "///=", "//9=", "//+="] {
            assert_eq!(decode(text).unwrap(), [0xff, 0xff], "{text}");
        }
        assert_eq!(decode_strict("YWJjZA==").unwrap(), b"abcd");
        assert_eq!(decode_strict("YWJjZA").unwrap(), b"abcd");
        assert_eq!(
            decode_strict("YWJjZB").unwrap_err(),
            EncodingError::NonZeroTrailingBits {
                scheme: Scheme::Base64
            }
        );
        assert!(decode_strict("///=").is_err());
    }

    #[test]
    fn is_base64_matches_oxenc() {
        for good in [
            "YWJjZGVm", "YWJjZGU", "YWJjZGU=", "YWJjZA==", "YWJjZA", "YWJjZB", "", "/wA=",
        ] {
            assert!(is_base64(good), "{good}");
        }
        for bad in [
            "YWJjZ=", "YYYYA", "YWJj=", "YWJj=A", "YWJjA===", "YWJ[", "YWJ.", "_YWJ", "====",
            "A===", "AA=", "==", "YWJjZA-_",
        ] {
            assert!(!is_base64(bad), "{bad}");
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            decode("YYYYA").unwrap_err(),
            EncodingError::InvalidLength {
                scheme: Scheme::Base64,
                len: 5
            }
        );
        assert_eq!(
            decode("YWJjZ=").unwrap_err(),
            EncodingError::InvalidPadding { index: 5 }
        );
        assert_eq!(
            decode("YWJjA===").unwrap_err(),
            EncodingError::InvalidPadding { index: 5 }
        );
        assert_eq!(
            decode("YWJ[").unwrap_err().to_string(),
            "invalid base64 character '[' at index 3"
        );
        // URL-safe characters are not part of the standard alphabet.
        assert!(matches!(
            decode("ab-_").unwrap_err(),
            EncodingError::InvalidCharacter {
                index: 2,
                byte: b'-',
                ..
            }
        ));
        assert_eq!(
            decode_array::<32>(&PK_B64[..42]).unwrap_err(),
            EncodingError::WrongDecodedLength {
                scheme: Scheme::Base64,
                expected: 32,
                actual: 31
            }
        );
        // Two padding characters leave 42 data characters: 31 bytes, not a key.
        let double_padded = alloc::format!("{}==", &PK_B64[..42]);
        assert!(decode_array::<32>(&double_padded).is_err());
    }

    #[test]
    fn size_helpers_match_oxenc() {
        for (bytes, chars) in [
            (1, 4),
            (2, 4),
            (3, 4),
            (4, 8),
            (5, 8),
            (6, 8),
            (30, 40),
            (31, 44),
            (32, 44),
            (33, 44),
            (100, 136),
        ] {
            assert_eq!(encoded_len(bytes), chars, "{bytes} bytes");
        }
        for (chars, bytes) in [
            (136, 102),
            (134, 100),
            (44, 33),
            (43, 32),
            (42, 31),
            (40, 30),
            (8, 6),
            (7, 5),
            (6, 4),
            (4, 3),
            (3, 2),
            (2, 1),
        ] {
            assert_eq!(decoded_len(chars), bytes, "{chars} chars");
        }
        for (bytes, chars) in [(0, 0), (1, 2), (2, 3), (3, 4), (32, 43)] {
            assert_eq!(encoded_len_unpadded(bytes), chars);
        }
        assert_eq!(encoded_len(usize::MAX), usize::MAX);
        assert_eq!(encoded_len_unpadded(usize::MAX), usize::MAX);
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let padded = encode(&bytes);
            let unpadded = encode_unpadded(&bytes);
            prop_assert_eq!(padded.len(), encoded_len(bytes.len()));
            prop_assert_eq!(unpadded.len(), encoded_len_unpadded(bytes.len()));
            prop_assert_eq!(padded.trim_end_matches('='), unpadded.as_str());
            prop_assert!(is_base64(&padded) && is_base64(&unpadded));
            prop_assert_eq!(&decode(&padded).unwrap(), &bytes);
            prop_assert_eq!(&decode(&unpadded).unwrap(), &bytes);
            prop_assert_eq!(&decode_strict(&padded).unwrap(), &bytes);
            prop_assert_eq!(&decode_strict(&unpadded).unwrap(), &bytes);
            prop_assert_eq!(decoded_len(unpadded.len()), bytes.len());
        }

        #[test]
        fn key_sized_round_trip(key in any::<[u8; 32]>()) {
            prop_assert_eq!(decode_array::<32>(encode(key)).unwrap(), key);
            prop_assert_eq!(decode_array::<32>(encode_unpadded(key)).unwrap(), key);
        }

        #[test]
        fn strict_accepts_exactly_the_canonical_spelling(
            text in (0usize..6, proptest::sample::select(&[0usize, 2, 3][..]))
                .prop_flat_map(|(groups, tail)| {
                    proptest::collection::vec(proptest::sample::select(&ALPHABET[..]), 4 * groups + tail)
                })
                .prop_map(|chars| String::from_utf8(chars).unwrap())
        ) {
            let bytes = decode(&text).unwrap();
            prop_assert_eq!(decode_strict(&text).is_ok(), encode_unpadded(&bytes) == text);
        }

        #[test]
        fn arbitrary_input_never_panics_and_agrees_with_is_base64(
            input in proptest::collection::vec(any::<u8>(), 0..80)
        ) {
            let decoded = decode(&input);
            prop_assert_eq!(decoded.is_ok(), is_base64(&input));
            if let Ok(bytes) = decoded {
                prop_assert!(bytes.len() <= decoded_len(input.len()));
            }
            let _ = decode_strict(&input);
            let _ = decode_array::<32>(&input);
        }

        #[test]
        fn padding_heavy_strings_never_panic(input in "[A-Za-z0-9+/=]{0,12}") {
            prop_assert_eq!(decode(&input).is_ok(), is_base64(&input));
        }
    }
}
