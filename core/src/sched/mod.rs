//! The job scheduler: which job runs on which worker, and when.
//!
//! OxenMQ's proxy thread decides where every command, batch job, reply callback and timer
//! firing runs, and its workers run them. Here that decision is a pure state machine,
//! [`Scheduler<J>`]: the embedder owns the threads, the closures and the results, and the
//! scheduler only hands out worker ids and the payloads `J` the embedder attached to its jobs.
//! It has no clock (timers take `now`) and allocates only for work that is queued or running.
//!
//! # Drive contract
//!
//! Inputs are the `offer_*`/`submit_*`/`inject_task`/`add_timer`/`cancel_timer` calls,
//! [`job_finished`](Scheduler::job_finished), [`handle_timeout`](Scheduler::handle_timeout) and
//! [`shutdown`](Scheduler::shutdown). After each one, drain
//! [`poll_output`](Scheduler::poll_output) until `None`, acting on every output in order, then
//! read [`poll_timeout`](Scheduler::poll_timeout). Dispatch re-runs at the end of every input,
//! so the state between inputs is always a fixed point: no queued job could start.
//!
//! For every [`SchedOutput::RunJob`] the driver runs the job on that worker and then calls
//! `job_finished(worker)` **whether the job returned or panicked**: the worker slot, the
//! category count, the batch's remaining-jobs count and the timer's squelch flag are all
//! released there, and a batch completes exactly once only because every job of it reports
//! back once. [`SchedOutput::RunInDriver`] is run by the driver on its own thread before it
//! looks at the next output and needs no report.
//!
//! # Workers and how `active` is counted
//!
//! `max_workers = general + batch + reply + Σ category.reserved_threads`. Worker slots are
//! `WorkerId(0..max_workers)`; a slot is *spawned* the first time it is handed a job (new slots
//! are taken in increasing order), and a finished slot goes on top of an idle stack, so the
//! most recently finished worker is reused first (LIFO), as in OxenMQ. Tagged thread `i` is
//! `WorkerId(max_workers + i)` and `TaggedThreadId(i)`; it exists from the start and is outside
//! every limit below.
//!
//! `active` is the number of worker slots running a job of any kind (command, injected task,
//! batch job, `job()`, timer firing, completion, reply callback), whichever rule admitted it:
//! OxenMQ's `workers.size() - idle_workers.size()`. Slots are not labelled "general" or
//! "reserved"; the reservations are only conditions on the counts:
//!
//! * a batch-pool or reply job may start iff `active < max_workers` and (`pool_active <
//!   pool_reserved` or `active < general`), where `pool_active` counts that pool's running
//!   jobs;
//! * a command or injected task is queued iff `cat.active >= cat.reserved && active >=
//!   general`, else it starts at once, and a queued one is dropped instead iff its
//!   [`QueueLimit`] is reached. One divergence (the fair-drop rule): when a network command
//!   offered with its source ([`offer_command_from`](Scheduler::offer_command_from)) meets a
//!   full queue and another source holds at least two more of that queue than its own source,
//!   the heaviest source's newest queued command is dropped instead and this one queued, so one
//!   flooding connection cannot take a category's whole queue from the others.
//!
//! These keep `active <= general + Σ min(pool_active, pool_reserved) <= max_workers`, so a
//! command admitted by its reservation always finds a free slot.
//!
//! Dispatch order, as OxenMQ's `proxy_process_queue`: (1) each idle tagged thread takes the
//! next job of its own FIFO; (2) batch-pool jobs in FIFO order (batch jobs, `job()`s, timer
//! firings, completions on workers); (3) reply jobs; (4) queued commands, oldest first, each
//! starting if its category has a free reserved slot or general capacity is free, so a later
//! command of another category may overtake an older one that cannot start.
//!
//! # Timers
//!
//! A due timer fires into the batch pool, onto its tagged thread, or as
//! [`InDriver::Timer`]. Squelch skips a firing while the previous one is still queued or
//! running (in-driver firings finish before the next input, so they never squelch). A timer is
//! re-armed on its original grid (`first deadline + k × interval`), so late wake-ups never
//! accumulate drift, and a wake-up that missed several periods fires **once**, at the next
//! grid point after `now`, rather than once per missed period.
//!
//! [`cancel_timer`](Scheduler::cancel_timer) unschedules the timer and discards its queued
//! firings at once; a firing already running finishes. [`SchedOutput::TimerReleased`] then
//! tells the driver it may drop the closure (OxenMQ keeps the closure of a cancelled timer
//! forever).
//!
//! # Shutdown
//!
//! [`shutdown`](Scheduler::shutdown) is OxenMQ's `QUIT` (`max_workers = 0`): it discards every
//! queued command, job and timer (and so every unfinished batch: no completion runs and no
//! `BatchDone` follows), sends [`SchedOutput::StopWorker`] to each spawned idle worker and idle
//! tagged thread at once and to each busy one when it reports `job_finished`, then
//! [`SchedOutput::Stopped`] once nothing is running; the driver then frees everything it still
//! holds. From `shutdown` on nothing is dispatched, in-driver completions included, and new
//! work is refused with [`SchedError::ShuttingDown`]; `job_finished` keeps working,
//! `handle_timeout` and `cancel_timer` become no-ops, and a second `shutdown` does nothing.

mod batch;
mod config;
mod error;
mod output;
mod queue;
mod stats;
mod timers;

#[cfg(test)]
mod tests;

pub use batch::BatchBuilder;
pub use config::{
    CategoryLimits, QueueLimit, SchedulerConfig, check_tagged_thread, check_tagged_thread_name,
    check_timer_interval,
};
pub use error::SchedError;
pub use output::{Completion, InDriver, Offer, SchedJob, SchedOutput, Target, TimerTarget};
pub use stats::{CategoryStats, SchedStats, ShutdownReport};

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::ids::{BatchId, CategoryId, TaggedThreadId, TimerId, WorkerId};
use crate::time::{Duration, Instant};
use batch::{BatchStatus, Batches};
use queue::{CommandQueues, Pending};
use timers::Timers;

/// Work for the batch pool or a tagged thread, waiting for a thread.
#[derive(Debug)]
enum Work<J> {
    Job(J),
    Item { batch: BatchId, index: u32 },
    Completion { batch: BatchId },
    Timer { timer: TimerId },
}

/// What a batch-pool worker or tagged thread is running, kept to settle its batch or timer
/// when it finishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolJob {
    Job,
    Item(BatchId),
    Completion(BatchId),
    Timer(TimerId),
}

impl<J> Work<J> {
    fn split(self) -> (SchedJob<J>, PoolJob) {
        match self {
            Self::Job(job) => (SchedJob::Job(job), PoolJob::Job),
            Self::Item { batch, index } => {
                (SchedJob::BatchItem { batch, index }, PoolJob::Item(batch))
            }
            Self::Completion { batch } => {
                (SchedJob::Completion { batch }, PoolJob::Completion(batch))
            }
            Self::Timer { timer } => (SchedJob::Timer { timer }, PoolJob::Timer(timer)),
        }
    }

    fn is_firing_of(&self, id: TimerId) -> bool {
        matches!(self, Self::Timer { timer } if *timer == id)
    }
}

/// What a busy worker slot is running, kept to release the right counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Running {
    Command(u16),
    Pool(PoolJob),
    Reply,
}

#[derive(Debug)]
struct Category {
    limits: CategoryLimits,
    active: u16,
}

#[derive(Debug)]
struct TaggedThread<J> {
    name: String,
    busy: Option<PoolJob>,
    queue: VecDeque<Work<J>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
    Stopped,
}

/// The worker scheduler, generic over the payload `J` the embedder attaches to commands,
/// tasks, reply callbacks and `job()`s. See the [module documentation](self) for the rules.
#[derive(Debug)]
pub struct Scheduler<J> {
    general: u16,
    batch_reserved: u16,
    reply_reserved: u16,
    max_workers: u16,
    categories: Vec<Category>,
    /// Categories with reserved threads: the only ones that can start while `active >= general`.
    reserved_categories: Vec<u16>,
    commands: CommandQueues<J>,
    /// One entry per spawned worker slot: what it runs, or `None` when idle.
    slots: Vec<Option<Running>>,
    /// Idle spawned slots; the last one pushed is reused first.
    idle: Vec<u16>,
    active: u16,
    batch_active: u16,
    reply_active: u16,
    batch_queue: VecDeque<Work<J>>,
    reply_queue: VecDeque<J>,
    tagged: Vec<TaggedThread<J>>,
    batches: Batches,
    timers: Timers,
    outputs: VecDeque<SchedOutput<J>>,
    phase: Phase,
}

impl<J> Scheduler<J> {
    /// Builds a scheduler with the limits of `config`.
    ///
    /// # Errors
    ///
    /// Whatever [`SchedulerConfig::max_workers`] rejects.
    pub fn new(config: SchedulerConfig) -> Result<Self, SchedError> {
        let max_workers = config.max_workers()?;
        let batch_reserved = config.effective_batch_threads();
        let reply_reserved = config.effective_reply_threads();
        let categories: Vec<Category> = config
            .categories
            .iter()
            .map(|&limits| Category { limits, active: 0 })
            .collect();
        let reserved_categories = categories
            .iter()
            .enumerate()
            .filter(|(_, c)| c.limits.reserved_threads > 0)
            // At most 65 536 categories (checked by `max_workers`), so every index fits.
            .map(|(i, _)| i as u16)
            .collect();
        let tagged = config
            .tagged_threads
            .into_iter()
            .map(|name| TaggedThread {
                name,
                busy: None,
                queue: VecDeque::new(),
            })
            .collect();
        Ok(Self {
            general: config.general_workers,
            batch_reserved,
            reply_reserved,
            max_workers,
            commands: CommandQueues::new(categories.len()),
            categories,
            reserved_categories,
            slots: Vec::new(),
            idle: Vec::new(),
            active: 0,
            batch_active: 0,
            reply_active: 0,
            batch_queue: VecDeque::new(),
            reply_queue: VecDeque::new(),
            tagged,
            batches: Batches::new(),
            timers: Timers::new(),
            outputs: VecDeque::new(),
            phase: Phase::Running,
        })
    }

    // ----- inputs -----

    /// An incoming command of `category`: starts it, queues it, or drops it (§3.1).
    ///
    /// # Errors
    ///
    /// [`SchedError::UnknownCategory`], or [`SchedError::ShuttingDown`] after `shutdown`.
    pub fn offer_command(&mut self, category: CategoryId, job: J) -> Result<Offer, SchedError> {
        self.offer(category, job, false, None)
    }

    /// [`offer_command`](Self::offer_command) for a command that came from `source` (the
    /// embedder's key for the connection it arrived on). When the category's queue is full,
    /// the fair-drop rule applies: if some other source holds at least two more of the queue
    /// than `source` does, that source's newest queued command is dropped (with
    /// [`SchedOutput::Dropped`]) and this one queued in its place; otherwise this one is
    /// dropped. A single flooding peer so fills only its own share of a queue: a well-behaved
    /// peer next to it always finds room.
    ///
    /// # Errors
    ///
    /// [`SchedError::UnknownCategory`], or [`SchedError::ShuttingDown`] after `shutdown`.
    pub fn offer_command_from(
        &mut self,
        category: CategoryId,
        source: u64,
        job: J,
    ) -> Result<Offer, SchedError> {
        self.offer(category, job, false, Some(source))
    }

    /// OxenMQ's `inject_task`: `job` runs as if it were a command of `category`, under the same
    /// reservation and queue rules.
    ///
    /// # Errors
    ///
    /// [`SchedError::UnknownCategory`], or [`SchedError::ShuttingDown`] after `shutdown`.
    pub fn inject_task(&mut self, category: CategoryId, job: J) -> Result<Offer, SchedError> {
        self.offer(category, job, true, None)
    }

    /// A reply callback, for the reply pool.
    ///
    /// # Errors
    ///
    /// [`SchedError::ShuttingDown`] after `shutdown`.
    pub fn submit_reply_job(&mut self, job: J) -> Result<(), SchedError> {
        self.check_running()?;
        self.reply_queue.push_back(job);
        self.dispatch();
        Ok(())
    }

    /// OxenMQ's `job()`: one job with no result, in the batch pool or on a tagged thread.
    ///
    /// # Errors
    ///
    /// [`SchedError::InDriverJob`] for [`Target::InDriver`], [`SchedError::UnknownTaggedThread`],
    /// or [`SchedError::ShuttingDown`] after `shutdown`.
    pub fn submit_job(&mut self, job: J, target: Target) -> Result<(), SchedError> {
        self.check_running()?;
        if target == Target::InDriver {
            return Err(SchedError::InDriverJob);
        }
        self.check_target(target)?;
        self.enqueue_work(target, Work::Job(job));
        self.dispatch();
        Ok(())
    }

    /// A batch with one job per entry of `jobs` (each entry says where that job runs) and a
    /// completion. Job `i` comes back as [`SchedJob::BatchItem`] with `index: i`.
    ///
    /// # Errors
    ///
    /// [`SchedError::EmptyBatch`], [`SchedError::InDriverBatchJob`],
    /// [`SchedError::BatchTooLarge`], [`SchedError::UnknownTaggedThread`] (for a job or the
    /// completion), or [`SchedError::ShuttingDown`]. Nothing is queued on error.
    pub fn submit_batch(
        &mut self,
        jobs: &[Target],
        completion: Completion,
    ) -> Result<BatchId, SchedError> {
        self.check_running()?;
        if jobs.is_empty() {
            return Err(SchedError::EmptyBatch);
        }
        let count = u32::try_from(jobs.len()).map_err(|_| SchedError::BatchTooLarge(jobs.len()))?;
        for &target in jobs {
            if target == Target::InDriver {
                return Err(SchedError::InDriverBatchJob);
            }
            self.check_target(target)?;
        }
        if let Completion::Tagged(thread) = completion {
            self.check_target(Target::Tagged(thread))?;
        }
        let batch = self.batches.create(count, completion);
        for (index, &target) in (0..count).zip(jobs) {
            self.enqueue_work(target, Work::Item { batch, index });
        }
        self.dispatch();
        Ok(batch)
    }

    /// Starts a batch built with a [`BatchBuilder`] and marks the builder started, so that
    /// later changes fail as they do in OxenMQ.
    ///
    /// # Errors
    ///
    /// [`SchedError::BatchAlreadyStarted`] if it already started, else as
    /// [`submit_batch`](Self::submit_batch); on error the builder is left unstarted.
    pub fn start_batch(&mut self, builder: &mut BatchBuilder) -> Result<BatchId, SchedError> {
        if builder.is_started() {
            return Err(SchedError::BatchAlreadyStarted);
        }
        let batch = self.submit_batch(builder.jobs(), builder.completion_target())?;
        builder.mark_started();
        Ok(batch)
    }

    /// The job running on `worker` has finished (returned or panicked). Frees the slot and
    /// settles the job's batch, timer or category, then dispatches.
    ///
    /// # Errors
    ///
    /// [`SchedError::UnknownWorker`] for an id that is neither a worker slot nor a tagged
    /// thread, [`SchedError::WorkerIdle`] for one that is not running a job. Nothing changes.
    pub fn job_finished(&mut self, worker: WorkerId) -> Result<(), SchedError> {
        let index = worker.index();
        if index < usize::from(self.max_workers) {
            let running = self
                .slots
                .get_mut(index)
                .and_then(Option::take)
                .ok_or(SchedError::WorkerIdle(worker))?;
            self.active -= 1;
            match running {
                Running::Command(category) => {
                    if let Some(cat) = self.categories.get_mut(usize::from(category)) {
                        cat.active -= 1;
                    }
                }
                Running::Pool(job) => {
                    self.batch_active -= 1;
                    self.pool_job_finished(job);
                }
                Running::Reply => self.reply_active -= 1,
            }
            if self.phase == Phase::Running {
                // `index < max_workers <= u16::MAX`.
                self.idle.push(index as u16);
            } else {
                self.emit(SchedOutput::StopWorker { worker });
            }
        } else {
            let thread = self
                .tagged
                .get_mut(index - usize::from(self.max_workers))
                .ok_or(SchedError::UnknownWorker(worker))?;
            let job = thread.busy.take().ok_or(SchedError::WorkerIdle(worker))?;
            self.pool_job_finished(job);
            if self.phase != Phase::Running {
                self.emit(SchedOutput::StopWorker { worker });
            }
        }
        self.check_stopped();
        self.dispatch();
        Ok(())
    }

    /// A repeating timer, first due at `now + interval`. With `squelch`, a firing is skipped
    /// while the previous one is queued or running.
    ///
    /// # Errors
    ///
    /// [`SchedError::ZeroTimerInterval`] for an interval under 1 µs,
    /// [`SchedError::UnknownTaggedThread`], or [`SchedError::ShuttingDown`].
    pub fn add_timer(
        &mut self,
        now: Instant,
        interval: Duration,
        squelch: bool,
        target: TimerTarget,
    ) -> Result<TimerId, SchedError> {
        let micros = self.check_timer(interval, target)?;
        Ok(self.timers.add(now, micros, squelch, target))
    }

    /// Validates a new timer; returns its interval in microseconds.
    fn check_timer(&self, interval: Duration, target: TimerTarget) -> Result<u64, SchedError> {
        self.check_running()?;
        let micros = check_timer_interval(interval)?;
        self.check_target(target)?;
        Ok(micros)
    }

    /// [`add_timer`](Self::add_timer) under an id the caller chose, for embedders that hand out
    /// timer ids themselves (the mio driver does, so that any thread can add a timer without
    /// waiting for the proxy). The id must not be 0 or belong to a timer that still exists;
    /// later automatic ids are always higher than it.
    ///
    /// # Errors
    ///
    /// As [`add_timer`](Self::add_timer), plus [`SchedError::TimerIdInUse`].
    pub fn add_timer_as(
        &mut self,
        now: Instant,
        id: TimerId,
        interval: Duration,
        squelch: bool,
        target: TimerTarget,
    ) -> Result<(), SchedError> {
        let micros = self.check_timer(interval, target)?;
        if !self.timers.is_free(id) {
            return Err(SchedError::TimerIdInUse(id));
        }
        self.timers.insert(now, id, micros, squelch, target);
        Ok(())
    }

    /// Cancels a timer: no further firing is scheduled and queued firings are discarded; a
    /// running one finishes, and [`SchedOutput::TimerReleased`] follows once none is left.
    /// Returns false (and does nothing) if the timer is unknown or already cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let Some(entry) = self.timers.cancel(timer) else {
            return false;
        };
        let removed = match entry.target {
            Target::Worker => remove_firings(&mut self.batch_queue, timer),
            Target::Tagged(thread) => self
                .tagged
                .get_mut(thread.index())
                .map_or(0, |t| remove_firings(&mut t.queue, timer)),
            Target::InDriver => 0,
        };
        entry.in_flight = entry.in_flight.saturating_sub(removed);
        if entry.in_flight == 0 {
            self.timers.remove(timer);
            self.emit(SchedOutput::TimerReleased { timer });
        }
        true
    }

    /// Fires every timer due at `now` (once each, however late), then dispatches. Calling it
    /// early, or twice with the same `now`, is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        while let Some(timer) = self.timers.pop_due(now) {
            let Some(entry) = self.timers.get_mut(timer) else {
                continue;
            };
            let queue = match entry.target {
                Target::InDriver => {
                    self.outputs
                        .push_back(SchedOutput::RunInDriver(InDriver::Timer { timer }));
                    continue;
                }
                Target::Worker => &mut self.batch_queue,
                Target::Tagged(thread) => match self.tagged.get_mut(thread.index()) {
                    Some(t) => &mut t.queue,
                    None => continue,
                },
            };
            if entry.squelch && entry.in_flight > 0 {
                continue;
            }
            entry.in_flight = entry.in_flight.saturating_add(1);
            queue.push_back(Work::Timer { timer });
        }
        self.dispatch();
    }

    /// Stops scheduling (§3.7); see the [module documentation](self#shutdown). Returns what was
    /// discarded; a second call discards nothing.
    pub fn shutdown(&mut self) -> ShutdownReport {
        if self.phase != Phase::Running {
            return ShutdownReport::default();
        }
        self.phase = Phase::ShuttingDown;
        let tagged_busy = self.tagged.iter().filter(|t| t.busy.is_some()).count();
        let report = ShutdownReport {
            commands: self.commands.clear(),
            batch_jobs: core::mem::take(&mut self.batch_queue).len(),
            reply_jobs: core::mem::take(&mut self.reply_queue).len(),
            tagged_jobs: self
                .tagged
                .iter_mut()
                .map(|t| core::mem::take(&mut t.queue).len())
                .sum(),
            timers: self.timers.clear(),
            batches: self.batches.clear(),
            running: usize::from(self.active) + tagged_busy,
        };
        let mut idle = core::mem::take(&mut self.idle);
        idle.sort_unstable();
        for worker in idle {
            self.emit(SchedOutput::StopWorker {
                worker: WorkerId(worker),
            });
        }
        for i in 0..self.tagged.len() {
            if self.tagged[i].busy.is_none() {
                let worker = self.tagged_worker_id(i);
                self.emit(SchedOutput::StopWorker { worker });
            }
        }
        self.check_stopped();
        report
    }

    // ----- outputs -----

    /// The next thing for the embedder to do, in order. Drain after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<SchedOutput<J>> {
        self.outputs.pop_front()
    }

    /// The next [`SchedOutput::RunJob`] or [`SchedOutput::StopWorker`], leaving every other
    /// output queued in order for [`poll_output`](Self::poll_output).
    ///
    /// For embedders whose worker threads share the scheduler: a worker that finishes a job
    /// calls [`job_finished`](Self::job_finished) itself and hands out the jobs this returns
    /// (its own next job first of all, as the freed slot is reused first) without waiting for
    /// the driver's loop; the loop still drains the rest (batch completions, timer releases,
    /// shutdown) with `poll_output`. Per worker, jobs and stops come out in the order they were
    /// decided.
    #[must_use]
    pub fn poll_dispatch(&mut self) -> Option<SchedOutput<J>> {
        let at = self.outputs.iter().position(|o| {
            matches!(
                o,
                SchedOutput::RunJob { .. } | SchedOutput::StopWorker { .. }
            )
        })?;
        self.outputs.remove(at)
    }

    /// True if outputs are waiting to be drained.
    #[must_use]
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called (the earliest timer
    /// deadline); `None` without timers or once shutting down.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        self.timers.next_deadline()
    }

    // ----- getters -----

    /// general + batch + reply + Σ reserved worker slots.
    #[must_use]
    pub const fn max_workers(&self) -> u16 {
        self.max_workers
    }

    /// Slots any job may use.
    #[must_use]
    pub const fn general_workers(&self) -> u16 {
        self.general
    }

    /// Slots reserved for the batch pool.
    #[must_use]
    pub const fn batch_reserved(&self) -> u16 {
        self.batch_reserved
    }

    /// Slots reserved for the reply pool.
    #[must_use]
    pub const fn reply_reserved(&self) -> u16 {
        self.reply_reserved
    }

    /// Worker slots running a job (tagged threads not counted).
    #[must_use]
    pub const fn active(&self) -> u16 {
        self.active
    }

    /// Worker slots that have ever been handed a job.
    #[must_use]
    pub fn spawned_workers(&self) -> u16 {
        // At most `max_workers` slots are ever created.
        self.slots.len() as u16
    }

    /// Number of configured categories.
    #[must_use]
    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    /// The limits `category` was configured with.
    #[must_use]
    pub fn category_limits(&self, category: CategoryId) -> Option<CategoryLimits> {
        self.categories.get(category.index()).map(|c| c.limits)
    }

    /// Commands and tasks of `category` running now.
    #[must_use]
    pub fn category_active(&self, category: CategoryId) -> Option<u16> {
        self.categories.get(category.index()).map(|c| c.active)
    }

    /// Commands and tasks of `category` waiting.
    #[must_use]
    pub fn category_queued(&self, category: CategoryId) -> Option<usize> {
        self.categories
            .get(category.index())
            .map(|_| self.commands.len(category.get()))
    }

    /// Commands and tasks waiting, over all categories.
    #[must_use]
    pub const fn commands_queued(&self) -> usize {
        self.commands.total()
    }

    /// Batch-pool jobs waiting.
    #[must_use]
    pub fn batch_queued(&self) -> usize {
        self.batch_queue.len()
    }

    /// Reply jobs waiting.
    #[must_use]
    pub fn reply_queued(&self) -> usize {
        self.reply_queue.len()
    }

    /// Number of tagged threads.
    #[must_use]
    pub fn tagged_thread_count(&self) -> usize {
        self.tagged.len()
    }

    /// The worker id of tagged thread `thread`.
    #[must_use]
    pub fn tagged_worker(&self, thread: TaggedThreadId) -> Option<WorkerId> {
        (thread.index() < self.tagged.len()).then(|| self.tagged_worker_id(thread.index()))
    }

    /// The tagged thread behind worker id `worker`, if it is one.
    #[must_use]
    pub fn tagged_thread_of(&self, worker: WorkerId) -> Option<TaggedThreadId> {
        let i = worker.index().checked_sub(usize::from(self.max_workers))?;
        // `i < tagged.len() <= u16::MAX`.
        (i < self.tagged.len()).then_some(TaggedThreadId(i as u16))
    }

    /// The name tagged thread `thread` was configured with.
    #[must_use]
    pub fn tagged_thread_name(&self, thread: TaggedThreadId) -> Option<&str> {
        self.tagged.get(thread.index()).map(|t| t.name.as_str())
    }

    /// Jobs waiting for tagged thread `thread`.
    #[must_use]
    pub fn tagged_queued(&self, thread: TaggedThreadId) -> Option<usize> {
        self.tagged.get(thread.index()).map(|t| t.queue.len())
    }

    /// True if `worker` (slot or tagged thread) is running a job.
    #[must_use]
    pub fn is_busy(&self, worker: WorkerId) -> bool {
        let index = worker.index();
        if index < usize::from(self.max_workers) {
            self.slots.get(index).is_some_and(Option::is_some)
        } else {
            self.tagged
                .get(index - usize::from(self.max_workers))
                .is_some_and(|t| t.busy.is_some())
        }
    }

    /// Jobs of `batch` not finished yet; `None` once the batch is done (or unknown).
    #[must_use]
    pub fn batch_remaining(&self, batch: BatchId) -> Option<u32> {
        self.batches.remaining(batch)
    }

    /// True while `timer` is scheduled (added and not cancelled).
    #[must_use]
    pub fn timer_scheduled(&self, timer: TimerId) -> bool {
        self.timers.get(timer).is_some_and(|e| !e.cancelled)
    }

    /// True from [`shutdown`](Self::shutdown) on.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.phase != Phase::Running
    }

    /// True once [`SchedOutput::Stopped`] has been emitted.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// A snapshot of every counter.
    #[must_use]
    pub fn stats(&self) -> SchedStats {
        SchedStats {
            max_workers: self.max_workers,
            general_workers: self.general,
            batch_reserved: self.batch_reserved,
            reply_reserved: self.reply_reserved,
            active: self.active,
            spawned: self.spawned_workers(),
            // At most `max_workers` idle slots.
            idle: self.idle.len() as u16,
            batch_active: self.batch_active,
            reply_active: self.reply_active,
            batch_queued: self.batch_queue.len(),
            reply_queued: self.reply_queue.len(),
            commands_queued: self.commands.total(),
            // At most 65 535 tagged threads.
            tagged_busy: self.tagged.iter().filter(|t| t.busy.is_some()).count() as u16,
            tagged_queued: self.tagged.iter().map(|t| t.queue.len()).sum(),
            live_batches: self.batches.len(),
            live_timers: self.timers.live(),
            categories: self
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| CategoryStats {
                    reserved_threads: c.limits.reserved_threads,
                    max_queue: c.limits.max_queue,
                    active: c.active,
                    // Fewer than 65 537 categories.
                    queued: self.commands.len(i as u16),
                })
                .collect(),
        }
    }

    // ----- internals -----

    fn check_running(&self) -> Result<(), SchedError> {
        if self.phase == Phase::Running {
            Ok(())
        } else {
            Err(SchedError::ShuttingDown)
        }
    }

    fn check_target(&self, target: Target) -> Result<(), SchedError> {
        match target {
            Target::Tagged(thread) => check_tagged_thread(thread, self.tagged.len()),
            _ => Ok(()),
        }
    }

    fn tagged_worker_id(&self, i: usize) -> WorkerId {
        // `max_workers + tagged.len() <= u16::MAX` was checked at construction.
        WorkerId(self.max_workers + i as u16)
    }

    fn emit(&mut self, output: SchedOutput<J>) {
        self.outputs.push_back(output);
    }

    fn offer(
        &mut self,
        category: CategoryId,
        job: J,
        injected: bool,
        source: Option<u64>,
    ) -> Result<Offer, SchedError> {
        self.check_running()?;
        let c = category.get();
        let Some(cat) = self.categories.get(category.index()) else {
            return Err(SchedError::UnknownCategory(category));
        };
        let limits = cat.limits;
        // `take_slot` cannot fail once the rule admits the command (see the module docs), but
        // if it ever did the command would simply queue.
        let slot = if self.command_may_start(c) {
            self.take_slot()
        } else {
            None
        };
        if let Some(slot) = slot {
            let job = if injected {
                SchedJob::Task { category, job }
            } else {
                SchedJob::Command { category, job }
            };
            // Dispatch already ran to a fixed point after the previous input, and starting (or
            // queueing) a command only takes capacity away, so nothing else can start now.
            self.start_command(slot, c, job);
            return Ok(Offer::Started(WorkerId(slot)));
        }
        if limits.queue_full(self.commands.len(c)) {
            match source.and_then(|s| self.fair_victim(c, s)) {
                Some(victim) => self.emit(SchedOutput::Dropped {
                    category,
                    injected: victim.injected,
                    job: victim.job,
                }),
                None => {
                    self.emit(SchedOutput::Dropped {
                        category,
                        injected,
                        job,
                    });
                    return Ok(Offer::Dropped);
                }
            }
        }
        self.commands.push(
            c,
            Pending {
                injected,
                source,
                job,
            },
        );
        Ok(Offer::Queued)
    }

    /// The fair-drop rule (see [`offer_command_from`](Self::offer_command_from)): takes out
    /// the newest command of the source holding the most of `c`'s full queue, if it holds at
    /// least two more than `source` (one more would only swap the two sources' places).
    fn fair_victim(&mut self, c: u16, source: u64) -> Option<Pending<J>> {
        let (heaviest, load) = self.commands.heaviest(c)?;
        if heaviest == source || self.commands.count(c, source) + 2 > load {
            return None;
        }
        self.commands.evict_newest(c, heaviest)
    }

    /// OxenMQ's admission rule for a command or task of category `c`.
    fn command_may_start(&self, c: u16) -> bool {
        let Some(cat) = self.categories.get(usize::from(c)) else {
            return false;
        };
        self.active < self.max_workers
            && (cat.active < cat.limits.reserved_threads || self.active < self.general)
    }

    /// OxenMQ's admission rule for a batch-pool or reply job.
    const fn pool_may_start(&self, pool_active: u16, pool_reserved: u16) -> bool {
        self.active < self.max_workers
            && (pool_active < pool_reserved || self.active < self.general)
    }

    /// An idle worker slot: the most recently freed one, else the next never-used one.
    fn take_slot(&mut self) -> Option<u16> {
        if let Some(slot) = self.idle.pop() {
            return Some(slot);
        }
        if self.slots.len() < usize::from(self.max_workers) {
            let slot = u16::try_from(self.slots.len()).ok()?;
            self.slots.push(None);
            return Some(slot);
        }
        None
    }

    fn start_on(&mut self, slot: u16, running: Running, job: SchedJob<J>) {
        if let Some(entry) = self.slots.get_mut(usize::from(slot)) {
            *entry = Some(running);
            self.active += 1;
            self.emit(SchedOutput::RunJob {
                worker: WorkerId(slot),
                job,
            });
        }
    }

    fn start_command(&mut self, slot: u16, c: u16, job: SchedJob<J>) {
        if let Some(cat) = self.categories.get_mut(usize::from(c)) {
            cat.active += 1;
        }
        self.start_on(slot, Running::Command(c), job);
    }

    fn enqueue_work(&mut self, target: Target, work: Work<J>) {
        match target {
            Target::Tagged(thread) => {
                if let Some(t) = self.tagged.get_mut(thread.index()) {
                    t.queue.push_back(work);
                }
            }
            // Callers refuse `InDriver` for plain jobs; the worker pool is the safe fallback.
            Target::Worker | Target::InDriver => self.batch_queue.push_back(work),
        }
    }

    /// Settles the batch or timer of a batch-pool or tagged-thread job that finished.
    fn pool_job_finished(&mut self, job: PoolJob) {
        match job {
            PoolJob::Job => {}
            PoolJob::Item(batch) => match self.batches.item_finished(batch) {
                BatchStatus::Running | BatchStatus::Unknown => {}
                BatchStatus::Done => self.emit(SchedOutput::BatchDone { batch }),
                BatchStatus::Complete(Completion::InDriver) => {
                    self.batches.remove(batch);
                    self.emit(SchedOutput::RunInDriver(InDriver::Completion { batch }));
                    self.emit(SchedOutput::BatchDone { batch });
                }
                BatchStatus::Complete(Completion::Tagged(thread)) => {
                    self.enqueue_work(Target::Tagged(thread), Work::Completion { batch });
                }
                BatchStatus::Complete(Completion::Worker | Completion::None) => {
                    self.enqueue_work(Target::Worker, Work::Completion { batch });
                }
            },
            PoolJob::Completion(batch) => {
                if self.batches.remove(batch) {
                    self.emit(SchedOutput::BatchDone { batch });
                }
            }
            PoolJob::Timer(timer) => {
                let Some(entry) = self.timers.get_mut(timer) else {
                    return;
                };
                entry.in_flight = entry.in_flight.saturating_sub(1);
                if entry.cancelled && entry.in_flight == 0 {
                    self.timers.remove(timer);
                    self.emit(SchedOutput::TimerReleased { timer });
                }
            }
        }
    }

    fn check_stopped(&mut self) {
        if self.phase == Phase::ShuttingDown
            && self.active == 0
            && self.tagged.iter().all(|t| t.busy.is_none())
        {
            self.phase = Phase::Stopped;
            self.emit(SchedOutput::Stopped);
        }
    }

    /// The category whose oldest queued command OxenMQ's in-order pass would start next.
    fn next_runnable_command(&self) -> Option<u16> {
        if self.active < self.general {
            return self.commands.oldest();
        }
        // Only a free reserved slot can admit anything now.
        self.reserved_categories
            .iter()
            .copied()
            .filter(|&c| {
                self.categories
                    .get(usize::from(c))
                    .is_some_and(|cat| cat.active < cat.limits.reserved_threads)
            })
            .filter_map(|c| self.commands.front_seq(c).map(|seq| (seq, c)))
            .min()
            .map(|(_, c)| c)
    }

    /// Starts everything that may start, in OxenMQ's order.
    fn dispatch(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        for i in 0..self.tagged.len() {
            let thread = &mut self.tagged[i];
            if thread.busy.is_some() {
                continue;
            }
            let Some(work) = thread.queue.pop_front() else {
                continue;
            };
            let (job, running) = work.split();
            thread.busy = Some(running);
            let worker = self.tagged_worker_id(i);
            self.emit(SchedOutput::RunJob { worker, job });
        }

        while !self.batch_queue.is_empty()
            && self.pool_may_start(self.batch_active, self.batch_reserved)
        {
            let Some(slot) = self.take_slot() else { break };
            let Some(work) = self.batch_queue.pop_front() else {
                self.idle.push(slot);
                break;
            };
            let (job, running) = work.split();
            self.batch_active += 1;
            self.start_on(slot, Running::Pool(running), job);
        }

        while !self.reply_queue.is_empty()
            && self.pool_may_start(self.reply_active, self.reply_reserved)
        {
            let Some(slot) = self.take_slot() else { break };
            let Some(job) = self.reply_queue.pop_front() else {
                self.idle.push(slot);
                break;
            };
            self.reply_active += 1;
            self.start_on(slot, Running::Reply, SchedJob::Reply(job));
        }

        while self.active < self.max_workers {
            let Some(c) = self.next_runnable_command() else {
                break;
            };
            let Some(slot) = self.take_slot() else { break };
            let Some(pending) = self.commands.pop(c) else {
                self.idle.push(slot);
                break;
            };
            let category = CategoryId(c);
            let job = if pending.injected {
                SchedJob::Task {
                    category,
                    job: pending.job,
                }
            } else {
                SchedJob::Command {
                    category,
                    job: pending.job,
                }
            };
            self.start_command(slot, c, job);
        }
    }
}

/// Drops the queued firings of `timer` from `queue`; returns how many there were.
fn remove_firings<J>(queue: &mut VecDeque<Work<J>>, timer: TimerId) -> u32 {
    let before = queue.len();
    queue.retain(|w| !w.is_firing_of(timer));
    u32::try_from(before - queue.len()).unwrap_or(u32::MAX)
}
