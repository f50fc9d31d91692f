//! Two [`WasmNode`]s joined in memory, for the benchmark and the tests.
//!
//! One loop, compiled twice: natively by `examples/native_bench.rs` and into WebAssembly (the
//! `bench` feature exports it as op 90), so `wasm/js/bench.mjs` can time the very same Rust in
//! both places and report the ratio. A stream's `Transmit` bytes are fed straight into the
//! other node's `received`, the server's handler replies inline, and time stands still (nothing
//! in a benchmark may time out).
//!
//! The server has the categories `bench` (access none; request command `bench.echo`, which
//! replies with its data) and `secure` (access admin; request command `secure.echo`), and
//! grants every client `basic`, so `secure.echo` is `FORBIDDEN`.

use std::collections::BTreeMap;

use bytes::Bytes;
use lokimq_core::node::{ConnectionId, RequestError};
use lokimq_core::{AuthLevel, Duration, Instant, Keypair};
use rand_core::{CryptoRng, RngCore};

use crate::node::{Error, ErrorCode, HostOutput, StreamEnd, WasmNode};

/// The address the server listens on (nothing is bound: the pair is in memory).
pub const ADDRESS: &str = "tcp://127.0.0.1:4567";

/// Loop iterations allowed per pump before the pair is declared stuck.
const PUMP_LIMIT: usize = 100_000;

fn stuck(what: &str) -> Error {
    Error::new(ErrorCode::Unexpected, format!("bench pair: {what}"))
}

/// A server and a client node, and the in-memory links between their streams.
pub struct Pair<R> {
    /// The listening node.
    pub server: WasmNode<R>,
    /// The connecting node.
    pub client: WasmNode<R>,
    now: Instant,
    listener: u16,
    /// Client stream → server stream, and back.
    c2s: BTreeMap<u64, u64>,
    s2c: BTreeMap<u64, u64>,
    /// The latest outcomes the client saw.
    connected: Option<Result<ConnectionId, String>>,
    replies: BTreeMap<u64, Result<Vec<Bytes>, RequestError>>,
    /// Requests the server answers only when told to ([`Pair::defer_replies`]).
    deferred: Vec<(u64, Vec<Bytes>)>,
    defer: bool,
}

impl<R: RngCore + CryptoRng + Clone> Pair<R> {
    /// Builds, starts and listens; no connection yet.
    pub fn new(rng: &R) -> Result<Self, Error> {
        let mut server = WasmNode::new(Keypair::from_secret_bytes([1; 32]), rng.clone());
        server.add_category("bench", AuthLevel::None)?;
        server.add_command("bench", "echo", true)?;
        server.add_category("secure", AuthLevel::Admin)?;
        server.add_command("secure", "echo", true)?;
        let mut client = WasmNode::new(Keypair::from_secret_bytes([2; 32]), rng.clone());
        let now = Instant::from_secs(1);
        server.start(now)?;
        client.start(now)?;
        let listener = server.listen(now, ADDRESS, true)?;
        let mut pair = Self {
            server,
            client,
            now,
            listener,
            c2s: BTreeMap::new(),
            s2c: BTreeMap::new(),
            connected: None,
            replies: BTreeMap::new(),
            deferred: Vec::new(),
            defer: false,
        };
        pair.pump()?;
        Ok(pair)
    }

    /// The current (frozen) time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves time forward.
    pub fn advance(&mut self, d: Duration) -> Result<(), Error> {
        self.now = self.now.saturating_add(d);
        self.client.timeout(self.now)?;
        self.server.timeout(self.now)?;
        self.pump()
    }

    /// The server's address with its key, for `connect`.
    #[must_use]
    pub fn server_address(&self) -> String {
        format!("curve://127.0.0.1:4567/{}", self.server.pubkey().to_hex())
    }

    /// The client connects to the server over CURVE; returns once `HELLO` came back.
    pub fn connect(&mut self) -> Result<ConnectionId, Error> {
        let address = self.server_address();
        self.client.connect(self.now, &address, None, None)?;
        self.pump()?;
        match self.connected.take() {
            Some(Ok(conn)) => Ok(conn),
            Some(Err(why)) => Err(stuck(&format!("connect failed: {why}"))),
            None => Err(stuck("no HELLO")),
        }
    }

    /// A whole CURVE handshake: connect, then disconnect at once.
    pub fn handshake(&mut self) -> Result<(), Error> {
        let conn = self.connect()?;
        self.client.disconnect(self.now, &conn, Duration::ZERO)?;
        self.pump()
    }

    /// Sends a request and pumps until its outcome is in.
    pub fn request(
        &mut self,
        conn: &ConnectionId,
        command: &str,
        parts: Vec<Bytes>,
    ) -> Result<Result<Vec<Bytes>, RequestError>, Error> {
        let id = self.client.request(self.now, conn, command, parts, None)?;
        self.pump()?;
        self.take_reply(id)
            .ok_or_else(|| stuck(&format!("no outcome for request {id}")))
    }

    /// The outcome of request `id`, if it came.
    pub fn take_reply(&mut self, id: u64) -> Option<Result<Vec<Bytes>, RequestError>> {
        self.replies.remove(&id)
    }

    /// From now on the server's handler does not reply; [`Pair::answer_deferred`] does.
    pub fn defer_replies(&mut self, defer: bool) {
        self.defer = defer;
    }

    /// Answers every deferred request (after its job has finished, as a JS handler that returns
    /// a promise does).
    pub fn answer_deferred(&mut self) -> Result<(), Error> {
        for (handle, data) in std::mem::take(&mut self.deferred) {
            self.server.reply(self.now, handle, data)?;
        }
        self.pump()
    }

    /// Drains both nodes until neither has anything to do.
    pub fn pump(&mut self) -> Result<(), Error> {
        for _ in 0..PUMP_LIMIT {
            let mut busy = false;
            while let Some(out) = self.client.poll() {
                busy = true;
                self.client_output(out)?;
            }
            while let Some(out) = self.server.poll() {
                busy = true;
                self.server_output(out)?;
            }
            if !busy {
                return Ok(());
            }
        }
        Err(stuck("never went idle"))
    }

    fn client_output(&mut self, out: HostOutput) -> Result<(), Error> {
        let now = self.now;
        match out {
            HostOutput::Connect { stream, .. } => {
                let s = self.server.accept(now, self.listener, "127.0.0.1")?;
                self.c2s.insert(stream, s);
                self.s2c.insert(s, stream);
                self.client.connected(now, stream)?;
            }
            HostOutput::Transmit { stream, data } => {
                if let Some(&s) = self.c2s.get(&stream) {
                    self.server.received(now, s, &data)?;
                }
            }
            HostOutput::Close { stream, .. } => {
                if let Some(s) = self.c2s.remove(&stream) {
                    self.s2c.remove(&s);
                    self.server.closed(now, s, StreamEnd::Eof)?;
                }
            }
            HostOutput::Reply { request, result } => {
                self.replies.insert(request, result);
            }
            HostOutput::Connected { conn } => self.connected = Some(Ok(conn)),
            HostOutput::ConnectFailed { reason, .. } => self.connected = Some(Err(reason)),
            HostOutput::Command { worker, .. } => self.client.job_finished(now, worker)?,
            other => return Err(stuck(&format!("client: unexpected {other:?}"))),
        }
        Ok(())
    }

    fn server_output(&mut self, out: HostOutput) -> Result<(), Error> {
        let now = self.now;
        match out {
            HostOutput::Listen { .. } | HostOutput::Stopped => {}
            HostOutput::Transmit { stream, data } => {
                if let Some(&c) = self.s2c.get(&stream) {
                    self.client.received(now, c, &data)?;
                }
            }
            HostOutput::Close { stream, .. } => {
                if let Some(c) = self.s2c.remove(&stream) {
                    self.c2s.remove(&c);
                    self.client.closed(now, c, StreamEnd::Eof)?;
                }
            }
            HostOutput::Auth { stream, .. } => {
                self.server.auth_decision(now, stream, AuthLevel::Basic)?;
            }
            HostOutput::Command {
                worker,
                reply,
                message,
                ..
            } => {
                if let Some(handle) = reply {
                    if self.defer {
                        self.deferred.push((handle, message.data));
                    } else {
                        self.server.reply(now, handle, message.data)?;
                    }
                }
                self.server.job_finished(now, worker)?;
            }
            other => return Err(stuck(&format!("server: unexpected {other:?}"))),
        }
        Ok(())
    }
}

/// Runs `count` iterations of benchmark `kind` (0: CURVE handshakes, each a new connection
/// with `HI`/`HELLO`, then a disconnect; 1: sequential `bench.echo` round trips of `payload`
/// bytes over one CURVE connection) on a fresh pair. Returns `count`.
pub fn run<R: RngCore + CryptoRng + Clone>(
    kind: u8,
    count: u32,
    payload: usize,
    rng: R,
) -> Result<u32, Error> {
    let mut pair = Pair::new(&rng)?;
    match kind {
        0 => {
            for _ in 0..count {
                pair.handshake()?;
            }
        }
        1 => {
            let conn = pair.connect()?;
            let data = Bytes::from(vec![0x5a; payload]);
            for _ in 0..count {
                let reply = pair
                    .request(&conn, "bench.echo", vec![data.clone()])?
                    .map_err(|e| stuck(&format!("echo failed: {e}")))?;
                if reply.len() != 1 || reply[0] != data {
                    return Err(stuck("echo replied with other data"));
                }
            }
        }
        other => {
            return Err(Error::new(
                ErrorCode::BadArgument,
                format!("no benchmark {other} (0 handshakes, 1 round trips)"),
            ));
        }
    }
    Ok(count)
}
