//! [`Handle`], the cloneable way into a running node, and [`LokiMq`], its owner.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{TaggedThreadId, TimerId};
use lokimq_core::keys::PublicKey;
use lokimq_core::node::{
    ConnectError, ConnectOptions, ConnectSnOptions, ConnectionId, NodeError, ReplyTarget,
    RequestError, RequestOptions, SendError, SendOptions, Stats, Target,
};
use lokimq_core::registry::Registry;
use lokimq_core::sched;
use lokimq_core::time::Instant;

use crate::asynk::{Connecting, Fill, Reply, Sending};
use crate::batch::{Batch, into_erased};
use crate::builder::Builder;
use crate::kit::Host;
use crate::kit::jobs::Task;
use crate::message::Message;
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
/// `send_with_queue_failure`'s callback.
type QueueFailureFn = Box<dyn FnOnce(SendError) + Send>;
type OnConnect = Box<dyn FnOnce(ConnectionId) + Send>;
type OnFailure = Box<dyn FnOnce(ConnectionId, ConnectError) + Send>;

/// The callbacks of one `connect_remote`/`connect_inproc`; exactly one of them is called.
pub(crate) struct ConnectCallbacks {
    pub(crate) on_connect: Option<OnConnect>,
    pub(crate) on_failure: Option<OnFailure>,
}

/// What other threads post to the proxy. Worker completions and application commands share
/// one channel, so a reply a handler sent is handled before that handler's `JobFinished`.
pub(crate) enum ProxyMsg {
    /// A worker left scheduler outputs (or jobs it could not run) for the proxy.
    Poke,
    Call(Box<dyn FnOnce(&mut Host) + Send>),
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

    /// Takes this role until the guard drops, then restores the thread's previous one.
    pub(crate) fn scope(self) -> RoleGuard {
        RoleGuard(ROLE.with(|r| r.replace(self)))
    }
}

/// Restores a thread's previous role (see [`ThreadRole::scope`]).
pub(crate) struct RoleGuard(ThreadRole);

impl Drop for RoleGuard {
    fn drop(&mut self) {
        ROLE.with(|r| r.set(self.0));
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
    /// Wakes the thread that runs the node (the native driver's mio `Waker`; nothing for an
    /// embedder that looks at its posts every turn anyway).
    waker: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
    /// Set when a post is waiting for the proxy, so a burst of posts costs one wake.
    wake_pending: AtomicBool,
    /// Clear only while the proxy sleeps (or is about to) in `poll`: posts made while it is
    /// awake need no wake-up system call, since it looks at `wake_pending` before sleeping.
    proxy_awake: AtomicBool,
    pubkey: PublicKey,
    tagged_threads: u16,
    /// The node's registry (a copy), so calls naming a category are checked by the core's rule
    /// before they are posted.
    registry: Registry,
    /// Ids for `connect_remote`/`connect_inproc` and for timers are handed out here, as
    /// OxenMQ hands them out from a shared counter, so those calls return at once (and work on
    /// the proxy thread) instead of waiting for the proxy to pick one.
    next_conn_id: AtomicU64,
    next_timer_id: AtomicU64,
    /// Every address a listener is bound to, for `bound_addresses`.
    bound: Mutex<Vec<Address>>,
}

impl Shared {
    pub(crate) fn new(
        tx: Sender<ProxyMsg>,
        waker: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
        pubkey: PublicKey,
        tagged_threads: u16,
        registry: Registry,
        first_timer_id: u64,
    ) -> Self {
        Self {
            tx,
            waker,
            wake_pending: AtomicBool::new(false),
            proxy_awake: AtomicBool::new(true),
            pubkey,
            tagged_threads,
            registry,
            next_conn_id: AtomicU64::new(1),
            next_timer_id: AtomicU64::new(first_timer_id),
            bound: Mutex::new(Vec::new()),
        }
    }
}

/// A cheap, cloneable, `Send + Sync` handle to a running node: everything OxenMQ lets any
/// thread do (send, request, connect, jobs, batches, timers, …).
///
/// Get one from [`LokiMq::handle`] (or [`Message::handle`] inside a command callback) and
/// clone it into every thread that needs the node. Every call posts a message to the proxy
/// thread and returns without waiting (ids for `connect_remote`, `connect_inproc` and
/// `add_timer` are handed out by the handle itself, as OxenMQ does), except the two that
/// return something only the proxy knows (`stats`, `is_connected`): those wait for the proxy's
/// answer, which takes microseconds, and return [`Error::OnProxyThread`] when called on the
/// proxy thread itself. Calls made from one thread are handled in the order
/// they were made. Once the node has shut down every call returns [`Error::Stopped`].
///
/// ```
/// use lokimq::{Error, LokiMq};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let node = LokiMq::builder().start()?;
/// let (tx, rx) = mpsc::channel();
/// let threads: Vec<_> = (0..3u32)
///     .map(|i| {
///         let (h, tx) = (node.handle().clone(), tx.clone()); // one clone per thread
///         std::thread::spawn(move || h.job(move || { let _ = tx.send(i * 10); }, None))
///     })
///     .collect();
/// for t in threads {
///     t.join().expect("thread panicked")?;
/// }
/// let mut got = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(10))).collect::<Result<Vec<_>, _>>()?;
/// got.sort_unstable();
/// assert_eq!(got, [0, 10, 20]);
///
/// // A handle may outlive its node; it is then refused, never dangling.
/// let h = node.handle().clone();
/// drop(node);
/// assert!(matches!(h.job(|| {}, None), Err(Error::Stopped)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    // ----- plumbing -----

    /// Posts a closure to run on the proxy thread.
    pub(crate) fn post(&self, f: impl FnOnce(&mut Host) + Send + 'static) -> Result<(), Error> {
        self.send_msg(ProxyMsg::Call(Box::new(f)))
    }

    fn send_msg(&self, msg: ProxyMsg) -> Result<(), Error> {
        self.shared.tx.send(msg).map_err(|_| Error::Stopped)?;
        // Both sides use SeqCst: either the proxy sees `wake_pending` before it sleeps, or
        // this thread sees it asleep and wakes it (see `Handle::proxy_may_sleep`).
        if !self.shared.wake_pending.swap(true, Ordering::SeqCst)
            && !self.shared.proxy_awake.load(Ordering::SeqCst)
        {
            if let Err(e) = (self.shared.waker)() {
                tracing::error!("could not wake the proxy thread: {e}");
            }
        }
        Ok(())
    }

    /// Called by the proxy before it drains the channel.
    pub(crate) fn clear_wake_flag(&self) {
        self.shared.wake_pending.store(false, Ordering::SeqCst);
    }

    /// Called by the proxy just before it sleeps in `poll`: from here on a post wakes it.
    /// Returns false (and stays awake) if a post is already waiting, which it must then
    /// handle instead of sleeping.
    pub(crate) fn proxy_may_sleep(&self) -> bool {
        self.shared.proxy_awake.store(false, Ordering::SeqCst);
        if self.shared.wake_pending.load(Ordering::SeqCst) {
            self.shared.proxy_awake.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Called by the proxy when it wakes from `poll`.
    pub(crate) fn proxy_woke(&self) {
        self.shared.proxy_awake.store(true, Ordering::SeqCst);
    }

    /// Makes the proxy drain the node: a worker left scheduler outputs behind.
    pub(crate) fn poke(&self) {
        if self.send_msg(ProxyMsg::Poke).is_err() {
            tracing::debug!("a worker poked the proxy after it stopped");
        }
    }

    /// Runs `f` on the proxy thread and waits for its result.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Host) -> T + Send + 'static,
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
        send: impl FnOnce(&mut Host, Instant) -> Result<(), SendError> + Send + 'static,
    ) -> Result<(), Error> {
        self.post(move |p| {
            let now = p.now();
            if let Err(e) = send(p, now) {
                p.log_send_error(&e);
            }
        })
    }

    /// Opens a connection on the proxy thread and registers its callbacks under the id it got.
    /// Opens a connection under a fresh id on the proxy thread, with its callbacks; returns
    /// the id at once.
    fn post_connect(
        &self,
        pubkey: Option<PublicKey>,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, ConnectError) + Send + 'static,
        connect: impl FnOnce(&mut Host, Instant, u64) -> Result<ConnectionId, NodeError>
        + Send
        + 'static,
    ) -> Result<ConnectionId, Error> {
        let id = self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
        self.post_connect_as(id, pubkey, on_connect, on_failure, connect)
    }

    /// [`post_connect`](Self::post_connect) under an id already taken from the counter.
    fn post_connect_as(
        &self,
        id: u64,
        pubkey: Option<PublicKey>,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, ConnectError) + Send + 'static,
        connect: impl FnOnce(&mut Host, Instant, u64) -> Result<ConnectionId, NodeError>
        + Send
        + 'static,
    ) -> Result<ConnectionId, Error> {
        let conn = ConnectionId::Outgoing { id, pubkey };
        let callbacks = ConnectCallbacks {
            on_connect: Some(Box::new(on_connect)),
            on_failure: Some(Box::new(on_failure)),
        };
        let failed = conn.clone();
        self.post(move |p| {
            let now = p.now();
            p.jobs().closures().connects.insert(id, callbacks);
            if let Err(e) = connect(p, now, id) {
                // Only this counter hands out ids, so they are never in use; but if one were,
                // the caller must still hear about it.
                if !matches!(e, NodeError::Stopped) {
                    tracing::error!("connection {id} not opened: {e}");
                }
                let callbacks = p.jobs().closures().connects.remove(&id);
                if let Some(on_failure) = callbacks.and_then(|c| c.on_failure) {
                    // The node refuses new connections once it is shutting down.
                    let report = Box::new(move || on_failure(failed, ConnectError::Closed));
                    if let Err(e) = p.queue_task(report, Target::Worker) {
                        tracing::debug!("connect failure not reported: {e}");
                    }
                }
            }
        })?;
        Ok(conn)
    }

    /// The core's rule, checked here because a posted closure never returns the core's answer.
    fn check_thread(&self, thread: TaggedThreadId) -> Result<(), Error> {
        Ok(sched::check_tagged_thread(
            thread,
            usize::from(self.shared.tagged_threads),
        )?)
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
    /// On a connection that is not up yet the message is queued until it is. Failures to queue
    /// are logged by the proxy, as OxenMQ logs them (see
    /// [`send_with_queue_failure`](Self::send_with_queue_failure) to be told instead).
    ///
    /// ```
    /// use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    /// let mut b = LokiMq::builder();
    /// b.add_category("chat", AuthLevel::None)?
    ///     .add_command("chat", "msg", move |m| { let _ = tx.send(m.data().to_vec()); })?
    ///     .listen_plain(any_port, |_ip, _key, _sn| AuthLevel::None)?;
    /// let server = b.start()?;
    ///
    /// let client = LokiMq::builder().start()?;
    /// let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
    ///                                  ConnectOptions::default())?;
    /// // No need to wait for the connection: the message waits for it.
    /// client.handle().send(&conn, "chat.msg", ["hello", "world"])?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, ["hello", "world"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// [`send`](Self::send) with OxenMQ's send options: `optional` (only over an existing
    /// connection, never open one), `incoming` (only over a connection the peer made to us),
    /// `outgoing` (only over one we made; for a service node, open one if needed), and for a
    /// service node that needs a new connection, `hint` (its address, instead of asking
    /// `sn_lookup`) and `keep_alive` (how long the connection may stay idle).
    ///
    /// ```
    /// # use lokimq::{AuthLevel, LokiMq};
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// # let (tx, rx) = mpsc::channel();
    /// # let mut b = LokiMq::builder();
    /// # b.add_category("sn", AuthLevel::None)?
    /// #     .add_command("sn", "ping", move |m| { let _ = tx.send(m.data().to_vec()); })?
    /// #     .listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let sn = b.start()?;
    /// use lokimq::{ConnectionId, SendOptions};
    /// // `sn` is a node with a CURVE listener and an `sn.ping` command.
    /// let to = ConnectionId::Sn(*sn.pubkey());
    /// let client = LokiMq::builder().start()?;
    /// let optional = || SendOptions::default().optional(true);
    ///
    /// // No connection yet: an optional send is dropped (and logged), nothing is opened.
    /// client.handle().send_with(&to, "sn.ping", ["first"], optional())?;
    /// // A strong send opens one, to the hinted address, idle-closed after a minute.
    /// let opts = SendOptions::default().hint(sn.bound_addresses()[0].clone()).keep_alive(Duration::from_secs(60));
    /// client.handle().send_with(&to, "sn.ping", ["second"], opts)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, ["second"]);
    /// // Now there is a connection, so optional sends go out.
    /// client.handle().send_with(&to, "sn.ping", ["third"], optional())?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, ["third"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        self.post_node_send(to, command.into(), frames(data), opts, None)
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
        let on_failure: QueueFailureFn = Box::new(on_failure);
        self.post_node_send(to, command.into(), frames(data), opts, Some(on_failure))
    }

    /// `Node::send` on the proxy thread; a failure goes to `on_failure` on a worker, or to the
    /// log without one.
    fn post_node_send(
        &self,
        to: &ConnectionId,
        command: Bytes,
        data: Vec<Bytes>,
        opts: SendOptions,
        on_failure: Option<QueueFailureFn>,
    ) -> Result<(), Error> {
        let to = to.clone();
        self.post(move |p| {
            let now = p.now();
            let Err(e) = p.node.send(now, &to, command, data, &opts) else {
                return;
            };
            let Some(on_failure) = on_failure else {
                p.log_send_error(&e);
                return;
            };
            tracing::debug!("{e}");
            if let Err(e) = p.queue_task(Box::new(move || on_failure(e)), Target::Worker) {
                tracing::debug!("queue failure not reported: {e}");
            }
        })
    }

    /// Sends a request (OxenMQ's `request`): `[command, tag, data…]`; `callback` runs once, on a
    /// worker, with the reply parts or a [`RequestError`]: `Timeout` (no reply within the
    /// config's `request_timeout`, 15 s by default, or the request could not be sent at all),
    /// or the remote's refusal (`Forbidden`, `ForbiddenSn`, `NotAServiceNode`,
    /// `UnknownCommand`, …).
    ///
    /// ```
    /// # use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// # let mut b = LokiMq::builder();
    /// # b.add_category("demo", AuthLevel::None)?
    /// #     .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
    /// #     .listen_plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let server = b.start()?;
    /// # let client = LokiMq::builder().start()?;
    /// # let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
    /// #                                  ConnectOptions::default())?;
    /// use lokimq::{Bytes, RequestError};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// fn describe(reply: Result<Vec<Bytes>, RequestError>) -> String {
    ///     match reply {
    ///         Ok(parts) => format!("{} part(s)", parts.len()),
    ///         Err(RequestError::Timeout) => "no answer".to_owned(),
    ///         Err(RequestError::UnknownCommand) => "no such command".to_owned(),
    ///         Err(RequestError::Forbidden | RequestError::ForbiddenSn) => "not allowed".to_owned(),
    ///         Err(other) => format!("refused: {other}"),
    ///     }
    /// }
    ///
    /// // `server` has a `demo.echo` request command and nothing else.
    /// let (tx, rx) = mpsc::channel();
    /// let tx2 = tx.clone();
    /// client.handle().request(&conn, "demo.echo", ["a", "b"], move |r| { let _ = tx.send(describe(r)); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "2 part(s)");
    /// client.handle().request(&conn, "demo.nonesuch", ["a"], move |r| { let _ = tx2.send(describe(r)); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "no such command");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// [`request`](Self::request) with options: the reply timeout (instead of the config's
    /// `request_timeout`) and how the request is sent ([`SendOptions`], as for
    /// [`send_with`](Self::send_with)).
    ///
    /// ```
    /// # use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// # let mut b = LokiMq::builder();
    /// # b.add_category("demo", AuthLevel::None)?
    /// #     .add_request_command("demo", "slow", |_m| {})?
    /// #     .listen_plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let server = b.start()?;
    /// # let client = LokiMq::builder().start()?;
    /// # let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
    /// #                                  ConnectOptions::default())?;
    /// use lokimq::{RequestError, RequestOptions};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// // `demo.slow` never replies; give up after 200 ms instead of 15 s.
    /// let opts = RequestOptions::default().timeout(Duration::from_millis(200));
    /// let (tx, rx) = mpsc::channel();
    /// client.handle().request_with(&conn, "demo.slow", ["x"], opts, move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, Err(RequestError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
            // Workers take jobs from the shared scheduler themselves, so one could run this
            // request's reply job (a failure decided inside `request`) before its callback is
            // in the table: hold the table's lock until it is.
            let jobs = p.jobs();
            let mut closures = jobs.closures();
            match p.node.request(now, &to, command, data, &opts) {
                Ok(id) => {
                    closures.requests.insert(id, callback);
                }
                Err(e) => {
                    drop(closures);
                    // OxenMQ: a request that cannot be sent fails with TIMEOUT, on a worker.
                    p.log_send_error(&e);
                    let report = Box::new(move || callback(Err(RequestError::Timeout)));
                    if let Err(e) = p.queue_task(report, Target::Worker) {
                        tracing::debug!("request failure not reported: {e}");
                    }
                }
            }
        })
    }

    /// [`request`](Self::request) as a future: the reply's data parts, or why there are none
    /// (`Timeout`, `Forbidden`, `UnknownCommand`, …). Needs no runtime (works with tokio,
    /// async-std, smol or a plain `block_on`), and no worker thread waits for it. A node that
    /// is already shut down, or shuts down before the reply, ends it with
    /// [`RequestError::Timeout`], as OxenMQ fails a request it cannot send.
    ///
    /// ```
    /// # use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// # let mut b = LokiMq::builder();
    /// # b.add_category("demo", AuthLevel::None)?
    /// #     .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
    /// #     .listen_plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let server = b.start()?;
    /// let client = LokiMq::builder().start()?;
    /// let h = client.handle();
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     struct T(std::thread::Thread);
    /// #     impl std::task::Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let w = std::task::Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut std::task::Context::from_waker(&w)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// // Any executor; `block_on` here is a few lines of std (hidden).
    /// let parts = block_on(async {
    ///     let conn = h.connect_remote_async(&server.bound_addresses()[0], ConnectOptions::default())?
    ///         .await?;
    ///     // Several requests in flight at once, answered in any order.
    ///     let (a, b) = (h.request_async(&conn, "demo.echo", ["a"]), h.request_async(&conn, "demo.echo", ["b"]));
    ///     let mut parts = a.await?;
    ///     parts.extend(b.await?);
    ///     Ok::<_, Box<dyn std::error::Error>>(parts)
    /// })?;
    /// assert_eq!(parts, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request_async<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
    ) -> Reply
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.request_async_with(to, command, data, RequestOptions::default())
    }

    /// [`request_async`](Self::request_async) with OxenMQ's request options (a timeout, send
    /// options).
    pub fn request_async_with<D, B>(
        &self,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: D,
        opts: RequestOptions,
    ) -> Reply
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let (fill, reply) = Reply::new();
        // If the node is gone the callback (and its `fill`) is dropped, which ends the future.
        let _ = self.request_with(to, command, data, opts, move |r| fill.fill(r));
        reply
    }

    /// [`connect_remote`](Self::connect_remote) as a future: resolves to the connection's id
    /// once the remote said `HELLO`, or to OxenMQ's failure text. The id is also available at
    /// once from [`Connecting::conn`] (sends made before the connection is up wait for it).
    ///
    /// # Errors
    ///
    /// An address that does not parse, or [`Error::Stopped`].
    pub fn connect_remote_async(
        &self,
        addr: impl ToAddress,
        opts: ConnectOptions,
    ) -> Result<Connecting, Error> {
        let addr = addr.to_address()?;
        let pubkey = addr.pubkey().copied();
        let id = self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let conn = ConnectionId::Outgoing { id, pubkey };
        let (fill, connecting) = Connecting::new(conn);
        let fill = Arc::new(Mutex::new(Some(fill)));
        let on_failure = Arc::clone(&fill);
        let take = |f: &Mutex<Option<Fill<Result<ConnectionId, ConnectError>>>>| {
            f.lock().unwrap_or_else(PoisonError::into_inner).take()
        };
        self.post_connect_as(
            id,
            pubkey,
            move |c| {
                if let Some(f) = take(&fill) {
                    f.fill(Ok(c));
                }
            },
            move |_, why| {
                if let Some(f) = take(&on_failure) {
                    f.fill(Err(why));
                }
            },
            move |p, now, id| p.node.connect_remote_as(now, id, addr, &opts),
        )?;
        Ok(connecting)
    }

    /// [`send`](Self::send) that waits for room instead of failing with
    /// [`SendError::WouldBlock`] when the peer's unsent backlog is at the high-water mark:
    /// resolves once the message is queued, or with the reason it never can be. Use it to let
    /// a fast producer run at the pace of a slow consumer.
    pub fn send_async<D, B>(&self, to: &ConnectionId, command: impl Into<Bytes>, data: D) -> Sending
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let (fill, sending) = Sending::new();
        let to = to.clone();
        let (command, data) = (command.into(), frames(data));
        // Dropped with the closure if the node is gone, which ends the future.
        let _ = self.post(move |p| p.send_when_room(to, command, data, fill));
        sending
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
    /// timed out"); exactly one of them is called, unless the node shuts down first. Returns
    /// the connection's id at once; messages sent before it is up are queued. Once up, the
    /// connection persists (reconnecting) until [`disconnect`](Self::disconnect).
    ///
    /// [`ConnectOptions`]: `auth_level` is what the remote's commands to us over this
    /// connection are granted (default `none`), `timeout` bounds the wait for `HELLO` (default
    /// the config's `remote_connect_timeout`, 10 s), and `ephemeral_routing_id` lets the
    /// remote assign our routing id instead of `L` + our key.
    ///
    /// ```
    /// # use lokimq::{AuthLevel, LokiMq};
    /// # let mut b = LokiMq::builder();
    /// # b.listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let server = b.start()?;
    /// use lokimq::{ConnectOptions};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let client = LokiMq::builder().start()?;
    /// let opts = ConnectOptions::default().auth_level(AuthLevel::Basic).timeout(Duration::from_secs(2)).ephemeral_routing_id(true);
    /// let (tx, rx) = mpsc::channel();
    /// let tx2 = tx.clone();
    /// let conn = client.handle().connect_remote(
    ///     &server.bound_addresses()[0], // curve://127.0.0.1:PORT/<server key>
    ///     move |c| { let _ = tx.send(Ok(c)); },
    ///     move |_, why| { let _ = tx2.send(Err(why)); },
    ///     opts,
    /// )?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, Ok(conn.clone()));
    /// assert_eq!(conn.pubkey(), Some(server.pubkey()));
    ///
    /// // Something that accepts TCP but never speaks ZMTP: no HELLO, so `on_failure` runs.
    /// let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let opts = ConnectOptions::default().timeout(Duration::from_millis(200));
    /// let (tx, rx) = mpsc::channel();
    /// client.handle().connect_remote(silent.local_addr()?, |_| {}, move |_, why| { let _ = tx.send(why); }, opts)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "connection attempt timed out");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_remote(
        &self,
        addr: impl ToAddress,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, String) + Send + 'static,
        opts: ConnectOptions,
    ) -> Result<ConnectionId, Error> {
        let addr = addr.to_address()?;
        let pubkey = addr.pubkey().copied();
        let on_failure = move |c, e: ConnectError| on_failure(c, e.to_string());
        self.post_connect(pubkey, on_connect, on_failure, move |p, now, id| {
            p.node.connect_remote_as(now, id, addr, &opts)
        })
    }

    /// Connects to the node itself without a socket (OxenMQ's `connect_inproc`); commands the
    /// node receives over it have `auth` (default admin) and come from remote `"inproc"`. The
    /// callbacks are those of [`connect_remote`](Self::connect_remote); the wait for `HELLO` is
    /// the config's `inproc_connect_timeout`.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq, NO_DATA};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("admin", AuthLevel::Admin)?.add_request_command("admin", "whoami", |m| {
    ///     m.send_reply([m.access().auth.to_string(), m.remote().to_owned()])
    /// })?;
    /// let node = b.start()?;
    ///
    /// let conn = node.handle().connect_inproc(|_| {}, |_, why| eprintln!("{why}"), None)?;
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().request(&conn, "admin.whoami", NO_DATA, move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["admin", "inproc"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_inproc(
        &self,
        on_connect: impl FnOnce(ConnectionId) + Send + 'static,
        on_failure: impl FnOnce(ConnectionId, String) + Send + 'static,
        auth: Option<AuthLevel>,
    ) -> Result<ConnectionId, Error> {
        let on_failure = move |c, e: ConnectError| on_failure(c, e.to_string());
        self.post_connect(None, on_connect, on_failure, move |p, now, id| {
            p.node.connect_inproc_as(now, id, auth)
        })
    }

    /// Opens (or keeps alive) a CURVE connection to the service node `pubkey` (OxenMQ's
    /// `connect_sn`); the address comes from `opts.hint` or the
    /// [`sn_lookup`](Builder::sn_lookup) function. Returns `ConnectionId::Sn(pubkey)` at once,
    /// without waiting for the connection; there is no `HI`/`HELLO` and no callback. An
    /// existing connection's idle expiry is raised to `opts.keep_alive` (default the config's
    /// `connect_sn_keep_alive`, 5 minutes), never lowered.
    ///
    /// ```
    /// # use lokimq::{AuthLevel, LokiMq};
    /// # let mut b = LokiMq::builder();
    /// # b.add_category("sn", AuthLevel::None)?
    /// #     .add_request_command("sn", "version", |m| m.send_reply(["1.2.3"]))?
    /// #     .listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let sn = b.start()?;
    /// use lokimq::{ConnectSnOptions, ConnectionId, NO_DATA};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// // `sn` listens with CURVE and has an `sn.version` request command.
    /// let client = LokiMq::builder().start()?;
    /// let opts = ConnectSnOptions::default().hint(sn.bound_addresses()[0].clone()).keep_alive(Duration::from_secs(600));
    /// let conn = client.handle().connect_sn(*sn.pubkey(), opts)?;
    /// assert_eq!(conn, ConnectionId::Sn(*sn.pubkey()));
    /// let (tx, rx) = mpsc::channel();
    /// client.handle().request(&conn, "sn.version", NO_DATA, move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["1.2.3"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// Closes an outgoing connection (a `connect_remote`/`connect_inproc` id, or a service
    /// node's by key) after flushing for at most `linger` (OxenMQ's default is one second).
    /// The id is forgotten at once; a later send to a service node opens a new connection. An
    /// unknown or incoming id is logged.
    ///
    /// ```
    /// # use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// # use std::sync::mpsc;
    /// # let mut b = LokiMq::builder();
    /// # b.listen_plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let server = b.start()?;
    /// # let client = LokiMq::builder().start()?;
    /// # let (tx, rx) = mpsc::channel();
    /// # let conn = client.handle().connect_remote(&server.bound_addresses()[0],
    /// #     move |_| { let _ = tx.send(()); }, |_, _| {}, ConnectOptions::default())?;
    /// use std::time::Duration;
    ///
    /// # rx.recv_timeout(Duration::from_secs(10))?;
    /// // `conn` is an established `connect_remote` connection.
    /// assert!(client.handle().is_connected(&conn)?);
    /// client.handle().disconnect(&conn, Duration::from_secs(1))?;
    /// // Calls from one thread are handled in order: it is already gone.
    /// assert!(!client.handle().is_connected(&conn)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disconnect(&self, conn: &ConnectionId, linger: Duration) -> Result<(), Error> {
        let conn = conn.clone();
        self.post(move |p| {
            let now = p.now();
            // The node logs OxenMQ's warning for an unknown id.
            let _ = p.node.disconnect(now, &conn, linger);
        })
    }

    /// Replaces the set of active service nodes (OxenMQ's `set_active_sns`). A peer whose key
    /// is in the set counts as a service node for commands that require one (`remote_sn`
    /// categories) from its next message on, and this node's outgoing connections to keys
    /// that left the set are closed. Like every posted call it takes effect on the proxy
    /// thread shortly after; a later call that waits for the proxy (such as
    /// [`stats`](Self::stats)) from the same thread sees it applied.
    ///
    /// ```
    /// use lokimq::{Access, AuthLevel, ConnectOptions, LokiMq, NO_DATA, RequestError};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// // Only service nodes may call `sn.ping`.
    /// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    /// let mut b = LokiMq::builder();
    /// b.add_category("sn", Access::new(AuthLevel::None, true, false))?
    ///     .add_request_command("sn", "ping", |m| m.send_reply(["pong"]))?
    ///     .listen_curve(any_port, |_, _, _| AuthLevel::None)?;
    /// let server = b.start()?;
    /// let client = LokiMq::builder().start()?;
    /// let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
    ///                                  ConnectOptions::default())?;
    /// let (tx, rx) = mpsc::channel();
    /// let ping = |tx: mpsc::Sender<_>| client.handle().request(&conn, "sn.ping", NO_DATA, move |r| { let _ = tx.send(r); });
    ///
    /// ping(tx.clone())?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, Err(RequestError::ForbiddenSn));
    /// server.handle().set_active_sns([*client.pubkey()])?;
    /// server.handle().stats()?; // waits for the proxy, so the new set is in force
    /// ping(tx)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["pong"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_active_sns(&self, sns: impl IntoIterator<Item = PublicKey>) -> Result<(), Error> {
        let sns: BTreeSet<PublicKey> = sns.into_iter().collect();
        self.post(move |p| {
            let now = p.now();
            p.node.set_active_sns(now, sns);
        })
    }

    /// Adds and removes active service nodes (OxenMQ's `update_active_sns`; a key in both
    /// counts as added). Otherwise as [`set_active_sns`](Self::set_active_sns).
    ///
    /// ```
    /// # use lokimq::LokiMq;
    /// use lokimq::{Keypair};
    ///
    /// let node = LokiMq::builder().start()?;
    /// // Keys as they come from the chain (here made up from fixed secrets).
    /// let [a, b, c] = [1u8, 2, 3].map(|i| *Keypair::from_secret_bytes([i; 32]).public());
    /// node.handle().set_active_sns([a, b])?;
    /// // A new block: `c` registered, `a` deregistered.
    /// node.handle().update_active_sns([c], [a])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// Starts listening on another address after start (OxenMQ's post-start `listen_*`). The
    /// result is reported to the listen's [`on_bind`](Listen::on_bind), which runs on the
    /// proxy thread, so keep it short; once bound, the address also appears in
    /// [`bound_addresses`](Self::bound_addresses).
    ///
    /// ```
    /// use lokimq::{AuthLevel, Listen, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let node = LokiMq::builder().start()?;
    /// let (tx, rx) = mpsc::channel();
    /// let tx2 = tx.clone();
    /// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    /// node.handle().listen(Listen::plain(any_port)?
    ///     .allow(|_ip, _key, _sn| AuthLevel::Basic)
    ///     .on_bind(move |r| { let _ = tx.send(r); }))?;
    /// let addr = rx.recv_timeout(Duration::from_secs(10))??; // Err(reason) if it failed
    /// assert_ne!(addr.port(), Some(0)); // the port actually bound
    ///
    /// // A failure does not stop the node; it is only reported.
    /// node.handle().listen(Listen::plain(addr)?.on_bind(move |r| { let _ = tx2.send(r); }))?;
    /// assert!(rx.recv_timeout(Duration::from_secs(10))?.is_err()); // address in use
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen(&self, listen: Listen) -> Result<(), Error> {
        self.post(move |p| p.add_listener(listen))
    }

    // ----- jobs -----

    /// Runs `f` once on the batch pool, or on a tagged thread (OxenMQ's `job`). A panic is
    /// logged and swallowed. An id of a tagged thread this node does not have is refused with
    /// [`Error::Sched`] ([`SchedError::UnknownTaggedThread`](crate::SchedError::UnknownTaggedThread)).
    ///
    /// ```
    /// use lokimq::{Error, LokiMq, SchedError, TaggedThreadId};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let db = b.add_tagged_thread("db")?;
    /// let node = b.start()?;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let thread_name = || std::thread::current().name().map(str::to_owned);
    /// let tx2 = tx.clone();
    /// node.handle().job(move || { let _ = tx.send(thread_name()); }, Some(db))?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?.as_deref(), Some("db"));
    /// node.handle().job(move || { let _ = tx2.send(thread_name()); }, None)?; // the batch pool
    /// assert!(rx.recv_timeout(Duration::from_secs(10))?.is_some_and(|n| n.starts_with("lmq-w")));
    ///
    /// assert!(matches!(node.handle().job(|| {}, Some(TaggedThreadId(7))), Err(Error::Sched(SchedError::UnknownTaggedThread(TaggedThreadId(7))))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
            if let Err(e) = p.queue_task(task, Target::from(thread)) {
                tracing::warn!("job not queued: {e}");
            }
        })
    }

    /// Runs a [`Batch`] (OxenMQ's `batch`): its jobs in parallel, then its completion with
    /// every result. An empty batch is refused with [`Error::EmptyBatch`], and a tagged thread
    /// this node does not have with [`Error::Sched`] ([`SchedError::UnknownTaggedThread`](crate::SchedError::UnknownTaggedThread)).
    ///
    /// ```
    /// use lokimq::{Batch, Error, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let node = LokiMq::builder().start()?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut batch = Batch::new();
    /// for chunk in [vec![1u64, 2, 3], vec![4, 5], vec![6]] {
    ///     batch.add_job(move || chunk.iter().sum::<u64>());
    /// }
    /// batch.completion(move |results| {
    ///     let total: u64 = results.into_iter().map(|r| r.unwrap_or(0)).sum();
    ///     let _ = tx.send(total);
    /// })?;
    /// node.handle().batch(batch)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, 21);
    ///
    /// assert!(matches!(node.handle().batch(Batch::<()>::new()), Err(Error::EmptyBatch)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
            // As for requests: no worker may take a job of the batch before its closures are
            // in the table.
            let jobs = p.jobs();
            let mut closures = jobs.closures();
            match p.node.submit_batch(now, &targets, completion) {
                Ok(id) => {
                    closures.batches.insert(id, erased);
                }
                Err(e) => tracing::warn!("batch not queued: {e}"),
            }
        })
    }

    /// Runs `f` as if it were an incoming command of `category`, under that category's
    /// reserved threads and queue limit (OxenMQ's `inject_task`): the way to feed work that
    /// arrives by another channel (HTTP, say) through the same scheduling. `command_name` and
    /// `remote` are for logs. A task over the category's queue limit is dropped and logged;
    /// a category this node does not have is refused with [`Error::Node`] ([`NodeError::UnknownCategory`](lokimq_core::node::NodeError::UnknownCategory)).
    ///
    /// ```
    /// use lokimq::{AuthLevel, CategoryOptions, Error, LokiMq, NodeError, QueueLimit};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("rpc", CategoryOptions::new(AuthLevel::None).reserved_threads(1).max_queue(QueueLimit::At(100)))?; // 1 reserved thread, 100 queued
    /// let node = b.start()?;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().inject_task("rpc", "get_info", "https://10.0.0.7", move || {
    ///     let _ = tx.send("answered over HTTP");
    /// })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "answered over HTTP");
    /// assert!(matches!(node.handle().inject_task("nope", "x", "y", || {}), Err(Error::Node(NodeError::UnknownCategory(_)))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inject_task(
        &self,
        category: &str,
        command_name: &str,
        remote: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        self.shared.registry.require_category(category)?;
        let category = category.to_owned();
        let what = format!("{category}.{command_name} from {remote}");
        let task: Task = Box::new(f);
        self.post(move |p| {
            let now = p.now();
            let jobs = p.jobs();
            let id = jobs.closures().add_task(task);
            match p.node.inject_task(now, &category, id) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("injected task {what} dropped: queue full");
                    jobs.closures().tasks.remove(&id);
                }
                Err(e) => {
                    tracing::warn!("injected task {what} not queued: {e}");
                    jobs.closures().tasks.remove(&id);
                }
            }
        })
    }

    /// Adds a repeating timer (OxenMQ's `add_timer`): `f` runs every `interval` (first
    /// `interval` from now) on the batch pool, a tagged thread, or the proxy thread itself
    /// ([`Target::InDriver`]). With `squelch`, a firing is skipped while the previous one is
    /// still queued or running, so a slow `f` never piles up. Keep it with
    /// [`cancel_timer`](Self::cancel_timer). An unknown tagged thread is refused with
    /// [`Error::Sched`] ([`SchedError::UnknownTaggedThread`](crate::SchedError::UnknownTaggedThread)), and an interval under a microsecond with
    /// [`Error::Sched`] ([`SchedError::ZeroTimerInterval`](crate::SchedError::ZeroTimerInterval)) (as [`Builder::add_timer`] does).
    ///
    /// ```
    /// use lokimq::{LokiMq, Target};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let node = LokiMq::builder().start()?;
    /// let (tx, rx) = mpsc::channel();
    /// let tick = node.handle().add_timer(move || { let _ = tx.send(()); }, Duration::from_millis(10),
    ///                           true, Target::Worker)?;
    /// for _ in 0..3 {
    ///     rx.recv_timeout(Duration::from_secs(10))?;
    /// }
    /// node.handle().cancel_timer(tick)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A [`Target::InDriver`] timer runs on the proxy thread: every socket and worker waits
    /// for it, and calls that wait for the proxy refuse to run there instead of deadlocking
    /// (posting calls such as `send` or `job` are fine):
    ///
    /// ```
    /// use lokimq::{Error, LokiMq, Target};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let node = LokiMq::builder().start()?;
    /// let (h, (tx, rx)) = (node.handle().clone(), mpsc::channel());
    /// let timer = node.handle().add_timer(move || {
    ///     let _ = tx.send(matches!(h.stats(), Err(Error::OnProxyThread)));
    /// }, Duration::from_millis(10), true, Target::InDriver)?;
    /// assert!(rx.recv_timeout(Duration::from_secs(10))?);
    /// node.handle().cancel_timer(timer)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_timer(
        &self,
        f: impl Fn() + Send + Sync + 'static,
        interval: Duration,
        squelch: bool,
        target: Target,
    ) -> Result<TimerId, Error> {
        self.check_target(target)?;
        sched::check_timer_interval(interval)?;
        let f: TimerFn = Arc::new(f);
        let id = TimerId(self.shared.next_timer_id.fetch_add(1, Ordering::Relaxed));
        self.post(move |p| {
            let now = p.now();
            // In the table before the node can fire it.
            let jobs = p.jobs();
            jobs.closures().timers.insert(id, f);
            if let Err(e) = p.node.add_timer_as(now, id, interval, squelch, target) {
                // Shutting down: the timer would never fire anyway.
                tracing::debug!("timer {id} not added: {e}");
                jobs.closures().timers.remove(&id);
            }
        })?;
        Ok(id)
    }

    /// The addresses the node's listeners are bound to (actual ports, and the node's key for
    /// CURVE listeners): the builder's in the order they were added, then those added with
    /// [`listen`](Self::listen) after start, in the order they were bound.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq};
    ///
    /// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    /// let mut b = LokiMq::builder();
    /// b.listen_curve(any_port, |_, _, _| AuthLevel::None)?
    ///     .listen_plain(any_port, |_, _, _| AuthLevel::None)?;
    /// let node = b.start()?;
    /// let [curve, plain] = &node.bound_addresses()[..] else { unreachable!() };
    /// // curve://127.0.0.1:PORT/<node key>: what clients pass to `connect_remote`.
    /// assert_eq!(curve.pubkey(), Some(node.pubkey()));
    /// assert!(!plain.is_curve() && plain.port() != Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn bound_addresses(&self) -> Vec<Address> {
        self.shared
            .bound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a listener the proxy bound.
    pub(crate) fn note_bound(&self, address: Address) {
        self.shared
            .bound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(address);
    }

    /// Cancels a timer (OxenMQ's `cancel_timer`; idempotent, an unknown id is ignored).
    /// Firings not yet started are discarded; one already running finishes.
    ///
    /// ```
    /// # use lokimq::{LokiMq, Target};
    /// # use std::time::Duration;
    /// # let node = LokiMq::builder().start()?;
    /// let heartbeat = node.handle().add_timer(|| println!("still here"), Duration::from_secs(30),
    ///                                false, Target::Worker)?;
    /// node.handle().cancel_timer(heartbeat)?;
    /// node.handle().cancel_timer(heartbeat)?; // no-op
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_timer(&self, timer: TimerId) -> Result<(), Error> {
        self.post(move |p| {
            let now = p.now();
            let _known = p.node.cancel_timer(now, timer);
        })
    }

    // ----- introspection -----

    /// A snapshot of the node's counters: connections, outgoing links, pending requests,
    /// dropped commands, and the scheduler's worker and queue counts.
    ///
    /// ```
    /// use lokimq::{LokiMq};
    ///
    /// let mut b = LokiMq::builder();
    /// b.config_mut().general_workers = 4;
    /// let node = b.start()?;
    /// let stats = node.handle().stats()?;
    /// assert_eq!(stats.sched.general_workers, 4);
    /// assert_eq!((stats.connections, stats.pending_requests), (0, 0));
    /// println!("{} of {} worker threads busy", stats.sched.active, stats.sched.max_workers);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

/// A started node, made by [`Builder::start`]: owns the proxy thread, and dereferences to its
/// [`Handle`], so every handle method can be called on it directly.
///
/// The node lives as long as this value. Dropping it (or [`shutdown`](Self::shutdown)) shuts
/// the node down as OxenMQ's destructor does: queued work is discarded, pending request and
/// connect callbacks are never called, running handlers are waited for, connections are
/// closed (lingering up to the `close_linger` tunable for unsent bytes and the peer's close),
/// and every thread is joined. Dropping it on one of its own threads (in a handler, job,
/// timer or callback) starts the shutdown without waiting for it. Handles that outlive it get
/// [`Error::Stopped`].
///
/// ```
/// use lokimq::{Error, LokiMq};
///
/// let node = LokiMq::builder().start()?;
/// println!("node key: {}", node.pubkey());
/// let h = node.handle().clone(); // an owned handle, for other threads
/// node.shutdown(); // the same as `drop(node)`: returns once everything has stopped
/// assert!(matches!(h.stats(), Err(Error::Stopped)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LokiMq {
    handle: Handle,
    proxy: Option<JoinHandle<()>>,
}

impl fmt::Debug for LokiMq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LokiMq")
            .field("pubkey", self.handle.pubkey())
            .field("bound", &self.handle.bound_addresses())
            .finish_non_exhaustive()
    }
}

impl LokiMq {
    /// A builder with OxenMQ's defaults (the same as [`Builder::new`]).
    #[must_use]
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn new(handle: Handle, proxy: JoinHandle<()>) -> Self {
        Self {
            handle,
            proxy: Some(proxy),
        }
    }

    /// The node's handle: everything the node can do goes through it. Clone it for other
    /// threads (a clone is cheap and may outlive this value; it is then refused, never
    /// dangling).
    #[must_use]
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// This node's x25519 public key.
    #[must_use]
    pub fn pubkey(&self) -> &PublicKey {
        self.handle.pubkey()
    }

    /// The addresses the node's listeners are bound to: see [`Handle::bound_addresses`].
    #[must_use]
    pub fn bound_addresses(&self) -> Vec<Address> {
        self.handle.bound_addresses()
    }

    /// Shuts down and waits (the same as dropping it, spelled out): see [`LokiMq`].
    pub fn shutdown(self) {
        drop(self);
    }
}

impl AsRef<Handle> for LokiMq {
    fn as_ref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for LokiMq {
    fn drop(&mut self) {
        // If the proxy is already gone there is nothing to tell it.
        let _ = self.handle.post(Host::shutdown);
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
