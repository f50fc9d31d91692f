//! Time-driven behaviour of the embedded loop: timers, request and connect timeouts, the
//! handshake deadline for an idle peer, reconnecting after the server restarts; and the work
//! a handle hands the loop from outside (jobs, batches, posts from another thread).

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::{
    WAIT, bound, connect, connect_with, embedded, loopback, mq_server_builder, request, stop,
    strings, turn_recv, turn_until,
};
use lokimq::{
    Address, AuthLevel, Batch, Builder, ConnectOptions, Keypair, LokiMq, RequestError,
    RequestOptions, Stopwatch, Target, TimerId,
};

/// Sets its flag when dropped: put one in a closure to see when the closure is freed.
struct Freed(Arc<AtomicBool>);

impl Drop for Freed {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_timer_fires_until_cancelled_then_is_released() {
    let mut node = embedded(Builder::new());
    let fired = Arc::new(AtomicU32::new(0));
    let freed = Arc::new(AtomicBool::new(false));
    let (count, guard) = (Arc::clone(&fired), Freed(Arc::clone(&freed)));
    let timer = node
        .handle()
        .add_timer(
            move || {
                let _keep = &guard;
                count.fetch_add(1, Ordering::SeqCst);
            },
            Duration::from_millis(10),
            true,
            Target::Worker,
        )
        .unwrap();
    turn_until(&mut node, "three firings", |_| {
        fired.load(Ordering::SeqCst) >= 3
    });

    node.handle().cancel_timer(timer).unwrap();
    turn_until(&mut node, "the timer's release", |_| {
        freed.load(Ordering::SeqCst)
    });
    // Released means gone for good: no firing can follow, however long we turn.
    let after = fired.load(Ordering::SeqCst);
    for _ in 0..20 {
        node.turn(Duration::from_millis(5));
    }
    assert_eq!(fired.load(Ordering::SeqCst), after);
}

#[test]
fn builder_timers_jobs_and_batches_run_on_the_loop() {
    let mut b = Builder::new();
    let (tx, rx) = mpsc::channel();
    let ticks = tx.clone();
    let in_driver = b
        .add_timer(
            move || {
                let _ = ticks.send(("timer", thread::current().id()));
            },
            Duration::from_millis(5),
            true,
            Target::InDriver,
        )
        .unwrap();
    let mut node = embedded(b);
    let me = thread::current().id();
    assert_eq!(
        turn_recv(&mut node, &rx, "the builder's timer"),
        ("timer", me)
    );
    node.handle().cancel_timer(in_driver).unwrap();

    let done = tx.clone();
    node.handle()
        .job(
            move || {
                let _ = done.send(("job", thread::current().id()));
            },
            None,
        )
        .unwrap();
    let mut batch = Batch::new();
    for i in 1..=4u32 {
        batch.add_job(move || i * i);
    }
    batch
        .completion(move |results| {
            let sum: u32 = results.into_iter().map(|r| r.unwrap_or(0)).sum();
            let _ = tx.send((
                if sum == 30 { "batch" } else { "bad sum" },
                thread::current().id(),
            ));
        })
        .unwrap();
    node.handle().batch(batch).unwrap();
    let mut got: Vec<_> = (0..2)
        .map(|_| {
            loop {
                // Late firings of the cancelled timer may still be queued.
                let item = turn_recv(&mut node, &rx, "the job and the batch");
                if item.0 != "timer" {
                    break item;
                }
            }
        })
        .collect();
    got.sort_by_key(|g| g.0);
    assert_eq!(got, [("batch", me), ("job", me)]);
    assert!(node.shutdown(WAIT));
}

#[test]
fn a_post_from_another_thread_wakes_the_sleeping_loop() {
    let mut node = embedded(Builder::new());
    assert_eq!(node.node().poll_timeout(), None, "nothing is due");
    let handle = node.handle().clone();
    let (tx, rx) = mpsc::channel();
    let poster = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let clock = Stopwatch::start();
        let job = move || {
            let _ = tx.send(clock.elapsed());
        };
        handle.job(job, None).unwrap();
    });
    // No socket, nothing due: only the wake function ends this sleep before five seconds.
    let clock = Stopwatch::start();
    node.turn(Duration::from_secs(5));
    let slept = clock.elapsed();
    let latency = turn_recv(&mut node, &rx, "the posted job");
    poster.join().unwrap();
    assert!(slept < Duration::from_secs(2), "the loop slept {slept:?}");
    assert!(
        latency < Duration::from_secs(2),
        "the job waited {latency:?}"
    );
}

#[test]
fn a_timer_callback_can_use_the_node() {
    // The timer sends a request from inside its callback and stops itself after one round.
    let mut b = mq_server_builder();
    b.listen_curve(loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();
    let mut c = embedded(Builder::new());
    let conn = connect(&mut c, &addr);

    let (tx, rx) = mpsc::channel();
    let me: Arc<Mutex<Option<TimerId>>> = Arc::default();
    let (handle, me_inside) = (c.handle().clone(), Arc::clone(&me));
    let freed = Arc::new(AtomicBool::new(false));
    let guard = Freed(Arc::clone(&freed));
    let timer = c
        .handle()
        .add_timer(
            move || {
                let _keep = &guard;
                let tx = tx.clone();
                handle
                    .request(&conn, "public.echo", ["tick"], move |r| {
                        let _ = tx.send(r);
                    })
                    .unwrap();
                if let Some(t) = *me_inside.lock().unwrap() {
                    handle.cancel_timer(t).unwrap();
                }
            },
            Duration::from_millis(5),
            true,
            Target::Worker,
        )
        .unwrap();
    *me.lock().unwrap() = Some(timer);
    let reply = turn_recv(&mut c, &rx, "the timer's request").unwrap();
    assert_eq!(strings(&reply), ["tick"]);
    turn_until(&mut c, "the timer's release", |_| {
        freed.load(Ordering::SeqCst)
    });
    assert!(c.shutdown(WAIT));
    stop(server);
}

#[test]
fn an_unanswered_request_times_out() {
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 1;
    b.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_request_command("slow", "never", |_| {})
        .unwrap()
        .listen_curve(loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();

    let mut c = embedded(Builder::new());
    let conn = connect(&mut c, &addr);
    let (tx, rx) = mpsc::channel();
    let opts = RequestOptions::default().timeout(Duration::from_millis(200));
    c.handle()
        .request_with(&conn, "slow.never", ["?"], opts, move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
    assert_eq!(
        turn_recv(&mut c, &rx, "the request timeout"),
        Err(RequestError::Timeout)
    );
    assert_eq!(c.node().stats().pending_requests, 0);
    assert!(c.shutdown(WAIT));
    stop(server);
}

/// A loopback port nobody listens on (bound, read, released).
fn dead_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn a_refused_connect_fails_at_once_or_at_its_deadline_when_retrying() {
    let mut c = embedded(Builder::new());
    // By default a refusal is final, and said so at once.
    let (tx, rx) = mpsc::channel();
    let conn = connect_with(
        &c,
        &Address::from_socket_addr(dead_port()),
        ConnectOptions::default(),
        tx,
    );
    let outcome = turn_recv(&mut c, &rx, "connect failure");
    assert_eq!(
        outcome,
        Err(String::from("connect() failed: Connection refused"))
    );
    assert!(!c.node().is_connected(&conn));
    // OxenMQ's behaviour on request: retry until the connect deadline.
    let opts = ConnectOptions::default()
        .timeout(Duration::from_millis(300))
        .retry_refused(true);
    let (tx, rx) = mpsc::channel();
    let conn = connect_with(&c, &Address::from_socket_addr(dead_port()), opts, tx);
    let outcome = turn_recv(&mut c, &rx, "connect failure");
    assert_eq!(outcome, Err(String::from("connection attempt timed out")));
    assert!(!c.node().is_connected(&conn));
    // Every refused dial was reported and forgotten: no socket is left behind.
    assert_eq!(c.node().stats().connections, 0);
}

#[test]
fn an_unresolvable_address_fails_without_retrying() {
    let mut c = embedded(Builder::new());
    let opts = ConnectOptions::default().timeout(WAIT);
    let (tx, rx) = mpsc::channel();
    let clock = Stopwatch::start();
    connect_with(&c, &Address::tcp("no-such-host.invalid", 1), opts, tx);
    let outcome = turn_recv(&mut c, &rx, "connect failure");
    // An invalid address is final: reported at once, not retried until the timeout.
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(clock.elapsed() < WAIT / 2, "took {:?}", clock.elapsed());
    assert_eq!(c.node().stats().connections, 0);
}

#[test]
fn an_idle_peer_is_dropped_at_the_handshake_deadline() {
    let mut b = Builder::new();
    b.config_mut().handshake_timeout = Duration::from_millis(200);
    b.listen_curve(loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let mut s = embedded(b);
    // A TCP peer that connects and never speaks ZMTP.
    let mut idle = TcpStream::connect(bound(&s).socket_addr().unwrap()).unwrap();
    idle.set_nonblocking(true).unwrap();
    turn_until(&mut s, "the accept", |n| n.node().stats().connections == 1);
    // The server greets, then closes when the deadline passes; the peer reads the greeting and
    // then EOF.
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    turn_until(&mut s, "EOF at the idle peer", |_| {
        match idle.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("the idle peer's read failed: {e}"),
        }
    });
    assert_eq!(got.first(), Some(&0xff), "a ZMTP greeting starts with 0xff");
    assert_eq!(s.node().stats().connections, 0);
}

#[test]
fn an_outgoing_connection_comes_back_after_the_server_restarts() {
    let keys = Keypair::generate(&mut rand_core::OsRng);
    let start_server = |at: SocketAddr| {
        let mut b = mq_server_builder();
        b.keypair(keys.clone());
        // Quick to stop even though the embedded peer is not turned meanwhile.
        b.config_mut().close_linger = Duration::from_millis(50);
        b.listen_curve(at, |_, _, _| AuthLevel::None).unwrap();
        let s = b.start().unwrap();
        let addr = s.bound_addresses()[0].clone();
        (s, addr)
    };
    let (first, addr) = start_server(loopback());
    let mut c = embedded(Builder::new());
    let conn = connect(&mut c, &addr);
    assert!(request(&mut c, &conn, "public.echo", &["before"]).is_ok());

    stop(first);
    turn_until(&mut c, "the client notices", |n| {
        !n.node().is_connected(&conn)
    });

    // Same key, same port: the link's reconnect finds it and the queued request goes out.
    let (second, again) = start_server(addr.socket_addr().unwrap());
    assert_eq!(again, addr);
    let reply = request(&mut c, &conn, "public.echo", &["after"]).unwrap();
    assert_eq!(strings(&reply), ["after"]);
    assert!(c.node().is_connected(&conn));
    assert!(c.shutdown(WAIT));
    stop(second);
}
