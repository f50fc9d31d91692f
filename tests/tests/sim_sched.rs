//! Scheduling in the simulator (behaviour.md §3.1, §3.7): worker limits driven by real incoming
//! commands over the network, observed from the `RunJob`/`JobFinished` stream; reserved threads
//! under general load; request chains with a single worker; shutdown with running jobs; batches
//! and timers through the node API.

use lokimq_core::registry::{CategoryOptions, QueueLimit};
use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use lokimq_core::auth::Access;
use lokimq_core::node::{
    Completion, ConnectOptions, ConnectionId, InDriver, RequestError, RequestOptions, Target,
};
use lokimq_core::registry::{Registry, RegistryBuilder};
use lokimq_core::time::{Duration, Instant};
use lokimq_tests::fixtures::{quiet_config, strs};
use lokimq_tests::sim::{Dur, JobKind, JobTimes, NodeSpec, Sim};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Category `a` reserves 2 threads, `b` none (the README's example); both have a long `job`.
fn ab_registry() -> Registry {
    let mut r = RegistryBuilder::new();
    r.add_category(
        "a",
        CategoryOptions::new(Access::default()).reserved_threads(2),
    )
    .unwrap();
    r.add_command("a", "job").unwrap();
    r.add_request_command("a", "req").unwrap();
    r.add_category("b", CategoryOptions::new(Access::default()))
        .unwrap();
    r.add_command("b", "job").unwrap();
    r.add_request_command("b", "req").unwrap();
    r.build()
}

/// Like [`ab_registry`] but nothing reserved: a node with one general worker has exactly
/// 1 general + 1 batch + 1 reply thread.
fn chain_registry() -> Registry {
    let mut r = RegistryBuilder::new();
    for c in ["a", "b"] {
        r.add_category(c, CategoryOptions::new(Access::default()))
            .unwrap();
        r.add_request_command(c, "req").unwrap();
    }
    r.build()
}

/// A [`chain_registry`] node whose `a.req` asks `b.req` over the connection in `peer` (filled
/// in once it exists) and replies `["via-b", …that reply]`, and whose `b.req` echoes; each
/// handler takes `job`.
fn chain_spec(job: Duration, peer: Rc<RefCell<Option<ConnectionId>>>) -> NodeSpec {
    NodeSpec::new(quiet_config(1), chain_registry())
        .handler("a.req", move |ctx, m| {
            ctx.take(job);
            let target = m.reply_to.clone();
            let to = peer.borrow().clone().expect("peer connection");
            ctx.request(
                to,
                "b.req",
                m.data.clone(),
                RequestOptions::default(),
                move |ctx, r| {
                    let mut parts = vec![Bytes::from_static(b"via-b")];
                    parts.extend(r.clone().unwrap_or_default());
                    ctx.reply_to(target, parts);
                },
            );
        })
        .handler("b.req", move |ctx, m| {
            ctx.take(job);
            ctx.reply(m, m.data.clone());
        })
}

fn is_command(k: &JobKind) -> bool {
    matches!(k, JobKind::Command { .. })
}

/// A server with 4 general workers where every command takes 10 s, fed `pattern` (e.g.
/// "AABBBB") over the network by a raw DEALER, one message after the other.
fn readme_scenario(pattern: &str) -> (Sim, usize) {
    let mut sim = Sim::new(1);
    let spec = NodeSpec::new(quiet_config(4), ab_registry()).job_times(JobTimes {
        command: Dur::Fixed(secs(10)),
        ..JobTimes::default()
    });
    let server = sim.add_node(spec);
    let (_, addr) = sim.listen_plain(server);
    let t = sim.raw_dealer(&addr);
    sim.run_until_idle();
    for c in pattern.chars() {
        let cmd = if c == 'A' { "a.job" } else { "b.job" };
        sim.raw_send(t, strs(&[cmd, &c.to_string()]));
    }
    sim.run_until_idle();
    (sim, server)
}

/// Which of the commands (in arrival order) had to wait for a worker.
fn queued(sim: &Sim, server: usize) -> Vec<bool> {
    let first = sim.node(server).jobs[0].started;
    sim.node(server)
        .jobs
        .iter()
        .filter(|j| is_command(&j.kind))
        .map(|j| j.started > first)
        .collect()
}

#[test]
fn sim_sched_readme_scenarios() {
    // (pattern, max concurrent, which ones queued — in arrival order)
    let cases = [
        ("AABBBB", 4, "....QQ"),
        ("AABBAA", 4, "....QQ"),
        ("BBBAAA", 5, ".....Q"),
        ("BBBBBBAAA", 6, "....QQ..Q"),
    ];
    for (pattern, max, waits) in cases {
        let (sim, server) = readme_scenario(pattern);
        let node = sim.node(server);
        assert_eq!(node.max_concurrent(is_command), max, "{pattern}");
        // Jobs are recorded in start order; recover arrival order from their data.
        let mut started: Vec<(String, Instant)> = node
            .jobs
            .iter()
            .filter(|j| is_command(&j.kind))
            .map(|j| match &j.kind {
                JobKind::Command { name, .. } => (name.clone(), j.started),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(started.len(), pattern.len());
        // Arrival order is the pattern; the first `max` admitted start together.
        let first = started[0].1;
        let n_immediate = started.iter().filter(|(_, t)| *t == first).count();
        assert_eq!(n_immediate, max, "{pattern}");
        let expected_waits = waits.chars().filter(|&c| c == 'Q').count();
        assert_eq!(pattern.len() - n_immediate, expected_waits, "{pattern}");
        // Which letters waited.
        let messages: Vec<char> = node
            .commands
            .iter()
            .map(|(_, _, m)| m.data[0][0] as char)
            .collect();
        started.sort_by_key(|(_, t)| *t);
        let waited: String = pattern
            .chars()
            .zip(waits.chars())
            .filter(|(_, w)| *w == 'Q')
            .map(|(c, _)| c)
            .collect();
        let late: String = messages[n_immediate..].iter().collect();
        let mut a: Vec<char> = waited.chars().collect();
        let mut b: Vec<char> = late.chars().collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{pattern}: the queued ones");
        // Nothing ran over the limits at any time.
        let s = node.node.stats().sched;
        assert!(s.active <= s.max_workers);
    }
    // "AABBBB": the 3rd and 4th B wait; queued() shows it from the trace, in start order.
    let (sim, server) = readme_scenario("AABBBB");
    assert_eq!(
        queued(&sim, server),
        [false, false, false, false, true, true]
    );
}

#[test]
fn sim_sched_reserved_threads_are_never_starved() {
    let mut sim = Sim::new(2);
    let spec = NodeSpec::new(quiet_config(4), ab_registry()).job_times(JobTimes {
        command: Dur::Fixed(secs(5)),
        ..JobTimes::default()
    });
    let server = sim.add_node(spec);
    let (_, addr) = sim.listen_plain(server);
    let flood = sim.raw_dealer(&addr);
    let reserved = sim.raw_dealer(&addr);
    sim.run_until_idle();
    // General traffic fills every general worker and a long queue.
    for i in 0..40 {
        sim.raw_send(flood, strs(&["b.job", &i.to_string()]));
    }
    sim.run_for(secs(1));
    assert_eq!(sim.node(server).node.stats().sched.active, 4);
    // Category a still gets its two reserved threads at once, again and again.
    for round in 0..5 {
        let sent = sim.now();
        sim.raw_send(reserved, strs(&["a.job", "x"]));
        sim.raw_send(reserved, strs(&["a.job", "y"]));
        sim.run_for(Duration::from_millis(10));
        let a_starts: Vec<Instant> = sim
            .node(server)
            .jobs
            .iter()
            .filter(|j| matches!(&j.kind, JobKind::Command { name, .. } if name == "a.job"))
            .map(|j| j.started)
            .collect();
        assert_eq!(a_starts.len(), 2 * (round + 1));
        assert!(
            a_starts[2 * round..]
                .iter()
                .all(|&t| t - sent <= Duration::from_millis(2)),
            "round {round}: a's jobs waited: {a_starts:?}"
        );
        sim.run_for(secs(6));
    }
    sim.run_for(secs(60));
    assert_eq!(
        sim.node(server)
            .jobs
            .iter()
            .filter(|j| is_command(&j.kind))
            .count(),
        50
    );
}

#[test]
fn sim_sched_single_worker_request_chain_over_inproc_never_deadlocks() {
    for job_ms in [0u64, 50] {
        let mut sim = Sim::new(3);
        let inner = Rc::new(RefCell::new(None::<ConnectionId>));
        let spec = chain_spec(Duration::from_millis(job_ms), inner.clone());
        let server = sim.add_node(spec);
        let conn = sim.connect_inproc(server, None);
        *inner.borrow_mut() = Some(conn);
        let (_, addr) = sim.listen_plain(server);
        let client = sim.add_node(NodeSpec::new(quiet_config(1), chain_registry()));
        let c = sim.connect_remote(client, addr, &ConnectOptions::default());
        // Ten chains at once, one general worker (plus one batch and one reply thread).
        let reqs: Vec<_> = (0..10)
            .map(|i| {
                sim.request_default(client, &c, "a.req", strs(&[&i.to_string()]))
                    .unwrap()
            })
            .collect();
        sim.run_until_idle();
        for (i, r) in reqs.iter().enumerate() {
            assert_eq!(
                sim.node(client).outcome(*r),
                Some(&Ok(strs(&["via-b", &i.to_string()]))),
                "job {job_ms} ms, chain {i}"
            );
        }
        let s = sim.node(server).node.stats().sched;
        assert_eq!((s.general_workers, s.max_workers), (1, 3));
        // Reply callbacks ran on the reply thread while commands held the general worker.
        if job_ms > 0 {
            let node = sim.node(server);
            let overlap = node.jobs.iter().any(|r| {
                matches!(r.kind, JobKind::Reply(_))
                    && node.jobs.iter().any(|c| {
                        is_command(&c.kind)
                            && c.started <= r.started
                            && c.finished.unwrap() > r.started
                    })
            });
            assert!(
                overlap
                    || node
                        .jobs
                        .iter()
                        .all(|j| !matches!(j.kind, JobKind::Reply(_)))
            );
        }
    }
}

#[test]
fn sim_sched_single_worker_request_chain_across_nodes() {
    // a.req on node 0 asks node 1's b.req, which itself asks node 0's b.req back: every node
    // has one general worker.
    let mut sim = Sim::new(4);
    let cells: Vec<Rc<RefCell<Option<ConnectionId>>>> =
        (0..2).map(|_| Rc::new(RefCell::new(None))).collect();
    let mut nodes = Vec::new();
    for cell in &cells {
        nodes.push(sim.add_node(chain_spec(Duration::from_millis(20), cell.clone())));
    }
    let (_, a0) = sim.listen_plain(nodes[0]);
    let (_, a1) = sim.listen_plain(nodes[1]);
    let to1 = sim.connect_remote(nodes[0], a1, &ConnectOptions::default());
    let to0 = sim.connect_remote(nodes[1], a0, &ConnectOptions::default());
    *cells[0].borrow_mut() = Some(to1.clone());
    *cells[1].borrow_mut() = Some(to0.clone());
    sim.run_until_idle();
    let mut reqs = Vec::new();
    for i in 0..6 {
        reqs.push((
            0,
            sim.request_default(nodes[1], &to0, "a.req", strs(&[&format!("x{i}")]))
                .unwrap(),
        ));
        reqs.push((
            1,
            sim.request_default(nodes[0], &to1, "a.req", strs(&[&format!("y{i}")]))
                .unwrap(),
        ));
    }
    sim.run_until_idle();
    for (k, (_, r)) in reqs.iter().enumerate() {
        let requester = if k % 2 == 0 { nodes[1] } else { nodes[0] };
        let o = sim.node(requester).outcome(*r).cloned();
        assert!(
            matches!(o, Some(Ok(ref d)) if d[0] == "via-b" && d.len() == 2),
            "{k}: {o:?}"
        );
    }
}

#[test]
fn sim_sched_shutdown_with_running_jobs() {
    let mut sim = Sim::new(5);
    let spec = NodeSpec::new(quiet_config(2), ab_registry())
        .job_times(JobTimes {
            command: Dur::Fixed(secs(10)),
            ..JobTimes::default()
        })
        .handler("b.req", |ctx, m| ctx.reply(m, vec![]));
    let server = sim.add_node(spec);
    let (_, addr) = sim.listen_plain(server);
    let client = sim.add_node(NodeSpec::new(quiet_config(1), ab_registry()));
    let c = sim.connect_remote(client, addr, &ConnectOptions::default());
    sim.run_until_idle();
    // Two long jobs run, three more wait in the queue.
    for i in 0..5 {
        sim.send_default(client, &c, "b.job", strs(&[&i.to_string()]))
            .unwrap();
    }
    sim.run_for(secs(1));
    // A request from the shutting-down node (the client never answers): its callback must
    // never run.
    let back = sim.node(server).commands[0].2.conn.clone();
    let pending = sim.request_default(server, &back, "b.req", vec![]).unwrap();
    sim.run_for(Duration::from_millis(10));
    let t_shut = sim.now();
    assert_eq!(sim.node(server).node.stats().sched.active, 2);
    let spawned = sim.node(server).node.stats().sched.spawned;
    sim.shutdown(server);
    // Commands arriving now are not dispatched.
    sim.send_default(client, &c, "b.job", strs(&["late"]))
        .unwrap();
    sim.run_for(secs(30));
    let node = sim.node(server);
    let finished: Vec<Instant> = node.jobs.iter().map(|j| j.finished.unwrap()).collect();
    assert_eq!(node.jobs.len(), 2, "only the two running jobs ever ran");
    assert!(node.jobs.iter().all(|j| is_command(&j.kind)));
    let stop_times: Vec<Instant> = node.stopped_workers.iter().map(|(t, _)| *t).collect();
    assert_eq!(node.stopped_workers.len(), usize::from(spawned));
    // Busy workers stop as each finishes; the node stops after the last one.
    for f in &finished {
        assert!(stop_times.contains(f));
    }
    assert!(stop_times.iter().all(|t| *t >= t_shut));
    assert_eq!(node.stopped, Some(*finished.iter().max().unwrap()));
    // Every connection closed; the client saw it.
    assert!(node.open_conns.is_empty());
    assert_eq!(node.node.stats().connections, 0);
    assert!(
        node.requests[&pending].outcomes.is_empty(),
        "callbacks are never called"
    );
    assert_eq!(sim.node(client).commands.len(), 1, "the request went out");
    assert_eq!(node.node.poll_timeout(), None);
}

fn batch_node(workers: u16, other: Dur) -> NodeSpec {
    NodeSpec::new(quiet_config(workers), RegistryBuilder::new().build()).job_times(JobTimes {
        other,
        ..JobTimes::default()
    })
}

#[test]
fn sim_sched_batches_complete_exactly_once() {
    let mut sim = Sim::new(6);
    let n = sim.add_node(batch_node(
        2,
        Dur::Uniform(Duration::from_millis(1), Duration::from_millis(50)),
    ));
    let on_worker = sim
        .with_node(n, |node, now| {
            node.submit_batch(now, &[Target::Worker; 7], Completion::Worker)
        })
        .unwrap();
    let in_driver = sim
        .with_node(n, |node, now| {
            node.submit_batch(now, &[Target::Worker; 3], Completion::InDriver)
        })
        .unwrap();
    let silent = sim
        .with_node(n, |node, now| {
            node.submit_batch(now, &[Target::Worker; 2], Completion::None)
        })
        .unwrap();
    sim.run_until_idle();
    let node = sim.node(n);
    let items = |b| {
        let mut v: Vec<u32> = node
            .jobs
            .iter()
            .filter_map(|j| match j.kind {
                JobKind::BatchItem(x, i) if x == b => Some(i),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(items(on_worker), (0..7).collect::<Vec<_>>());
    assert_eq!(items(in_driver), (0..3).collect::<Vec<_>>());
    assert_eq!(items(silent), vec![0, 1]);
    let completions: Vec<_> = node
        .jobs
        .iter()
        .filter(|j| matches!(j.kind, JobKind::Completion(_)))
        .collect();
    assert_eq!(completions.len(), 1);
    // The completion starts after every job of its batch finished.
    let last_item = node
        .jobs
        .iter()
        .filter(|j| matches!(j.kind, JobKind::BatchItem(x, _) if x == on_worker))
        .map(|j| j.finished.unwrap())
        .max()
        .unwrap();
    assert!(completions[0].started >= last_item);
    assert_eq!(
        node.in_driver.iter().map(|(_, d)| *d).collect::<Vec<_>>(),
        vec![InDriver::Completion { batch: in_driver }]
    );
    let mut done: Vec<_> = node.batch_done.iter().map(|(_, b)| *b).collect();
    done.sort();
    assert_eq!(done, vec![on_worker, in_driver, silent]);
    assert_eq!(node.node.stats().sched.live_batches, 0);
}

#[test]
fn sim_sched_timers_squelch_and_cancel() {
    let timers = |sim: &Sim, n: usize| -> Vec<Instant> {
        sim.node(n)
            .jobs
            .iter()
            .filter(|j| matches!(j.kind, JobKind::Timer(_)))
            .map(|j| j.started)
            .collect()
    };
    // Each firing takes 2.5 s on a 1 s timer.
    let mut sim = Sim::new(7);
    let n = sim.add_node(batch_node(2, Dur::Fixed(Duration::from_millis(2500))));
    let t0 = sim.now();
    let squelched = sim
        .with_node(n, |node, now| {
            node.add_timer(now, secs(1), true, Target::Worker)
        })
        .unwrap();
    sim.run_until(t0 + secs(10));
    // Fires at 1 s; 2 and 3 are skipped while it runs (until 3.5 s); fires at 4, 7, 10.
    assert_eq!(
        timers(&sim, n),
        [1, 4, 7, 10].map(|s| t0 + secs(s)).to_vec()
    );
    assert!(sim.with_node(n, |node, now| node.cancel_timer(now, squelched)));
    let at_cancel = timers(&sim, n).len();
    sim.run_until(t0 + secs(20));
    assert_eq!(timers(&sim, n).len(), at_cancel, "no firing after cancel");
    assert_eq!(sim.node(n).timer_released.len(), 1);
    assert!(
        !sim.with_node(n, |node, now| node.cancel_timer(now, squelched)),
        "idempotent"
    );

    // Without squelch every firing runs or queues. With 2 general workers and 1 batch thread a
    // batch-pool job may start while `active < general` (or the pool is under its reservation
    // of 1): two at a time, so the starts are 1, 2, then each 2.5 s after a finish.
    let mut sim = Sim::new(8);
    let n = sim.add_node(batch_node(2, Dur::Fixed(Duration::from_millis(2500))));
    let t0 = sim.now();
    sim.with_node(n, |node, now| {
        node.add_timer(now, secs(1), false, Target::Worker)
    })
    .unwrap();
    sim.run_until(t0 + secs(10));
    let fired = timers(&sim, n);
    assert_eq!(
        fired,
        [1000, 2000, 3500, 4500, 6000, 7000, 8500, 9500]
            .map(|ms| t0 + Duration::from_millis(ms))
            .to_vec()
    );
    assert_eq!(
        sim.node(n)
            .max_concurrent(|k| matches!(k, JobKind::Timer(_))),
        2
    );

    // In-driver timers run on the driver, with no worker.
    let mut sim = Sim::new(9);
    let n = sim.add_node(batch_node(1, Dur::ZERO));
    let t0 = sim.now();
    let timer = sim
        .with_node(n, |node, now| {
            node.add_timer(now, Duration::from_millis(300), true, Target::InDriver)
        })
        .unwrap();
    sim.run_until(t0 + secs(1));
    assert_eq!(
        sim.node(n)
            .in_driver
            .iter()
            .map(|(t, d)| (*t, *d))
            .collect::<Vec<_>>(),
        [300, 600, 900]
            .map(|ms| (t0 + Duration::from_millis(ms), InDriver::Timer { timer }))
            .to_vec()
    );
    assert!(sim.node(n).jobs.is_empty());
}

#[test]
fn sim_sched_full_queue_drops_commands_and_the_requester_times_out() {
    let mut r = RegistryBuilder::new();
    r.add_category(
        "q",
        CategoryOptions::new(Access::default()).max_queue(QueueLimit::At(2)),
    )
    .unwrap();
    r.add_request_command("q", "req").unwrap();
    let mut sim = Sim::new(10);
    let server = sim.add_node(NodeSpec::new(quiet_config(1), r.build()).handler(
        "q.req",
        |ctx, m| {
            ctx.take(secs(1));
            ctx.reply(m, vec![]);
        },
    ));
    let (_, addr) = sim.listen_plain(server);
    let client = sim.add_node(NodeSpec::new(
        quiet_config(1),
        RegistryBuilder::new().build(),
    ));
    let c = sim.connect_remote(client, addr, &ConnectOptions::default());
    sim.run_until_idle();
    let reqs: Vec<_> = (0..5)
        .map(|_| sim.request_default(client, &c, "q.req", vec![]).unwrap())
        .collect();
    sim.run_for(secs(20));
    // One runs, two queue, two are dropped (silently: the requester times out).
    let outcomes: Vec<_> = reqs
        .iter()
        .map(|r| sim.node(client).outcome(*r).cloned().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Err(RequestError::Timeout))
            .count(),
        2
    );
    assert_eq!(sim.node(server).dropped.len(), 2);
    assert_eq!(sim.node(server).node.stats().dropped_commands, 2);
}

#[test]
fn sim_sched_tagged_threads_and_injected_tasks() {
    use lokimq_core::ids::TaggedThreadId;
    let mut config = quiet_config(1);
    config.tagged_threads = vec!["db".to_string()];
    let mut sim = Sim::new(11);
    let n = sim.add_node(NodeSpec::new(config, ab_registry()).job_times(JobTimes {
        other: Dur::Fixed(Duration::from_millis(100)),
        command: Dur::Fixed(Duration::from_millis(100)),
        ..JobTimes::default()
    }));
    let db = Target::Tagged(TaggedThreadId(0));
    for job in 0..3 {
        sim.with_node(n, |node, now| node.job(now, job, db))
            .unwrap();
    }
    let batch = sim
        .with_node(n, |node, now| {
            node.submit_batch(
                now,
                &[db, Target::Worker],
                Completion::Tagged(TaggedThreadId(0)),
            )
        })
        .unwrap();
    // Injected tasks obey category a's reservation like commands do.
    for task in 0..4 {
        assert!(
            sim.with_node(n, |node, now| node.inject_task(now, "a", task))
                .unwrap()
        );
    }
    assert!(
        sim.with_node(n, |node, now| node.inject_task(now, "nope", 9))
            .is_err()
    );
    sim.run_until_idle();
    let node = sim.node(n);
    let max = node.node.stats().sched.max_workers;
    let on_db: Vec<&JobKind> = node
        .jobs
        .iter()
        .filter(|j| j.worker.0 >= max)
        .map(|j| &j.kind)
        .collect();
    // The tagged thread ran only its own jobs, one at a time, in order.
    assert_eq!(
        on_db,
        vec![
            &JobKind::Job(0),
            &JobKind::Job(1),
            &JobKind::Job(2),
            &JobKind::BatchItem(batch, 0),
            &JobKind::Completion(batch),
        ]
    );
    let db_jobs: Vec<_> = node.jobs.iter().filter(|j| j.worker.0 >= max).collect();
    for w in db_jobs.windows(2) {
        assert!(w[1].started >= w[0].finished.unwrap(), "one at a time");
    }
    // Tasks: category a reserves 2; the batch job holds the one general worker, so two tasks
    // run on the reservation and the other two wait (admission counts every active job: with
    // `active >= general` a task needs a free reserved slot).
    let tasks: Vec<_> = node
        .jobs
        .iter()
        .filter(|j| matches!(j.kind, JobKind::Task(..)))
        .collect();
    assert_eq!(tasks.len(), 4);
    assert_eq!(node.max_concurrent(|k| matches!(k, JobKind::Task(..))), 2);
    let first = tasks[0].started;
    assert_eq!(tasks.iter().filter(|j| j.started == first).count(), 2);
    assert_eq!(node.batch_done.len(), 1);
}

#[test]
fn sim_sched_shutdown_never_calls_pending_connect_callbacks() {
    use lokimq_core::address::Address;
    use lokimq_core::session::{MechanismConfig, SessionConfig};
    use lokimq_core::zmtp::SocketType;
    let mut sim = Sim::new(12);
    let n = sim.add_node(NodeSpec::new(quiet_config(1), ab_registry()));
    // A listener that never says HELLO, and an address nobody listens on.
    let hanging = Address::tcp("127.0.0.1", 6100);
    let tl = sim.tap_listen(
        &hanging,
        Some(SessionConfig::new(
            SocketType::Router,
            MechanismConfig::Null,
        )),
    );
    sim.connect_remote(n, hanging, &ConnectOptions::default());
    // (OxenMQ's policy, so that the refused attempts are still pending at shutdown.)
    sim.connect_remote(
        n,
        Address::tcp("127.0.0.1", 6101),
        &ConnectOptions::default().retry_refused(true),
    );
    let inproc = sim.connect_inproc(n, None);
    sim.run_for(Duration::from_millis(20));
    assert_eq!(
        sim.node(n).connected,
        vec![(sim.node(n).connected[0].0, inproc)]
    );
    sim.shutdown(n);
    sim.run_for(secs(30));
    let node = sim.node(n);
    assert!(node.stopped.is_some());
    assert!(node.connect_failed.is_empty(), "{:?}", node.connect_failed);
    assert_eq!(node.connected.len(), 1);
    assert_eq!(node.node.stats().links, 0);
    let t = sim.tap_listener(tl).accepted[0];
    assert!(
        sim.tap(t).eof_at.is_some(),
        "the half-made connection was closed"
    );
    assert_eq!(
        sim.tap_listener(tl).accepted.len(),
        1,
        "no reconnect after shutdown"
    );
}
