//! The proxy thread: the native driver's loop, one `mio::Poll` around a [`Host`].
//!
//! Everything the node does happens on this thread, in turns. A turn polls for readiness (with
//! the node's next deadline as the timeout), reads and writes the ready sockets, runs the calls
//! handles posted, fires the node's timeout when it is due, and writes each socket that got
//! bytes once. The [`Host`] (the driver kit) answers everything that is not I/O; this module is
//! only the sockets ([`MioIo`], the kit's [`Io`] on mio) and the loop. Worker threads take
//! their jobs from the shared scheduler themselves (see [`workers`]).

mod net;
pub(crate) mod workers;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use lokimq_core::address::Address;
use lokimq_core::ids::{ConnId, ListenerId, WorkerId};
use lokimq_core::node::{DisconnectCause, Input, Job};
use lokimq_core::time::{Instant, earliest};

use crate::clock::Clock;
use crate::handle::ThreadRole;
use crate::kit::net::{BoundListener, DialTarget, UnixSocketAccess, connect_failure, dial_target};
use crate::kit::{Host, Io, POST_BUDGET, READ_BUDGET, Stream};

use net::{Entry, ListenerIo, ListenerSock, MioStream, StreamIo};
pub(crate) use workers::Workers;

/// The waker's token; sockets use their slab key, which never reaches `usize::MAX`.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// At most this many connections are accepted on one listener per turn.
const ACCEPT_BUDGET: usize = 128;
/// Size of the read buffer (one read call at most).
const READ_CHUNK: usize = 64 * 1024;
/// A turn flushes a socket early once this many bytes, or this many separately queued
/// messages, wait in its queue, so that a long turn neither holds its replies back nor runs
/// into the send high-water mark (1000 messages by default) on its own.
const FLUSH_EARLY_BYTES: usize = 64 * 1024;
const FLUSH_EARLY_CHUNKS: usize = 128;

/// The proxy: see the [module documentation](self).
pub(crate) struct Proxy {
    host: Host,
    net: MioIo,
    clock: Clock,
}

/// The sockets, as the kit's [`Io`].
pub(crate) struct MioIo {
    poll: Poll,
    slab: Slab<Entry>,
    by_conn: BTreeMap<ConnId, usize>,
    /// Slots killed during this turn, freed at its end.
    graveyard: Vec<usize>,
    /// Sockets whose read or accept budget ran out with data left: read (or accepted from)
    /// again next turn without waiting for a new readiness event, which an edge-triggered
    /// poll would not give.
    again: Vec<usize>,
    /// The current turn's number (see `MioStream::read_turn`).
    turn: u64,
    /// Streams with bytes newly queued, written at the end of the turn.
    dirty: Vec<usize>,
    /// Closing streams and their linger deadlines.
    closing: BTreeMap<usize, Instant>,
    /// Outgoing connections waiting for a name lookup, and the lookups' answers.
    resolving: BTreeSet<ConnId>,
    resolved_tx: Sender<(ConnId, Result<SocketAddr, String>)>,
    resolved_rx: Receiver<(ConnId, Result<SocketAddr, String>)>,
    waker: Arc<mio::Waker>,
    /// Inputs for the node that came up while acting on an output (a write inside `transmit`
    /// reports a backlog, or a failure), handed to the host through `Io::take_input` and
    /// reported in order (a backlog report is a level: the last one must win).
    pending: VecDeque<Input>,
    scratch: Box<[u8]>,
    pub(crate) workers: Arc<Workers>,
    now: Instant,
}

impl Proxy {
    pub(crate) fn new(
        host: Host,
        clock: Clock,
        poll: Poll,
        waker: Arc<mio::Waker>,
        workers: Arc<Workers>,
    ) -> Self {
        let (resolved_tx, resolved_rx) = mpsc::channel();
        let now = clock.now();
        Self {
            host,
            net: MioIo {
                poll,
                slab: Slab::new(),
                by_conn: BTreeMap::new(),
                graveyard: Vec::new(),
                again: Vec::new(),
                turn: 0,
                dirty: Vec::new(),
                closing: BTreeMap::new(),
                resolving: BTreeSet::new(),
                resolved_tx,
                resolved_rx,
                waker,
                pending: VecDeque::new(),
                scratch: vec![0; READ_CHUNK].into_boxed_slice(),
                workers,
                now,
            },
            clock,
        }
    }

    /// The host, for set-up before the loop starts.
    pub(crate) fn host_mut(&mut self) -> &mut Host {
        &mut self.host
    }

    /// The worker threads.
    pub(crate) fn workers(&self) -> &Arc<Workers> {
        &self.net.workers
    }

    /// Acts on everything the node has to say (the host also feeds what the sockets report
    /// meanwhile: see `Io::take_input`). `Builder::start` calls this once on the application's
    /// thread, before the proxy thread exists: the host marks the thread that drains it as the
    /// node's own (so `Handle::stats` refuses there, and dropping a `LokiMq` does not wait), which
    /// the application's thread must not stay, so its role is put back.
    pub(crate) fn settle(&mut self) {
        // `Host::drain` takes the node's own role only for its duration, so this is also safe
        // on the application's thread during `Builder::start`.
        self.host.drain(&mut self.net);
    }

    /// Reads the clock.
    fn tick(&mut self) {
        let now = self.clock.now();
        self.host.set_now(now);
        self.net.now = self.host.now();
    }

    // -----------------------------------------------------------------------------------------
    // the loop

    /// Runs turns until the node has stopped and every closing socket is done.
    pub(crate) fn run(mut self) {
        ThreadRole::Proxy.enter();
        let mut events = Events::with_capacity(256);
        let mut more_posts = false;
        loop {
            if self.host.is_stopped() && !self.net.has_streams() {
                break;
            }
            if let Err(e) = self.wait(&mut events, more_posts) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!("poll failed: {e}; the proxy thread is stopping");
                break;
            }
            self.tick();
            self.net.turn += 1;
            for event in &events {
                if event.token() != WAKER {
                    self.socket_event(event.token().0, event);
                }
            }
            self.resolved();
            more_posts = self.host.process_posts(&mut self.net, POST_BUDGET);
            self.settle();
            self.service_again();
            self.host.timeout();
            self.settle();
            self.expire_closing();
            self.flush_dirty();
            self.net.bury();
        }
        self.finish();
    }

    /// Waits for socket events, posts or the next deadline. Posts made while the proxy is
    /// awake need no wake-up: it tells posters when it is about to sleep, and looks once more.
    fn wait(&mut self, events: &mut Events, busy: bool) -> io::Result<()> {
        let timeout = if busy || !self.net.again.is_empty() {
            Some(Duration::ZERO)
        } else {
            let mut deadline = self.host.poll_timeout();
            for d in self.net.closing.values() {
                deadline = earliest(deadline, Some(*d));
            }
            let now = self.clock.now();
            deadline.map(|d| d.saturating_duration_since(now))
        };
        if timeout == Some(Duration::ZERO) || !self.host.handle().proxy_may_sleep() {
            return self.net.poll.poll(events, Some(Duration::ZERO));
        }
        let result = self.net.poll.poll(events, timeout);
        self.host.handle().proxy_woke();
        result
    }

    fn finish(&mut self) {
        let keys: Vec<usize> = self.net.slab.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.net.kill(key);
        }
        self.net.bury();
        self.net.workers.join_all();
        // Callbacks still held (pending requests and connects) are dropped uncalled, as OxenMQ
        // never calls them after shutdown.
        tracing::debug!("proxy thread finished");
    }

    fn service_again(&mut self) {
        for key in std::mem::take(&mut self.net.again) {
            match self.net.slab.get(key) {
                Some(Entry::Stream(_)) => self.read_ready(key),
                Some(Entry::Listener(_)) => self.accept_ready(key),
                _ => {}
            }
        }
    }

    /// Closing streams whose linger is over close now, dropping what is unsent.
    fn expire_closing(&mut self) {
        let now = self.host.now();
        let expired: Vec<usize> = self
            .net
            .closing
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.net.kill(key);
        }
    }

    /// Writes out the sockets that got data this turn (once per turn, so the replies of many
    /// posted calls leave in one system call), and feeds what the writes report.
    fn flush_dirty(&mut self) {
        while !self.net.dirty.is_empty() {
            for key in std::mem::take(&mut self.net.dirty) {
                self.net.flush(key);
            }
            self.settle();
        }
    }

    /// Dials the outgoing connections whose names were looked up.
    fn resolved(&mut self) {
        while let Ok((conn, result)) = self.net.resolved_rx.try_recv() {
            if !self.net.resolving.remove(&conn) {
                continue; // closed while resolving
            }
            let dialed = result
                .map_err(DisconnectCause::InvalidAddress)
                .and_then(|sa| self.net.dial(conn, &DialTarget::Tcp(sa)));
            if let Err(cause) = dialed {
                self.host.input(Input::Disconnected { conn, cause });
            }
            self.settle();
        }
    }

    // -----------------------------------------------------------------------------------------
    // socket events

    fn socket_event(&mut self, key: usize, event: &mio::event::Event) {
        match self.net.slab.get(key) {
            Some(Entry::Listener(_)) => self.accept_ready(key),
            Some(Entry::Stream(s)) => {
                if s.connecting {
                    self.finish_connect(key);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_ready(key);
                }
                if event.is_writable() {
                    self.net.flush(key);
                    self.settle();
                }
            }
            Some(Entry::Dead) | None => {}
        }
    }

    fn accept_ready(&mut self, key: usize) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(Entry::Listener(l)) = self.net.slab.get(key) else {
                return;
            };
            let listener = l.id;
            match l.io.accept() {
                Ok((io, remote)) => {
                    io.set_nodelay();
                    // A refused connection is dropped (closed) at once.
                    if let Some(conn) = self.host.accept(listener, &remote) {
                        self.net.insert_stream(conn, io, false, &mut self.host);
                        self.settle();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: retrying at once would spin; the next connection
                    // attempt raises a new edge and the backlog is drained then.
                    tracing::warn!("accept failed on {listener:?}: {e}");
                    return;
                }
            }
        }
        self.net.again.push(key);
    }

    fn finish_connect(&mut self, key: usize) {
        let Some(Entry::Stream(s)) = self.net.slab.get_mut(key) else {
            return;
        };
        match s.stream.io().connect_finished() {
            Ok(false) => {}
            Ok(true) => {
                s.connecting = false;
                s.stream.io().set_nodelay();
                let conn = s.stream.conn();
                self.net.update_interest(key);
                self.host.input(Input::Connected { conn });
                self.settle();
            }
            Err(e) => {
                let cause = connect_failure(&e);
                if let Some(input) = self.net.stream_gone(key, cause) {
                    self.host.input(input);
                }
                self.settle();
            }
        }
    }

    /// Reads until `WouldBlock`, end of stream, an error, or the turn's budget. A stream already
    /// read this turn waits for the next one: every readable stream gets one budget per turn,
    /// and the streams left over from the last turn come after those with new events.
    fn read_ready(&mut self, key: usize) {
        let turn = self.net.turn;
        if let Some(Entry::Stream(s)) = self.net.slab.get_mut(key) {
            if s.read_turn == turn {
                self.net.read_next_turn(key);
                return;
            }
            s.read_turn = turn;
        }
        let mut budget = READ_BUDGET;
        loop {
            let Some(Entry::Stream(s)) = self.net.slab.get_mut(key) else {
                return;
            };
            if s.connecting {
                return;
            }
            let (conn, closing) = (s.stream.conn(), s.stream.is_closing());
            match s.stream.read(&mut self.net.scratch) {
                Ok(0) => {
                    if let Some(input) = self.net.stream_gone(key, DisconnectCause::Eof) {
                        self.host.input(input);
                    }
                    self.settle();
                    return;
                }
                Ok(n) => {
                    // A closing connection's input is no longer the node's business.
                    if !closing {
                        let now = self.clock.now();
                        self.host.set_now(now);
                        self.host.received(conn, &self.net.scratch[..n]);
                        self.settle();
                    }
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.net.read_next_turn(key);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let cause = DisconnectCause::Reset(e.to_string());
                    if let Some(input) = self.net.stream_gone(key, cause) {
                        self.host.input(input);
                    }
                    self.settle();
                    return;
                }
            }
        }
    }
}

impl MioIo {
    /// Marks a stream with input left for reading next turn (once, however often it is
    /// marked: the list only holds streams that used up a whole budget, so it stays short).
    fn read_next_turn(&mut self, key: usize) {
        if !self.again.contains(&key) {
            self.again.push(key);
        }
    }

    fn has_streams(&self) -> bool {
        self.slab.iter().any(|(_, e)| matches!(e, Entry::Stream(_))) || !self.resolving.is_empty()
    }

    fn bury(&mut self) {
        for key in self.graveyard.drain(..) {
            if matches!(self.slab.get(key), Some(Entry::Dead)) {
                self.slab.remove(key);
            }
        }
    }

    fn insert_stream(&mut self, conn: ConnId, io: StreamIo, connecting: bool, host: &mut Host) {
        if let Err(cause) = self.register_stream(conn, io, connecting) {
            host.input(Input::Disconnected { conn, cause });
        }
    }

    fn register_stream(
        &mut self,
        conn: ConnId,
        io: StreamIo,
        connecting: bool,
    ) -> Result<(), DisconnectCause> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let mut s = MioStream::new(Stream::new(conn, io), connecting);
        let interest = s.interest;
        if let Err(e) = self
            .poll
            .registry()
            .register(s.stream.io_mut(), Token(key), interest)
        {
            tracing::error!("could not register a socket: {e}");
            return Err(DisconnectCause::Reset(e.to_string()));
        }
        self.by_conn.insert(conn, key);
        entry.insert(Entry::Stream(s));
        Ok(())
    }

    fn dial(&mut self, conn: ConnId, target: &DialTarget) -> Result<(), DisconnectCause> {
        match StreamIo::connect(target) {
            Ok(io) => self.register_stream(conn, io, true),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                Err(DisconnectCause::InvalidAddress(e.to_string()))
            }
            Err(e) => Err(connect_failure(&e)),
        }
    }

    /// Writes what a stream has queued; reports its backlog, or its end.
    fn flush(&mut self, key: usize) {
        let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
            return;
        };
        if s.connecting {
            return;
        }
        let f = s.stream.flush();
        let conn = s.stream.conn();
        if let Some(report) = f.report {
            self.pending.push_back(report);
        }
        if f.done {
            let open = self.by_conn.get(&conn) == Some(&key);
            self.kill(key);
            if let (true, Some(e)) = (open, f.error) {
                self.pending.push_back(Input::Disconnected {
                    conn,
                    cause: DisconnectCause::Reset(e.to_string()),
                });
            }
            return;
        }
        self.update_interest(key);
    }

    fn update_interest(&mut self, key: usize) {
        let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
            return;
        };
        let wanted = s.wanted_interest();
        if wanted != s.interest {
            match self
                .poll
                .registry()
                .reregister(s.stream.io_mut(), Token(key), wanted)
            {
                Ok(()) => s.interest = wanted,
                Err(e) => tracing::error!("could not update socket interest: {e}"),
            }
        }
    }

    /// The transport of a stream ended: free the socket, and return the input that tells the
    /// node (unless it already forgot the connection).
    fn stream_gone(&mut self, key: usize, cause: DisconnectCause) -> Option<Input> {
        let Some(Entry::Stream(s)) = self.slab.get(key) else {
            return None;
        };
        let (conn, closing) = (s.stream.conn(), s.stream.is_closing());
        self.kill(key);
        (!closing).then_some(Input::Disconnected { conn, cause })
    }

    /// Deregisters and closes a socket; its slot is freed at the end of the turn.
    fn kill(&mut self, key: usize) {
        let Some(entry) = self.slab.get_mut(key) else {
            return;
        };
        match std::mem::replace(entry, Entry::Dead) {
            Entry::Stream(mut s) => {
                // Deregistering a socket that is about to close cannot usefully fail.
                let _ = self.poll.registry().deregister(s.stream.io_mut());
                let conn = s.stream.conn();
                if self.by_conn.get(&conn) == Some(&key) {
                    self.by_conn.remove(&conn);
                }
            }
            Entry::Listener(mut l) => {
                let _ = self.poll.registry().deregister(&mut l.io);
            }
            Entry::Dead => return,
        }
        self.closing.remove(&key);
        self.again.retain(|&k| k != key);
        self.graveyard.push(key);
    }
}

impl Io for MioIo {
    fn transmit(&mut self, conn: ConnId, data: Bytes) {
        let Some(&key) = self.by_conn.get(&conn) else {
            tracing::debug!("dropping {} bytes for closed {conn:?}", data.len());
            return;
        };
        let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
            return;
        };
        if s.stream.chunks() == 0 {
            self.dirty.push(key);
        }
        s.stream.push(data);
        if s.stream.queued() >= FLUSH_EARLY_BYTES || s.stream.chunks() >= FLUSH_EARLY_CHUNKS {
            self.flush(key);
        }
    }

    fn connect(&mut self, conn: ConnId, addr: &Address) -> Result<(), DisconnectCause> {
        if addr.socket().is_some() || addr.socket_addr().is_some() {
            let target = dial_target(addr).map_err(DisconnectCause::InvalidAddress)?;
            return self.dial(conn, &target);
        }
        // A host name: resolve on a helper thread so the proxy never blocks on DNS.
        let addr = addr.clone();
        let (tx, waker) = (self.resolved_tx.clone(), Arc::clone(&self.waker));
        std::thread::Builder::new()
            .name(String::from("lmq-resolve"))
            .spawn(move || {
                let result = dial_target(&addr).and_then(|t| match t {
                    DialTarget::Tcp(sa) => Ok(sa),
                    DialTarget::Unix(_) => Err(format!("cannot dial {addr}")),
                });
                // If the proxy is gone nobody is waiting for the answer.
                if tx.send((conn, result)).is_ok() {
                    let _ = waker.wake();
                }
            })
            .map_err(|e| DisconnectCause::ConnectFailed(format!("cannot resolve: {e}")))?;
        self.resolving.insert(conn);
        Ok(())
    }

    fn close(&mut self, conn: ConnId, linger: Duration) {
        if self.resolving.remove(&conn) {
            return;
        }
        let Some(key) = self.by_conn.remove(&conn) else {
            return;
        };
        let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
            return;
        };
        let linger = if s.connecting { Duration::ZERO } else { linger };
        if s.stream.close(self.now, linger) {
            self.kill(key);
            return;
        }
        if let Some(deadline) = s.stream.close_deadline() {
            self.closing.insert(key, deadline);
        }
        // Write now: it also finishes the close at once when the socket takes everything.
        self.flush(key);
    }

    fn listen(
        &mut self,
        listener: ListenerId,
        addr: &Address,
        access: UnixSocketAccess,
    ) -> io::Result<Address> {
        let bound = crate::kit::net::bind(addr, access)?;
        let mut io = match bound.listener {
            BoundListener::Tcp(l) => ListenerIo::Tcp(mio::net::TcpListener::from_std(l)),
            BoundListener::Unix(l) => ListenerIo::Unix(mio::net::UnixListener::from_std(l)),
        };
        let entry = self.slab.vacant_entry();
        self.poll
            .registry()
            .register(&mut io, Token(entry.key()), Interest::READABLE)?;
        entry.insert(Entry::Listener(ListenerSock {
            id: listener,
            io,
            unix_path: bound.unix_path,
        }));
        Ok(bound.local)
    }

    fn unlisten(&mut self, listener: ListenerId) {
        let key = self.slab.iter().find_map(|(key, e)| match e {
            Entry::Listener(l) if l.id == listener => Some(key),
            _ => None,
        });
        if let Some(key) = key {
            self.kill(key);
        }
    }

    fn run_job(&mut self, worker: WorkerId, job: Job) -> Option<Job> {
        self.workers.run(worker, job);
        None
    }

    fn stop_worker(&mut self, worker: WorkerId) {
        self.workers.stop(worker);
    }

    fn poked(&mut self) {
        self.workers.run_homeless();
    }

    fn take_input(&mut self) -> Option<Input> {
        self.pending.pop_front()
    }
}
