//! `lokimq`: the command-line face of the native node.
//!
//! * `lokimq demo [--plain]` — two nodes in one process talk over CURVE on loopback: requests,
//!   errors, a batch, a timer and a throughput figure.
//! * `lokimq keygen [--out FILE [--force]]` — a fresh x25519 keypair.
//! * `lokimq serve --listen ADDR… [--key-file F] [--allow PUBKEY=LEVEL…]` — a node with the
//!   `echo` category, until SIGINT/SIGTERM.
//! * `lokimq call ADDRESS COMMAND [ARG…]` — one request (or `--send`: one command), reply parts
//!   printed one per line.
//!
//! # Output
//!
//! * `keygen`: `pubkey hex: HEX`, `pubkey base32z: Z32`, and `secret hex: HEX` unless `--out`
//!   got the secret (a file holding 64 lower-case hex digits and a newline, mode 0600).
//! * `serve`: `listening on ADDRESS` per listener, in `--listen` order, with the real port;
//!   CURVE addresses carry the node's key in z-base-32 (`curve://HOST:PORT/KEY`,
//!   `ipc+curve://PATH/KEY`). Logs (`-v` shows each connection and its level) go to stderr.
//! * `call`: one line per reply part: text (UTF-8, with `\\`, `\n`, `\t`, `\r` and `\xNN`
//!   escapes so a part is one line), `--hex`, or `--bt` (compact JSON; non-UTF-8 byte strings
//!   as `{"hex":"…"}`, non-UTF-8 dict keys as `"hex:…"`). `--send` prints nothing.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (a node could not start or bind, I/O error, a demo check failed, a reply part that is not bt under `--bt`, `NO_REPLY_TAG`, refusing to overwrite a key file) |
//! | 2 | usage error (clap: unknown option, missing or malformed argument, bad `--allow` or `--timeout`) |
//! | 3 | `TIMEOUT`: connected, but no reply within `--timeout` |
//! | 4 | `FORBIDDEN`, `FORBIDDEN_SN` or `NOT_A_SERVICE_NODE`: the remote refused the command (the message names which) |
//! | 5 | `UNKNOWNCOMMAND`: the remote has no such command |
//! | 6 | connection failed: no connection (TCP/unix connect, ZMTP/CURVE handshake, `HELLO`) within `--timeout` — e.g. nothing listening, or a wrong server key |
//! | 7 | bad key file or address: unreadable or malformed key file, an address that does not parse, a listen key that is not ours |
//!
//! Every failure prints one line `error: …` on stderr naming what happened.

mod call;
mod demo;
mod fail;
mod keys;
mod logger;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::fail::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure (node could not start or bind, I/O error, demo check failed, ...)
  2  usage error (bad option or argument, bad --allow or --timeout)
  3  TIMEOUT: connected, but no reply within --timeout
  4  FORBIDDEN, FORBIDDEN_SN or NOT_A_SERVICE_NODE: the remote refused the command
  5  UNKNOWNCOMMAND: the remote has no such command
  6  connection failed (nothing listening, handshake failed, wrong server key, ...)
  7  bad key file or address";

#[derive(Parser, Debug)]
#[command(
    name = "lokimq",
    version,
    about = "LokiMQ/OxenMQ in Rust: demo, keys, server, client",
    after_help = EXIT_CODES
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace; RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Two nodes in one process talking over CURVE on 127.0.0.1: a guided tour.
    ///
    /// Node B connects to node A, makes requests, provokes FORBIDDEN and UNKNOWNCOMMAND, runs
    /// a batch and a timer, then measures pipelined request throughput. Every step is printed
    /// and checked; any failed check exits 1.
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
    /// Generate an x25519 keypair.
    ///
    /// Prints `pubkey hex: …` and `pubkey base32z: …`, then either `secret hex: …` (without
    /// --out) or nothing more: the secret goes to FILE.
    #[command(after_help = EXIT_CODES)]
    Keygen(KeygenArgs),
    /// Run a node with the `echo` category until SIGINT or SIGTERM.
    ///
    /// Commands (auth level none): request `echo.echo` replies with its data parts unchanged;
    /// `echo.ping` as a request replies `pong`, and as a plain command (without data parts) it
    /// sends back `echo.pong`.
    ///
    /// Once every listener is bound, prints one line per listener, `listening on ADDRESS`, in
    /// the order given, with the real port; CURVE listeners are printed as
    /// `curve://HOST:PORT/PUBKEY` or `ipc+curve://PATH/PUBKEY` with the key in z-base-32, ready
    /// to pass to `lokimq call`. Exits 0 after a clean shutdown on SIGINT or SIGTERM.
    #[command(after_help = EXIT_CODES)]
    Serve(ServeArgs),
    /// Send one request (or, with --send, one plain command) and print the reply.
    ///
    /// Reply parts are printed one per line. Default (text): a part is printed as UTF-8 with
    /// `\` written `\\`, newline `\n`, tab `\t`, carriage return `\r`, and other control
    /// characters and bytes that are not UTF-8 as `\xNN` (per byte). --hex: each part as
    /// lower-case hex. --bt: each part bt-decoded and printed as one line of compact JSON:
    /// integers as numbers, lists as arrays, dicts as objects, byte strings as JSON strings when
    /// UTF-8 and otherwise as `{"hex":"…"}` (dict keys that are not UTF-8 as the string
    /// `"hex:…"`).
    #[command(alias = "request", after_help = EXIT_CODES)]
    Call(CallArgs),
}

/// `lokimq demo`'s options.
#[derive(Args, Debug)]
struct DemoArgs {
    /// Give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Port for node A (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Use a plain (unencrypted) listener instead of CURVE.
    #[arg(long)]
    plain: bool,
    /// How many pipelined echo requests the throughput step sends.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    requests: u32,
}

/// `lokimq keygen`'s options.
#[derive(Args, Debug)]
struct KeygenArgs {
    /// Write the secret key (64 lower-case hex digits and a newline) to FILE, created with mode
    /// 0600; the secret is then not printed.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "out")]
    force: bool,
}

/// `lokimq serve`'s options.
#[derive(Args, Debug)]
struct ServeArgs {
    /// Where to listen (repeatable): tcp://HOST:PORT (plain), curve://HOST:PORT (CURVE with this
    /// node's key; a /PUBKEY suffix, if given, must be that key), ipc://PATH, ipc+curve://PATH.
    /// Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", required = true, num_args = 1..)]
    listen: Vec<String>,
    /// This node's secret key: 64 hex digits (a trailing newline is fine). A missing file is
    /// created with a fresh key (mode 0600). Without it, a fresh key for this run.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Give the client with this CURVE key (hex or z-base-32) the auth level LEVEL (none, basic
    /// or admin) on CURVE listeners (repeatable). Everyone else, and every plain connection,
    /// gets none.
    #[arg(long, value_name = "PUBKEY=LEVEL", value_parser = keys::parse_allow)]
    allow: Vec<keys::Allow>,
}

/// `lokimq call`'s options.
#[derive(Args, Debug)]
struct CallArgs {
    /// Where to connect, in any OxenMQ form: tcp://HOST:PORT, curve://HOST:PORT/PUBKEY,
    /// ipc://PATH, ipc+curve://PATH/PUBKEY (CURVE if and only if a key is given; hex, z-base-32
    /// or base64).
    address: String,
    /// The command, `category.name`, e.g. echo.echo.
    command: String,
    /// Data parts (UTF-8), in order. Put `--` before them if one starts with `-`.
    args: Vec<String>,
    /// Seconds (fractions allowed) for connecting and the reply together.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    timeout: Duration,
    /// Our secret key (64 hex digits), so a CURVE server sees a stable client key; a missing
    /// file is created with a fresh key (mode 0600). Without it, a fresh key for this run.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Send a plain command instead of a request: exits 0 once the server has accepted the
    /// connection and the command has been written to it (flushed within a short linger).
    #[arg(long, conflicts_with_all = ["hex", "bt"])]
    send: bool,
    /// Print each reply part as lower-case hex.
    #[arg(long, conflicts_with = "bt")]
    hex: bool,
    /// bt-decode each reply part and print it as JSON.
    #[arg(long)]
    bt: bool,
}

/// A `--timeout` value: positive seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(String::from("must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{text}` seconds is too long"))
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Demo(a) => demo::demo(&demo::Options {
            timeout: Duration::from_secs(a.timeout),
            port: a.port,
            curve: !a.plain,
            requests: a.requests,
        }),
        Command::Keygen(a) => keys::keygen(a.out.as_deref(), a.force),
        Command::Serve(a) => serve::serve(&a.listen, a.key_file.as_deref(), &a.allow),
        Command::Call(a) => {
            let format = if a.hex {
                call::Format::Hex
            } else if a.bt {
                call::Format::Bt
            } else {
                call::Format::Text
            };
            call::call(&call::Options {
                address: a.address,
                command: a.command,
                args: a.args,
                timeout: a.timeout,
                key_file: a.key_file,
                send: a.send,
                format,
            })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo provokes FORBIDDEN and UNKNOWNCOMMAND on purpose, and `call` reports an error
    // reply in its own one-line message; the node's warnings about them would only clutter
    // the output (-v brings them back).
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Call(_));
    logger::init(cli.verbose, quiet);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.exit.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_parse_fractions_and_refuse_nonsense() {
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        for bad in ["0", "-1", "abc", "NaN", "inf", "1e300"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
