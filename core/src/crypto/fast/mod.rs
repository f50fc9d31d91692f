//! [`FastCrypto`]: our own XSalsa20 and Poly1305 in safe Rust (feature `fast-crypto`).
//!
//! * Salsa20 runs "vertically" over `wide` vectors: eight consecutive blocks per call
//!   (`u32x8`: one AVX2 register per state word, or two SSE2 registers on baseline x86_64),
//!   four for runs of three or four blocks (`u32x4`), and a scalar block below that. HSalsa20
//!   is scalar. See [`salsa`].
//! * Poly1305 is "donna-64": three 44/44/42-bit limbs with `u128` products, four blocks per
//!   step (with r⁴, r³, r², r) on inputs of 128 bytes or more. See [`poly1305`]. On x86 with
//!   SSE2 (every x86_64) inputs of 128 bytes or more go through the vectorised scheme of
//!   poly1305-donna's and libsodium's SSE2 code instead (26-bit limbs, two blocks per SSE2
//!   register and four per step with r⁴ and r²; in an AVX2 build four blocks per register and
//!   eight per step with r⁸ and r⁴), written over `safe_arch` (the safe intrinsics `wide` is
//!   built on), with donna-64 for the tail. See `poly1305simd`.
//! * x25519 is `x25519-dalek`, as in [`RustCrypto`](super::RustCrypto).
//!
//! `wide` picks its SIMD code at *compile* time from the target features (`-C
//! target-cpu=native` turns on AVX2 where the CPU has it) and falls back to portable scalar code
//! on other targets (wasm32 without simd128, for one); the vectorised Poly1305 is compiled only
//! where SSE2 is a target feature (its AVX2 form where AVX2 is), and other targets use donna-64
//! throughout. Everything here is safe
//! code; the `unsafe` that wraps the intrinsics is inside `wide` and `safe_arch`.

mod poly1305;
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
mod poly1305simd;
mod salsa;
#[cfg(test)]
mod tests;

use self::poly1305::Poly1305;
use self::salsa::{Keystream, Source};
use super::{CryptoError, CryptoProvider, Key, NONCE_LEN, SHORT_NONCE_LEN, Subkey, TAG_LEN, ct_eq};
use crate::keys::SecretKey;

/// From this many bytes on FastCrypto's Poly1305 uses its vectorised code (feature `internals`,
/// for the benchmarks).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub const FAST_POLY1305_SIMD_FROM: usize = poly1305::SIMD_FROM;

/// FastCrypto's Poly1305 of `msg` under the one-time `key`, its vectorised code taking inputs
/// from `simd_from` bytes on (`usize::MAX`: donna-64 alone). For the crossover benchmark
/// (`benches/examples/icount.rs`, `poly-*`); feature `internals`.
#[cfg(feature = "internals")]
#[doc(hidden)]
#[must_use]
pub fn fast_poly1305(key: &[u8; 32], msg: &[u8], simd_from: usize) -> [u8; 16] {
    poly1305::poly1305_with(key, msg, simd_from)
}

/// XSalsa20-Poly1305 and HSalsa20 of our own (Salsa20 eight or four blocks at a time over
/// `wide`'s SIMD lanes; Poly1305 two blocks per SSE2 register (four per AVX2 register) on long
/// inputs, else donna-64;
/// docs/performance.md, "Crypto providers"); x25519
/// from `x25519-dalek`. Byte-identical to [`RustCrypto`](super::RustCrypto) and libsodium.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastCrypto;

impl CryptoProvider for FastCrypto {
    fn x25519(&self, secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError> {
        super::rustcrypto::dalek_x25519(secret, public)
    }

    fn hsalsa20(&self, key: &Key, input: &[u8; 16]) -> Key {
        let mut words = salsa::key_words(key.as_bytes());
        let mut out = salsa::hsalsa20(&words, input);
        zeroize::Zeroize::zeroize(&mut words);
        let mut bytes = [0u8; 32];
        for (chunk, w) in bytes.chunks_exact_mut(4).zip(&out) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        zeroize::Zeroize::zeroize(&mut out);
        Key::from_bytes_wiping(&mut bytes)
    }

    fn seal_in_place(&self, key: &Key, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> [u8; TAG_LEN] {
        self.seal_from(key, nonce, data, &[])
    }

    fn seal_from(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        out: &mut [u8],
        src: &[u8],
    ) -> [u8; TAG_LEN] {
        seal_with(Keystream::xsalsa20(key.as_bytes(), nonce), out, src)
    }

    fn open_in_place(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        open_with(Keystream::xsalsa20(key.as_bytes(), nonce), data, tag)
    }

    fn seal_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
    ) -> [u8; TAG_LEN] {
        self.seal_from_sub(key, nonce, data, &[])
    }

    fn seal_from_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        out: &mut [u8],
        src: &[u8],
    ) -> [u8; TAG_LEN] {
        seal_with(
            Keystream::salsa20(key.subkey().as_bytes(), nonce, 0),
            out,
            src,
        )
    }

    fn open_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        open_with(
            Keystream::salsa20(key.subkey().as_bytes(), nonce, 0),
            data,
            tag,
        )
    }
}

/// The secretbox seal of `out[..k] ‖ src` into `out` (`k = out.len() - src.len()`) on the
/// Salsa20 stream `ks` (at block 0).
fn seal_with(ks: Keystream, out: &mut [u8], src: &[u8]) -> [u8; TAG_LEN] {
    let in_place = out
        .len()
        .checked_sub(src.len())
        .expect("seal_from: src is longer than out");
    let (mut ks, mac) = start(ks);
    let (head, tail) = out.split_at_mut(in_place);
    ks.apply(head, Source::InPlace);
    ks.apply(tail, Source::From(src));
    drop(ks);
    mac_all(mac, out)
}

/// The secretbox open of `data` on the Salsa20 stream `ks` (at block 0): the tag first, then
/// the data, which a forgery leaves untouched.
fn open_with(ks: Keystream, data: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), CryptoError> {
    let (mut ks, mac) = start(ks);
    if !ct_eq(&mac_all(mac, data), tag) {
        return Err(CryptoError::Forged);
    }
    ks.apply(data, Source::InPlace);
    Ok(())
}

/// The keystream `ks` and the Poly1305 keyed with its first 32 bytes; the keystream continues
/// at byte 32, where a secretbox's message starts.
fn start(mut ks: Keystream) -> (Keystream, Poly1305) {
    let mut one_time = ks.take32();
    let mac = Poly1305::new(&one_time);
    zeroize::Zeroize::zeroize(&mut one_time);
    (ks, mac)
}

/// Poly1305 of all of `data`.
fn mac_all(mut mac: Poly1305, data: &[u8]) -> [u8; TAG_LEN] {
    let whole = data.len() - data.len() % 16;
    mac.blocks(&data[..whole]);
    mac.finish(&data[whole..])
}
