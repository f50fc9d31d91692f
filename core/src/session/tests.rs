//! Session tests: pairs of sessions wired back to back over NULL with a virtual clock, raw-peer
//! scripts, and property tests (no panics, split invariance).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::config::{AUTH_BACKLOG_LIMIT, HANDSHAKE_COMMAND_LIMIT};
use super::*;
use crate::crypto::CryptoProvider;
use crate::keys::Keypair;
use crate::zmtp::command::ready_body;
use crate::zmtp::frame::{write_command, write_frame, write_message};
use crate::zmtp::greeting::encode_greeting;
use crate::zmtp::{Dialect, HeartbeatConfig, WireText};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(42)
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn dealer() -> SessionConfig {
    SessionConfig::new(SocketType::Dealer, MechanismConfig::Null)
}

fn router() -> SessionConfig {
    SessionConfig::new(SocketType::Router, MechanismConfig::Null)
}

fn drain_out(s: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

fn drain_events(s: &mut Session) -> Vec<SessionEvent> {
    let mut ev = Vec::new();
    while let Some(e) = s.poll_event() {
        ev.push(e);
    }
    ev
}

fn msg(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

fn messages(events: &[SessionEvent]) -> Vec<Vec<Bytes>> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn closed(events: &[SessionEvent]) -> Vec<SessionError> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Closed(err) => Some(err.clone()),
            _ => None,
        })
        .collect()
}

/// Two sessions wired back to back with a virtual clock.
struct Pair {
    c: Session,
    s: Session,
    now: Instant,
    rng: ChaCha20Rng,
    c_events: Vec<SessionEvent>,
    s_events: Vec<SessionEvent>,
    /// When false, server→client bytes are dropped (a peer that went silent).
    s_to_c: bool,
    /// When false, client→server bytes are dropped.
    c_to_s: bool,
}

impl Pair {
    fn new(cc: SessionConfig, sc: SessionConfig) -> Self {
        let mut rng = rng();
        let c = Session::new(cc, Instant::ZERO, &mut rng).unwrap();
        let s = Session::new(sc, Instant::ZERO, &mut rng).unwrap();
        let mut p = Self {
            c,
            s,
            now: Instant::ZERO,
            rng,
            c_events: Vec::new(),
            s_events: Vec::new(),
            s_to_c: true,
            c_to_s: true,
        };
        p.pump();
        p
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(b) = self.c.poll_transmit() {
                moved = true;
                if self.c_to_s {
                    self.s.handle_bytes(self.now, &b, &mut self.rng);
                }
            }
            while let Some(b) = self.s.poll_transmit() {
                moved = true;
                if self.s_to_c {
                    self.c.handle_bytes(self.now, &b, &mut self.rng);
                }
            }
            self.c_events.extend(drain_events(&mut self.c));
            self.s_events.extend(drain_events(&mut self.s));
            if !moved {
                break;
            }
        }
    }

    /// Advances the clock to `to`, firing every timer on the way, pumping after each.
    fn advance_to(&mut self, to: Instant) {
        loop {
            let next = earliest(self.c.poll_timeout(), self.s.poll_timeout());
            match next {
                Some(n) if n <= to => {
                    self.now = self.now.max(n);
                    self.c.handle_timeout(self.now, &mut self.rng);
                    self.s.handle_timeout(self.now, &mut self.rng);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = to;
        self.c.handle_timeout(self.now, &mut self.rng);
        self.s.handle_timeout(self.now, &mut self.rng);
        self.pump();
    }

    fn decide(&mut self, d: AuthDecision) -> bool {
        let applied = self.s.auth_decision(self.now, d, &mut self.rng);
        self.pump();
        applied
    }

    fn c_send(&mut self, parts: Vec<Bytes>) -> Result<(), SendError> {
        let r = self.c.send(self.now, parts);
        self.pump();
        r
    }

    fn s_send(&mut self, parts: Vec<Bytes>) -> Result<(), SendError> {
        let r = self.s.send(self.now, parts);
        self.pump();
        r
    }
}

/// The bytes a libzmq-like DEALER (no routing id) sends: greeting + READY.
fn raw_dealer_preamble() -> BytesMut {
    let mut b = BytesMut::new();
    b.extend_from_slice(&encode_greeting(Mechanism::Null, 0));
    let mut md = Metadata::new();
    md.push("Socket-Type", "DEALER").unwrap();
    md.push("Identity", "").unwrap();
    write_frame(&mut b, false, true, &ready_body(&md));
    b
}

fn raw_ready_with(props: &[(&str, &str)]) -> BytesMut {
    let mut b = BytesMut::new();
    b.extend_from_slice(&encode_greeting(Mechanism::Null, 0));
    let mut md = Metadata::new();
    for (n, v) in props {
        md.push(
            Bytes::copy_from_slice(n.as_bytes()),
            Bytes::copy_from_slice(v.as_bytes()),
        )
        .unwrap();
    }
    write_frame(&mut b, false, true, &ready_body(&md));
    b
}

/// A server session fed `input`; returns (events, output after our greeting).
fn feed_server(config: SessionConfig, input: &[u8]) -> (Session, Vec<SessionEvent>, Vec<u8>) {
    let mut rng = rng();
    let mut s = Session::new(config, Instant::ZERO, &mut rng).unwrap();
    let greeting = drain_out(&mut s);
    assert_eq!(greeting.len(), 64);
    s.handle_bytes(Instant::ZERO, input, &mut rng);
    let ev = drain_events(&mut s);
    let out = drain_out(&mut s);
    (s, ev, out)
}

// ---------------------------------------------------------------------------------------------
// Creation and handshake

#[test]
fn greeting_is_queued_at_creation() {
    let mut cfg = dealer();
    cfg.routing_id = Bytes::from_static(b"dealer-A");
    let mut s = Session::new(cfg, Instant::ZERO, &mut rng()).unwrap();
    assert_eq!(s.state(), SessionState::Greeting);
    let out = drain_out(&mut s);
    assert_eq!(out, encode_greeting(Mechanism::Null, 8));
    assert_eq!(
        s.poll_timeout(),
        Some(t(10_000)),
        "default handshake timeout"
    );
    assert!(s.poll_event().is_none());
}

#[test]
fn ready_is_sent_only_after_the_peer_greeting() {
    let mut rng = rng();
    let mut s = Session::new(router(), Instant::ZERO, &mut rng).unwrap();
    let _ = drain_out(&mut s);
    let g = encode_greeting(Mechanism::Null, 0);
    s.handle_bytes(Instant::ZERO, &g[..63], &mut rng);
    assert!(s.poll_transmit().is_none());
    s.handle_bytes(Instant::ZERO, &g[63..], &mut rng);
    assert_eq!(s.state(), SessionState::Handshake);
    let out = drain_out(&mut s);
    assert_eq!(&out[..8], b"\x04\x29\x05READY");
}

#[test]
fn null_pair_handshake_completes() {
    let mut cc = dealer();
    cc.routing_id = Bytes::from_static(b"client-1");
    cc.properties = vec![(String::from("X-Foo"), Bytes::from_static(b"bar"))];
    let p = Pair::new(cc, router());
    assert_eq!(p.c_events, vec![SessionEvent::Ready]);
    assert_eq!(p.s_events, vec![SessionEvent::Ready]);
    assert_eq!(p.c.state(), SessionState::Ready);
    assert_eq!(p.s.state(), SessionState::Ready);
    let sp = p.s.peer().unwrap();
    assert_eq!(sp.socket_type(), Some(SocketType::Dealer));
    assert_eq!(sp.identity().as_ref(), b"client-1");
    assert_eq!(sp.property("X-Foo"), Some(&b"bar"[..]));
    assert_eq!(sp.user_id(), None);
    assert_eq!(sp.dialect(), Dialect::Zmtp31);
    let cp = p.c.peer().unwrap();
    assert_eq!(cp.socket_type(), Some(SocketType::Router));
    assert!(cp.identity().is_empty());
    assert_eq!(
        p.c.poll_timeout(),
        None,
        "no heartbeats, no handshake timer"
    );
}

#[test]
fn dealer_to_dealer_and_router_to_router_are_compatible() {
    let p = Pair::new(dealer(), dealer());
    assert_eq!(p.s.state(), SessionState::Ready);
    let p = Pair::new(router(), router());
    assert_eq!(p.c.state(), SessionState::Ready);
}

std::thread_local! {
    /// The crypto provider the CURVE configs below use: set per run by [`each_provider`].
    static PROVIDER: core::cell::Cell<&'static dyn CryptoProvider> =
        core::cell::Cell::new(crate::crypto::default_provider());
}

/// Runs a CURVE test once with every crypto provider this build has.
fn each_provider(mut body: impl FnMut()) {
    for &p in crate::crypto::all_providers() {
        std::eprintln!("crypto provider: {p:?}");
        PROVIDER.with(|c| c.set(p));
        body();
    }
}

fn curve_client(server: &Keypair) -> SessionConfig {
    let mut c = SessionConfig::new(
        SocketType::Dealer,
        MechanismConfig::CurveClient {
            keypair: Keypair::from_secret_bytes([9; 32]),
            server_key: *server.public(),
        },
    );
    c.crypto_provider = PROVIDER.with(core::cell::Cell::get);
    c
}

fn curve_server(server: &Keypair) -> SessionConfig {
    let mut c = SessionConfig::new(
        SocketType::Router,
        MechanismConfig::CurveServer {
            keypair: server.clone(),
        },
    );
    c.crypto_provider = PROVIDER.with(core::cell::Cell::get);
    c
}

#[test]
fn curve_pair_handshakes_and_carries_every_message_shape() {
    each_provider(|| {
        let skp = Keypair::from_secret_bytes([7; 32]);
        let mut p = Pair::new(curve_client(&skp), curve_server(&skp));
        assert!(p.c_events.iter().any(|e| matches!(e, SessionEvent::Ready)));
        assert!(p.s_events.iter().any(|e| matches!(e, SessionEvent::Ready)));
        let big = vec![0xabu8; 1024 * 1024 - 64];
        let shapes: Vec<Vec<Bytes>> = vec![
            msg(&[b"hello"]),
            msg(&[b"", b"", b""]),
            msg(&[&[0u8; 255], &[1u8; 256], b"x"]),
            msg(&[&big]),
        ];
        for m in &shapes {
            p.c_send(m.clone()).unwrap();
            p.s_send(m.clone()).unwrap();
        }
        assert_eq!(messages(&p.s_events), shapes);
        assert_eq!(messages(&p.c_events), shapes);
        assert!(closed(&p.c_events).is_empty() && closed(&p.s_events).is_empty());
    });
}

#[test]
fn curve_server_asks_for_auth_with_the_client_key() {
    each_provider(|| {
        let skp = Keypair::from_secret_bytes([7; 32]);
        let mut sc = curve_server(&skp);
        sc.auth_required = true;
        let mut p = Pair::new(curve_client(&skp), sc);
        let client_pk = *Keypair::from_secret_bytes([9; 32]).public();
        assert!(p.s_events.iter().any(|e| matches!(
            e,
            SessionEvent::AuthRequest { mechanism: Mechanism::Curve, client_key: Some(k) } if *k == client_pk
        )));
        // Nothing is ready until the decision.
        assert!(!p.c_events.iter().any(|e| matches!(e, SessionEvent::Ready)));
        assert!(p.decide(AuthDecision::allow(
            Bytes::from(client_pk.to_hex().into_bytes()),
            vec![(String::from("X-AuthLevel"), Bytes::from_static(b"basic"))],
        )));
        assert!(p.c_events.iter().any(|e| matches!(e, SessionEvent::Ready)));
        let peer = p.s.peer().unwrap();
        assert_eq!(peer.property("X-AuthLevel"), Some(&b"basic"[..]));
        assert_eq!(
            peer.property("User-Id"),
            Some(client_pk.to_hex().as_bytes())
        );
        p.c_send(msg(&[b"after", b"auth"])).unwrap();
        assert_eq!(messages(&p.s_events), vec![msg(&[b"after", b"auth"])]);
    });
}

#[test]
fn curve_denied_client_gets_error_400_and_nothing_through() {
    each_provider(|| {
        let skp = Keypair::from_secret_bytes([7; 32]);
        let mut sc = curve_server(&skp);
        sc.auth_required = true;
        let mut p = Pair::new(curve_client(&skp), sc);
        // Queued before the decision: must never be delivered.
        p.c_send(msg(&[b"sneaky"])).unwrap();
        assert!(p.decide(AuthDecision::deny(DenyStatus::Denied)));
        assert!(messages(&p.s_events).is_empty());
        let errs = closed(&p.c_events);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].peer_status_code(), Some(400), "{errs:?}");
    });
}

#[test]
fn curve_wrong_server_key_fails_on_the_server_and_the_client_stays_unready() {
    each_provider(|| {
        let skp = Keypair::from_secret_bytes([7; 32]);
        let other = Keypair::from_secret_bytes([8; 32]);
        let p = Pair::new(curve_client(&other), curve_server(&skp));
        let errs = closed(&p.s_events);
        assert!(
            matches!(errs.as_slice(), [SessionError::Crypto(_)]),
            "server must fail HELLO: {errs:?}"
        );
        assert!(!p.c_events.iter().any(|e| matches!(e, SessionEvent::Ready)));
    });
}

#[test]
fn curve_frame_limit_counts_the_encrypted_size() {
    each_provider(|| {
        let skp = Keypair::from_secret_bytes([7; 32]);
        let mut sc = curve_server(&skp);
        sc.max_message_size = Some(400);
        let mut p = Pair::new(curve_client(&skp), sc);
        // 367 + 33 = 400: accepted (wire.md §3, observed on libzmq); 368 closes.
        p.c_send(vec![Bytes::from(vec![1u8; 367])]).unwrap();
        assert_eq!(messages(&p.s_events).len(), 1);
        assert!(closed(&p.s_events).is_empty());
        p.c_send(vec![Bytes::from(vec![1u8; 368])]).unwrap();
        assert_eq!(closed(&p.s_events).len(), 1);
    });
}

#[test]
fn curve_heartbeats_travel_inside_messages() {
    each_provider(|| {
        let skp = Keypair::from_secret_bytes([7; 32]);
        let hb = HeartbeatConfig {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            ttl: Duration::from_secs(2),
        };
        let mut cc = curve_client(&skp);
        cc.heartbeat = Some(hb);
        let mut p = Pair::new(cc, curve_server(&skp));
        p.advance_to(t(1000));
        assert!(p.c.stats().pings_sent >= 5, "{:?}", p.c.stats());
        assert_eq!(p.s.stats().pings_received, p.c.stats().pings_sent);
        assert_eq!(p.c.stats().pongs_received, p.c.stats().pings_sent);
        assert!(closed(&p.c_events).is_empty());
    });
}

fn curve_split_run(chunk: usize) -> (Vec<u8>, Vec<u8>, Vec<Vec<Bytes>>) {
    // A client session fed the server's bytes `chunk` at a time and vice versa.
    let skp = Keypair::from_secret_bytes([7; 32]);
    let mut r = rng();
    let mut c = Session::new(curve_client(&skp), Instant::ZERO, &mut r).unwrap();
    let mut s = Session::new(curve_server(&skp), Instant::ZERO, &mut r).unwrap();
    c.send(Instant::ZERO, msg(&[b"a", b"bc", &[7u8; 300]]))
        .unwrap();
    let (mut c_wire, mut s_wire) = (Vec::new(), Vec::new());
    let mut got = Vec::new();
    for _ in 0..16 {
        let co = drain_out(&mut c);
        let so = drain_out(&mut s);
        if co.is_empty() && so.is_empty() {
            break;
        }
        for piece in co.chunks(chunk) {
            s.handle_bytes(Instant::ZERO, piece, &mut r);
        }
        for piece in so.chunks(chunk) {
            c.handle_bytes(Instant::ZERO, piece, &mut r);
        }
        c_wire.extend(co);
        s_wire.extend(so);
        got.extend(messages(&drain_events(&mut s)));
        drain_events(&mut c);
    }
    (c_wire, s_wire, got)
}

#[test]
fn curve_split_invariance() {
    each_provider(|| {
        let whole = curve_split_run(usize::MAX);
        assert_eq!(whole.2, vec![msg(&[b"a", b"bc", &[7u8; 300]])]);
        for chunk in [1, 2, 7, 64] {
            assert_eq!(curve_split_run(chunk), whole, "chunk size {chunk}");
        }
    });
}

#[test]
fn invalid_configs_are_refused() {
    let pubsock = SessionConfig::new(SocketType::Pub, MechanismConfig::Null);
    assert_eq!(
        Session::new(pubsock, Instant::ZERO, &mut rng()).unwrap_err(),
        SessionError::UnsupportedSocketType(SocketType::Pub)
    );
    let mut c = dealer();
    c.routing_id = Bytes::from(vec![1u8; 256]);
    assert!(matches!(
        Session::new(c, Instant::ZERO, &mut rng()),
        Err(SessionError::InvalidProperty(_))
    ));
    let mut c = dealer();
    c.properties = vec![(String::from("NoPrefix"), Bytes::new())];
    assert!(matches!(
        Session::new(c, Instant::ZERO, &mut rng()),
        Err(SessionError::InvalidProperty(_))
    ));
    let mut c = dealer();
    c.max_message_parts = 0;
    assert!(matches!(
        Session::new(c, Instant::ZERO, &mut rng()),
        Err(SessionError::InvalidConfig(_))
    ));
}

#[test]
fn mechanism_mismatch_closes_without_ready() {
    let mut input = encode_greeting(Mechanism::Curve, 0).to_vec();
    input.extend_from_slice(b"\x04\x05\x05HELLO");
    let (s, ev, out) = feed_server(router(), &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::MechanismMismatch {
            ours: Mechanism::Null,
            theirs: Some(Mechanism::Curve),
            offset: 12
        })]
    );
    assert!(out.is_empty(), "no READY, no ERROR");
    assert_eq!(s.state(), SessionState::Closed);
}

#[test]
fn zmtp1_peer_refused_at_first_byte() {
    let (_, ev, out) = feed_server(router(), &[0x01, 0x00, 0x08, 0x00]);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::BadSignature {
            offset: 0,
            byte: 1
        })]
    );
    assert!(out.is_empty());
}

#[test]
fn zmtp30_peer_is_accepted() {
    let mut input = raw_dealer_preamble();
    input[11] = 0;
    let (s, ev, _) = feed_server(router(), &input);
    assert_eq!(ev, vec![SessionEvent::Ready]);
    assert_eq!(s.peer().unwrap().dialect(), Dialect::Zmtp30);
    assert_eq!(s.peer_greeting().unwrap().minor, 0);
}

#[test]
fn incompatible_or_wrong_case_socket_type_closes_without_error() {
    for (value, expected) in [
        (
            "PUB",
            SessionError::Protocol(ZmtpError::IncompatibleSocketType {
                ours: SocketType::Router,
                peer: SocketType::Pub,
            }),
        ),
        (
            "REP",
            SessionError::Protocol(ZmtpError::IncompatibleSocketType {
                ours: SocketType::Router,
                peer: SocketType::Rep,
            }),
        ),
        (
            "dealer",
            SessionError::Protocol(ZmtpError::UnknownSocketType(WireText::from("dealer"))),
        ),
    ] {
        let input = raw_ready_with(&[("Socket-Type", value)]);
        let (_, ev, out) = feed_server(router(), &input);
        assert_eq!(closed(&ev), vec![expected]);
        // Only our READY (sent right after the greeting), never an ERROR.
        assert_eq!(&out[..8], b"\x04\x29\x05READY");
        assert_eq!(out.len(), 43);
    }
}

#[test]
fn missing_socket_type_is_accepted() {
    let (s, ev, _) = feed_server(router(), &raw_ready_with(&[]));
    assert_eq!(ev, vec![SessionEvent::Ready]);
    assert_eq!(s.peer().unwrap().socket_type(), None);
    // A lowercase name is just a property.
    let (s, ev, _) = feed_server(router(), &raw_ready_with(&[("socket-type", "PUB")]));
    assert_eq!(ev, vec![SessionEvent::Ready]);
    assert_eq!(s.peer().unwrap().property("socket-type"), Some(&b"PUB"[..]));
}

#[test]
fn bad_metadata_closes() {
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    write_command(
        &mut input,
        b"READY",
        b"\x0bSocket-Type\x00\x00\x00\x06DEALER\x00",
    )
    .unwrap();
    let (_, ev, _) = feed_server(router(), &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::BadMetadata(
            "one trailing byte"
        ))]
    );
}

#[test]
fn unexpected_handshake_input_closes() {
    // A data frame before READY.
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    write_frame(&mut input, false, false, b"hi");
    let (_, ev, _) = feed_server(router(), &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::UnexpectedDataFrame)]
    );
    // A CURVE command under NULL.
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    write_command(&mut input, b"HELLO", &[0; 10]).unwrap();
    let (_, ev, _) = feed_server(router(), &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::UnexpectedCommand {
            name: WireText::from("HELLO")
        })]
    );
    // An empty command body.
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    write_frame(&mut input, false, true, b"");
    let (_, ev, _) = feed_server(router(), &input);
    assert!(matches!(
        closed(&ev)[..],
        [SessionError::Protocol(ZmtpError::MalformedCommand { .. })]
    ));
}

#[test]
fn peer_error_during_handshake_is_reported() {
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    write_command(&mut input, b"ERROR", b"\x03500").unwrap();
    let (_, ev, _) = feed_server(router(), &input);
    let errs = closed(&ev);
    assert_eq!(errs, vec![SessionError::PeerError(WireText::from("500"))]);
    assert_eq!(errs[0].peer_status_code(), Some(500));
    // Malformed ERROR (reason overruns).
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    write_command(&mut input, b"ERROR", b"\x09ab").unwrap();
    let (_, ev, _) = feed_server(router(), &input);
    assert!(matches!(
        closed(&ev)[..],
        [SessionError::Protocol(ZmtpError::MalformedCommand {
            command: "ERROR",
            ..
        })]
    ));
}

#[test]
fn handshake_frames_are_capped_even_when_unlimited() {
    let mut cfg = router();
    cfg.max_message_size = None;
    let mut input = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    input.extend_from_slice(&[0x06]);
    input.extend_from_slice(&(HANDSHAKE_COMMAND_LIMIT + 1).to_be_bytes());
    let (s, ev, _) = feed_server(cfg, &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: HANDSHAKE_COMMAND_LIMIT + 1,
            limit: HANDSHAKE_COMMAND_LIMIT
        })]
    );
    assert!(matches!(s.error(), Some(SessionError::Protocol(_))));
    // A smaller max_message_size applies to handshake commands too (libzmq's MAXMSGSIZE).
    let mut cfg = router();
    cfg.max_message_size = Some(20);
    let (_, ev, _) = feed_server(cfg, &raw_dealer_preamble());
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: 41,
            limit: 20
        })]
    );
}

// ---------------------------------------------------------------------------------------------
// Messages

#[test]
fn messages_of_every_shape_cross_in_both_directions() {
    let mut p = Pair::new(dealer(), router());
    let shapes: Vec<Vec<Bytes>> = vec![
        msg(&[b"one"]),
        msg(&[b"a", b"b", b"c", b"d"]),
        msg(&[b""]),
        msg(&[b"", b"", b""]),
        vec![Bytes::from(vec![1u8; 255])],
        vec![Bytes::from(vec![2u8; 256])],
        vec![
            Bytes::from(vec![3u8; (1 << 20) - 1]),
            Bytes::from(vec![4u8; 1 << 20]),
        ],
    ];
    for m in &shapes {
        p.c_send(m.clone()).unwrap();
        p.s_send(m.clone()).unwrap();
    }
    assert_eq!(messages(&p.s_events), shapes);
    assert_eq!(messages(&p.c_events), shapes);
    assert_eq!(p.s.stats().messages_received, shapes.len() as u64);
    assert_eq!(p.c.stats().messages_sent, shapes.len() as u64);
}

#[test]
fn empty_message_is_refused() {
    let mut p = Pair::new(dealer(), router());
    assert_eq!(p.c_send(Vec::new()), Err(SendError::EmptyMessage));
    assert!(p.s_events.len() == 1, "nothing was sent");
}

#[test]
fn frame_over_the_limit_closes_the_receiver() {
    let mut sc = router();
    sc.max_message_size = Some(1000);
    let mut p = Pair::new(dealer(), sc);
    p.c_send(vec![Bytes::from(vec![0u8; 1000])]).unwrap();
    assert_eq!(messages(&p.s_events).len(), 1, "exactly the limit passes");
    p.c_send(vec![Bytes::from(vec![0u8; 1001])]).unwrap();
    assert_eq!(
        closed(&p.s_events),
        vec![SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: 1001,
            limit: 1000
        })]
    );
    assert_eq!(p.s.state(), SessionState::Closed);
}

#[test]
fn multipart_frame_count_is_bounded() {
    let mut cfg = router();
    cfg.max_message_parts = 8;
    let mut input = raw_dealer_preamble();
    // 8 frames: fine.
    write_message(&mut input, &vec![Bytes::new(); 8]);
    // Then an endless stream of empty MORE frames: cut off at the 9th.
    for _ in 0..100 {
        write_frame(&mut input, true, false, b"");
    }
    let (s, ev, _) = feed_server(cfg, &input);
    assert_eq!(messages(&ev).len(), 1);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::TooManyParts { limit: 8 })]
    );
    assert!(s.partial.is_empty(), "partial message released");
}

#[test]
fn multipart_total_size_is_bounded() {
    let mut cfg = router();
    cfg.max_message_size = Some(10);
    let mut input = raw_ready_with(&[]);
    for _ in 0..64 {
        write_frame(&mut input, true, false, &[0; 10]);
    }
    write_frame(&mut input, false, false, &[0; 1]);
    let (_, ev, _) = feed_server(cfg, &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::MessageTooLarge {
            limit: 640
        })]
    );
}

#[test]
fn pre_ready_queue_is_bounded_and_flushed_in_order() {
    let mut cc = dealer();
    cc.max_queued_messages = 3;
    let mut rng = rng();
    let mut c = Session::new(cc, Instant::ZERO, &mut rng).unwrap();
    let mut s = Session::new(router(), Instant::ZERO, &mut rng).unwrap();
    for i in 0..3u8 {
        c.send(Instant::ZERO, vec![Bytes::from(vec![i])]).unwrap();
    }
    assert_eq!(
        c.send(Instant::ZERO, msg(&[b"x"])),
        Err(SendError::QueueFull { limit: 3 })
    );
    // Wire them up.
    for _ in 0..3 {
        while let Some(b) = c.poll_transmit() {
            s.handle_bytes(Instant::ZERO, &b, &mut rng);
        }
        while let Some(b) = s.poll_transmit() {
            c.handle_bytes(Instant::ZERO, &b, &mut rng);
        }
    }
    let ev = drain_events(&mut s);
    assert_eq!(ev[0], SessionEvent::Ready);
    assert_eq!(
        messages(&ev),
        vec![msg(&[&[0]]), msg(&[&[1]]), msg(&[&[2]])]
    );
}

#[test]
fn unknown_commands_and_subscriptions_are_dropped_and_counted() {
    let mut input = raw_dealer_preamble();
    write_command(&mut input, b"FOO", b"bar").unwrap();
    write_command(&mut input, b"SUBSCRIBE", b"topic").unwrap();
    write_command(&mut input, b"CANCEL", b"topic").unwrap();
    write_command(&mut input, b"READY", b"").unwrap();
    write_frame(&mut input, false, false, b"still up");
    let (s, ev, _) = feed_server(router(), &input);
    assert_eq!(messages(&ev), vec![msg(&[b"still up"])]);
    assert!(closed(&ev).is_empty());
    let st = s.stats();
    assert_eq!(st.unknown_commands, 2, "FOO and a late READY");
    assert_eq!(st.ignored_subscriptions, 2);
}

#[test]
fn commands_between_message_frames_are_allowed() {
    let mut input = raw_dealer_preamble();
    write_frame(&mut input, true, false, b"a");
    write_command(&mut input, b"PING", b"\x00\x00").unwrap();
    write_frame(&mut input, false, false, b"b");
    let (_, ev, out) = feed_server(router(), &input);
    assert_eq!(messages(&ev), vec![msg(&[b"a", b"b"])]);
    assert!(out.ends_with(b"\x04\x05\x04PONG"));
}

#[test]
fn malformed_commands_after_the_handshake_close() {
    for body in [&b""[..], b"\x05PIN", b"\x04PING\x00"] {
        let mut input = raw_dealer_preamble();
        write_frame(&mut input, false, true, body);
        let (_, ev, _) = feed_server(router(), &input);
        assert!(
            matches!(
                closed(&ev)[..],
                [SessionError::Protocol(ZmtpError::MalformedCommand { .. })]
            ),
            "{body:?}"
        );
    }
    // COMMAND + MORE.
    let mut input = raw_dealer_preamble();
    input.extend_from_slice(&[0x05, 0x00]);
    let (_, ev, _) = feed_server(router(), &input);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::CommandWithMore)]
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication

fn auth_server() -> SessionConfig {
    let mut c = router();
    c.auth_required = true;
    c
}

#[test]
fn auth_allow_sends_ready_after_the_decision() {
    let mut p = Pair::new(dealer(), auth_server());
    assert_eq!(
        p.s_events,
        vec![SessionEvent::AuthRequest {
            mechanism: Mechanism::Null,
            client_key: None
        }]
    );
    assert_eq!(p.s.state(), SessionState::AwaitingAuth);
    assert_eq!(
        p.c.state(),
        SessionState::Handshake,
        "no READY from the server yet"
    );
    assert!(p.c_events.is_empty());
    // The client may queue messages meanwhile.
    p.c_send(msg(&[b"early"])).unwrap();
    assert!(p.decide(AuthDecision::allow(
        &b"user"[..],
        vec![(String::from("X-AuthLevel"), Bytes::from_static(b"basic"))]
    )));
    assert_eq!(
        p.s_events[1..],
        [SessionEvent::Ready, SessionEvent::Message(msg(&[b"early"]))]
    );
    assert_eq!(p.c_events, vec![SessionEvent::Ready]);
    let peer = p.s.peer().unwrap();
    assert_eq!(peer.user_id().unwrap().as_ref(), b"user");
    assert_eq!(peer.property("User-Id"), Some(&b"user"[..]));
    assert_eq!(peer.property("X-AuthLevel"), Some(&b"basic"[..]));
    // A second decision is not applied.
    assert!(!p.decide(AuthDecision::deny(DenyStatus::Denied)));
    assert_eq!(p.s.state(), SessionState::Ready);
}

#[test]
fn states_follow_the_lifecycle() {
    let mut rng = rng();
    let mut s = Session::new(auth_server(), Instant::ZERO, &mut rng).unwrap();
    assert_eq!(s.state(), SessionState::Greeting);
    let preamble = raw_dealer_preamble();
    s.handle_bytes(Instant::ZERO, &preamble[..64], &mut rng);
    assert_eq!(s.state(), SessionState::AwaitingAuth);
    assert!(s.peer().is_none());
    s.auth_decision(
        Instant::ZERO,
        AuthDecision::allow(Bytes::new(), Vec::new()),
        &mut rng,
    );
    assert_eq!(
        s.state(),
        SessionState::Handshake,
        "our READY sent, theirs not yet"
    );
    s.handle_bytes(Instant::ZERO, &preamble[64..], &mut rng);
    assert_eq!(s.state(), SessionState::Ready);
    assert!(s.peer().is_some());
    s.close(Instant::ZERO);
    assert_eq!(
        s.state(),
        SessionState::Closing,
        "greeting and READY not drained yet"
    );
    let _ = drain_out(&mut s);
    assert_eq!(s.state(), SessionState::Closed);
    assert_eq!(
        drain_events(&mut s),
        vec![
            SessionEvent::AuthRequest {
                mechanism: Mechanism::Null,
                client_key: None
            },
            SessionEvent::Ready,
            SessionEvent::Closed(SessionError::LocallyClosed)
        ]
    );
}

#[test]
fn auth_deny_temporary_closes_silently() {
    let mut p = Pair::new(dealer(), auth_server());
    assert!(p.decide(AuthDecision::deny(DenyStatus::Temporary)));
    assert_eq!(
        closed(&p.s_events),
        vec![SessionError::AuthDenied(DenyStatus::Temporary)]
    );
    assert_eq!(p.s.state(), SessionState::Closed);
    assert!(closed(&p.c_events).is_empty(), "the client saw no ERROR");
    assert_eq!(p.c.state(), SessionState::Handshake);
}

#[test]
fn auth_deny_400_and_500_send_error() {
    for (status, reason) in [(DenyStatus::Denied, "400"), (DenyStatus::Internal, "500")] {
        let mut rng = rng();
        let mut s = Session::new(auth_server(), Instant::ZERO, &mut rng).unwrap();
        let _ = drain_out(&mut s);
        s.handle_bytes(Instant::ZERO, &raw_dealer_preamble(), &mut rng);
        assert!(s.auth_decision(Instant::ZERO, AuthDecision::deny(status), &mut rng));
        assert_eq!(s.state(), SessionState::Closing, "ERROR still to send");
        let out = drain_out(&mut s);
        let mut expected = vec![0x04, 0x0a, 0x05];
        expected.extend_from_slice(b"ERROR\x03");
        expected.extend_from_slice(reason.as_bytes());
        assert_eq!(out, expected);
        assert_eq!(s.state(), SessionState::Closed);

        // Through a pair: the client reports the peer's ERROR.
        let mut p = Pair::new(dealer(), auth_server());
        p.decide(AuthDecision::deny(status));
        let errs = closed(&p.c_events);
        assert_eq!(
            errs,
            vec![SessionError::PeerError(WireText::new(
                reason.as_bytes().to_vec()
            ))]
        );
        assert_eq!(errs[0].peer_status_code(), Some(status.code()));
    }
}

#[test]
fn input_held_during_auth_is_processed_after_allow_in_order() {
    let mut input = raw_dealer_preamble();
    // A peer pipelining messages before our READY.
    write_message(&mut input, &msg(&[b"1", b"2"]));
    write_message(&mut input, &msg(&[b"3"]));
    let mut rng = rng();
    let mut s = Session::new(auth_server(), Instant::ZERO, &mut rng).unwrap();
    let _ = drain_out(&mut s);
    for b in input.iter() {
        s.handle_bytes(Instant::ZERO, core::slice::from_ref(b), &mut rng);
    }
    assert_eq!(drain_events(&mut s).len(), 1);
    assert!(drain_out(&mut s).is_empty());
    s.auth_decision(
        Instant::ZERO,
        AuthDecision::allow(Bytes::new(), Vec::new()),
        &mut rng,
    );
    let ev = drain_events(&mut s);
    assert_eq!(ev[0], SessionEvent::Ready);
    assert_eq!(messages(&ev), vec![msg(&[b"1", b"2"]), msg(&[b"3"])]);
    assert_eq!(&drain_out(&mut s)[..8], b"\x04\x29\x05READY");
}

#[test]
fn auth_backlog_is_bounded() {
    let mut rng = rng();
    let mut s = Session::new(auth_server(), Instant::ZERO, &mut rng).unwrap();
    let preamble = raw_dealer_preamble();
    s.handle_bytes(Instant::ZERO, &preamble, &mut rng);
    // The READY frame after the greeting is already held.
    let mut room = AUTH_BACKLOG_LIMIT - (preamble.len() - 64);
    let chunk = vec![0u8; 4096];
    while room > 0 {
        let n = room.min(chunk.len());
        s.handle_bytes(Instant::ZERO, &chunk[..n], &mut rng);
        room -= n;
    }
    assert!(s.error().is_none());
    s.handle_bytes(Instant::ZERO, &[0], &mut rng);
    assert_eq!(
        s.error(),
        Some(&SessionError::AuthBacklogExceeded {
            limit: AUTH_BACKLOG_LIMIT
        })
    );
    assert_eq!(s.backlog.capacity(), 0, "released");
}

#[test]
fn x_sn_spoofing_is_ignored() {
    let mut cc = dealer();
    cc.properties = vec![
        (String::from("X-SN"), Bytes::from_static(b"1")),
        (String::from("X-AuthLevel"), Bytes::from_static(b"admin")),
        (String::from("X-Other"), Bytes::from_static(b"ok")),
    ];
    let mut p = Pair::new(cc, auth_server());
    p.decide(AuthDecision::allow(
        &b"abcd"[..],
        vec![(String::from("X-AuthLevel"), Bytes::from_static(b"none"))],
    ));
    let peer = p.s.peer().unwrap();
    assert_eq!(peer.property("X-SN"), None);
    assert_eq!(peer.property("X-AuthLevel"), Some(&b"none"[..]));
    assert_eq!(peer.property("X-Other"), Some(&b"ok"[..]));
    assert!(peer.properties().get("X-SN").is_none());
    assert!(peer.properties().get("X-AuthLevel").is_none());
}

// ---------------------------------------------------------------------------------------------
// Timers

#[test]
fn handshake_timeout() {
    let mut rng = rng();
    let mut s = Session::new(router(), Instant::ZERO, &mut rng).unwrap();
    s.handle_timeout(t(9_999), &mut rng);
    assert!(s.error().is_none());
    s.handle_timeout(t(10_000), &mut rng);
    assert_eq!(s.error(), Some(&SessionError::HandshakeTimeout));
    assert_eq!(
        closed(&drain_events(&mut s)),
        vec![SessionError::HandshakeTimeout]
    );
    assert_eq!(s.poll_timeout(), None);
    // Zero disables it.
    let mut cfg = router();
    cfg.handshake_timeout = Duration::ZERO;
    let s = Session::new(cfg, Instant::ZERO, &mut rng).unwrap();
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn handshake_timeout_covers_the_auth_wait() {
    let mut p = Pair::new(dealer(), auth_server());
    assert_eq!(p.s.poll_timeout(), Some(t(10_000)));
    p.advance_to(t(10_000));
    assert_eq!(closed(&p.s_events), vec![SessionError::HandshakeTimeout]);
    assert!(!p.decide(AuthDecision::allow(Bytes::new(), Vec::new())));
}

fn heartbeat(ivl: u64, timeout: u64, ttl: u64) -> Option<HeartbeatConfig> {
    Some(HeartbeatConfig {
        interval: Duration::from_millis(ivl),
        timeout: Duration::from_millis(timeout),
        ttl: Duration::from_millis(ttl),
    })
}

#[test]
fn heartbeat_ping_pong_exchange() {
    let mut cc = dealer();
    cc.heartbeat = heartbeat(100, 300, 2000);
    let mut p = Pair::new(cc, router());
    assert_eq!(p.c.poll_timeout(), Some(t(100)));
    p.advance_to(t(1_000));
    assert_eq!(p.c.stats().pings_sent, 10);
    assert_eq!(p.s.stats().pings_received, 10);
    assert_eq!(p.c.stats().pongs_received, 10);
    assert_eq!(p.c.state(), SessionState::Ready);
    assert_eq!(p.s.state(), SessionState::Ready);
    // The server honours the TTL (2 s), re-armed by every PING.
    assert_eq!(p.s.poll_timeout(), Some(t(3_000)));
}

#[test]
fn heartbeat_timeout_when_the_peer_goes_silent() {
    let mut cc = dealer();
    cc.heartbeat = heartbeat(100, 250, 0);
    let mut p = Pair::new(cc, router());
    p.s_to_c = false;
    p.advance_to(t(349));
    assert!(p.c.error().is_none());
    p.advance_to(t(350));
    assert_eq!(closed(&p.c_events), vec![SessionError::HeartbeatTimeout]);
    assert_eq!(p.c.stats().pings_sent, 3);
}

#[test]
fn any_incoming_bytes_keep_the_connection_alive() {
    let mut cc = dealer();
    cc.heartbeat = heartbeat(100, 150, 0);
    let mut p = Pair::new(cc, router());
    p.s_to_c = false; // PONGs are lost …
    for step in 1..=20u64 {
        p.advance_to(t(step * 50));
        // … but the server keeps talking.
        let mut rng = rng();
        let mut frame = BytesMut::new();
        write_frame(&mut frame, false, false, b"tick");
        p.c.handle_bytes(p.now, &frame, &mut rng);
    }
    assert!(p.c.error().is_none());
    let ticks = messages(&p.c_events).len() + messages(&drain_events(&mut p.c)).len();
    assert_eq!(ticks, 20);
    assert!(p.c.stats().pings_sent >= 9);
}

#[test]
fn peer_ttl_closes_a_silent_peer() {
    let mut cc = dealer();
    cc.heartbeat = heartbeat(100, 0, 2000);
    let mut p = Pair::new(cc, router());
    p.advance_to(t(100));
    assert_eq!(p.s.poll_timeout(), Some(t(2_100)));
    // The client goes silent (its PINGs are lost).
    p.c_to_s = false;
    p.advance_to(t(2_099));
    assert!(p.s.error().is_none());
    p.advance_to(t(2_100));
    assert_eq!(closed(&p.s_events), vec![SessionError::TtlExpired]);
}

#[test]
fn ping_with_long_context_gets_16_bytes_back() {
    // libzmq's test_heartbeats.
    let mut input = raw_dealer_preamble();
    let mut data = vec![0, 0];
    data.extend_from_slice(&[b'z'; 58]);
    write_command(&mut input, b"PING", &data).unwrap();
    write_command(&mut input, b"PING", b"\x00\x00LOL").unwrap();
    let (_, _, out) = feed_server(router(), &input);
    let mut expected = vec![0x04, 0x15, 0x04];
    expected.extend_from_slice(b"PONG");
    expected.extend_from_slice(&[b'z'; 16]);
    expected.extend_from_slice(b"\x04\x08\x04PONGLOL");
    assert!(out.ends_with(&expected));
}

// ---------------------------------------------------------------------------------------------
// Closing and latching

#[test]
fn errors_are_latched() {
    let mut input = raw_dealer_preamble();
    write_frame(&mut input, false, false, b"ok");
    input.extend_from_slice(&[0x05, 0x00]); // COMMAND + MORE
    write_frame(&mut input, false, false, b"after");
    let mut rng = rng();
    let mut s = Session::new(router(), Instant::ZERO, &mut rng).unwrap();
    s.handle_bytes(Instant::ZERO, &input, &mut rng);
    s.handle_bytes(Instant::ZERO, &input, &mut rng);
    s.handle_timeout(t(100_000), &mut rng);
    s.close(t(100_000));
    let ev = drain_events(&mut s);
    assert_eq!(messages(&ev), vec![msg(&[b"ok"])]);
    assert_eq!(
        closed(&ev),
        vec![SessionError::Protocol(ZmtpError::CommandWithMore)]
    );
    assert_eq!(s.send(Instant::ZERO, msg(&[b"x"])), Err(SendError::Closed));
    // Only the bytes queued before the error: greeting + READY.
    assert_eq!(drain_out(&mut s).len(), 64 + 43);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.state(), SessionState::Closed);
    assert!(!s.auth_decision(
        Instant::ZERO,
        AuthDecision::deny(DenyStatus::Denied),
        &mut rng
    ));
}

#[test]
fn local_close() {
    let mut p = Pair::new(dealer(), router());
    p.c.close(p.now);
    p.pump();
    assert_eq!(closed(&p.c_events), vec![SessionError::LocallyClosed]);
    assert_eq!(p.c.state(), SessionState::Closed);
    // Close before the handshake drops queued messages but still flushes the greeting.
    let mut rng = rng();
    let mut c = Session::new(dealer(), Instant::ZERO, &mut rng).unwrap();
    c.send(Instant::ZERO, msg(&[b"x"])).unwrap();
    c.close(Instant::ZERO);
    assert_eq!(c.state(), SessionState::Closing);
    assert_eq!(drain_out(&mut c).len(), 64);
    assert_eq!(c.state(), SessionState::Closed);
    assert!(c.queued.is_empty());
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut cc = dealer();
        cc.heartbeat = heartbeat(100, 300, 1000);
        let mut p = Pair::new(cc, router());
        p.c_send(msg(&[b"a", b"b"])).unwrap();
        p.advance_to(t(500));
        (p.c_events, p.s_events, p.c.stats(), p.s.stats())
    };
    assert_eq!(run(), run());
}

// ---------------------------------------------------------------------------------------------
// Property tests

/// A client stream exercising most of the session: greeting, READY, messages of various shapes,
/// commands, PINGs, and optionally trailing garbage.
fn script_stream(garbage: &[u8]) -> Vec<u8> {
    let mut b = raw_dealer_preamble();
    write_message(&mut b, &msg(&[b"HI"]));
    write_message(
        &mut b,
        &msg(&[b"public.echo", b"\x00TAG", b"abc", b"", b"\x00\x01"]),
    );
    write_command(&mut b, b"PING", b"\x00\x14ctx").unwrap();
    write_message(&mut b, &[Bytes::from(vec![9u8; 300])]);
    write_frame(&mut b, true, false, b"x");
    write_command(&mut b, b"FOO", b"").unwrap();
    write_frame(&mut b, false, false, b"y");
    // Long form for a small size.
    b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 0, 0, 1, b'z']);
    b.extend_from_slice(garbage);
    b.to_vec()
}

/// Feeds `chunks` to a fresh server; returns the events and the output bytes.
fn run_chunks(auth: bool, chunks: &[&[u8]]) -> (Vec<SessionEvent>, Vec<u8>, SessionStats) {
    let mut rng = rng();
    let cfg = if auth { auth_server() } else { router() };
    let mut s = Session::new(cfg, Instant::ZERO, &mut rng).unwrap();
    let mut out = drain_out(&mut s);
    let mut ev = Vec::new();
    for c in chunks {
        s.handle_bytes(Instant::ZERO, c, &mut rng);
        out.extend(drain_out(&mut s));
        ev.extend(drain_events(&mut s));
    }
    if auth {
        s.auth_decision(
            Instant::ZERO,
            AuthDecision::allow(Bytes::new(), Vec::new()),
            &mut rng,
        );
        out.extend(drain_out(&mut s));
        ev.extend(drain_events(&mut s));
    }
    (ev, out, s.stats())
}

#[test]
fn split_invariance_whole_versus_bytewise() {
    for garbage in [
        &b""[..],
        b"\x05\x00",
        b"\x02\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        for auth in [false, true] {
            let stream = script_stream(garbage);
            let whole = run_chunks(auth, &[&stream]);
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(run_chunks(auth, &bytes), whole);
            assert_eq!(messages(&whole.0).len(), 5);
            assert_eq!(closed(&whole.0).len(), usize::from(!garbage.is_empty()));
        }
    }
}

proptest! {
    #[test]
    fn split_invariance_random_chunking(
        cuts in proptest::collection::vec(0usize..700, 0..20),
        auth in any::<bool>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let stream = script_stream(&garbage);
        let whole = run_chunks(auth, &[&stream]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for c in cuts {
            chunks.push(&stream[last..c]);
            last = c;
        }
        chunks.push(&stream[last..]);
        prop_assert_eq!(run_chunks(auth, &chunks), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        prefix in 0usize..3,
        chunk in 1usize..50,
        auth in any::<bool>(),
    ) {
        // Raw bytes, or bytes after a valid greeting, or after a valid greeting + READY.
        let mut stream = match prefix {
            0 => Vec::new(),
            1 => encode_greeting(Mechanism::Null, 0).to_vec(),
            _ => raw_dealer_preamble().to_vec(),
        };
        stream.extend_from_slice(&data);
        let mut rng = rng();
        let cfg = if auth { auth_server() } else { router() };
        let mut s = Session::new(cfg, Instant::ZERO, &mut rng).unwrap();
        let mut closes = 0;
        for (i, c) in stream.chunks(chunk).enumerate() {
            s.handle_bytes(Instant::from_millis(i as u64), c, &mut rng);
            if i == 3 {
                s.auth_decision(Instant::ZERO, AuthDecision::allow(Bytes::new(), Vec::new()), &mut rng);
            }
            let _ = s.send(Instant::ZERO, msg(&[b"x"]));
            s.handle_timeout(Instant::from_millis(i as u64 * 1000), &mut rng);
            while s.poll_transmit().is_some() {}
            while let Some(e) = s.poll_event() {
                if matches!(e, SessionEvent::Closed(_)) {
                    closes += 1;
                }
            }
        }
        prop_assert!(closes <= 1);
        prop_assert_eq!(closes == 1, s.error().is_some());
    }

    #[test]
    fn pairs_deliver_arbitrary_messages(
        msgs in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..5),
            1..6,
        ),
    ) {
        let mut p = Pair::new(dealer(), router());
        let sent: Vec<Vec<Bytes>> = msgs
            .into_iter()
            .map(|m| m.into_iter().map(Bytes::from).collect())
            .collect();
        for m in &sent {
            p.c_send(m.clone()).unwrap();
        }
        prop_assert_eq!(messages(&p.s_events), sent);
    }
}

#[test]
fn heartbeat_ping_bytes() {
    let mut cc = dealer();
    cc.heartbeat = heartbeat(100, 100, 2000);
    let mut rng = rng();
    let mut c = Session::new(cc, Instant::ZERO, &mut rng).unwrap();
    let _ = drain_out(&mut c);
    let mut server_bytes = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    let mut md = Metadata::new();
    md.push("Socket-Type", "ROUTER").unwrap();
    md.push("Identity", "").unwrap();
    write_frame(&mut server_bytes, false, true, &ready_body(&md));
    c.handle_bytes(Instant::ZERO, &server_bytes, &mut rng);
    let _ = drain_out(&mut c);
    c.handle_timeout(t(99), &mut rng);
    assert!(c.poll_transmit().is_none());
    c.handle_timeout(t(100), &mut rng);
    // wire.md §5: 04 07 04 'PING' 00 14 for a 2000 ms TTL.
    assert_eq!(drain_out(&mut c), b"\x04\x07\x04PING\x00\x14");
    assert_eq!(c.poll_timeout(), Some(t(200)));
}
