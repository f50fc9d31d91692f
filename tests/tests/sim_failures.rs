//! Connection failures and lost connections, typed: `ConnectError` causes, the fail-fast connect
//! policy and `retry_refused`, requests failing with `DISCONNECTED` when their connection is
//! gone for good (and surviving a drop that reconnects), and `PeerDisconnected` once per
//! established connection with the right cause. (`docs/divergences.md`, "Connection failures".)

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::keys::Keypair;
use lokimq_core::node::{
    Config, ConnectError, ConnectOptions, ConnectionId, DisconnectReason, HandshakeError,
    RequestError, SendError,
};
use lokimq_core::registry::Registry;
use lokimq_core::registry::{CategoryOptions, QueueLimit};
use lokimq_core::session::{MechanismConfig, SessionConfig, SessionError};
use lokimq_core::time::Duration;
use lokimq_core::zmtp::{Mechanism, SocketType};
use lokimq_tests::fixtures::{conformance_builder, echo, quiet_config, strs};
use lokimq_tests::sim::{End, NodeSpec, PartitionMode, Sim};

const MS: Duration = Duration::from_millis(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The conformance categories plus `t`: request `slow` (replies after 2 s) and `bye` (answers
/// with OxenMQ's `BYE`).
fn registry() -> Registry {
    let mut b = conformance_builder();
    b.add_category(
        "t",
        CategoryOptions::new(Access::default()).max_queue(QueueLimit::Unlimited),
    )
    .unwrap();
    b.add_request_command("t", "slow").unwrap();
    b.add_command("t", "bye").unwrap();
    b.build()
}

fn spec(config: Config) -> NodeSpec {
    NodeSpec::new(config, registry())
        .handler("public.echo", echo)
        .handler("t.slow", |ctx, m| {
            ctx.take(secs(2));
            ctx.reply(m, m.data.clone());
        })
        .handler("t.bye", |ctx, m| ctx.send_back(m, "BYE", vec![]))
}

/// A server listening plain, and a client connected to it with `opts` (settled).
fn pair(seed: u64, config: Config, opts: &ConnectOptions) -> (Sim, usize, usize, ConnectionId) {
    let mut sim = Sim::new(seed);
    let server = sim.add_node(spec(config.clone()));
    let client = sim.add_node(spec(config));
    let (_, addr) = sim.listen_plain(server);
    let conn = sim.connect_remote(client, addr, opts);
    sim.run_for(secs(1));
    assert_eq!(sim.node(client).connected.len(), 1);
    (sim, server, client, conn)
}

// =============================================================================================
// connect failures

#[test]
fn sim_refused_connect_fails_fast_with_refused() {
    let mut sim = Sim::new(30);
    let client = sim.add_node(spec(quiet_config(1)));
    let t0 = sim.now();
    let conn = sim.connect_remote(
        client,
        Address::tcp("127.0.0.1", 6999),
        &ConnectOptions::default(),
    );
    let r = sim
        .request_default(client, &conn, "public.echo", vec![])
        .unwrap();
    sim.run_for(secs(20));
    let c = sim.node(client);
    // One attempt, refused after one network round trip; no retry, no 10 s wait.
    assert_eq!(c.dials.len(), 1);
    assert_eq!(c.connect_errors.len(), 1);
    let (at, who, error) = &c.connect_errors[0];
    assert!(*at < t0 + 10 * MS, "{at:?}");
    assert_eq!((who, error), (&conn, &ConnectError::Refused));
    assert_eq!(
        c.connect_failed[0].2,
        "connect() failed: Connection refused"
    );
    assert_eq!(c.outcome(r), Some(&Err(RequestError::Disconnected)));
    assert!(c.disconnects.is_empty(), "it never came up");
    assert!(matches!(
        sim.send_default(client, &conn, "x.y", vec![]),
        Err(SendError::NotConnected(_))
    ));
}

#[test]
fn sim_retry_refused_retries_until_the_timeout() {
    let mut sim = Sim::new(31);
    let client = sim.add_node(spec(quiet_config(1)));
    let t0 = sim.now();
    let opts = ConnectOptions::default()
        .timeout(secs(3))
        .retry_refused(true);
    let conn = sim.connect_remote(client, Address::tcp("127.0.0.1", 6998), &opts);
    let r = sim
        .request_default(client, &conn, "public.echo", vec![])
        .unwrap();
    sim.run_for(secs(10));
    let c = sim.node(client);
    // 0, 0.252, 0.754, 1.756 (3.758 is past the deadline), OxenMQ's back-off.
    assert_eq!(c.dials.len(), 4);
    assert_eq!(
        c.connect_errors,
        vec![(t0 + secs(3), conn, ConnectError::TimedOut)]
    );
    assert_eq!(c.connect_failed[0].2, "connection attempt timed out");
    assert_eq!(c.outcome(r), Some(&Err(RequestError::Disconnected)));
    assert_eq!(c.outcome_time(r), Some(t0 + secs(3)));
}

#[test]
fn sim_wrong_server_key_fails_with_wrong_server_key() {
    let mut sim = Sim::new(32);
    let client = sim.add_node(spec(quiet_config(1)));
    // A CURVE server with one key, dialled with another: it cannot open our HELLO and closes
    // without a word, as libzmq does.
    let real = Keypair::from_secret_bytes([41; 32]);
    let wrong = Keypair::from_secret_bytes([42; 32]);
    let tl = sim.tap_listen(
        &Address::tcp("127.0.0.1", 6997),
        Some(SessionConfig::new(
            SocketType::Router,
            MechanismConfig::CurveServer { keypair: real },
        )),
    );
    let conn = sim.connect_remote(
        client,
        Address::tcp_curve("127.0.0.1", 6997, *wrong.public()),
        &ConnectOptions::default(),
    );
    let mut tap = None;
    for _ in 0..10_000 {
        tap = sim.tap_listener(tl).accepted.first().copied();
        if tap.is_some_and(|t| sim.tap(t).session_closed.is_some()) {
            break;
        }
        assert!(sim.step(), "the simulation ran dry");
    }
    let t = tap.expect("the tap accepted the connection");
    assert!(
        matches!(sim.tap(t).session_closed, Some(SessionError::Crypto(_))),
        "{:?}",
        sim.tap(t).session_closed
    );
    sim.tap_close(t);
    sim.run_for(secs(1));
    let c = sim.node(client);
    assert_eq!(
        c.connect_errors.iter().map(|e| &e.2).collect::<Vec<_>>(),
        [&ConnectError::Handshake(HandshakeError::WrongServerKey)]
    );
    assert_eq!(c.connect_errors[0].1, conn);
    assert_eq!(c.dials.len(), 1, "no retry");
}

#[test]
fn sim_mechanism_mismatch_names_both_mechanisms() {
    let mut sim = Sim::new(33);
    let server = sim.add_node(spec(quiet_config(1)));
    let client = sim.add_node(spec(quiet_config(1)));
    let (_, plain) = sim.listen_plain(server);
    let (_, curve) = sim.listen_curve(server);
    let spk = sim.pubkey(server);
    // A curve:// address pointing at a plain listener, and plain tcp:// at a CURVE one.
    let to_plain = sim.connect_remote(
        client,
        plain.clone().with_pubkey(Some(spk)),
        &ConnectOptions::default(),
    );
    let to_curve = sim.connect_remote(client, curve.with_pubkey(None), &ConnectOptions::default());
    sim.run_for(secs(1));
    let errors = &sim.node(client).connect_errors;
    let of = |conn: &ConnectionId| {
        errors
            .iter()
            .find(|e| e.1 == *conn)
            .map(|e| e.2.clone())
            .unwrap_or_else(|| panic!("{conn} did not fail: {errors:?}"))
    };
    assert_eq!(
        of(&to_plain),
        HandshakeError::MechanismMismatch {
            ours: Mechanism::Curve,
            theirs: Some(Mechanism::Null)
        }
        .into()
    );
    assert_eq!(
        of(&to_curve),
        HandshakeError::MechanismMismatch {
            ours: Mechanism::Null,
            theirs: Some(Mechanism::Curve)
        }
        .into()
    );
}

#[test]
fn sim_zap_denial_is_named_and_never_retried() {
    let mut sim = Sim::new(34);
    let server = sim.add_node(spec(quiet_config(1)));
    let client = sim.add_node(spec(quiet_config(1)));
    let (l, addr) = sim.listen_curve(server);
    sim.allow_all(server, l, AuthLevel::Denied);
    // Even OxenMQ's retrying policy stops at a ZMTP ERROR (libzmq never reconnects after one).
    let opts = ConnectOptions::default().retry_refused(true);
    let conn = sim.connect_remote(client, addr, &opts);
    sim.run_for(secs(20));
    let c = sim.node(client);
    assert_eq!(c.connect_errors.len(), 1);
    assert_eq!(c.connect_errors[0].1, conn);
    assert!(
        matches!(
            &c.connect_errors[0].2,
            ConnectError::Handshake(HandshakeError::Denied { reason }) if reason.as_bytes() == b"400"
        ),
        "{:?}",
        c.connect_errors
    );
    assert_eq!(c.dials.len(), 1);
    assert_eq!(sim.node(server).auth_requests.len(), 1);
}

// =============================================================================================
// requests on lost connections

#[test]
fn sim_pending_requests_survive_a_drop_and_a_successful_reconnect() {
    let (mut sim, server, client, conn) = pair(35, quiet_config(2), &ConnectOptions::default());
    let t0 = sim.now();
    let r = sim
        .request_default(client, &conn, "t.slow", strs(&["kept"]))
        .unwrap();
    // The connection drops while the handler runs; the link reconnects after 250 ms, and
    // the reply (routed by the client's `L` + pubkey id) arrives over the new connection.
    sim.run_until(t0 + Duration::from_millis(500));
    assert_eq!(sim.reset_between(client, server), 1);
    sim.run_until(t0 + secs(5));
    let c = sim.node(client);
    assert_eq!(c.outcome(r), Some(&Ok(strs(&["kept"]))));
    assert_eq!(c.disconnects.len(), 1);
    let d = &c.disconnects[0];
    assert_eq!(d.conn, conn);
    assert!(d.reconnecting);
    assert!(matches!(d.cause, DisconnectReason::Reset { .. }), "{d:?}");
    assert!(c.link_failures.is_empty());
    assert_eq!(c.dials.len(), 2, "one reconnect");
    // The server saw its end of the old connection go, once.
    let s = sim.node(server);
    assert_eq!(s.disconnects.len(), 1, "{:?}", s.disconnects);
    assert!(!s.disconnects[0].reconnecting);
}

#[test]
fn sim_pending_requests_fail_with_disconnected_when_the_server_is_killed() {
    let (mut sim, server, client, conn) = pair(36, quiet_config(2), &ConnectOptions::default());
    let t0 = sim.now();
    let r = sim
        .request_default(client, &conn, "t.slow", strs(&["lost"]))
        .unwrap();
    // The server dies: its connections reset and nothing listens any more.
    sim.run_until(t0 + Duration::from_millis(500));
    sim.set_refusing(server, true);
    sim.reset_between(client, server);
    sim.run_until(t0 + secs(20));
    let c = sim.node(client);
    // Dropped (reconnecting), then the reconnect 250 ms later is refused: gone for good. The
    // request fails then, not at its 15 s timeout.
    assert_eq!(c.disconnects.len(), 1);
    assert!(c.disconnects[0].reconnecting);
    assert_eq!(c.link_failures.len(), 1);
    let (failed_at, who, error) = &c.link_failures[0];
    assert_eq!((who, error), (&conn, &ConnectError::Refused));
    assert_eq!(c.outcome(r), Some(&Err(RequestError::Disconnected)));
    assert_eq!(c.outcome_time(r), Some(*failed_at));
    assert!(*failed_at < t0 + secs(1), "{failed_at:?}");
    assert!(
        c.connect_errors.is_empty(),
        "it had come up: no ConnectFailed"
    );
    assert_eq!(c.dials.len(), 2);
    assert!(matches!(
        sim.send_default(client, &conn, "x.y", vec![]),
        Err(SendError::NotConnected(_))
    ));

    // With OxenMQ's policy the same connection keeps retrying, and the request times out.
    let opts = ConnectOptions::default().retry_refused(true);
    let (mut sim, server, client, conn) = pair(37, quiet_config(2), &opts);
    let t0 = sim.now();
    let r = sim
        .request_default(client, &conn, "t.slow", strs(&["lost"]))
        .unwrap();
    sim.run_until(t0 + Duration::from_millis(500));
    sim.set_refusing(server, true);
    sim.reset_between(client, server);
    sim.run_until(t0 + secs(20));
    let c = sim.node(client);
    assert_eq!(c.outcome(r), Some(&Err(RequestError::Timeout)));
    assert_eq!(c.outcome_time(r), Some(t0 + secs(15)));
    assert!(c.link_failures.is_empty());
    assert!(c.dials.len() > 5, "{}", c.dials.len());
    assert_eq!(sim.node(client).node.stats().links, 1, "still retrying");
}

// =============================================================================================
// PeerDisconnected

#[test]
fn sim_peer_disconnected_once_per_connection_with_the_right_cause() {
    // disconnect(): Closed on our side, PeerClosed on theirs.
    let (mut sim, server, client, conn) = pair(38, quiet_config(1), &ConnectOptions::default());
    sim.disconnect(client, &conn, Duration::ZERO).unwrap();
    sim.run_for(secs(1));
    let c = &sim.node(client).disconnects;
    assert_eq!(c.len(), 1);
    assert_eq!(
        (&c[0].conn, &c[0].cause, c[0].reconnecting),
        (&conn, &DisconnectReason::Closed, false)
    );
    let s = &sim.node(server).disconnects;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].cause, DisconnectReason::PeerClosed);
    assert!(matches!(s[0].conn, ConnectionId::Incoming { .. }));

    // BYE from the server: Bye, not reconnecting.
    let (mut sim, _server, client, conn) = pair(39, quiet_config(1), &ConnectOptions::default());
    sim.send_default(client, &conn, "t.bye", vec![]).unwrap();
    sim.run_for(secs(1));
    let c = &sim.node(client).disconnects;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (&c[0].cause, c[0].reconnecting),
        (&DisconnectReason::Bye, false)
    );

    // A frozen network with heartbeats on: both ends time out; the client reconnects once the
    // partition heals, and reports each of its connections' ends once.
    let mut config = quiet_config(1);
    config.heartbeat_interval = secs(15);
    config.heartbeat_timeout = secs(30);
    let (mut sim, server, client, conn) = pair(40, config, &ConnectOptions::default());
    let t0 = sim.now();
    sim.partition(&[client], &[server], PartitionMode::Freeze);
    sim.run_until(t0 + secs(60));
    sim.heal();
    sim.run_until(t0 + secs(70));
    let c = &sim.node(client).disconnects;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (&c[0].conn, &c[0].cause, c[0].reconnecting),
        (&conn, &DisconnectReason::HeartbeatTimeout, true)
    );
    let s = &sim.node(server).disconnects;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].cause, DisconnectReason::HeartbeatTimeout);
    assert!(sim.node(client).node.is_connected(&conn), "reconnected");
    assert!(sim.node(client).link_failures.is_empty());

    // A half-open connection: the client's end resets, it reconnects with the same routing
    // id, and the server's stale connection is replaced (ROUTER handover).
    let (mut sim, server, client, conn) = pair(41, quiet_config(1), &ConnectOptions::default());
    let (client_end, _) = sim.connections_of(client)[0];
    assert!(matches!(client_end, End::Node(..)));
    sim.reset_one_side(client_end);
    sim.run_for(secs(2));
    let c = &sim.node(client).disconnects;
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].reconnecting);
    let s = &sim.node(server).disconnects;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].cause, DisconnectReason::Replaced);
    assert!(sim.node(client).node.is_connected(&conn));
}

#[test]
fn sim_service_node_links_keep_retrying_and_report_their_last_cause() {
    let mut sim = Sim::new(42);
    let client = sim.add_node(spec(quiet_config(1)));
    let ghost = Keypair::from_secret_bytes([43; 32]);
    let pk = *ghost.public();
    // Its address is known, but nothing listens there.
    sim.set_address(client, pk, Address::tcp("127.0.0.1", 6996));
    let t0 = sim.now();
    let r = sim
        .request_default(client, &ConnectionId::Sn(pk), "public.echo", vec![])
        .unwrap();
    sim.run_until(t0 + secs(29));
    let c = sim.node(client);
    // OxenMQ retries service-node connections with back-off; the request keeps its timeout.
    assert!(c.dials.len() >= 5, "{}", c.dials.len());
    assert_eq!(c.outcome(r), Some(&Err(RequestError::Timeout)));
    assert!(c.link_failures.is_empty());
    // Idle expiry (30 s after the send) gives it up, naming the last attempt's cause.
    sim.run_until(t0 + secs(31));
    let c = sim.node(client);
    assert_eq!(
        c.link_failures,
        vec![(t0 + secs(30), ConnectionId::Sn(pk), ConnectError::Refused)]
    );
    assert!(c.disconnects.is_empty(), "it never came up");
    assert!(
        c.connect_errors.is_empty(),
        "no connect callback for SN links"
    );

    // An SN connection that was up and expires idle reports PeerDisconnected instead.
    let mut sim = Sim::new(44);
    let mut sn = quiet_config(1);
    sn.service_node = true;
    let server = sim.add_node(spec(sn).keypair(Keypair::from_secret_bytes([45; 32])));
    let client = sim.add_node(spec(quiet_config(1)));
    let (_, addr) = sim.listen_curve(server);
    let spk = sim.pubkey(server);
    sim.set_address(client, spk, addr);
    let t0 = sim.now();
    sim.send_default(
        client,
        &ConnectionId::Sn(spk),
        "public.echo",
        vec![Bytes::new()],
    )
    .unwrap();
    sim.run_until(t0 + secs(31));
    let c = &sim.node(client).disconnects;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (&c[0].conn, &c[0].cause, c[0].reconnecting),
        (
            &ConnectionId::Sn(spk),
            &DisconnectReason::IdleExpired,
            false
        )
    );
    assert_eq!(c[0].pubkey, Some(spk));
    assert!(sim.node(client).link_failures.is_empty());
}
