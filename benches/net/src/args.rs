//! The command line: `SUBCOMMAND [--name value | --flag]...`, and the client options every peer
//! shares.
//!
//! Parsed by hand rather than with clap because this module is shared, by `#[path]`, with
//! `benches/net-zmq-sys` (a crate outside the workspace), which should need nothing beyond
//! `zmq`. Each subcommand names the options it accepts, so a typo in `scripts/bench-net` is an
//! error instead of a silently ignored option.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

/// One parsed command line (the subcommand itself is the caller's business).
#[derive(Debug)]
pub(crate) struct Args {
    values: BTreeMap<String, String>,
    flags: BTreeSet<String>,
}

impl Args {
    /// Parses `argv` (without the program name). `valued` are the options that take a value,
    /// `flags` those that do not (both without the leading `--`). Unknown options, repeated
    /// options, missing values and stray arguments are errors.
    pub(crate) fn parse(argv: &[String], valued: &[&str], flags: &[&str]) -> Result<Self, String> {
        let (sub, rest) = argv.split_first().ok_or("no subcommand given")?;
        let mut args = Self {
            values: BTreeMap::new(),
            flags: BTreeSet::new(),
        };
        let mut it = rest.iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            if valued.contains(&name) {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                if args.values.insert(name.to_owned(), value.clone()).is_some() {
                    return Err(format!("--{name} given twice"));
                }
            } else if flags.contains(&name) {
                if !args.flags.insert(name.to_owned()) {
                    return Err(format!("--{name} given twice"));
                }
            } else {
                return Err(format!("unknown option --{name} for {sub}"));
            }
        }
        Ok(args)
    }

    /// The value of `--name`, if given.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name`, which must be given.
    pub(crate) fn required(&self, name: &str) -> Result<&str, String> {
        self.value(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// `--name` parsed as `T`, or `default` when absent.
    pub(crate) fn parsed<T>(&self, name: &str, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.value(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|e| format!("--{name} {text:?}: {e}")),
        }
    }

    /// Whether the flag `--name` was given.
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }
}

/// What a client does for `--seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `bench.sink` commands, at most [`ONEWAY_WINDOW`] unacknowledged; counts acknowledged
    /// messages.
    Oneway,
    /// `bench.echo` requests, [`PIPELINE_DEPTH`] outstanding at all times; counts replies.
    Pipelined,
    /// One `bench.echo` request at a time; records every round trip.
    Latency,
}

/// Unacknowledged `bench.sink` messages a oneway client allows itself.
pub(crate) const ONEWAY_WINDOW: u64 = 400;
/// Outstanding requests of a pipelined client.
pub(crate) const PIPELINE_DEPTH: u64 = 400;
/// The servers acknowledge every `ACK_EVERY`th `bench.sink` of a connection.
pub(crate) const ACK_EVERY: u64 = 50;

impl Workload {
    /// The name used on the command line and in the JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Oneway => "oneway",
            Self::Pipelined => "pipelined",
            Self::Latency => "latency",
        }
    }

    /// How many messages (oneway) or requests (the others) may be in flight.
    pub(crate) fn window(self) -> u64 {
        match self {
            Self::Oneway => ONEWAY_WINDOW,
            Self::Pipelined => PIPELINE_DEPTH,
            Self::Latency => 1,
        }
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oneway" => Ok(Self::Oneway),
            "pipelined" => Ok(Self::Pipelined),
            "latency" => Ok(Self::Latency),
            _ => Err(String::from("expected oneway, pipelined or latency")),
        }
    }
}

/// The options every client subcommand takes.
pub(crate) const CLIENT_VALUED: &[&str] = &[
    "connect",
    "workload",
    "size",
    "seconds",
    "warmup",
    "server-key",
];
/// The flags every client subcommand takes.
pub(crate) const CLIENT_FLAGS: &[&str] = &["plain"];
/// The options every server subcommand takes.
pub(crate) const SERVER_VALUED: &[&str] = &["listen"];
/// The flags every server subcommand takes.
pub(crate) const SERVER_FLAGS: &[&str] = &["plain"];

/// Where servers listen unless told: loopback, an ephemeral port.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// A client's parsed options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClientOptions {
    /// The server's address as its `READY` line gave it.
    pub(crate) connect: String,
    pub(crate) workload: Workload,
    /// Bytes in the one data part of every message.
    pub(crate) size: usize,
    /// The measured time.
    pub(crate) seconds: Duration,
    /// Unmeasured time before it (connection set-up, the CURVE handshake, warm caches).
    pub(crate) warmup: Duration,
    /// NULL security instead of CURVE.
    pub(crate) plain: bool,
    /// The server's CURVE public key (zmq clients only; lokimq addresses carry it).
    pub(crate) server_key: Option<String>,
}

/// Default warm-up, not counted.
const DEFAULT_WARMUP_S: f64 = 0.3;

fn duration(args: &Args, name: &str, default: f64) -> Result<Duration, String> {
    let secs: f64 = args.parsed(name, default)?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("--{name} {secs}: {e}"))
}

impl ClientOptions {
    /// Reads the client options out of `args`.
    pub(crate) fn from_args(args: &Args) -> Result<Self, String> {
        let seconds = duration(args, "seconds", 2.0)?;
        if seconds.is_zero() {
            return Err(String::from("--seconds must be positive"));
        }
        Ok(Self {
            connect: args.required("connect")?.to_owned(),
            workload: args.required("workload")?.parse()?,
            size: args.parsed("size", 100)?,
            seconds,
            warmup: duration(args, "warmup", DEFAULT_WARMUP_S)?,
            plain: args.flag("plain"),
            server_key: args.value("server-key").map(str::to_owned),
        })
    }

    /// `"curve"` or `"plain"`, for the JSON.
    pub(crate) fn security(&self) -> &'static str {
        if self.plain { "plain" } else { "curve" }
    }
}

/// The payload every message carries: `size` bytes of a fixed, non-constant pattern (so an
/// echo that came back shifted or truncated does not compare equal).
pub(crate) fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// A reply tag for zmq clients: a counter in 15 bytes, the length lokimq (and OxenMQ) use.
pub(crate) fn tag(n: u64) -> [u8; 15] {
    let mut t = [0u8; 15];
    t[..8].copy_from_slice(&n.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn client(s: &str) -> Result<ClientOptions, String> {
        ClientOptions::from_args(&Args::parse(&argv(s), CLIENT_VALUED, CLIENT_FLAGS)?)
    }

    #[test]
    fn parses_values_and_flags() {
        let a = Args::parse(
            &argv("zmq-server --listen 127.0.0.1:0 --plain"),
            &["listen"],
            &["plain"],
        )
        .unwrap();
        assert_eq!(a.value("listen"), Some("127.0.0.1:0"));
        assert!(a.flag("plain"));
        assert_eq!(a.value("other"), None);
        assert!(a.required("other").is_err());
    }

    #[test]
    fn refuses_mistakes() {
        let v = &["listen"][..];
        let f = &["plain"][..];
        assert!(Args::parse(&[], v, f).is_err());
        assert!(Args::parse(&argv("s --lisen x"), v, f).is_err());
        assert!(Args::parse(&argv("s --listen"), v, f).is_err());
        assert!(Args::parse(&argv("s --listen a --listen b"), v, f).is_err());
        assert!(Args::parse(&argv("s --plain --plain"), v, f).is_err());
        assert!(Args::parse(&argv("s stray"), v, f).is_err());
    }

    #[test]
    fn client_options_and_defaults() {
        let o = client("c --connect tcp://127.0.0.1:1 --workload latency --plain").unwrap();
        assert_eq!(o.workload, Workload::Latency);
        assert_eq!(o.size, 100);
        assert_eq!(o.seconds, Duration::from_secs(2));
        assert_eq!(o.warmup, Duration::from_millis(300));
        assert!(o.plain);
        assert_eq!(o.security(), "plain");
        let o = client(
            "c --connect a --workload oneway --size 65536 --seconds 0.5 --warmup 0 --server-key k",
        )
        .unwrap();
        assert_eq!((o.size, o.seconds), (65536, Duration::from_millis(500)));
        assert_eq!(o.warmup, Duration::ZERO);
        assert_eq!(o.server_key.as_deref(), Some("k"));
        assert_eq!(o.security(), "curve");
        assert!(client("c --connect a --workload sideways").is_err());
        assert!(client("c --workload oneway").is_err());
        assert!(client("c --connect a --workload oneway --seconds 0").is_err());
        assert!(client("c --connect a --workload oneway --seconds -1").is_err());
        assert!(client("c --connect a --workload oneway --size 1k").is_err());
    }

    #[test]
    fn workload_names_round_trip() {
        for w in [Workload::Oneway, Workload::Pipelined, Workload::Latency] {
            assert_eq!(w.as_str().parse::<Workload>(), Ok(w));
        }
        assert_eq!(Workload::Latency.window(), 1);
    }

    #[test]
    fn payload_and_tag() {
        let p = payload(300);
        assert_eq!(p.len(), 300);
        assert_eq!((p[0], p[250], p[251]), (0, 250, 0));
        assert_eq!(tag(1)[..], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_ne!(tag(1), tag(2));
    }
}
