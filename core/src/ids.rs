//! Small `Copy` identifiers shared by every part of the node.
//!
//! Ids are plain newtypes so they cost nothing to pass around and cannot be confused with one
//! another. [`ConnId`] carries a generation: a connection slot that is freed and reused gets a new
//! generation, so a stale id held by the embedder never reaches the new connection.

use core::fmt;

/// A connection (one socket) the node knows about, with the generation of its slot.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// Builds an id from a slot index and the slot's generation.
    #[must_use]
    pub const fn new(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }

    /// The slot index (reused after the connection is gone).
    #[must_use]
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation when this id was issued.
    #[must_use]
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn{}g{}", self.index, self.generation)
    }
}

macro_rules! small_id {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw number behind this id.
            #[must_use]
            pub const fn get(self) -> $inner {
                self.0
            }

            /// The raw number as a `usize`, for indexing tables.
            #[must_use]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

small_id!(
    /// A worker slot the embedder runs jobs on. General-pool slots are `0..max_workers`; tagged
    /// threads get the ids after those.
    WorkerId(u16),
    "w"
);
small_id!(
    /// A batch of jobs; increases monotonically and is never reused.
    BatchId(u64),
    "batch"
);
small_id!(
    /// A registered command category (index into the frozen registry).
    CategoryId(u16),
    "cat"
);
small_id!(
    /// A registered command (index into the frozen registry); the driver keys its callbacks by it.
    CommandId(u16),
    "cmd"
);
small_id!(
    /// A listening socket (one auth domain each).
    ListenerId(u16),
    "listener"
);
small_id!(
    /// A repeating timer; increases monotonically and is never reused.
    TimerId(u64),
    "timer"
);
small_id!(
    /// A named tagged thread: runs only the jobs addressed to it, in FIFO order.
    TaggedThreadId(u16),
    "tagged"
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn conn_ids_with_different_generations_differ() {
        let a = ConnId::new(3, 0);
        let b = ConnId::new(3, 1);
        assert_ne!(a, b);
        assert_eq!(a.index(), b.index());
        assert_eq!(format!("{a:?}"), "conn3g0");
    }

    #[test]
    fn small_ids_print_with_prefix() {
        assert_eq!(format!("{}", WorkerId(4)), "w4");
        assert_eq!(CategoryId(7).index(), 7);
    }
}
