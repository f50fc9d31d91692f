//! The only place the driver reads the operating system's clock.
//!
//! The core has no clock: it is told `now` as a [`lokimq_core::time::Instant`], microseconds
//! since an epoch the embedder picks. The driver's epoch is the moment the node was built, kept
//! here as a `std::time::Instant`, so every reading is monotonic and the core never sees time go
//! backwards. [`Stopwatch`] is the same clock for applications, tests and the CLI, which must
//! not read the system clock themselves (the workspace's clippy configuration forbids it
//! everywhere else).

use std::time::Duration;

use lokimq_core::time::Instant;

/// A monotonic clock anchored at its creation, reporting core [`Instant`]s.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    #[allow(clippy::disallowed_methods)] // the one sanctioned clock read
    pub fn new() -> Self {
        Self {
            epoch: std::time::Instant::now(),
        }
    }

    /// Microseconds since the epoch, as the core counts time.
    #[must_use]
    pub fn now(&self) -> Instant {
        Instant::from_micros(duration_micros(raw_elapsed(self.epoch)))
    }
}

/// Measures elapsed wall time without touching the system clock directly (for applications,
/// tests and the command-line tool).
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    start: std::time::Instant,
}

impl Stopwatch {
    /// Starts measuring now.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the one sanctioned clock read
    pub fn start() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }

    /// Time since [`start`](Self::start).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        raw_elapsed(self.start)
    }

    /// Time left until `budget` has elapsed since the start (zero once it has).
    #[must_use]
    pub fn remaining(&self, budget: Duration) -> Duration {
        budget.saturating_sub(self.elapsed())
    }
}

#[allow(clippy::disallowed_methods)] // the one sanctioned clock read
fn raw_elapsed(since: std::time::Instant) -> Duration {
    std::time::Instant::now().saturating_duration_since(since)
}

/// A duration in whole microseconds, saturating (584 554 years fit in a `u64`).
pub(crate) fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_starts_near_zero() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!(a.as_micros() < 1_000_000, "epoch is the creation time");
    }

    #[test]
    fn stopwatch_remaining_saturates() {
        let s = Stopwatch::start();
        assert_eq!(s.remaining(Duration::ZERO), Duration::ZERO);
        assert!(s.remaining(Duration::from_secs(3600)) > Duration::from_secs(3500));
    }
}
