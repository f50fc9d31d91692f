//! [`Node`]: the whole LokiMQ node as one sans-IO state machine.
//!
//! A `Node` is OxenMQ's proxy thread with the sockets taken out. It owns every connection's ZMTP
//! session, the listeners and their ROUTER tables, the outgoing links (which reconnect with
//! back-off), the service-node set, the pending requests and the job scheduler. The embedder
//! moves bytes and runs jobs; the node decides everything else.
//!
//! # Driving a node
//!
//! Three kinds of call change a node:
//!
//! * **inputs** — [`Node::handle`] with an [`Input`]: bytes received, a connect finished, a
//!   socket closed, an auth decision, a lookup answer, a worker finished, a timeout;
//! * **application commands** — [`Node::send`], [`Node::request`], [`Node::connect_remote`],
//!   [`Node::listen_curve`], [`Node::submit_batch`], … (these return ids at once);
//! * nothing else: there are no callbacks, threads or clocks inside.
//!
//! After **every** such call, drain [`Node::poll_output`] until it returns `None`, act on each
//! [`Output`], then read [`Node::poll_timeout`] and call `handle(now, Input::Timeout)` when that
//! instant comes. Outputs are never lost if the drain is delayed, but time-ordering guarantees
//! (and the tests) assume it is not. `now` must never decrease between calls.

mod config;
mod conn_id;
mod dispatch;
mod failure;
mod io;
mod links;
mod logs;
mod requests;
mod route;
mod send;
mod timers;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::address::Address;
use crate::auth::AuthLevel;
use crate::ids::{BatchId, ConnId, ListenerId, TimerId};
use crate::keys::{Keypair, PublicKey};
use crate::registry::Registry;
use crate::rng::CryptoRngCore;
use crate::sched::{self, Scheduler};
use crate::session::{self, Session, SessionEvent};
use crate::time::{Duration, Instant, earliest};
use crate::zmtp::router::RouterTable;

pub use config::{
    BacklogLimit, Config, DEFAULT_CONNECT_SN_KEEP_ALIVE, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SEND_KEEP_ALIVE, FOREVER, INPROC_CONNECT_TIMEOUT, REMOTE_CONNECT_TIMEOUT,
};
pub use conn_id::ConnectionId;
pub use failure::{ConnectError, DisconnectReason, HandshakeError};
pub use io::{
    ConnectOptions, ConnectSnOptions, DisconnectCause, Event, Input, Job, Message, Output,
    ReplyTarget, RequestError, RequestId, RequestOptions, SendOptions,
};
pub use sched::{Completion, InDriver, Target, TimerTarget};
pub use send::SendError;

use links::{ConnEnd, LinkEnd};
use requests::Requests;
use route::{Conn, ConnState, ConnTable, Dial, Link, Origin, Phase, Role, Transport};
use send::SendFail;
use timers::Deadlines;

/// The listener id that names the node's built-in in-process listener (`connect_inproc`).
pub const INPROC_LISTENER: ListenerId = ListenerId(u16::MAX);

/// Why the node could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The scheduler refused the worker configuration.
    #[error(transparent)]
    Sched(#[from] sched::SchedError),
    /// A service-node mode node needs a fixed keypair (generated keys are refused).
    #[error("Cannot construct a service node mode OxenMQ without a keypair")]
    ServiceNodeWithoutKeypair,
}

/// Why an application command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// No such listener, or it is closed or failed to bind.
    #[error("no such listener {0:?}")]
    UnknownListener(ListenerId),
    /// `inject_task` named a category that does not exist.
    #[error("Invalid category `{0}': category does not exist")]
    UnknownCategory(String),
    /// `disconnect` named something that is not an outgoing connection.
    #[error("Failed to disconnect {0}: no such outgoing connection")]
    NoSuchOutgoingConnection(ConnectionId),
    /// The scheduler refused the job or batch.
    #[error(transparent)]
    Sched(#[from] sched::SchedError),
    /// The node has stopped.
    #[error("OxenMQ is shut down")]
    Stopped,
    /// `connect_remote_as`/`connect_inproc_as` was given 0 or the id of an open connection.
    #[error("connection id {0} is not free")]
    ConnectionIdInUse(u64),
    /// `accept` was refused: [`Config::max_incoming_connections`] are already open.
    #[error("refusing a connection: already {0} incoming connections")]
    TooManyConnections(usize),
    /// `listen_*` was refused: the node already has 65 535 listeners.
    #[error("too many listeners")]
    TooManyListeners,
    /// An [`Input::AuthDecision`] for a connection that did not ask for one (embedder misuse).
    #[error("auth decision for {0:?}, which did not ask for one")]
    NotAwaitingAuth(ConnId),
}

/// Where a node keeps its [`Scheduler`].
///
/// By default a node owns its scheduler, and the embedder reports every finished job with
/// [`Input::JobFinished`]. A multi-threaded embedder can instead share the scheduler with its
/// worker threads (behind a lock), so that a worker that finishes a job calls
/// [`Scheduler::job_finished`] itself and takes its next job from
/// [`Scheduler::poll_dispatch`] at once, without a round trip through the embedder's loop; the
/// scheduling rules are the same, because every decision is still made by the one scheduler.
/// The node then sees the scheduler's other outputs (batch completions, timer releases,
/// shutdown) the next time [`Node::poll_output`] is called, so a worker that leaves such
/// outputs behind must make the embedder's loop drain the node.
///
/// Build a node with a shared scheduler with [`Node::with_scheduler`].
pub trait SchedulerCell {
    /// Runs `f` with exclusive access to the scheduler.
    fn with<T>(&mut self, f: impl FnOnce(&mut Scheduler<Job>) -> T) -> T;

    /// Runs `f` with read access to the scheduler (for getters).
    fn with_ref<T>(&self, f: impl FnOnce(&Scheduler<Job>) -> T) -> T;
}

impl SchedulerCell for Scheduler<Job> {
    fn with<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        f(self)
    }

    fn with_ref<T>(&self, f: impl FnOnce(&Self) -> T) -> T {
        f(self)
    }
}

impl From<sched::SchedJob<Self>> for Job {
    /// The job a worker runs for a scheduler output: payload jobs are the node's own [`Job`]
    /// values; batch items, completions and timer firings name the embedder's closures.
    fn from(job: sched::SchedJob<Self>) -> Self {
        match job {
            sched::SchedJob::Command { job, .. }
            | sched::SchedJob::Task { job, .. }
            | sched::SchedJob::Reply(job)
            | sched::SchedJob::Job(job) => job,
            sched::SchedJob::BatchItem { batch, index } => Self::BatchItem { batch, index },
            sched::SchedJob::Completion { batch } => Self::Completion { batch },
            sched::SchedJob::Timer { timer } => Self::Timer { timer },
        }
    }
}

/// Where a listener is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListenerState {
    /// Asked for with `Output::Listen` (bound, as far as the node knows).
    Open,
    /// The driver could not bind it.
    Failed,
    /// Closed with `Output::Unlisten`.
    Closed,
}

struct Listener {
    addr: Address,
    curve: bool,
    router: RouterTable<ConnId>,
    state: ListenerState,
}

/// A snapshot of the node's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open transport connections.
    pub connections: usize,
    /// Outgoing links (service-node, remote and in-process).
    pub links: usize,
    /// Requests waiting for a reply.
    pub pending_requests: usize,
    /// Incoming commands (and injected tasks, which count as commands of their category)
    /// dropped because their category's queue was full.
    pub dropped_commands: u64,
    /// The scheduler's counters.
    pub sched: sched::SchedStats,
}

/// A LokiMQ node: see the [module documentation](self) for how to drive it. `S` is where the
/// node keeps its job scheduler (see [`SchedulerCell`]); by default the node owns it.
pub struct Node<R, S = Scheduler<Job>> {
    config: Config,
    registry: Registry,
    keypair: Keypair,
    rng: R,
    now: Instant,
    conns: ConnTable,
    listeners: Vec<Listener>,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    /// Outgoing service-node links by key.
    sn_out: BTreeMap<PublicKey, u64>,
    /// `connect_remote`/`connect_inproc` links by their public id.
    remote_ids: BTreeMap<u64, u64>,
    /// Incoming connections from service nodes (recorded on their first command).
    sn_in: BTreeMap<PublicKey, Vec<ConnId>>,
    active_sns: BTreeSet<PublicKey>,
    requests: Requests,
    next_request: u64,
    next_remote_id: u64,
    sched: S,
    outputs: VecDeque<Output>,
    /// In-process deliveries waiting to be dispatched (avoids re-entrancy).
    inproc: VecDeque<(Origin, Vec<Bytes>)>,
    dropped_commands: u64,
    /// `Message::remote` of in-process messages.
    inproc_remote: Arc<str>,
    /// Rate limits for warnings peers cause.
    peer_logs: logs::PeerLogs,
    shutting_down: bool,
    stopped: bool,
    /// Every connection's and link's next deadline (request deadlines are indexed by
    /// `requests`, timers by the scheduler).
    timers: Deadlines,
    /// Links whose transport uses our `L` + pubkey routing id, by transport address: a second
    /// connection to the same listener goes ephemeral (see `on_connected`).
    route_claims: BTreeSet<(String, u64)>,
    /// Scratch lists for `on_timeout` (kept to avoid allocating per timeout).
    due_conns: Vec<ConnId>,
    due_links: Vec<u64>,
}

impl<R: CryptoRngCore> Node<R> {
    /// Builds a node. `now` is the embedder's current time (the node's epoch is the embedder's).
    pub fn new(
        config: Config,
        registry: Registry,
        keypair: Keypair,
        rng: R,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        Self::with_scheduler(config, registry, keypair, rng, now, |s| s)
    }
}

impl<R: CryptoRngCore, S: SchedulerCell> Node<R, S> {
    /// Builds a node whose scheduler is kept in `S`: `wrap` receives the scheduler the node's
    /// configuration describes and returns the cell that will hold it (for example one shared
    /// with worker threads behind a mutex; see [`SchedulerCell`]).
    pub fn with_scheduler(
        config: Config,
        registry: Registry,
        keypair: Keypair,
        rng: R,
        now: Instant,
        wrap: impl FnOnce(Scheduler<Job>) -> S,
    ) -> Result<Self, ConfigError> {
        let sched_config = sched::SchedulerConfig {
            general_workers: config.general_workers,
            batch_threads: config.batch_threads,
            reply_threads: config.reply_threads,
            categories: registry
                .categories()
                .map(|c| sched::CategoryLimits {
                    reserved_threads: c.reserved_threads(),
                    max_queue: c.max_queue(),
                })
                .collect(),
            tagged_threads: config.tagged_threads.clone(),
        };
        let sched = wrap(Scheduler::new(sched_config)?);
        Ok(Self {
            config,
            registry,
            keypair,
            rng,
            now,
            conns: ConnTable::default(),
            listeners: Vec::new(),
            links: BTreeMap::new(),
            next_link: 0,
            sn_out: BTreeMap::new(),
            remote_ids: BTreeMap::new(),
            sn_in: BTreeMap::new(),
            active_sns: BTreeSet::new(),
            requests: Requests::default(),
            next_request: 0,
            next_remote_id: 1,
            sched,
            outputs: VecDeque::new(),
            inproc: VecDeque::new(),
            dropped_commands: 0,
            inproc_remote: Arc::from("inproc"),
            peer_logs: logs::PeerLogs::default(),
            shutting_down: false,
            stopped: false,
            timers: Deadlines::default(),
            route_claims: BTreeSet::new(),
            due_conns: Vec::new(),
            due_links: Vec::new(),
        })
    }

    // ---------------------------------------------------------------------------------------
    // (A) getters

    /// This node's public key.
    #[must_use]
    pub fn pubkey(&self) -> &PublicKey {
        self.keypair.public()
    }

    /// Where the node keeps its scheduler (see [`SchedulerCell`]).
    #[must_use]
    pub fn scheduler(&self) -> &S {
        &self.sched
    }

    /// The frozen command registry.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The configuration the node runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest `now` the node was given.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Counters, for tests and monitoring.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.len(),
            links: self.links.len(),
            pending_requests: self.requests.len(),
            dropped_commands: self.dropped_commands,
            sched: self.sched.with_ref(Scheduler::stats),
        }
    }

    /// True if `pubkey` is in the active service-node set.
    #[must_use]
    pub fn is_active_sn(&self, pubkey: &PublicKey) -> bool {
        self.active_sns.contains(pubkey)
    }

    /// True if an outgoing connection to the service node `pubkey` exists (up or reconnecting).
    #[must_use]
    pub fn has_outgoing_sn(&self, pubkey: &PublicKey) -> bool {
        self.sn_out.contains_key(pubkey)
    }

    /// True if the outgoing connection named by `conn` exists and has completed its handshake.
    #[must_use]
    pub fn is_connected(&self, conn: &ConnectionId) -> bool {
        let link = match conn {
            ConnectionId::Sn(pk) => self.sn_out.get(pk),
            ConnectionId::Outgoing { id, .. } => self.remote_ids.get(id),
            ConnectionId::Incoming {
                listener, route, ..
            } => {
                return self
                    .incoming_conn(*listener, route)
                    .is_some_and(|o| match o {
                        Origin::Conn(c) => self.conns.get(c).is_some_and(|c| c.state.is_ready()),
                        _ => true,
                    });
            }
        };
        link.and_then(|l| self.links.get(l))
            .is_some_and(Link::is_ready)
    }

    // ---------------------------------------------------------------------------------------
    // (B) inputs

    /// Feeds one input. Drain [`Node::poll_output`] afterwards.
    ///
    /// Inputs about the network never fail: bytes or events for a connection the node has
    /// already closed are ignored, as the network may deliver them after the close.
    ///
    /// # Errors
    ///
    /// Embedder misuse, which changes nothing: a [`Input::JobFinished`] for a worker that is
    /// not running a job ([`NodeError::Sched`]), or an [`Input::AuthDecision`] for a
    /// connection that did not ask for one ([`NodeError::NotAwaitingAuth`]).
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), NodeError> {
        self.advance(now);
        let result = match input {
            Input::Received { conn, data } => {
                self.on_received(conn, &data);
                Ok(())
            }
            Input::Connected { conn } => {
                self.on_connected(conn);
                Ok(())
            }
            Input::Disconnected { conn, cause } => {
                self.on_disconnected(conn, &cause);
                Ok(())
            }
            Input::ListenFailed { listener, reason } => {
                if let Some(l) = self.listeners.get_mut(listener.index()) {
                    l.state = ListenerState::Failed;
                }
                log::warn!("OxenMQ failed to listen on {:?}: {reason}", listener);
                self.event(Event::ListenFailed { listener, reason });
                Ok(())
            }
            Input::AuthDecision { conn, level } => self.on_auth_decision(conn, level),
            Input::SnAddress { pubkey, address } => {
                self.on_sn_address(pubkey, address);
                Ok(())
            }
            Input::JobFinished { worker } => self
                .sched
                .with(|s| s.job_finished(worker))
                .map_err(NodeError::from),
            Input::Timeout => {
                self.on_timeout();
                Ok(())
            }
            Input::Flushed { conn, unsent } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.note_flushed(unsent);
                }
                Ok(())
            }
        };
        self.pump();
        result
    }

    /// Feeds bytes received on `conn`, borrowed: the same as `handle(now, Input::Received {
    /// conn, data })` without making the caller copy each read into an owned buffer first (the
    /// session copies only what it must keep: partial frames and small bodies).
    pub fn handle_received(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.advance(now);
        self.on_received(conn, data);
        self.pump();
    }

    /// Drains the next output. Call until `None` after every input or command.
    ///
    /// With a shared scheduler (see [`SchedulerCell`]) this also collects what worker threads
    /// left in the scheduler since the last call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.pump();
        }
        self.outputs.pop_front()
    }

    /// The next instant at which the node needs `handle(now, Input::Timeout)`, if any.
    ///
    /// Three ordered lookups (the deadline index of connections and links, pending requests,
    /// the scheduler's timers): the cost does not grow with the number of connections, and
    /// nothing is allocated. (Debug builds also check the index against a full scan.)
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        #[cfg(debug_assertions)]
        self.check_timers();
        let t = earliest(
            self.requests.next_deadline(),
            self.sched.with_ref(Scheduler::poll_timeout),
        );
        earliest(t, self.timers.first())
    }

    fn advance(&mut self, now: Instant) {
        debug_assert!(
            now >= self.now,
            "time went backwards: {now:?} < {:?}",
            self.now
        );
        self.now = self.now.max(now);
    }

    // ---------------------------------------------------------------------------------------
    // listeners and connections

    /// Listens for CURVE connections on `addr` (a `tcp` or `ipc` address; any pubkey in it is
    /// ignored: the node's own key is used). Each listener is its own auth domain.
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`] once shutting down, [`NodeError::TooManyListeners`] past 65 535.
    pub fn listen_curve(&mut self, now: Instant, addr: Address) -> Result<ListenerId, NodeError> {
        self.listen(now, addr, true)
    }

    /// Listens for plain (NULL mechanism, unencrypted) connections on `addr`.
    ///
    /// # Errors
    ///
    /// As [`listen_curve`](Self::listen_curve).
    pub fn listen_plain(&mut self, now: Instant, addr: Address) -> Result<ListenerId, NodeError> {
        self.listen(now, addr, false)
    }

    fn listen(
        &mut self,
        now: Instant,
        addr: Address,
        curve: bool,
    ) -> Result<ListenerId, NodeError> {
        self.advance(now);
        if self.shutting_down {
            return Err(NodeError::Stopped);
        }
        // The last id names the in-process listener.
        let id = u16::try_from(self.listeners.len())
            .ok()
            .filter(|&i| i < INPROC_LISTENER.get())
            .map(ListenerId)
            .ok_or(NodeError::TooManyListeners)?;
        self.listeners.push(Listener {
            addr: addr.clone(),
            curve,
            router: RouterTable::new(&mut self.rng),
            state: ListenerState::Open,
        });
        self.outputs
            .push_back(Output::Listen { listener: id, addr });
        Ok(id)
    }

    /// The address a listener was asked to bind.
    #[must_use]
    pub fn listener_address(&self, listener: ListenerId) -> Option<&Address> {
        self.listeners.get(listener.index()).map(|l| &l.addr)
    }

    /// A connection arrived on `listener` from `remote` (the peer's address as text; an
    /// IPv4-mapped IPv6 address is normalised to IPv4). Returns the new connection's id.
    pub fn accept(
        &mut self,
        now: Instant,
        listener: ListenerId,
        remote: &str,
    ) -> Result<ConnId, NodeError> {
        self.advance(now);
        if self.shutting_down {
            return Err(NodeError::Stopped);
        }
        let l = self
            .listeners
            .get(listener.index())
            .filter(|l| l.state == ListenerState::Open)
            .ok_or(NodeError::UnknownListener(listener))?;
        if self.conns.incoming() >= self.config.max_incoming_connections {
            return Err(NodeError::TooManyConnections(self.conns.incoming()));
        }
        let mechanism = if l.curve {
            session::MechanismConfig::CurveServer {
                keypair: self.keypair.clone(),
            }
        } else {
            session::MechanismConfig::Null
        };
        let cfg = self.session_config(crate::zmtp::SocketType::Router, mechanism, Bytes::new());
        let session = Session::new(cfg, self.now, &mut self.rng);
        let role = Role::Listener(listener);
        let remote = Arc::from(normalise_ip(remote));
        let id = match session {
            Ok(s) => self
                .conns
                .insert(Conn::new(role, ConnState::Handshaking(s), remote)),
            Err(e) => {
                // Cannot happen with the node's own configuration; close rather than panic.
                log::error!("could not start a session for an accepted connection: {e}");
                let id = self
                    .conns
                    .insert(Conn::new(role, ConnState::Dialing, remote));
                self.close_conn(id, Duration::ZERO);
                return Ok(id);
            }
        };
        self.pump_conn(id);
        self.pump();
        Ok(id)
    }

    fn session_config(
        &self,
        socket_type: crate::zmtp::SocketType,
        mechanism: session::MechanismConfig,
        routing_id: Bytes,
    ) -> session::SessionConfig {
        let heartbeat = (self.config.heartbeat_interval > Duration::ZERO).then_some(
            crate::zmtp::heartbeat::HeartbeatConfig {
                interval: self.config.heartbeat_interval,
                timeout: self.config.heartbeat_timeout,
                ttl: Duration::ZERO,
            },
        );
        let mut cfg = session::SessionConfig::new(socket_type, mechanism);
        cfg.routing_id = routing_id;
        cfg.max_message_size = self.config.max_message_size;
        cfg.handshake_timeout = self.config.handshake_timeout;
        cfg.heartbeat = heartbeat;
        cfg.auth_required = socket_type == crate::zmtp::SocketType::Router;
        cfg.max_queued_messages = self.config.max_queued_messages;
        cfg.crypto_provider = self.config.crypto_provider;
        cfg
    }

    fn on_received(&mut self, id: ConnId, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(id) else {
            return; // a connection we already closed; late bytes are dropped
        };
        let Some(session) = conn.state.session_mut() else {
            return;
        };
        session.handle_bytes(self.now, data, &mut self.rng);
        self.pump_conn(id);
    }

    fn on_connected(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        if !matches!(conn.state, ConnState::Dialing) {
            return; // duplicate notification
        }
        let Role::Link(link_id) = conn.role else {
            return;
        };
        let Some(link) = self.links.get(&link_id) else {
            return;
        };
        let mechanism = match link.server_key() {
            Some(server_key) => session::MechanismConfig::CurveClient {
                keypair: self.keypair.clone(),
                server_key,
            },
            None => session::MechanismConfig::Null,
        };
        // Two of our connections to one ROUTER with the same `L` + pubkey id would take the
        // route from each other forever (ROUTER handover): a second one goes ephemeral.
        let shares_address = !link.ephemeral
            && link.addr().is_some_and(|addr| {
                let target = addr.zmq_address();
                self.route_claims
                    .range((target.clone(), 0)..=(target, u64::MAX))
                    .any(|&(_, other)| other != link_id)
            });
        let ephemeral = link.ephemeral || shares_address;
        if let Some(link) = self.links.get_mut(&link_id) {
            link.pubkey_routing_id = !ephemeral;
        }
        self.sync_route_claim(link_id);
        let routing_id = if ephemeral {
            Bytes::new()
        } else {
            let mut rid = Vec::with_capacity(33);
            rid.push(b'L');
            rid.extend_from_slice(self.keypair.public().as_bytes());
            Bytes::from(rid)
        };
        let cfg = self.session_config(crate::zmtp::SocketType::Dealer, mechanism, routing_id);
        match Session::new(cfg, self.now, &mut self.rng) {
            Ok(s) => {
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.state = ConnState::Handshaking(s);
                }
                if let Some(link) = self.links.get_mut(&link_id) {
                    link.set_dial(Dial::Handshaking { conn: id });
                }
                self.pump_conn(id);
            }
            Err(e) => {
                log::error!("could not start an outgoing session: {e}");
                self.drop_conn(id, Duration::ZERO, ConnEnd::Session(&e));
            }
        }
    }

    fn on_disconnected(&mut self, id: ConnId, cause: &DisconnectCause) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        log::debug!("connection {id:?} to {} ended: {cause}", conn.remote);
        // The transport is gone: nothing to flush, no Close needed.
        self.forget_conn(id, ConnEnd::Transport(cause));
    }

    fn on_auth_decision(&mut self, id: ConnId, level: AuthLevel) -> Result<(), NodeError> {
        let Some(conn) = self.conns.get_mut(id) else {
            return Ok(()); // closed meanwhile
        };
        if !matches!(conn.state, ConnState::AwaitingAuth(_)) {
            return Err(NodeError::NotAwaitingAuth(id));
        }
        conn.state.advance(ConnState::Handshaking);
        let decision = if level <= AuthLevel::Denied {
            session::AuthDecision::Deny {
                status: session::DenyStatus::Denied,
            }
        } else {
            conn.auth = level;
            let user_id = conn
                .pubkey
                .map(|pk| Bytes::from(pk.to_hex().into_bytes()))
                .unwrap_or_default();
            session::AuthDecision::allow(
                user_id,
                alloc::vec![(
                    String::from("X-AuthLevel"),
                    Bytes::from_static(level.as_str().as_bytes()),
                )],
            )
        };
        if let Some(session) = conn.state.session_mut() {
            session.auth_decision(self.now, decision, &mut self.rng);
        }
        self.pump_conn(id);
        Ok(())
    }

    fn on_sn_address(&mut self, pubkey: PublicKey, address: Option<Address>) {
        let Some(&link_id) = self.sn_out.get(&pubkey) else {
            return;
        };
        let Some(link) = self
            .links
            .get_mut(&link_id)
            .filter(|l| matches!(l.transport, Transport::Lookup))
        else {
            return;
        };
        match address {
            Some(addr) => {
                link.transport = Transport::Addr {
                    addr,
                    dial: Dial::Idle,
                };
                self.dial(link_id);
            }
            None => {
                log::error!("peer lookup failed for {}", pubkey.to_hex());
                let linger = self.config.close_linger;
                self.end_link(link_id, LinkEnd::Failed(ConnectError::LookupFailed), linger);
            }
        }
    }

    /// Handles what is due: only the connections and links whose deadline has come (from the
    /// deadline index), then request timeouts and the scheduler's timers.
    fn on_timeout(&mut self) {
        let now = self.now;
        let mut conns = core::mem::take(&mut self.due_conns);
        let mut links = core::mem::take(&mut self.due_links);
        conns.clear();
        links.clear();
        self.timers.due(now, &mut conns, &mut links);
        // Connections, then links, each in id order (as a full scan would visit them).
        conns.sort_unstable();
        links.sort_unstable();
        // Sessions: handshake, heartbeat and TTL timers.
        for &id in &conns {
            let due = self
                .conns
                .get(id)
                .and_then(|c| c.state.session())
                .and_then(Session::poll_timeout)
                .is_some_and(|t| t <= now);
            if due {
                if let Some(s) = self.conns.get_mut(id).and_then(|c| c.state.session_mut()) {
                    s.handle_timeout(now, &mut self.rng);
                }
                self.pump_conn(id);
            }
        }
        // Links: reconnects, connect timeouts, lingering closes, idle expiry.
        for &link_id in &links {
            self.link_timeout(link_id);
        }
        self.due_conns = conns;
        self.due_links = links;
        // Requests.
        for request in self.requests.expire(now) {
            self.submit(
                Job::Reply {
                    request,
                    result: Err(RequestError::Timeout),
                },
                Pool::Batch,
            );
        }
        self.sched.with(|s| s.handle_timeout(now));
    }

    // ---------------------------------------------------------------------------------------
    // session pumping

    /// Moves everything a session produced into node outputs and reactions, then re-indexes
    /// its deadline.
    fn pump_conn(&mut self, id: ConnId) {
        self.pump_session(id);
        self.sync_conn_timer(id);
    }

    fn pump_session(&mut self, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            let Some(session) = conn.state.session_mut() else {
                return;
            };
            if let Some(data) = session.poll_transmit() {
                conn.note_transmit(data.len());
                self.outputs.push_back(Output::Transmit { conn: id, data });
                continue;
            }
            let Some(event) = session.poll_event() else {
                return;
            };
            match event {
                SessionEvent::AuthRequest { client_key, .. } => {
                    conn.state.advance(ConnState::AwaitingAuth);
                    conn.pubkey = client_key;
                    let Role::Listener(listener) = conn.role else {
                        continue;
                    };
                    let remote = String::from(&*conn.remote);
                    let service_node = client_key.is_some_and(|k| self.active_sns.contains(&k));
                    self.event(Event::AuthRequest {
                        conn: id,
                        listener,
                        remote,
                        pubkey: client_key,
                        service_node,
                    });
                }
                SessionEvent::Ready => self.on_ready(id),
                SessionEvent::Message(frames) => self.dispatch(Origin::Conn(id), frames),
                SessionEvent::Closed(err) => {
                    log::debug!("connection {id:?} closed: {err}");
                    // Flush whatever the session queued last (e.g. an ERROR), then close.
                    self.flush_conn(id);
                    self.drop_conn(id, self.config.close_linger, ConnEnd::Session(&err));
                    return;
                }
            }
        }
    }

    fn on_ready(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.state.advance(ConnState::Ready);
        match conn.role {
            Role::Listener(listener) => {
                let mut identity = conn
                    .state
                    .session()
                    .and_then(Session::peer)
                    .map(|p| p.identity().clone())
                    .unwrap_or_default();
                let pubkey = conn.pubkey;
                let Some(l) = self.listeners.get(listener.index()) else {
                    return;
                };
                if l.curve && !self.may_claim_identity(l, pubkey.as_ref(), &identity) {
                    log::debug!(
                        "{id:?} may not claim routing id {}: it is bound to another key; \
                         it gets a generated one",
                        crate::encoding::hex::encode(&identity)
                    );
                    identity = Bytes::new();
                }
                let Some(l) = self.listeners.get_mut(listener.index()) else {
                    return;
                };
                let attached = l.router.attach(id, &identity);
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.route = Some(attached.routing_id);
                }
                if let Some(old) = attached.displaced {
                    // ROUTER handover: the new connection takes the routing id.
                    log::debug!("routing id handed over from {old:?} to {id:?}");
                    self.close_conn_because(old, Duration::ZERO, &DisconnectReason::Replaced);
                }
            }
            Role::Link(link_id) => {
                let reconnect_interval = self.config.reconnect_interval;
                let Some(link) = self.links.get_mut(&link_id) else {
                    return;
                };
                link.set_dial(Dial::Up { conn: id });
                link.backoff = reconnect_interval;
                link.last_error = None;
                let closing = matches!(link.phase, Phase::Closing { .. });
                let queued: Vec<Vec<Bytes>> = link.queue.drain(..).collect();
                self.sync_link_timer(link_id);
                for frames in queued {
                    if let Err(e) = self.conn_send(id, frames) {
                        log::warn!("Unable to send queued message: {e}");
                    }
                }
                if closing {
                    self.finish_closing_link(link_id);
                }
            }
        }
    }

    /// Whether a CURVE client authenticated as `pubkey` may use `identity` as its routing id.
    ///
    /// Over CURVE a routing id is bound to the key that authenticated it: an identity of
    /// OxenMQ's form `L` + pubkey must name the client's own key, and an identity held by a
    /// connection with a different key cannot be handed over (libzmq and OxenMQ hand it over
    /// to anyone, so any client could take another's route and its in-flight replies). An
    /// honest reconnect, with the same key, still takes its route over.
    fn may_claim_identity(
        &self,
        l: &Listener,
        pubkey: Option<&PublicKey>,
        identity: &[u8],
    ) -> bool {
        if identity.len() == 33
            && identity[0] == b'L'
            && pubkey.map(PublicKey::as_bytes).map(|k| &k[..]) != Some(&identity[1..])
        {
            return false;
        }
        match l.router.lookup(identity) {
            Some(holder) => self
                .conns
                .get(holder)
                .is_none_or(|c| c.pubkey.as_ref() == pubkey),
            None => true,
        }
    }

    /// Sends frames on a ready transport connection. Refused while the driver's unsent
    /// backlog for it is at [`Config::send_backlog_limit`] (libzmq's HWM: the message is not
    /// queued and the sender hears "would block").
    fn conn_send(&mut self, id: ConnId, frames: Vec<Bytes>) -> Result<(), SendFail> {
        let limit = self.config.send_backlog_limit;
        let Some(conn) = self.conns.get_mut(id) else {
            return Err(SendFail::NotConnected);
        };
        if let Some(limit) = limit {
            if conn.unsent_ends.len() >= limit.messages || conn.unsent > limit.bytes {
                return Err(SendFail::WouldBlock);
            }
        }
        let Some(session) = conn.state.session_mut() else {
            return Err(SendFail::NotConnected);
        };
        session.send(self.now, frames).map_err(SendFail::Session)?;
        // Only what the send framed: the connection's received messages are dispatched by the
        // `pump_conn` loop that may have called us (a reply to each of thousands of bad
        // commands must not dispatch the next one from inside this call: that recursion once
        // overflowed the stack).
        self.flush_conn(id);
        if limit.is_some() {
            if let Some(conn) = self.conns.get_mut(id) {
                // Everything the session framed went out in `flush_conn`: the message ends here.
                let end = conn.transmitted;
                conn.unsent_ends.push_back(end);
            }
        }
        Ok(())
    }

    /// Closes a transport connection on our initiative (flush, then `Close`).
    fn close_conn(&mut self, id: ConnId, linger: Duration) {
        self.close_conn_because(id, linger, &DisconnectReason::Closed);
    }

    /// [`close_conn`](Self::close_conn), saying why to an established listener connection's
    /// `PeerDisconnected`.
    fn close_conn_because(&mut self, id: ConnId, linger: Duration, why: &DisconnectReason) {
        if let Some(s) = self.conns.get_mut(id).and_then(|c| c.state.session_mut()) {
            s.close(self.now);
        }
        self.flush_conn(id);
        self.drop_conn(id, linger, ConnEnd::Local(why));
    }

    /// Moves every byte a session has queued into `Transmit` outputs.
    fn flush_conn(&mut self, id: ConnId) {
        while let Some(conn) = self.conns.get_mut(id) {
            let Some(data) = conn.state.session_mut().and_then(Session::poll_transmit) else {
                return;
            };
            conn.note_transmit(data.len());
            self.outputs.push_back(Output::Transmit { conn: id, data });
        }
    }

    /// Emits `Close` and forgets the connection; the owning link may reconnect.
    fn drop_conn(&mut self, id: ConnId, linger: Duration, end: ConnEnd<'_>) {
        if self.conns.get(id).is_none() {
            return;
        }
        self.outputs.push_back(Output::Close { conn: id, linger });
        self.forget_conn(id, end);
    }

    /// Removes every trace of a transport connection, reports the end of an established
    /// incoming one, and lets its link (if any) react.
    fn forget_conn(&mut self, id: ConnId, end: ConnEnd<'_>) {
        let Some(conn) = self.conns.remove(id) else {
            return;
        };
        self.timers
            .update(timers::TimerKey::Conn(id), conn.timer, None);
        match conn.role {
            Role::Listener(listener) => {
                if let Some(l) = self.listeners.get_mut(listener.index()) {
                    l.router.detach(id);
                }
                if conn.state.is_ready() && !self.shutting_down {
                    self.event(Event::PeerDisconnected {
                        conn: self.incoming_id(listener, &conn),
                        pubkey: conn.pubkey,
                        cause: end.reason(),
                        reconnecting: false,
                    });
                }
                if let Some(pk) = conn.pubkey {
                    if let Some(v) = self.sn_in.get_mut(&pk) {
                        v.retain(|c| *c != id);
                        if v.is_empty() {
                            self.sn_in.remove(&pk);
                        }
                    }
                }
            }
            Role::Link(link_id) => self.link_lost(link_id, id, &conn, end),
        }
    }

    /// How the application names the peer of a connection accepted on `listener`: by its key
    /// if it is an active service node, else by listener and routing id.
    fn incoming_id(&self, listener: ListenerId, conn: &Conn) -> ConnectionId {
        match conn.pubkey {
            Some(pk) if self.active_sns.contains(&pk) => ConnectionId::Sn(pk),
            pubkey => ConnectionId::Incoming {
                listener,
                route: conn.route.clone().unwrap_or_default(),
                pubkey,
            },
        }
    }

    // ---------------------------------------------------------------------------------------
    // links

    fn new_link(&mut self, link: Link) -> u64 {
        let id = self.next_link;
        self.next_link += 1;
        self.insert_link(id, link);
        id
    }

    // ---------------------------------------------------------------------------------------
    // service-node set

    /// Replaces the active service-node set. Removed keys lose their outgoing connections and
    /// incoming service-node records.
    pub fn set_active_sns(&mut self, now: Instant, pubkeys: BTreeSet<PublicKey>) {
        self.advance(now);
        let removed: Vec<PublicKey> = self.active_sns.difference(&pubkeys).copied().collect();
        self.active_sns = pubkeys;
        self.remove_sns(&removed);
        self.pump();
    }

    /// Adds and removes service nodes (a key in both sets counts as added, as in OxenMQ).
    pub fn update_active_sns(
        &mut self,
        now: Instant,
        added: &BTreeSet<PublicKey>,
        removed: &BTreeSet<PublicKey>,
    ) {
        self.advance(now);
        let removed: Vec<PublicKey> = removed
            .iter()
            .filter(|pk| !added.contains(pk) && self.active_sns.contains(pk))
            .copied()
            .collect();
        for pk in &removed {
            self.active_sns.remove(pk);
        }
        self.active_sns.extend(added.iter().copied());
        self.remove_sns(&removed);
        self.pump();
    }

    fn remove_sns(&mut self, removed: &[PublicKey]) {
        for pk in removed {
            self.sn_in.remove(pk);
            if let Some(link_id) = self.sn_out.get(pk).copied() {
                self.end_link(link_id, LinkEnd::Closed, self.config.close_linger);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // jobs

    fn submit(&mut self, job: Job, pool: Pool) {
        let result = self.sched.with(|s| match pool {
            Pool::Reply => s.submit_reply_job(job),
            Pool::Batch => s.submit_job(job, Target::Worker),
        });
        if let Err(e) = result {
            log::debug!("job not scheduled: {e}");
        }
    }

    /// Runs `job` (an embedder handle) on the batch pool, or on a tagged thread
    /// ([`Target::InDriver`] is refused, as OxenMQ's `job()` refuses `run_in_proxy`).
    pub fn job(&mut self, now: Instant, job: u64, target: Target) -> Result<(), NodeError> {
        self.advance(now);
        self.sched
            .with(|s| s.submit_job(Job::Job { job }, target))?;
        self.pump();
        Ok(())
    }

    /// Runs `task` (an embedder handle) as if it were a command of `category`: same reserved
    /// threads and queue limits. Returns `Ok(false)` if the category's queue was full and the
    /// task was dropped (the embedder may free its closure; `Event::Dropped` is emitted too).
    pub fn inject_task(
        &mut self,
        now: Instant,
        category: &str,
        task: u64,
    ) -> Result<bool, NodeError> {
        self.advance(now);
        let cat = self.registry.require_category(category)?;
        let offer = self.sched.with(|s| {
            s.inject_task(
                cat,
                Job::Task {
                    category: cat,
                    task,
                },
            )
        })?;
        self.pump();
        Ok(!matches!(offer, sched::Offer::Dropped))
    }

    /// Submits a batch of jobs (one entry per job: where it runs) with a completion. The
    /// driver keeps the closures; jobs come back as [`Job::BatchItem`] and [`Job::Completion`].
    pub fn submit_batch(
        &mut self,
        now: Instant,
        jobs: &[Target],
        completion: Completion,
    ) -> Result<BatchId, NodeError> {
        self.advance(now);
        let id = self.sched.with(|s| s.submit_batch(jobs, completion))?;
        self.pump();
        Ok(id)
    }

    /// Adds a repeating timer.
    pub fn add_timer(
        &mut self,
        now: Instant,
        interval: Duration,
        squelch: bool,
        target: TimerTarget,
    ) -> Result<TimerId, NodeError> {
        self.advance(now);
        let id = self
            .sched
            .with(|s| s.add_timer(now, interval, squelch, target))?;
        self.pump();
        Ok(id)
    }

    /// [`add_timer`](Self::add_timer) under an id the embedder hands out itself (see
    /// [`Scheduler::add_timer_as`](crate::sched::Scheduler::add_timer_as)).
    ///
    /// # Errors
    ///
    /// As `add_timer`, plus `TimerIdInUse` for id 0 or the id of a timer that still exists.
    pub fn add_timer_as(
        &mut self,
        now: Instant,
        id: TimerId,
        interval: Duration,
        squelch: bool,
        target: TimerTarget,
    ) -> Result<(), NodeError> {
        self.advance(now);
        self.sched
            .with(|s| s.add_timer_as(now, id, interval, squelch, target))?;
        self.pump();
        Ok(())
    }

    /// Cancels a timer (idempotent; returns false if it was unknown or already cancelled).
    /// Firings not yet started are discarded; [`Event::TimerReleased`] says when the driver may
    /// free the timer's closure.
    pub fn cancel_timer(&mut self, now: Instant, timer: TimerId) -> bool {
        self.advance(now);
        let known = self.sched.with(|s| s.cancel_timer(timer));
        self.pump();
        known
    }

    /// Starts shutdown: no new work is dispatched, queued work is discarded, pending request
    /// and connect callbacks are never called. Running jobs finish; then every connection is
    /// closed and [`Event::Stopped`] is emitted.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance(now);
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.requests.clear();
        let ids: Vec<u64> = self.links.keys().copied().collect();
        for link_id in ids {
            if let Some(link) = self.links.get_mut(&link_id) {
                // No connect timeouts (and no callbacks) and no reconnects any more.
                if matches!(link.phase, Phase::Connecting { .. }) {
                    link.phase = Phase::Stopping;
                }
                if matches!(link.dial(), Some(Dial::BackingOff { .. })) {
                    link.set_dial(Dial::Idle);
                }
            }
            self.sync_link_timer(link_id);
        }
        // No new connections while winding down (OxenMQ closes its listeners first too).
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if l.state == ListenerState::Open {
                l.state = ListenerState::Closed;
                // Fewer than 65 536 listeners: `listen` refuses more.
                let listener = ListenerId(i as u16);
                self.outputs.push_back(Output::Unlisten { listener });
            }
        }
        let report = self.sched.with(Scheduler::shutdown);
        log::debug!("shutting down: discarded {report:?}");
        self.pump();
    }

    // ---------------------------------------------------------------------------------------
    // output plumbing

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Runs in-process deliveries and moves scheduler outputs out, until both are quiet.
    fn pump(&mut self) {
        loop {
            if let Some((origin, frames)) = self.inproc.pop_front() {
                self.dispatch(origin, frames);
                continue;
            }
            let Some(out) = self.sched.with(Scheduler::poll_output) else {
                break;
            };
            match out {
                sched::SchedOutput::RunJob { worker, job } => {
                    let job = Job::from(job);
                    self.outputs.push_back(Output::RunJob { worker, job });
                }
                sched::SchedOutput::RunInDriver(d) => self.event(Event::RunInDriver(d)),
                sched::SchedOutput::BatchDone { batch } => self.event(Event::BatchDone { batch }),
                sched::SchedOutput::TimerReleased { timer } => {
                    self.event(Event::TimerReleased { timer });
                }
                sched::SchedOutput::Dropped { category, job, .. } => {
                    self.dropped_commands += 1;
                    let (command, from) = match job {
                        Job::Command { command, message } => (Some(command), Some(message.conn)),
                        _ => (None, None),
                    };
                    self.event(Event::Dropped {
                        category,
                        command,
                        from,
                    });
                }
                sched::SchedOutput::StopWorker { worker } => {
                    self.outputs.push_back(Output::StopWorker { worker });
                }
                sched::SchedOutput::Stopped => self.finish_shutdown(),
            }
        }
    }

    fn finish_shutdown(&mut self) {
        if self.stopped {
            return;
        }
        let linger = self.config.close_linger;
        let links: Vec<u64> = self.links.keys().copied().collect();
        for l in links {
            self.end_link(l, LinkEnd::Shutdown, linger);
        }
        for id in self.conns.ids() {
            self.close_conn(id, linger);
        }
        // Jobs queued by the closes above are discarded: the scheduler is stopped.
        self.sched.with(|s| while s.poll_output().is_some() {});
        self.stopped = true;
        self.event(Event::Stopped);
    }

    /// The transport (or in-process end) currently behind an incoming id.
    fn incoming_conn(&self, listener: ListenerId, route: &[u8]) -> Option<Origin> {
        if listener == INPROC_LISTENER {
            let id = u64::from_be_bytes(route.try_into().ok()?);
            let link = self.remote_ids.get(&id)?;
            return Some(Origin::InprocServer(*link));
        }
        let l = self.listeners.get(listener.index())?;
        l.router.lookup(route).map(Origin::Conn)
    }
}

/// Which pool a node-made job runs on (OxenMQ: replies and connects on the reply pool,
/// timeouts and failures on the batch pool).
#[derive(Clone, Copy)]
enum Pool {
    Reply,
    Batch,
}

/// OxenMQ strips the IPv4-mapped prefix so that allow functions see plain IPv4.
fn normalise_ip(remote: &str) -> String {
    if let Some(rest) = remote.strip_prefix("::ffff:") {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return String::from(rest);
        }
    }
    String::from(remote)
}

#[cfg(test)]
mod tests;
