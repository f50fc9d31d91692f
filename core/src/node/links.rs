//! Outgoing links over time: dialling, losing a transport, backing off, giving up, and what
//! the application hears about each (`PeerDisconnected`, `ConnectFailed`, `LinkFailed`,
//! requests failing with `Disconnected`). Also the upkeep of the node's deadline index.
//!
//! The policy, in one place ([`Node::link_lost`]):
//!
//! * An **established** link (up, and for `connect_remote`/`connect_inproc` past `HELLO`) that
//!   loses its transport reports `PeerDisconnected` and reconnects with back-off; its pending
//!   requests stay pending. A ZMTP `ERROR` ends it for good instead.
//! * A failed **attempt** (the link was not established) is classified into a
//!   [`ConnectError`]. A service-node link, or a `connect_remote` with
//!   [`retry_refused`](super::ConnectOptions::retry_refused), remembers it and backs off
//!   (OxenMQ's behaviour); any other link fails at once with it. Invalid addresses and ZMTP
//!   `ERROR`s always fail at once.
//! * A link given up ([`Node::end_link`]) fails its pending requests with
//!   `RequestError::Disconnected` and reports how it ended.

use alloc::sync::Arc;

use bytes::Bytes;

use crate::rng::CryptoRngCore;
use crate::session::{Session, SessionError};
use crate::time::Duration;

use super::failure::{ConnectError, DisconnectReason, HandshakeError};
use super::io::{DisconnectCause, Event, Job, Output, RequestError};
use super::route::{Conn, ConnState, Dial, Link, LinkKind, Origin, Phase, Role, Transport};
use super::timers::TimerKey;
use super::{ConnectionId, INPROC_LISTENER, Node, Pool, SchedulerCell};

/// Why a transport connection is being forgotten.
#[derive(Clone, Copy, Debug)]
pub(super) enum ConnEnd<'a> {
    /// The driver reported the transport gone.
    Transport(&'a DisconnectCause),
    /// Its session closed with this error.
    Session(&'a SessionError),
    /// We closed it, for this reason (reported for established listener connections; a
    /// link's own end is reported by [`Node::end_link`]).
    Local(&'a DisconnectReason),
}

impl ConnEnd<'_> {
    /// What this end means for an established connection.
    pub(super) fn reason(self) -> DisconnectReason {
        match self {
            Self::Transport(cause) => DisconnectReason::from_transport(cause),
            Self::Session(e) => DisconnectReason::from_session(e),
            Self::Local(r) => r.clone(),
        }
    }

    /// True if the remote refused us with a ZMTP `ERROR`: libzmq never reconnects after one.
    fn refused_by_remote(self) -> bool {
        matches!(self, Self::Session(SessionError::PeerError(_)))
    }
}

/// Why a link is given up.
#[derive(Debug)]
pub(super) enum LinkEnd {
    /// The application closed it (`disconnect`, or the key left the service-node set).
    Closed,
    /// Idle expiry (service nodes).
    IdleExpired,
    /// The remote sent `BYE`.
    Bye,
    /// Its connection attempts failed, or the remote refused it: the latest cause.
    Failed(ConnectError),
    /// Its live transport's end was already reported (`PeerDisconnected`, not reconnecting).
    Reported,
    /// Shutdown: nothing is reported.
    Shutdown,
}

impl<R: CryptoRngCore, S: SchedulerCell> Node<R, S> {
    // ---------------------------------------------------------------------------------------
    // the deadline index

    /// Re-indexes a connection's session deadline after its session changed.
    pub(super) fn sync_conn_timer(&mut self, id: crate::ids::ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let new = conn.state.session().and_then(Session::poll_timeout);
        let old = core::mem::replace(&mut conn.timer, new);
        self.timers.update(TimerKey::Conn(id), old, new);
    }

    /// Re-indexes a link's deadline after its state, activity or keep-alive changed.
    pub(super) fn sync_link_timer(&mut self, link_id: u64) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        let new = link.deadline();
        let old = core::mem::replace(&mut link.timer, new);
        self.timers.update(TimerKey::Link(link_id), old, new);
    }

    /// Adds (or puts back) a link and indexes its deadline.
    pub(super) fn insert_link(&mut self, link_id: u64, mut link: Link) {
        link.timer = None;
        link.claimed_route = None;
        self.links.insert(link_id, link);
        self.sync_link_timer(link_id);
        self.sync_route_claim(link_id);
    }

    /// Removes a link from the link table, the deadline index and the routing-id index (not
    /// from the id tables).
    pub(super) fn remove_link(&mut self, link_id: u64) -> Option<Link> {
        let mut link = self.links.remove(&link_id)?;
        self.timers
            .update(TimerKey::Link(link_id), link.timer, None);
        if let Some(addr) = link.claimed_route.take() {
            self.route_claims.remove(&(addr, link_id));
        }
        Some(link)
    }

    /// Re-indexes whether a link's transport holds our `L` + pubkey routing id at its address
    /// (it does while it has a transport and its latest one used that id), after its transport
    /// or its routing id changed.
    pub(super) fn sync_route_claim(&mut self, link_id: u64) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        let claims = link.conn().is_some() && link.pubkey_routing_id;
        let want = if claims {
            link.addr().map(crate::address::Address::zmq_address)
        } else {
            None
        };
        if want == link.claimed_route {
            return;
        }
        if let Some(old) = link.claimed_route.take() {
            self.route_claims.remove(&(old, link_id));
        }
        if let Some(addr) = want {
            self.route_claims.insert((addr.clone(), link_id));
            link.claimed_route = Some(addr);
        }
    }

    /// Debug builds: the deadline index holds exactly every connection's and link's current
    /// deadline, and the routing-id index exactly the links whose transport holds one.
    #[cfg(debug_assertions)]
    pub(super) fn check_timers(&self) {
        let mut claims = 0;
        for (&link_id, link) in &self.links {
            let want = (link.conn().is_some() && link.pubkey_routing_id)
                .then(|| link.addr().map(crate::address::Address::zmq_address))
                .flatten();
            assert_eq!(
                link.claimed_route, want,
                "stale route claim of link {link_id}"
            );
            if let Some(addr) = want {
                assert!(self.route_claims.contains(&(addr, link_id)));
                claims += 1;
            }
        }
        assert_eq!(self.route_claims.len(), claims, "stray route claims");
        let mut entries = 0;
        for (id, conn) in self.conns.iter() {
            let due = conn.state.session().and_then(Session::poll_timeout);
            assert_eq!(conn.timer, due, "stale timer for {id:?}");
            if let Some(t) = due {
                assert!(
                    self.timers.contains(t, TimerKey::Conn(id)),
                    "{id:?} not indexed"
                );
                entries += 1;
            }
        }
        for (&link_id, link) in &self.links {
            let due = link.deadline();
            assert_eq!(link.timer, due, "stale timer for link {link_id}");
            if let Some(t) = due {
                assert!(
                    self.timers.contains(t, TimerKey::Link(link_id)),
                    "link {link_id} not indexed"
                );
                entries += 1;
            }
        }
        assert_eq!(
            self.timers.len(),
            entries,
            "stray entries in the deadline index"
        );
    }

    // ---------------------------------------------------------------------------------------
    // dialling

    /// Opens a new transport for a link whose address is known and that has none.
    pub(super) fn dial(&mut self, link_id: u64) {
        let Some(link) = self.links.get(&link_id) else {
            return;
        };
        let Transport::Addr { addr, dial } = &link.transport else {
            return;
        };
        if dial.conn().is_some() {
            return;
        }
        let transport = addr.clone().with_pubkey(None);
        let remote = addr.host().or_else(|| addr.socket()).unwrap_or("(unknown)");
        let conn = Conn::new(Role::Link(link_id), ConnState::Dialing, Arc::from(remote));
        let id = self.conns.insert(conn);
        if let Some(link) = self.links.get_mut(&link_id) {
            link.set_dial(Dial::Dialing { conn: id });
        }
        self.sync_link_timer(link_id);
        self.sync_route_claim(link_id);
        self.outputs.push_back(Output::Connect {
            conn: id,
            addr: transport,
        });
    }

    /// Schedules the link's next attempt after its back-off (which then doubles, up to the
    /// configured maximum); during shutdown, or if that instant is past the end of time, no
    /// attempt at all.
    fn back_off(&mut self, link_id: u64) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        // A reconnect past the end of time (`Duration::MAX` as "never reconnect") is none.
        match self.now.checked_add(link.backoff) {
            Some(at) if !self.shutting_down => {
                link.set_dial(Dial::BackingOff { at });
                // Saturating: a huge configured interval must not overflow.
                link.backoff = link
                    .backoff
                    .saturating_mul(2)
                    .min(self.config.reconnect_interval_max);
            }
            _ => link.set_dial(Dial::Idle),
        }
        self.sync_link_timer(link_id);
    }

    /// A link's transport connection `id` is gone (already removed from the connection
    /// table): report, then reconnect or give up (see the module docs for the policy).
    pub(super) fn link_lost(
        &mut self,
        link_id: u64,
        id: crate::ids::ConnId,
        conn: &Conn,
        end: ConnEnd<'_>,
    ) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        let Some(dial) = link.dial().filter(|d| d.conn() == Some(id)) else {
            return;
        };
        let established = link.is_established();
        link.set_dial(Dial::Idle);
        self.sync_route_claim(link_id);
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        if established {
            link.last_error = None;
            let refused = end.refused_by_remote();
            // No reconnect after a ZMTP ERROR, nor past the end of time (`Duration::MAX`).
            let reconnecting = !refused && self.now.checked_add(link.backoff).is_some();
            let (conn_id, pubkey) = (link_conn_id(&link.kind), link.server_key());
            if !self.shutting_down {
                self.event(Event::PeerDisconnected {
                    conn: conn_id,
                    pubkey,
                    cause: end.reason(),
                    reconnecting,
                });
            }
            if refused {
                self.end_link(link_id, LinkEnd::Reported, Duration::ZERO);
            } else {
                self.back_off(link_id);
            }
            return;
        }
        let retries = match link.kind {
            LinkKind::Sn(_) => true,
            LinkKind::Remote { retry_refused, .. } => retry_refused,
            LinkKind::Inproc { .. } => false,
        };
        let error = classify_attempt(dial, conn, end);
        log::debug!("connection attempt of link {link_id} failed: {error}");
        let fatal = matches!(
            error,
            ConnectError::InvalidAddress { .. }
                | ConnectError::Handshake(HandshakeError::Denied { .. })
        );
        if fatal || !retries {
            let linger = self.config.close_linger;
            self.end_link(link_id, LinkEnd::Failed(error), linger);
        } else {
            link.last_error = Some(error);
            self.back_off(link_id);
        }
    }

    // ---------------------------------------------------------------------------------------
    // giving up

    /// Gives a link up for good: forgets it everywhere, fails its pending requests with
    /// `Disconnected`, reports how it ended, and closes its transport after `linger`.
    pub(super) fn end_link(&mut self, link_id: u64, end: LinkEnd, linger: Duration) {
        let Some(link) = self.unregister_link(link_id) else {
            return;
        };
        self.report_link_end(&link, &end);
        if let Some(c) = link.conn() {
            self.close_conn(c, linger);
        }
    }

    /// What the application hears when a link is given up (nothing during shutdown):
    /// `PeerDisconnected` if it was established, `Job::ConnectFailed` if a
    /// `connect_remote`/`connect_inproc` never got `HELLO`, `Event::LinkFailed` if it was
    /// given up because its attempts failed.
    fn report_link_end(&mut self, link: &Link, end: &LinkEnd) {
        if self.shutting_down {
            return;
        }
        let conn = link_conn_id(&link.kind);
        if link.is_established() {
            let cause = match end {
                LinkEnd::Closed => DisconnectReason::Closed,
                LinkEnd::IdleExpired => DisconnectReason::IdleExpired,
                LinkEnd::Bye => DisconnectReason::Bye,
                LinkEnd::Failed(e) => DisconnectReason::Reset {
                    reason: alloc::format!("{e}"),
                },
                LinkEnd::Reported | LinkEnd::Shutdown => return,
            };
            if let LinkKind::Inproc { id, .. } = link.kind {
                // Both ends of an in-process connection live in this node.
                let server = self.inproc_server_id(id);
                let pubkey = Some(*self.keypair.public());
                self.event(Event::PeerDisconnected {
                    conn: server,
                    pubkey,
                    cause: DisconnectReason::PeerClosed,
                    reconnecting: false,
                });
            }
            self.event(Event::PeerDisconnected {
                conn,
                pubkey: link.server_key(),
                cause,
                reconnecting: false,
            });
            return;
        }
        match link.phase {
            Phase::Connecting { .. } => {
                let error = match end {
                    LinkEnd::Failed(e) => e.clone(),
                    LinkEnd::Closed => ConnectError::Closed,
                    LinkEnd::IdleExpired => ConnectError::TimedOut,
                    LinkEnd::Bye | LinkEnd::Reported => {
                        ConnectError::Handshake(HandshakeError::PeerClosed)
                    }
                    LinkEnd::Shutdown => return,
                };
                self.submit(Job::ConnectFailed { conn, error }, Pool::Batch);
            }
            Phase::Open => {
                let error = match end {
                    LinkEnd::Failed(e) => e.clone(),
                    LinkEnd::IdleExpired => {
                        link.last_error.clone().unwrap_or(ConnectError::TimedOut)
                    }
                    // Closed by the application, or already reported.
                    _ => return,
                };
                self.event(Event::LinkFailed { conn, error });
            }
            Phase::Closing { .. } | Phase::Stopping => {}
        }
    }

    /// Removes a link from every table and fails the requests that went out on it (they can
    /// no longer be answered); returns it so the caller decides about its transport.
    pub(super) fn unregister_link(&mut self, link_id: u64) -> Option<Link> {
        let link = self.remove_link(link_id)?;
        match &link.kind {
            LinkKind::Sn(pk) => {
                if self.sn_out.get(pk) == Some(&link_id) {
                    self.sn_out.remove(pk);
                }
            }
            LinkKind::Remote { id, .. } | LinkKind::Inproc { id, .. } => {
                if self.remote_ids.get(id) == Some(&link_id) {
                    self.remote_ids.remove(id);
                }
            }
        }
        for via in [Origin::InprocClient(link_id), Origin::Link(link_id)] {
            for request in self.requests.take_via(via) {
                self.submit(
                    Job::Reply {
                        request,
                        result: Err(RequestError::Disconnected),
                    },
                    Pool::Batch,
                );
            }
        }
        Some(link)
    }

    /// `disconnect`: like [`Node::end_link`], except that messages queued before the
    /// handshake are still delivered if the connection comes up within `linger` (libzmq keeps
    /// connecting for up to its linger, so OxenMQ's send-then-disconnect delivers).
    pub(super) fn disconnect_link(&mut self, link_id: u64, linger: Duration) {
        let Some(link) = self.links.get(&link_id) else {
            return;
        };
        let lingering = linger > Duration::ZERO
            && !link.is_ready()
            && !link.queue.is_empty()
            && link.addr().is_some()
            && !self.shutting_down;
        if !lingering {
            self.end_link(link_id, LinkEnd::Closed, linger);
            return;
        }
        let Some(mut link) = self.unregister_link(link_id) else {
            return;
        };
        self.report_link_end(&link, &LinkEnd::Closed);
        // Unregistered (a new send opens a new connection), but kept until it flushes.
        link.phase = Phase::Closing {
            until: self.now.saturating_add(linger),
        };
        self.insert_link(link_id, link);
    }

    /// A lingering link is done (flushed, or out of time): close its transport for good.
    pub(super) fn finish_closing_link(&mut self, link_id: u64) {
        let Some(link) = self.remove_link(link_id) else {
            return;
        };
        if let Some(c) = link.conn() {
            let left = match link.phase {
                Phase::Closing { until } => until.saturating_duration_since(self.now),
                _ => Duration::ZERO,
            };
            self.close_conn(c, left);
        }
    }

    /// A link's deadline came: its lingering close ends, its connect timeout passes, it
    /// expires idle, or it dials again.
    pub(super) fn link_timeout(&mut self, link_id: u64) {
        let now = self.now;
        let Some(link) = self.links.get(&link_id) else {
            return;
        };
        let reconnect_due = matches!(link.dial(), Some(Dial::BackingOff { at }) if at <= now);
        match link.phase {
            Phase::Closing { until } => {
                if until <= now {
                    self.finish_closing_link(link_id);
                } else if reconnect_due {
                    self.dial(link_id);
                }
                return;
            }
            Phase::Connecting { deadline } if deadline <= now => {
                let error = ConnectError::TimedOut;
                self.end_link(link_id, LinkEnd::Failed(error), self.config.close_linger);
                return;
            }
            _ => {}
        }
        if matches!(link.kind, LinkKind::Sn(_)) && link.idle_deadline() <= now {
            log::debug!("closing idle outgoing connection {link_id}");
            self.end_link(link_id, LinkEnd::IdleExpired, self.config.close_linger);
            return;
        }
        if reconnect_due {
            self.dial(link_id);
        }
    }

    /// The application-level id of the listening side of in-process link `id`: ourselves, as
    /// a service node if our key is in the active set.
    pub(super) fn inproc_server_id(&self, id: u64) -> ConnectionId {
        let own = *self.keypair.public();
        if self.active_sns.contains(&own) {
            ConnectionId::Sn(own)
        } else {
            ConnectionId::Incoming {
                listener: INPROC_LISTENER,
                route: Bytes::copy_from_slice(&id.to_be_bytes()),
                pubkey: Some(own),
            }
        }
    }
}

/// The application-level id of an outgoing link.
pub(super) fn link_conn_id(kind: &LinkKind) -> ConnectionId {
    match kind {
        LinkKind::Sn(pk) => ConnectionId::Sn(*pk),
        LinkKind::Remote { id, pubkey, .. } => ConnectionId::Outgoing {
            id: *id,
            pubkey: *pubkey,
        },
        LinkKind::Inproc { id, .. } => ConnectionId::Outgoing {
            id: *id,
            pubkey: None,
        },
    }
}

/// Why a connection attempt failed, from where it got to (`dial`) and how it ended.
fn classify_attempt(dial: Dial, conn: &Conn, end: ConnEnd<'_>) -> ConnectError {
    match end {
        ConnEnd::Transport(DisconnectCause::Refused) => ConnectError::Refused,
        ConnEnd::Transport(DisconnectCause::ConnectFailed(reason)) => ConnectError::Unreachable {
            reason: reason.clone(),
        },
        ConnEnd::Transport(DisconnectCause::InvalidAddress(reason)) => {
            ConnectError::InvalidAddress {
                reason: reason.clone(),
            }
        }
        ConnEnd::Transport(cause @ (DisconnectCause::Eof | DisconnectCause::Reset(_))) => {
            if matches!(dial, Dial::Dialing { .. }) {
                ConnectError::Unreachable {
                    reason: alloc::format!("{cause}"),
                }
            } else if conn
                .state
                .session()
                .is_some_and(Session::awaits_curve_welcome)
            {
                HandshakeError::WrongServerKey.into()
            } else {
                HandshakeError::PeerClosed.into()
            }
        }
        ConnEnd::Session(e) => HandshakeError::from_session(e).into(),
        ConnEnd::Local(_) => HandshakeError::PeerClosed.into(),
    }
}
