//! Log lines a peer can cause: its text escaped and cut short, and at most one line per peer
//! and reason a second.
//!
//! Peers choose command names, tags and error payloads. Logged raw, a command name with a
//! newline forges log lines, a megabyte of garbage becomes a megabyte line, and a flood of bad
//! messages becomes a flood of lines. [`PeerText`] shows at most [`PEER_TEXT_MAX`] bytes with
//! anything unprintable escaped; [`PeerLogs`] lets the first warning of a peer and reason
//! through each second and counts the rest, which the next line it lets through mentions.

use alloc::collections::BTreeMap;
use core::fmt;

use crate::time::{Duration, Instant};

/// At most this many bytes of a peer's text are shown.
pub(crate) const PEER_TEXT_MAX: usize = 64;
/// One line per peer and reason per window.
const WINDOW: Duration = Duration::from_secs(1);
/// Keys remembered at most (old windows are forgotten beyond it).
const MAX_KEYS: usize = 1024;

/// Bytes a peer sent, for a log line: printable ASCII as is, `\n`, `\r`, `\t`, `\\` and
/// everything else escaped (`\xNN`), cut after [`PEER_TEXT_MAX`] bytes with the full length
/// noted.
pub(crate) struct PeerText<'a>(pub(crate) &'a [u8]);

impl fmt::Display for PeerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(PEER_TEXT_MAX)];
        for &b in shown {
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                0x20..=0x7e => fmt::Write::write_char(f, char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        if self.0.len() > shown.len() {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// See the [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct PeerLogs {
    /// `(peer, reason)` → (start of the current window, lines suppressed in it).
    seen: BTreeMap<(u64, &'static str), (Instant, u32)>,
}

impl PeerLogs {
    /// Whether to write a line for `peer` and `reason` now: `Some(n)` to write it (saying `n`
    /// were left out since the last one written), `None` to count it and stay quiet.
    pub(crate) fn allow(&mut self, now: Instant, peer: u64, reason: &'static str) -> Option<u32> {
        if let Some((start, suppressed)) = self.seen.get_mut(&(peer, reason)) {
            if now.saturating_duration_since(*start) < WINDOW {
                *suppressed = suppressed.saturating_add(1);
                return None;
            }
            let n = *suppressed;
            *start = now;
            *suppressed = 0;
            return Some(n);
        }
        if self.seen.len() >= MAX_KEYS {
            self.seen
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if self.seen.len() >= MAX_KEYS {
                self.seen.clear();
            }
        }
        self.seen.insert((peer, reason), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn peer_text_escapes_and_truncates() {
        assert_eq!(PeerText(b"public.echo").to_string(), "public.echo");
        assert_eq!(
            PeerText(b"a\nFAKE LINE\r\t\\\x00\xff").to_string(),
            "a\\nFAKE LINE\\r\\t\\\\\\x00\\xff"
        );
        let big = vec![b'x'; 1 << 20];
        let shown = PeerText(&big).to_string();
        assert!(shown.len() < 100, "{} bytes", shown.len());
        assert!(shown.ends_with("...(1048576 bytes)"));
    }

    #[test]
    fn one_line_per_peer_and_reason_per_second() {
        let mut l = PeerLogs::default();
        let t0 = Instant::from_micros(0);
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(l.allow(t0, 1, "bad"), Some(0));
        assert_eq!(l.allow(ms(1), 1, "bad"), None);
        assert_eq!(l.allow(ms(2), 1, "bad"), None);
        assert_eq!(l.allow(ms(3), 2, "bad"), Some(0));
        assert_eq!(l.allow(ms(4), 1, "other"), Some(0));
        assert_eq!(l.allow(ms(1000), 1, "bad"), Some(2));
        for k in 0..(3 * MAX_KEYS as u64) {
            let _ = l.allow(ms(1000), k + 10, "flood");
        }
        assert!(l.seen.len() <= MAX_KEYS);
    }
}
