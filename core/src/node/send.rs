//! Outgoing traffic: target selection for `send`/`request`/`reply`, and the connect calls.

use alloc::vec::Vec;

use bytes::Bytes;

use crate::address::Address;
use crate::auth::AuthLevel;
use crate::keys::PublicKey;
use crate::rng::{self, CryptoRngCore};
use crate::time::{Duration, Instant};

use super::config::FOREVER;
use super::io::{
    ConnectOptions, ConnectSnOptions, Event, ReplyTarget, RequestId, RequestOptions, SendOptions,
};
use super::requests::{TAG_LEN, Tag};
use super::route::{Dial, Link, LinkKind, Origin, Phase, Transport};
use super::{ConnectionId, Node, NodeError, SchedulerCell};
use crate::session::SendError as SessionSendError;
use core::fmt;

/// Why a message could not be queued. Display texts follow OxenMQ's log lines; each variant
/// names the connection the send was addressed to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// An `optional`/`incoming` send found no suitable connection.
    #[error("Not sending: send is optional and no connection to {0} is currently established")]
    NoConnection(ConnectionId),
    /// The id names no (longer) existing outgoing connection.
    #[error(
        "Unable to send: connection id {0} is not (or is no longer) a valid outgoing connection"
    )]
    NotConnected(ConnectionId),
    /// The id names an incoming connection that is gone (the remote has probably disconnected).
    #[error("Unable to send message to incoming connection {0}: remote has probably disconnected")]
    IncomingGone(ConnectionId),
    /// Too many messages are queued for a connection that is not up yet, or a connected peer's
    /// unsent backlog is over [`Config::send_backlog_limit`](super::Config::send_backlog_limit)
    /// (libzmq's high-water mark).
    #[error("Unable to send message to {0}: sending would block")]
    WouldBlock(ConnectionId),
    /// The connection's session refused the message (it is closing, or failed).
    #[error("Unable to send message on {0}: {1}")]
    Session(ConnectionId, SessionSendError),
    /// A message needs at least a command frame.
    #[error("cannot send an empty command")]
    EmptyCommand,
    /// `reply` was called for a message that was not a request (it has no reply tag).
    #[error("cannot reply: the message was not a request (no reply tag)")]
    NotARequest,
    /// The node has stopped.
    #[error("OxenMQ is shut down")]
    Stopped,
}

/// A send's failure before the public entry point names its target ([`SendFail::at`]): the
/// internal paths (links, connections, origins) do not know which [`ConnectionId`] the
/// application addressed.
#[derive(Debug)]
pub(super) enum SendFail {
    NotConnected,
    WouldBlock,
    Session(SessionSendError),
}

impl SendFail {
    /// The public error for a send addressed to `to`.
    pub(super) fn at(self, to: &ConnectionId) -> SendError {
        let to = to.clone();
        match self {
            Self::NotConnected => SendError::NotConnected(to),
            Self::WouldBlock => SendError::WouldBlock(to),
            Self::Session(e) => SendError::Session(to, e),
        }
    }
}

impl fmt::Display for SendFail {
    /// For the node's own best-effort sends, whose failures are only logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected"),
            Self::WouldBlock => f.write_str("sending would block"),
            Self::Session(e) => write!(f, "{e}"),
        }
    }
}

/// How a send went out, for request bookkeeping.
struct Sent {
    via: Origin,
}

impl<R: CryptoRngCore, S: SchedulerCell> Node<R, S> {
    /// Sends `[command, data…]` to `to` (OxenMQ's `send`). Never blocks; a new service-node
    /// connection is opened if needed (unless `opts.optional`/`opts.incoming`).
    pub fn send(
        &mut self,
        now: Instant,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: Vec<Bytes>,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        self.advance(now);
        let mut frames = Vec::with_capacity(1 + data.len());
        frames.push(command.into());
        frames.extend(data);
        let r = self.send_frames(to, frames, opts).map(|_| ());
        self.pump();
        r
    }

    /// Sends a request: `[command, tag, data…]` with a fresh 15-byte tag from the injected RNG.
    /// The reply (or its failure) arrives as a [`Job::Reply`](super::Job::Reply) with the
    /// returned id. If this returns an error, no reply job will come.
    ///
    /// A request on an outgoing connection survives a transport drop while the connection
    /// reconnects, and fails with [`RequestError::Disconnected`](super::RequestError::Disconnected)
    /// as soon as the connection is closed for good; otherwise it times out after
    /// `opts.timeout`.
    pub fn request(
        &mut self,
        now: Instant,
        to: &ConnectionId,
        command: impl Into<Bytes>,
        data: Vec<Bytes>,
        opts: &RequestOptions,
    ) -> Result<RequestId, SendError> {
        self.advance(now);
        let command = command.into();
        let tag = self.fresh_tag();
        let mut frames = Vec::with_capacity(2 + data.len());
        frames.push(command.clone());
        frames.push(Bytes::copy_from_slice(&tag));
        frames.extend(data);
        let sent = self.send_frames(to, frames, &opts.send);
        let r = sent.map(|sent| {
            let id = RequestId(self.next_request);
            self.next_request += 1;
            let timeout = opts.timeout.unwrap_or(self.config.request_timeout);
            let deadline = self.now.saturating_add(timeout);
            self.requests
                .insert(tag, id, deadline, command, Some(sent.via));
            id
        });
        self.pump();
        r
    }

    /// Replies to a request message: `[REPLY, tag, data…]`, on the connection the request came
    /// in on while it is open, else like `send` (strong for service nodes, optional otherwise).
    /// Multiple replies are not prevented (the requester drops the extras).
    pub fn reply(
        &mut self,
        now: Instant,
        to: &ReplyTarget,
        data: Vec<Bytes>,
    ) -> Result<(), SendError> {
        self.advance(now);
        let Some(tag) = to.tag.clone() else {
            return Err(SendError::NotARequest);
        };
        let mut frames = Vec::with_capacity(2 + data.len());
        frames.push(Bytes::from_static(b"REPLY"));
        frames.push(tag);
        frames.extend(data);
        let r = self.send_back_frames(to, frames);
        self.pump();
        r
    }

    /// Sends `[command, data…]` back to the sender of a message (OxenMQ's `send_back`).
    pub fn send_back(
        &mut self,
        now: Instant,
        to: &ReplyTarget,
        command: impl Into<Bytes>,
        data: Vec<Bytes>,
    ) -> Result<(), SendError> {
        self.advance(now);
        let mut frames = Vec::with_capacity(1 + data.len());
        frames.push(command.into());
        frames.extend(data);
        let r = self.send_back_frames(to, frames);
        self.pump();
        r
    }

    fn send_back_frames(&mut self, to: &ReplyTarget, frames: Vec<Bytes>) -> Result<(), SendError> {
        if let Some(via) = to.via {
            if self.origin_alive(via) {
                return self.send_raw(via, frames).map_err(|e| e.at(&to.conn));
            }
        }
        let opts = SendOptions {
            optional: !to.conn.is_sn(),
            ..SendOptions::default()
        };
        self.send_frames(&to.conn, frames, &opts).map(|_| ())
    }

    fn origin_alive(&self, origin: Origin) -> bool {
        match origin {
            Origin::Conn(c) => self.conns.get(c).is_some_and(|c| c.state.is_ready()),
            Origin::Link(l) | Origin::InprocClient(l) | Origin::InprocServer(l) => {
                self.links.contains_key(&l)
            }
        }
    }

    fn fresh_tag(&mut self) -> Tag {
        loop {
            let tag: [u8; TAG_LEN] = rng::public_array(&mut self.rng);
            if !self.requests.contains(&tag) {
                return tag;
            }
        }
    }

    /// Target selection (OxenMQ's `proxy_send`).
    fn send_frames(
        &mut self,
        to: &ConnectionId,
        frames: Vec<Bytes>,
        opts: &SendOptions,
    ) -> Result<Sent, SendError> {
        if self.stopped {
            return Err(SendError::Stopped);
        }
        if frames.is_empty() {
            return Err(SendError::EmptyCommand);
        }
        match to {
            ConnectionId::Sn(pk) => self.send_to_sn(*pk, frames, opts),
            // OxenMQ documents (but never implemented) that `incoming`/`outgoing` restrict
            // non-SN sends too; we do what it documents.
            ConnectionId::Outgoing { .. } if opts.incoming => {
                Err(SendError::NoConnection(to.clone()))
            }
            ConnectionId::Incoming { .. } if opts.outgoing => {
                Err(SendError::NoConnection(to.clone()))
            }
            ConnectionId::Outgoing { id, .. } => {
                let link_id = *self
                    .remote_ids
                    .get(id)
                    .ok_or_else(|| SendError::NotConnected(to.clone()))?;
                self.link_send(link_id, frames).map_err(|e| e.at(to))?;
                Ok(Sent {
                    via: self.link_origin(link_id),
                })
            }
            ConnectionId::Incoming {
                listener, route, ..
            } => {
                let origin = self
                    .incoming_conn(*listener, route)
                    .ok_or_else(|| SendError::IncomingGone(to.clone()))?;
                self.send_raw(origin, frames).map_err(|e| e.at(to))?;
                Ok(Sent { via: origin })
            }
        }
    }

    fn link_origin(&self, link_id: u64) -> Origin {
        match self.links.get(&link_id).map(|l| &l.kind) {
            Some(LinkKind::Inproc { .. }) => Origin::InprocClient(link_id),
            _ => Origin::Link(link_id),
        }
    }

    fn send_to_sn(
        &mut self,
        pk: PublicKey,
        frames: Vec<Bytes>,
        opts: &SendOptions,
    ) -> Result<Sent, SendError> {
        let keep_alive = opts.keep_alive.unwrap_or(self.config.send_keep_alive);
        // Reuse an existing connection: the outgoing one first (it is ours to keep alive), then
        // an incoming one, subject to the incoming/outgoing restrictions.
        if !opts.incoming {
            if let Some(&link_id) = self.sn_out.get(&pk) {
                self.touch_link(link_id, keep_alive);
                self.link_send(link_id, frames)
                    .map_err(|e| e.at(&ConnectionId::Sn(pk)))?;
                return Ok(Sent {
                    via: Origin::Link(link_id),
                });
            }
        }
        if !opts.outgoing {
            let incoming = self.sn_in.get(&pk).and_then(|v| {
                v.iter()
                    .copied()
                    .find(|c| self.conns.get(*c).is_some_and(|c| c.state.is_ready()))
            });
            if let Some(c) = incoming {
                self.send_raw(Origin::Conn(c), frames)
                    .map_err(|e| e.at(&ConnectionId::Sn(pk)))?;
                return Ok(Sent {
                    via: Origin::Conn(c),
                });
            }
        }
        if opts.optional || opts.incoming {
            log::debug!(
                "Not sending: send is optional and no connection to {pk} is currently established"
            );
            return Err(SendError::NoConnection(ConnectionId::Sn(pk)));
        }
        let link_id = self.open_sn_link(pk, opts.hint.clone(), keep_alive, None);
        self.link_send(link_id, frames)
            .map_err(|e| e.at(&ConnectionId::Sn(pk)))?;
        Ok(Sent {
            via: Origin::Link(link_id),
        })
    }

    /// Refreshes activity on a link and raises (never lowers) its idle expiry.
    fn touch_link(&mut self, link_id: u64, keep_alive: Duration) {
        if let Some(link) = self.links.get_mut(&link_id) {
            link.last_activity = self.now;
            if link.keep_alive < keep_alive {
                link.keep_alive = keep_alive;
            }
        }
        self.sync_link_timer(link_id);
    }

    /// Creates an outgoing service-node link and starts connecting (or asks for an address).
    fn open_sn_link(
        &mut self,
        pk: PublicKey,
        hint: Option<Address>,
        keep_alive: Duration,
        ephemeral: Option<bool>,
    ) -> u64 {
        let transport = match hint {
            Some(addr) => Transport::Addr {
                addr,
                dial: Dial::Idle,
            },
            None => Transport::Lookup,
        };
        let lookup = matches!(transport, Transport::Lookup);
        let link = Link::new(
            LinkKind::Sn(pk),
            transport,
            Phase::Open,
            self.now,
            keep_alive,
            self.config.reconnect_interval,
            ephemeral.unwrap_or(self.config.ephemeral_routing_id),
        );
        let link_id = self.new_link(link);
        self.sn_out.insert(pk, link_id);
        if lookup {
            self.event(Event::LookupSn { pubkey: pk });
        } else {
            self.dial(link_id);
        }
        link_id
    }

    /// Queues frames on a link: straight into the session when it is up, else in the link's
    /// bounded queue; in-process links deliver directly.
    fn link_send(&mut self, link_id: u64, frames: Vec<Bytes>) -> Result<(), SendFail> {
        let max = self.config.max_queued_messages;
        let Some(link) = self.links.get_mut(&link_id) else {
            return Err(SendFail::NotConnected);
        };
        if matches!(link.kind, LinkKind::Inproc { .. }) {
            self.inproc
                .push_back((Origin::InprocServer(link_id), frames));
            return Ok(());
        }
        match link.dial() {
            Some(Dial::Up { conn }) => self.conn_send(conn, frames),
            _ if link.queue.len() >= max => Err(SendFail::WouldBlock),
            _ => {
                link.queue.push_back(frames);
                Ok(())
            }
        }
    }

    /// Sends frames to the peer behind `origin`.
    pub(super) fn send_raw(&mut self, origin: Origin, frames: Vec<Bytes>) -> Result<(), SendFail> {
        match origin {
            Origin::Conn(c) => self.conn_send(c, frames),
            Origin::Link(l) => self.link_send(l, frames),
            Origin::InprocServer(l) => {
                self.inproc.push_back((Origin::InprocClient(l), frames));
                Ok(())
            }
            Origin::InprocClient(l) => {
                self.inproc.push_back((Origin::InprocServer(l), frames));
                Ok(())
            }
        }
    }

    /// [`send_raw`](Self::send_raw) for the node's own protocol messages (HELLO, error replies,
    /// BYE): best effort, a failure is only logged.
    pub(super) fn send_protocol(&mut self, origin: Origin, frames: Vec<Bytes>) {
        if let Err(e) = self.send_raw(origin, frames) {
            log::warn!("{e}");
        }
    }

    /// Opens (or reuses) an outgoing CURVE connection to a service node (OxenMQ's
    /// `connect_sn`). No HI/HELLO is exchanged. An existing connection's idle expiry is raised
    /// to the new keep-alive, never lowered.
    pub fn connect_sn(
        &mut self,
        now: Instant,
        pubkey: PublicKey,
        opts: &ConnectSnOptions,
    ) -> ConnectionId {
        self.advance(now);
        let keep_alive = opts.keep_alive.unwrap_or(self.config.connect_sn_keep_alive);
        if let Some(&link_id) = self.sn_out.get(&pubkey) {
            self.touch_link(link_id, keep_alive);
        } else {
            self.open_sn_link(
                pubkey,
                opts.hint.clone(),
                keep_alive,
                opts.ephemeral_routing_id,
            );
        }
        self.pump();
        ConnectionId::Sn(pubkey)
    }

    /// Connects to `addr` (CURVE iff it carries a pubkey), sends `HI`, and reports
    /// [`Job::Connected`](super::Job::Connected) when `HELLO` arrives or
    /// [`Job::ConnectFailed`](super::Job::ConnectFailed) with a typed
    /// [`ConnectError`](super::ConnectError) otherwise: at once for a refused or unreachable
    /// connect or a failed handshake (unless [`ConnectOptions::retry_refused`]), or
    /// `TimedOut` ("connection attempt timed out") when the timeout passes first. Exactly one
    /// of the two comes, unless shutdown starts first.
    ///
    /// Once up, the connection stays until [`Node::disconnect`]: a dropped transport is
    /// reported with [`Event::PeerDisconnected`] and
    /// reconnected; a reconnect that is refused, unreachable or fails its handshake ends it
    /// ([`Event::LinkFailed`]) unless `retry_refused` is set.
    pub fn connect_remote(
        &mut self,
        now: Instant,
        addr: Address,
        opts: &ConnectOptions,
    ) -> ConnectionId {
        self.advance(now);
        let id = self.fresh_remote_id();
        self.open_remote(id, addr, opts)
    }

    /// [`connect_remote`](Self::connect_remote) under an id the embedder hands out itself, so
    /// it can return the [`ConnectionId`] without waiting for the node (OxenMQ takes its ids
    /// from a shared counter for the same reason). The id must not be 0 or name an open
    /// connection; later automatic ids are always higher than it.
    ///
    /// # Errors
    ///
    /// [`NodeError::ConnectionIdInUse`].
    pub fn connect_remote_as(
        &mut self,
        now: Instant,
        id: u64,
        addr: Address,
        opts: &ConnectOptions,
    ) -> Result<ConnectionId, NodeError> {
        self.advance(now);
        self.claim_remote_id(id)?;
        Ok(self.open_remote(id, addr, opts))
    }

    /// The next automatic `connect_remote`/`connect_inproc` id.
    fn fresh_remote_id(&mut self) -> u64 {
        let id = self.next_remote_id;
        self.next_remote_id += 1;
        id
    }

    /// Checks an embedder-chosen connection id and keeps automatic ids clear of it.
    fn claim_remote_id(&mut self, id: u64) -> Result<(), NodeError> {
        if id == 0 || self.remote_ids.contains_key(&id) {
            return Err(NodeError::ConnectionIdInUse(id));
        }
        self.next_remote_id = self.next_remote_id.max(id.saturating_add(1));
        Ok(())
    }

    fn open_remote(&mut self, id: u64, addr: Address, opts: &ConnectOptions) -> ConnectionId {
        let pubkey = addr.pubkey().copied();
        let timeout = opts.timeout.unwrap_or(self.config.remote_connect_timeout);
        let mut link = Link::new(
            LinkKind::Remote {
                id,
                pubkey,
                auth: opts.auth_level.unwrap_or(AuthLevel::None),
                retry_refused: opts.retry_refused,
            },
            Transport::Addr {
                addr,
                dial: Dial::Idle,
            },
            Phase::Connecting {
                deadline: self.now.saturating_add(timeout),
            },
            self.now,
            FOREVER,
            self.config.reconnect_interval,
            opts.ephemeral_routing_id
                .unwrap_or(self.config.ephemeral_routing_id),
        );
        link.queue.push_back(alloc::vec![Bytes::from_static(b"HI")]);
        let link_id = self.new_link(link);
        self.remote_ids.insert(id, link_id);
        self.dial(link_id);
        self.pump();
        ConnectionId::Outgoing { id, pubkey }
    }

    /// Connects to this node itself without any transport (OxenMQ's `connect_inproc`): the
    /// remote side's commands get `auth` (default admin), ours are admin on the listening side.
    pub fn connect_inproc(&mut self, now: Instant, auth: Option<AuthLevel>) -> ConnectionId {
        self.advance(now);
        let id = self.fresh_remote_id();
        self.open_inproc(id, auth)
    }

    /// [`connect_inproc`](Self::connect_inproc) under an embedder-chosen id (see
    /// [`connect_remote_as`](Self::connect_remote_as)).
    ///
    /// # Errors
    ///
    /// [`NodeError::ConnectionIdInUse`].
    pub fn connect_inproc_as(
        &mut self,
        now: Instant,
        id: u64,
        auth: Option<AuthLevel>,
    ) -> Result<ConnectionId, NodeError> {
        self.advance(now);
        self.claim_remote_id(id)?;
        Ok(self.open_inproc(id, auth))
    }

    fn open_inproc(&mut self, id: u64, auth: Option<AuthLevel>) -> ConnectionId {
        let link = Link::new(
            LinkKind::Inproc {
                id,
                auth: auth.unwrap_or(AuthLevel::Admin),
            },
            Transport::Inproc,
            Phase::Connecting {
                deadline: self.now.saturating_add(self.config.inproc_connect_timeout),
            },
            self.now,
            FOREVER,
            self.config.reconnect_interval,
            false,
        );
        let link_id = self.new_link(link);
        self.remote_ids.insert(id, link_id);
        self.inproc.push_back((
            Origin::InprocServer(link_id),
            alloc::vec![Bytes::from_static(b"HI")],
        ));
        self.pump();
        ConnectionId::Outgoing { id, pubkey: None }
    }

    /// Closes an outgoing connection (service node by key, or a `connect_remote`/
    /// `connect_inproc` id) after flushing for at most `linger`. A later send to a service node
    /// opens a new connection.
    ///
    /// Requests pending on it fail with [`RequestError::Disconnected`](super::RequestError::Disconnected);
    /// if it was up, [`Event::PeerDisconnected`] says so with
    /// [`DisconnectReason::Closed`](super::DisconnectReason::Closed); a `connect_remote` still
    /// waiting for `HELLO` gets [`Job::ConnectFailed`](super::Job::ConnectFailed) with
    /// [`ConnectError::Closed`](super::ConnectError::Closed), so that its callbacks always
    /// resolve.
    pub fn disconnect(
        &mut self,
        now: Instant,
        conn: &ConnectionId,
        linger: Duration,
    ) -> Result<(), NodeError> {
        self.advance(now);
        let link_id = match conn {
            ConnectionId::Sn(pk) => self.sn_out.get(pk).copied(),
            ConnectionId::Outgoing { id, .. } => self.remote_ids.get(id).copied(),
            ConnectionId::Incoming { .. } => None,
        };
        let Some(link_id) = link_id else {
            log::warn!("Failed to disconnect {conn}: no such outgoing connection");
            return Err(NodeError::NoSuchOutgoingConnection(conn.clone()));
        };
        self.disconnect_link(link_id, linger);
        self.pump();
        Ok(())
    }
}
