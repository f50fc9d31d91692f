//! [`RustCrypto`]: the RustCrypto crates (`crypto_secretbox` over `salsa20` and `poly1305`, and
//! `x25519-dalek`). Always available.
//!
//! With a precomputed subkey ([`Subkey`]) the box is built from `salsa20::Salsa20` and
//! `poly1305::Poly1305` directly, exactly as `crypto_secretbox` builds it after its HSalsa20
//! (`SecretBox::init_cipher_and_mac`): the first 32 keystream bytes key Poly1305, the message
//! is encrypted from byte 32, the tag is Poly1305 of the ciphertext.

use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::{AeadInPlace, Kdf, KeyInit, Tag, XSalsa20Poly1305};
use salsa20::cipher::{KeyIvInit as _, StreamCipher as _};

use super::{CryptoError, CryptoProvider, Key, NONCE_LEN, SHORT_NONCE_LEN, Subkey, TAG_LEN, ct_eq};
use crate::keys::SecretKey;

/// XSalsa20-Poly1305 and HSalsa20 from `crypto_secretbox`, x25519 from `x25519-dalek`.
///
/// `poly1305` picks an AVX2 backend at run time on x86_64; built without compile-time AVX2
/// it is slow for short messages (docs/performance.md, "Poly1305").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RustCrypto;

/// x25519 with `x25519-dalek`, refusing the all-zero result (shared by both providers).
pub(super) fn dalek_x25519(secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError> {
    let shared = secret
        .as_dalek()
        .diffie_hellman(&x25519_dalek::PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(CryptoError::NonContributory);
    }
    // `shared` zeroes itself when dropped.
    Ok(Key::from_bytes(*shared.as_bytes()))
}

fn cipher(key: &Key) -> XSalsa20Poly1305 {
    // The cipher holds a copy of the key and zeroes it when dropped.
    XSalsa20Poly1305::new(GenericArray::from_slice(key.as_bytes()))
}

/// Salsa20 under the subkey and the 8-byte nonce, and Poly1305 keyed with its first 32 bytes
/// (the stream is left at byte 32).
fn sub_cipher(
    key: &Subkey,
    nonce: &[u8; SHORT_NONCE_LEN],
) -> (salsa20::Salsa20, poly1305::Poly1305) {
    // Both zero their state when dropped (`zeroize` features).
    let mut cipher = salsa20::Salsa20::new(
        GenericArray::from_slice(key.subkey().as_bytes()),
        GenericArray::from_slice(nonce),
    );
    let mut mac_key = [0u8; 32];
    cipher.apply_keystream(&mut mac_key);
    let mac = poly1305::Poly1305::new(GenericArray::from_slice(&mac_key));
    zeroize::Zeroize::zeroize(&mut mac_key);
    (cipher, mac)
}

impl CryptoProvider for RustCrypto {
    fn x25519(&self, secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError> {
        dalek_x25519(secret, public)
    }

    fn hsalsa20(&self, key: &Key, input: &[u8; 16]) -> Key {
        let mut out = XSalsa20Poly1305::kdf(
            GenericArray::from_slice(key.as_bytes()),
            GenericArray::from_slice(input),
        );
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&out);
        zeroize::Zeroize::zeroize(out.as_mut_slice());
        Key::from_bytes_wiping(&mut bytes)
    }

    fn seal_in_place(&self, key: &Key, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> [u8; TAG_LEN] {
        // Encryption only fails for non-empty associated data or a message beyond XSalsa20's
        // 2^70-byte keystream, neither of which a slice in memory can reach.
        cipher(key)
            .encrypt_in_place_detached(GenericArray::from_slice(nonce), b"", data)
            .expect("XSalsa20-Poly1305 seals any slice")
            .into()
    }

    fn open_in_place(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        // crypto_secretbox verifies (in constant time) before it decrypts.
        cipher(key)
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                b"",
                data,
                Tag::from_slice(tag),
            )
            .map_err(|_| CryptoError::Forged)
    }

    fn seal_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let (mut cipher, mac) = sub_cipher(key, nonce);
        cipher.apply_keystream(data);
        mac.compute_unpadded(data).into()
    }

    fn open_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let (mut cipher, mac) = sub_cipher(key, nonce);
        if !ct_eq(&mac.compute_unpadded(data), tag) {
            return Err(CryptoError::Forged);
        }
        cipher.apply_keystream(data);
        Ok(())
    }
}
