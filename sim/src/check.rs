//! Invariants: properties checked after every step of a simulation, ready-made or your own.
//!
//! The simulator keeps a ledger of every request each node makes through its
//! [`Handle`](lokimq::Handle) (or a [`Message`](lokimq::Message)): when the request was made,
//! and each time its reply callback ran. Two invariants over it come ready-made:
//! [`Invariant::no_request_lost`] and [`Invariant::replies_match_requests`]. Anything else is an
//! [`Invariant::new`] with a closure over the [`Sim`]: typically over the application's own
//! state, which the test shares with its handlers through an `Arc<Mutex<_>>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use lokimq_core::node::RequestId;
use lokimq_core::time::{Duration, Instant};

use crate::{NodeId, Sim};

/// A property checked after every step: `Err(why)` fails the simulation with its seed.
///
/// ```
/// use lokimq_sim::{Invariant, Sim};
/// use std::sync::{Arc, Mutex};
///
/// let log: Arc<Mutex<Vec<u64>>> = Arc::default(); // shared with the application's handlers
/// let mut sim = Sim::new(1);
/// sim.add_invariant(Invariant::no_request_lost());
/// sim.add_invariant(Invariant::replies_match_requests());
/// let seen = Arc::clone(&log);
/// sim.add_invariant(Invariant::new("log is sorted", move |_sim: &Sim| {
///     let log = seen.lock().unwrap();
///     match log.windows(2).find(|w| w[0] > w[1]) {
///         Some(w) => Err(format!("{} came after {}", w[1], w[0])),
///         None => Ok(()),
///     }
/// }));
/// ```
pub struct Invariant {
    name: String,
    check: CheckFn,
}

/// An invariant's check.
type CheckFn = Box<dyn FnMut(&Sim) -> Result<(), String>>;

impl fmt::Debug for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invariant")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Invariant {
    /// An invariant named `name` (the name appears in the failure) checked by `check`.
    pub fn new(
        name: impl Into<String>,
        check: impl FnMut(&Sim) -> Result<(), String> + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            check: Box::new(check),
        }
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn check(&mut self, sim: &Sim) -> Result<(), String> {
        (self.check)(sim)
    }

    /// **No request is lost**: every request a running node made gets its reply callback
    /// (with the reply or an error such as `Timeout`), and it gets it by its deadline. A
    /// request is lost if its callback was dropped without running, or if it is still waiting
    /// a second after the node's `request_timeout` (the core fails it with `Timeout` at that
    /// deadline at the latest). Requests of a node that crashed or shut down are exempt: both
    /// drop pending callbacks by design, as OxenMQ does. For requests made with a longer
    /// per-request timeout, use [`no_request_lost_within`](Self::no_request_lost_within).
    #[must_use]
    pub fn no_request_lost() -> Self {
        Self::lost_check("no request lost", None)
    }

    /// [`no_request_lost`](Self::no_request_lost) with an explicit bound: a request still
    /// waiting for its callback `max_wait` after it was made is lost.
    #[must_use]
    pub fn no_request_lost_within(max_wait: Duration) -> Self {
        Self::lost_check("no request lost", Some(max_wait))
    }

    fn lost_check(name: &str, max_wait: Option<Duration>) -> Self {
        Self::new(name, move |sim: &Sim| {
            for n in sim.nodes() {
                let ledger = sim.requests(n);
                if let Some(r) = ledger.lost.first() {
                    return Err(format!(
                        "{n}: request {} (made at {:?}) lost its reply callback at {:?} without \
                         it running",
                        r.request.0, r.made_at, r.at
                    ));
                }
                let Some(limit) =
                    max_wait.or_else(|| sim.config_of(n).map(|c| c.request_timeout + SLACK))
                else {
                    continue;
                };
                if let Some((id, made)) = ledger
                    .pending
                    .iter()
                    .find(|(_, made)| sim.now().saturating_duration_since(**made) > limit)
                {
                    return Err(format!(
                        "{n}: request {} made at {made:?} has had no reply callback for {:?} \
                         (now {:?})",
                        id.0,
                        sim.now().saturating_duration_since(*made),
                        sim.now()
                    ));
                }
            }
            Ok(())
        })
    }

    /// **Every reply matches a request**: a reply callback only ever runs for a request the
    /// node made and is still waiting on, so no request is answered twice and no reply is
    /// delivered to a request that never was.
    #[must_use]
    pub fn replies_match_requests() -> Self {
        Self::new("every reply matches a request", |sim: &Sim| {
            for n in sim.nodes() {
                if let Some(issue) = sim.requests(n).stray.first() {
                    return Err(format!("{n}: {issue}"));
                }
            }
            Ok(())
        })
    }
}

/// How late past the node's `request_timeout` a request may be answered before it counts as
/// lost (the core fails it exactly at the deadline; the slack covers a slow reply callback's
/// dispatch).
const SLACK: Duration = Duration::from_secs(1);

/// A request whose callback was dropped without running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRequest {
    /// The request.
    pub request: RequestId,
    /// When it was made.
    pub made_at: Instant,
    /// When its callback disappeared.
    pub at: Instant,
}

/// A reply callback that should not have run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrayReply {
    /// A second answer to a request already answered.
    Duplicate {
        /// The request.
        request: RequestId,
        /// When.
        at: Instant,
    },
    /// An answer to a request the node never made (or whose callback is not waiting).
    Unknown {
        /// The request.
        request: RequestId,
        /// When.
        at: Instant,
    },
}

impl fmt::Display for StrayReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate { request, at } => {
                write!(f, "request {} answered a second time at {at:?}", request.0)
            }
            Self::Unknown { request, at } => write!(
                f,
                "reply at {at:?} for request {}, which is not waiting for one",
                request.0
            ),
        }
    }
}

/// Every request a node's current incarnation made, and what became of it (see
/// [`Sim::requests`]).
#[derive(Debug, Clone, Default)]
pub struct RequestLedger {
    /// Requests waiting for their reply callback, with when they were made.
    pub pending: BTreeMap<RequestId, Instant>,
    /// Requests whose callback ran, once.
    pub answered: BTreeSet<RequestId>,
    /// Requests whose callback vanished without running (see
    /// [`Invariant::no_request_lost`]).
    pub lost: Vec<LostRequest>,
    /// Reply callbacks that should not have run (see
    /// [`Invariant::replies_match_requests`]).
    pub stray: Vec<StrayReply>,
    /// Requests dropped with their node (it crashed or shut down), not counted as lost.
    pub abandoned: u64,
}

impl RequestLedger {
    /// Requests made so far.
    #[must_use]
    pub fn made(&self) -> usize {
        self.pending.len() + self.answered.len() + self.lost.len()
    }

    /// Brings the ledger up to date with the callbacks the node holds now. `exempt`: the node
    /// is shutting down, so callbacks may vanish.
    pub(crate) fn observe(&mut self, now: Instant, holding: &[RequestId], exempt: bool) {
        let holding_set: BTreeSet<RequestId> = holding.iter().copied().collect();
        let gone: Vec<RequestId> = self
            .pending
            .keys()
            .filter(|id| !holding_set.contains(id))
            .copied()
            .collect();
        for id in gone {
            let made_at = self.pending.remove(&id).unwrap_or(now);
            if exempt {
                self.abandoned += 1;
            } else {
                self.lost.push(LostRequest {
                    request: id,
                    made_at,
                    at: now,
                });
            }
        }
        for id in holding {
            if !self.pending.contains_key(id) && !self.answered.contains(id) {
                self.pending.insert(*id, now);
            }
        }
    }

    /// A reply callback is about to run for `id`.
    pub(crate) fn replying(&mut self, now: Instant, id: RequestId) {
        if self.pending.remove(&id).is_some() {
            self.answered.insert(id);
        } else if self.answered.contains(&id) {
            self.stray.push(StrayReply::Duplicate {
                request: id,
                at: now,
            });
        } else {
            self.stray.push(StrayReply::Unknown {
                request: id,
                at: now,
            });
        }
    }

    /// The node went away: its pending requests go with it.
    pub(crate) fn abandon(&mut self) {
        self.abandoned += self.pending.len() as u64;
        self.pending.clear();
    }
}

/// Which node a check is about, for messages.
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
