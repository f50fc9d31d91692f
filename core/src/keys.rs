//! x25519 keys: a node's long-term identity and the public keys that name its peers.
//!
//! A LokiMQ node is identified by an x25519 public key; CurveZMQ authenticates connections with
//! it and the node addresses service-node peers by it. [`Keypair::from_oxenmq`] applies OxenMQ's
//! construction rules (both keys given and consistent, or both empty to generate), with OxenMQ's
//! exact error texts, so a configuration that OxenMQ rejects is rejected here the same way. Key
//! generation draws from the injected RNG; nothing here touches OS randomness.

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRngCore;
use x25519_dalek::StaticSecret;

use crate::encoding::{EncodingError, base32z, base64, hex};

/// Length in bytes of every x25519 key.
pub const KEY_LEN: usize = 32;

/// Why a keypair could not be built. Display texts are OxenMQ's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Exactly one of the two keys was given.
    #[error(
        "OxenMQ construction failed: one (and only one) of pubkey/privkey is empty. Both must be specified, or both empty to generate a key."
    )]
    OneKeyEmpty,
    /// Service-node mode needs a fixed identity.
    #[error("Cannot construct a service node mode OxenMQ without a keypair")]
    ServiceNodeWithoutKeypair,
    /// The public key is not 32 bytes.
    #[error("pubkey has invalid size {0}, expected 32")]
    InvalidPubkeySize(usize),
    /// The secret key is not 32 bytes.
    #[error("privkey has invalid size {0}, expected 32")]
    InvalidPrivkeySize(usize),
    /// The public key is not the one the secret key derives (e.g. an ed25519 key was passed).
    #[error(
        "Invalid pubkey/privkey values given to OxenMQ construction: pubkey verification failed"
    )]
    VerificationFailed,
    /// A public key given on its own (e.g. a peer's) is not 32 bytes.
    #[error("Invalid pubkey: expected 32 bytes")]
    InvalidPubkey,
    /// Text given as a public key ([`PublicKey`]'s [`FromStr`]) is not 64 hex digits, 52
    /// z-base-32 characters or 43 base64 characters optionally followed by one `=`. The text is
    /// ours (OxenMQ has no such parser outside its address class).
    #[error("invalid public key: {}", PubkeyTextReason { len: *len, encoding: *encoding })]
    InvalidPubkeyText {
        /// The length of the text in bytes.
        len: usize,
        /// Why the text did not decode, when its length is one an encoding of 32 bytes has;
        /// `None` when the length alone rules it out.
        encoding: Option<EncodingError>,
    },
}

/// The detail of [`KeyError::InvalidPubkeyText`]'s message.
struct PubkeyTextReason {
    len: usize,
    encoding: Option<EncodingError>,
}

impl fmt::Display for PubkeyTextReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encoding {
            Some(e) => write!(f, "{e}"),
            None => write!(
                f,
                "expected 64 hex digits, 52 z-base-32 characters or 43 base64 characters, got {} bytes",
                self.len
            ),
        }
    }
}

/// An x25519 public key: a node's identity on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Wraps 32 raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Wraps a slice that must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; KEY_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| KeyError::InvalidPubkey)
    }

    /// The raw 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The raw 32 bytes, by value.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; KEY_LEN] {
        self.0
    }

    /// Writes the key as 64 lowercase hex digits (the form OxenMQ uses for `User-Id`).
    pub fn write_hex(&self, f: &mut impl fmt::Write) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }

    /// The key as 64 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> alloc::string::String {
        let mut s = alloc::string::String::with_capacity(2 * KEY_LEN);
        // Writing into a String cannot fail.
        let _ = self.write_hex(&mut s);
        s
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; KEY_LEN]> for PublicKey {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        self.write_hex(f)?;
        f.write_str(")")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_hex(f)
    }
}

/// Parses a whole string as a key in any encoding an OxenMQ address accepts: 64 hex digits
/// (either case), 52 z-base-32 characters (either case), or 43 base64 characters optionally
/// followed by one `=`. The length picks the encoding, so nothing else (no surrounding
/// whitespace, no `0x`) is accepted.
///
/// ```
/// use lokimq_core::keys::PublicKey;
///
/// let hex: PublicKey = "f16ba5591039f089b42a834175093094074d0d937a79e53e5ce730f946e14b88".parse()?;
/// let b32z: PublicKey = "6fi4kseo88aeupbkopyzknjo1odw4dcuxjh6kx1hhhax1tzbjqry".parse()?;
/// let b64: PublicKey = "8WulWRA58Im0KoNBdQkwlAdNDZN6eeU+XOcw+UbhS4g=".parse()?;
/// assert_eq!(hex, b32z);
/// assert_eq!(hex, b64);
/// assert!("f16b".parse::<PublicKey>().is_err());
/// # Ok::<(), lokimq_core::keys::KeyError>(())
/// ```
impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Bytes, not chars: the decoders reject non-ASCII, and no slicing can split a character.
        let bytes = text.as_bytes();
        let decoded = match bytes.len() {
            64 => hex::decode_array(bytes),
            52 => base32z::decode_array(bytes),
            // The base64 decoder strips padding only from a length-4n text, so a 44th byte
            // decodes to 32 bytes only when it is a single `=`.
            43 | 44 => base64::decode_array(bytes),
            len => {
                return Err(KeyError::InvalidPubkeyText {
                    len,
                    encoding: None,
                });
            }
        };
        decoded.map(Self).map_err(|e| KeyError::InvalidPubkeyText {
            len: bytes.len(),
            encoding: Some(e),
        })
    }
}

/// An x25519 secret key. Zeroed when dropped; never printed.
#[derive(Clone)]
pub struct SecretKey(StaticSecret);

impl SecretKey {
    /// Wraps 32 raw secret bytes (x25519 clamps them when used, as libsodium does).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// Draws a fresh secret from the injected RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        Self::from_bytes(crate::rng::private_array(rng))
    }

    /// The raw secret bytes (as given, before clamping).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    /// The public key this secret derives (`crypto_scalarmult_base`).
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// The dalek secret, for the CURVE code.
    #[must_use]
    pub fn as_dalek(&self) -> &StaticSecret {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A long-term x25519 keypair whose public half is known to match its secret half.
#[derive(Clone, Debug)]
pub struct Keypair {
    public: PublicKey,
    secret: SecretKey,
}

impl Keypair {
    /// Builds a keypair from a secret, deriving the public key.
    #[must_use]
    pub fn from_secret(secret: SecretKey) -> Self {
        Self {
            public: secret.public_key(),
            secret,
        }
    }

    /// Builds a keypair from raw secret bytes, deriving the public key.
    #[must_use]
    pub fn from_secret_bytes(secret: [u8; KEY_LEN]) -> Self {
        Self::from_secret(SecretKey::from_bytes(secret))
    }

    /// Generates a fresh keypair from the injected RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(SecretKey::generate(rng))
    }

    /// Builds a keypair from both halves, checking that `public` is the key `secret` derives.
    pub fn from_parts(public: &[u8], secret: &[u8]) -> Result<Self, KeyError> {
        let public = <[u8; KEY_LEN]>::try_from(public)
            .map_err(|_| KeyError::InvalidPubkeySize(public.len()))?;
        let secret = <[u8; KEY_LEN]>::try_from(secret)
            .map_err(|_| KeyError::InvalidPrivkeySize(secret.len()))?;
        let pair = Self::from_secret_bytes(secret);
        if pair.public.0 != public {
            return Err(KeyError::VerificationFailed);
        }
        Ok(pair)
    }

    /// OxenMQ's constructor rules: both keys empty generates a keypair (refused in service-node
    /// mode), exactly one empty is an error, otherwise both must be 32 bytes and consistent.
    pub fn from_oxenmq<R: CryptoRngCore + ?Sized>(
        public: &[u8],
        secret: &[u8],
        service_node: bool,
        rng: &mut R,
    ) -> Result<Self, KeyError> {
        match (public.is_empty(), secret.is_empty()) {
            (true, true) if service_node => Err(KeyError::ServiceNodeWithoutKeypair),
            (true, true) => Ok(Self::generate(rng)),
            (true, false) | (false, true) => Err(KeyError::OneKeyEmpty),
            (false, false) => Self::from_parts(public, secret),
        }
    }

    /// The public half.
    #[must_use]
    pub const fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The secret half.
    #[must_use]
    pub const fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn unhex(s: &str) -> [u8; 32] {
        hex::decode_array(s).unwrap()
    }

    // The long-term keys of vectors/curve-kat.txt.
    const C_PUB: &str = "bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518";
    const C_SEC: &str = "7bb864b489afa3671fbe69101f94b38972f24816dfb01b51656b3fec8dfd0888";

    #[test]
    fn derives_the_libsodium_public_key() {
        let pair = Keypair::from_secret_bytes(unhex(C_SEC));
        assert_eq!(pair.public().to_hex(), C_PUB);
        assert_eq!(pair.public().to_string(), C_PUB);
    }

    #[test]
    fn from_parts_accepts_a_matching_pair() {
        let pair = Keypair::from_parts(&unhex(C_PUB), &unhex(C_SEC)).unwrap();
        assert_eq!(pair.secret().to_bytes(), unhex(C_SEC));
    }

    #[test]
    fn from_parts_rejects_a_mismatched_pair() {
        let mut public = unhex(C_PUB);
        public[0] ^= 1;
        let err = Keypair::from_parts(&public, &unhex(C_SEC)).unwrap_err();
        assert_eq!(err, KeyError::VerificationFailed);
        assert_eq!(
            err.to_string(),
            "Invalid pubkey/privkey values given to OxenMQ construction: pubkey verification failed"
        );
    }

    #[test]
    fn oxenmq_rules_and_texts() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let p = unhex(C_PUB);
        let s = unhex(C_SEC);
        assert_eq!(
            Keypair::from_oxenmq(&p, &[], false, &mut rng)
                .unwrap_err()
                .to_string(),
            "OxenMQ construction failed: one (and only one) of pubkey/privkey is empty. Both must be specified, or both empty to generate a key."
        );
        assert_eq!(
            Keypair::from_oxenmq(&[], &s, false, &mut rng).unwrap_err(),
            KeyError::OneKeyEmpty
        );
        assert_eq!(
            Keypair::from_oxenmq(&[], &[], true, &mut rng)
                .unwrap_err()
                .to_string(),
            "Cannot construct a service node mode OxenMQ without a keypair"
        );
        assert_eq!(
            Keypair::from_oxenmq(&p[..31], &s, false, &mut rng)
                .unwrap_err()
                .to_string(),
            "pubkey has invalid size 31, expected 32"
        );
        assert_eq!(
            Keypair::from_oxenmq(&p, &[0u8; 33], false, &mut rng)
                .unwrap_err()
                .to_string(),
            "privkey has invalid size 33, expected 32"
        );
        let generated = Keypair::from_oxenmq(&[], &[], false, &mut rng).unwrap();
        assert_eq!(generated.secret().public_key(), *generated.public());
        let given = Keypair::from_oxenmq(&p, &s, true, &mut rng).unwrap();
        assert_eq!(given.public().as_bytes(), &p);
    }

    #[test]
    fn generation_is_deterministic_under_a_seed() {
        let a = Keypair::generate(&mut ChaCha20Rng::seed_from_u64(7));
        let b = Keypair::generate(&mut ChaCha20Rng::seed_from_u64(7));
        let c = Keypair::generate(&mut ChaCha20Rng::seed_from_u64(8));
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
    }

    #[test]
    fn public_key_from_slice_checks_length() {
        assert_eq!(
            PublicKey::from_slice(&[1u8; 31]).unwrap_err().to_string(),
            "Invalid pubkey: expected 32 bytes"
        );
        assert!(PublicKey::from_slice(&[1u8; 32]).is_ok());
    }

    #[test]
    fn public_keys_parse_from_every_encoding() {
        use crate::encoding::test_key::{PK, PK_B32Z, PK_B64, PK_B64_UNPADDED, PK_HEX};
        let want = PublicKey::from_bytes(PK);
        let upper_b32z = PK_B32Z.to_ascii_uppercase();
        let upper_hex = PK_HEX.to_ascii_uppercase();
        for text in [
            PK_HEX,
            upper_hex.as_str(),
            PK_B32Z,
            upper_b32z.as_str(),
            PK_B64,
            PK_B64_UNPADDED,
        ] {
            assert_eq!(text.parse::<PublicKey>(), Ok(want), "{text}");
        }
        // Display writes hex, which parses back.
        assert_eq!(want.to_string().parse::<PublicKey>(), Ok(want));
    }

    #[test]
    fn public_key_text_of_a_wrong_length_is_refused() {
        use crate::encoding::test_key::{PK_B32Z, PK_B64_UNPADDED, PK_HEX};
        for text in [
            "",
            &PK_HEX[..63],
            &PK_HEX[..62],
            &alloc::format!("{PK_HEX}0"),
            &alloc::format!("{PK_HEX}00"),
            &PK_B32Z[..51],
            &alloc::format!("{PK_B32Z}y"),
            &PK_B64_UNPADDED[..42],
            &alloc::format!("{PK_B64_UNPADDED}=="),
        ] {
            assert_eq!(
                text.parse::<PublicKey>(),
                Err(KeyError::InvalidPubkeyText {
                    len: text.len(),
                    encoding: None
                }),
                "{text}"
            );
        }
        assert_eq!(
            "abc".parse::<PublicKey>().unwrap_err().to_string(),
            "invalid public key: expected 64 hex digits, 52 z-base-32 characters or 43 base64 \
             characters, got 3 bytes"
        );
    }

    #[test]
    fn public_key_text_with_bad_characters_is_refused() {
        use crate::encoding::Scheme;
        use crate::encoding::test_key::{PK_B32Z, PK_B64_UNPADDED, PK_HEX};
        let bad_char = |text: &str, scheme, index, byte| {
            assert_eq!(
                text.parse::<PublicKey>(),
                Err(KeyError::InvalidPubkeyText {
                    len: text.len(),
                    encoding: Some(EncodingError::InvalidCharacter {
                        scheme,
                        index,
                        byte
                    })
                }),
                "{text}"
            );
        };
        bad_char(&alloc::format!("g{}", &PK_HEX[1..]), Scheme::Hex, 0, b'g');
        bad_char(&alloc::format!("{} ", &PK_HEX[..63]), Scheme::Hex, 63, b' ');
        // z-base-32 has no `l` (nor `v`, `0`, `2`).
        bad_char(
            &alloc::format!("{}l", &PK_B32Z[..51]),
            Scheme::Base32z,
            51,
            b'l',
        );
        bad_char(
            &alloc::format!("-{}", &PK_B64_UNPADDED[1..]),
            Scheme::Base64,
            0,
            b'-',
        );
        // A 44-character base64 text: one `=` is padding; anything else is one byte too many.
        let two_pads = alloc::format!("{}==", &PK_B64_UNPADDED[..42]);
        assert!(matches!(
            two_pads.parse::<PublicKey>(),
            Err(KeyError::InvalidPubkeyText {
                len: 44,
                encoding: Some(EncodingError::WrongDecodedLength { actual: 31, .. })
            })
        ));
        let extra = alloc::format!("{PK_B64_UNPADDED}A");
        assert!(matches!(
            extra.parse::<PublicKey>(),
            Err(KeyError::InvalidPubkeyText {
                len: 44,
                encoding: Some(EncodingError::WrongDecodedLength { actual: 33, .. })
            })
        ));
        assert_eq!(
            alloc::format!("x{}", &PK_HEX[1..])
                .parse::<PublicKey>()
                .unwrap_err()
                .to_string(),
            "invalid public key: invalid hex character 'x' at index 0"
        );
    }

    #[test]
    fn non_ascii_public_key_text_is_refused_without_panicking() {
        use crate::encoding::test_key::{PK_B32Z, PK_B64_UNPADDED, PK_HEX};
        // Multi-byte characters placed so that every length an encoding accepts is reached and
        // byte offsets 43, 52 and 64 fall inside a character.
        let texts = [
            alloc::format!("{}é", &PK_HEX[..62]),
            alloc::format!("{}€", &PK_HEX[..61]),
            alloc::format!("é{}", &PK_B32Z[..50]),
            alloc::format!("{}é", &PK_B64_UNPADDED[..41]),
            alloc::format!("{}€=", &PK_B64_UNPADDED[..40]),
            "é".repeat(32),
            "é".repeat(26),
            alloc::format!("{}abc", "\u{1F600}".repeat(10)),
            "\u{1F600}".repeat(16),
            "\u{1F600}".repeat(13),
        ];
        for text in &texts {
            assert!(
                matches!(
                    text.parse::<PublicKey>(),
                    Err(KeyError::InvalidPubkeyText {
                        encoding: Some(EncodingError::InvalidCharacter { .. }),
                        ..
                    })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let pair = Keypair::from_secret_bytes(unhex(C_SEC));
        let dbg = alloc::format!("{pair:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&C_SEC[..16]));
    }
}
