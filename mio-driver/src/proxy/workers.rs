//! Worker threads that take their next job themselves.
//!
//! OxenMQ's workers report every finished job to the proxy thread and wait for it to hand out
//! the next one: two thread wake-ups per job. Here the node's scheduler is shared (behind a
//! mutex, see [`SchedulerCell`](lokimq_core::node::SchedulerCell)): a worker that finishes a job calls
//! [`Scheduler::job_finished`] itself and takes what [`Scheduler::poll_dispatch`] hands out,
//! which is usually its own next job (the freed slot is reused first), so a stream of commands
//! runs without the proxy. Every decision is still made by the one scheduler, under one lock,
//! so the rules (reserved threads, `max_queue`, dispatch order, batches, timers, shutdown) are
//! exactly those of the core.
//!
//! Each worker slot (`WorkerId`) has a mailbox. Whoever dispatches a job for a slot (the proxy
//! draining the node, or another worker finishing its job) puts it in that slot's mailbox and
//! unparks the slot's thread, starting the thread on first use; an unpark costs a system call
//! only when the thread is actually parked, which a busy worker never is. An idle worker parks
//! at once rather than spinning: on a machine with few cores a spinning worker takes the core
//! that the thread producing its next job needs (measured with `scripts/bench-net`). Outputs
//! other than jobs (batch completions, timer releases, shutdown progress) stay in the scheduler
//! for the proxy, which a worker pokes when it leaves one behind.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle, Thread};

use lokimq_core::ids::{TaggedThreadId, WorkerId};
use lokimq_core::node::Job;
use lokimq_core::sched::{SchedOutput, Scheduler};

use crate::handle::{Handle, ThreadRole, run_guarded};
use crate::kit::jobs::{JobTable, Task};

/// Locks a mutex whose data stays consistent even if a holder panicked (no user code ever runs
/// under these locks).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a worker's mailbox holds. Jobs are moved, not boxed: a box would cost an allocation
/// per job to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
enum Item {
    Run(Job),
    Stop,
}

#[derive(Default)]
struct Slot {
    items: VecDeque<Item>,
    /// Set once a thread was started (or is being started) for the slot.
    started: bool,
    thread: Option<Thread>,
}

#[derive(Default)]
struct Mailbox {
    slot: Mutex<Slot>,
    /// A hint that `items` is not empty, so a worker woken without work need not take the lock.
    has_work: AtomicBool,
}

/// The worker threads of one node: see the [module documentation](self).
pub(crate) struct Workers {
    sched: Arc<Mutex<Scheduler<Job>>>,
    /// The closures behind the jobs.
    pub(crate) jobs: Arc<JobTable>,
    /// One per worker slot, then one per tagged thread.
    mailboxes: Box<[Mailbox]>,
    max_workers: u16,
    tagged_names: Vec<String>,
    /// Jobs for slots whose thread could not be started; the proxy runs them itself.
    homeless: Mutex<VecDeque<(WorkerId, Item)>>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    handle: Handle,
}

impl Workers {
    /// The workers of the node whose scheduler is `sched`.
    pub(crate) fn new(
        sched: Arc<Mutex<Scheduler<Job>>>,
        jobs: Arc<JobTable>,
        handle: Handle,
    ) -> Self {
        let (max_workers, tagged_names) = {
            let s = lock(&sched);
            let names = (0..s.tagged_thread_count())
                .map(|i| {
                    let id = TaggedThreadId(u16::try_from(i).unwrap_or(u16::MAX));
                    s.tagged_thread_name(id).unwrap_or_default().to_owned()
                })
                .collect::<Vec<_>>();
            (s.max_workers(), names)
        };
        let slots = usize::from(max_workers) + tagged_names.len();
        Self {
            sched,
            jobs,
            mailboxes: (0..slots).map(|_| Mailbox::default()).collect(),
            max_workers,
            tagged_names,
            homeless: Mutex::new(VecDeque::new()),
            joins: Mutex::new(Vec::new()),
            handle,
        }
    }

    /// The worker id of tagged thread `index`, as the scheduler numbers them.
    pub(crate) fn tagged_worker(&self, index: usize) -> Option<WorkerId> {
        let index = u16::try_from(index).ok()?;
        lock(&self.sched).tagged_worker(TaggedThreadId(index))
    }

    fn thread_name(&self, worker: WorkerId) -> String {
        match worker
            .get()
            .checked_sub(self.max_workers)
            .and_then(|i| self.tagged_names.get(usize::from(i)))
        {
            // Linux limits thread names to 15 bytes, as OxenMQ's truncation reflects.
            Some(name) => truncate(name, 15).to_owned(),
            None => format!("lmq-w{}", worker.get()),
        }
    }

    /// Starts `worker`'s thread now (tagged threads, with their start callback, at start-up).
    pub(crate) fn start_thread(
        self: &Arc<Self>,
        worker: WorkerId,
        start: Option<Task>,
    ) -> std::io::Result<()> {
        let Some(mb) = self.mailboxes.get(worker.index()) else {
            return Ok(());
        };
        {
            let mut slot = lock(&mb.slot);
            if slot.started {
                return Ok(());
            }
            slot.started = true;
        }
        self.spawn(worker, start)
            .inspect_err(|_| lock(&mb.slot).started = false)
    }

    fn spawn(self: &Arc<Self>, worker: WorkerId, start: Option<Task>) -> std::io::Result<()> {
        let me = Arc::clone(self);
        let join = thread::Builder::new()
            .name(self.thread_name(worker))
            .spawn(move || me.worker_main(worker, start))?;
        if let Some(mb) = self.mailboxes.get(worker.index()) {
            lock(&mb.slot).thread = Some(join.thread().clone());
            // The thread may have parked before its handle was stored: wake it once.
            join.thread().unpark();
        }
        lock(&self.joins).push(join);
        Ok(())
    }

    /// Runs the job on `worker` (the proxy's [`Output::RunJob`](lokimq_core::node::Output)).
    pub(crate) fn run(self: &Arc<Self>, worker: WorkerId, job: Job) {
        self.deliver(worker, Item::Run(job));
    }

    /// Tells `worker` to exit once it has nothing left to run.
    pub(crate) fn stop(self: &Arc<Self>, worker: WorkerId) {
        self.deliver(worker, Item::Stop);
    }

    /// Puts `item` in `worker`'s mailbox and wakes (or starts) its thread.
    fn deliver(self: &Arc<Self>, worker: WorkerId, item: Item) {
        let Some(mb) = self.mailboxes.get(worker.index()) else {
            tracing::error!("a job for {worker}, which is not a worker of this node");
            if let Item::Run(job) = item {
                // Run it here rather than lose it; nothing can report it finished.
                self.jobs.run(job);
            }
            return;
        };
        let (start, thread) = {
            let mut slot = lock(&mb.slot);
            slot.items.push_back(item);
            mb.has_work.store(true, Ordering::Release);
            let start = !slot.started;
            slot.started = true;
            (start, slot.thread.clone())
        };
        if start {
            if let Err(e) = self.spawn(worker, None) {
                tracing::error!(
                    "could not start worker thread {worker}: {e}; running its jobs in the proxy"
                );
                let items = {
                    let mut slot = lock(&mb.slot);
                    slot.started = false;
                    mb.has_work.store(false, Ordering::Release);
                    std::mem::take(&mut slot.items)
                };
                lock(&self.homeless).extend(items.into_iter().map(|i| (worker, i)));
                self.handle.poke();
            }
        } else if let Some(t) = thread {
            t.unpark();
        }
    }

    /// The next item for `worker`, parking until one is delivered.
    fn wait(&self, worker: WorkerId) -> Item {
        let Some(mb) = self.mailboxes.get(worker.index()) else {
            return Item::Stop;
        };
        loop {
            if mb.has_work.load(Ordering::Acquire) {
                let mut slot = lock(&mb.slot);
                let item = slot.items.pop_front();
                if slot.items.is_empty() {
                    mb.has_work.store(false, Ordering::Release);
                }
                if let Some(item) = item {
                    return item;
                }
            }
            // Woken by `deliver`'s unpark; an unpark that came before this call makes it return
            // at once, so no delivery is missed.
            thread::park();
        }
    }

    fn worker_main(self: Arc<Self>, worker: WorkerId, start: Option<Task>) {
        ThreadRole::Worker.enter();
        if let Some(start) = start {
            run_guarded("tagged thread start callback", start);
        }
        let mut next = None;
        loop {
            let item = match next.take() {
                Some(item) => item,
                None => self.wait(worker),
            };
            match item {
                Item::Stop => break,
                Item::Run(job) => {
                    self.jobs.run(job);
                    next = self.finished(worker);
                }
            }
        }
    }

    /// Reports `worker`'s job finished to the scheduler and hands out what that starts.
    /// Returns `worker`'s own next item, if it has one, so it runs without a mailbox trip.
    fn finished(self: &Arc<Self>, worker: WorkerId) -> Option<Item> {
        let mut mine = None;
        let leftovers = {
            let mut s = lock(&self.sched);
            if let Err(e) = s.job_finished(worker) {
                tracing::error!("finished job on {worker} rejected: {e}");
            }
            while let Some(out) = s.poll_dispatch() {
                let (to, item) = match out {
                    SchedOutput::RunJob { worker, job } => (worker, Item::Run(Job::from(job))),
                    SchedOutput::StopWorker { worker } => (worker, Item::Stop),
                    // `poll_dispatch` returns nothing else.
                    _ => continue,
                };
                if to == worker && mine.is_none() && self.mailbox_is_empty(worker) {
                    mine = Some(item);
                } else {
                    self.deliver(to, item);
                }
            }
            s.has_output()
        };
        if leftovers {
            self.handle.poke();
        }
        mine
    }

    fn mailbox_is_empty(&self, worker: WorkerId) -> bool {
        self.mailboxes
            .get(worker.index())
            .is_none_or(|mb| !mb.has_work.load(Ordering::Acquire))
    }

    /// Runs, on the calling (proxy) thread, the jobs of workers whose thread could not start.
    pub(crate) fn run_homeless(self: &Arc<Self>) {
        loop {
            let Some((worker, item)) = lock(&self.homeless).pop_front() else {
                return;
            };
            let mut item = Some(item);
            while let Some(Item::Run(job)) = item.take() {
                self.jobs.run(job);
                item = self.finished(worker);
            }
        }
    }

    /// Stops every thread still running and waits for all of them.
    pub(crate) fn join_all(self: &Arc<Self>) {
        for (i, mb) in self.mailboxes.iter().enumerate() {
            if lock(&mb.slot).started {
                let worker = WorkerId(u16::try_from(i).unwrap_or(u16::MAX));
                self.deliver(worker, Item::Stop);
            }
        }
        let joins = std::mem::take(&mut *lock(&self.joins));
        for join in joins {
            if join.join().is_err() {
                tracing::error!("a worker thread panicked outside a job");
            }
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("short", 15), "short");
        assert_eq!(truncate("a-very-long-thread-name", 15), "a-very-long-thr");
        assert_eq!(truncate("ééééééééé", 15), "ééééééé");
    }
}
