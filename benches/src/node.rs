//! Two [`Node`]s joined in memory: `Output::Transmit` bytes of one are fed straight into the
//! other's `Input::Received`, and jobs run inline (a command handler replies at once, then the
//! harness reports `JobFinished`).
//!
//! The server node listens and registers the category `bench` with a request command
//! `bench.echo` (its handler replies with the request's data) and a plain command `bench.ping`
//! (its handler does nothing). The client node connects with `connect_remote`.

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::crypto::CryptoProvider;
use lokimq_core::ids::ConnId;
use lokimq_core::node::{
    Config, ConnectOptions, ConnectionId, Event, Input, Job, Node, Output, RequestOptions,
    SendOptions,
};
use lokimq_core::registry::{CategoryOptions, QueueLimit};
use lokimq_core::registry::{Registry, RegistryBuilder};
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;

use crate::session::Mechanism;
use crate::{HarnessError, RUST, client_keypair, core_err, rng, server_keypair};

/// The request command the round-trip benchmark calls.
pub const ECHO: &str = "bench.echo";
/// The plain command the dispatch benchmark feeds.
pub const PING: &str = "bench.ping";

const PORT: u16 = 4567;

/// Length of the reply tag OxenMQ puts after a request's command name.
pub const TAG_LEN: usize = 15;

/// The plaintext of every CURVE box one [`NodePair::round_trip`] with a `payload_len`-byte
/// payload seals and opens: the request `[bench.echo, tag, payload]` and the reply
/// `[REPLY, tag, payload]`, one MESSAGE per frame, each boxing a flags byte plus the frame.
/// This is the raw-crypto floor of a request→reply.
#[must_use]
pub fn round_trip_boxes(payload_len: usize) -> [usize; 6] {
    [
        1 + ECHO.len(),
        1 + TAG_LEN,
        1 + payload_len,
        1 + b"REPLY".len(),
        1 + TAG_LEN,
        1 + payload_len,
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// The registry both nodes use.
pub fn registry() -> Result<Registry, HarnessError> {
    let mut b = RegistryBuilder::new();
    // No reserved threads and an unlimited queue: nothing is ever dropped by the benchmark.
    b.add_category(
        "bench",
        CategoryOptions::new(Access::default()).max_queue(QueueLimit::Unlimited),
    )
    .map_err(core_err)?;
    b.add_request_command("bench", "echo").map_err(core_err)?;
    b.add_command("bench", "ping").map_err(core_err)?;
    Ok(b.build())
}

fn node_config(provider: &'static dyn CryptoProvider) -> Config {
    let mut c = Config::new(2);
    c.crypto_provider = provider;
    // Time stands still in the benchmarks; no timer may fire anyway, but heartbeats would add
    // PINGs to the byte streams the dispatch benchmark replays.
    c.heartbeat_interval = Duration::ZERO;
    c
}

/// What the harness has seen since it was built.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Command jobs the server ran.
    pub commands: u64,
    /// Successful reply jobs the client ran.
    pub replies: u64,
    /// Payload bytes in those replies.
    pub reply_bytes: u64,
}

/// A connected client/server node pair.
pub struct NodePair {
    server: Node<ChaCha20Rng>,
    client: Node<ChaCha20Rng>,
    /// The server's id of the transport connection.
    s_conn: ConnId,
    /// The client's id of the transport connection.
    c_conn: ConnId,
    /// How the client names the server.
    to_server: ConnectionId,
    now: Instant,
    connected: bool,
    counters: Counters,
    request_opts: RequestOptions,
}

impl NodePair {
    /// Builds both nodes, listens, connects and completes the ZMTP handshake and OxenMQ's
    /// `HI`/`HELLO`, so the connection is ready for traffic. CURVE runs on [`RUST`].
    pub fn new(mechanism: Mechanism) -> Result<Self, HarnessError> {
        Self::with_provider(mechanism, RUST)
    }

    /// [`new`](Self::new) with both nodes' CURVE on `provider`.
    pub fn with_provider(
        mechanism: Mechanism,
        provider: &'static dyn CryptoProvider,
    ) -> Result<Self, HarnessError> {
        let now = Instant::from_secs(1);
        let server_kp = server_keypair();
        let server_pk = *server_kp.public();
        let mut server = Node::new(node_config(provider), registry()?, server_kp, rng(3), now)
            .map_err(core_err)?;
        let mut client = Node::new(
            node_config(provider),
            registry()?,
            client_keypair(),
            rng(4),
            now,
        )
        .map_err(core_err)?;

        let listen_addr = Address::tcp("127.0.0.1", PORT);
        let (listener, connect_addr) = match mechanism {
            Mechanism::Null => (
                server
                    .listen_plain(now, listen_addr.clone())
                    .map_err(core_err)?,
                listen_addr.clone(),
            ),
            Mechanism::Curve => (
                server
                    .listen_curve(now, listen_addr.clone())
                    .map_err(core_err)?,
                Address::tcp_curve("127.0.0.1", PORT, server_pk),
            ),
        };
        while let Some(out) = server.poll_output() {
            if !matches!(out, Output::Listen { .. }) {
                return Err(HarnessError::Unexpected(format!("server: {out:?}")));
            }
        }
        let to_server = client.connect_remote(now, connect_addr, &ConnectOptions::default());
        let mut c_conn = None;
        while let Some(out) = client.poll_output() {
            match out {
                Output::Connect { conn, .. } => c_conn = Some(conn),
                other => return Err(HarnessError::Unexpected(format!("client: {other:?}"))),
            }
        }
        let c_conn =
            c_conn.ok_or_else(|| HarnessError::Unexpected("client did not dial".into()))?;
        let s_conn = server
            .accept(now, listener, "127.0.0.1")
            .map_err(core_err)?;
        client
            .handle(now, Input::Connected { conn: c_conn })
            .expect("input accepted");

        let mut pair = Self {
            server,
            client,
            s_conn,
            c_conn,
            to_server,
            now,
            connected: false,
            counters: Counters::default(),
            request_opts: RequestOptions::default(),
        };
        pair.settle()?;
        if !pair.connected {
            return Err(HarnessError::Unexpected(
                "the client never got HELLO".into(),
            ));
        }
        Ok(pair)
    }

    /// What the harness has counted so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn node(&mut self, side: Side) -> &mut Node<ChaCha20Rng> {
        match side {
            Side::Server => &mut self.server,
            Side::Client => &mut self.client,
        }
    }

    /// Drains both nodes until neither has an output left.
    fn settle(&mut self) -> Result<(), HarnessError> {
        loop {
            let server_moved = self.drain(Side::Server)?;
            let client_moved = self.drain(Side::Client)?;
            if !server_moved && !client_moved {
                return Ok(());
            }
        }
    }

    fn drain(&mut self, side: Side) -> Result<bool, HarnessError> {
        let mut moved = false;
        while let Some(out) = self.node(side).poll_output() {
            moved = true;
            self.act(side, out)?;
        }
        Ok(moved)
    }

    fn act(&mut self, side: Side, out: Output) -> Result<(), HarnessError> {
        let now = self.now;
        match out {
            Output::Transmit { conn, data } => {
                let (peer, peer_conn) = match side {
                    Side::Server if conn == self.s_conn => (Side::Client, self.c_conn),
                    Side::Client if conn == self.c_conn => (Side::Server, self.s_conn),
                    _ => return Err(HarnessError::Unexpected(format!("bytes for {conn:?}"))),
                };
                self.node(peer)
                    .handle(
                        now,
                        Input::Received {
                            conn: peer_conn,
                            data,
                        },
                    )
                    .expect("input accepted");
            }
            Output::RunJob { worker, job } => {
                self.run_job(side, job)?;
                self.node(side)
                    .handle(now, Input::JobFinished { worker })
                    .expect("input accepted");
            }
            Output::Event(Event::AuthRequest { conn, .. }) => {
                self.node(side)
                    .handle(
                        now,
                        Input::AuthDecision {
                            conn,
                            level: AuthLevel::None,
                        },
                    )
                    .expect("input accepted");
            }
            Output::Event(Event::Dropped { category, .. }) => {
                return Err(HarnessError::Unexpected(format!(
                    "command of {category:?} dropped"
                )));
            }
            Output::Close { conn, .. } => {
                return Err(HarnessError::Unexpected(format!(
                    "{side:?} closed {conn:?}"
                )));
            }
            // Worker stops, logs and the like: nothing to do in memory.
            _ => {}
        }
        Ok(())
    }

    fn run_job(&mut self, side: Side, job: Job) -> Result<(), HarnessError> {
        match job {
            Job::Command { message, .. } => {
                self.counters.commands += 1;
                if message.reply_tag().is_some() {
                    let now = self.now;
                    self.node(side)
                        .reply(now, &message.reply_to, message.data)
                        .map_err(core_err)?;
                }
            }
            Job::Reply { result, .. } => {
                let parts = result.map_err(core_err)?;
                self.counters.replies += 1;
                self.counters.reply_bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
            }
            Job::Connected { .. } => self.connected = true,
            Job::ConnectFailed { error, .. } => return Err(core_err(error)),
            _ => {}
        }
        Ok(())
    }

    /// One request→reply: the client requests `bench.echo` with `data`, the server's handler
    /// replies with the same data, the client runs the reply job.
    pub fn round_trip(&mut self, data: Vec<Bytes>) -> Result<(), HarnessError> {
        let before = self.counters.replies;
        let now = self.now;
        self.client
            .request(now, &self.to_server, ECHO, data, &self.request_opts)
            .map_err(core_err)?;
        self.settle()?;
        if self.counters.replies != before + 1 {
            return Err(HarnessError::Unexpected("no reply arrived".into()));
        }
        Ok(())
    }

    /// The exact bytes the client puts on the wire to send `[command, data…]` (taken from its
    /// outputs instead of being delivered). Only meaningful to replay under NULL: CURVE nonces
    /// make every MESSAGE single-use.
    pub fn capture_send(
        &mut self,
        command: &'static str,
        data: Vec<Bytes>,
    ) -> Result<Bytes, HarnessError> {
        let now = self.now;
        self.client
            .send(now, &self.to_server, command, data, &SendOptions::default())
            .map_err(core_err)?;
        let mut wire = Vec::new();
        while let Some(out) = self.client.poll_output() {
            match out {
                Output::Transmit { conn, data } if conn == self.c_conn => {
                    wire.extend_from_slice(&data);
                }
                other => return Err(HarnessError::Unexpected(format!("client: {other:?}"))),
            }
        }
        Ok(Bytes::from(wire))
    }

    /// Feeds `wire` (one complete command message, from [`capture_send`](Self::capture_send))
    /// to the server as received bytes and drains what it asks: the one `RunJob`, answered at
    /// once with `JobFinished`. Fails unless exactly one command job ran and nothing else came
    /// out.
    pub fn feed_command(&mut self, wire: &Bytes) -> Result<(), HarnessError> {
        let now = self.now;
        self.server
            .handle(
                now,
                Input::Received {
                    conn: self.s_conn,
                    data: wire.clone(),
                },
            )
            .expect("input accepted");
        let mut ran = 0;
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::RunJob {
                    worker,
                    job: Job::Command { message, .. },
                } => {
                    ran += 1;
                    drop(message);
                    self.server
                        .handle(now, Input::JobFinished { worker })
                        .expect("input accepted");
                }
                other => return Err(HarnessError::Unexpected(format!("server: {other:?}"))),
            }
        }
        if ran != 1 {
            return Err(HarnessError::Unexpected(format!("{ran} jobs ran")));
        }
        self.counters.commands += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FAST, payload};

    #[test]
    fn request_reply_round_trips_over_both_mechanisms() {
        for (mechanism, provider) in [
            (Mechanism::Null, RUST),
            (Mechanism::Curve, RUST),
            (Mechanism::Curve, FAST),
        ] {
            let mut p = NodePair::with_provider(mechanism, provider).unwrap();
            for i in 0..10u64 {
                p.round_trip(vec![Bytes::from(payload(100))]).unwrap();
                assert_eq!(p.counters().replies, i + 1);
            }
            assert_eq!(p.counters().commands, 10);
            assert_eq!(p.counters().reply_bytes, 1000);
        }
    }

    #[test]
    fn the_crypto_floor_counts_every_box_of_a_request() {
        let mut p = NodePair::new(Mechanism::Curve).unwrap();
        // `send` of [echo, 15-byte tag, payload] has exactly a request's frames.
        let wire = p
            .capture_send(
                ECHO,
                vec![Bytes::from(vec![0; TAG_LEN]), Bytes::from(payload(100))],
            )
            .unwrap();
        // Each box is one MESSAGE: 2-byte frame header, 32 bytes of MESSAGE header and tag,
        // then the box's plaintext (flags + frame).
        let request: usize = round_trip_boxes(100)[..3].iter().map(|b| 2 + 32 + b).sum();
        assert_eq!(wire.len(), request);
    }

    #[test]
    fn a_captured_plain_command_can_be_replayed_into_the_server() {
        let mut p = NodePair::new(Mechanism::Null).unwrap();
        let wire = p
            .capture_send(PING, vec![Bytes::from(payload(100))])
            .unwrap();
        // Two frames in the clear: the command name, then the data.
        assert_eq!(wire.len(), 2 + PING.len() + 2 + 100);
        for _ in 0..5 {
            p.feed_command(&wire).unwrap();
        }
        assert_eq!(p.counters().commands, 5);
        // A message the server answers (here NO_REPLY_TAG) fails the harness instead of being
        // timed as a dispatch.
        let echo = p.capture_send(ECHO, vec![]).unwrap();
        assert!(p.feed_command(&echo).is_err());
    }
}
