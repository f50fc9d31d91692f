//! Our sessions against real libzmq over loopback TCP: DEALER ↔ ROUTER both ways, NULL and
//! CURVE, routing ids, ROUTER handover, and multipart messages across the frame-size edges.
//!
//! Every test name contains `libzmq`, so `cargo test -p lokimq-tests libzmq` runs them all.

#[path = "libzmq_support/mod.rs"]
mod support;

use bytes::Bytes;
use lokimq_core::session::{AuthDecision, MechanismConfig};
use lokimq_core::zmtp::SocketType;
use support::*;

/// A libzmq ROUTER on an ephemeral port, as a CURVE server with the known keys if `curve`.
fn libzmq_router(ctx: &zmq::Context, curve: bool) -> (zmq::Socket, std::net::SocketAddr) {
    let router = zsocket(ctx, zmq::ROUTER);
    router.set_router_mandatory(true).unwrap();
    if curve {
        set_curve_server(&router);
    }
    let addr = zbind(&router);
    (router, addr)
}

/// A libzmq DEALER, as a CURVE client with `keys` towards the known server if `curve`.
fn libzmq_dealer(
    ctx: &zmq::Context,
    curve: bool,
    keys: &lokimq_core::keys::Keypair,
) -> zmq::Socket {
    let dealer = zsocket(ctx, zmq::DEALER);
    if curve {
        set_curve_client(&dealer, server_keys().public(), keys);
    }
    dealer
}

fn our_dealer_against_libzmq_router(curve: bool) {
    let ctx = zmq::Context::new();
    let (router, addr) = libzmq_router(&ctx, curve);
    let id = l_pubkey(client_keys().public());

    let mut cfg = config(SocketType::Dealer, dealer_mechanism(curve));
    cfg.routing_id = Bytes::from(id.clone());
    cfg.properties = vec![("X-Test".into(), Bytes::from_static(b"from-rust"))];
    let mut conn = Conn::connect(addr, cfg, 1);
    // Sent before the handshake completes: queued, then flushed on READY.
    conn.send(parts(&[b"hello", b"", b"world"]));

    let mut got = wait_until(BOUND, || {
        conn.step(STEP);
        try_recv_msgs(&router)
    })
    .expect("libzmq ROUTER receives our message");
    assert_eq!(got[0].to_vec(), id, "libzmq sees our L+pubkey routing id");
    let body: Vec<Vec<u8>> = got[1..].iter().map(|f| f.to_vec()).collect();
    assert_eq!(
        body,
        vec![b"hello".to_vec(), b"".to_vec(), b"world".to_vec()]
    );
    // libzmq parsed our handshake metadata and attached it to the message.
    assert_eq!(got[1].gets("Socket-Type"), Some("DEALER"));
    assert_eq!(got[1].gets("X-Test"), Some("from-rust"));

    assert!(conn.is_ready());
    let peer = conn.session.peer().expect("peer known");
    assert_eq!(peer.socket_type(), Some(SocketType::Router));
    assert!(
        peer.identity().is_empty(),
        "libzmq ROUTERs send an empty Identity"
    );

    zsend(&router, &[&id, b"reply", b"", b"two"]);
    let msg = wait_until(BOUND, || {
        conn.step(STEP);
        conn.messages().into_iter().next()
    })
    .expect("our DEALER receives libzmq's reply");
    assert_eq!(
        to_vecs(&msg),
        vec![b"reply".to_vec(), b"".to_vec(), b"two".to_vec()]
    );
    assert!(conn.closed().is_none());
    assert!(conn.end.is_none());
}

#[test]
fn libzmq_router_null_talks_to_our_dealer() {
    our_dealer_against_libzmq_router(false);
}

#[test]
fn libzmq_router_curve_talks_to_our_dealer() {
    our_dealer_against_libzmq_router(true);
}

fn libzmq_dealers_against_our_router(curve: bool) {
    let mut cfg = config(SocketType::Router, router_mechanism(curve));
    cfg.properties = vec![("X-Test".into(), Bytes::from_static(b"from-router"))];
    cfg.auth_required = curve;
    let mut router = Router::bind(cfg, 10);
    let user_id = client_keys().public().to_hex();
    router.auth = Some(AuthDecision::allow(
        user_id.clone(),
        vec![("X-AuthLevel".into(), Bytes::from_static(b"admin"))],
    ));

    let ctx = zmq::Context::new();
    // A: routing id L+pubkey. B: no routing id, so our ROUTER generates one.
    let keys_a = client_keys();
    let keys_b = other_keys(7);
    let id_a = l_pubkey(keys_a.public());
    let a = libzmq_dealer(&ctx, curve, &keys_a);
    a.set_identity(&id_a).unwrap();
    let b = libzmq_dealer(&ctx, curve, &keys_b);
    a.connect(&router.endpoint()).unwrap();
    b.connect(&router.endpoint()).unwrap();
    zsend(&a, &[b"from-a", b""]);
    zsend(&b, &[b"from-b"]);

    let mut received = Vec::new();
    while received.len() < 2 {
        received.push(router.recv().expect("both libzmq DEALERs get through"));
    }
    received.sort_by_key(|m| m[0].first() != Some(&b'L'));
    assert_eq!(
        to_vecs(&received[0]),
        vec![id_a.clone(), b"from-a".to_vec(), Vec::new()],
        "A's Identity became its routing id"
    );
    // Generated: 0x00 + u32 BE from the table's counter (started at 0x12345678 in the harness).
    let id_b = received[1][0].clone();
    assert_eq!(id_b.as_ref(), &[0x00, 0x12, 0x34, 0x56, 0x78]);
    assert_eq!(to_vecs(&received[1][1..]), vec![b"from-b".to_vec()]);
    assert_eq!(router.table.len(), 2);

    if curve {
        let mut keys: Vec<_> = router
            .conns
            .iter()
            .map(|c| c.auth_requests.clone())
            .collect();
        keys.sort();
        let mut expect = vec![
            vec![(lokimq_core::zmtp::Mechanism::Curve, Some(*keys_a.public()))],
            vec![(lokimq_core::zmtp::Mechanism::Curve, Some(*keys_b.public()))],
        ];
        expect.sort();
        assert_eq!(
            keys, expect,
            "asked once per client, with its long-term key"
        );
        let key_a = router.table.lookup(&id_a).unwrap();
        let peer = router.conns[key_a].session.peer().unwrap();
        assert_eq!(
            peer.user_id().map(|u| u.to_vec()),
            Some(user_id.into_bytes())
        );
        assert_eq!(peer.property("X-AuthLevel"), Some(&b"admin"[..]));
    } else {
        assert!(router.conns.iter().all(|c| c.auth_requests.is_empty()));
    }
    for c in &router.conns {
        assert_eq!(
            c.session.peer().unwrap().socket_type(),
            Some(SocketType::Dealer)
        );
    }

    assert!(router.send(&id_a, parts(&[b"to-a"])));
    assert!(router.send(&id_b, parts(&[b"to-b", b"", b"2"])));
    assert!(
        !router.send(b"nobody", parts(&[b"x"])),
        "unknown id refused"
    );
    let mut got_a = wait_until(BOUND, || {
        router.step(STEP);
        try_recv_msgs(&a)
    })
    .expect("A receives its reply");
    let got_b = wait_until(BOUND, || {
        router.step(STEP);
        try_recv(&b)
    })
    .expect("B receives its reply");
    assert_eq!(got_a.len(), 1);
    assert_eq!(&got_a[0][..], b"to-a");
    assert_eq!(got_a[0].gets("Socket-Type"), Some("ROUTER"));
    assert_eq!(got_a[0].gets("X-Test"), Some("from-router"));
    assert_eq!(got_b, vec![b"to-b".to_vec(), Vec::new(), b"2".to_vec()]);
    // Nothing crossed over.
    router.step(STEP);
    assert!(try_recv(&a).is_none() && try_recv(&b).is_none());
    assert!(router.conns.iter().all(|c| c.closed().is_none()));
}

#[test]
fn libzmq_dealers_null_talk_to_our_router_with_routing_ids() {
    libzmq_dealers_against_our_router(false);
}

#[test]
fn libzmq_dealers_curve_talk_to_our_router_with_routing_ids_and_auth() {
    libzmq_dealers_against_our_router(true);
}

#[test]
fn libzmq_router_handover_gives_the_identity_to_the_new_connection() {
    let mut router = Router::bind(config(SocketType::Router, MechanismConfig::Null), 20);
    let ctx = zmq::Context::new();
    let id = l_pubkey(client_keys().public());

    let old = zsocket(&ctx, zmq::DEALER);
    old.set_identity(&id).unwrap();
    // Without this the displaced DEALER would reconnect and take the id back.
    old.set_reconnect_ivl(-1).unwrap();
    let mut old_mon = Monitor::new(&ctx, &old);
    old.connect(&router.endpoint()).unwrap();
    zsend(&old, &[b"one"]);
    let m = router.recv().expect("first connection");
    assert_eq!(to_vecs(&m), vec![id.clone(), b"one".to_vec()]);
    let first_key = router.table.lookup(&id).unwrap();

    let new = zsocket(&ctx, zmq::DEALER);
    new.set_identity(&id).unwrap();
    new.connect(&router.endpoint()).unwrap();
    zsend(&new, &[b"two"]);
    let m = router.recv().expect("second connection");
    assert_eq!(to_vecs(&m), vec![id.clone(), b"two".to_vec()]);
    let second_key = router.table.lookup(&id).unwrap();
    assert_ne!(first_key, second_key, "the new connection holds the id");
    assert_eq!(router.displaced, vec![first_key]);
    assert_eq!(router.table.len(), 1);

    // The old libzmq DEALER sees its connection closed by us.
    let dropped = wait_until(BOUND, || {
        router.step(STEP);
        old_mon.poll();
        old_mon
            .has(zmq::SocketEvent::DISCONNECTED, None)
            .then_some(())
    });
    assert!(
        dropped.is_some(),
        "displaced connection closed: {:?}",
        old_mon.seen
    );

    assert!(router.send(&id, parts(&[b"to-new"])));
    let got = wait_until(BOUND, || {
        router.step(STEP);
        try_recv(&new)
    })
    .expect("the new connection gets traffic for the id");
    assert_eq!(got, vec![b"to-new".to_vec()]);
    assert!(try_recv(&old).is_none());
}

/// Frames around every size edge: empty frames first, in the middle and last, 1 byte, the
/// 255/256 short/long size-form boundary, and a frame just under 1 MiB.
fn edge_message() -> Vec<Bytes> {
    vec![
        Bytes::new(),
        Bytes::from_static(b"a"),
        Bytes::from(vec![0x55; 255]),
        Bytes::from(vec![0xAA; 256]),
        Bytes::new(),
        Bytes::from(
            (0..(1usize << 20) - 100)
                .map(|i| i as u8)
                .collect::<Vec<u8>>(),
        ),
        Bytes::from(vec![0x01; 257]),
        Bytes::new(),
    ]
}

fn as_slices(m: &[Bytes]) -> Vec<&[u8]> {
    m.iter().map(|b| b.as_ref()).collect()
}

fn multipart_edges_our_dealer(curve: bool) {
    let ctx = zmq::Context::new();
    let (router, addr) = libzmq_router(&ctx, curve);
    let mut cfg = config(SocketType::Dealer, dealer_mechanism(curve));
    cfg.routing_id = Bytes::from_static(b"edge-dealer");
    let mut conn = Conn::connect(addr, cfg, 30);
    let big = edge_message();
    conn.send(big.clone());
    // A message made of one empty frame.
    conn.send(vec![Bytes::new()]);

    let got = wait_until(BOUND, || {
        conn.step(STEP);
        try_recv(&router)
    })
    .expect("libzmq receives the edge message");
    assert_eq!(got[0], b"edge-dealer");
    assert_eq!(got[1..].to_vec(), to_vecs(&big));
    let got = wait_until(BOUND, || {
        conn.step(STEP);
        try_recv(&router)
    })
    .expect("libzmq receives the single empty frame");
    assert_eq!(got, vec![b"edge-dealer".to_vec(), Vec::new()]);

    let mut frames = vec![&b"edge-dealer"[..]];
    frames.extend(as_slices(&big));
    zsend(&router, &frames);
    zsend(&router, &[b"edge-dealer", b""]);
    let msgs = wait_until(BOUND, || {
        conn.step(STEP);
        let m = conn.messages();
        (m.len() == 2).then_some(m)
    })
    .expect("we receive both messages from libzmq");
    assert_eq!(msgs[0], big);
    assert_eq!(msgs[1], vec![Bytes::new()]);
    assert!(
        conn.reads > 2,
        "the big message arrived in many read() chunks"
    );
    assert!(conn.closed().is_none());
}

fn multipart_edges_our_router(curve: bool) {
    let mut cfg = config(SocketType::Router, router_mechanism(curve));
    cfg.auth_required = curve;
    let mut router = Router::bind(cfg, 40);
    router.auth = Some(AuthDecision::allow(Bytes::new(), Vec::new()));
    let ctx = zmq::Context::new();
    let dealer = libzmq_dealer(&ctx, curve, &client_keys());
    dealer.set_identity(b"edge").unwrap();
    dealer.connect(&router.endpoint()).unwrap();
    let big = edge_message();
    zsend(&dealer, &as_slices(&big));
    zsend(&dealer, &[b""]);

    let m = router.recv().expect("our ROUTER receives the edge message");
    assert_eq!(m[0].as_ref(), b"edge");
    assert_eq!(m[1..].to_vec(), big);
    let m = router
        .recv()
        .expect("our ROUTER receives the single empty frame");
    assert_eq!(to_vecs(&m), vec![b"edge".to_vec(), Vec::new()]);

    assert!(router.send(b"edge", big.clone()));
    assert!(router.send(b"edge", vec![Bytes::new()]));
    let got = wait_until(BOUND, || {
        router.step(STEP);
        try_recv(&dealer)
    })
    .expect("libzmq receives the edge message");
    assert_eq!(got, to_vecs(&big));
    let got = wait_until(BOUND, || {
        router.step(STEP);
        try_recv(&dealer)
    })
    .expect("libzmq receives the single empty frame");
    assert_eq!(got, vec![Vec::<u8>::new()]);
    assert!(router.conns[0].reads > 2);
    assert!(router.conns[0].closed().is_none());
}

#[test]
fn libzmq_multipart_edges_null_our_dealer() {
    multipart_edges_our_dealer(false);
}

#[test]
fn libzmq_multipart_edges_curve_our_dealer() {
    multipart_edges_our_dealer(true);
}

#[test]
fn libzmq_multipart_edges_null_our_router() {
    multipart_edges_our_router(false);
}

#[test]
fn libzmq_multipart_edges_curve_our_router() {
    multipart_edges_our_router(true);
}
