//! The session's outbound byte queue.
//!
//! Small writes (headers, commands, small bodies) are coalesced in a staging `BytesMut` and handed
//! out with an O(1) `split().freeze()`. Large bodies are not copied at all: the staging buffer is
//! cut before them and the caller's `Bytes` is queued as its own chunk, so a driver writing
//! vectored sends them straight from the application's buffer.

use alloc::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::zmtp::FrameHeader;

/// Bodies at least this long are queued by reference rather than copied.
pub(crate) const ZERO_COPY_MIN: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    chunks: VecDeque<Bytes>,
    staging: BytesMut,
}

impl Outbox {
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        self.staging.extend_from_slice(bytes);
    }

    /// Queues one frame with the given flags and body.
    pub(crate) fn write_frame(&mut self, more: bool, command: bool, body: &Bytes) {
        FrameHeader {
            more,
            command,
            size: body.len() as u64,
        }
        .write(&mut self.staging);
        if body.len() >= ZERO_COPY_MIN {
            self.cut();
            self.chunks.push_back(body.clone());
        } else {
            self.staging.extend_from_slice(body);
        }
    }

    fn cut(&mut self) {
        if !self.staging.is_empty() {
            self.chunks.push_back(self.staging.split().freeze());
        }
    }

    /// The next chunk to transmit, in order.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        if let Some(c) = self.chunks.pop_front() {
            return Some(c);
        }
        if self.staging.is_empty() {
            None
        } else {
            Some(self.staging.split().freeze())
        }
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.staging.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn keeps_order_and_avoids_copying_large_bodies() {
        let mut o = Outbox::default();
        o.write_bytes(b"greet");
        let big = Bytes::from(vec![7u8; ZERO_COPY_MIN]);
        o.write_frame(true, false, &big);
        o.write_frame(false, false, &Bytes::from_static(b"x"));
        let mut chunks = Vec::new();
        while let Some(c) = o.pop() {
            chunks.push(c);
        }
        assert!(o.is_empty());
        assert_eq!(chunks.len(), 3);
        assert_eq!(&chunks[0][..5], b"greet");
        assert_eq!(&chunks[0][5..], &[0x03, 0, 0, 0, 0, 0, 0, 0x04, 0]);
        assert_eq!(
            chunks[1].as_ptr(),
            big.as_ptr(),
            "the body itself, not a copy"
        );
        assert_eq!(&chunks[2][..], b"\x00\x01x");
    }
}
