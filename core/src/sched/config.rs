//! Worker limits as the embedder configures them, and their validation.

use alloc::string::String;
use alloc::vec::Vec;

use super::SchedError;
use crate::ids::TaggedThreadId;
use crate::time::Duration;

/// The rule for a tagged thread's name (OxenMQ's): not empty, not `_proxy` (the driver's own
/// thread), no NUL. Drivers check names with this as they are added, before the scheduler
/// exists.
///
/// # Errors
///
/// [`SchedError::InvalidTaggedThreadName`].
pub fn check_tagged_thread_name(name: &str) -> Result<(), SchedError> {
    if name.is_empty() || name == "_proxy" || name.contains('\0') {
        return Err(SchedError::InvalidTaggedThreadName(String::from(name)));
    }
    Ok(())
}

/// The rule for a job's, batch's or timer's tagged-thread target: `thread` must name one of the
/// `count` tagged threads the node has (ids are positions, from 0).
///
/// # Errors
///
/// [`SchedError::UnknownTaggedThread`].
pub fn check_tagged_thread(thread: TaggedThreadId, count: usize) -> Result<(), SchedError> {
    if thread.index() < count {
        Ok(())
    } else {
        Err(SchedError::UnknownTaggedThread(thread))
    }
}

/// The rule for a timer's interval: at least the core's 1 µs resolution (a zero interval would
/// fire forever). Returns the interval in whole microseconds (saturating).
///
/// # Errors
///
/// [`SchedError::ZeroTimerInterval`].
pub fn check_timer_interval(interval: Duration) -> Result<u64, SchedError> {
    let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
    if micros == 0 {
        return Err(SchedError::ZeroTimerInterval);
    }
    Ok(micros)
}

/// How many commands of a category may wait for a worker; past it they are dropped (with a log
/// and no reply, as in OxenMQ). OxenMQ spells this as a signed `max_queue` where any negative
/// value means no limit: [`QueueLimit::from_oxenmq`] and [`QueueLimit::to_oxenmq`] convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueLimit {
    /// Commands queue without bound (OxenMQ's `max_queue = -1`).
    Unlimited,
    /// At most this many commands wait; `At(0)` drops a command whenever no worker is free.
    At(u32),
}

impl QueueLimit {
    /// OxenMQ's default: at most 200 commands wait for a worker.
    pub const OXENMQ_DEFAULT: Self = Self::At(200);

    /// OxenMQ's signed form: any negative value is [`QueueLimit::Unlimited`].
    #[must_use]
    pub const fn from_oxenmq(max_queue: i32) -> Self {
        if max_queue < 0 {
            Self::Unlimited
        } else {
            // Non-negative, so the cast is exact.
            Self::At(max_queue as u32)
        }
    }

    /// OxenMQ's signed form: `-1` for no limit; a limit above `i32::MAX` saturates.
    #[must_use]
    pub const fn to_oxenmq(self) -> i32 {
        match self {
            Self::Unlimited => -1,
            Self::At(n) if n > i32::MAX as u32 => i32::MAX,
            Self::At(n) => n as i32,
        }
    }

    /// The limit, or `None` for no limit.
    #[must_use]
    pub const fn limit(self) -> Option<u32> {
        match self {
            Self::Unlimited => None,
            Self::At(n) => Some(n),
        }
    }

    /// True if a category already holding `queued` waiting commands must drop the next one.
    #[must_use]
    pub const fn is_full(self, queued: usize) -> bool {
        match self {
            Self::Unlimited => false,
            // u32 → usize is lossless on every target the core supports (32 and 64 bits).
            Self::At(n) => queued >= n as usize,
        }
    }
}

impl Default for QueueLimit {
    /// [`QueueLimit::OXENMQ_DEFAULT`].
    fn default() -> Self {
        Self::OXENMQ_DEFAULT
    }
}

impl core::fmt::Display for QueueLimit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::At(n) => write!(f, "{n}"),
        }
    }
}

/// The thread limits of one command category (OxenMQ's `add_category(name, access,
/// reserved_threads, max_queue)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryLimits {
    /// Worker slots only this category may use once the general slots are all busy. Each one
    /// adds to `max_workers`.
    pub reserved_threads: u16,
    /// How many commands of this category may wait for a worker.
    pub max_queue: QueueLimit,
}

impl CategoryLimits {
    /// Limits with `reserved_threads` reserved slots and a queue of at most `max_queue`.
    #[must_use]
    pub const fn new(reserved_threads: u16, max_queue: QueueLimit) -> Self {
        Self {
            reserved_threads,
            max_queue,
        }
    }

    /// True if a category already holding `queued` waiting commands must drop the next one.
    #[must_use]
    pub const fn queue_full(&self, queued: usize) -> bool {
        self.max_queue.is_full(queued)
    }
}

impl Default for CategoryLimits {
    /// No reserved threads and OxenMQ's default queue of 200.
    fn default() -> Self {
        Self::new(0, QueueLimit::OXENMQ_DEFAULT)
    }
}

/// Everything the scheduler needs to know about threads, fixed when it is built (OxenMQ fixes
/// the same numbers at `start()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Worker slots any job may use (`set_general_threads`); must be at least 1.
    pub general_workers: u16,
    /// Slots reserved for batch jobs, `job()`s, timer firings and completions
    /// (`set_batch_threads`); `None` means ⌈general/2⌉.
    pub batch_threads: Option<u16>,
    /// Slots reserved for reply callbacks (`set_reply_threads`); `None` means ⌈general/8⌉.
    pub reply_threads: Option<u16>,
    /// Limits per category, indexed by [`CategoryId`](crate::ids::CategoryId).
    pub categories: Vec<CategoryLimits>,
    /// Names of the tagged threads, indexed by [`TaggedThreadId`](crate::ids::TaggedThreadId).
    pub tagged_threads: Vec<String>,
}

impl SchedulerConfig {
    /// A configuration with `general_workers` general slots, default batch and reply
    /// reservations, and no categories or tagged threads yet.
    #[must_use]
    pub const fn new(general_workers: u16) -> Self {
        Self {
            general_workers,
            batch_threads: None,
            reply_threads: None,
            categories: Vec::new(),
            tagged_threads: Vec::new(),
        }
    }

    /// Sets the batch reservation (`None` restores the default ⌈general/2⌉).
    #[must_use]
    pub const fn with_batch_threads(mut self, n: Option<u16>) -> Self {
        self.batch_threads = n;
        self
    }

    /// Sets the reply reservation (`None` restores the default ⌈general/8⌉).
    #[must_use]
    pub const fn with_reply_threads(mut self, n: Option<u16>) -> Self {
        self.reply_threads = n;
        self
    }

    /// Appends a category; its id is its position (the first one added is `CategoryId(0)`).
    #[must_use]
    pub fn with_category(mut self, limits: CategoryLimits) -> Self {
        self.categories.push(limits);
        self
    }

    /// Appends a tagged thread; its id is its position (the first one is `TaggedThreadId(0)`).
    #[must_use]
    pub fn with_tagged_thread(mut self, name: impl Into<String>) -> Self {
        self.tagged_threads.push(name.into());
        self
    }

    /// The batch reservation after applying the default.
    #[must_use]
    pub const fn effective_batch_threads(&self) -> u16 {
        match self.batch_threads {
            Some(n) => n,
            None => self.general_workers.div_ceil(2),
        }
    }

    /// The reply reservation after applying the default.
    #[must_use]
    pub const fn effective_reply_threads(&self) -> u16 {
        match self.reply_threads {
            Some(n) => n,
            None => self.general_workers.div_ceil(8),
        }
    }

    /// Checks the configuration and computes `max_workers`: general + batch + reply + every
    /// category's reserved threads. Tagged threads come on top and need ids of their own, so
    /// `max_workers + tagged_threads` must fit in a [`WorkerId`](crate::ids::WorkerId).
    ///
    /// # Errors
    ///
    /// [`SchedError::InvalidGeneralThreads`] for 0 general workers,
    /// [`SchedError::InvalidTaggedThreadName`] for an empty name, `_proxy`, or a name with a NUL,
    /// and [`SchedError::TooManyWorkers`] / [`SchedError::TooManyCategories`] when the ids would
    /// not fit in 16 bits.
    pub fn max_workers(&self) -> Result<u16, SchedError> {
        if self.general_workers == 0 {
            return Err(SchedError::InvalidGeneralThreads {
                value: self.general_workers,
            });
        }
        for name in &self.tagged_threads {
            check_tagged_thread_name(name)?;
        }
        if self.categories.len() > usize::from(u16::MAX) + 1 {
            return Err(SchedError::TooManyCategories(self.categories.len()));
        }
        // Summed in u64: at most 65 538 terms of at most 65 535 each, far below u64::MAX.
        let total = self
            .categories
            .iter()
            .map(|c| u64::from(c.reserved_threads))
            .sum::<u64>()
            + u64::from(self.general_workers)
            + u64::from(self.effective_batch_threads())
            + u64::from(self.effective_reply_threads());
        let with_tagged = total.saturating_add(self.tagged_threads.len() as u64);
        if with_tagged > u64::from(u16::MAX) {
            return Err(SchedError::TooManyWorkers(with_tagged));
        }
        // `total <= with_tagged <= u16::MAX`, checked just above.
        Ok(total as u16)
    }
}
