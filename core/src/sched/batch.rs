//! Batches: the builder the embedder fills, and the scheduler's count of unfinished jobs.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Completion, SchedError, Target};
use crate::ids::BatchId;

/// The scheduling half of OxenMQ's `Batch<R>`: where each job runs and where the completion
/// runs. The embedder keeps the closures and results next to it, indexed by the job index
/// [`add_job`](Self::add_job) returns, and starts it with
/// [`Scheduler::start_batch`](super::Scheduler::start_batch).
///
/// It enforces OxenMQ's builder rules: no job may run in the driver, the completion may be set
/// once, and nothing changes after the batch started. (Rust's ownership would make "after
/// starting" impossible if starting consumed the builder; it takes `&mut` instead so an
/// embedder can keep one builder inside its own `Batch<R>` value, exactly as OxenMQ does.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchBuilder {
    jobs: Vec<Target>,
    completion: Option<Completion>,
    started: bool,
}

impl BatchBuilder {
    /// An empty batch.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            jobs: Vec::new(),
            completion: None,
            started: false,
        }
    }

    /// Reserves room for `n` more jobs (OxenMQ's `reserve`).
    pub fn reserve(&mut self, n: usize) {
        self.jobs.reserve(n);
    }

    /// Adds a job running on `target`; returns its index, which the scheduler hands back in
    /// [`SchedJob::BatchItem`](super::SchedJob::BatchItem).
    ///
    /// # Errors
    ///
    /// [`SchedError::BatchAlreadyStarted`] after the batch started,
    /// [`SchedError::InDriverBatchJob`] for [`Target::InDriver`], and
    /// [`SchedError::BatchTooLarge`] past `u32::MAX` jobs.
    pub fn add_job(&mut self, target: Target) -> Result<u32, SchedError> {
        if self.started {
            return Err(SchedError::BatchAlreadyStarted);
        }
        if target == Target::InDriver {
            return Err(SchedError::InDriverBatchJob);
        }
        let index = u32::try_from(self.jobs.len())
            .map_err(|_| SchedError::BatchTooLarge(self.jobs.len()))?;
        self.jobs.push(target);
        Ok(index)
    }

    /// Sets where the completion runs. Any call sets it, [`Completion::None`] included.
    ///
    /// # Errors
    ///
    /// [`SchedError::BatchAlreadyStarted`] after the batch started, and
    /// [`SchedError::CompletionAlreadySet`] on the second call.
    pub fn completion(&mut self, completion: Completion) -> Result<(), SchedError> {
        if self.started {
            return Err(SchedError::BatchAlreadyStarted);
        }
        if self.completion.is_some() {
            return Err(SchedError::CompletionAlreadySet);
        }
        self.completion = Some(completion);
        Ok(())
    }

    /// Number of jobs added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True if no job was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// True once [`Scheduler::start_batch`](super::Scheduler::start_batch) accepted it.
    #[must_use]
    pub const fn is_started(&self) -> bool {
        self.started
    }

    /// Where each job runs, by index.
    #[must_use]
    pub fn jobs(&self) -> &[Target] {
        &self.jobs
    }

    /// Where the completion runs ([`Completion::None`] if never set).
    #[must_use]
    pub fn completion_target(&self) -> Completion {
        self.completion.unwrap_or_default()
    }

    pub(super) const fn mark_started(&mut self) {
        self.started = true;
    }
}

/// What the end of one batch job means for its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BatchStatus {
    /// Other jobs of the batch have not finished yet.
    Running,
    /// That was the last job; the completion must run here (never [`Completion::None`]).
    Complete(Completion),
    /// That was the last job and there is no completion: the batch is gone.
    Done,
    /// The batch is not known (abandoned by shutdown).
    Unknown,
}

#[derive(Debug)]
struct BatchState {
    /// Jobs not yet finished.
    remaining: u32,
    completion: Completion,
}

/// Unfinished batches. A batch stays here from submission until its completion finished (or
/// its last job, without a completion).
#[derive(Debug)]
pub(super) struct Batches {
    next: u64,
    live: BTreeMap<BatchId, BatchState>,
}

impl Batches {
    pub(super) const fn new() -> Self {
        // Ids start at 1 so that `BatchId(0)` never names a batch.
        Self {
            next: 1,
            live: BTreeMap::new(),
        }
    }

    pub(super) fn create(&mut self, jobs: u32, completion: Completion) -> BatchId {
        let id = BatchId(self.next);
        self.next += 1;
        self.live.insert(
            id,
            BatchState {
                remaining: jobs,
                completion,
            },
        );
        id
    }

    pub(super) fn item_finished(&mut self, batch: BatchId) -> BatchStatus {
        let Some(state) = self.live.get_mut(&batch) else {
            return BatchStatus::Unknown;
        };
        state.remaining = state.remaining.saturating_sub(1);
        if state.remaining > 0 {
            return BatchStatus::Running;
        }
        match state.completion {
            Completion::None => {
                self.live.remove(&batch);
                BatchStatus::Done
            }
            other => BatchStatus::Complete(other),
        }
    }

    /// Forgets a batch whose completion has run; true if it was known.
    pub(super) fn remove(&mut self, batch: BatchId) -> bool {
        self.live.remove(&batch).is_some()
    }

    pub(super) fn remaining(&self, batch: BatchId) -> Option<u32> {
        self.live.get(&batch).map(|s| s.remaining)
    }

    pub(super) fn len(&self) -> usize {
        self.live.len()
    }

    /// Forgets every batch; returns how many there were.
    pub(super) fn clear(&mut self) -> usize {
        let n = self.live.len();
        self.live.clear();
        n
    }
}
