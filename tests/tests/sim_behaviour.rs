//! Acceptance behaviours of behaviour.md §3.2–3.6 in the node-level simulator (the ones an
//! application can see are in `sim_app.rs`, on the public simulation API): request and connect
//! timeouts, idle expiry of service-node connections, keep-alives, reconnect back-off and
//! queued messages, ROUTER handover, the active service-node set, connection identity, auth,
//! in-process admin access, `disconnect`, and where replies go.

use lokimq_core::registry::{CategoryOptions, QueueLimit};
use std::collections::BTreeSet;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::node::{
    Config, ConnectError, ConnectOptions, ConnectSnOptions, ConnectionId, HandshakeError,
    NodeError, RequestError, RequestOptions, SendError, SendOptions,
};
use lokimq_core::registry::Registry;
use lokimq_core::session::{MechanismConfig, SessionConfig};
use lokimq_core::time::{Duration, Instant};
use lokimq_core::zmtp::SocketType;
use lokimq_tests::fixtures::{conformance_builder, echo, hello, quiet_config, strs, whoami};
use lokimq_tests::sim::{NodeSpec, Sim};

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The conformance categories plus `t` (public): `ping` and `pong` (recorded, no reply) and
/// request `slow` (replies after 2 s).
fn registry() -> Registry {
    let mut b = conformance_builder();
    b.add_category(
        "t",
        CategoryOptions::new(Access::default()).max_queue(QueueLimit::Unlimited),
    )
    .unwrap();
    b.add_command("t", "ping").unwrap();
    b.add_command("t", "pong").unwrap();
    b.add_request_command("t", "slow").unwrap();
    b.build()
}

fn spec(config: Config) -> NodeSpec {
    NodeSpec::new(config, registry())
        .handler("public.echo", echo)
        .handler("public.hello", hello)
        .handler("public.whoami", whoami)
        .handler("admin.echo", echo)
        .handler("sn.echo", echo)
        .handler("t.slow", |ctx, m| {
            ctx.take(secs(2));
            ctx.reply(m, m.data.clone());
        })
}

fn sn_spec(seed: u8) -> NodeSpec {
    let mut c = quiet_config(2);
    c.service_node = true;
    spec(c).keypair(Keypair::from_secret_bytes([seed; 32]))
}

/// `k` service nodes, each with a CURVE listener, knowing each other's addresses, with every
/// one of them in every active set.
fn sn_network(sim: &mut Sim, k: usize) -> Vec<usize> {
    let nodes: Vec<usize> = (0..k).map(|i| sim.add_node(sn_spec(i as u8 + 1))).collect();
    let mut addrs = Vec::new();
    for &n in &nodes {
        let (_, addr) = sim.listen_curve(n);
        addrs.push(addr);
    }
    for &n in &nodes {
        for (j, &m) in nodes.iter().enumerate() {
            let pk = sim.pubkey(m);
            sim.set_address(n, pk, addrs[j].clone());
        }
    }
    sim.set_active_sns_everywhere(&nodes);
    sim.run_until_idle();
    nodes
}

fn commands_named<'a>(sim: &'a Sim, n: usize, name: &str) -> Vec<&'a lokimq_core::node::Message> {
    sim.node(n)
        .commands
        .iter()
        .filter(|(_, c, _)| c == name)
        .map(|(_, _, m)| m)
        .collect()
}

fn plain_pair(seed: u64) -> (Sim, usize, usize, ConnectionId) {
    let mut sim = Sim::new(seed);
    let (server, client, conn) = sim.add_plain_pair(|| spec(quiet_config(2)));
    sim.run_until_idle();
    assert_eq!(sim.node(client).connected.len(), 1);
    (sim, server, client, conn)
}

// =============================================================================================
// §3.2 timeouts

#[test]
fn sim_default_request_timeout_is_15_seconds() {
    let mut sim = Sim::new(2);
    let client = sim.add_node(spec(quiet_config(1)));
    // A listener that completes the ZMTP handshake but never answers anything.
    let addr = Address::tcp("127.0.0.1", 6000);
    sim.tap_listen(
        &addr,
        Some(SessionConfig::new(
            SocketType::Router,
            MechanismConfig::Null,
        )),
    );
    let opts = ConnectOptions::default().timeout(secs(60));
    let conn = sim.connect_remote(client, addr, &opts);
    let t0 = sim.now();
    let r = sim
        .request_default(client, &conn, "public.echo", vec![])
        .unwrap();
    sim.run_until(t0 + secs(15) - US);
    assert!(sim.node(client).requests[&r].outcomes.is_empty());
    sim.run_until(t0 + secs(15));
    assert_eq!(
        sim.node(client).outcome(r),
        Some(&Err(RequestError::Timeout))
    );
}

#[test]
fn sim_pending_connect_remote_times_out() {
    let mut sim = Sim::new(3);
    let client = sim.add_node(spec(quiet_config(1)));
    // 1. The handshake completes but HELLO never comes: ConnectFailed at exactly 10 s, and the
    //    transport is closed.
    let addr = Address::tcp("127.0.0.1", 6001);
    let tl = sim.tap_listen(
        &addr,
        Some(SessionConfig::new(
            SocketType::Router,
            MechanismConfig::Null,
        )),
    );
    let t0 = sim.now();
    let conn = sim.connect_remote(client, addr, &ConnectOptions::default());
    sim.run_until(t0 + secs(10) - US);
    assert!(sim.node(client).connect_failed.is_empty());
    let tap = sim.tap_listener(tl).accepted[0];
    assert_eq!(sim.raw_take(tap), vec![strs(&["HI"])]);
    sim.run_until(t0 + secs(10));
    assert_eq!(
        sim.node(client).connect_failed,
        vec![(
            t0 + secs(10),
            conn.clone(),
            "connection attempt timed out".to_string()
        )]
    );
    sim.run_for(secs(1));
    assert!(
        sim.tap(tap).eof_at.is_some(),
        "the attempt's socket is closed"
    );
    assert_eq!(sim.node(client).node.stats().links, 0);
    // A send on the dead id is refused.
    assert!(matches!(
        sim.send_default(client, &conn, "x.y", vec![]),
        Err(SendError::NotConnected(_))
    ));
    // 2. Nobody listens, with OxenMQ's policy (`retry_refused`): refused, retried with
    //    back-off, and the same failure at the deadline (here a custom 3 s).
    let t1 = sim.now();
    let opts = ConnectOptions::default()
        .timeout(secs(3))
        .retry_refused(true);
    let dead = sim.connect_remote(client, Address::tcp("127.0.0.1", 6999), &opts);
    sim.run_until(t1 + secs(5));
    assert_eq!(
        sim.node(client).connect_failed[1],
        (
            t1 + secs(3),
            dead,
            "connection attempt timed out".to_string()
        )
    );
    let attempts = sim.node(client).dials.iter().filter(|d| d.0 >= t1).count();
    // 0, 0.252, 0.754, 1.756, (3.758 is past the deadline)
    assert_eq!(attempts, 4);
    assert!(sim.node(client).connected.is_empty());
}

// =============================================================================================
// §3.2 idle expiry and keep-alive

#[test]
fn sim_idle_sn_connection_expires_exactly_at_last_activity_plus_keep_alive() {
    let mut sim = Sim::new(4);
    sim.check_idle_expiry = true;
    let sns = sn_network(&mut sim, 2);
    let (a, b) = (sns[0], sns[1]);
    let pkb = sim.pubkey(b);
    let t0 = sim.now();
    sim.send_default(a, &ConnectionId::Sn(pkb), "t.ping", strs(&["1"]))
        .unwrap();
    sim.run_until(t0 + secs(20));
    // A send reusing the connection is activity: the deadline moves to t0 + 20 + 30.
    sim.send_default(a, &ConnectionId::Sn(pkb), "t.ping", strs(&["2"]))
        .unwrap();
    sim.run_until(t0 + secs(50) - US);
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
    sim.run_until(t0 + secs(50));
    assert!(
        !sim.node(a).node.has_outgoing_sn(&pkb),
        "closed at the deadline"
    );
    assert_eq!(commands_named(&sim, b, "t.ping").len(), 2);
    assert_eq!(
        sim.node(a).dials.len(),
        1,
        "the second send reused the connection"
    );

    // A command received on the outgoing connection is activity too: b answers over a's
    // connection (b has no outgoing one), which a receives one latency later.
    let t1 = sim.now();
    sim.send_default(a, &ConnectionId::Sn(pkb), "t.ping", strs(&["3"]))
        .unwrap();
    sim.run_until(t1 + secs(10));
    let pka = sim.pubkey(a);
    sim.send_default(b, &ConnectionId::Sn(pka), "t.pong", strs(&["back"]))
        .unwrap();
    assert!(
        !sim.node(b).node.has_outgoing_sn(&pka),
        "b reused the incoming connection"
    );
    sim.run_until(t1 + secs(40) + MS - US);
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
    assert_eq!(commands_named(&sim, a, "t.pong").len(), 1);
    sim.run_until(t1 + secs(40) + MS);
    assert!(!sim.node(a).node.has_outgoing_sn(&pkb));
}

#[test]
fn sim_active_sn_connection_never_expires() {
    let mut sim = Sim::new(5);
    sim.check_idle_expiry = true;
    let sns = sn_network(&mut sim, 2);
    let (a, b) = (sns[0], sns[1]);
    let pkb = sim.pubkey(b);
    let t0 = sim.now();
    for i in 0..12u64 {
        sim.run_until(t0 + secs(25 * i));
        sim.send_default(a, &ConnectionId::Sn(pkb), "t.ping", vec![])
            .unwrap();
        assert!(sim.node(a).node.has_outgoing_sn(&pkb), "at {i}");
    }
    sim.run_until_idle();
    assert_eq!(
        sim.node(a).dials.len(),
        1,
        "one connection for five minutes"
    );
    assert!(sim.node(a).closes.is_empty());
    assert_eq!(commands_named(&sim, b, "t.ping").len(), 12);
}

#[test]
fn sim_keep_alive_is_raised_never_lowered() {
    let mut sim = Sim::new(6);
    sim.check_idle_expiry = true;
    let sns = sn_network(&mut sim, 2);
    let (a, b) = (sns[0], sns[1]);
    let pkb = sim.pubkey(b);
    let sn = ConnectionId::Sn(pkb);
    let t0 = sim.now();
    let opts = |ka: u64| ConnectSnOptions::default().keep_alive(secs(ka));
    assert_eq!(sim.connect_sn(a, pkb, &opts(60)), sn);
    sim.run_until(t0 + secs(10));
    // A shorter keep-alive refreshes activity but does not lower the expiry: t0 + 10 + 60.
    let short = SendOptions::default().keep_alive(secs(10));
    sim.send(a, &sn, "t.ping", vec![], &short).unwrap();
    sim.run_until(t0 + secs(70) - US);
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
    sim.run_until(t0 + secs(70));
    assert!(!sim.node(a).node.has_outgoing_sn(&pkb));

    // connect_sn on an existing connection raises its keep-alive.
    let t1 = sim.now();
    sim.connect_sn(a, pkb, &opts(30));
    sim.run_until(t1 + secs(20));
    sim.connect_sn(a, pkb, &opts(120));
    sim.run_until(t1 + secs(140) - US);
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
    sim.run_until(t1 + secs(140));
    assert!(!sim.node(a).node.has_outgoing_sn(&pkb));

    // connect_sn's default keep-alive: the documented 5 minutes.
    let t2 = sim.now();
    sim.connect_sn(a, pkb, &ConnectSnOptions::default());
    sim.run_until(t2 + secs(300) - US);
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
    sim.run_until(t2 + secs(300));
    assert!(!sim.node(a).node.has_outgoing_sn(&pkb));
}

// =============================================================================================
// §3.3 reconnection

#[test]
fn sim_reconnect_back_off_doubles_from_250ms_to_5s() {
    // OxenMQ's policy (`retry_refused`): an established connection retries refused reconnects
    // for ever. (By default the first refused reconnect closes it: see sim_failures.rs.)
    let mut sim = Sim::new(7);
    let server = sim.add_node(spec(quiet_config(2)));
    let client = sim.add_node(spec(quiet_config(2)));
    let (_, addr) = sim.listen_plain(server);
    let opts = ConnectOptions::default().retry_refused(true);
    let conn = sim.connect_remote(client, addr, &opts);
    sim.run_until_idle();
    assert_eq!(sim.node(client).connected.len(), 1);
    sim.set_refusing(server, true);
    assert_eq!(sim.reset_between(client, server), 1);
    let tr = sim.now();
    // Let the client notice (bytes written before that are lost with the connection).
    sim.run_until(tr);
    // Messages sent while the connection is down are queued (in order)...
    for i in 0..5 {
        sim.send_default(client, &conn, "t.ping", strs(&[&i.to_string()]))
            .unwrap();
    }
    let long = RequestOptions::default().timeout(secs(30));
    let during = sim
        .request(client, &conn, "public.echo", strs(&["q"]), &long)
        .unwrap();
    let lost = sim
        .request_default(client, &conn, "public.echo", strs(&["q"]))
        .unwrap();
    sim.run_until(tr + secs(14));
    let dials: Vec<Instant> = sim
        .node(client)
        .dials
        .iter()
        .map(|d| d.0)
        .filter(|&t| t >= tr)
        .collect();
    // Each refusal takes a 2 ms round trip; the next attempt follows after the back-off.
    let mut expected = Vec::new();
    let mut t = tr + Duration::from_millis(250);
    for backoff in [500, 1000, 2000, 4000, 5000, 5000] {
        expected.push(t);
        t = t + 2 * MS + Duration::from_millis(backoff);
    }
    assert_eq!(dials, expected);
    // ...and delivered after the reconnect, before anything sent later.
    sim.set_refusing(server, false);
    let heal = sim.now();
    sim.run_until(heal + secs(6));
    sim.send_default(client, &conn, "t.ping", strs(&["after"]))
        .unwrap();
    sim.run_until_idle();
    let pings: Vec<Vec<Bytes>> = commands_named(&sim, server, "t.ping")
        .into_iter()
        .map(|m| m.data.clone())
        .collect();
    assert_eq!(
        pings,
        ["0", "1", "2", "3", "4", "after"]
            .map(|s| strs(&[s]))
            .to_vec()
    );
    // The attempts at 12.76 s and 17.762 s: the link is back after the 15 s request timeout.
    assert_eq!(sim.node(client).outcome(during), Some(&Ok(strs(&["q"]))));
    assert_eq!(
        sim.node(client).outcome(lost),
        Some(&Err(RequestError::Timeout))
    );
    assert_eq!(sim.node(client).outcome_time(lost), Some(tr + secs(15)));
    // A successful connection resets the back-off: the next loss retries after 250 ms.
    let reconnects = sim.node(client).dials.len();
    sim.reset_between(client, server);
    let tr2 = sim.now();
    sim.run_for(secs(1));
    assert_eq!(sim.node(client).dials.len(), reconnects + 1);
    assert_eq!(
        sim.node(client).dials.last().unwrap().0,
        tr2 + Duration::from_millis(250)
    );
    // connect_remote's on_connect ran once: reconnects do not repeat HI/HELLO.
    assert_eq!(sim.node(client).connected.len(), 1);
}

#[test]
fn sim_router_handover_keeps_the_route_of_a_reconnecting_peer() {
    // Only the client's side sees the reset (the server keeps a half-open connection). The
    // client reconnects with the same routing id (L + its pubkey): the server's ROUTER hands the
    // route over, so a stored ConnectionId and a pending reply still reach the client.
    let (mut sim, server, client, conn) = plain_pair(8);
    sim.send_default(client, &conn, "t.ping", vec![]).unwrap();
    let r = sim
        .request_default(client, &conn, "t.slow", strs(&["slow"]))
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    let stored = commands_named(&sim, server, "t.ping")[0].conn.clone();
    assert!(matches!(stored, ConnectionId::Incoming { .. }));
    let (client_end, _) = sim.connections_of(client)[0];
    assert!(sim.reset_one_side(client_end));
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.node(client).dials.len(), 2, "reconnected after 250 ms");
    // The handover closed the server's stale connection.
    assert_eq!(sim.node(server).closes.len(), 1);
    assert_eq!(sim.node(server).closes[0].2, Duration::ZERO);
    assert_eq!(sim.node(server).node.stats().connections, 1);
    sim.send_default(server, &stored, "t.pong", strs(&["after"]))
        .unwrap();
    sim.run_for(secs(3));
    assert_eq!(
        commands_named(&sim, client, "t.pong")[0].data,
        strs(&["after"])
    );
    assert_eq!(sim.node(client).outcome(r), Some(&Ok(strs(&["slow"]))));
}

#[test]
fn sim_sn_reconnection_still_gets_replies_and_sends() {
    let mut sim = Sim::new(9);
    let sns = sn_network(&mut sim, 2);
    let (a, b) = (sns[0], sns[1]);
    let (pka, pkb) = (sim.pubkey(a), sim.pubkey(b));
    let r = sim
        .request_default(a, &ConnectionId::Sn(pkb), "t.slow", strs(&["s"]))
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    let (a_end, _) = sim.connections_of(a)[0];
    assert!(sim.reset_one_side(a_end));
    sim.run_for(Duration::from_millis(500));
    sim.send_default(b, &ConnectionId::Sn(pka), "t.pong", strs(&["hi"]))
        .unwrap();
    sim.run_for(secs(3));
    assert_eq!(sim.node(a).outcome(r), Some(&Ok(strs(&["s"]))));
    let pongs = commands_named(&sim, a, "t.pong");
    assert_eq!(pongs.len(), 1);
    assert_eq!(pongs[0].conn, ConnectionId::Sn(pkb));
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
}

// =============================================================================================
// §3.3 the active service-node set

#[test]
fn sim_active_sn_set_is_checked_per_message() {
    let mut sim = Sim::new(10);
    let sns = sn_network(&mut sim, 2);
    let (a, b) = (sns[0], sns[1]);
    let (pka, pkb) = (sim.pubkey(a), sim.pubkey(b));
    let to_b = ConnectionId::Sn(pkb);
    let none = BTreeSet::new();
    let just_a: BTreeSet<PublicKey> = [pka].into_iter().collect();
    let ask = |sim: &mut Sim| {
        let r = sim
            .request_default(a, &to_b, "sn.echo", strs(&["x"]))
            .unwrap();
        sim.run_until_idle();
        sim.node(a).outcome(r).cloned().unwrap()
    };
    assert_eq!(ask(&mut sim), Ok(strs(&["x"])));
    sim.update_active_sns(b, &none, &just_a);
    assert_eq!(ask(&mut sim), Err(RequestError::ForbiddenSn));
    // A key in both sets counts as added.
    sim.update_active_sns(b, &just_a, &just_a);
    assert_eq!(ask(&mut sim), Ok(strs(&["x"])));
    sim.set_active_sns(b, BTreeSet::new());
    assert_eq!(ask(&mut sim), Err(RequestError::ForbiddenSn));
    sim.set_active_sns(b, just_a.clone());
    assert_eq!(ask(&mut sim), Ok(strs(&["x"])));
    assert_eq!(sim.node(a).dials.len(), 1, "all on one connection");

    // Removing b from a's set closes a's outgoing connection to b; the next send reopens it.
    assert!(sim.node(a).node.has_outgoing_sn(&pkb));
    sim.update_active_sns(a, &none, &[pkb].into_iter().collect());
    assert!(!sim.node(a).node.has_outgoing_sn(&pkb));
    assert_eq!(sim.node(a).closes.len(), 1);
    sim.run_until_idle();
    assert_eq!(sim.node(b).node.stats().connections, 0, "b saw the close");
    assert_eq!(ask(&mut sim), Ok(strs(&["x"])));
    assert_eq!(sim.node(a).dials.len(), 2);
}

// =============================================================================================
// §3.5 connection identity, §3.6 auth

#[test]
fn sim_two_plain_clients_get_distinct_connection_ids() {
    let mut sim = Sim::new(11);
    let server = sim.add_node(spec(quiet_config(1)));
    let (l, addr) = sim.listen_plain(server);
    let mut clients = Vec::new();
    for _ in 0..2 {
        let c = sim.add_node(spec(quiet_config(1)));
        let conn = sim.connect_remote(c, addr.clone(), &ConnectOptions::default());
        clients.push((c, conn));
    }
    // Two raw DEALERs with empty routing ids: the ROUTER makes up distinct ids.
    let taps = [sim.raw_dealer(&addr), sim.raw_dealer(&addr)];
    sim.run_until_idle();
    for (c, conn) in &clients {
        sim.send_default(*c, conn, "t.ping", vec![]).unwrap();
    }
    for t in taps {
        sim.raw_send(t, strs(&["t.ping"]));
    }
    sim.run_until_idle();
    let ids: Vec<ConnectionId> = commands_named(&sim, server, "t.ping")
        .into_iter()
        .map(|m| m.conn.clone())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 4, "{ids:?}");
    for id in &ids {
        let ConnectionId::Incoming {
            listener,
            route,
            pubkey,
        } = id
        else {
            panic!("incoming id expected: {id:?}");
        };
        assert_eq!(*listener, l);
        assert!(pubkey.is_none());
        assert!(!id.is_sn());
        assert!(
            route.len() == 33 || (route.len() == 5 && route[0] == 0),
            "{route:?}"
        );
    }
}

#[test]
fn sim_curve_identity_and_auth_requests() {
    let mut sim = Sim::new(12);
    let server = sim.add_node(spec(quiet_config(1)));
    let (lc, curve) = sim.listen_curve(server);
    let (lp, plain) = sim.listen_plain(server);
    let spk = sim.pubkey(server);
    let c1 = sim.add_node(spec(quiet_config(1)));
    let c2 = sim.add_node(spec(quiet_config(1)));
    let (pk1, pk2) = (sim.pubkey(c1), sim.pubkey(c2));
    sim.set_active_sns(server, [pk2].into_iter().collect());
    let x1 = sim.connect_remote(c1, curve.clone(), &ConnectOptions::default());
    let x2 = sim.connect_remote(c2, curve, &ConnectOptions::default());
    let x3 = sim.connect_remote(c1, plain, &ConnectOptions::default());
    sim.run_until_idle();
    // On the client, the connection's pubkey is the server's key (curve) or none (plain).
    let connected = |x: &ConnectionId| {
        sim.node(c1)
            .connected
            .iter()
            .find(|(_, c)| c == x)
            .map(|(_, c)| c.clone())
            .unwrap()
    };
    assert_eq!(connected(&x1).pubkey(), Some(&spk));
    assert_eq!(connected(&x3).pubkey(), None);
    for (c, x) in [(c1, &x1), (c2, &x2), (c1, &x3)] {
        sim.request_default(c, x, "public.whoami", vec![]).unwrap();
    }
    sim.run_until_idle();
    let who: Vec<&lokimq_core::node::Message> = commands_named(&sim, server, "public.whoami");
    assert_eq!(who[0].conn.pubkey(), Some(&pk1));
    assert!(matches!(who[0].conn, ConnectionId::Incoming { .. }));
    // c2 is an active SN: its id is the SN id.
    assert_eq!(who[1].conn, ConnectionId::Sn(pk2));
    assert!(who[1].access.remote_sn);
    assert_eq!(who[2].conn.pubkey(), None);
    // The allow function was asked once per connection, with 127.0.0.1 and the key.
    let asked: BTreeSet<_> = sim
        .node(server)
        .auth_requests
        .iter()
        .map(|a| (a.listener, a.remote.clone(), a.pubkey, a.service_node))
        .collect();
    assert_eq!(sim.node(server).auth_requests.len(), 3);
    assert_eq!(
        asked,
        BTreeSet::from([
            (lc, "127.0.0.1".to_string(), Some(pk1), false),
            (lc, "127.0.0.1".to_string(), Some(pk2), true),
            (lp, "127.0.0.1".to_string(), None, false),
        ])
    );
    // A reconnect is a new connection: asked again.
    sim.reset_between(c1, server);
    sim.run_for(secs(1));
    assert_eq!(sim.node(server).auth_requests.len(), 5);
}

#[test]
fn sim_auth_levels_from_the_allow_function_apply() {
    let mut sim = Sim::new(13);
    let server = sim.add_node(spec(quiet_config(1)));
    let (l, addr) = sim.listen_curve(server);
    let client = sim.add_node(spec(quiet_config(1)));
    let pk = sim.pubkey(client);
    sim.set_allow(server, l, move |_, key, _| {
        if key == Some(&pk) {
            AuthLevel::Admin
        } else {
            AuthLevel::None
        }
    });
    let conn = sim.connect_remote(client, addr, &ConnectOptions::default());
    let r = sim
        .request_default(client, &conn, "admin.echo", strs(&["ok"]))
        .unwrap();
    sim.run_until_idle();
    assert_eq!(sim.node(client).outcome(r), Some(&Ok(strs(&["ok"]))));
}

#[test]
fn sim_denied_connections_fail_and_nothing_gets_through() {
    for curve in [true, false] {
        let mut sim = Sim::new(14);
        let server = sim.add_node(spec(quiet_config(1)));
        let (l, addr) = if curve {
            sim.listen_curve(server)
        } else {
            sim.listen_plain(server)
        };
        sim.allow_all(server, l, AuthLevel::Denied);
        let client = sim.add_node(spec(quiet_config(1)));
        let conn = sim.connect_remote(client, addr, &ConnectOptions::default());
        sim.send_default(client, &conn, "t.ping", vec![]).unwrap();
        let r = sim
            .request_default(client, &conn, "public.echo", vec![])
            .unwrap();
        sim.run_for(secs(20));
        let c = sim.node(client);
        assert!(c.connected.is_empty(), "curve={curve}");
        assert_eq!(c.connect_failed.len(), 1, "curve={curve}");
        assert!(
            matches!(
                &c.connect_errors[0].2,
                ConnectError::Handshake(HandshakeError::Denied { reason }) if reason.as_bytes() == b"400"
            ),
            "curve={curve}: {:?}",
            c.connect_errors
        );
        assert_eq!(c.outcome(r), Some(&Err(RequestError::Disconnected)));
        assert!(sim.node(server).commands.is_empty());
        assert_eq!(
            sim.node(server).auth_requests.len(),
            1,
            "no retry after a refusal"
        );
        assert_eq!(sim.node(server).node.stats().connections, 0);
    }
}

// =============================================================================================
// disconnect, replies

#[test]
fn sim_disconnect_closes_outgoing_connections_only() {
    let (mut sim, server, client, conn) = plain_pair(16);
    sim.send_default(client, &conn, "t.ping", vec![]).unwrap();
    sim.run_until_idle();
    let incoming = commands_named(&sim, server, "t.ping")[0].conn.clone();
    let err = sim
        .disconnect(server, &incoming, Duration::from_secs(1))
        .unwrap_err();
    assert!(matches!(err, NodeError::NoSuchOutgoingConnection(_)));
    assert!(
        err.to_string()
            .starts_with("Failed to disconnect unauthenticated remote")
    );
    assert!(err.to_string().ends_with(": no such outgoing connection"));
    assert_eq!(sim.node(server).node.stats().connections, 1);
    sim.disconnect(client, &conn, Duration::from_secs(1))
        .unwrap();
    sim.run_until_idle();
    assert_eq!(
        sim.node(server).node.stats().connections,
        0,
        "the server saw EOF"
    );
    assert!(matches!(
        sim.send_default(client, &conn, "t.ping", vec![]),
        Err(SendError::NotConnected(_))
    ));
    assert!(sim.disconnect(client, &conn, Duration::ZERO).is_err());

    // Service nodes: disconnect by key; a later send reopens.
    let mut sim = Sim::new(17);
    let sns = sn_network(&mut sim, 2);
    let pkb = sim.pubkey(sns[1]);
    sim.connect_sn(sns[0], pkb, &ConnectSnOptions::default());
    sim.run_until_idle();
    sim.disconnect(sns[0], &ConnectionId::Sn(pkb), Duration::ZERO)
        .unwrap();
    assert!(!sim.node(sns[0]).node.has_outgoing_sn(&pkb));
    sim.send_default(sns[0], &ConnectionId::Sn(pkb), "t.ping", vec![])
        .unwrap();
    sim.run_until_idle();
    assert_eq!(sim.node(sns[0]).dials.len(), 2);
    assert_eq!(commands_named(&sim, sns[1], "t.ping").len(), 1);
}

#[test]
fn sim_replies_go_back_on_the_originating_connection() {
    // Two raw CURVE DEALERs with the same key (an active SN at the server) and ephemeral routing
    // ids: both are `Sn(key)` to the server, but each reply goes to the connection its request
    // came in on (OxenMQ may pick either).
    let mut sim = Sim::new(18);
    let mut c = quiet_config(1);
    c.service_node = true;
    let server = sim.add_node(spec(c).keypair(Keypair::from_secret_bytes([3; 32])));
    let (_, addr) = sim.listen_curve(server);
    let kp = Keypair::from_secret_bytes([4; 32]);
    sim.set_active_sns(server, [*kp.public()].into_iter().collect());
    let cfg = SessionConfig::new(
        SocketType::Dealer,
        MechanismConfig::CurveClient {
            keypair: kp.clone(),
            server_key: sim.pubkey(server),
        },
    );
    let t1 = sim.tap_dial_with(&addr, Some(cfg.clone()));
    let t2 = sim.tap_dial_with(&addr, Some(cfg));
    sim.run_until_idle();
    for (t, tag) in [(t2, "tag-for-tap-2..."), (t1, "tag-for-tap-1...")] {
        sim.raw_send(t, strs(&["sn.echo", tag, "x"]));
        sim.run_until_idle();
    }
    assert_eq!(
        sim.raw_take(t1),
        vec![strs(&["REPLY", "tag-for-tap-1...", "x"])]
    );
    assert_eq!(
        sim.raw_take(t2),
        vec![strs(&["REPLY", "tag-for-tap-2...", "x"])]
    );
    let who = commands_named(&sim, server, "sn.echo");
    assert!(who.iter().all(|m| m.conn == ConnectionId::Sn(*kp.public())));
}

// =============================================================================================
// close, lookups, options, limits, heartbeats

#[test]
fn sim_optional_and_incoming_sends_never_open_connections() {
    let mut sim = Sim::new(21);
    let sns = sn_network(&mut sim, 2);
    let (a, b) = (sns[0], sns[1]);
    let pkb = sim.pubkey(b);
    let optional = SendOptions::default().optional(true);
    let incoming = SendOptions::default().incoming(true);
    for opts in [&optional, &incoming] {
        assert!(matches!(
            sim.send(a, &ConnectionId::Sn(pkb), "t.ping", vec![], opts),
            Err(SendError::NoConnection(_))
        ));
    }
    assert!(sim.node(a).dials.is_empty());
    // Once b has connected to a, an incoming-only send from a goes over it.
    let pka = sim.pubkey(a);
    sim.send_default(b, &ConnectionId::Sn(pka), "t.ping", vec![])
        .unwrap();
    sim.run_until_idle();
    sim.send(a, &ConnectionId::Sn(pkb), "t.pong", vec![], &incoming)
        .unwrap();
    sim.run_until_idle();
    assert_eq!(commands_named(&sim, b, "t.pong").len(), 1);
    assert!(sim.node(a).dials.is_empty(), "a never dialled");
}

#[test]
fn sim_listening_twice_on_one_address_fails() {
    let mut sim = Sim::new(22);
    let a = sim.add_node(spec(quiet_config(1)));
    let b = sim.add_node(spec(quiet_config(1)));
    let addr = Address::tcp("127.0.0.1", 7000);
    sim.listen_on(a, addr.clone(), false);
    let l = sim.listen_on(b, addr, true);
    assert_eq!(sim.node(b).events.len(), 1);
    assert!(
        sim.node(b).events[0].1.contains("ListenFailed"),
        "{:?}",
        sim.node(b).events
    );
    assert!(sim.node(b).events[0].1.contains(&format!("{l:?}")));
}

#[test]
fn sim_oversized_frames_drop_the_connection() {
    let mut sim = Sim::new(23);
    let server = sim.add_node(spec(quiet_config(1)));
    let (_, addr) = sim.listen_plain(server);
    let t = sim.raw_dealer(&addr);
    sim.run_until_idle();
    // 1 MiB is accepted...
    let big = vec![b'x'; 1024 * 1024];
    sim.raw_send(t, vec![Bytes::from_static(b"t.ping"), Bytes::from(big)]);
    sim.run_until_idle();
    assert_eq!(commands_named(&sim, server, "t.ping").len(), 1);
    // ...one byte more is not: the connection is closed, nothing is dispatched.
    let bigger = vec![b'x'; 1024 * 1024 + 1];
    sim.raw_send(t, vec![Bytes::from_static(b"t.ping"), Bytes::from(bigger)]);
    sim.run_until_idle();
    assert_eq!(commands_named(&sim, server, "t.ping").len(), 1);
    assert!(sim.tap(t).eof_at.is_some());
    assert_eq!(sim.node(server).node.stats().connections, 0);
}

#[test]
fn sim_heartbeats_detect_a_half_open_connection() {
    let mut config = quiet_config(1);
    config.heartbeat_interval = secs(1);
    config.heartbeat_timeout = secs(3);
    let mut sim = Sim::new(24);
    let (_server, client, conn) = sim.add_plain_pair(|| spec(config.clone()));
    sim.run_for(secs(5));
    assert_eq!(sim.node(client).connected.len(), 1);
    // The server's side vanishes without the client noticing...
    let (_, server_end) = sim.connections_of(client)[0];
    let t0 = sim.now();
    sim.reset_one_side(server_end);
    sim.run_for(secs(10));
    // ...the client's heartbeat times out within interval + timeout, and it reconnects.
    let closed = sim.node(client).dials.iter().skip(1).map(|d| d.0).next();
    let closed = closed.expect("reconnected");
    assert!(
        closed - t0 <= secs(4) + Duration::from_millis(260),
        "{:?}",
        closed - t0
    );
    let r = sim
        .request_default(client, &conn, "public.echo", strs(&["again"]))
        .unwrap();
    sim.run_for(secs(1));
    assert_eq!(sim.node(client).outcome(r), Some(&Ok(strs(&["again"]))));
}

#[test]
fn sim_messages_queued_while_down_are_bounded_by_the_high_water_mark() {
    let (mut sim, server, client, conn) = plain_pair(25);
    sim.set_refusing(server, true);
    sim.reset_between(client, server);
    let t = sim.now();
    sim.run_until(t);
    for i in 0..1000 {
        sim.send_default(client, &conn, "t.ping", strs(&[&i.to_string()]))
            .unwrap();
    }
    assert!(matches!(
        sim.send_default(client, &conn, "t.ping", strs(&["overflow"])),
        Err(SendError::WouldBlock(_))
    ));
    sim.set_refusing(server, false);
    sim.run_for(secs(2));
    let got: Vec<String> = commands_named(&sim, server, "t.ping")
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data[0]).into_owned())
        .collect();
    assert_eq!(got, (0..1000).map(|i| i.to_string()).collect::<Vec<_>>());
}
