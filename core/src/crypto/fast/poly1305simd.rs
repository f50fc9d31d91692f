//! Poly1305 several blocks abreast in SIMD registers, for long inputs: the scheme of
//! poly1305-donna's SSE2 code and libsodium's `poly1305/sse2` (Andrew Moon), in safe Rust over
//! `safe_arch` (safe wrappers of the x86 intrinsics, which `wide` is built on).
//!
//! The accumulator and the powers of r are held in five 26-bit limbs, one limb per register,
//! each register holding `L` 64-bit lanes whose low 32 bits are the limb (`L` = 2 with SSE2, 4
//! with AVX2): `pmuludq` multiplies the low halves of every lane into 64-bit products, so the
//! products, their column sums and the carries all stay in the same lanes, with no shuffles.
//! The lanes are `L` independent Horner streams, each taking every `L`-th block. Each step
//! takes `2L` blocks, two groups `A` and `B` of `L`, as
//!
//! ```text
//! H ← H·r^(2L) + A·r^L + B          (lane-wise; the two products are independent)
//! ```
//!
//! and when the input is used up the streams are joined as `h = Σ Hⱼ·r^(L−kⱼ)`, `kⱼ` being the
//! position in its group of the blocks lane `j` takes. That is the same polynomial as one block
//! at a time, `h ← (h + m)·r`, so the result equals donna-64's (differential tests in
//! `tests.rs`). The caller's accumulator enters with the group's first block.
//!
//! Constant time: no branch and no memory index depends on the key, the accumulator or the
//! data (only on the length); the carries are shifts and masks.
//!
//! Bounds: after a carry, limbs are below 2²⁶ + 2¹²; `B` is added to them in the lanes (below
//! 2²⁷·¹); a message limb is below 2²⁶ (2²⁷·⁶ with the incoming accumulator added); a power's
//! limb is below 2²⁶ + 2¹², five times it below 2²⁸·⁴; so one product is below 2⁵⁶, a column of
//! five below 2⁵⁸·⁴, the two columns below 2⁵⁹·⁴: nothing overflows the 64-bit lanes, and the
//! carry brings every limb back within 32 bits, as `pmuludq` needs.

#[cfg(not(target_feature = "avx2"))]
use safe_arch::{
    add_i64_m128i, bitand_m128i, m128i, mul_widen_u32_odd_m128i, set_splat_i64_m128i,
    shl_imm_u64_m128i, shr_imm_u64_m128i, shuffle_ai_f32_all_m128i, unpack_high_i64_m128i,
    unpack_low_i64_m128i,
};
#[cfg(target_feature = "avx2")]
use safe_arch::{
    add_i64_m256i, bitand_m256i, m256i, mul_u64_low_bits_m256i, set_splat_i64_m256i,
    shl_imm_u64_m256i, shr_imm_u64_m256i, shuffle_ai_i32_half_m256i, unpack_high_i64_m256i,
    unpack_low_i64_m256i,
};

/// The register this build uses: two lanes with SSE2, four with AVX2.
#[cfg(not(target_feature = "avx2"))]
type Reg = m128i;
#[cfg(target_feature = "avx2")]
type Reg = m256i;

/// Bytes per step: `2L` 16-byte blocks.
pub(super) const STEP: usize = 32 * Reg::LANES;

const MASK26: u32 = (1 << 26) - 1;

/// A number mod 2^130 − 5 in five 26-bit limbs (not necessarily fully reduced).
type Limbs = [u32; 5];

/// Five limbs of `L` numbers: lane `j` of `v[i]` is limb `i` of number `j`.
type Lanes = [Reg; 5];

/// What the algorithm needs of a register of 64-bit lanes.
trait Vector: Copy {
    /// Lanes per register.
    const LANES: usize;
    /// For each lane, the position within its group of the blocks it takes ([`Vector::load`]).
    const ORDER: [usize; 4];
    fn splat(x: u32) -> Self;
    /// One value per lane (`x[..LANES]`).
    fn from_lanes(x: [u32; 4]) -> Self;
    fn add(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn shr<const N: i32>(self) -> Self;
    fn shl<const N: i32>(self) -> Self;
    /// The low 32 bits of each lane times those of `o`'s: `pmuludq`.
    fn mul(self, o: Self) -> Self;
    /// Each lane's low 32 bits copied into its high 32 (see [`vmul`]).
    fn dup_low(self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> u64;
    /// `LANES` consecutive blocks (16·`LANES` bytes) split into bits 0..64 and 64..128, one
    /// block per lane (in the order [`Vector::ORDER`] gives).
    fn load(m: &[u8]) -> (Self, Self);
}

#[inline(always)]
fn le64(m: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&m[at..at + 8]);
    u64::from_le_bytes(w)
}

#[cfg(not(target_feature = "avx2"))]
impl Vector for m128i {
    const LANES: usize = 2;
    const ORDER: [usize; 4] = [0, 1, 0, 0];
    #[inline(always)]
    fn splat(x: u32) -> Self {
        set_splat_i64_m128i(i64::from(x))
    }
    #[inline(always)]
    fn from_lanes(x: [u32; 4]) -> Self {
        Self::from([u64::from(x[0]), u64::from(x[1])])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        add_i64_m128i(self, o)
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        bitand_m128i(self, o)
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn shr<const N: i32>(self) -> Self {
        shr_imm_u64_m128i::<N>(self)
    }
    #[inline(always)]
    fn shl<const N: i32>(self) -> Self {
        shl_imm_u64_m128i::<N>(self)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        mul_widen_u32_odd_m128i(self, o)
    }
    #[inline(always)]
    fn dup_low(self) -> Self {
        shuffle_ai_f32_all_m128i::<0b10_10_00_00>(self)
    }
    #[inline(always)]
    fn sum(self) -> u64 {
        let [a, b] = <[u64; 2]>::from(self);
        a + b
    }
    #[inline(always)]
    fn load(m: &[u8]) -> (Self, Self) {
        // Block 0 in lane 0, block 1 in lane 1.
        let t0 = Self::from([le64(m, 0), le64(m, 8)]);
        let t1 = Self::from([le64(m, 16), le64(m, 24)]);
        (unpack_low_i64_m128i(t0, t1), unpack_high_i64_m128i(t0, t1))
    }
}

#[cfg(target_feature = "avx2")]
impl Vector for m256i {
    const LANES: usize = 4;
    // The unpacks work within 128-bit halves: blocks 0, 2, 1, 3 land in lanes 0, 1, 2, 3.
    const ORDER: [usize; 4] = [0, 2, 1, 3];
    #[inline(always)]
    fn splat(x: u32) -> Self {
        set_splat_i64_m256i(i64::from(x))
    }
    #[inline(always)]
    fn from_lanes(x: [u32; 4]) -> Self {
        Self::from(x.map(u64::from))
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        add_i64_m256i(self, o)
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        bitand_m256i(self, o)
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn shr<const N: i32>(self) -> Self {
        shr_imm_u64_m256i::<N>(self)
    }
    #[inline(always)]
    fn shl<const N: i32>(self) -> Self {
        shl_imm_u64_m256i::<N>(self)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        mul_u64_low_bits_m256i(self, o)
    }
    #[inline(always)]
    fn dup_low(self) -> Self {
        shuffle_ai_i32_half_m256i::<0b10_10_00_00>(self)
    }
    #[inline(always)]
    fn sum(self) -> u64 {
        <[u64; 4]>::from(self).iter().sum()
    }
    #[inline(always)]
    fn load(m: &[u8]) -> (Self, Self) {
        let t0 = Self::from([le64(m, 0), le64(m, 8), le64(m, 16), le64(m, 24)]);
        let t1 = Self::from([le64(m, 32), le64(m, 40), le64(m, 48), le64(m, 56)]);
        (unpack_low_i64_m256i(t0, t1), unpack_high_i64_m256i(t0, t1))
    }
}

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

/// Lane-wise `h · r` with `s = 5·r` (limbs 1..4 used): the five 64-bit column sums.
#[inline(always)]
fn vmul(h: &Lanes, r: &Lanes, s: &Lanes) -> Lanes {
    // `pmuludq` reads the low half of each lane only. Handing it `h` with its low halves
    // copied into the high ones (pshufd) changes nothing for the instruction, but tells LLVM
    // that only the low halves matter: without it, LLVM drops the intrinsic's implied mask
    // (it can prove the limbs fit 32 bits) and then, not seeing that across the loop, widens
    // every product into a 64×32-bit multiply (two `pmuludq`, two shifts and an add).
    let h: Lanes = h.map(Reg::dup_low);
    let m = |a: Reg, b: Reg| a.mul(b);
    let sum5 = |p: [Reg; 5]| p[0].add(p[1]).add(p[2].add(p[3])).add(p[4]);
    [
        sum5([
            m(h[0], r[0]),
            m(h[1], s[4]),
            m(h[2], s[3]),
            m(h[3], s[2]),
            m(h[4], s[1]),
        ]),
        sum5([
            m(h[0], r[1]),
            m(h[1], r[0]),
            m(h[2], s[4]),
            m(h[3], s[3]),
            m(h[4], s[2]),
        ]),
        sum5([
            m(h[0], r[2]),
            m(h[1], r[1]),
            m(h[2], r[0]),
            m(h[3], s[4]),
            m(h[4], s[3]),
        ]),
        sum5([
            m(h[0], r[3]),
            m(h[1], r[2]),
            m(h[2], r[1]),
            m(h[3], r[0]),
            m(h[4], s[4]),
        ]),
        sum5([
            m(h[0], r[4]),
            m(h[1], r[3]),
            m(h[2], r[2]),
            m(h[3], r[1]),
            m(h[4], r[0]),
        ]),
    ]
}

/// Carries the column sums of every lane back into 26-bit limbs (two interleaved chains, as
/// poly1305-donna does, for overlap).
#[inline(always)]
fn vcarry(d: Lanes) -> Lanes {
    let [mut d0, mut d1, mut d2, mut d3, mut d4] = d;
    let m = Reg::splat(MASK26);
    d1 = d1.add(d0.shr::<26>());
    d0 = d0.and(m);
    d4 = d4.add(d3.shr::<26>());
    d3 = d3.and(m);
    d2 = d2.add(d1.shr::<26>());
    d1 = d1.and(m);
    let c = d4.shr::<26>();
    d4 = d4.and(m);
    d0 = d0.add(c.add(c.shl::<2>()));
    d3 = d3.add(d2.shr::<26>());
    d2 = d2.and(m);
    d1 = d1.add(d0.shr::<26>());
    d0 = d0.and(m);
    d4 = d4.add(d3.shr::<26>());
    d3 = d3.and(m);
    [d0, d1, d2, d3, d4]
}

/// `L` consecutive 16-byte blocks as limbs, one block per lane, each with the 2^128 pad bit.
#[inline(always)]
fn load(m: &[u8]) -> Lanes {
    let (lo, hi) = Reg::load(m);
    let mask = Reg::splat(MASK26);
    [
        lo.and(mask),
        lo.shr::<26>().and(mask),
        lo.shr::<52>().or(hi.shl::<12>()).and(mask),
        hi.shr::<14>().and(mask),
        hi.shr::<40>().or(Reg::splat(1 << 24)),
    ]
}

#[inline(always)]
fn add5(a: Lanes, b: Lanes) -> Lanes {
    core::array::from_fn(|i| a[i].add(b[i]))
}

/// Absorbs `data` (a multiple of [`STEP`] bytes) into the accumulator `h` under the clamped
/// `r` (both in donna-64's 44/44/42-bit limbs): returns `h` after `h ← (h + m)·r` for every
/// block.
pub(super) fn blocks(r: [u64; 3], h: [u64; 3], data: &[u8]) -> [u64; 3] {
    debug_assert!(data.len() % STEP == 0);
    let lanes = Reg::LANES;
    let group = 16 * lanes;
    let mut steps = data.chunks_exact(STEP);
    let Some(first) = steps.next() else {
        return h;
    };
    // pow[k] = r^k for k = 1..=2L (r^(2L) only for k = 2L).
    let mut pow = [[0u32; 5]; 9];
    pow[1] = from_donna(r);
    for k in 2..=lanes {
        pow[k] = mul_limbs(pow[k - 1], pow[1]);
    }
    pow[2 * lanes] = mul_limbs(pow[lanes], pow[lanes]);
    let splat = |p: Limbs| -> (Lanes, Lanes) { (p.map(Reg::splat), p.map(|x| Reg::splat(x * 5))) };
    let (rl, sl) = splat(pow[lanes]);
    let (r2l, s2l) = splat(pow[2 * lanes]);

    // The first step: nothing to multiply by r^(2L) yet; the caller's h joins block 0, which
    // every layout puts in lane 0.
    let h0 = from_donna(h);
    let mut a = load(&first[..group]);
    for (limb, x) in a.iter_mut().zip(h0) {
        *limb = limb.add(Reg::from_lanes([x, 0, 0, 0]));
    }
    let mut hv = add5(vcarry(vmul(&a, &rl, &sl)), load(&first[group..]));

    for m in steps {
        let x = vmul(&hv, &r2l, &s2l);
        let y = vmul(&load(&m[..group]), &rl, &sl);
        hv = add5(vcarry(add5(x, y)), load(&m[group..]));
    }

    // Join the streams: the lane taking position k of each group still owes r^(L - k).
    let owed = |i: usize, times: u32| -> Reg {
        Reg::from_lanes(core::array::from_fn(|j| {
            if j < lanes {
                pow[lanes - Reg::ORDER[j]][i] * times
            } else {
                0
            }
        }))
    };
    let fin: Lanes = core::array::from_fn(|i| owed(i, 1));
    let fin5: Lanes = core::array::from_fn(|i| owed(i, 5));
    let joined = vcarry(vmul(&hv, &fin, &fin5));
    let sum: [u64; 5] = core::array::from_fn(|i| joined[i].sum());
    let out = to_donna(carry_scalar(sum));

    // Best-effort wipe of the key powers and the accumulator copy.
    zeroize::Zeroize::zeroize(pow.as_mut_slice().as_flattened_mut());
    let mut h0 = h0;
    zeroize::Zeroize::zeroize(&mut h0);
    out
}
