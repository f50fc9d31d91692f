//! Session configuration and the limits that bound a session's memory.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use crate::crypto::{self, CryptoProvider};
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::{HeartbeatConfig, Mechanism, SocketType};

/// Default per-frame size limit: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1 << 20;
/// Default handshake timeout: 10 s (libzmq's `ZMQ_HANDSHAKE_IVL` default is 30 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on messages queued before the handshake completes: libzmq's HWM.
pub const DEFAULT_MAX_QUEUED_MESSAGES: usize = 1000;
/// Default bound on frames in one inbound multipart message.
pub const DEFAULT_MAX_MESSAGE_PARTS: usize = 1024;

/// Cap on any frame received before the handshake completes (handshake commands), applied even
/// when `max_message_size` is unlimited: 64 KiB.
///
/// The largest legitimate handshake command is a CURVE INITIATE: 257 bytes plus the client's
/// metadata (Socket-Type, an Identity of at most 255 bytes, and a few `X-` properties), so
/// 64 KiB leaves two orders of magnitude of room while keeping an unauthenticated peer from
/// making us buffer more than that. A smaller `max_message_size` still applies (libzmq applies
/// `ZMQ_MAXMSGSIZE` to handshake commands too).
pub const HANDSHAKE_COMMAND_LIMIT: u64 = 64 * 1024;

/// An inbound multipart message may total at most this many times `max_message_size` bytes
/// (64 MiB with the default 1 MiB frame limit). With an unlimited frame size there is no byte
/// cap, only [`SessionConfig::max_message_parts`].
pub const MULTIPART_SIZE_FACTOR: u64 = 64;

/// Cap on bytes received and held while the embedder decides on authentication: 256 KiB.
///
/// A libzmq client sends nothing but its handshake before our READY, so this only limits a peer
/// that pipelines traffic ahead of authentication; exceeding it closes the connection with
/// [`super::SessionError::AuthBacklogExceeded`].
pub const AUTH_BACKLOG_LIMIT: usize = 256 * 1024;

/// The security mechanism a session uses, with its keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MechanismConfig {
    /// No security.
    Null,
    /// CurveZMQ client: our long-term keypair and the server's long-term public key.
    CurveClient {
        /// Our long-term keypair.
        keypair: Keypair,
        /// The server's long-term public key.
        server_key: PublicKey,
    },
    /// CurveZMQ server: our long-term keypair.
    CurveServer {
        /// Our long-term keypair.
        keypair: Keypair,
    },
}

impl MechanismConfig {
    /// The mechanism named in the greeting.
    #[must_use]
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Self::Null => Mechanism::Null,
            Self::CurveClient { .. } | Self::CurveServer { .. } => Mechanism::Curve,
        }
    }
}

/// Everything a [`super::Session`] needs to know about its connection.
///
/// Build it with [`SessionConfig::new`] and adjust the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Our socket type. Sessions implement DEALER and ROUTER.
    pub socket_type: SocketType,
    /// The security mechanism.
    pub mechanism: MechanismConfig,
    /// Our routing id, sent as the `Identity` property (0..=255 bytes; empty = none).
    pub routing_id: Bytes,
    /// Our application properties (`X-` names), sent sorted by name after Socket-Type and
    /// Identity.
    pub properties: Vec<(String, Bytes)>,
    /// Largest inbound frame body accepted (`None` = unlimited). Checked on every frame as soon
    /// as its header is read, handshake commands included (which are further capped at
    /// [`HANDSHAKE_COMMAND_LIMIT`]). Under CURVE it is the encrypted size that counts.
    pub max_message_size: Option<u64>,
    /// Largest number of frames in one inbound multipart message.
    pub max_message_parts: usize,
    /// Time from creation until the session must be ready (greeting, mechanism, and the
    /// authentication decision). Zero disables the timeout, like libzmq's `HANDSHAKE_IVL = 0`.
    pub handshake_timeout: Duration,
    /// ZMTP 3.1 heartbeats (`None` = we send no PINGs; a peer's PING TTL is still honoured).
    pub heartbeat: Option<HeartbeatConfig>,
    /// Server side: ask the embedder ([`super::SessionEvent::AuthRequest`]) and wait for
    /// [`super::Session::auth_decision`] before sending READY (libzmq's ZAP).
    pub auth_required: bool,
    /// Messages [`super::Session::send`] may queue before the handshake completes.
    pub max_queued_messages: usize,
    /// Who does the CURVE cryptography ([`crypto::default_provider`] unless set).
    pub crypto_provider: &'static dyn CryptoProvider,
}

impl SessionConfig {
    /// A configuration with the defaults: no routing id, no properties, 1 MiB frames, 1024
    /// frames per message, 10 s handshake timeout, no heartbeats, no authentication, 1000 queued
    /// messages, the default crypto provider.
    #[must_use]
    pub fn new(socket_type: SocketType, mechanism: MechanismConfig) -> Self {
        Self {
            socket_type,
            mechanism,
            routing_id: Bytes::new(),
            properties: Vec::new(),
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            max_message_parts: DEFAULT_MAX_MESSAGE_PARTS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            heartbeat: None,
            auth_required: false,
            max_queued_messages: DEFAULT_MAX_QUEUED_MESSAGES,
            crypto_provider: crypto::default_provider(),
        }
    }
}
