//! The sockets: `std::net` listeners and streams in non-blocking mode, each stream with its
//! write queue and its closing state.
//!
//! Nothing here knows the node; [`Embedded`](crate::Embedded) turns what happens here into
//! inputs.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Buf, Bytes};
use lokimq_core::address::Address;
use lokimq_core::node::DisconnectCause;
use lokimq_core::time::Instant;

/// What one non-blocking read gave.
pub(crate) enum ReadResult {
    /// This many bytes are at the front of the buffer.
    Data(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
    /// The stream failed.
    Failed(io::Error),
}

/// One connected stream.
pub(crate) struct Stream {
    sock: TcpStream,
    /// Bytes not yet written, oldest first; the front may be partly written already.
    out: VecDeque<Bytes>,
    /// Set when the node closed the connection: flush until this instant, then drop.
    linger_until: Option<Instant>,
    /// Our write half is shut (closing, and everything was flushed).
    write_shut: bool,
}

impl Stream {
    /// Wraps a connected socket, switching it to non-blocking mode.
    pub(crate) fn new(sock: TcpStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        // Small RPC messages care more about latency than about segment count; a failure here
        // only costs latency.
        let _ = sock.set_nodelay(true);
        Ok(Self {
            sock,
            out: VecDeque::new(),
            linger_until: None,
            write_shut: false,
        })
    }

    /// Queues bytes; [`flush`](Self::flush) writes them.
    pub(crate) fn queue(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.out.push_back(data);
        }
    }

    /// True if bytes are waiting to be written.
    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty() && !self.write_shut
    }

    /// The node is done with this connection: keep flushing until `deadline`.
    pub(crate) fn close(&mut self, deadline: Instant) {
        self.linger_until = Some(deadline);
    }

    /// The linger deadline, if the node closed this connection.
    pub(crate) fn linger_until(&self) -> Option<Instant> {
        self.linger_until
    }

    /// Reads once (retrying only on `Interrupted`).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> ReadResult {
        loop {
            return match self.sock.read(buf) {
                Ok(0) => ReadResult::Eof,
                Ok(n) => ReadResult::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadResult::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => ReadResult::Failed(e),
            };
        }
    }

    /// Writes queued bytes until the queue is empty or the socket would block. Returns how many
    /// bytes went out. Once a closing stream is flushed its write half is shut, so the peer sees
    /// EOF after our last byte and answers with its own.
    pub(crate) fn flush(&mut self) -> io::Result<usize> {
        let mut written = 0;
        while !self.write_shut {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            match self.sock.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    // A partial write leaves the rest of the chunk at the front.
                    front.advance(n);
                    if front.is_empty() {
                        self.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.linger_until.is_some() && self.out.is_empty() && !self.write_shut {
            // Best effort: the peer may have reset the stream already.
            let _ = self.sock.shutdown(Shutdown::Write);
            self.write_shut = true;
        }
        Ok(written)
    }
}

/// Binds a non-blocking TCP listener for a `tcp://` address (`*` means every interface).
/// Returns it and the address actually bound (with the real port).
pub(crate) fn bind(addr: &Address) -> io::Result<(TcpListener, Address)> {
    let (Some(host), Some(port)) = (addr.host(), addr.port()) else {
        return Err(unsupported("this example listens on tcp:// addresses only"));
    };
    let sa = if host == "*" {
        SocketAddr::from(([0, 0, 0, 0], port))
    } else if let Some(sa) = addr.socket_addr() {
        sa
    } else {
        resolve(host, port)?
    };
    let listener = TcpListener::bind(sa)?;
    listener.set_nonblocking(true)?;
    let local = Address::from_socket_addr(listener.local_addr()?);
    Ok((listener, local))
}

/// Accepts one connection if one is waiting: the stream and the peer's IP as text.
pub(crate) fn accept(listener: &TcpListener) -> io::Result<Option<(TcpStream, String)>> {
    loop {
        return match listener.accept() {
            Ok((sock, peer)) => Ok(Some((sock, peer.ip().to_string()))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Dials `addr`, blocking for at most `timeout`.
///
/// `std::net` has no non-blocking connect: [`TcpStream::connect_timeout`] is the closest it
/// offers, so the whole loop waits while a dial is in flight. To a local or reachable peer that
/// is one round trip, and a refused port fails at once; an unreachable host costs up to
/// `timeout`. A host name is resolved here too, blocking on DNS (IP literals need none).
pub(crate) fn dial(addr: &Address, timeout: Duration) -> Result<TcpStream, DisconnectCause> {
    let (Some(host), Some(port)) = (addr.host(), addr.port()) else {
        return Err(DisconnectCause::InvalidAddress(format!(
            "this example dials tcp:// addresses only, not {addr}"
        )));
    };
    let sa = match addr.socket_addr() {
        Some(sa) => sa,
        None => resolve(host, port).map_err(|e| DisconnectCause::InvalidAddress(e.to_string()))?,
    };
    TcpStream::connect_timeout(&sa, timeout).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => DisconnectCause::InvalidAddress(e.to_string()),
        io::ErrorKind::ConnectionRefused => DisconnectCause::Refused,
        _ => DisconnectCause::ConnectFailed(e.to_string()),
    })
}

/// Resolves `host:port`, preferring IPv4 as OxenMQ does.
fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let mut fallback = None;
    for sa in (host, port).to_socket_addrs()? {
        if sa.is_ipv4() {
            return Ok(sa);
        }
        fallback.get_or_insert(sa);
    }
    fallback
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream pair on loopback: (ours, wrapped; theirs, blocking).
    fn pair() -> (Stream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let theirs = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        (Stream::new(ours).unwrap(), theirs)
    }

    #[test]
    fn read_reports_would_block_then_data_then_eof() {
        let (mut s, mut theirs) = pair();
        let mut buf = [0u8; 16];
        assert!(matches!(s.read(&mut buf), ReadResult::WouldBlock));
        theirs.write_all(b"abc").unwrap();
        theirs.shutdown(Shutdown::Write).unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut spins = 0;
        loop {
            match s.read(&mut buf) {
                ReadResult::Data(n) => got.extend_from_slice(&buf[..n]),
                ReadResult::WouldBlock => {
                    spins += 1;
                    assert!(spins < 10_000, "no EOF");
                    std::thread::sleep(Duration::from_millis(1));
                }
                ReadResult::Eof => break,
                ReadResult::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"abc");
    }

    #[test]
    fn closing_flush_sends_everything_then_half_closes() {
        let (mut s, mut theirs) = pair();
        s.queue(Bytes::from_static(b"hello "));
        s.queue(Bytes::new());
        s.queue(Bytes::from_static(b"world"));
        s.close(Instant::MAX);
        let mut spins = 0;
        while s.has_output() {
            s.flush().unwrap();
            spins += 1;
            assert!(spins < 10_000, "never flushed");
        }
        assert!(s.write_shut);
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello world");
    }

    #[test]
    fn dial_refused_and_ipc_are_reported() {
        // A port nobody listens on: bind one, note it, close it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = dial(&Address::tcp("127.0.0.1", port), Duration::from_secs(5));
        assert!(matches!(refused, Err(DisconnectCause::Refused)));
        let ipc = dial(&Address::ipc("/tmp/x.sock"), Duration::from_secs(5));
        assert!(matches!(ipc, Err(DisconnectCause::InvalidAddress(_))));
    }
}
