//! A small blocking driver that runs our sans-IO [`Session`] over real loopback TCP against
//! libzmq (the `zmq` crate, vendored libzmq 4.3.2), shared by the `libzmq_*` test files.
//!
//! Everything is bounded: every socket has read and write timeouts, every wait loop has a
//! wall-clock deadline, and our side is fed whatever chunks `read()` returns (so the session's
//! incremental decoding is exercised on real TCP segmentation).
//!
//! Our side runs on the test thread, libzmq's on its own I/O threads; a test alternates
//! between stepping our connection (a read with a short timeout, then timers) and polling the
//! libzmq socket without blocking, so neither side can starve the other.

// Each test file uses a different subset of this harness.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use lokimq_core::keys::{Keypair, PublicKey};
use lokimq_core::session::{
    AuthDecision, MechanismConfig, Session, SessionConfig, SessionError, SessionEvent, SessionState,
};
use lokimq_core::time::Instant;
use lokimq_core::zmtp::{Mechanism, RouterTable, SocketType};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Upper bound for any single wait in these tests; only reached when something is broken.
pub(crate) const BOUND: Duration = Duration::from_secs(5);
/// How long one step of our side may block in `read()`.
pub(crate) const STEP: Duration = Duration::from_millis(5);

// The long-term keys of vectors/curve-kat.txt (client C/c, server S/s).
const CLIENT_SECRET: &str = "7bb864b489afa3671fbe69101f94b38972f24816dfb01b51656b3fec8dfd0888";
const CLIENT_PUBLIC: &str = "bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518";
const SERVER_SECRET: &str = "8e0bdd697628b91d8f245587ee95c5b04d48963f79259877b49cd9063aead3b7";
const SERVER_PUBLIC: &str = "54fcba24e93249969316fb617c872bb0c1d1ff14800427c594cbfacf1bc2d652";

/// Our DEALER's mechanism: a CURVE client with the known keys if `curve`, else NULL.
pub(crate) fn dealer_mechanism(curve: bool) -> MechanismConfig {
    if curve {
        MechanismConfig::CurveClient {
            keypair: client_keys(),
            server_key: *server_keys().public(),
        }
    } else {
        MechanismConfig::Null
    }
}

/// Our ROUTER's mechanism: a CURVE server with the known server keys if `curve`, else NULL.
pub(crate) fn router_mechanism(curve: bool) -> MechanismConfig {
    if curve {
        MechanismConfig::CurveServer {
            keypair: server_keys(),
        }
    } else {
        MechanismConfig::Null
    }
}

/// Decodes 64 hex digits.
pub(crate) fn unhex32(s: &str) -> [u8; 32] {
    lokimq_core::encoding::hex::decode_array(s).expect("a key is 64 hex digits")
}

/// The known client keypair (vectors/curve-kat.txt); also checks our derivation of C from c.
pub(crate) fn client_keys() -> Keypair {
    let pair = Keypair::from_secret_bytes(unhex32(CLIENT_SECRET));
    assert_eq!(pair.public().as_bytes(), &unhex32(CLIENT_PUBLIC));
    pair
}

/// The known server keypair (vectors/curve-kat.txt).
pub(crate) fn server_keys() -> Keypair {
    let pair = Keypair::from_secret_bytes(unhex32(SERVER_SECRET));
    assert_eq!(pair.public().as_bytes(), &unhex32(SERVER_PUBLIC));
    pair
}

/// A fresh key pair drawn from a seeded RNG (distinct from the known ones).
pub(crate) fn other_keys(seed: u64) -> Keypair {
    Keypair::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

/// `L` followed by the 32-byte public key: the routing-id shape used in these tests.
pub(crate) fn l_pubkey(key: &PublicKey) -> Vec<u8> {
    let mut id = vec![b'L'];
    id.extend_from_slice(key.as_bytes());
    id
}

// The harness plays the driver, and a driver owns the one clock read that turns wall time into
// the core's `Instant` (the core itself never reads a clock).
#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Wall time as the core's [`Instant`]: microseconds since the first call in this process.
pub(crate) fn now() -> Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(wall_now);
    let micros = wall_now().duration_since(epoch).as_micros();
    Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// Calls `poll` until it yields a value or `bound` passes. `poll` must block briefly (every
/// caller steps a connection, which waits in `read()`), so this never spins hot.
pub(crate) fn wait_until<T>(bound: Duration, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = now() + bound;
    loop {
        if let Some(v) = poll() {
            return Some(v);
        }
        if deadline.has_elapsed(now()) {
            return None;
        }
    }
}

/// Calls `step` repeatedly for `span` (letting timers and heartbeats run).
pub(crate) fn run_for(span: Duration, mut step: impl FnMut()) {
    let deadline = now() + span;
    while !deadline.has_elapsed(now()) {
        step();
    }
}

/// A session config for our side with short timers suited to tests.
pub(crate) fn config(socket_type: SocketType, mechanism: MechanismConfig) -> SessionConfig {
    let mut c = SessionConfig::new(socket_type, mechanism);
    c.handshake_timeout = Duration::from_secs(3);
    c
}

/// Owned copies of message frames.
pub(crate) fn parts(frames: &[&[u8]]) -> Vec<Bytes> {
    frames.iter().map(|f| Bytes::copy_from_slice(f)).collect()
}

/// Converts a received message to plain vectors for comparisons.
pub(crate) fn to_vecs(parts: &[Bytes]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// How the TCP stream of a [`Conn`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// `read()` returned 0: the peer closed.
    Eof,
    /// A read or write failed (e.g. connection reset by the peer).
    Error(ErrorKind),
    /// We shut the socket down after our session closed.
    Local,
}

/// One TCP connection driven by one of our sessions.
pub(crate) struct Conn {
    stream: TcpStream,
    /// The session under test.
    pub(crate) session: Session,
    rng: ChaCha20Rng,
    log: Vec<SessionEvent>,
    /// How the stream ended, if it did.
    pub(crate) end: Option<StreamEnd>,
    /// The answer given to every [`SessionEvent::AuthRequest`] (`None`: leave it pending).
    pub(crate) auth: Option<AuthDecision>,
    /// The authentication requests seen.
    pub(crate) auth_requests: Vec<(Mechanism, Option<PublicKey>)>,
    /// Total bytes handed to the session.
    pub(crate) bytes_in: u64,
    /// Number of `read()` calls that returned data (to show chunked feeding happened).
    pub(crate) reads: u64,
    buf: Vec<u8>,
}

impl Conn {
    /// Wraps a connected stream (timeouts are set here) and creates the session.
    pub(crate) fn new(stream: TcpStream, config: SessionConfig, seed: u64) -> Self {
        stream.set_nodelay(true).expect("set_nodelay");
        stream
            .set_write_timeout(Some(BOUND))
            .expect("set_write_timeout");
        stream
            .set_read_timeout(Some(STEP))
            .expect("set_read_timeout");
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let session = Session::new(config, now(), &mut rng).expect("valid session config");
        Self {
            stream,
            session,
            rng,
            log: Vec::new(),
            end: None,
            auth: None,
            auth_requests: Vec::new(),
            bytes_in: 0,
            reads: 0,
            buf: vec![0u8; 64 * 1024],
        }
    }

    /// Connects to `addr` (our DEALER side).
    pub(crate) fn connect(addr: SocketAddr, config: SessionConfig, seed: u64) -> Self {
        let stream = TcpStream::connect_timeout(&addr, BOUND).expect("connect to libzmq");
        Self::new(stream, config, seed)
    }

    /// Writes everything the session has queued.
    pub(crate) fn flush(&mut self) {
        while let Some(chunk) = self.session.poll_transmit() {
            if self.end.is_some() {
                continue;
            }
            if let Err(e) = self.stream.write_all(&chunk) {
                self.end = Some(StreamEnd::Error(e.kind()));
            }
        }
    }

    /// One round: flush, read once (waiting at most `max_wait`, less if a session timer is
    /// due sooner), feed the bytes, fire due timers, answer auth requests, flush again. Returns
    /// the new events (also kept in the log).
    pub(crate) fn step(&mut self, max_wait: Duration) -> Vec<SessionEvent> {
        let first = self.log.len();
        self.flush();
        self.collect_events();
        if self.end.is_some() {
            // Nothing more can arrive; keep callers' loops from spinning.
            std::thread::sleep(max_wait);
        } else {
            let mut wait = max_wait;
            if let Some(t) = self.session.poll_timeout() {
                wait = wait.min(t.saturating_duration_since(now()));
            }
            // A zero read timeout is refused by the OS API.
            let wait = wait.max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(wait))
                .expect("set_read_timeout");
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.end = Some(StreamEnd::Eof),
                Ok(n) => {
                    self.reads += 1;
                    self.bytes_in += n as u64;
                    let t = now();
                    self.session.handle_bytes(t, &self.buf[..n], &mut self.rng);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.end = Some(StreamEnd::Error(e.kind())),
            }
        }
        let t = now();
        if self
            .session
            .poll_timeout()
            .is_some_and(|d| d.has_elapsed(t))
        {
            self.session.handle_timeout(t, &mut self.rng);
        }
        self.collect_events();
        self.flush();
        self.collect_events();
        self.shutdown_if_closed();
        self.log[first..].to_vec()
    }

    fn collect_events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            if let SessionEvent::AuthRequest {
                mechanism,
                client_key,
            } = &ev
            {
                self.auth_requests.push((*mechanism, *client_key));
                if let Some(decision) = self.auth.clone() {
                    let accepted = self.session.auth_decision(now(), decision, &mut self.rng);
                    assert!(accepted, "session was awaiting a decision");
                }
            }
            self.log.push(ev);
        }
    }

    /// A driver closes the socket once the session is closed and its last bytes are written.
    fn shutdown_if_closed(&mut self) {
        if self.end.is_none() && self.session.state() == SessionState::Closed {
            let _ = self.stream.shutdown(Shutdown::Both);
            self.end = Some(StreamEnd::Local);
        }
    }

    /// Closes our session locally and the socket.
    pub(crate) fn close(&mut self) {
        self.session.close(now());
        self.flush();
        self.collect_events();
        self.shutdown_if_closed();
    }

    /// Sends a message through the session and writes it out.
    pub(crate) fn send(&mut self, parts: Vec<Bytes>) {
        self.session
            .send(now(), parts)
            .expect("session accepts the message");
        self.flush();
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> &[SessionEvent] {
        &self.log
    }

    /// True once the handshake completed.
    pub(crate) fn is_ready(&self) -> bool {
        self.log.iter().any(|e| matches!(e, SessionEvent::Ready))
    }

    /// Every message received so far.
    pub(crate) fn messages(&self) -> Vec<Vec<Bytes>> {
        self.log
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Why the session closed, if it did.
    pub(crate) fn closed(&self) -> Option<&SessionError> {
        self.log.iter().find_map(|e| match e {
            SessionEvent::Closed(err) => Some(err),
            _ => None,
        })
    }

    /// Steps until the TCP stream ends (at most [`BOUND`]); returns how, `None` if it did not.
    pub(crate) fn wait_end(&mut self) -> Option<StreamEnd> {
        wait_until(BOUND, || {
            self.step(STEP);
            self.end
        })
    }

    /// Steps until libzmq closes the connection, which it does with EOF or a reset.
    pub(crate) fn wait_closed_by_libzmq(&mut self) {
        let ended = self.wait_end();
        assert!(
            matches!(
                ended,
                Some(StreamEnd::Eof | StreamEnd::Error(ErrorKind::ConnectionReset))
            ),
            "libzmq closes the connection: {ended:?}"
        );
    }

    /// Steps until the handshake completes (panics after [`BOUND`]).
    pub(crate) fn wait_ready(&mut self) {
        let ok = wait_until(BOUND, || {
            self.step(STEP);
            (self.is_ready() || self.closed().is_some() || self.end.is_some()).then_some(())
        });
        assert!(
            ok.is_some() && self.is_ready(),
            "handshake did not complete: closed={:?} end={:?}",
            self.closed(),
            self.end
        );
    }
}

/// Our ROUTER: a TCP listener, one session per accepted connection, and a [`RouterTable`].
pub(crate) struct Router {
    listener: TcpListener,
    config: SessionConfig,
    seed: u64,
    /// Accepted connections, indexed by their table key.
    pub(crate) conns: Vec<Conn>,
    /// Routing ids of the attached connections.
    pub(crate) table: RouterTable<usize>,
    /// Messages received, each with its routing-id frame in front (as a ROUTER delivers them).
    pub(crate) received: Vec<Vec<Bytes>>,
    /// The decision given to every authentication request (`None`: leave pending).
    pub(crate) auth: Option<AuthDecision>,
    /// Connections displaced by a handover (closed by us).
    pub(crate) displaced: Vec<usize>,
}

impl Router {
    /// Listens on an ephemeral loopback port.
    pub(crate) fn bind(config: SessionConfig, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking accept");
        Self {
            listener,
            config,
            seed,
            conns: Vec::new(),
            table: RouterTable::with_counter(0x1234_5678),
            received: Vec::new(),
            auth: None,
            displaced: Vec::new(),
        }
    }

    /// The endpoint for libzmq's `connect`.
    pub(crate) fn endpoint(&self) -> String {
        format!(
            "tcp://{}",
            self.listener.local_addr().expect("listener address")
        )
    }

    /// Accepts pending connections and steps every connection once (each waiting at most
    /// `max_wait` split between them).
    pub(crate) fn step(&mut self, max_wait: Duration) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking stream");
                    let seed = self.seed.wrapping_add(self.conns.len() as u64);
                    let mut conn = Conn::new(stream, self.config.clone(), seed);
                    conn.auth = self.auth.clone();
                    self.conns.push(conn);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("accept failed: {e}"),
            }
        }
        let live = self.conns.iter().filter(|c| c.end.is_none()).count();
        if live == 0 {
            std::thread::sleep(max_wait);
        }
        let slice = (max_wait / u32::try_from(live.max(1)).unwrap_or(u32::MAX))
            .max(Duration::from_millis(1));
        for key in 0..self.conns.len() {
            if self.conns[key].end.is_some() && live > 0 {
                continue;
            }
            let events = self.conns[key].step(slice);
            for ev in events {
                match ev {
                    SessionEvent::Ready => {
                        let identity = self.conns[key]
                            .session
                            .peer()
                            .expect("peer known once ready")
                            .identity()
                            .clone();
                        let attached = self.table.attach(key, &identity);
                        if let Some(old) = attached.displaced {
                            self.displaced.push(old);
                            self.conns[old].close();
                        }
                    }
                    SessionEvent::Message(parts) => {
                        let id = self
                            .table
                            .routing_id(key)
                            .expect("a connection delivering messages is attached")
                            .clone();
                        let mut m = vec![id];
                        m.extend(parts);
                        self.received.push(m);
                    }
                    SessionEvent::Closed(_) => {
                        self.table.detach(key);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends `parts` to the connection named by `routing_id`; false if no such connection
    /// (ROUTER_MANDATORY semantics: the caller sees the failure).
    pub(crate) fn send(&mut self, routing_id: &[u8], parts: Vec<Bytes>) -> bool {
        let Some(key) = self.table.lookup(routing_id) else {
            return false;
        };
        self.conns[key].send(parts);
        true
    }

    /// Steps until a message has arrived, and returns it (routing id first).
    pub(crate) fn recv(&mut self) -> Option<Vec<Bytes>> {
        wait_until(BOUND, || {
            self.step(STEP);
            (!self.received.is_empty()).then(|| self.received.remove(0))
        })
    }
}

/// A libzmq socket with linger 0 (so the context can always terminate) and a short send
/// timeout.
pub(crate) fn zsocket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).expect("zmq socket");
    s.set_linger(0).expect("linger");
    s.set_sndtimeo(i32::try_from(BOUND.as_millis()).expect("fits"))
        .expect("sndtimeo");
    s
}

/// Makes a libzmq socket a CURVE server with the known server keys.
pub(crate) fn set_curve_server(socket: &zmq::Socket) {
    socket.set_curve_server(true).unwrap();
    socket
        .set_curve_secretkey(&server_keys().secret().to_bytes())
        .unwrap();
}

/// Makes a libzmq socket a CURVE client with `keys`, expecting the server key `server`.
pub(crate) fn set_curve_client(socket: &zmq::Socket, server: &PublicKey, keys: &Keypair) {
    socket.set_curve_serverkey(server.as_bytes()).unwrap();
    socket
        .set_curve_publickey(keys.public().as_bytes())
        .unwrap();
    socket
        .set_curve_secretkey(&keys.secret().to_bytes())
        .unwrap();
}

/// Binds `s` to an ephemeral loopback port and returns the address to connect to.
pub(crate) fn zbind(s: &zmq::Socket) -> SocketAddr {
    s.bind("tcp://127.0.0.1:*").expect("bind");
    let ep = s
        .get_last_endpoint()
        .expect("last endpoint")
        .expect("utf-8 endpoint");
    ep.trim_start_matches("tcp://")
        .parse()
        .expect("endpoint is an address")
}

/// Receives one multipart message without blocking.
pub(crate) fn try_recv(s: &zmq::Socket) -> Option<Vec<Vec<u8>>> {
    try_recv_msgs(s).map(|m| m.iter().map(|f| f.to_vec()).collect())
}

/// Receives one multipart message without blocking, keeping libzmq's frames (for properties).
pub(crate) fn try_recv_msgs(s: &zmq::Socket) -> Option<Vec<zmq::Message>> {
    let mut first = zmq::Message::new();
    match s.recv(&mut first, zmq::DONTWAIT) {
        Ok(()) => {}
        Err(zmq::Error::EAGAIN) => return None,
        Err(e) => panic!("zmq recv failed: {e}"),
    }
    let mut frames = vec![first];
    while s.get_rcvmore().expect("rcvmore") {
        let mut f = zmq::Message::new();
        // The rest of a multipart message is already there (delivery is atomic).
        s.recv(&mut f, 0).expect("rest of the multipart message");
        frames.push(f);
    }
    Some(frames)
}

/// Sends a multipart message on a libzmq socket.
pub(crate) fn zsend(s: &zmq::Socket, frames: &[&[u8]]) {
    s.send_multipart(frames.iter().copied(), 0)
        .expect("zmq send");
}

fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("inproc://{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A libzmq socket monitor: `(event, value)` pairs.
pub(crate) struct Monitor {
    sock: zmq::Socket,
    /// Every event read so far.
    pub(crate) seen: Vec<(zmq::SocketEvent, u32)>,
}

impl Monitor {
    /// Monitors every event of `target`.
    pub(crate) fn new(ctx: &zmq::Context, target: &zmq::Socket) -> Self {
        let name = unique_name("monitor");
        target
            .monitor(&name, zmq::SocketEvent::ALL as i32)
            .expect("monitor");
        let sock = zsocket(ctx, zmq::PAIR);
        sock.connect(&name).expect("connect monitor");
        Self {
            sock,
            seen: Vec::new(),
        }
    }

    /// Reads every event available now.
    pub(crate) fn poll(&mut self) {
        while let Some(frames) = try_recv(&self.sock) {
            let head = &frames[0];
            assert!(head.len() >= 6, "monitor event frame is 6 bytes");
            let event = u16::from_ne_bytes([head[0], head[1]]);
            let value = u32::from_ne_bytes([head[2], head[3], head[4], head[5]]);
            self.seen.push((zmq::SocketEvent::from_raw(event), value));
        }
    }

    /// True if `event` was seen (with `value`, if given).
    pub(crate) fn has(&self, event: zmq::SocketEvent, value: Option<u32>) -> bool {
        self.seen
            .iter()
            .any(|&(e, v)| e == event && value.is_none_or(|want| want == v))
    }
}

/// A ZAP handler (RFC 27) on `inproc://zeromq.zap.01`, answering every request with one status.
pub(crate) struct ZapHandler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<Vec<u8>>>>>,
}

impl ZapHandler {
    /// Binds the handler in `ctx` (before returning, so servers created afterwards see it) and
    /// answers on a thread with `status` (`"200"`, `"300"`, `"400"`, `"500"`).
    pub(crate) fn start(ctx: &zmq::Context, status: &'static str) -> Self {
        let sock = zsocket(ctx, zmq::REP);
        sock.bind("inproc://zeromq.zap.01")
            .expect("bind ZAP endpoint");
        sock.set_rcvtimeo(20).expect("rcvtimeo");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match sock.recv_multipart(0) {
                    Ok(req) => {
                        let id = req.get(1).cloned().unwrap_or_default();
                        let reply: [&[u8]; 6] =
                            [b"1.0", &id, status.as_bytes(), b"test", b"user", b""];
                        sock.send_multipart(reply, 0).expect("ZAP reply");
                        requests.push(req);
                    }
                    Err(zmq::Error::EAGAIN) => {}
                    Err(e) => panic!("ZAP handler recv: {e}"),
                }
            }
            requests
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the handler and returns every request it answered.
    pub(crate) fn finish(mut self) -> Vec<Vec<Vec<u8>>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("ZAP thread")
    }
}

impl Drop for ZapHandler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A hand-driven TCP peer of our [`Router`], for replaying byte-level scenarios taken from
/// libzmq's tests and probes. Reads pump the router so both ends progress.
pub(crate) struct RawPeer {
    stream: TcpStream,
    inbuf: Vec<u8>,
}

impl RawPeer {
    /// Connects to `router`.
    pub(crate) fn connect(router: &Router) -> Self {
        let addr: SocketAddr = router
            .endpoint()
            .trim_start_matches("tcp://")
            .parse()
            .expect("router address");
        let stream = TcpStream::connect_timeout(&addr, BOUND).expect("connect to our router");
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("set_read_timeout");
        stream
            .set_write_timeout(Some(BOUND))
            .expect("set_write_timeout");
        Self {
            stream,
            inbuf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw write");
    }

    /// Writes one frame with exactly these flags (the LONG bit is added for bodies over 255).
    pub(crate) fn write_frame(&mut self, flags: u8, body: &[u8]) {
        let mut out = Vec::with_capacity(body.len() + 9);
        if body.len() > 255 {
            out.push(flags | 0x02);
            out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        } else {
            out.push(flags);
            out.push(u8::try_from(body.len()).expect("short size"));
        }
        out.extend_from_slice(body);
        self.write(&out);
    }

    /// Reads exactly `n` bytes, stepping `router` meanwhile (panics after [`BOUND`] or on EOF).
    pub(crate) fn read_exact(&mut self, n: usize, router: &mut Router) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let got = wait_until(BOUND, || {
            if self.inbuf.len() >= n {
                return Some(());
            }
            router.step(STEP);
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("our router closed the raw connection"),
                Ok(k) => self.inbuf.extend_from_slice(&buf[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("raw read: {e}"),
            }
            None
        });
        assert!(got.is_some(), "timed out waiting for {n} bytes");
        self.inbuf.drain(..n).collect()
    }

    /// Writes `bytes` in 16 KiB pieces, stepping `router` between them so a large write
    /// cannot deadlock against our single-threaded side. Stops early once every connection of
    /// `router` has ended (a refused oversized frame), since nobody reads the rest; a write
    /// error from the closed connection is returned.
    pub(crate) fn write_pumping(
        &mut self,
        bytes: &[u8],
        router: &mut Router,
    ) -> std::io::Result<()> {
        for piece in bytes.chunks(16 * 1024) {
            self.stream.write_all(piece)?;
            router.step(Duration::from_millis(1));
            if router.conns.iter().all(|c| c.end.is_some()) {
                break;
            }
        }
        Ok(())
    }

    /// Steps `router` until our side ends the connection (end of stream or a reset); returns
    /// every byte received before that (panics if the connection is still open after
    /// [`BOUND`]).
    pub(crate) fn read_until_closed(&mut self, router: &mut Router) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let ended = wait_until(BOUND, || {
            router.step(STEP);
            match self.stream.read(&mut buf) {
                Ok(0) => Some(()),
                Ok(k) => {
                    self.inbuf.extend_from_slice(&buf[..k]);
                    None
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
                Err(e) if e.kind() == ErrorKind::Interrupted => None,
                // A reset (we closed with unread input) ends the stream too.
                Err(_) => Some(()),
            }
        });
        assert!(ended.is_some(), "our router kept the connection open");
        std::mem::take(&mut self.inbuf)
    }

    /// Reads one frame: `(flags, body)`.
    pub(crate) fn read_frame(&mut self, router: &mut Router) -> (u8, Vec<u8>) {
        let flags = self.read_exact(1, router)[0];
        let size = if flags & 0x02 != 0 {
            let b = self.read_exact(8, router);
            u64::from_be_bytes(b.try_into().expect("8 bytes"))
        } else {
            u64::from(self.read_exact(1, router)[0])
        };
        let size = usize::try_from(size).expect("frame fits in memory");
        (flags, self.read_exact(size, router))
    }
}
