//! ROUTER routing ids above sessions: which connection a routing id names, and back.
//!
//! Mirrors libzmq's `router_t::identify_peer` with `ZMQ_ROUTER_HANDOVER=1` (what LokiMQ sets):
//!
//! * A peer announcing a non-empty `Identity` gets it as its routing id, whatever its bytes. In
//!   particular libzmq does **not** refuse identities starting with `0x00` (the range RFC 37
//!   reserves for generated ids) and neither do we.
//! * An identity already in use is handed over: the new connection takes it and the old one is
//!   detached; [`RouterTable::attach`] returns the displaced key so the caller closes that
//!   connection (libzmq renames it to a generated id and terminates it).
//! * An empty identity gets a generated id: `0x00` + u32 BE counter, the counter starting at a
//!   random value drawn once at construction and going up by one (wrapping). libzmq does not
//!   check generated ids against ids taken by peers (a collision trips an assertion there); we
//!   skip any id already in use instead.
//!
//! Everything is kept in `BTreeMap`s, so iteration order is deterministic.

use alloc::collections::BTreeMap;

use bytes::Bytes;

use crate::rng::{CryptoRngCore, public_array};

/// Length of a generated routing id.
pub const GENERATED_ID_LEN: usize = 5;

/// The result of [`RouterTable::attach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached<K> {
    /// The routing id now naming the attached connection.
    pub routing_id: Bytes,
    /// A connection that held this routing id before and was detached (handover): close it.
    pub displaced: Option<K>,
}

/// The routing-id table of one ROUTER, generic over the connection key.
#[derive(Debug, Clone)]
pub struct RouterTable<K> {
    by_id: BTreeMap<Bytes, K>,
    by_key: BTreeMap<K, Bytes>,
    next_generated: u32,
}

impl<K: Copy + Ord> RouterTable<K> {
    /// An empty table whose generated-id counter starts at a random value from `rng`.
    pub fn new<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        Self::with_counter(u32::from_be_bytes(public_array(rng)))
    }

    /// An empty table whose generated-id counter starts at `start`.
    #[must_use]
    pub fn with_counter(start: u32) -> Self {
        Self {
            by_id: BTreeMap::new(),
            by_key: BTreeMap::new(),
            next_generated: start,
        }
    }

    /// Attaches connection `key` whose handshake just completed with the peer `identity`.
    ///
    /// If `key` was already attached, its old routing id is released first.
    pub fn attach(&mut self, key: K, identity: &[u8]) -> Attached<K> {
        self.detach(key);
        let (routing_id, displaced) = if identity.is_empty() {
            (self.generate(), None)
        } else {
            let id = Bytes::copy_from_slice(identity);
            let displaced = self.by_id.remove(identity);
            if let Some(old) = displaced {
                self.by_key.remove(&old);
            }
            (id, displaced)
        };
        self.by_id.insert(routing_id.clone(), key);
        self.by_key.insert(key, routing_id.clone());
        Attached {
            routing_id,
            displaced,
        }
    }

    fn generate(&mut self) -> Bytes {
        // Terminates: the table holds fewer than 2^32 ids, so some counter value is free; in
        // practice the first one is.
        loop {
            let mut id = [0u8; GENERATED_ID_LEN];
            id[1..].copy_from_slice(&self.next_generated.to_be_bytes());
            self.next_generated = self.next_generated.wrapping_add(1);
            if !self.by_id.contains_key(&id[..]) {
                return Bytes::copy_from_slice(&id);
            }
        }
    }

    /// The connection a routing id names.
    #[must_use]
    pub fn lookup(&self, routing_id: &[u8]) -> Option<K> {
        self.by_id.get(routing_id).copied()
    }

    /// The routing id of a connection.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn routing_id(&self, key: K) -> Option<&Bytes> {
        self.by_key.get(&key)
    }

    /// Detaches a connection (closed), returning the routing id it had.
    pub fn detach(&mut self, key: K) -> Option<Bytes> {
        let id = self.by_key.remove(&key)?;
        self.by_id.remove(&id);
        Some(id)
    }

    /// Number of attached connections.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True if no connection is attached.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// (routing id, key) pairs in routing-id order.
    #[cfg(any(test, feature = "internals"))]
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, K)> {
        self.by_id.iter().map(|(id, k)| (id, *k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn peer_identity_becomes_the_routing_id() {
        let mut t = RouterTable::with_counter(0);
        let a = t.attach(1u32, b"dealer-A");
        assert_eq!(a.routing_id.as_ref(), b"dealer-A");
        assert_eq!(a.displaced, None);
        assert_eq!(t.lookup(b"dealer-A"), Some(1));
        assert_eq!(t.routing_id(1).unwrap().as_ref(), b"dealer-A");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn duplicate_identity_is_handed_over() {
        let mut t = RouterTable::with_counter(0);
        t.attach(1u32, b"pk");
        let a = t.attach(2, b"pk");
        assert_eq!(a.displaced, Some(1));
        assert_eq!(t.lookup(b"pk"), Some(2));
        assert_eq!(t.routing_id(1), None);
        assert_eq!(
            t.detach(1),
            None,
            "the displaced connection is already gone"
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn empty_identities_get_generated_ids_from_the_counter() {
        let mut t = RouterTable::with_counter(0xffff_fffe);
        assert_eq!(
            t.attach(1u32, b"").routing_id.as_ref(),
            &[0, 0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(
            t.attach(2, b"").routing_id.as_ref(),
            &[0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            t.attach(3, b"").routing_id.as_ref(),
            &[0, 0, 0, 0, 0],
            "wraps"
        );
        assert_eq!(t.lookup(&[0, 0xff, 0xff, 0xff, 0xff]), Some(2));
    }

    #[test]
    fn counter_starts_at_a_value_drawn_from_the_rng() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let expected: [u8; 4] = public_array(&mut ChaCha20Rng::seed_from_u64(7));
        let mut t = RouterTable::new(&mut rng);
        let id = t.attach(1u32, b"").routing_id;
        assert_eq!(id[0], 0);
        assert_eq!(&id[1..], &expected);
        let id2 = t.attach(2, b"").routing_id;
        assert_eq!(
            u32::from_be_bytes(id2[1..].try_into().unwrap()),
            u32::from_be_bytes(expected).wrapping_add(1)
        );
    }

    #[test]
    fn zero_prefixed_peer_identities_are_used_as_is_and_skipped_by_generation() {
        let mut t = RouterTable::with_counter(5);
        // A peer claims the id the counter would generate next: libzmq accepts it as is.
        let a = t.attach(1u32, &[0, 0, 0, 0, 5]);
        assert_eq!(a.routing_id.as_ref(), &[0, 0, 0, 0, 5]);
        // Generation skips it instead of colliding.
        assert_eq!(t.attach(2, b"").routing_id.as_ref(), &[0, 0, 0, 0, 6]);
        assert_eq!(t.lookup(&[0, 0, 0, 0, 5]), Some(1));
        // A peer claiming a generated id in use takes it over (handover, as for any id).
        let b = t.attach(3, &[0, 0, 0, 0, 6]);
        assert_eq!(b.displaced, Some(2));
    }

    #[test]
    fn reattach_and_detach() {
        let mut t = RouterTable::with_counter(0);
        t.attach(1u32, b"a");
        let a = t.attach(1, b"b");
        assert_eq!(a.displaced, None);
        assert_eq!(t.lookup(b"a"), None);
        assert_eq!(t.lookup(b"b"), Some(1));
        assert_eq!(t.detach(1).unwrap().as_ref(), b"b");
        assert!(t.is_empty());
        t.attach(4, b"z");
        t.attach(3, b"y");
        let order: alloc::vec::Vec<u32> = t.iter().map(|(_, k)| k).collect();
        assert_eq!(order, [3, 4], "deterministic routing-id order");
    }
}
