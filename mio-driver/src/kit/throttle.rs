//! Rate limits for warnings a peer can cause: at most one line per reason and key per window.
//!
//! A flood of bad or dropped messages must not become a flood of log lines (a hostile peer
//! could otherwise fill a disk, and the lines bury everything else). The first warning of a
//! reason and key (a connection, a category) in a window is written; the others are counted,
//! and the next one written says how many were left out.

use std::collections::BTreeMap;
use std::time::Duration;

use lokimq_core::time::Instant;

/// Keys remembered at most: beyond it the oldest windows are forgotten (their suppressed
/// counts are lost, which only shortens a summary).
const MAX_KEYS: usize = 4096;

/// A rate limit for warnings a peer can cause: the first of a reason and key (a connection, a
/// category) in each window is allowed, the rest are counted, and the next one allowed
/// reports how many were left out, so a flood of bad input cannot become a flood of log lines.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    /// `(reason, key)` → (start of the current window, warnings suppressed in it).
    seen: BTreeMap<(&'static str, u64), (Instant, u64)>,
}

impl Throttle {
    /// A throttle allowing one line per `window`.
    #[must_use]
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: BTreeMap::new(),
        }
    }

    /// Whether to write a warning for `reason` and `key` at `now`: `Some(n)` to write it
    /// (mentioning the `n` suppressed since the last one written), `None` to suppress it.
    pub fn allow(&mut self, now: Instant, reason: &'static str, key: u64) -> Option<u64> {
        if let Some((start, suppressed)) = self.seen.get_mut(&(reason, key)) {
            if now.saturating_duration_since(*start) < self.window {
                *suppressed += 1;
                return None;
            }
            let n = *suppressed;
            *start = now;
            *suppressed = 0;
            return Some(n);
        }
        if self.seen.len() >= MAX_KEYS {
            let window = self.window;
            self.seen
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if self.seen.len() >= MAX_KEYS {
                self.seen.clear();
            }
        }
        self.seen.insert((reason, key), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_per_key_with_the_count_left_out() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::from_micros(0);
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(t.allow(t0, "drop", 1), Some(0));
        assert_eq!(t.allow(ms(10), "drop", 1), None);
        assert_eq!(t.allow(ms(20), "drop", 1), None);
        // Another key and another reason have their own windows.
        assert_eq!(t.allow(ms(30), "drop", 2), Some(0));
        assert_eq!(t.allow(ms(40), "bad", 1), Some(0));
        assert_eq!(t.allow(ms(1000), "drop", 1), Some(2));
        assert_eq!(t.allow(ms(1500), "drop", 1), None);
        assert_eq!(t.allow(ms(2100), "drop", 1), Some(1));
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::from_micros(0);
        for k in 0..(3 * MAX_KEYS as u64) {
            assert_eq!(t.allow(t0, "drop", k), Some(0));
        }
        assert!(t.seen.len() <= MAX_KEYS);
    }
}
