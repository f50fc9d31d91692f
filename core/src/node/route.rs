//! The node's connection tables: transport connections ([`Conn`], generation-tagged in a slab)
//! and logical outgoing connections ([`Link`], which outlive reconnects).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;
use slab::Slab;

use crate::address::Address;
use crate::auth::AuthLevel;
use crate::ids::{ConnId, ListenerId};
use crate::keys::PublicKey;
use crate::session::Session;
use crate::time::{Duration, Instant};

/// Where a message came from or goes to, below the application's [`ConnectionId`]
/// (super::ConnectionId): one transport connection, or one end of an in-process connection.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Origin {
    /// A socket.
    Conn(ConnId),
    /// The listening end of the in-process connection `link`.
    InprocServer(u64),
    /// The connecting end of the in-process connection `link`.
    InprocClient(u64),
    /// Whatever transport the outgoing link `link` has now (requests and replies outlive
    /// reconnects).
    Link(u64),
}

/// What a transport connection belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// Accepted on a listener.
    Listener(ListenerId),
    /// Dialled for an outgoing link.
    Link(u64),
}

/// One transport connection.
pub(crate) struct Conn {
    pub(crate) role: Role,
    /// `None` until the transport is connected (outgoing) — the ZMTP handshake timer starts then.
    pub(crate) session: Option<Session>,
    /// The peer's address as text (for `Message::remote` and auth requests).
    pub(crate) remote: Arc<str>,
    /// Listener side: the routing id the ROUTER assigned, once the handshake is done.
    pub(crate) route: Option<Bytes>,
    /// Listener side: the auth level from the auth decision.
    pub(crate) auth: AuthLevel,
    /// The peer's CURVE key (client key on a listener; server key on an outgoing connection).
    pub(crate) pubkey: Option<PublicKey>,
    /// True once the session emitted `Ready`.
    pub(crate) ready: bool,
    /// True while an auth decision is outstanding.
    pub(crate) awaiting_auth: bool,
    /// Bytes given to the driver and not yet written (see `Input::Flushed`).
    pub(crate) unsent: usize,
    /// Bytes ever given to the driver in `Transmit`s.
    pub(crate) transmitted: u64,
    /// For each application message not yet fully written: `transmitted` at its last byte.
    /// Kept only while a backlog limit is configured, and never longer than its message limit.
    pub(crate) unsent_ends: VecDeque<u64>,
}

impl Conn {
    /// Counts bytes handed to the driver.
    pub(crate) fn note_transmit(&mut self, len: usize) {
        self.unsent = self.unsent.saturating_add(len);
        self.transmitted = self.transmitted.saturating_add(len as u64);
    }

    /// The driver reports `unsent` bytes still queued: messages whose last byte is out leave
    /// the backlog.
    pub(crate) fn note_flushed(&mut self, unsent: usize) {
        // A driver cannot hold more than it was given; clamp a bad report.
        self.unsent = unsent.min(self.unsent);
        let written = self.transmitted - self.unsent as u64;
        while self.unsent_ends.front().is_some_and(|&end| end <= written) {
            self.unsent_ends.pop_front();
        }
    }

    pub(crate) fn new(role: Role, remote: Arc<str>) -> Self {
        Self {
            role,
            session: None,
            remote,
            route: None,
            auth: AuthLevel::None,
            pubkey: None,
            ready: false,
            awaiting_auth: false,
            unsent: 0,
            transmitted: 0,
            unsent_ends: VecDeque::new(),
        }
    }
}

/// Transport connections in a slab; each slot has a generation so stale ids never alias.
#[derive(Default)]
pub(crate) struct ConnTable {
    slab: Slab<Conn>,
    generations: Vec<u32>,
    /// How many of the connections arrived on a listener.
    incoming: usize,
}

impl ConnTable {
    pub(crate) fn insert(&mut self, conn: Conn) -> ConnId {
        if matches!(conn.role, Role::Listener(_)) {
            self.incoming += 1;
        }
        let key = self.slab.insert(conn);
        if key >= self.generations.len() {
            self.generations.resize(key + 1, 0);
        }
        ConnId::new(key as u32, self.generations[key])
    }

    fn key(&self, id: ConnId) -> Option<usize> {
        let key = id.index() as usize;
        (self.slab.contains(key) && self.generations.get(key) == Some(&id.generation()))
            .then_some(key)
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.key(id).map(|k| &self.slab[k])
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.key(id).map(|k| &mut self.slab[k])
    }

    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let key = self.key(id)?;
        // The next occupant of this slot gets a new generation.
        self.generations[key] = self.generations[key].wrapping_add(1);
        let conn = self.slab.remove(key);
        if matches!(conn.role, Role::Listener(_)) {
            self.incoming -= 1;
        }
        Some(conn)
    }

    /// Connections that arrived on a listener.
    pub(crate) fn incoming(&self) -> usize {
        self.incoming
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.slab
            .iter()
            .map(|(k, _)| ConnId::new(k as u32, self.generations[k]))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }
}

/// What an outgoing link connects to.
#[derive(Clone, Debug)]
pub(crate) enum LinkKind {
    /// A service node, by key (CURVE).
    Sn(PublicKey),
    /// A `connect_remote` connection.
    Remote {
        id: u64,
        pubkey: Option<PublicKey>,
        auth: AuthLevel,
    },
    /// A `connect_inproc` connection (no transport at all); `auth` is granted to the server
    /// side's commands towards us.
    Inproc { id: u64, auth: AuthLevel },
}

/// A logical outgoing connection: survives transport reconnects, queues while down.
pub(crate) struct Link {
    pub(crate) kind: LinkKind,
    /// Where to dial; `None` while a service-node lookup is outstanding.
    pub(crate) addr: Option<Address>,
    /// The current transport connection, if any.
    pub(crate) conn: Option<ConnId>,
    /// True while `conn` has completed its handshake.
    pub(crate) ready: bool,
    /// Messages waiting for the link to be ready (bounded by the config).
    pub(crate) queue: VecDeque<Vec<Bytes>>,
    /// Next reconnect delay.
    pub(crate) backoff: Duration,
    /// When to dial again after a loss.
    pub(crate) reconnect_at: Option<Instant>,
    /// Idle expiry.
    pub(crate) keep_alive: Duration,
    /// Last activity (creation, reuse by a send, a command received).
    pub(crate) last_activity: Instant,
    /// `connect_remote`/`connect_inproc`: deadline for HELLO (cleared when it arrives).
    pub(crate) connect_deadline: Option<Instant>,
    /// Use an empty routing id (the ROUTER picks one) instead of `L` + our pubkey.
    pub(crate) ephemeral: bool,
    /// The remote refused us with a ZMTP ERROR: like libzmq, do not reconnect.
    pub(crate) refused: bool,
    /// Disconnected with a linger while messages were still queued: deliver them if the
    /// handshake completes before this instant, then close.
    pub(crate) closing: Option<Instant>,
    /// The current transport uses the routing id `L` + our pubkey (not an ephemeral one).
    pub(crate) pubkey_routing_id: bool,
}

impl Link {
    pub(crate) fn new(
        kind: LinkKind,
        addr: Option<Address>,
        now: Instant,
        keep_alive: Duration,
        backoff: Duration,
        ephemeral: bool,
    ) -> Self {
        Self {
            kind,
            addr,
            conn: None,
            ready: false,
            queue: VecDeque::new(),
            backoff,
            reconnect_at: None,
            keep_alive,
            last_activity: now,
            connect_deadline: None,
            ephemeral,
            refused: false,
            closing: None,
            pubkey_routing_id: false,
        }
    }

    /// The remote's CURVE key, if the link is encrypted.
    pub(crate) fn server_key(&self) -> Option<PublicKey> {
        match &self.kind {
            LinkKind::Sn(pk) => Some(*pk),
            LinkKind::Remote { pubkey, .. } => *pubkey,
            LinkKind::Inproc { .. } => None,
        }
    }

    /// When idle expiry closes this link.
    pub(crate) fn idle_deadline(&self) -> Instant {
        self.last_activity.saturating_add(self.keep_alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_get_new_generations() {
        let mut t = ConnTable::default();
        let a = t.insert(Conn::new(Role::Link(1), Arc::from("")));
        assert!(t.get(a).is_some());
        assert!(t.remove(a).is_some());
        let b = t.insert(Conn::new(Role::Link(2), Arc::from("")));
        assert_eq!(a.index(), b.index());
        assert_ne!(a, b);
        assert!(
            t.get(a).is_none(),
            "a stale id must not reach the new connection"
        );
        assert!(t.remove(a).is_none());
        assert_eq!(t.ids(), [b]);
        assert_eq!(t.len(), 1);
    }
}
