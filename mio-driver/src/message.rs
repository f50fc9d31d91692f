//! [`Message`]: what a command callback gets, and [`DeferredSend`] for answering later.

use bytes::Bytes;

use lokimq_core::auth::PeerAccess;
use lokimq_core::node::{self, ConnectionId, ReplyTarget, RequestError, RequestOptions};

use crate::{Error, Handle};

/// An incoming command, as handed to its callback (OxenMQ's `Message`).
///
/// It carries the sender's identity and access, the data frames, and a [`Handle`] so the
/// callback can answer: [`send_reply`](Self::send_reply) for request commands,
/// [`send_back`](Self::send_back) for a new command to the sender,
/// [`send_request`](Self::send_request) to ask the sender something, or
/// [`send_later`](Self::send_later) to answer from another thread after returning. The
/// callback gets it by `&mut` only so it can [`take_data`](Self::take_data); it does not
/// outlive the callback.
///
/// ```
/// use lokimq::{AuthLevel, ConnectOptions, LokiMq};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
/// let mut b = LokiMq::builder();
/// b.add_category("info", AuthLevel::None)?
///     .add_request_command("info", "whoami", |m| {
///         let name = String::from_utf8_lossy(&m.data()[0]).into_owned(); // tag not included
///         let curve = m.conn().pubkey().is_some(); // the client's key, on a CURVE listener
///         let reply = format!("{name} at {}, {} access, key {curve}", m.remote(), m.access().auth);
///         m.send_reply([reply]);
///     })?
///     .listen_curve(any_port, |_ip, _key, _sn| AuthLevel::Basic)?;
/// let server = b.start()?;
///
/// let client = LokiMq::builder().start()?;
/// let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
///                                  ConnectOptions::default())?;
/// let (tx, rx) = mpsc::channel();
/// client.handle().request(&conn, "info.whoami", ["alice"], move |r| { let _ = tx.send(r); })?;
/// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["alice at 127.0.0.1, basic access, key true"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Message {
    inner: node::Message,
    handle: Handle,
}

fn frames<D, B>(data: D) -> Vec<Bytes>
where
    D: IntoIterator<Item = B>,
    B: Into<Bytes>,
{
    data.into_iter().map(Into::into).collect()
}

fn log_failure(r: Result<(), Error>) {
    if let Err(e) = r {
        tracing::warn!("could not queue a reply: {e}");
    }
}

impl Message {
    pub(crate) fn new(inner: node::Message, handle: Handle) -> Self {
        Self { inner, handle }
    }

    /// The data frames (for a request command, without the reply tag).
    #[must_use]
    pub fn data(&self) -> &[Bytes] {
        &self.inner.data
    }

    /// Takes the data frames out, leaving none.
    pub fn take_data(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.inner.data)
    }

    /// Who sent it; usable later to send to the same peer.
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        &self.inner.conn
    }

    /// The caller's actual access: its connection's auth level, whether it is a service node,
    /// whether this node is one.
    #[must_use]
    pub fn access(&self) -> PeerAccess {
        self.inner.access
    }

    /// The peer's address (an IP for TCP, "(unknown)" for unix sockets, "inproc" in-process).
    #[must_use]
    pub fn remote(&self) -> &str {
        &self.inner.remote
    }

    /// The reply tag of a request command.
    #[must_use]
    pub fn reply_tag(&self) -> Option<&Bytes> {
        self.inner.reply_tag()
    }

    /// A handle to the node, for anything else.
    #[must_use]
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Sends `[command, data…]` back to the sender (OxenMQ's `send_back`), over the connection
    /// the message came in on while it is open; otherwise a service node gets a new
    /// connection, and anyone else nothing (the send is optional). Failures are logged. The
    /// sender needs a command of that name, with access for the auth level it granted us.
    ///
    /// ```
    /// use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    /// let mut b = LokiMq::builder();
    /// b.add_category("chat", AuthLevel::None)?
    ///     .add_command("chat", "join", |m| m.send_back("chat.welcome", ["3 people here"]))?
    ///     .listen_plain(any_port, |_, _, _| AuthLevel::None)?;
    /// let server = b.start()?;
    ///
    /// // The client has a `chat.welcome` command, for the server to call.
    /// let (tx, rx) = mpsc::channel();
    /// let mut b = LokiMq::builder();
    /// b.add_category("chat", AuthLevel::None)?
    ///     .add_command("chat", "welcome", move |m| { let _ = tx.send(m.data().to_vec()); })?;
    /// let client = b.start()?;
    /// let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
    ///                                  ConnectOptions::default())?;
    /// client.handle().send(&conn, "chat.join", ["bob"])?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, ["3 people here"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_back<D, B>(&self, command: impl Into<Bytes>, data: D)
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        log_failure(self.send_later().back(command, data));
    }

    /// Replies to a request command: `[REPLY, tag, data…]`, routed as
    /// [`send_back`](Self::send_back). Failures (including "this was not a request") are
    /// logged. Only the first reply to a request is used; the requester drops any more.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("kv", AuthLevel::None)?.add_request_command("kv", "get", |m| {
    ///     match m.data().first().map(|k| &k[..]) {
    ///         Some(b"motd") => m.send_reply(["OK", "welcome!"]),
    ///         _ => m.send_reply(["NOT_FOUND"]),
    ///     }
    /// })?;
    /// let node = b.start()?;
    ///
    /// let conn = node.handle().connect_inproc(|_| {}, |_, _| {}, None)?;
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().request(&conn, "kv.get", ["motd"], move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["OK", "welcome!"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_reply<D, B>(&self, data: D)
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        log_failure(self.send_later().reply(data));
    }

    /// Sends a request back to the sender (optional unless the sender is a service node, as
    /// [`send_back`](Self::send_back)); `callback` gets the reply, or the
    /// [`RequestError`], on a worker. Failures to queue are logged (and the callback gets
    /// `Timeout`).
    ///
    /// ```
    /// use lokimq::{AuthLevel, ConnectOptions, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// // The server asks every client that says hello for its version.
    /// let (tx, rx) = mpsc::channel();
    /// let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    /// let mut b = LokiMq::builder();
    /// b.add_category("peer", AuthLevel::None)?
    ///     .add_command("peer", "hello", move |m| {
    ///         let tx = tx.clone();
    ///         m.send_request("peer.version", [] as [&str; 0], move |r| { let _ = tx.send(r); });
    ///     })?
    ///     .listen_plain(any_port, |_, _, _| AuthLevel::None)?;
    /// let server = b.start()?;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("peer", AuthLevel::None)?
    ///     .add_request_command("peer", "version", |m| m.send_reply(["1.4.0"]))?;
    /// let client = b.start()?;
    /// let conn = client.handle().connect_remote(&server.bound_addresses()[0], |_| {}, |_, _| {},
    ///                                  ConnectOptions::default())?;
    /// client.handle().send(&conn, "peer.hello", lokimq::NO_DATA)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["1.4.0"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_request<D, B>(
        &self,
        command: impl Into<Bytes>,
        data: D,
        callback: impl FnOnce(Result<Vec<Bytes>, RequestError>) + Send + 'static,
    ) where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        log_failure(self.send_later().request(command, data, callback));
    }

    /// A handle for answering after the callback returned, from any thread (OxenMQ's
    /// `send_later()`), so slow work need not hold up a worker of the category.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("work", AuthLevel::None)?.add_request_command("work", "size", |m| {
    ///     let (later, input) = (m.send_later(), m.take_data());
    ///     std::thread::spawn(move || {
    ///         let total: usize = input.iter().map(|f| f.len()).sum(); // the slow part
    ///         let _ = later.reply([total.to_string()]);
    ///     });
    /// })?;
    /// let node = b.start()?;
    ///
    /// let conn = node.handle().connect_inproc(|_| {}, |_, _| {}, None)?;
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().request(&conn, "work.size", ["abc", "de"], move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["5"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn send_later(&self) -> DeferredSend {
        DeferredSend {
            handle: self.handle.clone(),
            target: self.inner.reply_to.clone(),
        }
    }

    /// The core's message, for embedders that want every field.
    #[must_use]
    pub fn as_core(&self) -> &node::Message {
        &self.inner
    }
}

/// Answers a message later, from any thread (OxenMQ's `DeferredSend`); made by
/// [`Message::send_later`]. It is `Send`, `Sync` and cloneable, so it can be stored (a long
/// poll) or handed to another thread. Unlike [`Message`]'s methods, its sends return the
/// [`Error`] of posting them ([`Error::Stopped`] after shutdown); failures to deliver are
/// logged.
///
/// ```
/// use lokimq::{AuthLevel, DeferredSend, LokiMq, NO_DATA};
/// use std::sync::{mpsc, Arc, Mutex};
/// use std::time::Duration;
///
/// // Long poll: `poll.next_block` is answered when the next block arrives.
/// let waiting = Arc::new(Mutex::new(Vec::<DeferredSend>::new()));
/// let (queued_tx, queued) = mpsc::channel();
/// let w = Arc::clone(&waiting);
/// let mut b = LokiMq::builder();
/// b.add_category("poll", AuthLevel::None)?.add_request_command("poll", "next_block", move |m| {
///     w.lock().unwrap().push(m.send_later());
///     let _ = queued_tx.send(());
/// })?;
/// let node = b.start()?;
/// let conn = node.handle().connect_inproc(|_| {}, |_, _| {}, None)?;
/// let (tx, rx) = mpsc::channel();
/// node.handle().request(&conn, "poll.next_block", NO_DATA, move |r| { let _ = tx.send(r); })?;
/// queued.recv_timeout(Duration::from_secs(10))?;
///
/// for poller in waiting.lock().unwrap().drain(..) { // a block arrived
///     poller.reply(["block 1001"])?;
/// }
/// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["block 1001"]);
/// # fn shareable<T: Send + Sync + Clone>() {}
/// # shareable::<DeferredSend>();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DeferredSend {
    handle: Handle,
    target: ReplyTarget,
}

impl DeferredSend {
    /// The original sender.
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        self.target.conn()
    }

    /// True if the message was a request (so [`reply`](Self::reply) makes sense).
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.target.tag().is_some()
    }

    /// Sends `[command, data…]` back to the sender, as [`Message::send_back`].
    pub fn back<D, B>(&self, command: impl Into<Bytes>, data: D) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.handle
            .send_back_to(self.target.clone(), command.into(), frames(data))
    }

    /// Replies to the request: `[REPLY, tag, data…]`, as [`Message::send_reply`]. For a
    /// message that was not a request nothing is sent and the failure is logged.
    pub fn reply<D, B>(&self, data: D) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.handle.reply_to(self.target.clone(), frames(data))
    }

    /// Sends a request to the sender (optional unless the sender is a service node), as
    /// [`Message::send_request`].
    pub fn request<D, B>(
        &self,
        command: impl Into<Bytes>,
        data: D,
        callback: impl FnOnce(Result<Vec<Bytes>, RequestError>) + Send + 'static,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let conn = self.target.conn();
        let mut opts = RequestOptions::default();
        opts.send.optional = !conn.is_sn();
        self.handle
            .request_with(conn, command, data, opts, callback)
    }
}
