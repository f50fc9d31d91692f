//! The simulator is deterministic: a busy 10-node scenario (remote and service-node requests,
//! sends, 1..16-byte re-chunking, latency jitter, resets, half-open connections, partitions,
//! slow workers) gives the same log, line for line, for the same seed, and a different one for
//! another seed.

use std::sync::OnceLock;

use lokimq_core::time::Duration;
use lokimq_tests::mesh::{Mesh, MeshSpec};
use lokimq_tests::sim::{Chunking, Dur, LinkConfig, NetConfig};
use rand_core::RngCore;

struct RunSummary {
    hash: u64,
    lines: u64,
    all: Vec<String>,
    outcomes: (usize, usize),
    tracked: usize,
}

fn busy_run(seed: u64) -> RunSummary {
    let spec = MeshSpec {
        nodes: 10,
        service_nodes: 5,
        workers: 2,
        command_time: Dur::Uniform(Duration::ZERO, Duration::from_millis(40)),
        net: NetConfig {
            link: LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::from_millis(3),
            },
            chunking: Chunking::Random { max: 16 },
            ..NetConfig::default()
        },
        request_timeout: Duration::from_secs(5),
        heartbeat: None,
    };
    let mut mesh = Mesh::new(seed, &spec);
    mesh.sim.log_mut().keep_all();
    mesh.sim.check_idle_expiry = true;
    for round in 0..24 {
        for _ in 0..8 {
            mesh.random_request();
        }
        if round % 3 == 2 {
            mesh.random_fault();
        }
        let pause = 20 + mesh.sim.rng().next_u64() % 400;
        mesh.sim.run_for(Duration::from_millis(pause));
    }
    mesh.settle();
    let outcomes = mesh.check_outcomes(true);
    RunSummary {
        hash: mesh.sim.log().hash(),
        lines: mesh.sim.log().len(),
        all: mesh.sim.log().all().unwrap().to_vec(),
        outcomes,
        tracked: mesh.tracked(),
    }
}

/// The seed-42 run, shared by both tests (each run takes seconds in debug builds).
fn run_42() -> &'static RunSummary {
    static RUN: OnceLock<RunSummary> = OnceLock::new();
    RUN.get_or_init(|| busy_run(42))
}

#[test]
fn determinism_same_seed_gives_the_same_log() {
    let a = run_42();
    let b = &busy_run(42);
    if a.all != b.all {
        let i = a
            .all
            .iter()
            .zip(&b.all)
            .position(|(x, y)| x != y)
            .unwrap_or_else(|| a.all.len().min(b.all.len()));
        panic!(
            "runs diverge at line {i} of {}/{}:\n  {:?}\n  {:?}",
            a.all.len(),
            b.all.len(),
            a.all.get(i),
            b.all.get(i)
        );
    }
    assert_eq!((a.hash, a.lines), (b.hash, b.lines));
    assert_eq!(a.outcomes, b.outcomes);
    // The scenario is busy: thousands of log lines, many requests, most of them answered.
    assert!(a.lines > 5_000, "{} lines", a.lines);
    assert!(a.tracked > 150, "{} requests", a.tracked);
    assert!(
        a.outcomes.0 > a.tracked / 2,
        "{:?} of {}",
        a.outcomes,
        a.tracked
    );
}

#[test]
fn determinism_different_seed_gives_a_different_log() {
    let a = run_42();
    let b = busy_run(43);
    assert_ne!(a.hash, b.hash);
    assert_ne!(a.all, b.all);
}

// =============================================================================================
// The same on the public simulation API: application nodes (`lokimq` builders with handler
// closures) on `lokimq_sim::Sim`, with jitter, re-chunking, slow handlers, resets, a partition
// and a crash-restart.

mod app_level {
    use std::sync::{Arc, Mutex};

    use lokimq::{AuthLevel, ConnectionId};
    use lokimq_sim::{
        Chunking, Dur, Invariant, JobTimes, LinkConfig, NetConfig, NodeId, PartitionMode, Sim,
        SimConfig,
    };
    use rand_core::RngCore;
    use std::time::Duration;

    /// Six service nodes relaying requests to each other by key; returns every trace line and
    /// how many replies arrived.
    fn relay_run(seed: u64) -> (Vec<String>, u64, usize, usize) {
        let config = SimConfig {
            net: NetConfig {
                link: LinkConfig {
                    latency: Duration::from_millis(1),
                    jitter: Duration::from_millis(3),
                },
                chunking: Chunking::Random { max: 16 },
                ..NetConfig::default()
            },
            jobs: JobTimes::all(Dur::Uniform(Duration::ZERO, Duration::from_millis(30))),
            ..SimConfig::default()
        };
        let mut sim = Sim::with_config(seed, config);
        sim.trace_mut().keep_all();
        sim.add_invariant(Invariant::no_request_lost());
        sim.add_invariant(Invariant::replies_match_requests());
        let dir = sim.directory();
        let nodes: Vec<NodeId> = (0..6)
            .map(|_| {
                let lookup = dir.clone();
                sim.add_node(move |b| {
                    b.service_node(true)
                        .sn_lookup(lookup.lookup_fn())
                        .add_category("relay", AuthLevel::None)?
                        // Forward to the next hop by key (a request chain), or answer.
                        .add_request_command("relay", "hop", |m| {
                            let data = m.data().to_vec();
                            let Some((next, rest)) = data.split_first() else {
                                return m.send_reply(["end"]);
                            };
                            let Ok(next) = String::from_utf8_lossy(next).parse() else {
                                return m.send_reply(["bad key"]);
                            };
                            let later = m.send_later();
                            let sent = m.handle().request(
                                &ConnectionId::Sn(next),
                                "relay.hop",
                                rest.to_vec(),
                                move |r| {
                                    let _ = later
                                        .reply(r.unwrap_or_else(|e| vec![e.to_string().into()]));
                                },
                            );
                            if sent.is_err() {
                                m.send_reply(["stopped"]);
                            }
                        })?
                        .listen_curve("tcp://*:7000", |_, _, _| AuthLevel::None)?;
                    Ok(())
                })
            })
            .collect();
        let keys: Vec<_> = nodes.iter().map(|n| sim.pubkey(*n)).collect();
        for n in &nodes {
            sim.handle(*n).set_active_sns(keys.clone()).unwrap();
        }
        let replies = Arc::new(Mutex::new(0usize));
        let mut sent = 0;
        for round in 0..12u64 {
            for _ in 0..4 {
                let from = nodes[(sim.rng().next_u64() % 6) as usize];
                let path: Vec<String> = (0..1 + sim.rng().next_u64() % 3)
                    .map(|_| keys[(sim.rng().next_u64() % 6) as usize].to_string())
                    .collect();
                let first = path[0].parse().unwrap();
                let r = Arc::clone(&replies);
                if sim.is_up(from) {
                    sim.handle(from)
                        .request(
                            &ConnectionId::Sn(first),
                            "relay.hop",
                            path[1..].to_vec(),
                            move |_| {
                                *r.lock().unwrap() += 1;
                            },
                        )
                        .unwrap();
                    sent += 1;
                }
            }
            match round % 4 {
                1 => {
                    sim.reset_random_connection();
                }
                2 => {
                    let cut = nodes[(sim.rng().next_u64() % 6) as usize];
                    sim.isolate(cut, PartitionMode::Freeze);
                }
                3 => sim.heal(),
                _ => {}
            }
            if round == 6 {
                let victim = nodes[(sim.rng().next_u64() % 6) as usize];
                sim.crash(victim);
                sim.at(Duration::from_millis(300), move |sim| {
                    sim.restart(victim);
                });
            }
            let pause = 50 + sim.rng().next_u64() % 300;
            sim.run_for(Duration::from_millis(pause));
        }
        sim.heal();
        sim.run_for(Duration::from_secs(20));
        let lines = sim.trace().all().unwrap().to_vec();
        let got = *replies.lock().unwrap();
        (lines, sim.trace_hash(), got, sent)
    }

    #[test]
    fn determinism_app_level_same_seed_gives_the_same_trace() {
        let (a, ha, ra, sa) = relay_run(42);
        let (b, hb, rb, _) = relay_run(42);
        if a != b {
            let i = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or_else(|| a.len().min(b.len()));
            panic!(
                "runs diverge at line {i}:\n  {:?}\n  {:?}",
                a.get(i),
                b.get(i)
            );
        }
        assert_eq!((ha, ra), (hb, rb));
        // Busy: thousands of lines.
        assert!(a.len() > 5_000, "{} lines", a.len());
        // Every request a node made got its callback, except those its node crashed with.
        assert!(ra + 4 >= sa && sa > 40, "{ra} of {sa}");
        let (c, hc, _, _) = relay_run(43);
        assert_ne!(ha, hc);
        assert_ne!(a, c);
    }
}
