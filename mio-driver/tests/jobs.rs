//! Jobs, batches, timers, tagged threads, injected tasks, in-process connections, panics and
//! shutdown, on real threads.

mod common;

use lokimq::{CategoryOptions, NodeError, QueueLimit, SchedError, TaggedThreadId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::*;
use lokimq::{AuthLevel, Batch, Error, Handle, Listen, NO_DATA, RequestError, Stopwatch, Target};

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn batch_runs_jobs_and_completion() {
    let node = builder().start().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut batch = Batch::new();
    for i in 0..10u64 {
        batch.add_job(move || i * i);
    }
    batch.add_job(|| panic!("job 10 fails"));
    batch
        .completion(move |results| {
            let _ = tx.send((results, thread_name()));
        })
        .unwrap();
    node.handle().batch(batch).unwrap();
    let (results, thread) = wait(&rx, "completion");
    assert_eq!(results.len(), 11);
    let sum: u64 = results[..10].iter().map(|r| *r.as_ref().unwrap()).sum();
    assert_eq!(sum, 285);
    assert_eq!(results[10].as_ref().unwrap_err().message(), "job 10 fails");
    assert!(thread.starts_with("lmq-w"), "completion ran on {thread}");
}

#[test]
fn batch_completion_in_proxy() {
    let node = builder().start().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut batch = Batch::new();
    batch.add_job(|| 7);
    batch
        .completion_on(
            move |r| {
                let _ = tx.send((r, thread_name()));
            },
            Target::InDriver,
        )
        .unwrap();
    node.handle().batch(batch).unwrap();
    let (r, thread) = wait(&rx, "completion");
    assert_eq!(r, vec![Ok(7)]);
    assert_eq!(thread, "lmq-proxy");
}

#[test]
fn empty_batch_is_refused() {
    let node = builder().start().unwrap();
    assert!(matches!(
        node.handle().batch(Batch::<()>::new()),
        Err(Error::EmptyBatch)
    ));
}

#[test]
fn tagged_thread_runs_its_jobs_in_order() {
    let mut b = builder();
    let (start_tx, started) = mpsc::channel();
    let tag = b
        .add_tagged_thread_with_start("my-tagged", move || {
            let _ = start_tx.send(thread_name());
        })
        .unwrap();
    let node = b.start().unwrap();
    assert_eq!(wait(&started, "start callback"), "my-tagged");
    let (tx, rx) = mpsc::channel();
    for i in 0..5 {
        let tx = tx.clone();
        node.handle()
            .job(
                move || {
                    let _ = tx.send((i, thread_name()));
                },
                Some(tag),
            )
            .unwrap();
    }
    for i in 0..5 {
        assert_eq!(wait(&rx, "tagged job"), (i, "my-tagged".to_owned()));
    }
    // A batch whose jobs and completion run on the tagged thread.
    let (done_tx, done) = mpsc::channel();
    let mut batch = Batch::new();
    batch.add_job_on(thread_name, tag);
    batch
        .completion_on(
            move |r| {
                let _ = done_tx.send((r, thread_name()));
            },
            Target::Tagged(tag),
        )
        .unwrap();
    node.handle().batch(batch).unwrap();
    let (r, t) = wait(&done, "tagged batch");
    assert_eq!(r, vec![Ok("my-tagged".to_owned())]);
    assert_eq!(t, "my-tagged");
    // An id that does not exist is refused at once.
    let bogus = TaggedThreadId(7);
    assert!(matches!(
        node.handle().job(|| {}, Some(bogus)),
        Err(Error::Sched(SchedError::UnknownTaggedThread(
            TaggedThreadId(7)
        )))
    ));
}

#[test]
fn bad_tagged_thread_names_are_refused() {
    let mut b = builder();
    for bad in ["", "_proxy", "a\0b"] {
        assert!(matches!(
            b.add_tagged_thread(bad),
            Err(Error::Sched(SchedError::InvalidTaggedThreadName(_)))
        ));
    }
}

/// Call after cancelling the timers that bump `count`: waits until the proxy has processed the
/// cancels (`stats` queues behind them) and a firing already under way has finished, then
/// asserts that nothing more fires.
fn assert_no_firing_after_cancel(node: &Handle, count: &AtomicUsize) {
    let _ = node.stats().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let settled = count.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(count.load(Ordering::SeqCst), settled, "fired after cancel");
}

#[test]
fn timer_fires_repeatedly_and_cancels() {
    let node = builder().start().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let c = Arc::clone(&count);
    // Started before the timer exists, so a slow add_timer round trip cannot make the timer
    // look early.
    let t = Stopwatch::start();
    let timer = node
        .handle()
        .add_timer(
            move || {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = tx.send(n);
            },
            Duration::from_millis(20),
            true,
            Target::Worker,
        )
        .unwrap();
    while wait(&rx, "timer") < 3 {}
    assert!(t.elapsed() >= Duration::from_millis(55), "fired too fast");
    node.handle().cancel_timer(timer).unwrap();
    assert_no_firing_after_cancel(node.handle(), &count);
}

#[test]
fn timers_added_before_start_run_and_cancel_by_their_id() {
    let mut b = builder();
    let thread = b.add_tagged_thread("ticker").unwrap();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let on_worker = b
        .add_timer(
            move || {
                c.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(("worker", thread_name()));
            },
            Duration::from_millis(20),
            true,
            Target::Worker,
        )
        .unwrap();
    let on_tagged = b
        .add_timer(
            move || {
                let _ = tx2.send(("tagged", thread_name()));
            },
            Duration::from_millis(25),
            false,
            Target::Tagged(thread),
        )
        .unwrap();
    assert_ne!(on_worker, on_tagged);
    let node = b.start().unwrap();
    let (mut worker, mut tagged) = (0, 0);
    while worker < 2 || tagged < 2 {
        match wait(&rx, "timer firings") {
            ("worker", _) => worker += 1,
            (_, name) => {
                assert_eq!(name, "ticker");
                tagged += 1;
            }
        }
    }
    // Cancelling by the ids the builder returned stops the right timers.
    node.handle().cancel_timer(on_worker).unwrap();
    node.handle().cancel_timer(on_tagged).unwrap();
    assert_no_firing_after_cancel(node.handle(), &count);
}

#[test]
fn builder_timer_misuse_is_a_typed_error() {
    let mut b = builder();
    let bad = TaggedThreadId(3);
    assert!(matches!(
        b.add_timer(|| {}, Duration::from_secs(1), true, Target::Tagged(bad)),
        Err(Error::Sched(SchedError::UnknownTaggedThread(
            TaggedThreadId(3)
        )))
    ));
    assert!(matches!(
        b.add_timer(|| {}, Duration::ZERO, true, Target::Worker),
        Err(Error::Sched(SchedError::ZeroTimerInterval))
    ));
    // The running node refuses the same way.
    let node = b.start().unwrap();
    assert!(matches!(
        node.handle()
            .add_timer(|| {}, Duration::from_nanos(999), true, Target::Worker),
        Err(Error::Sched(SchedError::ZeroTimerInterval))
    ));
}

#[test]
fn in_proxy_timer_may_connect_and_add_timers_but_not_wait() {
    let node = builder().start().unwrap();
    let (tx, rx) = mpsc::channel();
    let handle = node.handle().clone();
    let sent = Arc::new(AtomicBool::new(false));
    let timer = node
        .handle()
        .add_timer(
            move || {
                if sent.swap(true, Ordering::SeqCst) {
                    return;
                }
                // Waiting for the proxy's answer on the proxy thread would deadlock.
                let waited = handle.stats().err().map(|e| e.to_string());
                // Ids come from the handle, so these return at once, even here.
                let connected = tx.clone();
                let conn = handle.connect_inproc(
                    move |c| {
                        let _ = connected.send(format!("connected {c}"));
                    },
                    |_, why| panic!("inproc connect failed: {why}"),
                    None,
                );
                let fired = tx.clone();
                let added = handle.add_timer(
                    move || {
                        let _ = fired.send(String::from("inner timer fired"));
                    },
                    Duration::from_millis(5),
                    true,
                    Target::Worker,
                );
                let _ = tx.send(format!(
                    "{} {waited:?} {} {}",
                    thread_name(),
                    conn.is_ok(),
                    added.is_ok()
                ));
            },
            Duration::from_millis(10),
            true,
            Target::InDriver,
        )
        .unwrap();
    let first = wait(&rx, "in-proxy timer");
    assert_eq!(
        first,
        format!(
            "lmq-proxy {:?} true true",
            Some(Error::OnProxyThread.to_string())
        )
    );
    let (mut connected, mut fired) = (false, false);
    while !(connected && fired) {
        let m = wait(&rx, "the connection and the inner timer");
        connected |= m.starts_with("connected");
        fired |= m == "inner timer fired";
    }
    node.handle().cancel_timer(timer).unwrap();
}

#[test]
fn inject_task_runs_as_a_command_of_its_category() {
    let mut b = server_builder();
    b.add_category(
        "slow",
        CategoryOptions::new(AuthLevel::None)
            .reserved_threads(1)
            .max_queue(QueueLimit::At(0)),
    )
    .unwrap();
    let node = b.start().unwrap();
    let (tx, rx) = mpsc::channel();
    node.handle()
        .inject_task("slow", "task", "test", move || {
            let _ = tx.send(thread_name());
        })
        .unwrap();
    assert!(wait(&rx, "task").starts_with("lmq-w"));
    assert!(matches!(
        node.handle().inject_task("nope", "task", "test", || {}),
        Err(Error::Node(NodeError::UnknownCategory(_)))
    ));
}

#[test]
fn inproc_connection_has_admin_access() {
    let node = server_builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = node.handle().connect_inproc(ok, fail, None).unwrap();
    assert_eq!(wait(&connected, "inproc connect").unwrap(), conn);
    assert_eq!(
        strings(&request_wait(node.handle(), &conn, "admin.echo", ["self"], "reply").unwrap()),
        ["self"]
    );
    assert_eq!(
        strings(&request_wait(node.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap())
            [0],
        "admin"
    );
}

#[test]
fn panicking_handler_does_not_kill_the_worker() {
    let mut b = server_builder();
    b.config_mut().general_workers = 1;
    b.add_category("bad", AuthLevel::None)
        .unwrap()
        .add_request_command("bad", "panic", |_| panic!("handler blew up"))
        .unwrap();
    let (server, addr) = start_plain(b, AuthLevel::None);
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    for i in 0..3 {
        let opts = lokimq::RequestOptions::default().timeout(Duration::from_millis(300));
        let (cb, rx) = reply_channel();
        client
            .handle()
            .request_with(&conn, "bad.panic", NO_DATA, opts, cb)
            .unwrap();
        // No reply is generated for a panicking handler (OxenMQ: requester times out).
        assert_eq!(wait(&rx, "timeout").unwrap_err(), RequestError::Timeout);
        assert_eq!(
            strings(
                &request_wait(
                    client.handle(),
                    &conn,
                    "public.echo",
                    [format!("{i}")],
                    "echo"
                )
                .unwrap()
            ),
            [format!("{i}")]
        );
    }
    let stats = server.handle().stats().unwrap();
    assert_eq!(stats.sched.spawned, 1, "the single worker survived");
}

#[test]
fn shutdown_waits_for_a_running_handler() {
    let finished = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = mpsc::channel();
    let f = Arc::clone(&finished);
    let mut b = server_builder();
    b.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_command("slow", "work", move |_| {
            let _ = started_tx.send(());
            std::thread::sleep(Duration::from_millis(300));
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
    let (server, addr) = start_plain(b, AuthLevel::None);
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    client.handle().send(&conn, "slow.work", NO_DATA).unwrap();
    wait(&started, "handler start");
    let handle = server.handle().clone();
    drop(server);
    assert!(
        finished.load(Ordering::SeqCst),
        "drop returned before the handler finished"
    );
    assert!(matches!(handle.stats(), Err(Error::Stopped)));
    assert!(matches!(
        handle.send(&conn, "x.y", NO_DATA),
        Err(Error::Stopped)
    ));
}

#[test]
fn requests_after_disconnect_fail_fast() {
    let (_server, addr) = start_server(Listen::plain(loopback()).unwrap());
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert!(client.handle().is_connected(&conn).unwrap());
    client
        .handle()
        .disconnect(&conn, Duration::from_millis(100))
        .unwrap();
    let (cb, rx) = reply_channel();
    let t = Stopwatch::start();
    client
        .handle()
        .request(&conn, "public.echo", ["x"], cb)
        .unwrap();
    assert_eq!(wait(&rx, "failure").unwrap_err(), RequestError::Timeout);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the failure must be immediate"
    );
    assert!(!client.handle().is_connected(&conn).unwrap());
}

#[test]
fn deferred_reply_from_another_thread() {
    let mut b = server_builder();
    b.add_category("later", AuthLevel::None)
        .unwrap()
        .add_request_command("later", "echo", |m| {
            let later = m.send_later();
            let data = m.data().to_vec();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                later.reply(data).unwrap();
            });
        })
        .unwrap();
    let (_server, addr) = start_plain(b, AuthLevel::None);
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        strings(
            &request_wait(client.handle(), &conn, "later.echo", ["deferred"], "reply").unwrap()
        ),
        ["deferred"]
    );
}
