//! The disconnect hook: [`Builder::on_disconnect`](crate::Builder::on_disconnect).
//!
//! Applications keep per-connection state (a session, a subscription, a rate limiter) keyed by
//! [`ConnectionId`]; this is where they learn that the state can go. The node reports every
//! end of an established connection, incoming or outgoing, and separately the moment an
//! outgoing connection that was down is given up for good. An outgoing connection that drops
//! and then reconnects on its own reports the drop with `reconnecting: true` and keeps its id,
//! so state keyed by that id may be kept until a final report.

use lokimq_core::keys::PublicKey;
use lokimq_core::node::{ConnectError, ConnectionId, DisconnectReason};

/// The hook's type, as the driver stores it.
pub(crate) type DisconnectFn = std::sync::Arc<dyn Fn(Disconnected) + Send + Sync>;

/// How a connection ended, as told to [`Builder::on_disconnect`](crate::Builder::on_disconnect).
///
/// ```
/// use lokimq::Disconnected;
/// use std::collections::BTreeMap;
/// use std::sync::{Arc, Mutex};
///
/// // Per-connection application state, cleaned up when a connection is gone for good.
/// let sessions: Arc<Mutex<BTreeMap<lokimq::ConnectionId, u32>>> = Arc::default();
/// let mut b = lokimq::LokiMq::builder();
/// let s = Arc::clone(&sessions);
/// b.on_disconnect(move |d: Disconnected| {
///     if d.is_final() {
///         s.lock().unwrap().remove(d.conn());
///     }
/// });
/// # Ok::<(), lokimq::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnected {
    /// An established connection ended: one accepted on a listener (after its handshake and
    /// auth decision), or an outgoing one that was up.
    Lost {
        /// The peer, as the application addressed it (the same id its messages carried).
        conn: ConnectionId,
        /// The peer's CURVE key, if the connection was encrypted.
        pubkey: Option<PublicKey>,
        /// Why it ended.
        reason: DisconnectReason,
        /// True for an outgoing connection that reconnects on its own under the same id
        /// (its requests stay pending and sends are queued meanwhile).
        reconnecting: bool,
    },
    /// An outgoing connection that was down was given up: its reconnect attempts failed, or
    /// a service-node connection could not be re-established before its idle expiry.
    GaveUp {
        /// The connection.
        conn: ConnectionId,
        /// Why the latest attempt failed.
        error: ConnectError,
    },
}

impl Disconnected {
    /// The connection.
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        match self {
            Self::Lost { conn, .. } | Self::GaveUp { conn, .. } => conn,
        }
    }

    /// The peer's key, if known.
    #[must_use]
    pub fn pubkey(&self) -> Option<&PublicKey> {
        match self {
            Self::Lost { pubkey, .. } => pubkey.as_ref(),
            Self::GaveUp { conn, .. } => conn.pubkey(),
        }
    }

    /// Whether the id is gone for good: no message will arrive on it again unless the
    /// application connects anew.
    #[must_use]
    pub fn is_final(&self) -> bool {
        match self {
            Self::Lost { reconnecting, .. } => !reconnecting,
            Self::GaveUp { .. } => true,
        }
    }
}

impl std::fmt::Display for Disconnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lost {
                conn,
                reason,
                reconnecting,
                ..
            } => {
                write!(f, "connection {conn} lost: {reason}")?;
                if *reconnecting {
                    f.write_str(" (reconnecting)")?;
                }
                Ok(())
            }
            Self::GaveUp { conn, error } => write!(f, "connection {conn} given up: {error}"),
        }
    }
}
