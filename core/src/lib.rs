//! # lokimq-core: LokiMQ/OxenMQ as a sans-IO state machine
//!
//! This crate is the whole of a LokiMQ (OxenMQ) node except the parts that touch the operating
//! system. It holds the command registry, the access rules, the peers, the job scheduler, and the
//! ZMTP 3.1 + CurveZMQ wire codec, and it is advanced only by the events an embedder feeds it.
//! There is no clock, no thread, no socket and no global random number generator anywhere in it:
//! time arrives as an [`Instant`](time::Instant) argument and randomness through an injected
//! [`CryptoRngCore`](rng::CryptoRngCore). The crate is `#![no_std]` (with `alloc`), which the
//! compiler enforces, so it runs unchanged in the native mio driver (`lokimq`), in the
//! deterministic simulator, in another event loop, or in WebAssembly.
//!
//! The crate essay grows with the node; see `docs/architecture.md` for the design.
//!
//! ## Panics and errors
//!
//! Errors are bad *input*; panics are broken *invariants*. No byte sequence from the network and
//! no call sequence from the embedder may panic; property tests and fuzz targets enforce it. Every
//! `expect` carries the reason it cannot fail.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod address;
pub mod auth;
pub mod bt;
pub mod curve;
pub mod encoding;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod ids;
pub mod keys;
pub mod node;
pub mod registry;
pub mod rng;
pub mod sched;
pub mod session;
pub mod time;
pub mod zmtp;
