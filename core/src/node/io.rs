//! The node's event API: what goes in ([`Input`]), what comes out ([`Output`], [`Event`],
//! [`Job`]), and the values that travel with them ([`Message`], [`ReplyTarget`], options).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::address::Address;
use crate::auth::{AuthLevel, PeerAccess};
use crate::ids::{BatchId, CategoryId, CommandId, ConnId, ListenerId, TimerId, WorkerId};
use crate::keys::PublicKey;
use crate::sched::InDriver;
use crate::time::Duration;

use super::conn_id::ConnectionId;
use super::failure::{ConnectError, DisconnectReason};
use super::route::Origin;

/// Something that happened outside the node, fed in with [`Node::handle`](super::Node::handle).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// Bytes arrived on a connection, in any chunking (even one byte at a time).
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes, in stream order.
        data: Bytes,
    },
    /// A non-blocking connect asked for by [`Output::Connect`] completed.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// A connection ended (EOF, reset, or a connect that failed).
    Disconnected {
        /// The connection.
        conn: ConnId,
        /// Why, as far as the transport knows.
        cause: DisconnectCause,
    },
    /// The driver could not bind a listener asked for by [`Output::Listen`].
    ListenFailed {
        /// The listener.
        listener: ListenerId,
        /// The OS's reason, for logs.
        reason: String,
    },
    /// The answer to [`Event::AuthRequest`]: the auth level granted to the peer, or
    /// [`AuthLevel::Denied`] to refuse the connection.
    AuthDecision {
        /// The connection that asked.
        conn: ConnId,
        /// The level granted (`Denied` refuses).
        level: AuthLevel,
    },
    /// The answer to [`Event::LookupSn`]: where the service node listens, or `None` if unknown.
    SnAddress {
        /// The service node asked about.
        pubkey: PublicKey,
        /// Its address (must be a CURVE-capable TCP or IPC address), or `None`.
        address: Option<Address>,
    },
    /// A worker finished the job the node gave it with [`Output::RunJob`].
    JobFinished {
        /// The worker slot, now idle.
        worker: WorkerId,
    },
    /// `now` has reached [`Node::poll_timeout`](super::Node::poll_timeout); spurious calls are
    /// harmless.
    Timeout,
    /// How many bytes of this connection's [`Output::Transmit`] data the driver still holds
    /// unwritten (a level, not a delta). Only drivers that enable
    /// [`Config::send_backlog_limit`](super::Config::send_backlog_limit) need to report it,
    /// after each write that makes progress; the node then refuses application sends on a
    /// connection whose backlog is over the limit, the way libzmq's high-water mark does.
    Flushed {
        /// The connection.
        conn: ConnId,
        /// Bytes handed out in `Transmit`s and not yet written to the transport.
        unsent: usize,
    },
}

/// Why a transport connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectCause {
    /// The peer closed the stream.
    Eof,
    /// The stream failed (reset, broken pipe, …); the text is for logs.
    Reset(String),
    /// The connect attempt was refused: nothing listens at the address (`ECONNREFUSED`).
    /// Drivers must report this variant for a refusal, so that the node can tell "the server
    /// is not running" ([`ConnectError::Refused`]) from an unreachable host.
    Refused,
    /// A connect attempt failed at the transport for another reason (host or network
    /// unreachable, the OS's connect timeout, a name that does not resolve, …); the text is
    /// the OS's, for [`ConnectError::Unreachable`] and logs.
    ConnectFailed(String),
    /// The address cannot be dialled at all (e.g. it does not resolve); not retried.
    InvalidAddress(String),
}

impl fmt::Display for DisconnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("connection closed by peer"),
            Self::Refused => f.write_str("connect failed: Connection refused"),
            Self::Reset(r) => write!(f, "connection reset: {r}"),
            Self::ConnectFailed(r) => write!(f, "connect failed: {r}"),
            Self::InvalidAddress(r) => write!(f, "invalid address: {r}"),
        }
    }
}

/// Something the node asks its embedder to do, drained with
/// [`Node::poll_output`](super::Node::poll_output).
///
/// Exhaustive on purpose: every variant is an obligation, and a driver must not be able to
/// ignore a new one with a catch-all arm.
#[derive(Debug)]
pub enum Output {
    /// Append these bytes to the connection's write queue.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes, in order after every earlier `Transmit` for this connection.
        data: Bytes,
    },
    /// Dial `addr` without blocking; report [`Input::Connected`] or [`Input::Disconnected`].
    Connect {
        /// The new connection's id.
        conn: ConnId,
        /// Where to connect (`tcp` or `ipc`; the CURVE part is the node's business).
        addr: Address,
    },
    /// Close the connection. The node forgets the id at once (later inputs for it are
    /// ignored), and the driver closes the transport in this order, which is libzmq's:
    ///
    /// 1. pass no more of its input to the node, and report no `Flushed` for it;
    /// 2. write what is still queued for it, for at most `linger`;
    /// 3. once nothing is left unsent, shut down the write side (the peer sees end of
    ///    stream), read and discard whatever the peer already sent, and close the socket,
    ///    without waiting for the peer to close its end (discarding its input first keeps
    ///    the close from becoming a reset that could destroy our last bytes);
    /// 4. if `linger` passes first (the peer does not read), close at once and drop the rest.
    Close {
        /// The connection.
        conn: ConnId,
        /// How long queued bytes may still be written (zero: drop them).
        linger: Duration,
    },
    /// Bind and listen on `addr`; call [`Node::accept`](super::Node::accept) for each accepted
    /// connection, or report [`Input::ListenFailed`].
    Listen {
        /// The listener's id.
        listener: ListenerId,
        /// Where to listen.
        addr: Address,
    },
    /// Stop listening: close the listening socket (and remove a unix socket's file). Emitted
    /// for every listener when shutdown starts, so no connection is accepted while the node
    /// winds down; connections already accepted are closed with [`Output::Close`].
    Unlisten {
        /// The listener.
        listener: ListenerId,
    },
    /// Run `job` on worker `worker` (spawning it on first use); report [`Input::JobFinished`]
    /// when it returns, whether it succeeded or not.
    RunJob {
        /// The worker slot (general pool, or a tagged thread's slot).
        worker: WorkerId,
        /// What to run.
        job: Job,
    },
    /// The worker slot will get no more jobs: stop its thread (shutdown).
    StopWorker {
        /// The worker slot.
        worker: WorkerId,
    },
    /// Something to tell the application.
    Event(Event),
}

/// Work for a worker. The embedder owns the closures; the node names them.
///
/// Exhaustive on purpose: a driver must run every kind of job it is given.
#[derive(Debug)]
pub enum Job {
    /// A registered command arrived: call its callback with `message`.
    Command {
        /// The command (index into the registry, and the embedder's callback table).
        command: CommandId,
        /// The message.
        message: Message,
    },
    /// A task given to [`Node::inject_task`](super::Node::inject_task).
    Task {
        /// The category whose limits it ran under.
        category: CategoryId,
        /// The embedder's handle for the task.
        task: u64,
    },
    /// A request finished: call its reply callback.
    Reply {
        /// The request.
        request: RequestId,
        /// The reply parts, or why there is none.
        result: Result<Vec<Bytes>, RequestError>,
    },
    /// A `connect_remote`/`connect_inproc` connection is established (HELLO received).
    Connected {
        /// The connection.
        conn: ConnectionId,
    },
    /// A `connect_remote`/`connect_inproc` connection attempt failed: exactly one of
    /// `Connected` and `ConnectFailed` comes for every such connection that is not abandoned
    /// by shutdown. Runs on the batch pool, as OxenMQ's failure callback does.
    ConnectFailed {
        /// The connection.
        conn: ConnectionId,
        /// Why; its `Display` is OxenMQ's failure text where OxenMQ has one (e.g.
        /// "connection attempt timed out").
        error: ConnectError,
    },
    /// A job given to [`Node::job`](super::Node::job).
    Job {
        /// The embedder's handle for the job.
        job: u64,
    },
    /// One job of a batch.
    BatchItem {
        /// The batch.
        batch: BatchId,
        /// The job's index in the batch.
        index: u32,
    },
    /// A batch's completion, after all its jobs finished.
    Completion {
        /// The batch.
        batch: BatchId,
    },
    /// A timer fired.
    Timer {
        /// The timer.
        timer: TimerId,
    },
}

/// A request the node sent, named so its reply can be matched to the embedder's callback.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RequestId(pub u64);

/// Why a request produced no reply data. Display gives OxenMQ's wire/callback word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply in time, or the request could not be sent.
    #[error("TIMEOUT")]
    Timeout,
    /// The remote refused: our auth level is too low.
    #[error("FORBIDDEN")]
    Forbidden,
    /// The remote refused: the command is for service nodes and we are not one to it.
    #[error("FORBIDDEN_SN")]
    ForbiddenSn,
    /// The remote refused: the command needs the remote to be a service node.
    #[error("NOT_A_SERVICE_NODE")]
    NotAServiceNode,
    /// The remote does not know the command (an improvement over OxenMQ, which times out).
    #[error("UNKNOWNCOMMAND")]
    UnknownCommand,
    /// The remote says the request carried no reply tag.
    #[error("NO_REPLY_TAG")]
    NoReplyTag,
    /// The outgoing connection the request went out on was closed for good before a reply
    /// came (disconnect, idle expiry, `BYE`, refused by the remote, a failed reconnect, a
    /// failed lookup, a connect timeout): no reply can arrive any more. Local only, never on
    /// the wire. A request on an outgoing connection whose transport merely dropped stays
    /// pending while it reconnects (a reply can come over the new transport); a request sent
    /// to an incoming connection keeps OxenMQ's timeout, since the peer may reconnect with the
    /// same routing id.
    #[error("DISCONNECTED")]
    Disconnected,
}

/// Something for the application (logging, auth, lookups, batch bookkeeping).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// An incoming connection finished its handshake and needs an auth decision: answer with
    /// [`Input::AuthDecision`] (the mio driver calls the listener's allow function here).
    AuthRequest {
        /// The connection.
        conn: ConnId,
        /// The listener it arrived on (its auth domain).
        listener: ListenerId,
        /// The peer's address as text (an IP without port, IPv4-mapped IPv6 normalised).
        remote: String,
        /// The client's CURVE key (`None` on a plain listener).
        pubkey: Option<PublicKey>,
        /// Whether that key is in the active service-node set.
        service_node: bool,
    },
    /// A new connection to a service node is needed and no hint was given: answer with
    /// [`Input::SnAddress`].
    LookupSn {
        /// The service node.
        pubkey: PublicKey,
    },
    /// Run a batch completion or a timer on the driver's own thread, now (OxenMQ's
    /// "run in proxy").
    RunInDriver(InDriver),
    /// A batch is finished (completion included): its closures and results can be freed.
    BatchDone {
        /// The batch.
        batch: BatchId,
    },
    /// A cancelled timer will never fire again: the driver may free its closure.
    TimerReleased {
        /// The timer.
        timer: TimerId,
    },
    /// An incoming command (or injected task) was dropped because its category's queue was
    /// full; OxenMQ sends no reply.
    Dropped {
        /// The category.
        category: CategoryId,
        /// The command, for a network command (`None` for an injected task).
        command: Option<CommandId>,
        /// Who sent it, for a network command.
        from: Option<ConnectionId>,
    },
    /// A listener could not be bound.
    ListenFailed {
        /// The listener.
        listener: ListenerId,
        /// Why.
        reason: String,
    },
    /// An established connection ended: a connection accepted on one of our listeners whose
    /// handshake (and auth decision) had completed, or an outgoing connection that was up
    /// (for `connect_remote`/`connect_inproc`, once `HELLO` arrived). Emitted once per
    /// transport connection, so an outgoing link that drops and reconnects reports each drop.
    /// Connections that never came up get [`Job::ConnectFailed`] or [`Event::LinkFailed`]
    /// instead; nothing is emitted once shutdown has started.
    PeerDisconnected {
        /// The peer, as the application addresses it (for an incoming connection from an
        /// active service node, its [`ConnectionId::Sn`]).
        conn: ConnectionId,
        /// The peer's CURVE key, if the connection was encrypted.
        pubkey: Option<PublicKey>,
        /// Why it ended.
        cause: DisconnectReason,
        /// True if `conn` is an outgoing connection that will reconnect on its own (requests
        /// on it stay pending, sends are queued); false if it is gone for good.
        reconnecting: bool,
    },
    /// An outgoing connection was given up while it was down, because its attempts failed: a
    /// service-node connection that could not be (re)established by its idle expiry, whose
    /// lookup failed or that the remote refused; or an established `connect_remote`
    /// connection whose reconnect failed (see [`ConnectOptions::retry_refused`]). `error` is
    /// the latest attempt's failure. (A `connect_remote`/`connect_inproc` that never came up
    /// reports [`Job::ConnectFailed`] instead; closing a connection with
    /// [`Node::disconnect`](super::Node::disconnect) reports nothing.)
    LinkFailed {
        /// The connection.
        conn: ConnectionId,
        /// Why the latest attempt failed.
        error: ConnectError,
    },
    /// Shutdown finished: every worker is stopped and every connection closed.
    Stopped,
}

/// An incoming command, as handed to its callback.
#[derive(Debug, Clone)]
pub struct Message {
    /// Who sent it.
    pub conn: ConnectionId,
    /// The data frames (for a request command, the reply tag is not included).
    pub data: Vec<Bytes>,
    /// The caller's actual access: its auth level, whether it is a service node, whether we are.
    pub access: PeerAccess,
    /// The peer's address as text ("(unknown)" if the transport gave none), shared by every
    /// message of the connection.
    pub remote: Arc<str>,
    /// Where replies and `send_back`s go.
    pub reply_to: ReplyTarget,
}

impl Message {
    /// The reply tag of a request command.
    #[must_use]
    pub fn reply_tag(&self) -> Option<&Bytes> {
        self.reply_to.tag.as_ref()
    }
}

/// Where to send replies to a message: the sender's id, its reply tag (requests only), and the
/// connection it came in on, which replies prefer while it is open (OxenMQ may pick another
/// connection to the same service node; we don't).
#[derive(Debug, Clone)]
pub struct ReplyTarget {
    pub(crate) conn: ConnectionId,
    pub(crate) tag: Option<Bytes>,
    pub(crate) via: Option<Origin>,
}

impl ReplyTarget {
    /// The sender.
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        &self.conn
    }

    /// The request's reply tag, if the message was a request.
    #[must_use]
    pub fn tag(&self) -> Option<&Bytes> {
        self.tag.as_ref()
    }
}

/// Options of a [`Node::send`](super::Node::send) (OxenMQ's `send_option::*`).
/// `#[non_exhaustive]`: start from `SendOptions::default()` and chain the setters
/// (`SendOptions::default().optional(true)`), or set the fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendOptions {
    /// Address to use if a new connection to a service node must be made (instead of asking
    /// with [`Event::LookupSn`]).
    pub hint: Option<Address>,
    /// Send only over an existing connection; never open one.
    pub optional: bool,
    /// Send only over an existing incoming connection (an outgoing non-SN id is refused).
    pub incoming: bool,
    /// Send only over an outgoing connection (service nodes: use or open one; an incoming
    /// non-SN id is refused, as OxenMQ documents but does not do).
    pub outgoing: bool,
    /// Idle expiry for a new outgoing service-node connection, or a raise of an existing one's
    /// (default: the config's `send_keep_alive`).
    pub keep_alive: Option<Duration>,
}

impl SendOptions {
    /// Sets `hint`: the address for a new service-node connection.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<Option<Address>>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Sets `optional`: send only over an existing connection.
    #[must_use]
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Sets `incoming`: send only over an existing incoming connection.
    #[must_use]
    pub fn incoming(mut self, incoming: bool) -> Self {
        self.incoming = incoming;
        self
    }

    /// Sets `outgoing`: send only over an outgoing connection.
    #[must_use]
    pub fn outgoing(mut self, outgoing: bool) -> Self {
        self.outgoing = outgoing;
        self
    }

    /// Sets `keep_alive`: idle expiry of a new (or raise of an existing) service-node connection.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: impl Into<Option<Duration>>) -> Self {
        self.keep_alive = keep_alive.into();
        self
    }
}

/// Options of a [`Node::request`](super::Node::request). `#[non_exhaustive]`: start from
/// `RequestOptions::default()` and chain the setters, or set the fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// How the request is sent.
    pub send: SendOptions,
    /// How long to wait for the reply (default: the config's `request_timeout`).
    pub timeout: Option<Duration>,
}

impl RequestOptions {
    /// Sets `send`: how the request is sent.
    #[must_use]
    pub fn send(mut self, send: SendOptions) -> Self {
        self.send = send;
        self
    }

    /// Sets `timeout`: how long to wait for the reply.
    #[must_use]
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }
}

/// Options of a [`Node::connect_remote`](super::Node::connect_remote). `#[non_exhaustive]`:
/// start from `ConnectOptions::default()` and chain the setters, or set the fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The auth level granted to commands the remote invokes on this connection.
    pub auth_level: Option<AuthLevel>,
    /// How long to wait for `HELLO` (default: the config's `remote_connect_timeout`).
    pub timeout: Option<Duration>,
    /// Let the ROUTER pick our routing id instead of `L` + our pubkey.
    pub ephemeral_routing_id: Option<bool>,
    /// OxenMQ's (libzmq's) connect policy: retry a refused or unreachable connect, or a failed
    /// handshake, silently with back-off until the timeout (then
    /// [`ConnectError::TimedOut`]), and once established reconnect for ever.
    ///
    /// `false` (the default) fails at once instead: the first refused or unreachable connect
    /// or handshake failure fails the connection with its cause, and once established, a
    /// reconnect attempt that fails that way closes the connection for good
    /// ([`Event::LinkFailed`], pending requests fail with [`RequestError::Disconnected`]). A
    /// ZMTP `ERROR` from the server always fails at once, as libzmq never retries after one.
    pub retry_refused: bool,
}

impl ConnectOptions {
    /// Sets `auth_level`: the auth level granted to the remote's commands.
    #[must_use]
    pub fn auth_level(mut self, auth_level: impl Into<Option<AuthLevel>>) -> Self {
        self.auth_level = auth_level.into();
        self
    }

    /// Sets `timeout`: how long to wait for `HELLO`.
    #[must_use]
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Sets `ephemeral_routing_id`: let the ROUTER pick our routing id.
    #[must_use]
    pub fn ephemeral_routing_id(mut self, ephemeral_routing_id: impl Into<Option<bool>>) -> Self {
        self.ephemeral_routing_id = ephemeral_routing_id.into();
        self
    }

    /// Sets `retry_refused`: OxenMQ's retrying connect policy.
    #[must_use]
    pub fn retry_refused(mut self, retry_refused: bool) -> Self {
        self.retry_refused = retry_refused;
        self
    }
}

/// Options of a [`Node::connect_sn`](super::Node::connect_sn). `#[non_exhaustive]`: start
/// from `ConnectSnOptions::default()` and chain the setters, or set the fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectSnOptions {
    /// Idle expiry (default: the config's `connect_sn_keep_alive`, 5 minutes).
    pub keep_alive: Option<Duration>,
    /// Address to use instead of a lookup.
    pub hint: Option<Address>,
    /// Let the ROUTER pick our routing id instead of `L` + our pubkey.
    pub ephemeral_routing_id: Option<bool>,
}

impl ConnectSnOptions {
    /// Sets `keep_alive`: idle expiry.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: impl Into<Option<Duration>>) -> Self {
        self.keep_alive = keep_alive.into();
        self
    }

    /// Sets `hint`: the address to use instead of a lookup.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<Option<Address>>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Sets `ephemeral_routing_id`: let the ROUTER pick our routing id.
    #[must_use]
    pub fn ephemeral_routing_id(mut self, ephemeral_routing_id: impl Into<Option<bool>>) -> Self {
        self.ephemeral_routing_id = ephemeral_routing_id.into();
        self
    }
}
