//! Heartbeats and size limits against real libzmq over loopback TCP, plus libzmq's own
//! `test_heartbeats` PING-context scenario replayed by a raw TCP peer against our session.
//!
//! Every test name contains `libzmq`, so `cargo test -p lokimq-tests libzmq` runs them all.

#[path = "libzmq_support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use lokimq_core::curve::{CurveClient, FLAG_COMMAND, FLAG_MORE};
use lokimq_core::session::{AuthDecision, MechanismConfig, SessionError, SessionState};
use lokimq_core::zmtp::{HeartbeatConfig, SocketType, ZmtpError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::*;

/// CURVE adds this much to every frame body (MESSAGE name, nonce, tag, flags byte).
const CURVE_OVERHEAD: usize = 33;

/// A libzmq ROUTER (a CURVE server with the known keys if `curve`), not yet bound.
fn libzmq_router(ctx: &zmq::Context, curve: bool) -> zmq::Socket {
    let router = zsocket(ctx, zmq::ROUTER);
    if curve {
        set_curve_server(&router);
    }
    router
}

/// Connects our DEALER (routing id `id`) and exchanges a first message, so libzmq knows us.
fn connected_dealer(
    router: &zmq::Socket,
    addr: std::net::SocketAddr,
    mut cfg: lokimq_core::session::SessionConfig,
    id: &'static [u8],
) -> Conn {
    cfg.routing_id = Bytes::from_static(id);
    let mut conn = Conn::connect(addr, cfg, 5);
    conn.send(parts(&[b"hi"]));
    let got = wait_until(BOUND, || {
        conn.step(STEP);
        try_recv(router)
    })
    .expect("libzmq receives our first message");
    assert_eq!(got, vec![id.to_vec(), b"hi".to_vec()]);
    conn
}

fn libzmq_heartbeats_against_our_router(curve: bool) {
    let mut cfg = config(SocketType::Router, router_mechanism(curve));
    cfg.auth_required = curve;
    let mut router = Router::bind(cfg, 6);
    router.auth = Some(AuthDecision::allow(Bytes::new(), Vec::new()));

    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_heartbeat_ivl(100).unwrap();
    dealer.set_heartbeat_timeout(200).unwrap();
    if curve {
        set_curve_client(&dealer, server_keys().public(), &client_keys());
    }
    let mut mon = Monitor::new(&ctx, &dealer);
    dealer.connect(&router.endpoint()).unwrap();
    zsend(&dealer, &[b"hi"]);
    let first = router.recv().expect("first message");
    let id = first[0].clone();

    // Ten heartbeat intervals, five times libzmq's heartbeat timeout, with no application
    // traffic: only our PONGs keep libzmq from dropping the connection.
    run_for(Duration::from_millis(1000), || {
        router.step(STEP);
        mon.poll();
    });
    assert!(
        !mon.has(zmq::SocketEvent::DISCONNECTED, None),
        "libzmq dropped the connection: {:?}",
        mon.seen
    );
    assert_eq!(router.conns.len(), 1, "no reconnect happened");
    let conn = &router.conns[0];
    assert!(conn.end.is_none() && conn.closed().is_none());
    assert_eq!(conn.session.state(), SessionState::Ready);
    let pings = conn.session.stats().pings_received;
    assert!(pings >= 5, "libzmq PINGed us {pings} times");

    assert!(router.send(&id, parts(&[b"still", b"here"])));
    let got = wait_until(BOUND, || {
        router.step(STEP);
        try_recv(&dealer)
    })
    .expect("traffic still flows");
    assert_eq!(got, vec![b"still".to_vec(), b"here".to_vec()]);

    // Control: once we stop answering, libzmq does drop us within its timeout, so the
    // survival above was earned by our PONGs.
    std::thread::sleep(Duration::from_millis(600));
    let dropped = wait_until(BOUND, || {
        router.step(STEP);
        mon.poll();
        mon.has(zmq::SocketEvent::DISCONNECTED, None).then_some(())
    });
    assert!(
        dropped.is_some(),
        "libzmq heartbeat timeout: {:?}",
        mon.seen
    );
}

#[test]
fn libzmq_dealer_heartbeats_are_answered_by_our_router_null() {
    libzmq_heartbeats_against_our_router(false);
}

#[test]
fn libzmq_dealer_heartbeats_are_answered_by_our_router_curve() {
    libzmq_heartbeats_against_our_router(true);
}

fn our_heartbeats_against_libzmq(curve: bool) {
    let ctx = zmq::Context::new();
    let router = libzmq_router(&ctx, curve);
    let addr = zbind(&router);
    let mut cfg = config(SocketType::Dealer, dealer_mechanism(curve));
    cfg.heartbeat = Some(HeartbeatConfig {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        ttl: Duration::from_millis(2000),
    });
    let mut conn = connected_dealer(&router, addr, cfg, b"hb");

    // libzmq sends nothing but PONGs for a second: without them our session would close with
    // HeartbeatTimeout after 300 ms.
    run_for(Duration::from_millis(1000), || {
        conn.step(STEP);
    });
    assert_eq!(conn.closed(), None);
    assert!(conn.end.is_none());
    assert_eq!(conn.session.state(), SessionState::Ready);
    let stats = conn.session.stats();
    assert!(stats.pings_sent >= 5, "{stats:?}");
    assert!(stats.pongs_received >= 3, "{stats:?}");
    assert!(stats.pongs_received <= stats.pings_sent);

    zsend(&router, &[b"hb", b"still here"]);
    let m = wait_until(BOUND, || {
        conn.step(STEP);
        conn.messages().into_iter().next()
    })
    .expect("traffic still flows");
    assert_eq!(to_vecs(&m), vec![b"still here".to_vec()]);
}

#[test]
fn libzmq_answers_our_heartbeats_null() {
    our_heartbeats_against_libzmq(false);
}

#[test]
fn libzmq_answers_our_heartbeats_curve() {
    our_heartbeats_against_libzmq(true);
}

fn libzmq_oversize_closes_our_session(curve: bool) {
    const LIMIT: usize = 1000;
    let overhead = if curve { CURVE_OVERHEAD } else { 0 };
    let ctx = zmq::Context::new();
    let router = libzmq_router(&ctx, curve);
    let addr = zbind(&router);
    let mut cfg = config(SocketType::Dealer, dealer_mechanism(curve));
    cfg.max_message_size = Some(LIMIT as u64);
    let mut conn = connected_dealer(&router, addr, cfg, b"small");

    // Exactly at the limit (the encrypted size under CURVE) still passes.
    let fits = vec![7u8; LIMIT - overhead];
    zsend(&router, &[b"small", &fits]);
    let m = wait_until(BOUND, || {
        conn.step(STEP);
        conn.messages().into_iter().next()
    })
    .expect("a frame at the limit is delivered");
    assert_eq!(to_vecs(&m), vec![fits]);

    zsend(&router, &[b"small", &[9u8; 2000]]);
    let err = wait_until(BOUND, || {
        conn.step(STEP);
        conn.closed().cloned()
    })
    .expect("our session closes");
    assert_eq!(
        err,
        SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: (2000 + overhead) as u64,
            limit: LIMIT as u64
        })
    );
    assert_eq!(
        conn.messages().len(),
        1,
        "the oversize message is not delivered"
    );
    assert_eq!(
        conn.wait_end(),
        Some(StreamEnd::Local),
        "we close the socket"
    );
}

#[test]
fn libzmq_oversize_message_closes_our_session_null() {
    libzmq_oversize_closes_our_session(false);
}

#[test]
fn libzmq_oversize_message_closes_our_session_curve() {
    libzmq_oversize_closes_our_session(true);
}

fn libzmq_maxmsgsize_drops_us(curve: bool) {
    const LIMIT: usize = 500;
    let overhead = if curve { CURVE_OVERHEAD } else { 0 };
    let ctx = zmq::Context::new();
    let router = libzmq_router(&ctx, curve);
    router.set_maxmsgsize(LIMIT as i64).unwrap();
    let addr = zbind(&router);
    let cfg = config(SocketType::Dealer, dealer_mechanism(curve));
    let mut conn = connected_dealer(&router, addr, cfg, b"big");

    let fits = vec![1u8; LIMIT - overhead];
    conn.send(vec![Bytes::from(fits.clone())]);
    let got = wait_until(BOUND, || {
        conn.step(STEP);
        try_recv(&router)
    })
    .expect("a frame at libzmq's limit is delivered");
    assert_eq!(got, vec![b"big".to_vec(), fits]);

    conn.send(vec![Bytes::from(vec![2u8; LIMIT - overhead + 1])]);
    conn.wait_closed_by_libzmq();
    run_for(Duration::from_millis(200), || {
        conn.step(STEP);
        assert!(try_recv(&router).is_none(), "oversize message delivered");
    });
}

#[test]
fn libzmq_maxmsgsize_drops_our_oversize_message_null() {
    libzmq_maxmsgsize_drops_us(false);
}

#[test]
fn libzmq_maxmsgsize_drops_our_oversize_message_curve() {
    libzmq_maxmsgsize_drops_us(true);
}

#[test]
fn libzmq_welcome_exceeding_our_frame_limit_fails_the_handshake() {
    // Our frame limit applies to handshake commands too: WELCOME's body is 168 bytes.
    let ctx = zmq::Context::new();
    let router = libzmq_router(&ctx, true);
    let addr = zbind(&router);
    let mut cfg = config(SocketType::Dealer, dealer_mechanism(true));
    cfg.max_message_size = Some(150);
    let mut conn = Conn::connect(addr, cfg, 8);
    let err = wait_until(BOUND, || {
        conn.step(STEP);
        conn.closed().cloned()
    })
    .expect("handshake fails");
    assert_eq!(
        err,
        SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: 168,
            limit: 150
        })
    );
    assert!(!conn.is_ready());
}

/// libzmq's `test_heartbeats` raw-peer scenario against our ROUTER: a NULL greeting and
/// READY(DEALER) written by hand, then PINGs with a 3-byte and a 58-byte context. The PONGs
/// must echo the context, cut to 16 bytes. Our greeting and READY must be byte-identical to a
/// libzmq ROUTER's.
#[test]
fn libzmq_test_heartbeats_ping_contexts_against_our_router() {
    let mut router = Router::bind(config(SocketType::Router, MechanismConfig::Null), 9);
    let mut raw = RawPeer::connect(&router);

    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    greeting.extend_from_slice(b"NULL");
    greeting.resize(64, 0);
    let mut ready = vec![0x04, 0x29, 0x05];
    ready.extend_from_slice(b"READY\x0bSocket-Type\x00\x00\x00\x06DEALER");
    ready.extend_from_slice(b"\x08Identity\x00\x00\x00\x00");
    assert_eq!(ready.len(), 2 + 0x29);
    let context: Vec<u8> = (0..58u8).map(|i| b'A' + (i % 26)).collect();
    let mut ping_long = vec![0x04, 0x41, 0x04];
    ping_long.extend_from_slice(b"PING\x00\x00");
    ping_long.extend_from_slice(&context);
    assert_eq!(ping_long.len(), 2 + 0x41);
    raw.write(&greeting);
    raw.write(&ready);
    raw.write(b"\x04\x0a\x04PING\x00\x00LOL");
    raw.write(&ping_long);

    // Our greeting, byte-identical to libzmq's (padding = routing id length + 1 = 1).
    assert_eq!(raw.read_exact(64, &mut router), greeting);
    // Our READY, byte-identical to a libzmq ROUTER's (null-handshake-capture.txt).
    let mut expected = b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER".to_vec();
    expected.extend_from_slice(b"\x08Identity\x00\x00\x00\x00");
    assert_eq!(raw.read_exact(expected.len(), &mut router), expected);
    assert_eq!(raw.read_frame(&mut router), (0x04, b"\x04PONGLOL".to_vec()));
    let mut pong_long = b"\x04PONG".to_vec();
    pong_long.extend_from_slice(&context[..16]);
    let (flags, body) = raw.read_frame(&mut router);
    assert_eq!((flags, body.len()), (0x04, 0x15));
    assert_eq!(body, pong_long);

    let conn = &router.conns[0];
    assert_eq!(conn.session.stats().pings_received, 2);
    assert_eq!(conn.session.state(), SessionState::Ready);
}

/// wire.md §11's libzmq probes on MESSAGE flags, replayed against our CURVE ROUTER by a raw peer
/// built from the core's CURVE client: a MESSAGE in an outer COMMAND frame and an unknown
/// command inside a MESSAGE are dropped with the connection kept; an outer MORE glues the frame
/// to the next message. Also checks what we send: MESSAGE as an outer data frame (0x00, or 0x02
/// when long) with MORE/COMMAND only inside the box.
#[test]
fn libzmq_probed_message_flags_against_our_curve_router() {
    let cfg = config(
        SocketType::Router,
        MechanismConfig::CurveServer {
            keypair: server_keys(),
        },
    );
    let mut router = Router::bind(cfg, 11);
    let mut raw = RawPeer::connect(&router);
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    greeting.extend_from_slice(b"CURVE");
    greeting.resize(64, 0);
    raw.write(&greeting);
    assert_eq!(
        raw.read_exact(64, &mut router),
        greeting,
        "our CURVE server greeting: as-server 0, like libzmq"
    );

    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let mut client = CurveClient::new(&client_keys(), *server_keys().public(), &mut rng).unwrap();
    raw.write_frame(0x04, &client.hello().unwrap());
    let (flags, welcome) = raw.read_frame(&mut router);
    assert_eq!((flags, welcome.len()), (0x04, 168));
    let metadata = b"\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x03raw";
    let initiate = client.handle_welcome(&welcome, metadata, &mut rng).unwrap();
    raw.write_frame(0x04, &initiate);
    let (flags, ready) = raw.read_frame(&mut router);
    assert_eq!(
        (flags, ready.len()),
        (0x04, 65),
        "READY like a libzmq ROUTER's"
    );
    let (server_md, mut codec) = client.handle_ready(&ready).unwrap();
    assert_eq!(
        server_md,
        b"\x0bSocket-Type\x00\x00\x00\x06ROUTER\x08Identity\x00\x00\x00\x00"
    );

    let mut seal = |flags: u8, payload: &[u8]| {
        let mut body = Vec::new();
        codec.seal(flags, payload, &mut body).unwrap();
        body
    };
    let in_command_frame = seal(0, b"dropped");
    let unknown_command = seal(FLAG_COMMAND, b"\x03FOO");
    let glued = seal(0, b"glued");
    let tail = seal(0, b"tail");
    raw.write_frame(0x04, &in_command_frame);
    raw.write_frame(0x00, &unknown_command);
    raw.write_frame(0x01, &glued);
    raw.write_frame(0x00, &tail);
    let m = router.recv().expect("the glued message");
    assert_eq!(
        to_vecs(&m),
        vec![b"raw".to_vec(), b"glued".to_vec(), b"tail".to_vec()]
    );
    let stats = router.conns[0].session.stats();
    assert_eq!(
        stats.unknown_commands, 2,
        "both dropped silently: {stats:?}"
    );
    assert_eq!(stats.messages_received, 1);

    // What we send: one MESSAGE per frame, outer flags 0x00 / 0x02, payload flags inside.
    assert!(router.send(b"raw", parts(&[b"first", &[0x5a; 300]])));
    let (outer, body) = raw.read_frame(&mut router);
    assert_eq!(outer, 0x00);
    assert_eq!(codec.open(&body).unwrap(), (FLAG_MORE, b"first".to_vec()));
    let (outer, body) = raw.read_frame(&mut router);
    assert_eq!(
        outer, 0x02,
        "long data frame, never COMMAND or MORE outside"
    );
    assert_eq!(codec.open(&body).unwrap(), (0, vec![0x5a; 300]));
    assert!(router.conns[0].closed().is_none());
}
