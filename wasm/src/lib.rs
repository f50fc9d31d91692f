//! # lokimq-wasm: a LokiMQ (OxenMQ) node inside a WebAssembly engine
//!
//! [`lokimq_core::Node`] never touches the operating system, so it runs unchanged in a
//! WebAssembly engine. This crate is the thin layer that lets a **JavaScript** host drive it: the
//! host owns the sockets (Node.js `net`, a WebSocket bridge, an in-memory pipe), the clock
//! (`performance.now()`), the randomness (`crypto.getRandomValues`) and the callbacks; the node
//! decides everything else, byte for byte as the native driver does.
//!
//! ## Why a hand-written ABI (and not wasm-bindgen)
//!
//! The boundary is four functions (`lmq_input`, `lmq_call`, `lmq_output`, `lmq_version`)
//! exported, and three imported from the module `lokimq` (`random_fill`, `log`, `panicked`).
//! Arguments and results cross as bytes in a tiny length-prefixed format ([`wire`]), one
//! operation code per call ([`api`]). That choice buys:
//!
//! * **a checkable promise**: the module's import list *is* what it may ask of its host, and the
//!   JS tests assert it is exactly those three functions, so nothing in the wasm can reach for a
//!   clock, the file system or the network behind the host's back;
//! * **no build tool**: plain `cargo build --target wasm32-unknown-unknown`, no wasm-bindgen-cli to
//!   install (minutes of compiling on a fresh CI machine) or keep in lockstep with a crate
//!   version, and no generated glue to review;
//! * **a small, auditable unsafe surface**: all `unsafe` is in [`abi`] (the exported symbols and
//!   the calls to the three imports), a few dozen lines.
//!
//! The price is the codec on both sides (`wire.rs` and `js/wire.mjs`, ~150 lines each) and no
//! generated TypeScript types; `js/lokimq.mjs` documents its API with JSDoc instead.
//!
//! ## Layers
//!
//! * [`node::WasmNode`]: the core's `Node` with host-friendly names: numbered *streams* instead
//!   of `ConnId`s (so a stale or unknown stream is a clear error, not a silent no-op), reply
//!   handles for handlers that answer later, a builder phase for the command registry, and
//!   [`node::HostOutput`], the subset of outputs a JavaScript host must act on. Typed Rust; it
//!   knows nothing of JavaScript.
//! * [`api`]: operation codes, argument decoding and result encoding over [`wire`], and the
//!   table of nodes.
//! * [`abi`]: the exported symbols and the host imports (random bytes, logs, panic messages).
//! * [`host`]: the host's random number generator as a `CryptoRng`, and the logger.
//! * [`bench`](mod@bench): an in-memory two-node loop (CURVE handshakes, 100 B round trips) that runs the
//!   same Rust natively (`examples/native_bench.rs`) and inside WebAssembly (feature `bench`).
//!
//! The JavaScript side is in `wasm/js/`: `lokimq.mjs` (the API), `wire.mjs` (the codec),
//! `net-host.mjs` (Node.js sockets), `memory-net.mjs` (an in-memory network for browsers and
//! benchmarks). `docs/embedding.md` ("WebAssembly") is the user's guide.
//!
//! ## Errors, never traps
//!
//! Every operation validates its input before the core sees it and answers bad input with an
//! error code and a message, which the JS layer throws as a `LokiMQError`. The core itself
//! never panics on input (its property tests and fuzz targets enforce that). Should a bug panic
//! anyway, the panic message goes to the host through `lokimq.panicked` before the instance
//! traps, and every later call reports the module as poisoned instead of running on corrupted
//! state.

pub mod abi;
pub mod api;
pub mod bench;
pub mod host;
pub mod node;
pub mod wire;

pub use node::{Error, ErrorCode, HostOutput, WasmNode};
