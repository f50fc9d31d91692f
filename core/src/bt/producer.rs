//! Producers: build a bt list or dict incrementally in a caller's `Vec<u8>` (oxenc's
//! `bt_list_producer`/`bt_dict_producer`, writing to a growable buffer).
//!
//! A producer writes its opening byte when created and its closing `e` when dropped (or
//! [`finish`](BtListProducer::finish)ed), so the buffer holds a complete value once the outermost
//! producer is gone. A nested producer mutably borrows its parent, which the borrow checker then
//! locks until the nested one is dropped: the "nested producers lock the parent" rule of oxenc is
//! a compile-time guarantee here. Dict keys must be strictly increasing; a key that is not is
//! refused with [`BtError::KeyOrder`] and nothing is written.

use alloc::vec::Vec;

use super::encode::write_bytes;
use super::{BtError, ToBt, scan};

/// Appends the elements of a bt list to a buffer.
///
/// ```
/// use lokimq_core::bt::BtListProducer;
///
/// let mut buf = Vec::new();
/// let mut list = BtListProducer::new(&mut buf);
/// list.append(&42u32).append("abc");
/// list.append_dict().append(b"k", &-1i64)?;
/// drop(list);
/// assert_eq!(buf, b"li42e3:abcd1:ki-1eee");
/// # Ok::<(), lokimq_core::bt::BtError>(())
/// ```
#[derive(Debug)]
pub struct BtListProducer<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> BtListProducer<'b> {
    /// Starts a list at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'l');
        Self { buf }
    }

    /// Appends one element.
    pub fn append<T: ToBt + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.write_bt(self.buf);
        self
    }

    /// Appends every element of an iterator.
    pub fn extend<T: ToBt, I: IntoIterator<Item = T>>(&mut self, values: I) -> &mut Self {
        for value in values {
            value.write_bt(self.buf);
        }
        self
    }

    /// Appends an element that is already bt-encoded; it must be exactly one canonical value.
    pub fn append_encoded(&mut self, encoded: &[u8]) -> Result<&mut Self, BtError> {
        scan::validate(encoded)?;
        self.buf.extend_from_slice(encoded);
        Ok(self)
    }

    /// Starts a nested list; this producer is locked until the returned one is dropped.
    pub fn append_list(&mut self) -> BtListProducer<'_> {
        BtListProducer::new(self.buf)
    }

    /// Starts a nested dict; this producer is locked until the returned one is dropped.
    pub fn append_dict(&mut self) -> BtDictProducer<'_> {
        BtDictProducer::new(self.buf)
    }

    /// Closes the list (the same as dropping the producer).
    pub fn finish(self) {}
}

impl Drop for BtListProducer<'_> {
    fn drop(&mut self) {
        self.buf.push(b'e');
    }
}

/// Appends the entries of a bt dict to a buffer, refusing keys that are not strictly increasing.
///
/// ```
/// use lokimq_core::bt::{BtDictProducer, BtError};
///
/// let mut buf = Vec::new();
/// let mut dict = BtDictProducer::new(&mut buf);
/// dict.append(b"a", &1u16)?.append(b"b", "x")?;
/// assert!(matches!(dict.append(b"a", &2u16), Err(BtError::KeyOrder { .. })));
/// dict.append_list(b"c")?.append(&3u16);
/// drop(dict);
/// assert_eq!(buf, b"d1:ai1e1:b1:x1:cli3eee");
/// # Ok::<(), BtError>(())
/// ```
#[derive(Debug)]
pub struct BtDictProducer<'b> {
    buf: &'b mut Vec<u8>,
    /// Where the previous key's bytes are in `buf` (compared in place, so no copy is kept).
    last_key: Option<(usize, usize)>,
}

impl<'b> BtDictProducer<'b> {
    /// Starts a dict at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'd');
        Self {
            buf,
            last_key: None,
        }
    }

    /// Writes `key` if it is greater than the previous key.
    fn key(&mut self, key: &[u8]) -> Result<(), BtError> {
        if let Some((start, end)) = self.last_key
            && key <= &self.buf[start..end]
        {
            return Err(BtError::KeyOrder { key: key.to_vec() });
        }
        write_bytes(self.buf, key);
        let end = self.buf.len();
        self.last_key = Some((end - key.len(), end));
        Ok(())
    }

    /// Appends one entry.
    pub fn append<T: ToBt + ?Sized>(
        &mut self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<&mut Self, BtError> {
        self.key(key.as_ref())?;
        value.write_bt(self.buf);
        Ok(self)
    }

    /// Appends an entry whose value is already bt-encoded; it must be exactly one canonical
    /// value.
    pub fn append_encoded(
        &mut self,
        key: impl AsRef<[u8]>,
        encoded: &[u8],
    ) -> Result<&mut Self, BtError> {
        scan::validate(encoded)?;
        self.key(key.as_ref())?;
        self.buf.extend_from_slice(encoded);
        Ok(self)
    }

    /// Starts a nested list under `key`; this producer is locked until the returned one is
    /// dropped.
    pub fn append_list(&mut self, key: impl AsRef<[u8]>) -> Result<BtListProducer<'_>, BtError> {
        self.key(key.as_ref())?;
        Ok(BtListProducer::new(self.buf))
    }

    /// Starts a nested dict under `key`; this producer is locked until the returned one is
    /// dropped.
    pub fn append_dict(&mut self, key: impl AsRef<[u8]>) -> Result<BtDictProducer<'_>, BtError> {
        self.key(key.as_ref())?;
        Ok(BtDictProducer::new(self.buf))
    }

    /// Closes the dict (the same as dropping the producer).
    pub fn finish(self) {}
}

impl Drop for BtDictProducer<'_> {
    fn drop(&mut self) {
        self.buf.push(b'e');
    }
}
