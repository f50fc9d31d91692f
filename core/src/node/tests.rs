//! Unit tests of the node through a small in-memory harness: nodes joined by byte pipes on a
//! virtual clock, jobs run inline by scripted handlers. (The full simulator, with faults and
//! many nodes, lives in the `lokimq-tests` crate.)

use crate::registry::CategoryOptions;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::println;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::auth::Access;
use crate::registry::RegistryBuilder;

type Handler = Box<dyn FnMut(&mut Node<ChaCha20Rng>, Instant, &Message)>;

/// One node plus what the harness needs to drive it.
struct TestNode {
    node: Node<ChaCha20Rng>,
    handlers: BTreeMap<crate::ids::CommandId, Handler>,
    listeners: BTreeMap<ListenerId, Address>,
    allow: AuthLevel,
    sn_addresses: BTreeMap<PublicKey, Address>,
    replies: Vec<(RequestId, Result<Vec<Bytes>, RequestError>)>,
    connected: Vec<ConnectionId>,
    failed: Vec<(ConnectionId, ConnectError)>,
    /// `Event::PeerDisconnected`: (peer, cause, reconnecting).
    disconnects: Vec<(ConnectionId, DisconnectReason, bool)>,
    /// `Event::LinkFailed`.
    link_failures: Vec<(ConnectionId, ConnectError)>,
    events: Vec<String>,
}

/// The harness: nodes, byte pipes, a clock.
struct Net {
    now: Instant,
    nodes: Vec<TestNode>,
    /// (node, conn) → (peer node, peer conn), once the simulated TCP connection exists.
    pipes: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    /// Bytes in flight, delivered in order on the next step (`None`: the sender closed, so
    /// the receiver sees end of stream after everything sent before).
    wire: VecDeque<(usize, ConnId, Option<Bytes>)>,
    /// Connects that must be accepted.
    dials: VecDeque<(usize, ConnId, Address)>,
    /// Split every transmit into chunks of this size (1 = byte at a time).
    chunk: usize,
}

fn keypair(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

fn registry() -> Registry {
    let mut b = RegistryBuilder::new();
    b.add_category("public", CategoryOptions::new(Access::default()))
        .unwrap();
    b.add_command("public", "hello").unwrap();
    b.add_request_command("public", "echo").unwrap();
    b.add_category("admin", CategoryOptions::new(AuthLevel::Admin))
        .unwrap();
    b.add_request_command("admin", "echo").unwrap();
    b.add_category(
        "sn",
        CategoryOptions::new(Access {
            auth: AuthLevel::None,
            remote_sn: true,
            local_sn: false,
        }),
    )
    .unwrap();
    b.add_request_command("sn", "echo").unwrap();
    b.add_command_alias("legacy.echo", "public.echo").unwrap();
    b.build()
}

impl Net {
    fn new() -> Self {
        Self {
            now: Instant::from_secs(1),
            nodes: Vec::new(),
            pipes: BTreeMap::new(),
            wire: VecDeque::new(),
            dials: VecDeque::new(),
            chunk: usize::MAX,
        }
    }

    fn add(&mut self, seed: u8, config: Config) -> usize {
        let reg = registry();
        let echo = reg.lookup(b"public.echo").unwrap().command;
        let admin_echo = reg.lookup(b"admin.echo").unwrap().command;
        let sn_echo = reg.lookup(b"sn.echo").unwrap().command;
        let hello = reg.lookup(b"public.hello").unwrap().command;
        let node = Node::new(
            config,
            reg,
            keypair(seed),
            ChaCha20Rng::seed_from_u64(u64::from(seed)),
            self.now,
        )
        .unwrap();
        let mut handlers: BTreeMap<_, Handler> = BTreeMap::new();
        for c in [echo, admin_echo, sn_echo] {
            handlers.insert(
                c,
                Box::new(|n, now, m| {
                    n.reply(now, &m.reply_to, m.data.clone()).unwrap();
                }),
            );
        }
        handlers.insert(
            hello,
            Box::new(|n, now, m| {
                n.send_back(now, &m.reply_to, "public.hi", m.data.clone())
                    .unwrap();
            }),
        );
        self.nodes.push(TestNode {
            node,
            handlers,
            listeners: BTreeMap::new(),
            allow: AuthLevel::None,
            sn_addresses: BTreeMap::new(),
            replies: Vec::new(),
            connected: Vec::new(),
            failed: Vec::new(),
            disconnects: Vec::new(),
            link_failures: Vec::new(),
            events: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Node `n` sends a request with the default options at `now`.
    fn request(
        &mut self,
        n: usize,
        now: Instant,
        to: &ConnectionId,
        command: &'static str,
        data: Vec<Bytes>,
    ) -> RequestId {
        self.nodes[n]
            .node
            .request(now, to, command, data, &RequestOptions::default())
            .unwrap()
    }

    /// Requests an echo command from node `n` now, settles, and checks that the only reply
    /// node `n` has is `parts` for it.
    fn assert_echo(
        &mut self,
        n: usize,
        to: &ConnectionId,
        command: &'static str,
        parts: &[&'static [u8]],
    ) {
        let parts: Vec<Bytes> = parts.iter().map(|p| Bytes::from_static(p)).collect();
        let now = self.now;
        let req = self.request(n, now, to, command, parts.clone());
        self.settle();
        assert_eq!(self.nodes[n].replies, vec![(req, Ok(parts))]);
    }

    fn pubkey(&self, n: usize) -> PublicKey {
        *self.nodes[n].node.pubkey()
    }

    /// Drains node `n`'s outputs, acting on each; true if there were any.
    fn drain(&mut self, n: usize) -> bool {
        let mut moved = false;
        while let Some(out) = self.nodes[n].node.poll_output() {
            moved = true;
            match out {
                Output::Transmit { conn, data } => {
                    if let Some(&(peer, peer_conn)) = self.pipes.get(&(n, conn)) {
                        let mut rest = data;
                        while !rest.is_empty() {
                            let take = rest.len().min(self.chunk);
                            self.wire
                                .push_back((peer, peer_conn, Some(rest.split_to(take))));
                        }
                    }
                }
                Output::Connect { conn, addr } => self.dials.push_back((n, conn, addr)),
                Output::Close { conn, .. } => {
                    if let Some((peer, peer_conn)) = self.pipes.remove(&(n, conn)) {
                        self.pipes.remove(&(peer, peer_conn));
                        self.wire.push_back((peer, peer_conn, None));
                    }
                }
                Output::Unlisten { listener } => {
                    self.nodes[n].listeners.remove(&listener);
                }
                Output::Listen { listener, addr } => {
                    self.nodes[n].listeners.insert(listener, addr);
                }
                Output::RunJob { worker, job } => {
                    let now = self.now;
                    match job {
                        Job::Command { command, message } => {
                            let mut h = self.nodes[n].handlers.remove(&command).unwrap();
                            h(&mut self.nodes[n].node, now, &message);
                            self.nodes[n].handlers.insert(command, h);
                        }
                        Job::Reply { request, result } => {
                            self.nodes[n].replies.push((request, result));
                        }
                        Job::Connected { conn } => self.nodes[n].connected.push(conn),
                        Job::ConnectFailed { conn, error } => {
                            self.nodes[n].failed.push((conn, error));
                        }
                        other => self.nodes[n].events.push(alloc::format!("{other:?}")),
                    }
                    self.nodes[n]
                        .node
                        .handle(now, Input::JobFinished { worker })
                        .expect("input accepted");
                }
                Output::StopWorker { .. } => {}
                Output::Event(Event::AuthRequest { conn, .. }) => {
                    let level = self.nodes[n].allow;
                    let now = self.now;
                    self.nodes[n]
                        .node
                        .handle(now, Input::AuthDecision { conn, level })
                        .expect("input accepted");
                }
                Output::Event(Event::LookupSn { pubkey }) => {
                    let address = self.nodes[n].sn_addresses.get(&pubkey).cloned();
                    let now = self.now;
                    self.nodes[n]
                        .node
                        .handle(now, Input::SnAddress { pubkey, address })
                        .expect("input accepted");
                }
                Output::Event(Event::PeerDisconnected {
                    conn,
                    cause,
                    reconnecting,
                    ..
                }) => self.nodes[n].disconnects.push((conn, cause, reconnecting)),
                Output::Event(Event::LinkFailed { conn, error }) => {
                    self.nodes[n].link_failures.push((conn, error));
                }
                Output::Event(e) => self.nodes[n].events.push(alloc::format!("{e:?}")),
            }
        }
        moved
    }

    /// Runs until nothing moves, then returns. Bounded.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            for n in 0..self.nodes.len() {
                moved |= self.drain(n);
            }
            if let Some((n, conn, addr)) = self.dials.pop_front() {
                let target = self.nodes.iter().enumerate().find_map(|(i, t)| {
                    t.listeners
                        .iter()
                        .find(|(_, a)| a.zmq_address() == addr.zmq_address())
                        .map(|(l, _)| (i, *l))
                });
                let now = self.now;
                match target {
                    Some((peer, listener)) => {
                        let peer_conn = self.nodes[peer]
                            .node
                            .accept(now, listener, "127.0.0.1")
                            .unwrap();
                        self.pipes.insert((n, conn), (peer, peer_conn));
                        self.pipes.insert((peer, peer_conn), (n, conn));
                        self.nodes[n]
                            .node
                            .handle(now, Input::Connected { conn })
                            .expect("input accepted");
                    }
                    None => self.nodes[n]
                        .node
                        .handle(
                            now,
                            Input::Disconnected {
                                conn,
                                cause: DisconnectCause::Refused,
                            },
                        )
                        .expect("input accepted"),
                }
                continue;
            }
            if let Some((n, conn, data)) = self.wire.pop_front() {
                let now = self.now;
                let input = match data {
                    Some(data) => Input::Received { conn, data },
                    None => Input::Disconnected {
                        conn,
                        cause: DisconnectCause::Eof,
                    },
                };
                self.nodes[n]
                    .node
                    .handle(now, input)
                    .expect("input accepted");
                continue;
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Advances the clock to `t`, firing timeouts on the way.
    fn advance_to(&mut self, t: Instant) {
        for _ in 0..100_000 {
            self.settle();
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.node.poll_timeout())
                .min()
                .filter(|&d| d <= t);
            let Some(d) = next else {
                self.now = t;
                self.settle();
                return;
            };
            self.now = self.now.max(d);
            for n in 0..self.nodes.len() {
                if self.nodes[n]
                    .node
                    .poll_timeout()
                    .is_some_and(|x| x <= self.now)
                {
                    let now = self.now;
                    self.nodes[n]
                        .node
                        .handle(now, Input::Timeout)
                        .expect("input accepted");
                }
            }
        }
        panic!("timers did not settle");
    }

    fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.advance_to(t);
    }

    /// Node `n` vanishes from the network: its listeners stop accepting (later dials are
    /// refused) and every peer of its connections sees end of stream. The node itself is left
    /// alone (it is not told anything).
    fn vanish(&mut self, n: usize) {
        self.nodes[n].listeners.clear();
        let ours: Vec<(ConnId, (usize, ConnId))> = self
            .pipes
            .iter()
            .filter(|((m, _), _)| *m == n)
            .map(|(&(_, c), &peer)| (c, peer))
            .collect();
        for (c, (peer, peer_conn)) in ours {
            self.pipes.remove(&(n, c));
            self.pipes.remove(&(peer, peer_conn));
            let now = self.now;
            self.nodes[peer]
                .node
                .handle(
                    now,
                    Input::Disconnected {
                        conn: peer_conn,
                        cause: DisconnectCause::Eof,
                    },
                )
                .expect("input accepted");
        }
        self.wire.retain(|(m, _, _)| *m != n);
    }

    /// Node `n` comes back: its listeners accept again.
    fn reappear(&mut self, n: usize, listeners: BTreeMap<ListenerId, Address>) {
        self.nodes[n].listeners = listeners;
    }
}

fn quiet_config() -> Config {
    let mut c = Config::new(2);
    c.heartbeat_interval = Duration::ZERO;
    c
}

fn tcp(port: u16) -> Address {
    Address::tcp("127.0.0.1", port)
}

fn curve_addr(port: u16, pk: &PublicKey) -> Address {
    Address::tcp_curve("127.0.0.1", port, *pk)
}

/// A server (seed 1) listening for CURVE on `port`, settled, and a client (seed 2).
/// Returns (server, client, server key).
fn curve_nodes(net: &mut Net, port: u16) -> (usize, usize, PublicKey) {
    let server = net.add(1, quiet_config());
    let client = net.add(2, quiet_config());
    let now = net.now;
    net.nodes[server].node.listen_curve(now, tcp(port)).unwrap();
    net.settle();
    (server, client, net.pubkey(server))
}

/// A server listening for CURVE on port 4000 and a client connecting to it at the current
/// time; the connect is not settled yet. Returns (server, client, connection).
fn curve_pair(net: &mut Net) -> (usize, usize, ConnectionId) {
    let (server, client, spk) = curve_nodes(net, 4000);
    let now = net.now;
    let conn = net.nodes[client].node.connect_remote(
        now,
        curve_addr(4000, &spk),
        &ConnectOptions::default(),
    );
    (server, client, conn)
}

#[test]
fn remote_request_over_curve_gets_a_reply() {
    let mut net = Net::new();
    let (_, client, conn) = curve_pair(&mut net);
    net.settle();
    assert_eq!(net.nodes[client].connected, vec![conn.clone()]);
    net.assert_echo(client, &conn, "public.echo", &[b"abc", b""]);
}

#[test]
fn byte_at_a_time_delivery_gives_the_same_result() {
    let mut net = Net::new();
    net.chunk = 1;
    let (_, client, conn) = curve_pair(&mut net);
    net.assert_echo(client, &conn, "legacy.echo", &[b"x"]);
}

#[test]
fn auth_failures_come_back_as_request_errors() {
    let mut net = Net::new();
    let server = net.add(1, quiet_config());
    let client = net.add(2, quiet_config());
    let now = net.now;
    net.nodes[server].node.listen_plain(now, tcp(4001)).unwrap();
    net.settle();
    let conn = net.nodes[client]
        .node
        .connect_remote(now, tcp(4001), &ConnectOptions::default());
    net.settle();
    let now = net.now;
    let opts = RequestOptions::default();
    let a = net.nodes[client]
        .node
        .request(now, &conn, "admin.echo", vec![], &opts)
        .unwrap();
    let b = net.nodes[client]
        .node
        .request(now, &conn, "sn.echo", vec![], &opts)
        .unwrap();
    let c = net.nodes[client]
        .node
        .request(now, &conn, "nope.nope", vec![], &opts)
        .unwrap();
    net.settle();
    let r = &net.nodes[client].replies;
    assert!(r.contains(&(a, Err(RequestError::Forbidden))), "{r:?}");
    assert!(r.contains(&(b, Err(RequestError::ForbiddenSn))), "{r:?}");
    assert!(r.contains(&(c, Err(RequestError::UnknownCommand))), "{r:?}");
}

#[test]
fn requests_time_out() {
    let mut net = Net::new();
    let client = net.add(2, quiet_config());
    let now = net.now;
    // Nobody listens: with OxenMQ's policy the connect is refused and retried until the
    // connect timeout (10 s); the request fails when the link is given up.
    let opts = ConnectOptions {
        retry_refused: true,
        ..ConnectOptions::default()
    };
    let conn = net.nodes[client].node.connect_remote(now, tcp(4999), &opts);
    let req = net.request(client, now, &conn, "public.echo", vec![]);
    net.advance(Duration::from_secs(11));
    assert_eq!(
        net.nodes[client].failed,
        vec![(conn.clone(), ConnectError::TimedOut)]
    );
    assert_eq!(
        net.nodes[client].failed[0].1.to_string(),
        "connection attempt timed out"
    );
    // Closing the link failed the request at once, without waiting for its own timeout.
    assert_eq!(
        net.nodes[client].replies,
        vec![(req, Err(RequestError::Disconnected))]
    );
    println!("{:?}", net.nodes[client].events);
}

#[test]
fn sn_send_opens_a_connection_via_lookup_and_expires_when_idle() {
    let mut net = Net::new();
    let (server, client, spk) = curve_nodes(&mut net, 4002);
    let now = net.now;
    net.nodes[client].sn_addresses.insert(spk, tcp(4002));
    let mut sns = BTreeSet::new();
    sns.insert(net.pubkey(client));
    net.nodes[server].node.set_active_sns(now, sns);
    let to = ConnectionId::Sn(spk);
    net.assert_echo(client, &to, "sn.echo", &[b"q"]);
    assert!(net.nodes[client].node.has_outgoing_sn(&spk));
    // Default send keep-alive is 30 s: still open just before, closed exactly at the deadline.
    let opened = now;
    net.advance_to(opened + Duration::from_secs(30) - Duration::from_micros(1));
    assert!(net.nodes[client].node.has_outgoing_sn(&spk));
    net.advance_to(opened + Duration::from_secs(30));
    assert!(!net.nodes[client].node.has_outgoing_sn(&spk));
}

#[test]
fn inproc_connection_is_admin() {
    let mut net = Net::new();
    let n = net.add(3, quiet_config());
    let now = net.now;
    let conn = net.nodes[n].node.connect_inproc(now, None);
    net.settle();
    assert_eq!(net.nodes[n].connected, vec![conn.clone()]);
    net.assert_echo(n, &conn, "admin.echo", &[b"z"]);
}

#[test]
fn unsent_backlog_over_the_limit_refuses_sends_until_flushed() {
    let mut net = Net::new();
    let (_, client, conn) = curve_pair(&mut net);
    net.nodes[client].node.config.send_backlog_limit = Some(BacklogLimit {
        messages: 3,
        bytes: 2000,
    });
    net.settle();
    assert_eq!(net.nodes[client].connected, vec![conn.clone()]);
    let transport = net
        .pipes
        .keys()
        .find(|(n, _)| *n == client)
        .map(|&(_, c)| c)
        .expect("the client's transport connection");
    let now = net.now;
    let big = || vec![Bytes::from(vec![7u8; 4000])];
    // The harness never writes for real: report the handshake as written, then one 4 kB
    // message puts the backlog over the limit.
    let node = &mut net.nodes[client].node;
    node.handle(
        now,
        Input::Flushed {
            conn: transport,
            unsent: 0,
        },
    )
    .expect("input accepted");
    assert_eq!(
        node.send(now, &conn, "public.hello", big(), &SendOptions::default()),
        Ok(())
    );
    let refused = node.send(now, &conn, "public.hello", big(), &SendOptions::default());
    assert!(
        matches!(refused, Err(SendError::WouldBlock(_))),
        "{refused:?}"
    );
    // A request is refused the same way (and no reply job will come for it).
    assert!(matches!(
        node.request(now, &conn, "public.echo", big(), &RequestOptions::default()),
        Err(SendError::WouldBlock(_))
    ));
    // The driver wrote some bytes but not enough: still refused.
    node.handle(
        now,
        Input::Flushed {
            conn: transport,
            unsent: 2500,
        },
    )
    .expect("input accepted");
    assert!(
        node.send(now, &conn, "public.hello", big(), &SendOptions::default())
            .is_err()
    );
    // Written out: accepted again.
    node.handle(
        now,
        Input::Flushed {
            conn: transport,
            unsent: 10,
        },
    )
    .expect("input accepted");
    assert_eq!(
        node.send(now, &conn, "public.hello", big(), &SendOptions::default()),
        Ok(())
    );
    // The message count is a bound too: small messages, all unsent, stop at three.
    node.handle(
        now,
        Input::Flushed {
            conn: transport,
            unsent: 0,
        },
    )
    .expect("input accepted");
    let small = || vec![Bytes::from_static(b"x")];
    for _ in 0..3 {
        assert_eq!(
            node.send(now, &conn, "public.hello", small(), &SendOptions::default()),
            Ok(())
        );
    }
    assert!(matches!(
        node.send(now, &conn, "public.hello", small(), &SendOptions::default()),
        Err(SendError::WouldBlock(_))
    ));
    // Written up to the end of the first one: one slot frees.
    let unsent = node.conns.get(transport).unwrap().unsent;
    node.handle(
        now,
        Input::Flushed {
            conn: transport,
            unsent: unsent * 2 / 3,
        },
    )
    .expect("input accepted");
    assert_eq!(
        node.send(now, &conn, "public.hello", small(), &SendOptions::default()),
        Ok(())
    );
    assert!(
        node.send(now, &conn, "public.hello", small(), &SendOptions::default())
            .is_err()
    );
    net.settle();
    net.advance(Duration::from_secs(60));
    assert!(
        net.nodes[client].replies.is_empty(),
        "a refused request left a reply job"
    );
}

#[test]
fn accept_refuses_past_the_incoming_connection_cap() {
    let mut net = Net::new();
    let mut config = quiet_config();
    config.max_incoming_connections = 2;
    let server = net.add(1, config);
    let now = net.now;
    net.nodes[server].node.listen_plain(now, tcp(4000)).unwrap();
    net.settle();
    let listener = *net.nodes[server].listeners.keys().next().unwrap();
    let node = &mut net.nodes[server].node;
    let a = node.accept(now, listener, "10.0.0.1").unwrap();
    node.accept(now, listener, "10.0.0.2").unwrap();
    assert!(matches!(
        node.accept(now, listener, "10.0.0.3"),
        Err(NodeError::TooManyConnections(2))
    ));
    // A closed connection frees its place.
    node.handle(
        now,
        Input::Disconnected {
            conn: a,
            cause: DisconnectCause::Eof,
        },
    )
    .expect("input accepted");
    while node.poll_output().is_some() {}
    node.accept(now, listener, "10.0.0.3").unwrap();
}

#[test]
fn embedder_chosen_connection_and_timer_ids() {
    let mut net = Net::new();
    let (_, client, spk) = curve_nodes(&mut net, 4000);
    let now = net.now;
    let node = &mut net.nodes[client].node;
    let opts = ConnectOptions::default();
    let chosen = node
        .connect_remote_as(now, 40, curve_addr(4000, &spk), &opts)
        .unwrap();
    assert_eq!(
        chosen,
        ConnectionId::Outgoing {
            id: 40,
            pubkey: Some(spk)
        }
    );
    // Taken and reserved ids are refused; automatic ids stay above every chosen one.
    assert!(matches!(
        node.connect_remote_as(now, 40, curve_addr(4000, &spk), &opts),
        Err(NodeError::ConnectionIdInUse(40))
    ));
    assert!(matches!(
        node.connect_inproc_as(now, 0, None),
        Err(NodeError::ConnectionIdInUse(0))
    ));
    let inproc = node.connect_inproc_as(now, 7, None).unwrap();
    let auto = node.connect_inproc(now, None);
    assert!(
        matches!(auto, ConnectionId::Outgoing { id: 41, .. }),
        "{auto:?}"
    );

    let second = Duration::from_secs(1);
    node.add_timer_as(now, TimerId(9), second, true, TimerTarget::Worker)
        .unwrap();
    assert!(matches!(
        node.add_timer_as(now, TimerId(9), second, true, TimerTarget::Worker),
        Err(NodeError::Sched(sched::SchedError::TimerIdInUse(TimerId(
            9
        ))))
    ));
    assert!(
        node.add_timer_as(now, TimerId(0), second, true, TimerTarget::Worker)
            .is_err()
    );
    assert_eq!(
        node.add_timer(now, second, true, TimerTarget::Worker)
            .unwrap(),
        TimerId(10)
    );
    // A cancelled and released timer's id may be used again.
    assert!(node.cancel_timer(now, TimerId(9)));
    node.add_timer_as(now, TimerId(9), second, true, TimerTarget::Worker)
        .unwrap();

    // The chosen-id connections work like automatic ones.
    net.settle();
    let connected = &net.nodes[client].connected;
    for conn in [&chosen, &inproc, &auto] {
        assert!(
            connected.contains(conn),
            "{conn:?} not connected: {connected:?}"
        );
    }
    net.assert_echo(client, &chosen, "public.echo", &[b"q"]);
}

// ---------------------------------------------------------------------------------------------
// extreme configurations

/// Every duration of the configuration at `Duration::MAX` (meant as "never"): no call
/// sequence may panic (the crate promises that none does), nothing overflows, and time can run
/// to the end of the representable range without a timer firing in a loop there.
#[test]
fn extreme_durations_never_panic() {
    let mut config = Config::new(1);
    for d in [
        &mut config.handshake_timeout,
        &mut config.heartbeat_interval,
        &mut config.heartbeat_timeout,
        &mut config.reconnect_interval,
        &mut config.reconnect_interval_max,
        &mut config.close_linger,
        &mut config.send_keep_alive,
        &mut config.connect_sn_keep_alive,
        &mut config.remote_connect_timeout,
        &mut config.inproc_connect_timeout,
        &mut config.request_timeout,
    ] {
        *d = Duration::MAX;
    }
    let mut net = Net::new();
    let server = net.add(1, config.clone());
    let client = net.add(2, config.clone());
    let now = net.now;
    net.nodes[server].node.listen_curve(now, tcp(4000)).unwrap();
    net.settle();
    let spk = net.pubkey(server);
    // A connection that comes up, a request on it, and a service-node connection by hint.
    let conn = net.nodes[client].node.connect_remote(
        now,
        curve_addr(4000, &spk),
        &ConnectOptions::default(),
    );
    net.settle();
    assert_eq!(net.nodes[client].connected, vec![conn.clone()]);
    net.assert_echo(client, &conn, "public.echo", &[b"x"]);
    let opts = SendOptions {
        hint: Some(tcp(4000)),
        keep_alive: Some(Duration::MAX),
        ..SendOptions::default()
    };
    let now = net.now;
    net.nodes[client]
        .node
        .send(now, &ConnectionId::Sn(spk), "public.hello", vec![], &opts)
        .unwrap();
    // Refused attempts retried with a `Duration::MAX` back-off (never again), and ones that
    // fail at once; a request with a `Duration::MAX` timeout on each.
    let retrying = ConnectOptions {
        retry_refused: true,
        timeout: Some(Duration::MAX),
        ..ConnectOptions::default()
    };
    let dead = net.nodes[client]
        .node
        .connect_remote(now, tcp(4999), &retrying);
    let failing = net.nodes[client]
        .node
        .connect_remote(now, tcp(4998), &ConnectOptions::default());
    let slow = RequestOptions {
        timeout: Some(Duration::MAX),
        ..RequestOptions::default()
    };
    for to in [&dead, &failing] {
        let _ = net.nodes[client]
            .node
            .request(now, to, "public.echo", vec![], &slow);
    }
    net.nodes[client]
        .node
        .add_timer(now, Duration::MAX, false, TimerTarget::Worker)
        .unwrap();
    let inproc = net.nodes[client].node.connect_inproc(now, None);
    net.settle();
    assert!(net.nodes[client].connected.contains(&inproc));
    assert_eq!(
        net.nodes[client].failed,
        vec![(failing, ConnectError::Refused)]
    );
    // Thousands of years pass: nothing is due.
    net.advance(Duration::from_secs(1 << 40));
    assert!(net.nodes[client].node.is_connected(&conn));
    // A lingering disconnect for ever, and the end of time itself.
    let now = net.now;
    net.nodes[client]
        .node
        .disconnect(now, &dead, Duration::MAX)
        .unwrap();
    net.advance_to(Instant::MAX);
    net.advance_to(Instant::MAX);
    for n in [client, server] {
        net.nodes[n].node.shutdown(Instant::MAX);
    }
    net.settle();
}

// ---------------------------------------------------------------------------------------------
// connection failures, typed

#[test]
fn a_refused_connect_fails_at_once_with_refused() {
    let mut net = Net::new();
    let client = net.add(2, quiet_config());
    let now = net.now;
    let conn = net.nodes[client]
        .node
        .connect_remote(now, tcp(4999), &ConnectOptions::default());
    let req = net.request(client, now, &conn, "public.echo", vec![]);
    net.settle();
    assert_eq!(
        net.nodes[client].failed,
        vec![(conn.clone(), ConnectError::Refused)]
    );
    assert_eq!(
        net.nodes[client].replies,
        vec![(req, Err(RequestError::Disconnected))]
    );
    assert_eq!(net.nodes[client].node.stats().links, 0);
    assert!(
        net.nodes[client].disconnects.is_empty(),
        "it never came up: no PeerDisconnected"
    );
}

#[test]
fn a_wrong_server_key_is_named() {
    let mut net = Net::new();
    let (server, client, _) = curve_nodes(&mut net, 4000);
    let wrong = *keypair(99).public();
    let now = net.now;
    let conn = net.nodes[client].node.connect_remote(
        now,
        curve_addr(4000, &wrong),
        &ConnectOptions::default(),
    );
    net.settle();
    assert_eq!(
        net.nodes[client].failed,
        vec![(
            conn,
            ConnectError::Handshake(HandshakeError::WrongServerKey)
        )]
    );
    assert!(net.nodes[server].disconnects.is_empty());
    assert_eq!(net.nodes[server].node.stats().connections, 0);
}

#[test]
fn a_mechanism_mismatch_is_named_both_ways() {
    let mut net = Net::new();
    let server = net.add(1, quiet_config());
    let client = net.add(2, quiet_config());
    let now = net.now;
    net.nodes[server].node.listen_plain(now, tcp(4000)).unwrap();
    net.nodes[server].node.listen_curve(now, tcp(4001)).unwrap();
    net.settle();
    let spk = net.pubkey(server);
    let curve_to_plain = net.nodes[client].node.connect_remote(
        now,
        curve_addr(4000, &spk),
        &ConnectOptions::default(),
    );
    let plain_to_curve =
        net.nodes[client]
            .node
            .connect_remote(now, tcp(4001), &ConnectOptions::default());
    net.settle();
    let failed = &net.nodes[client].failed;
    assert!(
        failed.contains(&(
            curve_to_plain,
            HandshakeError::MechanismMismatch {
                ours: crate::zmtp::Mechanism::Curve,
                theirs: Some(crate::zmtp::Mechanism::Null),
            }
            .into()
        )),
        "{failed:?}"
    );
    assert!(
        failed.contains(&(
            plain_to_curve,
            HandshakeError::MechanismMismatch {
                ours: crate::zmtp::Mechanism::Null,
                theirs: Some(crate::zmtp::Mechanism::Curve),
            }
            .into()
        )),
        "{failed:?}"
    );
}

#[test]
fn a_denial_by_the_listener_is_named_and_never_retried() {
    let mut net = Net::new();
    let (server, client, spk) = curve_nodes(&mut net, 4000);
    net.nodes[server].allow = AuthLevel::Denied;
    let now = net.now;
    // Even with OxenMQ's retrying policy, a ZMTP ERROR ends the connection at once.
    let opts = ConnectOptions {
        retry_refused: true,
        ..ConnectOptions::default()
    };
    let conn = net.nodes[client]
        .node
        .connect_remote(now, curve_addr(4000, &spk), &opts);
    net.settle();
    net.advance(Duration::from_secs(20));
    assert_eq!(
        net.nodes[client].failed,
        vec![(
            conn,
            HandshakeError::Denied {
                reason: crate::zmtp::WireText::from("400")
            }
            .into()
        )]
    );
    assert!(net.nodes[server].disconnects.is_empty(), "never came up");
}

#[test]
fn peer_disconnected_is_reported_once_on_each_side() {
    let mut net = Net::new();
    let (server, client, conn) = curve_pair(&mut net);
    net.settle();
    assert_eq!(net.nodes[client].connected, vec![conn.clone()]);
    let now = net.now;
    net.nodes[client]
        .node
        .disconnect(now, &conn, Duration::ZERO)
        .unwrap();

    net.settle();
    assert_eq!(
        net.nodes[client].disconnects,
        vec![(conn, DisconnectReason::Closed, false)]
    );
    let cpk = net.pubkey(client);
    let server_side = &net.nodes[server].disconnects;
    assert_eq!(server_side.len(), 1, "{server_side:?}");
    assert_eq!(server_side[0].0.pubkey(), Some(&cpk));
    assert_eq!(server_side[0].1, DisconnectReason::PeerClosed);
    assert!(net.nodes[client].link_failures.is_empty());
}

#[test]
fn requests_survive_a_drop_and_fail_when_the_reconnect_is_refused() {
    let mut net = Net::new();
    let (server, client, conn) = curve_pair(&mut net);
    net.settle();
    // The server node vanishes and comes back: the client's link drops, reconnects, and a
    // request made while it was down is answered over the new connection.
    let listeners = net.nodes[server].listeners.clone();
    net.vanish(server);
    net.reappear(server, listeners);
    let now = net.now;
    let during = net.request(
        client,
        now,
        &conn,
        "public.echo",
        vec![Bytes::from_static(b"d")],
    );
    net.advance(Duration::from_secs(1));
    assert_eq!(
        net.nodes[client].replies,
        vec![(during, Ok(vec![Bytes::from_static(b"d")]))]
    );
    assert_eq!(
        net.nodes[client].disconnects,
        vec![(conn.clone(), DisconnectReason::PeerClosed, true)]
    );
    // Now it vanishes for good: the reconnect is refused, the link is given up, and the
    // pending request fails at once with DISCONNECTED, long before its 15 s timeout.
    let now = net.now;
    let lost = net.request(client, now, &conn, "public.echo", vec![]);
    net.vanish(server);
    net.advance(Duration::from_secs(1));
    assert_eq!(
        net.nodes[client].replies[1],
        (lost, Err(RequestError::Disconnected))
    );
    assert_eq!(
        net.nodes[client].link_failures,
        vec![(conn.clone(), ConnectError::Refused)]
    );
    assert_eq!(net.nodes[client].disconnects.len(), 2);
    assert!(!net.nodes[client].node.is_connected(&conn));
    assert_eq!(net.nodes[client].failed, vec![], "it did come up once");
}
