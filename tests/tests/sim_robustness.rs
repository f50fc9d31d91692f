//! Robustness across a 10-node network (5 service nodes; plain and CURVE; service-node and
//! `connect_remote` requests): under single-byte delivery, random latency, resets, half-open
//! connections and partitions, every request gets exactly one outcome, and that outcome is the
//! right reply, the right error, or TIMEOUT; partitions heal and traffic resumes.

use lokimq_core::time::Duration;
use lokimq_tests::mesh::{Mesh, MeshSpec};
use lokimq_tests::sim::{Chunking, Dur, LinkConfig, NetConfig, PartitionMode};
use rand_core::RngCore;

fn spec(chunking: Chunking) -> MeshSpec {
    MeshSpec {
        nodes: 10,
        service_nodes: 5,
        workers: 2,
        command_time: Dur::Uniform(Duration::ZERO, Duration::from_millis(20)),
        net: NetConfig {
            link: LinkConfig {
                latency: Duration::from_micros(500),
                jitter: Duration::from_millis(5),
            },
            chunking,
            ..NetConfig::default()
        },
        request_timeout: Duration::from_secs(5),
        heartbeat: None,
    }
}

#[test]
fn sim_robust_every_request_succeeds_without_faults_even_byte_by_byte() {
    let mut mesh = Mesh::new(100, &spec(Chunking::Fixed(1)));
    mesh.sim.check_idle_expiry = true;
    for _ in 0..6 {
        for _ in 0..10 {
            mesh.random_request();
        }
        mesh.sim.run_for(Duration::from_millis(150));
    }
    mesh.settle();
    let (good, timeouts) = mesh.check_outcomes(false);
    assert_eq!((good, timeouts), (mesh.tracked(), 0));
    assert_eq!(mesh.refused_at_send(), 0);
    assert!(good >= 40, "{good}");
}

#[test]
fn sim_robust_every_request_has_one_outcome_under_resets_and_chunking() {
    for seed in [1u64, 2, 3] {
        let chunking = if seed == 1 {
            Chunking::Fixed(1)
        } else {
            Chunking::Random { max: 8 }
        };
        let mut mesh = Mesh::new(seed, &spec(chunking));
        mesh.sim.check_idle_expiry = true;
        for round in 0..12 {
            for _ in 0..6 {
                mesh.random_request();
            }
            if round % 2 == 1 {
                // Resets and half-open connections only (partitions are the next test).
                let conns = mesh.sim.open_connections();
                if !conns.is_empty() {
                    let r = mesh.sim.rng().next_u64();
                    let (a, b) = conns[(r % conns.len() as u64) as usize];
                    if r >> 32 & 1 == 0 {
                        mesh.sim.reset_end(a);
                    } else {
                        mesh.sim.reset_one_side(b);
                    }
                }
            }
            let pause = mesh.sim.rng().next_u64() % 300;
            mesh.sim.run_for(Duration::from_millis(pause));
        }
        mesh.settle();
        let (good, timeouts) = mesh.check_outcomes(true);
        assert_eq!(good + timeouts, mesh.tracked());
        assert!(
            good > mesh.tracked() / 2,
            "seed {seed}: {good} good, {timeouts} timeouts"
        );
        // Afterwards the network works again, fully.
        let before = mesh.tracked();
        for _ in 0..20 {
            mesh.random_request();
        }
        mesh.settle();
        mesh.sim.assert_requests_resolved();
        let (good2, timeouts2) = mesh.check_outcomes(true);
        assert_eq!(
            timeouts2, timeouts,
            "seed {seed}: no new timeouts once quiet"
        );
        assert_eq!(good2, good + (mesh.tracked() - before));
    }
}

#[test]
fn sim_robust_partitions_heal_and_traffic_resumes() {
    for (seed, mode) in [(10u64, PartitionMode::Freeze), (11, PartitionMode::Reset)] {
        let mut mesh = Mesh::new(seed, &spec(Chunking::Random { max: 32 }));
        mesh.sim.check_idle_expiry = true;
        let left = [0, 1, 2, 5, 6];
        let right = [3, 4, 7, 8, 9];
        // Warm up: connections in both directions.
        for &a in &left {
            for &b in &right {
                mesh.request_remote(a, b, false);
                mesh.request_sn(b, a.min(4));
            }
        }
        mesh.sim.run_for(Duration::from_secs(1));
        let (warm, _) = mesh.check_outcomes(false);
        mesh.sim.partition(&left, &right, mode);
        // Traffic inside each side still flows; across it waits (Freeze) or fails over.
        let inside = mesh.request_remote(0, 1, true).unwrap();
        let across = mesh.request_sn(7, 0);
        mesh.sim.run_for(Duration::from_secs(2));
        assert!(
            mesh.sim.node(0).outcome(inside).is_some_and(Result::is_ok),
            "{mode:?}"
        );
        mesh.sim.heal();
        mesh.sim.run_for(Duration::from_secs(6));
        // Across requests made during the partition got exactly one outcome.
        if let Some(r) = across {
            assert!(mesh.sim.node(7).outcome(r).is_some(), "{mode:?}");
        }
        // After healing (and the reconnect back-off), everything works again.
        let before = mesh.tracked();
        for &a in &left {
            for &b in &right {
                mesh.request_remote(a, b, false);
                mesh.request_remote(b, a, a >= 5 || b >= 5);
                mesh.request_sn(b, a.min(4));
                mesh.request_sn_only(a.min(4), b.min(4));
            }
        }
        mesh.settle();
        let (good, timeouts) = mesh.check_outcomes(true);
        assert_eq!(good + timeouts, mesh.tracked());
        assert!(
            good >= warm + (mesh.tracked() - before),
            "{mode:?}: {good} good, {timeouts} timeouts"
        );
    }
}

/// Seeds for the all-faults soak: two by default; `SIM_ROBUST_SEEDS=N` explores seeds 1..=N.
fn soak_seeds() -> Vec<u64> {
    match std::env::var("SIM_ROBUST_SEEDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(n) => (1..=n).collect(),
        None => vec![21, 22],
    }
}

#[test]
fn sim_robust_random_faults_of_every_kind() {
    for seed in soak_seeds() {
        let mut spec = spec(Chunking::Random { max: 24 });
        spec.heartbeat = Some((Duration::from_secs(1), Duration::from_secs(3)));
        let mut mesh = Mesh::new(seed, &spec);
        mesh.sim.check_idle_expiry = true;
        for round in 0..16 {
            for _ in 0..6 {
                mesh.random_request();
            }
            if round % 2 == 0 {
                mesh.random_fault();
            }
            let pause = mesh.sim.rng().next_u64() % 600;
            mesh.sim.run_for(Duration::from_millis(pause));
        }
        mesh.settle();
        let (good, timeouts) = mesh.check_outcomes(true);
        assert_eq!(good + timeouts, mesh.tracked(), "seed {seed}");
        // Healed and quiet (heartbeats have found any half-open connection): all good again.
        mesh.sim.run_for(Duration::from_secs(5));
        let before = mesh.tracked();
        for _ in 0..20 {
            mesh.random_request();
        }
        mesh.settle();
        let (good2, timeouts2) = mesh.check_outcomes(true);
        assert_eq!(timeouts2, timeouts, "seed {seed}: failures after healing");
        assert_eq!(good2, good + (mesh.tracked() - before), "seed {seed}");
    }
}
