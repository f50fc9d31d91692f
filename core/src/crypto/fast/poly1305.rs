//! Poly1305 (Bernstein; RFC 8439 §2.5), "donna-64" style: the accumulator and `r` in three
//! limbs of 44, 44 and 42 bits, products in `u128`, after Andrew Moon's poly1305-donna. On x86
//! with SSE2, inputs of [`SIMD_FROM`] bytes or more hand their whole steps (64 bytes, 128 with
//! AVX2) to the vectorised code (`poly1305simd`: 26-bit limbs, two blocks per SSE2 register or
//! four per AVX2 register) and finish here.
//!
//! Constant time: no branch and no memory index depends on the key, the accumulator or the
//! message bytes (only on the message *length*); the final reduction selects with masks. The
//! tag comparison of an open lives with the caller ([`super::super::ct_eq16`]).

#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
use super::poly1305simd;

const MASK44: u64 = (1 << 44) - 1;
const MASK42: u64 = (1 << 42) - 1;
/// The 2^128 bit of every full 16-byte block, as it falls in the top limb.
const HIBIT: u64 = 1 << 40;

/// A running Poly1305 computation. The key limbs and the accumulator are wiped on drop (best
/// effort).
pub(super) struct Poly1305 {
    r: [u64; 3],
    /// 20·r1 and 20·r2: the reduction of the limbs that overflow 2^130 (2^130 ≡ 5, and the limb
    /// boundaries shift it by 4).
    s: [u64; 2],
    h: [u64; 3],
    pad: [u64; 2],
}

impl Drop for Poly1305 {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.r);
        zeroize::Zeroize::zeroize(&mut self.s);
        zeroize::Zeroize::zeroize(&mut self.h);
        zeroize::Zeroize::zeroize(&mut self.pad);
    }
}

#[inline(always)]
fn le64(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
const fn mul(a: u64, b: u64) -> u128 {
    (a as u128) * (b as u128)
}

/// The three limbs of a 16-byte block, with the 2^128 pad bit `hibit` (0 for the final partial
/// block, whose pad byte is in the data).
#[inline(always)]
fn limbs(m: &[u8], hibit: u64) -> [u64; 3] {
    let t0 = le64(m, 0);
    let t1 = le64(m, 8);
    [
        t0 & MASK44,
        ((t0 >> 44) | (t1 << 20)) & MASK44,
        ((t1 >> 24) & MASK42) | hibit,
    ]
}

/// The unreduced product `x · r` (mod 2^130 − 5 folded into the limbs: the parts at 2^132 and
/// above come back multiplied by 20, hence `s` = 20·r1, 20·r2).
#[inline(always)]
fn product(x: [u64; 3], r: [u64; 3], s: [u64; 2]) -> [u128; 3] {
    [
        mul(x[0], r[0]) + mul(x[1], s[1]) + mul(x[2], s[0]),
        mul(x[0], r[1]) + mul(x[1], r[0]) + mul(x[2], s[1]),
        mul(x[0], r[2]) + mul(x[1], r[1]) + mul(x[2], r[0]),
    ]
}

/// Carries an unreduced product back into 44/44/42-bit limbs (the middle limb may keep a few
/// bits over 44, which the next product and the final carry absorb).
#[inline(always)]
fn carry(d: [u128; 3]) -> [u64; 3] {
    let [d0, mut d1, mut d2] = d;
    let c = (d0 >> 44) as u64;
    let mut h0 = d0 as u64 & MASK44;
    d1 += u128::from(c);
    let c = (d1 >> 44) as u64;
    let mut h1 = d1 as u64 & MASK44;
    d2 += u128::from(c);
    let c = (d2 >> 42) as u64;
    let h2 = d2 as u64 & MASK42;
    h0 += c * 5;
    let c = h0 >> 44;
    h0 &= MASK44;
    h1 += c;
    [h0, h1, h2]
}

#[inline(always)]
fn add3(a: [u128; 3], b: [u128; 3]) -> [u128; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// 20·r1 and 20·r2.
#[inline(always)]
const fn times20(r: [u64; 3]) -> [u64; 2] {
    [r[1] * 20, r[2] * 20]
}

/// Four blocks per step from this many bytes on (below it the powers of r cost more than they
/// save).
const FOUR_WAY_FROM: usize = 8 * 16;

/// On x86 with SSE2 (every x86_64), the vectorised code (`poly1305simd`) takes the whole steps
/// (64 bytes with SSE2, 128 with AVX2) of inputs of at least this many bytes; the rest and
/// shorter inputs stay here. Chosen by measurement (docs/performance.md, "Crypto providers": at
/// 64 bytes donna-64 is faster than SSE2, from 128 on the SSE2 code; with AVX2 the two tie at
/// 128 and the AVX2 code wins from 256). Other targets use donna-64 throughout.
pub(super) const SIMD_FROM: usize = 128;

impl Poly1305 {
    /// Keys a computation with the one-time key `r ‖ s` (32 bytes); `r` is clamped here.
    pub(super) fn new(key: &[u8; 32]) -> Self {
        let t0 = le64(key, 0);
        let t1 = le64(key, 8);
        // r &= 0x0ffffffc0ffffffc0ffffffc0fffffff, split 44/44/42.
        let r = [
            t0 & 0xffc_0fff_ffff,
            ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff,
            (t1 >> 24) & 0x00f_ffff_fc0f,
        ];
        Self {
            r,
            s: times20(r),
            h: [0; 3],
            pad: [le64(key, 16), le64(key, 24)],
        }
    }

    /// Absorbs whole 16-byte blocks; `data.len()` must be a multiple of 16.
    ///
    /// Long runs go four blocks at a time, Horner's rule unrolled with the powers of r:
    /// h ← (h + m1)·r⁴ + m2·r³ + m3·r² + m4·r. The same arithmetic as one block at a time, but
    /// the four products are independent, so they overlap instead of waiting on each other.
    pub(super) fn blocks(&mut self, data: &[u8]) {
        self.blocks_with(data, SIMD_FROM);
    }

    /// [`blocks`](Self::blocks) with the vectorised code from `simd_from` bytes on (tests and
    /// the crossover benchmark).
    #[inline(always)]
    pub(super) fn blocks_with(&mut self, data: &[u8], simd_from: usize) {
        debug_assert_eq!(data.len() % 16, 0);
        let mut rest = data;
        #[cfg(all(
            any(target_arch = "x86", target_arch = "x86_64"),
            target_feature = "sse2"
        ))]
        if data.len() >= simd_from.max(poly1305simd::STEP) {
            let whole = data.len() - data.len() % poly1305simd::STEP;
            self.h = poly1305simd::blocks(self.r, self.h, &data[..whole]);
            rest = &data[whole..];
        }
        #[cfg(not(all(
            any(target_arch = "x86", target_arch = "x86_64"),
            target_feature = "sse2"
        )))]
        let _ = simd_from;
        if rest.len() >= FOUR_WAY_FROM {
            let (r1, s1) = (self.r, self.s);
            let r2 = carry(product(r1, r1, s1));
            let r3 = carry(product(r2, r1, s1));
            let r4 = carry(product(r3, r1, s1));
            let (s2, s3, s4) = (times20(r2), times20(r3), times20(r4));
            let mut h = self.h;
            let mut chunks = rest.chunks_exact(64);
            for m in &mut chunks {
                let m1 = limbs(&m[..16], HIBIT);
                let x = [h[0] + m1[0], h[1] + m1[1], h[2] + m1[2]];
                let d = add3(
                    add3(
                        product(x, r4, s4),
                        product(limbs(&m[16..32], HIBIT), r3, s3),
                    ),
                    add3(
                        product(limbs(&m[32..48], HIBIT), r2, s2),
                        product(limbs(&m[48..], HIBIT), r1, s1),
                    ),
                );
                h = carry(d);
            }
            self.h = h;
            rest = chunks.remainder();
        }
        self.absorb(rest, HIBIT);
    }

    #[inline(always)]
    fn absorb(&mut self, data: &[u8], hibit: u64) {
        let (r, s) = (self.r, self.s);
        let mut h = self.h;
        for m in data.chunks_exact(16) {
            let m = limbs(m, hibit);
            h = carry(product([h[0] + m[0], h[1] + m[1], h[2] + m[2]], r, s));
        }
        self.h = h;
    }

    /// Absorbs the final `tail` (0 to 15 bytes: padded with 0x01 then zeros, without the 2^128
    /// bit) and returns the tag.
    pub(super) fn finish(mut self, tail: &[u8]) -> [u8; 16] {
        debug_assert!(tail.len() < 16);
        if !tail.is_empty() {
            let mut last = [0u8; 16];
            last[..tail.len()].copy_from_slice(tail);
            last[tail.len()] = 1;
            self.absorb(&last, 0);
        }
        let [mut h0, mut h1, mut h2] = self.h;

        // Fully carry h.
        let mut c = h1 >> 44;
        h1 &= MASK44;
        h2 += c;
        c = h2 >> 42;
        h2 &= MASK42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += c;
        c = h1 >> 44;
        h1 &= MASK44;
        h2 += c;
        c = h2 >> 42;
        h2 &= MASK42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += c;

        // g = h + 5 - 2^130; keep h if g is negative (h < p), else g.
        let mut g0 = h0 + 5;
        c = g0 >> 44;
        g0 &= MASK44;
        let mut g1 = h1 + c;
        c = g1 >> 44;
        g1 &= MASK44;
        let mut g2 = (h2 + c).wrapping_sub(1 << 42);
        let keep_g = (g2 >> 63).wrapping_sub(1); // all ones if g ≥ 0
        g0 &= keep_g;
        g1 &= keep_g;
        g2 &= keep_g;
        let keep_h = !keep_g;
        h0 = (h0 & keep_h) | g0;
        h1 = (h1 & keep_h) | g1;
        h2 = (h2 & keep_h) | g2;

        // h + s mod 2^128.
        let [t0, t1] = self.pad;
        h0 += t0 & MASK44;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += (((t0 >> 44) | (t1 << 20)) & MASK44) + c;
        c = h1 >> 44;
        h1 &= MASK44;
        h2 += ((t1 >> 24) & MASK42) + c;
        h2 &= MASK42;

        let lo = h0 | (h1 << 44);
        let hi = (h1 >> 20) | (h2 << 24);
        let mut tag = [0u8; 16];
        tag[..8].copy_from_slice(&lo.to_le_bytes());
        tag[8..].copy_from_slice(&hi.to_le_bytes());
        tag
    }
}

/// Poly1305 of `msg` under the one-time `key`.
#[cfg(test)]
pub(super) fn poly1305(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    poly1305_with(key, msg, SIMD_FROM)
}

/// Poly1305 of `msg` under the one-time `key`, the vectorised code taking inputs from
/// `simd_from` bytes on (`usize::MAX`: donna-64 alone).
#[cfg(any(test, feature = "internals"))]
pub(super) fn poly1305_with(key: &[u8; 32], msg: &[u8], simd_from: usize) -> [u8; 16] {
    let mut p = Poly1305::new(key);
    let whole = msg.len() - msg.len() % 16;
    p.blocks_with(&msg[..whole], simd_from);
    p.finish(&msg[whole..])
}
