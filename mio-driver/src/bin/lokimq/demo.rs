//! The subcommands: the two-node demo, keygen, an echo server and a one-shot client.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lokimq::core::address::Encoding;
use lokimq::core::encoding::{base32z, hex};
use lokimq::{
    Address, AuthLevel, Builder, Bytes, ConnectOptions, ConnectionId, Keypair, Listen, LokiMq,
    RequestError, Stopwatch,
};
use rand_core::OsRng;

type Reply = Result<Vec<Bytes>, RequestError>;

/// What node A's handlers and allow function observed, for the demo's report.
#[derive(Default)]
struct Seen {
    allow_calls: Vec<(String, Option<String>)>,
    whoami: Vec<(String, String)>,
}

/// Registers the demo commands on a builder: `demo.echo`, `demo.time`, `demo.whoami` (need
/// `basic`) and `admin.secret` (needs `admin`).
fn register_demo(b: &mut Builder, seen: &Arc<Mutex<Seen>>) -> Result<(), lokimq::Error> {
    let up = Stopwatch::start();
    let seen = Arc::clone(seen);
    b.add_category("demo", AuthLevel::Basic)?
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

/// A request, waited for within `budget`; returns the reply and how long it took.
fn ask(
    node: &LokiMq,
    conn: &ConnectionId,
    command: &str,
    data: &[&str],
    budget: Duration,
) -> Result<(Reply, Duration), String> {
    let (tx, rx) = mpsc::channel();
    let t = Stopwatch::start();
    let data: Vec<Bytes> = data.iter().map(|s| Bytes::from(s.to_string())).collect();
    node.request(conn, command.to_owned(), data, move |r| {
        let _ = tx.send(r);
    })
    .map_err(|e| format!("{command}: {e}"))?;
    let r = rx
        .recv_timeout(budget)
        .map_err(|_| format!("{command}: no reply within {}", ms(budget)))?;
    Ok((r, t.elapsed()))
}

fn wait_connect(
    rx: &Receiver<Result<ConnectionId, String>>,
    budget: Duration,
) -> Result<ConnectionId, String> {
    match rx.recv_timeout(budget) {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(why)) => Err(format!("connection failed: {why}")),
        Err(_) => Err(format!("not connected within {}", ms(budget))),
    }
}

fn connect(
    node: &LokiMq,
    addr: &Address,
    budget: Duration,
) -> Result<(ConnectionId, Duration), String> {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let t = Stopwatch::start();
    let opts = ConnectOptions {
        timeout: Some(budget),
        ..ConnectOptions::default()
    };
    node.connect_remote(
        addr,
        move |c| {
            let _ = tx.send(Ok(c));
        },
        move |_, why| {
            let _ = tx2.send(Err(why));
        },
        opts,
    )
    .map_err(|e| e.to_string())?;
    let c = wait_connect(&rx, budget + Duration::from_secs(1))?;
    Ok((c, t.elapsed()))
}

/// Exits the process if the demo overruns its budget by more than a grace period (a stuck
/// shutdown must not hang a script).
fn watchdog(limit: Duration) {
    let grace = limit + Duration::from_secs(5);
    let spawned = std::thread::Builder::new()
        .name(String::from("watchdog"))
        .spawn(move || {
            std::thread::sleep(grace);
            eprintln!(
                "lokimq demo: FAILED: still running after {}s",
                grace.as_secs()
            );
            std::process::exit(2);
        });
    if spawned.is_err() {
        eprintln!("lokimq demo: warning: no watchdog thread");
    }
}

/// The demo: node A listens (CURVE by default) with request commands; node B connects and
/// asks. Every check failing is an error (non-zero exit).
pub(crate) fn demo(timeout: Duration, port: u16, curve: bool) -> Result<(), String> {
    watchdog(timeout);
    let total = Stopwatch::start();
    let budget = |what: &str| -> Result<Duration, String> {
        let left = total.remaining(timeout);
        if left.is_zero() {
            Err(format!("out of time before {what}"))
        } else {
            Ok(left)
        }
    };
    let mode = if curve { "CURVE-encrypted" } else { "plain" };
    println!("lokimq demo: two nodes in one process, talking {mode} ZMTP over loopback TCP");

    // Node A: the server.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut a = LokiMq::builder();
    a.config_mut().general_workers = 2;
    register_demo(&mut a, &seen).map_err(|e| e.to_string())?;
    let seen_allow = Arc::clone(&seen);
    let bind = SocketAddr::from(([127, 0, 0, 1], port));
    let listen = if curve {
        Listen::curve(bind)
    } else {
        Listen::plain(bind)
    }
    .map_err(|e| e.to_string())?
    .allow(move |ip, key, _sn| {
        if let Ok(mut s) = seen_allow.lock() {
            s.allow_calls.push((ip.to_owned(), key.map(|k| k.to_hex())));
        }
        AuthLevel::Basic
    });
    a.listen(listen);
    let t = Stopwatch::start();
    let node_a = a
        .start()
        .map_err(|e| format!("node A did not start: {e}"))?;
    let addr = node_a
        .bound_addresses()
        .first()
        .cloned()
        .ok_or("node A has no listener")?;
    println!("node A  pubkey {}", node_a.pubkey().to_hex());
    println!(
        "        listening on {addr}   (started in {})",
        ms(t.elapsed())
    );

    // Node B: the client.
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 2;
    let node_b = b
        .start()
        .map_err(|e| format!("node B did not start: {e}"))?;
    println!("node B  pubkey {}", node_b.pubkey().to_hex());

    let (conn, took) = connect(&node_b, &addr, budget("connecting")?)?;
    println!("B -> A  connected ({conn}) in {}", ms(took));

    let (r, took) = ask(
        &node_b,
        &conn,
        "demo.echo",
        &["hello", "world"],
        budget("demo.echo")?,
    )?;
    let echoed = r.map_err(|e| format!("demo.echo failed: {e}"))?;
    println!(
        "B -> A  demo.echo [\"hello\", \"world\"] -> {}  ({})",
        text(&echoed),
        ms(took)
    );
    if echoed != [Bytes::from("hello"), Bytes::from("world")] {
        return Err(format!("demo.echo returned {}", text(&echoed)));
    }

    let (r, took) = ask(&node_b, &conn, "demo.whoami", &[], budget("demo.whoami")?)?;
    let who = r.map_err(|e| format!("demo.whoami failed: {e}"))?;
    println!("B -> A  demo.whoami -> {}  ({})", text(&who), ms(took));
    let auth = who.first().map(|f| String::from_utf8_lossy(f).into_owned());
    if auth.as_deref() != Some("basic") {
        return Err(format!(
            "A's handler saw auth level {auth:?}, expected basic"
        ));
    }
    if curve {
        let key = who.get(1).map(|f| String::from_utf8_lossy(f).into_owned());
        if key.as_deref() != Some(node_b.pubkey().to_hex().as_str()) {
            return Err(format!("A's handler saw key {key:?}, not B's"));
        }
    }

    let (r, took) = ask(&node_b, &conn, "demo.time", &[], budget("demo.time")?)?;
    let time = r.map_err(|e| format!("demo.time failed: {e}"))?;
    println!("B -> A  demo.time -> {}  ({})", text(&time), ms(took));

    let (r, took) = ask(&node_b, &conn, "admin.secret", &[], budget("admin.secret")?)?;
    println!(
        "B -> A  admin.secret (needs admin) -> {r:?}  ({})",
        ms(took)
    );
    if r != Err(RequestError::Forbidden) {
        return Err(format!("admin.secret should be FORBIDDEN, got {r:?}"));
    }

    let (r, took) = ask(&node_b, &conn, "demo.nope", &[], budget("demo.nope")?)?;
    println!(
        "B -> A  demo.nope (no such command) -> {r:?}  ({})",
        ms(took)
    );
    if r != Err(RequestError::UnknownCommand) {
        return Err(format!("demo.nope should be UNKNOWNCOMMAND, got {r:?}"));
    }

    {
        let s = seen.lock().map_err(|_| "a demo handler panicked")?;
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
    }

    let t = Stopwatch::start();
    drop(node_b);
    drop(node_a);
    println!("both nodes shut down in {}", ms(t.elapsed()));
    println!("demo OK in {}", ms(total.elapsed()));
    Ok(())
}

/// Prints a fresh keypair.
pub(crate) fn keygen() {
    let kp = Keypair::generate(&mut OsRng);
    println!("public (hex):     {}", kp.public().to_hex());
    println!(
        "public (base32z): {}",
        base32z::encode(kp.public().as_bytes())
    );
    println!("secret (hex):     {}", hex::encode(kp.secret().to_bytes()));
}

/// An echo server on `address` until `seconds` pass (or forever).
pub(crate) fn listen(
    address: &str,
    curve: bool,
    auth: &str,
    seconds: Option<Duration>,
) -> Result<(), String> {
    let level: AuthLevel = auth
        .parse()
        .map_err(|e| format!("bad --auth {auth:?}: {e}"))?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut b = LokiMq::builder();
    register_demo(&mut b, &seen).map_err(|e| e.to_string())?;
    let listen = if curve {
        Listen::curve(address)
    } else {
        Listen::plain(address)
    }
    .map_err(|e| e.to_string())?
    .allow(move |ip, key, _| {
        tracing::info!("connection from {ip} key {key:?}: {level}");
        level
    });
    b.listen(listen);
    let node = b.start().map_err(|e| e.to_string())?;
    for a in node.bound_addresses() {
        println!("listening on {}", a.full_address(Encoding::Base32z));
    }
    println!("commands: demo.echo, demo.time, demo.whoami (basic), admin.secret (admin)");
    match seconds {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::park();
        },
    }
    Ok(())
}

/// One request to `address`.
pub(crate) fn request(
    address: &str,
    command: &str,
    data: Vec<String>,
    timeout: Duration,
) -> Result<(), String> {
    let addr = Address::parse(address).map_err(|e| e.to_string())?;
    let node = LokiMq::builder().start().map_err(|e| e.to_string())?;
    let total = Stopwatch::start();
    let (conn, took) = connect(&node, &addr, timeout)?;
    tracing::info!("connected in {}", ms(took));
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    let left = total.remaining(timeout).max(Duration::from_millis(1));
    let (r, took) = ask(&node, &conn, command, &data, left)?;
    match r {
        Ok(frames) => {
            println!("{}  ({})", text(&frames), ms(took));
            Ok(())
        }
        Err(e) => Err(format!("{command} failed: {e}")),
    }
}
