//! The subject: the benchmark's protocol on lokimq nodes, written the way an application would
//! write it with the public API.
//!
//! `lokimq-server` is a node with a `bench` category (anyone may call it, no queue limit):
//!
//! * `bench.sink` (command): counts messages per connection and, every 50th, sends
//!   `bench.ack` back to the sender with the running count (decimal) as its data part.
//! * `bench.echo` (request command): replies with its data parts unchanged.
//!
//! `lokimq-client` is a node with a `bench.ack` command. Its traffic is driven from callbacks,
//! as an application would drive it: the ack handler sends the next `bench.sink` messages, and
//! each reply callback issues the next request. The main thread only starts the run, keeps
//! time and reads the counters at the edges of the measured window.
//!
//! On the wire this is exactly what `zmq_peer` sends (see there): lokimq adds nothing to the
//! frames of a command, a request or a reply, so the two move the same bytes.

use lokimq::{CategoryOptions, QueueLimit};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lokimq::{
    Address, AuthLevel, Bytes, ConnectOptions, ConnectionId, Handle, Listen, LokiMq, Message,
    RequestError,
};

use crate::args::{ACK_EVERY, Args, ClientOptions, DEFAULT_LISTEN, Workload, payload};
use crate::report::{ClientReport, Latency, print_server_exit};
use crate::run::{CLIENT_GRACE, Mark, Phase, StopSignal, now, watchdog};

type Res<T> = Result<T, Box<dyn Error>>;

/// How long closing a connection at shutdown waits for the peer (the run is over by then).
const CLOSE_LINGER: Duration = Duration::from_millis(100);
/// How long a client waits for its connection to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits, after its window, for the requests still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A lock that survives a panicked holder (the counters stay meaningful).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server's counters.
#[derive(Default)]
struct ServerState {
    /// `bench.sink` messages received, per connection.
    sinks: Mutex<BTreeMap<ConnectionId, u64>>,
    /// Every command handled (sinks and echoes), for CPU time per message.
    messages: AtomicU64,
}

impl ServerState {
    fn sink(&self, m: &Message) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let n = {
            let mut sinks = lock(&self.sinks);
            let n = sinks.entry(m.conn().clone()).or_insert(0);
            *n += 1;
            *n
        };
        if n % ACK_EVERY == 0 {
            m.send_back("bench.ack", [n.to_string()]);
        }
    }
}

/// `lokimq-server`: prints `READY <address>` (with the key for CURVE), serves until stdin
/// closes or SIGTERM, then prints `MESSAGES <n>` and `CPU <seconds>`.
pub(crate) fn server(args: &Args) -> Res<()> {
    let listen = args.value("listen").unwrap_or(DEFAULT_LISTEN);
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    let stop = StopSignal::install()?;

    let state = Arc::new(ServerState::default());
    let mut b = LokiMq::builder();
    // Everything else is OxenMQ's defaults: one general worker per core, libzmq's high-water
    // mark, 1 MiB maximum message size.
    b.config_mut().close_linger = CLOSE_LINGER;
    let sink_state = Arc::clone(&state);
    let echo_state = Arc::clone(&state);
    b.add_category(
        "bench",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )?
    .add_command("bench", "sink", move |m| sink_state.sink(m))?
    .add_request_command("bench", "echo", move |m| {
        echo_state.messages.fetch_add(1, Ordering::Relaxed);
        let data = m.take_data();
        m.send_reply(data);
    })?;
    let listen = if args.flag("plain") {
        Listen::plain(addr)?
    } else {
        Listen::curve(addr)?
    };
    b.listen(listen.allow(|_ip, _key, _sn| AuthLevel::None));
    let node = b.start()?;
    let bound = node
        .bound_addresses()
        .into_iter()
        .next()
        .ok_or("the node has no listener")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY {bound}")?;
        out.flush()?;
    }

    stop.wait();
    print_server_exit(state.messages.load(Ordering::Relaxed));
    node.shutdown();
    Ok(())
}

/// A oneway client's window.
struct Flow {
    sent: u64,
    acked: u64,
    /// When `acked` last grew. The window's edges are taken at acks, so that the count is exact
    /// at both edges (acks come only every 50 messages).
    acked_at: Instant,
}

/// Everything the client's callbacks share.
struct Shared {
    payload: Bytes,
    window: u64,
    /// A [`Phase`] as a `u8`: the main thread moves it on, callbacks read it.
    phase: AtomicU8,
    /// Oneway: what was sent and acknowledged, changed together.
    flow: Mutex<Flow>,
    /// What the run counts: acknowledged messages (oneway) or intact echoes.
    count: AtomicU64,
    errors: AtomicU64,
    /// Requests sent and not yet answered.
    outstanding: AtomicU64,
    /// Round trips in the window, in ns (latency runs only).
    latencies: Mutex<Vec<u64>>,
    record: bool,
}

impl Shared {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Warmup,
            1 => Phase::Measure,
            _ => Phase::Done,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn send_sink(&self, h: &Handle, conn: &ConnectionId) {
        // `send` fails only once the node is stopping; the HWM never refuses these (at most
        // ONEWAY_WINDOW = 400 unacknowledged, under libzmq's 1000).
        if h.send(conn, "bench.sink", [self.payload.clone()]).is_err() {
            self.error();
        }
    }

    /// `bench.ack` handler: records the count and tops the window up from this worker.
    fn on_ack(&self, m: &Message) {
        let count = m
            .data()
            .first()
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok());
        let Some(count) = count else {
            self.error();
            return;
        };
        let t = now();
        let more = {
            let mut flow = lock(&self.flow);
            // Two workers may handle acks out of order: keep the largest.
            if count > flow.acked {
                flow.acked = count;
                flow.acked_at = t;
            }
            self.count.store(flow.acked, Ordering::Relaxed);
            if self.phase() == Phase::Done {
                0
            } else {
                let more = (flow.acked + self.window).saturating_sub(flow.sent);
                flow.sent += more;
                more
            }
        };
        for _ in 0..more {
            self.send_sink(m.handle(), m.conn());
        }
    }
}

/// What a reply callback needs to issue the next request.
struct Requester {
    shared: Arc<Shared>,
    handle: Handle,
    conn: ConnectionId,
}

impl Requester {
    fn issue(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let sent_at = now();
        let s = &self.shared;
        s.outstanding.fetch_add(1, Ordering::Relaxed);
        let sent = self.handle.request(
            &self.conn,
            "bench.echo",
            [s.payload.clone()],
            move |reply| me.on_reply(reply, sent_at),
        );
        // `request` fails only once the node is stopping.
        if sent.is_err() {
            s.outstanding.fetch_sub(1, Ordering::Relaxed);
            s.error();
        }
    }

    fn on_reply(self: Arc<Self>, reply: Result<Vec<Bytes>, RequestError>, sent_at: Instant) {
        let t = now();
        let s = &self.shared;
        let phase = s.phase();
        match reply {
            Ok(parts) if parts.len() == 1 && parts[0] == s.payload => {
                s.count.fetch_add(1, Ordering::Relaxed);
                if s.record && phase == Phase::Measure {
                    let ns = u64::try_from(t.duration_since(sent_at).as_nanos());
                    lock(&s.latencies).push(ns.unwrap_or(u64::MAX));
                }
            }
            _ => s.error(),
        }
        s.outstanding.fetch_sub(1, Ordering::Relaxed);
        if phase != Phase::Done {
            self.issue();
        }
    }
}

/// Connects and waits for the connection to be up.
fn connect(node: &LokiMq, addr: &Address) -> Res<ConnectionId> {
    let (tx, rx) = mpsc::channel();
    let fail_tx = tx.clone();
    let opts = ConnectOptions::default().timeout(CONNECT_TIMEOUT);
    node.handle().connect_remote(
        addr,
        move |c| {
            let _ = tx.send(Ok(c));
        },
        move |_, why| {
            let _ = fail_tx.send(Err(why));
        },
        opts,
    )?;
    match rx.recv_timeout(CONNECT_TIMEOUT + Duration::from_secs(2)) {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(why)) => Err(format!("could not connect to {addr}: {why}").into()),
        Err(_) => Err(format!("could not connect to {addr}: no answer").into()),
    }
}

fn sleep_until(t: Instant) {
    let left = t.saturating_duration_since(now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
}

/// `lokimq-client`: runs one workload against a `lokimq-server`; prints one JSON line.
pub(crate) fn client(args: &Args) -> Res<()> {
    let o = ClientOptions::from_args(args)?;
    if o.server_key.is_some() {
        return Err("--server-key is for zmq clients: a lokimq address carries the key".into());
    }
    let addr = Address::parse(&o.connect).map_err(|e| format!("--connect {}: {e}", o.connect))?;
    match (addr.is_curve(), o.plain) {
        (true, true) => return Err("--plain, but the address has a CURVE key".into()),
        (false, false) => return Err("the address has no CURVE key: pass --plain".into()),
        _ => {}
    }
    watchdog(o.warmup + o.seconds + CLIENT_GRACE);

    let shared = Arc::new(Shared {
        payload: Bytes::from(payload(o.size)),
        window: o.workload.window(),
        phase: AtomicU8::new(Phase::Warmup as u8),
        flow: Mutex::new(Flow {
            sent: 0,
            acked: 0,
            acked_at: now(),
        }),
        count: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        outstanding: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
        record: o.workload == Workload::Latency,
    });
    let mut b = LokiMq::builder();
    b.config_mut().close_linger = CLOSE_LINGER;
    let ack_shared = Arc::clone(&shared);
    b.add_category(
        "bench",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )?
    .add_command("bench", "ack", move |m| ack_shared.on_ack(m))?;
    let node = b.start()?;
    let conn = connect(&node, &addr)?;

    // Fill the window; from then on the callbacks keep it full.
    let start = now();
    let window = o.workload.window();
    match o.workload {
        Workload::Oneway => {
            lock(&shared.flow).sent = window;
            let h = node.handle();
            for _ in 0..window {
                shared.send_sink(h, &conn);
            }
        }
        Workload::Pipelined | Workload::Latency => {
            let r = Arc::new(Requester {
                shared: Arc::clone(&shared),
                handle: node.handle().clone(),
                conn: conn.clone(),
            });
            for _ in 0..window {
                r.issue();
            }
        }
    }
    // The window's edges: for requests, now (the count is exact at any moment); for oneway,
    // the latest ack (see `Flow::acked_at`).
    let mark = || {
        let mut m = Mark::now(shared.count.load(Ordering::Relaxed));
        if o.workload == Workload::Oneway {
            let flow = lock(&shared.flow);
            (m.count, m.at) = (flow.acked, flow.acked_at);
        }
        m
    };
    sleep_until(start + o.warmup);
    shared.set_phase(Phase::Measure);
    let first = mark();
    sleep_until(start + o.warmup + o.seconds);
    let last = mark();
    shared.set_phase(Phase::Done);

    // Let the requests in flight come back, so that the server is not mid-reply at shutdown.
    let drain_until = now() + DRAIN_TIMEOUT;
    while shared.outstanding.load(Ordering::Relaxed) > 0 && now() < drain_until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let latencies = std::mem::take(&mut *lock(&shared.latencies));
    let report = ClientReport {
        peer: String::from("lokimq"),
        lib: format!("lokimq-rs {}", env!("CARGO_PKG_VERSION")),
        workload: o.workload.as_str(),
        security: o.security(),
        size: o.size,
        window: last.at.duration_since(first.at),
        count: last.count - first.count,
        total: shared.count.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        cpu: last.cpu - first.cpu,
        latency: Latency::from_nanos(latencies),
    };
    println!("{}", report.to_json());
    node.shutdown();
    Ok(())
}
