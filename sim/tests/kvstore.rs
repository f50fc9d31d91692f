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
