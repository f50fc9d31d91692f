//! [`Subscription`]: OxenMQ's pub/sub bookkeeping helper (`oxenmq/pubsub.h`).
//!
//! There is no pub/sub wire protocol: a subscriber sends some application command (say
//! `notify.subscribe`), the handler records its [`ConnectionId`] here, and the publisher later
//! walks the live subscribers and sends each one an ordinary message. Subscriptions expire
//! unless renewed, so a peer that went away without unsubscribing stops costing anything.

use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use lokimq_core::node::ConnectionId;

use crate::clock::Stopwatch;

/// Live subscribers of one kind of notification, each with optional user data, expiring a
/// fixed time after their last (re)subscription. Thread-safe: handlers on several workers may
/// subscribe while a timer publishes.
///
/// ```
/// use lokimq::{ConnectionId, PublicKey, Subscription};
/// use std::time::Duration;
///
/// // Subscribers to new blocks, each with the minimum height it cares about.
/// let blocks: Subscription<u64> = Subscription::new("new blocks", Duration::from_secs(600));
/// let alice = ConnectionId::from(PublicKey::from_bytes([1; 32]));
/// assert!(blocks.subscribe(&alice, 100)); // new
/// assert!(!blocks.subscribe(&alice, 100)); // a renewal
/// assert!(blocks.subscribe(&alice, 200)); // changed data counts as new
///
/// let mut notified = Vec::new();
/// blocks.publish(|conn, min_height| {
///     // In a node: handle.send(conn, "blocks.new", [..]) when the height is ≥ min_height.
///     notified.push((conn.clone(), *min_height));
/// });
/// assert_eq!(notified, [(alice.clone(), 200)]);
/// assert_eq!(blocks.unsubscribe(&alice), Some(200));
/// ```
pub struct Subscription<T = ()> {
    description: String,
    duration: Duration,
    clock: Stopwatch,
    subscribers: RwLock<BTreeMap<ConnectionId, Subscriber<T>>>,
}

struct Subscriber<T> {
    data: T,
    /// Time on `clock` at which the subscription lapses.
    expiry: Duration,
}

impl<T> Subscription<T> {
    /// OxenMQ's default subscription lifetime: 30 minutes.
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(30 * 60);

    /// An empty set of subscribers; `description` names it in logs, and a subscription lapses
    /// `duration` after it was last made or renewed.
    #[must_use]
    pub fn new(description: impl Into<String>, duration: Duration) -> Self {
        Self {
            description: description.into(),
            duration,
            clock: Stopwatch::start(),
            subscribers: RwLock::new(BTreeMap::new()),
        }
    }

    /// The description given to [`new`](Self::new).
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Removes `conn`'s subscription, returning its data if it had one (expired or not).
    pub fn unsubscribe(&self, conn: &ConnectionId) -> Option<T> {
        let removed = self.write().remove(conn).map(|s| s.data);
        if removed.is_some() {
            tracing::debug!("{}: {conn} unsubscribed", self.description);
        }
        removed
    }

    /// Calls `f` with every unexpired subscriber and its data, then drops the expired ones.
    ///
    /// `f` runs while the subscriber list is read-locked (as in OxenMQ): it may send messages,
    /// but must not call back into this `Subscription`.
    pub fn publish(&self, mut f: impl FnMut(&ConnectionId, &T)) {
        let expired = self.publish_at(self.clock.elapsed(), &mut f);
        if expired {
            self.remove_expired();
        }
    }

    /// Drops every expired subscription.
    pub fn remove_expired(&self) {
        self.remove_expired_at(self.clock.elapsed());
    }

    /// The number of subscriptions, counting expired ones not yet removed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when there are no subscriptions at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Calls `f` for the subscribers unexpired at `now`; true if any had expired.
    fn publish_at(&self, now: Duration, f: &mut impl FnMut(&ConnectionId, &T)) -> bool {
        let mut expired = false;
        for (conn, s) in self.read().iter() {
            if s.expiry > now {
                f(conn, &s.data);
            } else {
                expired = true;
            }
        }
        expired
    }

    fn remove_expired_at(&self, now: Duration) {
        let mut subscribers = self.write();
        let before = subscribers.len();
        // Checked again under the write lock: a subscriber may have renewed in between.
        subscribers.retain(|_, s| s.expiry > now);
        let gone = before - subscribers.len();
        if gone > 0 {
            tracing::debug!("{}: {gone} subscription(s) expired", self.description);
        }
    }

    // A handler that panicked while holding the lock leaves the map itself consistent (every
    // mutation is a single map operation), so poisoning is not a reason to lose subscribers.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<ConnectionId, Subscriber<T>>> {
        self.subscribers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<ConnectionId, Subscriber<T>>> {
        self.subscribers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T: PartialEq> Subscription<T> {
    /// Subscribes `conn` with `data`, or renews its subscription: either way it now expires
    /// the configured duration from now. Returns true for a new subscription, or when the data
    /// differs from what it was (compared with `==`, as OxenMQ does); false for a plain
    /// renewal. An expired subscription not yet removed counts as new.
    pub fn subscribe(&self, conn: &ConnectionId, data: T) -> bool {
        self.subscribe_at(self.clock.elapsed(), conn, data)
    }

    fn subscribe_at(&self, now: Duration, conn: &ConnectionId, data: T) -> bool {
        let expiry = now.saturating_add(self.duration);
        let mut subscribers = self.write();
        let fresh = match subscribers.get_mut(conn) {
            Some(s) => {
                let fresh = s.expiry <= now || s.data != data;
                s.data = data;
                s.expiry = expiry;
                fresh
            }
            None => {
                subscribers.insert(conn.clone(), Subscriber { data, expiry });
                true
            }
        };
        if fresh {
            tracing::debug!("{}: new subscription from {conn}", self.description);
        }
        fresh
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("description", &self.description)
            .field("duration", &self.duration)
            .field("subscribers", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lokimq_core::keys::PublicKey;

    fn conn(n: u8) -> ConnectionId {
        ConnectionId::from(PublicKey::from_bytes([n; 32]))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn published<T: Clone>(s: &Subscription<T>, now: Duration) -> Vec<(ConnectionId, T)> {
        let mut out = Vec::new();
        s.publish_at(now, &mut |c, d| out.push((c.clone(), d.clone())));
        out
    }

    #[test]
    fn subscribe_reports_new_renewed_and_changed() {
        let s = Subscription::new("test", secs(10));
        assert!(s.subscribe_at(secs(0), &conn(1), "a"));
        assert!(!s.subscribe_at(secs(5), &conn(1), "a"));
        assert!(s.subscribe_at(secs(6), &conn(1), "b"));
        assert!(s.subscribe_at(secs(6), &conn(2), "a"));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn renewal_pushes_the_expiry_back() {
        let s = Subscription::new("test", secs(10));
        s.subscribe_at(secs(0), &conn(1), ());
        s.subscribe_at(secs(8), &conn(1), ());
        // Would have expired at 10 without the renewal.
        assert_eq!(published(&s, secs(15)), [(conn(1), ())]);
        assert!(published(&s, secs(18)).is_empty());
    }

    #[test]
    fn publish_skips_expired_and_remove_drops_them() {
        let s = Subscription::new("test", secs(10));
        s.subscribe_at(secs(0), &conn(1), 1);
        s.subscribe_at(secs(5), &conn(2), 2);
        assert!(s.publish_at(secs(12), &mut |_, _| {}));
        assert_eq!(published(&s, secs(12)), [(conn(2), 2)]);
        s.remove_expired_at(secs(12));
        assert_eq!(s.len(), 1);
        // An expired subscription resubscribing is new again, even with the same data.
        s.subscribe_at(secs(0), &conn(3), 3);
        assert!(s.subscribe_at(secs(11), &conn(3), 3));
    }

    #[test]
    fn unsubscribe_returns_the_data_once() {
        let s = Subscription::new("test", secs(10));
        s.subscribe_at(secs(0), &conn(1), String::from("x"));
        assert_eq!(s.unsubscribe(&conn(1)).as_deref(), Some("x"));
        assert_eq!(s.unsubscribe(&conn(1)), None);
        assert!(s.is_empty());
    }

    #[test]
    fn real_clock_publish_and_expiry() {
        let long = Subscription::new("long", Subscription::<()>::DEFAULT_DURATION);
        long.subscribe(&conn(1), ());
        let mut n = 0;
        long.publish(|_, ()| n += 1);
        assert_eq!(n, 1);

        let short = Subscription::new("short", Duration::from_millis(1));
        short.subscribe(&conn(1), ());
        std::thread::sleep(Duration::from_millis(20));
        let mut n = 0;
        short.publish(|_, ()| n += 1);
        assert_eq!(n, 0);
        assert!(short.is_empty(), "publish removes what it found expired");
    }

    #[test]
    fn shared_between_threads() {
        let s = std::sync::Arc::new(Subscription::new("threads", secs(60)));
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        s.subscribe(&conn(t * 50 + i), u32::from(i));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.len(), 200);
    }
}
