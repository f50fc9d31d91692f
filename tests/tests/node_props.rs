//! Property test over random operation sequences on a small network (4 nodes: 2 service nodes,
//! 2 plain nodes; every node listens plain and CURVE): connects and disconnects, requests and
//! sends between random nodes, resets and half-open connections, partitions and heals, changes
//! to the active service-node sets, changes of the network's re-chunking, and time ticks.
//!
//! The simulator checks its invariants after **every** step (each delivery, timeout or job):
//! no output left undrained; `Stats::connections` equals the driver's count of open sockets;
//! `active ≤ max_workers`, `queued ≤ max_queue` per category, and the scheduler's running
//! jobs equal the driver's busy workers; a request never gets a second outcome nor does a reply
//! job name an unknown request; an outgoing service-node connection never outlives its idle
//! deadline (`last possible activity + largest keep-alive`); `poll_timeout()` always moves past
//! `now` after a timeout. At the end of each case the network heals and runs past every request
//! timeout, and then every request has exactly one outcome, the right reply or the right error
//! or TIMEOUT. No operation may panic.
//!
//! The runner's RNG is fixed, so the cases are the same on every run.

use lokimq_core::keys::PublicKey;
use lokimq_core::time::Duration;
use lokimq_tests::mesh::{Mesh, MeshSpec};
use lokimq_tests::sim::{Chunking, Dur, LinkConfig, NetConfig, PartitionMode};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeSet;

const NODES: usize = 4;
const SNS: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Connect { from: usize, to: usize, curve: bool },
    Disconnect { from: usize, to: usize, curve: bool },
    RequestRemote { from: usize, to: usize, curve: bool },
    RequestSn { from: usize, to: usize },
    RequestSnOnly { from: usize, to: usize },
    Send { from: usize, to: usize },
    Reset { pick: usize, half: bool },
    Partition { mask: u8, freeze: bool },
    Heal,
    SetSn { node: usize, active: bool },
    Chunking(u8),
    Tick { millis: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NODES;
    let s = 0..SNS;
    prop_oneof![
        1 => (n.clone(), n.clone(), any::<bool>())
            .prop_map(|(from, to, curve)| Op::Connect { from, to, curve }),
        1 => (n.clone(), n.clone(), any::<bool>())
            .prop_map(|(from, to, curve)| Op::Disconnect { from, to, curve }),
        3 => (n.clone(), n.clone(), any::<bool>())
            .prop_map(|(from, to, curve)| Op::RequestRemote { from, to, curve }),
        3 => (n.clone(), s.clone()).prop_map(|(from, to)| Op::RequestSn { from, to }),
        2 => (n.clone(), s.clone()).prop_map(|(from, to)| Op::RequestSnOnly { from, to }),
        2 => (n.clone(), s).prop_map(|(from, to)| Op::Send { from, to }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, half)| Op::Reset { pick, half }),
        1 => (1u8..15, any::<bool>()).prop_map(|(mask, freeze)| Op::Partition { mask, freeze }),
        1 => Just(Op::Heal),
        1 => (n, any::<bool>()).prop_map(|(node, active)| Op::SetSn { node, active }),
        1 => (0u8..4).prop_map(Op::Chunking),
        4 => (0u64..3000).prop_map(|millis| Op::Tick { millis }),
    ]
}

fn spec() -> MeshSpec {
    MeshSpec {
        nodes: NODES,
        service_nodes: SNS,
        workers: 1,
        command_time: Dur::Uniform(Duration::ZERO, Duration::from_millis(30)),
        net: NetConfig {
            link: LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::from_millis(2),
            },
            chunking: Chunking::Random { max: 64 },
            blackhole_connect_timeout: Duration::from_secs(3),
            ..NetConfig::default()
        },
        request_timeout: Duration::from_secs(4),
        // Half-open connections are noticed within 4 s.
        heartbeat: Some((Duration::from_secs(1), Duration::from_secs(3))),
    }
}

fn apply(mesh: &mut Mesh, sns: &mut BTreeSet<usize>, op: &Op) {
    match *op {
        Op::Connect { from, to, curve } => {
            mesh.remote(from, to, curve);
        }
        Op::Disconnect { from, to, curve } => mesh.disconnect_remote(from, to, curve),
        Op::RequestRemote { from, to, curve } => {
            mesh.request_remote(from, to, curve);
        }
        Op::RequestSn { from, to } => {
            mesh.request_sn(from, to);
        }
        Op::RequestSnOnly { from, to } => {
            mesh.request_sn_only(from, to);
        }
        Op::Send { from, to } => mesh.note_sn(from, to),
        Op::Reset { pick, half } => {
            let conns = mesh.sim.open_connections();
            if !conns.is_empty() {
                let (a, b) = conns[pick % conns.len()];
                if half {
                    mesh.sim.reset_one_side(b);
                } else {
                    mesh.sim.reset_end(a);
                }
            }
        }
        Op::Partition { mask, freeze } => {
            let a: Vec<usize> = (0..NODES).filter(|i| mask >> i & 1 == 1).collect();
            let b: Vec<usize> = (0..NODES).filter(|i| mask >> i & 1 == 0).collect();
            let mode = if freeze {
                PartitionMode::Freeze
            } else {
                PartitionMode::Reset
            };
            mesh.sim.partition(&a, &b, mode);
        }
        Op::Heal => mesh.sim.heal(),
        Op::SetSn { node, active } => {
            let changed = if active {
                sns.insert(node)
            } else {
                sns.remove(&node)
            };
            if changed {
                let pk: BTreeSet<PublicKey> = [mesh.sim.pubkey(node)].into_iter().collect();
                let none = BTreeSet::new();
                for n in 0..NODES {
                    if active {
                        mesh.sim.update_active_sns(n, &pk, &none);
                    } else {
                        mesh.sim.update_active_sns(n, &none, &pk);
                    }
                }
            }
        }
        Op::Chunking(c) => mesh.sim.set_chunking(match c {
            0 => Chunking::Whole,
            1 => Chunking::Fixed(1),
            2 => Chunking::Fixed(7),
            _ => Chunking::Random { max: 64 },
        }),
        Op::Tick { millis } => mesh.sim.run_for(Duration::from_millis(millis)),
    }
    // Every operation is followed by whatever is due right now (the invariants are checked
    // after each of those steps).
    let now = mesh.sim.now();
    mesh.sim.run_until(now);
}

fn run_case(seed: u64, ops: &[Op]) {
    let mut mesh = Mesh::new(seed, &spec());
    mesh.sim.check_idle_expiry = true;
    // Active sets change during the run: `sn.echo` may go either way.
    mesh.sn_churn = true;
    let mut sns: BTreeSet<usize> = (0..SNS).collect();
    for op in ops {
        apply(&mut mesh, &mut sns, op);
    }
    mesh.settle();
    mesh.sim.check_invariants();
    let (good, timeouts) = mesh.check_outcomes(true);
    assert_eq!(good + timeouts, mesh.tracked());
    // With the network healed and quiet, new requests all succeed.
    let before = mesh.tracked();
    for to in 0..NODES {
        mesh.request_remote((to + 1) % NODES, to, to % 2 == 0);
    }
    for to in 0..SNS {
        mesh.request_sn(NODES - 1, to);
    }
    let now = mesh.sim.now();
    mesh.sim.run_until(now + Duration::from_secs(8));
    let (good2, timeouts2) = mesh.check_outcomes(true);
    assert_eq!(
        timeouts2, timeouts,
        "seed {seed}: requests on a healed network failed"
    );
    assert_eq!(good2, good + (mesh.tracked() - before));
}

#[test]
fn node_props_random_operation_sequences_keep_every_invariant() {
    // NODE_PROPS_CASES / NODE_PROPS_SEED explore further (e.g. in release builds); the default
    // run is fixed.
    let cases = std::env::var("NODE_PROPS_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let seed: u8 = std::env::var("NODE_PROPS_SEED")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0x5a);
    let config = Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    );
    let strategy = (any::<u64>(), proptest::collection::vec(op(), 1..64));
    let result = runner.run(&strategy, |(seed, ops)| {
        run_case(seed, &ops);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
