//! # A LokiMQ node on plain `std::net` sockets: one thread, jobs inline
//!
//! `lokimq::kit` is everything an embedder of `lokimq-core` needs except its sockets and its
//! loop. This crate is those two for the standard library, and nothing else: the application
//! writes the same [`Builder`], commands, [`Message`](lokimq::Message) replies and
//! [`Handle`] calls as for the native `lokimq` node, and [`Embedded`] runs them on the calling
//! thread. It is meant to be read and copied; `docs/embedding.md` explains it.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use lokimq::{AuthLevel, Builder};
//! use lokimq_embed_example::Embedded;
//!
//! let mut b = Builder::new();
//! b.add_category("demo", AuthLevel::None)?
//!     // Runs right here, inside `turn`.
//!     .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
//!     .listen_curve(SocketAddr::from(([127, 0, 0, 1], 0)), |_ip, _key, _sn| AuthLevel::Basic)?;
//! let mut node = Embedded::new(b)?;
//! println!("listening on {}", node.handle().bound_addresses()[0]); // curve://127.0.0.1:…/key
//! for _ in 0..10 { // the application's main loop
//!     node.turn(Duration::from_millis(5));
//! }
//! assert!(node.shutdown(Duration::from_secs(10)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The drive contract, as this loop keeps it
//!
//! The [`Host`] acts on every output of the node that is not I/O (auth questions, lookups,
//! closures, posted calls, jobs handed back to run inline) and gives the rest to an [`Io`]:
//! here `StdIo`, a map of listeners and a map of kit [`Stream`]s. A [`turn`](Embedded::turn)
//! reads the clock, accepts, reads, runs what handles posted, fires the node's timeout when it
//! is due, writes, and drops closed sockets whose linger is over, draining the host after
//! each step; then, if nothing happened, it sleeps until the node's next deadline, a post from
//! another thread (the wake function), or `max_wait`.
//!
//! Two compromises come from `std::net`. It has no readiness API, so the loop cannot wait for
//! "a socket became readable": it polls, and `max_wait` is the latency that adds to incoming
//! traffic (a turn that did work does not sleep). And it cannot start a connect without
//! waiting for it, so a dial blocks the loop for up to [`DIAL_TIMEOUT`] (a local or refused
//! port answers at once; a host name is resolved here too). An embedder with mio, tokio or a
//! game engine's network layer waits on readiness and dials without blocking instead.
//!
//! Jobs run inline: [`Io::run_job`] hands every job back and the host runs it on this thread,
//! then the calls its handler posted, then its `JobFinished`. A slow handler stalls the node,
//! and a handler must not wait for the node ([`Handle::stats`] returns an error here: read
//! [`Embedded::node`] instead).

#![warn(missing_docs)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use lokimq::core::address::Address;
use lokimq::core::ids::{ConnId, ListenerId, WorkerId};
use lokimq::core::node::{DisconnectCause, Input, Job, Node};
use lokimq::core::time::{Instant, earliest};
use lokimq::kit::net::{self, BoundListener, DialTarget, UnixSocketAccess};
use lokimq::kit::{
    Clock, Host, Io, NodeRng, POST_BUDGET, READ_BUDGET, SchedulerHome, Stream, Transport,
};
use lokimq::{Builder, Bytes, Error, Handle};
use rand_core::{OsRng, SeedableRng};

/// The longest a dial may block the loop.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest [`Embedded::run_until`] sleeps in one turn: how often it looks at the sockets.
pub const POLL: Duration = Duration::from_millis(2);
/// Connections accepted on one listener per turn.
const ACCEPT_BUDGET: usize = 64;

/// A LokiMQ node and its sockets, driven by whoever calls [`turn`](Self::turn).
pub struct Embedded {
    host: Host,
    io: StdIo,
    clock: Clock,
    /// Rung by the wake function when another thread posts to a handle.
    woken: Receiver<()>,
    scratch: Box<[u8]>,
}

impl Embedded {
    /// Builds the node from `builder` (the one `Builder::start` would take: categories,
    /// commands, listeners, timers) and binds its listeners, whose addresses are then in
    /// `handle().bound_addresses()`.
    ///
    /// # Errors
    ///
    /// The builder's configuration errors, or no randomness from the operating system. A
    /// listener that cannot be bound is reported to its `on_bind` and logged.
    pub fn new(builder: Builder) -> Result<Self, Error> {
        let clock = Clock::new();
        let rng = NodeRng::from_rng(OsRng).map_err(|e| io::Error::other(e.to_string()))?;
        // A post wakes the sleeping loop; one token is enough, more would say nothing new.
        let (wake, woken) = sync_channel(1);
        let (host, _) = builder.into_host(rng, clock.now(), move || {
            let _ = wake.try_send(());
            Ok(())
        })?;
        // The loop runs on the caller's thread: a handle call that waits for the loop must
        // refuse there rather than wait for itself.
        host.claim_thread();
        let mut e = Self {
            host,
            io: StdIo::default(),
            clock,
            woken,
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
        };
        e.host.drain(&mut e.io);
        Ok(e)
    }

    /// The node's handle: send, request, connect, timers, jobs, from this thread or any other.
    #[must_use]
    pub fn handle(&self) -> &Handle {
        self.host.handle()
    }

    /// The node, for getters (`stats`, `is_connected`) on this thread, where [`Handle::stats`]
    /// refuses: it would wait for this very loop.
    #[must_use]
    pub fn node(&self) -> &Node<NodeRng, SchedulerHome> {
        self.host.node()
    }

    /// True once the node has stopped and every socket is closed.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.host.is_stopped() && self.io.streams.is_empty()
    }

    /// One turn (see the [crate documentation](crate)). Returns whether anything happened.
    pub fn turn(&mut self, max_wait: Duration) -> bool {
        self.host.set_now(self.clock.now());
        self.io.now = self.host.now();
        let mut busy = self.accept();
        busy |= self.read();
        busy |= self.host.process_posts(&mut self.io, POST_BUDGET);
        self.host.timeout();
        self.host.drain(&mut self.io);
        busy |= self.io.flush_all();
        self.host.drain(&mut self.io);
        busy |= self.io.expire();
        if !busy {
            self.sleep(max_wait);
        }
        busy
    }

    /// Turns until `done` holds (true) or `budget` has passed (false).
    pub fn run_until(&mut self, mut done: impl FnMut(&Self) -> bool, budget: Duration) -> bool {
        let start = self.clock.now();
        while !done(self) {
            let left = budget.saturating_sub(self.clock.now() - start);
            if left.is_zero() {
                return false;
            }
            self.turn(left.min(POLL));
        }
        true
    }

    /// Shuts the node down (listeners close, running work finishes, connections are flushed
    /// and closed) and turns until that is done, at most `budget`. Returns whether it is.
    pub fn shutdown(&mut self, budget: Duration) -> bool {
        self.host.shutdown();
        self.host.drain(&mut self.io);
        self.run_until(Self::is_stopped, budget)
    }

    fn sleep(&mut self, max_wait: Duration) {
        let lingering = self.io.streams.values().filter_map(Stream::close_deadline);
        let deadline = lingering.fold(self.host.poll_timeout(), |t, d| earliest(t, Some(d)));
        let now = self.clock.now();
        let wait = deadline.map_or(max_wait, |d| d.saturating_duration_since(now).min(max_wait));
        // `may_sleep` is false if a post came in since `process_posts`: run it first.
        if !wait.is_zero() && self.host.may_sleep() {
            let _ = self.woken.recv_timeout(wait);
            self.host.woke();
        }
    }

    fn accept(&mut self) -> bool {
        let mut busy = false;
        let ids: Vec<ListenerId> = self.io.listeners.keys().copied().collect();
        for id in ids {
            for _ in 0..ACCEPT_BUDGET {
                // Nothing waiting, or a failure (EMFILE…) to retry next turn.
                let Some(Ok(Some((sock, peer)))) = self.io.listeners.get(&id).map(Listener::accept)
                else {
                    break;
                };
                busy = true;
                // A refused connection (shutting down, too many) is dropped, which closes it.
                if let Some(conn) = self.host.accept(id, &peer) {
                    // Before draining: the greeting is the first output.
                    self.io.streams.insert(conn, Stream::new(conn, sock));
                    self.host.drain(&mut self.io);
                }
            }
        }
        busy
    }

    fn read(&mut self) -> bool {
        let mut busy = false;
        let conns: Vec<ConnId> = self.io.streams.keys().copied().collect();
        for conn in conns {
            let mut budget = READ_BUDGET;
            while budget > 0 {
                let Some(s) = self.io.streams.get_mut(&conn) else {
                    break;
                };
                let cause = match s.read(&mut self.scratch) {
                    Ok(0) => DisconnectCause::Eof,
                    Ok(n) => {
                        busy = true;
                        budget = budget.saturating_sub(n);
                        // A closed connection's late bytes are no longer the node's business.
                        if !s.is_closing() {
                            self.host.received(conn, &self.scratch[..n]);
                            self.host.drain(&mut self.io);
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => DisconnectCause::Reset(e.to_string()),
                };
                busy = true;
                let closing = s.is_closing();
                self.io.streams.remove(&conn);
                if !closing {
                    self.host.input(Input::Disconnected { conn, cause });
                    self.host.drain(&mut self.io);
                }
                break;
            }
        }
        busy
    }
}

/// The sockets: the kit's [`Io`] on `std::net`.
#[derive(Default)]
struct StdIo {
    now: Instant,
    listeners: BTreeMap<ListenerId, Listener>,
    /// Open streams, and closed ones until their last bytes are out (or their linger is over).
    streams: BTreeMap<ConnId, Stream<Sock>>,
    /// What writes and dials reported, for the host to feed (`Io::take_input`).
    inputs: VecDeque<Input>,
}

impl StdIo {
    /// Writes what `conn` has queued; reports its new backlog, or its end.
    fn flush(&mut self, conn: ConnId) -> bool {
        let Some(s) = self.streams.get_mut(&conn) else {
            return false;
        };
        let f = s.flush();
        let progress = f.report.is_some() || f.done;
        self.inputs.extend(f.report);
        if f.done {
            self.streams.remove(&conn);
            if let Some(e) = f.error {
                let cause = DisconnectCause::Reset(e.to_string());
                self.inputs.push_back(Input::Disconnected { conn, cause });
            }
        }
        progress
    }

    fn flush_all(&mut self) -> bool {
        let conns: Vec<ConnId> = self.streams.keys().copied().collect();
        conns
            .into_iter()
            .fold(false, |busy, c| self.flush(c) | busy)
    }

    /// Closes the closed streams whose linger is over, dropping what they could not send.
    fn expire(&mut self) -> bool {
        let before = self.streams.len();
        self.streams.retain(|_, s| !s.expire(self.now));
        self.streams.len() != before
    }
}

impl Io for StdIo {
    fn transmit(&mut self, conn: ConnId, data: Bytes) {
        if let Some(s) = self.streams.get_mut(&conn) {
            s.push(data);
            // Write through: what the socket does not take now waits for the turn's flush.
            self.flush(conn);
        }
    }

    fn connect(&mut self, conn: ConnId, addr: &Address) -> Result<(), DisconnectCause> {
        let sock = match net::dial_target(addr).map_err(DisconnectCause::InvalidAddress)? {
            DialTarget::Tcp(sa) => TcpStream::connect_timeout(&sa, DIAL_TIMEOUT).map(Sock::Tcp),
            DialTarget::Unix(path) => UnixStream::connect(path).map(Sock::Unix),
        };
        let sock = sock
            .and_then(Sock::nonblocking)
            .map_err(|e| net::connect_failure(&e))?;
        self.streams.insert(conn, Stream::new(conn, sock));
        self.inputs.push_back(Input::Connected { conn });
        Ok(())
    }

    fn close(&mut self, conn: ConnId, linger: Duration) {
        let Some(s) = self.streams.get_mut(&conn) else {
            return;
        };
        if s.close(self.now, linger) {
            self.streams.remove(&conn);
        } else {
            self.flush(conn);
        }
    }

    fn listen(
        &mut self,
        listener: ListenerId,
        addr: &Address,
        access: UnixSocketAccess,
    ) -> io::Result<Address> {
        let bound = net::bind(addr, access)?;
        let l = Listener {
            sock: bound.listener,
            unix_path: bound.unix_path,
        };
        self.listeners.insert(listener, l);
        Ok(bound.local)
    }

    fn unlisten(&mut self, listener: ListenerId) {
        self.listeners.remove(&listener);
    }

    fn run_job(&mut self, _: WorkerId, job: Job) -> Option<Job> {
        Some(job)
    }

    fn stop_worker(&mut self, _: WorkerId) {}

    fn take_input(&mut self) -> Option<Input> {
        self.inputs.pop_front()
    }
}

/// A listening socket; a unix socket's file goes with it, as libzmq removes it.
struct Listener {
    sock: BoundListener,
    unix_path: Option<PathBuf>,
}

impl Listener {
    /// A waiting connection, in non-blocking mode, and its peer's IP as the node wants it.
    fn accept(&self) -> io::Result<Option<(Sock, String)>> {
        let accepted = match &self.sock {
            BoundListener::Tcp(l) => l.accept().map(|(s, a)| (Sock::Tcp(s), Some(a))),
            BoundListener::Unix(l) => l.accept().map(|(s, _)| (Sock::Unix(s), None)),
        };
        match accepted {
            // Accepted sockets do not inherit the listener's non-blocking mode.
            Ok((s, peer)) => Ok(Some((s.nonblocking()?, net::peer_text(peer)))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path); // best effort
        }
    }
}

/// A TCP or unix stream: the [`Transport`] in each [`Stream`].
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Evaluates `$e` with `$s` bound to the socket inside a [`Sock`] (the two types share their
/// method names).
macro_rules! either {
    ($sock:expr, $s:ident => $e:expr) => {
        match $sock {
            Sock::Tcp($s) => $e,
            Sock::Unix($s) => $e,
        }
    };
}

impl Sock {
    fn nonblocking(self) -> io::Result<Self> {
        either!(&self, s => s.set_nonblocking(true))?;
        if let Self::Tcp(s) = &self {
            // Small RPC messages care more for latency than for segment count.
            let _ = s.set_nodelay(true);
        }
        Ok(self)
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        either!(self, s => s.read(buf))
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        either!(self, s => s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        either!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Sock {
    fn shutdown_write(&mut self) -> io::Result<()> {
        either!(self, s => s.shutdown(Shutdown::Write))
    }
}
