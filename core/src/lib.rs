//! # lokimq-core: LokiMQ/OxenMQ as a sans-IO state machine
//!
//! This crate is the whole of a LokiMQ (OxenMQ) node except the parts that touch the operating
//! system. It holds the command registry, the access rules, the peers and their connections, the
//! job scheduler, and the ZMTP 3.1 + CurveZMQ wire codec, and it is advanced only by the events
//! an embedder feeds it. There is no clock, no thread, no socket and no global random number
//! generator anywhere in it: time arrives as an [`Instant`] argument and randomness through an
//! injected [`CryptoRngCore`](rng::CryptoRngCore). The crate is `no_std` (with `alloc`), which
//! the compiler enforces, so it runs unchanged in the native mio driver (the `lokimq` crate), in
//! the deterministic simulator, in another event loop (tokio, a game loop), or in WebAssembly.
//!
//! The bytes it produces are libzmq's: greetings, frames, NULL and CURVE handshakes and MESSAGE
//! boxes are byte-identical to libzmq 4.3 (known-answer vectors and live interop tests prove it),
//! and the application protocol is OxenMQ's (`HI`/`HELLO`, `REPLY` + tag, the error words, `L` +
//! pubkey routing ids, `X-AuthLevel`).
//!
//! ## Driving a node
//!
//! A [`Node`] changes only when the embedder calls it:
//!
//! * **Inputs**: [`Node::handle`]`(now, `[`Input`]`)` — bytes received on a connection (in any
//!   chunking, down to one byte), a connect completed, a connection closed, the answer to an
//!   auth request or a service-node lookup, a worker finished its job, or a timeout.
//! * **Application commands**: [`Node::send`], [`Node::request`], [`Node::reply`],
//!   [`Node::connect_remote`], [`Node::connect_sn`], [`Node::listen_curve`], [`Node::accept`],
//!   [`Node::submit_batch`], [`Node::add_timer`], [`Node::shutdown`], … They act at once and
//!   return ids.
//!
//! **The drain contract** (as str0m states it): after every input or command, call
//! [`Node::poll_output`] until it returns `None` and act on each [`Output`] — write
//! `Transmit` bytes to the socket, dial for `Connect`, close for `Close`, bind for `Listen`, run
//! `RunJob` on the named worker and report `JobFinished` when it returns, answer
//! `Event::AuthRequest` and `Event::LookupSn` with inputs. Then read [`Node::poll_timeout`] and
//! call `handle(now, Input::Timeout)` when that instant arrives (spurious timeouts are harmless).
//! `now` must never go backwards. The same inputs and the same RNG seed always produce the same
//! outputs, byte for byte.
//!
//! Jobs are names, not closures: the node says *which* job runs *where* (`RunJob { worker,
//! job }`) and the embedder owns the callbacks, threads and results. A single-threaded or
//! WebAssembly embedder may run every job inline and report `JobFinished` in the same turn.
//!
//! ## Layers
//!
//! `zmtp` (greeting, framing, commands, metadata, ROUTER tables) and `curve` (CurveZMQ) are
//! pure codecs; `session` combines them into one connection's machine with the auth decision
//! point and heartbeats. Those three are internal (public only under the unstable `internals`
//! feature, for this project's tests, benches and fuzz targets); [`protocol`] re-exports the
//! error types of theirs that the node's failures carry. [`node`] owns the sessions, the
//! [`registry`], the [`auth`] checks and the [`sched`] scheduler (public: a driver may share it
//! with its worker threads, see [`node::SchedulerCell`]). [`crypto`] is the cryptography seam.
//! [`bt`], [`encoding`] and [`address`] are OxenMQ's encoding library and address type. See
//! `docs/architecture.md` for the design and `docs/protocol.md` for the wire layer.
//!
//! ## Cargo features
//!
//! * `fast-crypto`: `crypto::FastCrypto`, our SIMD XSalsa20-Poly1305, as the default provider.
//! * `serde`: serde support for bt values.
//! * `internals`: **unstable, not covered by semver**: makes `zmtp`, `curve` and `session`
//!   public for tests, benches and fuzzing. Embedders never need it.
//! * `fuzzing`: the cargo-fuzz entry points (implies `internals`).
//!
//! ## Panics and errors
//!
//! Errors are bad *input*; panics are broken *invariants*. No byte sequence from the network and
//! no call sequence from the embedder may panic; property tests and fuzz targets enforce it. Each
//! layer has one error enum; a connection's first error is latched and closes it. Memory is
//! bounded: frame sizes are checked before anything is allocated, and every queue has a limit.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod address;
pub mod auth;
pub mod bt;
pub mod crypto;
// The codec and session layers are implementation detail of `node`: public only under the
// unstable `internals` feature (tests, benches, fuzzing). Their items stay `pub` so that feature
// can reach them; without it they are crate-visible and `unreachable_pub` would flag every one.
#[cfg(feature = "internals")]
pub mod curve;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub)]
mod curve;
pub mod encoding;
pub mod ids;
pub mod keys;
pub mod node;
pub mod registry;
pub mod rng;
pub mod sched;
#[cfg(feature = "internals")]
pub mod session;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub)]
mod session;
pub mod time;
#[cfg(feature = "internals")]
pub mod zmtp;

/// The protocol-level types that the node's typed failures carry
/// ([`node::ConnectError`], [`node::HandshakeError`], [`node::DisconnectReason`]): what went
/// wrong on the wire, in the ZMTP codec, the CURVE handshake or the connection's session.
/// The codec and session layers themselves are internal; these types are their stable face.
pub mod protocol {
    pub use crate::curve::{Command as CurveCommand, CurveError, Stage as CurveStage};
    pub use crate::session::{DenyStatus, SendError as SessionSendError, SessionError};
    pub use crate::zmtp::{Dialect, Mechanism, SocketType, WireText, ZmtpError};
}
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub)]
mod zmtp;

pub use address::Address;
pub use auth::{Access, AuthLevel, PeerAccess};
pub use ids::{
    BatchId, CategoryId, CommandId, ConnId, ListenerId, TaggedThreadId, TimerId, WorkerId,
};
pub use keys::{Keypair, PublicKey, SecretKey};
pub use node::{
    Config, ConnectOptions, ConnectSnOptions, ConnectionId, DisconnectCause, Event, Input, Job,
    Message, Node, NodeError, Output, ReplyTarget, RequestError, RequestId, RequestOptions,
    SendError, SendOptions,
};
pub use registry::{CategoryOptions, Registry, RegistryBuilder};
pub use sched::QueueLimit;
pub use time::{Duration, Instant};
