//! Queued commands and injected tasks: one FIFO per category plus the global arrival order.
//!
//! OxenMQ keeps one list and re-examines it from the front on every loop, starting each command
//! whose category may run. Whether a command may run depends only on its category and the
//! global counts, and starting a job only makes every condition harder, so that pass always
//! starts the oldest command among the categories that may run, then the next oldest, and so on.
//! Keeping each category's FIFO separately and an index of the queues' fronts gives the same
//! order without scanning commands that cannot start.
//!
//! Each queued command also counts against its *source* (the connection it came from, see
//! [`Scheduler::offer_command_from`](super::Scheduler::offer_command_from)), so that a full
//! queue can find the source holding the most of it: the fair-drop rule evicts from there.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

/// A queued command or injected task.
#[derive(Debug)]
pub(super) struct Pending<J> {
    pub(super) injected: bool,
    /// Where the command came from, if it counts for fairness.
    pub(super) source: Option<u64>,
    pub(super) job: J,
}

#[derive(Debug)]
pub(super) struct CommandQueues<J> {
    /// Per category: (arrival sequence number, job), oldest first.
    queues: Vec<VecDeque<(u64, Pending<J>)>>,
    /// (sequence number, category) of the front of every non-empty queue.
    fronts: BTreeSet<(u64, u16)>,
    /// Per (category, source): how many of the source's commands wait in the category's queue.
    per_source: BTreeMap<(u16, u64), usize>,
    /// The same counts ordered as (category, count, source), so the heaviest source of a
    /// category is the last entry of its range.
    by_load: BTreeSet<(u16, usize, u64)>,
    next_seq: u64,
    total: usize,
}

impl<J> CommandQueues<J> {
    pub(super) fn new(categories: usize) -> Self {
        let mut queues = Vec::with_capacity(categories);
        queues.resize_with(categories, VecDeque::new);
        Self {
            queues,
            fronts: BTreeSet::new(),
            per_source: BTreeMap::new(),
            by_load: BTreeSet::new(),
            next_seq: 0,
            total: 0,
        }
    }

    pub(super) fn len(&self, category: u16) -> usize {
        self.queues
            .get(usize::from(category))
            .map_or(0, VecDeque::len)
    }

    pub(super) const fn total(&self) -> usize {
        self.total
    }

    /// Appends to `category`'s queue (the caller has checked that the category exists).
    pub(super) fn push(&mut self, category: u16, pending: Pending<J>) {
        let Some(queue) = self.queues.get_mut(usize::from(category)) else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        if queue.is_empty() {
            self.fronts.insert((seq, category));
        }
        let source = pending.source;
        queue.push_back((seq, pending));
        self.total += 1;
        if let Some(source) = source {
            self.recount(category, source, 1, 0);
        }
    }

    /// Adds `add` to, and takes `sub` from, a source's count in `category`.
    fn recount(&mut self, category: u16, source: u64, add: usize, sub: usize) {
        let old = self
            .per_source
            .get(&(category, source))
            .copied()
            .unwrap_or(0);
        let new = (old + add).saturating_sub(sub);
        if old > 0 {
            self.by_load.remove(&(category, old, source));
        }
        if new > 0 {
            self.per_source.insert((category, source), new);
            self.by_load.insert((category, new, source));
        } else {
            self.per_source.remove(&(category, source));
        }
    }

    /// How many commands of `source` wait in `category`'s queue.
    pub(super) fn count(&self, category: u16, source: u64) -> usize {
        self.per_source
            .get(&(category, source))
            .copied()
            .unwrap_or(0)
    }

    /// The source with the most commands waiting in `category`'s queue, and how many.
    pub(super) fn heaviest(&self, category: u16) -> Option<(u64, usize)> {
        self.by_load
            .range((category, 0, 0)..=(category, usize::MAX, u64::MAX))
            .next_back()
            .map(|&(_, count, source)| (source, count))
    }

    /// Takes the newest command of `source` out of `category`'s queue.
    pub(super) fn evict_newest(&mut self, category: u16, source: u64) -> Option<Pending<J>> {
        let queue = self.queues.get_mut(usize::from(category))?;
        // Bounded by the category's queue limit (only full queues evict).
        let at = queue.iter().rposition(|(_, p)| p.source == Some(source))?;
        let (seq, pending) = queue.remove(at)?;
        if at == 0 {
            self.fronts.remove(&(seq, category));
            if let Some(&(next, _)) = queue.front() {
                self.fronts.insert((next, category));
            }
        }
        self.total -= 1;
        self.recount(category, source, 0, 1);
        Some(pending)
    }

    /// The category holding the oldest queued command overall.
    pub(super) fn oldest(&self) -> Option<u16> {
        self.fronts.first().map(|&(_, category)| category)
    }

    /// Arrival number of the oldest command of `category`.
    pub(super) fn front_seq(&self, category: u16) -> Option<u64> {
        self.queues
            .get(usize::from(category))?
            .front()
            .map(|&(seq, _)| seq)
    }

    pub(super) fn pop(&mut self, category: u16) -> Option<Pending<J>> {
        let queue = self.queues.get_mut(usize::from(category))?;
        let (seq, pending) = queue.pop_front()?;
        self.fronts.remove(&(seq, category));
        if let Some(&(next, _)) = queue.front() {
            self.fronts.insert((next, category));
        }
        self.total -= 1;
        if let Some(source) = pending.source {
            self.recount(category, source, 0, 1);
        }
        Some(pending)
    }

    /// Discards everything; returns how many were queued.
    pub(super) fn clear(&mut self) -> usize {
        for queue in &mut self.queues {
            *queue = VecDeque::new();
        }
        self.fronts.clear();
        self.per_source.clear();
        self.by_load.clear();
        core::mem::take(&mut self.total)
    }
}
