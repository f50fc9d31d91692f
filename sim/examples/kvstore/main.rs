//! The replicated key-value store of `app.rs`, on real sockets or in the simulator.
//!
//! ```text
//! cargo run -p lokimq-sim --example kvstore -- real            # 3 replicas on 127.0.0.1
//! cargo run -p lokimq-sim --example kvstore -- sim 200         # seeds 0..200, under faults
//! cargo run -p lokimq-sim --example kvstore -- sim 200 --buggy # the planted bug: found
//! LOKIMQ_SIM_SEED=17 cargo run -p lokimq-sim --example kvstore -- sim --buggy  # replay one
//! ```

mod app;
mod scenario;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use lokimq::{Keypair, LokiMq, Stopwatch};

use app::{ApplyOrder, Disk, Replica, put, setup_replica};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("real") => real(),
        Some("sim") => {
            let count = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
            let buggy = args.iter().any(|a| a == "--buggy");
            simulate(count, buggy);
            Ok(())
        }
        _ => {
            eprintln!("usage: kvstore real | kvstore sim [SEEDS] [--buggy]");
            std::process::exit(2);
        }
    }
}

/// The same application on real sockets: three replicas, one client, a few writes.
fn real() -> Result<(), Box<dyn std::error::Error>> {
    let keypairs: Vec<Keypair> = (1..=3u8)
        .map(|i| Keypair::from_secret_bytes([i; 32]))
        .collect();
    let keys: Vec<_> = keypairs.iter().map(|k| *k.public()).collect();
    let directory: Arc<Mutex<std::collections::BTreeMap<_, _>>> = Arc::default();
    let mut nodes = Vec::new();
    let mut replicas = Vec::new();
    for kp in &keypairs {
        let replica = Replica::new(
            Arc::new(Mutex::new(Disk::default())),
            &keys,
            ApplyOrder::ByVersion,
        );
        let dir = Arc::clone(&directory);
        let mut b = LokiMq::builder();
        b.keypair(kp.clone());
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        setup_replica(&mut b, &replica, any_port, move |pk| {
            dir.lock().unwrap().get(pk).cloned()
        })?;
        let node = b.start()?;
        replica.started(node.handle().clone());
        directory
            .lock()
            .unwrap()
            .insert(*node.pubkey(), node.bound_addresses()[0].clone());
        println!("replica {} at {}", node.pubkey(), node.bound_addresses()[0]);
        nodes.push(node);
        replicas.push(replica);
    }
    let dir = Arc::clone(&directory);
    let mut b = LokiMq::builder();
    b.sn_lookup(move |pk| dir.lock().unwrap().get(pk).cloned());
    let client = b.start()?;
    let (tx, rx) = mpsc::channel();
    for (i, key) in ["apple", "banana", "apple", "cherry"].iter().enumerate() {
        let tx = tx.clone();
        let to = keys[i % keys.len()];
        put(client.handle(), to, key, &format!("v{i}"), move |r| {
            let _ = tx.send(r);
        })?;
    }
    for _ in 0..4 {
        println!("put: {:?}", rx.recv_timeout(Duration::from_secs(10))?);
    }
    let start = Stopwatch::start();
    while start.elapsed() < Duration::from_secs(10) {
        let disks: Vec<Disk> = replicas.iter().map(Replica::disk).collect();
        if disks
            .iter()
            .all(|d| d.outbox.is_empty() && d.data == disks[0].data)
        {
            println!(
                "replicas agree after {:?}: {:?}",
                start.elapsed(),
                disks[0].data
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("replicas did not agree within 10 s".into())
}

/// The store in the simulator, over `count` seeds (or `LOKIMQ_SIM_SEED`).
fn simulate(count: u64, buggy: bool) {
    let opts = scenario::Options {
        order: if buggy {
            ApplyOrder::Arrival
        } else {
            ApplyOrder::ByVersion
        },
        ..scenario::Options::default()
    };
    let started = Stopwatch::start();
    let seeds = lokimq_sim::seeds(0..count);
    let found = lokimq_sim::explore(seeds.iter().copied(), |seed| {
        let out = scenario::run(seed, &opts);
        println!(
            "seed {seed}: {} writes acknowledged, {} failed, {} keys on every replica \
             {:?} after the writes, {} steps, trace {:016x}",
            out.acked,
            out.failed,
            out.disks[0].data.len(),
            out.converged_after,
            out.steps,
            out.trace_hash
        );
    });
    println!(
        "{} seeds in {:?}: {} passed, {} failed",
        seeds.len(),
        started.elapsed(),
        found.passed.len(),
        found.failed.len()
    );
    if let Some(f) = found.first_failure() {
        println!("first failure:\n{f}");
        std::process::exit(1);
    }
}
