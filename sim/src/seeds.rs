//! Running a scenario over many seeds, and replaying the one that failed.

use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The environment variable that pins [`seeds`] to one seed, to replay a failure:
/// `LOKIMQ_SIM_SEED=1234 cargo test my_scenario`.
pub const SEED_VAR: &str = "LOKIMQ_SIM_SEED";

/// The seeds a test should run: only the one in [`SEED_VAR`] when it is set (to replay a
/// failure), otherwise every seed of `default`.
///
/// ```
/// use lokimq_sim::Sim;
///
/// for seed in lokimq_sim::seeds(0..20) {
///     let mut sim = Sim::new(seed);
///     // ... build nodes, run, assert; a failure names its seed ...
///     # let _ = &mut sim;
/// }
/// ```
///
/// # Panics
///
/// If [`SEED_VAR`] is set to something that is not a number.
pub fn seeds(default: impl IntoIterator<Item = u64>) -> Vec<u64> {
    match std::env::var(SEED_VAR) {
        Ok(s) => {
            let seed = s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_VAR}={s:?} is not a seed (a u64)"));
            vec![seed]
        }
        Err(_) => default.into_iter().collect(),
    }
}

thread_local! {
    /// Set while [`explore`] runs a scenario: a failing simulation leaves its trace here
    /// instead of printing it.
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Called by a failing simulation's `Drop`: true if the trace was captured (not to be printed).
pub(crate) fn capture_trace(tail: Vec<String>) -> bool {
    CAPTURE.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some(slot) => {
                *slot = tail;
                true
            }
            None => false,
        }
    })
}

/// One seed's failure found by [`explore`].
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The panic message (an invariant's, an assertion's, a budget's).
    pub message: String,
    /// The end of the failing simulation's trace, if a [`Sim`](crate::Sim) was running.
    pub trace_tail: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A simulation's own failures already name their seed.
        if self.message.starts_with(&format!("seed {}:", self.seed)) {
            writeln!(f, "{}", self.message)?;
        } else {
            writeln!(f, "seed {}: {}", self.seed, self.message)?;
        }
        if !self.trace_tail.is_empty() {
            writeln!(f, "last {} trace lines:", self.trace_tail.len())?;
            for l in &self.trace_tail {
                writeln!(f, "  {l}")?;
            }
        }
        write!(f, "replay with {SEED_VAR}={}", self.seed)
    }
}

/// What [`explore`] found.
#[derive(Debug, Clone, Default)]
pub struct Exploration {
    /// Seeds whose run passed.
    pub passed: Vec<u64>,
    /// Seeds whose run failed, in the order run.
    pub failed: Vec<Failure>,
}

impl Exploration {
    /// The seeds that failed.
    #[must_use]
    pub fn failing_seeds(&self) -> Vec<u64> {
        self.failed.iter().map(|f| f.seed).collect()
    }

    /// The first failure, if any.
    #[must_use]
    pub fn first_failure(&self) -> Option<&Failure> {
        self.failed.first()
    }

    /// Panics with the first failure (its message, trace tail and how to replay it) unless
    /// every seed passed.
    ///
    /// # Panics
    ///
    /// If any seed failed.
    pub fn assert_all_passed(&self) {
        if let Some(f) = self.first_failure() {
            panic!(
                "{} of {} seeds failed ({:?}); the first:\n{f}",
                self.failed.len(),
                self.failed.len() + self.passed.len(),
                self.failing_seeds()
            );
        }
    }
}

/// Runs `scenario` once for each seed, catching failures (panics) instead of stopping at the
/// first: for tests that must show a bug *is* found ("some seed fails") as well as for sweeps
/// that report every failing seed. A failing run's trace is kept in its [`Failure`] rather
/// than printed.
///
/// ```
/// use lokimq_sim::explore;
///
/// let found = explore(0..10, |seed| assert!(seed % 4 != 3, "seed {seed} is unlucky"));
/// assert_eq!(found.failing_seeds(), [3, 7]);
/// assert_eq!(found.passed.len(), 8);
/// ```
pub fn explore(seeds: impl IntoIterator<Item = u64>, scenario: impl Fn(u64)) -> Exploration {
    let mut out = Exploration::default();
    for seed in seeds {
        match run_one(seed, &scenario) {
            Ok(()) => out.passed.push(seed),
            Err(f) => out.failed.push(f),
        }
    }
    out
}

/// Runs `scenario` for each seed in turn until one fails, and returns that failure (`None`
/// if every seed passed): for tests that show a planted bug is found.
///
/// ```
/// let f = lokimq_sim::find_failure(0..100, |seed| assert!(seed < 42, "too big"));
/// assert_eq!(f.map(|f| f.seed), Some(42));
/// ```
pub fn find_failure(
    seeds: impl IntoIterator<Item = u64>,
    scenario: impl Fn(u64),
) -> Option<Failure> {
    seeds
        .into_iter()
        .find_map(|seed| run_one(seed, &scenario).err())
}

fn run_one(seed: u64, scenario: &impl Fn(u64)) -> Result<(), Failure> {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let result = catch_unwind(AssertUnwindSafe(|| scenario(seed)));
    let tail = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    result.map_err(|payload| {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            String::from("(non-text panic)")
        };
        Failure {
            seed,
            message,
            trace_tail: tail,
        }
    })
}
