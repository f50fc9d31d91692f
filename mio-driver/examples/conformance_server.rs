//! `conformance_server`: a LokiMQ node with a fixed set of commands, for external acceptance
//! tests that drive it over the wire (with libzmq, OxenMQ, or raw sockets).
//!
//! # Contract
//!
//! External harnesses depend on everything in this section; change it only together with them.
//!
//! ```text
//! cargo build --release -p lokimq --example conformance_server
//! conformance_server --curve tcp://127.0.0.1:PORT1 --plain tcp://127.0.0.1:PORT2 --key-file FILE
//!                    [--allow PUBKEY=LEVEL ...] [--service-node] [--active-sn PUBKEY ...]
//! ```
//!
//! * `PUBKEY` is an x25519 public key as 64 hex digits (either case), 52 z-base-32 characters
//!   or 43 base64 characters optionally followed by one `=`, the encodings OxenMQ addresses
//!   accept.
//! * `FILE` holds the node's 32-byte x25519 secret key as 64 hex digits of either case (one
//!   trailing `\n` or `\r\n` allowed, nothing else). If it does not exist, a new key is
//!   generated and written there (lower-case hex and a newline, mode 0600).
//! * Once both listeners are bound, the first line on stdout is `pubkey <64 lowercase hex>`
//!   (flushed). The node then serves until SIGTERM or SIGINT and exits 0 within 5 s: running
//!   `slow.sleep` handlers are cut short (without a reply), and if the orderly shutdown (which
//!   lingers for peers to close their end) is not done after 3 s, the process exits anyway.
//! * `--allow KEY=LEVEL` (repeatable; LEVEL is `none`, `basic` or `admin`) sets the auth level of
//!   CURVE clients with that key; every other CURVE client, and every plain client, gets `none`.
//!   One key given two different levels is an error.
//! * `--active-sn KEY` (repeatable) puts KEY in the active service-node set; whether a caller is
//!   a service node is judged per message, from its CURVE key.
//! * `--service-node` runs the node itself as a service node (enables `local_sn` categories).
//! * Bad arguments or an unusable key file: a message on stderr and a non-zero exit.
//!
//! Everything else is at OxenMQ's defaults: frames up to 1 MiB (counted per frame as libzmq
//! counts them, so under CURVE the encrypted body), a 10 s handshake timeout, ZMTP heartbeats
//! answered, ZMTP 1.0/2.0 peers refused. Two general worker threads.
//!
//! Commands:
//!
//! | command | kind | behaviour |
//! |---|---|---|
//! | `public.echo` | request | replies with its data parts unchanged |
//! | `public.hello` | command | sends `public.hi` back with the same data parts |
//! | `public.whoami` | request | replies `[caller pubkey hex or "" on plain, auth level, "1"/"0" caller is an active SN]` |
//! | `public.count` | command | increments a counter |
//! | `public.count_get` | request | replies the counter in decimal |
//! | `basic.echo`, `admin.echo` | request | echo, needing auth level basic / admin |
//! | `sn.echo` | request | echo, the caller must be an active service node |
//! | `local.echo` | request | echo, this node must be a service node |
//! | `slow.sleep` | request | sleeps the milliseconds in its first data part (decimal, ≤ 60000), then replies `["done"]`; bad input replies `["error", reason]` |
//! | `pub.e` | alias | of `public.echo` |
//!
//! `public` is access none, 0 reserved threads, queue limit 200; `slow` is access none, 0
//! reserved threads, queue limit 2 (commands arriving while both workers are busy and two are
//! already queued are dropped, without a reply, as OxenMQ does); `basic`, `admin`, `sn` and
//! `local` use the default queue limit (200).
//!
//! Logging goes to stderr at warn level; `RUST_LOG` overrides it.

use lokimq::{CategoryOptions, QueueLimit};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use clap::Parser;
use lokimq::core::keys::KeyError;
use lokimq::{
    Access, AuthLevel, Builder, Bytes, Listen, LokiMq, Message, PublicKey, ShutdownSignals,
    Stopwatch, keyfile,
};

/// Longest sleep `slow.sleep` accepts, so a request cannot pin a worker forever.
const MAX_SLEEP_MS: u64 = 60_000;
/// After a signal, exit by this time even if shutdown is still waiting (for a peer's EOF, say):
/// the contract promises an exit within 5 s.
const EXIT_DEADLINE: Duration = Duration::from_secs(3);
const GENERAL_WORKERS: u16 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "conformance_server",
    about = "A LokiMQ node with a fixed command set, for acceptance tests"
)]
struct Args {
    /// Address of the CURVE listener, e.g. tcp://127.0.0.1:5555
    #[arg(long, value_name = "ADDRESS")]
    curve: String,
    /// Address of the plain (unencrypted) listener, e.g. tcp://127.0.0.1:5556
    #[arg(long, value_name = "ADDRESS")]
    plain: String,
    /// File with the node's x25519 secret key in hex (created if missing).
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Auth level of a CURVE client: PUBKEY=none|basic|admin (repeatable).
    #[arg(long, value_name = "PUBKEY=LEVEL", value_parser = parse_allow)]
    allow: Vec<(PublicKey, AuthLevel)>,
    /// Run this node as a service node.
    #[arg(long)]
    service_node: bool,
    /// A key in the active service-node set (repeatable).
    #[arg(long, value_name = "PUBKEY", value_parser = parse_pubkey)]
    active_sn: Vec<PublicKey>,
}

fn parse_pubkey(text: &str) -> Result<PublicKey, String> {
    text.parse().map_err(|e: KeyError| e.to_string())
}

fn parse_allow(text: &str) -> Result<(PublicKey, AuthLevel), String> {
    let (key, level) = text
        .rsplit_once('=')
        .ok_or_else(|| String::from("expected PUBKEY=LEVEL"))?;
    let key = parse_pubkey(key)?;
    // `denied` refuses connections; it is not a level to grant.
    match level.parse() {
        Ok(AuthLevel::Denied) | Err(_) => Err(format!(
            "unknown level {level:?} (expected none, basic or admin)"
        )),
        Ok(level) => Ok((key, level)),
    }
}

/// Set once a signal arrived: wakes sleeping `slow.sleep` handlers so shutdown (which waits for
/// running handlers) is not held up by them.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    fn trigger(&self) {
        *self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    /// Sleeps `d` unless stopped first; true if the whole time passed.
    fn sleep(&self, d: Duration) -> bool {
        let clock = Stopwatch::start();
        let mut stopped = self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if *stopped {
                return false;
            }
            let left = clock.remaining(d);
            if left.is_zero() {
                return true;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

fn echo(m: &mut Message) {
    let data = m.take_data();
    m.send_reply(data);
}

fn sleep_request(m: &mut Message, stop: &Stop) {
    let ms = match m.data().first() {
        None => Err(String::from("missing the duration (milliseconds)")),
        Some(part) => std::str::from_utf8(part)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&ms| ms <= MAX_SLEEP_MS)
            .ok_or_else(|| format!("the duration must be 0..={MAX_SLEEP_MS} decimal milliseconds")),
    };
    match ms {
        Err(why) => m.send_reply([Bytes::from_static(b"error"), Bytes::from(why)]),
        Ok(ms) => {
            // Interrupted by shutdown: the node discards replies then anyway.
            if stop.sleep(Duration::from_millis(ms)) {
                m.send_reply(["done"]);
            }
        }
    }
}

fn register(b: &mut Builder, stop: &Arc<Stop>) -> Result<(), lokimq::Error> {
    let counter = Arc::new(AtomicU64::new(0));
    let (count, count_get) = (Arc::clone(&counter), counter);
    b.add_category("public", CategoryOptions::new(AuthLevel::None))?
        .add_request_command("public", "echo", echo)?
        .add_command("public", "hello", |m| {
            let data = m.take_data();
            m.send_back("public.hi", data);
        })?
        .add_request_command("public", "whoami", |m| {
            let key = m.conn().pubkey().map(PublicKey::to_hex).unwrap_or_default();
            let access = m.access();
            let sn = if access.remote_sn { "1" } else { "0" };
            m.send_reply([
                Bytes::from(key),
                Bytes::from_static(access.auth.as_str().as_bytes()),
                Bytes::from_static(sn.as_bytes()),
            ]);
        })?
        .add_command("public", "count", move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        })?
        .add_request_command("public", "count_get", move |m| {
            m.send_reply([count_get.load(Ordering::SeqCst).to_string()]);
        })?
        .add_category("basic", AuthLevel::Basic)?
        .add_request_command("basic", "echo", echo)?
        .add_category("admin", AuthLevel::Admin)?
        .add_request_command("admin", "echo", echo)?
        .add_category("sn", Access::new(AuthLevel::None, true, false))?
        .add_request_command("sn", "echo", echo)?
        .add_category("local", Access::new(AuthLevel::None, false, true))?
        .add_request_command("local", "echo", echo)?
        .add_category(
            "slow",
            CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::At(2)),
        )?;
    let stop = Arc::clone(stop);
    b.add_request_command("slow", "sleep", move |m| sleep_request(m, &stop))?
        .add_command_alias("pub.e", "public.echo")?;
    Ok(())
}

fn run(args: Args) -> Result<(), String> {
    let mut allow = BTreeMap::new();
    for (key, level) in args.allow {
        if let Some(old) = allow.insert(key, level) {
            if old != level {
                return Err(format!(
                    "--allow gives {} two levels ({old} and {level})",
                    key.to_hex()
                ));
            }
        }
    }
    let (keypair, _created) = keyfile::load_or_create(&args.key_file).map_err(|e| e.to_string())?;

    // Installed before the node starts, so a signal is never missed once the pubkey is out.
    let mut signals = ShutdownSignals::install()
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;

    let stop = Arc::new(Stop::default());
    let mut b = LokiMq::builder();
    b.keypair(keypair).service_node(args.service_node);
    b.config_mut().general_workers = GENERAL_WORKERS;
    if !args.active_sn.is_empty() {
        b.set_active_sns(args.active_sn);
    }
    register(&mut b, &stop).map_err(|e| format!("registering commands: {e}"))?;
    let curve = Listen::curve(args.curve.as_str())
        .map_err(|e| format!("--curve {}: {e}", args.curve))?
        .allow(move |_ip, key, _sn| {
            key.and_then(|k| allow.get(k))
                .copied()
                .unwrap_or(AuthLevel::None)
        });
    let plain = Listen::plain(args.plain.as_str())
        .map_err(|e| format!("--plain {}: {e}", args.plain))?
        .allow(|_, _, _| AuthLevel::None);
    b.listen(curve).listen(plain);
    let node = b.start().map_err(|e| e.to_string())?;

    let mut out = io::stdout().lock();
    writeln!(out, "pubkey {}", node.pubkey().to_hex())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);

    signals.wait();
    stop.trigger();
    std::thread::spawn(|| {
        std::thread::sleep(EXIT_DEADLINE);
        tracing::warn!("shutdown is taking too long; exiting anyway");
        std::process::exit(0);
    });
    node.shutdown();
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
        .from_env_lossy();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_thread_names(true)
        .try_init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance_server: {e}");
            ExitCode::FAILURE
        }
    }
}
