//! ZMTP 3.1 heartbeat timers (libzmq's `ZMQ_HEARTBEAT_IVL`, `_TIMEOUT` and `_TTL`), as a pure
//! timer machine: the session feeds it activity and time, and it says when to PING or give up.
//!
//! * Every `interval` after the handshake we send a PING carrying our TTL (tenths of a second,
//!   truncated, clamped to `u16::MAX`).
//! * After sending a PING, if nothing at all arrives within `timeout`, the connection is dead.
//! * A received PING with TTL > 0 arms a timer of that TTL: if nothing arrives before it
//!   expires, the connection is dead. (libzmq multiplies the TTL by 100 in a `u16`, so TTLs
//!   above 65.5 s wrap there; we compute it correctly.)
//! * Any incoming bytes cancel both the timeout and the TTL timer.

use core::time::Duration;

use crate::time::{Instant, earliest};

/// Heartbeat settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between PINGs. Zero disables our PINGs (libzmq's default).
    pub interval: Duration,
    /// After a PING, how long to wait for any incoming traffic. Zero disables the check.
    pub timeout: Duration,
    /// The TTL announced in our PINGs (zero = none). Keep it ≤ 65.5 s towards libzmq peers.
    pub ttl: Duration,
}

impl HeartbeatConfig {
    /// PINGs every `interval`, timeout equal to the interval (libzmq's default), no TTL.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            timeout: interval,
            ttl: Duration::ZERO,
        }
    }

    /// The TTL in tenths of a second as sent in a PING: truncated, clamped to `u16::MAX`.
    #[must_use]
    pub fn ttl_deciseconds(&self) -> u16 {
        u16::try_from(self.ttl.as_millis() / 100).unwrap_or(u16::MAX)
    }
}

/// Why the heartbeat machine declared the connection dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeartbeatExpiry {
    /// Nothing arrived within the timeout after one of our PINGs.
    NoResponse,
    /// Nothing arrived within the TTL the peer announced in its last PING.
    TtlExpired,
}

/// The heartbeat timers of one connection.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    config: Option<HeartbeatConfig>,
    next_ping: Option<Instant>,
    timeout_at: Option<Instant>,
    ttl_at: Option<Instant>,
}

impl Heartbeat {
    /// Idle timers; nothing runs until [`Heartbeat::start`].
    #[must_use]
    pub fn new(config: Option<HeartbeatConfig>) -> Self {
        Self {
            config: config.filter(|c| !c.interval.is_zero()),
            next_ping: None,
            timeout_at: None,
            ttl_at: None,
        }
    }

    /// Starts PINGing (called when the handshake completes).
    ///
    /// Deadlines past the end of time ([`Instant::checked_add`] fails: a `Duration::MAX`
    /// interval meant as "never") are no deadlines, so a timer never re-arms at
    /// [`Instant::MAX`] and fires in a loop there.
    pub fn start(&mut self, now: Instant) {
        self.next_ping = self.config.and_then(|c| now.checked_add(c.interval));
    }

    /// Stops every timer (the connection is closing).
    pub fn stop(&mut self) {
        self.next_ping = None;
        self.timeout_at = None;
        self.ttl_at = None;
    }

    /// Incoming bytes arrived: the peer is alive.
    pub fn on_activity(&mut self) {
        self.timeout_at = None;
        self.ttl_at = None;
    }

    /// The peer sent a PING announcing `ttl` (zero = none).
    pub fn on_ping(&mut self, now: Instant, ttl: Duration) {
        if !ttl.is_zero() && self.ttl_at.is_none() {
            self.ttl_at = now.checked_add(ttl);
        }
    }

    /// The earliest deadline, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(earliest(self.next_ping, self.timeout_at), self.ttl_at)
    }

    /// Advances to `now`. Returns `Ok(Some(ttl))` when a PING with that TTL (deciseconds) must be
    /// sent, `Ok(None)` when nothing is due, and the expiry when the connection is dead.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<u16>, HeartbeatExpiry> {
        if self.timeout_at.is_some_and(|t| t.has_elapsed(now)) {
            self.stop();
            return Err(HeartbeatExpiry::NoResponse);
        }
        if self.ttl_at.is_some_and(|t| t.has_elapsed(now)) {
            self.stop();
            return Err(HeartbeatExpiry::TtlExpired);
        }
        match (self.config, self.next_ping) {
            (Some(c), Some(t)) if t.has_elapsed(now) => {
                self.next_ping = now.checked_add(c.interval);
                if !c.timeout.is_zero() && self.timeout_at.is_none() {
                    self.timeout_at = now.checked_add(c.timeout);
                }
                Ok(Some(c.ttl_deciseconds()))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Instant = Instant::from_millis;

    fn config(ivl: u64, timeout: u64, ttl: u64) -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Duration::from_millis(ivl),
            timeout: Duration::from_millis(timeout),
            ttl: Duration::from_millis(ttl),
        }
    }

    #[test]
    fn ttl_is_truncated_and_clamped() {
        assert_eq!(config(1, 1, 2000).ttl_deciseconds(), 20);
        assert_eq!(config(1, 1, 2099).ttl_deciseconds(), 20);
        assert_eq!(config(1, 1, 99).ttl_deciseconds(), 0);
        assert_eq!(config(1, 1, 6_553_500).ttl_deciseconds(), u16::MAX);
        assert_eq!(config(1, 1, 100_000_000).ttl_deciseconds(), u16::MAX);
        assert_eq!(
            HeartbeatConfig::new(Duration::from_secs(1)).timeout,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn pings_every_interval_and_times_out_without_traffic() {
        let mut h = Heartbeat::new(Some(config(100, 250, 2000)));
        assert_eq!(h.poll_timeout(), None, "idle until started");
        h.start(MS(0));
        assert_eq!(h.poll_timeout(), Some(MS(100)));
        assert_eq!(h.handle_timeout(MS(99)), Ok(None));
        assert_eq!(h.handle_timeout(MS(100)), Ok(Some(20)));
        // Next PING at 200, timeout at 350.
        assert_eq!(h.poll_timeout(), Some(MS(200)));
        assert_eq!(h.handle_timeout(MS(200)), Ok(Some(20)));
        assert_eq!(h.handle_timeout(MS(300)), Ok(Some(20)));
        assert_eq!(
            h.poll_timeout(),
            Some(MS(350)),
            "timeout not re-armed by later PINGs"
        );
        assert_eq!(h.handle_timeout(MS(350)), Err(HeartbeatExpiry::NoResponse));
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn activity_cancels_the_timeout() {
        let mut h = Heartbeat::new(Some(config(100, 100, 0)));
        h.start(MS(0));
        assert_eq!(h.handle_timeout(MS(100)), Ok(Some(0)));
        h.on_activity();
        assert_eq!(h.handle_timeout(MS(200)), Ok(Some(0)));
        assert_eq!(h.poll_timeout(), Some(MS(300)));
        h.on_activity();
        assert_eq!(h.handle_timeout(MS(300)), Ok(Some(0)));
    }

    #[test]
    fn deadlines_past_the_end_of_time_are_never() {
        let mut h = Heartbeat::new(Some(HeartbeatConfig {
            interval: Duration::MAX,
            timeout: Duration::MAX,
            ttl: Duration::MAX,
        }));
        h.start(MS(0));
        assert_eq!(
            h.poll_timeout(),
            None,
            "a Duration::MAX interval never PINGs"
        );
        // Near the end of time a finite interval overflows too: no PING re-armed at MAX.
        let mut h = Heartbeat::new(Some(config(100, 100, 0)));
        h.start(Instant::MAX - Duration::from_millis(50));
        assert_eq!(h.poll_timeout(), None);
        let mut h = Heartbeat::new(Some(config(100, 100, 0)));
        h.start(Instant::MAX - Duration::from_millis(150));
        assert_eq!(h.handle_timeout(Instant::MAX), Ok(Some(0)));
        assert_eq!(h.poll_timeout(), None);
        h.on_ping(Instant::MAX, Duration::from_secs(1));
        assert_eq!(h.handle_timeout(Instant::MAX), Ok(None));
    }

    #[test]
    fn zero_timeout_never_expires() {
        let mut h = Heartbeat::new(Some(config(100, 0, 0)));
        h.start(MS(0));
        for i in 1..10 {
            assert_eq!(h.handle_timeout(MS(i * 100)), Ok(Some(0)));
        }
    }

    #[test]
    fn peer_ttl_is_honoured_even_without_our_heartbeats() {
        let mut h = Heartbeat::new(None);
        h.start(MS(0));
        assert_eq!(h.poll_timeout(), None);
        h.on_ping(MS(10), Duration::from_millis(2000));
        assert_eq!(h.poll_timeout(), Some(MS(2010)));
        assert_eq!(h.handle_timeout(MS(2009)), Ok(None));
        assert_eq!(h.handle_timeout(MS(2010)), Err(HeartbeatExpiry::TtlExpired));
        // Activity cancels; a zero TTL arms nothing.
        let mut h = Heartbeat::new(None);
        h.on_ping(MS(0), Duration::from_secs(1));
        h.on_activity();
        h.on_ping(MS(5), Duration::ZERO);
        assert_eq!(h.poll_timeout(), None);
        // Large TTLs do not wrap (libzmq's u16 bug).
        h.on_ping(MS(0), Duration::from_millis(u64::from(u16::MAX) * 100));
        assert_eq!(h.poll_timeout(), Some(MS(6_553_500)));
    }

    #[test]
    fn zero_interval_disables_pings() {
        let mut h = Heartbeat::new(Some(config(0, 10, 10)));
        h.start(MS(0));
        assert_eq!(h.poll_timeout(), None);
    }
}
