//! The sockets the proxy owns: listeners and streams (TCP and unix), their write queues and the
//! mio registration bookkeeping.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;

use bytes::{Buf, Bytes};
use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use lokimq_core::ids::{ConnId, ListenerId};

/// Evaluates `$body` with `$s` bound to whichever socket a TCP-or-unix enum holds: mio's TCP and
/// unix types share their method names, so one expression serves both.
macro_rules! on_either {
    ($value:expr, $s:ident => $body:expr) => {
        match $value {
            Self::Tcp($s) => $body,
            Self::Unix($s) => $body,
        }
    };
}

/// mio registration for a TCP-or-unix enum, passed through to the socket it holds.
macro_rules! either_source {
    ($t:ty) => {
        impl Source for $t {
            fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                on_either!(self, s => s.register(r, t, i))
            }
            fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                on_either!(self, s => s.reregister(r, t, i))
            }
            fn deregister(&mut self, r: &Registry) -> io::Result<()> {
                on_either!(self, s => s.deregister(r))
            }
        }
    };
}

/// A connected (or connecting) byte stream.
#[derive(Debug)]
pub(super) enum StreamIo {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl StreamIo {
    pub(super) fn take_error(&self) -> io::Result<Option<io::Error>> {
        on_either!(self, s => s.take_error())
    }

    /// mio's documented completion check for a non-blocking connect: `Ok(true)` once connected,
    /// `Ok(false)` while still in progress.
    pub(super) fn connect_finished(&self) -> io::Result<bool> {
        if let Some(e) = self.take_error()? {
            return Err(e);
        }
        let peer = on_either!(self, s => s.peer_addr().map(|_| ()));
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) fn shutdown_write(&self) {
        // Best effort: the socket may already be half-closed or reset.
        let _ = on_either!(self, s => s.shutdown(Shutdown::Write));
    }

    pub(super) fn set_nodelay(&self) {
        if let Self::Tcp(s) = self {
            // Latency matters more than segment count for small RPC messages; failure is harmless.
            let _ = s.set_nodelay(true);
        }
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        on_either!(self, s => s.read(buf))
    }

    pub(super) fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        on_either!(self, s => s.write_vectored(bufs))
    }
}

/// `EINPROGRESS` on the platforms mio supports with unix sockets (Linux, the BSDs and macOS
/// use 115 or 36); only used to recognise "still connecting" from `peer_addr`.
#[cfg(target_os = "linux")]
const EINPROGRESS: i32 = 115;
#[cfg(not(target_os = "linux"))]
const EINPROGRESS: i32 = 36;

either_source!(StreamIo);

/// A bound listening socket.
#[derive(Debug)]
pub(super) enum ListenerIo {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenerIo {
    /// Accepts one connection: the stream and the peer's address as the core wants it.
    pub(super) fn accept(&self) -> io::Result<(StreamIo, String)> {
        match self {
            Self::Tcp(l) => l
                .accept()
                .map(|(s, addr)| (StreamIo::Tcp(s), addr.ip().to_string())),
            // A unix peer has no IP; OxenMQ reports a missing peer address as "(unknown)".
            Self::Unix(l) => l
                .accept()
                .map(|(s, _)| (StreamIo::Unix(s), String::from("(unknown)"))),
        }
    }
}

either_source!(ListenerIo);

/// A listener and, for unix sockets, the path to unlink when it closes (as libzmq does).
#[derive(Debug)]
pub(super) struct ListenerSock {
    pub(super) id: ListenerId,
    pub(super) io: ListenerIo,
    pub(super) unix_path: Option<PathBuf>,
}

impl Drop for ListenerSock {
    fn drop(&mut self) {
        if let Some(path) = &self.unix_path {
            // Best effort: the file may already be gone.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One stream and its state.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) conn: ConnId,
    pub(super) io: StreamIo,
    /// A non-blocking connect has not completed yet.
    pub(super) connecting: bool,
    /// Bytes waiting to be written, oldest first (the front may be partly written).
    pub(super) out: VecDeque<Bytes>,
    /// Total bytes in `out` (reported to the node as the connection's unsent backlog).
    pub(super) queued: usize,
    /// The node closed the connection: flush, half-close, wait for EOF or the linger deadline.
    pub(super) closing: bool,
    /// Our write half is shut (closing and fully flushed).
    pub(super) write_shut: bool,
    /// The interest currently registered.
    pub(super) interest: Interest,
}

impl Stream {
    pub(super) fn new(conn: ConnId, io: StreamIo, connecting: bool) -> Self {
        Self {
            conn,
            io,
            connecting,
            out: VecDeque::new(),
            queued: 0,
            closing: false,
            write_shut: false,
            interest: if connecting {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            },
        }
    }

    /// The interest this stream needs now: READABLE always, WRITABLE only while connecting or
    /// while bytes are queued (the rustls tlsserver-mio pattern).
    pub(super) fn wanted_interest(&self) -> Interest {
        if self.connecting || (!self.out.is_empty() && !self.write_shut) {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Queues bytes for writing.
    pub(super) fn push(&mut self, data: Bytes) {
        self.queued += data.len();
        self.out.push_back(data);
    }

    /// Drops `n` written bytes from the front of the queue.
    pub(super) fn consume(&mut self, mut n: usize) {
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

/// A slab slot. `Dead` keeps a freed slot's key out of reuse until the current event batch is
/// over, so a late event for the old socket can never reach a new one.
#[derive(Debug)]
pub(super) enum Entry {
    Listener(ListenerSock),
    Stream(Stream),
    Dead,
}

/// Where to dial.
#[derive(Debug, Clone)]
pub(super) enum Dial {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Dial {
    pub(super) fn connect(&self) -> io::Result<StreamIo> {
        match self {
            Self::Tcp(addr) => TcpStream::connect(*addr).map(StreamIo::Tcp),
            Self::Unix(path) => UnixStream::connect(path).map(StreamIo::Unix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_advances_across_chunks() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut s = Stream::new(
            ConnId::new(0, 0),
            StreamIo::Unix(UnixStream::from_std(a)),
            false,
        );
        s.push(Bytes::from_static(b"abc"));
        s.push(Bytes::from_static(b"defg"));
        assert_eq!(s.queued, 7);
        s.consume(4);
        assert_eq!(s.queued, 3);
        assert_eq!(s.out.len(), 1);
        assert_eq!(s.out[0].as_ref(), b"efg");
        assert_eq!(s.out.iter().map(Bytes::len).sum::<usize>(), 3);
        assert_eq!(s.wanted_interest(), Interest::READABLE | Interest::WRITABLE);
        s.consume(3);
        assert!(s.out.is_empty());
        assert_eq!(s.queued, 0);
        assert_eq!(s.wanted_interest(), Interest::READABLE);
    }
}
