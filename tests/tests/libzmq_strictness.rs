//! The places where we are deliberately stricter than libzmq 4.3 and OxenMQ
//! (docs/divergences.md, "Deliberately stricter than libzmq and OxenMQ"). Each rule is shown
//! twice: a hostile peer that we close (raw bytes on a real loopback socket), and the real
//! peers the rule could touch, which we accept: live libzmq sockets on the same paths, and the
//! recorded OxenMQ 1.2.16 conversations in `vectors/`.
//!
//! The five rules: a vouch naming another server key; a handshake command over 64 KiB (an
//! INITIATE carrying 100–500 KiB of metadata); a PING without its 2-byte TTL (inside a CURVE
//! MESSAGE or as a NULL command frame); a handshake command (HELLO, READY) sent as a data frame;
//! and an incompatible or unknown `Socket-Type`, which we refuse after our READY has gone out.
//!
//! Every test name contains `libzmq`, so `cargo test -p lokimq-tests libzmq` runs them all.

#[path = "libzmq_support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use lokimq_core::crypto::default_provider;
use lokimq_core::curve::{CurveClient, CurveCodec, CurveError, FLAG_COMMAND};
use lokimq_core::keys::SecretKey;
use lokimq_core::session::config::HANDSHAKE_COMMAND_LIMIT;
use lokimq_core::session::{
    AuthDecision, MechanismConfig, Session, SessionConfig, SessionError, SessionEvent, SessionState,
};
use lokimq_core::time::Instant;
use lokimq_core::zmtp::{FrameDecoder, HeartbeatConfig, Metadata, SocketType, ZmtpError};
use lokimq_tests::capture::{Run, parse_runs};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::*;

/// The largest handshake command body we accept (the session's cap, also under CURVE).
const LIMIT: usize = HANDSHAKE_COMMAND_LIMIT as usize;
/// An INITIATE body without metadata: name, cookie, nonce, box of C ‖ Vn ‖ vouch.
const INITIATE_WITHOUT_METADATA: usize = 257;
/// libzmq's `ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA` monitor value.
const ZMTP_INVALID_METADATA: u32 = 0x1000_0018;
/// The longest routing id libzmq lets a socket set (`ZMQ_ROUTING_ID`).
const MAX_ROUTING_ID: usize = 255;

/// A 64-byte ZMTP 3.1 greeting for `mechanism`, as libzmq writes it with no routing id.
fn greeting(mechanism: &[u8]) -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    g.extend_from_slice(mechanism);
    g.resize(64, 0);
    g
}

/// ZMTP metadata in libzmq's layout (`add_basic_properties`): `Socket-Type`, `Identity`
/// (omitted if `None`), then the `X-` properties in the order given (libzmq sorts them).
fn metadata(socket_type: &[u8], identity: Option<&[u8]>, props: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |name: &[u8], value: &[u8]| {
        out.push(u8::try_from(name.len()).expect("names are at most 255 bytes"));
        out.extend_from_slice(name);
        out.extend_from_slice(&u32::try_from(value.len()).expect("fits").to_be_bytes());
        out.extend_from_slice(value);
    };
    put(b"Socket-Type", socket_type);
    if let Some(id) = identity {
        put(b"Identity", id);
    }
    for (name, value) in props {
        put(name.as_bytes(), value);
    }
    out
}

/// One property's encoded size: name length byte, name, value length, value.
fn property_len(name: &str, value_len: usize) -> usize {
    1 + name.len() + 4 + value_len
}

/// A CURVE ROUTER of ours with the known server keys and no authentication step.
fn our_curve_router(seed: u64) -> Router {
    Router::bind(config(SocketType::Router, router_mechanism(true)), seed)
}

/// A hand-driven CURVE client on a raw socket: the core's [`CurveClient`] makes the commands,
/// and `short` is its short-term secret c', reproduced from the client's first RNG draw so a
/// test can forge what the client would never send.
struct RawCurve {
    raw: RawPeer,
    client: CurveClient,
    rng: ChaCha20Rng,
    short: SecretKey,
    hello: Vec<u8>,
}

impl RawCurve {
    /// Connects to `router` and exchanges greetings; HELLO is made but not sent.
    fn connect(router: &mut Router, seed: u64) -> Self {
        let mut raw = RawPeer::connect(router);
        raw.write(&greeting(b"CURVE"));
        assert_eq!(raw.read_exact(64, router), greeting(b"CURVE"));
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        // CurveClient::new draws c' first (its documented RNG order): draw it again here.
        let short = SecretKey::generate(&mut rng.clone());
        let mut client = CurveClient::new(&client_keys(), *server_keys().public(), &mut rng)
            .expect("a valid server key");
        let hello = client.hello().expect("HELLO");
        assert_eq!(
            &hello[80..112],
            short.public_key().as_bytes(),
            "c' reproduced: HELLO carries its public half C'"
        );
        Self {
            raw,
            client,
            rng,
            short,
            hello,
        }
    }

    /// Sends HELLO as a command frame and returns the WELCOME body.
    fn welcome(&mut self, router: &mut Router) -> Vec<u8> {
        self.raw.write_frame(0x04, &self.hello);
        let (flags, welcome) = self.raw.read_frame(router);
        assert_eq!((flags, welcome.len()), (0x04, 168), "WELCOME");
        welcome
    }

    /// Handles WELCOME and returns the INITIATE body carrying `metadata`.
    fn initiate(&mut self, welcome: &[u8], metadata: &[u8]) -> Vec<u8> {
        self.client
            .handle_welcome(welcome, metadata, &mut self.rng)
            .expect("INITIATE")
    }

    /// Runs the whole handshake with `metadata` and returns the codec for MESSAGEs.
    fn ready(&mut self, router: &mut Router, metadata: &[u8]) -> CurveCodec {
        let welcome = self.welcome(router);
        let initiate = self.initiate(&welcome, metadata);
        self.raw.write_frame(0x04, &initiate);
        let (flags, ready) = self.raw.read_frame(router);
        assert_eq!(flags, 0x04, "READY is a command frame");
        let (_, codec) = self.client.handle_ready(&ready).expect("our READY opens");
        codec
    }
}

fn nonce(prefix: &[u8], suffix: &[u8]) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(suffix);
    n
}

/// Rebuilds a genuine INITIATE with a vouch `Box[C' ‖ vouched](C→S')` naming `vouched` as the
/// server key (libzmq clients always put the key they sealed HELLO to there). Everything else,
/// the vouch nonce and the INITIATE nonce included, is kept.
fn reseal_vouch(c: &RawCurve, welcome: &[u8], initiate: &[u8], vouched: &[u8; 32]) -> Vec<u8> {
    let p = default_provider();
    // WELCOME = name (8) ‖ nonce suffix (16) ‖ Box[S' ‖ cookie](S→C'), tag first.
    let welcome_key = p
        .beforenm(&c.short, server_keys().public().as_bytes())
        .expect("S is a valid key");
    let tag: [u8; 16] = welcome[24..40].try_into().expect("tag");
    let mut plain = welcome[40..].to_vec();
    p.open_in_place(
        &welcome_key,
        &nonce(b"WELCOME-", &welcome[8..24]),
        &mut plain,
        &tag,
    )
    .expect("our WELCOME opens with c'");
    let server_short: [u8; 32] = plain[..32].try_into().expect("S'");

    // INITIATE = name (9) ‖ cookie (96) ‖ nonce (8) ‖ Box[C ‖ Vn ‖ vouch ‖ metadata](C'→S').
    let session = p.beforenm(&c.short, &server_short).expect("S' is valid");
    let initiate_nonce = nonce(b"CurveZMQINITIATE", &initiate[105..113]);
    let tag: [u8; 16] = initiate[113..129].try_into().expect("tag");
    let mut plain = initiate[129..].to_vec();
    p.open_in_place(&session, &initiate_nonce, &mut plain, &tag)
        .expect("the INITIATE box opens with c' and S'");

    let mut content = [0u8; 64];
    content[..32].copy_from_slice(c.short.public_key().as_bytes());
    content[32..].copy_from_slice(vouched);
    let vouch_key = p
        .beforenm(client_keys().secret(), &server_short)
        .expect("S' is valid");
    let vouch_tag = p.seal_in_place(
        &vouch_key,
        &nonce(b"VOUCH---", &plain[32..48]),
        &mut content,
    );
    plain[48..64].copy_from_slice(&vouch_tag);
    plain[64..128].copy_from_slice(&content);
    let tag = p.seal_in_place(&session, &initiate_nonce, &mut plain);
    let mut out = initiate[..113].to_vec();
    out.extend_from_slice(&tag);
    out.extend_from_slice(&plain);
    out
}

/// The error our only connection closed with.
fn closed_with(router: &Router) -> SessionError {
    router.conns[0]
        .closed()
        .cloned()
        .expect("our session closed")
}

// ---------------------------------------------------------------------------------------------
// 1. The vouch must name our server key.

#[test]
fn libzmq_strict_vouch_naming_another_server_key_is_closed_silently() {
    for vouched in [[0u8; 32], *other_keys(7).public().as_bytes()] {
        let mut router = our_curve_router(20);
        let mut c = RawCurve::connect(&mut router, 21);
        let welcome = c.welcome(&mut router);
        let initiate = c.initiate(&welcome, &metadata(b"DEALER", Some(b"v"), &[]));
        let forged = reseal_vouch(&c, &welcome, &initiate, &vouched);
        c.raw.write_frame(0x04, &forged);
        let after = c.raw.read_until_closed(&mut router);
        assert!(after.is_empty(), "no READY and no ERROR: {after:02x?}");
        assert_eq!(
            closed_with(&router),
            SessionError::Crypto(CurveError::VouchServerKey)
        );
        assert!(router.received.is_empty() && router.table.is_empty());
    }
}

/// Control for the test above: the same forging path with the right S is accepted, so the
/// refusal is about the vouched key and nothing else.
#[test]
fn libzmq_strict_resealed_vouch_naming_our_key_is_accepted() {
    let mut router = our_curve_router(22);
    let mut c = RawCurve::connect(&mut router, 23);
    let welcome = c.welcome(&mut router);
    let initiate = c.initiate(&welcome, &metadata(b"DEALER", Some(b"v"), &[]));
    let server = *server_keys().public().as_bytes();
    let resealed = reseal_vouch(&c, &welcome, &initiate, &server);
    // Same keys, nonces and contents: the forging path reproduces the genuine INITIATE byte
    // for byte, so in the test above only the 32 vouched bytes differ.
    assert_eq!(resealed, initiate);
    c.raw.write_frame(0x04, &resealed);
    let (flags, ready) = c.raw.read_frame(&mut router);
    assert_eq!(flags, 0x04);
    let (_, mut codec) = c.client.handle_ready(&ready).expect("READY");
    let mut body = Vec::new();
    codec.seal(0, b"vouched", &mut body).unwrap();
    c.raw.write_frame(0x00, &body);
    let m = router.recv().expect("message after the handshake");
    assert_eq!(to_vecs(&m), vec![b"v".to_vec(), b"vouched".to_vec()]);
}

// ---------------------------------------------------------------------------------------------
// 2. Handshake commands are capped at 64 KiB.

/// Sends an INITIATE whose body is `body_len` bytes (Socket-Type, a 255-byte Identity and one
/// `X-Padding` property) and returns what our router answered before closing, or the READY.
fn initiate_of_size(body_len: usize, seed: u64) -> (Router, Result<Vec<u8>, Vec<u8>>) {
    let id = [b'i'; MAX_ROUTING_ID];
    let base = metadata(b"DEALER", Some(&id), &[]).len();
    let value_len = body_len - INITIATE_WITHOUT_METADATA - base - property_len("X-Padding", 0);
    let padding = vec![b'p'; value_len];
    let md = metadata(b"DEALER", Some(&id), &[("X-Padding", &padding)]);
    let mut router = our_curve_router(seed);
    let mut c = RawCurve::connect(&mut router, seed + 1);
    let welcome = c.welcome(&mut router);
    let initiate = c.initiate(&welcome, &md);
    assert_eq!(initiate.len(), body_len);
    let mut frame = vec![0x06];
    frame.extend_from_slice(&(initiate.len() as u64).to_be_bytes());
    frame.extend_from_slice(&initiate);
    // Our side may close while the rest is in flight: a failed write is part of the outcome.
    let _ = c.raw.write_pumping(&frame, &mut router);
    let settled = wait_until(BOUND, || {
        router.step(STEP);
        let conn = &router.conns[0];
        (conn.closed().is_some() || conn.is_ready()).then_some(())
    });
    assert!(settled.is_some(), "our router neither refused nor accepted");
    let answer = if router.conns[0].closed().is_some() {
        Err(c.raw.read_until_closed(&mut router))
    } else {
        let (flags, ready) = c.raw.read_frame(&mut router);
        assert_eq!(flags, 0x04);
        c.client.handle_ready(&ready).expect("READY opens");
        Ok(ready)
    };
    (router, answer)
}

#[test]
fn libzmq_strict_initiate_with_100_to_500_kib_of_metadata_is_closed() {
    for (i, kib) in [100usize, 256, 500].into_iter().enumerate() {
        let body_len = kib * 1024;
        let (router, answer) = initiate_of_size(body_len, 30 + 2 * i as u64);
        let after = answer.expect_err("refused");
        assert!(
            after.is_empty(),
            "no READY, no ERROR: {} bytes",
            after.len()
        );
        assert_eq!(
            closed_with(&router),
            SessionError::Protocol(ZmtpError::FrameTooLarge {
                size: body_len as u64,
                limit: HANDSHAKE_COMMAND_LIMIT,
            }),
            "refused from the frame header, before buffering the body"
        );
        // Greeting, HELLO and the INITIATE's 9-byte frame header: none of the body.
        assert_eq!(
            router.conns[0].session.stats().bytes_received,
            64 + 2 + 200 + 9
        );
    }
}

/// The cap's edge: an INITIATE of exactly 64 KiB (a 255-byte routing id plus about 64 000 bytes
/// of `X-` properties, over a hundred times what any libzmq or OxenMQ client sends) is
/// accepted; one byte more is not.
#[test]
fn libzmq_strict_initiate_at_the_handshake_limit_is_accepted_one_byte_more_is_not() {
    let (router, answer) = initiate_of_size(LIMIT, 40);
    answer.expect("an INITIATE of exactly 64 KiB is accepted");
    let peer = router.conns[0].session.peer().expect("ready");
    assert_eq!(peer.identity().len(), MAX_ROUTING_ID);
    assert_eq!(
        peer.property("X-Padding").map(<[u8]>::len),
        Some(
            LIMIT
                - INITIATE_WITHOUT_METADATA
                - metadata(b"DEALER", Some(&[0; MAX_ROUTING_ID]), &[]).len()
                - property_len("X-Padding", 0)
        )
    );

    let (router, answer) = initiate_of_size(LIMIT + 1, 42);
    answer.expect_err("one byte more is refused");
    assert_eq!(
        closed_with(&router),
        SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: LIMIT as u64 + 1,
            limit: HANDSHAKE_COMMAND_LIMIT,
        })
    );
}

/// What real libzmq puts into its handshake metadata (`add_basic_properties`): Socket-Type and
/// the routing id, at most 255 bytes; OxenMQ never sets `ZMQ_METADATA`. A libzmq DEALER with
/// the longest routing id libzmq allows is accepted by our ROUTER under NULL and CURVE, and
/// its handshake command is a few hundred bytes.
#[test]
fn libzmq_dealer_with_a_255_byte_routing_id_is_accepted_null_and_curve() {
    for curve in [false, true] {
        let mut router = Router::bind(config(SocketType::Router, router_mechanism(curve)), 44);
        let ctx = zmq::Context::new();
        let dealer = zsocket(&ctx, zmq::DEALER);
        let id: Vec<u8> = (0..MAX_ROUTING_ID).map(|i| b'a' + (i % 26) as u8).collect();
        dealer.set_identity(&id).unwrap();
        if curve {
            set_curve_client(&dealer, server_keys().public(), &client_keys());
        }
        dealer.connect(&router.endpoint()).unwrap();
        zsend(&dealer, &[b"long id"]);
        let m = router.recv().expect("message from the long-id dealer");
        assert_eq!(to_vecs(&m), vec![id.clone(), b"long id".to_vec()]);
        let conn = &router.conns[0];
        let peer = conn.session.peer().expect("ready");
        assert_eq!(peer.socket_type(), Some(SocketType::Dealer));
        // Greeting (64) + handshake commands + the message: far below the 64 KiB cap.
        let handshake_bytes = conn.session.stats().bytes_received;
        assert!(handshake_bytes < 1024, "{handshake_bytes} bytes");
        assert!(router.send(&id, parts(&[b"back"])));
        let got = wait_until(BOUND, || {
            router.step(STEP);
            try_recv(&dealer)
        })
        .expect("reply reaches libzmq");
        assert_eq!(got, vec![b"back".to_vec()]);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. A PING must carry its 2-byte TTL.

#[test]
fn libzmq_strict_ping_without_ttl_inside_a_curve_message_is_closed() {
    for short_ping in [&b"\x04PING"[..], b"\x04PING\x00"] {
        let mut router = our_curve_router(50);
        let mut c = RawCurve::connect(&mut router, 51);
        let mut codec = c.ready(&mut router, &metadata(b"DEALER", Some(b"p"), &[]));
        // Control first: OxenMQ's PING (TTL 0, no context) is answered with a PONG.
        let mut body = Vec::new();
        codec
            .seal(FLAG_COMMAND, b"\x04PING\x00\x00", &mut body)
            .unwrap();
        c.raw.write_frame(0x00, &body);
        let (_, pong) = c.raw.read_frame(&mut router);
        assert_eq!(
            codec.open(&pong).unwrap(),
            (FLAG_COMMAND, b"\x04PONG".to_vec())
        );
        body.clear();
        codec.seal(FLAG_COMMAND, short_ping, &mut body).unwrap();
        c.raw.write_frame(0x00, &body);
        let after = c.raw.read_until_closed(&mut router);
        assert!(after.is_empty(), "no PONG: {after:02x?}");
        assert!(
            matches!(
                closed_with(&router),
                SessionError::Protocol(ZmtpError::MalformedCommand {
                    command: "PING",
                    ..
                })
            ),
            "{:?}",
            closed_with(&router)
        );
        assert_eq!(router.conns[0].session.stats().pings_received, 1);
    }
}

/// A raw NULL DEALER's greeting and READY, the READY sent with frame `flags` (0x04: as the
/// command it is; 0x00: as a data frame).
fn null_dealer_greeting_and_ready(raw: &mut RawPeer, flags: u8) {
    raw.write(&greeting(b"NULL"));
    raw.write_frame(
        flags,
        &[b"\x05READY", &metadata(b"DEALER", Some(b""), &[])[..]].concat(),
    );
}

#[test]
fn libzmq_strict_ping_without_ttl_in_a_null_command_frame_is_closed() {
    let mut router = Router::bind(config(SocketType::Router, MechanismConfig::Null), 52);
    let mut raw = RawPeer::connect(&router);
    null_dealer_greeting_and_ready(&mut raw, 0x04);
    raw.write_frame(0x04, b"\x04PING");
    let after = raw.read_until_closed(&mut router);
    // Our greeting and READY, and no PONG.
    assert_eq!(after.len(), 64 + 2 + 0x29, "{after:02x?}");
    assert!(matches!(
        closed_with(&router),
        SessionError::Protocol(ZmtpError::MalformedCommand {
            command: "PING",
            ..
        })
    ));
}

/// What libzmq 4.3 does with the same PING: it reads the TTL and a 16-byte context past the end
/// of the 5-byte command (`size − 7` wraps), so its PONG echoes 16 bytes that the peer never
/// sent. This is the behaviour the rule above refuses to copy.
#[test]
fn libzmq_answers_a_ping_without_ttl_with_16_bytes_it_was_never_sent() {
    let ctx = zmq::Context::new();
    let router = zsocket(&ctx, zmq::ROUTER);
    let addr = zbind(&router);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, BOUND).expect("connect");
    stream.set_read_timeout(Some(BOUND)).unwrap();
    // Lock-step, as our sessions behave: libzmq 4.3 refuses any command that arrives before
    // it has sent its own READY (UNEXPECTED_COMMAND), so the PING waits for libzmq's READY.
    let mut head = vec![0u8; 10];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0xff, "libzmq's signature");
    stream.write_all(&greeting(b"NULL")).unwrap();
    let mut ready = vec![0x04, 0x29, 0x05];
    ready.extend_from_slice(b"READY");
    ready.extend_from_slice(&metadata(b"DEALER", Some(b""), &[]));
    stream.write_all(&ready).unwrap();
    // The rest of libzmq's greeting (54) and its READY (2 + 0x29).
    let mut head = vec![0u8; 54 + 2 + 0x29];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head[56..62], b"\x05READY");
    stream.write_all(b"\x04\x05\x04PING").unwrap();
    let mut pong_header = [0u8; 2];
    stream.read_exact(&mut pong_header).unwrap();
    assert_eq!(
        pong_header,
        [0x04, 0x15],
        "a PONG with a 16-byte context, from a PING that had none"
    );
    let mut pong = [0u8; 0x15];
    stream.read_exact(&mut pong).unwrap();
    assert_eq!(&pong[..5], b"\x04PONG");
}

/// One step of `router`, which echoes every message it received back to its sender; then what
/// reached `dealer` is added to `echoed`.
fn echo_round(router: &mut Router, dealer: &zmq::Socket, echoed: &mut Vec<Vec<Vec<u8>>>) {
    router.step(STEP);
    while !router.received.is_empty() {
        let m = router.received.remove(0);
        assert!(router.send(&m[0], m[1..].to_vec()));
    }
    while let Some(m) = try_recv(dealer) {
        echoed.push(m);
    }
}

/// Real heartbeats, with traffic: a libzmq CURVE DEALER with `ZMQ_HEARTBEAT_IVL`, `_TTL` and
/// `_TIMEOUT` PINGs our ROUTER (which PINGs back) inside CURVE MESSAGEs while both exchange
/// messages; nothing is refused and every message arrives in order.
#[test]
fn libzmq_curve_dealer_with_heartbeats_and_traffic_is_never_refused() {
    let mut cfg = config(SocketType::Router, router_mechanism(true));
    cfg.auth_required = true;
    cfg.heartbeat = Some(HeartbeatConfig {
        interval: Duration::from_millis(40),
        timeout: Duration::from_millis(400),
        ttl: Duration::from_millis(1000),
    });
    let mut router = Router::bind(cfg, 60);
    router.auth = Some(AuthDecision::allow(Bytes::new(), Vec::new()));

    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_identity(b"hb-dealer").unwrap();
    dealer.set_heartbeat_ivl(40).unwrap();
    dealer.set_heartbeat_ttl(1000).unwrap();
    dealer.set_heartbeat_timeout(400).unwrap();
    set_curve_client(&dealer, server_keys().public(), &client_keys());
    let mut mon = Monitor::new(&ctx, &dealer);
    dealer.connect(&router.endpoint()).unwrap();

    let mut sent = 0u32;
    let mut echoed = Vec::new();
    run_for(Duration::from_millis(600), || {
        zsend(&dealer, &[b"n", &sent.to_be_bytes()]);
        sent += 1;
        echo_round(&mut router, &dealer, &mut echoed);
        mon.poll();
    });
    let rest = wait_until(BOUND, || {
        echo_round(&mut router, &dealer, &mut echoed);
        (echoed.len() == sent as usize).then_some(())
    });
    assert!(rest.is_some(), "{} of {sent} echoed", echoed.len());
    for (i, m) in echoed.iter().enumerate() {
        assert_eq!(m, &vec![b"n".to_vec(), (i as u32).to_be_bytes().to_vec()]);
    }
    assert_eq!(router.conns.len(), 1, "no reconnect");
    let conn = &router.conns[0];
    assert_eq!(conn.closed(), None);
    assert_eq!(conn.session.state(), SessionState::Ready);
    let stats = conn.session.stats();
    assert!(stats.pings_received >= 5, "libzmq's PINGs: {stats:?}");
    assert!(stats.pongs_received >= 5, "libzmq's PONGs: {stats:?}");
    mon.poll();
    assert!(
        !mon.has(zmq::SocketEvent::DISCONNECTED, None),
        "{:?}",
        mon.seen
    );
}

/// The other direction: our CURVE DEALER (with heartbeats) and a libzmq ROUTER with
/// `ZMQ_HEARTBEAT_IVL`, `_TTL` and `_TIMEOUT`, exchanging messages while both PING.
#[test]
fn libzmq_curve_router_with_heartbeats_and_traffic_is_never_refused() {
    let ctx = zmq::Context::new();
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_heartbeat_ivl(40).unwrap();
    router.set_heartbeat_ttl(1000).unwrap();
    router.set_heartbeat_timeout(400).unwrap();
    set_curve_server(&router);
    let addr = zbind(&router);
    let mut cfg = config(SocketType::Dealer, dealer_mechanism(true));
    cfg.routing_id = Bytes::from_static(b"hb");
    cfg.heartbeat = Some(HeartbeatConfig {
        interval: Duration::from_millis(40),
        timeout: Duration::from_millis(400),
        ttl: Duration::from_millis(1000),
    });
    let mut conn = Conn::connect(addr, cfg, 61);

    let echo = |conn: &mut Conn| {
        conn.step(STEP);
        while let Some(m) = try_recv(&router) {
            zsend(&router, &m.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    };
    let mut sent = 0u32;
    run_for(Duration::from_millis(600), || {
        conn.send(parts(&[&sent.to_be_bytes()]));
        sent += 1;
        echo(&mut conn);
    });
    let all = wait_until(BOUND, || {
        echo(&mut conn);
        (conn.messages().len() == sent as usize).then_some(())
    });
    assert!(all.is_some(), "{} of {sent} echoed", conn.messages().len());
    for (i, m) in conn.messages().iter().enumerate() {
        assert_eq!(to_vecs(m), vec![(i as u32).to_be_bytes().to_vec()]);
    }
    assert_eq!(conn.closed(), None);
    assert_eq!(conn.session.state(), SessionState::Ready);
    let stats = conn.session.stats();
    assert!(stats.pings_received >= 5, "libzmq's PINGs: {stats:?}");
    assert!(stats.pongs_received >= 5, "libzmq's PONGs: {stats:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. Handshake commands must be command frames.

#[test]
fn libzmq_strict_hello_as_a_data_frame_is_closed() {
    let mut router = our_curve_router(70);
    let mut c = RawCurve::connect(&mut router, 71);
    let hello = c.hello.clone();
    c.raw.write_frame(0x00, &hello);
    let after = c.raw.read_until_closed(&mut router);
    assert!(after.is_empty(), "no WELCOME: {after:02x?}");
    assert_eq!(
        closed_with(&router),
        SessionError::Protocol(ZmtpError::UnexpectedDataFrame)
    );
    // Control: the same HELLO as a command frame gets its WELCOME (the other tests do it too).
    let mut router = our_curve_router(70);
    let mut c = RawCurve::connect(&mut router, 71);
    assert_eq!(c.welcome(&mut router).len(), 168);
}

#[test]
fn libzmq_strict_null_ready_as_a_data_frame_is_closed() {
    let mut router = Router::bind(config(SocketType::Router, MechanismConfig::Null), 72);
    let mut raw = RawPeer::connect(&router);
    null_dealer_greeting_and_ready(&mut raw, 0x00);
    let after = raw.read_until_closed(&mut router);
    assert_eq!(after.len(), 64 + 2 + 0x29, "our greeting and READY only");
    assert_eq!(
        closed_with(&router),
        SessionError::Protocol(ZmtpError::UnexpectedDataFrame)
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Socket-Type: READY goes out, then an incompatible or unknown type is refused.

#[test]
fn libzmq_strict_pub_or_lowercase_dealer_gets_our_ready_then_the_connection_closes() {
    for (socket_type, expected) in [
        (
            &b"PUB"[..],
            ZmtpError::IncompatibleSocketType {
                ours: SocketType::Router,
                peer: SocketType::Pub,
            },
        ),
        (
            b"dealer",
            ZmtpError::UnknownSocketType(lokimq_core::zmtp::WireText::from("dealer")),
        ),
    ] {
        let mut router = our_curve_router(80);
        let mut c = RawCurve::connect(&mut router, 81);
        let welcome = c.welcome(&mut router);
        let initiate = c.initiate(&welcome, &metadata(socket_type, None, &[]));
        c.raw.write_frame(0x04, &initiate);
        let after = c.raw.read_until_closed(&mut router);
        // Exactly one frame: our READY (65 bytes, like a libzmq ROUTER's), then the close.
        assert_eq!(after.len(), 2 + 65, "{after:02x?}");
        assert_eq!(after[0], 0x04);
        let (ours, _) = c.client.handle_ready(&after[2..]).expect("our READY");
        let ours = Metadata::decode(&Bytes::from(ours)).unwrap();
        assert_eq!(
            ours.get("Socket-Type").map(|v| v.to_vec()),
            Some(b"ROUTER".to_vec())
        );
        assert_eq!(closed_with(&router), SessionError::Protocol(expected));
        assert!(router.table.is_empty(), "never attached");
        assert!(
            !router.conns[0].is_ready(),
            "never reported ready to the application"
        );
    }
}

/// A real libzmq PUB connecting to our CURVE ROUTER: it receives our READY, refuses `ROUTER`
/// itself (its monitor says INVALID_METADATA), and we refuse `PUB`. Neither side delivers.
#[test]
fn libzmq_pub_and_our_router_refuse_each_other_after_our_ready() {
    let mut router = our_curve_router(82);
    let ctx = zmq::Context::new();
    let publisher = zsocket(&ctx, zmq::PUB);
    set_curve_client(&publisher, server_keys().public(), &client_keys());
    let mut mon = Monitor::new(&ctx, &publisher);
    publisher.connect(&router.endpoint()).unwrap();
    let saw = wait_until(BOUND, || {
        router.step(STEP);
        mon.poll();
        mon.has(
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL,
            Some(ZMTP_INVALID_METADATA),
        )
        .then_some(())
    });
    assert!(saw.is_some(), "libzmq read our READY: {:?}", mon.seen);
    assert_eq!(
        closed_with(&router),
        SessionError::Protocol(ZmtpError::IncompatibleSocketType {
            ours: SocketType::Router,
            peer: SocketType::Pub,
        })
    );
    assert!(router.received.is_empty() && router.table.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The recorded OxenMQ conversations against every rule.

const OXENMQ_CAPTURES: [(&str, &str); 3] = [
    (
        "oxenmq-server-plain",
        include_str!("../../vectors/oxenmq-server-plain.txt"),
    ),
    (
        "oxenmq-client-plain",
        include_str!("../../vectors/oxenmq-client-plain.txt"),
    ),
    (
        "oxenmq-sn-plain",
        include_str!("../../vectors/oxenmq-sn-plain.txt"),
    ),
];

fn parties(run: &Run) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (from, _) in &run.chunks {
        if !names.contains(from) {
            names.push(from.clone());
        }
    }
    names
}

/// Every stream in the OxenMQ recordings (OxenMQ itself and the libzmq peers it talked to), fed
/// whole into a fresh session of ours in the counterpart role: nothing is refused. Along the
/// way the frames are checked against each rule's premise: handshake commands are command
/// frames, at most a few hundred bytes; every PING has its TTL; the socket types are DEALER
/// and ROUTER.
#[test]
fn libzmq_and_oxenmq_recordings_pass_every_strict_rule() {
    let mut streams = 0;
    let mut pings = 0;
    let mut largest_handshake = 0;
    for (file, text) in OXENMQ_CAPTURES {
        for run in parse_runs(text) {
            for party in parties(&run) {
                let stream = run.stream_from(&party);
                let what = format!("{file} {:?} {party}", run.name);
                // The frames: first the READY (the whole NULL handshake), then traffic.
                let mut input = &stream[64..];
                let mut decoder = FrameDecoder::new(None);
                let ready = decoder.decode(&mut input).unwrap().expect("READY");
                assert!(ready.command, "{what}: READY is a command frame");
                assert!(ready.body.starts_with(b"\x05READY"), "{what}");
                largest_handshake = largest_handshake.max(ready.body.len());
                let md = Metadata::decode(&ready.body.slice(6..)).unwrap();
                let theirs = md.get("Socket-Type").expect("Socket-Type").to_vec();
                let ours = match &theirs[..] {
                    b"DEALER" => SocketType::Router,
                    b"ROUTER" => SocketType::Dealer,
                    other => panic!("{what}: socket type {other:?}"),
                };
                while let Some(f) = decoder.decode(&mut input).unwrap() {
                    if f.command && f.body.starts_with(b"\x04PING") {
                        assert!(f.body.len() >= 7, "{what}: PING with its TTL");
                        pings += 1;
                    }
                }

                let mut rng = ChaCha20Rng::seed_from_u64(90);
                let t = Instant::from_micros(0);
                let mut s =
                    Session::new(SessionConfig::new(ours, MechanismConfig::Null), t, &mut rng)
                        .unwrap();
                s.handle_bytes(t, &stream, &mut rng);
                let mut messages = 0;
                while let Some(ev) = s.poll_event() {
                    match ev {
                        SessionEvent::Closed(e) => panic!("{what}: refused: {e}"),
                        SessionEvent::Message(_) => messages += 1,
                        _ => {}
                    }
                }
                assert_eq!(s.state(), SessionState::Ready, "{what}");
                assert_eq!(
                    messages,
                    run.messages_from(&party).len(),
                    "{what}: every message delivered"
                );
                streams += 1;
            }
        }
    }
    assert_eq!(streams, 12, "every party of every recorded run");
    assert!(
        pings >= 4,
        "the heartbeat run's PINGs were checked: {pings}"
    );
    // OxenMQ's READY with its 33-byte `L` + pubkey routing id; the cap is 64 KiB.
    assert_eq!(largest_handshake, 74, "largest recorded handshake command");
}
