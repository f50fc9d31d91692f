//! Snapshots of the scheduler's counters, for tests, invariant checks and the node's stats.

use alloc::vec::Vec;

/// Counters of one category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryStats {
    /// Configured reserved threads.
    pub reserved_threads: u16,
    /// Configured queue limit.
    pub max_queue: super::QueueLimit,
    /// Commands and tasks of this category running now.
    pub active: u16,
    /// Commands and tasks of this category waiting.
    pub queued: usize,
}

/// A snapshot of the whole scheduler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedStats {
    /// general + batch + reply + Σ reserved.
    pub max_workers: u16,
    /// Slots any job may use.
    pub general_workers: u16,
    /// Slots reserved for the batch pool.
    pub batch_reserved: u16,
    /// Slots reserved for the reply pool.
    pub reply_reserved: u16,
    /// Worker slots running a job of any kind (tagged threads not included).
    pub active: u16,
    /// Worker slots that have ever been handed a job.
    pub spawned: u16,
    /// Spawned worker slots waiting for a job (0 once shutting down: they were stopped).
    pub idle: u16,
    /// Batch-pool jobs running (batch jobs, `job()`s, timer firings, completions on workers).
    pub batch_active: u16,
    /// Reply jobs running.
    pub reply_active: u16,
    /// Batch-pool jobs waiting.
    pub batch_queued: usize,
    /// Reply jobs waiting.
    pub reply_queued: usize,
    /// Commands and tasks waiting, over all categories.
    pub commands_queued: usize,
    /// Tagged threads running a job.
    pub tagged_busy: u16,
    /// Jobs waiting for tagged threads, over all of them.
    pub tagged_queued: usize,
    /// Batches not finished yet.
    pub live_batches: usize,
    /// Timers scheduled (not cancelled).
    pub live_timers: usize,
    /// Per category, indexed by `CategoryId`.
    pub categories: Vec<CategoryStats>,
}

/// What [`Scheduler::shutdown`](super::Scheduler::shutdown) threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Queued commands and injected tasks.
    pub commands: usize,
    /// Queued batch-pool jobs (batch jobs, `job()`s, timer firings, completions).
    pub batch_jobs: usize,
    /// Queued reply jobs.
    pub reply_jobs: usize,
    /// Jobs queued for tagged threads.
    pub tagged_jobs: usize,
    /// Timers that were still scheduled.
    pub timers: usize,
    /// Batches that will never complete (their closures can go with the rest at `Stopped`).
    pub batches: usize,
    /// Jobs still running on workers and tagged threads; each gets its `StopWorker` when the
    /// driver reports it finished.
    pub running: usize,
}
