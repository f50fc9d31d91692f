//! Poly1305 two blocks abreast in SSE2 registers, for long inputs: the scheme of
//! poly1305-donna's SSE2 code and libsodium's `poly1305/sse2` (Andrew Moon), in safe Rust over
//! `safe_arch` (safe wrappers of the SSE2 intrinsics, which `wide` is built on).
//!
//! The accumulator and the powers of r are held in five 26-bit limbs, one limb per register,
//! each register holding two 64-bit lanes whose low 32 bits are the limb: `pmuludq` multiplies
//! the low halves of both lanes into two 64-bit products, so the products, their column sums
//! and the carries all stay in the same lanes, with no shuffles. The two lanes are two
//! independent Horner streams: lane `j` takes blocks `j, j + 2, j + 4, …`. Each step takes four
//! blocks, two pairs `A` and `B`, as
//!
//! ```text
//! H ← H·r⁴ + A·r² + B          (lane-wise; the two products are independent)
//! ```
//!
//! and when the input is used up the streams are joined as `h = H₀·r² + H₁·r`. That is the
//! same polynomial as one block at a time, `h ← (h + m)·r`, so the result equals donna-64's
//! (differential tests in `tests.rs`). The caller's accumulator enters with the first block of
//! lane 0.
//!
//! Constant time: no branch and no memory index depends on the key, the accumulator or the
//! data (only on the length); the carries are shifts and masks.
//!
//! Bounds: after a carry, limbs are below 2²⁶ + 2¹²; `B` is added to them in the lanes (below
//! 2²⁷·¹); a message limb is below 2²⁶ (2²⁷·⁶ with the incoming accumulator added); a power's
//! limb is below 2²⁶ + 2¹², five times it below 2²⁸·⁴; so one product is below 2⁵⁶, a column of
//! five below 2⁵⁸·⁴, the two columns below 2⁵⁹·⁴: nothing overflows the 64-bit lanes, and the
//! carry brings every limb back within 32 bits, as `pmuludq` needs.

use safe_arch::{
    add_i64_m128i, bitand_m128i, load_unaligned_m128i, m128i, mul_widen_u32_odd_m128i,
    set_splat_i64_m128i, shl_imm_u64_m128i, shr_imm_u64_m128i, shuffle_ai_f32_all_m128i,
    unpack_high_i64_m128i, unpack_low_i64_m128i,
};

/// Bytes per step: four 16-byte blocks.
pub(super) const STEP: usize = 64;

const MASK26: u32 = (1 << 26) - 1;

/// A number mod 2^130 − 5 in five 26-bit limbs (not necessarily fully reduced).
type Limbs = [u32; 5];

/// Five limbs of two numbers: lane `j` of `v[i]` is limb `i` of number `j`.
type Lanes = [m128i; 5];

#[inline(always)]
const fn mul(a: u32, b: u32) -> u64 {
    (a as u64) * (b as u64)
}

/// `a · b` mod 2^130 − 5, scalar (the powers of r and the join of the lanes).
fn mul_limbs(a: Limbs, b: Limbs) -> Limbs {
    let s: [u32; 5] = core::array::from_fn(|i| b[i] * 5);
    carry_scalar([
        mul(a[0], b[0]) + mul(a[1], s[4]) + mul(a[2], s[3]) + mul(a[3], s[2]) + mul(a[4], s[1]),
        mul(a[0], b[1]) + mul(a[1], b[0]) + mul(a[2], s[4]) + mul(a[3], s[3]) + mul(a[4], s[2]),
        mul(a[0], b[2]) + mul(a[1], b[1]) + mul(a[2], b[0]) + mul(a[3], s[4]) + mul(a[4], s[3]),
        mul(a[0], b[3]) + mul(a[1], b[2]) + mul(a[2], b[1]) + mul(a[3], b[0]) + mul(a[4], s[4]),
        mul(a[0], b[4]) + mul(a[1], b[3]) + mul(a[2], b[2]) + mul(a[3], b[1]) + mul(a[4], b[0]),
    ])
}

/// Carries five 64-bit column sums back into 26-bit limbs (limb 1 may keep a few bits more).
#[inline(always)]
fn carry_scalar(d: [u64; 5]) -> Limbs {
    let [mut d0, mut d1, mut d2, mut d3, mut d4] = d;
    let m = u64::from(MASK26);
    d1 += d0 >> 26;
    d0 &= m;
    d2 += d1 >> 26;
    d1 &= m;
    d3 += d2 >> 26;
    d2 &= m;
    d4 += d3 >> 26;
    d3 &= m;
    d0 += (d4 >> 26) * 5;
    d4 &= m;
    d1 += d0 >> 26;
    d0 &= m;
    [d0 as u32, d1 as u32, d2 as u32, d3 as u32, d4 as u32]
}

/// A value given in donna-64's 44/44/42-bit limbs (each possibly a little over its width), in
/// 26-bit limbs; the top limb takes whatever lies above 2^104 (a few bits over 26 at most).
fn from_donna(h: [u64; 3]) -> Limbs {
    let m = u128::from(MASK26);
    // h0 + h1·2^44 (< 2^90), carried rather than masked, then h2 from bit 88 on.
    let mut t = u128::from(h[0]) + (u128::from(h[1]) << 44);
    let l0 = t & m;
    t >>= 26;
    let l1 = t & m;
    t >>= 26;
    let l2 = t & m;
    t = (t >> 26) + (u128::from(h[2]) << 10);
    let l3 = t & m;
    let l4 = t >> 26;
    [l0 as u32, l1 as u32, l2 as u32, l3 as u32, l4 as u32]
}

/// 26-bit limbs (each below 2^32) in donna-64's 44/44/42-bit limbs, carried and reduced so
/// that every limb fits its width.
fn to_donna(l: Limbs) -> [u64; 3] {
    let [l0, l1, l2, l3, l4] = l.map(u64::from);
    const M44: u64 = (1 << 44) - 1;
    const M42: u64 = (1 << 42) - 1;
    // Bits 0..44, 44..88, 88..130, each sum carried upwards.
    let t = l0 + (l1 << 26);
    let mut h0 = t & M44;
    let t = (t >> 44) + (l2 << 8) + (l3 << 34);
    let mut h1 = t & M44;
    let t = (t >> 44) + (l4 << 16);
    let h2 = t & M42;
    h0 += (t >> 42) * 5;
    h1 += h0 >> 44;
    h0 &= M44;
    [h0, h1, h2]
}

#[inline(always)]
fn splat(x: u32) -> m128i {
    set_splat_i64_m128i(i64::from(x))
}

#[inline(always)]
fn add(a: m128i, b: m128i) -> m128i {
    add_i64_m128i(a, b)
}

/// Lane-wise `h · r` with `s = 5·r` (limbs 1..4 used): the five 64-bit column sums.
#[inline(always)]
fn vmul(h: &Lanes, r: &Lanes, s: &Lanes) -> Lanes {
    // `pmuludq` reads the low half of each lane only. Handing it `h` with its low halves
    // copied into the high ones (pshufd) changes nothing for the instruction, but tells LLVM
    // that only the low halves matter: without it, LLVM drops the intrinsic's implied mask
    // (it can prove the limbs fit 32 bits) and then, not seeing that across the loop, widens
    // every product into a 64×32-bit multiply (two `pmuludq`, two shifts and an add).
    let h: Lanes = h.map(shuffle_ai_f32_all_m128i::<0b10_10_00_00>);
    let m = mul_widen_u32_odd_m128i;
    [
        add(
            add(
                add(m(h[0], r[0]), m(h[1], s[4])),
                add(m(h[2], s[3]), m(h[3], s[2])),
            ),
            m(h[4], s[1]),
        ),
        add(
            add(
                add(m(h[0], r[1]), m(h[1], r[0])),
                add(m(h[2], s[4]), m(h[3], s[3])),
            ),
            m(h[4], s[2]),
        ),
        add(
            add(
                add(m(h[0], r[2]), m(h[1], r[1])),
                add(m(h[2], r[0]), m(h[3], s[4])),
            ),
            m(h[4], s[3]),
        ),
        add(
            add(
                add(m(h[0], r[3]), m(h[1], r[2])),
                add(m(h[2], r[1]), m(h[3], r[0])),
            ),
            m(h[4], s[4]),
        ),
        add(
            add(
                add(m(h[0], r[4]), m(h[1], r[3])),
                add(m(h[2], r[2]), m(h[3], r[1])),
            ),
            m(h[4], r[0]),
        ),
    ]
}

/// Carries the column sums of both lanes back into 26-bit limbs (two interleaved chains, as
/// poly1305-donna does, for overlap).
#[inline(always)]
fn vcarry(d: Lanes) -> Lanes {
    let [mut d0, mut d1, mut d2, mut d3, mut d4] = d;
    let m = splat(MASK26);
    d1 = add(d1, shr_imm_u64_m128i::<26>(d0));
    d0 = bitand_m128i(d0, m);
    d4 = add(d4, shr_imm_u64_m128i::<26>(d3));
    d3 = bitand_m128i(d3, m);
    d2 = add(d2, shr_imm_u64_m128i::<26>(d1));
    d1 = bitand_m128i(d1, m);
    let c = shr_imm_u64_m128i::<26>(d4);
    d4 = bitand_m128i(d4, m);
    d0 = add(d0, add(c, shl_imm_u64_m128i::<2>(c)));
    d3 = add(d3, shr_imm_u64_m128i::<26>(d2));
    d2 = bitand_m128i(d2, m);
    d1 = add(d1, shr_imm_u64_m128i::<26>(d0));
    d0 = bitand_m128i(d0, m);
    d4 = add(d4, shr_imm_u64_m128i::<26>(d3));
    d3 = bitand_m128i(d3, m);
    [d0, d1, d2, d3, d4]
}

/// Two consecutive 16-byte blocks (32 bytes) as limbs, lane `j` = block `j`, each with the
/// 2^128 pad bit.
#[inline(always)]
fn load2(m: &[u8]) -> Lanes {
    let block = |at: usize| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&m[at..at + 16]);
        load_unaligned_m128i(&b)
    };
    let (t0, t1) = (block(0), block(16));
    // Bits 0..64 of both blocks, and bits 64..128.
    let lo = unpack_low_i64_m128i(t0, t1);
    let hi = unpack_high_i64_m128i(t0, t1);
    let mask = splat(MASK26);
    [
        bitand_m128i(lo, mask),
        bitand_m128i(shr_imm_u64_m128i::<26>(lo), mask),
        bitand_m128i(
            shr_imm_u64_m128i::<52>(lo) | shl_imm_u64_m128i::<12>(hi),
            mask,
        ),
        bitand_m128i(shr_imm_u64_m128i::<14>(hi), mask),
        shr_imm_u64_m128i::<40>(hi) | splat(1 << 24),
    ]
}

#[inline(always)]
fn add5(a: Lanes, b: Lanes) -> Lanes {
    core::array::from_fn(|i| add(a[i], b[i]))
}

/// Absorbs `data` (a multiple of [`STEP`] bytes) into the accumulator `h` under the clamped
/// `r` (both in donna-64's 44/44/42-bit limbs): returns `h` after `h ← (h + m)·r` for every
/// block.
pub(super) fn blocks(r: [u64; 3], h: [u64; 3], data: &[u8]) -> [u64; 3] {
    debug_assert!(data.len() % STEP == 0);
    let r = from_donna(r);
    let mut steps = data.chunks_exact(STEP);
    let Some(first) = steps.next() else {
        return h;
    };
    let r2 = mul_limbs(r, r);
    let r4 = mul_limbs(r2, r2);
    let r2v: Lanes = r2.map(splat);
    let s2v: Lanes = r2.map(|x| splat(x * 5));
    let r4v: Lanes = r4.map(splat);
    let s4v: Lanes = r4.map(|x| splat(x * 5));

    // The first step: nothing to multiply by r⁴ yet; the caller's h joins block 0 (lane 0).
    let h0 = from_donna(h);
    let mut a = load2(&first[..32]);
    for (limb, x) in a.iter_mut().zip(h0) {
        *limb = add(*limb, m128i::from([u64::from(x), 0]));
    }
    let mut hv = add5(vcarry(vmul(&a, &r2v, &s2v)), load2(&first[32..]));

    for m in steps {
        let x = vmul(&hv, &r4v, &s4v);
        let y = vmul(&load2(&m[..32]), &r2v, &s2v);
        hv = add5(vcarry(add5(x, y)), load2(&m[32..]));
    }

    // Join the streams: lane 0 still owes r², lane 1 r.
    let fin: Lanes = core::array::from_fn(|i| m128i::from([u64::from(r2[i]), u64::from(r[i])]));
    let fin5: Lanes =
        core::array::from_fn(|i| m128i::from([u64::from(r2[i] * 5), u64::from(r[i] * 5)]));
    let joined = vcarry(vmul(&hv, &fin, &fin5));
    let sum: [u64; 5] = core::array::from_fn(|i| {
        let [a, b] = <[u64; 2]>::from(joined[i]);
        a + b
    });
    let out = to_donna(carry_scalar(sum));

    // Best-effort wipe of the key powers and the accumulator copy.
    let mut wipe = [r, r2, r4, h0];
    zeroize::Zeroize::zeroize(wipe.as_mut_slice().as_flattened_mut());
    out
}
