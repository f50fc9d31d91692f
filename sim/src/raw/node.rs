//! One simulated node: the [`Node`] itself plus everything its driver would own (handlers,
//! allow functions, the service-node address book, busy workers) and what the tests read
//! afterwards (replies, connects, events, the job trace).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{BatchId, CategoryId, CommandId, ConnId, ListenerId, TimerId, WorkerId};
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::node::{
    Config, ConnectError, ConnectionId, DisconnectReason, InDriver, Message, Node, RequestError,
    RequestId, SendError,
};
use lokimq_core::registry::Registry;
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;

use super::script::{Action, ConnectFn, Handler, JobTimes, ReplyFn};

/// An allow function: `(remote, client key, is an active SN) -> level` (`Denied` refuses).
pub type AllowFn = Box<dyn FnMut(&str, Option<&PublicKey>, bool) -> AuthLevel>;

/// Everything needed to add a node to a simulation.
pub struct NodeSpec {
    /// The node's configuration.
    pub config: Config,
    /// Its command registry.
    pub registry: Registry,
    /// Its keypair (`None`: generated from the simulation's RNG).
    pub keypair: Option<Keypair>,
    /// Command handlers by `category.command`.
    pub handlers: Vec<(String, Handler)>,
    /// How long jobs take.
    pub job_times: JobTimes,
}

impl NodeSpec {
    /// A node with `config` and `registry`, no handlers, zero-time jobs.
    #[must_use]
    pub fn new(config: Config, registry: Registry) -> Self {
        Self {
            config,
            registry,
            keypair: None,
            handlers: Vec::new(),
            job_times: JobTimes::default(),
        }
    }

    /// Sets the keypair.
    #[must_use]
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Adds a handler for `command` (`category.command`; must be registered).
    #[must_use]
    pub fn handler(
        mut self,
        command: &str,
        h: impl FnMut(&mut super::Ctx, &Message) + 'static,
    ) -> Self {
        self.handlers.push((command.to_string(), Box::new(h)));
        self
    }

    /// Sets the job-time policy.
    #[must_use]
    pub fn job_times(mut self, t: JobTimes) -> Self {
        self.job_times = t;
        self
    }
}

/// What a job was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobKind {
    /// A command (by full name).
    Command {
        /// `category.command` (after alias resolution).
        name: String,
        /// Its category.
        category: CategoryId,
        /// The sender.
        conn: ConnectionId,
        /// The data parts.
        data: Vec<Bytes>,
    },
    /// A reply callback.
    Reply(RequestId),
    /// A connect callback.
    Connected(ConnectionId),
    /// A connect-failure callback.
    ConnectFailed(ConnectionId),
    /// A batch job.
    BatchItem(BatchId, u32),
    /// A batch completion.
    Completion(BatchId),
    /// A timer firing.
    Timer(TimerId),
    /// An injected task.
    Task(CategoryId, u64),
    /// A `Node::job`.
    Job(u64),
}

/// One job as the driver saw it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The worker slot.
    pub worker: WorkerId,
    /// What ran.
    pub kind: JobKind,
    /// `RunJob` time.
    pub started: Instant,
    /// `JobFinished` time (`None` while running).
    pub finished: Option<Instant>,
}

/// A request made through the harness and what became of it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The peer.
    pub to: ConnectionId,
    /// The command.
    pub command: Bytes,
    /// When it was sent.
    pub sent_at: Instant,
    /// Every outcome delivered (exactly one is correct).
    pub outcomes: Vec<(Instant, Result<Vec<Bytes>, RequestError>)>,
}

/// An auth request as the allow function saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// When.
    pub at: Instant,
    /// The connection.
    pub conn: ConnId,
    /// The listener.
    pub listener: ListenerId,
    /// The peer's address.
    pub remote: String,
    /// The client key (curve listeners).
    pub pubkey: Option<PublicKey>,
    /// Whether the key is an active SN.
    pub service_node: bool,
    /// What was answered.
    pub level: AuthLevel,
}

/// An `Event::PeerDisconnected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectRecord {
    /// When.
    pub at: Instant,
    /// The peer.
    pub conn: ConnectionId,
    /// Its key, if the connection was encrypted.
    pub pubkey: Option<PublicKey>,
    /// Why it ended.
    pub cause: DisconnectReason,
    /// Whether the (outgoing) connection reconnects.
    pub reconnecting: bool,
}

pub(crate) struct Busy {
    pub(crate) record: usize,
    pub(crate) actions: Vec<Action>,
}

/// A node and its simulated driver.
pub struct SimNode {
    /// The node.
    pub node: Node<ChaCha20Rng>,
    /// Its keypair's public half.
    pub pubkey: PublicKey,
    pub(crate) handlers: BTreeMap<CommandId, Handler>,
    pub(crate) job_times: JobTimes,
    pub(crate) allow: BTreeMap<ListenerId, AllowFn>,
    pub(crate) reply_fns: BTreeMap<RequestId, ReplyFn>,
    pub(crate) on_connect: Option<ConnectFn>,
    pub(crate) busy: BTreeMap<WorkerId, Busy>,
    /// `node.poll_timeout()` as of the last drain (the node changes only through inputs and
    /// calls, each followed by a drain).
    pub(crate) timeout: Option<Instant>,
    /// Service-node addresses answered to `Event::LookupSn`.
    pub address_book: BTreeMap<PublicKey, Address>,
    /// Listeners the node asked for, with their addresses.
    pub listeners: BTreeMap<ListenerId, Address>,
    /// Transport connections the node has open, as the driver sees them.
    pub open_conns: BTreeSet<ConnId>,
    /// Requests made through the harness.
    pub requests: BTreeMap<RequestId, RequestRecord>,
    /// Reply jobs for requests the harness did not make (a core bug if non-empty).
    pub stray_replies: Vec<(Instant, RequestId)>,
    /// `send`/`request` calls that were refused at once.
    pub send_errors: Vec<(Instant, ConnectionId, SendError)>,
    /// `Job::Connected`.
    pub connected: Vec<(Instant, ConnectionId)>,
    /// `Job::ConnectFailed`, with the error's text.
    pub connect_failed: Vec<(Instant, ConnectionId, String)>,
    /// `Job::ConnectFailed`, with the typed error.
    pub connect_errors: Vec<(Instant, ConnectionId, ConnectError)>,
    /// `Event::PeerDisconnected`.
    pub disconnects: Vec<DisconnectRecord>,
    /// `Event::LinkFailed`.
    pub link_failures: Vec<(Instant, ConnectionId, ConnectError)>,
    /// Commands run, with their messages.
    pub commands: Vec<(Instant, String, Message)>,
    /// Auth requests answered.
    pub auth_requests: Vec<AuthRecord>,
    /// `Event::LookupSn` asked.
    pub lookups: Vec<(Instant, PublicKey)>,
    /// `Event::RunInDriver` run.
    pub in_driver: Vec<(Instant, InDriver)>,
    /// `Event::BatchDone`.
    pub batch_done: Vec<(Instant, BatchId)>,
    /// `Event::TimerReleased`.
    pub timer_released: Vec<(Instant, TimerId)>,
    /// `Event::Dropped`.
    pub dropped: Vec<(Instant, CategoryId)>,
    /// `Output::StopWorker`.
    pub stopped_workers: Vec<(Instant, WorkerId)>,
    /// `Event::Stopped`.
    pub stopped: Option<Instant>,
    /// Other events, as text.
    pub events: Vec<(Instant, String)>,
    /// Every job, in start order.
    pub jobs: Vec<JobRecord>,
    /// Every `Output::Connect`, with its address.
    pub dials: Vec<(Instant, ConnId, Address)>,
    /// Every `Output::Close`, with its linger.
    pub closes: Vec<(Instant, ConnId, Duration)>,
}

impl SimNode {
    pub(crate) fn new(node: Node<ChaCha20Rng>, pubkey: PublicKey, job_times: JobTimes) -> Self {
        Self {
            node,
            pubkey,
            handlers: BTreeMap::new(),
            job_times,
            allow: BTreeMap::new(),
            reply_fns: BTreeMap::new(),
            on_connect: None,
            busy: BTreeMap::new(),
            timeout: None,
            address_book: BTreeMap::new(),
            listeners: BTreeMap::new(),
            open_conns: BTreeSet::new(),
            requests: BTreeMap::new(),
            stray_replies: Vec::new(),
            send_errors: Vec::new(),
            connected: Vec::new(),
            connect_failed: Vec::new(),
            connect_errors: Vec::new(),
            disconnects: Vec::new(),
            link_failures: Vec::new(),
            commands: Vec::new(),
            auth_requests: Vec::new(),
            lookups: Vec::new(),
            in_driver: Vec::new(),
            batch_done: Vec::new(),
            timer_released: Vec::new(),
            dropped: Vec::new(),
            stopped_workers: Vec::new(),
            stopped: None,
            events: Vec::new(),
            jobs: Vec::new(),
            dials: Vec::new(),
            closes: Vec::new(),
        }
    }

    /// The single outcome of a request, if it has exactly one.
    #[must_use]
    pub fn outcome(&self, r: RequestId) -> Option<&Result<Vec<Bytes>, RequestError>> {
        match self.requests.get(&r).map(|rec| rec.outcomes.as_slice()) {
            Some([(_, o)]) => Some(o),
            _ => None,
        }
    }

    /// The time of a request's single outcome.
    #[must_use]
    pub fn outcome_time(&self, r: RequestId) -> Option<Instant> {
        match self.requests.get(&r).map(|rec| rec.outcomes.as_slice()) {
            Some([(t, _)]) => Some(*t),
            _ => None,
        }
    }

    /// Jobs running now.
    #[must_use]
    pub fn busy_workers(&self) -> usize {
        self.busy.len()
    }

    /// The largest number of command jobs that ran at the same time (from the job trace).
    #[must_use]
    pub fn max_concurrent(&self, filter: impl Fn(&JobKind) -> bool) -> usize {
        let mut edges: Vec<(Instant, i32)> = Vec::new();
        for j in self.jobs.iter().filter(|j| filter(&j.kind)) {
            edges.push((j.started, 1));
            edges.push((j.finished.unwrap_or(Instant::MAX), -1));
        }
        // Ends before starts at the same instant: a slot freed at t can be reused at t.
        edges.sort_by_key(|&(t, d)| (t, d));
        let (mut cur, mut max) = (0i32, 0i32);
        for (_, d) in edges {
            cur += d;
            max = max.max(cur);
        }
        max as usize
    }

    /// Names of the commands run, in start order.
    #[must_use]
    pub fn command_names(&self) -> Vec<&str> {
        self.commands.iter().map(|(_, n, _)| n.as_str()).collect()
    }
}
