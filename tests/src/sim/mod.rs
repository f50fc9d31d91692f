//! The deterministic simulator: N [`Node`]s on one virtual clock and a virtual network.
//!
//! Everything that happens is an entry of one event queue ordered by `(time, sequence number)`:
//! byte deliveries, connects, resets, worker completions, scripted later work. One seed drives
//! every random choice (node keys and RNGs, latency jitter, re-chunking, job durations), there is
//! no wall clock and no hash-ordered container, so a run is a pure function of its seed and its
//! script.
//!
//! # The step loop (quinn's `Pair::step` for N nodes)
//!
//! 1. `t = min(next event, every node's poll_timeout())`; advance `now` to `t`;
//! 2. if an event is due at `t`, process it (events before timeouts at the same instant),
//!    otherwise feed `Input::Timeout` to every node whose timeout has come;
//! 3. after **every** input or application call, drain that node's outputs completely and act
//!    on each (`Transmit` → the pipe, `Connect` → dial, `RunJob` → run the scripted handler and
//!    schedule `JobFinished`, `Event::AuthRequest` → the listener's allow function, …);
//! 4. check the invariants (nothing undrained, connection counts, scheduler bounds, at most
//!    one outcome per request, optionally idle expiry).
//!
//! [`Sim::run_until`] and [`Sim::run_until_idle`] are both bounded by a step budget. A
//! simulation that panics prints its seed and the tail of its log (every input and output of
//! every node, with times).

pub mod log;
pub mod net;
pub mod node;
pub mod script;
pub mod tap;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{ListenerId, WorkerId};
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::node::{
    ConnectOptions, ConnectSnOptions, ConnectionId, Event, Input, Job, Node, NodeError, Output,
    RequestError, RequestId, RequestOptions, SendError, SendOptions,
};
use lokimq_core::session::{MechanismConfig, Session, SessionConfig, SessionEvent};
use lokimq_core::time::{Duration, Instant};
use lokimq_core::zmtp::SocketType;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub use self::log::Log;
pub use self::net::{Chunking, End, Host, LinkConfig, NetConfig, PartitionMode};
pub use self::node::{AllowFn, AuthRecord, JobKind, JobRecord, NodeSpec, RequestRecord, SimNode};
pub use self::script::{Action, Ctx, Dur, Handler, JobTimes, ReplyFn};
pub use self::tap::{Tap, TapListener};

use self::net::{Delivery, ListenTarget, Net};
use self::node::Busy;
use self::script::LaterFn;

/// Default step budget of [`Sim::run_until_idle`] and [`Sim::run_until`].
pub const DEFAULT_MAX_STEPS: u64 = 2_000_000;

/// Something scheduled on the event queue.
pub(crate) enum Ev {
    /// A dial's SYN reaches the listening side.
    Dial { pipe: u64 },
    /// A dial failed (refused, or timed out in a partition).
    DialFailed {
        pipe: u64,
        cause: lokimq_core::node::DisconnectCause,
    },
    /// A chunk of a pipe direction is due.
    Deliver { pipe: u64, dir: usize, chunk: u64 },
    /// An end learns its connection was reset.
    Reset {
        end: End,
        cause: lokimq_core::node::DisconnectCause,
    },
    /// A worker finishes its job.
    JobDone { node: usize, worker: WorkerId },
    /// Scripted work outside any worker.
    Later { node: usize, f: LaterFn },
    /// A test callback.
    Call(Box<dyn FnOnce(&mut Sim)>),
}

/// The event queue: ordered by time, then by insertion.
#[derive(Default)]
pub(crate) struct Queue {
    map: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, at: Instant, ev: Ev) {
        self.map.insert((at, self.seq), ev);
        self.seq += 1;
    }

    fn next_time(&self) -> Option<Instant> {
        self.map.first_key_value().map(|((t, _), _)| *t)
    }

    fn pop(&mut self) -> Option<(Instant, Ev)> {
        self.map.pop_first().map(|((t, _), e)| (t, e))
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Per (node, service node): the latest instant anything that could count as activity on an
/// outgoing connection happened, and the largest keep-alive ever asked for.
#[derive(Debug, Clone, Copy)]
struct Activity {
    last: Instant,
    keep_alive: Duration,
}

/// The simulator (see the module docs).
pub struct Sim {
    now: Instant,
    seed: u64,
    rng: ChaCha20Rng,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    net: Net,
    taps: Vec<Tap>,
    tap_listeners: Vec<TapListener>,
    queue: Queue,
    log: Log,
    steps: u64,
    /// Step budget for the `run_*` calls.
    pub max_steps: u64,
    /// Check the invariants after every step (on by default).
    pub check_every_step: bool,
    /// Also check that outgoing service-node connections never outlive their idle deadline
    /// (sound only while no command is dropped for a full queue: the node counts a dropped
    /// command as activity, and the harness cannot see it).
    pub check_idle_expiry: bool,
    activity: BTreeMap<(usize, PublicKey), Activity>,
    next_port: u16,
    /// Nodes that received an input or call since the last invariant check.
    dirty: BTreeSet<usize>,
    /// When the idle-expiry invariant was last checked.
    idle_checked_at: Option<Instant>,
}

impl Sim {
    /// A simulation with the default network (1 ms links, whole transmits).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self::with_net(seed, NetConfig::default())
    }

    /// A simulation with the given network settings.
    #[must_use]
    pub fn with_net(seed: u64, net: NetConfig) -> Self {
        Self {
            now: Instant::ZERO,
            seed,
            rng: ChaCha20Rng::seed_from_u64(seed),
            nodes: Vec::new(),
            net: Net::new(net),
            taps: Vec::new(),
            tap_listeners: Vec::new(),
            queue: Queue::default(),
            log: Log::default(),
            steps: 0,
            max_steps: DEFAULT_MAX_STEPS,
            check_every_step: true,
            check_idle_expiry: false,
            activity: BTreeMap::new(),
            next_port: 4000,
            dirty: BTreeSet::new(),
            idle_checked_at: None,
        }
    }

    /// The seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Steps taken so far.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The log, mutably (e.g. to [`Log::keep_all`]).
    pub fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    /// The simulation's RNG (for tests that draw their own random choices from the seed).
    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// Node `n`.
    #[must_use]
    pub fn node(&self, n: usize) -> &SimNode {
        &self.nodes[n]
    }

    /// Node `n`, mutably.
    pub fn node_mut(&mut self, n: usize) -> &mut SimNode {
        &mut self.nodes[n]
    }

    /// Node `n`'s public key.
    #[must_use]
    pub fn pubkey(&self, n: usize) -> PublicKey {
        self.nodes[n].pubkey
    }

    // -----------------------------------------------------------------------------------------
    // building

    /// Adds a node; its RNG (and its keypair unless given) come from the simulation's RNG.
    pub fn add_node(&mut self, spec: NodeSpec) -> usize {
        let keypair = spec
            .keypair
            .unwrap_or_else(|| Keypair::generate(&mut self.rng));
        let pubkey = *keypair.public();
        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        let mut handlers = BTreeMap::new();
        for (name, h) in spec.handlers {
            let id = spec
                .registry
                .find_command(&name)
                .unwrap_or_else(|| panic!("handler for unregistered command {name}"));
            handlers.insert(id, h);
        }
        let node = Node::new(spec.config, spec.registry, keypair, rng, self.now)
            .expect("a valid node configuration");
        let mut sn = SimNode::new(node, pubkey, spec.job_times);
        sn.handlers = handlers;
        self.nodes.push(sn);
        let n = self.nodes.len() - 1;
        self.record(&format!("n{n}"), format!("new node {pubkey}"));
        self.drain(n);
        n
    }

    /// A free port for a listener.
    pub fn port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port += 1;
        p
    }

    /// Node `n` listens for plain connections on a fresh port of 127.0.0.1; returns the
    /// listener and the address to connect to.
    pub fn listen_plain(&mut self, n: usize) -> (ListenerId, Address) {
        let port = self.port();
        let addr = Address::tcp("127.0.0.1", port);
        let now = self.now;
        let l = self.nodes[n].node.listen_plain(now, addr.clone());
        self.drain(n);
        (l, addr)
    }

    /// Node `n` listens for CURVE connections on a fresh port; returns the listener and the
    /// CURVE address (with `n`'s key) to connect to.
    pub fn listen_curve(&mut self, n: usize) -> (ListenerId, Address) {
        let port = self.port();
        let addr = Address::tcp("127.0.0.1", port);
        let now = self.now;
        let l = self.nodes[n].node.listen_curve(now, addr);
        self.drain(n);
        (
            l,
            Address::tcp_curve("127.0.0.1", port, self.nodes[n].pubkey),
        )
    }

    /// Node `n` listens (plain or CURVE) on a given address.
    pub fn listen_on(&mut self, n: usize, addr: Address, curve: bool) -> ListenerId {
        let now = self.now;
        let l = if curve {
            self.nodes[n].node.listen_curve(now, addr)
        } else {
            self.nodes[n].node.listen_plain(now, addr)
        };
        self.drain(n);
        l
    }

    /// Sets the allow function of node `n`'s listener `l` (default: everyone gets `none`).
    pub fn set_allow(
        &mut self,
        n: usize,
        l: ListenerId,
        f: impl FnMut(&str, Option<&PublicKey>, bool) -> AuthLevel + 'static,
    ) {
        self.nodes[n].allow.insert(l, Box::new(f));
    }

    /// Gives every peer of node `n`'s listener `l` the same auth level.
    pub fn allow_all(&mut self, n: usize, l: ListenerId, level: AuthLevel) {
        self.set_allow(n, l, move |_, _, _| level);
    }

    /// Tells node `n` where service node `pk` listens.
    pub fn set_address(&mut self, n: usize, pk: PublicKey, addr: Address) {
        self.nodes[n].address_book.insert(pk, addr);
    }

    /// Sets a connect callback on node `n` (runs on a worker for every `Job::Connected`).
    pub fn on_connect(&mut self, n: usize, f: impl FnMut(&mut Ctx, &ConnectionId) + 'static) {
        self.nodes[n].on_connect = Some(Box::new(f));
    }

    // -----------------------------------------------------------------------------------------
    // application calls (applied now; the node is drained afterwards)

    /// Runs `f` on node `n` now, then drains it.
    pub fn with_node<T>(
        &mut self,
        n: usize,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T,
    ) -> T {
        let now = self.now;
        let t = f(&mut self.nodes[n].node, now);
        self.drain(n);
        t
    }

    /// `connect_remote`.
    pub fn connect_remote(
        &mut self,
        n: usize,
        addr: Address,
        opts: &ConnectOptions,
    ) -> ConnectionId {
        self.record(
            &format!("n{n}"),
            format!(
                "app connect_remote {}",
                addr.full_address(lokimq_core::address::Encoding::Hex)
            ),
        );
        self.with_node(n, |node, now| node.connect_remote(now, addr, opts))
    }

    /// `connect_sn`.
    pub fn connect_sn(&mut self, n: usize, pk: PublicKey, opts: &ConnectSnOptions) -> ConnectionId {
        let ka = opts
            .keep_alive
            .unwrap_or_else(|| self.nodes[n].node.config().connect_sn_keep_alive);
        self.note_activity(n, pk, ka);
        self.record(&format!("n{n}"), format!("app connect_sn {pk}"));
        self.with_node(n, |node, now| node.connect_sn(now, pk, opts))
    }

    /// `connect_inproc`.
    pub fn connect_inproc(&mut self, n: usize, auth: Option<AuthLevel>) -> ConnectionId {
        self.record(&format!("n{n}"), "app connect_inproc".to_string());
        self.with_node(n, |node, now| node.connect_inproc(now, auth))
    }

    /// `disconnect`.
    pub fn disconnect(
        &mut self,
        n: usize,
        conn: &ConnectionId,
        linger: Duration,
    ) -> Result<(), NodeError> {
        self.record(&format!("n{n}"), format!("app disconnect {conn:?}"));
        self.with_node(n, |node, now| node.disconnect(now, conn, linger))
    }

    /// `send`; a refusal is also recorded in `send_errors`.
    pub fn send(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: &str,
        data: Vec<Bytes>,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        self.send_bytes(
            n,
            to,
            Bytes::copy_from_slice(command.as_bytes()),
            data,
            opts,
        )
    }

    fn send_bytes(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: Bytes,
        data: Vec<Bytes>,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        if let ConnectionId::Sn(pk) = to {
            let ka = opts
                .keep_alive
                .unwrap_or_else(|| self.nodes[n].node.config().send_keep_alive);
            self.note_activity(n, *pk, ka);
        }
        self.record(
            &format!("n{n}"),
            format!("app send {to:?} {command:?} {}", parts(&data)),
        );
        let now = self.now;
        let r = self.nodes[n].node.send(now, to, command, data, opts);
        if let Err(e) = &r {
            self.nodes[n].send_errors.push((now, to.clone(), e.clone()));
        }
        self.drain(n);
        r
    }

    /// `request`; the outcome is recorded in the node's `requests`.
    pub fn request(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: &str,
        data: Vec<Bytes>,
        opts: &RequestOptions,
    ) -> Result<RequestId, SendError> {
        self.request_inner(
            n,
            to,
            Bytes::copy_from_slice(command.as_bytes()),
            data,
            opts,
            None,
        )
    }

    /// `request` with a callback run on a worker when the outcome arrives (or at once, with
    /// `Err(Timeout)`, if the request could not be sent at all, as OxenMQ does).
    pub fn request_then(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: &str,
        data: Vec<Bytes>,
        opts: &RequestOptions,
        then: impl FnOnce(&mut Ctx, &Result<Vec<Bytes>, RequestError>) + 'static,
    ) -> Result<RequestId, SendError> {
        self.request_inner(
            n,
            to,
            Bytes::copy_from_slice(command.as_bytes()),
            data,
            opts,
            Some(Box::new(then)),
        )
    }

    fn request_inner(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: Bytes,
        data: Vec<Bytes>,
        opts: &RequestOptions,
        then: Option<ReplyFn>,
    ) -> Result<RequestId, SendError> {
        if let ConnectionId::Sn(pk) = to {
            let ka = opts
                .send
                .keep_alive
                .unwrap_or_else(|| self.nodes[n].node.config().send_keep_alive);
            self.note_activity(n, *pk, ka);
        }
        let now = self.now;
        let r = self.nodes[n]
            .node
            .request(now, to, command.clone(), data.clone(), opts);
        self.record(
            &format!("n{n}"),
            format!("app request {to:?} {command:?} {} -> {r:?}", parts(&data)),
        );
        match &r {
            Ok(id) => {
                self.nodes[n].requests.insert(
                    *id,
                    RequestRecord {
                        to: to.clone(),
                        command,
                        sent_at: now,
                        outcomes: Vec::new(),
                    },
                );
                if let Some(f) = then {
                    self.nodes[n].reply_fns.insert(*id, f);
                }
            }
            Err(e) => {
                self.nodes[n].send_errors.push((now, to.clone(), e.clone()));
                if let Some(f) = then {
                    self.queue.push(
                        now,
                        Ev::Later {
                            node: n,
                            f: Box::new(move |ctx| f(ctx, &Err(RequestError::Timeout))),
                        },
                    );
                }
            }
        }
        self.drain(n);
        r
    }

    /// `set_active_sns` on node `n`.
    pub fn set_active_sns(&mut self, n: usize, sns: BTreeSet<PublicKey>) {
        self.record(
            &format!("n{n}"),
            format!("app set_active_sns ({} keys)", sns.len()),
        );
        self.with_node(n, |node, now| node.set_active_sns(now, sns));
    }

    /// `update_active_sns` on node `n`.
    pub fn update_active_sns(
        &mut self,
        n: usize,
        added: &BTreeSet<PublicKey>,
        removed: &BTreeSet<PublicKey>,
    ) {
        self.record(
            &format!("n{n}"),
            format!("app update_active_sns +{} -{}", added.len(), removed.len()),
        );
        self.with_node(n, |node, now| node.update_active_sns(now, added, removed));
    }

    /// Sets the same active SN set (the given nodes' keys) on every node.
    pub fn set_active_sns_everywhere(&mut self, sn_nodes: &[usize]) {
        let set: BTreeSet<PublicKey> = sn_nodes.iter().map(|&i| self.nodes[i].pubkey).collect();
        for n in 0..self.nodes.len() {
            self.set_active_sns(n, set.clone());
        }
    }

    /// `shutdown` on node `n`.
    pub fn shutdown(&mut self, n: usize) {
        self.record(&format!("n{n}"), "app shutdown".to_string());
        self.with_node(n, |node, now| node.shutdown(now));
    }

    /// Runs `f` at time `t` (or now, if `t` has passed).
    pub fn at(&mut self, t: Instant, f: impl FnOnce(&mut Self) + 'static) {
        let t = t.max(self.now);
        self.queue.push(t, Ev::Call(Box::new(f)));
    }

    // -----------------------------------------------------------------------------------------
    // network control

    /// Sets the latency between two nodes.
    pub fn set_link(&mut self, a: usize, b: usize, link: LinkConfig) {
        self.net.set_link(Host::Node(a), Host::Node(b), link);
    }

    /// Sets the default latency of every link.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.net.config.link = link;
    }

    /// Changes how transmits are cut into reads (affects later transmits).
    pub fn set_chunking(&mut self, c: Chunking) {
        self.record("net", format!("chunking {c:?}"));
        self.net.config.chunking = c;
    }

    /// Makes node `n`'s listeners refuse every connection (or accept again).
    pub fn set_refusing(&mut self, n: usize, refusing: bool) {
        self.record("net", format!("n{n} refusing={refusing}"));
        self.net.set_refusing(n, refusing);
    }

    /// Partitions the nodes `a` from the nodes `b`: new connects between them hang and fail,
    /// existing connections freeze or are reset. Returns how many connections were reset.
    pub fn partition(&mut self, a: &[usize], b: &[usize], mode: PartitionMode) -> usize {
        self.record("net", format!("partition {a:?} | {b:?} {mode:?}"));
        let now = self.now;
        self.net.partition(
            now,
            &mut self.queue,
            a.iter().copied().collect(),
            b.iter().copied().collect(),
            mode,
        )
    }

    /// Removes every partition; frozen bytes flow again.
    pub fn heal(&mut self) {
        self.record("net", "heal".to_string());
        let now = self.now;
        self.net.heal(now, &mut self.rng, &mut self.queue);
    }

    /// Resets every connection between nodes `a` and `b`; returns how many.
    pub fn reset_between(&mut self, a: usize, b: usize) -> usize {
        let now = self.now;
        let pipes: Vec<u64> = self
            .net
            .open_pipes()
            .into_iter()
            .filter(|(_, x, y)| {
                let (hx, hy) = (x.host(), y.host());
                (hx == Host::Node(a) && hy == Host::Node(b))
                    || (hx == Host::Node(b) && hy == Host::Node(a))
            })
            .map(|(p, _, _)| p)
            .collect();
        self.record(
            "net",
            format!("reset n{a}<->n{b}: {} connections", pipes.len()),
        );
        for p in &pipes {
            self.net
                .reset_pipe(now, &mut self.queue, *p, "connection reset by peer");
        }
        pipes.len()
    }

    /// Resets the connection that `end` belongs to.
    pub fn reset_end(&mut self, end: End) -> bool {
        self.record("net", format!("reset {end:?}"));
        let now = self.now;
        self.net.reset_end(now, &mut self.queue, end)
    }

    /// Resets only `end`'s side of its connection: the peer keeps a half-open connection that
    /// silently loses what it sends (until it notices on its own, e.g. by heartbeat).
    pub fn reset_one_side(&mut self, end: End) -> bool {
        self.record("net", format!("half-open reset {end:?}"));
        let now = self.now;
        self.net.reset_one_side(now, &mut self.queue, end)
    }

    /// The connections of node `n` (its ends), as `(our end, peer end)`.
    #[must_use]
    pub fn connections_of(&self, n: usize) -> Vec<(End, End)> {
        self.open_connections()
            .into_iter()
            .filter_map(|(a, b)| match (a, b) {
                (End::Node(x, _), _) if x == n => Some((a, b)),
                (_, End::Node(y, _)) if y == n => Some((b, a)),
                _ => None,
            })
            .collect()
    }

    /// Every open connection as `(dialer, acceptor)`.
    #[must_use]
    pub fn open_connections(&self) -> Vec<(End, End)> {
        self.net
            .open_pipes()
            .into_iter()
            .map(|(_, a, b)| (a, b))
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // taps (raw peers)

    /// Opens a byte tap to `addr`; returns the tap's index.
    pub fn tap_dial(&mut self, addr: &Address) -> usize {
        self.tap_dial_with(addr, None)
    }

    /// Opens a raw ZMTP DEALER to `addr` (NULL, or CURVE with a fresh client key if the address
    /// carries a pubkey) with an empty routing id and no heartbeats.
    pub fn raw_dealer(&mut self, addr: &Address) -> usize {
        let mechanism = match addr.pubkey() {
            Some(server_key) => MechanismConfig::CurveClient {
                keypair: Keypair::generate(&mut self.rng),
                server_key: *server_key,
            },
            None => MechanismConfig::Null,
        };
        self.tap_dial_with(
            addr,
            Some(SessionConfig::new(SocketType::Dealer, mechanism)),
        )
    }

    /// Opens a tap to `addr` with an optional ZMTP session.
    pub fn tap_dial_with(&mut self, addr: &Address, session: Option<SessionConfig>) -> usize {
        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        self.taps.push(Tap::new(rng, session));
        let t = self.taps.len() - 1;
        self.record(&format!("tap{t}"), format!("dial {}", addr.zmq_address()));
        let now = self.now;
        self.net.dial(
            now,
            &mut self.rng,
            &mut self.queue,
            End::Tap(t),
            &addr.zmq_address(),
        );
        t
    }

    /// Listens on `addr` with taps (an optional ZMTP session for each accepted connection).
    pub fn tap_listen(&mut self, addr: &Address, session: Option<SessionConfig>) -> usize {
        let l = self.tap_listeners.len();
        let zmq = addr.zmq_address();
        assert!(
            self.net.bind(zmq.clone(), ListenTarget::Tap(l)),
            "address {zmq} already bound"
        );
        self.tap_listeners.push(TapListener {
            addr: zmq,
            accepted: Vec::new(),
            session_config: session,
        });
        l
    }

    /// Tap `t`.
    #[must_use]
    pub fn tap(&self, t: usize) -> &Tap {
        &self.taps[t]
    }

    /// Tap `t`, mutably.
    pub fn tap_mut(&mut self, t: usize) -> &mut Tap {
        &mut self.taps[t]
    }

    /// Tap listener `l`.
    #[must_use]
    pub fn tap_listener(&self, l: usize) -> &TapListener {
        &self.tap_listeners[l]
    }

    /// Writes raw bytes on tap `t` (queued until it is connected).
    pub fn tap_write(&mut self, t: usize, data: &[u8]) {
        let data = Bytes::copy_from_slice(data);
        self.record(&format!("tap{t}"), format!("write {}", show_bytes(&data)));
        if self.net.is_connected(End::Tap(t)) {
            let now = self.now;
            self.net
                .transmit(now, &mut self.rng, &mut self.queue, End::Tap(t), data);
        } else {
            self.taps[t].pending_bytes.push(data);
        }
    }

    /// Sends a multipart message on tap `t`'s session.
    pub fn raw_send(&mut self, t: usize, frames: Vec<Bytes>) {
        self.record(&format!("tap{t}"), format!("send {}", parts(&frames)));
        let now = self.now;
        match self.taps[t].session.as_mut() {
            Some(s) => {
                if let Err(e) = s.send(now, frames) {
                    self.record(&format!("tap{t}"), format!("send failed: {e}"));
                }
                self.flush_tap(t);
            }
            None => self.taps[t].pending_frames.push(frames),
        }
    }

    /// Sends a message whose frames are given as byte strings.
    pub fn raw_send_strs(&mut self, t: usize, frames: &[&[u8]]) {
        self.raw_send(
            t,
            frames.iter().map(|f| Bytes::copy_from_slice(f)).collect(),
        );
    }

    /// Takes the messages tap `t`'s session decoded so far.
    pub fn raw_take(&mut self, t: usize) -> Vec<Vec<Bytes>> {
        self.taps[t].take_messages()
    }

    /// Closes tap `t` for writing (FIN after everything it wrote); it still reads until the
    /// peer's EOF.
    pub fn tap_close(&mut self, t: usize) {
        self.record(&format!("tap{t}"), "close".to_string());
        self.taps[t].closed = true;
        let now = self.now;
        self.net
            .close(now, &mut self.rng, &mut self.queue, End::Tap(t), true);
    }

    // -----------------------------------------------------------------------------------------
    // time

    /// The next instant something happens, if anything will.
    #[must_use]
    pub fn next_time(&self) -> Option<Instant> {
        let mut t = self.queue.next_time();
        for n in &self.nodes {
            t = lokimq_core::time::earliest(t, n.timeout);
        }
        for tap in &self.taps {
            t = lokimq_core::time::earliest(
                t,
                tap.session.as_ref().and_then(Session::poll_timeout),
            );
        }
        t.map(|t| t.max(self.now))
    }

    /// Re-reads every node's `poll_timeout()` (needed only after changing a node directly
    /// through [`Sim::node_mut`] instead of [`Sim::with_node`]).
    pub fn refresh(&mut self) {
        for n in &mut self.nodes {
            n.timeout = n.node.poll_timeout();
        }
        self.dirty.extend(0..self.nodes.len());
    }

    /// Takes one step; false if nothing will ever happen again.
    pub fn step(&mut self) -> bool {
        self.refresh();
        self.step_inner()
    }

    fn step_inner(&mut self) -> bool {
        let Some(t) = self.next_time() else {
            return false;
        };
        self.now = t;
        self.steps += 1;
        if self.queue.next_time().is_some_and(|e| e <= t) {
            let (_, ev) = self.queue.pop().expect("peeked above");
            self.process(ev);
        } else {
            self.fire_timeouts();
        }
        if self.check_every_step {
            self.check_dirty();
        }
        true
    }

    /// Runs until no event is queued (network quiet, no job running, no scripted work left),
    /// firing node timeouts that fall before the next event. Node timers beyond that (heartbeats,
    /// idle expiry, request timeouts) are left pending: use [`Sim::run_until`] to reach them.
    pub fn run_until_idle(&mut self) {
        self.refresh();
        let budget = self.steps + self.max_steps;
        while self.queue.len() > 0 {
            assert!(
                self.steps < budget,
                "simulation did not go idle within {} steps (now {:?})",
                self.max_steps,
                self.now
            );
            self.step_inner();
        }
    }

    /// Runs everything due up to and including `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        self.refresh();
        let budget = self.steps + self.max_steps;
        while self.next_time().is_some_and(|n| n <= t) {
            assert!(
                self.steps < budget,
                "simulation did not reach {t:?} within {} steps (now {:?})",
                self.max_steps,
                self.now
            );
            self.step_inner();
        }
        self.now = self.now.max(t);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    fn fire_timeouts(&mut self) {
        let now = self.now;
        for n in 0..self.nodes.len() {
            if self.nodes[n].timeout.is_some_and(|t| t <= now) {
                self.input(n, Input::Timeout);
                if let Some(t) = self.nodes[n].node.poll_timeout().filter(|t| *t <= now) {
                    self.fail(&format!(
                        "core bug: node {n}: poll_timeout() is {t:?} <= now after Input::Timeout"
                    ));
                }
            }
        }
        for t in 0..self.taps.len() {
            let due = self.taps[t]
                .session
                .as_ref()
                .and_then(Session::poll_timeout)
                .is_some_and(|d| d <= now);
            if due {
                let tap = &mut self.taps[t];
                if let Some(s) = tap.session.as_mut() {
                    s.handle_timeout(now, &mut tap.rng);
                }
                self.flush_tap(t);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // event processing

    fn process(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Dial { pipe } => {
                let Some(target) = self
                    .net
                    .syn_arrived(now, &mut self.rng, &mut self.queue, pipe)
                else {
                    return;
                };
                let acceptor = match target {
                    ListenTarget::Node(m, l) => {
                        let remote = self.net.config.remote_ip.clone();
                        let r = self.nodes[m].node.accept(now, l, &remote);
                        self.record(
                            &format!("n{m}"),
                            format!("> accept {l:?} from {remote} -> {r:?}"),
                        );
                        match r {
                            Ok(c) => {
                                self.nodes[m].open_conns.insert(c);
                                End::Node(m, c)
                            }
                            Err(e) => {
                                self.queue.push(
                                    now,
                                    Ev::DialFailed {
                                        pipe,
                                        cause: lokimq_core::node::DisconnectCause::ConnectFailed(
                                            format!("Connection refused ({e})"),
                                        ),
                                    },
                                );
                                return;
                            }
                        }
                    }
                    ListenTarget::Tap(l) => {
                        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
                        let cfg = self.tap_listeners[l].session_config.clone();
                        self.taps.push(Tap::new(rng, cfg));
                        let t = self.taps.len() - 1;
                        self.taps[t].listener = Some(l);
                        self.tap_listeners[l].accepted.push(t);
                        End::Tap(t)
                    }
                };
                let dialer = self.net.accepted(pipe, acceptor);
                match acceptor {
                    End::Node(m, _) => self.drain(m),
                    End::Tap(t) => self.tap_connected(t),
                }
                match dialer {
                    Some(End::Node(n, conn)) => self.input(n, Input::Connected { conn }),
                    Some(End::Tap(t)) => self.tap_connected(t),
                    None => {}
                }
            }
            Ev::DialFailed { pipe, cause } => match self.net.dial_failed(pipe) {
                Some(End::Node(n, conn)) if self.nodes[n].open_conns.remove(&conn) => {
                    self.input(n, Input::Disconnected { conn, cause });
                }
                Some(End::Tap(t)) => {
                    self.record(&format!("tap{t}"), format!("dial failed: {cause}"));
                    self.taps[t].failed = Some((now, cause));
                }
                Some(End::Node(..)) | None => {}
            },
            Ev::Deliver { pipe, dir, chunk } => match self.net.take(now, pipe, dir, chunk) {
                Some(Delivery::Data(End::Node(n, conn), data)) => {
                    self.input(n, Input::Received { conn, data });
                }
                Some(Delivery::Data(End::Tap(t), data)) => self.tap_receive(t, &data),
                Some(Delivery::Fin(End::Node(n, conn))) => {
                    if self.nodes[n].open_conns.remove(&conn) {
                        self.input(
                            n,
                            Input::Disconnected {
                                conn,
                                cause: lokimq_core::node::DisconnectCause::Eof,
                            },
                        );
                    }
                    // The driver drops a socket that reached EOF: the peer sees our FIN too.
                    self.net.close(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        false,
                    );
                }
                Some(Delivery::Fin(End::Tap(t))) => {
                    self.record(&format!("tap{t}"), "eof".to_string());
                    self.taps[t].eof_at = Some(now);
                    // EOF: the tap closes (or finishes closing) its end.
                    self.taps[t].closed = true;
                    self.net
                        .close(now, &mut self.rng, &mut self.queue, End::Tap(t), false);
                }
                None => {}
            },
            Ev::Reset { end, cause } => match end {
                End::Node(n, conn) => {
                    if self.nodes[n].open_conns.remove(&conn) {
                        self.input(n, Input::Disconnected { conn, cause });
                    }
                }
                End::Tap(t) => {
                    self.record(&format!("tap{t}"), format!("reset: {cause}"));
                    self.taps[t].failed = Some((now, cause));
                    self.taps[t].closed = true;
                }
            },
            Ev::JobDone { node, worker } => self.finish_job(node, worker),
            Ev::Later { node, f } => {
                let mut ctx = Ctx::new(now, node, self.nodes[node].pubkey);
                f(&mut ctx);
                for a in ctx.actions {
                    self.apply(node, a);
                }
            }
            Ev::Call(f) => f(self),
        }
    }

    fn tap_connected(&mut self, t: usize) {
        let now = self.now;
        self.record(&format!("tap{t}"), "connected".to_string());
        self.taps[t].connected_at = Some(now);
        if let Some(cfg) = self.taps[t].session_config.clone() {
            let tap = &mut self.taps[t];
            match Session::new(cfg, now, &mut tap.rng) {
                Ok(mut s) => {
                    for frames in tap.pending_frames.drain(..) {
                        // Queued until the handshake completes; the bound is libzmq's HWM.
                        let _ = s.send(now, frames);
                    }
                    tap.session = Some(s);
                }
                Err(e) => self.fail(&format!("tap {t}: bad session config: {e}")),
            }
        }
        let pending = std::mem::take(&mut self.taps[t].pending_bytes);
        for data in pending {
            self.net
                .transmit(now, &mut self.rng, &mut self.queue, End::Tap(t), data);
        }
        self.flush_tap(t);
    }

    fn tap_receive(&mut self, t: usize, data: &[u8]) {
        let now = self.now;
        self.record(&format!("tap{t}"), format!("> {}", show_bytes(data)));
        let tap = &mut self.taps[t];
        tap.received.extend_from_slice(data);
        if let Some(s) = tap.session.as_mut() {
            s.handle_bytes(now, data, &mut tap.rng);
        }
        self.flush_tap(t);
    }

    fn flush_tap(&mut self, t: usize) {
        let now = self.now;
        loop {
            let Some(s) = self.taps[t].session.as_mut() else {
                return;
            };
            if let Some(data) = s.poll_transmit() {
                self.net
                    .transmit(now, &mut self.rng, &mut self.queue, End::Tap(t), data);
                continue;
            }
            let Some(ev) = s.poll_event() else {
                return;
            };
            match ev {
                SessionEvent::Message(m) => {
                    self.record(&format!("tap{t}"), format!("message {}", parts(&m)));
                    self.taps[t].messages.push(m);
                }
                SessionEvent::Ready => self.taps[t].ready_at = Some(now),
                SessionEvent::Closed(e) => {
                    self.record(&format!("tap{t}"), format!("session closed: {e}"));
                    self.taps[t].session_closed = Some(e);
                }
                other => self.record(&format!("tap{t}"), format!("session event {other:?}")),
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // node driving

    /// Feeds an input to node `n` and drains it.
    fn input(&mut self, n: usize, input: Input) {
        self.handle_raw(n, input);
        self.drain(n);
    }

    fn handle_raw(&mut self, n: usize, input: Input) {
        let now = self.now;
        let text = match &input {
            Input::Received { conn, data } => format!("Received {conn:?} {}", show_bytes(data)),
            other => format!("{other:?}"),
        };
        self.record(&format!("n{n}"), format!("> {text}"));
        self.nodes[n].node.handle(now, input);
    }

    /// Drains node `n`'s outputs, acting on each.
    fn drain(&mut self, n: usize) {
        let now = self.now;
        let mut count = 0u64;
        while let Some(out) = self.nodes[n].node.poll_output() {
            count += 1;
            if count > 10_000_000 {
                self.fail(&format!(
                    "node {n} produced more than 10^7 outputs in one drain"
                ));
            }
            let text = match &out {
                Output::Transmit { conn, data } => {
                    format!("Transmit {conn:?} {}", show_bytes(data))
                }
                other => format!("{other:?}"),
            };
            self.record(&format!("n{n}"), format!("< {text}"));
            match out {
                Output::Transmit { conn, data } => {
                    self.net.transmit(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        data,
                    );
                }
                Output::Connect { conn, addr } => {
                    self.nodes[n].open_conns.insert(conn);
                    self.nodes[n].dials.push((now, conn, addr.clone()));
                    self.net.dial(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        &addr.zmq_address(),
                    );
                }
                Output::Close { conn, linger } => {
                    self.nodes[n].open_conns.remove(&conn);
                    self.nodes[n].closes.push((now, conn, linger));
                    self.net.close(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        false,
                    );
                }
                Output::Listen { listener, addr } => {
                    self.nodes[n].listeners.insert(listener, addr.clone());
                    if !self
                        .net
                        .bind(addr.zmq_address(), ListenTarget::Node(n, listener))
                    {
                        self.handle_raw(
                            n,
                            Input::ListenFailed {
                                listener,
                                reason: "Address already in use".to_string(),
                            },
                        );
                    }
                }
                Output::RunJob { worker, job } => self.run_job(n, worker, job),
                Output::StopWorker { worker } => {
                    if self.nodes[n].busy.contains_key(&worker) {
                        self.fail(&format!(
                            "core bug: node {n}: StopWorker for busy {worker:?}"
                        ));
                    }
                    self.nodes[n].stopped_workers.push((now, worker));
                }
                Output::Event(e) => self.on_event(n, e),
                other => {
                    let text = format!("{other:?}");
                    self.nodes[n].events.push((now, text));
                }
            }
        }
        self.nodes[n].timeout = self.nodes[n].node.poll_timeout();
        self.dirty.insert(n);
    }

    fn on_event(&mut self, n: usize, e: Event) {
        let now = self.now;
        match e {
            Event::AuthRequest {
                conn,
                listener,
                remote,
                pubkey,
                service_node,
            } => {
                let level = match self.nodes[n].allow.get_mut(&listener) {
                    Some(f) => f(&remote, pubkey.as_ref(), service_node),
                    None => AuthLevel::None,
                };
                self.nodes[n].auth_requests.push(AuthRecord {
                    at: now,
                    conn,
                    listener,
                    remote,
                    pubkey,
                    service_node,
                    level,
                });
                self.handle_raw(n, Input::AuthDecision { conn, level });
            }
            Event::LookupSn { pubkey } => {
                self.nodes[n].lookups.push((now, pubkey));
                let address = self.nodes[n].address_book.get(&pubkey).cloned();
                self.handle_raw(n, Input::SnAddress { pubkey, address });
            }
            Event::RunInDriver(d) => self.nodes[n].in_driver.push((now, d)),
            Event::BatchDone { batch } => self.nodes[n].batch_done.push((now, batch)),
            Event::TimerReleased { timer } => self.nodes[n].timer_released.push((now, timer)),
            Event::Dropped { category } => self.nodes[n].dropped.push((now, category)),
            Event::Stopped => {
                if self.nodes[n].stopped.is_some() {
                    self.fail(&format!("core bug: node {n}: Event::Stopped twice"));
                }
                self.nodes[n].stopped = Some(now);
                // The driver frees everything, listening sockets included.
                self.net.unbind_node(n);
            }
            other => {
                let text = format!("{other:?}");
                self.nodes[n].events.push((now, text));
            }
        }
    }

    fn run_job(&mut self, n: usize, worker: WorkerId, job: Job) {
        let now = self.now;
        if self.nodes[n].busy.contains_key(&worker) {
            self.fail(&format!("core bug: node {n}: RunJob on busy {worker:?}"));
        }
        if self.nodes[n].stopped.is_some() {
            self.fail(&format!("core bug: node {n}: RunJob after Event::Stopped"));
        }
        let mut ctx = Ctx::new(now, n, self.nodes[n].pubkey);
        let times = self.nodes[n].job_times.clone();
        let (kind, policy) = match job {
            Job::Command { command, message } => {
                let (name, category) = {
                    let c = self.nodes[n].node.registry().command(command);
                    (c.full_name().to_string(), c.category())
                };
                if let ConnectionId::Sn(pk) = &message.conn {
                    self.note_activity(n, *pk, Duration::ZERO);
                }
                if let Some(mut h) = self.nodes[n].handlers.remove(&command) {
                    h(&mut ctx, &message);
                    self.nodes[n].handlers.insert(command, h);
                }
                let policy = times
                    .per_command
                    .get(&name)
                    .copied()
                    .unwrap_or(times.command);
                let kind = JobKind::Command {
                    name: name.clone(),
                    category,
                    conn: message.conn.clone(),
                    data: message.data.clone(),
                };
                self.nodes[n].commands.push((now, name, message));
                (kind, policy)
            }
            Job::Reply { request, result } => {
                match self.nodes[n].requests.get_mut(&request) {
                    Some(r) => {
                        r.outcomes.push((now, result.clone()));
                        if r.outcomes.len() > 1 {
                            let msg = format!(
                                "core bug: node {n}: request {request:?} got a second outcome: {:?}",
                                r.outcomes
                            );
                            self.fail(&msg);
                        }
                    }
                    None => {
                        self.nodes[n].stray_replies.push((now, request));
                        self.fail(&format!(
                            "core bug: node {n}: reply job for unknown request {request:?}"
                        ));
                    }
                }
                if let Some(f) = self.nodes[n].reply_fns.remove(&request) {
                    f(&mut ctx, &result);
                }
                (JobKind::Reply(request), times.reply)
            }
            Job::Connected { conn } => {
                self.nodes[n].connected.push((now, conn.clone()));
                if let Some(mut f) = self.nodes[n].on_connect.take() {
                    f(&mut ctx, &conn);
                    self.nodes[n].on_connect = Some(f);
                }
                (JobKind::Connected(conn), times.other)
            }
            Job::ConnectFailed { conn, reason } => {
                self.nodes[n]
                    .connect_failed
                    .push((now, conn.clone(), reason));
                (JobKind::ConnectFailed(conn), times.other)
            }
            Job::BatchItem { batch, index } => (JobKind::BatchItem(batch, index), times.other),
            Job::Completion { batch } => (JobKind::Completion(batch), times.other),
            Job::Timer { timer } => (JobKind::Timer(timer), times.other),
            Job::Task { category, task } => (JobKind::Task(category, task), times.other),
            Job::Job { job } => (JobKind::Job(job), times.other),
            other => self.fail(&format!("node {n}: unknown job kind {other:?}")),
        };
        let d = ctx.duration.unwrap_or_else(|| policy.sample(&mut self.rng));
        let record = self.nodes[n].jobs.len();
        self.nodes[n].jobs.push(JobRecord {
            worker,
            kind,
            started: now,
            finished: None,
        });
        self.nodes[n].busy.insert(
            worker,
            Busy {
                record,
                actions: ctx.actions,
            },
        );
        self.queue.push(now + d, Ev::JobDone { node: n, worker });
    }

    fn finish_job(&mut self, n: usize, worker: WorkerId) {
        let now = self.now;
        let Some(busy) = self.nodes[n].busy.remove(&worker) else {
            self.fail(&format!("harness bug: node {n}: {worker:?} finished twice"));
        };
        self.nodes[n].jobs[busy.record].finished = Some(now);
        for a in busy.actions {
            self.apply(n, a);
        }
        self.input(n, Input::JobFinished { worker });
    }

    /// Applies a scripted action on node `n` now.
    pub fn apply(&mut self, n: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Reply { to, data } => {
                if let ConnectionId::Sn(pk) = to.conn() {
                    let ka = self.nodes[n].node.config().send_keep_alive;
                    self.note_activity(n, *pk, ka);
                }
                self.record(
                    &format!("n{n}"),
                    format!("app reply {:?} {}", to.conn(), parts(&data)),
                );
                let r = self.nodes[n].node.reply(now, &to, data);
                if let Err(e) = r {
                    self.nodes[n].send_errors.push((now, to.conn().clone(), e));
                }
                self.drain(n);
            }
            Action::SendBack { to, command, data } => {
                if let ConnectionId::Sn(pk) = to.conn() {
                    let ka = self.nodes[n].node.config().send_keep_alive;
                    self.note_activity(n, *pk, ka);
                }
                self.record(
                    &format!("n{n}"),
                    format!("app send_back {:?} {command:?} {}", to.conn(), parts(&data)),
                );
                let r = self.nodes[n].node.send_back(now, &to, command, data);
                if let Err(e) = r {
                    self.nodes[n].send_errors.push((now, to.conn().clone(), e));
                }
                self.drain(n);
            }
            Action::Send {
                to,
                command,
                data,
                opts,
            } => {
                // Refusals are recorded in `send_errors`.
                let _ = self.send_bytes(n, &to, command, data, &opts);
            }
            Action::Request {
                to,
                command,
                data,
                opts,
                then,
            } => {
                // Refusals are recorded in `send_errors` (and `then` runs with TIMEOUT).
                let _ = self.request_inner(n, &to, command, data, &opts, then);
            }
            Action::Node(f) => {
                self.record(&format!("n{n}"), "app (node closure)".to_string());
                f(&mut self.nodes[n].node, now);
                self.drain(n);
            }
            Action::Later { delay, f } => self.queue.push(now + delay, Ev::Later { node: n, f }),
        }
    }

    // -----------------------------------------------------------------------------------------
    // invariants

    fn note_activity(&mut self, n: usize, pk: PublicKey, keep_alive: Duration) {
        let now = self.now;
        let a = self.activity.entry((n, pk)).or_insert(Activity {
            last: now,
            keep_alive,
        });
        a.last = a.last.max(now);
        a.keep_alive = a.keep_alive.max(keep_alive);
    }

    /// Checks every invariant now, on every node; panics (printing the seed and log tail) on a
    /// violation.
    pub fn check_invariants(&mut self) {
        self.refresh();
        self.idle_checked_at = None;
        self.check_dirty();
    }

    /// Checks the nodes touched since the last check (the others cannot have changed), and the
    /// idle-expiry invariant whenever time moved.
    fn check_dirty(&mut self) {
        let now = self.now;
        let dirty = std::mem::take(&mut self.dirty);
        for n in dirty {
            if let Some(out) = self.nodes[n].node.poll_output() {
                self.fail(&format!("node {n}: output left undrained: {out:?}"));
            }
            let sn = &self.nodes[n];
            let st = sn.node.stats();
            let mut problems = Vec::new();
            if st.connections != sn.open_conns.len() {
                problems.push(format!(
                    "stats().connections = {} but the driver has {} open: {:?}",
                    st.connections,
                    sn.open_conns.len(),
                    sn.open_conns
                ));
            }
            let s = &st.sched;
            if s.active > s.max_workers {
                problems.push(format!(
                    "active {} > max_workers {}",
                    s.active, s.max_workers
                ));
            }
            for (i, c) in s.categories.iter().enumerate() {
                if c.max_queue >= 0 && c.queued > c.max_queue as usize {
                    problems.push(format!(
                        "category {i}: queued {} > max_queue {}",
                        c.queued, c.max_queue
                    ));
                }
            }
            let general_busy = sn.busy.keys().filter(|w| w.0 < s.max_workers).count();
            let tagged_busy = sn.busy.len() - general_busy;
            if general_busy != usize::from(s.active) || tagged_busy != usize::from(s.tagged_busy) {
                problems.push(format!(
                    "driver has {general_busy} general + {tagged_busy} tagged jobs running, scheduler says {} + {}",
                    s.active, s.tagged_busy
                ));
            }
            if !problems.is_empty() {
                self.fail(&format!("node {n} at {now:?}: {}", problems.join("; ")));
            }
        }
        if self.check_idle_expiry && self.idle_checked_at != Some(now) {
            self.idle_checked_at = Some(now);
            for n in 0..self.nodes.len() {
                for m in 0..self.nodes.len() {
                    let pk = self.nodes[m].pubkey;
                    if !self.nodes[n].node.has_outgoing_sn(&pk) {
                        continue;
                    }
                    match self.activity.get(&(n, pk)) {
                        None => self.fail(&format!(
                            "node {n} has an outgoing SN connection to node {m} nobody asked for"
                        )),
                        Some(a) if now > a.last + a.keep_alive => self.fail(&format!(
                            "node {n}: outgoing SN connection to node {m} outlived its idle deadline \
                             (last possible activity {:?}, keep-alive {:?}, now {now:?})",
                            a.last, a.keep_alive
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// Asserts that every request made through the harness on a node that did not shut down
    /// has exactly one outcome.
    pub fn assert_requests_resolved(&self) {
        for (n, sn) in self.nodes.iter().enumerate() {
            if sn.node.stats().sched.max_workers == 0 || sn.stopped.is_some() {
                continue;
            }
            for (id, r) in &sn.requests {
                assert_eq!(
                    r.outcomes.len(),
                    1,
                    "seed {}: node {n}: request {id:?} ({:?} to {:?} at {:?}) has outcomes {:?}",
                    self.seed,
                    r.command,
                    r.to,
                    r.sent_at,
                    r.outcomes
                );
            }
        }
    }

    /// Number of events queued and bytes in flight (for tests that wait for quiet).
    #[must_use]
    pub fn pending(&self) -> (usize, usize) {
        (self.queue.len(), self.net.in_flight())
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("seed {}: {msg}", self.seed);
    }

    fn record(&mut self, who: &str, text: String) {
        let mut line = String::with_capacity(24 + text.len());
        let _ = write!(line, "{:?} {who} {text}", self.now);
        self.log.record(line);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "=== simulation failed: seed {} at {:?} after {} steps; last {} of {} log lines:",
                self.seed,
                self.now,
                self.steps,
                self.log.tail().count(),
                self.log.len()
            );
            for l in self.log.tail() {
                eprintln!("{l}");
            }
            eprintln!("=== end of log (seed {})", self.seed);
        }
    }
}

/// Frames as text for the log.
#[must_use]
pub fn parts(frames: &[Bytes]) -> String {
    let mut s = String::from("[");
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&show_bytes(f));
    }
    s.push(']');
    s
}

/// Bytes as text for the log: printable ASCII quoted, else hex (long values are cut, with a
/// hash of the whole).
#[must_use]
pub fn show_bytes(b: &[u8]) -> String {
    const MAX: usize = 48;
    let shown = &b[..b.len().min(MAX)];
    let mut s = if shown.iter().all(|c| (0x20..0x7f).contains(c)) {
        format!("{:?}", String::from_utf8_lossy(shown))
    } else {
        let mut h = String::with_capacity(shown.len() * 2 + 4);
        h.push_str("hex:");
        for c in shown {
            let _ = write!(h, "{c:02x}");
        }
        h
    };
    if b.len() > MAX {
        let _ = write!(s, "..({} bytes, fnv {:016x})", b.len(), log::fnv1a(b));
    }
    s
}

/// Turns string literals into frames.
#[must_use]
pub fn frames(parts: &[&str]) -> Vec<Bytes> {
    parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect()
}
