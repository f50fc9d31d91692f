//! [`Sim`]: application nodes on a virtual clock and a virtual network.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use lokimq::kit::{Host, NodeRng, POST_BUDGET};
use lokimq::{Builder, Handle};
use lokimq_core::address::Address;
use lokimq_core::ids::WorkerId;
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::node::{Config, ConnectionId, DisconnectCause, Input, Job, Stats};
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::check::{Invariant, RequestLedger};
use crate::io::{NodeIo, SimIo, World};
use crate::jobs::{JobInfo, JobKind, JobTimes};
use crate::net::{
    Chunking, Delivery, End, Host as NetHost, LinkConfig, ListenTarget, Net, NetConfig, NetEv,
    PartitionMode,
};
use crate::queue::Queue;
use crate::trace::Log;

/// A node of a [`Sim`], by the order it was added (`n0`, `n1`, …). It stays the same node
/// across [`crash`](Sim::crash) and [`restart`](Sim::restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    /// Its index: 0 for the first node added.
    #[must_use]
    pub fn index(self) -> usize {
        self.0
    }
}

/// A simulation's settings (see [`Sim::with_config`]).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The virtual network: default latency and jitter of every link, how bytes are cut into
    /// reads, how long a dial into a partition hangs.
    pub net: NetConfig,
    /// Each node's general worker count (`Config::general_workers`), set on its builder before
    /// the setup function runs. Fixed, so a run does not depend on the machine's core count.
    pub general_workers: u16,
    /// How long jobs take on every node (change one node's with [`Sim::set_job_times`]).
    pub jobs: JobTimes,
    /// How many trace lines a failure prints.
    pub trace_tail: usize,
    /// The most steps one `run_*` call may take before the simulation fails as stuck.
    pub max_steps: u64,
    /// How much virtual time [`Sim::run_until`] waits for its condition.
    pub run_until_limit: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            net: NetConfig::default(),
            general_workers: 4,
            jobs: JobTimes::default(),
            trace_tail: 60,
            max_steps: 5_000_000,
            run_until_limit: Duration::from_secs(600),
        }
    }
}

/// How a node dies in [`Sim::crash_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process dies; the machine's kernel resets its connections, so peers see a reset
    /// at once. What [`Sim::crash`] does.
    Process,
    /// The machine loses power: peers hear nothing. Their connections stay half-open, what
    /// they send is lost, until a heartbeat, a timeout or a failed write notices.
    PowerLoss,
}

/// A directory of service nodes' addresses for `sn_lookup`, shared by every node of a
/// simulation: each node's first CURVE listener is entered under its key when it starts (and
/// again when it restarts). Give a node `b.sn_lookup(sim.directory().lookup_fn())`.
///
/// ```
/// use lokimq_sim::Sim;
///
/// let mut sim = Sim::new(1);
/// let dir = sim.directory();
/// let sn = sim.add_node(|b| {
///     b.service_node(true)
///         .listen_curve("tcp://*:5000", |_, _, _| lokimq::AuthLevel::None)?;
///     Ok(())
/// });
/// assert_eq!(dir.lookup(&sim.pubkey(sn)), Some(sim.address(sn)));
/// ```
#[derive(Clone, Default)]
pub struct SnDirectory {
    inner: Arc<Mutex<BTreeMap<PublicKey, Address>>>,
}

impl fmt::Debug for SnDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map().iter()).finish()
    }
}

impl SnDirectory {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<PublicKey, Address>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The address listed for `pubkey`.
    #[must_use]
    pub fn lookup(&self, pubkey: &PublicKey) -> Option<Address> {
        self.map().get(pubkey).cloned()
    }

    /// Lists (or moves) `pubkey` at `addr`.
    pub fn insert(&self, pubkey: PublicKey, addr: Address) {
        self.map().insert(pubkey, addr);
    }

    /// Forgets `pubkey`: lookups for it fail (its messages are dropped and its requests fail
    /// at once, as OxenMQ does for an unknown service node).
    pub fn remove(&self, pubkey: &PublicKey) {
        self.map().remove(pubkey);
    }

    /// Every key listed, in order.
    #[must_use]
    pub fn keys(&self) -> Vec<PublicKey> {
        self.map().keys().copied().collect()
    }

    /// A lookup function for [`Builder::sn_lookup`].
    pub fn lookup_fn(&self) -> impl Fn(&PublicKey) -> Option<Address> + Send + Sync + 'static {
        let dir = self.clone();
        move |pk| dir.lookup(pk)
    }
}

/// What runs with a node's handle after it starts (see [`Sim::on_start`]).
type StartFn = Box<dyn FnMut(&Handle)>;

/// A node's setup function: fills a fresh builder (see [`Sim::add_node`]).
type Setup = Box<dyn FnMut(&mut Builder) -> Result<(), lokimq::Error>>;

struct SimNode {
    ip: String,
    pubkey: PublicKey,
    /// The keypair the builder gets before the setup runs.
    keypair: Keypair,
    setup: Setup,
    /// `None` while crashed.
    host: Option<Host>,
    handle: Handle,
    /// Incarnation: bumped by every restart, so a dead incarnation's jobs never run.
    life: u32,
    io: NodeIo,
    jobs: Option<JobTimes>,
    ledger: RequestLedger,
    shut_down: bool,
    /// Jobs handed out and not finished (stuck ones included).
    busy: usize,
    /// Runs with the handle after every start.
    on_start: Option<StartFn>,
}

/// Something scheduled on the event queue.
enum Ev {
    Net(NetEv),
    /// A job's virtual duration is over: run it now.
    Job {
        node: usize,
        life: u32,
        worker: WorkerId,
        job: Box<Job>,
    },
    Call(Box<dyn FnOnce(&mut Sim)>),
}

impl From<NetEv> for Ev {
    fn from(ev: NetEv) -> Self {
        Self::Net(ev)
    }
}

/// A deterministic simulation of application nodes: see the [crate documentation](crate).
pub struct Sim {
    seed: u64,
    config: SimConfig,
    world: World<Ev>,
    nodes: Vec<SimNode>,
    invariants: Vec<Invariant>,
    directory: SnDirectory,
    steps: u64,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.world.now)
            .field("nodes", &self.nodes.len())
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A simulation with the default settings ([`SimConfig::default`]).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, SimConfig::default())
    }

    /// A simulation with the given settings.
    #[must_use]
    pub fn with_config(seed: u64, config: SimConfig) -> Self {
        let mut log = Log::new(config.trace_tail);
        log.record(format!("seed {seed}"));
        Self {
            seed,
            world: World {
                now: Instant::ZERO,
                rng: ChaCha20Rng::seed_from_u64(seed),
                net: Net::new(config.net.clone()),
                queue: Queue::default(),
                log,
            },
            config,
            nodes: Vec::new(),
            invariants: Vec::new(),
            directory: SnDirectory::default(),
            steps: 0,
        }
    }

    // -----------------------------------------------------------------------------------------
    // reading

    /// The seed everything is drawn from.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual time (it starts at zero).
    #[must_use]
    pub fn now(&self) -> Instant {
        self.world.now
    }

    /// Virtual time since the start.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.world.now.saturating_duration_since(Instant::ZERO)
    }

    /// Steps taken so far (events processed and timer rounds fired).
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The trace: one line per thing that happened (bytes written, dials, jobs run, faults),
    /// hashed as it grows.
    #[must_use]
    pub fn trace(&self) -> &Log {
        &self.world.log
    }

    /// The trace, mutably (e.g. to [`Log::keep_all`] lines for diffing two runs).
    pub fn trace_mut(&mut self) -> &mut Log {
        &mut self.world.log
    }

    /// Adds a line of the test's own to the trace (it counts in the hash, and shows in a
    /// failure's tail): what the scenario did, or a checkpoint.
    pub fn note(&mut self, text: impl fmt::Display) {
        let text = text.to_string();
        self.world.record("test", &text);
    }

    /// The hash of the whole trace so far: equal for two runs of the same scenario with the
    /// same seed, which is what makes a failure replayable.
    #[must_use]
    pub fn trace_hash(&self) -> u64 {
        self.world.log.hash()
    }

    /// The simulation's RNG, for the test's own random choices (which node to fault, what to
    /// write): drawing from it keeps the whole run a function of the seed.
    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.world.rng
    }

    /// Every node, in the order added.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.nodes.len()).map(NodeId)
    }

    /// The node's handle: the very [`Handle`] your application code uses (send, request,
    /// `connect_remote`, `connect_sn`, jobs, batches, timers). Its calls take effect when the
    /// simulation next runs, at the virtual time it is at. After a [`crash`](Self::crash) it
    /// returns `Error::Stopped`; [`restart`](Self::restart) gives a new one.
    ///
    /// The thread that runs a simulation is its nodes' own thread, so the two handle calls
    /// that wait for the node, [`Handle::stats`] and [`Handle::is_connected`], refuse there
    /// with `Error::OnProxyThread` (as they do inside a handler); use [`Sim::stats`] and
    /// [`Sim::is_connected`].
    #[must_use]
    pub fn handle(&self, n: NodeId) -> Handle {
        self.nodes[n.0].handle.clone()
    }

    /// The node's public key (the same across restarts).
    #[must_use]
    pub fn pubkey(&self, n: NodeId) -> PublicKey {
        self.nodes[n.0].pubkey
    }

    /// The node's IP address on the virtual network (`10.0.0.1` for the first node).
    #[must_use]
    pub fn ip(&self, n: NodeId) -> &str {
        &self.nodes[n.0].ip
    }

    /// The addresses the node's listeners are bound to, as other nodes dial them
    /// (`tcp://10.0.0.2:5000`, with the node's key for CURVE listeners).
    #[must_use]
    pub fn addresses(&self, n: NodeId) -> Vec<Address> {
        self.nodes[n.0].handle.bound_addresses()
    }

    /// The node's first bound address.
    ///
    /// # Panics
    ///
    /// If it listens nowhere.
    #[must_use]
    pub fn address(&self, n: NodeId) -> Address {
        self.addresses(n)
            .into_iter()
            .next()
            .unwrap_or_else(|| self.fail(&format!("{n} listens nowhere")))
    }

    /// The shared service-node directory (see [`SnDirectory`]).
    #[must_use]
    pub fn directory(&self) -> SnDirectory {
        self.directory.clone()
    }

    /// True unless the node is crashed (a node that shut down is still up, and stopped).
    #[must_use]
    pub fn is_up(&self, n: NodeId) -> bool {
        self.nodes[n.0].host.is_some()
    }

    /// The node's counters (connections, pending requests, workers busy, queues), as
    /// [`Handle::stats`] would give them.
    ///
    /// # Panics
    ///
    /// If the node is crashed.
    #[must_use]
    pub fn stats(&self, n: NodeId) -> Stats {
        self.host(n).node().stats()
    }

    /// Whether the node's connection `conn` is up, as [`Handle::is_connected`] would say.
    ///
    /// # Panics
    ///
    /// If the node is crashed.
    #[must_use]
    pub fn is_connected(&self, n: NodeId, conn: &ConnectionId) -> bool {
        self.host(n).node().is_connected(conn)
    }

    /// The node's configuration (`None` while it is crashed).
    #[must_use]
    pub fn config_of(&self, n: NodeId) -> Option<&Config> {
        self.nodes[n.0].host.as_ref().map(|h| h.node().config())
    }

    /// The ledger of the requests the node's current incarnation made (see [`Invariant`]).
    #[must_use]
    pub fn requests(&self, n: NodeId) -> &RequestLedger {
        &self.nodes[n.0].ledger
    }

    /// Jobs the node has started and not finished (stuck ones included).
    #[must_use]
    pub fn busy_jobs(&self, n: NodeId) -> usize {
        self.nodes[n.0].busy
    }

    fn host(&self, n: NodeId) -> &Host {
        self.nodes[n.0]
            .host
            .as_ref()
            .unwrap_or_else(|| self.fail(&format!("{n} is crashed")))
    }

    // -----------------------------------------------------------------------------------------
    // building

    /// Adds a node: `setup` fills a fresh [`Builder`] exactly as your application fills the
    /// one it passes to `start()` (categories, commands and their handlers, timers, listeners,
    /// `sn_lookup`, active service nodes, config), and the node starts at the current virtual
    /// time. Before `setup` runs the builder already has the node's keypair (drawn from the
    /// seed) and [`SimConfig::general_workers`] workers; `setup` may replace either.
    ///
    /// Fill the builder it is given rather than replacing it (`*b = other_builder`): a builder
    /// without a keypair draws one from the operating system, which no seed replays.
    ///
    /// Listen on any port of `*`, `0.0.0.0`, `127.0.0.1` or the node's [`ip`](Self::ip); port
    /// 0 takes a free one. Other nodes dial the address in [`addresses`](Self::addresses).
    /// [`restart`](Self::restart) runs `setup` again.
    ///
    /// # Panics
    ///
    /// If `setup` fails, or the builder's configuration is refused.
    pub fn add_node(
        &mut self,
        setup: impl FnMut(&mut Builder) -> Result<(), lokimq::Error> + 'static,
    ) -> NodeId {
        let i = self.nodes.len();
        let n = NodeId(i);
        let keypair = Keypair::generate(&mut self.world.rng);
        let seq = i + 1;
        let ip = format!(
            "10.{}.{}.{}",
            (seq >> 16) & 255,
            (seq >> 8) & 255,
            seq & 255
        );
        let mut setup: Setup = Box::new(setup);
        let (host, handle) = self.build(n, &mut setup, &keypair);
        self.nodes.push(SimNode {
            ip,
            pubkey: *handle.pubkey(),
            keypair,
            setup,
            host: None,
            handle,
            life: 0,
            io: NodeIo::default(),
            jobs: None,
            ledger: RequestLedger::default(),
            shut_down: false,
            busy: 0,
            on_start: None,
        });
        self.start(n, host);
        n
    }

    /// Runs the node's setup function on a fresh builder and builds its host.
    fn build(&mut self, n: NodeId, setup: &mut Setup, keypair: &Keypair) -> (Host, Handle) {
        let mut b = Builder::new();
        b.keypair(keypair.clone());
        b.config_mut().general_workers = self.config.general_workers;
        if let Err(e) = setup(&mut b) {
            self.fail(&format!("{n}: setup failed: {e}"));
        }
        let rng = NodeRng::seed_from_u64(self.world.rng.next_u64());
        match b.into_host(rng, self.world.now, || Ok(())) {
            Ok(x) => x,
            Err(e) => self.fail(&format!("{n}: the builder was refused: {e}")),
        }
    }

    /// Starts a built host: binds its listeners, lists it in the directory.
    fn start(&mut self, n: NodeId, host: Host) {
        // Every node runs on this thread: a handle call that waits for its loop must refuse.
        host.claim_thread();
        let i = n.0;
        let node = &mut self.nodes[i];
        node.io = NodeIo {
            report_flushed: host.node().config().send_backlog_limit.is_some(),
            next_port: 40000,
            ..NodeIo::default()
        };
        node.host = Some(host);
        node.ledger.answered.clear();
        node.shut_down = false;
        node.busy = 0;
        let text = format!("up (life {}) ip {} key {}", node.life, node.ip, node.pubkey);
        self.world.record(&format!("{n}"), &text);
        self.with_host(i, |_, _| {});
        if let Some(mut f) = self.nodes[i].on_start.take() {
            f(&self.nodes[i].handle);
            self.nodes[i].on_start = Some(f);
        }
        // List its first CURVE listener for service-node lookups.
        let pk = self.pubkey(n);
        if let Some(a) = self.addresses(n).into_iter().find(Address::is_curve) {
            self.directory.insert(pk, a);
        }
        self.after_step();
    }

    /// Runs `f` with the node's handle now (if it is up) and after every restart: where the
    /// application gets the handle its timers and background work use, as a real one does
    /// right after `start()`.
    pub fn on_start(&mut self, n: NodeId, mut f: impl FnMut(&Handle) + 'static) {
        if self.nodes[n.0].host.is_some() {
            f(&self.nodes[n.0].handle);
        }
        self.nodes[n.0].on_start = Some(Box::new(f));
        self.after_step();
    }

    // -----------------------------------------------------------------------------------------
    // running

    /// Takes one step: the next event (bytes arriving, a dial, a job finishing, a scheduled
    /// call) or, if none is due first, the nodes' timers; then the calls handles posted, the
    /// request ledger, and every invariant. Returns false, without moving time, if nothing
    /// will ever happen again.
    pub fn step(&mut self) -> bool {
        // Calls made on handles since the last step happen now, before time moves.
        self.after_step();
        let Some(t) = self.next_time() else {
            return false;
        };
        self.step_at(t);
        true
    }

    /// Runs everything due in the next `d` of virtual time, then sets the clock to the end of
    /// it.
    ///
    /// # Panics
    ///
    /// If an invariant fails, or the run takes more than [`SimConfig::max_steps`] steps.
    pub fn run_for(&mut self, d: Duration) {
        self.after_step();
        let end = self.world.now + d;
        let budget = self.steps + self.config.max_steps;
        while let Some(t) = self.next_time().filter(|t| *t <= end) {
            if self.steps >= budget {
                self.fail(&format!(
                    "no progress: {} steps without reaching {end:?}",
                    self.config.max_steps
                ));
            }
            self.step_at(t);
        }
        if self.world.now < end {
            self.world.now = end;
            self.check_invariants();
        }
    }

    /// Runs until `done` holds (checked before every step), and returns the virtual time it
    /// took.
    ///
    /// # Panics
    ///
    /// If `done` still does not hold after [`SimConfig::run_until_limit`] of virtual time (or
    /// [`SimConfig::max_steps`] steps), or an invariant fails; the panic names the seed.
    pub fn run_until(&mut self, done: impl FnMut(&Self) -> bool) -> Duration {
        let start = self.world.now;
        let limit = self.config.run_until_limit;
        if !self.try_run_until(limit, done) {
            self.fail(&format!(
                "the condition did not hold within {limit:?} of virtual time (from {start:?})"
            ));
        }
        self.world.now.saturating_duration_since(start)
    }

    /// Runs until `done` holds or `limit` of virtual time has passed; returns whether it
    /// holds.
    ///
    /// # Panics
    ///
    /// If an invariant fails, or more than [`SimConfig::max_steps`] steps are taken.
    pub fn try_run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        self.after_step();
        let end = self.world.now + limit;
        let budget = self.steps + self.config.max_steps;
        loop {
            if done(self) {
                return true;
            }
            match self.next_time().filter(|t| *t <= end) {
                Some(t) => {
                    if self.steps >= budget {
                        self.fail(&format!(
                            "no progress: {} steps and the condition still does not hold",
                            self.config.max_steps
                        ));
                    }
                    self.step_at(t);
                }
                None => {
                    if self.world.now < end {
                        self.world.now = end;
                        self.check_invariants();
                    }
                    return done(self);
                }
            }
        }
    }

    /// Runs `f` on the simulation `delay` from now (in virtual time): a fault, a client's next
    /// request, a check.
    ///
    /// ```
    /// use lokimq_sim::{PartitionMode, Sim};
    /// use std::time::Duration;
    ///
    /// let mut sim = Sim::new(1);
    /// let a = sim.add_node(|_| Ok(()));
    /// let b = sim.add_node(|_| Ok(()));
    /// sim.at(Duration::from_millis(200), move |sim| {
    ///     sim.partition(&[a], &[b], PartitionMode::Freeze);
    /// });
    /// sim.at(Duration::from_secs(1), |sim| sim.heal());
    /// sim.run_for(Duration::from_secs(2));
    /// assert_eq!(sim.elapsed(), Duration::from_secs(2));
    /// ```
    pub fn at(&mut self, delay: Duration, f: impl FnOnce(&mut Self) + 'static) {
        let t = self.world.now + delay;
        self.world.queue.push(t, Ev::Call(Box::new(f)));
    }

    fn next_time(&self) -> Option<Instant> {
        let mut t = self.world.queue.next_time();
        for node in &self.nodes {
            if let Some(h) = &node.host {
                t = lokimq_core::time::earliest(t, h.poll_timeout());
            }
        }
        t.map(|t| t.max(self.world.now))
    }

    fn step_at(&mut self, t: Instant) {
        self.world.now = t;
        self.steps += 1;
        if self.world.queue.next_time().is_some_and(|e| e <= t) {
            let (_, ev) = self.world.queue.pop().expect("peeked above");
            self.process(ev);
        } else {
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .host
                    .as_ref()
                    .and_then(Host::poll_timeout)
                    .is_some_and(|d| d <= t);
                if due {
                    self.with_host(i, |host, _| host.timeout());
                }
            }
        }
        self.after_step();
    }

    /// Runs what handles posted (until no node has more), brings the ledgers up to date, and
    /// checks the invariants.
    fn after_step(&mut self) {
        // A call one node runs can post to another's handle: go round until a round ran
        // nothing new (bounded: each round is a full pass).
        for _ in 0..64 {
            let before = self.world.log.len();
            for i in 0..self.nodes.len() {
                if self.nodes[i].host.is_some() {
                    self.with_host(i, |host, io| while host.process_posts(io, POST_BUDGET) {});
                }
            }
            if self.world.log.len() == before {
                break;
            }
        }
        let now = self.world.now;
        for node in &mut self.nodes {
            if let Some(h) = &node.host {
                let holding = h.pending_replies();
                node.ledger.observe(now, &holding, node.shut_down);
            }
        }
        self.check_invariants();
    }

    /// Checks every invariant now.
    ///
    /// # Panics
    ///
    /// If one fails: the panic names it, the seed, and how to replay; the trace tail is
    /// printed.
    pub fn check_invariants(&mut self) {
        if self.invariants.is_empty() {
            return;
        }
        let mut invariants = std::mem::take(&mut self.invariants);
        let mut failure = None;
        for inv in &mut invariants {
            if let Err(why) = inv.check(self) {
                failure = Some(format!("invariant \"{}\" failed: {why}", inv.name()));
                break;
            }
        }
        self.invariants = invariants;
        if let Some(f) = failure {
            self.fail(&f);
        }
    }

    /// Adds an invariant, checked after every step from now on.
    pub fn add_invariant(&mut self, invariant: Invariant) {
        self.invariants.push(invariant);
    }

    /// Fails the simulation: panics with `msg`, the seed and how to replay it (the trace
    /// tail is printed as the panic unwinds).
    ///
    /// # Panics
    ///
    /// Always.
    pub fn fail(&self, msg: &str) -> ! {
        panic!(
            "seed {}: at {:?}: {msg} (replay with {}={})",
            self.seed,
            self.world.now,
            crate::SEED_VAR,
            self.seed
        );
    }

    // -----------------------------------------------------------------------------------------
    // driving one node

    /// Runs `f` on node `i`'s host (at the current time), then drains it and schedules the
    /// jobs it handed out.
    fn with_host(&mut self, i: usize, f: impl FnOnce(&mut Host, &mut SimIo<'_, Ev>)) {
        let now = self.world.now;
        let node = &mut self.nodes[i];
        let Some(host) = node.host.as_mut() else {
            return;
        };
        host.set_now(now);
        let mut io = SimIo {
            n: i,
            ip: &node.ip,
            world: &mut self.world,
            st: &mut node.io,
        };
        f(host, &mut io);
        host.drain(&mut io);
        self.schedule_jobs(i);
    }

    /// Gives every job node `i` handed out its virtual duration.
    fn schedule_jobs(&mut self, i: usize) {
        if self.nodes[i].io.jobs.is_empty() {
            return;
        }
        let jobs = std::mem::take(&mut self.nodes[i].io.jobs);
        for (worker, job) in jobs {
            let node = &self.nodes[i];
            let Some(host) = node.host.as_ref() else {
                return;
            };
            let times = node.jobs.as_ref().unwrap_or(&self.config.jobs);
            let (rule, what) = {
                let registry = host.node().registry();
                let (kind, command, category, data): (_, Option<&str>, Option<&str>, &[_]) =
                    match &job {
                        Job::Command { command, message } => {
                            let c = registry.command(*command);
                            (
                                JobKind::Command,
                                Some(c.full_name()),
                                Some(registry.category(c.category()).name()),
                                &message.data,
                            )
                        }
                        Job::Task { category, .. } => (
                            JobKind::Task,
                            None,
                            Some(registry.category(*category).name()),
                            &[],
                        ),
                        Job::Reply { .. } => (JobKind::Reply, None, None, &[]),
                        Job::Connected { .. } | Job::ConnectFailed { .. } => {
                            (JobKind::Connect, None, None, &[])
                        }
                        Job::BatchItem { .. } => (JobKind::BatchJob, None, None, &[]),
                        Job::Completion { .. } => (JobKind::BatchCompletion, None, None, &[]),
                        Job::Timer { .. } => (JobKind::Timer, None, None, &[]),
                        Job::Job { .. } => (JobKind::Task, None, None, &[]),
                    };
                let info = JobInfo {
                    node: NodeId(i),
                    kind,
                    command,
                    category,
                    data,
                };
                (times.rule_for(&info), describe(&job, command))
            };
            let life = node.life;
            let d = rule.sample(&mut self.world.rng);
            self.nodes[i].busy += 1;
            match d {
                Some(d) => {
                    let text = format!("start {worker:?} {what} for {d:?}");
                    self.world.record(&format!("n{i}"), &text);
                    let at = self.world.now + d;
                    self.world.queue.push(
                        at,
                        Ev::Job {
                            node: i,
                            life,
                            worker,
                            job: Box::new(job),
                        },
                    );
                }
                None => {
                    let text = format!("start {worker:?} {what}: stuck forever");
                    self.world.record(&format!("n{i}"), &text);
                }
            }
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        let text = format!("< {input:?}");
        self.world.record(&format!("n{i}"), &text);
        self.with_host(i, |host, _| host.input(input));
    }

    // -----------------------------------------------------------------------------------------
    // events

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Net(ev) => self.net_event(ev),
            Ev::Job {
                node,
                life,
                worker,
                job,
            } => {
                if self.nodes[node].life != life || self.nodes[node].host.is_none() {
                    return; // its node crashed since
                }
                self.nodes[node].busy -= 1;
                let now = self.world.now;
                if let Job::Reply { request, .. } = &*job {
                    self.nodes[node].ledger.replying(now, *request);
                }
                let name = match (&*job, &self.nodes[node].host) {
                    (Job::Command { command, .. }, Some(h)) => {
                        Some(h.node().registry().command(*command).full_name().to_owned())
                    }
                    _ => None,
                };
                let text = format!("finish {worker:?} {}", describe(&job, name.as_deref()));
                self.world.record(&format!("n{node}"), &text);
                self.with_host(node, |host, io| host.run_job(io, worker, *job));
            }
            Ev::Call(f) => {
                self.world.record("sim", "scheduled call");
                f(self);
            }
        }
    }

    fn is_open(&self, i: usize, conn: lokimq_core::ids::ConnId) -> bool {
        self.nodes[i].host.is_some() && self.nodes[i].io.open.contains(&conn)
    }

    fn net_event(&mut self, ev: NetEv) {
        let now = self.world.now;
        match ev {
            NetEv::Dial { pipe } => {
                let hosts = self.world.net.hosts(pipe);
                let w = &mut self.world;
                let Some(target) = w.net.syn_arrived(now, &mut w.rng, &mut w.queue, pipe) else {
                    return;
                };
                let refuse = |sim: &mut Self, why: &str| {
                    sim.world.queue.push(
                        now,
                        NetEv::DialFailed {
                            pipe,
                            cause: DisconnectCause::ConnectFailed(format!(
                                "Connection refused{why}"
                            )),
                        },
                    );
                };
                let ListenTarget::Node(m, listener) = target else {
                    return refuse(self, "");
                };
                if self.nodes[m].host.is_none()
                    || !self.nodes[m].io.listeners.contains_key(&listener)
                {
                    return refuse(self, "");
                }
                let remote = match hosts {
                    Some([NetHost::Node(d), _]) => self.nodes[d].ip.clone(),
                    _ => String::from("(unknown)"),
                };
                let text = format!("< accept {listener:?} from {remote}");
                self.world.record(&format!("n{m}"), &text);
                let host = self.nodes[m].host.as_mut().expect("checked above");
                host.set_now(now);
                let Some(conn) = host.accept(listener, &remote) else {
                    // The node refused it (too many connections, shutting down).
                    self.with_host(m, |_, _| {});
                    return refuse(self, " (the node refused it)");
                };
                self.nodes[m].io.open.insert(conn);
                let dialer = self.world.net.accepted(pipe, End::Node(m, conn));
                self.with_host(m, |_, _| {});
                if let Some(End::Node(d, dconn)) = dialer {
                    if self.is_open(d, dconn) {
                        self.input(d, Input::Connected { conn: dconn });
                    }
                }
            }
            NetEv::DialFailed { pipe, cause } => {
                if let Some(End::Node(n, conn)) = self.world.net.dial_failed(pipe) {
                    if self.is_open(n, conn) {
                        self.nodes[n].io.open.remove(&conn);
                        self.input(n, Input::Disconnected { conn, cause });
                    }
                }
            }
            NetEv::Deliver { pipe, dir, chunk } => {
                match self.world.net.take(now, pipe, dir, chunk) {
                    Some(Delivery::Data(End::Node(n, conn), data)) if self.is_open(n, conn) => {
                        let text = format!("< {conn:?} {}", crate::show::show_bytes(&data));
                        self.world.record(&format!("n{n}"), &text);
                        self.with_host(n, |host, _| host.received(conn, &data));
                    }
                    Some(Delivery::Fin(End::Node(n, conn))) => {
                        if self.is_open(n, conn) {
                            self.nodes[n].io.open.remove(&conn);
                            self.input(
                                n,
                                Input::Disconnected {
                                    conn,
                                    cause: DisconnectCause::Eof,
                                },
                            );
                        }
                        let w = &mut self.world;
                        w.net
                            .close(now, &mut w.rng, &mut w.queue, End::Node(n, conn), false);
                    }
                    _ => {}
                }
            }
            NetEv::Reset { end, cause } => {
                if let End::Node(n, conn) = end {
                    if self.is_open(n, conn) {
                        self.nodes[n].io.open.remove(&conn);
                        self.input(n, Input::Disconnected { conn, cause });
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // faults

    /// Sets the latency and jitter between two nodes (both directions).
    pub fn set_link(&mut self, a: NodeId, b: NodeId, link: LinkConfig) {
        let text = format!("link {a}<->{b} {link:?}");
        self.world.record("net", &text);
        self.world
            .net
            .set_link(NetHost::Node(a.0), NetHost::Node(b.0), link);
    }

    /// Sets the latency and jitter of every link without its own setting.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        let text = format!("default link {link:?}");
        self.world.record("net", &text);
        self.world.net.config.link = link;
    }

    /// Changes how the bytes written from now on are cut into reads (down to single bytes).
    pub fn set_chunking(&mut self, chunking: Chunking) {
        let text = format!("chunking {chunking:?}");
        self.world.record("net", &text);
        self.world.net.config.chunking = chunking;
    }

    /// Makes every listener of the node refuse new connections (or accept them again).
    pub fn set_refusing(&mut self, n: NodeId, refusing: bool) {
        let text = format!("{n} refusing={refusing}");
        self.world.record("net", &text);
        self.world.net.set_refusing(n.0, refusing);
    }

    /// Cuts the nodes `a` off from the nodes `b`: new dials between them hang (and time out),
    /// and connections across either freeze (bytes wait, in order, for [`heal`](Self::heal))
    /// or are reset at once. Returns how many connections were reset.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId], mode: PartitionMode) -> usize {
        let text = format!("partition {a:?} | {b:?} {mode:?}");
        self.world.record("net", &text);
        let now = self.world.now;
        let w = &mut self.world;
        w.net.partition(
            now,
            &mut w.queue,
            a.iter().map(|n| n.0).collect(),
            b.iter().map(|n| n.0).collect(),
            mode,
        )
    }

    /// Cuts one node off from every other.
    pub fn isolate(&mut self, n: NodeId, mode: PartitionMode) -> usize {
        let others: Vec<NodeId> = self.nodes().filter(|m| *m != n).collect();
        self.partition(&[n], &others, mode)
    }

    /// Removes every partition: frozen bytes flow again, hanging dials complete.
    pub fn heal(&mut self) {
        self.world.record("net", "heal");
        let now = self.world.now;
        let w = &mut self.world;
        w.net.heal(now, &mut w.rng, &mut w.queue);
    }

    /// Resets every connection between two nodes (both see a reset now); returns how many.
    pub fn reset_between(&mut self, a: NodeId, b: NodeId) -> usize {
        let now = self.world.now;
        let pipes: Vec<u64> = self
            .world
            .net
            .open_pipes()
            .into_iter()
            .filter(|(_, x, y)| {
                let (hx, hy) = (x.host(), y.host());
                (hx == NetHost::Node(a.0) && hy == NetHost::Node(b.0))
                    || (hx == NetHost::Node(b.0) && hy == NetHost::Node(a.0))
            })
            .map(|(p, _, _)| p)
            .collect();
        let text = format!("reset {a}<->{b}: {} connections", pipes.len());
        self.world.record("net", &text);
        for p in &pipes {
            self.world
                .net
                .reset_pipe(now, &mut self.world.queue, *p, "connection reset by peer");
        }
        pipes.len()
    }

    /// Resets every connection the node has; returns how many.
    pub fn reset_node(&mut self, n: NodeId) -> usize {
        let others: Vec<NodeId> = self.nodes().collect();
        others.into_iter().map(|m| self.reset_between(n, m)).sum()
    }

    /// Resets one connection chosen with the simulation's RNG, if there is any; returns the
    /// two nodes it joined.
    pub fn reset_random_connection(&mut self) -> Option<(NodeId, NodeId)> {
        let pipes = self.world.net.open_pipes();
        if pipes.is_empty() {
            return None;
        }
        let k = (self.world.rng.next_u64() % pipes.len() as u64) as usize;
        let (p, a, b) = pipes[k];
        let (End::Node(x, _), End::Node(y, _)) = (a, b) else {
            return None;
        };
        let text = format!("reset one connection n{x}<->n{y}");
        self.world.record("net", &text);
        let now = self.world.now;
        self.world
            .net
            .reset_pipe(now, &mut self.world.queue, p, "connection reset by peer");
        Some((NodeId(x), NodeId(y)))
    }

    /// Sets how long the node's jobs take (replacing [`SimConfig::jobs`] for it): slow
    /// handlers, slow reply callbacks, stuck workers. Applies to jobs started from now on.
    ///
    /// ```
    /// use lokimq::{AuthLevel, ConnectOptions, RequestError, RequestOptions};
    /// use lokimq_sim::{Dur, JobTimes, Sim};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let mut sim = Sim::new(2);
    /// let server = sim.add_node(|b| {
    ///     b.add_category("db", AuthLevel::None)?
    ///         .add_request_command("db", "query", |m| m.send_reply(["rows"]))?
    ///         .listen_plain("tcp://*:6000", |_, _, _| AuthLevel::None)?;
    ///     Ok(())
    /// });
    /// sim.set_job_times(server, JobTimes::default().command("db.query", Dur::millis(800)));
    /// let client = sim.add_node(|_| Ok(()));
    /// let h = sim.handle(client);
    /// let conn = h.connect_remote(sim.address(server), |_| {}, |_, _| {}, ConnectOptions::default())?;
    /// let got = Arc::new(Mutex::new(None));
    /// let slot = Arc::clone(&got);
    /// let opts = RequestOptions::default().timeout(Duration::from_millis(500));
    /// h.request_with(&conn, "db.query", lokimq::NO_DATA, opts, move |r| *slot.lock().unwrap() = Some(r))?;
    /// sim.run_until(|_| got.lock().unwrap().is_some());
    /// // The handler took 800 ms of virtual time: the client gave up at 500 ms.
    /// assert_eq!(got.lock().unwrap().clone(), Some(Err(RequestError::Timeout)));
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn set_job_times(&mut self, n: NodeId, times: JobTimes) {
        let text = format!("{n} job times {times:?}");
        self.world.record("sim", &text);
        self.nodes[n.0].jobs = Some(times);
    }

    /// The node's process dies ([`Crash::Process`]): see [`crash_with`](Self::crash_with).
    ///
    /// ```
    /// use lokimq::{AuthLevel, Error};
    /// use lokimq_sim::Sim;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let mut sim = Sim::new(5);
    /// // What the node keeps outside its setup function is its "disk": it survives a crash.
    /// let disk = Arc::new(Mutex::new(0u32));
    /// let boots = Arc::clone(&disk);
    /// let n = sim.add_node(move |b| {
    ///     *boots.lock().unwrap() += 1;
    ///     b.listen_curve("tcp://*:9000", |_, _, _| AuthLevel::None)?;
    ///     Ok(())
    /// });
    /// let key = sim.pubkey(n);
    /// sim.crash(n);
    /// assert!(matches!(sim.handle(n).job(|| {}, None), Err(Error::Stopped)));
    /// sim.restart(n); // the setup function runs again, with the same keypair
    /// assert_eq!((sim.pubkey(n), *disk.lock().unwrap()), (key, 2));
    /// assert!(sim.handle(n).job(|| {}, None).is_ok());
    /// ```
    pub fn crash(&mut self, n: NodeId) {
        self.crash_with(n, Crash::Process);
    }

    /// The node dies at once: its running and queued jobs, pending requests, timers and
    /// connections are gone without a callback (its [`handle`](Self::handle) now returns
    /// `Error::Stopped`), its listening ports close, and its peers see resets or, for
    /// [`Crash::PowerLoss`], nothing. Bring it back with [`restart`](Self::restart).
    pub fn crash_with(&mut self, n: NodeId, how: Crash) {
        let i = n.0;
        let Some(host) = self.nodes[i].host.take() else {
            return;
        };
        drop(host);
        let now = self.world.now;
        let w = &mut self.world;
        let conns = w.net.drop_host(now, &mut w.queue, i, how == Crash::Process);
        w.net.unbind_node(i);
        let text = format!("crash {how:?} ({conns} connections)");
        self.world.record(&format!("{n}"), &text);
        let node = &mut self.nodes[i];
        node.io = NodeIo::default();
        node.ledger.abandon();
        node.busy = 0;
        self.after_step();
    }

    /// Starts a crashed node again (or restarts a running one: crash, then start): the same
    /// setup function runs on a fresh builder with the same keypair, so it is the same
    /// service node with none of its old memory. Returns its new handle.
    pub fn restart(&mut self, n: NodeId) -> Handle {
        if self.nodes[n.0].host.is_some() {
            self.crash(n);
        }
        self.nodes[n.0].life += 1;
        let keypair = self.nodes[n.0].keypair.clone();
        let mut setup: Setup = std::mem::replace(&mut self.nodes[n.0].setup, Box::new(|_| Ok(())));
        let (host, handle) = self.build(n, &mut setup, &keypair);
        if handle.pubkey() != &self.nodes[n.0].pubkey {
            self.fail(&format!(
                "{n} came back with another key ({} instead of {}): its setup function must \
                 keep the builder's keypair or set a fixed one (a builder that makes its own \
                 key draws it from the operating system, which no seed replays)",
                handle.pubkey(),
                self.nodes[n.0].pubkey
            ));
        }
        let node = &mut self.nodes[n.0];
        node.setup = setup;
        node.handle = handle;
        self.start(n, host);
        self.handle(n)
    }

    /// Shuts the node down as dropping its `LokiMq` would: listeners close, queued work is
    /// discarded and pending callbacks are dropped, running jobs finish, connections close.
    pub fn shutdown(&mut self, n: NodeId) {
        self.world.record(&format!("{n}"), "shutdown");
        self.nodes[n.0].shut_down = true;
        self.with_host(n.0, |host, _| host.shutdown());
        self.after_step();
    }

    /// True once the node has shut down completely.
    #[must_use]
    pub fn is_stopped(&self, n: NodeId) -> bool {
        self.nodes[n.0].host.as_ref().is_some_and(Host::is_stopped)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let tail: Vec<String> = self.world.log.tail().map(str::to_owned).collect();
            if crate::seeds::capture_trace(tail.clone()) {
                return;
            }
            eprintln!(
                "=== simulation failed: seed {} at {:?} after {} steps; last {} of {} trace lines:",
                self.seed,
                self.world.now,
                self.steps,
                tail.len(),
                self.world.log.len()
            );
            for l in &tail {
                eprintln!("{l}");
            }
            eprintln!(
                "=== replay with {}={} (trace hash {:016x})",
                crate::SEED_VAR,
                self.seed,
                self.world.log.hash()
            );
        }
    }
}

/// A short description of a job for the trace.
fn describe(job: &Job, command: Option<&str>) -> String {
    match job {
        Job::Command { message, .. } => format!(
            "command {} from {:?} {}",
            command.unwrap_or("?"),
            message.conn,
            crate::show::parts(&message.data)
        ),
        Job::Reply { request, result } => match result {
            Ok(parts) => format!("reply #{} {}", request.0, crate::show::parts(parts)),
            Err(e) => format!("reply #{} error {e}", request.0),
        },
        other => format!("{other:?}"),
    }
}
