//! Time as the core sees it: a monotonic [`Instant`] handed in by the embedder.
//!
//! The core never reads a clock. Every input carries `now`, and every deadline the core keeps is
//! an [`Instant`] it compares against the `now` it was last given. An `Instant` is a count of
//! microseconds since an epoch the embedder picks (the native driver uses the moment it started,
//! the simulator uses zero), so the same inputs always produce the same outputs.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

pub use core::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch chosen by the embedder.
///
/// Only differences between instants are meaningful. Arithmetic saturates instead of
/// overflowing: a deadline past `u64::MAX` µs (about 584 000 years) is simply "never".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Self = Self(0);
    /// The latest representable instant; used as "never" where an `Option` is not wanted.
    pub const MAX: Self = Self(u64::MAX);

    /// An instant `micros` microseconds after the epoch.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1000))
    }

    /// An instant `secs` seconds after the epoch (saturating).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_micros(d)))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_micros(d)))
    }

    /// `self + d`, or `None` if that is not representable.
    #[must_use]
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        let micros = u64::try_from(d.as_micros()).ok()?;
        self.0.checked_add(micros).map(Self)
    }

    /// True once `now` has reached this instant.
    #[must_use]
    pub fn has_elapsed(self, now: Self) -> bool {
        now >= self
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX`.
fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        self.saturating_sub(d)
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturating: an earlier `self` gives zero rather than panicking.
    fn sub(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The earliest of two optional deadlines (`None` means "no deadline").
#[must_use]
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_agree() {
        assert_eq!(Instant::from_secs(2), Instant::from_millis(2000));
        assert_eq!(Instant::from_millis(3), Instant::from_micros(3000));
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(1);
        assert_eq!(
            t + Duration::from_millis(500),
            Instant::from_micros(1_500_000)
        );
        assert_eq!(t - Duration::from_secs(5), Instant::ZERO);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::ZERO, Duration::from_secs(1));
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(Instant::MAX.saturating_add(Duration::MAX), Instant::MAX);
    }

    #[test]
    fn elapsed_is_inclusive() {
        let deadline = Instant::from_millis(10);
        assert!(!deadline.has_elapsed(Instant::from_micros(9_999)));
        assert!(deadline.has_elapsed(Instant::from_millis(10)));
    }

    #[test]
    fn earliest_ignores_none() {
        let a = Some(Instant::from_secs(1));
        let b = Some(Instant::from_secs(2));
        assert_eq!(earliest(a, b), a);
        assert_eq!(earliest(None, b), b);
        assert_eq!(earliest(a, None), a);
        assert_eq!(earliest(None, None), None);
    }

    #[test]
    fn debug_format_shows_seconds() {
        assert_eq!(
            alloc::format!("{:?}", Instant::from_micros(1_000_042)),
            "1.000042s"
        );
    }
}
