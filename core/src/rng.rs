//! Randomness as the core sees it: an injected [`CryptoRngCore`].
//!
//! The core draws randomness for CurveZMQ short-term keys, cookie keys, long nonces and request
//! tags, always from the generator the embedder passed in. The native driver passes the OS
//! generator; tests and the simulator pass a seeded ChaCha generator, so a seed reproduces every
//! byte. Following s2n-quic, bytes that end up on the wire (tags, nonces) and secret bytes (keys)
//! go through separately named helpers, so an embedder that wants two streams can split them later
//! without touching call sites.

pub use rand_core::{CryptoRng, CryptoRngCore, Error, RngCore};

/// Fills `buf` with bytes that will be visible on the wire (nonces, request tags).
pub fn fill_public<R: CryptoRngCore + ?Sized>(rng: &mut R, buf: &mut [u8]) {
    rng.fill_bytes(buf);
}

/// Fills `buf` with secret bytes (short-term secret keys, cookie keys).
pub fn fill_private<R: CryptoRngCore + ?Sized>(rng: &mut R, buf: &mut [u8]) {
    rng.fill_bytes(buf);
}

/// Returns an array of public random bytes.
#[must_use]
pub fn public_array<const N: usize, R: CryptoRngCore + ?Sized>(rng: &mut R) -> [u8; N] {
    let mut out = [0u8; N];
    fill_public(rng, &mut out);
    out
}

/// Returns an array of secret random bytes.
#[must_use]
pub fn private_array<const N: usize, R: CryptoRngCore + ?Sized>(rng: &mut R) -> [u8; N] {
    let mut out = [0u8; N];
    fill_private(rng, &mut out);
    out
}
