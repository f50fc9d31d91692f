//! [`WasmNode`]: the core's [`Node`] with the names and checks a JavaScript host needs.
//!
//! The core names transport connections by [`ConnId`] and silently ignores inputs for ids it no
//! longer knows, which is right for a driver that can race with it. A JavaScript host is
//! someone else's code, though, and a stream id it got wrong should be a clear error. So this
//! layer hands out its own **stream ids** (1, 2, 3, …, never reused), remembers which are open,
//! dialing or closed, and refuses bytes for a stream that is closed or unknown, an auth decision
//! nobody asked for, a `JobFinished` for a worker that has no job, and so on.
//!
//! It also keeps what the JavaScript side cannot hold: the [`ReplyTarget`] of every request a
//! handler has not answered yet (the handler gets a numeric **reply handle** instead), and the
//! command registry while it is being built (the core freezes it when the node is created, so
//! registration happens between [`WasmNode::new`] and [`WasmNode::start`]).
//!
//! [`WasmNode::poll`] turns the core's outputs into [`HostOutput`]s, and acts itself on the
//! ones the host has no part in: reply and connect jobs (nothing runs for them but resolving a
//! promise, so their `JobFinished` is fed at once), service-node lookups (this host has no
//! service-node directory, so every lookup fails), worker stops, and bookkeeping events.
//! Command jobs go to the host, which runs the handler and then reports
//! [`WasmNode::job_finished`], so a handler's synchronous reply reaches the node before its
//! `JobFinished`, as the core requires.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use lokimq_core::node::{
    Config, ConnectOptions, ConnectionId, DisconnectCause, Event, Input, Job, Message, Node,
    NodeError, Output, ReplyTarget, RequestError, RequestOptions, SendError, SendOptions,
};
use lokimq_core::{
    Address, AuthLevel, ConnId, Duration, Instant, Keypair, ListenerId, PublicKey, RegistryBuilder,
    WorkerId,
};
use rand_core::{CryptoRng, RngCore};

/// Handlers that have not replied yet, at most: past this the oldest reply handle is dropped
/// (its requester times out), so a handler that never replies cannot grow memory without bound.
pub const MAX_PENDING_REPLIES: usize = 65_536;

/// The longest duration an option accepts (ten years, the core's "forever").
const MAX_OPTION_MS: f64 = 10.0 * 365.0 * 24.0 * 3600.0 * 1000.0;

/// What kind of mistake an [`Error`] reports; the JS layer exposes it as `LokiMQError.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// An argument is malformed or out of range.
    BadArgument,
    /// A key has the wrong length or encoding.
    BadKey,
    /// An address does not parse, or is not usable here.
    BadAddress,
    /// No node has this handle (never created, or freed).
    UnknownNode,
    /// No stream has this id.
    UnknownStream,
    /// The stream existed but is closed: the node closed it or the host reported its end.
    StreamClosed,
    /// The call is for a running node; call `start()` first.
    NotStarted,
    /// The call is for a node being built (registering commands); it has started already.
    AlreadyStarted,
    /// The command registry refused a category, command or alias (OxenMQ's texts).
    Registry,
    /// A message could not be queued (not connected, would block, stopped, …).
    SendFailed,
    /// The node refused an application call (unknown listener, shut down, too many connections).
    Refused,
    /// No pending reply has this handle (already replied, or evicted).
    NoSuchReply,
    /// The host reported something the node did not ask for (an auth decision, a finished job,
    /// a completed dial).
    Unexpected,
    /// The module cannot take the call: a call is already running (re-entrancy), or an earlier
    /// call trapped and the module must be reloaded.
    Busy,
}

impl ErrorCode {
    /// The code as JavaScript sees it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadArgument => "BAD_ARGUMENT",
            Self::BadKey => "BAD_KEY",
            Self::BadAddress => "BAD_ADDRESS",
            Self::UnknownNode => "UNKNOWN_NODE",
            Self::UnknownStream => "UNKNOWN_STREAM",
            Self::StreamClosed => "STREAM_CLOSED",
            Self::NotStarted => "NOT_STARTED",
            Self::AlreadyStarted => "ALREADY_STARTED",
            Self::Registry => "REGISTRY",
            Self::SendFailed => "SEND_FAILED",
            Self::Refused => "REFUSED",
            Self::NoSuchReply => "NO_SUCH_REPLY",
            Self::Unexpected => "UNEXPECTED",
            Self::Busy => "BUSY",
        }
    }
}

/// A refused call: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind of mistake.
    pub code: ErrorCode,
    /// What exactly, and usually what to do instead.
    pub message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Self::new(ErrorCode::SendFailed, e.to_string())
    }
}

impl From<NodeError> for Error {
    fn from(e: NodeError) -> Self {
        Self::new(ErrorCode::Refused, e.to_string())
    }
}

/// How the host says a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The peer closed its side.
    Eof,
    /// The stream failed (reset, broken pipe, …).
    Reset(String),
    /// The dial failed (refused, unreachable, …); the node retries with back-off.
    ConnectFailed(String),
    /// The address cannot be dialled at all here (e.g. `ipc://` in a browser); not retried.
    InvalidAddress(String),
}

/// Something the host must act on, from [`WasmNode::poll`].
#[derive(Debug)]
#[non_exhaustive]
pub enum HostOutput {
    /// Write these bytes to the stream, after everything written to it before.
    Transmit {
        /// The stream.
        stream: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Open a stream to `address` (its transport part: `tcp://HOST:PORT` or `ipc://PATH`), then
    /// report [`WasmNode::connected`] or [`WasmNode::closed`] with
    /// [`StreamEnd::ConnectFailed`].
    Connect {
        /// The new stream's id.
        stream: u64,
        /// Where to connect (without the CURVE key: that is the node's business).
        address: Address,
    },
    /// The node is done with the stream: flush what was written, for at most `linger`, then
    /// close it. The id is dead from now on.
    Close {
        /// The stream.
        stream: u64,
        /// How long to keep flushing.
        linger: Duration,
    },
    /// Listen on `address`; report each connection with [`WasmNode::accept`].
    Listen {
        /// The listener's id.
        listener: u16,
        /// Where to listen.
        address: Address,
    },
    /// A connection on a listener finished its handshake: answer with
    /// [`WasmNode::auth_decision`].
    Auth {
        /// The stream.
        stream: u64,
        /// The listener it arrived on.
        listener: u16,
        /// The peer's address as the host gave it to `accept`.
        remote: String,
        /// The client's CURVE key (`None` on a plain listener).
        pubkey: Option<PublicKey>,
        /// Whether that key is an active service node (always false here: no SN set is kept).
        service_node: bool,
    },
    /// Run the handler of `command`; then call [`WasmNode::job_finished`] with `worker`.
    Command {
        /// The worker slot to report finished.
        worker: u16,
        /// The command, as [`WasmNode::add_command`] numbered it.
        command: u16,
        /// The reply handle, for a request command (answer with [`WasmNode::reply`]).
        reply: Option<u64>,
        /// The message.
        message: Message,
    },
    /// A request finished (its `JobFinished` was fed already).
    Reply {
        /// The id [`WasmNode::request`] returned.
        request: u64,
        /// The reply parts, or why there are none.
        result: Result<Vec<Bytes>, RequestError>,
    },
    /// A [`WasmNode::connect`] connection is up (`HELLO` arrived).
    Connected {
        /// The connection.
        conn: ConnectionId,
    },
    /// A [`WasmNode::connect`] connection attempt failed for good.
    ConnectFailed {
        /// The connection.
        conn: ConnectionId,
        /// OxenMQ's reason text (e.g. "connection attempt timed out").
        reason: String,
    },
    /// Shutdown finished: every connection is closed.
    Stopped,
}

/// Counters, for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    /// Open streams (including ones still dialing).
    pub streams: usize,
    /// Requests waiting for a reply.
    pub pending_requests: usize,
    /// Reply handles not yet used.
    pub pending_replies: usize,
    /// Command jobs handed to the host and not yet finished.
    pub running_jobs: usize,
    /// Outgoing links.
    pub links: usize,
}

struct Stream {
    conn: ConnId,
    dialing: bool,
}

struct Building<R> {
    config: Config,
    registry: RegistryBuilder,
    keypair: Keypair,
    rng: R,
}

enum State<R> {
    Building(Box<Building<R>>),
    Running(Box<Node<R>>),
    /// `Node::new` refused the configuration; the reason.
    Failed(String),
}

/// A LokiMQ node as a JavaScript host drives it. See the [module docs](self).
pub struct WasmNode<R> {
    state: State<R>,
    pubkey: PublicKey,
    now: Instant,
    streams: BTreeMap<u64, Stream>,
    by_conn: BTreeMap<ConnId, u64>,
    next_stream: u64,
    awaiting_auth: BTreeSet<u64>,
    running: BTreeSet<WorkerId>,
    replies: BTreeMap<u64, ReplyTarget>,
    next_reply: u64,
    stopped: bool,
}

impl<R: RngCore + CryptoRng> WasmNode<R> {
    /// A node being built, with OxenMQ's defaults and one worker slot (jobs run inline on the
    /// host's thread, one at a time).
    pub fn new(keypair: Keypair, rng: R) -> Self {
        Self {
            pubkey: *keypair.public(),
            state: State::Building(Box::new(Building {
                config: Config::new(1),
                registry: RegistryBuilder::new(),
                keypair,
                rng,
            })),
            now: Instant::ZERO,
            streams: BTreeMap::new(),
            by_conn: BTreeMap::new(),
            next_stream: 1,
            awaiting_auth: BTreeSet::new(),
            running: BTreeSet::new(),
            replies: BTreeMap::new(),
            next_reply: 1,
            stopped: false,
        }
    }

    /// The node's public key.
    #[must_use]
    pub fn pubkey(&self) -> &PublicKey {
        &self.pubkey
    }

    /// True once started (and not failed).
    #[must_use]
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running(_))
    }

    /// True once shutdown has finished.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    // -----------------------------------------------------------------------------------------
    // building

    fn building(&mut self) -> Result<&mut Building<R>, Error> {
        match &mut self.state {
            State::Building(b) => Ok(b),
            _ => Err(Error::new(
                ErrorCode::AlreadyStarted,
                "the node has started: options, categories and commands must be set before start()",
            )),
        }
    }

    /// Sets a configuration option by its JavaScript name (see `docs/embedding.md`).
    pub fn set_option(&mut self, name: &str, value: f64) -> Result<(), Error> {
        let c = &mut self.building()?.config;
        let ms = || duration_ms(name, value);
        match name {
            "requestTimeoutMs" => c.request_timeout = ms()?,
            "connectTimeoutMs" => c.remote_connect_timeout = ms()?,
            "handshakeTimeoutMs" => c.handshake_timeout = ms()?,
            "heartbeatIntervalMs" => c.heartbeat_interval = ms()?,
            "heartbeatTimeoutMs" => c.heartbeat_timeout = ms()?,
            "reconnectIntervalMs" => c.reconnect_interval = ms()?,
            "reconnectIntervalMaxMs" => c.reconnect_interval_max = ms()?,
            "closeLingerMs" => c.close_linger = ms()?,
            "maxMessageSize" => {
                c.max_message_size = if value == -1.0 {
                    None
                } else {
                    Some(whole(name, value, u64::from(u32::MAX))?)
                };
            }
            "maxIncomingConnections" => {
                c.max_incoming_connections = usize::try_from(whole(name, value, 1_000_000)?)
                    .map_err(|_| bad_option(name, value, "too large"))?;
            }
            "ephemeralRoutingId" => {
                c.ephemeral_routing_id = match value {
                    0.0 => false,
                    1.0 => true,
                    _ => return Err(bad_option(name, value, "expected true or false")),
                };
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::BadArgument,
                    format!("unknown option `{name}`"),
                ));
            }
        }
        Ok(())
    }

    /// Adds a command category whose commands need at least `access` (`none`, `basic` or
    /// `admin`) from the caller's connection.
    pub fn add_category(&mut self, name: &str, access: AuthLevel) -> Result<(), Error> {
        if access == AuthLevel::Denied {
            return Err(Error::new(
                ErrorCode::BadArgument,
                "a category's access must be none, basic or admin",
            ));
        }
        self.building()?
            .registry
            .add_category(name, access)
            .map(|_| ())
            .map_err(|e| Error::new(ErrorCode::Registry, e.to_string()))
    }

    /// Adds `category.name`, a request command (the caller waits for a reply) or a plain one.
    /// Returns the command's number, which [`HostOutput::Command`] carries.
    pub fn add_command(&mut self, category: &str, name: &str, request: bool) -> Result<u16, Error> {
        let registry = &mut self.building()?.registry;
        let id = if request {
            registry.add_request_command(category, name)
        } else {
            registry.add_command(category, name)
        };
        id.map(|id| id.get())
            .map_err(|e| Error::new(ErrorCode::Registry, e.to_string()))
    }

    /// Makes `from` an alias of `to` (`category.command`).
    pub fn add_alias(&mut self, from: &str, to: &str) -> Result<(), Error> {
        self.building()?
            .registry
            .add_command_alias(from, to)
            .map_err(|e| Error::new(ErrorCode::Registry, e.to_string()))
    }

    /// Freezes the registry and creates the core node.
    pub fn start(&mut self, now: Instant) -> Result<(), Error> {
        self.building()?;
        let now = self.tick(now);
        let State::Building(b) = std::mem::replace(&mut self.state, State::Failed(String::new()))
        else {
            return Err(Error::new(ErrorCode::AlreadyStarted, "already started"));
        };
        let Building {
            config,
            registry,
            keypair,
            rng,
        } = *b;
        match Node::new(config, registry.build(), keypair, rng, now) {
            Ok(node) => {
                self.state = State::Running(Box::new(node));
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                self.state = State::Failed(why.clone());
                Err(Error::new(ErrorCode::BadArgument, why))
            }
        }
    }

    fn node(&mut self) -> Result<&mut Node<R>, Error> {
        match &mut self.state {
            State::Running(n) => Ok(n),
            State::Building(_) => Err(Error::new(
                ErrorCode::NotStarted,
                "the node is not started: call start() after registering commands",
            )),
            State::Failed(why) => Err(Error::new(
                ErrorCode::NotStarted,
                format!("the node failed to start: {why}"),
            )),
        }
    }

    /// `now`, never earlier than the latest instant seen (the core requires monotonic time; a
    /// host clock that steps back is treated as "no time passed").
    fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    // -----------------------------------------------------------------------------------------
    // application calls

    /// Listens on `address` (`tcp://HOST:PORT`, port 0 meaning any free port, or
    /// `ipc://PATH`), with CURVE or in plain text. The host binds when it sees
    /// [`HostOutput::Listen`].
    pub fn listen(&mut self, now: Instant, address: &str, curve: bool) -> Result<u16, Error> {
        let addr = parse_listen_address(address)?;
        let now = self.tick(now);
        let node = self.node()?;
        let id = if curve {
            node.listen_curve(now, addr)?
        } else {
            node.listen_plain(now, addr)?
        };
        Ok(id.get())
    }

    /// Connects to `address` (`curve://HOST:PORT/PUBKEY` for CURVE, `tcp://HOST:PORT` plain),
    /// says `HI`, and reports [`HostOutput::Connected`] when `HELLO` comes back (or
    /// [`HostOutput::ConnectFailed`]). Commands the remote sends us on it get `auth`.
    pub fn connect(
        &mut self,
        now: Instant,
        address: &str,
        timeout: Option<Duration>,
        auth: Option<AuthLevel>,
    ) -> Result<ConnectionId, Error> {
        let addr = parse_address(address)?;
        let now = self.tick(now);
        let opts = ConnectOptions::default().auth_level(auth).timeout(timeout);
        Ok(self.node()?.connect_remote(now, addr, &opts))
    }

    /// Closes an outgoing connection after flushing for at most `linger`.
    pub fn disconnect(
        &mut self,
        now: Instant,
        conn: &ConnectionId,
        linger: Duration,
    ) -> Result<(), Error> {
        let now = self.tick(now);
        Ok(self.node()?.disconnect(now, conn, linger)?)
    }

    /// Sends a request `[command, tag, parts…]`; its outcome comes as [`HostOutput::Reply`]
    /// with the returned id.
    pub fn request(
        &mut self,
        now: Instant,
        conn: &ConnectionId,
        command: &str,
        parts: Vec<Bytes>,
        timeout: Option<Duration>,
    ) -> Result<u64, Error> {
        let now = self.tick(now);
        let opts = RequestOptions::default().timeout(timeout);
        let command = Bytes::copy_from_slice(command.as_bytes());
        Ok(self.node()?.request(now, conn, command, parts, &opts)?.0)
    }

    /// Sends a plain command `[command, parts…]`.
    pub fn send(
        &mut self,
        now: Instant,
        conn: &ConnectionId,
        command: &str,
        parts: Vec<Bytes>,
    ) -> Result<(), Error> {
        let now = self.tick(now);
        let command = Bytes::copy_from_slice(command.as_bytes());
        Ok(self
            .node()?
            .send(now, conn, command, parts, &SendOptions::default())?)
    }

    /// Answers the request behind `handle` with `[REPLY, tag, parts…]`. Each handle answers
    /// once.
    pub fn reply(&mut self, now: Instant, handle: u64, parts: Vec<Bytes>) -> Result<(), Error> {
        let now = self.tick(now);
        self.node()?;
        let target = self.replies.remove(&handle).ok_or_else(|| {
            Error::new(
                ErrorCode::NoSuchReply,
                format!("no pending reply {handle}: it was answered already, or dropped"),
            )
        })?;
        Ok(self.node()?.reply(now, &target, parts)?)
    }

    /// Drops a reply handle without answering (the requester will time out). Returns whether it
    /// existed.
    pub fn forget_reply(&mut self, handle: u64) -> bool {
        self.replies.remove(&handle).is_some()
    }

    /// Starts shutdown: pending requests are dropped, running jobs finish, then every
    /// connection is closed and [`HostOutput::Stopped`] comes.
    pub fn shutdown(&mut self, now: Instant) -> Result<(), Error> {
        let now = self.tick(now);
        self.node()?.shutdown(now);
        self.replies.clear();
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // what the host reports

    fn stream(&self, id: u64) -> Result<&Stream, Error> {
        self.streams.get(&id).ok_or_else(|| self.dead_stream(id))
    }

    fn dead_stream(&self, id: u64) -> Error {
        if id >= 1 && id < self.next_stream {
            Error::new(
                ErrorCode::StreamClosed,
                format!(
                    "stream {id} is closed (the node closed it, or its end was reported): \
                     stop feeding it"
                ),
            )
        } else {
            Error::new(ErrorCode::UnknownStream, format!("no stream {id}"))
        }
    }

    fn new_stream(&mut self, conn: ConnId, dialing: bool) -> u64 {
        let id = self.next_stream;
        self.next_stream += 1;
        self.streams.insert(id, Stream { conn, dialing });
        self.by_conn.insert(conn, id);
        id
    }

    fn drop_stream(&mut self, id: u64) -> Option<Stream> {
        let s = self.streams.remove(&id)?;
        self.by_conn.remove(&s.conn);
        self.awaiting_auth.remove(&id);
        Some(s)
    }

    /// A connection arrived on `listener` from `remote` (its IP, for the auth decision).
    /// Returns the new stream's id; register the socket under it before acting on the next
    /// outputs (the first is the greeting to write).
    pub fn accept(&mut self, now: Instant, listener: u16, remote: &str) -> Result<u64, Error> {
        let now = self.tick(now);
        let node = self.node()?;
        if node.listener_address(ListenerId(listener)).is_none() {
            return Err(Error::new(
                ErrorCode::Refused,
                format!("no listener {listener}"),
            ));
        }
        let conn = node.accept(now, ListenerId(listener), remote)?;
        Ok(self.new_stream(conn, false))
    }

    /// Bytes arrived on a stream.
    pub fn received(&mut self, now: Instant, stream: u64, data: &[u8]) -> Result<(), Error> {
        self.node()?;
        let s = self.stream(stream)?;
        if s.dialing {
            return Err(Error::new(
                ErrorCode::Unexpected,
                format!("stream {stream} is still dialing: report connected() before its bytes"),
            ));
        }
        let conn = s.conn;
        let now = self.tick(now);
        if data.is_empty() {
            return Ok(());
        }
        self.node()?.handle_received(now, conn, data);
        Ok(())
    }

    /// A dial asked for by [`HostOutput::Connect`] succeeded.
    pub fn connected(&mut self, now: Instant, stream: u64) -> Result<(), Error> {
        self.node()?;
        let s = self.stream(stream)?;
        if !s.dialing {
            return Err(Error::new(
                ErrorCode::Unexpected,
                format!("stream {stream} is not dialing: connected() was reported already"),
            ));
        }
        let conn = s.conn;
        if let Some(s) = self.streams.get_mut(&stream) {
            s.dialing = false;
        }
        let now = self.tick(now);
        self.node()?.handle(now, Input::Connected { conn })?;
        Ok(())
    }

    /// A stream ended, or its dial failed. Reporting the end of a stream the node has already
    /// closed is harmless (hosts often see the socket's end after closing it).
    pub fn closed(&mut self, now: Instant, stream: u64, end: StreamEnd) -> Result<(), Error> {
        let now = self.tick(now);
        self.node()?;
        if !self.streams.contains_key(&stream) {
            let e = self.dead_stream(stream);
            return if e.code == ErrorCode::StreamClosed {
                Ok(())
            } else {
                Err(e)
            };
        }
        let Some(s) = self.drop_stream(stream) else {
            return Ok(());
        };
        let cause = match (end, s.dialing) {
            (StreamEnd::Eof, true) => {
                DisconnectCause::ConnectFailed(String::from("closed while connecting"))
            }
            (StreamEnd::Reset(why) | StreamEnd::ConnectFailed(why), true) => {
                DisconnectCause::ConnectFailed(why)
            }
            (StreamEnd::Eof, false) => DisconnectCause::Eof,
            (StreamEnd::Reset(why) | StreamEnd::ConnectFailed(why), false) => {
                DisconnectCause::Reset(why)
            }
            (StreamEnd::InvalidAddress(why), _) => DisconnectCause::InvalidAddress(why),
        };
        self.node()?.handle(
            now,
            Input::Disconnected {
                conn: s.conn,
                cause,
            },
        )?;
        Ok(())
    }

    /// The host could not bind `listener`.
    pub fn listen_failed(
        &mut self,
        now: Instant,
        listener: u16,
        reason: &str,
    ) -> Result<(), Error> {
        let now = self.tick(now);
        let node = self.node()?;
        if node.listener_address(ListenerId(listener)).is_none() {
            return Err(Error::new(
                ErrorCode::Refused,
                format!("no listener {listener}"),
            ));
        }
        node.handle(
            now,
            Input::ListenFailed {
                listener: ListenerId(listener),
                reason: String::from(reason),
            },
        )?;
        Ok(())
    }

    /// The answer to [`HostOutput::Auth`]: the level the peer gets, or `Denied`.
    pub fn auth_decision(
        &mut self,
        now: Instant,
        stream: u64,
        level: AuthLevel,
    ) -> Result<(), Error> {
        self.node()?;
        let conn = self.stream(stream)?.conn;
        if !self.awaiting_auth.remove(&stream) {
            return Err(Error::new(
                ErrorCode::Unexpected,
                format!("stream {stream} has no auth decision pending"),
            ));
        }
        let now = self.tick(now);
        self.node()?
            .handle(now, Input::AuthDecision { conn, level })?;
        Ok(())
    }

    /// The handler of a [`HostOutput::Command`] on `worker` has returned.
    pub fn job_finished(&mut self, now: Instant, worker: u16) -> Result<(), Error> {
        let now = self.tick(now);
        self.node()?;
        if !self.running.remove(&WorkerId(worker)) {
            return Err(Error::new(
                ErrorCode::Unexpected,
                format!("worker {worker} has no job running"),
            ));
        }
        self.node()?.handle(
            now,
            Input::JobFinished {
                worker: WorkerId(worker),
            },
        )?;
        Ok(())
    }

    /// `now` has reached [`poll_timeout`](Self::poll_timeout) (early calls are harmless).
    pub fn timeout(&mut self, now: Instant) -> Result<(), Error> {
        let now = self.tick(now);
        self.node()?.handle(now, Input::Timeout)?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // outputs

    /// When the node next needs [`timeout`](Self::timeout), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Running(n) => n.poll_timeout(),
            _ => None,
        }
    }

    /// Counters.
    #[must_use]
    pub fn info(&self) -> Info {
        let (pending_requests, links) = match &self.state {
            State::Running(n) => {
                let s = n.stats();
                (s.pending_requests, s.links)
            }
            _ => (0, 0),
        };
        Info {
            streams: self.streams.len(),
            pending_requests,
            pending_replies: self.replies.len(),
            running_jobs: self.running.len(),
            links,
        }
    }

    /// The next output the host must act on, or `None` when the node is idle (then arm a timer
    /// for [`poll_timeout`](Self::poll_timeout)). Call after every other call until `None`.
    pub fn poll(&mut self) -> Option<HostOutput> {
        let now = self.now;
        loop {
            let State::Running(node) = &mut self.state else {
                return None;
            };
            let out = node.poll_output()?;
            if let Some(host) = self.translate(now, out) {
                return Some(host);
            }
        }
    }

    /// One core output: either something for the host, or handled here (`None`).
    fn translate(&mut self, now: Instant, out: Output) -> Option<HostOutput> {
        match out {
            Output::Transmit { conn, data } => match self.by_conn.get(&conn) {
                Some(&stream) => Some(HostOutput::Transmit { stream, data }),
                // The host reported the stream's end while these bytes were queued.
                None => {
                    log::debug!("the node wrote to {conn:?}, which has no stream; dropped");
                    None
                }
            },
            Output::Connect { conn, addr } => {
                let stream = self.new_stream(conn, true);
                Some(HostOutput::Connect {
                    stream,
                    address: addr,
                })
            }
            Output::Close { conn, linger } => {
                let stream = self.by_conn.get(&conn).copied()?;
                self.drop_stream(stream);
                Some(HostOutput::Close { stream, linger })
            }
            Output::Listen { listener, addr } => Some(HostOutput::Listen {
                listener: listener.get(),
                address: addr,
            }),
            Output::RunJob { worker, job } => self.job(now, worker, job),
            Output::Event(event) => self.event(now, event),
            // No threads to stop.
            Output::StopWorker { .. } => None,
            // The JavaScript side closes every listener itself when it shuts the node down,
            // which is when the node asks for this.
            Output::Unlisten { .. } => None,
        }
    }

    fn job(&mut self, now: Instant, worker: WorkerId, job: Job) -> Option<HostOutput> {
        let out = match job {
            Job::Command { command, message } => {
                let reply = message.reply_to.tag().is_some().then(|| {
                    let handle = self.next_reply;
                    self.next_reply += 1;
                    self.replies.insert(handle, message.reply_to.clone());
                    if self.replies.len() > MAX_PENDING_REPLIES {
                        if let Some((old, _)) = self.replies.pop_first() {
                            log::warn!("dropping reply handle {old}: too many unanswered requests");
                        }
                    }
                    handle
                });
                self.running.insert(worker);
                return Some(HostOutput::Command {
                    worker: worker.get(),
                    command: command.get(),
                    reply,
                    message,
                });
            }
            Job::Reply { request, result } => Some(HostOutput::Reply {
                request: request.0,
                result,
            }),
            Job::Connected { conn } => Some(HostOutput::Connected { conn }),
            Job::ConnectFailed { conn, error } => Some(HostOutput::ConnectFailed {
                conn,
                reason: error.to_string(),
            }),
            other => {
                log::warn!("ignoring a job this host never asked for: {other:?}");
                None
            }
        };
        // Nothing runs for these on the host but resolving a promise (which never calls back
        // synchronously), so the job is over now.
        if let State::Running(node) = &mut self.state {
            if let Err(e) = node.handle(now, Input::JobFinished { worker }) {
                log::error!("the node refused a finished job: {e}");
            }
        }
        out
    }

    fn event(&mut self, now: Instant, event: Event) -> Option<HostOutput> {
        match event {
            Event::AuthRequest {
                conn,
                listener,
                remote,
                pubkey,
                service_node,
            } => {
                let stream = *self.by_conn.get(&conn)?;
                self.awaiting_auth.insert(stream);
                Some(HostOutput::Auth {
                    stream,
                    listener: listener.get(),
                    remote,
                    pubkey,
                    service_node,
                })
            }
            Event::LookupSn { pubkey } => {
                log::warn!(
                    "no address known for service node {}: this host keeps no service-node directory",
                    pubkey.to_hex()
                );
                if let State::Running(node) = &mut self.state {
                    // Answers to the node's own questions are always accepted.
                    let _ = node.handle(
                        now,
                        Input::SnAddress {
                            pubkey,
                            address: None,
                        },
                    );
                }
                None
            }
            Event::Stopped => {
                self.stopped = true;
                Some(HostOutput::Stopped)
            }
            Event::Dropped { category, .. } => {
                log::warn!("dropped an incoming command of {category:?}: its queue is full");
                None
            }
            other => {
                log::debug!("{other:?}");
                None
            }
        }
    }
}

/// `tcp://HOST:PORT` (port 0 allowed, unlike in OxenMQ's connect addresses) or `ipc://PATH`.
fn parse_listen_address(text: &str) -> Result<Address, Error> {
    let bad = |why: &str| {
        Error::new(
            ErrorCode::BadAddress,
            format!("cannot listen on `{text}`: {why} (expected tcp://HOST:PORT or ipc://PATH)"),
        )
    };
    if let Some(path) = text.strip_prefix("ipc://") {
        if path.is_empty() {
            return Err(bad("empty socket path"));
        }
        return Ok(Address::ipc(path));
    }
    let Some(hostport) = text.strip_prefix("tcp://") else {
        return Err(bad("unknown scheme"));
    };
    let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    if host.is_empty() || host.contains('/') {
        return Err(bad("bad host"));
    }
    Ok(Address::tcp(host, port))
}

fn parse_address(text: &str) -> Result<Address, Error> {
    Address::parse(text)
        .map_err(|e| Error::new(ErrorCode::BadAddress, format!("bad address `{text}`: {e}")))
}

fn bad_option(name: &str, value: f64, why: &str) -> Error {
    Error::new(
        ErrorCode::BadArgument,
        format!("option `{name}`: {value} is not valid ({why})"),
    )
}

/// A whole number in `0..=max`.
fn whole(name: &str, value: f64, max: u64) -> Result<u64, Error> {
    crate::wire::f64_to_id(value)
        .filter(|&v| v <= max)
        .ok_or_else(|| {
            bad_option(
                name,
                value,
                &format!("expected a whole number from 0 to {max}"),
            )
        })
}

/// Milliseconds (fractions allowed) from 0 to ten years.
fn duration_ms(name: &str, value: f64) -> Result<Duration, Error> {
    if !(0.0..=MAX_OPTION_MS).contains(&value) {
        return Err(bad_option(
            name,
            value,
            "expected milliseconds from 0 to ten years",
        ));
    }
    Ok(Duration::from_secs_f64(value / 1000.0))
}

/// Milliseconds from JavaScript as a [`Duration`]: `None` for "use the default" (a negative
/// value), an error for NaN, infinities and more than ten years.
pub fn optional_ms(what: &str, value: f64) -> Result<Option<Duration>, Error> {
    if value < 0.0 {
        return Ok(None);
    }
    duration_ms(what, value).map(Some)
}

#[cfg(test)]
mod tests;
