//! The 24-byte nonces of CurveZMQ: a 16-byte prefix and an 8-byte big-endian counter (short
//! nonces), or an 8-byte prefix and 16 random bytes (long nonces); and our send counter.

use super::error::CurveError;

/// A full 24-byte XSalsa20 nonce.
pub(crate) type Nonce = [u8; crate::crypto::NONCE_LEN];

pub(crate) const HELLO: &[u8; 16] = b"CurveZMQHELLO---";
pub(crate) const WELCOME: &[u8; 8] = b"WELCOME-";
pub(crate) const COOKIE: &[u8; 8] = b"COOKIE--";
pub(crate) const INITIATE: &[u8; 16] = b"CurveZMQINITIATE";
pub(crate) const VOUCH: &[u8; 8] = b"VOUCH---";
pub(crate) const READY: &[u8; 16] = b"CurveZMQREADY---";
pub(crate) const MESSAGE_FROM_CLIENT: &[u8; 16] = b"CurveZMQMESSAGEC";
pub(crate) const MESSAGE_FROM_SERVER: &[u8; 16] = b"CurveZMQMESSAGES";

/// Length of the random part of a long nonce.
pub(crate) const LONG_SUFFIX_LEN: usize = 16;

/// A short nonce from a prefix and the 8 counter bytes as they appear on the wire.
pub(crate) fn short(prefix: &[u8; 16], counter: [u8; 8]) -> Nonce {
    let mut n = [0u8; crate::crypto::NONCE_LEN];
    n[..16].copy_from_slice(prefix);
    n[16..].copy_from_slice(&counter);
    n
}

/// A long nonce from a prefix and 16 random bytes.
pub(crate) fn long(prefix: &[u8; 8], suffix: &[u8; LONG_SUFFIX_LEN]) -> Nonce {
    let mut n = [0u8; crate::crypto::NONCE_LEN];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(suffix);
    n
}

/// Reads the 8-byte big-endian counter at `at` in `body`; the caller has checked the length.
pub(crate) fn counter_at(body: &[u8], at: usize) -> [u8; 8] {
    super::crypto::array_at(body, at)
}

/// One side's outgoing short-nonce counter: starts at 1 and hands out every value up to and
/// including u64::MAX exactly once. libzmq lets its counter wrap to 0, which its peer would then
/// refuse; we stop with [`CurveError::NonceExhausted`] instead, so a nonce is never reused.
#[derive(Debug, Clone)]
pub(crate) struct SendCounter {
    next: Option<u64>,
}

impl SendCounter {
    /// A fresh counter whose first value is 1.
    pub(crate) const fn new() -> Self {
        Self { next: Some(1) }
    }

    /// A counter whose next value is `next` (tests of exhaustion).
    #[cfg(test)]
    pub(crate) const fn starting_at(next: u64) -> Self {
        Self { next: Some(next) }
    }

    /// The value the next [`take`](Self::take) returns, if any is left.
    pub(crate) const fn peek(&self) -> Option<u64> {
        self.next
    }

    /// Hands out the next value.
    pub(crate) fn take(&mut self) -> Result<u64, CurveError> {
        let n = self.next.ok_or(CurveError::NonceExhausted)?;
        self.next = n.checked_add(1);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_the_wire_strings() {
        assert_eq!(short(HELLO, 1u64.to_be_bytes()).as_slice(), {
            let mut v = std::vec::Vec::from(&b"CurveZMQHELLO---"[..]);
            v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
            v
        });
        let n = long(VOUCH, &[0xa5; 16]);
        assert_eq!(&n[..8], b"VOUCH---");
        assert_eq!(&n[8..], &[0xa5; 16]);
    }

    #[test]
    fn counter_starts_at_one_and_stops_after_max() {
        let mut c = SendCounter::new();
        assert_eq!(c.take(), Ok(1));
        assert_eq!(c.take(), Ok(2));
        let mut c = SendCounter::starting_at(u64::MAX - 1);
        assert_eq!(c.take(), Ok(u64::MAX - 1));
        assert_eq!(c.peek(), Some(u64::MAX));
        assert_eq!(c.take(), Ok(u64::MAX));
        assert_eq!(c.peek(), None);
        assert_eq!(c.take(), Err(CurveError::NonceExhausted));
        assert_eq!(c.take(), Err(CurveError::NonceExhausted));
    }
}
