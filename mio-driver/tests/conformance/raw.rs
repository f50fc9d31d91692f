//! Hand-written ZMTP over a plain `TcpStream`, for what libzmq will not do on request: old
//! protocol versions, silence, and heartbeat commands we can see.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use lokimq::Stopwatch;

const MORE: u8 = 0x01;
const LONG: u8 = 0x02;
const COMMAND: u8 = 0x04;

/// Connects to a loopback port with read and write timeouts of `timeout`.
pub(crate) fn connect(port: u16, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s
}

/// A ZMTP 3.1 greeting with `mechanism` (`b"NULL"` or `b"CURVE"`).
pub(crate) fn greeting(mechanism: &[u8]) -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[8] = 1;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..12 + mechanism.len()].copy_from_slice(mechanism);
    g
}

/// Encodes one frame.
pub(crate) fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 9);
    if body.len() > 255 {
        out.push(flags | LONG);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        out.push(flags);
        out.push(body.len() as u8);
    }
    out.extend_from_slice(body);
    out
}

/// A command frame: name length, name, data.
pub(crate) fn command(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    frame(COMMAND, &body)
}

/// The frames of one multipart message.
pub(crate) fn message(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let flags = if i + 1 < parts.len() { MORE } else { 0 };
        out.extend(frame(flags, p));
    }
    out
}

/// One received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) more: bool,
    pub(crate) command: bool,
    pub(crate) body: Vec<u8>,
}

/// Reads one frame (bounded by the stream's read timeout).
pub(crate) fn read_frame(s: &mut TcpStream) -> Frame {
    let mut head = [0u8; 1];
    s.read_exact(&mut head).expect("read a frame's flags");
    let flags = head[0];
    let size = if flags & LONG != 0 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).expect("read a long size");
        usize::try_from(u64::from_be_bytes(b)).expect("frame size fits")
    } else {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("read a short size");
        usize::from(b[0])
    };
    assert!(size <= 2 << 20, "implausible frame size {size}");
    let mut body = vec![0u8; size];
    s.read_exact(&mut body).expect("read a frame body");
    Frame {
        more: flags & MORE != 0,
        command: flags & COMMAND != 0,
        body,
    }
}

/// Reads one multipart message, skipping command frames.
pub(crate) fn read_message(s: &mut TcpStream) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    loop {
        let f = read_frame(s);
        if f.command {
            continue;
        }
        parts.push(f.body);
        if !f.more {
            return parts;
        }
    }
}

/// The NULL handshake as a DEALER with routing id `identity`: greeting and READY out, the
/// server's greeting and READY in.
pub(crate) fn null_handshake(s: &mut TcpStream, identity: &[u8]) {
    s.write_all(&greeting(b"NULL")).unwrap();
    let mut props = Vec::new();
    for (name, value) in [
        (&b"Socket-Type"[..], &b"DEALER"[..]),
        (b"Identity", identity),
    ] {
        props.push(name.len() as u8);
        props.extend_from_slice(name);
        props.extend_from_slice(&(value.len() as u32).to_be_bytes());
        props.extend_from_slice(value);
    }
    s.write_all(&command("READY", &props)).unwrap();
    let mut theirs = [0u8; 64];
    s.read_exact(&mut theirs).expect("the server's greeting");
    assert_eq!((theirs[0], theirs[10]), (0xff, 3), "a ZMTP 3 greeting");
    assert_eq!(&theirs[12..16], b"NULL");
    let ready = read_frame(s);
    assert!(ready.command, "{ready:?}");
    assert!(ready.body.starts_with(b"\x05READY"), "{ready:?}");
}

/// How a connection ended, read until EOF or `limit`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer closed (EOF or reset) after sending this many bytes.
    Closed(usize),
    /// Still open when `limit` passed.
    StillOpen,
}

/// Reads and discards until the server closes the connection, at most `limit`.
pub(crate) fn read_until_closed(s: &mut TcpStream, limit: Duration) -> End {
    let start = Stopwatch::start();
    let mut total = 0;
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return End::StillOpen;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return End::Closed(total),
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return End::StillOpen;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Reset or aborted: closed all the same.
            Err(_) => return End::Closed(total),
        }
    }
}
