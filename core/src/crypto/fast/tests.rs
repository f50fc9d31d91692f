//! FastCrypto's primitives against published vectors, and the whole box against
//! `crypto_secretbox` (RustCrypto) for random keys, nonces and lengths.

use std::string::ToString;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::poly1305::{Poly1305, SIMD_FROM, poly1305, poly1305_with};
use super::salsa::{Keystream, Source, hsalsa20, key_words};
use super::*;
use crate::crypto::tests::unhex;
use crate::crypto::{Key, RustCrypto};

fn arr<const N: usize>(hex: &str) -> [u8; N] {
    unhex(hex).try_into().expect("vector length")
}

/// `len` keystream bytes of Salsa20/20 from block `counter`.
fn salsa20_stream(key: &[u8; 32], nonce: &[u8; 8], counter: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Keystream::salsa20(key, nonce, counter).apply(&mut out, Source::InPlace);
    out
}

// ---------------------------------------------------------------------------------------------
// Salsa20: eSTREAM (ECRYPT stream cipher project) verified test vectors for Salsa20/20 with a
// 256-bit key, file `verified.test-vectors` of the salsa20 submission (`test_vectors.256`).

/// Set 1, vector# 0: key = 80 00 .. 00, IV = 0. Blocks 0, 3, 4 and 7: lanes 0, 3, 4 and 7 of
/// one eight-block batch.
#[test]
fn salsa20_estream_set1_vector0() {
    let key = arr("8000000000000000000000000000000000000000000000000000000000000000");
    let stream = salsa20_stream(&key, &[0; 8], 0, 512);
    let expect = [
        (
            0,
            "E3BE8FDD8BECA2E3EA8EF9475B29A6E7003951E1097A5C38D23B7A5FAD9F6844\
             B22C97559E2723C7CBBD3FE4FC8D9A0744652A83E72A9C461876AF4D7EF1A117",
        ),
        (
            192,
            "57BE81F47B17D9AE7C4FF15429A73E10ACF250ED3A90A93C711308A74C6216A9\
             ED84CD126DA7F28E8ABF8BB63517E1CA98E712F4FB2E1A6AED9FDC73291FAA17",
        ),
        (
            256,
            "958211C4BA2EBD5838C635EDB81F513A91A294E194F1C039AEEC657DCE40AA7E\
             7C0AF57CACEFA40C9F14B71A4B3456A63E162EC7D8D10B8FFB1810D71001B618",
        ),
        (
            448,
            "696AFCFD0CDDCC83C7E77F11A649D79ACDC3354E9635FF137E929933A0BD6F53\
             77EFA105A3A4266B7C0D089D08F1E855CC32B15B93784A36E56A76CC64BC8477",
        ),
    ];
    for (at, hex) in expect {
        assert_eq!(&stream[at..at + 64], &unhex(hex)[..], "stream[{at}..]");
        // The same block by every path: alone (scalar), in a four-block batch, and from a
        // counter that puts it in another lane.
        let block = (at / 64) as u64;
        assert_eq!(salsa20_stream(&key, &[0; 8], block, 64), unhex(hex));
        assert_eq!(
            &salsa20_stream(&key, &[0; 8], block, 256)[..64],
            &unhex(hex)[..]
        );
    }
}

/// Set 6, vector# 0: stream[0..63], [65472..65535], [65536..65599], [131008..131071] (blocks
/// 0, 1023, 1024 and 2047: across 256 eight-block batches).
#[test]
fn salsa20_estream_set6_vector0() {
    let key = arr("0053A6F94C9FF24598EB3E91E4378ADD3083D6297CCF2275C81B6EC11467BA0D");
    let iv = arr("0D74DB42A91077DE");
    let stream = salsa20_stream(&key, &iv, 0, 131_072);
    let expect = [
        (
            0,
            "F5FAD53F79F9DF58C4AEA0D0ED9A9601F278112CA7180D565B420A48019670EA\
             F24CE493A86263F677B46ACE1924773D2BB25571E1AA8593758FC382B1280B71",
        ),
        (
            65472,
            "B70C50139C63332EF6E77AC54338A4079B82BEC9F9A403DFEA821B83F7860791\
             650EF1B2489D0590B1DE772EEDA4E3BCD60FA7CE9CD623D9D2FD5758B8653E70",
        ),
        (
            65536,
            "81582C65D7562B80AEC2F1A673A9D01C9F892A23D4919F6AB47B9154E08E699B\
             4117D7C666477B60F8391481682F5D95D96623DBC489D88DAA6956B9F0646B6E",
        ),
        (
            131_008,
            "A13FFA1208F8BF50900886FAAB40FD10E8CAA306E63DF39536A1564FB760B242\
             A9D6A4628CDC878762834E27A541DA2A5E3B3445989C76F611E0FEC6D91ACACC",
        ),
    ];
    for (at, hex) in expect {
        assert_eq!(&stream[at..at + 64], &unhex(hex)[..], "stream[{at}..]");
    }
}

/// The block counter is 64 bits: blocks either side of the carry into word 9 match RustCrypto's
/// `salsa20` crate, by every batch width.
#[test]
fn salsa20_counter_carries_into_the_high_word() {
    use salsa20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    let key: [u8; 32] = core::array::from_fn(|i| (i * 7 + 1) as u8);
    let nonce: [u8; 8] = core::array::from_fn(|i| (i * 5 + 3) as u8);
    for start in [(1u64 << 32) - 9, (1u64 << 32) - 3, (1u64 << 32) - 1] {
        for len in [64, 256, 512, 1024] {
            let ours = salsa20_stream(&key, &nonce, start, len);
            let mut theirs = vec![0u8; len];
            let mut c = salsa20::Salsa20::new(&key.into(), &nonce.into());
            c.seek(u128::from(start) * 64);
            c.apply_keystream(&mut theirs);
            assert_eq!(ours, theirs, "from block {start}, {len} bytes");
        }
    }
}

/// Cutting the stream anywhere (every call length pattern) gives the same bytes as one call.
#[test]
fn keystream_is_the_same_however_it_is_cut() {
    let key = [0x42; 32];
    let nonce = [0x24; 24];
    let mut whole = vec![0u8; 3000];
    Keystream::xsalsa20(&key, &nonce).apply(&mut whole, Source::InPlace);
    for step in [
        1, 3, 31, 32, 33, 63, 64, 65, 127, 129, 200, 255, 257, 511, 513, 700,
    ] {
        let mut ks = Keystream::xsalsa20(&key, &nonce);
        let mut cut = vec![0u8; 3000];
        for chunk in cut.chunks_mut(step) {
            ks.apply(chunk, Source::InPlace);
        }
        assert_eq!(cut, whole, "step {step}");
        // And from a source slice.
        let src: Vec<u8> = (0..3000).map(|i| (i * 13) as u8).collect();
        let mut ks = Keystream::xsalsa20(&key, &nonce);
        let mut out = vec![0u8; 3000];
        for (o, s) in out.chunks_mut(step).zip(src.chunks(step)) {
            ks.apply(o, Source::From(s));
        }
        let expect: Vec<u8> = whole.iter().zip(&src).map(|(k, s)| k ^ s).collect();
        assert_eq!(out, expect, "from, step {step}");
    }
}

// ---------------------------------------------------------------------------------------------
// HSalsa20: NaCl's tests/core1.c, core2.c (the crypto_box example of "Cryptography in NaCl",
// Bernstein 2009, section 8) and core5.c.

#[test]
fn hsalsa20_nacl_core1_core2_core5() {
    let cases = [
        // core1: the firstkey of the box example: HSalsa20(shared secret, 0).
        (
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
            "00000000000000000000000000000000",
            "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389",
        ),
        // core2: the secondkey: HSalsa20(firstkey, nonce[..16]).
        (
            "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389",
            "69696ee955b62b73cd62bda875fc73d6",
            "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4",
        ),
        // core5.
        (
            "ee304fca27008d8c126f90027901d80f7f1d8b8dc936cf3b9f819692827e5777",
            "81918ef2a5e0da9b3e9060521e4bb352",
            "bc1b30fc072cc14075e4baa731b5a845ea9b11e9a5191f94e18cba8fd821a7cd",
        ),
    ];
    for (key, input, out) in cases {
        let words = hsalsa20(&key_words(&arr(key)), &arr(input));
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(bytes, unhex(out));
    }
}

/// NaCl's tests/stream3.c: the first 32 bytes of XSalsa20(firstkey, nonce) — the Poly1305 key of
/// the secretbox example.
#[test]
fn xsalsa20_nacl_stream3() {
    let mut ks = Keystream::xsalsa20(
        &arr("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"),
        &arr("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"),
    );
    assert_eq!(
        ks.take32().to_vec(),
        unhex("eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880")
    );
}

// ---------------------------------------------------------------------------------------------
// Poly1305: RFC 8439 §2.5.2 and Appendix A.3, and NaCl's tests/onetimeauth.c.

/// RFC 8439 Appendix A.3, test vectors #1-#4: the text of #2 and #3.
const IETF_TEXT: &str = "Any submission to the IETF intended by the Contributor for publication \
as all or part of an IETF Internet-Draft or RFC and any statement made within the context of an \
IETF activity is considered an \"IETF Contribution\". Such statements include oral statements in \
IETF sessions, as well as written and electronic communications made at any time or place, which \
are addressed to";

/// RFC 8439 Appendix A.3, test vector #4's text (from Lewis Carroll's "Jabberwocky").
const JABBERWOCKY: &str = "'Twas brillig, and the slithy toves\nDid gyre and gimble in the \
wabe:\nAll mimsy were the borogoves,\nAnd the mome raths outgrabe.";

#[test]
fn poly1305_rfc8439_section_2_5_2() {
    let key = arr("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
    assert_eq!(
        poly1305(&key, b"Cryptographic Forum Research Group").to_vec(),
        unhex("a8061dc1305136c6c22b8baf0c0127a9")
    );
}

#[test]
fn poly1305_rfc8439_appendix_a3() {
    let zero = "00000000000000000000000000000000";
    let ff = "ffffffffffffffffffffffffffffffff";
    let r1 = "01000000000000000000000000000000";
    let r2 = "02000000000000000000000000000000";
    let r10 = "01000000000000000400000000000000";
    let m10 = "e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000\
               00000000000000000000000000000000";
    assert_eq!(IETF_TEXT.len(), 375);
    assert_eq!(JABBERWOCKY.len(), 127);
    // (vector, r, s, message, tag)
    let cases: [(u8, &str, &str, Vec<u8>, &str); 11] = [
        (1, zero, zero, vec![0; 64], zero),
        (
            2,
            zero,
            "36e5f6b5c5e06070f0efca96227a863e",
            IETF_TEXT.as_bytes().to_vec(),
            "36e5f6b5c5e06070f0efca96227a863e",
        ),
        (
            3,
            "36e5f6b5c5e06070f0efca96227a863e",
            zero,
            IETF_TEXT.as_bytes().to_vec(),
            "f3477e7cd95417af89a6b8794c310cf0",
        ),
        (
            4,
            "1c9240a5eb55d38af333888604f6b5f0",
            "473917c1402b80099dca5cbc207075c0",
            JABBERWOCKY.as_bytes().to_vec(),
            "4541669a7eaaee61e708dc7cbcc5eb62",
        ),
        (5, r2, zero, unhex(ff), "03000000000000000000000000000000"),
        (6, r2, ff, unhex(r2), "03000000000000000000000000000000"),
        (
            7,
            r1,
            zero,
            unhex(
                "ffffffffffffffffffffffffffffffff\
                 f0ffffffffffffffffffffffffffffff\
                 11000000000000000000000000000000",
            ),
            "05000000000000000000000000000000",
        ),
        (
            8,
            r1,
            zero,
            unhex(
                "ffffffffffffffffffffffffffffffff\
                 fbfefefefefefefefefefefefefefefe\
                 01010101010101010101010101010101",
            ),
            zero,
        ),
        (
            9,
            r2,
            zero,
            unhex("fdffffffffffffffffffffffffffffff"),
            "faffffffffffffffffffffffffffffff",
        ),
        (
            10,
            r10,
            zero,
            unhex(&(m10.to_string() + "01000000000000000000000000000000")),
            "14000000000000005500000000000000",
        ),
        (
            11,
            r10,
            zero,
            unhex(m10),
            "13000000000000000000000000000000",
        ),
    ];
    for (n, r, s, msg, tag) in cases {
        let key = arr::<32>(&(r.to_string() + s));
        assert_eq!(poly1305(&key, &msg).to_vec(), unhex(tag), "A.3 vector #{n}");
        // The vectorised code on every whole step (64 bytes with SSE2, 128 with AVX2), and
        // donna-64 alone.
        for simd_from in [0, usize::MAX] {
            assert_eq!(
                poly1305_with(&key, &msg, simd_from).to_vec(),
                unhex(tag),
                "A.3 vector #{n}, simd_from {simd_from}"
            );
        }
        // Repeated to reach the vectorised code at its default threshold and beyond: the
        // same message eight and 64 times must agree between the two codes.
        for times in [8, 64] {
            let long = msg.repeat(times);
            assert_eq!(
                poly1305_with(&key, &long, 0),
                poly1305_with(&key, &long, usize::MAX),
                "A.3 vector #{n} x{times}"
            );
        }
    }
}

/// NaCl tests/onetimeauth.c (and onetimeauth7's verify): the tag of the secretbox example,
/// computed over its 131-byte ciphertext with the key from stream3.
#[test]
fn poly1305_nacl_onetimeauth() {
    let key = arr("eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880");
    let c = unhex(NACL_CIPHERTEXT);
    assert_eq!(
        poly1305(&key, &c).to_vec(),
        unhex("f3ffc7703f9400e52a7dfb4b3d3305d9")
    );
    // 131 bytes: 128 vectorised bytes, then a 3-byte tail.
    assert_eq!(
        poly1305_with(&key, &c, 0).to_vec(),
        unhex("f3ffc7703f9400e52a7dfb4b3d3305d9")
    );
    // Blocks fed in pieces give the same tag.
    let mut p = Poly1305::new(&key);
    p.blocks(&c[..16]);
    p.blocks(&c[16..128]);
    assert_eq!(
        p.finish(&c[128..]).to_vec(),
        unhex("f3ffc7703f9400e52a7dfb4b3d3305d9")
    );
}

/// The secretbox example's ciphertext (NaCl tests/secretbox.c, box.c; after the 16-byte tag).
const NACL_CIPHERTEXT: &str = "8e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186a\
    c0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae\
    90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74\
    e355a5";

/// Poly1305 against RustCrypto's `poly1305` crate for every length up to 300 and random keys.
#[test]
fn poly1305_matches_rustcrypto_for_every_short_length() {
    use ::poly1305::universal_hash::KeyInit;
    let msg: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8).collect();
    for seed in 0..4u8 {
        let key: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(seed + 29) ^ 0xa5);
        for len in 0..=msg.len() {
            let theirs = ::poly1305::Poly1305::new(&key.into()).compute_unpadded(&msg[..len]);
            assert_eq!(poly1305(&key, &msg[..len])[..], theirs[..], "len {len}");
        }
    }
}

/// Poly1305 with a key and message of all ones stays within the limbs (worst-case carries).
#[test]
fn poly1305_all_ones_matches_rustcrypto() {
    use ::poly1305::universal_hash::KeyInit;
    let key = [0xff; 32];
    for len in [16, 17, 160, 1024, 4096] {
        let msg = vec![0xff; len];
        let theirs = ::poly1305::Poly1305::new(&key.into()).compute_unpadded(&msg);
        assert_eq!(poly1305(&key, &msg)[..], theirs[..], "len {len}");
    }
}

/// The `poly1305` crate's tag.
fn poly1305_reference(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    use ::poly1305::universal_hash::KeyInit;
    ::poly1305::Poly1305::new(&(*key).into())
        .compute_unpadded(msg)
        .into()
}

/// Keys for the vectorised Poly1305's differential tests: r at its clamped maximum (every
/// limb as large as it gets) with s all ones, r = 1, r minimal non-trivial, and pseudo-random
/// ones.
fn poly1305_test_keys() -> Vec<[u8; 32]> {
    let mut keys = vec![[0xff; 32], {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    }];
    keys.extend((0..3u8).map(|seed| {
        core::array::from_fn(|i| (i as u8).wrapping_mul(seed * 2 + 29) ^ (0xa5 + seed))
    }));
    keys
}

/// The vectorised Poly1305 (forced on every input with a whole step, and at its
/// default threshold) against donna-64 alone and the `poly1305` crate, for every length 0 to
/// 2048, on pseudo-random messages and on all-0xff messages (which, with r at its maximum, keep
/// the accumulator near 2^130 − 5 and every carry busy).
#[test]
fn poly1305_vectorised_matches_donna_and_rustcrypto_for_every_length_to_2048() {
    let random: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let ones = vec![0xffu8; 2048];
    for key in poly1305_test_keys() {
        for msg in [&random, &ones] {
            for len in 0..=msg.len() {
                let m = &msg[..len];
                let donna = poly1305_with(&key, m, usize::MAX);
                assert_eq!(poly1305_with(&key, m, 0), donna, "forced, len {len}");
                assert_eq!(poly1305(&key, m), donna, "default, len {len}");
                assert_eq!(poly1305_reference(&key, m), donna, "crate, len {len}");
            }
        }
    }
}

/// The accumulator carried in from earlier blocks (any value, here also near 2^130 − 5 after
/// all-0xff blocks) enters the vectorised code correctly: blocks fed in pieces, the later ones
/// long enough for it, give the one-shot tag.
#[test]
fn poly1305_vectorised_continues_any_accumulator() {
    for key in poly1305_test_keys() {
        for fill in [0xffu8, 0x5a] {
            let msg: Vec<u8> = (0..4096usize).map(|i| fill ^ (i as u8 & 0x0f)).collect();
            let expect = poly1305_reference(&key, &msg);
            for split in [16, 48, 128, 144, 1008] {
                let mut p = Poly1305::new(&key);
                p.blocks_with(&msg[..split], 0);
                p.blocks_with(&msg[split..2048], 0);
                p.blocks_with(&msg[2048..], 0);
                assert_eq!(p.finish(&[]), expect, "split {split}");
            }
        }
    }
    const { assert!(SIMD_FROM >= 64) };
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The vectorised Poly1305 against donna-64 and the `poly1305` crate for random keys and
    /// random lengths up to 200 KiB.
    #[test]
    fn poly1305_vectorised_matches_for_random_long_inputs(
        key in any::<[u8; 32]>(),
        len in 0usize..200 * 1024,
        seed in any::<u32>(),
    ) {
        let msg: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(seed | 1) >> 11) as u8).collect();
        let donna = poly1305_with(&key, &msg, usize::MAX);
        prop_assert_eq!(poly1305_with(&key, &msg, 0), donna);
        prop_assert_eq!(poly1305(&key, &msg), donna);
        prop_assert_eq!(poly1305_reference(&key, &msg), donna);
    }
}

// ---------------------------------------------------------------------------------------------
// The whole box against crypto_secretbox.

fn seal_both(key: &[u8; 32], nonce: &[u8; 24], msg: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let k = Key::from_bytes(*key);
    let mut ours = msg.to_vec();
    let tag = FastCrypto.seal_in_place(&k, nonce, &mut ours);
    let mut theirs = msg.to_vec();
    let their_tag = RustCrypto.seal_in_place(&k, nonce, &mut theirs);
    assert_eq!(ours, theirs, "ciphertext, len {}", msg.len());
    assert_eq!(tag, their_tag, "tag, len {}", msg.len());
    // seal_from, with every split of the in-place head we use (0, 1, 17 bytes).
    for head in [0, 1, 17].into_iter().filter(|&h| h <= msg.len()) {
        let mut out = vec![0xee; msg.len()];
        out[..head].copy_from_slice(&msg[..head]);
        let t = FastCrypto.seal_from(&k, nonce, &mut out, &msg[head..]);
        assert_eq!(
            (&out, t),
            (&ours, tag),
            "seal_from head {head}, len {}",
            msg.len()
        );
    }
    (ours, tag)
}

/// Open succeeds and restores `msg`; a flipped bit anywhere in tag or ciphertext fails and
/// leaves the data exactly as it was.
fn check_open(
    key: &[u8; 32],
    nonce: &[u8; 24],
    msg: &[u8],
    ct: &[u8],
    tag: [u8; 16],
    flips: &[usize],
) {
    let k = Key::from_bytes(*key);
    let mut data = ct.to_vec();
    FastCrypto
        .open_in_place(&k, nonce, &mut data, &tag)
        .unwrap();
    assert_eq!(data, msg);
    for &bit in flips {
        let mut data = ct.to_vec();
        let mut t = tag;
        if bit < 128 {
            t[bit / 8] ^= 1 << (bit % 8);
        } else {
            let b = bit - 128;
            data[b / 8] ^= 1 << (b % 8);
        }
        assert_eq!(
            FastCrypto.open_in_place(&k, nonce, &mut data, &t),
            Err(CryptoError::Forged),
            "bit {bit}"
        );
        let mut expect = ct.to_vec();
        if bit >= 128 {
            let b = bit - 128;
            expect[b / 8] ^= 1 << (b % 8);
        }
        assert_eq!(data, expect, "data untouched after bit {bit}");
    }
}

/// NaCl tests/secretbox.c: the 131-byte message under firstkey and the example nonce.
#[test]
fn secretbox_nacl_vector() {
    let key = arr("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
    let nonce = arr("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37");
    let msg = unhex(
        "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc\
         e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31\
         0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde\
         048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864\
         5e0705",
    );
    let (ct, tag) = seal_both(&key, &nonce, &msg);
    assert_eq!(ct, unhex(NACL_CIPHERTEXT));
    assert_eq!(tag.to_vec(), unhex("f3ffc7703f9400e52a7dfb4b3d3305d9"));
    let all_bits: Vec<usize> = (0..128 + 8 * ct.len()).collect();
    check_open(&key, &nonce, &msg, &ct, tag, &all_bits);
}

/// Lengths around every batch boundary: blocks (64), the 32-byte offset of the message in the
/// stream, the four- and eight-block batches, and 64 KiB.
#[test]
fn secretbox_matches_at_batch_boundaries() {
    let key: [u8; 32] = core::array::from_fn(|i| i as u8 * 3);
    let nonce: [u8; 24] = core::array::from_fn(|i| 200 - i as u8);
    let mut lens: Vec<usize> = vec![0, 1, 15, 16, 17, 31, 32, 33];
    for edge in [
        64, 96, 128, 160, 192, 256, 288, 320, 480, 512, 544, 1024, 4096, 65_536,
    ] {
        lens.extend([edge - 33, edge - 32, edge - 31, edge - 1, edge, edge + 1]);
    }
    lens.extend([255, 257, 511, 513, 65_535 + 33, 65_536 + 33, 131_072 + 5]);
    for len in lens {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let (ct, tag) = seal_both(&key, &nonce, &msg);
        let flips = [0, 127, 128, 128 + 8 * len.saturating_sub(1)];
        let flips: Vec<usize> = flips.into_iter().filter(|&b| b < 128 + 8 * len).collect();
        check_open(&key, &nonce, &msg, &ct, tag, &flips);
    }
}

fn arb_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..3000,
        1 => prop::sample::select(vec![63usize, 64, 65, 255, 256, 257, 511, 512, 513]),
        1 => 65_000usize..66_100,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn secretbox_matches_crypto_secretbox(
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
        len in arb_len(),
        seed in any::<u8>(),
        flip_seed in any::<u64>(),
    ) {
        let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed) ^ seed).collect();
        let (ct, tag) = seal_both(&key, &nonce, &msg);
        // One random bit in the tag and one in the ciphertext.
        let mut flips = vec![(flip_seed % 128) as usize];
        if len > 0 {
            flips.push(128 + ((flip_seed >> 8) as usize % (8 * len)));
        }
        check_open(&key, &nonce, &msg, &ct, tag, &flips);
    }
}
