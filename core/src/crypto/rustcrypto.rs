//! [`RustCrypto`]: the RustCrypto crates (`crypto_secretbox` over `salsa20` and `poly1305`, and
//! `x25519-dalek`). Always available.

use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::{AeadInPlace, Kdf, KeyInit, Tag, XSalsa20Poly1305};

use super::{CryptoError, CryptoProvider, Key, NONCE_LEN, TAG_LEN};
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
}
