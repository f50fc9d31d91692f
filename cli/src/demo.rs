//! `lokimq demo`: two nodes in one process, node B talking to node A over loopback, every step
//! printed and checked; any failed check is an error (exit 1).

use lokimq::{CategoryOptions, QueueLimit};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lokimq::core::encoding::hex;
use lokimq::{
    AuthLevel, Batch, Builder, Bytes, ConnectionId, Listen, LokiMq, RequestError, Stopwatch, Target,
};

use crate::call::connect;
use crate::fail::Failure;

type Reply = Result<Vec<Bytes>, RequestError>;

/// `lokimq demo`'s options.
#[derive(Debug)]
pub(crate) struct Options {
    /// The whole demo's budget.
    pub(crate) timeout: Duration,
    /// Node A's port (0: a free one).
    pub(crate) port: u16,
    /// CURVE (default) or plain.
    pub(crate) curve: bool,
    /// Pipelined requests in the throughput step.
    pub(crate) requests: u32,
}

/// What node A's handlers and allow function observed, for the demo's report.
#[derive(Default)]
struct Seen {
    allow_calls: Vec<(String, Option<String>)>,
    whoami: Vec<(String, String)>,
}

/// Registers the demo commands: `demo.echo`, `demo.time`, `demo.whoami` (need `basic`; no
/// queue limit, for the throughput step) and `admin.secret` (needs `admin`).
fn register_demo(b: &mut Builder, seen: &Arc<Mutex<Seen>>) -> Result<(), lokimq::Error> {
    let up = Stopwatch::start();
    let seen = Arc::clone(seen);
    b.add_category(
        "demo",
        CategoryOptions::new(AuthLevel::Basic).max_queue(QueueLimit::Unlimited),
    )?
    .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
    .add_request_command("demo", "time", move |m| {
        let ms = up.elapsed().as_secs_f64() * 1000.0;
        m.send_reply([format!("node up for {ms:.3} ms")]);
    })?
    .add_request_command("demo", "whoami", move |m| {
        let auth = m.access().auth.to_string();
        let key = m.conn().pubkey().map(|k| k.to_hex()).unwrap_or_default();
        if let Ok(mut s) = seen.lock() {
            s.whoami.push((auth.clone(), key.clone()));
        }
        m.send_reply([auth, key, m.remote().to_owned()]);
    })?
    .add_category("admin", AuthLevel::Admin)?
    .add_request_command("admin", "secret", |m| m.send_reply(["42"]))?;
    Ok(())
}

fn text(frames: &[Bytes]) -> String {
    let parts: Vec<String> = frames
        .iter()
        .map(|f| match std::str::from_utf8(f) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("0x{}", hex::encode(f)),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The demo's running budget: every wait gets what is left of it.
struct Budget {
    clock: Stopwatch,
    total: Duration,
}

impl Budget {
    fn left(&self, what: &str) -> Result<Duration, Failure> {
        let left = self.clock.remaining(self.total);
        if left.is_zero() {
            Err(Failure::other(format!("demo: out of time before {what}")))
        } else {
            Ok(left)
        }
    }
}

/// A request, waited for within the budget; returns the reply and how long it took.
fn ask(
    node: &LokiMq,
    conn: &ConnectionId,
    command: &str,
    data: &[&str],
    budget: &Budget,
) -> Result<(Reply, Duration), Failure> {
    let left = budget.left(command)?;
    let (tx, rx) = mpsc::channel();
    let t = Stopwatch::start();
    let data: Vec<Bytes> = data.iter().map(|s| Bytes::from(s.to_string())).collect();
    node.handle()
        .request(conn, command.to_owned(), data, move |r| {
            let _ = tx.send(r);
        })
        .map_err(|e| Failure::other(format!("{command}: {e}")))?;
    let r = rx
        .recv_timeout(left)
        .map_err(|_| Failure::other(format!("{command}: no reply within {}", ms(left))))?;
    Ok((r, t.elapsed()))
}

/// Exits the process if the demo overruns its budget by more than a grace period (a stuck
/// shutdown must not hang a script).
fn watchdog(limit: Duration) {
    let grace = limit + Duration::from_secs(5);
    let spawned = std::thread::Builder::new()
        .name(String::from("watchdog"))
        .spawn(move || {
            std::thread::sleep(grace);
            eprintln!("error: demo still running after {}s", grace.as_secs());
            std::process::exit(1);
        });
    if spawned.is_err() {
        eprintln!("lokimq demo: warning: no watchdog thread");
    }
}

/// Maps a library error to a failure saying what was being done.
fn fail(what: &'static str) -> impl Fn(lokimq::Error) -> Failure {
    move |e| Failure::other(format!("{what}: {e}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::other(format!("demo: {}", what())))
    }
}

/// Runs the demo.
pub(crate) fn demo(o: &Options) -> Result<(), Failure> {
    watchdog(o.timeout);
    let budget = Budget {
        clock: Stopwatch::start(),
        total: o.timeout,
    };
    let mode = if o.curve { "CURVE-encrypted" } else { "plain" };
    println!("lokimq demo: two nodes in one process, talking {mode} ZMTP over loopback TCP");

    // Node A: the server.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut a = LokiMq::builder();
    a.config_mut().general_workers = 2;
    register_demo(&mut a, &seen).map_err(fail("registering the demo commands"))?;
    let seen_allow = Arc::clone(&seen);
    let bind = SocketAddr::from(([127, 0, 0, 1], o.port));
    let listen = if o.curve {
        Listen::curve(bind)
    } else {
        Listen::plain(bind)
    }
    .map_err(fail("listen address"))?
    .allow(move |ip, key, _sn| {
        if let Ok(mut s) = seen_allow.lock() {
            s.allow_calls.push((ip.to_owned(), key.map(|k| k.to_hex())));
        }
        AuthLevel::Basic
    });
    a.listen(listen);
    let t = Stopwatch::start();
    let node_a = a.start().map_err(fail("node A did not start"))?;
    let addr = node_a
        .bound_addresses()
        .first()
        .cloned()
        .ok_or_else(|| Failure::other("node A has no listener"))?;
    println!("node A  pubkey {}", node_a.pubkey().to_hex());
    println!(
        "        listening on {addr}   (started in {})",
        ms(t.elapsed())
    );

    // Node B: the client.
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 2;
    let node_b = b.start().map_err(fail("node B did not start"))?;
    println!("node B  pubkey {}", node_b.pubkey().to_hex());

    let t = Stopwatch::start();
    let conn = connect(&node_b, &addr, budget.left("connecting")?)
        .map_err(|why| Failure::other(format!("demo: B could not connect to A: {why}")))?;
    println!("B -> A  connected ({conn}) in {}", ms(t.elapsed()));

    requests(&node_b, &conn, &budget, o.curve)?;
    errors(&node_b, &conn, &budget)?;
    report_seen(&seen)?;
    batch(&node_b, &budget)?;
    timer(&node_b, &budget)?;
    throughput(&node_b, &conn, o, &budget)?;

    let t = Stopwatch::start();
    drop(node_b);
    drop(node_a);
    println!("both nodes shut down in {}", ms(t.elapsed()));
    println!("demo OK in {}", ms(budget.clock.elapsed()));
    Ok(())
}

/// Ordinary requests: echo, whoami (A sees B's level and key), time.
fn requests(
    node_b: &LokiMq,
    conn: &ConnectionId,
    budget: &Budget,
    curve: bool,
) -> Result<(), Failure> {
    let (r, took) = ask(node_b, conn, "demo.echo", &["hello", "world"], budget)?;
    let echoed = r.map_err(|e| Failure::other(format!("demo.echo failed: {e}")))?;
    println!(
        "B -> A  demo.echo [\"hello\", \"world\"] -> {}  ({})",
        text(&echoed),
        ms(took)
    );
    check(echoed == ["hello", "world"], || {
        format!("demo.echo returned {}", text(&echoed))
    })?;

    let (r, took) = ask(node_b, conn, "demo.whoami", &[], budget)?;
    let who = r.map_err(|e| Failure::other(format!("demo.whoami failed: {e}")))?;
    println!("B -> A  demo.whoami -> {}  ({})", text(&who), ms(took));
    let field = |i: usize| who.get(i).map(|f| String::from_utf8_lossy(f).into_owned());
    let auth = field(0);
    check(auth.as_deref() == Some("basic"), || {
        format!("A's handler saw auth level {auth:?}, expected basic")
    })?;
    if curve {
        let key = field(1);
        check(
            key.as_deref() == Some(node_b.pubkey().to_hex().as_str()),
            || format!("A's handler saw key {key:?}, not B's"),
        )?;
    }

    let (r, took) = ask(node_b, conn, "demo.time", &[], budget)?;
    let time = r.map_err(|e| Failure::other(format!("demo.time failed: {e}")))?;
    println!("B -> A  demo.time -> {}  ({})", text(&time), ms(took));
    Ok(())
}

/// Error replies: a command above B's level, and one that does not exist.
fn errors(node_b: &LokiMq, conn: &ConnectionId, budget: &Budget) -> Result<(), Failure> {
    let (r, took) = ask(node_b, conn, "admin.secret", &[], budget)?;
    let shown = match &r {
        Ok(parts) => text(parts),
        Err(e) => format!("error {e}"),
    };
    println!(
        "B -> A  admin.secret (needs admin, B has basic) -> {shown}  ({})",
        ms(took)
    );
    check(r == Err(RequestError::Forbidden), || {
        format!("admin.secret should be FORBIDDEN, got {shown}")
    })?;

    let (r, took) = ask(node_b, conn, "demo.nope", &[], budget)?;
    let shown = match &r {
        Ok(parts) => text(parts),
        Err(e) => format!("error {e}"),
    };
    println!(
        "B -> A  demo.nope (no such command) -> {shown}  ({})",
        ms(took)
    );
    check(r == Err(RequestError::UnknownCommand), || {
        format!("demo.nope should be UNKNOWNCOMMAND, got {shown}")
    })
}

fn report_seen(seen: &Arc<Mutex<Seen>>) -> Result<(), Failure> {
    let s = seen
        .lock()
        .map_err(|_| Failure::other("a demo handler panicked"))?;
    for (ip, key) in &s.allow_calls {
        println!(
            "A saw   a connection from {ip}, client key {}, granted basic",
            key.as_deref().unwrap_or("(none: plain)")
        );
    }
    for (auth, key) in &s.whoami {
        let key = if key.is_empty() { "(none: plain)" } else { key };
        println!("A's demo.whoami handler saw auth level {auth}, caller key {key}");
    }
    Ok(())
}

/// A batch on node B: jobs in parallel on the batch pool, then one completion with every
/// result in job order.
fn batch(node: &LokiMq, budget: &Budget) -> Result<(), Failure> {
    const JOBS: u64 = 5;
    let mut batch = Batch::new();
    for i in 0..JOBS {
        batch.add_job(move || {
            // Some real work per job: the sum of the first 100 000 multiples of i.
            let sum: u64 = (0..100_000u64).map(|k| k * i).sum();
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            (sum, thread)
        });
    }
    let (tx, rx) = mpsc::channel();
    batch
        .completion(move |results| {
            let _ = tx.send(results);
        })
        .map_err(|e| Failure::other(format!("batch: {e}")))?;
    let t = Stopwatch::start();
    node.handle()
        .batch(batch)
        .map_err(|e| Failure::other(format!("batch: {e}")))?;
    let left = budget.left("the batch")?;
    let results = rx
        .recv_timeout(left)
        .map_err(|_| Failure::other("demo: the batch completion did not run in time"))?;
    let took = t.elapsed();
    let mut sums = Vec::new();
    let mut threads = std::collections::BTreeSet::new();
    for r in results {
        let (sum, thread) = r.map_err(|e| Failure::other(format!("demo: {e}")))?;
        sums.push(sum);
        threads.insert(thread);
    }
    let unit: u64 = (0..100_000u64).sum();
    let expected: Vec<u64> = (0..JOBS).map(|i| unit * i).collect();
    println!(
        "B       batch of {JOBS} jobs on threads {} -> completion got {sums:?}  ({})",
        threads.into_iter().collect::<Vec<_>>().join(", "),
        ms(took)
    );
    check(sums == expected, || {
        format!("batch results {sums:?}, expected {expected:?}")
    })
}

/// A repeating timer on node B: waits for three firings, cancels it, and checks it stops.
fn timer(node: &LokiMq, budget: &Budget) -> Result<(), Failure> {
    const FIRINGS: usize = 3;
    let interval = Duration::from_millis(50);
    let fired = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let count = Arc::clone(&fired);
    let t = Stopwatch::start();
    let id = node
        .handle()
        .add_timer(
            move || {
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(t.elapsed());
                }
            },
            interval,
            true,
            Target::Worker,
        )
        .map_err(|e| Failure::other(format!("timer: {e}")))?;
    let mut times = Vec::new();
    for _ in 0..FIRINGS {
        let left = budget.left("the timer")?;
        let at = rx
            .recv_timeout(left)
            .map_err(|_| Failure::other("demo: the timer did not fire in time"))?;
        times.push(ms(at));
    }
    node.handle()
        .cancel_timer(id)
        .map_err(|e| Failure::other(format!("timer: {e}")))?;
    let at_cancel = fired.load(Ordering::SeqCst);
    // A firing already queued (squelch allows at most one) may still run; nothing after it.
    std::thread::sleep(interval * 4);
    let after = fired.load(Ordering::SeqCst) - at_cancel;
    println!(
        "B       timer every {}: fired at {}; cancelled, {after} firing(s) after that",
        ms(interval),
        times.join(", ")
    );
    check(after <= 1, || {
        format!("the timer fired {after} times after it was cancelled")
    })
}

/// `o.requests` pipelined echo requests from B to A: all sent at once, then every reply waited
/// for; prints requests per second.
fn throughput(
    node: &LokiMq,
    conn: &ConnectionId,
    o: &Options,
    budget: &Budget,
) -> Result<(), Failure> {
    let n = usize::try_from(o.requests).unwrap_or(usize::MAX);
    let left = budget.left("the throughput run")?;
    let (tx, rx) = mpsc::channel::<Reply>();
    let payload = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    let t = Stopwatch::start();
    for _ in 0..n {
        let tx = tx.clone();
        node.handle()
            .request(conn, "demo.echo", [payload.clone()], move |r| {
                let _ = tx.send(r);
            })
            .map_err(|e| Failure::other(format!("throughput: {e}")))?;
    }
    drop(tx);
    for i in 0..n {
        let wait = budget.clock.remaining(budget.total).min(left);
        let r = rx.recv_timeout(wait).map_err(|_| {
            Failure::other(format!(
                "demo: only {i} of {n} pipelined requests answered in time"
            ))
        })?;
        let parts = r.map_err(|e| Failure::other(format!("demo: pipelined request: {e}")))?;
        check(parts.first() == Some(&payload) && parts.len() == 1, || {
            format!("pipelined echo returned {}", text(&parts))
        })?;
    }
    let took = t.elapsed();
    let rate = n as f64 / took.as_secs_f64().max(1e-9);
    let mode = if o.curve { "CURVE" } else { "plain TCP" };
    println!(
        "B -> A  {n} pipelined demo.echo requests over {mode} in {} = {rate:.0} requests/s",
        ms(took)
    );
    Ok(())
}
