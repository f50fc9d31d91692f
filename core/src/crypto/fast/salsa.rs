//! Salsa20/20, HSalsa20 and the XSalsa20 keystream (Bernstein, "The Salsa20 family of stream
//! ciphers" and "Extending the Salsa20 nonce"), in safe Rust.
//!
//! One generic round function serves three widths: `u32` (one block, and HSalsa20),
//! `wide::u32x4` (four consecutive blocks, one SSE2/NEON/simd128 register per state word) and
//! `wide::u32x8` (eight blocks, one AVX2 register per word; two SSE2 registers without AVX2).
//! The wide forms are "vertical": lane `j` of state word `i` is word `i` of block
//! `counter + j`, so every operation is a plain lane-wise add, xor or shift, with no shuffles
//! inside the rounds.
//!
//! [`Keystream`] hands the keystream out in order across calls, which is how XSalsa20-Poly1305
//! uses it: 32 bytes of Poly1305 key first, then the message from byte 32 on.

use wide::{u32x4, u32x8};

/// "expand 32-byte k", the Salsa20 constants for a 256-bit key.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Bytes in one Salsa20 block.
pub(super) const BLOCK: usize = 64;

/// Eight-block batches run while at least this many keystream bytes are wanted; four-block
/// batches while at least [`QUAD_FROM`] are (three or four blocks: a four-block batch is about
/// 1,600 vector operations, one scalar block 960 scalar ones); below that, single blocks.
const OCTO_FROM: usize = 8 * BLOCK;
const QUAD_FROM: usize = 2 * BLOCK + 1;

/// What the round function needs from a word type: wrapping add, xor and rotate.
trait Word: Copy {
    fn add(self, other: Self) -> Self;
    fn xor(self, other: Self) -> Self;
    fn rotl<const N: i32>(self) -> Self;
}

impl Word for u32 {
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        self ^ other
    }
    #[inline(always)]
    fn rotl<const N: i32>(self) -> Self {
        self.rotate_left(N.unsigned_abs())
    }
}

macro_rules! wide_word {
    ($t:ty) => {
        impl Word for $t {
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn xor(self, other: Self) -> Self {
                self ^ other
            }
            #[inline(always)]
            fn rotl<const N: i32>(self) -> Self {
                (self << N) | (self >> (32 - N))
            }
        }
    };
}
wide_word!(u32x4);
wide_word!(u32x8);

#[inline(always)]
fn quarter<W: Word>(x: &mut [W; 16], a: usize, b: usize, c: usize, d: usize) {
    x[b] = x[b].xor(x[a].add(x[d]).rotl::<7>());
    x[c] = x[c].xor(x[b].add(x[a]).rotl::<9>());
    x[d] = x[d].xor(x[c].add(x[b]).rotl::<13>());
    x[a] = x[a].xor(x[d].add(x[c]).rotl::<18>());
}

/// The 20 rounds of Salsa20/20 (ten double rounds: columns, then rows), without the final
/// addition.
#[inline(always)]
fn rounds<W: Word>(x: &mut [W; 16]) {
    for _ in 0..10 {
        quarter(x, 0, 4, 8, 12);
        quarter(x, 5, 9, 13, 1);
        quarter(x, 10, 14, 2, 6);
        quarter(x, 15, 3, 7, 11);
        quarter(x, 0, 1, 2, 3);
        quarter(x, 5, 6, 7, 4);
        quarter(x, 10, 11, 8, 9);
        quarter(x, 15, 12, 13, 14);
    }
}

/// The little-endian word at word index `i` of `bytes`.
#[inline(always)]
fn le_word(bytes: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

/// The input block for `key`, `input` (the words at positions 6..10: nonce and counter for
/// Salsa20, the 16-byte input for HSalsa20).
#[inline(always)]
fn state<W: Word>(key: &[u32; 8], input: [W; 4], splat: impl Fn(u32) -> W) -> [W; 16] {
    [
        splat(SIGMA[0]),
        splat(key[0]),
        splat(key[1]),
        splat(key[2]),
        splat(key[3]),
        splat(SIGMA[1]),
        input[0],
        input[1],
        input[2],
        input[3],
        splat(SIGMA[2]),
        splat(key[4]),
        splat(key[5]),
        splat(key[6]),
        splat(key[7]),
        splat(SIGMA[3]),
    ]
}

/// A 32-byte key as eight little-endian words.
pub(super) fn key_words(key: &[u8; 32]) -> [u32; 8] {
    core::array::from_fn(|i| le_word(key, i))
}

/// HSalsa20(`key`, `input`): the 20 rounds over (key, 16-byte input) without the final
/// addition, output words 0, 5, 10, 15, 6, 7, 8, 9. `crypto_box_beforenm` is HSalsa20 of the
/// x25519 shared secret with a zero input; XSalsa20 derives its subkey with the first 16 nonce
/// bytes.
pub(super) fn hsalsa20(key: &[u32; 8], input: &[u8; 16]) -> [u32; 8] {
    let mut x = state(key, core::array::from_fn(|i| le_word(input, i)), |w| w);
    rounds(&mut x);
    [x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9]]
}

/// One Salsa20/20 block (the keystream words) for `key`, `nonce` and block `counter`.
#[inline(always)]
fn block1(key: &[u32; 8], nonce: [u32; 2], counter: u64) -> [u32; 16] {
    let input = [nonce[0], nonce[1], counter as u32, (counter >> 32) as u32];
    let init = state(key, input, |w| w);
    let mut x = init;
    rounds(&mut x);
    core::array::from_fn(|i| x[i].wrapping_add(init[i]))
}

/// The lanes of the block counter for a batch of `N` consecutive blocks from `counter`.
#[inline(always)]
fn counter_lanes<const N: usize>(counter: u64) -> ([u32; N], [u32; N]) {
    let c = |j: usize| counter.wrapping_add(j as u64);
    (
        core::array::from_fn(|j| c(j) as u32),
        core::array::from_fn(|j| (c(j) >> 32) as u32),
    )
}

/// Four consecutive blocks, word-major: `out[i][j]` is word `i` of block `counter + j`.
#[inline(always)]
fn blocks4(key: &[u32; 8], nonce: [u32; 2], counter: u64) -> [[u32; 4]; 16] {
    let (lo, hi) = counter_lanes::<4>(counter);
    let input = [
        u32x4::splat(nonce[0]),
        u32x4::splat(nonce[1]),
        u32x4::from(lo),
        u32x4::from(hi),
    ];
    let init = state(key, input, u32x4::splat);
    let mut x = init;
    rounds(&mut x);
    core::array::from_fn(|i| (x[i] + init[i]).to_array())
}

/// Eight consecutive blocks, word-major: `out[i][j]` is word `i` of block `counter + j`.
#[inline(always)]
fn blocks8(key: &[u32; 8], nonce: [u32; 2], counter: u64) -> [[u32; 8]; 16] {
    let (lo, hi) = counter_lanes::<8>(counter);
    let input = [
        u32x8::splat(nonce[0]),
        u32x8::splat(nonce[1]),
        u32x8::from(lo),
        u32x8::from(hi),
    ];
    let init = state(key, input, u32x8::splat);
    let mut x = init;
    rounds(&mut x);
    core::array::from_fn(|i| (x[i] + init[i]).to_array())
}

/// Where the bytes to encrypt come from: the destination itself (in place) or another slice of
/// the same length.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    InPlace,
    From(&'a [u8]),
}

impl<'a> Source<'a> {
    /// The part of the source that feeds `dst[at..at + len]`.
    #[inline(always)]
    fn sub(self, at: usize, len: usize) -> Self {
        match self {
            Self::InPlace => Self::InPlace,
            Self::From(s) => Self::From(&s[at..at + len]),
        }
    }
}

/// `dst[i] = src[i] ^ ks(word i)` for up to 16 keystream words of one block, where
/// `word(i)` gives keystream word `i` (so word-major batches need no transposition through
/// memory): `dst` is at most 64 bytes and starts at a block boundary.
#[inline(always)]
fn xor_block(dst: &mut [u8], src: Source<'_>, word: impl Fn(usize) -> u32) {
    let full = dst.len() / 4;
    match src {
        Source::InPlace => {
            for (i, d) in dst.chunks_exact_mut(4).enumerate() {
                let v = le_word(d, 0) ^ word(i);
                d.copy_from_slice(&v.to_le_bytes());
            }
        }
        Source::From(s) => {
            for (i, (d, s)) in dst.chunks_exact_mut(4).zip(s.chunks_exact(4)).enumerate() {
                let v = le_word(s, 0) ^ word(i);
                d.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    let rest = dst.len() % 4;
    if rest != 0 {
        let ks = word(full).to_le_bytes();
        let at = 4 * full;
        for k in 0..rest {
            let b = match src {
                Source::InPlace => dst[at + k],
                Source::From(s) => s[at + k],
            };
            dst[at + k] = b ^ ks[k];
        }
    }
}

/// The XSalsa20 keystream under one (key, nonce), consumed in order.
///
/// Keeps the unused rest of the last block it computed, so calls may cut the stream anywhere;
/// runs of whole blocks go through the 8- and 4-block batches. The key words and the buffered
/// keystream are wiped on drop (best effort, as [`crate::crypto::Key`] does).
pub(super) struct Keystream {
    key: [u32; 8],
    nonce: [u32; 2],
    /// The next block to compute.
    counter: u64,
    /// The current block's keystream bytes; `buf[used..]` are still unused.
    buf: [u8; BLOCK],
    used: usize,
}

impl Drop for Keystream {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

impl Keystream {
    /// XSalsa20 under `key` and the 24-byte `nonce`: the Salsa20 stream of
    /// (HSalsa20(key, nonce[..16]), nonce[16..]) from block 0.
    pub(super) fn xsalsa20(key: &[u8; 32], nonce: &[u8; 24]) -> Self {
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&nonce[..16]);
        let mut key = key_words(key);
        let sub = hsalsa20(&key, &prefix);
        zeroize::Zeroize::zeroize(&mut key);
        Self {
            key: sub,
            nonce: [le_word(nonce, 4), le_word(nonce, 5)],
            counter: 0,
            buf: [0; BLOCK],
            used: BLOCK,
        }
    }

    /// A Salsa20/20 stream under `key` and the 8-byte `nonce`, starting at block `counter`: with
    /// a precomputed XSalsa20 subkey and counter 0, the XSalsa20 stream without its HSalsa20
    /// (and the eSTREAM known-answer tests).
    pub(super) fn salsa20(key: &[u8; 32], nonce: &[u8; 8], counter: u64) -> Self {
        Self {
            key: key_words(key),
            nonce: [le_word(nonce, 0), le_word(nonce, 1)],
            counter,
            buf: [0; BLOCK],
            used: BLOCK,
        }
    }

    /// The next 32 keystream bytes (the Poly1305 key of a secretbox).
    pub(super) fn take32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.apply(&mut out, Source::InPlace);
        out
    }

    /// Xors the next `dst.len()` keystream bytes into `dst` (in place), or writes
    /// `src ^ keystream` to `dst` (`src` as long as `dst`).
    pub(super) fn apply(&mut self, dst: &mut [u8], src: Source<'_>) {
        // First the rest of the buffered block.
        let n = dst.len().min(BLOCK - self.used);
        if n > 0 {
            let ks = &self.buf[self.used..self.used + n];
            match src {
                Source::InPlace => dst[..n].iter_mut().zip(ks).for_each(|(d, k)| *d ^= k),
                Source::From(s) => dst[..n]
                    .iter_mut()
                    .zip(s[..n].iter().zip(ks))
                    .for_each(|(d, (s, k))| *d = s ^ k),
            }
            self.used += n;
        }
        let mut at = n;
        let total = dst.len();
        // Eight blocks at a time.
        while total - at >= OCTO_FROM {
            let ks = blocks8(&self.key, self.nonce, self.counter);
            self.counter = self.counter.wrapping_add(8);
            let batch = &mut dst[at..at + OCTO_FROM];
            for (j, d) in batch.chunks_exact_mut(BLOCK).enumerate() {
                xor_block(d, src.sub(at + j * BLOCK, BLOCK), |i| ks[i][j]);
            }
            at += OCTO_FROM;
        }
        // Four blocks at a time; the last one may be partial (its rest is buffered), and unused
        // whole blocks are given back by rewinding the counter.
        while total - at >= QUAD_FROM {
            let ks = blocks4(&self.key, self.nonce, self.counter);
            let len = (total - at).min(4 * BLOCK);
            let used = len.div_ceil(BLOCK);
            self.counter = self.counter.wrapping_add(used as u64);
            for (j, d) in dst[at..at + len].chunks_mut(BLOCK).enumerate() {
                let take = d.len();
                xor_block(d, src.sub(at + j * BLOCK, take), |i| ks[i][j]);
                if take < BLOCK {
                    self.keep(|i| ks[i][j], take);
                }
            }
            at += len;
        }
        // Single blocks.
        while at < total {
            let ks = block1(&self.key, self.nonce, self.counter);
            self.counter = self.counter.wrapping_add(1);
            let take = (total - at).min(BLOCK);
            xor_block(&mut dst[at..at + take], src.sub(at, take), |i| ks[i]);
            if take < BLOCK {
                self.keep(|i| ks[i], take);
            }
            at += take;
        }
    }

    /// Buffers the block whose words `word` gives, of which `used` bytes were consumed.
    #[inline(always)]
    fn keep(&mut self, word: impl Fn(usize) -> u32, used: usize) {
        for (i, chunk) in self.buf.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&word(i).to_le_bytes());
        }
        self.used = used;
    }
}
