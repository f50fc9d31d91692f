//! One connection's byte stream as every driver handles it: the write queue, the unsent
//! backlog the node is told about, and the close procedure of [`Output::Close`].
//!
//! The node hands out bytes in [`Output::Transmit`]s; a driver queues them per connection and
//! writes them when the socket takes them, reporting [`Input::Flushed`] after every write that
//! made progress so the node can apply libzmq's send high-water mark. When the node says
//! [`Output::Close`], the driver stops passing the connection's input on, writes what is left
//! for at most the linger, then half-closes, discards what the peer already sent and closes.
//! [`Stream`] is that logic for any transport that can read, write and shut its write half
//! ([`Transport`]): the mio driver wraps mio's sockets in it, a `std::net` loop its own.
//!
//! [`Output::Close`]: lokimq_core::node::Output::Close
//! [`Output::Transmit`]: lokimq_core::node::Output::Transmit
//! [`Input::Flushed`]: lokimq_core::node::Input::Flushed

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::time::Duration;

use bytes::{Buf, Bytes};
use lokimq_core::ids::ConnId;
use lokimq_core::node::Input;
use lokimq_core::time::Instant;

/// Largest number of buffers handed to one vectored write.
const MAX_IOV: usize = 64;
/// At most this much of a closing connection's input is read and dropped before it is closed
/// anyway (a peer that keeps sending gets its reset).
const DISCARD_LIMIT: usize = 256 * 1024;

/// A byte stream the kit can drive: TCP or unix, mio's or the standard library's, in
/// non-blocking mode (reads and writes return `WouldBlock` instead of waiting).
pub trait Transport: Read + Write {
    /// Shuts the write half: the peer reads end of stream once everything sent is in.
    ///
    /// # Errors
    ///
    /// The socket's error; callers treat it as best effort.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for std::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Transport for std::os::unix::net::UnixStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Where a stream is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// The node closed it: write what is left until the deadline.
    Closing {
        deadline: Instant,
    },
    /// Closed: the driver drops it.
    Closed,
}

/// What a [`Stream::flush`] did.
#[derive(Debug)]
#[must_use]
pub struct Flushed {
    /// Feed this to the node ([`Input::Flushed`]), if present.
    pub report: Option<Input>,
    /// The stream is done (closed, or failed): drop the socket. A failure of an open stream is
    /// reported to the node as [`Input::Disconnected`] by the caller.
    pub done: bool,
    /// The write error that ended an open stream, if any.
    pub error: Option<io::Error>,
}

/// One connection's transport and its write queue: the node's `Transmit`s are queued here,
/// written when the transport takes them (reporting the backlog as [`Flushed`]), and closed
/// the way [`Output::Close`](lokimq_core::node::Output::Close) says.
#[derive(Debug)]
pub struct Stream<T> {
    conn: ConnId,
    io: T,
    /// Bytes waiting to be written, oldest first (the front may be partly written).
    out: VecDeque<Bytes>,
    /// Total bytes in `out` (the node's view of the connection's unsent backlog).
    queued: usize,
    phase: Phase,
}

impl<T: Transport> Stream<T> {
    /// A stream for connection `conn`.
    pub fn new(conn: ConnId, io: T) -> Self {
        Self {
            conn,
            io,
            out: VecDeque::new(),
            queued: 0,
            phase: Phase::Open,
        }
    }

    /// The node's id for the connection.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The transport.
    pub fn io(&self) -> &T {
        &self.io
    }

    /// The transport, mutably (to register it with a poller, say).
    pub fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Separately queued chunks (about one per message).
    pub fn chunks(&self) -> usize {
        self.out.len()
    }

    /// True if something waits to be written.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty() && self.phase != Phase::Closed
    }

    /// True once the node closed the connection: its input is no longer the node's business.
    pub fn is_closing(&self) -> bool {
        self.phase != Phase::Open
    }

    /// When a closing stream gives up on its unsent bytes.
    pub fn close_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closing { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Queues bytes from an [`Output::Transmit`](lokimq_core::node::Output::Transmit).
    pub fn push(&mut self, data: Bytes) {
        if self.phase == Phase::Open {
            self.queued += data.len();
            self.out.push_back(data);
        }
    }

    /// Reads into `buf` (`Ok(0)` is end of stream).
    ///
    /// # Errors
    ///
    /// The transport's, including `WouldBlock`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf)
    }

    /// Starts [`Output::Close`](lokimq_core::node::Output::Close)'s procedure: write what is
    /// queued for at most `linger` from `now`, then close. Returns true if the stream is
    /// already done (nothing to write, or no linger): drop it.
    pub fn close(&mut self, now: Instant, linger: Duration) -> bool {
        if self.phase != Phase::Open {
            return self.phase == Phase::Closed;
        }
        if linger.is_zero() {
            self.finish(false);
            return true;
        }
        self.phase = Phase::Closing {
            deadline: now + linger,
        };
        if self.out.is_empty() {
            self.finish(true);
            return true;
        }
        false
    }

    /// A closing stream whose deadline has passed closes now, dropping what is unsent.
    /// Returns true if it is done.
    pub fn expire(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Closing { deadline } if deadline <= now => {
                self.finish(false);
                true
            }
            Phase::Closed => true,
            _ => false,
        }
    }

    /// Writes as much as the transport takes. An open stream that made progress reports its
    /// new backlog; a closing one that wrote its last byte finishes closing.
    pub fn flush(&mut self) -> Flushed {
        let before = self.queued;
        let mut error = None;
        while !self.out.is_empty() && self.phase != Phase::Closed {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.out.iter()) {
                *slot = IoSlice::new(chunk);
                n += 1;
            }
            match self.io.write_vectored(&slices[..n]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(written) => self.consume(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        match (self.phase, error) {
            (Phase::Open, Some(e)) => {
                self.phase = Phase::Closed;
                Flushed {
                    report: None,
                    done: true,
                    error: Some(e),
                }
            }
            (Phase::Open, None) => Flushed {
                report: (self.queued < before).then_some(Input::Flushed {
                    conn: self.conn,
                    unsent: self.queued,
                }),
                done: false,
                error: None,
            },
            (Phase::Closing { .. }, error) => {
                let done = error.is_some() || self.out.is_empty();
                if done {
                    self.finish(error.is_none());
                }
                Flushed {
                    report: None,
                    done,
                    error: None,
                }
            }
            (Phase::Closed, _) => Flushed {
                report: None,
                done: true,
                error: None,
            },
        }
    }

    /// Closes: after a complete flush, half-close and discard the peer's pending input first,
    /// so the kernel sends a FIN after our last byte instead of a reset.
    fn finish(&mut self, flushed: bool) {
        if flushed {
            // Best effort: the socket may already be half-closed or reset.
            let _ = self.io.shutdown_write();
            let mut scratch = [0u8; 4096];
            let mut budget = DISCARD_LIMIT;
            while budget > 0 {
                match self.io.read(&mut scratch) {
                    Ok(0) => break,
                    Ok(n) => budget = budget.saturating_sub(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        self.out.clear();
        self.queued = 0;
        self.phase = Phase::Closed;
    }

    /// Drops `n` written bytes from the front of the queue.
    fn consume(&mut self, mut n: usize) {
        self.queued = self.queued.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.out.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn pair() -> (Stream<UnixStream>, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (Stream::new(ConnId::new(3, 1), a), b)
    }

    fn read_all(b: &mut UnixStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match b.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn flush_writes_across_chunks_and_reports_the_backlog() {
        let (mut s, mut b) = pair();
        s.push(Bytes::from_static(b"abc"));
        s.push(Bytes::from_static(b"defg"));
        assert_eq!((s.queued(), s.chunks()), (7, 2));
        let f = s.flush();
        assert!(!f.done);
        assert!(matches!(f.report, Some(Input::Flushed { unsent: 0, .. })));
        assert_eq!(read_all(&mut b), b"abcdefg");
        // Nothing written: nothing to report.
        assert!(s.flush().report.is_none());
    }

    #[test]
    fn a_full_socket_keeps_the_rest_queued() {
        let (mut s, mut b) = pair();
        let big = Bytes::from(vec![7u8; 4 << 20]);
        s.push(big);
        let f = s.flush();
        let Some(Input::Flushed { unsent, .. }) = f.report else {
            panic!("expected a report");
        };
        assert!(unsent > 0 && unsent < 4 << 20, "partly written: {unsent}");
        assert!(s.wants_write());
        let first = read_all(&mut b).len();
        let _ = s.flush();
        assert_eq!(first + read_all(&mut b).len() + s.queued(), 4 << 20);
    }

    #[test]
    fn close_writes_the_rest_then_half_closes_without_waiting_for_the_peer() {
        let (mut s, mut b) = pair();
        s.push(Bytes::from_static(b"last words"));
        assert!(!s.close(Instant::from_micros(0), Duration::from_secs(5)));
        assert!(s.is_closing());
        s.push(Bytes::from_static(b"ignored after close"));
        let f = s.flush();
        assert!(f.done && f.report.is_none());
        // The peer reads our bytes, then end of stream.
        assert_eq!(read_all(&mut b), b"last words");
        let mut buf = [0u8; 8];
        assert_eq!(b.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn close_with_nothing_queued_is_done_at_once_and_discards_input() {
        let (mut s, mut b) = pair();
        b.write_all(b"unread request").unwrap();
        assert!(s.close(Instant::from_micros(0), Duration::from_secs(5)));
        let mut buf = [0u8; 8];
        assert_eq!(b.read(&mut buf).unwrap(), 0, "a FIN, not a reset");
    }

    #[test]
    fn linger_expiry_drops_what_is_unsent() {
        let (mut s, _b) = pair();
        s.push(Bytes::from(vec![1u8; 8 << 20]));
        let t0 = Instant::from_micros(0);
        assert!(!s.close(t0, Duration::from_millis(10)));
        let _ = s.flush();
        assert!(!s.expire(t0 + Duration::from_millis(5)));
        assert!(s.expire(t0 + Duration::from_millis(10)));
        assert_eq!(s.queued(), 0);
        assert!(!s.wants_write());
    }

    #[test]
    fn zero_linger_closes_at_once() {
        let (mut s, _b) = pair();
        s.push(Bytes::from_static(b"dropped"));
        assert!(s.close(Instant::from_micros(0), Duration::ZERO));
        assert_eq!(s.queued(), 0);
    }
}
