//! The closures behind the node's jobs, and how a [`Job`] becomes a closure a thread can run.
//!
//! The core names jobs (`Job::Command { command, .. }`, `Job::Reply { request, .. }`,
//! `Job::BatchItem { batch, index }`, …) and never holds a closure; the driver keeps the
//! closures here, keyed by those names. The table is shared: the proxy thread fills it (a
//! request's reply callback when the request is sent, a batch's jobs when it is submitted) and
//! empties it when the node says a closure is no longer needed, while worker threads turn the
//! jobs they take into closures themselves, without asking the proxy. Command callbacks are
//! fixed at start and read without a lock; everything else sits behind one mutex, held only to
//! insert or take a closure, never while one runs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lokimq_core::ids::{BatchId, TimerId};
use lokimq_core::node::{ConnectionId, Job, RequestId};

use crate::batch::ErasedBatch;
use crate::handle::{CommandFn, ConnectCallbacks, Handle, ReplyFn, TimerFn, run_guarded};
use crate::message::Message;

/// A one-off closure the table keeps for a job (`job()`, `inject_task`, a batch's jobs).
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// The closures that come and go while the node runs.
#[derive(Default)]
pub(crate) struct Closures {
    pub(crate) requests: BTreeMap<RequestId, ReplyFn>,
    /// `connect_remote`/`connect_inproc` callbacks by the outgoing id's number.
    pub(crate) connects: BTreeMap<u64, ConnectCallbacks>,
    /// `job()` and `inject_task` closures by the handle given to the node.
    pub(crate) tasks: BTreeMap<u64, Task>,
    next_task: u64,
    pub(crate) batches: BTreeMap<BatchId, Box<dyn ErasedBatch>>,
    pub(crate) timers: BTreeMap<TimerId, TimerFn>,
}

impl Closures {
    /// Keeps a `job()`/`inject_task` closure; returns the handle to give the node.
    pub(crate) fn add_task(&mut self, task: Task) -> u64 {
        let id = self.next_task;
        self.next_task += 1;
        self.tasks.insert(id, task);
        id
    }
}

/// Every closure the node's jobs name: see the [module documentation](self).
pub(crate) struct JobTable {
    /// Indexed by `CommandId`; fixed at start.
    commands: Vec<Option<CommandFn>>,
    closures: Mutex<Closures>,
    /// Given to command callbacks inside their [`Message`].
    handle: Handle,
}

impl JobTable {
    pub(crate) fn new(commands: Vec<Option<CommandFn>>, handle: Handle) -> Self {
        Self {
            commands,
            closures: Mutex::new(Closures::default()),
            handle,
        }
    }

    /// The closures that come and go. A panic while the lock was held (it is never held
    /// while user code runs) would leave consistent maps behind, so poisoning is ignored.
    pub(crate) fn closures(&self) -> MutexGuard<'_, Closures> {
        self.closures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a job on the calling thread: looks its closure up and calls it, logging (not
    /// propagating) a panic, as OxenMQ logs exceptions from handlers. A job whose closure is gone
    /// (it cannot happen with this driver's bookkeeping) does nothing, so its worker still
    /// reports it finished.
    pub(crate) fn run(&self, job: Job) {
        match job {
            Job::Command { command, message } => {
                match self.commands.get(command.index()).and_then(Option::as_ref) {
                    Some(callback) => run_guarded("command callback", || {
                        let mut m = Message::new(message, self.handle.clone());
                        callback(&mut m);
                    }),
                    None => tracing::error!("no callback for {command:?}"),
                }
            }
            Job::Task { task, .. } | Job::Job { job: task } => {
                let task = self.closures().tasks.remove(&task);
                if let Some(task) = task {
                    run_guarded("job", task);
                }
            }
            Job::Reply { request, result } => {
                let callback = self.closures().requests.remove(&request);
                if let Some(callback) = callback {
                    run_guarded("reply callback", move || callback(result));
                }
            }
            Job::Connected { conn } => {
                if let Some(f) = self.take_connect(&conn).and_then(|c| c.on_connect) {
                    run_guarded("connect callback", move || f(conn));
                }
            }
            Job::ConnectFailed { conn, error } => {
                match self.take_connect(&conn).and_then(|c| c.on_failure) {
                    Some(f) => run_guarded("connect failure callback", move || f(conn, error)),
                    None => tracing::warn!("connection to {conn} failed: {error}"),
                }
            }
            Job::BatchItem { batch, index } => {
                let task = self
                    .closures()
                    .batches
                    .get_mut(&batch)
                    .and_then(|b| b.take_job(index));
                if let Some(task) = task {
                    run_guarded("batch job", task);
                }
            }
            Job::Completion { batch } => {
                if let Some(task) = self.take_completion(batch) {
                    run_guarded("batch completion", task);
                }
            }
            Job::Timer { timer } => {
                if let Some(f) = self.timer(timer) {
                    run_guarded("timer", move || f());
                }
            }
        }
    }

    /// A batch's completion, taken out (it runs once).
    pub(crate) fn take_completion(&self, batch: BatchId) -> Option<Task> {
        self.closures()
            .batches
            .get_mut(&batch)
            .and_then(|b| b.take_completion())
    }

    /// A timer's closure (it stays for the next firing).
    pub(crate) fn timer(&self, timer: TimerId) -> Option<TimerFn> {
        self.closures().timers.get(&timer).cloned()
    }

    fn take_connect(&self, conn: &ConnectionId) -> Option<ConnectCallbacks> {
        match conn {
            ConnectionId::Outgoing { id, .. } => self.closures().connects.remove(id),
            _ => None,
        }
    }
}
