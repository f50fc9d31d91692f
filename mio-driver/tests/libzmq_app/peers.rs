//! Real libzmq peers for the application-level interop tests: a DEALER that plays an OxenMQ
//! client, a ROUTER that plays an OxenMQ listener, socket monitors and a ZAP handler. Every
//! receive is bounded by a libzmq receive timeout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lokimq::{Keypair, PublicKey, Stopwatch};

use crate::common::libzmq::{RECV_MS, dealer_socket};

/// A multipart message as libzmq hands it over.
pub(crate) type Frames = Vec<Vec<u8>>;

/// Builds a frame list from anything byte-like, for readable expectations.
pub(crate) fn msg(parts: &[&[u8]]) -> Frames {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// A 15-byte reply tag, as OxenMQ draws them (binary, may contain NULs), made unique by `n`.
pub(crate) fn tag(n: u32) -> Vec<u8> {
    let mut t = vec![0u8, 0xff, b'T', b'A', b'G', 0, 7];
    t.extend_from_slice(&n.to_be_bytes());
    t.extend_from_slice(&n.wrapping_mul(0x9e37_79b9).to_le_bytes());
    assert_eq!(t.len(), 15);
    t
}

/// Readable rendering of frames for assertion messages.
pub(crate) fn show(frames: &[Vec<u8>]) -> String {
    let parts: Vec<String> = frames
        .iter()
        .map(|f| {
            if f.len() > 64 {
                format!("<{} bytes>", f.len())
            } else if f.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                format!("{:?}", String::from_utf8_lossy(f))
            } else {
                format!(
                    "hex:{}",
                    f.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Receives one message on `sock` (a `kind` socket), panicking if none arrives within its
/// receive timeout (`RECV_MS`).
fn recv(sock: &zmq::Socket, kind: &str) -> Frames {
    sock.recv_multipart(0)
        .unwrap_or_else(|e| panic!("libzmq {kind} receive failed (timed out?): {e}"))
}

/// Receives one message on `sock` within `ms`, or `None`; the receive timeout is back at
/// `RECV_MS` afterwards.
fn try_recv(sock: &zmq::Socket, ms: i32) -> Option<Frames> {
    sock.set_rcvtimeo(ms).unwrap();
    let r = sock.recv_multipart(0).ok();
    sock.set_rcvtimeo(RECV_MS).unwrap();
    r
}

/// Unique inproc endpoint names for monitors within one process.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("inproc://{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A socket monitor: the events libzmq reports for one socket.
pub(crate) struct Monitor {
    pair: zmq::Socket,
}

impl Monitor {
    /// Watches `socket` for `events` (a bit mask of `zmq::SocketEvent` values). Must be called
    /// before the socket connects or binds, so no event is missed.
    pub(crate) fn new(ctx: &zmq::Context, socket: &zmq::Socket, events: i32) -> Self {
        let ep = unique("monitor");
        socket.monitor(&ep, events).expect("zmq_socket_monitor");
        let pair = ctx.socket(zmq::PAIR).unwrap();
        pair.set_linger(0).unwrap();
        pair.connect(&ep).unwrap();
        Self { pair }
    }

    /// The next event within `timeout_ms`: its kind and value (for handshake failures, the
    /// ZAP/ERROR status code), or `None` if none came.
    pub(crate) fn next(&self, timeout_ms: i32) -> Option<(zmq::SocketEvent, u32)> {
        self.pair.set_rcvtimeo(timeout_ms).unwrap();
        let frames = self.pair.recv_multipart(0).ok()?;
        let head = &frames[0];
        let event = u16::from_ne_bytes([head[0], head[1]]);
        let value = u32::from_ne_bytes([head[2], head[3], head[4], head[5]]);
        Some((zmq::SocketEvent::from_raw(event), value))
    }

    /// Waits (bounded by `RECV_MS`) for an event of kind `want`, skipping others; returns its
    /// value, or `None` if it never came.
    pub(crate) fn wait_for(&self, want: zmq::SocketEvent) -> Option<u32> {
        let budget = Duration::from_millis(RECV_MS as u64);
        let clock = Stopwatch::start();
        loop {
            let left = clock.remaining(budget);
            if left.is_zero() {
                return None;
            }
            let ms = i32::try_from(left.as_millis()).unwrap_or(RECV_MS).max(1);
            match self.next(ms) {
                Some((e, v)) if e == want => return Some(v),
                Some(_) => {}
                None => return None,
            }
        }
    }
}

/// A libzmq DEALER playing an OxenMQ client.
pub(crate) struct Dealer {
    pub(crate) sock: zmq::Socket,
    pub(crate) monitor: Option<Monitor>,
    // Dropped last: the socket must close before its context terminates.
    _ctx: zmq::Context,
}

/// How a test DEALER identifies itself and secures its connection.
pub(crate) struct DealerOpts<'a> {
    /// The client keypair (its public key also makes the `L` routing id).
    pub(crate) me: &'a Keypair,
    /// The server's key for a CURVE connection; `None` for plain.
    pub(crate) server: Option<&'a PublicKey>,
    /// Use OxenMQ's `L` + pubkey routing id (otherwise the ROUTER assigns one).
    pub(crate) routing_id: bool,
    /// Attach a monitor for these events before connecting (0: none).
    pub(crate) monitor: i32,
    /// Extra socket options, applied before connecting (heartbeats, reconnect interval…).
    pub(crate) tweak: Option<&'a dyn Fn(&zmq::Socket)>,
}

impl Dealer {
    /// Connects a DEALER to `endpoint` (`tcp://…`).
    pub(crate) fn connect(endpoint: &str, o: DealerOpts<'_>) -> Self {
        let ctx = zmq::Context::new();
        let s = dealer_socket(&ctx, o.me, o.server.map(PublicKey::as_bytes), o.routing_id);
        if let Some(tweak) = o.tweak {
            tweak(&s);
        }
        let monitor = (o.monitor != 0).then(|| Monitor::new(&ctx, &s, o.monitor));
        s.connect(endpoint).unwrap();
        Self {
            sock: s,
            monitor,
            _ctx: ctx,
        }
    }

    /// Sends one multipart message (blocking at most `RECV_MS` on a full pipe).
    pub(crate) fn send(&self, parts: &[&[u8]]) {
        self.sock
            .send_multipart(parts.iter().copied(), 0)
            .expect("libzmq DEALER send");
    }

    /// Receives one message, panicking if none arrives within `RECV_MS`.
    pub(crate) fn recv(&self) -> Frames {
        recv(&self.sock, "DEALER")
    }

    /// Receives one message within `ms`, or `None`.
    pub(crate) fn try_recv(&self, ms: i32) -> Option<Frames> {
        try_recv(&self.sock, ms)
    }

    /// Sends `parts` and asserts the next message received is exactly `expected`.
    pub(crate) fn exchange(&self, parts: &[&[u8]], expected: &[&[u8]]) {
        self.send(parts);
        let got = self.recv();
        assert_eq!(
            got,
            msg(expected),
            "sent {}: expected {}, got {}",
            show(&msg(parts)),
            show(&msg(expected)),
            show(&got)
        );
    }
}

/// A libzmq ROUTER playing an OxenMQ listener (`ROUTER_MANDATORY` on, as OxenMQ sets it).
pub(crate) struct Router {
    pub(crate) sock: zmq::Socket,
    /// `tcp://127.0.0.1:PORT`.
    pub(crate) endpoint: String,
    /// The CURVE server key, if this is a CURVE listener.
    pub(crate) key: Option<PublicKey>,
    pub(crate) monitor: Option<Monitor>,
    ctx: zmq::Context,
}

impl Router {
    /// Binds a ROUTER on an ephemeral loopback port, optionally as a CURVE server and with a
    /// monitor for `monitor` events (0: none).
    pub(crate) fn bind(curve: Option<&Keypair>, monitor: i32) -> Self {
        Self::bind_with(curve, monitor, |_| {})
    }

    /// [`bind`](Self::bind) with extra socket options applied before binding (a listener
    /// copies its options to the connections it accepts).
    pub(crate) fn bind_with(
        curve: Option<&Keypair>,
        monitor: i32,
        tweak: impl FnOnce(&zmq::Socket),
    ) -> Self {
        let ctx = zmq::Context::new();
        let r = ctx.socket(zmq::ROUTER).unwrap();
        r.set_rcvtimeo(RECV_MS).unwrap();
        r.set_sndtimeo(RECV_MS).unwrap();
        r.set_linger(0).unwrap();
        r.set_router_mandatory(true).unwrap();
        r.set_router_handover(true).unwrap();
        if let Some(k) = curve {
            r.set_curve_server(true).unwrap();
            r.set_curve_publickey(k.public().as_bytes()).unwrap();
            r.set_curve_secretkey(&k.secret().to_bytes()).unwrap();
        }
        tweak(&r);
        let monitor = (monitor != 0).then(|| Monitor::new(&ctx, &r, monitor));
        r.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = r.get_last_endpoint().unwrap().unwrap();
        Self {
            sock: r,
            endpoint,
            key: curve.map(|k| *k.public()),
            monitor,
            ctx,
        }
    }

    /// The address our node connects to: `tcp://…`, or `curve://…/KEY` for a CURVE router.
    pub(crate) fn address(&self) -> String {
        let hostport = self.endpoint.trim_start_matches("tcp://");
        match &self.key {
            Some(k) => format!("curve://{hostport}/{}", k.to_hex()),
            None => format!("tcp://{hostport}"),
        }
    }

    /// The context the ROUTER lives in (a ZAP handler must share it).
    pub(crate) fn context(&self) -> &zmq::Context {
        &self.ctx
    }

    /// Receives one message (`[route, command, data…]`), panicking after `RECV_MS`.
    pub(crate) fn recv(&self) -> Frames {
        recv(&self.sock, "ROUTER")
    }

    /// Receives one message within `ms`, or `None`.
    pub(crate) fn try_recv(&self, ms: i32) -> Option<Frames> {
        try_recv(&self.sock, ms)
    }

    /// Sends `[route, parts…]`.
    pub(crate) fn send(&self, route: &[u8], parts: &[&[u8]]) {
        let mut all: Vec<&[u8]> = vec![route];
        all.extend_from_slice(parts);
        self.sock
            .send_multipart(all, 0)
            .expect("libzmq ROUTER send (is the peer connected?)");
    }
}

/// What the ZAP handler was asked: `(mechanism, client key)`.
pub(crate) type ZapRequest = (String, Vec<u8>);

/// A ZAP (RFC 27) handler in the ROUTER's context, answering every request with `status`
/// (`"200"` accepts, with the hex key as User-Id) and reporting what it was asked.
pub(crate) struct Zap {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub(crate) requests: mpsc::Receiver<ZapRequest>,
}

impl Zap {
    /// Binds `inproc://zeromq.zap.01` in `ctx`; must run before the ROUTER accepts anyone.
    pub(crate) fn start(ctx: &zmq::Context, status: &'static str) -> Self {
        let rep = ctx.socket(zmq::REP).unwrap();
        rep.set_linger(0).unwrap();
        // Short, so the loop notices `stop` promptly; the loop itself is bounded by `stop`.
        rep.set_rcvtimeo(50).unwrap();
        rep.bind("inproc://zeromq.zap.01").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, requests) = mpsc::channel();
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok(req) = rep.recv_multipart(0) else {
                    continue;
                };
                // version, request id, domain, address, identity, mechanism, credentials…
                let mechanism = String::from_utf8_lossy(&req[5]).into_owned();
                let key = req.get(6).cloned().unwrap_or_default();
                let user_id: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let text: &[u8] = if status == "200" { b"" } else { b"denied" };
                let reply: Vec<&[u8]> = vec![
                    b"1.0",
                    &req[1],
                    status.as_bytes(),
                    text,
                    user_id.as_bytes(),
                    b"",
                ];
                let _ = rep.send_multipart(reply, 0);
                let _ = tx.send((mechanism, key));
            }
        });
        Self {
            stop,
            thread: Some(thread),
            requests,
        }
    }
}

impl Drop for Zap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
