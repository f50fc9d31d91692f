//! `lokimq`: the command-line face of the native node.
//!
//! * `lokimq demo` — two nodes in one process talk over CURVE on loopback (the main job).
//! * `lokimq keygen` — prints a fresh x25519 keypair.
//! * `lokimq listen ADDRESS` — an echo server.
//! * `lokimq request ADDRESS COMMAND [DATA…]` — one request, reply printed.

mod demo;
mod logger;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lokimq",
    version,
    about = "LokiMQ/OxenMQ in Rust: demo, keys, server, client"
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start two nodes on loopback; node B connects to node A over CURVE and makes requests.
    Demo {
        /// Give up (exit 1) after this many seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Port for node A (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Use a plain (unencrypted) listener instead of CURVE.
        #[arg(long)]
        plain: bool,
    },
    /// Print a fresh x25519 keypair (hex and z-base-32).
    Keygen,
    /// Run an echo server (`demo.echo`, `demo.time`, `demo.whoami`) until killed.
    Listen {
        /// Where to listen, e.g. tcp://127.0.0.1:5555 or ipc:///tmp/lokimq.sock
        address: String,
        /// Listen with CURVE (the address to connect to is printed).
        #[arg(long)]
        curve: bool,
        /// Auth level granted to every connection: none, basic or admin.
        #[arg(long, default_value = "basic")]
        auth: String,
        /// Stop after this many seconds (default: run until killed).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Send one request and print the reply frames.
    Request {
        /// Where to connect: tcp://HOST:PORT, curve://HOST:PORT/PUBKEY, ipc://PATH, …
        address: String,
        /// The command, e.g. demo.echo
        command: String,
        /// Data frames.
        data: Vec<String>,
        /// Seconds to wait for the connection and the reply.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo provokes FORBIDDEN and UNKNOWNCOMMAND on purpose; the node logs those at warn
    // level, which would only clutter its report.
    let quiet = matches!(cli.command, Command::Demo { .. });
    logger::init(cli.verbose, quiet);
    let result = match cli.command {
        Command::Demo {
            timeout,
            port,
            plain,
        } => demo::demo(Duration::from_secs(timeout), port, !plain),
        Command::Keygen => {
            demo::keygen();
            Ok(())
        }
        Command::Listen {
            address,
            curve,
            auth,
            seconds,
        } => demo::listen(&address, curve, &auth, seconds.map(Duration::from_secs)),
        Command::Request {
            address,
            command,
            data,
            timeout,
        } => demo::request(&address, &command, data, Duration::from_secs(timeout)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lokimq: {e}");
            ExitCode::FAILURE
        }
    }
}
