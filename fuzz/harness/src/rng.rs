//! Deterministic randomness, the fixed keys, and the memoising crypto provider.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use lokimq_core::crypto::{
    self, CryptoError, CryptoProvider, Key, NONCE_LEN, PREFIX_LEN, SHORT_NONCE_LEN, Subkey, TAG_LEN,
};
use lokimq_core::keys::{Keypair, SecretKey};
use lokimq_core::rng::{CryptoRng, RngCore};

/// A seeded, **non-cryptographic** generator (SplitMix64) for fuzzing and tests only.
///
/// It implements [`CryptoRng`] solely so that it can be passed where the core expects a
/// [`CryptoRngCore`](lokimq_core::rng::CryptoRngCore): its output is predictable from the seed,
/// which is the point (a fuzz input must replay exactly), and which makes it unusable for real
/// keys. This is why it lives in this unpublished crate and not in the library.
#[derive(Debug, Clone)]
pub struct DeterministicRng {
    state: u64,
}

impl DeterministicRng {
    /// A generator whose whole output is fixed by `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RngCore for DeterministicRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64 (Steele, Lea and Flood): a full-period counter through a bijective mixer.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), lokimq_core::rng::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// Test-only marker: see the type's documentation.
impl CryptoRng for DeterministicRng {}

/// Seed of the generator of the session or node under test.
pub const TARGET_SEED: u64 = 0x6c6f_6b69_6d71_0001;
/// Seed of the generator of the scripted peer.
pub const PEER_SEED: u64 = 0x6c6f_6b69_6d71_0002;

/// The fixed long-term secret key of every CURVE client here (`c` of `vectors/curve-kat.txt`).
pub const CLIENT_SECRET: [u8; 32] = [
    0x7b, 0xb8, 0x64, 0xb4, 0x89, 0xaf, 0xa3, 0x67, 0x1f, 0xbe, 0x69, 0x10, 0x1f, 0x94, 0xb3, 0x89,
    0x72, 0xf2, 0x48, 0x16, 0xdf, 0xb0, 0x1b, 0x51, 0x65, 0x6b, 0x3f, 0xec, 0x8d, 0xfd, 0x08, 0x88,
];

/// The fixed long-term secret key of every CURVE server here (`s` of `vectors/curve-kat.txt`).
pub const SERVER_SECRET: [u8; 32] = [
    0x8e, 0x0b, 0xdd, 0x69, 0x76, 0x28, 0xb9, 0x1d, 0x8f, 0x24, 0x55, 0x87, 0xee, 0x95, 0xc5, 0xb0,
    0x4d, 0x48, 0x96, 0x3f, 0x79, 0x25, 0x98, 0x77, 0xb4, 0x9c, 0xd9, 0x06, 0x3a, 0xea, 0xd3, 0xb7,
];

/// The CURVE client's long-term keypair (derived once: a base-point multiplication per call
/// would be a measurable part of every execution).
#[must_use]
pub fn client_keypair() -> Keypair {
    static PAIR: OnceLock<Keypair> = OnceLock::new();
    PAIR.get_or_init(|| Keypair::from_secret_bytes(CLIENT_SECRET))
        .clone()
}

/// The CURVE server's long-term keypair (derived once).
#[must_use]
pub fn server_keypair() -> Keypair {
    static PAIR: OnceLock<Keypair> = OnceLock::new();
    PAIR.get_or_init(|| Keypair::from_secret_bytes(SERVER_SECRET))
        .clone()
}

/// How many x25519 results [`MemoCrypto`] keeps. The genuine handshakes of every target need
/// about a dozen (fixed keys, fixed seeds); the rest is room for keys the fuzzer supplies.
const MEMO_CAPACITY: usize = 256;

type Memo = BTreeMap<([u8; 32], [u8; 32]), Result<[u8; 32], CryptoError>>;

/// The core's default provider with x25519 memoised: every target replays the same genuine
/// handshakes (fixed long-term keys, fixed seeds, so the same short-term keys) on every
/// execution, and x25519 was most of the CURVE targets' time. x25519 is a pure function, so a
/// remembered result is exactly the computed one; every other primitive (HSalsa20, the boxes)
/// runs for real, and results for keys the fuzzer supplies are computed (and remembered while
/// there is room). Test tooling only: it keeps secret keys in memory without zeroising them.
#[derive(Debug)]
pub struct MemoCrypto {
    memo: Mutex<Memo>,
}

/// The provider every session and node of the harness uses.
pub static MEMO_CRYPTO: MemoCrypto = MemoCrypto {
    memo: Mutex::new(BTreeMap::new()),
};

fn inner() -> &'static dyn CryptoProvider {
    crypto::default_provider()
}

impl CryptoProvider for MemoCrypto {
    fn x25519(&self, secret: &SecretKey, public: &[u8; 32]) -> Result<Key, CryptoError> {
        let k = (secret.to_bytes(), *public);
        // A panic in another execution cannot leave the map half-updated (insert is the only
        // write), so a poisoned lock is still a valid memo.
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = memo.get(&k) {
            return r.map(Key::from_bytes);
        }
        let r = inner().x25519(secret, public);
        if memo.len() < MEMO_CAPACITY {
            memo.insert(k, r.as_ref().map(|key| *key.as_bytes()).map_err(|e| *e));
        }
        r
    }

    fn hsalsa20(&self, key: &Key, input: &[u8; 16]) -> Key {
        inner().hsalsa20(key, input)
    }

    fn seal_in_place(&self, key: &Key, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> [u8; TAG_LEN] {
        inner().seal_in_place(key, nonce, data)
    }

    fn open_in_place(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        inner().open_in_place(key, nonce, data, tag)
    }

    fn seal_from(
        &self,
        key: &Key,
        nonce: &[u8; NONCE_LEN],
        out: &mut [u8],
        src: &[u8],
    ) -> [u8; TAG_LEN] {
        inner().seal_from(key, nonce, out, src)
    }

    fn xsalsa_subkey(&self, key: &Key, prefix: &[u8; PREFIX_LEN]) -> Key {
        inner().xsalsa_subkey(key, prefix)
    }

    fn seal_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
    ) -> [u8; TAG_LEN] {
        inner().seal_in_place_sub(key, nonce, data)
    }

    fn seal_from_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        out: &mut [u8],
        src: &[u8],
    ) -> [u8; TAG_LEN] {
        inner().seal_from_sub(key, nonce, out, src)
    }

    fn open_in_place_sub(
        &self,
        key: &Subkey,
        nonce: &[u8; SHORT_NONCE_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        inner().open_in_place_sub(key, nonce, data, tag)
    }
}
