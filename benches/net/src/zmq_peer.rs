//! The floor: the benchmark's protocol on plain libzmq sockets, with no application layer.
//!
//! `zmq-server` is one ROUTER socket served by one thread (plus libzmq's one I/O thread, which
//! does the TCP and CURVE work); `zmq-client` is one DEALER socket driven by one thread. They
//! put exactly the frames on the wire that lokimq does for the same work, so both sides move
//! the same bytes through the same ZMTP/CurveZMQ framing:
//!
//! | workload | client sends | server answers |
//! |---|---|---|
//! | oneway | `[bench.sink, data]` | `[bench.ack, count]` every 50th message of the connection |
//! | pipelined, latency | `[bench.echo, tag, data]` (tag: 15 bytes) | `[REPLY, tag, data]` |
//!
//! (the ROUTER adds and strips the routing-id frame locally; it is not on the wire). The count
//! in an ack is decimal ASCII, as the lokimq server sends it.
//!
//! What lokimq does on top (dispatching to worker threads, the command registry, access
//! checks, request bookkeeping, callbacks) is exactly what this floor leaves out.
//!
//! This file is compiled twice: into `bench-net` against the vendored libzmq 4.3.2 (CURVE
//! through tweetnacl), and into `benches/net-zmq-sys` against the system libzmq (libsodium),
//! by `#[path]`. The `label` argument tells the two apart in the results.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;

use crate::args::{ACK_EVERY, Args, ClientOptions, DEFAULT_LISTEN, Workload, payload, tag};
use crate::report::{ClientReport, Latency, print_server_exit};
use crate::run::{CLIENT_GRACE, Mark, Phase, StopSignal, Timeline, now, watchdog};

type Res<T> = Result<T, Box<dyn Error>>;

const SINK: &[u8] = b"bench.sink";
const ECHO: &[u8] = b"bench.echo";
const ACK: &[u8] = b"bench.ack";
const REPLY: &[u8] = b"REPLY";

/// How long the server's blocking receive waits before looking at the stop flag again.
const SERVER_POLL_MS: i32 = 100;
/// A client that hears nothing from its server for this long gives up.
const CLIENT_SILENCE_MS: i32 = 5000;

/// `libzmq X.Y.Z`, the library actually linked.
fn lib_version() -> String {
    let (a, b, c) = zmq::version();
    format!("libzmq {a}.{b}.{c}")
}

fn require_curve() -> Res<()> {
    // `zmq_has("curve")`: false when libzmq was built without a CURVE implementation.
    if zmq::has("curve") == Some(false) {
        return Err(format!("{} was built without CURVE", lib_version()).into());
    }
    Ok(())
}

/// Receives one whole multipart message into `frames` (cleared first). The first frame waits
/// up to the socket's receive timeout (`EAGAIN` after it); the others are already there, since
/// libzmq delivers multipart messages atomically.
fn recv_frames(sock: &zmq::Socket, frames: &mut Vec<zmq::Message>) -> zmq::Result<()> {
    frames.clear();
    loop {
        let m = sock.recv_msg(0)?;
        let more = m.get_more();
        frames.push(m);
        if !more {
            return Ok(());
        }
    }
}

/// `IP:PORT` to a libzmq TCP endpoint; port 0 becomes libzmq's `*` (any free port).
fn tcp_endpoint(listen: &str) -> Res<String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    Ok(if addr.port() == 0 {
        format!("tcp://{}:*", addr.ip())
    } else {
        format!("tcp://{addr}")
    })
}

/// `zmq-server`: a ROUTER that counts `bench.sink` per peer (acking every 50th) and echoes
/// `bench.echo`. Prints `READY <endpoint> [<z85 server key>]`, serves until stdin closes or
/// SIGTERM, then prints `MESSAGES <n>` and `CPU <seconds>`.
pub(crate) fn server(args: &Args) -> Res<()> {
    let plain = args.flag("plain");
    let endpoint = tcp_endpoint(args.value("listen").unwrap_or(DEFAULT_LISTEN))?;
    let stop = StopSignal::install()?;

    // Declared before the socket so that it is dropped after it (zmq_ctx_term waits for every
    // socket to close).
    let ctx = zmq::Context::new();
    let sock = ctx.socket(zmq::ROUTER)?;
    sock.set_linger(0)?;
    sock.set_rcvtimeo(SERVER_POLL_MS)?;
    let key = if plain {
        None
    } else {
        require_curve()?;
        let kp = zmq::CurveKeyPair::new()?;
        sock.set_curve_server(true)?;
        sock.set_curve_secretkey(&kp.secret_key)?;
        sock.set_curve_publickey(&kp.public_key)?;
        Some(zmq::z85_encode(&kp.public_key).map_err(|e| format!("z85: {e:?}"))?)
    };
    sock.bind(&endpoint)?;
    let bound = sock
        .get_last_endpoint()?
        .map_err(|raw| format!("endpoint is not UTF-8: {raw:?}"))?;
    {
        let mut out = std::io::stdout().lock();
        match &key {
            Some(k) => writeln!(out, "READY {bound} {k}")?,
            None => writeln!(out, "READY {bound}")?,
        }
        out.flush()?;
    }

    let mut frames = Vec::with_capacity(4);
    // bench.sink counts per routing id (one per connected DEALER).
    let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut messages = 0u64;
    let mut unknown = 0u64;
    while !stop.is_set() {
        match recv_frames(&sock, &mut frames) {
            Ok(()) => {}
            // Nothing for SERVER_POLL_MS, or SIGTERM interrupted the wait: look at the stop
            // flag again.
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let mut parts = frames.drain(..);
        let (Some(rid), Some(command)) = (parts.next(), parts.next()) else {
            unknown += 1;
            continue;
        };
        // Send errors below cannot come from the peer: a ROUTER silently drops what it cannot
        // route or queue. An error is a broken socket, and ends the server.
        match &command[..] {
            SINK => {
                messages += 1;
                let n = match counts.get_mut(&rid[..]) {
                    Some(c) => {
                        *c += 1;
                        *c
                    }
                    None => {
                        counts.insert(rid.to_vec(), 1);
                        1
                    }
                };
                if n % ACK_EVERY == 0 {
                    sock.send(rid, zmq::SNDMORE)?;
                    sock.send(ACK, zmq::SNDMORE)?;
                    sock.send(n.to_string().as_bytes(), 0)?;
                }
            }
            ECHO => {
                messages += 1;
                // The received frames go back as they are (no copy): [rid, REPLY, tag, data…].
                let rest: Vec<zmq::Message> = parts.collect();
                sock.send(rid, zmq::SNDMORE)?;
                sock.send(REPLY, if rest.is_empty() { 0 } else { zmq::SNDMORE })?;
                let last = rest.len().saturating_sub(1);
                for (i, f) in rest.into_iter().enumerate() {
                    sock.send(f, if i == last { 0 } else { zmq::SNDMORE })?;
                }
            }
            _ => unknown += 1,
        }
    }
    if unknown > 0 {
        eprintln!("zmq-server: {unknown} message(s) with an unknown command");
    }
    print_server_exit(messages);
    Ok(())
}

/// What a client loop measured.
struct Measured {
    first: Mark,
    last: Mark,
    total: u64,
    errors: u64,
    latencies: Vec<u64>,
}

/// `zmq-client`: a DEALER running one workload against a `zmq-server`; prints one JSON line.
pub(crate) fn client(args: &Args, label: &str) -> Res<()> {
    let o = ClientOptions::from_args(args)?;
    watchdog(o.warmup + o.seconds + CLIENT_GRACE);

    let ctx = zmq::Context::new();
    let sock = ctx.socket(zmq::DEALER)?;
    sock.set_linger(0)?;
    sock.set_rcvtimeo(CLIENT_SILENCE_MS)?;
    match (&o.server_key, o.plain) {
        (Some(k), false) => {
            require_curve()?;
            let server_key = zmq::z85_decode(k).map_err(|e| format!("--server-key: {e:?}"))?;
            let kp = zmq::CurveKeyPair::new()?;
            sock.set_curve_serverkey(&server_key)?;
            sock.set_curve_publickey(&kp.public_key)?;
            sock.set_curve_secretkey(&kp.secret_key)?;
        }
        (None, true) => {}
        (Some(_), true) => return Err("--server-key makes no sense with --plain".into()),
        (None, false) => return Err("CURVE needs --server-key (or pass --plain)".into()),
    }
    // Asynchronous: messages sent before the handshake completes wait in the socket's queue,
    // and the handshake happens during the warm-up.
    sock.connect(&o.connect)?;

    let data = payload(o.size);
    let m = match o.workload {
        Workload::Oneway => oneway(&sock, &o, &data)?,
        Workload::Pipelined | Workload::Latency => requests(&sock, &o, &data)?,
    };
    let report = ClientReport {
        peer: label.to_owned(),
        lib: lib_version(),
        workload: o.workload.as_str(),
        security: o.security(),
        size: o.size,
        window: m.last.at.duration_since(m.first.at),
        count: m.last.count - m.first.count,
        total: m.total,
        errors: m.errors,
        cpu: m.last.cpu - m.first.cpu,
        latency: Latency::from_nanos(m.latencies),
    };
    println!("{}", report.to_json());
    Ok(())
}

/// The edges of the measured window, as one loop sees them pass.
#[derive(Default)]
struct Window {
    first: Option<Mark>,
}

impl Window {
    /// Looks at the clock; `Some((first, last))` once the run is over.
    fn tick(&mut self, timeline: &Timeline, count: u64) -> Option<(Mark, Mark)> {
        match timeline.phase(now()) {
            Phase::Warmup => None,
            Phase::Measure => {
                if self.first.is_none() {
                    self.first = Some(Mark::now(count));
                }
                None
            }
            Phase::Done => {
                let last = Mark::now(count);
                // A loop stalled through the whole window saw no Measure tick: it counted 0.
                Some((self.first.unwrap_or(last), last))
            }
        }
    }
}

fn silent(e: zmq::Error) -> Box<dyn Error> {
    if e == zmq::Error::EAGAIN {
        format!("no answer from the server for {CLIENT_SILENCE_MS} ms").into()
    } else {
        e.into()
    }
}

/// `bench.sink` with at most `ONEWAY_WINDOW` unacknowledged; counts acknowledged messages.
fn oneway(sock: &zmq::Socket, o: &ClientOptions, data: &[u8]) -> Res<Measured> {
    let timeline = Timeline::new(now(), o.warmup, o.seconds);
    let window = o.workload.window();
    let mut frames = Vec::with_capacity(2);
    let (mut sent, mut acked, mut errors) = (0u64, 0u64, 0u64);
    let mut edges = Window::default();
    loop {
        if let Some((first, last)) = edges.tick(&timeline, acked) {
            return Ok(Measured {
                first,
                last,
                total: acked,
                errors,
                latencies: Vec::new(),
            });
        }
        while sent - acked < window {
            sock.send(SINK, zmq::SNDMORE)?;
            sock.send(data, 0)?;
            sent += 1;
        }
        recv_frames(sock, &mut frames).map_err(silent)?;
        match parse_ack(&frames) {
            Some(n) => acked = acked.max(n),
            None => errors += 1,
        }
    }
}

/// The count out of `[bench.ack, count]`.
fn parse_ack(frames: &[zmq::Message]) -> Option<u64> {
    match frames {
        [cmd, count] if &cmd[..] == ACK => std::str::from_utf8(count).ok()?.parse().ok(),
        _ => None,
    }
}

/// Whether `frames` is `[REPLY, tag, data]` with the expected data (and tag, if given).
fn is_echo(frames: &[zmq::Message], want_tag: Option<&[u8]>, data: &[u8]) -> bool {
    match frames {
        [reply, t, d] => {
            &reply[..] == REPLY
                && t.len() == 15
                && want_tag.is_none_or(|w| &t[..] == w)
                && &d[..] == data
        }
        _ => false,
    }
}

/// `bench.echo` requests, `window` outstanding; counts intact echoes, and with a window of
/// one (latency) records every round trip.
fn requests(sock: &zmq::Socket, o: &ClientOptions, data: &[u8]) -> Res<Measured> {
    let timeline = Timeline::new(now(), o.warmup, o.seconds);
    let window = o.workload.window();
    let record = o.workload == Workload::Latency;
    let mut frames = Vec::with_capacity(3);
    let (mut next, mut outstanding, mut replies, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut sent_at = now();
    let mut latencies = Vec::new();
    let mut edges = Window::default();
    loop {
        if let Some((first, last)) = edges.tick(&timeline, replies) {
            return Ok(Measured {
                first,
                last,
                total: replies,
                errors,
                latencies,
            });
        }
        while outstanding < window {
            // Taken before sending: were the thread preempted right after the send, the reply
            // could be in before a later timestamp, and the round trip would look shorter.
            sent_at = now();
            sock.send(ECHO, zmq::SNDMORE)?;
            sock.send(&tag(next)[..], zmq::SNDMORE)?;
            sock.send(data, 0)?;
            next += 1;
            outstanding += 1;
        }
        recv_frames(sock, &mut frames).map_err(silent)?;
        let t = now();
        outstanding = outstanding.saturating_sub(1);
        // With one request in flight the reply must carry its tag; pipelined replies may come
        // in any order (they do not, from this server) and only need a well-formed tag.
        let want = record.then(|| tag(next - 1));
        if !is_echo(&frames, want.as_ref().map(|t| &t[..]), data) {
            errors += 1;
            continue;
        }
        replies += 1;
        if record && timeline.phase(t) == Phase::Measure {
            latencies.push(u64::try_from(t.duration_since(sent_at).as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(parts: &[&[u8]]) -> Vec<zmq::Message> {
        parts.iter().map(|p| zmq::Message::from(*p)).collect()
    }

    #[test]
    fn endpoints() {
        assert_eq!(tcp_endpoint("127.0.0.1:0").unwrap(), "tcp://127.0.0.1:*");
        assert_eq!(
            tcp_endpoint("127.0.0.1:5555").unwrap(),
            "tcp://127.0.0.1:5555"
        );
        assert!(tcp_endpoint("localhost").is_err());
    }

    #[test]
    fn acks() {
        assert_eq!(parse_ack(&msgs(&[ACK, b"150"])), Some(150));
        assert_eq!(parse_ack(&msgs(&[ACK, b"x"])), None);
        assert_eq!(parse_ack(&msgs(&[REPLY, b"150"])), None);
        assert_eq!(parse_ack(&msgs(&[ACK])), None);
    }

    #[test]
    fn echoes() {
        let t = tag(7);
        let ok = msgs(&[REPLY, &t, b"data"]);
        assert!(is_echo(&ok, Some(&t), b"data"));
        assert!(is_echo(&ok, None, b"data"));
        assert!(!is_echo(&ok, Some(&tag(8)), b"data"));
        assert!(!is_echo(&ok, None, b"dat"));
        assert!(!is_echo(&msgs(&[REPLY, b"short", b"data"]), None, b"data"));
        assert!(!is_echo(&msgs(&[b"TIMEOUT", &t, b"data"]), None, b"data"));
        assert!(!is_echo(&msgs(&[REPLY, &t]), None, b""));
    }
}
