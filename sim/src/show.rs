//! Bytes and frames as text for the logs of both simulators.

use std::fmt::Write as _;

use bytes::Bytes;

/// Frames as text for the log.
#[must_use]
pub fn parts(frames: &[Bytes]) -> String {
    let mut s = String::from("[");
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&show_bytes(f));
    }
    s.push(']');
    s
}

/// Bytes as text for the log: printable ASCII quoted, else hex (long values are cut, with a
/// hash of the whole).
#[must_use]
pub fn show_bytes(b: &[u8]) -> String {
    const MAX: usize = 48;
    let shown = &b[..b.len().min(MAX)];
    let mut s = if shown.iter().all(|c| (0x20..0x7f).contains(c)) {
        format!("{:?}", String::from_utf8_lossy(shown))
    } else {
        let mut h = String::with_capacity(shown.len() * 2 + 4);
        h.push_str("hex:");
        for c in shown {
            let _ = write!(h, "{c:02x}");
        }
        h
    };
    if b.len() > MAX {
        let _ = write!(
            s,
            "..({} bytes, fnv {:016x})",
            b.len(),
            crate::trace::fnv1a(b)
        );
    }
    s
}
