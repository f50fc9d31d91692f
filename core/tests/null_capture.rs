//! Replays real NULL-mechanism captures through our codec and sessions.
//!
//! * `vectors/null-handshake-capture.txt`: two libzmq 4.3.5 sockets (DEALER `dealer-A` with
//!   heartbeats → ROUTER). We decode both directions frame by frame, then drive a server session
//!   with the client's bytes and a client session with the server's bytes, and check that our
//!   sessions emit exactly the bytes libzmq emitted (greeting, READY, messages, PING, PONG).
//! * `vectors/oxenmq-*.txt`: OxenMQ 1.2.16 talking to pyzmq (and to itself). For every run and for
//!   each side, a session of that side's type replays the conversation: the peer's recorded bytes
//!   are fed in (whole and byte by byte), our side sends the messages the capture shows it sending,
//!   and its output must equal the recorded stream byte for byte, while the messages it decodes
//!   must equal the capture's annotations (HELLO, REPLY, UNKNOWNCOMMAND, FORBIDDEN…).

mod common;

use bytes::Bytes;
use common::capture::{ItemKind, Run, parse_runs, stream_units};
use common::unhex;
use core::time::Duration;
use lokimq_core::session::{
    MechanismConfig, Session, SessionConfig, SessionError, SessionEvent, SessionState,
};
use lokimq_core::time::Instant;
use lokimq_core::zmtp::command::{Ping, TrafficCommand, ready_body};
use lokimq_core::zmtp::greeting::encode_greeting;
use lokimq_core::zmtp::{
    Frame, FrameDecoder, GreetingDecoder, HeartbeatConfig, Mechanism, Metadata, RawCommand,
    SocketType,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NULL_CAPTURE: &str = include_str!("../../vectors/null-handshake-capture.txt");
const OXENMQ_SERVER_PLAIN: &str = include_str!("../../vectors/oxenmq-server-plain.txt");
const OXENMQ_CLIENT_PLAIN: &str = include_str!("../../vectors/oxenmq-client-plain.txt");
const OXENMQ_SN_PLAIN: &str = include_str!("../../vectors/oxenmq-sn-plain.txt");

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(1)
}

fn drain_out(s: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

fn drain_events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn messages(events: &[SessionEvent]) -> Vec<Vec<Vec<u8>>> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Message(m) => Some(m.iter().map(|b| b.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

/// Splits a stream into its greeting and its frames.
fn decode_stream(stream: &[u8]) -> (Vec<u8>, Vec<Frame>) {
    let mut input = stream;
    let mut g = GreetingDecoder::new(Mechanism::Null);
    g.decode(&mut input)
        .expect("greeting")
        .expect("complete greeting");
    let greeting = stream[..64].to_vec();
    let mut d = FrameDecoder::new(None);
    let mut frames = Vec::new();
    while let Some(f) = d.decode(&mut input).expect("frame") {
        frames.push(f);
    }
    assert!(
        input.is_empty() && d.is_at_boundary(),
        "stream ends on a frame boundary"
    );
    (greeting, frames)
}

// =============================================================================================
// null-handshake-capture.txt

struct CapturedFrame {
    offset: usize,
    flags: u8,
    size: usize,
    header: Vec<u8>,
    body: Vec<u8>,
}

struct Direction {
    declared_len: usize,
    greeting: Vec<u8>,
    frames: Vec<CapturedFrame>,
}

impl Direction {
    fn stream(&self) -> Vec<u8> {
        let mut s = self.greeting.clone();
        for f in &self.frames {
            assert_eq!(f.offset, s.len(), "frame offset");
            s.extend_from_slice(&f.header);
            s.extend_from_slice(&f.body);
        }
        assert_eq!(s.len(), self.declared_len, "section length");
        s
    }
}

/// Parses one `### X->Y (N bytes)` section. Bodies printed with a trailing `...` are truncated
/// in the file; they are completed by repeating the printed bytes up to the declared size (the
/// capture's 300-byte frame is 300 × 'x', as its header comment says), and the declared section
/// length cross-checks the result.
fn parse_null_section(text: &str, title: &str) -> Direction {
    let start = text.find(title).expect("section");
    let section = &text[start..];
    let section = match section[3..].find("\n###") {
        Some(end) => &section[..end + 3],
        None => section,
    };
    let declared_len: usize = title
        .split('(')
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("length")
        .parse()
        .expect("length");
    let mut greeting = Vec::new();
    let mut frames: Vec<CapturedFrame> = Vec::new();
    let mut truncated = false;
    for line in section.lines().skip(1) {
        let l = line.trim();
        if let Some(g) = l.strip_prefix("greeting: ") {
            greeting = unhex(g);
        } else if let Some(rest) = l.strip_prefix('@') {
            let offset = rest.split(' ').next().unwrap().parse().unwrap();
            let flags = rest.split("flags=0x").nth(1).unwrap();
            let flags = u8::from_str_radix(&flags[..2], 16).unwrap();
            let size = rest
                .split("size=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            frames.push(CapturedFrame {
                offset,
                flags,
                size,
                header: Vec::new(),
                body: Vec::new(),
            });
        } else if let Some(h) = l.strip_prefix("header: ") {
            frames.last_mut().unwrap().header = unhex(h);
        } else if !l.is_empty()
            && !l.starts_with("->")
            && !l.starts_with("padding")
            && l != "(empty)"
        {
            let f = frames.last_mut().expect("body line after a frame line");
            let (hex, cut) = match l.strip_suffix("...") {
                Some(h) => (h.trim(), true),
                None => (l, false),
            };
            f.body.extend(unhex(hex));
            truncated |= cut;
        }
    }
    for f in &mut frames {
        if f.body.len() < f.size {
            assert!(truncated, "short body without a truncation mark");
            let pattern = f.body.clone();
            f.body = pattern.iter().copied().cycle().take(f.size).collect();
        }
        assert_eq!(f.body.len(), f.size);
    }
    Direction {
        declared_len,
        greeting,
        frames,
    }
}

fn null_capture() -> (Direction, Direction) {
    (
        parse_null_section(NULL_CAPTURE, "### C->S (142 bytes)"),
        parse_null_section(NULL_CAPTURE, "### S->C (430 bytes)"),
    )
}

#[test]
fn null_capture_decodes_frame_by_frame() {
    let (cs, sc) = null_capture();
    for dir in [&cs, &sc] {
        let stream = dir.stream();
        let (greeting, frames) = decode_stream(&stream);
        assert_eq!(greeting, dir.greeting);
        assert_eq!(frames.len(), dir.frames.len());
        for (f, c) in frames.iter().zip(&dir.frames) {
            assert_eq!(f.body.as_ref(), c.body.as_slice());
            assert_eq!(f.command, c.flags & 0x04 != 0);
            assert_eq!(f.more, c.flags & 0x01 != 0);
        }
    }
    // READY metadata as annotated.
    let (_, frames) = decode_stream(&cs.stream());
    let ready = RawCommand::parse(&frames[0].body).unwrap();
    assert!(ready.is(b"READY"));
    let md = Metadata::decode(&ready.data).unwrap();
    let pairs: Vec<(&[u8], &[u8])> = md.iter().map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
    assert_eq!(
        pairs,
        vec![
            (&b"Socket-Type"[..], &b"DEALER"[..]),
            (b"Identity", b"dealer-A")
        ]
    );
    let (_, frames) = decode_stream(&sc.stream());
    let md = Metadata::decode(&RawCommand::parse(&frames[0].body).unwrap().data).unwrap();
    assert_eq!(md.get("Socket-Type").unwrap().as_ref(), b"ROUTER");
    assert_eq!(md.get("Identity").unwrap().as_ref(), b"");
    // PING ttl=20, PONG with empty context.
    let (_, frames) = decode_stream(&cs.stream());
    let TrafficCommand::Ping(p) = TrafficCommand::parse(&frames[3].body).unwrap() else {
        panic!("PING expected");
    };
    assert_eq!((p.ttl, p.context.len()), (20, 0));
    let (_, frames) = decode_stream(&sc.stream());
    assert!(matches!(
        TrafficCommand::parse(&frames[2].body).unwrap(),
        TrafficCommand::Pong(_)
    ));
}

#[test]
fn null_capture_ready_bytes_are_reproduced() {
    let (cs, sc) = null_capture();
    let mut dealer = Metadata::new();
    dealer.push("Socket-Type", "DEALER").unwrap();
    dealer.push("Identity", "dealer-A").unwrap();
    assert_eq!(ready_body(&dealer).as_ref(), cs.frames[0].body.as_slice());
    let mut router = Metadata::new();
    router.push("Socket-Type", "ROUTER").unwrap();
    router.push("Identity", "").unwrap();
    assert_eq!(ready_body(&router).as_ref(), sc.frames[0].body.as_slice());
    assert_eq!(encode_greeting(Mechanism::Null, 8).as_slice(), cs.greeting);
    assert_eq!(encode_greeting(Mechanism::Null, 0).as_slice(), sc.greeting);
}

/// Feeds `data` in pieces of `chunk` bytes (0 = whole).
fn feed(s: &mut Session, now: Instant, data: &[u8], chunk: usize, rng: &mut ChaCha20Rng) {
    if chunk == 0 {
        s.handle_bytes(now, data, rng);
    } else {
        for piece in data.chunks(chunk) {
            s.handle_bytes(now, piece, rng);
        }
    }
}

#[test]
fn null_capture_server_session_answers_like_libzmq() {
    let (cs, sc) = null_capture();
    let client_stream = cs.stream();
    let server_stream = sc.stream();
    for chunk in [0, 1, 7, 64] {
        let mut rng = rng();
        let mut s = Session::new(
            SessionConfig::new(SocketType::Router, MechanismConfig::Null),
            Instant::ZERO,
            &mut rng,
        )
        .unwrap();
        let mut out = drain_out(&mut s);
        // Everything up to the end of the message, then each PING.
        let pings_at = cs.frames[3].offset;
        feed(
            &mut s,
            Instant::ZERO,
            &client_stream[..pings_at],
            chunk,
            &mut rng,
        );
        out.extend(drain_out(&mut s));
        let events = drain_events(&mut s);
        assert_eq!(events[0], SessionEvent::Ready);
        assert_eq!(messages(&events), vec![vec![b"hello".to_vec(), Vec::new()]]);
        let peer = s.peer().unwrap();
        assert_eq!(peer.identity().as_ref(), b"dealer-A");
        assert_eq!(peer.socket_type(), Some(SocketType::Dealer));
        // Our greeting + READY are byte-identical to libzmq's ROUTER.
        assert_eq!(out, server_stream[..sc.frames[1].offset]);
        // The server sends its 300-byte frame.
        s.send(Instant::ZERO, vec![Bytes::from(sc.frames[1].body.clone())])
            .unwrap();
        out.extend(drain_out(&mut s));
        feed(
            &mut s,
            Instant::from_millis(100),
            &client_stream[pings_at..cs.frames[4].offset],
            chunk,
            &mut rng,
        );
        feed(
            &mut s,
            Instant::from_millis(200),
            &client_stream[cs.frames[4].offset..],
            chunk,
            &mut rng,
        );
        out.extend(drain_out(&mut s));
        assert_eq!(out, server_stream, "chunk {chunk}");
        assert_eq!(s.stats().pings_received, 2);
        // The PING's 2 s TTL is honoured.
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(2200)));
        s.handle_timeout(Instant::from_millis(2200), &mut rng);
        assert_eq!(s.error(), Some(&SessionError::TtlExpired));
    }
}

#[test]
fn null_capture_client_session_sends_like_libzmq() {
    let (cs, sc) = null_capture();
    let client_stream = cs.stream();
    let server_stream = sc.stream();
    for chunk in [0, 1, 3, 100] {
        let mut rng = rng();
        let mut cfg = SessionConfig::new(SocketType::Dealer, MechanismConfig::Null);
        cfg.routing_id = Bytes::from_static(b"dealer-A");
        cfg.heartbeat = Some(HeartbeatConfig {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(100),
            ttl: Duration::from_millis(2000),
        });
        let mut c = Session::new(cfg, Instant::ZERO, &mut rng).unwrap();
        // The application sends before the handshake: queued, then flushed after READY.
        c.send(
            Instant::ZERO,
            vec![Bytes::from_static(b"hello"), Bytes::new()],
        )
        .unwrap();
        let mut out = drain_out(&mut c);
        let pongs_at = sc.frames[2].offset;
        feed(
            &mut c,
            Instant::ZERO,
            &server_stream[..pongs_at],
            chunk,
            &mut rng,
        );
        out.extend(drain_out(&mut c));
        let events = drain_events(&mut c);
        assert_eq!(events[0], SessionEvent::Ready);
        assert_eq!(messages(&events), vec![vec![vec![b'x'; 300]]]);
        assert_eq!(c.peer().unwrap().socket_type(), Some(SocketType::Router));
        // PING at 100 ms, PONG back, PING at 200 ms, PONG back.
        assert_eq!(c.poll_timeout(), Some(Instant::from_millis(100)));
        c.handle_timeout(Instant::from_millis(100), &mut rng);
        out.extend(drain_out(&mut c));
        feed(
            &mut c,
            Instant::from_millis(150),
            &server_stream[pongs_at..sc.frames[3].offset],
            chunk,
            &mut rng,
        );
        c.handle_timeout(Instant::from_millis(200), &mut rng);
        out.extend(drain_out(&mut c));
        feed(
            &mut c,
            Instant::from_millis(250),
            &server_stream[sc.frames[3].offset..],
            chunk,
            &mut rng,
        );
        assert_eq!(out, client_stream, "chunk {chunk}");
        assert_eq!(c.stats().pongs_received, 2);
        assert_eq!(c.state(), SessionState::Ready);
        // Then the peer goes quiet: heartbeat timeout 100 ms after the next PING.
        c.handle_timeout(Instant::from_millis(300), &mut rng);
        c.handle_timeout(Instant::from_millis(400), &mut rng);
        assert_eq!(c.error(), Some(&SessionError::HeartbeatTimeout));
    }
}

// =============================================================================================
// oxenmq-*.txt

/// The two parties of a run, in the order they first appear.
fn parties(run: &Run) -> (String, String) {
    let a = run.items[0].from.clone();
    let b = run
        .items
        .iter()
        .find(|i| i.from != a)
        .expect("two parties")
        .from
        .clone();
    (a, b)
}

/// Replays `run` from `me`'s side with a fresh session; returns (our output, messages we
/// received, the session).
fn replay(run: &Run, me: &str, peer: &str, chunk: usize) -> (Vec<u8>, Vec<Vec<Vec<u8>>>, Session) {
    let (socket_type, identity) = run
        .items_from(me)
        .find_map(|k| match k {
            ItemKind::Ready {
                socket_type,
                identity,
            } => Some((socket_type.clone(), identity.clone())),
            _ => None,
        })
        .expect("our READY");
    let socket_type = SocketType::from_name(&socket_type).expect("socket type");
    let mut cfg = SessionConfig::new(socket_type, MechanismConfig::Null);
    cfg.routing_id = Bytes::from(identity);
    if let Some(ttl) = run.items_from(me).find_map(|k| match k {
        ItemKind::Ping { ttl } => Some(*ttl),
        _ => None,
    }) {
        cfg.heartbeat = Some(HeartbeatConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            ttl: Duration::from_millis(u64::from(ttl) * 100),
        });
    }
    let mut rng = rng();
    let mut now = Instant::ZERO;
    let mut s = Session::new(cfg, now, &mut rng).unwrap();
    let peer_stream = run.stream_from(peer);
    let mut units = stream_units(&peer_stream).into_iter();
    let mut out = drain_out(&mut s);
    let mut events = Vec::new();
    for item in &run.items {
        if item.from == peer {
            if item.kind == ItemKind::Eof {
                continue;
            }
            let unit = units.next().expect("peer unit for item");
            feed(&mut s, now, unit, chunk, &mut rng);
        } else {
            match &item.kind {
                ItemKind::Message(parts) => s
                    .send(now, parts.iter().cloned().map(Bytes::from).collect())
                    .unwrap(),
                ItemKind::Ping { .. } => {
                    let sent = s.stats().pings_sent;
                    while s.stats().pings_sent == sent {
                        now = s.poll_timeout().expect("a PING is due");
                        s.handle_timeout(now, &mut rng);
                        assert!(s.error().is_none());
                    }
                }
                // Greeting and READY are automatic; PONGs answer the peer's PINGs by themselves.
                _ => {}
            }
        }
        out.extend(drain_out(&mut s));
        events.extend(drain_events(&mut s));
    }
    assert!(units.next().is_none(), "every peer byte was replayed");
    assert!(s.error().is_none(), "{:?}", s.error());
    (out, messages(&events), s)
}

fn check_file(text: &str, expected_runs: usize) {
    let runs = parse_runs(text);
    assert_eq!(runs.len(), expected_runs);
    for run in &runs {
        let (a, b) = parties(run);
        for (me, peer) in [(&a, &b), (&b, &a)] {
            let expected_in: Vec<Vec<Vec<u8>>> = run
                .items_from(peer)
                .filter_map(|k| match k {
                    ItemKind::Message(m) => Some(m.clone()),
                    _ => None,
                })
                .collect();
            let recorded_out = run.stream_from(me);
            let mut first = None;
            for chunk in [0, 1, 5] {
                let (out, received, s) = replay(run, me, peer, chunk);
                assert_eq!(
                    out, recorded_out,
                    "run {:?}: {me}'s bytes differ (chunk {chunk})",
                    run.name
                );
                assert_eq!(received, expected_in, "run {:?}: {me} received", run.name);
                assert_eq!(s.state(), SessionState::Ready);
                let peer_pings = run
                    .items_from(peer)
                    .filter(|k| matches!(k, ItemKind::Ping { .. }))
                    .count();
                assert_eq!(s.stats().pings_received, peer_pings as u64);
                match &first {
                    None => first = Some((out, received)),
                    Some(f) => assert_eq!(f, &(out, received), "chunking changed the result"),
                }
            }
        }
    }
}

#[test]
fn oxenmq_server_plain_parses_as_annotated() {
    let runs = parse_runs(OXENMQ_SERVER_PLAIN);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let from_server: Vec<Vec<Vec<u8>>> = run
        .items_from("OxenMQ")
        .filter_map(|k| match k {
            ItemKind::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let first_words: Vec<&[u8]> = from_server.iter().map(|m| m[0].as_slice()).collect();
    assert_eq!(
        first_words,
        vec![
            &b"HELLO"[..],
            b"REPLY",
            b"public.hi",
            b"UNKNOWNCOMMAND",
            b"FORBIDDEN",
            b"FORBIDDEN",
            b"NOT_A_SERVICE_NODE",
            b"NOT_A_SERVICE_NODE",
            b"FORBIDDEN_SN",
            b"FORBIDDEN_SN",
            b"NO_REPLY_TAG",
        ]
    );
    assert_eq!(
        from_server[1],
        vec![
            b"REPLY".to_vec(),
            b"\x00TAG1-abcdefghi".to_vec(),
            b"abc".to_vec(),
            Vec::new(),
            vec![0, 1]
        ]
    );
    assert_eq!(run.stream_from("DEALER").len(), 322);
    assert_eq!(run.stream_from("OxenMQ").len(), 413);
}

#[test]
fn oxenmq_server_plain_client_session_decodes_every_reply() {
    // Our DEALER (no routing id) against the recorded OxenMQ listener: same greeting + READY as
    // pyzmq's DEALER, every reply decoded as annotated, the PING and its PONG.
    let runs = parse_runs(OXENMQ_SERVER_PLAIN);
    let run = &runs[0];
    let (out, received, s) = replay(run, "DEALER", "OxenMQ", 0);
    assert_eq!(out[..107], run.stream_from("DEALER")[..107]);
    assert_eq!(received.len(), 11);
    assert_eq!(received[0], vec![b"HELLO".to_vec()]);
    assert_eq!(
        received[3],
        vec![b"UNKNOWNCOMMAND".to_vec(), b"a.a".to_vec()]
    );
    assert_eq!(
        received[4],
        vec![
            b"FORBIDDEN".to_vec(),
            b"REPLY".to_vec(),
            b"\x00TAG2-abcdefghi".to_vec()
        ]
    );
    assert_eq!(s.stats().pongs_received, 1);
    assert_eq!(s.peer().unwrap().socket_type(), Some(SocketType::Router));
}

#[test]
fn oxenmq_server_plain_replays_byte_for_byte() {
    check_file(OXENMQ_SERVER_PLAIN, 1);
}

#[test]
fn oxenmq_client_plain_replays_byte_for_byte() {
    // OxenMQ as the DEALER (identity "L" + pubkey, padding 0x22) against a pyzmq ROUTER,
    // four runs including heartbeats every 500 ms.
    check_file(OXENMQ_CLIENT_PLAIN, 4);
}

#[test]
fn oxenmq_sn_plain_replays_byte_for_byte() {
    check_file(OXENMQ_SN_PLAIN, 1);
}

#[test]
fn oxenmq_client_identity_reaches_the_router() {
    let runs = parse_runs(OXENMQ_CLIENT_PLAIN);
    let run = &runs[0];
    let (_, _, s) = replay(run, "ROUTER", "OxenMQ", 1);
    let id = s.peer().unwrap().identity();
    assert_eq!(id.len(), 33);
    assert_eq!(id[0], b'L');
    assert_eq!(
        &id[1..],
        unhex("bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518").as_slice()
    );
}

#[test]
fn recorded_chunk_boundaries_give_the_same_events() {
    // Feed OxenMQ's bytes with the exact TCP read boundaries the relay saw.
    let runs = parse_runs(OXENMQ_SERVER_PLAIN);
    let run = &runs[0];
    let mut rng = rng();
    let mut s = Session::new(
        SessionConfig::new(SocketType::Dealer, MechanismConfig::Null),
        Instant::ZERO,
        &mut rng,
    )
    .unwrap();
    let mut events = Vec::new();
    for (from, bytes) in &run.chunks {
        if from == "OxenMQ" {
            s.handle_bytes(Instant::ZERO, bytes, &mut rng);
            events.extend(drain_events(&mut s));
        }
    }
    let (_, expected, _) = replay(run, "DEALER", "OxenMQ", 0);
    assert_eq!(events[0], SessionEvent::Ready);
    assert_eq!(messages(&events), expected);
    // A PING of our own carries libzmq's exact bytes.
    assert_eq!(
        Ping::new(20, Bytes::new()).unwrap().body().as_ref(),
        &run.stream_from("DEALER")[315..]
    );
}
