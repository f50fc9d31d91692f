//! [`Host`]: a node with its callbacks, answering everything that is not I/O.
//!
//! A node's outputs are of two kinds. Some need the outside world: bytes to write, dials,
//! closes, listening sockets, jobs for threads. Those are the embedder's, through its [`Io`].
//! The rest have one right answer whatever the embedder: an auth request goes to the
//! listener's allow function, a service-node lookup to the lookup function, a batch
//! completion to its closure, a released timer frees its closure, a full queue is logged. The
//! host does all of that, runs the closures [`Handle`](crate::Handle)s post to it, and runs a
//! job on the calling thread when the embedder has no worker threads. It is the same for the
//! mio driver, a `std::net` loop and the simulator.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{ConnId, ListenerId, WorkerId};
use lokimq_core::node::{
    ConnectionId, DisconnectCause, Event, InDriver, Input, Job, Node, NodeError, Output, RequestId,
    SchedulerCell, SendError, SendOptions, Target,
};
use lokimq_core::sched::Scheduler;
use lokimq_core::time::Instant;

use crate::Listen;
use crate::asynk::Fill;
use crate::disconnect::{DisconnectFn, Disconnected};
use crate::error::Error;
use crate::handle::{AllowFn, Handle, OnBind, ProxyMsg, SnLookupFn, ThreadRole, run_guarded};
use crate::kit::jobs::{JobTable, Task};
use crate::kit::net::UnixSocketAccess;
use crate::kit::throttle::Throttle;

/// The random number generator every driver gives its node: ChaCha20, seeded from the
/// operating system by the native driver and from the seed by the simulator, so a request tag
/// or a CURVE nonce costs no system call.
pub type NodeRng = rand_chacha::ChaCha20Rng;

/// What an embedder does for a node: its sockets, its dials and its threads. Everything else
/// is the [`Host`]'s. Each method is one [`Output`]; none may call back into the host (report
/// results later, with [`Host::input`] and friends).
pub trait Io {
    /// Queue `data` for writing on `conn` ([`Output::Transmit`]).
    fn transmit(&mut self, conn: ConnId, data: Bytes);

    /// Dial `addr` for `conn` without blocking, and later report [`Input::Connected`] or
    /// [`Input::Disconnected`] ([`Output::Connect`]). A dial that fails at once returns why.
    ///
    /// # Errors
    ///
    /// The reason the dial failed before it started; the host reports it to the node.
    fn connect(&mut self, conn: ConnId, addr: &Address) -> Result<(), DisconnectCause>;

    /// Close `conn` with the procedure of [`Output::Close`].
    fn close(&mut self, conn: ConnId, linger: Duration);

    /// Bind a listener ([`Output::Listen`]) and accept connections on it; returns the address
    /// actually bound (e.g. with the real port).
    ///
    /// # Errors
    ///
    /// The operating system's; the host reports it to the node and to the listener's
    /// `on_bind`.
    fn listen(
        &mut self,
        listener: ListenerId,
        addr: &Address,
        access: UnixSocketAccess,
    ) -> io::Result<Address>;

    /// Stop accepting on a listener and close it ([`Output::Unlisten`]).
    fn unlisten(&mut self, listener: ListenerId);

    /// Run `job` on `worker` ([`Output::RunJob`]) and report it finished when it returns. An
    /// embedder without worker threads returns the job instead: the host then runs it on the
    /// calling thread and reports it finished itself.
    fn run_job(&mut self, worker: WorkerId, job: Job) -> Option<Job>;

    /// The worker will get no more jobs: stop its thread ([`Output::StopWorker`]).
    fn stop_worker(&mut self, worker: WorkerId);

    /// Another thread asked the loop to look at its own state (the native driver's workers do,
    /// for jobs they could not run). Nothing to do by default.
    fn poked(&mut self) {}

    /// An input that came up while acting on an output (a write made inside `transmit`
    /// reports the connection's backlog, or its failure): the host feeds these as it drains,
    /// so the node's view of each backlog stays current. None by default.
    fn take_input(&mut self) -> Option<Input> {
        None
    }
}

/// Where a [`Host`]'s node keeps its scheduler (see [`SchedulerCell`]): its own, when jobs run
/// on the embedder's thread, or one shared with the native driver's worker threads, which take
/// their next job from it themselves.
#[derive(Debug)]
pub enum SchedulerHome {
    /// The node's own (boxed: one allocation per node keeps the enum small).
    Owned(Box<Scheduler<Job>>),
    /// Shared with worker threads.
    Shared(Arc<Mutex<Scheduler<Job>>>),
}

fn lock(m: &Mutex<Scheduler<Job>>) -> MutexGuard<'_, Scheduler<Job>> {
    // No user code runs under this lock, so a poisoned scheduler is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SchedulerCell for SchedulerHome {
    fn with<T>(&mut self, f: impl FnOnce(&mut Scheduler<Job>) -> T) -> T {
        match self {
            Self::Owned(s) => f(s),
            Self::Shared(s) => f(&mut lock(s)),
        }
    }

    fn with_ref<T>(&self, f: impl FnOnce(&Scheduler<Job>) -> T) -> T {
        match self {
            Self::Owned(s) => f(s),
            Self::Shared(s) => f(&lock(s)),
        }
    }
}

/// A listener's callbacks.
pub(crate) struct ListenerCallbacks {
    pub(crate) curve: bool,
    pub(crate) allow: Option<AllowFn>,
    pub(crate) on_bind: Option<OnBind>,
    pub(crate) unix: UnixSocketAccess,
}

/// A send waiting for room (see `Host::blocked`).
struct BlockedSend {
    to: ConnectionId,
    command: Bytes,
    data: Vec<Bytes>,
    fill: Fill<Result<(), SendError>>,
}

/// At most this many posted calls are run per [`Host::process_posts`] by default.
pub const POST_BUDGET: usize = 1024;

/// How many bytes an embedder should read from one socket per turn before it serves the
/// others (the native driver does; a socket with more left is read again next turn). A turn
/// that read a peer's whole backlog would hold every other peer up behind a stream of large
/// frames; 64 KiB is one read call, and still hundreds of small messages.
pub const READ_BUDGET: usize = 64 * 1024;

/// [`Host::process_posts`] also stops once the calls it ran have queued this many bytes for
/// the network: each of them (a reply of a mebibyte, say) is encrypted on the loop's thread,
/// so without this bound a few large replies would hold up every other connection's turn.
const POST_BYTES_BUDGET: usize = 256 * 1024;

/// A node and everything around it that is not I/O: see the [kit documentation](crate::kit).
pub struct Host {
    pub(crate) node: Node<NodeRng, SchedulerHome>,
    now: Instant,
    jobs: Arc<JobTable>,
    listeners: BTreeMap<ListenerId, ListenerCallbacks>,
    sn_lookup: Option<SnLookupFn>,
    on_disconnect: Option<DisconnectFn>,
    handle: Handle,
    posts: Receiver<ProxyMsg>,
    /// Jobs the embedder handed back to run here, in order.
    inline: VecDeque<(WorkerId, Job)>,
    shutting_down: bool,
    stopped: bool,
    /// The first bind failure, for `Builder::start` to report.
    startup_error: Option<Error>,
    warnings: Throttle,
    /// Sends waiting for room under a peer's high-water mark (`Handle::send_async`), retried
    /// in order whenever a connection's backlog shrinks and once a turn.
    blocked: VecDeque<BlockedSend>,
    /// Bytes handed to [`Io::transmit`] so far (wrapping), for the posts' byte budget.
    transmitted: usize,
    /// One `tracing` span per open connection (its id, remote address, and once known its
    /// key and auth level), entered while its input is handled, so every log line the node
    /// writes about it can be tied to it.
    spans: BTreeMap<ConnId, tracing::Span>,
}

impl Host {
    pub(crate) fn new(
        node: Node<NodeRng, SchedulerHome>,
        now: Instant,
        jobs: Arc<JobTable>,
        sn_lookup: Option<SnLookupFn>,
        handle: Handle,
        posts: Receiver<ProxyMsg>,
    ) -> Self {
        Self {
            node,
            now,
            jobs,
            listeners: BTreeMap::new(),
            sn_lookup,
            on_disconnect: None,
            handle,
            posts,
            inline: VecDeque::new(),
            shutting_down: false,
            stopped: false,
            startup_error: None,
            warnings: Throttle::new(Duration::from_secs(1)),
            spans: BTreeMap::new(),
            blocked: VecDeque::new(),
            transmitted: 0,
        }
    }

    /// Sets [`Builder::on_disconnect`](crate::Builder::on_disconnect)'s hook.
    pub(crate) fn set_on_disconnect(&mut self, hook: Option<DisconnectFn>) {
        self.on_disconnect = hook;
    }

    /// Runs the disconnect hook, if any, on a worker.
    fn report_disconnect(&mut self, what: Disconnected) {
        let Some(hook) = self.on_disconnect.clone() else {
            return;
        };
        if let Err(e) = self.queue_task(Box::new(move || hook(what)), Target::Worker) {
            tracing::debug!("disconnect hook not run: {e}");
        }
    }

    /// The node's time: the last `now` the embedder gave.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Tells the host the time (it never goes backwards: an earlier `now` is ignored).
    pub fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Marks the calling thread as the one that runs this node, for good: an embedder whose
    /// loop runs on the application's own thread (a simulator, a single-threaded program)
    /// calls it once, so that a [`Handle`] call that waits for the loop (`stats`,
    /// `is_connected`) returns [`Error::OnProxyThread`] there instead of waiting forever for
    /// itself. (Handlers the host runs are always on the node's thread; this covers the code
    /// around them.)
    pub fn claim_thread(&self) {
        ThreadRole::Proxy.enter();
    }

    /// The node, for getters.
    #[must_use]
    pub fn node(&self) -> &Node<NodeRng, SchedulerHome> {
        &self.node
    }

    /// A handle to the node, for the embedder's own use.
    #[must_use]
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The closures behind the node's jobs.
    pub(crate) fn jobs(&self) -> Arc<JobTable> {
        Arc::clone(&self.jobs)
    }

    /// When [`timeout`](Self::timeout) is next due, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }

    /// The requests whose reply callback is still waiting, in id order: each was made through
    /// a [`Handle`] (or a [`Message`](crate::Message)) and its callback has not run yet. A
    /// request leaves this list when its [`Job::Reply`] runs (with the reply or the error),
    /// and only then, except at shutdown, which drops every callback as OxenMQ does. For
    /// simulators and invariant checks ("every request gets exactly one answer").
    #[must_use]
    pub fn pending_replies(&self) -> Vec<RequestId> {
        self.jobs.closures().requests.keys().copied().collect()
    }

    /// True once the node has stopped: every job finished and every connection closed.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Call just before the loop sleeps: from then on a [`Handle`] post calls the wake
    /// function (posts made while the loop is awake do not, since it looks at them before
    /// sleeping). Returns false if a post is already waiting: then run
    /// [`process_posts`](Self::process_posts) instead of sleeping.
    #[must_use]
    pub fn may_sleep(&self) -> bool {
        self.handle.proxy_may_sleep()
    }

    /// Call when the loop wakes up from a sleep that [`may_sleep`](Self::may_sleep) allowed.
    pub fn woke(&self) {
        self.handle.proxy_woke();
    }

    /// The first listener that failed to bind while the node started, if any.
    pub(crate) fn take_startup_error(&mut self) -> Option<Error> {
        self.startup_error.take()
    }

    // -----------------------------------------------------------------------------------------
    // inputs

    /// Feeds an input (network events, finished jobs) at the host's `now`. Drain afterwards.
    pub fn input(&mut self, input: Input) {
        let span = match &input {
            Input::Connected { conn }
            | Input::Disconnected { conn, .. }
            | Input::AuthDecision { conn, .. } => self.spans.get(conn).cloned(),
            _ => None,
        };
        if let Input::Disconnected { conn, .. } = &input {
            self.spans.remove(conn);
        }
        let _entered = span.as_ref().map(tracing::Span::enter);
        let flushed = matches!(input, Input::Flushed { .. });
        if let Err(e) = self.node.handle(self.now, input) {
            // The host answers the node's own questions, so only an embedder bug gets here.
            tracing::error!("the node refused an input: {e}");
        }
        if flushed {
            self.retry_blocked();
        }
    }

    /// Bytes received on `conn`, borrowed from the embedder's read buffer. Drain afterwards.
    pub fn received(&mut self, conn: ConnId, data: &[u8]) {
        let _entered = self.spans.get(&conn).map(tracing::Span::enter);
        self.node.handle_received(self.now, conn, data);
    }

    /// The span of a connection (created when it is accepted or dialled).
    fn open_span(&mut self, conn: ConnId, remote: &str, outgoing: bool) {
        let span = tracing::info_span!(
            "conn",
            id = ?conn,
            remote = remote,
            out = outgoing,
            pubkey = tracing::field::Empty,
            auth = tracing::field::Empty,
        );
        self.spans.insert(conn, span);
    }

    /// A connection arrived on `listener` from `remote` (an IP, or "(unknown)"). Returns the
    /// node's id for it, or `None` if the node refused it (shutting down, too many
    /// connections): then close the socket at once. Drain afterwards.
    pub fn accept(&mut self, listener: ListenerId, remote: &str) -> Option<ConnId> {
        match self.node.accept(self.now, listener, remote) {
            Ok(conn) => {
                self.open_span(conn, remote, false);
                Some(conn)
            }
            Err(e @ NodeError::TooManyConnections(_)) => {
                self.warn("accept", listener.get().into(), format_args!("{e}"));
                None
            }
            Err(NodeError::Stopped) => None,
            Err(e) => {
                tracing::error!("could not accept a connection: {e}");
                None
            }
        }
    }

    /// Fires the node's timers if `now` has reached them, and retries sends waiting for room.
    /// Drain afterwards.
    pub fn timeout(&mut self) {
        if self.node.poll_timeout().is_some_and(|t| t <= self.now) {
            self.input(Input::Timeout);
        }
        self.retry_blocked();
    }

    /// Starts shutdown (idempotent): listeners close, running jobs finish, connections close,
    /// then the node stops. Drain afterwards.
    pub fn shutdown(&mut self) {
        if !self.shutting_down {
            self.shutting_down = true;
            self.node.shutdown(self.now);
        }
    }

    // -----------------------------------------------------------------------------------------
    // outputs

    /// Acts on every output of the node until it has none: I/O through `io`, everything else
    /// here, and jobs `io` hands back run on this thread (each followed by the calls its
    /// handler posted, then its `JobFinished`, the order the core requires).
    pub fn drain(&mut self, io: &mut impl Io) {
        // Handlers that run here must not wait for the loop they run on (`Handle::stats`
        // refuses instead of deadlocking).
        let _role = ThreadRole::Proxy.scope();
        loop {
            self.drain_outputs(io);
            let Some((worker, job)) = self.inline.pop_front() else {
                return;
            };
            self.run_one(io, worker, job);
        }
    }

    /// Runs one job on this thread now, then the calls its handler posted, then reports it
    /// finished, and drains. For embedders that decide themselves when a job runs (the
    /// simulator runs it when its simulated duration is over).
    pub fn run_job(&mut self, io: &mut impl Io, worker: WorkerId, job: Job) {
        let _role = ThreadRole::Proxy.scope();
        self.run_one(io, worker, job);
        self.drain(io);
    }

    /// Runs up to `budget` calls that [`Handle`]s posted (fewer once they have queued a
    /// quarter of a mebibyte for the network, so a turn never encrypts more than about one
    /// large message for them), then drains. Returns true if more are waiting.
    pub fn process_posts(&mut self, io: &mut impl Io, budget: usize) -> bool {
        let _role = ThreadRole::Proxy.scope();
        let more = self.posted(io, budget);
        self.drain(io);
        more
    }

    /// A job, its handler's posts and its `JobFinished`; jobs it starts inline are queued for
    /// the caller's loop (no recursion however long the chain).
    fn run_one(&mut self, io: &mut impl Io, worker: WorkerId, job: Job) {
        self.jobs.run(job);
        while self.posted(io, POST_BUDGET) {}
        self.input(Input::JobFinished { worker });
        self.drain_outputs(io);
    }

    /// Runs up to `budget` posted calls, acting on each one's outputs.
    fn posted(&mut self, io: &mut impl Io, budget: usize) -> bool {
        self.handle.clear_wake_flag();
        let start = self.transmitted;
        for _ in 0..budget {
            match self.posts.try_recv() {
                Ok(ProxyMsg::Call(call)) => call(self),
                Ok(ProxyMsg::Poke) => io.poked(),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
            }
            self.drain_outputs(io);
            if self.transmitted.wrapping_sub(start) >= POST_BYTES_BUDGET {
                break;
            }
        }
        true
    }

    /// Acts on every output; jobs handed back are queued for [`drain`](Self::drain).
    fn drain_outputs(&mut self, io: &mut impl Io) {
        loop {
            while let Some(input) = io.take_input() {
                self.input(input);
            }
            let Some(out) = self.node.poll_output() else {
                return;
            };
            self.act(io, out);
        }
    }

    fn act(&mut self, io: &mut impl Io, out: Output) {
        match out {
            Output::Transmit { conn, data } => {
                self.transmitted = self.transmitted.wrapping_add(data.len());
                io.transmit(conn, data);
            }
            Output::Connect { conn, addr } => {
                self.open_span(conn, &addr.to_string(), true);
                if let Err(cause) = io.connect(conn, &addr) {
                    self.input(Input::Disconnected { conn, cause });
                }
            }
            Output::Close { conn, linger } => {
                self.spans.remove(&conn);
                io.close(conn, linger);
            }
            Output::Listen { listener, addr } => self.bind(io, listener, &addr),
            Output::Unlisten { listener } => io.unlisten(listener),
            Output::RunJob { worker, job } => {
                if let Some(job) = io.run_job(worker, job) {
                    self.inline.push_back((worker, job));
                }
            }
            Output::StopWorker { worker } => io.stop_worker(worker),
            Output::Event(event) => self.on_event(event),
        }
    }

    fn bind(&mut self, io: &mut impl Io, listener: ListenerId, addr: &Address) {
        let (curve, unix) = self.listeners.get(&listener).map_or_else(
            || (false, UnixSocketAccess::default()),
            |l| (l.curve, l.unix),
        );
        match io.listen(listener, addr, unix) {
            Ok(local) => {
                let local = local.with_pubkey(curve.then(|| *self.node.pubkey()));
                tracing::info!("listening on {local}");
                self.handle.note_bound(local.clone());
                if let Some(on_bind) = self
                    .listeners
                    .get_mut(&listener)
                    .and_then(|l| l.on_bind.take())
                {
                    run_guarded("on_bind callback", move || on_bind(Ok(local)));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!("OxenMQ failed to listen on {addr}: {reason}");
                if self.startup_error.is_none() {
                    self.startup_error = Some(Error::Bind {
                        address: addr.clone(),
                        source: e,
                    });
                }
                self.input(Input::ListenFailed { listener, reason });
            }
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
                let allow = self.listeners.get(&listener).and_then(|l| l.allow.clone());
                let level = match allow {
                    None => AuthLevel::None,
                    Some(f) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        f(&remote, pubkey.as_ref(), service_node)
                    }))
                    .unwrap_or_else(|_| {
                        tracing::error!("the allow function panicked; denying {remote}");
                        AuthLevel::Denied
                    }),
                };
                if let Some(span) = self.spans.get(&conn) {
                    if let Some(key) = &pubkey {
                        span.record("pubkey", tracing::field::display(key));
                    }
                    span.record("auth", tracing::field::display(level));
                }
                self.input(Input::AuthDecision { conn, level });
            }
            Event::LookupSn { pubkey } => {
                let address = self.sn_lookup.clone().and_then(|f| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&pubkey)))
                        .unwrap_or_else(|_| {
                            tracing::error!("the sn_lookup function panicked for {pubkey}");
                            None
                        })
                });
                self.input(Input::SnAddress { pubkey, address });
            }
            Event::RunInDriver(InDriver::Completion { batch }) => {
                if let Some(task) = self.jobs.take_completion(batch) {
                    run_guarded("in-proxy batch completion", task);
                }
            }
            Event::RunInDriver(InDriver::Timer { timer }) => {
                if let Some(f) = self.jobs.timer(timer) {
                    run_guarded("in-proxy timer", move || f());
                }
            }
            Event::BatchDone { batch } => {
                self.jobs.closures().batches.remove(&batch);
            }
            Event::TimerReleased { timer } => {
                self.jobs.closures().timers.remove(&timer);
            }
            Event::Dropped {
                category,
                command,
                from,
            } => {
                let registry = self.node.registry();
                let cat = registry.category(category).name().to_owned();
                let what = command.map_or_else(
                    || format!("an injected task of category {cat}"),
                    |c| format!("incoming command {cat}.{}", registry.command(c).name()),
                );
                let from = from.map(|f| format!(" from {f}")).unwrap_or_default();
                self.warn(
                    "queue full",
                    category.get().into(),
                    format_args!("No space to queue {what}{from}; dropping"),
                );
            }
            Event::ListenFailed { listener, reason } => {
                if let Some(on_bind) = self
                    .listeners
                    .get_mut(&listener)
                    .and_then(|l| l.on_bind.take())
                {
                    run_guarded("on_bind callback", move || on_bind(Err(reason)));
                }
            }
            Event::PeerDisconnected {
                conn,
                pubkey,
                cause,
                reconnecting,
            } => {
                tracing::debug!(%conn, %cause, reconnecting, "connection ended");
                self.report_disconnect(Disconnected::Lost {
                    conn,
                    pubkey,
                    reason: cause,
                    reconnecting,
                });
            }
            Event::LinkFailed { conn, error } => {
                tracing::debug!(%conn, %error, "connection given up");
                self.report_disconnect(Disconnected::GaveUp { conn, error });
            }
            Event::Stopped => self.stopped = true,
            other => tracing::debug!("{other:?}"),
        }
    }

    /// Logs a warning at most once per second per reason and key, with the count of the ones
    /// left out since: a hostile or broken peer cannot flood the log.
    fn warn(&mut self, reason: &'static str, key: u64, message: std::fmt::Arguments<'_>) {
        if let Some(suppressed) = self.warnings.allow(self.now, reason, key) {
            if suppressed > 0 {
                tracing::warn!("{message} ({suppressed} more like this in the last second)");
            } else {
                tracing::warn!("{message}");
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // for handles

    /// `Handle::send_async`: sends now if there is room, else waits (in order) for some.
    pub(crate) fn send_when_room(
        &mut self,
        to: ConnectionId,
        command: Bytes,
        data: Vec<Bytes>,
        fill: Fill<Result<(), SendError>>,
    ) {
        self.blocked.push_back(BlockedSend {
            to,
            command,
            data,
            fill,
        });
        self.retry_blocked();
    }

    /// Tries the waiting sends in order; the ones that would still block stay, in order.
    fn retry_blocked(&mut self) {
        for _ in 0..self.blocked.len() {
            let Some(b) = self.blocked.pop_front() else {
                return;
            };
            let sent = self.node.send(
                self.now,
                &b.to,
                b.command.clone(),
                b.data.clone(),
                &SendOptions::default(),
            );
            match sent {
                Err(SendError::WouldBlock(_)) => self.blocked.push_back(b),
                other => b.fill.fill(other),
            }
        }
    }

    /// Logs a send the node refused, as OxenMQ logs it, at most once a second per kind of
    /// failure (a peer that stops reading would otherwise cost a line per message).
    pub(crate) fn log_send_error(&mut self, e: &SendError) {
        let reason = match e {
            // OxenMQ logs these at debug: an optional send with no connection is expected.
            SendError::NoConnection(_) => {
                tracing::debug!("{e}");
                return;
            }
            SendError::WouldBlock(_) => "send would block",
            _ => "send failed",
        };
        self.warn(reason, 0, format_args!("{e}"));
    }

    /// Hands `task` to the node to run on `target`; if the node refuses it, the task is dropped
    /// and the refusal returned for the caller to report.
    pub(crate) fn queue_task(&mut self, task: Task, target: Target) -> Result<(), NodeError> {
        let id = self.jobs.closures().add_task(task);
        let queued = self.node.job(self.now, id, target);
        if queued.is_err() {
            self.jobs.closures().tasks.remove(&id);
        }
        queued
    }

    /// Registers a listener with the node and keeps its callbacks; the bind happens when the
    /// node's `Output::Listen` is drained.
    pub(crate) fn add_listener(&mut self, listen: Listen) {
        let Listen {
            address,
            curve,
            allow,
            on_bind,
            unix,
        } = listen;
        let listening = if curve {
            self.node.listen_curve(self.now, address.clone())
        } else {
            self.node.listen_plain(self.now, address.clone())
        };
        match listening {
            Ok(id) => {
                self.listeners.insert(
                    id,
                    ListenerCallbacks {
                        curve,
                        allow,
                        on_bind,
                        unix,
                    },
                );
            }
            Err(e) => {
                tracing::warn!("not listening on {address}: {e}");
                if let Some(on_bind) = on_bind {
                    run_guarded("on_bind callback", move || on_bind(Err(e.to_string())));
                }
            }
        }
    }
}
