//! The driver kit: everything a LokiMQ embedder needs except its sockets and its loop.
//!
//! `lokimq-core` decides everything and touches nothing; an embedder moves bytes, keeps time and
//! runs jobs. Most of what an embedder does, though, is the same whatever its event loop: it
//! turns the node's jobs into the application's closures, answers auth and service-node
//! questions with the application's functions, runs what handles post, queues each
//! connection's bytes and reports its backlog, closes connections the way the core says,
//! binds listeners and resolves names, and reads a monotonic clock. This module is that
//! common part, written once and used by the native mio driver, the `std::net` embedding
//! example and the simulator:
//!
//! * [`Host`]: the node with the application's callbacks (built from a [`Builder`] with
//!   [`Builder::into_host`]). It acts on every output that is not I/O and hands the rest to
//!   the embedder's [`Io`];
//! * [`Io`]: what an embedder implements: transmit, dial, close, listen, unlisten, and run a
//!   job on a thread (or hand it back, to run inline);
//! * [`Stream`]: one connection's write queue, its backlog reports and the close procedure of
//!   [`Output::Close`](lokimq_core::node::Output::Close), for any [`Transport`];
//! * [`net`]: binding and resolving OxenMQ's addresses; [`Clock`]: the monotonic clock.
//!
//! # A complete embedder
//!
//! The loop: read the clock into [`Host::set_now`]; feed what the sockets did ([`Host::accept`],
//! [`Host::received`], [`Host::input`] for `Connected`/`Disconnected`); run posted calls with
//! [`Host::process_posts`]; call [`Host::timeout`]; and after each of these,
//! [`Host::drain`] with your [`Io`]. Sleep until a socket is ready, a handle posts (the wake
//! function, armed by [`Host::may_sleep`] before the sleep and disarmed by [`Host::woke`]
//! after it), or [`Host::poll_timeout`]. Stop when [`Host::is_stopped`] and every stream has
//! closed. `docs/embedding.md` walks through one in a page; `embed-example/` is
//! one on `std::net`.
//!
//! [`Builder`]: crate::Builder
//! [`Builder::into_host`]: crate::Builder::into_host

mod host;
pub(crate) mod jobs;
pub mod net;
mod stream;
mod throttle;

pub use crate::clock::Clock;
pub use host::{Host, Io, NodeRng, POST_BUDGET, READ_BUDGET, SchedulerHome};
pub use stream::{Flushed, Stream, Transport};
pub use throttle::Throttle;
