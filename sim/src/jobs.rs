//! How long a simulated node's jobs take: slow handlers, slow replies, stuck workers.
//!
//! Every job a node runs (a command handler, a reply callback, a connect callback, a batch job
//! or completion, a timer firing, a `job()` or injected task) runs inline at virtual time, and
//! takes the virtual duration its node's [`JobTimes`] gives it: the worker stays busy for that
//! long (so the node's scheduler queues what arrives meanwhile, exactly as with real threads),
//! and the job's sends leave when it finishes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lokimq_core::time::Duration;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::NodeId;

/// A job's virtual duration: fixed, drawn from the simulation's seeded RNG, or forever.
///
/// ```
/// use lokimq_sim::Dur;
/// use std::time::Duration;
///
/// let quick = Dur::ZERO;
/// let slow = Dur::Fixed(Duration::from_millis(250));
/// let jittery = Dur::Uniform(Duration::from_millis(1), Duration::from_millis(40));
/// let stuck = Dur::Forever; // the worker never comes back
/// # let _ = (quick, slow, jittery, stuck);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dur {
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `lo..=hi`, in whole microseconds, drawn from the simulation's RNG.
    Uniform(Duration, Duration),
    /// The job never finishes: its worker is stuck for good (a deadlocked handler, an endless
    /// loop). Nothing it sends ever leaves.
    Forever,
}

impl Dur {
    /// No time at all: the job's effects leave at the instant it was dispatched.
    pub const ZERO: Self = Self::Fixed(Duration::ZERO);

    /// A fixed number of milliseconds.
    #[must_use]
    pub const fn millis(ms: u64) -> Self {
        Self::Fixed(Duration::from_millis(ms))
    }

    /// Draws a duration (`None` for [`Dur::Forever`]).
    pub(crate) fn sample(self, rng: &mut ChaCha20Rng) -> Option<Duration> {
        match self {
            Self::Fixed(d) => Some(d),
            Self::Uniform(lo, hi) => {
                let lo_us = u64::try_from(lo.as_micros()).unwrap_or(u64::MAX);
                let hi_us = u64::try_from(hi.as_micros()).unwrap_or(u64::MAX).max(lo_us);
                let span = hi_us - lo_us;
                let extra = if span == u64::MAX {
                    rng.next_u64()
                } else {
                    rng.next_u64() % (span + 1)
                };
                Some(Duration::from_micros(lo_us + extra))
            }
            Self::Forever => None,
        }
    }
}

/// What kind of job is about to run (see [`JobInfo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum JobKind {
    /// A command handler (`add_command` / `add_request_command`).
    Command,
    /// A request's reply callback (with the reply or the error).
    Reply,
    /// A `connect_remote` / `connect_inproc` callback (`on_connect` or `on_failure`).
    Connect,
    /// One job of a [`Batch`](lokimq::Batch).
    BatchJob,
    /// A batch's completion.
    BatchCompletion,
    /// A timer firing.
    Timer,
    /// A `Handle::job`, an injected task, or a callback the handle reports through a worker
    /// (a request that could not be sent, `send_with_queue_failure`'s).
    Task,
}

/// A job about to run, as a [`JobTimes`] function sees it.
#[derive(Debug, Clone, Copy)]
pub struct JobInfo<'a> {
    /// The node.
    pub node: NodeId,
    /// What kind of job.
    pub kind: JobKind,
    /// For a command: its full name, `category.command` (after alias resolution).
    pub command: Option<&'a str>,
    /// For a command or an injected task: its category.
    pub category: Option<&'a str>,
    /// For a command: its data parts (without a request's tag).
    pub data: &'a [Bytes],
}

/// A user function choosing a job's duration (see [`JobTimes::with_fn`]).
pub type DurFn = Arc<dyn Fn(&JobInfo<'_>) -> Option<Dur>>;

/// How long each job of a node takes, in virtual time. The first rule that matches wins:
///
/// 1. the function given with [`with_fn`](Self::with_fn), if it returns `Some`;
/// 2. for a command, an entry for its full name (`"kv.put"`), then for its category (`"kv"`);
/// 3. [`commands`](Self::commands) for other commands, [`replies`](Self::replies) for reply
///    callbacks, [`other`](Self::other) for everything else.
///
/// ```
/// use lokimq_sim::{Dur, JobKind, JobTimes};
/// use std::time::Duration;
///
/// let times = JobTimes::default()
///     .command("kv.put", Dur::millis(5))             // one command
///     .command("admin", Dur::Forever)                 // a whole category: stuck workers
///     .with_fn(|job| {                                // anything else you can compute
///         let big = job.data.iter().map(|d| d.len()).sum::<usize>() > 1000;
///         (job.kind == JobKind::Command && big).then_some(Dur::millis(50))
///     });
/// # let _ = times;
/// ```
#[derive(Clone)]
pub struct JobTimes {
    /// Commands without a more specific rule.
    pub commands: Dur,
    /// Reply callbacks.
    pub replies: Dur,
    /// Every other job (connect callbacks, batch jobs and completions, timers, tasks).
    pub other: Dur,
    by_name: BTreeMap<String, Dur>,
    custom: Option<DurFn>,
}

impl Default for JobTimes {
    /// Every job takes no time.
    fn default() -> Self {
        Self::all(Dur::ZERO)
    }
}

impl fmt::Debug for JobTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobTimes")
            .field("commands", &self.commands)
            .field("replies", &self.replies)
            .field("other", &self.other)
            .field("by_name", &self.by_name)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl JobTimes {
    /// Every job takes `d`.
    #[must_use]
    pub fn all(d: Dur) -> Self {
        Self {
            commands: d,
            replies: d,
            other: d,
            by_name: BTreeMap::new(),
            custom: None,
        }
    }

    /// Commands named `name` take `d`: a full name (`"kv.put"`) or a category (`"kv"`).
    #[must_use]
    pub fn command(mut self, name: &str, d: Dur) -> Self {
        self.by_name.insert(name.to_owned(), d);
        self
    }

    /// Asks `f` first for every job; `None` falls through to the other rules.
    #[must_use]
    pub fn with_fn(mut self, f: impl Fn(&JobInfo<'_>) -> Option<Dur> + 'static) -> Self {
        self.custom = Some(Arc::new(f));
        self
    }

    /// The duration rule for `job`.
    #[must_use]
    pub fn rule_for(&self, job: &JobInfo<'_>) -> Dur {
        if let Some(d) = self.custom.as_ref().and_then(|f| f(job)) {
            return d;
        }
        if let Some(d) = job.command.and_then(|c| self.by_name.get(c)) {
            return *d;
        }
        if job.kind == JobKind::Command {
            if let Some(d) = job.category.and_then(|c| self.by_name.get(c)) {
                return *d;
            }
        }
        match job.kind {
            JobKind::Command => self.commands,
            JobKind::Reply => self.replies,
            _ => self.other,
        }
    }
}
