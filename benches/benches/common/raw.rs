//! The raw-crypto baseline: libsodium's `crypto_box` as the `crypto_box` crate implements it,
//! with the key precomputed once (`crypto_box_beforenm`), sealing and opening in place with
//! detached tags and a fresh 24-byte nonce per box, exactly the primitive a CURVE MESSAGE
//! wraps. Shared by the benches and the instruction-count example.

// Each including target uses its own subset.
#![allow(dead_code)]

use crypto_box::aead::{Aead, AeadInPlace};
use crypto_box::{Nonce, SalsaBox, SecretKey, Tag};

/// A precomputed box and a nonce counter.
pub(crate) struct Raw {
    salsa: SalsaBox,
    counter: u64,
}

impl Raw {
    /// The box between the benchmarks' client and server long-term keys.
    pub(crate) fn new() -> Self {
        let client = SecretKey::from([9u8; 32]);
        let server = SecretKey::from([7u8; 32]);
        Self {
            salsa: SalsaBox::new(&server.public_key(), &client),
            counter: 0,
        }
    }

    /// The next MESSAGE-style nonce: a 16-byte prefix and a big-endian counter.
    pub(crate) fn next_nonce(&mut self) -> Nonce {
        self.counter += 1;
        let mut n = Nonce::default();
        n[..16].copy_from_slice(b"CurveZMQMESSAGEC");
        n[16..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// Encrypts `buf` in place under `nonce`; returns the tag.
    pub(crate) fn seal(&self, nonce: &Nonce, buf: &mut [u8]) -> Tag {
        // Encryption fails only for buffers beyond XSalsa20's 2^70-byte keystream.
        self.salsa
            .encrypt_in_place_detached(nonce, b"", buf)
            .expect("in-memory buffers are far below the keystream limit")
    }

    /// Encrypts `plaintext` into a new `Vec` (tag appended): `Aead::encrypt`, which allocates
    /// its output, as a sealer that cannot reuse a buffer would.
    pub(crate) fn seal_to_vec(&self, nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
        self.salsa
            .encrypt(nonce, plaintext)
            .expect("in-memory buffers are far below the keystream limit")
    }

    /// Verifies and decrypts `buf` in place; false if the tag does not verify.
    pub(crate) fn open(&self, nonce: &Nonce, buf: &mut [u8], tag: &Tag) -> bool {
        self.salsa
            .decrypt_in_place_detached(nonce, b"", buf, tag)
            .is_ok()
    }
}

/// `size` bytes of plaintext sealed under a fresh nonce: (nonce, ciphertext, tag).
pub(crate) fn sealed(raw: &mut Raw, size: usize) -> (Nonce, Vec<u8>, Tag) {
    let nonce = raw.next_nonce();
    let mut buf = lokimq_benches::payload(size);
    let tag = raw.seal(&nonce, &mut buf);
    (nonce, buf, tag)
}

/// The same primitive through a [`CryptoProvider`](lokimq_core::crypto::CryptoProvider): the
/// precomputed key of the same two long-term keys (`beforenm` once), and the provider's
/// in-place seal and open with a fresh MESSAGE-style nonce per box.
///
/// The `*_sub` methods are the MESSAGE codec's path: the `CurveZMQMESSAGEC` prefix's XSalsa20
/// subkey derived once ([`Subkey`](lokimq_core::crypto::Subkey)), then the 8-byte counter per
/// box, with no HSalsa20 per box.
pub(crate) struct ProviderRaw {
    provider: &'static dyn lokimq_core::crypto::CryptoProvider,
    key: lokimq_core::crypto::Key,
    sub: lokimq_core::crypto::Subkey,
    counter: u64,
}

impl ProviderRaw {
    pub(crate) fn new(provider: &'static dyn lokimq_core::crypto::CryptoProvider) -> Self {
        let client = lokimq_core::keys::SecretKey::from_bytes([9u8; 32]);
        let server = lokimq_core::keys::SecretKey::from_bytes([7u8; 32]).public_key();
        let key = provider
            .beforenm(&client, server.as_bytes())
            .expect("the benches' keys are valid");
        Self {
            provider,
            sub: lokimq_core::crypto::Subkey::new(provider, &key, b"CurveZMQMESSAGEC"),
            key,
            counter: 0,
        }
    }

    /// The next MESSAGE-style nonce, as [`Raw::next_nonce`].
    pub(crate) fn next_nonce(&mut self) -> [u8; 24] {
        self.counter += 1;
        let mut n = [0u8; 24];
        n[..16].copy_from_slice(b"CurveZMQMESSAGEC");
        n[16..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    pub(crate) fn seal(&self, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; 16] {
        self.provider.seal_in_place(&self.key, nonce, buf)
    }

    pub(crate) fn open(&self, nonce: &[u8; 24], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        self.provider
            .open_in_place(&self.key, nonce, buf, tag)
            .is_ok()
    }

    /// [`seal`](Self::seal) with the precomputed subkey and the nonce's last 8 bytes.
    pub(crate) fn seal_sub(&self, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; 16] {
        self.provider
            .seal_in_place_sub(&self.sub, &short(nonce), buf)
    }

    /// [`open`](Self::open) with the precomputed subkey and the nonce's last 8 bytes.
    pub(crate) fn open_sub(&self, nonce: &[u8; 24], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        self.provider
            .open_in_place_sub(&self.sub, &short(nonce), buf, tag)
            .is_ok()
    }
}

/// The last 8 bytes of a MESSAGE-style nonce.
fn short(nonce: &[u8; 24]) -> [u8; 8] {
    let mut s = [0u8; 8];
    s.copy_from_slice(&nonce[16..]);
    s
}

/// `size` bytes sealed by `raw` under a fresh nonce: (nonce, ciphertext, tag).
pub(crate) fn provider_sealed(raw: &mut ProviderRaw, size: usize) -> ([u8; 24], Vec<u8>, [u8; 16]) {
    let nonce = raw.next_nonce();
    let mut buf = lokimq_benches::payload(size);
    let tag = raw.seal(&nonce, &mut buf);
    (nonce, buf, tag)
}
