//! # lokimq: the native LokiMQ node
//!
//! [`lokimq_core`] is LokiMQ (today OxenMQ) as a sans-IO state machine: it speaks ZMTP 3.1,
//! CurveZMQ and OxenMQ's application protocol, schedules jobs and keeps every peer's state, but
//! it owns no socket, no thread, no clock and no callback. This crate is the thin layer that
//! supplies them on an ordinary operating system: [mio] sockets (TCP and unix), worker threads,
//! the monotonic clock, OS randomness and the application's closures. The API mirrors OxenMQ's,
//! made idiomatic: a [`Builder`] instead of a constructor plus setters, a frozen registry
//! instead of "cannot add a command after `start()`" errors, `Result`s instead of exceptions,
//! and closures instead of `std::function`s.
//!
//! ```
//! use lokimq::{AuthLevel, ConnectOptions, LokiMq};
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! // A server with one request command, listening with CURVE on an ephemeral port.
//! let mut b = LokiMq::builder();
//! b.add_category("demo", AuthLevel::None)?
//!     .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
//!     .listen_curve("127.0.0.1:0".parse::<std::net::SocketAddr>()?, |_ip, _key, _sn| {
//!         AuthLevel::Basic
//!     })?;
//! let server = b.start()?;
//! let addr = server.bound_addresses()[0].clone(); // curve://127.0.0.1:PORT/<server key>
//!
//! // A client: connect, then ask.
//! let client = LokiMq::builder().start()?;
//! let (tx, rx) = mpsc::channel();
//! let conn = client.handle().connect_remote(&addr, |_| {}, |_, why| eprintln!("{why}"),
//!                                  ConnectOptions::default())?;
//! client.handle().request(&conn, "demo.echo", ["hello"], move |reply| { let _ = tx.send(reply); })?;
//! let reply = rx.recv_timeout(Duration::from_secs(10))??;
//! assert_eq!(reply, ["hello"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Threads
//!
//! A running node has:
//!
//! * **one proxy thread** (`lmq-proxy`), which owns the [`lokimq_core::node::Node`] (inside a
//!   [`kit::Host`]), the `mio::Poll` and every socket. It is the only thread that feeds the
//!   node input, so the node needs no lock. It is OxenMQ's proxy thread with the ZeroMQ
//!   sockets replaced by mio, and it is nothing but sockets and a loop: everything that is not
//!   I/O is the [`kit`]'s, shared with every other embedder.
//! * **worker threads** (`lmq-w<N>`), one per worker slot the core hands out, spawned on first
//!   use and kept until shutdown, as in OxenMQ. Which job runs on which worker, and when, is
//!   the core's decision (categories, reserved threads, queue limits, the batch and reply
//!   pools); the driver only runs what it is told. The workers share the core's scheduler
//!   (behind a mutex no user code runs under): a worker that finishes a job takes its next
//!   one itself, and a job dispatched to an idle worker goes to that worker's own mailbox, so
//!   a busy node moves messages between threads without a wake-up per message.
//! * **tagged threads**, named by the application, started at `start()`; they run only what is
//!   addressed to them.
//! * a short-lived helper thread per host-name lookup, so the proxy never blocks on DNS (IP
//!   literals and unix sockets need none).
//!
//! Other threads reach the node through a [`Handle`] (cloneable, `Send + Sync`). Every handle
//! call posts a closure on the proxy's one channel and, if the proxy may be asleep, rings a
//! [`mio::Waker`]. Messages from one thread arrive in the order sent, so a reply a handler
//! sends is processed before anything that handler does later, exactly like OxenMQ's
//! per-thread control sockets.
//!
//! ## A proxy turn
//!
//! Each turn the proxy reads the clock once, polls with the node's next deadline as timeout,
//! then: accepts and reads every ready socket (feeding the node the bytes in place), finishes
//! non-blocking connects with mio's `take_error`/`peer_addr` check, takes posted messages, and
//! fires the node's timeout when due; after every input it drains the node's outputs before
//! giving it the next one (the core's drive contract). Bytes for a socket are queued during
//! the turn and written with one vectored write per socket at its end (`WRITABLE` interest
//! only while a queue is non-empty). A per-turn budget (one 64 KiB read per socket,
//! [`kit::READ_BUDGET`]; 128 accepts per listener; 1024 posted messages or 256 KiB of bytes
//! they queue) keeps one chatty socket from starving worker completions or other peers; a
//! socket that hit its budget is read again next turn, with a zero poll timeout. Socket slots
//! closed during a turn are freed only after it, so a stale event can never reach a socket
//! that reused the slot.
//!
//! ## Backpressure
//!
//! Every socket has a write queue, and the proxy reports after each write how much of it is
//! still unsent (`Input::Flushed`). The node refuses further application messages to a peer
//! whose queue holds 1000 unsent messages or 64 MiB ([`BacklogLimit::LIBZMQ`], libzmq's
//! default high-water mark, which OxenMQ never changes; tune it with
//! [`Builder::config_mut`]`().send_backlog_limit`). A refused send is logged as OxenMQ logs
//! "sending would block", or reported to the caller by
//! [`Handle::send_with_queue_failure`] (OxenMQ's `send_option::queue_failure`); a refused
//! request fails with `TIMEOUT`. So a peer that stops reading costs bounded memory.
//!
//! ## Callbacks
//!
//! * Command callbacks (`Fn(&mut Message)`) run on workers. A [`Message`] carries the data,
//!   the sender's [`ConnectionId`], its access and address, and answers with
//!   [`Message::send_reply`], [`Message::send_back`], [`Message::send_request`], or later from
//!   any thread through [`Message::send_later`].
//! * Reply callbacks of [`Handle::request`], `on_connect`/`on_failure` of
//!   [`Handle::connect_remote`], jobs, batch jobs and completions, and timers run on workers
//!   (or tagged threads when addressed to one).
//! * Allow functions ([`Listen::allow`]), the `sn_lookup` function, `on_bind` after start,
//!   in-proxy batch completions and in-proxy timers ([`Target::InDriver`]) run **on the proxy
//!   thread** and must be quick: the whole node waits for them. They may send, connect, add
//!   timers and queue jobs; only the calls that wait for the proxy's answer
//!   ([`Handle::stats`], [`Handle::is_connected`]) return [`Error::OnProxyThread`] there
//!   instead of deadlocking.
//! * [`Builder::on_disconnect`] runs on a worker whenever a connection ends ([`Disconnected`]):
//!   incoming or outgoing, with the peer's key and the reason, and once more, final, when an
//!   outgoing connection that went down is given up. Per-connection application state is
//!   cleaned up there.
//! * A panicking callback is caught and logged, and the worker carries on (OxenMQ logs
//!   exceptions and continues); a panicking batch job yields a [`JobPanicked`] result.
//!
//! ## Shutdown
//!
//! Dropping the [`LokiMq`] (or calling [`LokiMq::shutdown`]) is OxenMQ's destructor: the node
//! closes its listeners first (no connection is accepted while it stops), stops dispatching,
//! discards queued commands, jobs and timers, never calls pending request or connect
//! callbacks, and waits for running handlers (a handler that never returns hangs shutdown, as
//! in OxenMQ). Then every connection is closed the way libzmq closes one: what is queued is
//! written (for at most the `close_linger` tunable, if the peer does not read), the write side
//! is shut down and the socket closed, without waiting for idle peers to close their end. Every
//! thread is joined. Handles that outlive the node get [`Error::Stopped`]. A server that should
//! stop on Ctrl-C or SIGTERM calls [`wait_for_shutdown_signal`] and then drops its node.
//!
//! ## Async
//!
//! The library depends on no async runtime, yet every operation that waits has a future that
//! works under tokio, async-std/smol or a plain `block_on`: [`Handle::request_async`]
//! ([`Reply`]), [`Handle::connect_remote_async`] ([`Connecting`], which resolves with the
//! [`ConnectionId`] or a typed [`ConnectError`]) and [`Handle::send_async`] ([`Sending`],
//! which waits for room under the peer's high-water mark instead of failing with
//! `WouldBlock`). Their completions are filled in by the driver and wake the task; no worker
//! thread waits for them. A handler can answer later from an async task through a
//! [`DeferredSend`]; `examples/async_client.rs` shows both on tokio, and how a category's
//! limits still bound work that leaves the handler.
//!
//! ## Time
//!
//! The node's clock is `std::time::Instant` mapped to the core's microsecond
//! [`lokimq_core::time::Instant`], read in exactly one module; [`Stopwatch`] exposes it to
//! applications and tests.

#![warn(missing_docs)]

mod asynk;
mod batch;
mod builder;
mod clock;
mod disconnect;
mod error;
mod handle;
pub mod keyfile;
pub mod kit;
mod message;
mod proxy;
mod signal;
mod subscription;

pub use asynk::{Connecting, Reply, Sending};
pub use batch::{Batch, JobPanicked};
pub use builder::{Builder, Listen, ToAddress};
pub use clock::Stopwatch;
pub use disconnect::Disconnected;
pub use error::Error;
pub use handle::{Handle, LokiMq};
pub use message::{DeferredSend, Message};
pub use signal::{ShutdownSignal, ShutdownSignals, wait_for_shutdown_signal};
pub use subscription::Subscription;

pub use bytes::Bytes;
pub use lokimq_core as core;
pub use lokimq_core::address::{Address, AddressError};
pub use lokimq_core::auth::{Access, AuthLevel, PeerAccess};
pub use lokimq_core::ids::{TaggedThreadId, TimerId};
pub use lokimq_core::keys::{Keypair, PublicKey, SecretKey};
pub use lokimq_core::node::{
    BacklogLimit, Config, ConnectError, ConnectOptions, ConnectSnOptions, ConnectionId,
    DisconnectReason, HandshakeError, NodeError, RequestError, RequestOptions, SendError,
    SendOptions, Stats, Target,
};
pub use lokimq_core::registry::{CategoryOptions, QueueLimit};
pub use lokimq_core::sched::SchedError;

/// No data parts, for sends and requests without any: `handle.send(&conn, "a.b", NO_DATA)`.
pub const NO_DATA: [&[u8]; 0] = [];
