//! [`Handle`], the cloneable way into a running node, and [`LokiMq`], its owner.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{TaggedThreadId, TimerId, WorkerId};
use lokimq_core::keys::PublicKey;
use lokimq_core::node::{
    ConnectOptions, ConnectSnOptions, ConnectionId, ReplyTarget, RequestError, RequestOptions,
    SendError, SendOptions, Stats, Target,
};
use lokimq_core::time::Instant;

use crate::batch::{Batch, into_erased};
use crate::builder::Builder;
use crate::message::Message;
use crate::proxy::Proxy;
use crate::proxy::workers::Task;
use crate::{Error, Listen, ToAddress};

/// A command callback: runs on a worker thread for each incoming command.
pub(crate) type CommandFn = Arc<dyn Fn(&mut Message) + Send + Sync>;
/// A listener's allow function: `(ip, client key, is active service node) -> level`.
pub(crate) type AllowFn = Arc<dyn Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync>;
/// Called once when a listener is bound (with the address bound) or fails (with the reason).
pub(crate) type OnBind = Box<dyn FnOnce(Result<Address, String>) + Send>;
/// Answers "where does this service node listen?".
pub(crate) type SnLookupFn = Arc<dyn Fn(&PublicKey) -> Option<Address> + Send + Sync>;
/// A request's reply callback.
pub(crate) type ReplyFn = Box<dyn FnOnce(Result<Vec<Bytes>, RequestError>) + Send>;
/// A timer's callback.
pub(crate) type TimerFn = Arc<dyn Fn() + Send + Sync>;
type OnConnect = Box<dyn FnOnce(ConnectionId) + Send>;
type OnFailure = Box<dyn FnOnce(ConnectionId, String) + Send>;

/// The callbacks of one `connect_remote`/`connect_inproc`; exactly one of them is called.
pub(crate) struct ConnectCallbacks {
    pub(crate) on_connect: Option<OnConnect>,
    pub(crate) on_failure: Option<OnFailure>,
}

/// What other threads post to the proxy. Worker completions and application commands share
/// one channel, so a reply a handler sent is handled before that handler's `JobFinished`.
pub(crate) enum ProxyMsg {
    JobFinished(WorkerId),
    Call(Box<dyn FnOnce(&mut Proxy) + Send>),
}

/// Which of the driver's threads the current thread is (for the calls that must not block
/// the proxy on itself, and for `Drop` on a worker).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ThreadRole {
    Other,
    Proxy,
    Worker,
}

thread_local! {
    static ROLE: Cell<ThreadRole> = const { Cell::new(ThreadRole::Other) };
}

impl ThreadRole {
    pub(crate) fn enter(self) {
        ROLE.with(|r| r.set(self));
    }

    pub(crate) fn current() -> Self {
        ROLE.with(Cell::get)
    }
}

/// Runs a callback, logging (not propagating) a panic: OxenMQ logs exceptions from handlers,
/// timers and completions and carries on.
pub(crate) fn run_guarded(what: &str, f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        tracing::error!("{what} panicked: {}", panic_message(payload.as_ref()));
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("(non-text panic payload)")
    }
}

pub(crate) struct Shared {
    tx: Sender<ProxyMsg>,
    waker: mio::Waker,
    /// Set when a wake is pending, so a burst of posts costs one wake.
    wake_pending: AtomicBool,
    pubkey: PublicKey,
    tagged_threads: u16,
    categories: BTreeSet<String>,
}

impl Shared {
    pub(crate) fn new(
        tx: Sender<ProxyMsg>,
        waker: mio::Waker,
        pubkey: PublicKey,
        tagged_threads: u16,
        categories: BTreeSet<String>,
    ) -> Self {
        Self {
            tx,
            waker,
            wake_pending: AtomicBool::new(false),
            pubkey,
            tagged_threads,
            categories,
        }
    }
}

/// A cheap, cloneable, `Send + Sync` handle to a running node: everything OxenMQ lets any
/// thread do (send, request, connect, jobs, batches, timers, …).
///
/// Every call posts a message to the proxy thread and returns without waiting, except the
/// few that return an id the proxy assigns (`connect_remote`, `connect_inproc`, `add_timer`,
/// `stats`, `is_connected`): those wait for the proxy's answer, which takes microseconds, and
/// return [`Error::OnProxyThread`] when called on the proxy thread itself. After shutdown every
/// call returns [`Error::Stopped`].
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("pubkey", &self.shared.pubkey)
            .finish_non_exhaustive()
    }
}

/// Converts data parts into frames.
fn frames<D, B>(data: D) -> Vec<Bytes>
where
    D: IntoIterator<Item = B>,
    B: Into<Bytes>,
{
    data.into_iter().map(Into::into).collect()
}

fn log_send_error(e: &SendError) {
    match e {
        SendError::NoConnection(_) => tracing::debug!("{e}"),
        _ => tracing::warn!("{e}"),
    }
}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    // ----- plumbing -----

    /// Posts a closure to run on the proxy thread.
    pub(crate) fn post(&self, f: impl FnOnce(&mut Proxy) + Send + 'static) -> Result<(), Error> {
        self.send_msg(ProxyMsg::Call(Box::new(f)))
    }

    fn send_msg(&self, msg: ProxyMsg) -> Result<(), Error> {
        self.shared.tx.send(msg).map_err(|_| Error::Stopped)?;
        if !self.shared.wake_pending.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.shared.waker.wake() {
                tracing::error!("could not wake the proxy thread: {e}");
            }
        }
        Ok(())
    }

    /// Called by the proxy before it drains the channel.
    pub(crate) fn clear_wake_flag(&self) {
        self.shared.wake_pending.store(false, Ordering::SeqCst);
    }

    /// A worker's report; never fails while the proxy waits for it.
    pub(crate) fn job_finished(&self, worker: WorkerId) {
        if self.send_msg(ProxyMsg::JobFinished(worker)).is_err() {
            tracing::debug!("worker {worker} finished after the proxy stopped");
        }
    }

    /// Runs `f` on the proxy thread and waits for its result.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Proxy) -> T + Send + 'static,
    ) -> Result<T, Error> {
        if ThreadRole::current() == ThreadRole::Proxy {
            return Err(Error::OnProxyThread);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.post(move |p| {
            // The caller may have given up (it cannot: it blocks), so ignore a closed channel.
            let _ = tx.send(f(p));
        })?;
        rx.recv().map_err(|_| Error::Stopped)
    }

    /// Posts a fire-and-forget send; the proxy logs a failure to queue it, as OxenMQ does.
    fn post_send(
        &self,
        send: impl FnOnce(&mut Proxy, Instant) -> Result<(), SendError> + Send + 'static,
    ) -> Result<(), Error> {
        self.post(move |p| {
            let now = p.now();
            if let Err(e) = send(p, now) {
                log_send_error(&e);
            }
        })
    }

    /// Opens a connection on the proxy thread and registers its callbacks under the id it got.
    fn call_connect(
        &self,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, String) + Send + 'static,
        connect: impl FnOnce(&mut Proxy, Instant) -> ConnectionId + Send + 'static,
    ) -> Result<ConnectionId, Error> {
        let callbacks = ConnectCallbacks {
            on_connect: Some(Box::new(on_connect)),
            on_failure: Some(Box::new(on_failure)),
        };
        self.call(move |p| {
            let now = p.now();
            let conn = connect(p, now);
            if let ConnectionId::Outgoing { id, .. } = &conn {
                p.cb.connects.insert(*id, callbacks);
            }
            conn
        })
    }

    fn check_thread(&self, thread: TaggedThreadId) -> Result<(), Error> {
        if thread.get() < self.shared.tagged_threads {
            Ok(())
        } else {
            Err(Error::UnknownTaggedThread(thread.get()))
        }
    }

    fn check_target(&self, target: Target) -> Result<(), Error> {
        match target {
            Target::Tagged(t) => self.check_thread(t),
            Target::Worker | Target::InDriver => Ok(()),
        }
    }

    // ----- identity -----

    /// This node's x25519 public key.
    #[must_use]
    pub fn pubkey(&self) -> &PublicKey {
        &self.shared.pubkey
    }

    // ----- sending -----

    /// Sends `[command, data…]` to `to` (OxenMQ's `send`): fire and forget. To a service node by
    /// key, this opens a connection if there is none (looking the address up with `sn_lookup`).
    /// Failures to queue are logged by the proxy, as OxenMQ logs them.
    pub fn send<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.send_with(to, command, data, SendOptions::default())
    }

    /// [`send`](Self::send) with OxenMQ's send options (`optional`, `incoming`, `outgoing`,
    /// `hint`, `keep_alive`).
    pub fn send_with<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        opts: SendOptions,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let to = to.clone();
        let command = command.into();
        let data = frames(data);
        self.post_send(move |p, now| p.node.send(now, &to, command, data, &opts))
    }

    /// [`send_with`](Self::send_with) with OxenMQ's `send_option::queue_failure`: if the
    /// message cannot be queued (the peer's unsent backlog is over the high-water mark, there
    /// is no connection for an `optional` send, the id is stale, …), `on_failure` runs on a
    /// worker with the reason instead of the failure only being logged.
    ///
    /// ```no_run
    /// # fn f(h: &lokimq::Handle, conn: &lokimq::ConnectionId) -> Result<(), lokimq::Error> {
    /// use lokimq::{SendError, SendOptions};
    /// h.send_with_queue_failure(conn, "chat.msg", ["hi"], SendOptions::default(), |e| {
    ///     if matches!(e, SendError::WouldBlock(_)) {
    ///         eprintln!("peer is not reading; dropping its notification");
    ///     }
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn send_with_queue_failure<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        opts: SendOptions,
        on_failure: impl FnOnce(SendError) + Send + 'static,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let to = to.clone();
        let command = command.into();
        let data = frames(data);
        self.post(move |p| {
            let now = p.now();
            if let Err(e) = p.node.send(now, &to, command, data, &opts) {
                tracing::debug!("{e}");
                let report = Box::new(move || on_failure(e));
                if let Err(e) = p.queue_task(now, report, Target::Worker) {
                    tracing::debug!("queue failure not reported: {e}");
                }
            }
        })
    }

    /// Sends a request (OxenMQ's `request`): `[command, tag, data…]`; `callback` runs on a
    /// worker with the reply parts, or an error: `TIMEOUT` (no reply in time, or the request
    /// could not be sent at all), `FORBIDDEN`, `UNKNOWNCOMMAND`, …
    pub fn request<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        callback: impl FnOnce(Result<Vec<Bytes>, RequestError>) + Send + 'static,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.request_with(to, command, data, RequestOptions::default(), callback)
    }

    /// [`request`](Self::request) with options (send options and the reply timeout).
    pub fn request_with<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        opts: RequestOptions,
        callback: impl FnOnce(Result<Vec<Bytes>, RequestError>) + Send + 'static,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let to = to.clone();
        let command = command.into();
        let data = frames(data);
        let callback: ReplyFn = Box::new(callback);
        self.post(move |p| {
            let now = p.now();
            match p.node.request(now, &to, command, data, &opts) {
                Ok(id) => {
                    p.cb.requests.insert(id, callback);
                }
                Err(e) => {
                    // OxenMQ: a request that cannot be sent fails with TIMEOUT, on a worker.
                    log_send_error(&e);
                    let report = Box::new(move || callback(Err(RequestError::Timeout)));
                    if let Err(e) = p.queue_task(now, report, Target::Worker) {
                        tracing::debug!("request failure not reported: {e}");
                    }
                }
            }
        })
    }

    pub(crate) fn reply_to(&self, target: ReplyTarget, data: Vec<Bytes>) -> Result<(), Error> {
        self.post_send(move |p, now| p.node.reply(now, &target, data))
    }

    pub(crate) fn send_back_to(
        &self,
        target: ReplyTarget,
        command: Bytes,
        data: Vec<Bytes>,
    ) -> Result<(), Error> {
        self.post_send(move |p, now| p.node.send_back(now, &target, command, data))
    }

    // ----- connections -----

    /// Connects to `addr` (`tcp://`, `ipc://`, or their CURVE forms `curve://HOST:PORT/KEY`,
    /// `ipc+curve://PATH/KEY`), sends `HI`, and calls `on_connect` (on a worker) when the
    /// remote answers `HELLO`, or `on_failure` with OxenMQ's reason (e.g. "connection attempt
    /// timed out"). Returns the connection's id at once; messages sent before it is up are
    /// queued. The connection persists (reconnecting) until [`disconnect`](Self::disconnect).
    pub fn connect_remote(
        &self,
        addr: impl ToAddress,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, String) + Send + 'static,
        opts: ConnectOptions,
    ) -> Result<ConnectionId, Error> {
        let addr = addr.to_address()?;
        self.call_connect(on_connect, on_failure, move |p, now| {
            p.node.connect_remote(now, addr, &opts)
        })
    }

    /// Connects to the node itself without a socket (OxenMQ's `connect_inproc`); commands the
    /// node receives over it have `auth` (default admin).
    pub fn connect_inproc(
        &self,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, String) + Send + 'static,
        auth: Option<AuthLevel>,
    ) -> Result<ConnectionId, Error> {
        self.call_connect(on_connect, on_failure, move |p, now| {
            p.node.connect_inproc(now, auth)
        })
    }

    /// Opens (or keeps alive) a CURVE connection to the service node `pubkey` (OxenMQ's
    /// `connect_sn`); the address comes from `opts.hint` or the `sn_lookup` callback.
    pub fn connect_sn(
        &self,
        pubkey: PublicKey,
        opts: ConnectSnOptions,
    ) -> Result<ConnectionId, Error> {
        self.post(move |p| {
            let now = p.now();
            let _conn = p.node.connect_sn(now, pubkey, &opts);
        })?;
        Ok(ConnectionId::Sn(pubkey))
    }

    /// Closes an outgoing connection after flushing for at most `linger` (OxenMQ's default is
    /// one second). An unknown id is logged.
    pub fn disconnect(&self, conn: &ConnectionId, linger: Duration) -> Result<(), Error> {
        let conn = conn.clone();
        self.post(move |p| {
            let now = p.now();
            // The node logs OxenMQ's warning for an unknown id.
            let _ = p.node.disconnect(now, &conn, linger);
        })
    }

    /// Replaces the set of active service nodes.
    pub fn set_active_sns(&self, sns: impl IntoIterator<Item = PublicKey>) -> Result<(), Error> {
        let sns: BTreeSet<PublicKey> = sns.into_iter().collect();
        self.post(move |p| {
            let now = p.now();
            p.node.set_active_sns(now, sns);
        })
    }

    /// Adds and removes active service nodes (a key in both counts as added).
    pub fn update_active_sns(
        &self,
        added: impl IntoIterator<Item = PublicKey>,
        removed: impl IntoIterator<Item = PublicKey>,
    ) -> Result<(), Error> {
        let added: BTreeSet<PublicKey> = added.into_iter().collect();
        let removed: BTreeSet<PublicKey> = removed.into_iter().collect();
        self.post(move |p| {
            let now = p.now();
            p.node.update_active_sns(now, &added, &removed);
        })
    }

    /// Starts listening on another address after start (OxenMQ's post-start `listen_*`); the
    /// listen's `on_bind` runs on the proxy thread with the result, so keep it short.
    pub fn listen(&self, listen: Listen) -> Result<(), Error> {
        self.post(move |p| p.add_listener(listen))
    }

    // ----- jobs -----

    /// Runs `f` once on the batch pool, or on a tagged thread (OxenMQ's `job`). A panic is
    /// logged and swallowed.
    pub fn job(
        &self,
        f: impl FnOnce() + Send + 'static,
        thread: Option<TaggedThreadId>,
    ) -> Result<(), Error> {
        if let Some(t) = thread {
            self.check_thread(t)?;
        }
        let task: Task = Box::new(f);
        self.post(move |p| {
            let now = p.now();
            if let Err(e) = p.queue_task(now, task, Target::from(thread)) {
                tracing::warn!("job not queued: {e}");
            }
        })
    }

    /// Runs a [`Batch`]: its jobs in parallel, then its completion with every result.
    pub fn batch<R: Send + 'static>(&self, batch: Batch<R>) -> Result<(), Error> {
        let (targets, completion, erased) = into_erased(batch)?;
        for t in &targets {
            self.check_target(*t)?;
        }
        if let lokimq_core::node::Completion::Tagged(t) = completion {
            self.check_thread(t)?;
        }
        self.post(move |p| {
            let now = p.now();
            match p.node.submit_batch(now, &targets, completion) {
                Ok(id) => {
                    p.cb.batches.insert(id, erased);
                }
                Err(e) => tracing::warn!("batch not queued: {e}"),
            }
        })
    }

    /// Runs `f` as if it were an incoming command of `category`, under that category's
    /// reserved threads and queue limit (OxenMQ's `inject_task`). `command_name` and `remote`
    /// are for logs.
    pub fn inject_task(
        &self,
        category: &str,
        command_name: &str,
        remote: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        if !self.shared.categories.contains(category) {
            return Err(Error::UnknownCategory(category.to_owned()));
        }
        let category = category.to_owned();
        let what = format!("{category}.{command_name} from {remote}");
        let task: Task = Box::new(f);
        self.post(move |p| {
            let now = p.now();
            let id = p.cb.add_task(task);
            match p.node.inject_task(now, &category, id) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("injected task {what} dropped: queue full");
                    p.cb.tasks.remove(&id);
                }
                Err(e) => {
                    tracing::warn!("injected task {what} not queued: {e}");
                    p.cb.tasks.remove(&id);
                }
            }
        })
    }

    /// Adds a repeating timer (OxenMQ's `add_timer`): `f` runs every `interval` on the batch
    /// pool, a tagged thread, or the proxy thread itself ([`Target::InDriver`], keep it short).
    /// With `squelch`, a firing is skipped while the previous one is still queued or running.
    pub fn add_timer(
        &self,
        f: impl Fn() + Send + Sync + 'static,
        interval: Duration,
        squelch: bool,
        target: Target,
    ) -> Result<TimerId, Error> {
        self.check_target(target)?;
        let f: TimerFn = Arc::new(f);
        self.call(move |p| {
            let now = p.now();
            let id = p.node.add_timer(now, interval, squelch, target)?;
            p.cb.timers.insert(id, f);
            Ok(id)
        })?
    }

    /// Cancels a timer (idempotent); a firing already running finishes.
    pub fn cancel_timer(&self, timer: TimerId) -> Result<(), Error> {
        self.post(move |p| {
            let now = p.now();
            let _known = p.node.cancel_timer(now, timer);
        })
    }

    // ----- introspection -----

    /// The node's counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.call(|p| p.node.stats())
    }

    /// True if the outgoing connection `conn` is established (or, for an incoming id, still
    /// open).
    pub fn is_connected(&self, conn: &ConnectionId) -> Result<bool, Error> {
        let conn = conn.clone();
        self.call(move |p| p.node.is_connected(&conn))
    }
}

/// A started node: owns the proxy thread, and dereferences to its [`Handle`].
///
/// Dropping it shuts the node down as OxenMQ's destructor does: queued work is discarded,
/// pending request and connect callbacks are never called, running handlers are waited for,
/// connections are closed (lingering up to `close_linger` for unsent bytes), and every thread
/// is joined.
pub struct LokiMq {
    handle: Handle,
    proxy: Option<JoinHandle<()>>,
    bound: Vec<Address>,
}

impl fmt::Debug for LokiMq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LokiMq")
            .field("pubkey", self.handle.pubkey())
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl LokiMq {
    /// A builder with OxenMQ's defaults.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn new(handle: Handle, proxy: JoinHandle<()>, bound: Vec<Address>) -> Self {
        Self {
            handle,
            proxy: Some(proxy),
            bound,
        }
    }

    /// A handle for other threads.
    #[must_use]
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The addresses the builder's listeners were bound to (actual ports, and the node's key
    /// for CURVE listeners), in the order they were added.
    #[must_use]
    pub fn bound_addresses(&self) -> &[Address] {
        &self.bound
    }

    /// Shuts down and waits (the same as dropping it, spelled out).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Deref for LokiMq {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for LokiMq {
    fn drop(&mut self) {
        // If the proxy is already gone there is nothing to tell it.
        let _ = self.handle.post(Proxy::begin_shutdown);
        let Some(join) = self.proxy.take() else {
            return;
        };
        match ThreadRole::current() {
            ThreadRole::Other => {
                if join.join().is_err() {
                    tracing::error!("the proxy thread panicked");
                }
            }
            role => {
                // Waiting here would wait for ourselves: the proxy waits for this job to end.
                tracing::warn!(
                    "LokiMq dropped on its own {role:?} thread; not waiting for shutdown"
                );
            }
        }
    }
}
