//! A small LokiMQ server: CURVE and plain listeners, categories with different access rules,
//! request commands, an alias, a `send_back`, and a reply sent later from another thread.
//!
//! ```sh
//! cargo run -p lokimq --example server                 # until Ctrl-C
//! cargo run -p lokimq --example server -- --once       # until one client says bye (≤ 60 s)
//! ```
//!
//! Then, in another terminal, `cargo run -p lokimq --example client`: the server writes its
//! CURVE address to a file in the temporary directory and the client reads it from there.
//!
//! Options:
//!
//! * `--curve ADDR` — where to listen with CURVE (default `127.0.0.1:5566`, port 0 = any).
//! * `--plain ADDR` — where to listen without encryption (default `127.0.0.1:5567`).
//! * `--admin HEXKEY` — grant admin to this client key on the CURVE listener (repeatable).
//! * `--addr-file PATH` — where to write the CURVE address (default: the temp dir).
//! * `--once` — exit after the first client sends `public.bye`.
//! * `--seconds N` — exit after N seconds (`--once` implies 60 unless given).
//!
//! The commands it offers:
//!
//! | command | access | kind | what |
//! |---|---|---|---|
//! | `public.echo` | none | request | replies with its data |
//! | `legacy.echo` | — | alias | an old name for `public.echo` |
//! | `public.whoami` | none | request | replies `[auth level, client key (hex), client address]` |
//! | `public.hello` | none | command | sends `client.greeting` back to the caller |
//! | `public.later` | none | request | replies from another thread after a short delay |
//! | `public.ignore` | none | request | never replies (the caller times out) |
//! | `public.bye` | none | command | the client is done (ends a `--once` server) |
//! | `basic.sum` | basic | request | adds its (decimal) arguments |
//! | `admin.stats` | admin | request | the node's counters |
//! | `sn.status` | caller must be a service node | request | — |
//! | `local.status` | this node must be a service node | request | — |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use lokimq::{Access, AuthLevel, Bytes, LokiMq, PublicKey, Stopwatch};

/// The command line, parsed by hand so the example needs no argument-parsing crate.
struct Options {
    curve: SocketAddr,
    plain: SocketAddr,
    admins: Vec<PublicKey>,
    addr_file: PathBuf,
    once: bool,
    seconds: Option<u64>,
}

/// Where the server leaves its address for the client example to find.
fn default_addr_file() -> PathBuf {
    std::env::temp_dir().join("lokimq-example-server.addr")
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        curve: SocketAddr::from(([127, 0, 0, 1], 5566)),
        plain: SocketAddr::from(([127, 0, 0, 1], 5567)),
        admins: Vec::new(),
        addr_file: default_addr_file(),
        once: false,
        seconds: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--curve" => opts.curve = parse_socket(&value("--curve")?)?,
            "--plain" => opts.plain = parse_socket(&value("--plain")?)?,
            "--admin" => {
                let hex = value("--admin")?;
                let key = lokimq::core::encoding::hex::decode_array::<32>(&hex)
                    .map_err(|e| format!("--admin {hex}: {e}"))?;
                opts.admins.push(PublicKey::from_bytes(key));
            }
            "--addr-file" => opts.addr_file = PathBuf::from(value("--addr-file")?),
            "--once" => opts.once = true,
            "--seconds" => {
                let s = value("--seconds")?;
                opts.seconds = Some(s.parse().map_err(|e| format!("--seconds {s}: {e}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.once && opts.seconds.is_none() {
        // A --once server is meant for scripts and CI: it must end even if no client comes.
        opts.seconds = Some(60);
    }
    Ok(opts)
}

fn parse_socket(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|e| format!("{text:?} is not IP:PORT: {e}"))
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("server: {e}");
            eprintln!(
                "usage: server [--curve IP:PORT] [--plain IP:PORT] [--admin HEXKEY]... \
                 [--addr-file PATH] [--once] [--seconds N]"
            );
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the server; `Ok(false)` means a `--once` server gave up waiting for its client.
fn run(opts: Options) -> Result<bool, Box<dyn std::error::Error>> {
    // Everything about the node is fixed before it starts: keys, commands, listeners. The
    // builder generates a fresh x25519 keypair unless given one (`Builder::keypair`).
    let mut b = LokiMq::builder();

    // `public.bye` tells the main thread below that a client is done. Command callbacks run
    // on worker threads, so they talk to the rest of the program through channels (or any
    // other thread-safe type).
    let (bye_tx, bye_rx) = mpsc::channel::<String>();

    // A category's access applies to all its commands. `AuthLevel::None` lets anyone in.
    b.add_category("public", AuthLevel::None)?
        // A request command: the caller waits for `send_reply`.
        .add_request_command("public", "echo", |m| {
            let data = m.take_data();
            m.send_reply(data);
        })?
        .add_request_command("public", "whoami", |m| {
            let level = m.access().auth.as_str();
            let key = m.conn().pubkey().map(PublicKey::to_hex).unwrap_or_default();
            let remote = m.remote().to_owned();
            m.send_reply([Bytes::from(level), Bytes::from(key), Bytes::from(remote)]);
        })?
        // A plain command (no reply expected). `send_back` sends a *new* command to whoever
        // sent this one; the caller must have registered `client.greeting` to receive it.
        .add_command("public", "hello", |m| {
            let text = format!("hello, {}!", m.remote());
            m.send_back("client.greeting", [text]);
        })?
        // A reply that is not ready when the callback returns. `send_later()` captures where
        // the answer goes; the worker is free at once and the answer is sent from another
        // thread. (A real server would hand this to its own thread pool, a database
        // callback, a timer, … rather than spawn a thread per request.)
        .add_request_command("public", "later", |m| {
            let later = m.send_later();
            let data = m.take_data();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let mut reply = vec![Bytes::from_static(b"later:")];
                reply.extend(data);
                if let Err(e) = later.reply(reply) {
                    eprintln!("server: deferred reply failed: {e}");
                }
            });
        })?
        // Never answering is allowed; the caller's request times out (`RequestError::Timeout`).
        .add_request_command("public", "ignore", |_m| {})?
        .add_command("public", "bye", move |m| {
            let _ = bye_tx.send(m.conn().to_string());
        })?;

    // Old clients may still call `legacy.echo`; an alias rewrites the name before lookup, and
    // the target's access rules apply. The `legacy` category does not need to exist.
    b.add_command_alias("legacy.echo", "public.echo")?;

    // `basic` needs a connection granted at least `AuthLevel::Basic` by the listener's allow
    // function below; a caller with less gets `FORBIDDEN`.
    b.add_category("basic", AuthLevel::Basic)?
        .add_request_command("basic", "sum", |m| {
            let mut total: i64 = 0;
            for part in m.data() {
                let parsed = std::str::from_utf8(part)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok());
                match parsed {
                    Some(n) => total = total.saturating_add(n),
                    None => {
                        m.send_reply(["error", "arguments must be decimal integers"]);
                        return;
                    }
                }
            }
            m.send_reply([total.to_string()]);
        })?;

    // `admin` needs `AuthLevel::Admin`: only keys given with --admin get it (and in-process
    // connections, which are always admin).
    b.add_category("admin", AuthLevel::Admin)?
        .add_request_command("admin", "stats", |m| {
            let text = match m.handle().stats() {
                Ok(s) => format!(
                    "connections={} pending_requests={} dropped_commands={}",
                    s.connections, s.pending_requests, s.dropped_commands
                ),
                Err(e) => format!("unavailable: {e}"),
            };
            m.send_reply([text]);
        })?;

    // Access can also demand service-node status. `remote_sn`: the *caller* must be in the
    // active service-node set (else `FORBIDDEN_SN`); `local_sn`: *this* node must run as a
    // service node (else `NOT_A_SERVICE_NODE`). This example is neither, so both refuse.
    b.add_category("sn", Access::new(AuthLevel::None, true, false))?
        .add_request_command("sn", "status", |m| m.send_reply(["ok"]))?;
    b.add_category("local", Access::new(AuthLevel::None, false, true))?
        .add_request_command("local", "status", |m| m.send_reply(["ok"]))?;

    // The allow function decides each incoming connection: (IP, client key, is an active
    // service node) -> level. It runs on the proxy thread, so it must be quick.
    let admins = opts.admins.clone();
    b.listen_curve(opts.curve, move |ip, key, _is_sn| {
        let level = match key {
            Some(k) if admins.contains(k) => AuthLevel::Admin,
            _ => AuthLevel::Basic,
        };
        println!("accepted a CURVE connection from {ip} as {level}");
        level
    })?;
    // Plain connections are neither encrypted nor authenticated: grant them the least.
    b.listen_plain(opts.plain, |ip, _key, _is_sn| {
        println!("accepted a plain connection from {ip} as none");
        AuthLevel::None
    })?;

    // `start` binds every listener (a failure is an error here, not later) and starts the
    // node's threads. From now on the registry is frozen.
    let server = b.start()?;

    println!("server pubkey: {}", server.pubkey());
    // The bound addresses come in the order the listeners were added, with the actual ports
    // and, for CURVE, the server's key: exactly what a client needs.
    let curve_addr = server.bound_addresses()[0].clone();
    let plain_addr = server.bound_addresses()[1].clone();
    println!("listening (curve): {curve_addr}");
    println!("listening (plain): {plain_addr}");
    match std::fs::write(&opts.addr_file, format!("{curve_addr}\n")) {
        Ok(()) => println!("address written to {}", opts.addr_file.display()),
        Err(e) => eprintln!("server: cannot write {}: {e}", opts.addr_file.display()),
    }

    // The node runs on its own threads; this thread only waits for a reason to stop.
    let clock = Stopwatch::start();
    let limit = opts.seconds.map(Duration::from_secs);
    let finished = loop {
        let wait = limit.map_or(Duration::from_secs(3600), |l| clock.remaining(l));
        if limit.is_some() && wait.is_zero() {
            println!("time limit reached");
            break !opts.once;
        }
        match bye_rx.recv_timeout(wait) {
            Ok(who) => {
                println!("bye from {who}");
                if opts.once {
                    break true;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break true,
        }
    };

    // Dropping the node (or `shutdown()`) stops it cleanly: running handlers finish, queued
    // work is discarded, connections are closed and every thread is joined.
    server.shutdown();
    if opts.addr_file.exists() {
        let _ = std::fs::remove_file(&opts.addr_file);
    }
    println!("server stopped");
    Ok(finished)
}
