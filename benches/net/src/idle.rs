//! `bench-idle`: what N idle CURVE connections cost a server, lokimq against the vendored
//! libzmq, measured the same way (`docs/performance.md`, "Idle connections").
//!
//! ```text
//! bench-idle [--conns N[,N…]] [--procs P] [--settle S] [--idle S] [--server lokimq|zmq|both]
//! ```
//!
//! For each server kind and each N (default 10000), the orchestrator:
//!
//! 1. starts a server process (`bench-idle serve --kind K --max N`): a lokimq node with a CURVE
//!    listener and OxenMQ's defaults, or a libzmq ROUTER with a CURVE server key and OxenMQ's
//!    heartbeat options (15 s interval, 30 s timeout); either answers `HI` with `HELLO`;
//! 2. reads the server's resident set once it is up (`VmRSS` in `/proc/PID/status`);
//! 3. starts P client processes (`bench-idle dial`), each opening N/P libzmq DEALER sockets
//!    with CURVE and the same heartbeats, and waits until every DEALER got `HELLO` back (the
//!    handshake is complete and the server routes to it);
//! 4. lets the connections sit for `--settle` seconds (default 20: a heartbeat round), reads
//!    the server's RSS again, then measures its CPU time (`utime + stime` in `/proc/PID/stat`)
//!    over `--idle` seconds (default 60) of nothing but heartbeats;
//! 5. closes the clients' and the server's standard input (they exit) and prints
//!    `(RSS after − RSS before) / N` and the idle CPU share.
//!
//! The clients are the same libzmq DEALERs for both servers, so both servers hold exactly the
//! same connections. Every process raises its open-file limit to its hard limit (as root, to
//! at least what N needs). Only 127.0.0.1 is used.

use std::error::Error;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lokimq::{AuthLevel, Listen, LokiMq};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

type Res<T> = Result<T, Box<dyn Error>>;

const USAGE: &str = "\
usage: bench-idle [--conns N[,N...]] [--procs P] [--settle S] [--idle S] [--server lokimq|zmq|both]
       bench-idle serve --kind lokimq|zmq --max N
       bench-idle dial --endpoint tcp://IP:PORT --key HEX --count N";

/// OxenMQ's `CONN_HEARTBEAT` and `CONN_HEARTBEAT_TIMEOUT`, which it sets on every socket.
const HEARTBEAT_MS: i32 = 15_000;
const HEARTBEAT_TIMEOUT_MS: i32 = 30_000;
/// DEALERs per libzmq context (below its default limit of 1023 sockets).
const SOCKETS_PER_CONTEXT: usize = 1000;
/// How long a dialer waits for all its `HELLO`s.
const DIAL_LIMIT: Duration = Duration::from_secs(900);

/// The benchmark's clock (the workspace bans `Instant::now` elsewhere).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.first().map(String::as_str) {
        Some("serve") => serve(&argv[1..]),
        Some("dial") => dial(&argv[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => orchestrate(&argv),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-idle: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` from `args`.
fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn opt_num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Res<T> {
    match opt(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} {v:?}: not a number").into()),
    }
}

/// Raises the open-file limit to the hard limit, and (as root) the hard limit to `want`.
fn raise_nofile(want: u64) -> Res<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let hard = if hard < want && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        want
    } else {
        hard
    };
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

/// Stops when standard input reaches EOF (the orchestrator closes it).
fn stop_on_stdin_eof() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = String::new();
        while matches!(std::io::stdin().read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

fn say(line: &str) -> Res<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// servers

/// `serve`: prints `READY <tcp endpoint> <hex server key>`, serves until stdin closes.
fn serve(args: &[String]) -> Res<()> {
    let max: usize = opt_num(args, "--max", 10_000)?;
    raise_nofile(max as u64 + 1024)?;
    let stop = stop_on_stdin_eof();
    match opt(args, "--kind") {
        Some("lokimq") => serve_lokimq(max, &stop),
        Some("zmq") => serve_zmq(&stop),
        other => Err(format!("--kind {other:?}: lokimq or zmq").into()),
    }
}

fn serve_lokimq(max: usize, stop: &AtomicBool) -> Res<()> {
    let mut b = LokiMq::builder();
    // OxenMQ's defaults, but room for every connection of the run.
    b.config_mut().max_incoming_connections = max + 16;
    b.config_mut().close_linger = Duration::from_millis(100);
    b.listen(
        Listen::curve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?
            .allow(|_, _, _| AuthLevel::None),
    );
    let node = b.start()?;
    let bound = node
        .bound_addresses()
        .into_iter()
        .next()
        .ok_or("no listener")?;
    let key = bound.pubkey().ok_or("no server key")?.to_hex();
    let endpoint = bound.clone().with_pubkey(None).zmq_address();
    say(&format!("READY {endpoint} {key}"))?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    node.shutdown();
    Ok(())
}

fn serve_zmq(stop: &AtomicBool) -> Res<()> {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER)?;
    let kp = zmq::CurveKeyPair::new()?;
    router.set_curve_server(true)?;
    router.set_curve_secretkey(&kp.secret_key)?;
    router.set_heartbeat_ivl(HEARTBEAT_MS)?;
    router.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS)?;
    router.set_linger(0)?;
    router.set_rcvtimeo(100)?;
    router.bind("tcp://127.0.0.1:*")?;
    let endpoint = router
        .get_last_endpoint()?
        .map_err(|_| "endpoint is not UTF-8")?;
    let key: String = kp.public_key.iter().map(|b| format!("{b:02x}")).collect();
    say(&format!("READY {endpoint} {key}"))?;
    while !stop.load(Ordering::SeqCst) {
        match router.recv_multipart(0) {
            Ok(parts) if parts.len() == 2 && parts[1] == b"HI" => {
                router.send_multipart([parts[0].as_slice(), b"HELLO"], 0)?;
            }
            Ok(_) | Err(zmq::Error::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// clients

fn hex32(s: &str) -> Res<[u8; 32]> {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?} is not hex"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{s:?} is not 32 bytes").into())
}

/// `dial`: opens `--count` DEALERs to the server, sends `HI` on each, prints `READY` once
/// every one got `HELLO`, then idles until stdin closes.
fn dial(args: &[String]) -> Res<()> {
    let endpoint = opt(args, "--endpoint").ok_or("--endpoint")?;
    let server_key = hex32(opt(args, "--key").ok_or("--key")?)?;
    let count: usize = opt_num(args, "--count", 1000)?;
    raise_nofile(count as u64 + 1024)?;
    let stop = stop_on_stdin_eof();
    // A libzmq context holds at most 1023 sockets by default (the zmq crate cannot raise it
    // without unsafe code): one context per thousand.
    let mut contexts: Vec<zmq::Context> = Vec::new();
    let kp = zmq::CurveKeyPair::new()?;
    let mut socks = Vec::with_capacity(count);
    for i in 0..count {
        if i % SOCKETS_PER_CONTEXT == 0 {
            contexts.push(zmq::Context::new());
        }
        let ctx = contexts.last().ok_or("no context")?;
        let s = ctx.socket(zmq::DEALER)?;
        s.set_curve_serverkey(&server_key)?;
        s.set_curve_publickey(&kp.public_key)?;
        s.set_curve_secretkey(&kp.secret_key)?;
        s.set_heartbeat_ivl(HEARTBEAT_MS)?;
        s.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS)?;
        s.set_linger(0)?;
        s.set_rcvtimeo(1000)?;
        s.connect(endpoint)?;
        // Queued until the handshake completes.
        s.send("HI", 0)?;
        socks.push(s);
    }
    let start = now();
    for (i, s) in socks.iter().enumerate() {
        loop {
            match s.recv_bytes(0) {
                Ok(m) if m == b"HELLO" => break,
                Ok(_) | Err(zmq::Error::EAGAIN) => {}
                Err(e) => return Err(e.into()),
            }
            if start.elapsed() > DIAL_LIMIT || stop.load(Ordering::SeqCst) {
                return Err(format!("connection {i} never got HELLO").into());
            }
        }
    }
    say("READY")?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the orchestrator

/// A process we started: its stdin (closing it stops the process) and stdout.
struct Proc {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Res<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self { child, out })
    }

    fn line(&mut self) -> Res<String> {
        let mut l = String::new();
        if self.out.read_line(&mut l)? == 0 {
            return Err(format!("process {} ended early", self.child.id()).into());
        }
        Ok(l.trim().to_owned())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin and waits for it (bounded; then kills it).
    fn stop(mut self) {
        drop(self.child.stdin.take());
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// `utime + stime` of `pid` (all threads), in seconds.
fn cpu_s(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at state, field 3.
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).ok_or("bad stat")?.parse::<u64>()?
        + fields.get(12).ok_or("bad stat")?.parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(ticks as f64 / 100.0)
}

struct Figures {
    setup_s: f64,
    rss_before: u64,
    rss_after: u64,
    idle_cpu: f64,
}

fn measure(kind: &str, n: usize, procs: usize, settle: u64, idle: u64) -> Res<Figures> {
    let max = n.to_string();
    let mut server = Proc::spawn(&["serve", "--kind", kind, "--max", &max])?;
    let ready = server.line()?;
    let mut words = ready.split_whitespace().skip(1);
    let (endpoint, key) = (
        words.next().ok_or("READY without endpoint")?.to_owned(),
        words.next().ok_or("READY without key")?.to_owned(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let rss_before = rss_kib(server.pid())?;
    let t = now();
    let mut dialers = Vec::new();
    for i in 0..procs {
        let count = n / procs + usize::from(i < n % procs);
        let count = count.to_string();
        dialers.push(Proc::spawn(&[
            "dial",
            "--endpoint",
            &endpoint,
            "--key",
            &key,
            "--count",
            &count,
        ])?);
    }
    for d in &mut dialers {
        let l = d.line()?;
        if l != "READY" {
            return Err(format!("dialer said {l:?}").into());
        }
    }
    let setup_s = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(settle));
    let cpu0 = cpu_s(server.pid())?;
    std::thread::sleep(Duration::from_secs(idle));
    let cpu1 = cpu_s(server.pid())?;
    let rss_after = rss_kib(server.pid())?;
    for d in dialers {
        d.stop();
    }
    server.stop();
    Ok(Figures {
        setup_s,
        rss_before,
        rss_after,
        idle_cpu: (cpu1 - cpu0) / idle as f64,
    })
}

fn orchestrate(args: &[String]) -> Res<()> {
    if args.iter().any(|a| {
        a.starts_with("--")
            && !matches!(
                a.as_str(),
                "--conns" | "--procs" | "--settle" | "--idle" | "--server"
            )
    }) {
        return Err("unknown option".into());
    }
    let conns: Vec<usize> = opt(args, "--conns")
        .unwrap_or("10000")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| "--conns: numbers")?;
    let procs: usize = opt_num(args, "--procs", 4)?;
    let settle: u64 = opt_num(args, "--settle", 20)?;
    let idle: u64 = opt_num(args, "--idle", 60)?;
    let kinds: &[&str] = match opt(args, "--server").unwrap_or("both") {
        "both" => &["lokimq", "zmq"],
        "lokimq" => &["lokimq"],
        "zmq" => &["zmq"],
        other => return Err(format!("--server {other:?}").into()),
    };
    let max = conns.iter().copied().max().unwrap_or(0) as u64;
    let limit = raise_nofile(max + 1024)?;
    println!(
        "{} CPUs, load {}, RLIMIT_NOFILE {limit}, {procs} client processes, settle {settle} s, idle {idle} s",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:>7} {:>7} {:>9} {:>12} {:>12} {:>14} {:>11}",
        "server", "N", "setup s", "RSS0 KiB", "RSS KiB", "per conn KiB", "idle CPU %"
    );
    for &n in &conns {
        for kind in kinds {
            let f = measure(kind, n, procs.clamp(1, n.max(1)), settle, idle)?;
            println!(
                "{:>7} {:>7} {:>9.1} {:>12} {:>12} {:>14.2} {:>11.2}",
                kind,
                n,
                f.setup_s,
                f.rss_before,
                f.rss_after,
                f.rss_after.saturating_sub(f.rss_before) as f64 / n.max(1) as f64,
                f.idle_cpu * 100.0
            );
        }
    }
    Ok(())
}
