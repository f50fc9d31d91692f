//! The scheduler's error type: misuse by the embedder, never a worker's failure.

use alloc::string::String;

use crate::ids::{CategoryId, TaggedThreadId, TimerId, WorkerId};

/// Why the scheduler refused an input. Where OxenMQ throws for the same misuse, the message is
/// OxenMQ's text, typos included, so logs and tests read the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedError {
    /// `general_workers` was 0.
    #[error("Invalid set_general_threads() value {value}: general threads must be > 0")]
    InvalidGeneralThreads {
        /// The rejected value.
        value: u16,
    },
    /// A tagged thread name is empty, `_proxy`, or contains a NUL.
    #[error("Invalid tagged thread name `{0}'")]
    InvalidTaggedThreadName(String),
    /// general + batch + reply + reserved + tagged threads do not fit in a 16-bit worker id.
    #[error(
        "too many worker threads: {0} general, batch, reply, reserved and tagged threads (at most 65535)"
    )]
    TooManyWorkers(u64),
    /// More categories than a 16-bit category id can name.
    #[error("too many categories: {0} (at most 65536)")]
    TooManyCategories(usize),
    /// The category id is not one the scheduler was configured with.
    #[error("Invalid category `{0}': category does not exist")]
    UnknownCategory(CategoryId),
    /// The tagged thread id is not one the scheduler was configured with.
    #[error("Invalid tagged thread `{0}': tagged thread does not exist")]
    UnknownTaggedThread(TaggedThreadId),
    /// `job()` was asked to run in the driver.
    #[error("job() cannot be used to queue an in-proxy job")]
    InDriverJob,
    /// A batch with no jobs.
    #[error("Cannot batch a a job batch with 0 jobs")]
    EmptyBatch,
    /// A batch job (not its completion) was asked to run in the driver.
    #[error("Cannot add a proxy thread batch job -- this makes no sense")]
    InDriverBatchJob,
    /// A [`BatchBuilder`](super::BatchBuilder)'s completion was set twice.
    #[error("Completion function can only be set once")]
    CompletionAlreadySet,
    /// A [`BatchBuilder`](super::BatchBuilder) was changed or started again after it started.
    #[error("Cannot add jobs or completion function after starting a oxenmq::Batch!")]
    BatchAlreadyStarted,
    /// A batch with more jobs than a `u32` index can name.
    #[error("batch has {0} jobs; at most 4294967295 are allowed")]
    BatchTooLarge(usize),
    /// A timer interval shorter than the core's 1 µs resolution (it would fire forever).
    #[error("timer interval must be at least 1 microsecond")]
    ZeroTimerInterval,
    /// `job_finished` named a worker id the scheduler never hands out.
    #[error("worker {0} does not exist")]
    UnknownWorker(WorkerId),
    /// `job_finished` named a worker that is not running a job.
    #[error("worker {0} is not running a job")]
    WorkerIdle(WorkerId),
    /// [`add_timer_as`](super::Scheduler::add_timer_as) was given id 0 (which means "no
    /// timer") or the id of a timer that still exists.
    #[error("timer id {0} is not free")]
    TimerIdInUse(TimerId),
    /// New work was offered after [`shutdown`](super::Scheduler::shutdown).
    #[error("scheduler is shutting down")]
    ShuttingDown,
}
