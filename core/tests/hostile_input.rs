//! Hostile input against the wire stack, through the public API only: arbitrary bytes at any
//! split, single-bit tampering of a recorded CURVE exchange, oversize length fields, replayed
//! MESSAGEs and truncated handshakes. Every test name starts with `hostile_`.
//!
//! The recorded exchange is `vectors/curve-kat.txt`: sessions whose generator is scripted with
//! the file's random values reproduce it exactly, so each test feeds real, byte-exact CurveZMQ
//! traffic and then corrupts it. The cargo-fuzz entry points run over the committed seeds
//! (`fuzz/seeds/`) in the fuzz harness's own tests (`fuzz/harness/tests/seeds.rs`).
//!
//! x25519 is slow in unoptimised builds (tens of milliseconds per scalar multiplication), so the
//! tampering tests cover every region of every frame deterministically and sample the rest with
//! proptest, keeping this file well under 30 s in debug. The fuzz targets cover the same
//! properties exhaustively in release builds.

mod common;

use common::Script;
use lokimq_core::registry::{CategoryOptions, QueueLimit};
use std::cell::Cell;
use std::sync::OnceLock;

use bytes::Bytes;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use lokimq_core::address::Address;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::crypto::{CryptoProvider, all_providers, default_provider};
use lokimq_core::curve::{CurveClient, CurveError};
use lokimq_core::ids::{ConnId, ListenerId};
use lokimq_core::keys::Keypair;
use lokimq_core::node::{Config, Event, Input, Node, Output};
use lokimq_core::registry::RegistryBuilder;
use lokimq_core::session::{
    AuthDecision, MechanismConfig, Session, SessionConfig, SessionError, SessionEvent, SessionState,
};
use lokimq_core::time::{Duration, Instant};
use lokimq_core::zmtp::frame::FrameDecoder;
use lokimq_core::zmtp::{SocketType, ZmtpError};

const KAT: &str = include_str!("../../vectors/curve-kat.txt");

thread_local! {
    /// The crypto provider of the CURVE sessions built here: set by [`each_provider`] and by
    /// the property tests.
    static PROVIDER: Cell<&'static dyn CryptoProvider> = Cell::new(default_provider());
}

fn provider() -> &'static dyn CryptoProvider {
    PROVIDER.with(Cell::get)
}

/// Runs a test body once with every crypto provider this build has.
fn each_provider(mut body: impl FnMut()) {
    common::each_provider(|p| {
        PROVIDER.with(|c| c.set(p));
        body();
    });
}

/// A CURVE session config on the current provider.
fn curve_config(socket_type: SocketType, mechanism: MechanismConfig) -> SessionConfig {
    let mut c = SessionConfig::new(socket_type, mechanism);
    c.crypto_provider = provider();
    c
}

// ---------------------------------------------------------------------------------------------
// The recorded exchange

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert_eq!(s.len() % 2, 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The hex value after `=` on the first line of curve-kat.txt that starts with `label`.
fn field(label: &str) -> Vec<u8> {
    let line = KAT
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("{label} not in curve-kat.txt"));
    let value = line.split_once('=').expect("label = value").1;
    unhex(value.split_whitespace().next().expect("a value"))
}

/// The MESSAGE frames of one direction (`C->S` or `S->C`), in order.
fn message_frames(dir: &str) -> Vec<Vec<u8>> {
    let lines: Vec<&str> = KAT.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(dir) && l.contains("MESSAGE"))
        .map(|(i, _)| unhex(lines[i + 1].split_once('=').expect("frame = hex").1))
        .collect()
}

struct Keys {
    client: Keypair,
    server: Keypair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        client: Keypair::from_parts(&field("C  (client"), &field("c  (client")).expect("KAT C"),
        server: Keypair::from_parts(&field("S  (server"), &field("s  (server")).expect("KAT S"),
    })
}

/// The KAT's random values, in the order the server draws them.
fn server_script() -> Script {
    let fields: Vec<Vec<u8>> = ["s' (server", "K  (cookie", "WELCOME nonce", "COOKIE nonce"]
        .iter()
        .map(|l| field(l))
        .collect();
    Script::new(&fields.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// The KAT's random values, in the order the client draws them.
fn client_script() -> Script {
    let fields: Vec<Vec<u8>> = ["c' (client", "VOUCH nonce"]
        .iter()
        .map(|l| field(l))
        .collect();
    Script::new(&fields.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// What one byte of a recorded stream is, for deciding what tampering with it must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// The 64-byte greeting: a flip is refused or (ignored field) changes nothing.
    Greeting,
    /// A frame header (flags and size) of frame `frame`.
    Header { frame: usize },
    /// HELLO's 72 padding bytes, which libzmq (and we) never check.
    HelloPadding,
    /// Any other body byte (command name, version, keys, nonces, cookie, boxes): a flip must be
    /// refused with a CURVE error.
    Body { frame: usize },
}

/// A recorded stream, the frame layout of its bytes, and what the genuine stream delivers.
struct Recording {
    bytes: Vec<u8>,
    regions: Vec<Region>,
    /// Index of the first MESSAGE frame.
    first_message: usize,
    /// For each frame, how many messages are complete before it.
    complete_before: Vec<usize>,
    genuine: Outcome,
}

/// Lays out `greeting` then `frames`; `hello` marks frame 0 as HELLO (for its padding).
fn layout(greeting: &[u8], frames: &[Vec<u8>], hello: bool) -> (Vec<u8>, Vec<Region>) {
    let mut bytes = greeting.to_vec();
    let mut regions = vec![Region::Greeting; greeting.len()];
    for (i, f) in frames.iter().enumerate() {
        let header = if f[0] & 0x02 != 0 { 9 } else { 2 };
        for at in 0..f.len() {
            regions.push(if at < header {
                Region::Header { frame: i }
            } else if hello && i == 0 && (header + 8..header + 80).contains(&at) {
                Region::HelloPadding
            } else {
                Region::Body { frame: i }
            });
        }
        bytes.extend_from_slice(f);
    }
    (bytes, regions)
}

/// The client's half of the KAT: greeting, HELLO, INITIATE, then its MESSAGEs.
fn client_to_server() -> &'static Recording {
    static REC: OnceLock<Recording> = OnceLock::new();
    REC.get_or_init(|| {
        let mut frames = vec![field("HELLO frame"), field("INITIATE frame")];
        frames.extend(message_frames("C->S"));
        let (bytes, regions) = layout(&field("client greeting"), &frames, true);
        record(bytes, regions, 2, &frames, Side::Server)
    })
}

/// The server's half of the KAT: greeting, WELCOME, READY, then its MESSAGEs.
fn server_to_client() -> &'static Recording {
    static REC: OnceLock<Recording> = OnceLock::new();
    REC.get_or_init(|| {
        let mut frames = vec![field("WELCOME frame"), field("READY frame")];
        frames.extend(message_frames("S->C"));
        let (bytes, regions) = layout(&field("server greeting"), &frames, false);
        record(bytes, regions, 2, &frames, Side::Client)
    })
}

fn record(
    bytes: Vec<u8>,
    regions: Vec<Region>,
    first_message: usize,
    frames: &[Vec<u8>],
    side: Side,
) -> Recording {
    // Feed frame by frame to learn how many messages each frame completes.
    let mut t = Target::new(side);
    t.feed(&bytes[..64]);
    let mut complete_before = Vec::new();
    for f in frames {
        complete_before.push(t.messages().len());
        t.feed(f);
    }
    let genuine = t.outcome();
    assert!(
        genuine.ready,
        "the KAT stream does not complete the handshake"
    );
    assert_eq!(
        genuine.error, None,
        "the KAT stream is refused: {:?}",
        genuine.error
    );
    Recording {
        bytes,
        regions,
        first_message,
        complete_before,
        genuine,
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions under test

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A CURVE server session (ROUTER) scripted with the KAT's server randomness.
    Server,
    /// A CURVE client session (DEALER) scripted with the KAT's client randomness.
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    ready: bool,
    messages: Vec<Vec<Bytes>>,
    error: Option<SessionError>,
    transmitted: Vec<u8>,
    bytes_received: u64,
}

struct Target {
    session: Session,
    rng: Script,
    events: Vec<SessionEvent>,
    transmitted: Vec<u8>,
}

impl Target {
    fn new(side: Side) -> Self {
        let k = keys();
        let (config, rng) = match side {
            Side::Server => (
                curve_config(
                    SocketType::Router,
                    MechanismConfig::CurveServer {
                        keypair: k.server.clone(),
                    },
                ),
                server_script(),
            ),
            Side::Client => (
                curve_config(
                    SocketType::Dealer,
                    MechanismConfig::CurveClient {
                        keypair: k.client.clone(),
                        server_key: *k.server.public(),
                    },
                ),
                client_script(),
            ),
        };
        Self::with(config, rng)
    }

    /// A session with `config`, drawing from `rng`.
    fn with(config: SessionConfig, mut rng: Script) -> Self {
        let session = Session::new(config, Instant::ZERO, &mut rng).expect("valid config");
        let mut t = Self {
            session,
            rng,
            events: Vec::new(),
            transmitted: Vec::new(),
        };
        t.drain();
        t
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.session
            .handle_bytes(Instant::ZERO, bytes, &mut self.rng);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(b) = self.session.poll_transmit() {
            self.transmitted.extend_from_slice(&b);
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    fn messages(&self) -> Vec<Vec<Bytes>> {
        messages(&self.events)
    }

    fn outcome(&self) -> Outcome {
        let closes = self
            .events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Closed(_)))
            .count();
        assert!(closes <= 1, "closed {closes} times");
        assert_eq!(closes == 1, self.session.error().is_some());
        Outcome {
            ready: self.events.contains(&SessionEvent::Ready),
            messages: self.messages(),
            error: self.session.error().cloned(),
            transmitted: self.transmitted.clone(),
            bytes_received: self.session.stats().bytes_received,
        }
    }
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

fn run(side: Side, stream: &[u8]) -> Outcome {
    let mut t = Target::new(side);
    t.feed(stream);
    t.outcome()
}

// ---------------------------------------------------------------------------------------------
// The recorded exchange itself

#[test]
fn hostile_kat_exchange_is_reproduced_by_sessions() {
    each_provider(|| {
        // The server session answers the KAT client with the KAT's own WELCOME and READY, and both
        // sessions deliver the KAT's messages: the recording is what our sessions really exchange.
        let c2s = client_to_server();
        let expected = [
            field("server greeting"),
            field("WELCOME frame"),
            field("READY frame"),
        ]
        .concat();
        assert_eq!(c2s.genuine.transmitted[..expected.len()], expected[..]);
        let got = &c2s.genuine.messages;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], vec![Bytes::from_static(b"hello"), Bytes::new()]);
        // The file abbreviates the last payload as "0001020304050607...(300 bytes)".
        assert_eq!(got[1].len(), 1);
        assert_eq!(got[1][0].len(), 300);
        assert!(got[1][0].starts_with(&[0, 1, 2, 3, 4, 5, 6, 7]));
        let s2c = server_to_client();
        assert_eq!(
            s2c.genuine.messages,
            vec![vec![Bytes::from_static(b"world")]]
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Tampering: one bit flipped anywhere

/// Whether `got` is a subsequence of `of`, part for part, byte for byte.
fn parts_subsequence(got: &[Vec<Bytes>], of: &[Vec<Bytes>]) -> bool {
    let mut genuine = of.iter().flatten();
    got.iter().flatten().all(|p| genuine.any(|g| g == p))
}

/// Flips bit `bit` of byte `at` of the recording and checks what the receiver makes of it.
fn check_flip(side: Side, rec: &Recording, at: usize, bit: u8) {
    let mut bytes = rec.bytes.clone();
    bytes[at] ^= 1 << bit;
    let got = run(side, &bytes);
    let genuine = &rec.genuine;
    let identical = got.ready && got.messages == genuine.messages && got.error.is_none();
    let ctx = format!(
        "{side:?}: bit {bit} of byte {at} ({:?}) → {got:?}",
        rec.regions[at]
    );
    // Whatever was flipped, nothing is delivered that the genuine peer did not send.
    assert!(
        parts_subsequence(&got.messages, &genuine.messages),
        "tampered content delivered: {ctx}"
    );
    match rec.regions[at] {
        Region::Greeting => assert!(
            matches!(got.error, Some(SessionError::Protocol(_))) || identical,
            "greeting flip neither refused nor ignored: {ctx}"
        ),
        Region::HelloPadding => assert!(identical, "HELLO padding is not checked: {ctx}"),
        Region::Header { frame } if frame < rec.first_message => assert!(
            identical || !got.ready,
            "a damaged handshake frame header still completed the handshake: {ctx}"
        ),
        // Outer MESSAGE flags are outside the box (as in libzmq): MORE glues a frame to the
        // next message, COMMAND drops it, a size change stalls or fails. The content check
        // above is what matters.
        Region::Header { .. } => {}
        Region::Body { frame } => {
            assert!(
                matches!(got.error, Some(SessionError::Crypto(_))),
                "a damaged CURVE body was not refused with a CURVE error: {ctx}"
            );
            let before = rec.complete_before[frame];
            assert_eq!(
                got.messages,
                genuine.messages[..before],
                "messages after the damaged frame were delivered: {ctx}"
            );
            if frame < rec.first_message {
                assert!(!got.ready, "a damaged handshake completed: {ctx}");
            }
        }
    }
}

/// Every byte of the greeting, of every handshake command and of every frame header, and of
/// the first 64 bytes of every MESSAGE (name, nonce, tag, flags and the start of the box); past
/// that, every 7th byte of a MESSAGE box (the box is one primitive: a flip anywhere in it must
/// fail the same way, and the proptests below sample all of it).
fn sweep(rec: &Recording) -> Vec<usize> {
    let mut out = Vec::new();
    let mut frame_start = 0;
    for (at, region) in rec.regions.iter().enumerate() {
        if let Region::Header { frame } = *region
            && (at == 0 || rec.regions[at - 1] != (Region::Header { frame }))
        {
            frame_start = at;
        }
        let deep_in_message = matches!(*region, Region::Body { frame } if frame >= rec.first_message)
            && at - frame_start > 64;
        if !deep_in_message || (at - frame_start) % 7 == 0 {
            out.push(at);
        }
    }
    out
}

#[test]
fn hostile_a_bit_flip_anywhere_in_a_recorded_exchange_is_refused_or_harmless() {
    each_provider(|| {
        for (side, rec) in [
            (Side::Server, client_to_server()),
            (Side::Client, server_to_client()),
        ] {
            for at in sweep(rec) {
                check_flip(side, rec, at, (at * 5 % 8) as u8);
            }
        }
    });
}

#[test]
fn hostile_high_bit_of_the_hello_key_passes_hello_but_fails_the_handshake() {
    each_provider(|| {
        // x25519 ignores bit 255 of a public key (RFC 7748), so flipping the top bit of C' in HELLO
        // leaves the HELLO box valid: the server accepts HELLO and answers WELCOME, as libsodium-based
        // libzmq would. The handshake still fails: replaying the recorded INITIATE, at the cookie
        // (sealed over the C' HELLO announced); with a live client that echoes the new cookie, at
        // the vouch (whose C' is the real one). A tamper test of the HELLO step alone must not
        // expect a refusal for this bit.
        let rec = client_to_server();
        let c_short_last = 64 + 2 + 111; // greeting, frame header, C' at body[80..112]
        assert_eq!(rec.regions[c_short_last], Region::Body { frame: 0 });
        let hello_end = 64 + field("HELLO frame").len();
        let mut bytes = rec.bytes.clone();
        bytes[c_short_last] ^= 0x80;

        let got = run(Side::Server, &bytes);
        let welcome_end = 64 + field("WELCOME frame").len();
        assert!(got.transmitted.len() >= welcome_end, "HELLO was refused");
        assert_eq!(got.error, Some(SessionError::Crypto(CurveError::BadCookie)));
        assert!(!got.ready && got.messages.is_empty());

        // The live client: it opens the new WELCOME (its box is keyed by S and c') and answers.
        let k = keys();
        let mut client_rng = client_script();
        let mut client =
            CurveClient::with_provider(provider(), &k.client, *k.server.public(), &mut client_rng)
                .unwrap();
        let _ = client.hello().unwrap();
        let mut server = Target::new(Side::Server);
        server.feed(&bytes[..hello_end]);
        let welcome = &server.transmitted[64 + 2..welcome_end];
        let metadata = field("INITIATE metadata");
        let initiate = client
            .handle_welcome(welcome, &metadata, &mut client_rng)
            .expect("the client accepts the server's WELCOME");
        let mut frame = long_header(0x04, initiate.len() as u64);
        frame.extend_from_slice(&initiate);
        server.feed(&frame);
        let got = server.outcome();
        assert_eq!(
            got.error,
            Some(SessionError::Crypto(CurveError::KeyExchange))
        );
        assert!(!got.ready);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hostile_any_bit_flip_in_the_client_stream_is_refused_or_harmless(
        at in 0..1usize << 16,
        bit in 0u8..8,
        p in prop::sample::select(all_providers()),
    ) {
        PROVIDER.with(|c| c.set(p));
        let rec = client_to_server();
        check_flip(Side::Server, rec, at % rec.bytes.len(), bit);
    }

    #[test]
    fn hostile_any_bit_flip_in_the_server_stream_is_refused_or_harmless(
        at in 0..1usize << 16,
        bit in 0u8..8,
        p in prop::sample::select(all_providers()),
    ) {
        PROVIDER.with(|c| c.set(p));
        let rec = server_to_client();
        check_flip(Side::Client, rec, at % rec.bytes.len(), bit);
    }
}

// ---------------------------------------------------------------------------------------------
// Replay

fn curve_error(o: &Outcome) -> Option<CurveError> {
    match &o.error {
        Some(SessionError::Crypto(e)) => Some(*e),
        _ => None,
    }
}

#[test]
fn hostile_replayed_message_is_refused() {
    each_provider(|| {
        let rec = client_to_server();
        let frames = message_frames("C->S");
        let handshake = &rec.bytes[..rec.bytes.len() - frames.concat().len()];
        // The same MESSAGE twice, and an older MESSAGE after a newer one.
        for (first, second) in [(0, 0), (1, 0), (3, 3), (3, 2)] {
            let stream = [handshake, &frames[first], &frames[second]].concat();
            let got = run(Side::Server, &stream);
            assert!(
                matches!(curve_error(&got), Some(CurveError::InvalidSequence { .. })),
                "replay {first} → {second}: {got:?}"
            );
        }
        // A replayed handshake command after the handshake is a MESSAGE that does not open.
        let initiate = field("INITIATE frame");
        let got = run(Side::Server, &[handshake, &initiate].concat());
        assert!(got.ready && curve_error(&got).is_some(), "{got:?}");
        // The same on the client side: the server's MESSAGE twice.
        let s2c = server_to_client();
        let frames = message_frames("S->C");
        let handshake = &s2c.bytes[..s2c.bytes.len() - frames.concat().len()];
        let got = run(Side::Client, &[handshake, &frames[0], &frames[0]].concat());
        assert_eq!(got.messages, vec![vec![Bytes::from_static(b"world")]]);
        assert!(matches!(
            curve_error(&got),
            Some(CurveError::InvalidSequence { .. })
        ));
    });
}

#[test]
fn hostile_message_from_another_connection_is_refused() {
    each_provider(|| {
        // A genuine MESSAGE recorded on one connection does not open on another connection between
        // the same long-term keys: the short-term keys differ.
        let k = keys();
        let mut sealed = Vec::new();
        let mut sessions = Vec::new();
        for seed in [1u64, 2] {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut c = Session::new(
                curve_config(
                    SocketType::Dealer,
                    MechanismConfig::CurveClient {
                        keypair: k.client.clone(),
                        server_key: *k.server.public(),
                    },
                ),
                Instant::ZERO,
                &mut rng,
            )
            .unwrap();
            let mut s = Session::new(
                curve_config(
                    SocketType::Router,
                    MechanismConfig::CurveServer {
                        keypair: k.server.clone(),
                    },
                ),
                Instant::ZERO,
                &mut rng,
            )
            .unwrap();
            for _ in 0..4 {
                while let Some(b) = c.poll_transmit() {
                    s.handle_bytes(Instant::ZERO, &b, &mut rng);
                }
                while let Some(b) = s.poll_transmit() {
                    c.handle_bytes(Instant::ZERO, &b, &mut rng);
                }
            }
            assert_eq!(s.state(), SessionState::Ready);
            c.send(Instant::ZERO, vec![Bytes::from_static(b"secret")])
                .unwrap();
            let mut bytes = Vec::new();
            while let Some(b) = c.poll_transmit() {
                bytes.extend_from_slice(&b);
            }
            sealed.push(bytes);
            sessions.push((s, rng));
        }
        let (mut s, mut rng) = sessions.swap_remove(1);
        while s.poll_event().is_some() {}
        s.handle_bytes(Instant::ZERO, &sealed[0], &mut rng);
        let events: Vec<SessionEvent> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(messages(&events).is_empty(), "{events:?}");
        assert!(matches!(
            s.error(),
            Some(SessionError::Crypto(CurveError::Cryptographic { .. }))
        ));
    });
}

// ---------------------------------------------------------------------------------------------
// Oversize length fields

/// A NULL greeting + READY from a DEALER.
fn null_preamble() -> Vec<u8> {
    let mut v = unhex(
        "ff00000000000000017f03014e554c4c000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    );
    let body = b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER";
    v.extend_from_slice(&[0x04, body.len() as u8]);
    v.extend_from_slice(body);
    v
}

fn long_header(flags: u8, size: u64) -> Vec<u8> {
    let mut h = vec![flags | 0x02];
    h.extend_from_slice(&size.to_be_bytes());
    h
}

#[test]
fn hostile_a_flood_of_bad_commands_in_one_read_is_answered_without_recursion() {
    // Each unknown command is answered at once; answering used to dispatch the next received
    // message from inside the send, one stack frame deeper per message, until a big enough
    // read overflowed the stack (a remote crash found by flooding the conformance server).
    let (mut run, plain, _) = NodeRun::new(AuthLevel::None);
    let conn = run.accept(plain);
    // The handshake first: input held for the auth decision is bounded much lower.
    run.receive(conn, &null_preamble());
    let mut bytes = Vec::new();
    const N: usize = 100_000;
    for _ in 0..N {
        bytes.extend_from_slice(&[0x00, 3]);
        bytes.extend_from_slice(b"x.y");
    }
    run.receive(conn, &bytes);
    let sent = &run.live[&conn].0;
    let replies = sent.windows(14).filter(|w| w == b"UNKNOWNCOMMAND").count();
    assert!(!run.live[&conn].1, "the connection stays open");
    // Replies beyond the send backlog bound are dropped (none is set here, so all go out).
    assert_eq!(replies, N);
}

#[test]
fn hostile_oversize_lengths_are_refused_after_the_header_without_buffering() {
    let limit = 1u64 << 20; // the default max_message_size
    let preamble = null_preamble();
    for (flags, size, expect_limit) in [
        (0x00, 1u64 << 62, limit),
        (0x00, u64::MAX, limit),
        (0x00, limit + 1, limit),
        (0x01, limit + 1, limit),
        (0x04, 1u64 << 62, limit),
    ] {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut s = Session::new(
            SessionConfig::new(SocketType::Router, MechanismConfig::Null),
            Instant::ZERO,
            &mut rng,
        )
        .unwrap();
        s.handle_bytes(Instant::ZERO, &preamble, &mut rng);
        assert_eq!(s.state(), SessionState::Ready);
        // The header, then a megabyte the peer claims belongs to the frame.
        let mut input = long_header(flags, size);
        input.extend(std::iter::repeat_n(0x55, 1 << 20));
        s.handle_bytes(Instant::ZERO, &input, &mut rng);
        assert_eq!(
            s.error(),
            Some(&SessionError::Protocol(ZmtpError::FrameTooLarge {
                size,
                limit: expect_limit
            }))
        );
        // Exactly the 9 header bytes were consumed: nothing of the body was read or kept.
        assert_eq!(
            s.stats().bytes_received,
            preamble.len() as u64 + 9,
            "size {size}"
        );
        while s.poll_transmit().is_some() {}
        assert_eq!(s.state(), SessionState::Closed);
    }

    // During the handshake the 64 KiB command cap applies even with no message limit.
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut config = SessionConfig::new(SocketType::Router, MechanismConfig::Null);
    config.max_message_size = None;
    let mut s = Session::new(config, Instant::ZERO, &mut rng).unwrap();
    let mut input = null_preamble()[..64].to_vec();
    input.extend(long_header(0x04, 64 * 1024 + 1));
    input.extend([0u8; 4096]);
    s.handle_bytes(Instant::ZERO, &input, &mut rng);
    assert_eq!(
        s.error(),
        Some(&SessionError::Protocol(ZmtpError::FrameTooLarge {
            size: 64 * 1024 + 1,
            limit: 64 * 1024
        }))
    );
    assert_eq!(s.stats().bytes_received, 64 + 9);
}

#[test]
fn hostile_oversize_lengths_never_allocate_the_declared_size() {
    // The decoder itself: with a limit, refusal right after the ninth header byte with nothing
    // buffered; without one, a 2^62-byte declaration buffers only what actually arrives.
    for size in [1u64 << 62, u64::MAX, 1001] {
        let mut d = FrameDecoder::new(Some(1000));
        let mut input_vec = long_header(0, size);
        input_vec.extend([7u8; 64]);
        let mut input = &input_vec[..];
        assert_eq!(
            d.decode(&mut input),
            Err(ZmtpError::FrameTooLarge { size, limit: 1000 })
        );
        assert_eq!(input.len(), 64, "consumed past the header");
        assert_eq!(d.buffered(), 0);
    }
    let mut d = FrameDecoder::new(None);
    let header = long_header(0, 1 << 62);
    assert_eq!(d.decode(&mut &header[..]), Ok(None));
    let chunk = [9u8; 4096];
    for i in 1..=16 {
        assert_eq!(d.decode(&mut &chunk[..]), Ok(None));
        assert_eq!(d.buffered(), i * chunk.len());
    }
    // u64::MAX exceeds what any buffer could hold, so it is refused even without a limit.
    let mut d = FrameDecoder::new(None);
    assert!(matches!(
        d.decode(&mut &long_header(0, u64::MAX)[..]),
        Err(ZmtpError::FrameTooLarge { .. })
    ));
}

#[test]
fn hostile_oversize_curve_message_is_refused_after_the_header() {
    each_provider(|| {
        // Under CURVE the limit applies to the encrypted size, checked before anything is opened.
        let rec = client_to_server();
        let handshake_len = rec.bytes.len() - message_frames("C->S").concat().len();
        let mut stream = rec.bytes[..handshake_len].to_vec();
        stream.extend(long_header(0, 1 << 62));
        stream.extend([0u8; 1024]);
        let got = run(Side::Server, &stream);
        assert!(got.ready);
        assert!(matches!(
            got.error,
            Some(SessionError::Protocol(ZmtpError::FrameTooLarge { .. }))
        ));
        assert_eq!(got.bytes_received, handshake_len as u64 + 9);
    });
}

// ---------------------------------------------------------------------------------------------
// Truncation

#[test]
fn hostile_truncated_handshakes_never_become_ready() {
    each_provider(|| {
        // One session fed the handshake a byte at a time: after every proper prefix it is not
        // ready (split invariance, tested separately, makes this the same as feeding each prefix).
        for (side, rec) in [
            (Side::Server, client_to_server()),
            (Side::Client, server_to_client()),
        ] {
            let handshake_len = rec.bytes.len()
                - match side {
                    Side::Server => message_frames("C->S"),
                    Side::Client => message_frames("S->C"),
                }
                .concat()
                .len();
            let mut t = Target::new(side);
            for (i, b) in rec.bytes[..handshake_len].iter().enumerate() {
                t.feed(std::slice::from_ref(b));
                let ready = t.events.contains(&SessionEvent::Ready);
                assert_eq!(
                    ready,
                    i + 1 == handshake_len,
                    "{side:?}: ready after {} bytes",
                    i + 1
                );
                assert_eq!(t.session.error(), None);
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn hostile_handshake_cut_anywhere_is_not_ready(
        cut in 0usize..1000,
        client in any::<bool>(),
        p in prop::sample::select(all_providers()),
    ) {
        PROVIDER.with(|c| c.set(p));
        let (side, rec, dir) = if client {
            (Side::Client, server_to_client(), "S->C")
        } else {
            (Side::Server, client_to_server(), "C->S")
        };
        let handshake_len = rec.bytes.len() - message_frames(dir).concat().len();
        let cut = cut % handshake_len;
        let got = run(side, &rec.bytes[..cut]);
        prop_assert!(!got.ready);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(got.bytes_received, cut as u64);
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bytes at any split: sessions

/// Which session, and what comes before the arbitrary bytes.
#[derive(Debug, Clone, Copy)]
enum Subject {
    NullRouter {
        auth: bool,
    },
    NullDealer,
    /// A CURVE server, optionally after the KAT client's genuine handshake.
    CurveServer {
        handshaken: bool,
    },
    /// A CURVE client, optionally after the KAT server's genuine handshake.
    CurveClient {
        handshaken: bool,
    },
}

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        any::<bool>().prop_map(|auth| Subject::NullRouter { auth }),
        Just(Subject::NullDealer),
        any::<bool>().prop_map(|handshaken| Subject::CurveServer { handshaken }),
        any::<bool>().prop_map(|handshaken| Subject::CurveClient { handshaken }),
    ]
}

/// Feeds `chunks` to a fresh session of `subject`; returns (events, transmitted), checking the
/// latching invariants after every chunk.
fn feed_subject(subject: Subject, chunks: &[&[u8]]) -> (Vec<SessionEvent>, Vec<u8>) {
    let (mut t, prefix) = match subject {
        // NULL draws no randomness: an empty script proves it.
        Subject::NullRouter { auth } => {
            let mut config = SessionConfig::new(SocketType::Router, MechanismConfig::Null);
            config.auth_required = auth;
            (Target::with(config, Script::new(&[])), Vec::new())
        }
        Subject::NullDealer => {
            let config = SessionConfig::new(SocketType::Dealer, MechanismConfig::Null);
            (Target::with(config, Script::new(&[])), Vec::new())
        }
        Subject::CurveServer { handshaken } => {
            let rec = client_to_server();
            let len = rec.bytes.len() - message_frames("C->S").concat().len();
            (
                Target::new(Side::Server),
                if handshaken {
                    rec.bytes[..len].to_vec()
                } else {
                    Vec::new()
                },
            )
        }
        Subject::CurveClient { handshaken } => {
            let rec = server_to_client();
            let len = rec.bytes.len() - message_frames("S->C").concat().len();
            (
                Target::new(Side::Client),
                if handshaken {
                    rec.bytes[..len].to_vec()
                } else {
                    Vec::new()
                },
            )
        }
    };
    t.feed(&prefix);
    for c in chunks {
        let closed_before = t.session.error().cloned();
        let (events, sent) = (t.events.len(), t.transmitted.len());
        t.feed(c);
        if t.events
            .iter()
            .any(|e| matches!(e, SessionEvent::AuthRequest { .. }))
            && t.session.state() == SessionState::AwaitingAuth
        {
            t.session.auth_decision(
                Instant::ZERO,
                AuthDecision::allow(Bytes::new(), Vec::new()),
                &mut t.rng,
            );
            t.drain();
        }
        if let Some(e) = closed_before {
            assert_eq!(t.events.len(), events, "event after close");
            assert_eq!(t.transmitted.len(), sent, "bytes after close");
            assert_eq!(t.session.error(), Some(&e));
        }
    }
    let _ = t.outcome();
    (t.events, t.transmitted)
}

fn cut(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(data[last..c].to_vec());
        last = c;
    }
    out.push(data[last..].to_vec());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hostile_sessions_take_any_bytes_at_any_split(
        subject in subject(),
        data in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let pieces = cut(&data, &cuts);
        let chunks: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let split = feed_subject(subject, &chunks);
        let whole = feed_subject(subject, &[&data]);
        // Authentication is answered after the chunk that asked, identically in both runs as long
        // as the held input stays under the backlog limit (600 bytes do).
        prop_assert_eq!(&split, &whole);
        // Random bytes never complete a CURVE handshake on their own.
        if matches!(
            subject,
            Subject::CurveServer { handshaken: false } | Subject::CurveClient { handshaken: false }
        ) {
            prop_assert!(!split.0.contains(&SessionEvent::Ready));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bytes at any split: a node's listeners

struct NodeRun {
    node: Node<ChaCha20Rng>,
    now: Instant,
    level: AuthLevel,
    live: std::collections::BTreeMap<ConnId, (Vec<u8>, bool)>,
}

impl NodeRun {
    fn new(level: AuthLevel) -> (Self, ListenerId, ListenerId) {
        let mut b = RegistryBuilder::new();
        b.add_category(
            "public",
            CategoryOptions::new(Access::default()).max_queue(QueueLimit::At(2)),
        )
        .unwrap();
        b.add_command("public", "hello").unwrap();
        b.add_request_command("public", "echo").unwrap();
        let now = Instant::from_secs(1);
        let mut node = Node::new(
            Config::new(1),
            b.build(),
            keys().server.clone(),
            ChaCha20Rng::seed_from_u64(9),
            now,
        )
        .unwrap();
        let plain = node
            .listen_plain(now, Address::tcp("127.0.0.1", 1))
            .unwrap();
        let curve = node
            .listen_curve(now, Address::tcp("127.0.0.1", 2))
            .unwrap();
        let mut r = Self {
            node,
            now,
            level,
            live: Default::default(),
        };
        r.drain();
        (r, plain, curve)
    }

    fn accept(&mut self, l: ListenerId) -> ConnId {
        let c = self.node.accept(self.now, l, "198.51.100.1").unwrap();
        assert!(self.live.insert(c, (Vec::new(), false)).is_none());
        self.drain();
        c
    }

    fn receive(&mut self, conn: ConnId, data: &[u8]) {
        self.node
            .handle(
                self.now,
                Input::Received {
                    conn,
                    data: Bytes::copy_from_slice(data),
                },
            )
            .expect("input accepted");
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            let mut inputs = Vec::new();
            while let Some(o) = self.node.poll_output() {
                match o {
                    Output::Transmit { conn, data } => {
                        let entry = self.live.get_mut(&conn).expect("transmit on unknown conn");
                        assert!(!entry.1, "transmit after Close on {conn:?}");
                        entry.0.extend_from_slice(&data);
                    }
                    Output::Close { conn, .. } => {
                        let entry = self.live.get_mut(&conn).expect("close of unknown conn");
                        assert!(!entry.1, "second Close of {conn:?}");
                        entry.1 = true;
                    }
                    Output::RunJob { worker, .. } => inputs.push(Input::JobFinished { worker }),
                    Output::Event(Event::AuthRequest { conn, .. }) => {
                        inputs.push(Input::AuthDecision {
                            conn,
                            level: self.level,
                        })
                    }
                    Output::Connect { .. } => panic!("a listener dialled out"),
                    _ => {}
                }
            }
            if inputs.is_empty() {
                break;
            }
            for i in inputs {
                self.node.handle(self.now, i).expect("input accepted");
            }
        }
        let open = self.live.values().filter(|(_, closed)| !closed).count();
        assert_eq!(self.node.stats().connections, open);
    }

    /// A well-behaved NULL client still gets `HELLO` for `HI` (or ERROR 400 when denied).
    fn still_serves(&mut self, plain: ListenerId) {
        let conn = self.accept(plain);
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let mut c = Session::new(
            SessionConfig::new(SocketType::Dealer, MechanismConfig::Null),
            self.now,
            &mut rng,
        )
        .unwrap();
        let mut events = Vec::new();
        let mut read = 0;
        let mut said_hi = false;
        for _ in 0..8 {
            while let Some(b) = c.poll_transmit() {
                if !self.live[&conn].1 {
                    self.receive(conn, &b);
                }
            }
            let sent = self.live[&conn].0.clone();
            c.handle_bytes(self.now, &sent[read..], &mut rng);
            read = sent.len();
            events.extend(std::iter::from_fn(|| c.poll_event()));
            if !said_hi && c.state() == SessionState::Ready {
                said_hi = true;
                c.send(self.now, vec![Bytes::from_static(b"HI")]).unwrap();
            }
        }
        if self.level == AuthLevel::Denied {
            assert!(events.iter().any(|e| matches!(
                e,
                SessionEvent::Closed(SessionError::PeerError(r)) if r.as_bytes() == b"400"
            )));
        } else {
            assert!(
                events.contains(&SessionEvent::Message(vec![Bytes::from_static(b"HELLO")])),
                "{events:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hostile_node_listeners_take_any_bytes_at_any_split(
        curve in any::<bool>(),
        preamble in any::<bool>(),
        level in 0usize..4,
        data in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let level = AuthLevel::ALL[level];
        let (mut run, plain, curve_l) = NodeRun::new(level);
        let conn = run.accept(if curve { curve_l } else { plain });
        let mut stream = if preamble && !curve { null_preamble() } else { Vec::new() };
        stream.extend_from_slice(&data);
        for piece in cut(&stream, &cuts) {
            if !run.live[&conn].1 {
                run.receive(conn, &piece);
            }
        }
        run.now = run.now.saturating_add(Duration::from_secs(61));
        run.node.handle(run.now, Input::Timeout).expect("input accepted");
        run.drain();
        let sent = run.live[&conn].0.len();
        // [UNKNOWNCOMMAND, command] for an empty frame is the largest reply per input byte (9x).
        prop_assert!(sent <= 2048 + 9 * stream.len(), "{} bytes out for {}", sent, stream.len());
        run.still_serves(plain);
    }
}
