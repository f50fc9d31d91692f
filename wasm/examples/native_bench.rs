//! The native half of the WebAssembly benchmark: times `lokimq_wasm::bench::run` (two nodes in
//! memory: CURVE handshakes, 100 B round trips) as native code, so `wasm/js/bench.mjs` can
//! report the WebAssembly figures as ratios against the same Rust measured in the same run.
//!
//! ```text
//! native_bench [HANDSHAKES [ROUND_TRIPS]]
//! ```
//!
//! Prints one JSON object: `{"handshakes_per_s": …, "round_trips_per_s": …}`.

use std::process::ExitCode;

use lokimq_wasm::bench;
use lokimq_wasm::host::HostRng;

/// Payload of one round trip.
const PAYLOAD: usize = 100;

/// Runs `count` iterations of `kind` and returns how many per second (best of five runs, as the
/// JS side does: the least disturbed one on a busy machine).
#[allow(clippy::disallowed_methods)] // a benchmark's stopwatch
fn rate(kind: u8, count: u32) -> Result<f64, lokimq_wasm::Error> {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        bench::run(kind, count, PAYLOAD, HostRng)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(f64::from(count) / best)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut count = |default: u32| {
        args.next().map_or(Ok(default), |a| {
            a.parse::<u32>().map_err(|e| format!("{a}: {e}"))
        })
    };
    let (handshakes, round_trips) = match (count(300), count(5000)) {
        (Ok(h), Ok(r)) => (h, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("usage: native_bench [HANDSHAKES [ROUND_TRIPS]]: {e}");
            return ExitCode::from(2);
        }
    };
    match (rate(0, handshakes), rate(1, round_trips)) {
        (Ok(h), Ok(r)) => {
            println!("{{\"handshakes_per_s\": {h:.1}, \"round_trips_per_s\": {r:.1}}}");
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("native_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
