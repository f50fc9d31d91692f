//! Many idle CURVE connections between two [`Node`]s, in memory, on a virtual clock.
//!
//! A server node listens for CURVE; a client node opens `n` `connect_remote` connections to it
//! (ephemeral routing ids, as N connections from one key to one listener need). Bytes one node
//! transmits are fed to the other at once (zero latency); jobs run inline. Connections are
//! opened at instants spread evenly over one heartbeat interval, so their heartbeat timers fall
//! due one after another (as on a real server) instead of all in the same instant.
//!
//! Both nodes run OxenMQ's defaults ([`Config::new`]): a ZMTP PING every 15 s on every
//! connection from each end, a 30 s heartbeat timeout. Once every connection is up, nothing
//! happens but heartbeats: [`IdleMesh::idle`] advances the virtual clock, firing every timeout
//! the way a driver does (drain, `poll_timeout`, `handle(Timeout)` when due), and the caller
//! measures what that costs.

use std::collections::VecDeque;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::{ConnId, ListenerId};
use lokimq_core::node::{Config, ConnectOptions, Event, Input, Job, Node, Output};
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;

use crate::node::registry;
use crate::{HarnessError, client_keypair, core_err, rng, server_keypair};

const PORT: u16 = 4568;

/// Which node of the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The listening node (`n` incoming connections).
    Server = 0,
    /// The connecting node (`n` outgoing links).
    Client = 1,
}

impl Side {
    fn peer(self) -> Self {
        match self {
            Self::Server => Self::Client,
            Self::Client => Self::Server,
        }
    }
}

/// What [`IdleMesh::idle`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IdleStats {
    /// `handle(now, Input::Timeout)` calls (both nodes).
    pub timeouts: u64,
    /// Bytes carried between the nodes.
    pub bytes: u64,
    /// `poll_timeout` calls (both nodes).
    pub polls: u64,
}

/// A server node and a client node joined by `n` idle CURVE connections.
pub struct IdleMesh {
    server: Node<ChaCha20Rng>,
    client: Node<ChaCha20Rng>,
    listener: ListenerId,
    addr: Address,
    /// Each node's transport connections (by slot index) → the other node's end of it.
    pipes: [Vec<Option<(ConnId, ConnId)>>; 2],
    /// Bytes in flight, in order.
    wire: VecDeque<(Side, ConnId, Bytes)>,
    now: Instant,
    connected: usize,
    closed: usize,
    stats: IdleStats,
}

impl IdleMesh {
    /// The node configuration: OxenMQ's defaults (heartbeats on), one general worker.
    #[must_use]
    pub fn config() -> Config {
        Config::new(1)
    }

    /// Builds the two nodes and opens `n` connections, one every `15 s / n` of virtual time,
    /// each up (HELLO received) before the next is opened.
    pub fn new(n: usize) -> Result<Self, HarnessError> {
        let now = Instant::from_secs(1);
        let server_kp = server_keypair();
        let server_pk = *server_kp.public();
        let mut config = Self::config();
        config.max_incoming_connections = n.max(1);
        let mut server =
            Node::new(config, registry()?, server_kp, rng(5), now).map_err(core_err)?;
        let client = Node::new(Self::config(), registry()?, client_keypair(), rng(6), now)
            .map_err(core_err)?;
        let listener = server
            .listen_curve(now, Address::tcp("127.0.0.1", PORT))
            .map_err(core_err)?;
        let mut mesh = Self {
            server,
            client,
            listener,
            addr: Address::tcp_curve("127.0.0.1", PORT, server_pk),
            pipes: [Vec::new(), Vec::new()],
            wire: VecDeque::new(),
            now,
            connected: 0,
            closed: 0,
            stats: IdleStats::default(),
        };
        mesh.settle()?;
        let interval = Self::config().heartbeat_interval;
        let step = interval / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        for i in 0..n {
            let at = now + step * u32::try_from(i).unwrap_or(u32::MAX);
            mesh.advance_to(at)?;
            let opts = ConnectOptions::default().ephemeral_routing_id(true);
            let t = mesh.now;
            mesh.client.connect_remote(t, mesh.addr.clone(), &opts);
            mesh.settle()?;
            if mesh.connected != i + 1 {
                return Err(HarnessError::Unexpected(format!(
                    "connection {i} did not come up"
                )));
            }
        }
        mesh.stats = IdleStats::default();
        Ok(mesh)
    }

    /// The current virtual time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Connections up (HELLO received by the client).
    #[must_use]
    pub fn connected(&self) -> usize {
        self.connected
    }

    /// The node on `side`.
    #[must_use]
    pub fn node(&self, side: Side) -> &Node<ChaCha20Rng> {
        match side {
            Side::Server => &self.server,
            Side::Client => &self.client,
        }
    }

    fn node_mut(&mut self, side: Side) -> &mut Node<ChaCha20Rng> {
        match side {
            Side::Server => &mut self.server,
            Side::Client => &mut self.client,
        }
    }

    /// Lets `d` of virtual time pass with nothing to do but timers, and returns what happened.
    /// Fails if a connection closes meanwhile (an idle connection must survive its heartbeats).
    pub fn idle(&mut self, d: Duration) -> Result<IdleStats, HarnessError> {
        let before = self.stats;
        let until = self.now + d;
        self.advance_to(until)?;
        if self.closed > 0 {
            return Err(HarnessError::Unexpected(format!(
                "{} connections closed while idle",
                self.closed
            )));
        }
        Ok(IdleStats {
            timeouts: self.stats.timeouts - before.timeouts,
            bytes: self.stats.bytes - before.bytes,
            polls: self.stats.polls - before.polls,
        })
    }

    /// The other end of `side`'s connection `conn`, if it is joined to one.
    fn peer_of(&self, side: Side, conn: ConnId) -> Option<ConnId> {
        match self.pipes[side as usize].get(conn.index() as usize) {
            Some(&Some((c, peer))) if c == conn => Some(peer),
            _ => None,
        }
    }

    fn set_pipe(&mut self, side: Side, conn: ConnId, peer: Option<ConnId>) {
        let slots = &mut self.pipes[side as usize];
        let i = conn.index() as usize;
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        slots[i] = peer.map(|p| (conn, p));
    }

    fn poll_timeout(&mut self, side: Side) -> Option<Instant> {
        self.stats.polls += 1;
        self.node(side).poll_timeout()
    }

    /// Fires every timeout up to `until`, then sets the clock to `until`.
    fn advance_to(&mut self, until: Instant) -> Result<(), HarnessError> {
        loop {
            self.settle()?;
            let next = match (
                self.poll_timeout(Side::Server),
                self.poll_timeout(Side::Client),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(t) = next.filter(|&t| t <= until) else {
                self.now = self.now.max(until);
                return Ok(());
            };
            self.now = self.now.max(t);
            for side in [Side::Server, Side::Client] {
                if self
                    .node(side)
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    let now = self.now;
                    self.stats.timeouts += 1;
                    self.node_mut(side)
                        .handle(now, Input::Timeout)
                        .map_err(core_err)?;
                }
            }
        }
    }

    /// Drains both nodes and carries bytes until nothing moves.
    fn settle(&mut self) -> Result<(), HarnessError> {
        loop {
            let mut moved = self.drain(Side::Server)?;
            moved |= self.drain(Side::Client)?;
            if let Some((side, conn, data)) = self.wire.pop_front() {
                let now = self.now;
                self.stats.bytes += data.len() as u64;
                self.node_mut(side)
                    .handle(now, Input::Received { conn, data })
                    .map_err(core_err)?;
                continue;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn drain(&mut self, side: Side) -> Result<bool, HarnessError> {
        let mut moved = false;
        while let Some(out) = self.node_mut(side).poll_output() {
            moved = true;
            self.act(side, out)?;
        }
        Ok(moved)
    }

    fn act(&mut self, side: Side, out: Output) -> Result<(), HarnessError> {
        let now = self.now;
        match out {
            Output::Transmit { conn, data } => {
                if let Some(peer_conn) = self.peer_of(side, conn) {
                    self.wire.push_back((side.peer(), peer_conn, data));
                }
            }
            Output::Connect { conn, .. } => {
                let accepted = self
                    .server
                    .accept(now, self.listener, "127.0.0.1")
                    .map_err(core_err)?;
                self.set_pipe(Side::Client, conn, Some(accepted));
                self.set_pipe(Side::Server, accepted, Some(conn));
                self.client
                    .handle(now, Input::Connected { conn })
                    .map_err(core_err)?;
            }
            Output::Close { conn, .. } => {
                self.closed += 1;
                if let Some(peer_conn) = self.peer_of(side, conn) {
                    self.set_pipe(side, conn, None);
                    self.set_pipe(side.peer(), peer_conn, None);
                }
            }
            Output::RunJob { worker, job } => {
                match job {
                    Job::Connected { .. } => self.connected += 1,
                    Job::ConnectFailed { conn, .. } => {
                        return Err(HarnessError::Unexpected(format!("{conn} failed")));
                    }
                    _ => {}
                }
                self.node_mut(side)
                    .handle(now, Input::JobFinished { worker })
                    .map_err(core_err)?;
            }
            Output::Event(Event::AuthRequest { conn, .. }) => {
                self.node_mut(side)
                    .handle(
                        now,
                        Input::AuthDecision {
                            conn,
                            level: AuthLevel::None,
                        },
                    )
                    .map_err(core_err)?;
            }
            // Listen, worker stops and other events: nothing to do in memory.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_exchange_only_heartbeats_and_stay_up() {
        let mut mesh = IdleMesh::new(20).unwrap();
        assert_eq!(mesh.connected(), 20);
        assert_eq!(mesh.node(Side::Server).stats().connections, 20);
        assert_eq!(mesh.node(Side::Client).stats().links, 20);
        // Two heartbeat intervals: every connection PINGs (and PONGs) from each end twice.
        let stats = mesh.idle(Duration::from_secs(30)).unwrap();
        assert!(stats.timeouts >= 40, "{stats:?}");
        assert!(stats.bytes > 0, "{stats:?}");
        assert_eq!(mesh.node(Side::Server).stats().connections, 20);
    }
}
