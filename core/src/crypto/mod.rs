//! The cryptography seam: [`CryptoProvider`], the primitives CurveZMQ is built from, chosen
//! per node.
//!
//! Like rustls' `CryptoProvider`, a provider is a `&'static` value (usually a unit struct)
//! handed to the node in [`Config::crypto_provider`](crate::node::Config::crypto_provider) (or
//! to a session in [`SessionConfig`](crate::session::SessionConfig), or to a handshake with
//! [`CurveClient::with_provider`](crate::curve::CurveClient::with_provider) /
//! [`CurveServer::with_provider`](crate::curve::CurveServer::with_provider)); every box the
//! CURVE code seals or opens, every key agreement and every key derivation goes through it.
//!
//! | provider | XSalsa20 + Poly1305 | x25519 | available |
//! |---|---|---|---|
//! | [`RustCrypto`] | `crypto_secretbox` (`salsa20`, `poly1305` crates) | `x25519-dalek` | always |
//! | [`FastCrypto`] | ours: 8-way SIMD Salsa20 over `wide`, donna-64 Poly1305 | `x25519-dalek` | feature `fast-crypto` |
//!
//! [`default_provider`] is `FastCrypto` when the feature is on, else `RustCrypto`. Both are
//! byte-identical to libsodium's `crypto_box` (known-answer and differential tests); they differ
//! only in speed (docs/performance.md, "Crypto providers").
//!
//! A provider implements four primitives: [`x25519`](CryptoProvider::x25519) (refusing the
//! all-zero, non-contributory result), [`hsalsa20`](CryptoProvider::hsalsa20) (the key
//! derivation of `crypto_box_beforenm` and of XSalsa20's subkey), and XSalsa20-Poly1305 in the
//! NaCl secretbox construction with a detached tag: [`seal_in_place`](CryptoProvider::seal_in_place)
//! and [`open_in_place`](CryptoProvider::open_in_place). [`beforenm`](CryptoProvider::beforenm)
//! and [`seal_from`](CryptoProvider::seal_from) have default implementations in terms of those.

#[cfg(feature = "fast-crypto")]
mod fast;
mod rustcrypto;
#[cfg(test)]
pub(crate) mod tests;

use core::fmt;

use zeroize::Zeroize;

use crate::keys::SecretKey;

#[cfg(feature = "fast-crypto")]
pub use fast::FastCrypto;
pub use rustcrypto::RustCrypto;

/// Length of a Poly1305 tag: what a box adds to its plaintext.
pub const TAG_LEN: usize = 16;
/// Length of an XSalsa20 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of every key here.
pub const KEY_LEN: usize = 32;

/// Why a primitive refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// x25519 gave the all-zero shared secret: the public key is of low order. libsodium's
    /// `crypto_box` refuses it, and so does every provider.
    #[error("x25519 result is all zeros (low-order public key)")]
    NonContributory,
    /// A box's tag did not verify: it was forged, corrupted, or sealed under another key or
    /// nonce.
    #[error("authentication tag mismatch")]
    Forged,
}

/// 32 secret bytes: an x25519 shared secret, a precomputed `crypto_box` key, or a secretbox key.
/// Zeroed when dropped (with `zeroize`); its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// Wraps 32 key bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Copies `bytes` into a key and zeroes `bytes`, so no stray copy of the secret remains
    /// with the caller.
    #[must_use]
    pub fn from_bytes_wiping(bytes: &mut [u8; KEY_LEN]) -> Self {
        let key = Self(*bytes);
        bytes.zeroize();
        key
    }

    /// The key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The primitives of CurveZMQ, as one swappable object. See the [module docs](self).
///
/// Every method must be byte-for-byte libsodium's: `crypto_scalarmult` for `x25519`,
/// `crypto_core_hsalsa20` for `hsalsa20`, and `crypto_secretbox_detached` /
/// `crypto_secretbox_open_detached` for the box operations (the nonce is all 24 bytes, the
/// message starts at keystream byte 32, the tag is Poly1305 of the ciphertext under keystream
/// bytes 0..32). Implementations must be constant time in the key and data.
pub trait CryptoProvider: Send + Sync + fmt::Debug + 'static {
    /// The x25519 shared secret of `secret` and `public`, or
    /// [`CryptoError::NonContributory`] if it is all zeros.
    fn x25519(&self, secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError>;

    /// HSalsa20 of `key` and the 16-byte `input`.
    fn hsalsa20(&self, key: &Key, input: &[u8; 16]) -> Key;

    /// XSalsa20-Poly1305 (NaCl secretbox): encrypts `data` in place under `key` and `nonce` and
    /// returns the 16-byte tag. Cannot fail: the keystream (2^70 bytes) outlasts any slice.
    fn seal_in_place(&self, key: &Key, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> [u8; TAG_LEN];

    /// Verifies `tag` over the ciphertext `data` (in constant time), then decrypts `data` in
    /// place. On failure ([`CryptoError::Forged`]) `data` is left exactly as it was.
    fn open_in_place(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError>;

    /// Seals the plaintext `out[..k] ‖ src` into `out`, where `k = out.len() - src.len()`:
    /// the first `k` bytes are encrypted in place, `src` is encrypted into the rest. Same
    /// result as copying `src` into `out[k..]` and calling
    /// [`seal_in_place`](Self::seal_in_place) (the default does exactly that); a provider may
    /// encrypt straight from `src` and save the copy.
    ///
    /// # Panics
    ///
    /// If `src` is longer than `out`.
    fn seal_from(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        out: &mut [u8],
        src: &[u8],
    ) -> [u8; TAG_LEN] {
        let k = out
            .len()
            .checked_sub(src.len())
            .expect("seal_from: src is longer than out");
        out[k..].copy_from_slice(src);
        self.seal_in_place(key, nonce, out)
    }

    /// libsodium's `crypto_box_beforenm`: HSalsa20 (zero input) of the x25519 shared secret of
    /// `secret` and `public`. Refuses a low-order `public` ([`CryptoError::NonContributory`]).
    fn beforenm(&self, secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError> {
        let shared = self.x25519(secret, public)?;
        Ok(self.hsalsa20(&shared, &[0; 16]))
    }
}

/// The provider a node uses unless its configuration says otherwise: [`FastCrypto`] when the
/// `fast-crypto` feature is on, else [`RustCrypto`].
#[must_use]
pub fn default_provider() -> &'static dyn CryptoProvider {
    #[cfg(feature = "fast-crypto")]
    {
        &FastCrypto
    }
    #[cfg(not(feature = "fast-crypto"))]
    {
        &RustCrypto
    }
}

/// Every provider this build has, for tests that must pass under each: [`RustCrypto`], then
/// [`FastCrypto`] when the feature is on.
#[must_use]
pub fn all_providers() -> &'static [&'static dyn CryptoProvider] {
    &[
        &RustCrypto,
        #[cfg(feature = "fast-crypto")]
        &FastCrypto,
    ]
}

/// Compares two byte strings without an early exit.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && core::hint::black_box(diff) == 0
}
