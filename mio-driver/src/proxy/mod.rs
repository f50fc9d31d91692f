//! The proxy thread: one `mio::Poll`, the [`Node`], every socket and every callback table.
//!
//! Everything the node does happens here, on one thread, in turns. A turn polls for readiness
//! (with the node's next deadline as the timeout), reads and writes the ready sockets, takes
//! the messages other threads posted (worker completions and application commands), fires the
//! node's timeout when it is due, and frees the socket slots closed during the turn. After every
//! call into the node the proxy drains [`Node::poll_output`] and acts on each output before it
//! touches the node again: that is the core's drive contract.

mod net;
pub(crate) mod workers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{ConnId, ListenerId};
use lokimq_core::node::{DisconnectCause, Event, InDriver, Input, Node, NodeError, Output, Target};
use lokimq_core::time::{Instant, earliest};

use crate::builder::UnixSocketAccess;
use crate::clock::{Clock, duration_micros};
use crate::handle::{AllowFn, Handle, OnBind, ProxyMsg, SnLookupFn, ThreadRole, run_guarded};
use crate::jobs::{JobTable, Task};
use crate::{Error, Listen};

use net::{Dial, Entry, ListenerIo, ListenerSock, Stream};
pub(crate) use workers::{SharedScheduler, Workers};

/// The node's random number generator: ChaCha20 seeded from the operating system, so that a
/// request tag or a CURVE nonce costs no system call.
pub(crate) type NodeRng = rand_chacha::ChaCha20Rng;

/// The waker's token; sockets use their slab key, which never reaches `usize::MAX`.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// At most this many bytes are read from one socket per turn before the others get a go.
const READ_BUDGET: usize = 256 * 1024;
/// At most this many connections are accepted on one listener per turn.
const ACCEPT_BUDGET: usize = 128;
/// At most this many posted messages (completions, commands) are handled per turn.
const MESSAGE_BUDGET: usize = 1024;
/// Size of the read buffer (one read call at most).
const READ_CHUNK: usize = 64 * 1024;
/// Largest number of buffers handed to one vectored write.
const MAX_IOV: usize = 64;
/// A turn flushes a socket early once this many bytes, or this many separately queued
/// messages, wait in its queue, so that a long turn neither holds its replies back nor runs
/// into the send high-water mark (1000 messages by default) on its own.
const FLUSH_EARLY_BYTES: usize = 64 * 1024;
const FLUSH_EARLY_CHUNKS: usize = 128;

/// A listener's callbacks.
pub(crate) struct ListenerCallbacks {
    pub(crate) curve: bool,
    pub(crate) allow: Option<AllowFn>,
    pub(crate) on_bind: Option<OnBind>,
    pub(crate) unix: UnixSocketAccess,
}

/// The callbacks only the proxy calls (the closures behind jobs are in the [`JobTable`]).
#[derive(Default)]
pub(crate) struct Callbacks {
    pub(crate) listeners: BTreeMap<ListenerId, ListenerCallbacks>,
    pub(crate) sn_lookup: Option<SnLookupFn>,
}

/// The proxy: see the [module documentation](self).
pub(crate) struct Proxy {
    pub(crate) node: Node<NodeRng, SharedScheduler>,
    clock: Clock,
    now: Instant,
    poll: Poll,
    slab: Slab<Entry>,
    by_conn: BTreeMap<ConnId, usize>,
    /// Slots killed during this turn, freed at its end.
    graveyard: Vec<usize>,
    /// Sockets whose read or accept budget ran out with data left.
    again: Vec<usize>,
    /// Streams with bytes newly queued, flushed at the end of the drain.
    dirty: Vec<usize>,
    /// Closing streams and their linger deadlines.
    closing: BTreeMap<usize, Instant>,
    /// Outgoing connections waiting for DNS.
    resolving: BTreeSet<ConnId>,
    scratch: Box<[u8]>,
    pub(crate) cb: Callbacks,
    pub(crate) workers: Arc<Workers>,
    rx: Receiver<ProxyMsg>,
    pub(crate) handle: Handle,
    shutting_down: bool,
    stopped: bool,
    more_messages: bool,
    /// While `start()` binds on the caller's thread: the first bind failure.
    startup_error: Option<Error>,
}

impl Proxy {
    pub(crate) fn new(
        node: Node<NodeRng, SharedScheduler>,
        clock: Clock,
        poll: Poll,
        rx: Receiver<ProxyMsg>,
        handle: Handle,
        cb: Callbacks,
        workers: Arc<Workers>,
    ) -> Self {
        let now = clock.now();
        Self {
            node,
            clock,
            now,
            poll,
            slab: Slab::new(),
            by_conn: BTreeMap::new(),
            graveyard: Vec::new(),
            again: Vec::new(),
            dirty: Vec::new(),
            closing: BTreeMap::new(),
            resolving: BTreeSet::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            cb,
            workers,
            rx,
            handle,
            shutting_down: false,
            stopped: false,
            more_messages: false,
            startup_error: None,
        }
    }

    /// The node's time: the clock as read at the last [`tick`](Self::tick), which happens when
    /// the proxy wakes and as long turns go on (reading the clock for every message costs more
    /// than the microseconds it would add to a deadline).
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Feeds an input to the node. This driver's inputs are network events and answers to the
    /// node's own events, which the node always accepts; a refusal is a bug in this driver.
    fn input(&mut self, now: Instant, input: Input) {
        if let Err(e) = self.node.handle(now, input) {
            tracing::error!("the node refused an input from the driver: {e}");
        }
    }

    /// Reads the clock.
    fn tick(&mut self) {
        self.now = self.clock.now();
    }

    /// The closures behind the node's jobs.
    pub(crate) fn jobs(&self) -> Arc<JobTable> {
        Arc::clone(&self.workers.jobs)
    }

    /// Hands `task` to the node to run on `target`; if the node refuses it, the task is dropped
    /// and the refusal returned for the caller to report.
    pub(crate) fn queue_task(
        &mut self,
        now: Instant,
        task: Task,
        target: Target,
    ) -> Result<(), NodeError> {
        let jobs = self.jobs();
        let id = jobs.closures().add_task(task);
        let queued = self.node.job(now, id, target);
        if queued.is_err() {
            jobs.closures().tasks.remove(&id);
        }
        queued
    }

    /// The first bind failure seen while starting, if any.
    pub(crate) fn take_startup_error(&mut self) -> Option<Error> {
        self.startup_error.take()
    }

    /// Registers a listener with the node and keeps its callbacks; the bind happens when the
    /// node's `Output::Listen` is drained.
    pub(crate) fn add_listener(&mut self, listen: Listen) {
        let now = self.now();
        let Listen {
            address,
            curve,
            allow,
            on_bind,
            unix,
        } = listen;
        let listening = if curve {
            self.node.listen_curve(now, address.clone())
        } else {
            self.node.listen_plain(now, address.clone())
        };
        let id = match listening {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("not listening on {address}: {e}");
                if let Some(on_bind) = on_bind {
                    run_guarded("on_bind callback", move || on_bind(Err(e.to_string())));
                }
                return;
            }
        };
        self.cb.listeners.insert(
            id,
            ListenerCallbacks {
                curve,
                allow,
                on_bind,
                unix,
            },
        );
    }

    /// Starts shutdown (idempotent): the node stops dispatching, running jobs finish, then
    /// `Event::Stopped` ends the loop.
    pub(crate) fn begin_shutdown(&mut self) {
        if !self.shutting_down {
            self.shutting_down = true;
            let now = self.now();
            self.node.shutdown(now);
            self.drain();
        }
    }

    // -----------------------------------------------------------------------------------------
    // the loop

    /// Runs turns until the node has stopped and every closing socket is done.
    pub(crate) fn run(mut self) {
        ThreadRole::Proxy.enter();
        let mut events = Events::with_capacity(256);
        loop {
            if self.stopped && !self.has_streams() {
                break;
            }
            if let Err(e) = self.wait(&mut events) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!("poll failed: {e}; the proxy thread is stopping");
                break;
            }
            self.tick();
            for event in &events {
                if event.token() == WAKER {
                    continue; // the channel is drained every turn anyway
                }
                self.socket_event(event.token().0, event);
            }
            self.process_messages();
            self.service_again();
            self.service_timeouts();
            self.flush_dirty();
            self.bury();
        }
        self.finish();
    }

    /// Waits for socket events, posts or the next deadline. Posts made while the proxy is
    /// awake need no wake-up: it tells posters when it is about to sleep, and looks once more.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let timeout = self.poll_timeout();
        if timeout == Some(Duration::ZERO) || !self.handle.proxy_may_sleep() {
            return self.poll.poll(events, Some(Duration::ZERO));
        }
        let result = self.poll.poll(events, timeout);
        self.handle.proxy_woke();
        result
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.more_messages || !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut deadline = self.node.poll_timeout();
        for d in self.closing.values() {
            deadline = earliest(deadline, Some(*d));
        }
        let now = self.now();
        deadline.map(|d| d.saturating_duration_since(now))
    }

    fn has_streams(&self) -> bool {
        self.slab.iter().any(|(_, e)| matches!(e, Entry::Stream(_))) || !self.resolving.is_empty()
    }

    /// Takes posted messages, at most [`MESSAGE_BUDGET`] per turn.
    fn process_messages(&mut self) {
        self.handle.clear_wake_flag();
        for n in 0..MESSAGE_BUDGET {
            if n % 64 == 63 {
                self.tick();
            }
            match self.rx.try_recv() {
                Ok(ProxyMsg::Poke) => {
                    self.workers.run_homeless();
                    self.drain();
                }
                Ok(ProxyMsg::Call(call)) => {
                    call(self);
                    self.drain();
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    self.more_messages = false;
                    return;
                }
            }
        }
        self.more_messages = true;
    }

    fn service_again(&mut self) {
        for key in std::mem::take(&mut self.again) {
            match self.slab.get(key) {
                Some(Entry::Stream(_)) => self.read_ready(key),
                Some(Entry::Listener(_)) => self.accept_ready(key),
                _ => {}
            }
        }
    }

    fn service_timeouts(&mut self) {
        let now = self.now();
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.input(now, Input::Timeout);
            self.drain();
        }
        let expired: Vec<usize> = self
            .closing
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.kill(key);
        }
    }

    fn bury(&mut self) {
        for key in self.graveyard.drain(..) {
            if matches!(self.slab.get(key), Some(Entry::Dead)) {
                self.slab.remove(key);
            }
        }
    }

    fn finish(&mut self) {
        let keys: Vec<usize> = self.slab.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.kill(key);
        }
        self.bury();
        self.workers.join_all();
        // Callbacks still held (pending requests and connects) are dropped uncalled, as OxenMQ
        // never calls them after shutdown.
        tracing::debug!("proxy thread finished");
    }

    // -----------------------------------------------------------------------------------------
    // outputs

    /// Acts on every pending output, then flushes the sockets that got data. Only the top-level
    /// entry points (events, messages, timeouts) call this; everything it calls feeds inputs
    /// without draining, so outputs are handled strictly in order.
    pub(crate) fn drain(&mut self) {
        while let Some(out) = self.node.poll_output() {
            self.act(out);
        }
    }

    /// Writes out the sockets that got data this turn (once per turn, so the replies of many
    /// posted calls leave in one system call), and acts on what the flush reports cause.
    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            for key in std::mem::take(&mut self.dirty) {
                self.flush(key);
            }
            self.drain();
        }
    }

    fn act(&mut self, out: Output) {
        match out {
            Output::Transmit { conn, data } => self.transmit(conn, data),
            Output::Connect { conn, addr } => self.connect(conn, &addr),
            Output::Close { conn, linger } => self.close(conn, linger),
            Output::Listen { listener, addr } => self.bind(listener, &addr),
            Output::Unlisten { listener } => self.unlisten(listener),
            Output::RunJob { worker, job } => self.workers.run(worker, job),
            Output::StopWorker { worker } => self.workers.stop(worker),
            Output::Event(event) => self.on_event(event),
        }
    }

    fn on_event(&mut self, event: Event) {
        let now = self.now();
        match event {
            Event::AuthRequest {
                conn,
                listener,
                remote,
                pubkey,
                service_node,
            } => {
                let allow = self
                    .cb
                    .listeners
                    .get(&listener)
                    .and_then(|l| l.allow.clone());
                let level = match allow {
                    None => AuthLevel::None,
                    Some(f) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        f(&remote, pubkey.as_ref(), service_node)
                    }))
                    .unwrap_or_else(|_| {
                        tracing::error!("the allow function panicked; denying {remote}");
                        AuthLevel::Denied
                    }),
                };
                self.input(now, Input::AuthDecision { conn, level });
            }
            Event::LookupSn { pubkey } => {
                let address = self.cb.sn_lookup.clone().and_then(|f| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&pubkey)))
                        .unwrap_or_else(|_| {
                            tracing::error!("the sn_lookup function panicked for {pubkey}");
                            None
                        })
                });
                self.input(now, Input::SnAddress { pubkey, address });
            }
            Event::RunInDriver(InDriver::Completion { batch }) => {
                if let Some(task) = self.workers.jobs.take_completion(batch) {
                    run_guarded("in-proxy batch completion", task);
                }
            }
            Event::RunInDriver(InDriver::Timer { timer }) => {
                if let Some(f) = self.workers.jobs.timer(timer) {
                    run_guarded("in-proxy timer", move || f());
                }
            }
            Event::BatchDone { batch } => {
                self.workers.jobs.closures().batches.remove(&batch);
            }
            Event::TimerReleased { timer } => {
                self.workers.jobs.closures().timers.remove(&timer);
            }
            Event::Dropped { category } => {
                tracing::warn!(
                    "No space to queue incoming command for category {category}; dropping"
                );
            }
            Event::ListenFailed { listener, reason } => {
                if let Some(on_bind) = self
                    .cb
                    .listeners
                    .get_mut(&listener)
                    .and_then(|l| l.on_bind.take())
                {
                    run_guarded("on_bind callback", move || on_bind(Err(reason)));
                }
            }
            Event::PeerDisconnected {
                conn,
                cause,
                reconnecting,
                ..
            } => {
                let again = if reconnecting { " (reconnecting)" } else { "" };
                tracing::debug!("{conn} disconnected: {cause}{again}");
            }
            Event::LinkFailed { conn, error } => {
                tracing::debug!("gave up the connection to {conn}: {error}");
            }
            Event::Stopped => self.stopped = true,
            other => tracing::debug!("ignoring an event this driver does not know: {other:?}"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // sockets: events

    fn socket_event(&mut self, key: usize, event: &mio::event::Event) {
        match self.slab.get(key) {
            Some(Entry::Listener(_)) => self.accept_ready(key),
            Some(Entry::Stream(s)) => {
                if s.connecting {
                    self.finish_connect(key);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_ready(key);
                }
                if event.is_writable() {
                    self.flush(key);
                    self.drain();
                }
            }
            _ => {}
        }
    }

    fn accept_ready(&mut self, key: usize) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(Entry::Listener(l)) = self.slab.get(key) else {
                return;
            };
            let listener = l.id;
            match l.io.accept() {
                Ok((io, remote)) => {
                    io.set_nodelay();
                    let now = self.now();
                    match self.node.accept(now, listener, &remote) {
                        Ok(conn) => {
                            self.insert_stream(Stream::new(conn, io, false));
                            self.drain();
                        }
                        Err(e @ NodeError::TooManyConnections(_)) => tracing::warn!("{e}"),
                        Err(e) => tracing::error!("could not accept a connection: {e}"),
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
        self.again.push(key);
    }

    fn insert_stream(&mut self, mut stream: Stream) {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let interest = stream.interest;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream.io, Token(key), interest)
        {
            tracing::error!("could not register a socket: {e}");
            let conn = stream.conn;
            let now = self.now();
            let cause = DisconnectCause::Reset(e.to_string());
            self.input(now, Input::Disconnected { conn, cause });
            return;
        }
        self.by_conn.insert(stream.conn, key);
        entry.insert(Entry::Stream(stream));
    }

    fn finish_connect(&mut self, key: usize) {
        let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
            return;
        };
        match s.io.connect_finished() {
            Ok(false) => {}
            Ok(true) => {
                s.connecting = false;
                s.io.set_nodelay();
                let conn = s.conn;
                self.update_interest(key);
                let now = self.now();
                self.input(now, Input::Connected { conn });
                self.drain();
            }
            Err(e) => {
                self.stream_gone(key, connect_failure(&e));
                self.drain();
            }
        }
    }

    /// Reads until `WouldBlock`, EOF, an error, or the turn's budget.
    fn read_ready(&mut self, key: usize) {
        let mut budget = READ_BUDGET;
        loop {
            let (conn, closing, result) = {
                let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
                    return;
                };
                if s.connecting {
                    return;
                }
                let r = s.io.read(&mut self.scratch);
                (s.conn, s.closing, r)
            };
            match result {
                Ok(0) => {
                    self.stream_gone(key, DisconnectCause::Eof);
                    self.drain();
                    return;
                }
                Ok(n) => {
                    if !closing {
                        self.tick();
                        let now = self.now();
                        self.node.handle_received(now, conn, &self.scratch[..n]);
                        self.drain();
                    }
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.again.push(key);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stream_gone(key, DisconnectCause::Reset(e.to_string()));
                    self.drain();
                    return;
                }
            }
        }
    }

    /// Writes queued bytes until the queue is empty or the socket would block, then tells the
    /// node how much is still unsent (its high-water-mark check).
    fn flush(&mut self, key: usize) {
        let before = match self.slab.get(key) {
            Some(Entry::Stream(s)) => s.queued,
            _ => return,
        };
        self.write_queued(key);
        if let Some(Entry::Stream(s)) = self.slab.get(key) {
            if s.queued < before && !s.closing {
                let (conn, unsent) = (s.conn, s.queued);
                let now = self.now();
                self.input(now, Input::Flushed { conn, unsent });
            }
        }
    }

    fn write_queued(&mut self, key: usize) {
        loop {
            let result = {
                let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
                    return;
                };
                if s.connecting || s.write_shut || s.out.is_empty() {
                    break;
                }
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                for (slot, chunk) in slices.iter_mut().zip(s.out.iter()) {
                    *slot = IoSlice::new(chunk);
                    n += 1;
                }
                match s.io.write_vectored(&slices[..n]) {
                    Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(written) => {
                        s.consume(written);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stream_gone(key, DisconnectCause::Reset(e.to_string()));
                    return;
                }
            }
        }
        if let Some(Entry::Stream(s)) = self.slab.get_mut(key) {
            if s.closing && s.out.is_empty() && !s.write_shut {
                // Everything is out (`Output::Close`'s procedure): half-close, discard what the
                // peer already sent (closing with unread input would reset the connection and
                // could destroy our last bytes in flight), and close without waiting for the
                // peer's end of stream.
                s.io.shutdown_write();
                s.write_shut = true;
                self.discard_input(key);
                self.kill(key);
                return;
            }
        }
        self.update_interest(key);
    }

    /// Reads and drops what a closing socket has received, up to a bound (a peer that keeps
    /// sending gets its reset).
    fn discard_input(&mut self, key: usize) {
        let mut budget = READ_BUDGET;
        while budget > 0 {
            let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
                return;
            };
            match s.io.read(&mut self.scratch) {
                Ok(0) => return,
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
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
                .reregister(&mut s.io, Token(key), wanted)
            {
                Ok(()) => s.interest = wanted,
                Err(e) => tracing::error!("could not update socket interest: {e}"),
            }
        }
    }

    /// The transport of a stream ended: tell the node (unless it already forgot the
    /// connection) and free the socket. Does not drain.
    fn stream_gone(&mut self, key: usize, cause: DisconnectCause) {
        let Some(Entry::Stream(s)) = self.slab.get(key) else {
            return;
        };
        let (conn, closing) = (s.conn, s.closing);
        self.kill(key);
        if !closing {
            let now = self.now();
            self.input(now, Input::Disconnected { conn, cause });
        }
    }

    /// Deregisters and closes a socket; its slot is freed at the end of the turn.
    fn kill(&mut self, key: usize) {
        let Some(entry) = self.slab.get_mut(key) else {
            return;
        };
        match std::mem::replace(entry, Entry::Dead) {
            Entry::Stream(mut s) => {
                // Deregistering a socket that is about to close cannot usefully fail.
                let _ = self.poll.registry().deregister(&mut s.io);
                if self.by_conn.get(&s.conn) == Some(&key) {
                    self.by_conn.remove(&s.conn);
                }
            }
            Entry::Listener(mut l) => {
                let _ = self.poll.registry().deregister(&mut l.io);
            }
            Entry::Dead => return,
        }
        self.closing.remove(&key);
        self.graveyard.push(key);
    }

    // -----------------------------------------------------------------------------------------
    // sockets: outputs

    fn transmit(&mut self, conn: ConnId, data: Bytes) {
        let Some(&key) = self.by_conn.get(&conn) else {
            tracing::debug!("dropping {} bytes for closed {conn:?}", data.len());
            return;
        };
        if let Some(Entry::Stream(s)) = self.slab.get_mut(key) {
            if s.out.is_empty() {
                self.dirty.push(key);
            }
            s.push(data);
            if s.queued >= FLUSH_EARLY_BYTES || s.out.len() >= FLUSH_EARLY_CHUNKS {
                self.flush(key);
            }
        }
    }

    fn connect(&mut self, conn: ConnId, addr: &Address) {
        if let Some(path) = addr.socket() {
            self.dial(conn, &Dial::Unix(PathBuf::from(path)));
            return;
        }
        if let Some(sa) = addr.socket_addr() {
            self.dial(conn, &Dial::Tcp(sa));
            return;
        }
        // A host name: resolve on a helper thread so the proxy never blocks on DNS.
        let (Some(host), Some(port)) = (addr.host().map(str::to_owned), addr.port()) else {
            let now = self.now();
            let cause = DisconnectCause::InvalidAddress(format!("cannot dial {addr}"));
            self.input(now, Input::Disconnected { conn, cause });
            return;
        };
        self.resolving.insert(conn);
        let handle = self.handle.clone();
        let spawned = std::thread::Builder::new()
            .name(String::from("lmq-resolve"))
            .spawn(move || {
                let result = resolve(&host, port);
                // If the proxy is gone nobody is waiting for the answer.
                let _ = handle.post(move |p| p.resolved(conn, result));
            });
        if let Err(e) = spawned {
            self.resolving.remove(&conn);
            let now = self.now();
            let cause = DisconnectCause::ConnectFailed(format!("cannot resolve: {e}"));
            self.input(now, Input::Disconnected { conn, cause });
        }
    }

    fn resolved(&mut self, conn: ConnId, result: Result<SocketAddr, String>) {
        if !self.resolving.remove(&conn) {
            return; // closed while resolving
        }
        match result {
            Ok(sa) => self.dial(conn, &Dial::Tcp(sa)),
            Err(reason) => {
                let now = self.now();
                let cause = DisconnectCause::InvalidAddress(reason);
                self.input(now, Input::Disconnected { conn, cause });
            }
        }
    }

    fn dial(&mut self, conn: ConnId, dial: &Dial) {
        match dial.connect() {
            Ok(io) => self.insert_stream(Stream::new(conn, io, true)),
            Err(e) => {
                let now = self.now();
                let cause = if e.kind() == io::ErrorKind::InvalidInput {
                    DisconnectCause::InvalidAddress(e.to_string())
                } else {
                    connect_failure(&e)
                };
                self.input(now, Input::Disconnected { conn, cause });
            }
        }
    }

    fn close(&mut self, conn: ConnId, linger: Duration) {
        if self.resolving.remove(&conn) {
            return;
        }
        let Some(key) = self.by_conn.remove(&conn) else {
            return;
        };
        let now = self.now();
        let Some(Entry::Stream(s)) = self.slab.get_mut(key) else {
            return;
        };
        if linger.is_zero() || s.connecting {
            self.kill(key);
            return;
        }
        s.closing = true;
        let deadline = now + Duration::from_micros(duration_micros(linger));
        self.closing.insert(key, deadline);
        // Flush now: it also half-closes at once when nothing is queued.
        self.flush(key);
    }

    fn bind(&mut self, listener: ListenerId, addr: &Address) {
        let (curve, unix) = self.cb.listeners.get(&listener).map_or_else(
            || (false, UnixSocketAccess::default()),
            |l| (l.curve, l.unix),
        );
        match open_listener(addr, unix) {
            Ok((mut io, local, unix_path)) => {
                let entry = self.slab.vacant_entry();
                let key = entry.key();
                if let Err(e) =
                    self.poll
                        .registry()
                        .register(&mut io, Token(key), Interest::READABLE)
                {
                    self.bind_failed(listener, addr, &e.to_string());
                    return;
                }
                entry.insert(Entry::Listener(ListenerSock {
                    id: listener,
                    io,
                    unix_path,
                }));
                let local = local.with_pubkey(curve.then(|| *self.node.pubkey()));
                tracing::info!("listening on {local}");
                self.handle.note_bound(local.clone());
                if let Some(on_bind) = self
                    .cb
                    .listeners
                    .get_mut(&listener)
                    .and_then(|l| l.on_bind.take())
                {
                    run_guarded("on_bind callback", move || on_bind(Ok(local)));
                }
            }
            Err(e) => self.bind_failed(listener, addr, &e.to_string()),
        }
    }

    /// Closes a listening socket (removing a unix socket's file, as its `Drop` does).
    fn unlisten(&mut self, listener: ListenerId) {
        let key = self.slab.iter().find_map(|(key, e)| match e {
            Entry::Listener(l) if l.id == listener => Some(key),
            _ => None,
        });
        if let Some(key) = key {
            self.kill(key);
        }
        self.again.retain(|&k| Some(k) != key);
    }

    fn bind_failed(&mut self, listener: ListenerId, addr: &Address, reason: &str) {
        tracing::error!("OxenMQ failed to listen on {addr}: {reason}");
        if self.startup_error.is_none() {
            self.startup_error = Some(Error::Bind {
                address: addr.to_string(),
                reason: reason.to_owned(),
            });
        }
        let now = self.now();
        self.input(
            now,
            Input::ListenFailed {
                listener,
                reason: reason.to_owned(),
            },
        );
    }
}

/// How a failed connect is reported to the node: a refusal is told apart (the node fails
/// `connect_remote` at once with `ConnectError::Refused`), anything else keeps the OS's text.
fn connect_failure(e: &io::Error) -> DisconnectCause {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        DisconnectCause::Refused
    } else {
        DisconnectCause::ConnectFailed(e.to_string())
    }
}

/// Resolves `host:port`, preferring IPv4 as OxenMQ does with IPv6 off.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("could not resolve {host}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("could not resolve {host}: no addresses"))
}

/// Applies a unix listener's permission bits and owner (OxenMQ's umask, uid and gid options).
fn apply_unix_access(path: &std::path::Path, access: UnixSocketAccess) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(mode) = access.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot set permissions on {}: {e}", path.display()),
            )
        })?;
    }
    if access.uid.is_some() || access.gid.is_some() {
        std::os::unix::fs::chown(path, access.uid, access.gid).map_err(|e| {
            let what = if access.gid.is_some() {
                "group"
            } else {
                "owner"
            };
            io::Error::new(
                e.kind(),
                format!("cannot set {what} on {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// Binds a listener: TCP (`*` meaning every interface) or a unix socket, replacing a stale
/// socket file as libzmq does. Returns the socket, the address actually bound, and the unix
/// path to remove on close.
fn open_listener(
    addr: &Address,
    access: UnixSocketAccess,
) -> io::Result<(ListenerIo, Address, Option<PathBuf>)> {
    if let Some(path) = addr.socket() {
        let path = PathBuf::from(path);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(&path)?;
        }
        let l = mio::net::UnixListener::bind(&path)?;
        if let Err(e) = apply_unix_access(&path, access) {
            // Best effort: a socket file nobody may use must not linger.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        return Ok((
            ListenerIo::Unix(l),
            Address::ipc(path.to_string_lossy().into_owned()),
            Some(path),
        ));
    }
    let port = addr
        .port()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no port"))?;
    let sa = match (addr.socket_addr(), addr.host()) {
        (Some(sa), _) => sa,
        (None, Some("*")) => SocketAddr::from(([0, 0, 0, 0], port)),
        (None, Some(host)) => {
            resolve(host, port).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        }
        (None, None) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "no host")),
    };
    let l = mio::net::TcpListener::bind(sa)?;
    let local = l.local_addr()?;
    Ok((ListenerIo::Tcp(l), Address::from_socket_addr(local), None))
}
