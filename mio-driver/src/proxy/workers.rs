//! Worker threads: spawned lazily per [`WorkerId`], each fed by its own channel, each reporting
//! `JobFinished` back over the proxy's one channel after every job, panicking or not.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};

use lokimq_core::ids::WorkerId;

use crate::handle::{Handle, ThreadRole, run_guarded};

/// A job for a worker thread: the proxy has already turned the core's `Job` into a closure.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

enum WorkItem {
    Run(Task),
    Stop,
}

struct WorkerThread {
    tx: Sender<WorkItem>,
    join: JoinHandle<()>,
}

/// The proxy's table of worker threads.
pub(crate) struct Workers {
    threads: BTreeMap<WorkerId, WorkerThread>,
    max_workers: u16,
    tagged_names: Vec<String>,
    handle: Handle,
    stopped: Vec<JoinHandle<()>>,
}

impl Workers {
    pub(crate) fn new(max_workers: u16, tagged_names: Vec<String>, handle: Handle) -> Self {
        Self {
            threads: BTreeMap::new(),
            max_workers,
            tagged_names,
            handle,
            stopped: Vec::new(),
        }
    }

    /// The worker id of tagged thread `index`.
    pub(crate) fn tagged_worker(&self, index: usize) -> WorkerId {
        // Tagged thread ids fit: the core refused a configuration whose ids would not.
        WorkerId(
            self.max_workers
                .saturating_add(u16::try_from(index).unwrap_or(u16::MAX)),
        )
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

    /// Starts the thread for `worker` (running `start` first, if given).
    pub(crate) fn spawn(&mut self, worker: WorkerId, start: Option<Task>) -> std::io::Result<()> {
        if self.threads.contains_key(&worker) {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel::<WorkItem>();
        let handle = self.handle.clone();
        let name = self.thread_name(worker);
        let join = thread::Builder::new().name(name).spawn(move || {
            ThreadRole::Worker.enter();
            if let Some(start) = start {
                run_guarded("tagged thread start callback", start);
            }
            while let Ok(item) = rx.recv() {
                match item {
                    WorkItem::Run(task) => {
                        run_guarded("worker job", task);
                        handle.job_finished(worker);
                    }
                    WorkItem::Stop => break,
                }
            }
        })?;
        self.threads.insert(worker, WorkerThread { tx, join });
        Ok(())
    }

    /// Runs `task` on `worker`, spawning its thread on first use. If no thread can be had, runs
    /// it here and reports it finished anyway: a job that never reports would wedge the
    /// scheduler.
    pub(crate) fn run(&mut self, worker: WorkerId, task: Task) {
        if let Err(e) = self.spawn(worker, None) {
            tracing::error!(
                "could not start worker thread {worker}: {e}; running the job in the proxy"
            );
            run_guarded("worker job (inline)", task);
            self.handle.job_finished(worker);
            return;
        }
        let Some(thread) = self.threads.get(&worker) else {
            return;
        };
        if let Err(mpsc::SendError(WorkItem::Run(task))) = thread.tx.send(WorkItem::Run(task)) {
            // The thread is gone (it cannot exit on its own while its sender lives, but be safe).
            tracing::error!("worker thread {worker} is gone; running the job in the proxy");
            run_guarded("worker job (inline)", task);
            self.handle.job_finished(worker);
        }
    }

    /// Tells `worker`'s thread to exit after its current job; joined in [`Self::join_all`].
    pub(crate) fn stop(&mut self, worker: WorkerId) {
        if let Some(t) = self.threads.remove(&worker) {
            // An error means the thread already exited: nothing to stop.
            let _ = t.tx.send(WorkItem::Stop);
            self.stopped.push(t.join);
        }
    }

    /// Stops every thread still running and waits for all of them.
    pub(crate) fn join_all(&mut self) {
        let ids: Vec<WorkerId> = self.threads.keys().copied().collect();
        for id in ids {
            self.stop(id);
        }
        for join in self.stopped.drain(..) {
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
