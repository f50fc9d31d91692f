//! The virtual network: listeners by address, connections as pairs of ordered byte pipes, and
//! the faults injected around them (latency and jitter, re-chunking, refused connects,
//! partitions, resets, close with flush).
//!
//! Like str0m's `netem`, the network is a seeded machine with no clock of its own: every method
//! takes `now`, draws randomness only from the simulator's RNG, and schedules what happens later
//! on the simulator's event queue. It never touches a node: the simulator turns the events into
//! node inputs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use lokimq_core::ids::{ConnId, ListenerId};
use lokimq_core::node::DisconnectCause;
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::queue::Queue;

/// What the network schedules on the simulator's event queue.
#[derive(Debug)]
pub(crate) enum NetEv {
    /// A dial's SYN reaches the listening side.
    Dial { pipe: u64 },
    /// A dial failed (refused, or timed out in a partition).
    DialFailed { pipe: u64, cause: DisconnectCause },
    /// A chunk of a pipe direction is due.
    Deliver { pipe: u64, dir: usize, chunk: u64 },
    /// An end learns its connection was reset.
    Reset { end: End, cause: DisconnectCause },
}

/// Latency of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` for every transmit (order is kept: a
    /// transmit never overtakes an earlier one on the same connection, as in TCP).
    pub jitter: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
        }
    }
}

/// How transmitted bytes are cut into reads at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// Each transmit arrives as one read.
    Whole,
    /// Every read is at most this many bytes (1 = byte at a time).
    Fixed(usize),
    /// Every read has a size drawn uniformly from `1..=max`.
    Random {
        /// The largest read.
        max: usize,
    },
}

/// What a partition does to connections that already cross it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMode {
    /// Bytes stop flowing and are delivered, in order, after the partition heals (TCP
    /// retransmission).
    Freeze,
    /// Both ends of every crossing connection see a reset at once.
    Reset,
}

/// Network-wide settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Default latency of every link (override per pair with `Sim::set_link`).
    pub link: LinkConfig,
    /// How transmits are cut into reads.
    pub chunking: Chunking,
    /// How long a connect into a partition hangs before the OS reports a timeout (unless the
    /// partition heals first: then the retransmitted SYN gets through).
    pub blackhole_connect_timeout: Duration,
    /// The peer address every listener sees (`Node::accept`'s `remote`).
    pub remote_ip: String,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            link: LinkConfig::default(),
            chunking: Chunking::Whole,
            blackhole_connect_timeout: Duration::from_secs(20),
            remote_ip: String::from("127.0.0.1"),
        }
    }
}

/// One end of a connection: a node's connection, or a test-controlled byte tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    /// A node's connection.
    Node(usize, ConnId),
    /// A tap (raw peer) by index.
    Tap(usize),
}

/// A machine on the network: latencies and partitions are per pair of hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Host {
    /// Node `n`.
    Node(usize),
    /// A tap; taps are never partitioned.
    Tap,
}

impl End {
    /// The host this end lives on.
    #[must_use]
    pub fn host(self) -> Host {
        match self {
            Self::Node(n, _) => Host::Node(n),
            Self::Tap(_) => Host::Tap,
        }
    }
}

/// What a listening address leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenTarget {
    /// A node's listener.
    Node(usize, ListenerId),
    /// A tap listener (accepted connections become taps).
    Tap(usize),
}

impl ListenTarget {
    fn host(self) -> Host {
        match self {
            Self::Node(n, _) => Host::Node(n),
            Self::Tap(_) => Host::Tap,
        }
    }
}

#[derive(Debug)]
struct Chunk {
    id: u64,
    arrival: Instant,
    /// `None` is the FIN: the sender closed its end.
    data: Option<Bytes>,
}

#[derive(Debug, Default)]
struct Dir {
    queue: VecDeque<Chunk>,
    last_arrival: Instant,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PipeState {
    /// The SYN is on its way (or hanging in a partition).
    Dialing,
    /// Both ends exist.
    Open,
}

#[derive(Debug)]
struct Pipe {
    /// `[dialer, acceptor]`; the acceptor exists once the dial is accepted.
    ends: [Option<End>; 2],
    /// Whether each end is still attached and reading (not closed by its owner nor told it is
    /// gone).
    open: [bool; 2],
    /// Whether each end has sent its FIN (it writes nothing more).
    fin_sent: [bool; 2],
    /// `dirs[0]` carries dialer → acceptor, `dirs[1]` acceptor → dialer.
    dirs: [Dir; 2],
    hosts: [Host; 2],
    target: ListenTarget,
    state: PipeState,
    dialed_at: Instant,
}

/// A delivery the simulator must hand to an end.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Bytes for `to`.
    Data(End, Bytes),
    /// The peer of `to` closed its end after everything it sent.
    Fin(End),
}

/// The network (see the module docs).
#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) config: NetConfig,
    overrides: BTreeMap<(Host, Host), LinkConfig>,
    listeners: BTreeMap<String, ListenTarget>,
    pipes: BTreeMap<u64, Pipe>,
    ends: BTreeMap<End, u64>,
    partitions: Vec<(BTreeSet<usize>, BTreeSet<usize>, PartitionMode)>,
    /// Dials whose SYN is lost in a partition (retransmitted, and so completed, on heal).
    blackholed: BTreeSet<u64>,
    refusing: BTreeSet<usize>,
    next_pipe: u64,
    next_chunk: u64,
}

impl Net {
    pub(crate) fn new(config: NetConfig) -> Self {
        Self {
            config,
            overrides: BTreeMap::new(),
            listeners: BTreeMap::new(),
            pipes: BTreeMap::new(),
            ends: BTreeMap::new(),
            partitions: Vec::new(),
            blackholed: BTreeSet::new(),
            refusing: BTreeSet::new(),
            next_pipe: 0,
            next_chunk: 0,
        }
    }

    // ----- configuration -----

    pub(crate) fn set_link(&mut self, a: Host, b: Host, link: LinkConfig) {
        self.overrides.insert(ordered(a, b), link);
    }

    fn link(&self, a: Host, b: Host) -> LinkConfig {
        self.overrides
            .get(&ordered(a, b))
            .copied()
            .unwrap_or(self.config.link)
    }

    fn sample_latency(&self, rng: &mut ChaCha20Rng, a: Host, b: Host) -> Duration {
        let l = self.link(a, b);
        let jitter = l.jitter.as_micros() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            rng.next_u64() % (jitter + 1)
        };
        l.latency + Duration::from_micros(extra)
    }

    /// Makes every listener of node `n` refuse connections (or accept them again).
    pub(crate) fn set_refusing(&mut self, n: usize, refusing: bool) {
        if refusing {
            self.refusing.insert(n);
        } else {
            self.refusing.remove(&n);
        }
    }

    /// Binds `addr`; false if it is taken.
    pub(crate) fn bind(&mut self, addr: String, target: ListenTarget) -> bool {
        if self.listeners.contains_key(&addr) {
            return false;
        }
        self.listeners.insert(addr, target);
        true
    }

    /// Unbinds one listener of node `n` (the node asked for `Unlisten`).
    pub(crate) fn unbind(&mut self, n: usize, listener: ListenerId) {
        self.listeners
            .retain(|_, t| !matches!(t, ListenTarget::Node(m, l) if *m == n && *l == listener));
    }

    /// Unbinds every listener of node `n` (its driver dropped them: the node stopped).
    pub(crate) fn unbind_node(&mut self, n: usize) {
        self.listeners
            .retain(|_, t| !matches!(t, ListenTarget::Node(m, _) if *m == n));
    }

    // ----- partitions -----

    fn partition_mode(&self, a: Host, b: Host) -> Option<PartitionMode> {
        let (Host::Node(a), Host::Node(b)) = (a, b) else {
            return None;
        };
        self.partitions.iter().find_map(|(x, y, mode)| {
            ((x.contains(&a) && y.contains(&b)) || (x.contains(&b) && y.contains(&a)))
                .then_some(*mode)
        })
    }

    /// Cuts `a` from `b`; returns the connections reset by it (mode `Reset`).
    pub(crate) fn partition<E: From<NetEv>>(
        &mut self,
        now: Instant,
        q: &mut Queue<E>,
        a: BTreeSet<usize>,
        b: BTreeSet<usize>,
        mode: PartitionMode,
    ) -> usize {
        self.partitions.push((a, b, mode));
        if mode != PartitionMode::Reset {
            return 0;
        }
        let crossing: Vec<u64> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.state == PipeState::Open)
            .filter(|(_, p)| self.partition_mode(p.hosts[0], p.hosts[1]).is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in &crossing {
            self.reset_pipe(now, q, *id, "connection reset (partition)");
        }
        crossing.len()
    }

    /// Removes every partition; frozen bytes resume, in order, one latency from now.
    pub(crate) fn heal<E: From<NetEv>>(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        q: &mut Queue<E>,
    ) {
        self.partitions.clear();
        // A retransmitted SYN gets through now.
        for id in std::mem::take(&mut self.blackholed) {
            if let Some(p) = self
                .pipes
                .get(&id)
                .filter(|p| p.state == PipeState::Dialing)
            {
                let lat = self.sample_latency(rng, p.hosts[0], p.hosts[1]);
                q.push(now + lat, NetEv::Dial { pipe: id });
            }
        }
        let ids: Vec<u64> = self.pipes.keys().copied().collect();
        for id in ids {
            let hosts = self.pipes[&id].hosts;
            for dir in 0..2 {
                let lat = self.sample_latency(rng, hosts[0], hosts[1]);
                let pipe = self.pipes.get_mut(&id).expect("listed above");
                let d = &mut pipe.dirs[dir];
                let mut floor = now + lat;
                for c in &mut d.queue {
                    if c.arrival < floor {
                        c.arrival = floor;
                    }
                    floor = c.arrival;
                    q.push(
                        c.arrival,
                        NetEv::Deliver {
                            pipe: id,
                            dir,
                            chunk: c.id,
                        },
                    );
                }
                d.last_arrival = d.last_arrival.max(floor);
            }
        }
    }

    // ----- connections -----

    /// Starts a connect from `from` to `addr` (a zmq address string).
    pub(crate) fn dial<E: From<NetEv>>(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        q: &mut Queue<E>,
        from: End,
        addr: &str,
    ) {
        let id = self.next_pipe;
        self.next_pipe += 1;
        let target = self.listeners.get(addr).copied();
        let to_host = target.map_or_else(|| from.host(), ListenTarget::host);
        let lat = self.sample_latency(rng, from.host(), to_host);
        self.pipes.insert(
            id,
            Pipe {
                ends: [Some(from), None],
                open: [true, false],
                fin_sent: [false, false],
                dirs: [Dir::default(), Dir::default()],
                hosts: [from.host(), to_host],
                // An unbound address is refused when the SYN arrives.
                target: target.unwrap_or(ListenTarget::Tap(usize::MAX)),
                state: PipeState::Dialing,
                dialed_at: now,
            },
        );
        self.ends.insert(from, id);
        q.push(now + lat, NetEv::Dial { pipe: id });
    }

    /// The SYN of `pipe` arrived: decide its fate. Returns the listener to accept on, if any.
    pub(crate) fn syn_arrived<E: From<NetEv>>(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        q: &mut Queue<E>,
        id: u64,
    ) -> Option<ListenTarget> {
        let pipe = self.pipes.get(&id)?;
        if pipe.state != PipeState::Dialing || !pipe.open[0] {
            return None;
        }
        let target = pipe.target;
        let bound = match target {
            ListenTarget::Tap(usize::MAX) => false,
            ListenTarget::Node(n, _) => !self.refusing.contains(&n),
            ListenTarget::Tap(_) => true,
        };
        if self.partition_mode(pipe.hosts[0], pipe.hosts[1]).is_some() {
            self.blackholed.insert(id);
            let at = pipe.dialed_at + self.config.blackhole_connect_timeout;
            q.push(
                at.max(now),
                NetEv::DialFailed {
                    pipe: id,
                    cause: DisconnectCause::ConnectFailed(String::from("Connection timed out")),
                },
            );
            return None;
        }
        if !bound {
            let lat = self.sample_latency(rng, pipe.hosts[0], pipe.hosts[1]);
            q.push(
                now + lat,
                NetEv::DialFailed {
                    pipe: id,
                    cause: DisconnectCause::Refused,
                },
            );
            return None;
        }
        Some(target)
    }

    /// The dial failed: forgets the pipe and returns the dialer to notify (if still there).
    pub(crate) fn dial_failed(&mut self, id: u64) -> Option<End> {
        let pipe = self.pipes.get(&id)?;
        if pipe.state != PipeState::Dialing {
            return None;
        }
        let pipe = self.pipes.remove(&id).expect("checked above");
        let dialer = pipe.ends[0].filter(|_| pipe.open[0])?;
        self.ends.remove(&dialer);
        Some(dialer)
    }

    /// The listener accepted `pipe` as `acceptor`: returns the dialer to tell it is connected.
    pub(crate) fn accepted(&mut self, id: u64, acceptor: End) -> Option<End> {
        let pipe = self.pipes.get_mut(&id)?;
        pipe.ends[1] = Some(acceptor);
        pipe.open[1] = true;
        pipe.state = PipeState::Open;
        self.ends.insert(acceptor, id);
        pipe.ends[0].filter(|_| pipe.open[0])
    }

    /// True if `end` is attached to an open connection.
    pub(crate) fn is_connected(&self, end: End) -> bool {
        self.ends
            .get(&end)
            .and_then(|id| self.pipes.get(id))
            .is_some_and(|p| p.state == PipeState::Open)
    }

    fn side(pipe: &Pipe, end: End) -> Option<usize> {
        (0..2).find(|&i| pipe.ends[i] == Some(end) && pipe.open[i])
    }

    /// Queues bytes written by `from`. Returns false if `from` has no open connection (the
    /// bytes are dropped, as a write to a dead socket would be).
    pub(crate) fn transmit<E: From<NetEv>>(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        q: &mut Queue<E>,
        from: End,
        data: Bytes,
    ) -> bool {
        let Some(&id) = self.ends.get(&from) else {
            return false;
        };
        let lat = {
            let Some(pipe) = self.pipes.get(&id) else {
                return false; // the peer's host vanished: the bytes are lost
            };
            if pipe.state != PipeState::Open {
                return false;
            }
            self.sample_latency(rng, pipe.hosts[0], pipe.hosts[1])
        };
        let chunking = self.config.chunking;
        let pipe = self
            .pipes
            .get_mut(&id)
            .expect("ends map points at a live pipe");
        let Some(side) = Self::side(pipe, from) else {
            return false;
        };
        if pipe.fin_sent[side] || !pipe.open[1 - side] {
            return false; // closed for writing, or nobody reads these bytes any more
        }
        let d = &mut pipe.dirs[side];
        let arrival = (now + lat).max(d.last_arrival);
        d.last_arrival = arrival;
        let mut rest = data;
        while !rest.is_empty() {
            let take = match chunking {
                Chunking::Whole => rest.len(),
                Chunking::Fixed(n) => n.max(1).min(rest.len()),
                Chunking::Random { max } => {
                    let max = max.max(1).min(rest.len());
                    1 + (rng.next_u64() % max as u64) as usize
                }
            };
            let piece = rest.split_to(take);
            let chunk = self.next_chunk;
            self.next_chunk += 1;
            d.queue.push_back(Chunk {
                id: chunk,
                arrival,
                data: Some(piece),
            });
            q.push(
                arrival,
                NetEv::Deliver {
                    pipe: id,
                    dir: side,
                    chunk,
                },
            );
        }
        true
    }

    /// `from` closes its end: everything it wrote is still delivered, then the peer reads EOF.
    /// A full close (`half == false`, what a driver does when it drops a socket) also stops
    /// delivery to `from`; a half close (`shutdown(SHUT_WR)`) keeps reading.
    pub(crate) fn close<E: From<NetEv>>(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        q: &mut Queue<E>,
        from: End,
        half: bool,
    ) {
        let Some(&id) = self.ends.get(&from) else {
            return;
        };
        let Some(pipe) = self.pipes.get(&id) else {
            // Its peer vanished (a crashed host): nothing to tell anyone.
            self.ends.remove(&from);
            return;
        };
        let Some(side) = Self::side(pipe, from) else {
            return;
        };
        let lat = self.sample_latency(rng, pipe.hosts[0], pipe.hosts[1]);
        let pipe = self.pipes.get_mut(&id).expect("looked up above");
        if !pipe.fin_sent[side] {
            pipe.fin_sent[side] = true;
            if pipe.state == PipeState::Open && pipe.open[1 - side] {
                let chunk = self.next_chunk;
                self.next_chunk += 1;
                let d = &mut pipe.dirs[side];
                let arrival = (now + lat).max(d.last_arrival);
                d.last_arrival = arrival;
                d.queue.push_back(Chunk {
                    id: chunk,
                    arrival,
                    data: None,
                });
                q.push(
                    arrival,
                    NetEv::Deliver {
                        pipe: id,
                        dir: side,
                        chunk,
                    },
                );
            }
        }
        if !half || pipe.state == PipeState::Dialing {
            pipe.open[side] = false;
            self.ends.remove(&from);
        }
        if !pipe.open[0] && !pipe.open[1] {
            self.pipes.remove(&id);
        }
    }

    /// The chunk `chunk` of `pipe`'s direction `dir` is due: returns it if it is still the next
    /// one to deliver, its receiver is attached, and no partition freezes it.
    pub(crate) fn take(
        &mut self,
        now: Instant,
        id: u64,
        dir: usize,
        chunk: u64,
    ) -> Option<Delivery> {
        let pipe = self.pipes.get(&id)?;
        let head = pipe.dirs[dir].queue.front()?;
        if head.id != chunk || head.arrival > now {
            return None;
        }
        if self.partition_mode(pipe.hosts[0], pipe.hosts[1]) == Some(PartitionMode::Freeze) {
            return None;
        }
        let receiver = 1 - dir;
        let pipe = self.pipes.get_mut(&id).expect("looked up above");
        let c = pipe.dirs[dir]
            .queue
            .pop_front()
            .expect("head checked above");
        let to = pipe.ends[receiver].filter(|_| pipe.open[receiver])?;
        Some(match c.data {
            Some(d) => Delivery::Data(to, d),
            None => Delivery::Fin(to),
        })
    }

    /// Resets a connection: both attached ends get `Disconnected(Reset)` at `now`.
    pub(crate) fn reset_pipe<E: From<NetEv>>(
        &mut self,
        now: Instant,
        q: &mut Queue<E>,
        id: u64,
        why: &str,
    ) {
        let Some(pipe) = self.pipes.remove(&id) else {
            return;
        };
        for side in 0..2 {
            if let Some(end) = pipe.ends[side].filter(|_| pipe.open[side]) {
                self.ends.remove(&end);
                q.push(
                    now,
                    NetEv::Reset {
                        end,
                        cause: DisconnectCause::Reset(String::from(why)),
                    },
                );
            }
        }
    }

    /// Resets the connection of `end`, if it has one. Returns whether it did.
    pub(crate) fn reset_end<E: From<NetEv>>(
        &mut self,
        now: Instant,
        q: &mut Queue<E>,
        end: End,
    ) -> bool {
        let Some(&id) = self.ends.get(&end) else {
            return false;
        };
        self.reset_pipe(now, q, id, "connection reset by peer");
        true
    }

    /// `end` sees a reset but its peer does not: a half-open connection, where whatever the
    /// peer still sends is lost and it never hears of the loss.
    pub(crate) fn reset_one_side<E: From<NetEv>>(
        &mut self,
        now: Instant,
        q: &mut Queue<E>,
        end: End,
    ) -> bool {
        let Some(id) = self.ends.remove(&end) else {
            return false;
        };
        let Some(pipe) = self.pipes.get_mut(&id) else {
            return false;
        };
        let Some(side) = Self::side(pipe, end) else {
            return false;
        };
        pipe.open[side] = false;
        pipe.fin_sent[side] = true;
        pipe.dirs[1 - side].queue.clear();
        q.push(
            now,
            NetEv::Reset {
                end,
                cause: DisconnectCause::Reset(String::from("connection reset (half-open)")),
            },
        );
        if !pipe.open[0] && !pipe.open[1] {
            self.pipes.remove(&id);
        }
        true
    }

    /// The hosts at the two ends of `pipe` (`[dialer, acceptor]`).
    pub(crate) fn hosts(&self, id: u64) -> Option<[Host; 2]> {
        self.pipes.get(&id).map(|p| p.hosts)
    }

    /// Node `n` is gone (its process died, or its machine): every connection end it had
    /// vanishes at once without being told, its dials are forgotten, and its peers see a
    /// reset (`notify_peers`: the kernel answering for a dead process) or nothing at all (a
    /// machine that lost power: their connections stay half-open, their writes vanish, until
    /// a heartbeat or a timeout notices). Returns how many connections it had.
    pub(crate) fn drop_host<E: From<NetEv>>(
        &mut self,
        now: Instant,
        q: &mut Queue<E>,
        n: usize,
        notify_peers: bool,
    ) -> usize {
        let host = Host::Node(n);
        let ids: Vec<u64> = self
            .pipes
            .iter()
            .filter(|(_, p)| (0..2).any(|i| p.ends[i].is_some_and(|e| e.host() == host)))
            .map(|(id, _)| *id)
            .collect();
        let mut count = 0;
        for id in ids {
            let pipe = self.pipes.remove(&id).expect("listed above");
            if pipe.state == PipeState::Open {
                count += 1;
            }
            for side in 0..2 {
                let Some(end) = pipe.ends[side] else {
                    continue;
                };
                if end.host() == host {
                    self.ends.remove(&end);
                } else if pipe.open[side] && notify_peers {
                    self.ends.remove(&end);
                    q.push(
                        now,
                        NetEv::Reset {
                            end,
                            cause: DisconnectCause::Reset(String::from("connection reset by peer")),
                        },
                    );
                }
                // Otherwise the peer keeps a half-open end: its writes find no pipe and vanish.
            }
        }
        self.blackholed.retain(|id| self.pipes.contains_key(id));
        count
    }

    /// Every open connection as `(pipe, dialer, acceptor)`, in pipe order.
    pub(crate) fn open_pipes(&self) -> Vec<(u64, End, End)> {
        self.pipes
            .iter()
            .filter(|(_, p)| p.state == PipeState::Open && p.open[0] && p.open[1])
            .filter_map(|(id, p)| Some((*id, p.ends[0]?, p.ends[1]?)))
            .collect()
    }

    /// Bytes and FINs still in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.pipes
            .values()
            .map(|p| p.dirs[0].queue.len() + p.dirs[1].queue.len())
            .sum()
    }
}

fn ordered(a: Host, b: Host) -> (Host, Host) {
    if a <= b { (a, b) } else { (b, a) }
}
