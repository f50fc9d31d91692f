//! The CURVE code's view of the [`CryptoProvider`]: boxes in the tag-first wire layout.
//!
//! A CurveZMQ box on the wire is the 16-byte Poly1305 tag followed by the XSalsa20 ciphertext
//! (NaCl's `crypto_box` output without its 16 leading zero bytes). Every helper here works on a
//! *region* of a command body laid out exactly like that, encrypting or decrypting in place, so
//! no handshake step or MESSAGE copies its plaintext around.
//!
//! A [`Cipher`] is a precomputed key ([`precompute`]: libsodium's `crypto_box_beforenm`, x25519
//! checked for the all-zero non-contributory result, then HSalsa20; or the cookie's secretbox
//! key) together with the provider that made it, so every later seal and open of that key goes
//! through the same provider. A [`DirectionCipher`] is a session key bound to one MESSAGE
//! direction's constant nonce prefix, with its XSalsa20 subkey computed once
//! ([`Subkey`](crate::crypto::Subkey)), for the MESSAGE codec.

use crate::crypto::{CryptoProvider, Key, SHORT_NONCE_LEN, Subkey};
use crate::keys::SecretKey;

use super::error::{CurveError, Stage};
use super::nonce::Nonce;

pub(crate) use crate::crypto::TAG_LEN;

/// A precomputed `crypto_box` key (or the cookie's secretbox key) and the provider that seals
/// and opens with it. The key zeroes itself when dropped.
#[derive(Clone)]
pub(crate) struct Cipher {
    provider: &'static dyn CryptoProvider,
    key: Key,
}

impl Cipher {
    /// This key bound to the nonce prefix `prefix` (one MESSAGE direction), its XSalsa20
    /// subkey derived now.
    pub(crate) fn direction(&self, prefix: &[u8; 16]) -> DirectionCipher {
        DirectionCipher {
            provider: self.provider,
            key: Subkey::new(self.provider, &self.key, prefix),
        }
    }
}

/// A session key, one MESSAGE direction's 16-byte nonce prefix and the XSalsa20 subkey
/// HSalsa20(key, prefix), with the provider that seals and opens with them: every box then
/// costs Salsa20 and Poly1305 only. The keys zero themselves when dropped.
#[derive(Clone)]
pub(crate) struct DirectionCipher {
    provider: &'static dyn CryptoProvider,
    key: Subkey,
}

/// Seals the plaintext `region[16..len - src.len()] ‖ src` into `region` (tag, then
/// ciphertext) under the nonce `cipher`'s prefix ‖ `counter` (a MESSAGE): the first part is
/// encrypted in place, `src` straight into the region's tail (whose bytes on entry do not
/// matter), so the caller need not copy `src` in first.
pub(crate) fn seal_short_from(
    cipher: &DirectionCipher,
    counter: &[u8; SHORT_NONCE_LEN],
    region: &mut [u8],
    src: &[u8],
    stage: Stage,
) -> Result<(), CurveError> {
    let (tag_slot, data) = split_box(region, stage)?;
    if data.len() < src.len() {
        return Err(CurveError::Cryptographic { stage });
    }
    let tag = cipher
        .provider
        .seal_from_sub(&cipher.key, counter, data, src);
    tag_slot.copy_from_slice(&tag);
    Ok(())
}

/// [`seal`] for a MESSAGE: the nonce is `cipher`'s prefix then the 8 `counter` bytes.
#[cfg(any(test, feature = "internals"))]
pub(crate) fn seal_short(
    cipher: &DirectionCipher,
    counter: &[u8; SHORT_NONCE_LEN],
    region: &mut [u8],
    stage: Stage,
) -> Result<(), CurveError> {
    let (tag_slot, data) = split_box(region, stage)?;
    let tag = cipher
        .provider
        .seal_in_place_sub(&cipher.key, counter, data);
    tag_slot.copy_from_slice(&tag);
    Ok(())
}

/// [`open_detached`] for a MESSAGE: the nonce is `cipher`'s prefix then the 8 `counter`
/// bytes. On failure `data` is left as it was.
pub(crate) fn open_short_detached(
    cipher: &DirectionCipher,
    counter: &[u8; SHORT_NONCE_LEN],
    tag: &[u8],
    data: &mut [u8],
    stage: Stage,
) -> Result<(), CurveError> {
    let tag: &[u8; TAG_LEN] = tag
        .try_into()
        .map_err(|_| CurveError::Cryptographic { stage })?;
    cipher
        .provider
        .open_in_place_sub(&cipher.key, counter, data, tag)
        .map_err(|_| CurveError::Cryptographic { stage })
}

/// [`open`] for a MESSAGE: the nonce is `cipher`'s prefix then the 8 `counter` bytes. On
/// failure the region is left as it was.
pub(crate) fn open_short(
    cipher: &DirectionCipher,
    counter: &[u8; SHORT_NONCE_LEN],
    region: &mut [u8],
    stage: Stage,
) -> Result<(), CurveError> {
    let (tag, data) = split_box(region, stage)?;
    open_short_detached(cipher, counter, tag, data, stage)
}

/// libsodium's `crypto_box_beforenm(public, secret)` through `provider`, refusing a low-order
/// `public` (an all-zero x25519 result) with [`CurveError::NonContributory`] at `stage`.
pub(crate) fn precompute(
    provider: &'static dyn CryptoProvider,
    secret: &SecretKey,
    public: &[u8; 32],
    stage: Stage,
) -> Result<Cipher, CurveError> {
    let key = provider
        .beforenm(secret, public)
        .map_err(|_| CurveError::NonContributory { stage })?;
    Ok(Cipher { provider, key })
}

/// A secretbox cipher from 32 raw key bytes (the cookie key); the bytes are wiped.
pub(crate) fn cipher_from_key(provider: &'static dyn CryptoProvider, key: &mut [u8; 32]) -> Cipher {
    Cipher {
        provider,
        key: Key::from_bytes_wiping(key),
    }
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
    let tag = cipher.provider.seal_in_place(&cipher.key, nonce, data);
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
    let tag: &[u8; TAG_LEN] = tag
        .try_into()
        .map_err(|_| CurveError::Cryptographic { stage })?;
    cipher
        .provider
        .open_in_place(&cipher.key, nonce, data, tag)
        .map_err(|_| CurveError::Cryptographic { stage })
}

/// Overwrites a transient copy of secret bytes (with `zeroize`, whose volatile writes the
/// compiler keeps). Long-lived secrets live in types that zeroize themselves (`StaticSecret`,
/// [`Key`]).
pub(crate) fn wipe(bytes: &mut [u8]) {
    zeroize::Zeroize::zeroize(bytes);
}

/// Copies the `N` bytes at `at` out of `bytes`; the caller has checked the length.
pub(crate) fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut array = [0u8; N];
    array.copy_from_slice(&bytes[at..at + N]);
    array
}

pub(crate) use crate::crypto::ct_eq;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::all_providers;
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
            let sk = SecretKey::from_bytes(a);
            let pk = SecretKey::from_bytes(b).public_key().to_bytes();
            let theirs = crypto_box::SalsaBox::new(
                &crypto_box::PublicKey::from(pk),
                &crypto_box::SecretKey::from(a),
            );
            let nonce = nonce::short(nonce::MESSAGE_FROM_CLIENT, n.to_be_bytes());
            let expect = theirs.encrypt(&nonce.into(), msg.as_slice()).unwrap();
            for &provider in all_providers() {
                let ours = precompute(provider, &sk, &pk, Stage::Message).unwrap();
                let mut region = std::vec![0u8; TAG_LEN];
                region.extend_from_slice(&msg);
                seal(&ours, &nonce, &mut region, Stage::Message).unwrap();
                prop_assert_eq!(&region, &expect);
                open(&ours, &nonce, &mut region, Stage::Message).unwrap();
                prop_assert_eq!(&region[TAG_LEN..], msg.as_slice());
                // The MESSAGE path: the direction's subkey, the 8-byte counter, and seal_from
                // with the flags-byte split.
                let dir = ours.direction(nonce::MESSAGE_FROM_CLIENT);
                let mut region = std::vec![0u8; TAG_LEN];
                region.extend_from_slice(&msg);
                seal_short(&dir, &n.to_be_bytes(), &mut region, Stage::Message).unwrap();
                prop_assert_eq!(&region, &expect);
                open_short(&dir, &n.to_be_bytes(), &mut region, Stage::Message).unwrap();
                prop_assert_eq!(&region[TAG_LEN..], msg.as_slice());
                if !msg.is_empty() {
                    let mut region = std::vec![0u8; TAG_LEN + msg.len()];
                    region[TAG_LEN] = msg[0];
                    seal_short_from(&dir, &n.to_be_bytes(), &mut region, &msg[1..], Stage::Message)
                        .unwrap();
                    prop_assert_eq!(&region, &expect);
                }
                // The other direction's subkey does not open it.
                let other = ours.direction(nonce::MESSAGE_FROM_SERVER);
                let mut region = expect.clone();
                prop_assert!(open_short(&other, &n.to_be_bytes(), &mut region, Stage::Message).is_err());
                prop_assert_eq!(&region, &expect);
            }
        }
    }

    #[test]
    fn low_order_points_are_non_contributory() {
        let sk = SecretKey::from_bytes([7u8; 32]);
        // The zero point and the point of order 2 (u = 1 is order 4; u = 0 is order 1 / 2).
        for bad in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            for &provider in all_providers() {
                assert_eq!(
                    precompute(provider, &sk, &bad, Stage::Hello).err(),
                    Some(CurveError::NonContributory {
                        stage: Stage::Hello
                    })
                );
            }
        }
    }

    #[test]
    fn open_leaves_region_untouched_on_failure() {
        for &provider in all_providers() {
            open_leaves_region_untouched_on_failure_with(provider);
        }
    }

    fn open_leaves_region_untouched_on_failure_with(provider: &'static dyn CryptoProvider) {
        let c = cipher_from_key(provider, &mut [3; 32]);
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
