//! The node-level simulator: N bare [`Node`]s on one virtual clock and the same virtual
//! network as [`crate::Sim`], with scripted handlers instead of application closures.
//!
//! This is the simulator the project's own tests of `lokimq-core` use: they need what an
//! application never sees (every input and output of a node, the scheduler's counters, raw
//! ZMTP peers that send exact frames, idle-expiry bookkeeping). A handler here records
//! [`Action`]s in a [`Ctx`], applied when its job finishes. To test an application, use
//! [`crate::Sim`] instead: it runs the application's real `lokimq` builder and closures.
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

pub mod node;
pub mod script;
pub mod tap;

mod driver;
mod invariants;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{ListenerId, WorkerId};
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::node::{
    ConnectOptions, ConnectSnOptions, ConnectionId, Input, Node, NodeError, RequestError,
    RequestId, RequestOptions, SendError, SendOptions,
};
use lokimq_core::session::Session;
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub use self::node::{
    AllowFn, AuthRecord, DisconnectRecord, JobKind, JobRecord, NodeSpec, RequestRecord, SimNode,
};
pub use self::script::{Action, Ctx, Dur, Handler, JobTimes, ReplyFn};
pub use self::tap::{Tap, TapListener};
pub use crate::net::{Chunking, End, Host, LinkConfig, NetConfig, PartitionMode};
pub use crate::show::{parts, show_bytes};
pub use crate::trace::Log;

use self::script::LaterFn;
use crate::net::{Net, NetEv};

/// Default step budget of [`Sim::run_until_idle`] and [`Sim::run_until`].
pub const DEFAULT_MAX_STEPS: u64 = 2_000_000;

/// Something scheduled on the event queue.
pub(crate) enum Ev {
    /// Something the network does.
    Net(NetEv),
    /// A worker finishes its job.
    JobDone { node: usize, worker: WorkerId },
    /// Scripted work outside any worker.
    Later { node: usize, f: LaterFn },
    /// A test callback.
    Call(Box<dyn FnOnce(&mut Sim)>),
}

impl From<NetEv> for Ev {
    fn from(ev: NetEv) -> Self {
        Self::Net(ev)
    }
}

type Queue = crate::queue::Queue<Ev>;

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
        let l = l.unwrap_or_else(|e| self.fail(&format!("node {n} refused to listen: {e}")));
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
        let l = l.unwrap_or_else(|e| self.fail(&format!("node {n} refused to listen: {e}")));
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
        let l = l.unwrap_or_else(|e| self.fail(&format!("node {n} refused to listen: {e}")));
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

    /// Adds a server and a client (each built by `spec`), a plain listener on the server and
    /// the client's `connect_remote` to it; returns `(server, client, connection)`. Nothing has
    /// run yet.
    pub fn add_plain_pair(&mut self, spec: impl Fn() -> NodeSpec) -> (usize, usize, ConnectionId) {
        let server = self.add_node(spec());
        let client = self.add_node(spec());
        let (_, addr) = self.listen_plain(server);
        let conn = self.connect_remote(client, addr, &ConnectOptions::default());
        (server, client, conn)
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

    /// [`send`](Self::send) with the default options.
    pub fn send_default(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: &str,
        data: Vec<Bytes>,
    ) -> Result<(), SendError> {
        self.send(n, to, command, data, &SendOptions::default())
    }

    /// [`request`](Self::request) with the default options.
    pub fn request_default(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: &str,
        data: Vec<Bytes>,
    ) -> Result<RequestId, SendError> {
        self.request(n, to, command, data, &RequestOptions::default())
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

    pub(crate) fn step_inner(&mut self) -> bool {
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

    pub(crate) fn fire_timeouts(&mut self) {
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

    pub(crate) fn fail(&self, msg: &str) -> ! {
        panic!("seed {}: {msg}", self.seed);
    }
    pub(crate) fn record(&mut self, who: &str, text: String) {
        let mut line = String::with_capacity(24 + text.len());
        let _ = write!(line, "{:?} {who} {text}", self.now);
        self.log.record(line);
    }
    pub(crate) fn note_activity(&mut self, n: usize, pk: PublicKey, keep_alive: Duration) {
        let now = self.now;
        let a = self.activity.entry((n, pk)).or_insert(Activity {
            last: now,
            keep_alive,
        });
        a.last = a.last.max(now);
        a.keep_alive = a.keep_alive.max(keep_alive);
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

/// Turns string literals into frames.
#[must_use]
pub fn frames(parts: &[&str]) -> Vec<Bytes> {
    parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect()
}
