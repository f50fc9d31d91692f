//! The simulator's event log: every input fed to a node and every output it produced, as one
//! line of stable text each, folded into a running hash.
//!
//! The hash and the line count are what the determinism tests compare; the tail (and, when
//! asked for, the whole log) is what a failing test prints.

use std::collections::VecDeque;

/// How many lines a log keeps for printing by default.
pub(crate) const DEFAULT_TAIL: usize = 300;

/// 64-bit FNV-1a: tiny, stable across Rust versions and platforms (unlike `DefaultHasher`).
#[must_use]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_continue(0xcbf2_9ce4_8422_2325, bytes)
}

fn fnv1a_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A hashed, bounded record of a simulation run.
#[derive(Debug, Clone)]
pub struct Log {
    hash: u64,
    lines: u64,
    tail: VecDeque<String>,
    tail_cap: usize,
    all: Option<Vec<String>>,
}

impl Default for Log {
    fn default() -> Self {
        Self::new(DEFAULT_TAIL)
    }
}

impl Log {
    /// An empty log keeping the last `tail_cap` lines.
    #[must_use]
    pub fn new(tail_cap: usize) -> Self {
        Self {
            hash: fnv1a(b""),
            lines: 0,
            tail: VecDeque::with_capacity(tail_cap.min(4096)),
            tail_cap,
            all: None,
        }
    }

    /// Keeps every line from now on (for debugging and for diffing two runs).
    pub fn keep_all(&mut self) {
        if self.all.is_none() {
            self.all = Some(Vec::new());
        }
    }

    /// Appends one line (no trailing newline).
    pub fn record(&mut self, line: String) {
        self.hash = fnv1a_continue(self.hash, line.as_bytes());
        self.hash = fnv1a_continue(self.hash, b"\n");
        self.lines += 1;
        if let Some(all) = &mut self.all {
            all.push(line.clone());
        }
        if self.tail_cap > 0 {
            if self.tail.len() == self.tail_cap {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }

    /// The hash of every line so far.
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How many lines were recorded.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// True if nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The most recent lines, oldest first.
    pub fn tail(&self) -> impl Iterator<Item = &str> + '_ {
        self.tail.iter().map(String::as_str)
    }

    /// Every line, if [`Log::keep_all`] was called before they were recorded.
    #[must_use]
    pub fn all(&self) -> Option<&[String]> {
        self.all.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_hash_depends_on_order_and_the_tail_is_bounded() {
        let mut a = Log::new(2);
        let mut b = Log::new(2);
        for l in ["x", "y", "z"] {
            a.record(l.to_string());
        }
        for l in ["y", "x", "z"] {
            b.record(l.to_string());
        }
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.len(), 3);
        assert_eq!(a.tail().collect::<Vec<_>>(), ["y", "z"]);
        assert!(a.all().is_none());
    }
}
