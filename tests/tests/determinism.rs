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
