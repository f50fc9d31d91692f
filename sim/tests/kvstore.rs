//! The example application under simulation: the replicated key-value store of
//! `examples/kvstore` converges under faults on every seed, and its planted bug (replicas that
//! apply replicated writes in the order their handlers finish) is found.

#[path = "../examples/kvstore/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../examples/kvstore/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use app::ApplyOrder;
use scenario::Options;

/// Seeds each sweep covers (`LOKIMQ_SIM_SEED` runs just one).
const SEEDS: u64 = 256;

#[test]
fn kvstore_converges_under_faults_on_every_seed() {
    let opts = Options::default();
    let found = lokimq_sim::explore(lokimq_sim::seeds(0..SEEDS), |seed| {
        let out = scenario::run(seed, &opts);
        assert!(out.acked > 0, "seed {seed}: no write was acknowledged");
    });
    found.assert_all_passed();
}

#[test]
fn kvstore_planted_bug_is_found() {
    let opts = Options {
        order: ApplyOrder::Arrival,
        ..Options::default()
    };
    let failure = lokimq_sim::find_failure(0..SEEDS, |seed| {
        scenario::run(seed, &opts);
    })
    .expect("the simulation finds the apply-in-arrival-order bug on some seed");
    assert!(
        failure
            .message
            .contains("replica versions never go backwards"),
        "found something else: {failure}"
    );
    // The same seed fails the same way again (replay), and the fixed store passes it.
    let again = lokimq_sim::find_failure([failure.seed], |seed| {
        scenario::run(seed, &opts);
    })
    .expect("the failure replays");
    assert_eq!(again.message, failure.message);
    scenario::run(failure.seed, &Options::default());
}

#[test]
fn kvstore_same_seed_same_trace() {
    let opts = Options::default();
    let a = scenario::run(3, &opts);
    let b = scenario::run(3, &opts);
    let c = scenario::run(4, &opts);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!((a.acked, a.failed, a.steps), (b.acked, b.failed, b.steps));
    assert_eq!(a.disks, b.disks);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn kvstore_ten_replicas() {
    let opts = Options {
        replicas: 10,
        clients: 3,
        writes: 60,
        keys: 8,
        ..Options::default()
    };
    let found = lokimq_sim::explore(lokimq_sim::seeds(0..10), |seed| {
        scenario::run(seed, &opts);
    });
    found.assert_all_passed();
}

/// The same application code on real sockets: three replicas on 127.0.0.1 and a client.
#[test]
fn kvstore_runs_unchanged_on_real_sockets() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use lokimq::{Keypair, LokiMq, Stopwatch};

    let keypairs: Vec<Keypair> = (1..=3u8)
        .map(|i| Keypair::from_secret_bytes([i; 32]))
        .collect();
    let keys: Vec<_> = keypairs.iter().map(|k| *k.public()).collect();
    let directory: Arc<Mutex<BTreeMap<_, _>>> = Arc::default();
    let mut nodes = Vec::new();
    let mut replicas = Vec::new();
    for kp in &keypairs {
        let replica = app::Replica::new(Arc::default(), &keys, ApplyOrder::ByVersion);
        let dir = Arc::clone(&directory);
        let mut b = LokiMq::builder();
        b.keypair(kp.clone());
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        app::setup_replica(&mut b, &replica, any_port, move |pk| {
            dir.lock().unwrap().get(pk).cloned()
        })
        .unwrap();
        let node = b.start().unwrap();
        replica.started(node.handle().clone());
        let addr = node.bound_addresses()[0].clone();
        directory.lock().unwrap().insert(*node.pubkey(), addr);
        nodes.push(node);
        replicas.push(replica);
    }
    let dir = Arc::clone(&directory);
    let mut b = LokiMq::builder();
    b.sn_lookup(move |pk| dir.lock().unwrap().get(pk).cloned());
    let client = b.start().unwrap();
    let (tx, rx) = mpsc::channel();
    for (i, key) in ["a", "b", "a", "c"].iter().enumerate() {
        let tx = tx.clone();
        app::put(
            client.handle(),
            keys[i % 3],
            key,
            &format!("v{i}"),
            move |r| {
                let _ = tx.send(r);
            },
        )
        .unwrap();
    }
    for _ in 0..4 {
        let r = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    let clock = Stopwatch::start();
    loop {
        let disks: Vec<app::Disk> = replicas.iter().map(app::Replica::disk).collect();
        if disks
            .iter()
            .all(|d| d.outbox.is_empty() && d.data == disks[0].data)
        {
            assert_eq!(disks[0].data.len(), 3);
            break;
        }
        assert!(
            clock.elapsed() < Duration::from_secs(20),
            "replicas disagree: {disks:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
