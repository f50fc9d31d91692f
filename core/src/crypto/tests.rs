//! Every provider against NaCl's `crypto_box` example ("Cryptography in NaCl", Bernstein 2009,
//! section 8; NaCl tests/box.c, box2.c, scalarmult5.c, core1.c) and the seam's contract.

use std::vec;
use std::vec::Vec;

use super::*;

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn arr<const N: usize>(hex: &str) -> [u8; N] {
    unhex(hex).try_into().expect("vector length")
}

const ALICE_SK: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PK: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_SK: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PK: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
const FIRSTKEY: &str = "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389";
const NONCE: &str = "69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37";
const MESSAGE: &str = "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc\
    e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057\
    e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864\
    5e0705";
/// The box: tag (16 bytes), then the 131-byte ciphertext.
const BOXED: &str = "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce\
    48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738\
    b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3\
    7973f622a43d14a6599b1f654cb45a74e355a5";

fn secret(hex: &str) -> SecretKey {
    SecretKey::from_bytes(arr(hex))
}

#[test]
fn every_provider_reproduces_the_nacl_box_example() {
    assert_eq!(
        all_providers().len(),
        1 + usize::from(cfg!(feature = "fast-crypto"))
    );
    for p in all_providers() {
        // scalarmult5/6 and box: both sides agree on the shared secret.
        let ab = p.x25519(&secret(ALICE_SK), &arr(BOB_PK)).unwrap();
        let ba = p.x25519(&secret(BOB_SK), &arr(ALICE_PK)).unwrap();
        assert_eq!(ab.as_bytes().to_vec(), unhex(SHARED), "{p:?}");
        assert_eq!(ba.as_bytes(), ab.as_bytes(), "{p:?}");
        // core1: the precomputed key.
        let k = p.beforenm(&secret(ALICE_SK), &arr(BOB_PK)).unwrap();
        assert_eq!(k.as_bytes().to_vec(), unhex(FIRSTKEY), "{p:?}");
        assert_eq!(p.hsalsa20(&ab, &[0; 16]).as_bytes(), k.as_bytes(), "{p:?}");
        // box: seal, and seal_from with the flags-byte split the MESSAGE codec uses.
        let nonce = arr(NONCE);
        let mut data = unhex(MESSAGE);
        let tag = p.seal_in_place(&k, &nonce, &mut data);
        let mut boxed = tag.to_vec();
        boxed.extend_from_slice(&data);
        assert_eq!(boxed, unhex(BOXED), "{p:?}");
        let msg = unhex(MESSAGE);
        let mut out = vec![0u8; msg.len()];
        out[0] = msg[0];
        assert_eq!(p.seal_from(&k, &nonce, &mut out, &msg[1..]), tag, "{p:?}");
        assert_eq!(out, data, "{p:?}");
        // box2: open.
        p.open_in_place(&k, &nonce, &mut data, &tag).unwrap();
        assert_eq!(data, msg, "{p:?}");
    }
}

#[test]
fn every_provider_refuses_low_order_points() {
    let sk = SecretKey::from_bytes([7; 32]);
    let mut one = [0u8; 32];
    one[0] = 1;
    for p in all_providers() {
        for bad in [[0u8; 32], one] {
            assert_eq!(
                p.x25519(&sk, &bad).err(),
                Some(CryptoError::NonContributory)
            );
            assert_eq!(
                p.beforenm(&sk, &bad).err(),
                Some(CryptoError::NonContributory)
            );
        }
    }
}

#[test]
fn every_provider_leaves_data_untouched_when_open_fails() {
    let k = Key::from_bytes(arr(FIRSTKEY));
    let nonce = arr(NONCE);
    let boxed = unhex(BOXED);
    for p in all_providers() {
        let mut tag: [u8; 16] = boxed[..16].try_into().unwrap();
        let mut data = boxed[16..].to_vec();
        data[100] ^= 0x20;
        let before = data.clone();
        assert_eq!(
            p.open_in_place(&k, &nonce, &mut data, &tag),
            Err(CryptoError::Forged)
        );
        assert_eq!(data, before, "{p:?}");
        data[100] ^= 0x20;
        tag[15] ^= 0x80;
        assert_eq!(
            p.open_in_place(&k, &nonce, &mut data, &tag),
            Err(CryptoError::Forged)
        );
        assert_eq!(data, boxed[16..], "{p:?}");
        // Another nonce.
        let mut other = nonce;
        other[23] ^= 1;
        tag[15] ^= 0x80;
        assert!(p.open_in_place(&k, &other, &mut data, &tag).is_err());
        // An empty box opens only with its own tag.
        let t = p.seal_in_place(&k, &nonce, &mut []);
        p.open_in_place(&k, &nonce, &mut [], &t).unwrap();
        assert!(p.open_in_place(&k, &nonce, &mut [], &[0; 16]).is_err());
    }
}

#[test]
fn key_debug_is_redacted_and_default_is_the_fast_one_when_built() {
    let k = Key::from_bytes([0xab; 32]);
    assert_eq!(std::format!("{k:?}"), "Key(<redacted>)");
    let mut raw = [5u8; 32];
    let k = Key::from_bytes_wiping(&mut raw);
    assert_eq!(raw, [0; 32]);
    assert_eq!(k.as_bytes(), &[5; 32]);
    let name = std::format!("{:?}", default_provider());
    if cfg!(feature = "fast-crypto") {
        assert_eq!(name, "FastCrypto");
    } else {
        assert_eq!(name, "RustCrypto");
    }
}

#[test]
#[should_panic(expected = "src is longer than out")]
fn seal_from_refuses_a_longer_source() {
    let k = Key::from_bytes([1; 32]);
    RustCrypto.seal_from(&k, &[0; 24], &mut [0; 3], &[0; 4]);
}

// ---------------------------------------------------------------------------------------------
// Fixed nonce prefixes: the subkey path (`Subkey`, `*_sub`) against the full-nonce path.

/// NaCl's core2 (HSalsa20(firstkey, nonce[..16]) is the "secondkey") is the subkey of the box
/// example's nonce prefix; sealing with it and the nonce's last 8 bytes gives the example box.
#[test]
fn every_provider_reproduces_the_nacl_box_example_with_a_subkey() {
    const SECONDKEY: &str = "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4";
    let k = Key::from_bytes(arr(FIRSTKEY));
    let nonce: [u8; NONCE_LEN] = arr(NONCE);
    let prefix: [u8; PREFIX_LEN] = nonce[..PREFIX_LEN].try_into().unwrap();
    let short: [u8; SHORT_NONCE_LEN] = nonce[PREFIX_LEN..].try_into().unwrap();
    let boxed = unhex(BOXED);
    let msg = unhex(MESSAGE);
    for p in providers_and_minimal() {
        assert_eq!(
            p.xsalsa_subkey(&k, &prefix).as_bytes().to_vec(),
            unhex(SECONDKEY),
            "{p:?}"
        );
        let sub = Subkey::new(p, &k, &prefix);
        assert_eq!(sub.subkey().as_bytes().to_vec(), unhex(SECONDKEY));
        assert_eq!(sub.key().as_bytes(), k.as_bytes());
        assert_eq!(sub.prefix(), &prefix);
        assert_eq!(sub.nonce(&short), nonce);
        let mut data = msg.clone();
        let tag = p.seal_in_place_sub(&sub, &short, &mut data);
        assert_eq!(tag[..], boxed[..16], "{p:?}");
        assert_eq!(data, boxed[16..], "{p:?}");
        let mut out = vec![0u8; msg.len()];
        out[0] = msg[0];
        assert_eq!(
            p.seal_from_sub(&sub, &short, &mut out, &msg[1..]),
            tag,
            "{p:?}"
        );
        assert_eq!(out, data, "{p:?}");
        p.open_in_place_sub(&sub, &short, &mut data, &tag).unwrap();
        assert_eq!(data, msg, "{p:?}");
    }
}

/// A third-party provider that implements only the four required primitives (here by handing
/// them to RustCrypto): every provided method, the subkey ones included, works through them.
#[derive(Debug)]
struct Minimal;

impl CryptoProvider for Minimal {
    fn x25519(&self, secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError> {
        RustCrypto.x25519(secret, public)
    }
    fn hsalsa20(&self, key: &Key, input: &[u8; 16]) -> Key {
        RustCrypto.hsalsa20(key, input)
    }
    fn seal_in_place(&self, key: &Key, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> [u8; TAG_LEN] {
        RustCrypto.seal_in_place(key, nonce, data)
    }
    fn open_in_place(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        RustCrypto.open_in_place(key, nonce, data, tag)
    }
}

/// Every provider of this build, then [`Minimal`] (the trait's default methods).
fn providers_and_minimal() -> Vec<&'static dyn CryptoProvider> {
    let mut all = all_providers().to_vec();
    all.push(&Minimal);
    all
}

fn arb_len() -> impl proptest::strategy::Strategy<Value = usize> {
    use proptest::prelude::*;
    prop_oneof![
        6 => 0usize..1200,
        1 => prop::sample::select(vec![15usize, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513]),
        1 => 1200usize..5000,
        1 => 65_500usize..65_600,
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// The subkey path (seal in place, seal from a source with the flags-byte split, open, and
    /// a refused forgery) gives exactly the full-nonce path's bytes, for every provider and a
    /// provider that keeps the defaults, random keys, prefixes, 8-byte nonces and lengths.
    #[test]
    fn subkey_path_equals_full_nonce_path(
        key in proptest::prelude::any::<[u8; 32]>(),
        prefix in proptest::prelude::any::<[u8; 16]>(),
        short in proptest::prelude::any::<[u8; 8]>(),
        len in arb_len(),
        seed in proptest::prelude::any::<u8>(),
        flip in proptest::prelude::any::<u64>(),
    ) {
        let k = Key::from_bytes(key);
        let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1) ^ seed).collect();
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..16].copy_from_slice(&prefix);
        nonce[16..].copy_from_slice(&short);
        let mut expect = msg.clone();
        let expect_tag = RustCrypto.seal_in_place(&k, &nonce, &mut expect);
        for p in providers_and_minimal() {
            let sub = Subkey::new(p, &k, &prefix);
            let hsalsa = p.hsalsa20(&k, &prefix);
            proptest::prop_assert_eq!(sub.subkey().as_bytes(), hsalsa.as_bytes());
            let mut full = msg.clone();
            proptest::prop_assert_eq!(p.seal_in_place(&k, &nonce, &mut full), expect_tag);
            proptest::prop_assert_eq!(&full, &expect);
            let mut data = msg.clone();
            let tag = p.seal_in_place_sub(&sub, &short, &mut data);
            proptest::prop_assert_eq!(tag, expect_tag, "{:?} len {}", p, len);
            proptest::prop_assert_eq!(&data, &expect, "{:?} len {}", p, len);
            if !msg.is_empty() {
                let mut out = vec![0xee; len];
                out[0] = msg[0];
                proptest::prop_assert_eq!(p.seal_from_sub(&sub, &short, &mut out, &msg[1..]), tag);
                proptest::prop_assert_eq!(&out, &expect);
            }
            // A flipped bit (tag or ciphertext) is refused and leaves the data alone.
            let mut bad = data.clone();
            let mut bad_tag = tag;
            let bit = (flip % (128 + 8 * len as u64)) as usize;
            if bit < 128 {
                bad_tag[bit / 8] ^= 1 << (bit % 8);
            } else {
                bad[(bit - 128) / 8] ^= 1 << (bit % 8);
            }
            let before = bad.clone();
            proptest::prop_assert_eq!(
                p.open_in_place_sub(&sub, &short, &mut bad, &bad_tag),
                Err(CryptoError::Forged)
            );
            proptest::prop_assert_eq!(&bad, &before);
            p.open_in_place_sub(&sub, &short, &mut data, &tag).unwrap();
            proptest::prop_assert_eq!(&data, &msg);
        }
    }
}

#[test]
fn subkey_debug_shows_only_the_prefix() {
    let sub = Subkey::new(
        &RustCrypto,
        &Key::from_bytes([0xab; 32]),
        b"CurveZMQMESSAGEC",
    );
    let shown = std::format!("{sub:?}");
    assert!(shown.starts_with("Subkey { prefix: [67, 117,"), "{shown}");
    assert!(!shown.contains("171"), "{shown}");
}
