//! [`Batch`]: a set of jobs run in parallel, and a completion that gets all their results.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use lokimq_core::ids::TaggedThreadId;
use lokimq_core::node::{Completion, Target};

use crate::Error;
use crate::handle::panic_message;
use crate::kit::jobs::Task;

/// A batch job that panicked; its panic message is kept (OxenMQ's `job_result` holding an
/// exception). The other jobs and the completion run as usual.
///
/// ```
/// use lokimq::{Batch, LokiMq};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let node = LokiMq::builder().start()?;
/// let (tx, rx) = mpsc::channel();
/// let mut batch = Batch::new();
/// for input in ["12", "x", "30"] {
///     batch.add_job(move || input.parse::<u32>().expect("not a number"));
/// }
/// batch.completion(move |results| {
///     let texts: Vec<String> = results.into_iter()
///         .map(|r| r.map_or_else(|e| e.message().to_owned(), |n| n.to_string()))
///         .collect();
///     let _ = tx.send(texts);
/// })?;
/// node.handle().batch(batch)?;
/// let texts = rx.recv_timeout(Duration::from_secs(10))?;
/// assert_eq!(texts[0], "12");
/// assert!(texts[1].starts_with("not a number")); // the panic message
/// assert_eq!(texts[2], "30");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch job panicked: {message}")]
pub struct JobPanicked {
    message: String,
}

impl JobPanicked {
    /// The panic's message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

type JobFn<R> = Box<dyn FnOnce() -> R + Send>;
type CompletionFn<R> = Box<dyn FnOnce(Vec<Result<R, JobPanicked>>) + Send>;

/// A batch of jobs returning `R` (OxenMQ's `Batch<R>`): the jobs run in parallel on the batch
/// pool (or tagged threads), in no particular order, then the completion (if any) runs once
/// with every result, in the order the jobs were added; a job that panicked gives a
/// [`JobPanicked`]. Hand it over with [`Handle::batch`](crate::Handle::batch).
///
/// ```
/// use lokimq::{Batch, LokiMq};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let node = LokiMq::builder().start()?;
/// let (tx, rx) = mpsc::channel();
/// let mut batch = Batch::new();
/// for i in 0..4u64 {
///     batch.add_job(move || i * i);
/// }
/// batch.completion(move |results| {
///     let squares: Vec<u64> = results.into_iter().map(|r| r.unwrap_or(0)).collect();
///     let _ = tx.send(squares);
/// })?;
/// node.handle().batch(batch)?;
/// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, [0, 1, 4, 9]); // in job order
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batch<R> {
    jobs: Vec<(JobFn<R>, Target)>,
    completion: Option<(CompletionFn<R>, Completion)>,
}

impl<R> fmt::Debug for Batch<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("jobs", &self.jobs.len())
            .field("completion", &self.completion.as_ref().map(|c| c.1))
            .finish()
    }
}

impl<R: Send + 'static> Default for Batch<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Send + 'static> Batch<R> {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self {
            jobs: Vec::new(),
            completion: None,
        }
    }

    /// Reserves room for `n` more jobs.
    pub fn reserve(&mut self, n: usize) {
        self.jobs.reserve(n);
    }

    /// Adds a job for the batch pool.
    pub fn add_job(&mut self, job: impl FnOnce() -> R + Send + 'static) -> &mut Self {
        self.jobs.push((Box::new(job), Target::Worker));
        self
    }

    /// Adds a job for a tagged thread (which runs it in turn with everything else addressed
    /// to it).
    ///
    /// ```
    /// use lokimq::{Batch, LokiMq};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let db = b.add_tagged_thread("db")?;
    /// let node = b.start()?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut batch = Batch::new();
    /// batch.add_job(|| "computed on the pool".len())
    ///     .add_job_on(|| "read on the db thread".len(), db);
    /// batch.completion(move |r| { let _ = tx.send(r.into_iter().flatten().sum::<usize>()); })?;
    /// node.handle().batch(batch)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, 20 + 21);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_job_on(
        &mut self,
        job: impl FnOnce() -> R + Send + 'static,
        thread: TaggedThreadId,
    ) -> &mut Self {
        self.jobs.push((Box::new(job), Target::Tagged(thread)));
        self
    }

    /// Sets the completion, run on the batch pool. It can be set only once
    /// ([`Error::CompletionAlreadySet`]).
    pub fn completion(
        &mut self,
        completion: impl FnOnce(Vec<Result<R, JobPanicked>>) + Send + 'static,
    ) -> Result<&mut Self, Error> {
        self.completion_on(completion, Target::Worker)
    }

    /// Sets the completion, run on the batch pool, a tagged thread, or the proxy thread itself
    /// ([`Target::InDriver`], OxenMQ's `run_in_proxy`): keep that one trivial, since every
    /// socket and worker waits for it; the calls that wait for the proxy (`stats`,
    /// `is_connected`) return [`Error::OnProxyThread`] there. It can be set only once
    /// ([`Error::CompletionAlreadySet`]).
    ///
    /// ```
    /// use lokimq::{Batch, LokiMq, Target};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let ui = b.add_tagged_thread("ui")?;
    /// let node = b.start()?;
    /// let (tx, rx) = mpsc::channel();
    /// let tx2 = tx.clone();
    /// let name = || std::thread::current().name().map(str::to_owned);
    ///
    /// let mut batch = Batch::new();
    /// batch.add_job(|| 1).add_job(|| 2);
    /// batch.completion_on(move |r| { let _ = tx.send((r.len(), name())); }, Target::Tagged(ui))?;
    /// node.handle().batch(batch)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, (2, Some("ui".to_owned())));
    ///
    /// let mut batch = Batch::new();
    /// batch.add_job(|| 3);
    /// batch.completion_on(move |r| { let _ = tx2.send((r.len(), name())); }, Target::InDriver)?;
    /// node.handle().batch(batch)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, (1, Some("lmq-proxy".to_owned())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn completion_on(
        &mut self,
        completion: impl FnOnce(Vec<Result<R, JobPanicked>>) + Send + 'static,
        target: Target,
    ) -> Result<&mut Self, Error> {
        if self.completion.is_some() {
            return Err(Error::CompletionAlreadySet);
        }
        let where_ = match target {
            Target::Worker => Completion::Worker,
            Target::Tagged(t) => Completion::Tagged(t),
            Target::InDriver => Completion::InDriver,
        };
        self.completion = Some((Box::new(completion), where_));
        Ok(self)
    }

    /// Number of jobs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True if no job was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// A started batch with its types erased, as the proxy keeps it.
pub(crate) trait ErasedBatch: Send {
    /// The closure for job `index` (once).
    fn take_job(&mut self, index: u32) -> Option<Task>;
    /// The closure for the completion (once).
    fn take_completion(&mut self) -> Option<Task>;
}

type Results<R> = Arc<Mutex<Vec<Option<Result<R, JobPanicked>>>>>;

struct Running<R> {
    jobs: Vec<Option<JobFn<R>>>,
    results: Results<R>,
    completion: Option<CompletionFn<R>>,
}

impl<R: Send + 'static> ErasedBatch for Running<R> {
    fn take_job(&mut self, index: u32) -> Option<Task> {
        let i = usize::try_from(index).ok()?;
        let job = self.jobs.get_mut(i)?.take()?;
        let results = Arc::clone(&self.results);
        Some(Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).map_err(|p| {
                JobPanicked {
                    message: panic_message(p.as_ref()),
                }
            });
            let mut slots = results.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(r);
            }
        }))
    }

    fn take_completion(&mut self) -> Option<Task> {
        let completion = self.completion.take()?;
        let results = Arc::clone(&self.results);
        Some(Box::new(move || {
            let slots =
                std::mem::take(&mut *results.lock().unwrap_or_else(PoisonError::into_inner));
            let all = slots
                .into_iter()
                .map(|r| {
                    // Every job reports before the completion is scheduled; a missing result
                    // would be a driver bug, reported rather than hidden.
                    r.unwrap_or_else(|| {
                        Err(JobPanicked {
                            message: String::from("job result missing"),
                        })
                    })
                })
                .collect();
            completion(all);
        }))
    }
}

/// A batch split for submission: job targets and completion for the core, closures for the
/// proxy.
pub(crate) type Split = (Vec<Target>, Completion, Box<dyn ErasedBatch>);

/// Splits a batch into what the core needs (targets, completion) and what the proxy keeps.
pub(crate) fn into_erased<R: Send + 'static>(batch: Batch<R>) -> Result<Split, Error> {
    if batch.jobs.is_empty() {
        return Err(Error::EmptyBatch);
    }
    let n = batch.jobs.len();
    let (jobs, targets): (Vec<_>, Vec<_>) = batch
        .jobs
        .into_iter()
        .map(|(job, target)| (Some(job), target))
        .unzip();
    let (completion, where_) = match batch.completion {
        Some((f, w)) => (Some(f), w),
        None => (None, Completion::None),
    };
    let running = Running {
        jobs,
        results: Arc::new(Mutex::new((0..n).map(|_| None).collect())),
        completion,
    };
    Ok((targets, where_, Box::new(running)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erased_batch_collects_results_in_job_order_and_catches_panics() {
        let mut b = Batch::new();
        b.add_job(|| 1u32);
        b.add_job(|| panic!("boom"));
        b.add_job(|| 3u32);
        let got = Arc::new(Mutex::new(None));
        let got2 = Arc::clone(&got);
        b.completion(move |r| *got2.lock().unwrap() = Some(r))
            .unwrap();
        assert!(matches!(
            b.completion(|_| {}),
            Err(Error::CompletionAlreadySet)
        ));
        let (targets, completion, mut erased) = into_erased(b).unwrap();
        assert_eq!(targets, vec![Target::Worker; 3]);
        assert_eq!(completion, Completion::Worker);
        for i in [2, 0, 1] {
            erased.take_job(i).unwrap()();
            assert!(erased.take_job(i).is_none(), "a job is handed out once");
        }
        erased.take_completion().unwrap()();
        let r = got.lock().unwrap().take().unwrap();
        assert_eq!(r[0], Ok(1));
        assert_eq!(r[1].as_ref().unwrap_err().message(), "boom");
        assert_eq!(r[2], Ok(3));
    }

    #[test]
    fn empty_batch_is_refused() {
        assert!(matches!(
            into_erased(Batch::<()>::new()),
            Err(Error::EmptyBatch)
        ));
    }
}
