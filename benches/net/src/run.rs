//! Process plumbing shared by every peer: how servers learn to stop, the client's measured
//! window, and a watchdog so no client outlives its run.
//!
//! Servers stop when their standard input is closed (the normal way: `scripts/bench-net` and
//! the smoke test close the pipe) or on SIGTERM/SIGINT (the script's fallback, and Ctrl-C by
//! hand). Either way the server's main thread gets to print its CPU time before exiting.

use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The benchmark's one clock read (the workspace's clippy configuration bans
/// `Instant::now` everywhere else, as it does in the library).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Set once the server should stop; also wakes a thread blocked in [`StopSignal::wait`].
pub(crate) struct StopSignal {
    flag: Arc<AtomicBool>,
    rx: mpsc::Receiver<()>,
}

impl StopSignal {
    /// Starts watching standard input (a thread reading it to EOF) and installs the SIGTERM and
    /// SIGINT handler. Call once per process.
    pub(crate) fn install() -> Result<Self, String> {
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let stop = {
            let flag = Arc::clone(&flag);
            move || {
                flag.store(true, Ordering::SeqCst);
                let _ = tx.send(());
            }
        };
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let on_signal = stop.clone();
        std::thread::Builder::new()
            .name(String::from("signal-watch"))
            .spawn(move || {
                if signals.forever().next().is_some() {
                    on_signal();
                }
            })
            .map_err(|e| format!("cannot start the signal watcher: {e}"))?;
        std::thread::Builder::new()
            .name(String::from("stdin-watch"))
            .spawn(move || {
                // Whatever arrives is ignored; EOF or a read error means "stop".
                let mut buf = [0u8; 256];
                let mut stdin = std::io::stdin().lock();
                while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
                stop();
            })
            .map_err(|e| format!("cannot start the stdin watcher: {e}"))?;
        Ok(Self { flag, rx })
    }

    /// Whether it is time to stop (cheap: one atomic load).
    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Blocks until it is time to stop.
    pub(crate) fn wait(&self) {
        // Both senders live in the handler and the watcher thread, which outlive this call;
        // a disconnected channel would mean both are gone, and then stopping is right too.
        let _ = self.rx.recv();
    }
}

/// How much longer than warm-up + measured time a client may take (connecting, draining,
/// shutting down) before [`watchdog`] ends it.
pub(crate) const CLIENT_GRACE: Duration = Duration::from_secs(30);

/// Ends the process if it is still running `limit` from now: a client must never hang a
/// benchmark run, whatever happens to its server.
pub(crate) fn watchdog(limit: Duration) {
    let spawned = std::thread::Builder::new()
        .name(String::from("watchdog"))
        .spawn(move || {
            std::thread::sleep(limit);
            eprintln!(
                "bench-net: still running after {:.1} s; giving up",
                limit.as_secs_f64()
            );
            std::process::exit(3);
        });
    if let Err(e) = spawned {
        eprintln!("bench-net: warning: no watchdog thread: {e}");
    }
}

/// Where a client run is: warming up (not counted), measuring, or done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Warmup = 0,
    Measure = 1,
    Done = 2,
}

/// The phases of a run as a function of time, for clients that keep time in their own loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    measure_from: Instant,
    measure_until: Instant,
}

impl Timeline {
    /// Warm-up from `start` for `warmup`, then `seconds` measured.
    pub(crate) fn new(start: Instant, warmup: Duration, seconds: Duration) -> Self {
        Self {
            measure_from: start + warmup,
            measure_until: start + warmup + seconds,
        }
    }

    pub(crate) fn phase(&self, now: Instant) -> Phase {
        if now < self.measure_from {
            Phase::Warmup
        } else if now < self.measure_until {
            Phase::Measure
        } else {
            Phase::Done
        }
    }
}

/// A snapshot at the edge of the measured window: when, the work counter, and the CPU time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub(crate) at: Instant,
    pub(crate) count: u64,
    pub(crate) cpu: f64,
}

impl Mark {
    pub(crate) fn now(count: u64) -> Self {
        Self {
            at: now(),
            count,
            cpu: crate::report::cpu_seconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_phases() {
        let t0 = now();
        let t = Timeline::new(t0, Duration::from_millis(300), Duration::from_secs(2));
        assert_eq!(t.phase(t0), Phase::Warmup);
        assert_eq!(t.phase(t0 + Duration::from_millis(299)), Phase::Warmup);
        assert_eq!(t.phase(t0 + Duration::from_millis(300)), Phase::Measure);
        assert_eq!(t.phase(t0 + Duration::from_millis(2299)), Phase::Measure);
        assert_eq!(t.phase(t0 + Duration::from_millis(2300)), Phase::Done);
        let no_warmup = Timeline::new(t0, Duration::ZERO, Duration::from_secs(1));
        assert_eq!(no_warmup.phase(t0), Phase::Measure);
    }
}
