//! Incoming messages: OxenMQ's built-in control words, then command lookup, access checks and
//! hand-off to the scheduler, with OxenMQ's exact error replies.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::auth::{AuthLevel, PeerAccess, Verdict, check_access};
use crate::rng::CryptoRngCore;

use super::io::{Message, ReplyTarget, RequestError};
use super::links::LinkEnd;
use super::logs::PeerText;
use super::route::{LinkKind, Origin, Phase, Role};
use super::{ConnectionId, Job, Node, Pool, SchedulerCell};

/// The error words a node answers bad commands with; never answered themselves.
const ERROR_WORDS: [&[u8]; 5] = [
    b"FORBIDDEN",
    b"FORBIDDEN_SN",
    b"NOT_A_SERVICE_NODE",
    b"UNKNOWNCOMMAND",
    b"NO_REPLY_TAG",
];

/// Who sent a message, as the access check and the command's `Message` see it.
struct Peer {
    conn: ConnectionId,
    auth: AuthLevel,
    service_node: bool,
    remote: Arc<str>,
    /// True if the message arrived on one of our listeners (the ROUTER side).
    incoming: bool,
    /// The outgoing link it arrived on, if any.
    link: Option<u64>,
}

/// A number naming where a message came from, for per-peer log limits.
fn origin_key(origin: Origin) -> u64 {
    match origin {
        Origin::Conn(c) => (u64::from(c.index()) << 32) | u64::from(c.generation()),
        // Links and in-process ends: their own ids, in a range connections cannot reach.
        Origin::Link(l) | Origin::InprocServer(l) | Origin::InprocClient(l) => {
            (1 << 63) | (l & !(1 << 63))
        }
    }
}

impl<R: CryptoRngCore, S: SchedulerCell> Node<R, S> {
    /// Logs a warning a peer caused, at most once a second per peer and reason (see
    /// [`logs`](super::logs)); the line written says how many were left out.
    fn peer_warn(&mut self, origin: Origin, reason: &'static str, line: fmt::Arguments<'_>) {
        if let Some(suppressed) = self.peer_logs.allow(self.now, origin_key(origin), reason) {
            if suppressed > 0 {
                log::warn!(
                    "{line} ({suppressed} more like this from this peer in the last second)"
                );
            } else {
                log::warn!("{line}");
            }
        }
    }

    /// Handles one complete multipart message from `origin`.
    pub(super) fn dispatch(&mut self, origin: Origin, frames: Vec<Bytes>) {
        let Some(peer) = self.peer_of(origin) else {
            return;
        };
        let Some(cmd) = frames.first().cloned() else {
            self.peer_warn(
                origin,
                "empty",
                format_args!("Received empty message; ignoring"),
            );
            return;
        };
        if self.handle_builtin(origin, &peer, &cmd, &frames) {
            return;
        }
        // A command from a service node on one of our listeners records the route, so later
        // sends to that key can reuse it (OxenMQ records it before checking access).
        if peer.incoming && peer.service_node {
            if let (Origin::Conn(c), ConnectionId::Sn(pk)) = (origin, &peer.conn) {
                let routes = self.sn_in.entry(*pk).or_default();
                if !routes.contains(&c) {
                    routes.push(c);
                }
            }
        }
        if self.shutting_down {
            return; // OxenMQ stops scheduling once it is quitting
        }

        let data = &frames[1..];
        let resolved = match self.registry.lookup(&cmd) {
            Ok(r) => r,
            Err(e) => {
                self.peer_warn(
                    origin,
                    "invalid command",
                    format_args!(
                        "Invalid command '{}' sent by remote {}: {e}",
                        PeerText(&cmd),
                        peer.conn
                    ),
                );
                self.error_reply(origin, "UNKNOWNCOMMAND", &cmd, None);
                return;
            }
        };
        let category = self.registry.category(resolved.category);
        let access = PeerAccess {
            auth: peer.auth,
            remote_sn: peer.service_node,
            local_sn: self.config.service_node,
        };
        let tag = resolved.is_request.then(|| data.first().cloned()).flatten();
        let verdict = check_access(&access, &category.access());
        if let Some(word) = verdict.wire_word() {
            self.peer_warn(
                origin,
                "access denied",
                format_args!(
                    "Access denied to {} for peer {}: {:?}",
                    PeerText(&cmd),
                    peer.conn,
                    verdict
                ),
            );
            self.error_reply(origin, word, &cmd, tag.as_ref());
            return;
        }
        debug_assert!(matches!(verdict, Verdict::Allowed));
        if resolved.is_request && tag.is_none() {
            self.peer_warn(
                origin,
                "no reply tag",
                format_args!(
                    "Received an invalid request for '{}' with no reply tag from remote {}",
                    PeerText(&cmd),
                    peer.conn
                ),
            );
            self.error_reply(origin, "NO_REPLY_TAG", &cmd, None);
            return;
        }

        // A command received on an outgoing link counts as activity (keeps it from expiring).
        if let Some(link_id) = peer.link {
            if let Some(link) = self.links.get_mut(&link_id) {
                link.last_activity = self.now;
            }
            self.sync_link_timer(link_id);
        }

        // The message's own frame list becomes the data parts: no second allocation.
        let mut data_parts = frames;
        data_parts.drain(..if resolved.is_request { 2 } else { 1 });
        let via = Some(match (origin, peer.link) {
            (Origin::Conn(_), Some(link)) => Origin::Link(link),
            (other, _) => other,
        });
        let message = Message {
            conn: peer.conn.clone(),
            data: data_parts,
            access,
            remote: peer.remote,
            reply_to: ReplyTarget {
                conn: peer.conn,
                tag,
                via,
            },
        };
        let job = Job::Command {
            command: resolved.command,
            message,
        };
        let category = resolved.category;
        // Commands from sockets count against their connection for the fair-drop rule (one
        // peer cannot take a category's whole queue); in-process ones are the application's.
        let source = match origin {
            Origin::Conn(id) => Some(u64::from(id.index()) << 32 | u64::from(id.generation())),
            _ => None,
        };
        let offered = self.sched.with(|s| match source {
            Some(source) => s.offer_command_from(category, source, job),
            None => s.offer_command(category, job),
        });
        if let Err(e) = offered {
            log::warn!("command not scheduled: {e}");
        }
    }

    /// Works out who sent a message arriving at `origin`.
    fn peer_of(&self, origin: Origin) -> Option<Peer> {
        match origin {
            Origin::Conn(id) => {
                let conn = self.conns.get(id)?;
                match conn.role {
                    Role::Listener(listener) => {
                        let service_node =
                            conn.pubkey.is_some_and(|pk| self.active_sns.contains(&pk));
                        let conn_id = self.incoming_id(listener, conn);
                        Some(Peer {
                            conn: conn_id,
                            auth: conn.auth,
                            service_node,
                            remote: conn.remote.clone(),
                            incoming: true,
                            link: None,
                        })
                    }
                    Role::Link(link_id) => {
                        let link = self.links.get(&link_id)?;
                        let (conn_id, auth, service_node) = link_peer(&link.kind);
                        Some(Peer {
                            conn: conn_id,
                            auth,
                            service_node,
                            remote: conn.remote.clone(),
                            incoming: false,
                            link: Some(link_id),
                        })
                    }
                }
            }
            Origin::InprocServer(link_id) => {
                // The listening side of an in-process connection: the caller is ourselves, with
                // admin access, and a service node iff our own key is in the active set.
                let link = self.links.get(&link_id)?;
                let LinkKind::Inproc { id, .. } = link.kind else {
                    return None;
                };
                let service_node = self.active_sns.contains(self.keypair.public());
                let conn = self.inproc_server_id(id);
                Some(Peer {
                    conn,
                    auth: AuthLevel::Admin,
                    service_node,
                    remote: Arc::clone(&self.inproc_remote),
                    incoming: true,
                    link: None,
                })
            }
            Origin::InprocClient(link_id) | Origin::Link(link_id) => {
                let link = self.links.get(&link_id)?;
                let (conn, auth, service_node) = link_peer(&link.kind);
                Some(Peer {
                    conn,
                    auth,
                    service_node,
                    remote: Arc::clone(&self.inproc_remote),
                    incoming: false,
                    link: Some(link_id),
                })
            }
        }
    }

    /// Handles OxenMQ's built-in words; returns true if `cmd` was one of them.
    fn handle_builtin(
        &mut self,
        origin: Origin,
        peer: &Peer,
        cmd: &Bytes,
        frames: &[Bytes],
    ) -> bool {
        match cmd.as_ref() {
            b"REPLY" => {
                let Some(tag) = frames.get(1) else {
                    self.peer_warn(
                        origin,
                        "bad reply",
                        format_args!("Received REPLY without a reply tag; ignoring"),
                    );
                    return true;
                };
                match self.requests.take(tag) {
                    Some(request) => self.submit(
                        Job::Reply {
                            request,
                            result: Ok(frames[2..].to_vec()),
                        },
                        Pool::Reply,
                    ),
                    None => self.peer_warn(
                        origin,
                        "bad reply",
                        format_args!(
                            "Received REPLY with unknown or already handled reply tag; ignoring"
                        ),
                    ),
                }
                true
            }
            b"HI" => {
                if peer.incoming {
                    self.send_protocol(origin, alloc::vec![Bytes::from_static(b"HELLO")]);
                } else {
                    self.peer_warn(
                        origin,
                        "bad control",
                        format_args!(
                            "Got invalid 'HI' message on an outgoing connection; ignoring"
                        ),
                    );
                }
                true
            }
            b"HELLO" => {
                let pending = peer.link.filter(|l| {
                    self.links
                        .get(l)
                        .is_some_and(|l| matches!(l.phase, Phase::Connecting { .. }))
                });
                match pending {
                    Some(link_id) if !peer.incoming => {
                        if let Some(link) = self.links.get_mut(&link_id) {
                            link.phase = Phase::Open;
                        }
                        self.sync_link_timer(link_id);
                        let conn = peer.conn.clone();
                        self.submit(Job::Connected { conn }, Pool::Reply);
                    }
                    _ => self.peer_warn(
                        origin,
                        "bad control",
                        format_args!(
                            "Got invalid 'HELLO' message on an incoming or already handshaked connection; ignoring"
                        ),
                    ),
                }
                true
            }
            b"BYE" => {
                match peer.link {
                    Some(link_id) if !peer.incoming => {
                        log::debug!("BYE command received; disconnecting from {}", peer.conn);
                        self.end_link(link_id, LinkEnd::Bye, crate::time::Duration::ZERO);
                    }
                    _ => self.peer_warn(
                        origin,
                        "bad control",
                        format_args!("Got invalid 'BYE' command on an incoming socket; ignoring"),
                    ),
                }
                true
            }
            w if ERROR_WORDS.contains(&w) => {
                self.handle_error_word(origin, w, frames);
                true
            }
            _ => false,
        }
    }

    fn handle_error_word(&mut self, origin: Origin, word: &[u8], frames: &[Bytes]) {
        if frames.len() == 1 && word == b"UNKNOWNCOMMAND" {
            log::debug!(
                "Received plain UNKNOWNCOMMAND; remote is probably an older oxenmq. Ignoring."
            );
            return;
        }
        if frames.len() == 3 && frames[1].as_ref() == b"REPLY" {
            let error = match word {
                b"FORBIDDEN" => RequestError::Forbidden,
                b"FORBIDDEN_SN" => RequestError::ForbiddenSn,
                b"NOT_A_SERVICE_NODE" => RequestError::NotAServiceNode,
                b"NO_REPLY_TAG" => RequestError::NoReplyTag,
                _ => RequestError::UnknownCommand,
            };
            match self.requests.take(&frames[2]) {
                Some(request) => self.submit(
                    Job::Reply {
                        request,
                        result: Err(error),
                    },
                    Pool::Reply,
                ),
                None => self.peer_warn(
                    origin,
                    "bad reply",
                    format_args!(
                        "Received REPLY with unknown or already handled reply tag; ignoring"
                    ),
                ),
            }
            return;
        }
        match frames.get(1) {
            Some(what) => self.peer_warn(
                origin,
                "error word",
                format_args!("Received {}: {}", PeerText(word), PeerText(what)),
            ),
            None => self.peer_warn(
                origin,
                "error word",
                format_args!("Received {}: (unknown command)", PeerText(word)),
            ),
        }
        // Improvement over OxenMQ: the remote will never answer requests for a command it does
        // not know, so fail them now instead of waiting for TIMEOUT.
        if word == b"UNKNOWNCOMMAND" && frames.len() == 2 {
            for request in self
                .requests
                .take_unknown(self.request_route(origin), &frames[1])
            {
                self.submit(
                    Job::Reply {
                        request,
                        result: Err(RequestError::UnknownCommand),
                    },
                    Pool::Reply,
                );
            }
        }
    }

    /// The origin under which requests sent towards the peer at `origin` are recorded: a link
    /// rather than its current socket, since requests outlive reconnects.
    fn request_route(&self, origin: Origin) -> Origin {
        match origin {
            Origin::Conn(c) => match self.conns.get(c).map(|c| c.role) {
                Some(Role::Link(l)) => Origin::Link(l),
                _ => origin,
            },
            other => other,
        }
    }

    /// Sends `[word, REPLY, tag]` when the command is a request with a tag, else `[word, cmd]`.
    /// Best effort: an error reply that cannot be sent is only logged, and error replies are
    /// never answered (they are built-ins on the receiving side).
    fn error_reply(
        &mut self,
        origin: Origin,
        word: &'static str,
        cmd: &Bytes,
        tag: Option<&Bytes>,
    ) {
        let mut frames = Vec::with_capacity(3);
        frames.push(Bytes::from_static(word.as_bytes()));
        match tag {
            Some(tag) => {
                frames.push(Bytes::from_static(b"REPLY"));
                frames.push(tag.clone());
            }
            None => frames.push(cmd.clone()),
        }
        self.send_protocol(origin, frames);
    }
}

/// The application-level identity, auth level and SN status of an outgoing link's remote.
fn link_peer(kind: &LinkKind) -> (ConnectionId, AuthLevel, bool) {
    match kind {
        // Outgoing service-node connections: the remote is an SN, granted no special level.
        LinkKind::Sn(pk) => (ConnectionId::Sn(*pk), AuthLevel::None, true),
        LinkKind::Remote {
            id, pubkey, auth, ..
        } => (
            ConnectionId::Outgoing {
                id: *id,
                pubkey: *pubkey,
            },
            *auth,
            false,
        ),
        // `connect_inproc` grants the (local) remote admin by default.
        LinkKind::Inproc { id, auth } => (
            ConnectionId::Outgoing {
                id: *id,
                pubkey: None,
            },
            *auth,
            false,
        ),
    }
}
