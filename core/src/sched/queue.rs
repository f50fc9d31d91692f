//! Queued commands and injected tasks: one FIFO per category plus the global arrival order.
//!
//! OxenMQ keeps one list and re-examines it from the front on every loop, starting each command
//! whose category may run. Whether a command may run depends only on its category and the
//! global counts, and starting a job only makes every condition harder, so that pass always
//! starts the oldest command among the categories that may run, then the next oldest, and so on.
//! Keeping each category's FIFO separately and an index of the queues' fronts gives the same
//! order without scanning commands that cannot start.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

/// A queued command or injected task.
#[derive(Debug)]
pub(super) struct Pending<J> {
    pub(super) injected: bool,
    pub(super) job: J,
}

#[derive(Debug)]
pub(super) struct CommandQueues<J> {
    /// Per category: (arrival sequence number, job), oldest first.
    queues: Vec<VecDeque<(u64, Pending<J>)>>,
    /// (sequence number, category) of the front of every non-empty queue.
    fronts: BTreeSet<(u64, u16)>,
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
        queue.push_back((seq, pending));
        self.total += 1;
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
        Some(pending)
    }

    /// Discards everything; returns how many were queued.
    pub(super) fn clear(&mut self) -> usize {
        for queue in &mut self.queues {
            *queue = VecDeque::new();
        }
        self.fronts.clear();
        core::mem::take(&mut self.total)
    }
}
