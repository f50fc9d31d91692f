//! The application-level simulator's own behaviour: requests, determinism, faults, crashes.

use std::sync::{Arc, Mutex};

use lokimq::{AuthLevel, Bytes, ConnectOptions, ConnectionId, RequestError};
use lokimq_sim::{Chunking, Dur, Invariant, JobTimes, PartitionMode, Sim};
use std::time::Duration;

type Replies = Arc<Mutex<Vec<Result<Vec<Bytes>, RequestError>>>>;

fn echo_server(sim: &mut Sim) -> lokimq_sim::NodeId {
    sim.add_node(|b| {
        b.add_category("demo", AuthLevel::None)?
            .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
            .listen_curve("tcp://*:5000", |_, _, _| AuthLevel::None)?;
        Ok(())
    })
}

fn run_echo(seed: u64) -> (u64, Vec<Result<Vec<Bytes>, RequestError>>) {
    let mut sim = Sim::new(seed);
    sim.add_invariant(Invariant::no_request_lost());
    sim.add_invariant(Invariant::replies_match_requests());
    sim.set_chunking(Chunking::Random { max: 9 });
    let server = echo_server(&mut sim);
    let client = sim.add_node(|_| Ok(()));
    let h = sim.handle(client);
    let conn = h
        .connect_remote(
            sim.address(server),
            |_| {},
            |_, _| {},
            ConnectOptions::default(),
        )
        .unwrap();
    let replies: Replies = Arc::default();
    for i in 0..10 {
        let r = Arc::clone(&replies);
        h.request(&conn, "demo.echo", [format!("m{i}")], move |x| {
            r.lock().unwrap().push(x)
        })
        .unwrap();
    }
    sim.run_until(|_| replies.lock().unwrap().len() == 10);
    let got = replies.lock().unwrap().clone();
    (sim.trace_hash(), got)
}

#[test]
fn requests_get_their_replies_and_a_seed_gives_one_trace() {
    let (h1, r1) = run_echo(7);
    let (h2, r2) = run_echo(7);
    let (h3, _) = run_echo(8);
    assert_eq!(h1, h2);
    assert_ne!(h1, h3);
    assert_eq!(r1, r2);
    assert_eq!(r1.len(), 10);
    assert!(r1.iter().all(Result::is_ok), "{r1:?}");
}

#[test]
fn service_nodes_find_each_other_through_the_directory() {
    let mut sim = Sim::new(3);
    sim.add_invariant(Invariant::no_request_lost());
    let dir = sim.directory();
    let mut sns = Vec::new();
    for _ in 0..3 {
        let lookup = dir.clone();
        sns.push(sim.add_node(move |b| {
            b.service_node(true)
                .sn_lookup(lookup.lookup_fn())
                .add_category("sn", AuthLevel::None)?
                .add_request_command("sn", "whoami", |m| {
                    m.send_reply([m.handle().pubkey().to_string()]);
                })?
                .listen_curve("tcp://*:22020", |_, _, _| AuthLevel::None)?;
            Ok(())
        }));
    }
    let keys: Vec<_> = sns.iter().map(|n| sim.pubkey(*n)).collect();
    for n in &sns {
        sim.handle(*n).set_active_sns(keys.clone()).unwrap();
    }
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    for (i, n) in sns.iter().enumerate() {
        let to = ConnectionId::Sn(keys[(i + 1) % 3]);
        let g = Arc::clone(&got);
        sim.handle(*n)
            .request(&to, "sn.whoami", lokimq::NO_DATA, move |r| {
                g.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&r.unwrap()[0]).into_owned());
            })
            .unwrap();
    }
    sim.run_until(|_| got.lock().unwrap().len() == 3);
    let mut got = got.lock().unwrap().clone();
    got.sort();
    let mut want: Vec<String> = keys.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn crash_restart_keeps_the_key_and_requests_in_flight_time_out() {
    let mut sim = Sim::new(11);
    sim.add_invariant(Invariant::no_request_lost());
    sim.add_invariant(Invariant::replies_match_requests());
    let server = echo_server(&mut sim);
    let key = sim.pubkey(server);
    sim.set_job_times(server, JobTimes::all(Dur::millis(500)));
    let client = sim.add_node(|_| Ok(()));
    let h = sim.handle(client);
    // OxenMQ's reconnect behaviour: keep retrying a refused connect (the default gives the
    // link up, and fails its requests with DISCONNECTED, once a reconnect is refused).
    let retrying = ConnectOptions::default().retry_refused(true);
    let conn = h
        .connect_remote(sim.address(server), |_| {}, |_, _| {}, retrying)
        .unwrap();
    let replies: Replies = Arc::default();
    let r = Arc::clone(&replies);
    let opts = lokimq::RequestOptions::default().timeout(Duration::from_secs(2));
    h.request_with(&conn, "demo.echo", ["x"], opts, move |x| {
        r.lock().unwrap().push(x)
    })
    .unwrap();
    sim.run_for(Duration::from_millis(100));
    sim.crash(server);
    assert!(matches!(
        sim.handle(server).job(|| {}, None),
        Err(lokimq::Error::Stopped)
    ));
    sim.run_until(|_| !replies.lock().unwrap().is_empty());
    assert_eq!(replies.lock().unwrap()[0], Err(RequestError::Timeout));
    sim.restart(server);
    assert_eq!(sim.pubkey(server), key);
    // The connection reconnects by itself; a new request goes through.
    let r = Arc::clone(&replies);
    // (The client reconnects with its back-off: give it the default 15 s.)
    h.request(&conn, "demo.echo", ["y"], move |x| {
        r.lock().unwrap().push(x)
    })
    .unwrap();
    sim.run_until(|_| replies.lock().unwrap().len() == 2);
    assert_eq!(replies.lock().unwrap()[1], Ok(vec![Bytes::from("y")]));
}

#[test]
fn a_partition_freezes_traffic_until_it_heals() {
    let mut sim = Sim::new(5);
    let server = echo_server(&mut sim);
    let client = sim.add_node(|_| Ok(()));
    let h = sim.handle(client);
    let conn = h
        .connect_remote(
            sim.address(server),
            |_| {},
            |_, _| {},
            ConnectOptions::default(),
        )
        .unwrap();
    sim.run_for(Duration::from_millis(50));
    sim.partition(&[client], &[server], PartitionMode::Freeze);
    let replies: Replies = Arc::default();
    let r = Arc::clone(&replies);
    h.request(&conn, "demo.echo", ["z"], move |x| {
        r.lock().unwrap().push(x)
    })
    .unwrap();
    sim.run_for(Duration::from_secs(3));
    assert!(replies.lock().unwrap().is_empty());
    sim.heal();
    sim.run_until(|_| !replies.lock().unwrap().is_empty());
    assert_eq!(replies.lock().unwrap()[0], Ok(vec![Bytes::from("z")]));
}

#[test]
fn a_violated_invariant_fails_with_the_seed() {
    let found = lokimq_sim::explore([9], |seed| {
        let mut sim = Sim::new(seed);
        sim.add_invariant(Invariant::new("nothing after 1 s", |s: &Sim| {
            if s.elapsed() > Duration::from_secs(1) {
                Err("too late".into())
            } else {
                Ok(())
            }
        }));
        let _server = echo_server(&mut sim);
        sim.run_for(Duration::from_secs(5));
    });
    let f = found.first_failure().expect("it fails");
    assert_eq!(f.seed, 9);
    assert!(
        f.message.contains("seed 9") && f.message.contains("nothing after 1 s"),
        "{}",
        f.message
    );
    assert!(f.message.contains("LOKIMQ_SIM_SEED=9"), "{}", f.message);
    assert!(!f.trace_tail.is_empty());
}

#[test]
fn timers_and_batches_run_in_virtual_time() {
    let mut sim = Sim::new(21);
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let t = Arc::clone(&ticks);
    let n = sim.add_node(move |b| {
        let t = Arc::clone(&t);
        b.add_timer(
            move || t.lock().unwrap().push(()),
            Duration::from_millis(100),
            false,
            lokimq::Target::Worker,
        )?;
        Ok(())
    });
    sim.run_for(Duration::from_millis(1050));
    assert_eq!(ticks.lock().unwrap().len(), 10);

    // Three batch jobs of 50 ms each on four workers run side by side: the completion runs at
    // 50 ms (plus its own 50 ms), not at 150 ms.
    sim.set_job_times(n, JobTimes::all(Dur::millis(50)));
    let done = Arc::new(Mutex::new(None));
    let mut batch = lokimq::Batch::new();
    for i in 0..3u64 {
        batch.add_job(move || i * 10);
    }
    let d = Arc::clone(&done);
    batch
        .completion(move |r| {
            *d.lock().unwrap() = Some(r.into_iter().map(Result::unwrap).sum::<u64>());
        })
        .unwrap();
    let start = sim.now();
    sim.handle(n).batch(batch).unwrap();
    sim.run_until(|_| done.lock().unwrap().is_some());
    assert_eq!(*done.lock().unwrap(), Some(30));
    assert_eq!(sim.now() - start, Duration::from_millis(100));
}

#[test]
fn a_stuck_worker_keeps_its_slot_and_requests_behind_it_time_out() {
    let mut sim = Sim::with_config(
        4,
        lokimq_sim::SimConfig {
            general_workers: 1,
            ..Default::default()
        },
    );
    sim.add_invariant(Invariant::no_request_lost());
    let server = echo_server(&mut sim);
    sim.set_job_times(
        server,
        JobTimes::default().command("demo.echo", Dur::Forever),
    );
    let client = sim.add_node(|_| Ok(()));
    let h = sim.handle(client);
    let conn = h
        .connect_remote(
            sim.address(server),
            |_| {},
            |_, _| {},
            ConnectOptions::default(),
        )
        .unwrap();
    let replies: Replies = Arc::default();
    for _ in 0..2 {
        let r = Arc::clone(&replies);
        h.request(&conn, "demo.echo", ["x"], move |x| {
            r.lock().unwrap().push(x)
        })
        .unwrap();
    }
    sim.run_until(|_| replies.lock().unwrap().len() == 2);
    assert_eq!(
        *replies.lock().unwrap(),
        [Err(RequestError::Timeout), Err(RequestError::Timeout)]
    );
    assert_eq!(sim.busy_jobs(server), 1, "one stuck, one never started");
    assert_eq!(sim.stats(server).sched.active, 1);
}

#[test]
fn a_process_crash_resets_peers_and_a_power_loss_leaves_them_half_open() {
    for how in [lokimq_sim::Crash::Process, lokimq_sim::Crash::PowerLoss] {
        let mut sim = Sim::new(6);
        let server = echo_server(&mut sim);
        let client = sim.add_node(|_| Ok(()));
        sim.handle(client)
            .connect_remote(
                sim.address(server),
                |_| {},
                |_, _| {},
                ConnectOptions::default(),
            )
            .unwrap();
        sim.run_for(Duration::from_millis(100));
        assert_eq!(sim.stats(client).connections, 1);
        sim.crash_with(server, how);
        sim.run_for(Duration::from_millis(1));
        let still = sim.stats(client).connections;
        match how {
            lokimq_sim::Crash::Process => assert_eq!(still, 0, "the reset is seen at once"),
            _ => assert_eq!(still, 1, "nothing is seen"),
        }
    }
}

#[test]
fn blocking_handle_calls_refuse_instead_of_hanging() {
    let mut sim = Sim::new(2);
    let n = echo_server(&mut sim);
    assert!(matches!(
        sim.handle(n).stats(),
        Err(lokimq::Error::OnProxyThread)
    ));
    assert_eq!(sim.stats(n).connections, 0);
}
