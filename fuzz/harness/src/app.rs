//! The application-layer target: OxenMQ's protocol (commands, request tags, `REPLY`, the error
//! words, `HI`/`HELLO`/`BYE`) between a [`Node`] and a peer that completed a genuine NULL or
//! CURVE handshake with it, the peer's messages chosen by the fuzzer.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::ids::{CommandId, ConnId, ListenerId};
use lokimq_core::node::{
    ConnectOptions, ConnectionId, DisconnectCause, Event, Input, Job, Message, Node, Output,
    RequestError, RequestId, RequestOptions, SendOptions,
};
use lokimq_core::registry::{CategoryOptions, QueueLimit, Registry, RegistryBuilder};
use lokimq_core::session::{MechanismConfig, Session, SessionEvent};
use lokimq_core::time::{Duration, Instant};
use lokimq_core::zmtp::SocketType;

use crate::rng::{DeterministicRng, PEER_SEED, TARGET_SEED, client_keypair, server_keypair};
use crate::wire::{node_config, session_config};

/// One registered command and the access rule of its category, kept here independently of the
/// registry so that the harness can judge every job the node hands out.
struct Rule {
    name: &'static str,
    category: &'static str,
    access: Access,
    request: bool,
}

const fn rule(name: &'static str, category: &'static str, access: Access, request: bool) -> Rule {
    Rule {
        name,
        category,
        access,
        request,
    }
}

const PUBLIC: Access = Access::new(AuthLevel::None, false, false);
const BASIC: Access = Access::new(AuthLevel::Basic, false, false);
const ADMIN: Access = Access::new(AuthLevel::Admin, false, false);
const REMOTE_SN: Access = Access::new(AuthLevel::None, true, false);
const LOCAL_SN: Access = Access::new(AuthLevel::None, false, true);
const ALL: Access = Access::new(AuthLevel::Admin, true, true);

/// The fuzzed node's commands: every access rule, commands and request commands.
const RULES: &[Rule] = &[
    rule("pub.cmd", "pub", PUBLIC, false),
    rule("pub.req", "pub", PUBLIC, true),
    // The harness answers a `pub.call` by sending a request back to the caller.
    rule("pub.call", "pub", PUBLIC, true),
    rule("basic.cmd", "basic", BASIC, false),
    rule("basic.req", "basic", BASIC, true),
    rule("admin.req", "admin", ADMIN, true),
    rule("sn.cmd", "sn", REMOTE_SN, false),
    rule("sn.req", "sn", REMOTE_SN, true),
    rule("lsn.req", "lsn", LOCAL_SN, true),
    rule("all.req", "all", ALL, true),
];

/// Aliases (from, to).
const ALIASES: &[(&str, &str)] = &[("old.req", "pub.req"), ("old.admin", "admin.req")];

/// Words the fuzzer picks parts from (selector byte < `WORDS.len()`).
const WORDS: &[&[u8]] = &[
    b"pub.cmd",
    b"pub.req",
    b"pub.call",
    b"basic.cmd",
    b"basic.req",
    b"admin.req",
    b"sn.cmd",
    b"sn.req",
    b"lsn.req",
    b"all.req",
    b"old.req",
    b"old.admin",
    b"REPLY",
    b"HI",
    b"HELLO",
    b"BYE",
    b"FORBIDDEN",
    b"FORBIDDEN_SN",
    b"NOT_A_SERVICE_NODE",
    b"UNKNOWNCOMMAND",
    b"NO_REPLY_TAG",
    b"peer.ask",
    b"nope.cmd",
    b"pub.",
    b".cmd",
    b"pub",
    b"",
    b"x",
];

/// Selectors from here refer to the tags of the node's requests as the peer received them.
const TAG_SELECTOR: u8 = 0x40;
/// Selectors from here are literals of `selector - LITERAL` bytes.
const LITERAL: u8 = 0x80;

/// The command the node's requests to the peer use.
const PEER_REQUEST: &[u8] = b"peer.ask";
/// The command the node's plain sends to the peer use.
const PEER_NOTE: &[u8] = b"peer.note";

/// Transmitted bytes allowed regardless of input (greeting, handshake, the harness's own
/// requests and replies), and per harness-initiated call.
const SLACK: usize = 4096;
const PER_CALL: usize = 256;

fn fuzz_registry() -> Registry {
    let mut b = RegistryBuilder::new();
    let mut categories = BTreeSet::new();
    for r in RULES {
        if categories.insert(r.category) {
            // Two queued jobs per category, so that drops are reachable.
            let opts = CategoryOptions::new(r.access).max_queue(QueueLimit::At(2));
            if let Err(e) = b.add_category(r.category, opts) {
                panic!("fixed registry refused category {}: {e}", r.category);
            }
        }
        let (_, command) = r.name.split_once('.').unwrap_or(("", r.name));
        let added = if r.request {
            b.add_request_command(r.category, command)
        } else {
            b.add_command(r.category, command)
        };
        if let Err(e) = added {
            panic!("fixed registry refused {}: {e}", r.name);
        }
    }
    for (from, to) in ALIASES {
        if let Err(e) = b.add_command_alias(from, to) {
            panic!("fixed registry refused alias {from}: {e}");
        }
    }
    b.build()
}

/// Who the peer is, as the access rules see it.
#[derive(Debug, Clone, Copy)]
struct PeerIs {
    auth: AuthLevel,
    service_node: bool,
    local_sn: bool,
}

impl PeerIs {
    fn allows(&self, access: &Access) -> bool {
        self.auth >= access.auth
            && (!access.remote_sn || self.service_node)
            && (!access.local_sn || self.local_sn)
    }
}

/// The fuzz input's header byte.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// The node accepted the connection (else it connected out, `connect_remote`).
    incoming: bool,
    curve: bool,
    level: AuthLevel,
    local_sn: bool,
    /// The peer's CURVE key is in the node's active service-node set.
    peer_sn: bool,
    /// The harness does OxenMQ's `HI`/`HELLO` exchange itself before the fuzzed messages.
    greet: bool,
    /// Peer bytes reach the node in 7-byte pieces rather than whole writes.
    chunked: bool,
}

impl Setup {
    fn parse(h: u8) -> Self {
        Self {
            incoming: h & 1 == 0,
            curve: h & 2 != 0,
            level: AuthLevel::ALL[usize::from((h >> 2) & 3)],
            local_sn: h & 0x10 != 0,
            peer_sn: h & 0x20 != 0,
            greet: h & 0x40 != 0,
            chunked: h & 0x80 != 0,
        }
    }
}

/// What the peer sent and saw, for judging the node's jobs.
#[derive(Default)]
struct Ledger {
    /// Jobs the node may still hand out: (command, reply tag, data) of every peer message that
    /// names a command the peer may call, with a tag if it is a request.
    expected_jobs: Vec<(CommandId, Option<Bytes>, Vec<Bytes>)>,
    /// Every `[REPLY, tag, data…]` the peer sent.
    replies: Vec<(Bytes, Vec<Bytes>)>,
    /// Every `[WORD, REPLY, tag]` the peer sent.
    error_replies: Vec<(Bytes, Bytes)>,
    /// Whether the peer sent a bare `[UNKNOWNCOMMAND, peer.ask]`.
    unknown_ask: bool,
    /// Requests the node made to the peer, in order, and the tags the peer received, in order
    /// (the i-th request the peer received is the i-th one made).
    requests: Vec<RequestId>,
    tags: Vec<Bytes>,
    resolved: BTreeSet<RequestId>,
    jobs: usize,
    commands: usize,
    replies_ok: usize,
    replies_err: usize,
    peer_messages: usize,
    calls: usize,
}

struct App {
    node: Node<DeterministicRng>,
    now: Instant,
    setup: Setup,
    peer: Session,
    peer_rng: DeterministicRng,
    peer_is: PeerIs,
    conn: Option<ConnId>,
    closed: bool,
    rules: BTreeMap<CommandId, &'static Rule>,
    ledger: Ledger,
    /// Node → peer bytes (all of them) and peer → node bytes (all of them).
    to_peer: usize,
    to_node: usize,
    plain: ListenerId,
    curve_listener: ListenerId,
}

impl App {
    fn new(setup: Setup) -> Self {
        let now = Instant::from_secs(1);
        let mut config = node_config();
        config.service_node = setup.local_sn;
        config.request_timeout = Duration::from_secs(10);
        let registry = fuzz_registry();
        let mut rules = BTreeMap::new();
        for r in RULES {
            match registry.lookup(r.name.as_bytes()) {
                Ok(resolved) => {
                    assert_eq!(resolved.is_request, r.request, "{}", r.name);
                    rules.insert(resolved.command, r);
                }
                Err(e) => panic!("fixed registry lost {}: {e}", r.name),
            }
        }
        let mut node = match Node::new(
            config,
            registry,
            server_keypair(),
            DeterministicRng::new(TARGET_SEED),
            now,
        ) {
            Ok(n) => n,
            Err(e) => panic!("fixed node config refused: {e}"),
        };
        if setup.peer_sn {
            node.set_active_sns(now, BTreeSet::from([*client_keypair().public()]));
        }
        let listen = |node: &mut Node<DeterministicRng>, port, curve: bool| {
            let addr = Address::tcp("127.0.0.1", port);
            let r = if curve {
                node.listen_curve(now, addr)
            } else {
                node.listen_plain(now, addr)
            };
            r.unwrap_or_else(|e| panic!("a fresh node refused a listener: {e}"))
        };
        let plain = listen(&mut node, 4500, false);
        let curve_listener = listen(&mut node, 4501, true);
        // The peer: a DEALER client of the node's listener, or the ROUTER the node dials.
        let mechanism = match (setup.incoming, setup.curve) {
            (_, false) => MechanismConfig::Null,
            (true, true) => MechanismConfig::CurveClient {
                keypair: client_keypair(),
                server_key: *server_keypair().public(),
            },
            (false, true) => MechanismConfig::CurveServer {
                keypair: client_keypair(),
            },
        };
        let socket = if setup.incoming {
            SocketType::Dealer
        } else {
            SocketType::Router
        };
        let mut peer_rng = DeterministicRng::new(PEER_SEED);
        let peer = Session::new(session_config(socket, mechanism), now, &mut peer_rng)
            .unwrap_or_else(|e| panic!("fixed peer config refused: {e}"));
        let peer_is = PeerIs {
            auth: setup.level,
            // Incoming connections from a key in the active set are service nodes; the remote
            // of a `connect_remote` link never is.
            service_node: setup.incoming && setup.curve && setup.peer_sn,
            local_sn: setup.local_sn,
        };
        let mut app = Self {
            node,
            now,
            setup,
            peer,
            peer_rng,
            peer_is,
            conn: None,
            closed: false,
            rules,
            ledger: Ledger::default(),
            to_peer: 0,
            to_node: 0,
            plain,
            curve_listener,
        };
        app.drain();
        app
    }

    /// Opens the connection and runs the handshake to completion (or refusal).
    fn open(&mut self) {
        if self.setup.incoming {
            let listener = if self.setup.curve {
                self.curve_listener
            } else {
                self.plain
            };
            let conn = self
                .node
                .accept(self.now, listener, "192.0.2.7")
                .unwrap_or_else(|e| panic!("accept on our own listener: {e}"));
            self.conn = Some(conn);
            self.drain();
        } else {
            let addr = if self.setup.curve {
                Address::tcp_curve("192.0.2.8", 4600, *client_keypair().public())
            } else {
                Address::tcp("192.0.2.8", 4600)
            };
            let opts = ConnectOptions::default().auth_level(self.setup.level);
            let to = self.node.connect_remote(self.now, addr, &opts);
            self.drain();
            // Requests made before the link is up are queued and go out once it is.
            for i in 0..2u8 {
                self.request(&to, i);
            }
        }
        self.pump();
        if self.setup.greet && self.peer_ready() {
            if self.setup.incoming {
                self.peer_send(vec![Bytes::from_static(b"HI")]);
            }
            self.pump();
        }
    }

    fn peer_ready(&self) -> bool {
        self.peer.state() == lokimq_core::session::SessionState::Ready
    }

    fn request(&mut self, to: &ConnectionId, i: u8) {
        self.ledger.calls += 1;
        let r = self.node.request(
            self.now,
            to,
            Bytes::from_static(PEER_REQUEST),
            vec![Bytes::from(vec![b'q', i])],
            &RequestOptions::default(),
        );
        if let Ok(id) = r {
            assert!(
                !self.ledger.requests.contains(&id),
                "request id {id:?} handed out twice"
            );
            self.ledger.requests.push(id);
        }
        self.drain();
    }

    /// The peer sends one message (when it can), recording what the node may do with it.
    fn peer_send(&mut self, parts: Vec<Bytes>) {
        if !self.peer_ready() || self.closed {
            return;
        }
        self.ledger.peer_messages += 1;
        self.expect(&parts);
        if self.peer.send(self.now, parts).is_err() {
            return;
        }
        self.pump();
    }

    /// Records the jobs and replies `parts` may legitimately cause.
    fn expect(&mut self, parts: &[Bytes]) {
        let Some(first) = parts.first() else {
            return;
        };
        match first.as_ref() {
            b"REPLY" => {
                if let Some(tag) = parts.get(1) {
                    self.ledger.replies.push((tag.clone(), parts[2..].to_vec()));
                }
            }
            b"FORBIDDEN"
            | b"FORBIDDEN_SN"
            | b"NOT_A_SERVICE_NODE"
            | b"UNKNOWNCOMMAND"
            | b"NO_REPLY_TAG" => {
                if parts.len() == 3 && parts[1].as_ref() == b"REPLY" {
                    self.ledger
                        .error_replies
                        .push((first.clone(), parts[2].clone()));
                } else if first.as_ref() == b"UNKNOWNCOMMAND"
                    && parts.len() == 2
                    && parts[1].as_ref() == PEER_REQUEST
                {
                    self.ledger.unknown_ask = true;
                }
            }
            name => {
                let name = ALIASES
                    .iter()
                    .find(|(from, _)| from.as_bytes() == name)
                    .map_or(name, |(_, to)| to.as_bytes());
                let Some(r) = RULES.iter().find(|r| r.name.as_bytes() == name) else {
                    return;
                };
                if !self.peer_is.allows(&r.access) {
                    return;
                }
                let id = self
                    .rules
                    .iter()
                    .find(|(_, rr)| rr.name == r.name)
                    .map(|(id, _)| *id);
                let Some(id) = id else {
                    return;
                };
                if r.request {
                    if let Some(tag) = parts.get(1) {
                        self.ledger.expected_jobs.push((
                            id,
                            Some(tag.clone()),
                            parts[2..].to_vec(),
                        ));
                    }
                } else {
                    self.ledger
                        .expected_jobs
                        .push((id, None, parts[1..].to_vec()));
                }
            }
        }
    }

    /// Moves bytes both ways until neither side has anything to say (bounded).
    fn pump(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            while let Some(b) = self.peer.poll_transmit() {
                moved = true;
                self.to_node += b.len();
                if let Some(conn) = self.conn.filter(|_| !self.closed) {
                    if self.setup.chunked {
                        for c in b.chunks(7) {
                            self.received(conn, c);
                        }
                    } else {
                        self.received(conn, &b);
                    }
                }
            }
            while let Some(ev) = self.peer.poll_event() {
                moved = true;
                self.peer_event(ev);
            }
            if !moved {
                return;
            }
        }
    }

    fn received(&mut self, conn: ConnId, data: &[u8]) {
        if self.closed {
            return;
        }
        self.node
            .handle(
                self.now,
                Input::Received {
                    conn,
                    data: Bytes::copy_from_slice(data),
                },
            )
            .ok();
        self.drain();
    }

    /// What the peer makes of a message from the node: it learns request tags, and answers the
    /// harness's HI/HELLO exchange when asked to.
    fn peer_event(&mut self, ev: SessionEvent) {
        let SessionEvent::Message(parts) = ev else {
            return;
        };
        let first = parts.first().map(Bytes::as_ref);
        if first == Some(PEER_REQUEST) {
            match parts.get(1) {
                Some(tag) => self.ledger.tags.push(tag.clone()),
                None => panic!("the node sent a request without a tag"),
            }
        }
        if first == Some(b"HI") && self.setup.greet && !self.setup.incoming {
            let _ = self.peer.send(self.now, vec![Bytes::from_static(b"HELLO")]);
        }
    }

    fn drain(&mut self) {
        loop {
            let mut jobs = Vec::new();
            let mut connects = Vec::new();
            while let Some(o) = self.node.poll_output() {
                match o {
                    Output::Transmit { conn, data } => {
                        assert_eq!(
                            Some(conn),
                            self.conn,
                            "transmit on a connection we never had"
                        );
                        assert!(!self.closed, "transmit after Close");
                        self.to_peer += data.len();
                        self.peer.handle_bytes(self.now, &data, &mut self.peer_rng);
                    }
                    Output::Close { conn, .. } => {
                        assert_eq!(Some(conn), self.conn, "Close of a connection we never had");
                        assert!(!self.closed, "second Close");
                        self.closed = true;
                    }
                    Output::RunJob { worker, job } => jobs.push((worker, job)),
                    Output::Connect { conn, .. } => connects.push(conn),
                    Output::Event(Event::AuthRequest { conn, .. }) => {
                        let level = self.setup.level;
                        self.node
                            .handle(self.now, Input::AuthDecision { conn, level })
                            .ok();
                    }
                    _ => {}
                }
            }
            if jobs.is_empty() && connects.is_empty() {
                break;
            }
            for conn in connects {
                if self.conn.is_none() {
                    self.conn = Some(conn);
                    self.node.handle(self.now, Input::Connected { conn }).ok();
                } else {
                    // One transport per execution: reconnects are refused.
                    self.node
                        .handle(
                            self.now,
                            Input::Disconnected {
                                conn,
                                cause: DisconnectCause::Refused,
                            },
                        )
                        .ok();
                }
            }
            for (worker, job) in jobs {
                self.job(job);
                self.node
                    .handle(self.now, Input::JobFinished { worker })
                    .ok();
            }
        }
        let open = usize::from(self.conn.is_some() && !self.closed);
        assert!(
            self.node.stats().connections <= open,
            "the node counts a connection the harness never saw"
        );
    }

    fn job(&mut self, job: Job) {
        self.ledger.jobs += 1;
        match job {
            Job::Command { command, message } => self.command(command, message),
            Job::Reply { request, result } => self.reply(request, result),
            _ => {}
        }
    }

    fn command(&mut self, command: CommandId, message: Message) {
        self.ledger.commands += 1;
        let Some(rule) = self.rules.get(&command) else {
            panic!("a job for a command the registry does not have: {command:?}");
        };
        assert!(
            self.peer_is.allows(&rule.access),
            "job for {} although its access rule forbids it ({:?})",
            rule.name,
            self.peer_is
        );
        assert_eq!(
            message.access.auth, self.peer_is.auth,
            "job with the wrong auth level"
        );
        assert_eq!(
            message.access.remote_sn, self.peer_is.service_node,
            "job with the wrong service-node status"
        );
        let tag = message.reply_to.tag().cloned();
        assert_eq!(
            tag.is_some(),
            rule.request,
            "reply tag on a plain command, or none on a request"
        );
        let key = (command, tag, message.data.clone());
        match self.ledger.expected_jobs.iter().position(|e| *e == key) {
            Some(i) => {
                self.ledger.expected_jobs.remove(i);
            }
            None => panic!("job for {} that the peer never sent: {key:?}", rule.name),
        }
        let to = message.conn.clone();
        if rule.request {
            self.ledger.calls += 1;
            let _ = self
                .node
                .reply(self.now, &message.reply_to, vec![Bytes::from_static(b"ok")]);
        }
        if rule.name == "pub.call" {
            self.request(&to, 9);
        } else if rule.name == "pub.cmd" {
            self.ledger.calls += 1;
            let _ = self.node.send(
                self.now,
                &to,
                Bytes::from_static(PEER_NOTE),
                Vec::new(),
                &SendOptions::default(),
            );
        }
    }

    fn reply(&mut self, request: RequestId, result: Result<Vec<Bytes>, RequestError>) {
        let Some(index) = self.ledger.requests.iter().position(|r| *r == request) else {
            panic!("reply to a request nobody made: {request:?}");
        };
        assert!(
            self.ledger.resolved.insert(request),
            "request {request:?} answered twice"
        );
        let tag = self.ledger.tags.get(index).cloned();
        match result {
            Ok(data) => {
                self.ledger.replies_ok += 1;
                let Some(tag) = tag else {
                    panic!("a reply for a request the peer never received");
                };
                assert!(
                    self.ledger.replies.contains(&(tag, data)),
                    "a reply the peer never sent"
                );
            }
            Err(RequestError::Timeout | RequestError::Disconnected) => {}
            Err(e) => {
                self.ledger.replies_err += 1;
                let word = e.to_string();
                let sent = tag.as_ref().is_some_and(|tag| {
                    self.ledger
                        .error_replies
                        .iter()
                        .any(|(w, t)| w.as_ref() == word.as_bytes() && t == tag)
                });
                let unknown = e == RequestError::UnknownCommand && self.ledger.unknown_ask;
                assert!(
                    sent || unknown,
                    "request failed with {e} that the peer never sent"
                );
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
        if self.node.poll_timeout().is_some_and(|t| t <= self.now) {
            self.node.handle(self.now, Input::Timeout).ok();
            self.drain();
        }
        self.peer.handle_timeout(self.now, &mut self.peer_rng);
        self.pump();
    }
}

/// Reads the next message from the fuzz payload: a control byte (bits 0–1: parts − 1; bit 7:
/// let 4 s pass first), then per part a selector: a word of [`WORDS`], a request tag the peer
/// received (`0x40 + i`), a literal (`0x80 + len`, then `len` bytes) or, otherwise, the selector
/// byte itself as a one-byte part.
fn next_message(data: &mut &[u8], tags: &[Bytes]) -> Option<(bool, Vec<Bytes>)> {
    let (&ctl, rest) = data.split_first()?;
    *data = rest;
    let mut parts = Vec::new();
    for _ in 0..=(ctl & 3) {
        let Some((&sel, rest)) = data.split_first() else {
            break;
        };
        *data = rest;
        let part = if usize::from(sel) < WORDS.len() {
            Bytes::from_static(WORDS[usize::from(sel)])
        } else if (TAG_SELECTOR..LITERAL).contains(&sel) {
            let i = usize::from(sel - TAG_SELECTOR);
            tags.get(i).or(tags.last()).cloned().unwrap_or_default()
        } else if sel >= LITERAL {
            let n = usize::from(sel - LITERAL).min(data.len());
            let (lit, rest) = data.split_at(n);
            *data = rest;
            Bytes::copy_from_slice(lit)
        } else {
            Bytes::copy_from_slice(&[sel])
        };
        parts.push(part);
    }
    Some((ctl & 0x80 != 0, parts))
}

/// Fuzzes OxenMQ's application protocol on a node after a genuine handshake.
///
/// Byte 0 (see `Setup`): bit 0 the direction (the node accepted the peer on a listener, or
/// dialled it with `connect_remote`), bit 1 NULL or CURVE, bits 2–3 the auth level (granted to
/// the incoming peer, or given to the remote of the outgoing link), bit 4 the node is a service
/// node, bit 5 the peer's key is an active service node, bit 6 the harness does the `HI` /
/// `HELLO` exchange, bit 7 the peer's bytes arrive in 7-byte pieces. The rest is a sequence of
/// messages the peer sends (`next_message`): command names of every access rule, aliases,
/// `REPLY` with the tags of the node's real requests, the error words, `HI`, `HELLO`, `BYE`,
/// literals. The node sends the peer requests (at once when it dials, and when the peer calls
/// `pub.call`), replies to every request command and sends a note for `pub.cmd`.
///
/// Checks, besides no panic: a job is only ever handed out for a command whose category's rule
/// the peer satisfies (the harness judges with its own copy of the rules), with the peer's auth
/// level, and for a message the peer really sent (command, tag, data), each at most once;
/// a request's reply is only ever data the peer sent under that request's tag, an error reply
/// only a word the peer sent, and every request ends exactly once (after the timeouts);
/// outputs name only the connection the harness has, and the bytes the node sends are bounded
/// by a constant plus 9 × what the peer sent plus a constant per harness call.
pub fn fuzz_application(data: &[u8]) {
    run(data);
}

/// What one execution reached, for the tests that check the seeds go deep.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
struct Reached {
    commands: usize,
    replies_ok: usize,
    replies_err: usize,
    requests: usize,
    closed: bool,
}

fn run(data: &[u8]) -> Reached {
    let Some((&h, mut payload)) = data.split_first() else {
        return Reached::default();
    };
    let setup = Setup::parse(h);
    let mut app = App::new(setup);
    app.open();
    // At most 64 messages: the default 4 KiB input would otherwise allow thousands.
    for _ in 0..64 {
        let tags = app.ledger.tags.clone();
        let Some((wait, parts)) = next_message(&mut payload, &tags) else {
            break;
        };
        if wait {
            app.advance(Duration::from_secs(4));
        }
        app.peer_send(parts);
    }
    // Past every request's timeout, the handshake timeout and the heartbeats.
    app.advance(Duration::from_secs(11));
    app.advance(Duration::from_secs(61));
    app.advance(Duration::from_secs(61));

    let l = &app.ledger;
    assert_eq!(
        l.resolved.len(),
        l.requests.len(),
        "a request never ended: {} made, {} ended",
        l.requests.len(),
        l.resolved.len()
    );
    assert!(
        l.jobs <= l.peer_messages + l.requests.len() + 4,
        "{} jobs from {} peer messages",
        l.jobs,
        l.peer_messages
    );
    assert!(
        app.to_peer <= SLACK + 9 * app.to_node + PER_CALL * l.calls,
        "amplification: {} bytes to the peer for {} from it",
        app.to_peer,
        app.to_node
    );
    Reached {
        commands: l.commands,
        replies_ok: l.replies_ok,
        replies_err: l.replies_err,
        requests: l.requests.len(),
        closed: app.closed,
    }
}

/// One part of a message in an application seed.
#[derive(Debug, Clone, Copy)]
pub enum AppPart<'a> {
    /// These bytes (as a word selector when they are one of the target's words).
    Bytes(&'a [u8]),
    /// The tag of the i-th request the peer received from the node.
    Tag(u8),
}

/// Encodes an input for [`fuzz_application`]: the header byte, then each message (at most four
/// parts each; `wait` lets 4 s pass before it) in the target's selector encoding.
///
/// # Panics
///
/// If a message has no part or more than four, or a literal is longer than 127 bytes.
#[must_use]
pub fn application_input(header: u8, messages: &[(bool, &[AppPart<'_>])]) -> Vec<u8> {
    let mut out = vec![header];
    for (wait, parts) in messages {
        assert!((1..=4).contains(&parts.len()), "1 to 4 parts per message");
        out.push(u8::from(*wait) << 7 | (parts.len() as u8 - 1));
        for p in *parts {
            match p {
                AppPart::Tag(i) => out.push(TAG_SELECTOR + i),
                AppPart::Bytes(b) => match WORDS.iter().position(|w| w == b) {
                    Some(i) => out.push(i as u8),
                    None => {
                        assert!(b.len() < 128, "literal too long");
                        out.push(LITERAL + b.len() as u8);
                        out.extend_from_slice(b);
                    }
                },
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{AppPart, Reached, application_input, run};

    const fn b(bytes: &[u8]) -> AppPart<'_> {
        AppPart::Bytes(bytes)
    }

    #[test]
    fn incoming_null_peer_reaches_commands_by_access_rule_and_replies() {
        // Incoming, NULL, Basic, HI first.
        let input = application_input(
            0x48,
            &[
                (false, &[b(b"pub.cmd"), b(b"x")]),
                (false, &[b(b"pub.req"), b(b"t1"), b(b"data")]),
                (false, &[b(b"basic.req"), b(b"t2")]),
                (false, &[b(b"admin.req"), b(b"t3")]),
                (false, &[b(b"sn.req"), b(b"t4")]),
                (false, &[b(b"lsn.req"), b(b"t5")]),
                (false, &[b(b"pub.req")]),
                (false, &[b(b"pub.call"), b(b"t6")]),
                (false, &[b(b"REPLY"), AppPart::Tag(0), b(b"answer")]),
            ],
        );
        let r = run(&input);
        assert_eq!(
            r,
            Reached {
                commands: 4,
                replies_ok: 1,
                replies_err: 0,
                requests: 1,
                closed: false
            }
        );
    }

    #[test]
    fn local_and_remote_service_node_rules_open_their_categories() {
        // Incoming CURVE, level Admin, local SN, peer SN, HI first.
        let input = application_input(
            0x7e,
            &[
                (false, &[b(b"sn.req"), b(b"t1")]),
                (false, &[b(b"lsn.req"), b(b"t2")]),
                (false, &[b(b"all.req"), b(b"t3")]),
                (false, &[b(b"old.admin"), b(b"t4")]),
            ],
        );
        assert_eq!(run(&input).commands, 4);
        // The same without the service-node bits: only the alias of admin.req gets through.
        let input = application_input(
            0x4e,
            &[
                (false, &[b(b"sn.req"), b(b"t1")]),
                (false, &[b(b"lsn.req"), b(b"t2")]),
                (false, &[b(b"all.req"), b(b"t3")]),
                (false, &[b(b"old.admin"), b(b"t4")]),
            ],
        );
        assert_eq!(run(&input).commands, 1);
    }

    #[test]
    fn outgoing_curve_link_takes_replies_and_error_words() {
        // Outgoing, CURVE, level None, HI/HELLO by the harness.
        let input = application_input(
            0x47,
            &[
                (false, &[b(b"REPLY"), AppPart::Tag(0), b(b"a")]),
                (false, &[b(b"FORBIDDEN"), b(b"REPLY"), AppPart::Tag(1)]),
                (false, &[b(b"pub.cmd")]),
                (false, &[b(b"basic.cmd")]),
            ],
        );
        let r = run(&input);
        assert_eq!(
            r,
            Reached {
                commands: 1,
                replies_ok: 1,
                replies_err: 1,
                requests: 2,
                closed: false
            }
        );
    }

    #[test]
    fn denied_peer_gets_nothing() {
        let input = application_input(0x40, &[(false, &[b(b"pub.cmd")])]);
        let r = run(&input);
        assert_eq!(r.commands, 0);
        assert!(r.closed);
    }
}
