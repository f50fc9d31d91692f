//! Repeating timers: deadlines, re-arming and the in-flight count squelch needs.

use alloc::collections::{BTreeMap, BTreeSet};

use super::Target;
use crate::ids::TimerId;
use crate::time::Instant;

#[derive(Debug)]
pub(super) struct TimerEntry {
    /// Interval in microseconds, at least 1.
    interval: u64,
    pub(super) squelch: bool,
    pub(super) target: Target,
    /// Next scheduled firing; `None` once cancelled, or when the next firing is past
    /// [`Instant::MAX`].
    deadline: Option<Instant>,
    pub(super) cancelled: bool,
    /// Firings queued or running on a worker or tagged thread.
    pub(super) in_flight: u32,
}

/// Every timer that is scheduled, or cancelled with a firing still in flight.
#[derive(Debug)]
pub(super) struct Timers {
    next_id: u64,
    entries: BTreeMap<TimerId, TimerEntry>,
    deadlines: BTreeSet<(Instant, TimerId)>,
}

impl Timers {
    pub(super) const fn new() -> Self {
        // Ids start at 1: OxenMQ's default `TimerID{}` means "no timer", and so does `TimerId(0)`.
        Self {
            next_id: 1,
            entries: BTreeMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// Schedules a timer first firing at `now + interval` (`interval_us >= 1`).
    pub(super) fn add(
        &mut self,
        now: Instant,
        interval_us: u64,
        squelch: bool,
        target: Target,
    ) -> TimerId {
        let id = TimerId(self.next_id);
        self.insert(now, id, interval_us, squelch, target);
        id
    }

    /// True if `id` can name a new timer: not 0, and not a timer that still exists.
    pub(super) fn is_free(&self, id: TimerId) -> bool {
        id.0 != 0 && !self.entries.contains_key(&id)
    }

    /// Schedules a timer under an id the embedder chose (checked with [`is_free`]).
    ///
    /// [`is_free`]: Self::is_free
    pub(super) fn insert(
        &mut self,
        now: Instant,
        id: TimerId,
        interval_us: u64,
        squelch: bool,
        target: Target,
    ) {
        // Automatic ids stay clear of every id used so far.
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        let deadline = Instant::from_micros(now.as_micros().saturating_add(interval_us));
        self.deadlines.insert((deadline, id));
        self.entries.insert(
            id,
            TimerEntry {
                interval: interval_us,
                squelch,
                target,
                deadline: Some(deadline),
                cancelled: false,
                in_flight: 0,
            },
        );
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Takes the earliest timer due at `now` and re-arms it.
    ///
    /// The next deadline is the first point of the timer's original grid (`deadline + k ×
    /// interval`) strictly after `now`: intervals do not drift with late wake-ups, and a wake-up
    /// that missed several periods fires once rather than once per missed period. Because the
    /// new deadline is after `now`, repeated calls with one `now` terminate.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<TimerId> {
        let &(at, id) = self.deadlines.first()?;
        if at > now {
            return None;
        }
        self.deadlines.remove(&(at, id));
        let entry = self.entries.get_mut(&id)?;
        let elapsed = now.as_micros() - at.as_micros();
        let next = (elapsed / entry.interval + 1)
            .checked_mul(entry.interval)
            .and_then(|step| at.as_micros().checked_add(step))
            .map(Instant::from_micros);
        entry.deadline = next;
        if let Some(next) = next {
            self.deadlines.insert((next, id));
        }
        Some(id)
    }

    pub(super) fn get(&self, id: TimerId) -> Option<&TimerEntry> {
        self.entries.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: TimerId) -> Option<&mut TimerEntry> {
        self.entries.get_mut(&id)
    }

    /// Unschedules a live timer; returns its entry for the caller to finish the job (drop
    /// queued firings, decide whether it can be released). `None` if unknown or already
    /// cancelled.
    pub(super) fn cancel(&mut self, id: TimerId) -> Option<&mut TimerEntry> {
        let entry = self.entries.get_mut(&id)?;
        if entry.cancelled {
            return None;
        }
        if let Some(at) = entry.deadline.take() {
            self.deadlines.remove(&(at, id));
        }
        entry.cancelled = true;
        Some(entry)
    }

    pub(super) fn remove(&mut self, id: TimerId) {
        if let Some(at) = self.entries.remove(&id).and_then(|e| e.deadline) {
            self.deadlines.remove(&(at, id));
        }
    }

    /// Timers still scheduled (not cancelled).
    pub(super) fn live(&self) -> usize {
        self.entries.values().filter(|e| !e.cancelled).count()
    }

    /// Forgets every timer; returns how many were still scheduled.
    pub(super) fn clear(&mut self) -> usize {
        let live = self.live();
        self.entries.clear();
        self.deadlines.clear();
        live
    }
}
