//! What the embedder hands in (targets) and what the scheduler hands back (outputs).

use crate::ids::{BatchId, CategoryId, TaggedThreadId, TimerId, WorkerId};

/// Where a `job()`, a batch job or a timer firing runs (OxenMQ's `optional<TaggedThreadID>`,
/// with `run_in_proxy` spelled out).
///
/// Exhaustive on purpose: these are exactly OxenMQ's three places, and embedders match on
/// them to pick a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Target {
    /// The general worker pool, counted against the batch reservation.
    #[default]
    Worker,
    /// The named tagged thread, in FIFO order with everything else addressed to it.
    Tagged(TaggedThreadId),
    /// The driver's own thread, at once (OxenMQ's `run_in_proxy`). Only timers accept it;
    /// `job()` and batch jobs refuse it with OxenMQ's errors.
    InDriver,
}

/// Where a timer's firings run; the same three places as any other job.
pub type TimerTarget = Target;

impl From<Option<TaggedThreadId>> for Target {
    /// OxenMQ's `optional<TaggedThreadID>`: none means the worker pool.
    fn from(thread: Option<TaggedThreadId>) -> Self {
        thread.map_or(Self::Worker, Self::Tagged)
    }
}

impl From<TaggedThreadId> for Target {
    fn from(thread: TaggedThreadId) -> Self {
        Self::Tagged(thread)
    }
}

/// What happens once every job of a batch has finished.
///
/// Exhaustive on purpose: OxenMQ's batch completion has exactly these four forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Completion {
    /// No completion: [`SchedOutput::BatchDone`] follows the last job.
    #[default]
    None,
    /// A [`SchedJob::Completion`] on a worker, counted against the batch reservation.
    Worker,
    /// A [`SchedJob::Completion`] on the tagged thread.
    Tagged(TaggedThreadId),
    /// [`InDriver::Completion`], run by the driver on its own thread as soon as it sees it
    /// (OxenMQ's completion `run_in_proxy`). Keep it trivial: it blocks the whole node.
    InDriver,
}

/// The scheduler's answer to a command or injected task.
///
/// Exhaustive on purpose: OxenMQ's admission has exactly these three outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Offer {
    /// Running now on this worker; the matching [`SchedOutput::RunJob`] is already queued.
    Started(WorkerId),
    /// Waiting in its category's queue.
    Queued,
    /// The category's queue is full; the job was discarded (and [`SchedOutput::Dropped`]
    /// queued for the log). OxenMQ sends no reply in this case.
    Dropped,
}

/// A job the embedder must run on the worker named in [`SchedOutput::RunJob`]. Jobs that carry
/// a payload `J` give it back; batch items, completions and timer firings name the closure the
/// embedder keeps under its [`BatchId`] or [`TimerId`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedJob<J> {
    /// An incoming command of `category`.
    Command {
        /// Its category.
        category: CategoryId,
        /// The embedder's payload (the message and the callback to call).
        job: J,
    },
    /// An injected task (`inject_task`), run as if it were a command of `category`.
    Task {
        /// The category whose limits it obeyed.
        category: CategoryId,
        /// The embedder's payload.
        job: J,
    },
    /// A reply callback (reply pool).
    Reply(J),
    /// A single `job()` (batch pool or a tagged thread).
    Job(J),
    /// Job `index` of `batch`.
    BatchItem {
        /// The batch.
        batch: BatchId,
        /// Position of the job in the batch (0-based, in the order it was added).
        index: u32,
    },
    /// The completion of `batch`; every job of the batch has finished.
    Completion {
        /// The batch.
        batch: BatchId,
    },
    /// One firing of `timer`.
    Timer {
        /// The timer.
        timer: TimerId,
    },
}

/// Work the driver runs on its own thread immediately, before handling the next output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InDriver {
    /// The completion of `batch` (completion target [`Completion::InDriver`]); the batch's
    /// [`SchedOutput::BatchDone`] follows it.
    Completion {
        /// The batch.
        batch: BatchId,
    },
    /// One firing of a timer whose target is [`Target::InDriver`].
    Timer {
        /// The timer.
        timer: TimerId,
    },
}

/// Everything the scheduler asks of its embedder. Drain with
/// [`Scheduler::poll_output`](super::Scheduler::poll_output) after every input, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedOutput<J> {
    /// Run `job` on `worker` (spawning the worker's thread on first use), then report
    /// [`Scheduler::job_finished`](super::Scheduler::job_finished) for it, even if it panicked.
    RunJob {
        /// A worker slot (`0..max_workers`) or a tagged thread (`max_workers + i`).
        worker: WorkerId,
        /// What to run.
        job: SchedJob<J>,
    },
    /// Run this on the driver's thread now.
    RunInDriver(InDriver),
    /// The batch is finished (its completion ran, or its last job did when it has none): free
    /// its closures and results.
    BatchDone {
        /// The batch.
        batch: BatchId,
    },
    /// The timer was cancelled and none of its firings is queued or running any more: free its
    /// closure.
    TimerReleased {
        /// The timer.
        timer: TimerId,
    },
    /// A command or task was discarded because its category's queue is full (log it; OxenMQ
    /// warns "No space to queue incoming command …").
    Dropped {
        /// The category whose queue was full.
        category: CategoryId,
        /// True for an injected task, false for a network command.
        injected: bool,
        /// The discarded job's payload (the embedder may say what it was, or free it).
        job: J,
    },
    /// Shutdown: this worker (or tagged thread) has nothing more to do; end its thread.
    StopWorker {
        /// The worker.
        worker: WorkerId,
    },
    /// Shutdown is complete: every worker and tagged thread is idle and has been told to stop.
    Stopped,
}
