//! The fuzz harness of lokimq-rs: entry points for the cargo-fuzz targets in `fuzz/` and for
//! this crate's stable tests over the committed seeds (see `docs/fuzzing.md`).
//!
//! It is a separate, unpublished crate so that nothing here ships in `lokimq-core`: in particular
//! [`DeterministicRng`] is **not** a cryptographic generator (it exists so that a fuzz input
//! reproduces every byte), and [`MemoCrypto`] keeps secret keys in memory. The harness reaches
//! the core's codec layers through its public API with the `internals` feature.
//!
//! Each `fuzz_*` function takes attacker bytes, drives one part of the stack with them and
//! **asserts** its invariants: a violated invariant panics, which is what a fuzzer reports. Beyond
//! "no panic", the wire-stack entry points check:
//!
//! * **split invariance**: the same byte stream fed whole and fed in the chunks the input selects
//!   produces identical events, identical transmitted bytes and identical counters;
//! * **latched errors**: a session closes exactly once, and after that no input (more bytes,
//!   timeouts, sends, auth decisions) produces an event or a byte;
//! * **event order**: at most one `AuthRequest`, `Ready` and `Closed` each, no `Message` before
//!   `Ready`, nothing after `Closed`;
//! * **bounded output**: transmitted bytes, delivered bytes and message counts are bounded by a
//!   constant plus a small multiple of the input, so no input can amplify;
//! * **authenticity** (CURVE, once the handshake is done): every message delivered is one the
//!   genuine peer sealed, a replayed or tampered MESSAGE closes the session with a CURVE error,
//!   and no message is delivered after it.
//!
//! The CURVE entry points can put the attacker bytes behind a *valid* prefix built by a scripted
//! peer with fixed keys and a fixed seed (greeting and HELLO, or the whole handshake), or seal them
//! as MESSAGE payloads, so the fuzzer reaches INITIATE, READY and the post-handshake paths that
//! random bytes cannot (a random box never opens). The raw modes mirror libzmq's
//! `test_bind_curve_fuzzer` (chunks of 64, 202, rest) and `test_connect_curve_fuzzer` (64, 170,
//! 72, rest).
//!
//! [`fuzz_bt`] checks the bt decoder against its own encoder, consumers and serde, and
//! [`fuzz_application`] drives OxenMQ's application protocol over a completed handshake.
//!

mod app;
mod bt;
mod rng;
mod wire;

pub use app::{AppPart, application_input, fuzz_application};
pub use bt::fuzz_bt;
pub use rng::{
    CLIENT_SECRET, DeterministicRng, MEMO_CRYPTO, MemoCrypto, PEER_SEED, SERVER_SECRET,
    TARGET_SEED, client_keypair, server_keypair,
};
pub use wire::{
    chunks_at, fuzz_curve_client_handshake, fuzz_curve_server_handshake, fuzz_greeting_and_frames,
    fuzz_node_listener, sample_records, seed_input, take_split,
};
