//! The wire-stack targets: greeting and framing, the CURVE server and client sessions, and a
//! node's listeners (see the crate docs for what every entry point asserts).

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::rng::{
    DeterministicRng, MEMO_CRYPTO, PEER_SEED, TARGET_SEED, client_keypair, server_keypair,
};

use lokimq_core::address::Address;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::curve::{CurveClient, CurveCodec, CurveServer, FLAG_MORE};
use lokimq_core::ids::{ConnId, ListenerId};
use lokimq_core::node::{Config, Event, Input, Node, Output};
use lokimq_core::registry::{CategoryOptions, QueueLimit, Registry, RegistryBuilder};
use lokimq_core::session::config::AUTH_BACKLOG_LIMIT;
use lokimq_core::session::{
    AuthDecision, MechanismConfig, SendError, Session, SessionConfig, SessionError, SessionEvent,
    SessionState, SessionStats,
};
use lokimq_core::time::{Duration, Instant};
use lokimq_core::zmtp::command::ready_body;
use lokimq_core::zmtp::frame::{COMMAND, LONG, MORE, write_frame};
use lokimq_core::zmtp::greeting::{GREETING_LEN, encode_greeting};
use lokimq_core::zmtp::socket::handshake_metadata;
use lokimq_core::zmtp::{Frame, FrameDecoder, GreetingDecoder, Mechanism, SocketType, ZmtpError};

// -------------------------------------------------------------------------------------------------
// Splitting input

/// Reads a split plan from the front of a fuzz input: byte 0 gives the number of cuts (mod 8),
/// then one byte per cut gives its distance from the previous cut (0 makes an empty chunk).
/// Returns the cut offsets and the rest of the input.
#[must_use]
pub fn take_split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 8).min(rest.len());
    let (deltas, rest) = rest.split_at(n);
    let mut at = 0usize;
    let cuts = deltas
        .iter()
        .map(|&d| {
            at += usize::from(d);
            at
        })
        .collect();
    (cuts, rest)
}

/// Cuts `data` at the given offsets (any values: they are clamped to `data.len()` and sorted).
/// The chunks always concatenate back to `data`.
#[must_use]
pub fn chunks_at<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut last = 0;
    for c in cuts {
        out.push(&data[last..c]);
        last = c;
    }
    out.push(&data[last..]);
    out
}

/// Cuts `data` into chunks of the given sizes, then the rest (libzmq's fuzzers use 64, 202 on the
/// server side and 64, 170, 72 on the client side).
fn chunks_of<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for s in sizes {
        at += s;
        cuts.push(at);
    }
    chunks_at(data, &cuts)
}

/// `chunk == 0` selects the given libzmq pattern, anything else fixed-size chunks.
fn plan<'a>(data: &'a [u8], chunk: usize, libzmq: &[usize]) -> Vec<&'a [u8]> {
    if chunk == 0 {
        chunks_of(data, libzmq)
    } else {
        data.chunks(chunk).collect()
    }
}

// -------------------------------------------------------------------------------------------------
// A session under test

/// Everything a session did while being fed one input: the unit of comparison for split
/// invariance.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionTrace {
    /// Every event, in order.
    events: Vec<SessionEvent>,
    /// Every transmitted byte, concatenated.
    transmitted: Vec<u8>,
    /// The final counters.
    stats: SessionStats,
    /// The final state.
    state: SessionState,
    /// The latched error, if any.
    error: Option<SessionError>,
}

impl SessionTrace {
    /// The multipart messages delivered, in order.
    fn messages(&self) -> Vec<Vec<Bytes>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the handshake completed.
    fn ready(&self) -> bool {
        self.events.contains(&SessionEvent::Ready)
    }
}

/// Transmitted bytes allowed regardless of input: greeting, the largest handshake command we
/// send and a closing ERROR, with room to spare.
const TRANSMIT_SLACK: usize = 2048;

/// A session fed by a harness that drains it after every call and checks the per-call
/// invariants.
///
/// Authentication requests are answered with `decision` one chunk late: at the end of the
/// `feed` after the one that raised it (or at [`Driver::settle`]), so that the chunk in between
/// arrives while the session waits and exercises its hold-back buffer. The final outcome must
/// not depend on it (whole-stream runs get the decision at the end).
struct Driver {
    session: Session,
    rng: DeterministicRng,
    decision: AuthDecision,
    events: Vec<SessionEvent>,
    transmitted: Vec<u8>,
    fed: usize,
    feeds: usize,
    /// The `feeds` count when an unanswered authentication request was raised.
    pending: Option<usize>,
    asked: bool,
    ready: bool,
    closed: bool,
}

impl Driver {
    fn new(config: SessionConfig, decision: AuthDecision) -> Self {
        let mut rng = DeterministicRng::new(TARGET_SEED);
        let session = match Session::new(config, Instant::ZERO, &mut rng) {
            Ok(s) => s,
            // Every configuration built in this module is valid; reaching this is a harness bug.
            Err(e) => panic!("fuzzing harness built an invalid session config: {e}"),
        };
        let mut d = Self {
            session,
            rng,
            decision,
            events: Vec::new(),
            transmitted: Vec::new(),
            fed: 0,
            feeds: 0,
            pending: None,
            asked: false,
            ready: false,
            closed: false,
        };
        d.drain();
        d
    }

    fn feed(&mut self, bytes: &[u8]) {
        let latched = self.session.error().cloned();
        let (events, transmitted) = (self.events.len(), self.transmitted.len());
        self.fed += bytes.len();
        self.feeds += 1;
        self.session
            .handle_bytes(Instant::ZERO, bytes, &mut self.rng);
        self.drain();
        if self.pending.is_some_and(|raised| raised < self.feeds) {
            self.settle();
        }
        if let Some(e) = latched {
            assert_eq!(self.events.len(), events, "event after the session closed");
            assert_eq!(
                self.transmitted.len(),
                transmitted,
                "bytes transmitted after the session closed"
            );
            assert_eq!(self.session.error(), Some(&e), "latched error changed");
        }
    }

    /// Answers a pending authentication request now.
    fn settle(&mut self) {
        if self.pending.take().is_none() {
            return;
        }
        let waiting = self.session.state() == SessionState::AwaitingAuth;
        let taken = self
            .session
            .auth_decision(Instant::ZERO, self.decision.clone(), &mut self.rng);
        assert_eq!(
            taken, waiting,
            "auth decision taken outside the wait, or refused in it"
        );
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(b) = self.session.poll_transmit() {
            self.transmitted.extend_from_slice(&b);
        }
        while let Some(ev) = self.session.poll_event() {
            if self.check_event(&ev) {
                self.pending = Some(self.feeds);
            }
            self.events.push(ev);
        }
        assert_eq!(
            self.closed,
            self.session.error().is_some(),
            "Closed event and latched error disagree"
        );
        if self.closed {
            assert_eq!(self.session.state(), SessionState::Closed);
            assert_eq!(self.session.poll_timeout(), None, "timer armed after close");
        } else if self.ready {
            assert_eq!(self.session.state(), SessionState::Ready);
        } else if self.asked && self.pending.is_some() {
            assert_eq!(self.session.state(), SessionState::AwaitingAuth);
        }
    }

    /// Checks that `ev` may follow the events so far; returns whether it asks for a decision.
    fn check_event(&mut self, ev: &SessionEvent) -> bool {
        assert!(!self.closed, "event {ev:?} after Closed");
        match ev {
            SessionEvent::AuthRequest { .. } => {
                assert!(
                    !self.asked && !self.ready,
                    "second AuthRequest, or one after Ready"
                );
                self.asked = true;
                return true;
            }
            SessionEvent::Ready => {
                assert!(!self.ready, "second Ready");
                self.ready = true;
            }
            SessionEvent::Message(parts) => {
                assert!(self.ready, "message before Ready");
                assert!(!parts.is_empty(), "empty message delivered");
            }
            SessionEvent::Closed(_) => self.closed = true,
            // The enum is non-exhaustive; an event this harness has no rule for must be added
            // here before fuzzing means anything.
            other => panic!("the harness has no rule for session event {other:?}"),
        }
        false
    }

    fn trace(&self) -> SessionTrace {
        SessionTrace {
            events: self.events.clone(),
            transmitted: self.transmitted.clone(),
            stats: self.session.stats(),
            state: self.session.state(),
            error: self.session.error().cloned(),
        }
    }

    /// Checks the output bounds, then closes the session (if the input did not) and checks that
    /// nothing gets through afterwards.
    fn finish(mut self, stream: &[u8]) -> SessionTrace {
        self.settle();
        let trace = self.trace();
        check_bounds(&trace, self.fed);
        if self.session.error().is_none() {
            self.session.close(Instant::ZERO);
            self.drain();
            assert_eq!(
                self.events.last(),
                Some(&SessionEvent::Closed(SessionError::LocallyClosed))
            );
        }
        let (events, transmitted) = (self.events.len(), self.transmitted.len());
        self.feed(stream);
        self.session
            .handle_timeout(Instant::from_secs(1 << 20), &mut self.rng);
        assert_eq!(
            self.session
                .send(Instant::ZERO, vec![Bytes::from_static(b"x")]),
            Err(SendError::Closed)
        );
        assert!(
            !self.session.auth_decision(
                Instant::ZERO,
                AuthDecision::allow(Bytes::new(), Vec::new()),
                &mut self.rng
            ),
            "a closed session took an auth decision"
        );
        self.drain();
        assert_eq!(self.events.len(), events, "event after close");
        assert_eq!(self.transmitted.len(), transmitted, "bytes after close");
        trace
    }
}

fn check_bounds(trace: &SessionTrace, fed: usize) {
    assert!(
        trace.transmitted.len() <= TRANSMIT_SLACK + 2 * fed,
        "amplification: {} bytes out for {fed} in",
        trace.transmitted.len()
    );
    let messages = trace.messages();
    let delivered: usize = messages.iter().flatten().map(Bytes::len).sum();
    assert!(delivered <= fed, "{delivered} bytes delivered from {fed}");
    let parts: usize = messages.iter().map(Vec::len).sum();
    assert!(
        2 * parts <= fed,
        "{parts} frames delivered from {fed} bytes"
    );
    assert!(trace.stats.bytes_received <= fed as u64);
}

/// Whether whole and split feeding must agree: beyond the auth backlog limit, the point at which
/// the decision is taken legitimately changes the outcome.
fn comparable(stream_len: usize) -> bool {
    stream_len <= AUTH_BACKLOG_LIMIT
}

fn allow() -> AuthDecision {
    AuthDecision::allow(Bytes::from_static(b"fuzz"), Vec::new())
}

/// A session configuration whose CURVE cryptography goes through [`MEMO_CRYPTO`].
pub(crate) fn session_config(socket_type: SocketType, mechanism: MechanismConfig) -> SessionConfig {
    let mut c = SessionConfig::new(socket_type, mechanism);
    c.crypto_provider = &MEMO_CRYPTO;
    c
}

fn null_config(socket_type: SocketType, auth: bool) -> SessionConfig {
    let mut c = session_config(socket_type, MechanismConfig::Null);
    c.auth_required = auth;
    c
}

fn curve_server_config(auth: bool) -> SessionConfig {
    let mut c = session_config(
        SocketType::Router,
        MechanismConfig::CurveServer {
            keypair: server_keypair(),
        },
    );
    c.auth_required = auth;
    c
}

fn curve_client_config() -> SessionConfig {
    session_config(
        SocketType::Dealer,
        MechanismConfig::CurveClient {
            keypair: client_keypair(),
            server_key: *server_keypair().public(),
        },
    )
}

fn metadata_bytes(socket_type: SocketType) -> Bytes {
    let props: &[(&str, Bytes)] = &[];
    match handshake_metadata(socket_type, &Bytes::new(), props) {
        Ok(m) => m.to_bytes(),
        // Our own socket type with no routing id and no properties always encodes.
        Err(e) => panic!("fixed metadata failed to encode: {e}"),
    }
}

/// A valid NULL preamble from a peer of `peer_type`: greeting, then READY.
fn null_preamble(peer_type: SocketType) -> Vec<u8> {
    let mut out = BytesMut::from(&encode_greeting(Mechanism::Null, 0)[..]);
    let props: &[(&str, Bytes)] = &[];
    match handshake_metadata(peer_type, &Bytes::new(), props) {
        Ok(m) => write_frame(&mut out, false, true, &ready_body(&m)),
        Err(e) => panic!("fixed metadata failed to encode: {e}"),
    }
    out.to_vec()
}

/// Feeds `chunks` to one fresh session and `chunks.concat()` to another, asserts the traces are
/// identical (when comparable) and returns the chunked one.
fn whole_versus_chunks(
    config: &SessionConfig,
    decision: &AuthDecision,
    chunks: &[&[u8]],
) -> SessionTrace {
    let stream = chunks.concat();
    let mut split = Driver::new(config.clone(), decision.clone());
    for c in chunks {
        split.feed(c);
    }
    let split = split.finish(&stream);
    let mut whole = Driver::new(config.clone(), decision.clone());
    whole.feed(&stream);
    let whole = whole.finish(&stream);
    if comparable(stream.len()) {
        assert_eq!(split, whole, "split and whole feeding differ");
    }
    split
}

// -------------------------------------------------------------------------------------------------
// Greeting and framing

/// Fuzzes the greeting decoder, the frame decoder and a full NULL session with `data`, cut at
/// `split` (any offsets; see [`take_split`] to derive them from fuzz input).
///
/// * greeting (NULL and CURVE expected): chunked decoding accepts or refuses at exactly the same
///   byte as whole decoding, and a completed decoder consumes nothing more;
/// * frames, under limits 0, 255, 256, 64 KiB and none: same frames and same error whole or
///   chunked; bodies within the limit; the partial buffer never exceeds the limit; an error is
///   latched and consumes nothing; decoded frames re-encode and decode to themselves;
/// * sessions (ROUTER with and without authentication, DEALER, and ROUTERs with tiny multipart
///   limits), fed the raw bytes and the bytes after a valid greeting + READY: every session
///   invariant of this module.
pub fn fuzz_greeting_and_frames(data: &[u8], split: &[usize]) {
    let chunks = chunks_at(data, split);
    for mech in [Mechanism::Null, Mechanism::Curve] {
        let whole = greeting_run(mech, &[data]);
        assert_eq!(
            greeting_run(mech, &chunks),
            whole,
            "greeting: split differs"
        );
    }
    for limit in [Some(0), Some(255), Some(256), Some(64 * 1024), None] {
        let whole = frames_run(limit, &[data]);
        assert_eq!(frames_run(limit, &chunks), whole, "frames: split differs");
        let mut reencoded = BytesMut::new();
        for f in &whole.0 {
            f.write(&mut reencoded);
        }
        let again = frames_run(None, &[&reencoded]);
        assert_eq!(again.0, whole.0, "frames do not survive re-encoding");
        assert_eq!(again.1, Ok(()));
    }
    // Small multipart limits make TooManyParts and MessageTooLarge reachable within libFuzzer's
    // default 4 KiB inputs (48 bytes still admits the preamble's READY).
    let mut few_parts = null_config(SocketType::Router, false);
    few_parts.max_message_parts = 4;
    let mut small_frames = null_config(SocketType::Router, false);
    small_frames.max_message_size = Some(48);
    for (config, peer) in [
        (null_config(SocketType::Router, false), SocketType::Dealer),
        (null_config(SocketType::Router, true), SocketType::Dealer),
        (null_config(SocketType::Dealer, false), SocketType::Router),
        (few_parts, SocketType::Dealer),
        (small_frames, SocketType::Dealer),
    ] {
        whole_versus_chunks(&config, &allow(), &chunks);
        let preamble = null_preamble(peer);
        let mut prefixed = vec![&preamble[..]];
        prefixed.extend_from_slice(&chunks);
        let trace = whole_versus_chunks(&config, &allow(), &prefixed);
        assert!(trace.ready(), "a valid NULL preamble did not complete");
    }
}

/// (greeting if any, bytes consumed, error if any).
type GreetingOutcome = (
    Option<lokimq_core::zmtp::PeerGreeting>,
    usize,
    Option<ZmtpError>,
);

fn greeting_run(mech: Mechanism, chunks: &[&[u8]]) -> GreetingOutcome {
    let mut d = GreetingDecoder::new(mech);
    let mut consumed = 0;
    for c in chunks {
        let mut input = *c;
        let r = d.decode(&mut input);
        consumed += c.len() - input.len();
        match r {
            Ok(Some(g)) => {
                assert_eq!(consumed, GREETING_LEN);
                assert_eq!(g.mechanism, mech);
                assert!(d.is_done());
                let before = input.len();
                assert_eq!(d.decode(&mut input), Ok(None));
                assert_eq!(input.len(), before, "a completed greeting consumed more");
                return (Some(g), consumed, None);
            }
            Ok(None) => assert!(input.is_empty(), "greeting left input while incomplete"),
            Err(e) => {
                assert!(consumed <= GREETING_LEN);
                return (None, consumed, Some(e));
            }
        }
    }
    assert_eq!(d.received(), consumed);
    (None, consumed, None)
}

/// (frames, final result, bytes buffered for the frame in progress).
type FramesOutcome = (Vec<Frame>, Result<(), ZmtpError>, usize);

fn frames_run(limit: Option<u64>, chunks: &[&[u8]]) -> FramesOutcome {
    let mut d = FrameDecoder::new(limit);
    let cap = limit.unwrap_or(u64::MAX);
    let mut frames = Vec::new();
    let mut fed = 0usize;
    for c in chunks {
        fed += c.len();
        let mut input = *c;
        loop {
            match d.decode(&mut input) {
                Ok(Some(f)) => {
                    assert!(f.body.len() as u64 <= cap, "frame over the limit");
                    assert!(!(f.command && f.more), "command frame with MORE accepted");
                    frames.push(f);
                }
                Ok(None) => {
                    assert!(input.is_empty(), "decoder stopped with input left");
                    break;
                }
                Err(e) => {
                    let before = input.len();
                    assert_eq!(d.decode(&mut input), Err(e.clone()), "error not latched");
                    assert_eq!(input.len(), before, "a failed decoder consumed input");
                    assert_eq!(d.buffered(), 0, "a failed decoder kept its buffer");
                    return (frames, Err(e), 0);
                }
            }
            assert!(d.buffered() as u64 <= cap, "buffered past the limit");
            assert!(d.buffered() <= fed, "buffered more than received");
        }
    }
    let buffered = d.buffered();
    (frames, Ok(()), buffered)
}

// -------------------------------------------------------------------------------------------------
// Scripted CURVE peers

/// Reads the frames a session transmitted, after its greeting, incrementally.
struct PeerReader {
    pos: usize,
    greeting: GreetingDecoder,
    frames: FrameDecoder,
    failed: bool,
}

impl PeerReader {
    fn new() -> Self {
        Self {
            pos: 0,
            greeting: GreetingDecoder::new(Mechanism::Curve),
            frames: FrameDecoder::new(None),
            failed: false,
        }
    }

    fn read(&mut self, stream: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut input = &stream[self.pos..];
        while !self.failed && !input.is_empty() {
            let r = if self.greeting.is_done() {
                self.frames
                    .decode(&mut input)
                    .map(|f| f.map(|f| out.push(f)))
            } else {
                self.greeting.decode(&mut input).map(|_| None)
            };
            if r.is_err() {
                // Our own sessions always send valid ZMTP; a failure here is a session bug.
                panic!("a session under test transmitted invalid ZMTP: {r:?}");
            }
        }
        self.pos = stream.len() - input.len();
        out
    }
}

fn command_frame(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_frame(&mut out, false, true, body);
    out.to_vec()
}

/// A well-behaved CURVE client driven at the command level, so that it can seal arbitrary
/// MESSAGE payloads once the handshake is done.
struct ScriptedClient {
    inner: CurveClient,
    rng: DeterministicRng,
    reader: PeerReader,
    codec: Option<CurveCodec>,
    dead: bool,
}

impl ScriptedClient {
    fn new() -> Self {
        let mut rng = DeterministicRng::new(PEER_SEED);
        let inner = match CurveClient::with_provider(
            &MEMO_CRYPTO,
            &client_keypair(),
            *server_keypair().public(),
            &mut rng,
        ) {
            Ok(c) => c,
            // The fixed server key is a valid curve point.
            Err(e) => panic!("scripted client: {e}"),
        };
        Self {
            inner,
            rng,
            reader: PeerReader::new(),
            codec: None,
            dead: false,
        }
    }

    /// Greeting and HELLO.
    fn opening(&mut self) -> Vec<u8> {
        let mut out = encode_greeting(Mechanism::Curve, 0).to_vec();
        match self.inner.hello() {
            Ok(hello) => out.extend(command_frame(&hello)),
            Err(e) => panic!("scripted client HELLO: {e}"),
        }
        out
    }

    /// Reads what the server sent so far; returns INITIATE once WELCOME is there. Stops (for
    /// good) at anything unexpected, such as an ERROR.
    fn respond(&mut self, server_stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.reader.read(server_stream) {
            if self.dead || self.codec.is_some() {
                break;
            }
            if lokimq_core::curve::Command::Welcome.matches(&f.body) {
                let md = metadata_bytes(SocketType::Dealer);
                match self.inner.handle_welcome(&f.body, &md, &mut self.rng) {
                    Ok(initiate) => out.extend(command_frame(&initiate)),
                    Err(e) => panic!("genuine WELCOME refused: {e}"),
                }
            } else if lokimq_core::curve::Command::Ready.matches(&f.body) {
                match self.inner.handle_ready(&f.body) {
                    Ok((_, codec)) => self.codec = Some(codec),
                    Err(e) => panic!("genuine READY refused: {e}"),
                }
            } else {
                self.dead = true;
            }
        }
        out
    }
}

/// A well-behaved CURVE server driven at the command level.
struct ScriptedServer {
    inner: CurveServer,
    rng: DeterministicRng,
    reader: PeerReader,
    codec: Option<CurveCodec>,
    welcome_sent: bool,
    ready_sent: bool,
}

impl ScriptedServer {
    fn new() -> Self {
        let mut rng = DeterministicRng::new(PEER_SEED);
        let inner = CurveServer::with_provider(&MEMO_CRYPTO, &server_keypair(), &mut rng);
        Self {
            inner,
            rng,
            reader: PeerReader::new(),
            codec: None,
            welcome_sent: false,
            ready_sent: false,
        }
    }

    fn greeting() -> Vec<u8> {
        encode_greeting(Mechanism::Curve, 0).to_vec()
    }

    /// Reads what the client sent so far; answers HELLO with WELCOME and, if `with_ready`,
    /// INITIATE with READY.
    fn respond(&mut self, client_stream: &[u8], with_ready: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.reader.read(client_stream) {
            if !self.welcome_sent && lokimq_core::curve::Command::Hello.matches(&f.body) {
                match self.inner.handle_hello(&f.body, &mut self.rng) {
                    Ok(w) => out.extend(command_frame(&w)),
                    Err(e) => panic!("genuine HELLO refused: {e}"),
                }
                self.welcome_sent = true;
            } else if with_ready
                && !self.ready_sent
                && lokimq_core::curve::Command::Initiate.matches(&f.body)
            {
                if let Err(e) = self.inner.handle_initiate(&f.body) {
                    panic!("genuine INITIATE refused: {e}");
                }
                match self.inner.ready(&metadata_bytes(SocketType::Router)) {
                    Ok((ready, codec)) => {
                        out.extend(command_frame(&ready));
                        self.codec = Some(codec);
                    }
                    Err(e) => panic!("scripted server READY: {e}"),
                }
                self.ready_sent = true;
            }
        }
        out
    }
}

// -------------------------------------------------------------------------------------------------
// Sealed records: attacker-chosen MESSAGEs under the genuine peer's key

/// What the receiving session must make of one sealed record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A logical frame (payload COMMAND frames included; the session handles those itself).
    Frame {
        more: bool,
        command: bool,
        body: Bytes,
    },
    /// Opened and dropped (outer COMMAND flag), the connection stays.
    Dropped,
    /// Refused by the frame decoder: outer COMMAND and MORE together.
    CommandWithMore,
    /// Refused by CURVE: a replay of the previous record, or a tampered box.
    CurveFailure,
}

struct Record {
    wire: Vec<u8>,
    expect: Expect,
}

/// Turns fuzz bytes into MESSAGE records sealed by `codec`. Each record is `ctl, len, body[len]`:
/// `ctl` bits 0–1 are the payload flags (all 8 bits go to `seal`, which keeps `& 3`), bit 2 sets
/// the outer COMMAND flag, bit 3 the outer MORE flag, bit 4 replays the previous record verbatim,
/// bit 5 uses the 8-byte size form, bit 6 flips one bit of the sealed body.
fn sealed_records(codec: &mut CurveCodec, mut data: &[u8]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    while let [ctl, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        let (body, tail) = rest.split_at(n);
        data = tail;
        if ctl & 0x10 != 0
            && let Some(prev) = out.last()
        {
            let wire = prev.wire.clone();
            out.push(Record {
                wire,
                expect: Expect::CurveFailure,
            });
            continue;
        }
        let mut sealed = Vec::new();
        if codec.seal(*ctl, body, &mut sealed).is_err() {
            break; // only a spent nonce counter fails, which 4 KiB of input cannot reach
        }
        let outer_command = ctl & 0x04 != 0;
        let outer_more = ctl & 0x08 != 0;
        let tampered = ctl & 0x40 != 0;
        if tampered {
            let at = usize::from(*len) % sealed.len();
            sealed[at] ^= 1 << (len % 8);
        }
        let mut flags = 0;
        if outer_command {
            flags |= COMMAND;
        }
        if outer_more {
            flags |= MORE;
        }
        let mut wire = Vec::with_capacity(sealed.len() + 9);
        if ctl & 0x20 != 0 || sealed.len() > 255 {
            wire.push(flags | LONG);
            wire.extend_from_slice(&(sealed.len() as u64).to_be_bytes());
        } else {
            wire.push(flags);
            wire.push(sealed.len() as u8);
        }
        wire.extend_from_slice(&sealed);
        let expect = if outer_command && outer_more {
            Expect::CommandWithMore
        } else if tampered {
            Expect::CurveFailure
        } else if outer_command {
            Expect::Dropped
        } else {
            Expect::Frame {
                more: outer_more || ctl & FLAG_MORE != 0,
                command: ctl & lokimq_core::curve::FLAG_COMMAND != 0,
                body: Bytes::copy_from_slice(body),
            }
        };
        out.push(Record { wire, expect });
    }
    out
}

/// The messages a receiver must deliver for `records` if none of them closes it.
fn expected_messages(records: &[Record]) -> Vec<Vec<Bytes>> {
    let mut messages = Vec::new();
    let mut partial = Vec::new();
    for r in records {
        match &r.expect {
            Expect::Frame {
                command: false,
                more,
                body,
            } => {
                partial.push(body.clone());
                if !more {
                    messages.push(std::mem::take(&mut partial));
                }
            }
            Expect::Frame { command: true, .. } | Expect::Dropped => {}
            Expect::CommandWithMore | Expect::CurveFailure => break,
        }
    }
    messages
}

/// Feeds sealed records one by one (each in `chunk`-sized pieces, 0 = whole), checking after each
/// that a refused record closed the session with the right kind of error.
/// Feeds the attacker's payload once the scripted prefix is in: sealed by the genuine peer as
/// MESSAGE records in the sealed stage (returned, to check what gets delivered), raw otherwise.
fn feed_payload(
    d: &mut Driver,
    stream: &mut Vec<u8>,
    stage: Stage,
    codec: Option<&mut CurveCodec>,
    payload: &[u8],
    chunk: usize,
) -> Vec<Record> {
    match (stage, codec) {
        (Stage::Sealed, Some(codec)) => {
            let records = sealed_records(codec, payload);
            feed_records(d, stream, &records, chunk);
            records
        }
        _ => {
            for c in plan(payload, chunk, &[]) {
                stream.extend_from_slice(c);
                d.feed(c);
            }
            Vec::new()
        }
    }
}

fn feed_records(d: &mut Driver, stream: &mut Vec<u8>, records: &[Record], chunk: usize) {
    for r in records {
        let was_open = d.session.error().is_none();
        stream.extend_from_slice(&r.wire);
        if chunk == 0 {
            d.feed(&r.wire);
        } else {
            for piece in r.wire.chunks(chunk) {
                d.feed(piece);
            }
        }
        if !was_open {
            continue;
        }
        match (&r.expect, d.session.error()) {
            (Expect::CurveFailure, Some(SessionError::Crypto(_)))
            | (Expect::CommandWithMore, Some(SessionError::Protocol(ZmtpError::CommandWithMore))) =>
                {}
            (Expect::CurveFailure | Expect::CommandWithMore, other) => {
                panic!("record {:?} not refused as expected: {other:?}", r.expect)
            }
            (Expect::Dropped, e) => {
                assert_eq!(
                    e, None,
                    "a MESSAGE in an outer COMMAND frame closed the session"
                );
            }
            // A genuine frame may still close the session legitimately: a malformed traffic
            // command, or a multipart limit.
            (Expect::Frame { .. }, _) => {}
        }
    }
}

/// Delivered messages must be exactly the genuine ones, or a prefix of them if the session
/// closed.
fn check_authentic(trace: &SessionTrace, records: &[Record]) {
    let expected = expected_messages(records);
    let got = trace.messages();
    assert!(
        got.len() <= expected.len() && got[..] == expected[..got.len()],
        "delivered messages are not the genuine ones"
    );
    if trace.error.is_none() {
        assert_eq!(got, expected, "genuine messages missing");
    }
}

// -------------------------------------------------------------------------------------------------
// CURVE server

/// How far a scripted peer takes the handshake before the fuzz bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The fuzz bytes from the first byte.
    Raw,
    /// After a valid greeting and the first handshake command (HELLO / WELCOME).
    Opened,
    /// After the whole handshake, as raw bytes.
    Handshaken,
    /// After the whole handshake, sealed as MESSAGE records by the genuine peer.
    Sealed,
}

/// Reads the header byte: bits 0–1 the [`Stage`], bit 2 an option, bits 3–7 the chunk size
/// (0 = libzmq's chunk pattern).
fn header(data: &[u8]) -> Option<(Stage, bool, usize, &[u8])> {
    let (&h, rest) = data.split_first()?;
    let stage = match h & 3 {
        0 => Stage::Raw,
        1 => Stage::Opened,
        2 => Stage::Handshaken,
        _ => Stage::Sealed,
    };
    Some((stage, h & 4 != 0, usize::from(h >> 3), rest))
}

/// Fuzzes a CURVE server session (ROUTER, fixed keys, [`TARGET_SEED`]) with attacker bytes.
///
/// Byte 0 selects (bits 0–1) how far a scripted, genuine client takes the handshake first: none
/// (raw bytes cut 64 / 202 / rest like libzmq's `test_bind_curve_fuzzer`), greeting + HELLO
/// (the fuzz bytes then hit INITIATE), the whole handshake (raw bytes then hit MESSAGE
/// parsing), or the whole handshake with the rest sealed as MESSAGE records (see
/// `sealed_records`: payload flags, outer flags, replays, tampering). Bit 2 turns on the
/// authentication wait (answered "allow"); bits 3–7 choose the chunk size.
///
/// Besides the module's session invariants: a valid prefix reaches the state it should, replayed
/// and tampered MESSAGEs close the session with a CURVE error, and delivered messages are exactly
/// the client's.
pub fn fuzz_curve_server_handshake(data: &[u8]) {
    let Some((stage, auth, chunk, payload)) = header(data) else {
        return;
    };
    let config = curve_server_config(auth);
    let mut d = Driver::new(config.clone(), allow());
    let mut stream = Vec::new();
    let mut records = Vec::new();
    if stage == Stage::Raw {
        for c in plan(payload, chunk, &[64, 202]) {
            stream.extend_from_slice(c);
            d.feed(c);
        }
    } else {
        let mut client = ScriptedClient::new();
        let opening = client.opening();
        stream.extend_from_slice(&opening);
        d.feed(&opening);
        if stage != Stage::Opened {
            let initiate = client.respond(&d.transmitted);
            assert!(
                !initiate.is_empty(),
                "the server did not answer a genuine HELLO"
            );
            stream.extend_from_slice(&initiate);
            d.feed(&initiate);
            if stage == Stage::Sealed {
                // The client needs READY to seal; in the raw stage the decision is left pending,
                // so the first payload chunk arrives during the authentication wait.
                d.settle();
                let _ = client.respond(&d.transmitted);
                assert!(d.ready, "a genuine handshake did not complete");
            }
        }
        records = feed_payload(
            &mut d,
            &mut stream,
            stage,
            client.codec.as_mut(),
            payload,
            chunk,
        );
    }
    let split = d.finish(&stream);
    match stage {
        Stage::Sealed => check_authentic(&split, &records),
        // Whatever the payload does, READY went out before the held payload was processed.
        Stage::Handshaken => assert!(split.ready(), "a genuine handshake did not complete"),
        // Attacker bytes alone never complete a CURVE handshake: that needs the server's boxes.
        Stage::Raw => assert!(!split.ready(), "random bytes completed a CURVE handshake"),
        Stage::Opened => {}
    }
    let mut whole = Driver::new(config, allow());
    whole.feed(&stream);
    let whole = whole.finish(&stream);
    if comparable(stream.len()) {
        assert_eq!(split, whole, "split and whole feeding differ");
    }
}

// -------------------------------------------------------------------------------------------------
// CURVE client

/// Fuzzes a CURVE client session (DEALER, fixed keys, [`TARGET_SEED`]) with attacker bytes
/// standing for the server.
///
/// Byte 0 selects (bits 0–1) how far a scripted, genuine server takes the handshake first: none
/// (raw bytes cut 64 / 170 / 72 / rest like libzmq's `test_connect_curve_fuzzer`), greeting +
/// WELCOME (the fuzz bytes then stand for READY or ERROR), the whole handshake (raw bytes then
/// hit MESSAGE parsing), or the whole handshake with the rest sealed as MESSAGE records. Bit 2
/// makes the client queue a message before the handshake (flushed on READY); bits 3–7 choose
/// the chunk size.
pub fn fuzz_curve_client_handshake(data: &[u8]) {
    let Some((stage, queue, chunk, payload)) = header(data) else {
        return;
    };
    let config = curve_client_config();
    let new_driver = || {
        let mut d = Driver::new(config.clone(), allow());
        if queue {
            let queued = d
                .session
                .send(Instant::ZERO, vec![Bytes::from_static(b"queued")]);
            assert_eq!(queued, Ok(()));
        }
        d
    };
    let mut d = new_driver();
    let mut stream = Vec::new();
    let mut records = Vec::new();
    if stage == Stage::Raw {
        for c in plan(payload, chunk, &[64, 170, 72]) {
            stream.extend_from_slice(c);
            d.feed(c);
        }
    } else {
        let mut server = ScriptedServer::new();
        let greeting = ScriptedServer::greeting();
        stream.extend_from_slice(&greeting);
        d.feed(&greeting);
        let welcome = server.respond(&d.transmitted, false);
        assert!(!welcome.is_empty(), "the client sent no HELLO");
        stream.extend_from_slice(&welcome);
        d.feed(&welcome);
        if stage != Stage::Opened {
            let ready = server.respond(&d.transmitted, true);
            assert!(
                !ready.is_empty(),
                "the client did not answer a genuine WELCOME"
            );
            stream.extend_from_slice(&ready);
            d.feed(&ready);
            assert!(d.ready, "a genuine handshake did not complete");
        }
        records = feed_payload(
            &mut d,
            &mut stream,
            stage,
            server.codec.as_mut(),
            payload,
            chunk,
        );
    }
    let split = d.finish(&stream);
    if stage == Stage::Sealed {
        check_authentic(&split, &records);
    }
    if stage == Stage::Raw {
        assert!(!split.ready(), "random bytes completed a CURVE handshake");
    }
    let mut whole = new_driver();
    whole.feed(&stream);
    let whole = whole.finish(&stream);
    if comparable(stream.len()) {
        assert_eq!(split, whole, "split and whole feeding differ");
    }
}

// -------------------------------------------------------------------------------------------------
// Node listener

/// The registry of the fuzzed node: a public category (a command and a request command), an
/// admin one, a service-node one and an alias, with tiny queues so that dropping is reachable.
fn fuzz_registry() -> Registry {
    let mut b = RegistryBuilder::new();
    let steps = [
        b.add_category(
            "public",
            CategoryOptions::new(Access::default()).max_queue(QueueLimit::At(2)),
        )
        .map(drop),
        b.add_command("public", "hello").map(drop),
        b.add_request_command("public", "echo").map(drop),
        b.add_category(
            "admin",
            CategoryOptions::new(AuthLevel::Admin).max_queue(QueueLimit::At(2)),
        )
        .map(drop),
        b.add_request_command("admin", "echo").map(drop),
        b.add_category(
            "sn",
            CategoryOptions::new(Access {
                auth: AuthLevel::None,
                remote_sn: true,
                local_sn: false,
            })
            .max_queue(QueueLimit::At(2)),
        )
        .map(drop),
        b.add_request_command("sn", "echo").map(drop),
        b.add_command_alias("legacy.echo", "public.echo"),
    ];
    for s in steps {
        if let Err(e) = s {
            panic!("fixed fuzzing registry refused: {e}");
        }
    }
    b.build()
}

/// The fuzzed nodes' configuration: one worker, CURVE through [`MEMO_CRYPTO`].
pub(crate) fn node_config() -> Config {
    let mut c = Config::new(1);
    c.crypto_provider = &MEMO_CRYPTO;
    c
}

/// What one transport connection saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ConnLog {
    transmitted: Vec<u8>,
    closed: bool,
}

/// A node whose outputs are acted on at once: jobs finish immediately, transmits are recorded
/// per connection (and checked to name a live connection), and auth requests get `level`, one
/// `received` call late (as [`Driver`] does) so that bytes also arrive during the wait.
struct NodeHarness {
    node: Node<DeterministicRng>,
    now: Instant,
    level: AuthLevel,
    conns: BTreeMap<ConnId, ConnLog>,
    plain: ListenerId,
    curve: ListenerId,
    feeds: usize,
    /// Unanswered auth requests, with the `feeds` count when each was raised.
    pending: Vec<(ConnId, usize)>,
}

impl NodeHarness {
    fn new(level: AuthLevel) -> Self {
        let now = Instant::from_secs(1);
        let mut node = match Node::new(
            node_config(),
            fuzz_registry(),
            server_keypair(),
            DeterministicRng::new(TARGET_SEED),
            now,
        ) {
            Ok(n) => n,
            Err(e) => panic!("fixed fuzzing node config refused: {e}"),
        };
        let plain = match node.listen_plain(now, Address::tcp("127.0.0.1", 4500)) {
            Ok(l) => l,
            Err(e) => panic!("a fresh node refused a listener: {e}"),
        };
        let curve = match node.listen_curve(now, Address::tcp("127.0.0.1", 4501)) {
            Ok(l) => l,
            Err(e) => panic!("a fresh node refused a listener: {e}"),
        };
        let mut h = Self {
            node,
            now,
            level,
            conns: BTreeMap::new(),
            plain,
            curve,
            feeds: 0,
            pending: Vec::new(),
        };
        h.drain();
        h
    }

    fn accept(&mut self, listener: ListenerId) -> ConnId {
        let conn = match self.node.accept(self.now, listener, "192.0.2.7") {
            Ok(c) => c,
            Err(e) => panic!("accept on a listener we created: {e}"),
        };
        assert!(
            self.conns.insert(conn, ConnLog::default()).is_none(),
            "connection id {conn:?} reused while live"
        );
        self.drain();
        conn
    }

    fn received(&mut self, conn: ConnId, data: &[u8]) {
        self.feeds += 1;
        self.node
            .handle(
                self.now,
                Input::Received {
                    conn,
                    data: Bytes::copy_from_slice(data),
                },
            )
            .ok();
        self.drain();
        let feeds = self.feeds;
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|&(_, at)| at < feeds);
        self.pending = later;
        self.answer(due);
    }

    /// Answers every pending auth request now.
    fn settle(&mut self) {
        while !self.pending.is_empty() {
            let due = std::mem::take(&mut self.pending);
            self.answer(due);
        }
    }

    fn answer(&mut self, due: Vec<(ConnId, usize)>) {
        for (conn, _) in due {
            let level = self.level;
            self.node
                .handle(self.now, Input::AuthDecision { conn, level })
                .ok();
            self.drain();
        }
    }

    fn advance(&mut self, by: Duration) {
        self.settle();
        self.now = self.now.saturating_add(by);
        if self.node.poll_timeout().is_some_and(|t| t <= self.now) {
            self.node.handle(self.now, Input::Timeout).ok();
            self.drain();
        }
    }

    fn drain(&mut self) {
        let mut jobs = Vec::new();
        loop {
            while let Some(o) = self.node.poll_output() {
                match o {
                    Output::Transmit { conn, data } => {
                        let log = self.live(conn);
                        log.transmitted.extend_from_slice(&data);
                    }
                    Output::Close { conn, .. } => self.live(conn).closed = true,
                    Output::RunJob { worker, .. } => jobs.push(worker),
                    Output::Event(Event::AuthRequest { conn, .. }) => {
                        self.pending.push((conn, self.feeds));
                    }
                    Output::Connect { conn, .. } => {
                        panic!("a listening node dialled out ({conn:?})")
                    }
                    _ => {}
                }
            }
            let Some(worker) = jobs.pop() else {
                break;
            };
            self.node
                .handle(self.now, Input::JobFinished { worker })
                .ok();
        }
        let open = self.conns.values().filter(|c| !c.closed).count();
        assert_eq!(
            self.node.stats().connections,
            open,
            "node and harness disagree on open connections"
        );
    }

    fn live(&mut self, conn: ConnId) -> &mut ConnLog {
        match self.conns.get_mut(&conn) {
            Some(log) if !log.closed => log,
            Some(_) => panic!("output for {conn:?} after its Close"),
            None => panic!("output for unknown connection {conn:?}"),
        }
    }

    fn log(&self, conn: ConnId) -> ConnLog {
        self.conns.get(&conn).cloned().unwrap_or_default()
    }

    fn is_closed(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_none_or(|c| c.closed)
    }

    fn sent(&self, conn: ConnId) -> &[u8] {
        self.conns.get(&conn).map_or(&[], |c| &c.transmitted)
    }

    /// libzmq's fuzzers end by checking that the socket still serves a well-behaved client: a
    /// NULL DEALER connects to the plain listener and says `HI`; the node must answer `HELLO`
    /// (or refuse it with ERROR 400 when the auth level is Denied).
    fn check_survives(&mut self) {
        let conn = self.accept(self.plain);
        let mut rng = DeterministicRng::new(PEER_SEED);
        let mut client = match Session::new(
            session_config(SocketType::Dealer, MechanismConfig::Null),
            self.now,
            &mut rng,
        ) {
            Ok(s) => s,
            Err(e) => panic!("fixed client config refused: {e}"),
        };
        let mut events = Vec::new();
        let mut read = 0;
        let mut said_hi = false;
        for _ in 0..16 {
            while let Some(b) = client.poll_transmit() {
                if !self.is_closed(conn) {
                    self.received(conn, &b);
                }
            }
            self.settle();
            let sent = self.sent(conn);
            client.handle_bytes(self.now, &sent[read..], &mut rng);
            read = sent.len();
            while let Some(e) = client.poll_event() {
                events.push(e);
            }
            if !said_hi && client.state() == SessionState::Ready {
                said_hi = true;
                assert_eq!(
                    client.send(self.now, vec![Bytes::from_static(b"HI")]),
                    Ok(())
                );
            }
        }
        if self.level == AuthLevel::Denied {
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    SessionEvent::Closed(SessionError::PeerError(r)) if r.as_bytes() == b"400"
                )),
                "a denied client was not refused with ERROR 400: {events:?}"
            );
        } else {
            assert!(
                events.contains(&SessionEvent::Message(vec![Bytes::from_static(b"HELLO")])),
                "the node no longer serves a well-behaved client: {events:?}"
            );
        }
    }
}

/// Fuzzes a [`Node`] with one plain and one CURVE listener: one accepted connection is fed the
/// attacker bytes.
///
/// Byte 0: bit 0 picks the listener (plain / CURVE); bits 1–2 the auth level granted to every
/// connection (denied, none, basic, admin); bit 3 puts the bytes behind a genuine handshake (a
/// NULL greeting + READY, or a scripted CURVE client's handshake with the bytes then sealed as
/// MESSAGE records, which reaches OxenMQ command dispatch through the encryption); bits 4–7
/// give the chunk size − 1.
///
/// Checks: outputs only ever name live connections, the node's connection count matches, the
/// bytes transmitted on the fuzzed connection are bounded and identical when the stream is fed
/// whole, timers fire without trouble, and afterwards the node still serves a well-behaved
/// client.
pub fn fuzz_node_listener(data: &[u8]) {
    let Some((&h, payload)) = data.split_first() else {
        return;
    };
    let curve = h & 1 != 0;
    let level = AuthLevel::ALL[usize::from((h >> 1) & 3)];
    let driven = h & 8 != 0;
    let chunk = usize::from(h >> 4) + 1;

    let mut a = NodeHarness::new(level);
    let listener = if curve { a.curve } else { a.plain };
    let conn = a.accept(listener);
    let mut stream = Vec::new();
    let mut feed = |a: &mut NodeHarness, bytes: &[u8]| {
        stream.extend_from_slice(bytes);
        if !a.is_closed(conn) {
            a.received(conn, bytes);
        }
    };
    match (driven, curve) {
        (true, false) => {
            feed(&mut a, &null_preamble(SocketType::Dealer));
            for c in payload.chunks(chunk) {
                feed(&mut a, c);
            }
        }
        (true, true) => {
            let mut client = ScriptedClient::new();
            feed(&mut a, &client.opening());
            let initiate = client.respond(a.sent(conn));
            feed(&mut a, &initiate);
            a.settle(); // the client needs READY to seal
            let _ = client.respond(a.sent(conn));
            match client.codec.as_mut() {
                Some(codec) => {
                    for r in sealed_records(codec, payload) {
                        for c in r.wire.chunks(chunk) {
                            feed(&mut a, c);
                        }
                    }
                }
                None => assert_eq!(level, AuthLevel::Denied, "genuine CURVE client not served"),
            }
        }
        (false, _) => {
            for c in payload.chunks(chunk) {
                feed(&mut a, c);
            }
        }
    }
    let fed = stream.len();
    // Past the handshake timeout and the first heartbeat, then past the heartbeat timeout.
    a.advance(Duration::from_secs(61));
    a.advance(Duration::from_secs(61));
    let split = a.log(conn);
    // OxenMQ answers an unknown command with [UNKNOWNCOMMAND, command]: an empty 2-byte frame
    // draws 18 bytes, the worst ratio any message reaches (9); anything above it is a new
    // amplification path.
    assert!(
        split.transmitted.len() <= TRANSMIT_SLACK + 9 * fed,
        "node amplification: {} bytes out for {fed} in",
        split.transmitted.len()
    );

    let mut b = NodeHarness::new(level);
    let conn_b = b.accept(listener);
    assert_eq!(
        conn_b, conn,
        "deterministic nodes numbered connections differently"
    );
    b.received(conn, &stream);
    b.advance(Duration::from_secs(61));
    b.advance(Duration::from_secs(61));
    let whole = b.log(conn);
    if comparable(stream.len()) {
        // Whether the connection survives is a property of the byte stream alone; the bytes the
        // node sends are not. A session consumes a whole read before the node acts on its
        // messages, so a PONG can overtake replies to earlier messages (and, under CURVE, take
        // an earlier nonce), and replies to messages that share a read with a fatal frame are
        // never sent. Both are ordinary network timing.
        assert_eq!(
            whole.closed, split.closed,
            "node: split and whole feeding differ"
        );
    }

    a.check_survives();
}

/// Builds a seed input for a target from a stage selector and a payload, for seed corpora and
/// tests: `header | payload`.
#[must_use]
pub fn seed_input(header: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(header);
    v.extend_from_slice(payload);
    v
}

/// A sample of sealed-record payloads that exercise every record option (for seeds and tests):
/// a two-part message, an empty single-part message, ZMTP commands inside MESSAGE (PING, PONG,
/// SUBSCRIBE, CANCEL, an unknown one), an outer-COMMAND drop, a long-form header, and OxenMQ
/// commands (`HI`, `public.hello`, a `public.echo` request).
#[must_use]
pub fn sample_records() -> Vec<u8> {
    let mut v = Vec::new();
    let mut rec = |ctl: u8, body: &[u8]| {
        v.push(ctl);
        v.push(body.len() as u8);
        v.extend_from_slice(body);
    };
    rec(0x01, b"part one");
    rec(0x00, b"part two");
    rec(0x00, b"");
    rec(0x02, b"\x04PING\x00\x1ectx");
    rec(0x02, b"\x04PONGctx");
    rec(0x02, b"\x09SUBSCRIBEtopic");
    rec(0x02, b"\x06CANCELtopic");
    rec(0x02, b"\x03FOO");
    rec(0x04, b"dropped");
    rec(0x20, b"long form");
    rec(0x00, b"HI");
    rec(0x00, b"public.hello");
    rec(0x01, b"public.echo");
    rec(0x01, b"tag");
    rec(0x00, b"data");
    v
}
