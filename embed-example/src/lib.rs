//! # Embedding `lokimq-core` in your own event loop
//!
//! [`lokimq_core::node::Node`] is a whole LokiMQ (OxenMQ) node that never touches the operating
//! system: the embedder hands it bytes, time and randomness, and carries out what it asks. The
//! `lokimq` crate does that with mio and worker threads; this crate shows the smallest honest
//! embedder instead: **one thread, plain `std::net` sockets in non-blocking mode, jobs run
//! inline**. It is meant to be read and copied. `docs/embedding.md` explains the contract it
//! follows; this file is that contract in code.
//!
//! ```no_run
//! use std::time::Duration;
//! use lokimq_core::address::Address;
//! use lokimq_core::auth::AuthLevel;
//! use lokimq_embed_example::Builder;
//!
//! let mut b = Builder::new();
//! b.registry_mut().add_category_with_defaults("demo", AuthLevel::None)?;
//! b.request_command("demo", "echo", |ctx, msg| {
//!     // Runs right here, on the loop's thread, inside `turn`.
//!     let _ = ctx.reply(&msg.reply_to, msg.data.clone());
//! })?;
//! let mut node = b.build()?;
//! let bound = node.listen_curve(&Address::tcp("127.0.0.1", 0), |_ip, _key, _sn| AuthLevel::Basic)?;
//! println!("listening on {bound}");
//! loop {
//!     node.turn(Duration::from_millis(5));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## One turn
//!
//! [`Embedded::turn`] accepts every waiting connection, reads every socket until `WouldBlock`,
//! writes every queued byte it can, drops closed sockets whose linger is over, and feeds
//! `Input::Timeout` when the node's [`poll_timeout`](Node::poll_timeout) has come. After each
//! input (and each application call) it drains [`Node::poll_output`] to `None`, acting on
//! every output in order. If nothing happened it sleeps until the node's next deadline, but
//! never longer than the `max_wait` it was given.
//!
//! That sleep is this example's one real compromise: `std::net` has no readiness API (no
//! `poll`/`epoll`/`kqueue`), so the loop cannot wait for "a socket became readable". It polls
//! instead, and `max_wait` is the latency it adds to incoming traffic. A few milliseconds cost
//! little CPU on an idle node and nothing on a busy one (a turn that did work does not sleep).
//! An embedder with a readiness API (mio, tokio, a game engine's network layer, a browser's
//! WebSocket events) waits on it instead, with the node's deadline as the timeout.
//!
//! The other compromise is dialing: `std::net` cannot start a connect without waiting for it,
//! so an `Output::Connect` blocks the loop for up to [`Builder::dial_timeout`] (a local or
//! refused port answers at once).
//!
//! ## Jobs run inline
//!
//! The node names jobs (`Output::RunJob { worker, job }`) instead of holding closures. Here each
//! job runs the moment it is drained, on the loop's thread, and `Input::JobFinished` follows as
//! soon as it returns: a handler's replies and sends are therefore fed to the node before its
//! `JobFinished`, which is the ordering the core requires. Handlers get a [`Ctx`], through
//! which they reply, send and make requests. A slow handler stalls the whole node; a handler
//! that panics unwinds out of `turn` (catch it yourself if your handlers may panic).

#![warn(missing_docs)]

mod net;

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{CommandId, ConnId, ListenerId, TimerId};
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::node::{
    Config, ConfigError, ConnectOptions, ConnectionId, DisconnectCause, Event, InDriver, Input,
    Job, Message, Node, NodeError, Output, ReplyTarget, RequestError, RequestId, RequestOptions,
    SendError, SendOptions, Target,
};
use lokimq_core::registry::{RegistryBuilder, RegistryError};
use lokimq_core::time::{Instant, earliest};
use rand_core::OsRng;

use net::{ReadResult, Stream};

/// A command handler: runs inline with the incoming message.
pub type CommandFn = Box<dyn FnMut(&mut Ctx<'_>, Message)>;
/// A reply callback: the reply's data parts, or why there is none.
pub type ReplyFn = Box<dyn FnOnce(&mut Ctx<'_>, Result<Vec<Bytes>, RequestError>)>;
/// A `connect_remote` outcome callback: the connection once `HELLO` arrived, or OxenMQ's
/// failure text.
pub type ConnectFn = Box<dyn FnOnce(&mut Ctx<'_>, Result<ConnectionId, String>)>;
/// A timer callback, run at every firing.
pub type TimerFn = Box<dyn FnMut(&mut Ctx<'_>)>;
/// A one-off job.
pub type JobFn = Box<dyn FnOnce(&mut Ctx<'_>)>;
/// A listener's auth decision: `(peer ip, client key (CURVE only), is an active service node)`
/// to the level granted; [`AuthLevel::Denied`] refuses the connection.
pub type AllowFn = Box<dyn FnMut(&str, Option<&PublicKey>, bool) -> AuthLevel>;
/// Where a service node listens, or `None` if unknown.
pub type SnLookupFn = Box<dyn FnMut(&PublicKey) -> Option<Address>>;

/// Bytes read from one socket per turn before the others get a go.
const READ_BUDGET: usize = 256 * 1024;
/// Connections accepted on one listener per turn.
const ACCEPT_BUDGET: usize = 64;
/// The read buffer.
const READ_CHUNK: usize = 16 * 1024;

/// The monotonic clock, as the core counts time: microseconds since the node was built.
///
/// `std::time::Instant` never goes backwards, which is what the core requires of `now`; the
/// epoch is arbitrary and only differences matter.
struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    #[allow(clippy::disallowed_methods)] // this crate's one clock read
    fn new() -> Self {
        Self {
            epoch: std::time::Instant::now(),
        }
    }

    #[allow(clippy::disallowed_methods)] // this crate's one clock read
    fn now(&self) -> Instant {
        let elapsed = std::time::Instant::now().saturating_duration_since(self.epoch);
        Instant::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }
}

/// Callbacks waiting for the node to name them.
#[derive(Default)]
struct Pending {
    replies: BTreeMap<RequestId, ReplyFn>,
    /// By the number inside `ConnectionId::Outgoing`.
    connects: BTreeMap<u64, ConnectFn>,
    timers: BTreeMap<TimerId, TimerFn>,
    jobs: BTreeMap<u64, JobFn>,
    next_job: u64,
}

/// What a handler or callback may do while it runs: reply, send, request, connect.
///
/// Everything acts on the node at once; the embedder drains the node's outputs when the
/// handler returns.
pub struct Ctx<'a> {
    node: &'a mut Node<OsRng>,
    pending: &'a mut Pending,
    now: Instant,
}

impl Ctx<'_> {
    /// The time this handler was started at, on the node's clock.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The node, read-only (stats, `is_connected`, its key).
    #[must_use]
    pub fn node(&self) -> &Node<OsRng> {
        self.node
    }

    /// Replies to a request message: `[REPLY, tag, data…]`.
    pub fn reply<D, B>(&mut self, to: &ReplyTarget, data: D) -> Result<(), SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.node.reply(self.now, to, frames(data))
    }

    /// Sends `[command, data…]` back to whoever sent a message (OxenMQ's `send_back`).
    pub fn send_back<D, B>(
        &mut self,
        to: &ReplyTarget,
        command: impl Into<Bytes>,
        data: D,
    ) -> Result<(), SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.node.send_back(self.now, to, command, frames(data))
    }

    /// Sends `[command, data…]` to `to` (OxenMQ's `send`).
    pub fn send<D, B>(
        &mut self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
    ) -> Result<(), SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.node
            .send(self.now, to, command, frames(data), &SendOptions::default())
    }

    /// Sends a request with the default options; see [`request_with`](Self::request_with).
    pub fn request<D, B>(
        &mut self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        on_reply: impl FnOnce(&mut Ctx<'_>, Result<Vec<Bytes>, RequestError>) + 'static,
    ) -> Result<RequestId, SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.request_with(to, command, data, &RequestOptions::default(), on_reply)
    }

    /// Sends a request; `on_reply` runs inline with the reply, or with `TIMEOUT`, `FORBIDDEN`,
    /// `UNKNOWNCOMMAND`, …. If the request cannot be queued at all the error is returned here
    /// and `on_reply` is dropped uncalled.
    pub fn request_with<D, B>(
        &mut self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        opts: &RequestOptions,
        on_reply: impl FnOnce(&mut Ctx<'_>, Result<Vec<Bytes>, RequestError>) + 'static,
    ) -> Result<RequestId, SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let id = self
            .node
            .request(self.now, to, command, frames(data), opts)?;
        // The reply cannot come before this returns: its job is only drained afterwards.
        self.pending.replies.insert(id, Box::new(on_reply));
        Ok(id)
    }

    /// Connects to `addr` (`tcp://HOST:PORT`, or `curve://HOST:PORT/KEY` for CURVE) and says
    /// `HI`; `on_result` runs when the remote answers `HELLO`, or with the failure (e.g.
    /// "connection attempt timed out"). The connection reconnects until
    /// [`disconnect`](Self::disconnect); messages sent before it is up are queued.
    pub fn connect_remote(
        &mut self,
        addr: &Address,
        opts: &ConnectOptions,
        on_result: impl FnOnce(&mut Ctx<'_>, Result<ConnectionId, String>) + 'static,
    ) -> ConnectionId {
        let conn = self.node.connect_remote(self.now, addr.clone(), opts);
        if let ConnectionId::Outgoing { id, .. } = &conn {
            self.pending.connects.insert(*id, Box::new(on_result));
        }
        conn
    }

    /// Closes an outgoing connection after flushing for at most `linger`.
    pub fn disconnect(&mut self, conn: &ConnectionId, linger: Duration) -> Result<(), NodeError> {
        if let ConnectionId::Outgoing { id, .. } = conn {
            self.pending.connects.remove(id);
        }
        self.node.disconnect(self.now, conn, linger)
    }

    /// Adds a repeating timer; `f` runs inline every `interval`.
    pub fn add_timer(
        &mut self,
        interval: Duration,
        f: impl FnMut(&mut Ctx<'_>) + 'static,
    ) -> Result<TimerId, NodeError> {
        // Squelch (skip a firing while the previous one runs) cannot matter inline; ask for it
        // anyway so the timer behaves the same under a threaded embedder.
        let id = self
            .node
            .add_timer(self.now, interval, true, Target::Worker)?;
        self.pending.timers.insert(id, Box::new(f));
        Ok(id)
    }

    /// Cancels a timer (its closure is freed when the node releases it).
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.node.cancel_timer(self.now, timer)
    }

    /// Runs `f` as a job on the node's batch pool: later in this turn, inline.
    pub fn job(&mut self, f: impl FnOnce(&mut Ctx<'_>) + 'static) -> Result<(), NodeError> {
        let id = self.pending.next_job;
        self.pending.next_job += 1;
        self.pending.jobs.insert(id, Box::new(f));
        let queued = self.node.job(self.now, id, Target::Worker);
        if queued.is_err() {
            self.pending.jobs.remove(&id);
        }
        queued
    }
}

/// Collects the node's keypair, configuration, commands and service-node lookup.
pub struct Builder {
    config: Config,
    keypair: Option<Keypair>,
    registry: RegistryBuilder,
    commands: Vec<(CommandId, CommandFn)>,
    sn_lookup: Option<SnLookupFn>,
    dial_timeout: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with OxenMQ's defaults, one worker slot (jobs run inline, one at a time, so
    /// more would only change how many the node believes run concurrently) and a generated
    /// keypair.
    #[must_use]
    pub fn new() -> Self {
        Self {
            config: Config::new(1),
            keypair: None,
            registry: RegistryBuilder::new(),
            commands: Vec::new(),
            sn_lookup: None,
            dial_timeout: Duration::from_secs(2),
        }
    }

    /// Uses this keypair (a service node needs a fixed one); otherwise one is generated from
    /// the OS generator.
    pub fn keypair(&mut self, keypair: Keypair) -> &mut Self {
        self.keypair = Some(keypair);
        self
    }

    /// The node's tunables (timeouts, heartbeats, service-node mode, …).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// The core's registry builder: add categories and aliases here, then commands with
    /// [`command`](Self::command) and [`request_command`](Self::request_command) so that each
    /// gets its handler.
    pub fn registry_mut(&mut self) -> &mut RegistryBuilder {
        &mut self.registry
    }

    /// Adds a plain command `category.name` handled by `f`.
    pub fn command(
        &mut self,
        category: &str,
        name: &str,
        f: impl FnMut(&mut Ctx<'_>, Message) + 'static,
    ) -> Result<&mut Self, RegistryError> {
        let id = self.registry.add_command(category, name)?;
        self.commands.push((id, Box::new(f)));
        Ok(self)
    }

    /// Adds a request command (the caller waits for a reply) `category.name` handled by `f`.
    pub fn request_command(
        &mut self,
        category: &str,
        name: &str,
        f: impl FnMut(&mut Ctx<'_>, Message) + 'static,
    ) -> Result<&mut Self, RegistryError> {
        let id = self.registry.add_request_command(category, name)?;
        self.commands.push((id, Box::new(f)));
        Ok(self)
    }

    /// Answers the node's service-node lookups (`Event::LookupSn`); without one every lookup
    /// answers "unknown".
    pub fn sn_lookup(
        &mut self,
        f: impl FnMut(&PublicKey) -> Option<Address> + 'static,
    ) -> &mut Self {
        self.sn_lookup = Some(Box::new(f));
        self
    }

    /// The longest a dial may block the loop (see the crate docs on dialing).
    pub fn dial_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.dial_timeout = timeout;
        self
    }

    /// Builds the node. Nothing is bound or dialled yet.
    pub fn build(self) -> Result<Embedded, ConfigError> {
        let clock = Clock::new();
        let keypair = self
            .keypair
            .unwrap_or_else(|| Keypair::generate(&mut OsRng));
        let registry = self.registry.build();
        let mut commands: Vec<Option<CommandFn>> = Vec::new();
        commands.resize_with(registry.commands().len(), || None);
        for (id, f) in self.commands {
            commands[id.index()] = Some(f);
        }
        let node = Node::new(self.config, registry, keypair, OsRng, clock.now())?;
        Ok(Embedded {
            node,
            clock,
            listeners: BTreeMap::new(),
            streams: BTreeMap::new(),
            commands,
            allow: BTreeMap::new(),
            sn_lookup: self.sn_lookup,
            pending: Pending::default(),
            bind_errors: BTreeMap::new(),
            dial_timeout: self.dial_timeout,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            dropped_commands: 0,
            stopped: false,
        })
    }
}

/// A LokiMQ node on one thread: the [`Node`], its sockets, its clock and its callbacks.
pub struct Embedded {
    node: Node<OsRng>,
    clock: Clock,
    listeners: BTreeMap<ListenerId, TcpListener>,
    /// Open streams, and closed ones still flushing (the node has forgotten those).
    streams: BTreeMap<ConnId, Stream>,
    /// Indexed by `CommandId`.
    commands: Vec<Option<CommandFn>>,
    allow: BTreeMap<ListenerId, AllowFn>,
    sn_lookup: Option<SnLookupFn>,
    pending: Pending,
    /// Bind failures, kept for the `listen_*` call that asked.
    bind_errors: BTreeMap<ListenerId, io::Error>,
    dial_timeout: Duration,
    scratch: Box<[u8]>,
    dropped_commands: u64,
    stopped: bool,
}

impl Embedded {
    /// A [`Builder`].
    #[must_use]
    pub fn builder() -> Builder {
        Builder::new()
    }

    // -----------------------------------------------------------------------------------------
    // application calls: each acts on the node, then drains it

    /// The node, read-only (stats, `is_connected`, its registry).
    #[must_use]
    pub fn node(&self) -> &Node<OsRng> {
        &self.node
    }

    /// This node's public key.
    #[must_use]
    pub fn pubkey(&self) -> &PublicKey {
        self.node.pubkey()
    }

    /// The current time on the node's clock.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// True once shutdown finished ([`Event::Stopped`]).
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Incoming commands dropped because their category's queue was full.
    #[must_use]
    pub fn dropped_commands(&self) -> u64 {
        self.dropped_commands
    }

    /// Runs `f` with a [`Ctx`] (as a handler would), then drains the node.
    pub fn with_ctx<T>(&mut self, f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
        let mut ctx = Ctx {
            node: &mut self.node,
            pending: &mut self.pending,
            now: self.clock.now(),
        };
        let r = f(&mut ctx);
        self.drain();
        r
    }

    /// Listens for CURVE connections on a `tcp://` address (port 0 picks one). `allow` decides
    /// every connection once its handshake is verified. Returns the bound address with this
    /// node's key: give it to clients as is.
    pub fn listen_curve(
        &mut self,
        addr: &Address,
        allow: impl FnMut(&str, Option<&PublicKey>, bool) -> AuthLevel + 'static,
    ) -> io::Result<Address> {
        let listener = self
            .node
            .listen_curve(self.clock.now(), addr.clone())
            .map_err(io::Error::other)?;
        self.finish_listen(listener, Box::new(allow))
            .map(|a| a.with_pubkey(Some(*self.node.pubkey())))
    }

    /// Listens for plain (unencrypted, unauthenticated) connections on a `tcp://` address.
    pub fn listen_plain(
        &mut self,
        addr: &Address,
        allow: impl FnMut(&str, Option<&PublicKey>, bool) -> AuthLevel + 'static,
    ) -> io::Result<Address> {
        let listener = self
            .node
            .listen_plain(self.clock.now(), addr.clone())
            .map_err(io::Error::other)?;
        self.finish_listen(listener, Box::new(allow))
    }

    fn finish_listen(&mut self, listener: ListenerId, allow: AllowFn) -> io::Result<Address> {
        self.allow.insert(listener, allow);
        // The node's `Output::Listen` is acted on in this drain, so the bind has happened (or
        // failed) when it returns.
        self.drain();
        if let Some(e) = self.bind_errors.remove(&listener) {
            self.allow.remove(&listener);
            return Err(e);
        }
        let local = self
            .listeners
            .get(&listener)
            .map(TcpListener::local_addr)
            .ok_or_else(|| io::Error::other("the node asked for no bind"))??;
        Ok(Address::from_socket_addr(local))
    }

    /// [`Ctx::connect_remote`], from outside a handler.
    pub fn connect_remote(
        &mut self,
        addr: &Address,
        opts: &ConnectOptions,
        on_result: impl FnOnce(&mut Ctx<'_>, Result<ConnectionId, String>) + 'static,
    ) -> ConnectionId {
        self.with_ctx(|c| c.connect_remote(addr, opts, on_result))
    }

    /// [`Ctx::disconnect`], from outside a handler.
    pub fn disconnect(&mut self, conn: &ConnectionId, linger: Duration) -> Result<(), NodeError> {
        self.with_ctx(|c| c.disconnect(conn, linger))
    }

    /// [`Ctx::send`], from outside a handler.
    pub fn send<D, B>(
        &mut self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
    ) -> Result<(), SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.with_ctx(|c| c.send(to, command, data))
    }

    /// [`Ctx::request`], from outside a handler.
    pub fn request<D, B>(
        &mut self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        on_reply: impl FnOnce(&mut Ctx<'_>, Result<Vec<Bytes>, RequestError>) + 'static,
    ) -> Result<RequestId, SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.with_ctx(|c| c.request(to, command, data, on_reply))
    }

    /// [`Ctx::request_with`], from outside a handler.
    pub fn request_with<D, B>(
        &mut self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        opts: &RequestOptions,
        on_reply: impl FnOnce(&mut Ctx<'_>, Result<Vec<Bytes>, RequestError>) + 'static,
    ) -> Result<RequestId, SendError>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.with_ctx(|c| c.request_with(to, command, data, opts, on_reply))
    }

    /// [`Ctx::add_timer`], from outside a handler.
    pub fn add_timer(
        &mut self,
        interval: Duration,
        f: impl FnMut(&mut Ctx<'_>) + 'static,
    ) -> Result<TimerId, NodeError> {
        self.with_ctx(|c| c.add_timer(interval, f))
    }

    /// [`Ctx::cancel_timer`], from outside a handler.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.with_ctx(|c| c.cancel_timer(timer))
    }

    /// Timers whose closures are still held (cancelled ones go once the node releases them).
    #[must_use]
    pub fn timer_count(&self) -> usize {
        self.pending.timers.len()
    }

    /// Shuts down: listeners close, pending request and connect callbacks are dropped
    /// uncalled, then every connection is flushed and closed. Turns until that is done or `budget` has passed;
    /// returns whether it finished.
    pub fn shutdown(&mut self, budget: Duration) -> bool {
        let start = self.clock.now();
        // The core has no output for listeners: stopping to accept is the embedder's call.
        self.listeners.clear();
        self.node.shutdown(start);
        self.drain();
        self.pending.replies.clear();
        self.pending.connects.clear();
        loop {
            if self.stopped && self.streams.is_empty() {
                return true;
            }
            let left = budget.saturating_sub(self.clock.now() - start);
            if left.is_zero() {
                return false;
            }
            self.turn(left.min(Duration::from_millis(5)));
        }
    }

    // -----------------------------------------------------------------------------------------
    // the loop

    /// One turn: accept, read, write, fire the node's timeout if due; then, if none of that
    /// found anything to do, sleep until the node's next deadline but at most `max_wait`.
    /// Returns whether anything happened.
    pub fn turn(&mut self, max_wait: Duration) -> bool {
        let mut busy = self.accept_all();
        busy |= self.read_all();
        busy |= self.flush_all();
        busy |= self.service_deadlines();
        if !busy {
            let now = self.clock.now();
            let wait = self
                .next_deadline()
                .map_or(max_wait, |d| d.saturating_duration_since(now).min(max_wait));
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        busy
    }

    /// The earliest of the node's deadline and the closing sockets' linger deadlines.
    fn next_deadline(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(Stream::linger_until)
            .fold(self.node.poll_timeout(), |t, d| earliest(t, Some(d)))
    }

    fn accept_all(&mut self) -> bool {
        let mut busy = false;
        let ids: Vec<ListenerId> = self.listeners.keys().copied().collect();
        for listener in ids {
            for _ in 0..ACCEPT_BUDGET {
                let Some(l) = self.listeners.get(&listener) else {
                    break;
                };
                let (sock, remote) = match net::accept(l) {
                    Ok(Some(accepted)) => accepted,
                    Ok(None) => break,
                    Err(e) => {
                        // EMFILE and the like: try again next turn rather than spin.
                        log::warn!("accept failed on {listener:?}: {e}");
                        break;
                    }
                };
                busy = true;
                // Accepted sockets do not inherit the listener's non-blocking mode.
                let stream = match Stream::new(sock) {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("could not set up an accepted socket: {e}");
                        continue;
                    }
                };
                match self.node.accept(self.clock.now(), listener, &remote) {
                    Ok(conn) => {
                        // Insert before draining: the greeting is the first output.
                        self.streams.insert(conn, stream);
                        self.drain();
                    }
                    Err(e) => log::warn!("the node refused a connection: {e}"),
                }
            }
        }
        busy
    }

    fn read_all(&mut self) -> bool {
        let mut busy = false;
        let conns: Vec<ConnId> = self.streams.keys().copied().collect();
        for conn in conns {
            let mut budget = READ_BUDGET;
            while budget > 0 {
                let Some(stream) = self.streams.get_mut(&conn) else {
                    break;
                };
                let closing = stream.linger_until().is_some();
                match stream.read(&mut self.scratch) {
                    ReadResult::WouldBlock => break,
                    ReadResult::Data(n) => {
                        busy = true;
                        budget = budget.saturating_sub(n);
                        // A closed connection's late bytes have nobody to go to.
                        if !closing {
                            let data = Bytes::copy_from_slice(&self.scratch[..n]);
                            self.input(Input::Received { conn, data });
                        }
                    }
                    ReadResult::Eof => {
                        busy = true;
                        self.stream_gone(conn, DisconnectCause::Eof);
                        break;
                    }
                    ReadResult::Failed(e) => {
                        busy = true;
                        self.stream_gone(conn, DisconnectCause::Reset(e.to_string()));
                        break;
                    }
                }
            }
        }
        busy
    }

    /// Writes what every stream has queued. Returns whether anything happened.
    fn flush_all(&mut self) -> bool {
        let mut busy = false;
        let conns: Vec<ConnId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.has_output() || s.linger_until().is_some())
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            let Some(stream) = self.streams.get_mut(&conn) else {
                continue;
            };
            match stream.flush() {
                Ok(n) => busy |= n > 0,
                Err(e) => {
                    busy = true;
                    self.stream_gone(conn, DisconnectCause::Reset(e.to_string()));
                    self.drain();
                }
            }
        }
        busy
    }

    /// Feeds the node's timeout if it is due, and drops closing streams whose linger is over.
    fn service_deadlines(&mut self) -> bool {
        let now = self.clock.now();
        let expired: Vec<ConnId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.linger_until().is_some_and(|d| d <= now))
            .map(|(c, _)| *c)
            .collect();
        for conn in &expired {
            self.streams.remove(conn);
        }
        // Spurious timeouts are harmless, but skipping them keeps an idle node idle.
        let due = self.node.poll_timeout().is_some_and(|t| t <= now);
        if due {
            self.input(Input::Timeout);
        }
        due || !expired.is_empty()
    }

    /// A stream's transport ended: drop it and, unless the node had already closed it, say so.
    /// Does not drain (callers that are not inside a drain do).
    fn stream_gone(&mut self, conn: ConnId, cause: DisconnectCause) {
        let Some(stream) = self.streams.remove(&conn) else {
            return;
        };
        if stream.linger_until().is_none() {
            self.feed(Input::Disconnected { conn, cause });
        }
    }

    // -----------------------------------------------------------------------------------------
    // the drive contract

    /// Feeds an input, then drains.
    fn input(&mut self, input: Input) {
        self.feed(input);
        self.drain();
    }

    /// Feeds an input without draining: for use while a drain is running (its loop picks up
    /// whatever the input produced, in order).
    fn feed(&mut self, input: Input) {
        // This loop's inputs are network events and answers to the node's own events, which
        // the node always accepts; a refusal would be a bug here.
        if let Err(e) = self.node.handle(self.clock.now(), input) {
            panic!("the node refused an input from the embedder: {e}");
        }
    }

    /// Acts on every output until the node has none, then writes what was queued. A write can
    /// fail and feed `Disconnected`, which makes new outputs, so this loops until both are quiet.
    fn drain(&mut self) {
        loop {
            while let Some(out) = self.node.poll_output() {
                self.act(out);
            }
            let failed: Vec<(ConnId, io::Error)> = self
                .streams
                .iter_mut()
                .filter(|(_, s)| s.has_output())
                .filter_map(|(conn, s)| s.flush().err().map(|e| (*conn, e)))
                .collect();
            if failed.is_empty() {
                return;
            }
            for (conn, e) in failed {
                self.stream_gone(conn, DisconnectCause::Reset(e.to_string()));
            }
        }
    }

    fn act(&mut self, out: Output) {
        match out {
            Output::Transmit { conn, data } => {
                if let Some(stream) = self.streams.get_mut(&conn) {
                    stream.queue(data);
                }
            }
            Output::Connect { conn, addr } => {
                let dialed = net::dial(&addr, self.dial_timeout).and_then(|s| {
                    Stream::new(s).map_err(|e| DisconnectCause::Reset(e.to_string()))
                });
                match dialed {
                    Ok(stream) => {
                        self.streams.insert(conn, stream);
                        self.feed(Input::Connected { conn });
                    }
                    Err(cause) => self.feed(Input::Disconnected { conn, cause }),
                }
            }
            Output::Close { conn, linger } => {
                if linger.is_zero() {
                    self.streams.remove(&conn);
                } else if let Some(stream) = self.streams.get_mut(&conn) {
                    stream.close(self.clock.now() + linger);
                }
            }
            Output::Listen { listener, addr } => match net::bind(&addr) {
                Ok((l, local)) => {
                    log::info!("listening on {local}");
                    self.listeners.insert(listener, l);
                }
                Err(e) => {
                    let reason = e.to_string();
                    self.bind_errors.insert(listener, e);
                    self.feed(Input::ListenFailed { listener, reason });
                }
            },
            Output::RunJob { worker, job } => {
                self.run_job(job);
                // After the handler's own sends: the core requires that order.
                self.feed(Input::JobFinished { worker });
            }
            // Nothing to stop: there are no worker threads.
            Output::StopWorker { .. } => {}
            Output::Unlisten { listener } => {
                self.listeners.remove(&listener);
            }
            Output::Event(event) => self.on_event(event),
        }
    }

    fn run_job(&mut self, job: Job) {
        let mut ctx = Ctx {
            node: &mut self.node,
            pending: &mut self.pending,
            now: self.clock.now(),
        };
        match job {
            Job::Command { command, message } => {
                match self
                    .commands
                    .get_mut(command.index())
                    .and_then(Option::as_mut)
                {
                    Some(handler) => handler(&mut ctx, message),
                    None => log::error!("no handler for {command:?}"),
                }
            }
            Job::Reply { request, result } => {
                if let Some(f) = ctx.pending.replies.remove(&request) {
                    f(&mut ctx, result);
                }
            }
            Job::Connected { conn } => {
                if let Some(f) = take_connect(ctx.pending, &conn) {
                    f(&mut ctx, Ok(conn));
                }
            }
            Job::ConnectFailed { conn, error } => {
                if let Some(f) = take_connect(ctx.pending, &conn) {
                    f(&mut ctx, Err(error.to_string()));
                }
            }
            Job::Timer { timer } => run_timer(&mut ctx, timer),
            Job::Job { job } => {
                if let Some(f) = ctx.pending.jobs.remove(&job) {
                    f(&mut ctx);
                }
            }
            // Batches and injected tasks are not offered by this example.
            other => log::warn!("ignoring a job this embedder never asked for: {other:?}"),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::AuthRequest {
                conn,
                listener,
                remote,
                pubkey,
                service_node,
            } => {
                // Answered at once here; an embedder may also answer later (e.g. after asking a
                // database), as long as it is within the handshake timeout.
                let level = self.allow.get_mut(&listener).map_or(AuthLevel::None, |f| {
                    f(&remote, pubkey.as_ref(), service_node)
                });
                self.feed(Input::AuthDecision { conn, level });
            }
            Event::LookupSn { pubkey } => {
                let address = self.sn_lookup.as_mut().and_then(|f| f(&pubkey));
                self.feed(Input::SnAddress { pubkey, address });
            }
            Event::RunInDriver(InDriver::Timer { timer }) => {
                let mut ctx = Ctx {
                    node: &mut self.node,
                    pending: &mut self.pending,
                    now: self.clock.now(),
                };
                run_timer(&mut ctx, timer);
            }
            Event::TimerReleased { timer } => {
                self.pending.timers.remove(&timer);
            }
            Event::Dropped { category } => {
                self.dropped_commands += 1;
                log::warn!("no space to queue an incoming command for {category:?}; dropped");
            }
            Event::Stopped => self.stopped = true,
            // Reported by `listen_*` already.
            Event::ListenFailed { .. } => {}
            other => log::debug!("ignoring {other:?}"),
        }
    }
}

fn take_connect(pending: &mut Pending, conn: &ConnectionId) -> Option<ConnectFn> {
    match conn {
        ConnectionId::Outgoing { id, .. } => pending.connects.remove(id),
        _ => None,
    }
}

/// Runs one firing. The closure is taken out while it runs so that it can use the [`Ctx`]
/// (which borrows the callback tables), then put back; `Event::TimerReleased` removes it for
/// good.
fn run_timer(ctx: &mut Ctx<'_>, timer: TimerId) {
    if let Some(mut f) = ctx.pending.timers.remove(&timer) {
        f(ctx);
        ctx.pending.timers.entry(timer).or_insert(f);
    }
}

fn frames<D, B>(data: D) -> Vec<Bytes>
where
    D: IntoIterator<Item = B>,
    B: Into<Bytes>,
{
    data.into_iter().map(Into::into).collect()
}
