//! The node's connection tables: transport connections ([`Conn`], generation-tagged in a slab)
//! and logical outgoing connections ([`Link`], which outlive reconnects).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;
use slab::Slab;

use crate::address::Address;
use crate::auth::AuthLevel;
use crate::ids::{ConnId, ListenerId};
use crate::keys::PublicKey;
use crate::session::Session;
use crate::time::{Duration, Instant, earliest};

use super::failure::ConnectError;

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

/// Where a transport connection is in its life. Each state carries exactly what is valid in
/// it: no session before the transport is connected, and "awaiting auth" and "ready" are
/// states of the session, not flags beside it.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// Outgoing only: `Output::Connect` was emitted and the driver has not reported
    /// `Input::Connected` yet (the ZMTP handshake timer starts when it does).
    Dialing,
    /// The ZMTP greeting and mechanism handshake are running.
    Handshaking(Session),
    /// Listener side: the handshake is verified and `Event::AuthRequest` is outstanding.
    AwaitingAuth(Session),
    /// The handshake completed: traffic flows.
    Ready(Session),
}

impl ConnState {
    /// The session, once the transport is connected.
    pub(crate) fn session(&self) -> Option<&Session> {
        match self {
            Self::Dialing => None,
            Self::Handshaking(s) | Self::AwaitingAuth(s) | Self::Ready(s) => Some(s),
        }
    }

    /// The session, mutably.
    pub(crate) fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Self::Dialing => None,
            Self::Handshaking(s) | Self::AwaitingAuth(s) | Self::Ready(s) => Some(s),
        }
    }

    /// True once the handshake completed.
    pub(crate) fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(_))
    }

    /// Moves the session into the state `to` builds (no-op while dialing).
    pub(crate) fn advance(&mut self, to: fn(Session) -> Self) {
        let state = core::mem::replace(self, Self::Dialing);
        *self = match state {
            Self::Dialing => Self::Dialing,
            Self::Handshaking(s) | Self::AwaitingAuth(s) | Self::Ready(s) => to(s),
        };
    }
}

/// One transport connection.
pub(crate) struct Conn {
    pub(crate) role: Role,
    pub(crate) state: ConnState,
    /// The peer's address as text (for `Message::remote` and auth requests).
    pub(crate) remote: Arc<str>,
    /// Listener side: the routing id the ROUTER assigned, once the handshake is done.
    pub(crate) route: Option<Bytes>,
    /// Listener side: the auth level from the auth decision.
    pub(crate) auth: AuthLevel,
    /// The peer's CURVE key (client key on a listener; server key on an outgoing connection).
    pub(crate) pubkey: Option<PublicKey>,
    /// Bytes given to the driver and not yet written (see `Input::Flushed`).
    pub(crate) unsent: usize,
    /// Bytes ever given to the driver in `Transmit`s.
    pub(crate) transmitted: u64,
    /// For each application message not yet fully written: `transmitted` at its last byte.
    /// Kept only while a backlog limit is configured, and never longer than its message limit.
    pub(crate) unsent_ends: VecDeque<u64>,
    /// The session deadline this connection has in the node's timer index.
    pub(crate) timer: Option<Instant>,
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

    pub(crate) fn new(role: Role, state: ConnState, remote: Arc<str>) -> Self {
        Self {
            role,
            state,
            remote,
            route: None,
            auth: AuthLevel::None,
            pubkey: None,
            unsent: 0,
            transmitted: 0,
            unsent_ends: VecDeque::new(),
            timer: None,
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
        self.iter().map(|(id, _)| id).collect()
    }

    /// Every connection with its id, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> + '_ {
        self.slab
            .iter()
            .map(|(k, c)| (ConnId::new(k as u32, self.generations[k]), c))
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
        /// OxenMQ's policy: retry refused, unreachable and failed attempts with back-off
        /// until the connect timeout (and for ever once established) instead of failing.
        retry_refused: bool,
    },
    /// A `connect_inproc` connection (no transport at all); `auth` is granted to the server
    /// side's commands towards us.
    Inproc { id: u64, auth: AuthLevel },
}

/// How an outgoing link reaches its peer, and where its current transport is.
#[derive(Debug)]
pub(crate) enum Transport {
    /// `connect_inproc`: no transport at all.
    Inproc,
    /// A service node whose address was asked for with `Event::LookupSn`.
    Lookup,
    /// A known address, and the state of the connection to it.
    Addr {
        /// Where to dial.
        addr: Address,
        /// The current transport connection, if any.
        dial: Dial,
    },
}

/// The transport connection of a link with a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dial {
    /// No transport and none planned (shutdown started).
    Idle,
    /// No transport: dial again at `at` (after a loss or a failed attempt).
    BackingOff {
        /// When to dial.
        at: Instant,
    },
    /// `conn` is being dialled (`Output::Connect` emitted).
    Dialing {
        /// The transport connection.
        conn: ConnId,
    },
    /// `conn` is connected; its ZMTP handshake is running.
    Handshaking {
        /// The transport connection.
        conn: ConnId,
    },
    /// `conn` completed its handshake: messages flow.
    Up {
        /// The transport connection.
        conn: ConnId,
    },
}

impl Dial {
    /// The transport connection, if one exists.
    pub(crate) fn conn(self) -> Option<ConnId> {
        match self {
            Self::Idle | Self::BackingOff { .. } => None,
            Self::Dialing { conn } | Self::Handshaking { conn } | Self::Up { conn } => Some(conn),
        }
    }
}

/// Where a link is in its own life, independently of its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `connect_remote`/`connect_inproc`: waiting for `HELLO` until `deadline`, then
    /// `Job::ConnectFailed`.
    Connecting {
        /// The connect timeout.
        deadline: Instant,
    },
    /// In service: service-node links from the start, the others once `HELLO` arrived.
    Open,
    /// Unregistered by `disconnect` while messages queued before the handshake are still
    /// waiting: they are delivered if the handshake completes before `until`, then the link
    /// closes. Never in the lookup or in-process transport states.
    Closing {
        /// When to give up and close.
        until: Instant,
    },
    /// Shutdown started before `HELLO` arrived: no timeout and no callback any more.
    Stopping,
}

/// A logical outgoing connection: survives transport reconnects, queues while down.
pub(crate) struct Link {
    pub(crate) kind: LinkKind,
    pub(crate) transport: Transport,
    pub(crate) phase: Phase,
    /// Messages waiting for the link to be ready (bounded by the config).
    pub(crate) queue: VecDeque<Vec<Bytes>>,
    /// Next reconnect delay.
    pub(crate) backoff: Duration,
    /// Idle expiry.
    pub(crate) keep_alive: Duration,
    /// Last activity (creation, reuse by a send, a command received).
    pub(crate) last_activity: Instant,
    /// Use an empty routing id (the ROUTER picks one) instead of `L` + our pubkey.
    pub(crate) ephemeral: bool,
    /// The latest transport used the routing id `L` + our pubkey (not an ephemeral one).
    pub(crate) pubkey_routing_id: bool,
    /// The transport address under which this link is in the node's index of `L` + pubkey
    /// routing ids in use (while it has a transport that uses one).
    pub(crate) claimed_route: Option<String>,
    /// Why the latest connection attempt failed, since the link was last up (reported when
    /// the link is given up without coming up again).
    pub(crate) last_error: Option<ConnectError>,
    /// The deadline this link has in the node's timer index.
    pub(crate) timer: Option<Instant>,
}

impl Link {
    pub(crate) fn new(
        kind: LinkKind,
        transport: Transport,
        phase: Phase,
        now: Instant,
        keep_alive: Duration,
        backoff: Duration,
        ephemeral: bool,
    ) -> Self {
        Self {
            kind,
            transport,
            phase,
            queue: VecDeque::new(),
            backoff,
            keep_alive,
            last_activity: now,
            ephemeral,
            pubkey_routing_id: false,
            claimed_route: None,
            last_error: None,
            timer: None,
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

    /// The transport's state, if the link has an address.
    pub(crate) fn dial(&self) -> Option<Dial> {
        match &self.transport {
            Transport::Addr { dial, .. } => Some(*dial),
            Transport::Inproc | Transport::Lookup => None,
        }
    }

    /// Sets the transport's state (no-op without an address).
    pub(crate) fn set_dial(&mut self, to: Dial) {
        if let Transport::Addr { dial, .. } = &mut self.transport {
            *dial = to;
        }
    }

    /// The current transport connection, if any.
    pub(crate) fn conn(&self) -> Option<ConnId> {
        self.dial().and_then(Dial::conn)
    }

    /// The address to dial, once known.
    pub(crate) fn addr(&self) -> Option<&Address> {
        match &self.transport {
            Transport::Addr { addr, .. } => Some(addr),
            Transport::Inproc | Transport::Lookup => None,
        }
    }

    /// True while the transport has completed its handshake (always for in-process links).
    pub(crate) fn is_ready(&self) -> bool {
        match &self.transport {
            Transport::Inproc => true,
            Transport::Lookup => false,
            Transport::Addr { dial, .. } => matches!(dial, Dial::Up { .. }),
        }
    }

    /// True while the link is up as the application sees it: its transport completed its
    /// handshake and, for `connect_remote`/`connect_inproc`, `HELLO` arrived.
    pub(crate) fn is_established(&self) -> bool {
        self.is_ready() && self.phase == Phase::Open
    }

    /// The earliest instant at which this link needs the node's attention: a reconnect, the
    /// connect timeout, the end of a lingering close, or (service nodes) idle expiry.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let reconnect = match self.dial() {
            Some(Dial::BackingOff { at }) => Some(at),
            _ => None,
        };
        let phase = match self.phase {
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Closing { until } => Some(until),
            Phase::Open | Phase::Stopping => None,
        };
        let idle = (matches!(self.kind, LinkKind::Sn(_))
            && !matches!(self.phase, Phase::Closing { .. }))
        .then(|| self.idle_deadline());
        earliest(earliest(reconnect, phase), idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_get_new_generations() {
        let mut t = ConnTable::default();
        let a = t.insert(Conn::new(Role::Link(1), ConnState::Dialing, Arc::from("")));
        assert!(t.get(a).is_some());
        assert!(t.remove(a).is_some());
        let b = t.insert(Conn::new(Role::Link(2), ConnState::Dialing, Arc::from("")));
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
