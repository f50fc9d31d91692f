//! The event queue every simulation runs on: ordered by virtual time, then by insertion, so two
//! events due at the same instant happen in the order they were scheduled.

use std::collections::BTreeMap;

use lokimq_core::time::Instant;

/// Events by `(time, sequence number)`.
pub(crate) struct Queue<E> {
    map: BTreeMap<(Instant, u64), E>,
    seq: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `ev` at `at`.
    pub(crate) fn push(&mut self, at: Instant, ev: impl Into<E>) {
        self.map.insert((at, self.seq), ev.into());
        self.seq += 1;
    }

    /// When the next event is due.
    pub(crate) fn next_time(&self) -> Option<Instant> {
        self.map.first_key_value().map(|((t, _), _)| *t)
    }

    /// Takes the next event.
    pub(crate) fn pop(&mut self) -> Option<(Instant, E)> {
        self.map.pop_first().map(|((t, _), e)| (t, e))
    }

    /// Events waiting.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
