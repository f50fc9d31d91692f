//! [`Config`]: the node's tunables, with OxenMQ's defaults.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::{self, CryptoProvider};
use crate::time::Duration;

/// OxenMQ's `DEFAULT_SEND_KEEP_ALIVE`.
pub const DEFAULT_SEND_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// OxenMQ's documented `DEFAULT_CONNECT_SN_KEEP_ALIVE` (OxenMQ itself applies ≈ 83 hours because
/// of a unit bug; we apply what it documents).
pub const DEFAULT_CONNECT_SN_KEEP_ALIVE: Duration = Duration::from_secs(5 * 60);
/// OxenMQ's `REMOTE_CONNECT_TIMEOUT`.
pub const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// OxenMQ's `INPROC_CONNECT_TIMEOUT`.
pub const INPROC_CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
/// OxenMQ's `DEFAULT_REQUEST_TIMEOUT`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// "Forever" for connections that never expire (OxenMQ uses ten years).
pub const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The node's configuration. `Config::new(general_workers)` gives OxenMQ's defaults; change
/// the fields on that value. The struct is `#[non_exhaustive]` so that new tunables can be
/// added without breaking embedders: it cannot be built with a struct literal outside the core.
///
/// ```
/// use lokimq_core::node::Config;
/// use lokimq_core::time::Duration;
///
/// let mut config = Config::new(4);
/// config.handshake_timeout = Duration::from_secs(5);
/// config.max_message_size = Some(1 << 20);
/// assert_eq!(config.general_workers, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// General worker threads (OxenMQ: the machine's core count; must be ≥ 1).
    pub general_workers: u16,
    /// Threads reserved for batch jobs (`None`: ⌈general/2⌉).
    pub batch_threads: Option<u16>,
    /// Threads reserved for reply callbacks (`None`: ⌈general/8⌉).
    pub reply_threads: Option<u16>,
    /// Names of tagged threads (each runs only the jobs addressed to it).
    pub tagged_threads: Vec<String>,
    /// This node is a service node (enables `local_sn` categories).
    pub service_node: bool,
    /// Largest ZMTP frame accepted, counted as libzmq counts it (`None`: unlimited).
    pub max_message_size: Option<u64>,
    /// ZMTP handshake timeout (OxenMQ's `HANDSHAKE_TIME`).
    pub handshake_timeout: Duration,
    /// ZMTP heartbeat interval (`Duration::ZERO` disables heartbeats).
    pub heartbeat_interval: Duration,
    /// Close a connection if nothing arrives this long after a heartbeat PING.
    pub heartbeat_timeout: Duration,
    /// First reconnect delay of an outgoing connection.
    pub reconnect_interval: Duration,
    /// Largest reconnect delay (the delay doubles up to this).
    pub reconnect_interval_max: Duration,
    /// Linger when the node closes a connection (idle expiry, SN removal, shutdown).
    pub close_linger: Duration,
    /// Default for outgoing connections: let the ROUTER pick our routing id instead of
    /// `L` + our pubkey.
    pub ephemeral_routing_id: bool,
    /// Idle expiry of a service-node connection opened by a send.
    pub send_keep_alive: Duration,
    /// Idle expiry of a service-node connection opened by `connect_sn`.
    pub connect_sn_keep_alive: Duration,
    /// How long `connect_remote` waits for `HELLO`.
    pub remote_connect_timeout: Duration,
    /// How long `connect_inproc` waits for `HELLO`.
    pub inproc_connect_timeout: Duration,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// Largest number of messages queued for one outgoing connection that is not up yet
    /// (libzmq's default high-water mark).
    pub max_queued_messages: usize,
    /// Bound on a connected peer's unsent messages and bytes (the driver's write queue,
    /// reported with [`Input::Flushed`](super::Input::Flushed)): at it, application sends to
    /// that peer fail with [`SendError::WouldBlock`](super::SendError::WouldBlock), OxenMQ's
    /// "HWM full". `None` (the default) for drivers that write synchronously or do not report;
    /// a driver that sets it must report, or the peer blocks for good once at the limit.
    pub send_backlog_limit: Option<BacklogLimit>,
    /// Most connections accepted on listeners at once; `accept` refuses more with
    /// [`NodeError::TooManyConnections`](super::NodeError::TooManyConnections). Every
    /// connection costs buffers, so a flood of them must stop somewhere short of the fd limit.
    /// Default 10 000 (OxenMQ's `MAX_SOCKETS`).
    pub max_incoming_connections: usize,
    /// Who does the CURVE cryptography of every connection: [`crypto::default_provider`]
    /// (`FastCrypto` with the `fast-crypto` feature, else `RustCrypto`) unless set.
    pub crypto_provider: &'static dyn CryptoProvider,
}

/// A peer's high-water mark: see [`Config::send_backlog_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogLimit {
    /// Unsent application messages (libzmq's `ZMQ_SNDHWM`, 1000 by default).
    pub messages: usize,
    /// Unsent bytes, counting protocol overhead: a message is refused while more than this is
    /// queued (so one message larger than the bound still goes out on an idle connection).
    pub bytes: usize,
}

impl BacklogLimit {
    /// libzmq's 1000-message high-water mark, plus a 64 MiB cap on the bytes behind it.
    pub const LIBZMQ: Self = Self {
        messages: 1000,
        bytes: 64 * 1024 * 1024,
    };
}

impl Config {
    /// OxenMQ's defaults with `general_workers` general threads.
    #[must_use]
    pub fn new(general_workers: u16) -> Self {
        Self {
            general_workers,
            batch_threads: None,
            reply_threads: None,
            tagged_threads: Vec::new(),
            service_node: false,
            max_message_size: Some(1024 * 1024),
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(30),
            reconnect_interval: Duration::from_millis(250),
            reconnect_interval_max: Duration::from_secs(5),
            close_linger: Duration::from_secs(5),
            ephemeral_routing_id: false,
            send_keep_alive: DEFAULT_SEND_KEEP_ALIVE,
            connect_sn_keep_alive: DEFAULT_CONNECT_SN_KEEP_ALIVE,
            remote_connect_timeout: REMOTE_CONNECT_TIMEOUT,
            inproc_connect_timeout: INPROC_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_queued_messages: 1000,
            send_backlog_limit: None,
            max_incoming_connections: 10_000,
            crypto_provider: crypto::default_provider(),
        }
    }
}

impl Default for Config {
    /// One general worker; an embedder should pass its core count to [`Config::new`].
    fn default() -> Self {
        Self::new(1)
    }
}
