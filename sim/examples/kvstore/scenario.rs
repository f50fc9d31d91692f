//! The key-value store under simulation: replicas and clients on a faulty virtual network,
//! random writes, and the store's own invariants. Shared by `main.rs` and the tests.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lokimq::{Keypair, PublicKey};
use lokimq_sim::{
    Chunking, Dur, Invariant, JobTimes, LinkConfig, NetConfig, NodeId, PartitionMode, Sim,
    SimConfig,
};
use rand_core::RngCore;

use crate::app::{ApplyOrder, Disk, Replica, put, setup_replica};

/// What to simulate.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Replicas (service nodes), 3–10.
    pub(crate) replicas: usize,
    /// Client nodes.
    pub(crate) clients: usize,
    /// Writes, spread over the first two seconds.
    pub(crate) writes: usize,
    /// Distinct keys written.
    pub(crate) keys: usize,
    /// The replicas' apply rule (the planted bug is [`ApplyOrder::Arrival`]).
    pub(crate) order: ApplyOrder,
    /// Resets, a partition, maybe a crash.
    pub(crate) faults: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replicas: 5,
            clients: 2,
            writes: 40,
            keys: 4,
            order: ApplyOrder::ByVersion,
            faults: true,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The hash of the whole trace.
    pub(crate) trace_hash: u64,
    /// Writes acknowledged to clients.
    pub(crate) acked: usize,
    /// Writes that failed (their replica was down or cut off).
    pub(crate) failed: usize,
    /// Virtual time until every replica held the same data.
    pub(crate) converged_after: Duration,
    /// Steps taken.
    pub(crate) steps: u64,
    /// The replicas' disks at the end (all equal).
    pub(crate) disks: Vec<Disk>,
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Runs the store for one seed; panics (naming the seed) if an invariant fails or the
/// replicas never agree.
pub(crate) fn run(seed: u64, opts: &Options) -> Outcome {
    let config = SimConfig {
        net: NetConfig {
            link: LinkConfig {
                latency: ms(1),
                jitter: ms(4),
            },
            chunking: Chunking::Random { max: 200 },
            ..NetConfig::default()
        },
        // Handlers take a while, replications most of all: several run at once on a replica.
        jobs: JobTimes::all(Dur::Uniform(Duration::ZERO, ms(2)))
            .command("kv.put", Dur::Uniform(Duration::ZERO, ms(5)))
            .command("repl.apply", Dur::Uniform(Duration::ZERO, ms(20))),
        ..SimConfig::default()
    };
    let mut sim = Sim::with_config(seed, config);
    sim.add_invariant(Invariant::no_request_lost());
    sim.add_invariant(Invariant::replies_match_requests());

    // The replicas: keys fixed up front (service nodes have them), disks outside the nodes so
    // they survive restarts.
    let keypairs: Vec<Keypair> = (0..opts.replicas)
        .map(|_| Keypair::generate(sim.rng()))
        .collect();
    let keys: Vec<PublicKey> = keypairs.iter().map(|k| *k.public()).collect();
    let disks: Vec<Arc<Mutex<Disk>>> = (0..opts.replicas).map(|_| Arc::default()).collect();
    let dir = sim.directory();
    let mut replicas: Vec<NodeId> = Vec::new();
    for (kp, disk) in keypairs.iter().zip(&disks) {
        let replica = Replica::new(Arc::clone(disk), &keys, opts.order);
        let (kp, lookup, r) = (kp.clone(), dir.clone(), replica.clone());
        let n = sim.add_node(move |b| {
            b.keypair(kp.clone());
            setup_replica(b, &r, "tcp://*:22020", lookup.lookup_fn())
        });
        sim.on_start(n, move |h| replica.started(h.clone()));
        replicas.push(n);
    }
    let clients: Vec<NodeId> = (0..opts.clients)
        .map(|_| {
            let lookup = dir.clone();
            sim.add_node(move |b| {
                b.sn_lookup(lookup.lookup_fn());
                Ok(())
            })
        })
        .collect();

    // Invariant: a replica never goes back to an older version of a key.
    let seen: Rc<RefCell<Vec<BTreeMap<String, u64>>>> =
        Rc::new(RefCell::new(vec![BTreeMap::new(); opts.replicas]));
    let watched = disks.clone();
    let last = Rc::clone(&seen);
    let ids = replicas.clone();
    sim.add_invariant(Invariant::new(
        "replica versions never go backwards",
        move |s: &Sim| {
            let mut last = last.borrow_mut();
            for (i, disk) in watched.iter().enumerate() {
                let disk = disk
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (key, (v, _)) in &disk.data {
                    let prev = last[i].insert(key.clone(), *v).unwrap_or(0);
                    if *v < prev {
                        return Err(format!(
                            "replica {i} ({}) went from version {prev} to {v} of {key:?}",
                            s.ip(ids[i])
                        ));
                    }
                }
            }
            Ok(())
        },
    ));

    // Writes at random times, from random clients, to random replicas (forwarded to the key's
    // primary when it is not it).
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let failed: Arc<Mutex<usize>> = Arc::default();
    for i in 0..opts.writes {
        let at = ms(sim.rng().next_u64() % 2000);
        let client = clients[(sim.rng().next_u64() % clients.len() as u64) as usize];
        let to = keys[(sim.rng().next_u64() % keys.len() as u64) as usize];
        let key = format!("k{}", sim.rng().next_u64() % opts.keys as u64);
        let (acked, failed) = (Arc::clone(&acked), Arc::clone(&failed));
        sim.at(at, move |sim| {
            sim.note(format!(
                "put {key}=w{i} from {client} to {}",
                &to.to_string()[..8]
            ));
            let k = key.clone();
            let r = put(
                &sim.handle(client),
                to,
                &key,
                &format!("w{i}"),
                move |r| match r {
                    Ok(v) => acked.lock().unwrap().push((k, v)),
                    Err(_) => *failed.lock().unwrap() += 1,
                },
            );
            if r.is_err() {
                sim.fail("a client node stopped");
            }
        });
    }

    if opts.faults {
        // A few connection resets.
        for _ in 0..4 {
            let at = ms(sim.rng().next_u64() % 2500);
            sim.at(at, |sim| {
                sim.reset_random_connection();
            });
        }
        // One replica cut off for a while (frozen: its bytes wait), then healed.
        let cut = replicas[(sim.rng().next_u64() % replicas.len() as u64) as usize];
        let from = ms(sim.rng().next_u64() % 1500);
        let len = ms(200 + sim.rng().next_u64() % 1300);
        sim.at(from, move |sim| {
            sim.isolate(cut, PartitionMode::Freeze);
        });
        sim.at(from + len, Sim::heal);
        // Half the time, a replica crashes and comes back (its disk survives).
        if sim.rng().next_u64() % 2 == 0 {
            let victim = replicas[(sim.rng().next_u64() % replicas.len() as u64) as usize];
            let down = ms(sim.rng().next_u64() % 2000);
            let back = ms(100 + sim.rng().next_u64() % 900);
            sim.at(down, move |sim| sim.crash(victim));
            sim.at(down + back, move |sim| {
                sim.restart(victim);
            });
        }
    }

    // Let the writes and faults play out, then wait for the replicas to agree.
    sim.run_for(Duration::from_secs(3));
    sim.heal();
    let agree = |_: &Sim| {
        let first = disks[0].lock().unwrap().data.clone();
        disks.iter().all(|d| {
            let d = d.lock().unwrap();
            d.outbox.is_empty() && d.data == first
        })
    };
    let converged_after = sim.run_until(agree);

    // Every acknowledged write is in (a version at least as new is everywhere).
    let end: Vec<Disk> = disks.iter().map(|d| d.lock().unwrap().clone()).collect();
    for (key, v) in acked.lock().unwrap().iter() {
        let have = end[0].data.get(key).map_or(0, |(h, _)| *h);
        if have < *v {
            sim.fail(&format!(
                "acknowledged write {key}@{v} lost (replicas have {have})"
            ));
        }
    }
    let acked = acked.lock().unwrap().len();
    let failed = *failed.lock().unwrap();
    Outcome {
        trace_hash: sim.trace_hash(),
        acked,
        failed,
        converged_after,
        steps: sim.steps(),
        disks: end,
    }
}
