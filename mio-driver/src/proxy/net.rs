//! The sockets the proxy owns: listeners and streams (TCP and unix), their write queues and the
//! mio registration bookkeeping.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use lokimq_core::ids::ListenerId;

use crate::kit::net::DialTarget;
use crate::kit::{Stream, Transport};

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

    /// Starts a non-blocking dial.
    pub(super) fn connect(target: &DialTarget) -> io::Result<Self> {
        match target {
            DialTarget::Tcp(addr) => TcpStream::connect(*addr).map(Self::Tcp),
            DialTarget::Unix(path) => UnixStream::connect(path).map(Self::Unix),
        }
    }

    pub(super) fn set_nodelay(&self) {
        if let Self::Tcp(s) = self {
            // Latency matters more than segment count for small RPC messages; failure is harmless.
            let _ = s.set_nodelay(true);
        }
    }
}

impl Read for StreamIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        on_either!(self, s => s.read(buf))
    }
}

impl Write for StreamIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        on_either!(self, s => s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        on_either!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        on_either!(self, s => s.flush())
    }
}

impl Transport for StreamIo {
    fn shutdown_write(&mut self) -> io::Result<()> {
        on_either!(self, s => s.shutdown(Shutdown::Write))
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

/// One stream: the kit's [`Stream`] (queue, backlog, close procedure) plus mio's bookkeeping.
#[derive(Debug)]
pub(super) struct MioStream {
    pub(super) stream: Stream<StreamIo>,
    /// A non-blocking connect has not completed yet.
    pub(super) connecting: bool,
    /// The interest currently registered.
    pub(super) interest: Interest,
    /// The proxy turn in which this stream was last read: a stream is read at most once
    /// (one budget) per turn, so others get their go before it is read again.
    pub(super) read_turn: u64,
}

impl MioStream {
    pub(super) fn new(stream: Stream<StreamIo>, connecting: bool) -> Self {
        Self {
            stream,
            connecting,
            interest: if connecting {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            },
            read_turn: 0,
        }
    }

    /// The interest this stream needs now: READABLE always, WRITABLE only while connecting or
    /// while bytes are queued (the rustls tlsserver-mio pattern).
    pub(super) fn wanted_interest(&self) -> Interest {
        if self.connecting || self.stream.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}

/// A slab slot. `Dead` keeps a freed slot's key out of reuse until the current event batch is
/// over, so a late event for the old socket can never reach a new one.
#[derive(Debug)]
pub(super) enum Entry {
    Listener(ListenerSock),
    Stream(MioStream),
    Dead,
}
