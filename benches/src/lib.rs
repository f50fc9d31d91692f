//! Harnesses for the lokimq benchmarks: everything a benchmark needs to drive the core in
//! memory, with no sockets, threads or clock.
//!
//! Each harness is set up once (handshakes and connections are not what we measure) and then
//! exposes one *unit of work* as a method: seal and frame one MESSAGE, carry one message
//! between two sessions, make one request→reply between two nodes, run one scheduler cycle.
//! The criterion benches in `benches/` time those methods; the unit tests below check that each
//! one really does the work it claims (a harness that silently dropped messages would make a
//! fast, meaningless benchmark).
//!
//! Layering of the figures (see `docs/performance.md`):
//!
//! | harness | what one unit costs |
//! |---|---|
//! | [`codec`] | XSalsa20-Poly1305 plus the CURVE MESSAGE layout and ZMTP frame header |
//! | [`session`] | the above plus `Session` framing, buffering and multipart assembly |
//! | [`node`] | the above for every frame of a request and its reply, plus routing, dispatch and scheduling |
//! | [`sched`] | one command admitted, queued, started and finished in `Scheduler<u64>` |
//! | [`idle`] | not a unit: N idle CURVE connections between two nodes, for the idle-cost benchmark |

#![warn(missing_docs)]

pub mod codec;
pub mod idle;
pub mod node;
pub mod sched;
pub mod session;

use std::fmt;

use lokimq_core::crypto::{CryptoProvider, FastCrypto, RustCrypto};
use lokimq_core::curve::CurveError;
use lokimq_core::keys::Keypair;
use lokimq_core::zmtp::ZmtpError;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// The RustCrypto provider: what the codec, session and node harnesses use unless told
/// otherwise, so their figures compare with the raw `crypto_box` baseline on equal terms.
pub const RUST: &dyn CryptoProvider = &RustCrypto;
/// The FastCrypto provider (the `fast-crypto` feature, which this crate always enables).
pub const FAST: &dyn CryptoProvider = &FastCrypto;

/// A provider by its short name in workload and benchmark names: `rust` or `fast`.
#[must_use]
pub fn provider_named(name: &str) -> Option<&'static dyn CryptoProvider> {
    match name {
        "rust" => Some(RUST),
        "fast" => Some(FAST),
        _ => None,
    }
}

/// The payload sizes of the codec and session benchmarks: a small RPC, a typical 1 KiB
/// message, and a 64 KiB bulk transfer.
pub const SIZES: [usize; 3] = [100, 1024, 64 * 1024];

/// Why a harness could not do its unit of work. Every variant means the core (or the harness)
/// misbehaved: a benchmark must stop rather than time a failure path.
#[derive(Debug)]
#[non_exhaustive]
pub enum HarnessError {
    /// The CURVE codec or handshake refused something it should have accepted.
    Curve(CurveError),
    /// The ZMTP frame decoder refused bytes the encoder produced.
    Zmtp(ZmtpError),
    /// Any other layer's error, rendered (session, node and scheduler errors).
    Core(String),
    /// The core did not produce what the harness expected.
    Unexpected(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Curve(e) => write!(f, "curve: {e}"),
            Self::Zmtp(e) => write!(f, "zmtp: {e}"),
            Self::Core(e) => write!(f, "core: {e}"),
            Self::Unexpected(what) => write!(f, "unexpected: {what}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl From<CurveError> for HarnessError {
    fn from(e: CurveError) -> Self {
        Self::Curve(e)
    }
}

impl From<ZmtpError> for HarnessError {
    fn from(e: ZmtpError) -> Self {
        Self::Zmtp(e)
    }
}

/// Renders any core error as [`HarnessError::Core`].
pub(crate) fn core_err(e: impl fmt::Display) -> HarnessError {
    HarnessError::Core(e.to_string())
}

/// A deterministic RNG: benchmarks are reproducible byte for byte.
#[must_use]
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The server's long-term keypair in every CURVE harness.
#[must_use]
pub fn server_keypair() -> Keypair {
    Keypair::from_secret_bytes([7; 32])
}

/// The client's long-term keypair in every CURVE harness.
#[must_use]
pub fn client_keypair() -> Keypair {
    Keypair::from_secret_bytes([9; 32])
}

/// A payload of `len` bytes with a non-constant pattern.
#[must_use]
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
