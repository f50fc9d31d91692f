//! Failing handshakes against real libzmq: wrong CURVE server keys both ways, a client we deny,
//! and a libzmq ZAP handler that refuses us. In every case no application message gets
//! through, and each side fails the way libzmq's own tests expect.
//!
//! Every test name contains `libzmq`, so `cargo test -p lokimq-tests libzmq` runs them all.

#[path = "libzmq_support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use lokimq_core::curve::{CurveError, Stage};
use lokimq_core::session::{AuthDecision, DenyStatus, MechanismConfig, SessionError};
use lokimq_core::zmtp::SocketType;
use support::*;

/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC` monitor value.
const ZMTP_CRYPTOGRAPHIC: u32 = 0x1100_0001;

/// How long to keep watching for a message that must never arrive.
const QUIET: Duration = Duration::from_millis(300);

fn curve_router(ctx: &zmq::Context) -> (zmq::Socket, std::net::SocketAddr) {
    let router = zsocket(ctx, zmq::ROUTER);
    set_curve_server(&router);
    let addr = zbind(&router);
    (router, addr)
}

#[test]
fn libzmq_curve_server_drops_our_client_with_a_wrong_server_key() {
    let ctx = zmq::Context::new();
    let (router, addr) = curve_router(&ctx);
    let mut mon = Monitor::new(&ctx, &router);
    let cfg = config(
        SocketType::Dealer,
        MechanismConfig::CurveClient {
            keypair: client_keys(),
            server_key: *other_keys(99).public(),
        },
    );
    let mut conn = Conn::connect(addr, cfg, 1);
    conn.send(parts(&[b"must not arrive"]));

    // libzmq cannot open our HELLO and closes silently.
    conn.wait_closed_by_libzmq();
    assert!(!conn.is_ready());
    assert!(conn.messages().is_empty());
    run_for(QUIET, || {
        conn.step(STEP);
        mon.poll();
        assert!(try_recv(&router).is_none(), "libzmq delivered a message");
    });
    assert!(
        mon.has(
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL,
            Some(ZMTP_CRYPTOGRAPHIC)
        ),
        "libzmq reports a cryptographic handshake failure: {:?}",
        mon.seen
    );
}

#[test]
fn libzmq_curve_client_with_a_wrong_server_key_fails_our_server() {
    let mut cfg = config(
        SocketType::Router,
        MechanismConfig::CurveServer {
            keypair: server_keys(),
        },
    );
    cfg.auth_required = true;
    let mut router = Router::bind(cfg, 2);
    router.auth = Some(AuthDecision::allow(Bytes::new(), Vec::new()));

    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    let keys = client_keys();
    set_curve_client(&dealer, other_keys(99).public(), &keys);
    dealer.connect(&router.endpoint()).unwrap();
    zsend(&dealer, &[b"must not arrive"]);

    let failed = wait_until(BOUND, || {
        router.step(STEP);
        router.conns.first().and_then(|c| c.closed().cloned())
    })
    .expect("our server fails the handshake");
    assert_eq!(
        failed,
        SessionError::Crypto(CurveError::Cryptographic {
            stage: Stage::Hello
        })
    );
    run_for(QUIET, || router.step(STEP));
    // libzmq reconnects after a silent close; every attempt fails the same way.
    for c in &router.conns {
        if let Some(e) = c.closed() {
            assert_eq!(e, &failed);
        }
        assert!(c.auth_requests.is_empty(), "never reached authentication");
        assert!(!c.is_ready());
    }
    assert!(router.received.is_empty());
    assert!(router.table.is_empty());
}

fn denied_by_our_router(curve: bool) {
    let mut cfg = config(SocketType::Router, router_mechanism(curve));
    cfg.auth_required = true;
    let mut router = Router::bind(cfg, 3);
    router.auth = Some(AuthDecision::deny(DenyStatus::Denied));

    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    let keys = client_keys();
    if curve {
        set_curve_client(&dealer, server_keys().public(), &keys);
    }
    let mut mon = Monitor::new(&ctx, &dealer);
    dealer.connect(&router.endpoint()).unwrap();
    zsend(&dealer, &[b"let me in"]);

    let saw = wait_until(BOUND, || {
        router.step(STEP);
        mon.poll();
        mon.has(zmq::SocketEvent::HANDSHAKE_FAILED_AUTH, Some(400))
            .then_some(())
    });
    assert!(
        saw.is_some(),
        "libzmq reports ERROR 400 from our ROUTER: {:?}",
        mon.seen
    );
    let conn = &router.conns[0];
    assert_eq!(
        conn.closed(),
        Some(&SessionError::AuthDenied(DenyStatus::Denied))
    );
    let expected_key = curve.then(|| *keys.public());
    assert_eq!(conn.auth_requests.len(), 1);
    assert_eq!(conn.auth_requests[0].1, expected_key);

    // libzmq treats ERROR 400 as permanent: it does not reconnect, and nothing is delivered.
    run_for(QUIET, || router.step(STEP));
    assert_eq!(router.conns.len(), 1, "libzmq did not reconnect");
    assert!(router.received.is_empty());
    assert!(router.table.is_empty());
    assert!(!router.conns[0].is_ready());
}

#[test]
fn libzmq_curve_dealer_denied_by_our_router_gets_error_400() {
    denied_by_our_router(true);
}

#[test]
fn libzmq_null_dealer_denied_by_our_router_gets_error_400() {
    denied_by_our_router(false);
}

/// Our DEALER against a libzmq ROUTER that consults a ZAP handler answering `status`.
fn against_libzmq_zap(curve: bool, status: &'static str) {
    let ctx = zmq::Context::new();
    let zap = ZapHandler::start(&ctx, status);
    let router = zsocket(&ctx, zmq::ROUTER);
    // NULL consults ZAP only with a domain; set one for both mechanisms.
    router.set_zap_domain("test").unwrap();
    if curve {
        set_curve_server(&router);
    }
    let mechanism = dealer_mechanism(curve);
    let addr = zbind(&router);
    let mut cfg = config(SocketType::Dealer, mechanism);
    cfg.routing_id = Bytes::from_static(b"zap-client");
    let mut conn = Conn::connect(addr, cfg, 4);
    conn.send(parts(&[b"payload"]));

    if status == "200" {
        let mut got = wait_until(BOUND, || {
            conn.step(STEP);
            try_recv_msgs(&router)
        })
        .expect("accepted by ZAP");
        assert_eq!(&got[1][..], b"payload");
        assert_eq!(got[1].gets("User-Id"), Some("user"));
    } else {
        let err = wait_until(BOUND, || {
            conn.step(STEP);
            conn.closed().cloned()
        })
        .expect("our session fails");
        assert!(
            matches!(&err, SessionError::PeerError(r) if r.as_bytes() == status.as_bytes()),
            "{err:?}"
        );
        assert_eq!(err.peer_status_code(), status.parse().ok());
        assert!(!conn.is_ready());
        run_for(QUIET, || {
            conn.step(STEP);
            assert!(try_recv(&router).is_none(), "libzmq delivered our message");
        });
    }

    let requests = zap.finish();
    assert_eq!(requests.len(), 1, "one ZAP request");
    let r = &requests[0];
    assert_eq!(r[0], b"1.0");
    assert_eq!(r[2], b"test");
    assert_eq!(r[3], b"127.0.0.1");
    if curve {
        assert_eq!(r[5], b"CURVE");
        assert_eq!(
            r[6],
            client_keys().public().as_bytes(),
            "ZAP saw our long-term key from INITIATE"
        );
    } else {
        assert_eq!(r[5], b"NULL");
        assert_eq!(r.len(), 6);
    }
}

#[test]
fn libzmq_zap_400_refuses_our_curve_dealer() {
    against_libzmq_zap(true, "400");
}

#[test]
fn libzmq_zap_500_refuses_our_curve_dealer() {
    against_libzmq_zap(true, "500");
}

#[test]
fn libzmq_zap_400_refuses_our_null_dealer() {
    against_libzmq_zap(false, "400");
}

#[test]
fn libzmq_zap_200_accepts_our_curve_dealer() {
    against_libzmq_zap(true, "200");
}
