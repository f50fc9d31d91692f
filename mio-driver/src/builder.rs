//! [`Builder`]: keys, commands, listeners and tunables, fixed before the node starts; and
//! [`Listen`], one listener's description.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use lokimq_core::address::{Address, AddressError};
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{CommandId, TaggedThreadId, TimerId};
use lokimq_core::keys::{KeyError, Keypair, PublicKey};
use lokimq_core::node::{BacklogLimit, Config, Job, Node, Target};
use lokimq_core::registry::{CategoryOptions, RegistryBuilder};
use lokimq_core::sched::{self, SchedError, Scheduler};
use lokimq_core::time::Instant;
use mio::Poll;
use rand_core::{OsRng, SeedableRng};

use crate::clock::Clock;
use crate::disconnect::{DisconnectFn, Disconnected};
use crate::handle::{AllowFn, CommandFn, Handle, OnBind, Shared, SnLookupFn, TimerFn, run_guarded};
use crate::kit::jobs::{JobTable, Task};
use crate::kit::net::UnixSocketAccess;
use crate::kit::{Host, NodeRng, SchedulerHome};
use crate::message::Message;
use crate::proxy::{Proxy, WAKER, Workers};
use crate::{Error, LokiMq};

/// Anything that names an address: OxenMQ's text forms (`tcp://…`, `curve://…/KEY`,
/// `ipc://…`, `ipc+curve://…/KEY`), a parsed [`Address`], or a socket address (plain TCP).
/// Text needs a real port (1–65535, as in OxenMQ); to listen on an ephemeral port, pass a
/// socket address with port 0 and read the port back from
/// [`Handle::bound_addresses`](crate::Handle::bound_addresses) or [`Listen::on_bind`].
///
/// ```
/// use lokimq::{Address, ToAddress};
/// use std::net::SocketAddr;
///
/// let text = "tcp://127.0.0.1:22020".to_address()?;
/// assert_eq!((text.host(), text.port()), (Some("127.0.0.1"), Some(22020)));
/// let ephemeral = SocketAddr::from(([127, 0, 0, 1], 0)).to_address()?;
/// assert_eq!(ephemeral.port(), Some(0));
/// assert!("tcp://127.0.0.1:0".to_address().is_err());
/// let unix = Address::ipc("/run/node.sock").to_address()?;
/// assert_eq!(unix.socket(), Some("/run/node.sock"));
/// # Ok::<(), lokimq::AddressError>(())
/// ```
pub trait ToAddress {
    /// Converts, or says why the text is not an address.
    fn to_address(self) -> Result<Address, AddressError>;
}

impl ToAddress for Address {
    fn to_address(self) -> Result<Address, AddressError> {
        Ok(self)
    }
}

impl ToAddress for &Address {
    fn to_address(self) -> Result<Address, AddressError> {
        Ok(self.clone())
    }
}

impl ToAddress for &str {
    fn to_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

impl ToAddress for String {
    fn to_address(self) -> Result<Address, AddressError> {
        Address::parse(&self)
    }
}

impl ToAddress for &String {
    fn to_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

impl ToAddress for SocketAddr {
    fn to_address(self) -> Result<Address, AddressError> {
        Ok(Address::from_socket_addr(self))
    }
}

/// One listener: where, CURVE or plain, who may connect, and who to tell once it is bound.
///
/// ```
/// use lokimq::{AuthLevel, Listen};
/// let l = Listen::curve("tcp://127.0.0.1:4567")?
///     .allow(|ip, _key, _sn| if ip == "127.0.0.1" { AuthLevel::Basic } else { AuthLevel::Denied })
///     .on_bind(|r| println!("bound: {r:?}"));
/// # Ok::<(), lokimq::Error>(())
/// ```
pub struct Listen {
    pub(crate) address: Address,
    pub(crate) curve: bool,
    pub(crate) allow: Option<AllowFn>,
    pub(crate) on_bind: Option<OnBind>,
    pub(crate) unix: UnixSocketAccess,
}

impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listen")
            .field("address", &self.address)
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl Listen {
    /// A CURVE listener (OxenMQ's `listen_curve`) on a `tcp://` or `ipc://` address; any key
    /// in the address is ignored (the node's own key is used). Clients connect to the bound
    /// address, which carries that key.
    ///
    /// ```
    /// use lokimq::{Keypair, Listen};
    ///
    /// let key = Keypair::from_secret_bytes([7; 32]);
    /// let l = Listen::curve(format!("curve://127.0.0.1:4000/{}", key.public().to_hex()))?;
    /// assert_eq!(l.address().to_string(), "tcp://127.0.0.1:4000"); // key dropped
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn curve(addr: impl ToAddress) -> Result<Self, Error> {
        Self::new(addr, true)
    }

    /// A plain (unencrypted, unauthenticated) listener (OxenMQ's `listen_plain`): the allow
    /// function sees only the client's address, so it suits unix sockets and local tools. A
    /// unix socket's file is created on bind.
    ///
    /// ```
    /// use lokimq::{AuthLevel, Listen, LokiMq};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("admin.sock");
    /// let mut b = LokiMq::builder();
    /// // Whoever can open the socket file is trusted.
    /// b.listen(Listen::plain(format!("ipc://{}", path.display()))?.allow(|_, _, _| AuthLevel::Admin));
    /// let node = b.start()?;
    /// assert!(node.bound_addresses()[0].is_ipc());
    /// assert!(path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plain(addr: impl ToAddress) -> Result<Self, Error> {
        Self::new(addr, false)
    }

    fn new(addr: impl ToAddress, curve: bool) -> Result<Self, Error> {
        let address = addr.to_address()?.with_pubkey(None);
        Ok(Self {
            address,
            curve,
            allow: None,
            on_bind: None,
            unix: UnixSocketAccess::default(),
        })
    }

    /// Decides each incoming connection once its handshake is done: `(ip, client key (CURVE
    /// only), is an active service node) -> level`; [`AuthLevel::Denied`] refuses it. The level
    /// is what the client's commands are checked against. Without one, everyone gets `none`.
    /// Runs on the proxy thread: keep it quick (a panic denies the connection).
    ///
    /// ```
    /// use lokimq::{AuthLevel, Listen, PublicKey};
    /// use std::collections::BTreeSet;
    ///
    /// let operators: BTreeSet<PublicKey> = BTreeSet::new(); // e.g. from a config file
    /// let l = Listen::curve("tcp://0.0.0.0:22020")?.allow(move |ip, key, is_sn| {
    ///     if key.is_some_and(|k| operators.contains(k)) {
    ///         AuthLevel::Admin
    ///     } else if is_sn || ip.starts_with("10.") {
    ///         AuthLevel::Basic
    ///     } else {
    ///         AuthLevel::None
    ///     }
    /// });
    /// # let _ = l;
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    #[must_use]
    pub fn allow(
        mut self,
        f: impl Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync + 'static,
    ) -> Self {
        self.allow = Some(Arc::new(f));
        self
    }

    /// Called once with the bound address (actual port; the node's key for CURVE listeners)
    /// or the reason binding failed. For a listener given to the builder it runs inside
    /// [`Builder::start`], on the calling thread, before `start` returns; for one given to
    /// [`Handle::listen`](crate::Handle::listen), on the proxy thread.
    ///
    /// ```
    /// use lokimq::{Listen, LokiMq};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let mut b = LokiMq::builder();
    /// b.listen(Listen::plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?
    ///     .on_bind(move |r| { let _ = tx.send(r); }));
    /// let node = b.start()?;
    /// let addr = rx.try_recv()??; // already there: no waiting
    /// assert_eq!(node.bound_addresses(), [addr]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn on_bind(mut self, f: impl FnOnce(Result<Address, String>) + Send + 'static) -> Self {
        self.on_bind = Some(Box::new(f));
        self
    }

    /// For an `ipc://` listener: sets the socket file's permission bits (e.g. `0o660`) right
    /// after binding, as OxenMQ's `STARTUP_UMASK` does. A failure fails the bind. Ignored for
    /// TCP. The file briefly has the process umask's permissions first; for a socket that must
    /// never be reachable by others, bind it in a directory only the intended users can enter.
    ///
    /// ```
    /// use lokimq::{Listen, LokiMq};
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("rpc.sock");
    /// let mut b = LokiMq::builder();
    /// b.listen(Listen::plain(format!("ipc://{}", path.display()).as_str())?.unix_mode(0o660));
    /// let _node = b.start()?;
    /// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o660);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn unix_mode(mut self, mode: u32) -> Self {
        self.unix.mode = Some(mode & 0o7777);
        self
    }

    /// For an `ipc://` listener: changes the socket file's owner and/or group right after
    /// binding (OxenMQ's `SOCKET_UID`/`SOCKET_GID`; `None` leaves that one unchanged). A
    /// failure (typically: not permitted) fails the bind with OxenMQ's "cannot set group on
    /// PATH: …" text. Ignored for TCP.
    #[must_use]
    pub fn unix_owner(mut self, uid: Option<u32>, gid: Option<u32>) -> Self {
        self.unix.uid = uid;
        self.unix.gid = gid;
        self
    }

    /// The address to bind.
    #[must_use]
    pub fn address(&self) -> &Address {
        &self.address
    }
}

/// Builds a node (OxenMQ's constructor plus everything that must happen before `start()`):
/// keys, tunables, command categories and commands, tagged threads, listeners, timers.
///
/// Registration methods take `&mut self` and return `Result<&mut Self, Error>` (or `&mut Self`
/// when they cannot fail), so they chain with `?`; [`start`](Self::start) consumes the
/// builder, and the registry is frozen from then on.
///
/// ```
/// use lokimq::{AuthLevel, LokiMq};
/// use std::time::Duration;
///
/// let mut b = LokiMq::builder();
/// b.config_mut().request_timeout = Duration::from_secs(5);
/// b.add_category("system", AuthLevel::None)?
///     .add_request_command("system", "ping", |m| m.send_reply(["pong"]))?
///     .add_category("admin", AuthLevel::Admin)?
///     .add_command("admin", "log_level", |m| println!("log level: {:?}", m.data()))?
///     .listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
/// let node = b.start()?;
/// # let _ = node;
/// # Ok::<(), lokimq::Error>(())
/// ```
pub struct Builder {
    keypair: Option<Keypair>,
    service_node: bool,
    config: Config,
    registry: RegistryBuilder,
    commands: BTreeMap<CommandId, CommandFn>,
    listens: Vec<Listen>,
    tagged_starts: Vec<Option<Task>>,
    sn_lookup: Option<SnLookupFn>,
    on_disconnect: Option<DisconnectFn>,
    active_sns: Option<BTreeSet<PublicKey>>,
    timers: Vec<PendingTimer>,
}

/// A timer added before `start()`.
struct PendingTimer {
    id: TimerId,
    f: TimerFn,
    interval: Duration,
    squelch: bool,
    target: Target,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("pubkey", &self.keypair.as_ref().map(Keypair::public))
            .field("service_node", &self.service_node)
            .field("config", &self.config)
            .field("listens", &self.listens)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// OxenMQ's defaults: a generated keypair, not a service node, one general worker per
    /// CPU core, no commands, no listeners.
    #[must_use]
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| u16::try_from(n.get()).unwrap_or(u16::MAX));
        let mut config = Config::new(cores);
        // libzmq's per-peer high-water mark (OxenMQ never changes it), plus a byte cap: the
        // driver reports its write queues, so a peer that stops reading costs bounded memory.
        config.send_backlog_limit = Some(BacklogLimit::LIBZMQ);
        Self {
            keypair: None,
            service_node: false,
            config,
            registry: RegistryBuilder::new(),
            commands: BTreeMap::new(),
            listens: Vec::new(),
            tagged_starts: Vec::new(),
            sn_lookup: None,
            on_disconnect: None,
            active_sns: None,
            timers: Vec::new(),
        }
    }

    /// Uses this long-term keypair (its public key is the node's identity, and a service
    /// node's address in the network). Without one, a keypair is generated at start.
    ///
    /// ```
    /// use lokimq::{Keypair, LokiMq};
    ///
    /// let secret = [0x42; 32]; // e.g. read from the node's key file
    /// let mut b = LokiMq::builder();
    /// b.keypair(Keypair::from_secret_bytes(secret));
    /// let node = b.start()?;
    /// assert_eq!(node.pubkey(), Keypair::from_secret_bytes(secret).public());
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn keypair(&mut self, keypair: Keypair) -> &mut Self {
        self.keypair = Some(keypair);
        self
    }

    /// OxenMQ's key arguments: both empty generates a keypair at start (unless this is a
    /// service node); otherwise both must be 32 bytes and match (this guards against passing
    /// an ed25519 key). A refusal is an [`Error::Key`].
    ///
    /// ```
    /// use lokimq::{Error, Keypair, LokiMq};
    ///
    /// let stored = Keypair::from_secret_bytes([0x42; 32]);
    /// let (pk, sk) = (stored.public().to_bytes(), stored.secret().to_bytes());
    /// let mut b = LokiMq::builder();
    /// b.keys(&pk, &sk)?;
    /// assert_eq!(b.start()?.pubkey(), stored.public());
    ///
    /// assert!(matches!(LokiMq::builder().keys(&[1; 32], &sk), Err(Error::Key(_)))); // mismatch
    /// assert!(matches!(LokiMq::builder().keys(&[], &sk), Err(Error::Key(_)))); // one missing
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn keys(&mut self, pubkey: &[u8], privkey: &[u8]) -> Result<&mut Self, Error> {
        self.keypair = match (pubkey.is_empty(), privkey.is_empty()) {
            (true, true) => None,
            (true, false) | (false, true) => return Err(KeyError::OneKeyEmpty.into()),
            (false, false) => Some(Keypair::from_parts(pubkey, privkey)?),
        };
        Ok(self)
    }

    /// Runs this node as a service node (enables `local_sn` categories). Needs a keypair:
    /// without one [`start`](Self::start) fails with an [`Error::Key`]. Other nodes reach it by
    /// key, finding its address through their [`sn_lookup`](Self::sn_lookup) or a hint.
    ///
    /// ```
    /// use lokimq::{Access, AuthLevel, Error, Keypair, LokiMq};
    ///
    /// let mut b = LokiMq::builder();
    /// b.service_node(true)
    ///     .keypair(Keypair::from_secret_bytes([0x42; 32]))
    ///     // Commands only a service node answers:
    ///     .add_category("storage", Access::new(AuthLevel::None, false, true))?
    ///     .add_request_command("storage", "retrieve", |m| m.send_reply(["…"]))?
    ///     .listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// let sn = b.start()?;
    /// # let _ = sn;
    ///
    /// let mut keyless = LokiMq::builder();
    /// keyless.service_node(true);
    /// assert!(matches!(keyless.start(), Err(Error::Key(_))));
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn service_node(&mut self, service_node: bool) -> &mut Self {
        self.service_node = service_node;
        self
    }

    /// The node's tunables (OxenMQ's public members: worker counts, timeouts, limits, …).
    /// The builder starts from [`Config::new`] with one general worker per CPU core and
    /// libzmq's high-water mark as `send_backlog_limit`. `service_node` and `tagged_threads`
    /// belong to [`service_node`](Self::service_node) and
    /// [`add_tagged_thread`](Self::add_tagged_thread): [`start`](Self::start) overwrites
    /// `service_node` with the builder's flag.
    ///
    /// ```
    /// use lokimq::{BacklogLimit, LokiMq};
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let c = b.config_mut();
    /// c.general_workers = 4;
    /// c.batch_threads = Some(2); // of which 2 are kept for jobs, batches and timers
    /// c.request_timeout = Duration::from_secs(5);
    /// c.heartbeat_interval = Duration::ZERO; // no ZMTP heartbeats
    /// c.max_message_size = Some(16 << 20);
    /// c.send_backlog_limit = Some(BacklogLimit { messages: 10_000, bytes: 256 << 20 });
    /// let node = b.start()?;
    /// assert_eq!(node.handle().stats()?.sched.general_workers, 4);
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Answers "where does this service node listen?" when a connection to a service node
    /// must be opened and no hint was given (OxenMQ's `sn_lookup`); `None` means unknown: the
    /// messages queued for it are dropped and its requests fail at once. Runs on the proxy
    /// thread: keep it quick (look the key up in a table you keep current, don't query the
    /// network).
    ///
    /// ```
    /// # use lokimq::{AuthLevel, Keypair};
    /// # let mut b = LokiMq::builder();
    /// # b.service_node(true).keypair(Keypair::from_secret_bytes([0x42; 32]))
    /// #     .add_category("sn", AuthLevel::None)?
    /// #     .add_request_command("sn", "info", |m| m.send_reply(["ok"]))?
    /// #     .listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// # let sn = b.start()?;
    /// use lokimq::{ConnectionId, LokiMq, NO_DATA};
    /// use std::collections::BTreeMap;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// // `sn` is a running service node with an `sn.info` request command.
    /// let directory = BTreeMap::from([(*sn.pubkey(), sn.bound_addresses()[0].clone())]);
    /// let mut b = LokiMq::builder();
    /// b.sn_lookup(move |pk| directory.get(pk).cloned());
    /// let client = b.start()?;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let to = ConnectionId::Sn(*sn.pubkey()); // by key alone
    /// client.handle().request(&to, "sn.info", NO_DATA, move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["ok"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sn_lookup(
        &mut self,
        f: impl Fn(&PublicKey) -> Option<Address> + Send + Sync + 'static,
    ) -> &mut Self {
        self.sn_lookup = Some(Arc::new(f));
        self
    }

    /// Called on a worker thread whenever a connection ends (see [`Disconnected`]): an
    /// incoming or outgoing connection that was established, with its key and the reason
    /// (also when we closed it, with [`Handle::disconnect`](crate::Handle::disconnect)), and
    /// an outgoing connection given up for good after it went down. Use it to drop
    /// per-connection application state (when [`Disconnected::is_final`]). Not called for
    /// connections that never came up (their `connect_remote` failure callback is), nor once
    /// shutdown has started.
    ///
    /// ```
    /// # use lokimq::{AuthLevel, ConnectOptions, Disconnected, LokiMq};
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// let mut b = LokiMq::builder();
    /// b.listen_plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| AuthLevel::None)?;
    /// let (tx, rx) = mpsc::channel();
    /// b.on_disconnect(move |d| { let _ = tx.send(d); });
    /// let server = b.start()?;
    ///
    /// let client = LokiMq::builder().start()?;
    /// let (up, connected) = mpsc::channel();
    /// let addr = server.bound_addresses()[0].clone();
    /// client.handle().connect_remote(addr, move |c| { let _ = up.send(c); }, |_, _| {},
    ///     ConnectOptions::default())?;
    /// connected.recv_timeout(Duration::from_secs(10))?;
    /// drop(client); // closes the connection
    /// let d: Disconnected = rx.recv_timeout(Duration::from_secs(10))?;
    /// assert!(d.is_final());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_disconnect(&mut self, f: impl Fn(Disconnected) + Send + Sync + 'static) -> &mut Self {
        self.on_disconnect = Some(Arc::new(f));
        self
    }

    /// The initial active service-node set; change it later with
    /// [`Handle::set_active_sns`](crate::Handle::set_active_sns) and
    /// [`Handle::update_active_sns`](crate::Handle::update_active_sns).
    pub fn set_active_sns(&mut self, sns: impl IntoIterator<Item = PublicKey>) -> &mut Self {
        self.active_sns = Some(sns.into_iter().collect());
        self
    }

    /// Adds a category (OxenMQ's `add_category`). `opts` is what a caller needs for every
    /// command in it — an [`AuthLevel`], or an [`Access`](crate::Access) that can also require the caller to
    /// be a service node (`remote_sn`) or this node to be one (`local_sn`) — with OxenMQ's
    /// defaults (no reserved threads, at most 200 commands waiting), or a [`CategoryOptions`]
    /// that also sets the reserved threads (workers kept for this category on top of the
    /// general pool, so it keeps running when the pool is busy) and the [`QueueLimit`](crate::QueueLimit) (how
    /// many of its commands may wait for a worker; beyond that they are dropped with a log and
    /// no reply, as in OxenMQ). Names are 1–50 bytes without a `.`, and new; a refusal is an
    /// [`Error::Registry`] with OxenMQ's message.
    ///
    /// ```
    /// use lokimq::{Access, AuthLevel, CategoryOptions, Error, LokiMq, QueueLimit};
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("public", AuthLevel::None)?
    ///     .add_category("admin", AuthLevel::Admin)?
    ///     .add_category("quorum", Access::new(AuthLevel::None, true, true))? // SN to SN only
    ///     // Never starved, 500 waiting at most:
    ///     .add_category(
    ///         "blocks",
    ///         CategoryOptions::new(AuthLevel::Basic).reserved_threads(2).max_queue(QueueLimit::At(500)),
    ///     )?
    ///     // No reservation, no limit:
    ///     .add_category("firehose", CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited))?;
    /// assert!(matches!(b.add_category("admin", AuthLevel::Basic), Err(Error::Registry(_))));
    /// assert!(b.add_category("a.b", AuthLevel::None).is_err());
    /// let node = b.start()?;
    /// let s = node.handle().stats()?.sched; // the 2 reserved threads come on top of the pools
    /// assert_eq!(s.max_workers, s.general_workers + s.batch_reserved + s.reply_reserved + 2);
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn add_category(
        &mut self,
        name: &str,
        opts: impl Into<CategoryOptions>,
    ) -> Result<&mut Self, Error> {
        self.registry.add_category(name, opts)?;
        Ok(self)
    }

    /// Adds a command `category.name` to an existing category; `callback` runs on a worker for
    /// each one received from a caller with the category's access. To answer, it can
    /// [`send_back`](Message::send_back) a command of its own.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let mut b = LokiMq::builder();
    /// b.add_category("log", AuthLevel::Basic)?
    ///     .add_command("log", "line", move |m| {
    ///         let _ = tx.send(String::from_utf8_lossy(&m.data()[0]).into_owned());
    ///     })?;
    /// let node = b.start()?;
    ///
    /// let conn = node.handle().connect_inproc(|_| {}, |_, _| {}, None)?; // admin: enough for `basic`
    /// node.handle().send(&conn, "log.line", ["disk almost full"])?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "disk almost full");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_command(
        &mut self,
        category: &str,
        name: &str,
        callback: impl Fn(&mut Message) + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let id = self.registry.add_command(category, name)?;
        self.commands.insert(id, Arc::new(callback));
        Ok(self)
    }

    /// Adds a request command (on the wire its first data frame is the reply tag, which the
    /// callback does not see in [`Message::data`]); answer with [`Message::send_reply`], now
    /// or later through [`Message::send_later`]. A caller without access gets `FORBIDDEN`.
    ///
    /// ```
    /// use lokimq::{AuthLevel, Bytes, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("math", AuthLevel::None)?.add_request_command("math", "sum", |m| {
    ///     let sum: i64 = m.data().iter()
    ///         .filter_map(|f| std::str::from_utf8(f).ok()?.parse::<i64>().ok())
    ///         .sum();
    ///     m.send_reply([sum.to_string()]);
    /// })?;
    /// let node = b.start()?;
    ///
    /// let conn = node.handle().connect_inproc(|_| {}, |_, _| {}, None)?;
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().request(&conn, "math.sum", ["2", "3", "37"], move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, [Bytes::from("42")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_request_command(
        &mut self,
        category: &str,
        name: &str,
        callback: impl Fn(&mut Message) + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let id = self.registry.add_request_command(category, name)?;
        self.commands.insert(id, Arc::new(callback));
        Ok(self)
    }

    /// Makes `from` an alias of `to` (`category.command`; OxenMQ's `add_command_alias`): an
    /// incoming `from` runs, and is access-checked as, `to`. Handy for renamed commands. `to`
    /// need not be registered yet; `from` must not name an existing command.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq, NO_DATA};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// b.add_category("rpc", AuthLevel::None)?
    ///     .add_request_command("rpc", "get_height", |m| m.send_reply(["1234"]))?
    ///     .add_command_alias("legacy.height", "rpc.get_height")?; // the pre-2.0 name
    /// let node = b.start()?;
    ///
    /// let conn = node.handle().connect_inproc(|_| {}, |_, _| {}, None)?;
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().request(&conn, "legacy.height", NO_DATA, move |r| { let _ = tx.send(r); })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))??, ["1234"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_command_alias(&mut self, from: &str, to: &str) -> Result<&mut Self, Error> {
        self.registry.add_command_alias(from, to)?;
        Ok(self)
    }

    /// Adds a tagged thread (OxenMQ's `add_tagged_thread`): a thread, started by
    /// [`start`](Self::start), that runs only the jobs, batch jobs, completions and timers
    /// addressed to it by the returned id, one at a time, in order. Use it for work that must
    /// stay on one thread (a database handle, a non-`Send` library). The name (the OS thread
    /// name, truncated to 15 bytes) must not be empty or `_proxy` or contain a NUL.
    ///
    /// ```
    /// use lokimq::{Error, LokiMq, SchedError, Target};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let db = b.add_tagged_thread("db")?;
    /// assert!(matches!(b.add_tagged_thread("_proxy"), Err(Error::Sched(SchedError::InvalidTaggedThreadName(_)))));
    /// let (tx, rx) = mpsc::channel();
    /// b.add_timer(move || { let _ = tx.send(std::thread::current().name() == Some("db")); },
    ///             Duration::from_millis(10), true, Target::Tagged(db))?;
    /// let node = b.start()?;
    /// assert!(rx.recv_timeout(Duration::from_secs(10))?); // the timer ran on "db"
    /// node.handle().job(|| println!("also on db"), Some(db))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_tagged_thread(&mut self, name: &str) -> Result<TaggedThreadId, Error> {
        self.tagged(name, None)
    }

    /// [`add_tagged_thread`](Self::add_tagged_thread) with a callback run in the thread when
    /// the node starts, before anything addressed to it: the place to set up thread-local
    /// state. It runs concurrently with the rest of `start` (which does not wait for it).
    ///
    /// ```
    /// use lokimq::{LokiMq};
    /// use std::cell::RefCell;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// thread_local!(static CACHE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) });
    ///
    /// let mut b = LokiMq::builder();
    /// let cache = b.add_tagged_thread_with_start("cache", || {
    ///     CACHE.with(|c| c.borrow_mut().push("warm".to_owned())); // e.g. open a database
    /// })?;
    /// let node = b.start()?;
    /// let (tx, rx) = mpsc::channel();
    /// node.handle().job(move || { let _ = tx.send(CACHE.with(|c| c.borrow().clone())); }, Some(cache))?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, ["warm"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_tagged_thread_with_start(
        &mut self,
        name: &str,
        start: impl FnOnce() + Send + 'static,
    ) -> Result<TaggedThreadId, Error> {
        self.tagged(name, Some(Box::new(start)))
    }

    fn tagged(&mut self, name: &str, start: Option<Task>) -> Result<TaggedThreadId, Error> {
        sched::check_tagged_thread_name(name)?;
        let id = u16::try_from(self.config.tagged_threads.len())
            .map_err(|_| SchedError::InvalidTaggedThreadName(name.to_owned()))?;
        self.config.tagged_threads.push(name.to_owned());
        self.tagged_starts.push(start);
        Ok(TaggedThreadId(id))
    }

    /// Adds a repeating timer that starts with the node (OxenMQ allows `add_timer` before
    /// `start()`): see [`Handle::add_timer`](crate::Handle::add_timer). Its first firing is
    /// `interval` after [`start`](Self::start). The returned id is the one the running node
    /// uses, so it can be cancelled later with [`Handle::cancel_timer`](crate::Handle::cancel_timer).
    ///
    /// ```
    /// use lokimq::{LokiMq, Target};
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let tick = b.add_timer(|| println!("tick"), Duration::from_secs(1), true, Target::Worker)?;
    /// let node = b.start()?;
    /// node.handle().cancel_timer(tick)?;
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Sched`] ([`SchedError::UnknownTaggedThread`](crate::SchedError::UnknownTaggedThread)) for a tagged thread this builder did not add, and
    /// [`Error::Sched`] ([`SchedError::ZeroTimerInterval`](crate::SchedError::ZeroTimerInterval)) for an interval under a microsecond.
    pub fn add_timer(
        &mut self,
        f: impl Fn() + Send + Sync + 'static,
        interval: Duration,
        squelch: bool,
        target: Target,
    ) -> Result<TimerId, Error> {
        if let Target::Tagged(t) = target {
            sched::check_tagged_thread(t, self.config.tagged_threads.len())?;
        }
        sched::check_timer_interval(interval)?;
        // These take the first ids; the running node's handles continue after them.
        let id = TimerId(self.timers.len() as u64 + 1);
        self.timers.push(PendingTimer {
            id,
            f: Arc::new(f),
            interval,
            squelch,
            target,
        });
        Ok(id)
    }

    /// Adds a listener, bound by [`start`](Self::start) (which fails if it cannot be bound).
    /// [`listen_curve`](Self::listen_curve) and [`listen_plain`](Self::listen_plain) are
    /// shorthands; this form also takes an [`on_bind`](Listen::on_bind).
    ///
    /// ```
    /// use lokimq::{AuthLevel, Listen, LokiMq};
    ///
    /// let mut b = LokiMq::builder();
    /// b.listen(Listen::curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?
    ///     .allow(|_, _, _| AuthLevel::Basic)
    ///     .on_bind(|r| println!("bound: {r:?}")));
    /// let node = b.start()?;
    /// assert!(node.bound_addresses()[0].is_curve());
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn listen(&mut self, listen: Listen) -> &mut Self {
        self.listens.push(listen);
        self
    }

    /// A CURVE listener with an allow function (shorthand for [`Listen::curve`] and
    /// [`Listen::allow`]): encrypted, and the allow function sees each client's key.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq};
    ///
    /// let mut b = LokiMq::builder();
    /// b.listen_curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |ip, _key, is_sn| {
    ///     if ip == "127.0.0.1" || is_sn { AuthLevel::Admin } else { AuthLevel::None }
    /// })?;
    /// let node = b.start()?;
    /// assert_eq!(node.bound_addresses()[0].pubkey(), Some(node.pubkey()));
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn listen_curve(
        &mut self,
        addr: impl ToAddress,
        allow: impl Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        Ok(self.listen(Listen::curve(addr)?.allow(allow)))
    }

    /// A plain listener with an allow function (shorthand for [`Listen::plain`] and
    /// [`Listen::allow`]); the allow function's key argument is always `None`.
    ///
    /// ```
    /// use lokimq::{AuthLevel, LokiMq};
    ///
    /// let mut b = LokiMq::builder();
    /// b.listen_plain(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |ip, _no_key, _sn| {
    ///     if ip == "127.0.0.1" { AuthLevel::Basic } else { AuthLevel::Denied }
    /// })?;
    /// let node = b.start()?;
    /// assert!(!node.bound_addresses()[0].is_curve());
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    pub fn listen_plain(
        &mut self,
        addr: impl ToAddress,
        allow: impl Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        Ok(self.listen(Listen::plain(addr)?.allow(allow)))
    }

    /// Starts the node: binds every listener (a failure makes this return
    /// [`Error::Bind`] and nothing keeps running), starts the tagged threads, and spawns the
    /// proxy thread. Worker threads start on first use. The node runs until the returned
    /// [`LokiMq`] is dropped.
    ///
    /// ```
    /// use lokimq::{AuthLevel, Error, LokiMq};
    ///
    /// let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut b = LokiMq::builder();
    /// b.listen_plain(taken.local_addr()?, |_, _, _| AuthLevel::None)?;
    /// assert!(matches!(b.start(), Err(Error::Bind { .. }))); // address in use
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(self) -> Result<LokiMq, Error> {
        let clock = Clock::new();
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let wake = Arc::clone(&waker);
        let rng = NodeRng::from_rng(OsRng)
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let mut shared_sched = None;
        let mut parts = self.into_parts(rng, clock.now(), Box::new(move || wake.wake()), |s| {
            let s = Arc::new(Mutex::new(s));
            shared_sched = Some(Arc::clone(&s));
            SchedulerHome::Shared(s)
        })?;
        let Some(sched) = shared_sched else {
            unreachable!("into_parts always builds the scheduler");
        };
        let handle = parts.host.handle().clone();
        let workers = Arc::new(Workers::new(sched, parts.host.jobs(), handle.clone()));
        let mut proxy = Proxy::new(parts.host, clock, poll, waker, workers);
        proxy.settle();
        if let Some(e) = proxy.host_mut().take_startup_error() {
            return Err(e);
        }
        for (i, start) in parts.tagged_starts.drain(..).enumerate() {
            if let Some(worker) = proxy.workers().tagged_worker(i) {
                proxy.workers().start_thread(worker, start)?;
            }
        }
        let join = std::thread::Builder::new()
            .name(String::from("lmq-proxy"))
            .spawn(move || proxy.run())?;
        Ok(LokiMq::new(handle, join))
    }

    /// Builds the node for an embedder that runs it itself, on one thread, without the native
    /// driver's sockets and workers: a [`Host`] to drive with the kit (see [`crate::kit`]) and
    /// the [`Handle`] for the application. Jobs run inline (the embedder's
    /// [`Io::run_job`](crate::kit::Io::run_job) hands them back), tagged threads included:
    /// their start callbacks run here, at once. `wake` is called when another thread posts to
    /// a handle (pass a function that does nothing if the loop looks at its posts every turn).
    /// `rng` drives the node's randomness (CURVE keys and nonces, request tags): seed it from
    /// the operating system, or from a fixed seed for a reproducible simulation.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start) for the configuration (a listener that cannot be bound is
    /// reported when the host first drains, through its `on_bind` and the log).
    pub fn into_host(
        self,
        rng: NodeRng,
        now: Instant,
        wake: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Result<(Host, Handle), Error> {
        let mut parts = self.into_parts(rng, now, Box::new(wake), |s| {
            SchedulerHome::Owned(Box::new(s))
        })?;
        for start in parts.tagged_starts.drain(..).flatten() {
            run_guarded("tagged thread start callback", start);
        }
        let handle = parts.host.handle().clone();
        Ok((parts.host, handle))
    }

    /// The node, its callbacks and its handle, before any thread exists.
    fn into_parts(
        self,
        rng: NodeRng,
        now: Instant,
        wake: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
        home: impl FnOnce(Scheduler<Job>) -> SchedulerHome,
    ) -> Result<Parts, Error> {
        let keypair = match self.keypair {
            Some(k) => k,
            // OxenMQ's rules for "no keys given": generate, unless in service-node mode.
            None => Keypair::from_oxenmq(&[], &[], self.service_node, &mut OsRng)?,
        };
        let pubkey = *keypair.public();
        let mut config = self.config;
        config.service_node = self.service_node;
        let tagged_count = u16::try_from(config.tagged_threads.len()).unwrap_or(u16::MAX);
        let registry = self.registry.build();
        let mut commands = vec![None; registry.command_count()];
        for (id, cb) in self.commands {
            if let Some(slot) = commands.get_mut(id.index()) {
                *slot = Some(cb);
            }
        }
        let node = Node::with_scheduler(config, registry.clone(), keypair, rng, now, home)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::new(
            tx,
            wake,
            pubkey,
            tagged_count,
            registry,
            self.timers.len() as u64 + 1,
        ));
        let handle = Handle::new(shared);
        let jobs = Arc::new(JobTable::new(commands, handle.clone()));
        let mut host = Host::new(node, now, jobs, self.sn_lookup, handle, rx);
        host.set_on_disconnect(self.on_disconnect);
        if let Some(sns) = self.active_sns {
            host.node.set_active_sns(now, sns);
        }
        for listen in self.listens {
            host.add_listener(listen);
        }
        for t in self.timers {
            host.jobs().closures().timers.insert(t.id, t.f);
            host.node
                .add_timer_as(now, t.id, t.interval, t.squelch, t.target)?;
        }
        Ok(Parts {
            host,
            tagged_starts: self.tagged_starts,
        })
    }
}

/// What [`Builder::into_parts`] makes.
struct Parts {
    host: Host,
    tagged_starts: Vec<Option<Task>>,
}
