//! What a run reports: the client's one JSON line (rate, latency percentiles, CPU time) and the
//! process CPU time the servers print on exit.
//!
//! The JSON is written by hand (a flat object of numbers and strings) so that this module,
//! shared with `benches/net-zmq-sys` by `#[path]`, needs no serde. `scripts/bench-net` reads the
//! line with Python's `json`.

use std::fmt::Write as _;
use std::time::Duration;

/// The process's CPU time so far, user + system, all threads (`getrusage(RUSAGE_SELF)`, µs
/// resolution). NaN if the call fails (it cannot for `RUSAGE_SELF`, but a benchmark should
/// report "unknown" rather than stop).
pub(crate) fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike;
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            (u.user_time().num_microseconds() + u.system_time().num_microseconds()) as f64 / 1e6
        }
        Err(_) => f64::NAN,
    }
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `sorted` (ascending): the smallest sample
/// with at least p% of the samples at or below it. `None` for no samples.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Round-trip times of a latency run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
    pub(crate) min_us: f64,
    pub(crate) max_us: f64,
}

impl Latency {
    /// Summarises round trips given in nanoseconds; `None` for none.
    pub(crate) fn from_nanos(mut samples: Vec<u64>) -> Option<Self> {
        samples.sort_unstable();
        let us = |ns: u64| ns as f64 / 1e3;
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Some(Self {
            p50_us: us(percentile(&samples, 50.0)?),
            p99_us: us(percentile(&samples, 99.0)?),
            mean_us: sum as f64 / samples.len() as f64 / 1e3,
            min_us: us(*samples.first()?),
            max_us: us(*samples.last()?),
        })
    }
}

/// A flat JSON object, built field by field.
#[derive(Debug, Default)]
pub(crate) struct JsonLine(String);

impl JsonLine {
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.0, key);
        self.0.push(':');
    }

    /// A string field.
    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_json_string(&mut self.0, value);
        self
    }

    /// An integer field.
    pub(crate) fn int(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// A number field; NaN and infinities (which JSON lacks) become `null`.
    pub(crate) fn num(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            self.0.push_str("null");
        }
        self
    }

    /// The finished object.
    pub(crate) fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What a client measured in its window.
#[derive(Debug, Clone)]
pub(crate) struct ClientReport {
    /// `lokimq`, `zmq` (vendored libzmq) or `zmq-sys` (system libzmq).
    pub(crate) peer: String,
    /// The library and its version, e.g. `libzmq 4.3.4`.
    pub(crate) lib: String,
    pub(crate) workload: &'static str,
    pub(crate) security: &'static str,
    pub(crate) size: usize,
    /// The measured window, as it actually lasted.
    pub(crate) window: Duration,
    /// Messages acknowledged (oneway) or replies received (the others) in the window.
    pub(crate) count: u64,
    /// The same over the whole run, warm-up included.
    pub(crate) total: u64,
    /// Replies that were not the echo of what was sent, failed requests, garbled acks.
    pub(crate) errors: u64,
    /// The client process's CPU time in the window.
    pub(crate) cpu: f64,
    /// Round trips of a latency run.
    pub(crate) latency: Option<Latency>,
}

impl ClientReport {
    /// Messages or requests per second in the window.
    pub(crate) fn rate(&self) -> f64 {
        self.count as f64 / self.window.as_secs_f64()
    }

    /// The JSON line `scripts/bench-net` reads.
    pub(crate) fn to_json(&self) -> String {
        let mut j = JsonLine::default()
            .str("peer", &self.peer)
            .str("lib", &self.lib)
            .str("workload", self.workload)
            .str("security", self.security)
            .int("size", self.size as u64)
            .num("seconds", self.window.as_secs_f64())
            .int("count", self.count)
            .int("total", self.total)
            .int("errors", self.errors)
            .num("rate", self.rate())
            .num("cpu_s", self.cpu);
        if let Some(l) = self.latency {
            j = j
                .num("p50_us", l.p50_us)
                .num("p99_us", l.p99_us)
                .num("mean_us", l.mean_us)
                .num("min_us", l.min_us)
                .num("max_us", l.max_us);
        }
        j.finish()
    }
}

/// What a server prints when told to stop: how many messages it handled and its CPU time.
pub(crate) fn print_server_exit(messages: u64) {
    use std::io::Write as _;
    let cpu = cpu_seconds();
    let mut out = std::io::stdout().lock();
    // The script may already have gone away; nothing useful to do about a closed pipe.
    let _ = writeln!(out, "MESSAGES {messages}");
    let _ = writeln!(out, "CPU {cpu:.6}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));
        let v = [10, 20, 30, 40];
        assert_eq!(percentile(&v, 50.0), Some(20));
        assert_eq!(percentile(&v, 75.0), Some(30));
        assert_eq!(percentile(&v, 99.0), Some(40));
    }

    #[test]
    fn latency_summary() {
        assert_eq!(Latency::from_nanos(Vec::new()), None);
        // Unsorted input; 1000 ns = 1 µs.
        let l = Latency::from_nanos(vec![3000, 1000, 2000, 4000]).unwrap();
        assert_eq!(l.p50_us, 2.0);
        assert_eq!(l.p99_us, 4.0);
        assert_eq!(l.mean_us, 2.5);
        assert_eq!((l.min_us, l.max_us), (1.0, 4.0));
    }

    #[test]
    fn json_line() {
        assert_eq!(JsonLine::default().finish(), "{}");
        let j = JsonLine::default()
            .str("a", "x\"y\\z\n\u{1}é")
            .int("b", 42)
            .num("c", 1.5)
            .num("d", f64::NAN)
            .finish();
        assert_eq!(j, r#"{"a":"x\"y\\z\n\u0001é","b":42,"c":1.5,"d":null}"#);
    }

    #[test]
    fn client_report_json() {
        let r = ClientReport {
            peer: String::from("zmq"),
            lib: String::from("libzmq 4.3.2"),
            workload: "latency",
            security: "curve",
            size: 100,
            window: Duration::from_secs(2),
            count: 500,
            total: 600,
            errors: 0,
            cpu: 0.25,
            latency: Latency::from_nanos(vec![1000, 3000]),
        };
        assert_eq!(r.rate(), 250.0);
        assert_eq!(
            r.to_json(),
            concat!(
                r#"{"peer":"zmq","lib":"libzmq 4.3.2","workload":"latency","security":"curve","#,
                r#""size":100,"seconds":2,"count":500,"total":600,"errors":0,"rate":250,"#,
                r#""cpu_s":0.25,"p50_us":1,"p99_us":3,"mean_us":2,"min_us":1,"max_us":3}"#
            )
        );
        let no_latency = ClientReport { latency: None, ..r };
        assert!(!no_latency.to_json().contains("p50_us"));
    }

    #[test]
    fn cpu_time_moves_forward() {
        let a = cpu_seconds();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = cpu_seconds();
        assert!(a.is_finite() && b >= a, "{a} -> {b}");
    }
}
