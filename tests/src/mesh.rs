//! A ready-made network of nodes for the determinism, robustness and property tests: every node
//! listens plain and CURVE, the first few are service nodes (in every active set, in every
//! address book), and every node answers `t.echo` with `[its name, data…]`, so a reply proves
//! which node produced it.
//!
//! Requests are made through [`Mesh`] so that their expected outcome is known: the echo, or
//! `FORBIDDEN_SN` for `sn.echo` from a node that is not a service node. Under faults the only
//! other acceptable outcome is `TIMEOUT` (or a refusal at send time); [`Mesh::check_outcomes`]
//! checks that every request has exactly one outcome and that it is one of those.

use lokimq_core::registry::{CategoryOptions, QueueLimit};
use std::collections::BTreeMap;

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::auth::Access;
use lokimq_core::keys::Keypair;
use lokimq_core::node::{
    ConnectOptions, ConnectionId, RequestError, RequestId, RequestOptions, SendOptions,
};
use lokimq_core::time::Duration;
use rand_core::RngCore;

use crate::fixtures::{conformance_builder, echo, quiet_config};
use crate::sim::{Dur, End, JobTimes, NetConfig, NodeSpec, PartitionMode, Sim};

/// How to build a mesh.
#[derive(Debug, Clone)]
pub struct MeshSpec {
    /// Number of nodes.
    pub nodes: usize,
    /// The first `service_nodes` nodes are service nodes.
    pub service_nodes: usize,
    /// General workers per node.
    pub workers: u16,
    /// How long every command takes.
    pub command_time: Dur,
    /// Network settings.
    pub net: NetConfig,
    /// Request timeout.
    pub request_timeout: Duration,
    /// ZMTP heartbeat interval and timeout (`None`: off). Without heartbeats a half-open
    /// connection is never noticed by the side that did not see the reset.
    pub heartbeat: Option<(Duration, Duration)>,
}

impl Default for MeshSpec {
    fn default() -> Self {
        Self {
            nodes: 10,
            service_nodes: 5,
            workers: 2,
            command_time: Dur::ZERO,
            net: NetConfig::default(),
            request_timeout: Duration::from_secs(15),
            heartbeat: None,
        }
    }
}

/// What a request should produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `Ok` with these parts.
    Reply(Vec<Bytes>),
    /// This error.
    Error(RequestError),
    /// Either (the receiver's active service-node set changed while the test ran).
    ReplyOrError(Vec<Bytes>, RequestError),
}

/// A network of nodes (see the module docs).
pub struct Mesh {
    /// The simulation.
    pub sim: Sim,
    /// Each node's plain address.
    pub plain: Vec<Address>,
    /// Each node's CURVE address for `connect_remote`.
    pub curve: Vec<Address>,
    /// Each node's CURVE address for service-node traffic (in the address books). A separate
    /// listener: two connections from one node to one listener share the routing id
    /// `L` + pubkey, and the ROUTER hands the route back and forth between them forever (as
    /// libzmq does for OxenMQ; see `sim_core_gaps.rs`).
    pub sn_curve: Vec<Address>,
    /// Whether each node is a service node.
    pub is_sn: Vec<bool>,
    remotes: BTreeMap<(usize, usize, bool), ConnectionId>,
    expected: BTreeMap<(usize, RequestId), Expect>,
    refused_at_send: usize,
    next_id: u64,
    request_timeout: Duration,
    /// Set when active service-node sets change during the run: `sn.echo` may then be answered
    /// either way.
    pub sn_churn: bool,
}

/// The registry every mesh node has: the conformance categories plus `t` (public, unlimited
/// queue so nothing is dropped): request `echo` and command `note`.
fn registry() -> lokimq_core::registry::Registry {
    let mut b = conformance_builder();
    b.add_category(
        "t",
        CategoryOptions::new(Access::default()).max_queue(QueueLimit::Unlimited),
    )
    .expect("valid category");
    b.add_request_command("t", "echo").expect("new command");
    b.add_command("t", "note").expect("new command");
    b.build()
}

impl Mesh {
    /// Builds the mesh and lets it settle.
    #[must_use]
    pub fn new(seed: u64, spec: &MeshSpec) -> Self {
        let mut sim = Sim::with_net(seed, spec.net.clone());
        let mut plain = Vec::new();
        let mut curve = Vec::new();
        let mut sn_curve = Vec::new();
        let mut is_sn = Vec::new();
        for i in 0..spec.nodes {
            let sn = i < spec.service_nodes;
            let mut config = quiet_config(spec.workers);
            config.service_node = sn;
            config.request_timeout = spec.request_timeout;
            if let Some((interval, timeout)) = spec.heartbeat {
                config.heartbeat_interval = interval;
                config.heartbeat_timeout = timeout;
            }
            let name = Bytes::from(format!("n{i}"));
            let mut secret = [0u8; 32];
            sim.rng().fill_bytes(&mut secret);
            let node = NodeSpec::new(config, registry())
                .keypair(Keypair::from_secret_bytes(secret))
                .handler("t.echo", move |ctx, m| {
                    let mut parts = vec![name.clone()];
                    parts.extend(m.data.iter().cloned());
                    ctx.reply(m, parts);
                })
                .handler("sn.echo", echo)
                .job_times(JobTimes {
                    command: spec.command_time,
                    ..JobTimes::default()
                });
            let n = sim.add_node(node);
            let (_, p) = sim.listen_plain(n);
            let (_, c) = sim.listen_curve(n);
            let (_, q) = sim.listen_curve(n);
            plain.push(p);
            curve.push(c);
            sn_curve.push(q);
            is_sn.push(sn);
        }
        let sns: Vec<usize> = (0..spec.service_nodes).collect();
        sim.set_active_sns_everywhere(&sns);
        for n in 0..spec.nodes {
            for &s in &sns {
                let pk = sim.pubkey(s);
                sim.set_address(n, pk, sn_curve[s].clone().with_pubkey(None));
            }
        }
        sim.run_until_idle();
        Self {
            sim,
            plain,
            curve,
            sn_curve,
            is_sn,
            remotes: BTreeMap::new(),
            expected: BTreeMap::new(),
            refused_at_send: 0,
            next_id: 0,
            request_timeout: spec.request_timeout,
            sn_churn: false,
        }
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.plain.len()
    }

    /// True if the mesh has no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }

    /// Disconnects the `connect_remote` connection from `from` to `to`, if there is one.
    pub fn disconnect_remote(&mut self, from: usize, to: usize, curve: bool) {
        if let Some(c) = self.remotes.remove(&(from, to, curve)) {
            // An already-failed connection is no longer outgoing: refused, as it should be.
            let _ = self.sim.disconnect(from, &c, Duration::from_millis(100));
        }
    }

    /// The `connect_remote` connection from `from` to `to` (made on first use, and again after
    /// it failed or closed for good).
    pub fn remote(&mut self, from: usize, to: usize, curve: bool) -> ConnectionId {
        if let Some(c) = self.remotes.get(&(from, to, curve)) {
            let node = self.sim.node(from);
            let failed = node.connect_failed.iter().any(|(_, x, _)| x == c)
                || node.link_failures.iter().any(|(_, x, _)| x == c)
                || node
                    .disconnects
                    .iter()
                    .any(|d| d.conn == *c && !d.reconnecting);
            if !failed {
                return c.clone();
            }
        }
        let addr = if curve {
            self.curve[to].clone()
        } else {
            self.plain[to].clone()
        };
        let c = self
            .sim
            .connect_remote(from, addr, &ConnectOptions::default());
        self.remotes.insert((from, to, curve), c.clone());
        c
    }

    fn payload(&mut self) -> Bytes {
        self.next_id += 1;
        Bytes::from(format!("req{}", self.next_id))
    }

    fn track(
        &mut self,
        from: usize,
        r: Result<RequestId, lokimq_core::node::SendError>,
        expect: Expect,
    ) -> Option<RequestId> {
        match r {
            Ok(id) => {
                self.expected.insert((from, id), expect);
                Some(id)
            }
            Err(_) => {
                self.refused_at_send += 1;
                None
            }
        }
    }

    /// `from` asks `to` for `t.echo` over a `connect_remote` connection.
    ///
    /// A CURVE `connect_remote` from one service node to another has a side effect the
    /// expectations here do not model (OxenMQ does the same): `to` records the incoming
    /// connection as a service-node connection from `from`, so its later sends to `from` by key
    /// may travel on it, and `from` sees them arrive on a `connect_remote` link, whose remote is
    /// never a service node: `sn.echo` then gets `FORBIDDEN_SN`. [`Mesh::random_request`]
    /// avoids that combination.
    pub fn request_remote(&mut self, from: usize, to: usize, curve: bool) -> Option<RequestId> {
        let conn = self.remote(from, to, curve);
        let p = self.payload();
        let r = self.sim.request(
            from,
            &conn,
            "t.echo",
            vec![p.clone()],
            &RequestOptions::default(),
        );
        let expect = Expect::Reply(vec![Bytes::from(format!("n{to}")), p]);
        self.track(from, r, expect)
    }

    /// `from` asks service node `to` for `t.echo` by key.
    pub fn request_sn(&mut self, from: usize, to: usize) -> Option<RequestId> {
        let pk = self.sim.pubkey(to);
        let p = self.payload();
        let r = self.sim.request(
            from,
            &ConnectionId::Sn(pk),
            "t.echo",
            vec![p.clone()],
            &RequestOptions::default(),
        );
        let expect = Expect::Reply(vec![Bytes::from(format!("n{to}")), p]);
        self.track(from, r, expect)
    }

    /// `from` asks service node `to` for `sn.echo` (remote_sn): allowed iff `from` is one.
    pub fn request_sn_only(&mut self, from: usize, to: usize) -> Option<RequestId> {
        let pk = self.sim.pubkey(to);
        let p = self.payload();
        let r = self.sim.request(
            from,
            &ConnectionId::Sn(pk),
            "sn.echo",
            vec![p.clone()],
            &RequestOptions::default(),
        );
        let expect = if self.sn_churn {
            Expect::ReplyOrError(vec![p], RequestError::ForbiddenSn)
        } else if self.is_sn[from] {
            Expect::Reply(vec![p])
        } else {
            Expect::Error(RequestError::ForbiddenSn)
        };
        self.track(from, r, expect)
    }

    /// `from` sends `t.note` to service node `to` by key.
    pub fn note_sn(&mut self, from: usize, to: usize) {
        let pk = self.sim.pubkey(to);
        let p = self.payload();
        // A refusal is recorded by the harness.
        let _ = self.sim.send(
            from,
            &ConnectionId::Sn(pk),
            "t.note",
            vec![p],
            &SendOptions::default(),
        );
    }

    /// One random application operation (a request of a random kind between random nodes).
    pub fn random_request(&mut self) {
        let n = self.len();
        let sns = self.is_sn.iter().filter(|s| **s).count().max(1);
        let r = self.sim.rng().next_u64();
        let from = (r % n as u64) as usize;
        let to = ((r >> 8) % n as u64) as usize;
        let to_sn = ((r >> 16) % sns as u64) as usize;
        match (r >> 24) % 5 {
            0 | 1 => {
                // No CURVE connect_remote between two service nodes: see `request_remote`.
                let curve = (r >> 32) % 2 == 0 && !(self.is_sn[from] && self.is_sn[to]);
                self.request_remote(from, to, curve);
            }
            2 => {
                self.request_sn(from, to_sn);
            }
            3 => {
                self.request_sn_only(from, to_sn);
            }
            _ => self.note_sn(from, to_sn),
        }
    }

    /// One random fault: a reset of a random connection, or a short partition.
    pub fn random_fault(&mut self) {
        let r = self.sim.rng().next_u64();
        match r % 4 {
            0 | 1 => {
                let conns = self.sim.open_connections();
                if !conns.is_empty() {
                    let (a, b) = conns[((r >> 8) % conns.len() as u64) as usize];
                    let end: End = if (r >> 16) % 2 == 0 { a } else { b };
                    self.sim.reset_end(end);
                }
            }
            2 => {
                let conns = self.sim.open_connections();
                if !conns.is_empty() {
                    let (a, _) = conns[((r >> 8) % conns.len() as u64) as usize];
                    self.sim.reset_one_side(a);
                }
            }
            _ => {
                let n = self.len();
                let mask = (r >> 8) as usize;
                let a: Vec<usize> = (0..n).filter(|i| mask >> i & 1 == 1).collect();
                let b: Vec<usize> = (0..n).filter(|i| mask >> i & 1 == 0).collect();
                let mode = if (r >> 40) % 2 == 0 {
                    PartitionMode::Freeze
                } else {
                    PartitionMode::Reset
                };
                self.sim.partition(&a, &b, mode);
                let heal_after = Duration::from_millis(200 + (r >> 48) % 3000);
                let at = self.sim.now() + heal_after;
                self.sim.at(at, |sim| sim.heal());
            }
        }
    }

    /// Runs long enough for every pending request to resolve (one request timeout plus margin).
    pub fn settle(&mut self) {
        self.sim.heal();
        let t = self.sim.now() + self.request_timeout + Duration::from_secs(1);
        self.sim.run_until(t);
    }

    /// Requests refused at send time (they have no outcome to wait for).
    #[must_use]
    pub fn refused_at_send(&self) -> usize {
        self.refused_at_send
    }

    /// Checks that every tracked request has exactly one outcome, which is the expected one or
    /// (if `allow_timeout`) `TIMEOUT` or `DISCONNECTED`. Returns `(expected, failed)` counts.
    pub fn check_outcomes(&self, allow_timeout: bool) -> (usize, usize) {
        let (mut good, mut timeouts) = (0, 0);
        for ((n, id), expect) in &self.expected {
            let rec = &self.sim.node(*n).requests[id];
            assert_eq!(
                rec.outcomes.len(),
                1,
                "seed {}: node {n} request {id:?} ({:?} to {:?} at {:?}): outcomes {:?}",
                self.sim.seed(),
                rec.command,
                rec.to,
                rec.sent_at,
                rec.outcomes
            );
            let got = &rec.outcomes[0].1;
            let ok = match (expect, got) {
                (Expect::Reply(want), Ok(have)) => want == have,
                (Expect::Error(want), Err(have)) => want == have,
                (Expect::ReplyOrError(want, _), Ok(have)) => want == have,
                (Expect::ReplyOrError(_, want), Err(have)) => want == have,
                _ => false,
            };
            // A request whose connection was closed for good fails with DISCONNECTED where
            // it would otherwise have waited for TIMEOUT: both are the faults' doing.
            let fault = matches!(got, Err(RequestError::Timeout | RequestError::Disconnected));
            if ok {
                good += 1;
            } else if allow_timeout && fault {
                timeouts += 1;
            } else {
                panic!(
                    "seed {}: node {n} request {id:?} ({:?} to {:?}): expected {expect:?}, got {got:?}",
                    self.sim.seed(),
                    rec.command,
                    rec.to
                );
            }
        }
        (good, timeouts)
    }

    /// Number of tracked requests.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.expected.len()
    }
}
