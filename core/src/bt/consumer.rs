//! Allocation-free readers that walk an encoded list or dict in place (oxenc's
//! `bt_list_consumer`/`bt_dict_consumer`).
//!
//! A consumer is built from the complete encoding of one list or dict and validates all of it up
//! front, with the same rules and depth bound as [`super::decode`]; what it then hands out
//! (strings, raw sub-values, nested consumers) borrows from the input, so the happy path never
//! allocates. Every read is all-or-nothing: a read that fails leaves the consumer where it was, so
//! after a [`BtError::WrongType`] the caller may try another type.
//!
//! Offsets in errors are positions in the slice given to the outermost consumer.

use super::{BtError, BtInteger, BtKind, BtValue, InvalidReason, scan};

/// A position inside validated input, and the reads common to both consumers.
#[derive(Clone, Debug)]
struct Cursor<'a> {
    /// The whole input given to the outermost consumer; validated.
    src: &'a [u8],
    /// The next value, or the closing `e` of the container.
    pos: usize,
    /// How many containers enclose `pos`.
    depth: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn kind(&self) -> Option<BtKind> {
        self.peek().and_then(scan::kind_of)
    }

    fn is_finished(&self) -> bool {
        self.peek() == Some(b'e')
    }

    fn is_integer_with(&self, second: impl Fn(u8) -> bool) -> bool {
        self.kind() == Some(BtKind::Integer)
            && self.src.get(self.pos + 1).is_some_and(|&b| second(b))
    }

    /// Checks that the next value exists and, if `want` is given, is of that kind.
    fn expect(&self, want: Option<BtKind>) -> Result<(), BtError> {
        let offset = self.pos;
        match self.peek() {
            None | Some(b'e') => Err(BtError::Exhausted { offset }),
            Some(byte) => match (scan::kind_of(byte), want) {
                (Some(found), Some(expected)) if found != expected => Err(BtError::WrongType {
                    offset,
                    expected,
                    found,
                }),
                (Some(_), _) => Ok(()),
                (None, _) => Err(BtError::Invalid {
                    offset,
                    reason: InvalidReason::UnexpectedByte(byte),
                }),
            },
        }
    }

    fn string(&mut self) -> Result<&'a [u8], BtError> {
        self.expect(Some(BtKind::Bytes))?;
        let (bytes, next) = scan::string(self.src, self.pos)?;
        self.pos = next;
        Ok(bytes)
    }

    fn integer<I: BtInteger>(&mut self) -> Result<I, BtError> {
        self.expect(Some(BtKind::Integer))?;
        let (wide, next) = scan::integer(self.src, self.pos)?;
        let value = I::from_wide(wide).ok_or(BtError::IntegerOutOfRange { offset: self.pos })?;
        self.pos = next;
        Ok(value)
    }

    /// The next value's encoding and the position after it, without moving.
    fn peek_raw(&self, want: Option<BtKind>) -> Result<(&'a [u8], usize), BtError> {
        self.expect(want)?;
        let next = scan::skip(self.src, self.pos, self.depth)?;
        Ok((&self.src[self.pos..next], next))
    }

    fn raw(&mut self, want: Option<BtKind>) -> Result<&'a [u8], BtError> {
        let (raw, next) = self.peek_raw(want)?;
        self.pos = next;
        Ok(raw)
    }

    fn value(&mut self) -> Result<BtValue, BtError> {
        let (raw, next) = self.peek_raw(None)?;
        let value = super::decode(raw)?;
        self.pos = next;
        Ok(value)
    }

    fn list(&mut self) -> Result<BtListConsumer<'a>, BtError> {
        let start = self.pos;
        self.raw(Some(BtKind::List))?;
        Ok(BtListConsumer {
            cur: Cursor {
                src: self.src,
                pos: start + 1,
                depth: self.depth + 1,
            },
        })
    }

    fn dict(&mut self) -> Result<BtDictConsumer<'a>, BtError> {
        let (_, next) = self.peek_raw(Some(BtKind::Dict))?;
        let inner = BtDictConsumer::at(Cursor {
            src: self.src,
            pos: self.pos + 1,
            depth: self.depth + 1,
        })?;
        self.pos = next;
        Ok(inner)
    }
}

/// Walks the elements of an encoded list in order, without allocating.
///
/// ```
/// use lokimq_core::bt::BtListConsumer;
///
/// let mut list = BtListConsumer::new(b"li1e3:abcli-2eee")?;
/// assert_eq!(list.consume_integer::<u8>()?, 1);
/// assert_eq!(list.consume_string()?, b"abc");
/// let mut inner = list.consume_list_consumer()?;
/// assert_eq!(inner.consume_integer::<i32>()?, -2);
/// assert!(list.is_finished());
/// # Ok::<(), lokimq_core::bt::BtError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BtListConsumer<'a> {
    cur: Cursor<'a>,
}

impl<'a> BtListConsumer<'a> {
    /// Starts reading `data`, which must be exactly one canonical list (validated in full here).
    pub fn new(data: &'a [u8]) -> Result<Self, BtError> {
        scan::validate_kind(data, BtKind::List)?;
        Ok(Self {
            cur: Cursor {
                src: data,
                pos: 1,
                depth: 1,
            },
        })
    }

    /// True when every element has been consumed.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.cur.is_finished()
    }

    /// The kind of the next element, or `None` at the end of the list.
    #[must_use]
    pub fn next_kind(&self) -> Option<BtKind> {
        self.cur.kind()
    }

    /// True if the next element is a byte string.
    #[must_use]
    pub fn is_string(&self) -> bool {
        self.cur.kind() == Some(BtKind::Bytes)
    }

    /// True if the next element is an integer.
    #[must_use]
    pub fn is_integer(&self) -> bool {
        self.cur.kind() == Some(BtKind::Integer)
    }

    /// True if the next element is a negative integer.
    #[must_use]
    pub fn is_negative_integer(&self) -> bool {
        self.cur.is_integer_with(|b| b == b'-')
    }

    /// True if the next element is a non-negative integer.
    #[must_use]
    pub fn is_unsigned_integer(&self) -> bool {
        self.cur.is_integer_with(|b| b.is_ascii_digit())
    }

    /// True if the next element is a list.
    #[must_use]
    pub fn is_list(&self) -> bool {
        self.cur.kind() == Some(BtKind::List)
    }

    /// True if the next element is a dict.
    #[must_use]
    pub fn is_dict(&self) -> bool {
        self.cur.kind() == Some(BtKind::Dict)
    }

    /// Reads the next element as a byte string, borrowed from the input.
    pub fn consume_string(&mut self) -> Result<&'a [u8], BtError> {
        self.cur.string()
    }

    /// Reads the next element as an integer of type `I`; [`BtError::IntegerOutOfRange`] if it
    /// does not fit.
    pub fn consume_integer<I: BtInteger>(&mut self) -> Result<I, BtError> {
        self.cur.integer()
    }

    /// Returns the complete encoding of the next element, which must be a list.
    pub fn consume_list_data(&mut self) -> Result<&'a [u8], BtError> {
        self.cur.raw(Some(BtKind::List))
    }

    /// Returns the complete encoding of the next element, which must be a dict.
    pub fn consume_dict_data(&mut self) -> Result<&'a [u8], BtError> {
        self.cur.raw(Some(BtKind::Dict))
    }

    /// Returns the complete encoding of the next element, whatever its kind.
    pub fn consume_raw(&mut self) -> Result<&'a [u8], BtError> {
        self.cur.raw(None)
    }

    /// Returns a consumer over the next element, which must be a list, and moves past it.
    pub fn consume_list_consumer(&mut self) -> Result<Self, BtError> {
        self.cur.list()
    }

    /// Returns a consumer over the next element, which must be a dict, and moves past it.
    pub fn consume_dict_consumer(&mut self) -> Result<BtDictConsumer<'a>, BtError> {
        self.cur.dict()
    }

    /// Decodes the next element into an owned [`BtValue`] (this allocates).
    pub fn consume_value(&mut self) -> Result<BtValue, BtError> {
        self.cur.value()
    }

    /// Moves past the next element, whatever its kind.
    pub fn skip_value(&mut self) -> Result<(), BtError> {
        self.cur.raw(None).map(|_| ())
    }

    /// Ends reading: [`BtError::ExtraElements`] if elements remain (for lists read as tuples,
    /// where extra elements are an error). To ignore the rest, drop the consumer instead.
    pub fn finish(self) -> Result<(), BtError> {
        if self.is_finished() {
            Ok(())
        } else {
            Err(BtError::ExtraElements {
                offset: self.cur.pos,
            })
        }
    }
}

/// Walks the entries of an encoded dict in key order, without allocating.
///
/// Keys can only be visited in ascending order: [`BtDictConsumer::skip_until`] and the
/// `require_*`/`maybe_*` lookups move forward past smaller keys, which cannot be revisited (clone
/// the consumer first to keep a position).
///
/// ```
/// use lokimq_core::bt::BtDictConsumer;
///
/// let mut dict = BtDictConsumer::new(b"d1:ai1e1:bl1:xe1:c3:abce")?;
/// assert_eq!(dict.require_integer::<u32>(b"a")?, 1);
/// assert_eq!(dict.maybe_string(b"b2")?, None); // no key "b2": stops at "c"
/// assert_eq!(dict.require_string(b"c")?, b"abc");
/// assert!(dict.is_finished());
/// # Ok::<(), lokimq_core::bt::BtError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BtDictConsumer<'a> {
    /// At the current key's value, or at the closing `e` when `key` is `None`.
    cur: Cursor<'a>,
    key: Option<&'a [u8]>,
    /// Where the current entry (its key, or the closing `e`) starts.
    entry: usize,
}

impl<'a> BtDictConsumer<'a> {
    /// Starts reading `data`, which must be exactly one canonical dict (validated in full here).
    pub fn new(data: &'a [u8]) -> Result<Self, BtError> {
        scan::validate_kind(data, BtKind::Dict)?;
        Self::at(Cursor {
            src: data,
            pos: 1,
            depth: 1,
        })
    }

    /// A consumer whose cursor is at the first key (or closing `e`) of a validated dict.
    fn at(cur: Cursor<'a>) -> Result<Self, BtError> {
        let mut dict = Self {
            entry: cur.pos,
            cur,
            key: None,
        };
        dict.load_key()?;
        Ok(dict)
    }

    /// Reads the key at the cursor (if any) and moves the cursor to its value.
    fn load_key(&mut self) -> Result<(), BtError> {
        self.entry = self.cur.pos;
        if self.cur.is_finished() {
            self.key = None;
        } else {
            let (key, value) = scan::string(self.cur.src, self.cur.pos)?;
            self.key = Some(key);
            self.cur.pos = value;
        }
        Ok(())
    }

    /// Reads the current value with `read` and moves to the next key; returns the key too.
    fn take<T>(
        &mut self,
        read: impl FnOnce(&mut Cursor<'a>) -> Result<T, BtError>,
    ) -> Result<(&'a [u8], T), BtError> {
        let key = self.key.ok_or(BtError::Exhausted {
            offset: self.cur.pos,
        })?;
        let value = read(&mut self.cur)?;
        self.load_key()?;
        Ok((key, value))
    }

    /// The current key, or `None` at the end of the dict.
    #[must_use]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// True when every entry has been consumed.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.key.is_none()
    }

    /// The kind of the current value, or `None` at the end of the dict.
    #[must_use]
    pub fn next_kind(&self) -> Option<BtKind> {
        self.key.and_then(|_| self.cur.kind())
    }

    /// True if the current value is a byte string.
    #[must_use]
    pub fn is_string(&self) -> bool {
        self.next_kind() == Some(BtKind::Bytes)
    }

    /// True if the current value is an integer.
    #[must_use]
    pub fn is_integer(&self) -> bool {
        self.next_kind() == Some(BtKind::Integer)
    }

    /// True if the current value is a negative integer.
    #[must_use]
    pub fn is_negative_integer(&self) -> bool {
        self.key.is_some() && self.cur.is_integer_with(|b| b == b'-')
    }

    /// True if the current value is a non-negative integer.
    #[must_use]
    pub fn is_unsigned_integer(&self) -> bool {
        self.key.is_some() && self.cur.is_integer_with(|b| b.is_ascii_digit())
    }

    /// True if the current value is a list.
    #[must_use]
    pub fn is_list(&self) -> bool {
        self.next_kind() == Some(BtKind::List)
    }

    /// True if the current value is a dict.
    #[must_use]
    pub fn is_dict(&self) -> bool {
        self.next_kind() == Some(BtKind::Dict)
    }

    /// Skips entries whose key is smaller than `key`; true if the dict has `key`, which is then
    /// the current entry. Otherwise the current entry is the first with a greater key (or the
    /// end).
    pub fn skip_until(&mut self, key: &[u8]) -> Result<bool, BtError> {
        while let Some(current) = self.key {
            if current >= key {
                return Ok(current == key);
            }
            self.take(|c| c.raw(None))?;
        }
        Ok(false)
    }

    /// Moves to `key` like [`BtDictConsumer::skip_until`], or fails with
    /// [`BtError::MissingKey`] if the dict does not have it.
    pub fn require(&mut self, key: &[u8]) -> Result<(), BtError> {
        if self.skip_until(key)? {
            Ok(())
        } else {
            Err(BtError::MissingKey { key: key.to_vec() })
        }
    }

    /// Reads the current entry as (key, byte string).
    pub fn next_string(&mut self) -> Result<(&'a [u8], &'a [u8]), BtError> {
        self.take(Cursor::string)
    }

    /// Reads the current entry as (key, integer of type `I`).
    pub fn next_integer<I: BtInteger>(&mut self) -> Result<(&'a [u8], I), BtError> {
        self.take(Cursor::integer)
    }

    /// Reads the current entry as (key, consumer over its list value).
    pub fn next_list_consumer(&mut self) -> Result<(&'a [u8], BtListConsumer<'a>), BtError> {
        self.take(Cursor::list)
    }

    /// Reads the current entry as (key, consumer over its dict value).
    pub fn next_dict_consumer(&mut self) -> Result<(&'a [u8], Self), BtError> {
        self.take(Cursor::dict)
    }

    /// Reads the current entry as (key, complete encoding of its list value).
    pub fn next_list_data(&mut self) -> Result<(&'a [u8], &'a [u8]), BtError> {
        self.take(|c| c.raw(Some(BtKind::List)))
    }

    /// Reads the current entry as (key, complete encoding of its dict value).
    pub fn next_dict_data(&mut self) -> Result<(&'a [u8], &'a [u8]), BtError> {
        self.take(|c| c.raw(Some(BtKind::Dict)))
    }

    /// Reads the current entry as (key, complete encoding of its value, whatever its kind).
    pub fn next_raw(&mut self) -> Result<(&'a [u8], &'a [u8]), BtError> {
        self.take(|c| c.raw(None))
    }

    /// Reads the current entry as (key, owned value) (this allocates).
    pub fn next_value(&mut self) -> Result<(&'a [u8], BtValue), BtError> {
        self.take(Cursor::value)
    }

    /// Reads the current value as a byte string, discarding the key.
    pub fn consume_string(&mut self) -> Result<&'a [u8], BtError> {
        self.next_string().map(|(_, v)| v)
    }

    /// Reads the current value as an integer of type `I`, discarding the key.
    pub fn consume_integer<I: BtInteger>(&mut self) -> Result<I, BtError> {
        self.next_integer().map(|(_, v)| v)
    }

    /// Returns a consumer over the current value, which must be a list.
    pub fn consume_list_consumer(&mut self) -> Result<BtListConsumer<'a>, BtError> {
        self.next_list_consumer().map(|(_, v)| v)
    }

    /// Returns a consumer over the current value, which must be a dict.
    pub fn consume_dict_consumer(&mut self) -> Result<Self, BtError> {
        self.next_dict_consumer().map(|(_, v)| v)
    }

    /// Returns the complete encoding of the current value, which must be a list.
    pub fn consume_list_data(&mut self) -> Result<&'a [u8], BtError> {
        self.next_list_data().map(|(_, v)| v)
    }

    /// Returns the complete encoding of the current value, which must be a dict.
    pub fn consume_dict_data(&mut self) -> Result<&'a [u8], BtError> {
        self.next_dict_data().map(|(_, v)| v)
    }

    /// Decodes the current value into an owned [`BtValue`] (this allocates).
    pub fn consume_value(&mut self) -> Result<BtValue, BtError> {
        self.next_value().map(|(_, v)| v)
    }

    /// Moves past the current entry.
    pub fn skip_value(&mut self) -> Result<(), BtError> {
        self.next_raw().map(|_| ())
    }

    /// The byte string under `key`; [`BtError::MissingKey`] if absent.
    pub fn require_string(&mut self, key: &[u8]) -> Result<&'a [u8], BtError> {
        self.require(key)?;
        self.consume_string()
    }

    /// The integer under `key`; [`BtError::MissingKey`] if absent.
    pub fn require_integer<I: BtInteger>(&mut self, key: &[u8]) -> Result<I, BtError> {
        self.require(key)?;
        self.consume_integer()
    }

    /// A consumer over the list under `key`; [`BtError::MissingKey`] if absent.
    pub fn require_list(&mut self, key: &[u8]) -> Result<BtListConsumer<'a>, BtError> {
        self.require(key)?;
        self.consume_list_consumer()
    }

    /// A consumer over the dict under `key`; [`BtError::MissingKey`] if absent.
    pub fn require_dict(&mut self, key: &[u8]) -> Result<Self, BtError> {
        self.require(key)?;
        self.consume_dict_consumer()
    }

    /// The byte string under `key`, if present.
    pub fn maybe_string(&mut self, key: &[u8]) -> Result<Option<&'a [u8]>, BtError> {
        if self.skip_until(key)? {
            self.consume_string().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The integer under `key`, if present.
    pub fn maybe_integer<I: BtInteger>(&mut self, key: &[u8]) -> Result<Option<I>, BtError> {
        if self.skip_until(key)? {
            self.consume_integer().map(Some)
        } else {
            Ok(None)
        }
    }

    /// A consumer over the list under `key`, if present.
    pub fn maybe_list(&mut self, key: &[u8]) -> Result<Option<BtListConsumer<'a>>, BtError> {
        if self.skip_until(key)? {
            self.consume_list_consumer().map(Some)
        } else {
            Ok(None)
        }
    }

    /// A consumer over the dict under `key`, if present.
    pub fn maybe_dict(&mut self, key: &[u8]) -> Result<Option<Self>, BtError> {
        if self.skip_until(key)? {
            self.consume_dict_consumer().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Ends reading: [`BtError::ExtraElements`] if entries remain (for strict schemas). To ignore
    /// unknown trailing keys, drop the consumer instead.
    pub fn finish(self) -> Result<(), BtError> {
        match self.key {
            None => Ok(()),
            Some(_) => Err(BtError::ExtraElements { offset: self.entry }),
        }
    }
}
