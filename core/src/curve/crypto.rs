//! The two primitives every CurveZMQ box is made of, in the tag-first wire layout.
//!
//! A CurveZMQ box on the wire is the 16-byte Poly1305 tag followed by the XSalsa20 ciphertext
//! (NaCl's `crypto_box` output without its 16 leading zero bytes). Every helper here works on a
//! *region* of a command body laid out exactly like that, encrypting or decrypting in place, so
//! no handshake step or MESSAGE copies its plaintext around.
//!
//! [`precompute`] is libsodium's `crypto_box_beforenm`: x25519, then HSalsa20 of the shared
//! secret with a zero nonce, giving the XSalsa20-Poly1305 key. We do the x25519 step with
//! `x25519-dalek` (one scalar multiplication, whose result we check for the all-zero
//! non-contributory case as libsodium does) and derive the key with `crypto_secretbox`'s
//! HSalsa20 `Kdf`; this is exactly what `crypto_box::SalsaBox::new` computes internally, minus a
//! second scalar multiplication. A unit test checks the two agree.

use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::{AeadInPlace, Kdf, KeyInit, Tag, XSalsa20Poly1305};
use x25519_dalek::StaticSecret;

use super::error::{CurveError, Stage};
use super::nonce::Nonce;

/// A precomputed `crypto_box` key (or the cookie's secretbox key): XSalsa20-Poly1305 keyed with
/// 32 secret bytes, which it zeroes when dropped.
pub(crate) type Cipher = XSalsa20Poly1305;

/// Length of a Poly1305 tag, the size a box adds to its plaintext.
pub(crate) const TAG_LEN: usize = 16;

/// libsodium's `crypto_box_beforenm(public, secret)`, refusing a low-order `public` (an all-zero
/// x25519 result) with [`CurveError::NonContributory`] at `stage`.
pub(crate) fn precompute(
    secret: &StaticSecret,
    public: &[u8; 32],
    stage: Stage,
) -> Result<Cipher, CurveError> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(CurveError::NonContributory { stage });
    }
    let mut key = XSalsa20Poly1305::kdf(
        GenericArray::from_slice(shared.as_bytes()),
        &GenericArray::default(),
    );
    let cipher = Cipher::new(&key);
    wipe(&mut key);
    Ok(cipher)
}

/// A secretbox cipher from 32 raw key bytes (the cookie key).
pub(crate) fn cipher_from_key(key: &[u8; 32]) -> Cipher {
    Cipher::new(GenericArray::from_slice(key))
}

/// Seals `region` in place: on entry `region[16..]` holds the plaintext and `region[..16]` is
/// scratch; on return the region is the wire box (tag, then ciphertext).
pub(crate) fn seal(
    cipher: &Cipher,
    nonce: &Nonce,
    region: &mut [u8],
    stage: Stage,
) -> Result<(), CurveError> {
    let (tag_slot, data) = split_box(region, stage)?;
    // Encryption only fails for non-empty associated data or a message beyond XSalsa20's
    // 2^70-byte keystream, neither of which a body in memory can reach.
    let tag = cipher
        .encrypt_in_place_detached(nonce, b"", data)
        .map_err(|_| CurveError::Cryptographic { stage })?;
    tag_slot.copy_from_slice(&tag);
    Ok(())
}

/// Opens the wire box `region` (tag, then ciphertext) in place: on success `region[16..]` is
/// the plaintext. On failure the region is left as it was.
pub(crate) fn open(
    cipher: &Cipher,
    nonce: &Nonce,
    region: &mut [u8],
    stage: Stage,
) -> Result<(), CurveError> {
    let (tag, data) = split_box(region, stage)?;
    open_detached(cipher, nonce, tag, data, stage)
}

/// Splits a wire box region into its tag and its ciphertext; a region too short to hold a tag
/// is [`CurveError::Cryptographic`] at `stage`.
fn split_box(region: &mut [u8], stage: Stage) -> Result<(&mut [u8], &mut [u8]), CurveError> {
    region
        .split_at_mut_checked(TAG_LEN)
        .ok_or(CurveError::Cryptographic { stage })
}

/// Opens a box whose tag (16 bytes) and ciphertext lie apart, decrypting `data` in place. On
/// failure `data` is left as it was.
pub(crate) fn open_detached(
    cipher: &Cipher,
    nonce: &Nonce,
    tag: &[u8],
    data: &mut [u8],
    stage: Stage,
) -> Result<(), CurveError> {
    if tag.len() != TAG_LEN {
        return Err(CurveError::Cryptographic { stage });
    }
    cipher
        .decrypt_in_place_detached(nonce, b"", data, Tag::from_slice(tag))
        .map_err(|_| CurveError::Cryptographic { stage })
}

/// Overwrites a transient copy of secret bytes. Best effort: without the `zeroize` crate we rely
/// on `black_box` to keep the compiler from dropping the dead stores. Long-lived secrets live in
/// types that zeroize themselves (`StaticSecret`, `XSalsa20Poly1305`).
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    core::hint::black_box(bytes);
}

/// Copies the `N` bytes at `at` out of `bytes`; the caller has checked the length.
pub(crate) fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut array = [0u8; N];
    array.copy_from_slice(&bytes[at..at + N]);
    array
}

/// Compares two byte strings without an early exit.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::nonce;
    use crypto_box::aead::Aead;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn precompute_matches_crypto_box_salsabox(
            a in any::<[u8; 32]>(),
            b in any::<[u8; 32]>(),
            msg in proptest::collection::vec(any::<u8>(), 0..200),
            n in any::<u64>(),
        ) {
            let sk = StaticSecret::from(a);
            let pk = x25519_dalek::PublicKey::from(&StaticSecret::from(b)).to_bytes();
            let ours = precompute(&sk, &pk, Stage::Message).unwrap();
            let theirs = crypto_box::SalsaBox::new(
                &crypto_box::PublicKey::from(pk),
                &crypto_box::SecretKey::from(a),
            );
            let nonce = nonce::short(nonce::MESSAGE_FROM_CLIENT, n.to_be_bytes());
            let mut region = std::vec![0u8; TAG_LEN];
            region.extend_from_slice(&msg);
            seal(&ours, &nonce, &mut region, Stage::Message).unwrap();
            prop_assert_eq!(&region, &theirs.encrypt(&nonce, msg.as_slice()).unwrap());
            open(&ours, &nonce, &mut region, Stage::Message).unwrap();
            prop_assert_eq!(&region[TAG_LEN..], msg.as_slice());
        }
    }

    #[test]
    fn low_order_points_are_non_contributory() {
        let sk = StaticSecret::from([7u8; 32]);
        // The zero point and the point of order 2 (u = 1 is order 4; u = 0 is order 1 / 2).
        for bad in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert_eq!(
                precompute(&sk, &bad, Stage::Hello).err(),
                Some(CurveError::NonContributory {
                    stage: Stage::Hello
                })
            );
        }
    }

    #[test]
    fn open_leaves_region_untouched_on_failure() {
        let c = cipher_from_key(&[3; 32]);
        let nonce = nonce::long(nonce::COOKIE, &[1; 16]);
        let mut region = [0u8; 40];
        region[16..].copy_from_slice(&[9; 24]);
        seal(&c, &nonce, &mut region, Stage::Cookie).unwrap();
        region[20] ^= 1;
        let before = region;
        assert_eq!(
            open(&c, &nonce, &mut region, Stage::Cookie),
            Err(CurveError::Cryptographic {
                stage: Stage::Cookie
            })
        );
        assert_eq!(region, before);
        assert!(open(&c, &nonce, &mut [0u8; 3], Stage::Cookie).is_err());
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
