//! Pending requests: reply tags, deadlines, and what to fail when a connection reports trouble.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use bytes::Bytes;

use crate::time::Instant;

use super::io::RequestId;
use super::route::Origin;

/// Length of a reply tag (OxenMQ: 15 random bytes).
pub(crate) const TAG_LEN: usize = 15;

/// A reply tag.
pub(crate) type Tag = [u8; TAG_LEN];

#[derive(Debug)]
struct Pending {
    id: RequestId,
    deadline: Instant,
    /// The command as sent (for the UNKNOWNCOMMAND improvement).
    command: Bytes,
    /// Where it went, if it went out on a known transport.
    via: Option<Origin>,
}

/// Requests waiting for a reply, indexed by tag, by deadline, and by the route they went out
/// on (so that a closed link or an `UNKNOWNCOMMAND` touches only its own requests).
#[derive(Debug, Default)]
pub(crate) struct Requests {
    by_tag: BTreeMap<Tag, Pending>,
    by_deadline: BTreeSet<(Instant, Tag)>,
    by_via: BTreeSet<(Origin, Tag)>,
}

impl Requests {
    pub(crate) fn len(&self) -> usize {
        self.by_tag.len()
    }

    /// Records a request. A tag collision (2^-120) replaces nothing: the caller draws again.
    pub(crate) fn insert(
        &mut self,
        tag: Tag,
        id: RequestId,
        deadline: Instant,
        command: Bytes,
        via: Option<Origin>,
    ) -> bool {
        if self.by_tag.contains_key(&tag) {
            return false;
        }
        self.by_deadline.insert((deadline, tag));
        if let Some(via) = via {
            self.by_via.insert((via, tag));
        }
        self.by_tag.insert(
            tag,
            Pending {
                id,
                deadline,
                command,
                via,
            },
        );
        true
    }

    pub(crate) fn contains(&self, tag: &Tag) -> bool {
        self.by_tag.contains_key(tag)
    }

    /// Removes and returns the request with this tag (any length; wrong lengths match nothing).
    pub(crate) fn take(&mut self, tag: &[u8]) -> Option<RequestId> {
        let tag: Tag = tag.try_into().ok()?;
        let p = self.by_tag.remove(&tag)?;
        self.by_deadline.remove(&(p.deadline, tag));
        if let Some(via) = p.via {
            self.by_via.remove(&(via, tag));
        }
        Some(p.id)
    }

    /// Removes every request whose deadline has passed, in deadline order.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<RequestId> {
        let mut out = Vec::new();
        while let Some(&(deadline, tag)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            if let Some(p) = self.by_tag.remove(&tag) {
                if let Some(via) = p.via {
                    self.by_via.remove(&(via, tag));
                }
                out.push(p.id);
            }
        }
        out
    }

    /// The tags of the requests sent over `via`, in tag order.
    fn tags_via(&self, via: Origin) -> impl Iterator<Item = Tag> + '_ {
        self.by_via
            .range((via, [0; TAG_LEN])..=(via, [u8::MAX; TAG_LEN]))
            .map(|&(_, tag)| tag)
    }

    /// Removes the requests for `command` sent over `via` (the remote said it does not know it).
    pub(crate) fn take_unknown(&mut self, via: Origin, command: &[u8]) -> Vec<RequestId> {
        let tags: Vec<Tag> = self
            .tags_via(via)
            .filter(|t| {
                self.by_tag
                    .get(t)
                    .is_some_and(|p| p.command.as_ref() == command)
            })
            .collect();
        tags.iter().filter_map(|t| self.take(t)).collect()
    }

    /// Removes the requests sent over `via` (its link was closed for good).
    pub(crate) fn take_via(&mut self, via: Origin) -> Vec<RequestId> {
        let tags: Vec<Tag> = self.tags_via(via).collect();
        tags.iter().filter_map(|t| self.take(t)).collect()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(d, _)| *d)
    }

    /// Forgets everything (shutdown: callbacks are never called, as in OxenMQ).
    pub(crate) fn clear(&mut self) {
        self.by_tag.clear();
        self.by_deadline.clear();
        self.by_via.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(b: u8) -> Tag {
        [b; TAG_LEN]
    }

    #[test]
    fn expire_in_deadline_order() {
        let mut r = Requests::default();
        r.insert(
            tag(1),
            RequestId(1),
            Instant::from_secs(5),
            Bytes::new(),
            None,
        );
        r.insert(
            tag(2),
            RequestId(2),
            Instant::from_secs(3),
            Bytes::new(),
            None,
        );
        r.insert(
            tag(3),
            RequestId(3),
            Instant::from_secs(9),
            Bytes::new(),
            None,
        );
        assert_eq!(r.next_deadline(), Some(Instant::from_secs(3)));
        assert_eq!(
            r.expire(Instant::from_secs(5)),
            [RequestId(2), RequestId(1)]
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r.take(&tag(3)), Some(RequestId(3)));
        assert_eq!(r.take(&tag(3)), None);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn duplicate_tags_are_refused_and_bad_lengths_match_nothing() {
        let mut r = Requests::default();
        assert!(r.insert(tag(1), RequestId(1), Instant::ZERO, Bytes::new(), None));
        assert!(!r.insert(tag(1), RequestId(2), Instant::ZERO, Bytes::new(), None));
        assert_eq!(r.take(&[1u8; 14]), None);
        assert_eq!(r.take(&[1u8; 16]), None);
        assert!(r.contains(&tag(1)));
    }

    #[test]
    fn unknown_command_fails_only_matching_requests_on_that_route() {
        let mut r = Requests::default();
        let a = Origin::InprocClient(0);
        let b = Origin::InprocClient(1);
        r.insert(
            tag(1),
            RequestId(1),
            Instant::ZERO,
            Bytes::from_static(b"x.y"),
            Some(a),
        );
        r.insert(
            tag(2),
            RequestId(2),
            Instant::ZERO,
            Bytes::from_static(b"x.z"),
            Some(a),
        );
        r.insert(
            tag(3),
            RequestId(3),
            Instant::ZERO,
            Bytes::from_static(b"x.y"),
            Some(b),
        );
        assert_eq!(r.take_unknown(a, b"x.y"), [RequestId(1)]);
        assert_eq!(r.len(), 2);
        assert_eq!(r.take_via(b), [RequestId(3)]);
    }
}
