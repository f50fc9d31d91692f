//! The node's deadline index: every connection's session timer and every link's next deadline,
//! ordered by instant, so that [`Node::poll_timeout`](super::Node::poll_timeout) is one lookup
//! and a timeout visits only what is due, however many idle connections the node holds.
//!
//! Each connection and link records the deadline it has in the index (`timer`); whoever
//! changes a session or a link calls the node's `sync_*_timer`, which replaces the entry when
//! the deadline moved. Entries are never stale in debug builds: `poll_timeout` checks the index
//! against a full scan there.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::ids::ConnId;
use crate::time::Instant;

/// What a deadline belongs to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum TimerKey {
    /// A transport connection's session (handshake, heartbeat and TTL timers).
    Conn(ConnId),
    /// An outgoing link (reconnect, connect timeout, lingering close, idle expiry).
    Link(u64),
}

/// Deadlines by instant.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    set: BTreeSet<(Instant, TimerKey)>,
}

impl Deadlines {
    /// Moves `key`'s entry from `old` to `new` (either may be `None`).
    pub(crate) fn update(&mut self, key: TimerKey, old: Option<Instant>, new: Option<Instant>) {
        if old == new {
            return;
        }
        if let Some(t) = old {
            self.set.remove(&(t, key));
        }
        if let Some(t) = new {
            self.set.insert((t, key));
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.set.first().map(|&(t, _)| t)
    }

    /// Appends the keys whose deadline is at or before `now` to `conns` and `links`.
    pub(crate) fn due(&self, now: Instant, conns: &mut Vec<ConnId>, links: &mut Vec<u64>) {
        for &(t, key) in &self.set {
            if t > now {
                break;
            }
            match key {
                TimerKey::Conn(c) => conns.push(c),
                TimerKey::Link(l) => links.push(l),
            }
        }
    }

    /// Entries in the index.
    #[cfg(any(debug_assertions, test))]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// True if `key` is indexed at `t`.
    #[cfg(debug_assertions)]
    pub(crate) fn contains(&self, t: Instant, key: TimerKey) -> bool {
        self.set.contains(&(t, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_entries_and_reports_what_is_due() {
        let mut d = Deadlines::default();
        let a = TimerKey::Conn(ConnId::new(1, 0));
        let b = TimerKey::Link(7);
        d.update(a, None, Some(Instant::from_secs(5)));
        d.update(b, None, Some(Instant::from_secs(3)));
        assert_eq!(d.first(), Some(Instant::from_secs(3)));
        d.update(b, Some(Instant::from_secs(3)), Some(Instant::from_secs(9)));
        assert_eq!(d.first(), Some(Instant::from_secs(5)));
        let (mut conns, mut links) = (Vec::new(), Vec::new());
        d.due(Instant::from_secs(5), &mut conns, &mut links);
        assert_eq!(conns, [ConnId::new(1, 0)]);
        assert!(links.is_empty());
        d.update(a, Some(Instant::from_secs(5)), None);
        d.update(b, Some(Instant::from_secs(9)), None);
        assert_eq!(d.len(), 0);
        assert_eq!(d.first(), None);
    }
}
