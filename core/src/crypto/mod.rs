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
//! | [`FastCrypto`] | ours: 8-way SIMD Salsa20 over `wide`; Poly1305 SSE2 (x86, ≥ 128 B) or donna-64 | `x25519-dalek` | feature `fast-crypto` |
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
//!
//! **Fixed nonce prefixes.** XSalsa20(k, n) is Salsa20(HSalsa20(k, n[..16]), n[16..]), and a
//! CurveZMQ MESSAGE nonce is a constant 16-byte prefix per direction (`CurveZMQMESSAGEC`,
//! `CurveZMQMESSAGES`) followed by the 8-byte counter. A [`Subkey`] holds a key, one such prefix
//! and the XSalsa20 subkey HSalsa20(key, prefix) ([`xsalsa_subkey`](CryptoProvider::xsalsa_subkey)),
//! computed once; [`seal_in_place_sub`](CryptoProvider::seal_in_place_sub),
//! [`seal_from_sub`](CryptoProvider::seal_from_sub) and
//! [`open_in_place_sub`](CryptoProvider::open_in_place_sub) then take the 8-byte rest of the
//! nonce and skip the per-box HSalsa20. All four have default implementations (the defaults go
//! through the full 24-byte nonce, so a provider that implements only the four primitives
//! works unchanged); both providers here override them.

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
#[cfg(all(feature = "fast-crypto", feature = "internals"))]
#[doc(hidden)]
pub use fast::{FAST_POLY1305_SIMD_FROM, fast_poly1305};
pub use rustcrypto::RustCrypto;

/// Length of a Poly1305 tag: what a box adds to its plaintext.
pub const TAG_LEN: usize = 16;
/// Length of an XSalsa20 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of the part of an XSalsa20 nonce that HSalsa20 turns into the subkey.
pub const PREFIX_LEN: usize = 16;
/// Length of the rest of the nonce, the Salsa20 nonce under the subkey (a CurveZMQ short
/// nonce's counter).
pub const SHORT_NONCE_LEN: usize = NONCE_LEN - PREFIX_LEN;
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

/// A key bound to one fixed 16-byte nonce prefix, with XSalsa20's subkey for that prefix
/// (HSalsa20(key, prefix)) computed once: the boxes of one CurveZMQ MESSAGE direction. See the
/// [module docs](self).
///
/// Holds the key, the prefix and the subkey, so a provider may seal either way: with the
/// subkey and the 8-byte rest of the nonce (skipping HSalsa20), or with the key and the full
/// nonce ([`nonce`](Self::nonce)), as the trait's default methods do. Both keys are zeroed on
/// drop; `Debug` shows the prefix only.
#[derive(Clone)]
pub struct Subkey {
    key: Key,
    prefix: [u8; PREFIX_LEN],
    subkey: Key,
}

impl Subkey {
    /// Binds `key` to `prefix`, deriving the subkey with `provider`'s
    /// [`xsalsa_subkey`](CryptoProvider::xsalsa_subkey). Seal and open with the same provider.
    #[must_use]
    pub fn new<P: CryptoProvider + ?Sized>(
        provider: &P,
        key: &Key,
        prefix: &[u8; PREFIX_LEN],
    ) -> Self {
        Self {
            key: key.clone(),
            prefix: *prefix,
            subkey: provider.xsalsa_subkey(key, prefix),
        }
    }

    /// The key the subkey was derived from.
    #[must_use]
    pub const fn key(&self) -> &Key {
        &self.key
    }

    /// The fixed nonce prefix.
    #[must_use]
    pub const fn prefix(&self) -> &[u8; PREFIX_LEN] {
        &self.prefix
    }

    /// HSalsa20(key, prefix): the Salsa20 key of every box under this prefix.
    #[must_use]
    pub const fn subkey(&self) -> &Key {
        &self.subkey
    }

    /// The full 24-byte nonce: the prefix, then `short`.
    #[must_use]
    pub fn nonce(&self, short: &[u8; SHORT_NONCE_LEN]) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..PREFIX_LEN].copy_from_slice(&self.prefix);
        n[PREFIX_LEN..].copy_from_slice(short);
        n
    }
}

impl fmt::Debug for Subkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subkey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
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

    /// XSalsa20's subkey for the nonce prefix `prefix`: HSalsa20(`key`, `prefix`), which
    /// [`Subkey::new`] stores. The default is [`hsalsa20`](Self::hsalsa20).
    fn xsalsa_subkey(&self, key: &Key, prefix: &[u8; PREFIX_LEN]) -> Key {
        self.hsalsa20(key, prefix)
    }

    /// [`seal_in_place`](Self::seal_in_place) under the nonce `key.prefix() ‖ nonce`, with the
    /// subkey precomputed: the same bytes. The default seals with the full nonce; a provider
    /// overrides it to run Salsa20 under [`Subkey::subkey`] and skip HSalsa20.
    fn seal_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
    ) -> [u8; TAG_LEN] {
        self.seal_in_place(key.key(), &key.nonce(nonce), data)
    }

    /// [`seal_from`](Self::seal_from) under the nonce `key.prefix() ‖ nonce` (see
    /// [`seal_in_place_sub`](Self::seal_in_place_sub)).
    ///
    /// # Panics
    ///
    /// If `src` is longer than `out`.
    fn seal_from_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        out: &mut [u8],
        src: &[u8],
    ) -> [u8; TAG_LEN] {
        self.seal_from(key.key(), &key.nonce(nonce), out, src)
    }

    /// [`open_in_place`](Self::open_in_place) under the nonce `key.prefix() ‖ nonce` (see
    /// [`seal_in_place_sub`](Self::seal_in_place_sub)). On failure `data` is left as it was.
    fn open_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.open_in_place(key.key(), &key.nonce(nonce), data, tag)
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
