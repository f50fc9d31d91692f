//! The core's cost of idle CURVE connections, in memory (`docs/performance.md`, "Idle
//! connections").
//!
//! ```text
//! cargo run --release -p lokimq-benches --example idle -- [N…] [--idle SECS] [--polls K]
//! ```
//!
//! For each `N` (default 100, 1000, 10000) it builds an [`IdleMesh`] (a server and a client
//! node joined by `N` CURVE connections, OxenMQ's default 15 s heartbeats), lets `SECS` of
//! virtual time pass (default 60), and prints:
//!
//! * `cpu/s`: CPU time of both nodes per second of virtual idle time (this thread's CPU time,
//!   from `/proc/thread-self/schedstat`, so other processes on the machine do not inflate it);
//! * `cpu/s/conn`: the same per connection (flat in `N` if the idle cost is linear);
//! * `poll_timeout`: the cost of one `Node::poll_timeout` call on the server (`N` incoming
//!   connections) and on the client (`N` outgoing links): the best of ten batches of `K / 10`
//!   calls, wall clock;
//! * `rss/conn`: the process's RSS growth per connection while setting the mesh up (both ends
//!   of every connection live in this process).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant as WallInstant;

use lokimq_benches::idle::{IdleMesh, Side};
use lokimq_core::time::Duration;

/// The wall clock, for the setup time and the `poll_timeout` batches (a benchmark is the
/// driver here: it reads the clock in this one place).
#[allow(clippy::disallowed_methods)]
fn wall() -> WallInstant {
    WallInstant::now()
}

/// This thread's CPU time in nanoseconds (Linux).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The process's resident set in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Nanoseconds of one `poll_timeout` on `side`: the best of ten batches of `k / 10` calls
/// (wall clock; the best batch is the one least disturbed by other processes).
fn poll_cost(mesh: &IdleMesh, side: Side, k: u32) -> f64 {
    let node = mesh.node(side);
    let batch = (k / 10).max(1);
    (0..10)
        .map(|_| {
            let start = wall();
            for _ in 0..batch {
                black_box(node.poll_timeout());
            }
            start.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> ExitCode {
    let mut sizes = Vec::new();
    let mut idle_secs = 60u64;
    let mut polls = 20_000u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let parsed = match a.as_str() {
            "--idle" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| idle_secs = v),
            "--polls" => args.next().and_then(|v| v.parse().ok()).map(|v| polls = v),
            n => n.parse().ok().map(|n| sizes.push(n)),
        };
        if parsed.is_none() {
            eprintln!("usage: idle [N…] [--idle SECS] [--polls K]");
            return ExitCode::from(2);
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 1_000, 10_000];
    }
    println!(
        "{:>7} {:>9} {:>12} {:>12} {:>10} {:>14} {:>14} {:>10}",
        "N",
        "setup s",
        "cpu/s µs",
        "cpu/s/conn ns",
        "timeouts/s",
        "poll srv ns",
        "poll cli ns",
        "rss/conn"
    );
    for n in sizes {
        let rss0 = rss_kib();
        let t = wall();
        let mut mesh = match IdleMesh::new(n) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("setting up {n} connections failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let setup = t.elapsed().as_secs_f64();
        let rss = rss_kib().saturating_sub(rss0);
        // Let every connection reach its steady state (first PINGs sent and answered).
        if let Err(e) = mesh.idle(Duration::from_secs(20)) {
            eprintln!("warm-up failed: {e}");
            return ExitCode::FAILURE;
        }
        let cpu0 = thread_cpu_ns();
        let stats = match mesh.idle(Duration::from_secs(idle_secs)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("idling failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let cpu = thread_cpu_ns() - cpu0;
        let per_sec = cpu as f64 / idle_secs as f64;
        let srv = poll_cost(&mesh, Side::Server, polls);
        let cli = poll_cost(&mesh, Side::Client, polls);
        println!(
            "{:>7} {:>9.1} {:>12.1} {:>12.1} {:>10.1} {:>14.1} {:>14.1} {:>8.1} KiB",
            n,
            setup,
            per_sec / 1e3,
            per_sec / n as f64,
            stats.timeouts as f64 / idle_secs as f64,
            srv,
            cli,
            rss as f64 / n as f64,
        );
        drop(mesh);
    }
    ExitCode::SUCCESS
}
