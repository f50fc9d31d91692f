//! The async API on real sockets: `request_async`, `connect_remote_async` and `send_async`,
//! from tokio and from a plain `block_on` made of the standard library (no runtime in the
//! library), and a handler that replies later from an async task.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{builder, loopback, server_builder};
use lokimq::{
    AuthLevel, BacklogLimit, ConnectError, ConnectOptions, HandshakeError, Keypair, RequestError,
    Stopwatch, core::node::SendError,
};

/// A complete executor: poll, park until woken, repeat (bounded by `limit`).
fn block_on<F: Future>(f: F, limit: Duration) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    let clock = Stopwatch::start();
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        assert!(clock.elapsed() < limit, "future not ready within {limit:?}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Polls `f` until it is ready or `limit` has passed.
fn poll_for<F: Future + Unpin>(f: &mut F, limit: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let clock = Stopwatch::start();
    loop {
        if let Poll::Ready(v) = std::pin::Pin::new(&mut *f).poll(&mut Context::from_waker(&waker)) {
            return Some(v);
        }
        let left = clock.remaining(limit);
        if left.is_zero() {
            return None;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(50)));
    }
}

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn requests_and_connects_under_a_plain_block_on() {
    let mut b = server_builder();
    b.listen_curve(loopback(), |_, _, _| AuthLevel::Basic)
        .unwrap();
    let server = b.start().unwrap();
    let client = builder().start().unwrap();
    let h = client.handle();
    let addr = server.bound_addresses()[0].clone();
    block_on(
        async {
            let conn = h
                .connect_remote_async(&addr, ConnectOptions::default())
                .unwrap()
                .await
                .unwrap();
            let echoed = h.request_async(&conn, "public.echo", ["x", "y"]).await;
            assert_eq!(echoed.unwrap(), ["x", "y"]);
            let denied = h.request_async(&conn, "admin.echo", ["x"]).await;
            assert_eq!(denied, Err(RequestError::Forbidden));
            let unknown = h.request_async(&conn, "public.nonesuch", ["x"]).await;
            assert_eq!(unknown, Err(RequestError::UnknownCommand));
        },
        LIMIT,
    );
}

#[test]
fn a_request_to_a_stopped_node_ends_instead_of_hanging() {
    let client = builder().start().unwrap();
    let h = client.handle().clone();
    let conn = h
        .connect_remote(
            "tcp://127.0.0.1:9",
            |_| {},
            |_, _| {},
            ConnectOptions::default(),
        )
        .unwrap();
    drop(client);
    let r = block_on(h.request_async(&conn, "public.echo", ["x"]), LIMIT);
    assert_eq!(r, Err(RequestError::Timeout));
}

#[test]
fn tokio_client_with_concurrent_requests_and_replies_from_async_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The handler hands the reply to an async task and returns at once: its worker is free
    // while the task waits.
    let tokio_handle = rt.handle().clone();
    let mut b = builder();
    b.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_request_command("slow", "later", move |m| {
            let later = m.send_later();
            let data = m.data().to_vec();
            tokio_handle.spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                later.reply(data).unwrap();
            });
        })
        .unwrap()
        .listen_plain(loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let server = b.start().unwrap();
    let client = builder().start().unwrap();
    let h = client.handle().clone();
    let addr = server.bound_addresses()[0].clone();
    rt.block_on(async move {
        let conn = tokio::time::timeout(
            LIMIT,
            h.connect_remote_async(&addr, ConnectOptions::default())
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        // 200 requests in flight at once; each handler returns at once, so with two general
        // workers they still overlap in the async tasks.
        let clock = Stopwatch::start();
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let (h, conn) = (h.clone(), conn.clone());
                tokio::spawn(async move {
                    let r = h.request_async(&conn, "slow.later", [i.to_string()]).await;
                    (i, r)
                })
            })
            .collect();
        for t in tasks {
            let (i, r) = tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
            assert_eq!(r.unwrap(), [i.to_string()]);
        }
        // Sequential handling would take 200 x 20 ms = 4 s; overlapped it takes a fraction.
        assert!(
            clock.elapsed() < Duration::from_secs(3),
            "replies did not overlap: {:?}",
            clock.elapsed()
        );
    });
}

#[test]
fn send_async_waits_for_room_under_the_high_water_mark() {
    // A libzmq ROUTER that answers HI, then stops reading: our unsent backlog fills.
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.set_rcvhwm(1).unwrap();
    router.set_rcvbuf(4096).unwrap();
    router.set_linger(0).unwrap();
    router.set_rcvtimeo(10_000).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = router.get_last_endpoint().unwrap().unwrap();

    let mut b = builder();
    b.config_mut().send_backlog_limit = Some(BacklogLimit {
        messages: 4,
        bytes: 256 * 1024,
    });
    let client = b.start().unwrap();
    let h = client.handle().clone();
    let connecting = h
        .connect_remote_async(endpoint.as_str(), ConnectOptions::default())
        .unwrap();
    let hi = router.recv_multipart(0).unwrap();
    assert_eq!(hi[1], b"HI");
    router
        .send_multipart([hi[0].as_slice(), b"HELLO"], 0)
        .unwrap();
    let conn = block_on(connecting, LIMIT).unwrap();

    // Send until one send has to wait: the router is not reading.
    let big = vec![7u8; 64 * 1024];
    let mut sent = 0usize;
    let mut waiting = loop {
        assert!(sent < 10_000, "the backlog never filled");
        let mut s = h.send_async(&conn, "x.y", [big.clone()]);
        match poll_for(&mut s, Duration::from_millis(300)) {
            Some(r) => {
                r.unwrap();
                sent += 1;
            }
            None => break s,
        }
    };
    // Meanwhile a plain send fails at once, as libzmq's would.
    let (tx, rx) = std::sync::mpsc::channel();
    h.send_with_queue_failure(
        &conn,
        "x.y",
        [big.clone()],
        lokimq::SendOptions::default(),
        move |e| {
            let _ = tx.send(e);
        },
    )
    .unwrap();
    assert!(matches!(
        rx.recv_timeout(LIMIT).unwrap(),
        SendError::WouldBlock(_)
    ));
    assert!(
        poll_for(&mut waiting, Duration::from_millis(200)).is_none(),
        "still waiting while the peer does not read"
    );

    // The router reads everything: the waiting send goes out, in order after the others.
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        while got < sent + 1 {
            let m = router.recv_multipart(0).expect("the waiting send arrived");
            if m[1] == b"x.y" {
                got += 1;
            }
        }
        got
    });
    poll_for(&mut waiting, LIMIT)
        .expect("the waiting send completes once the peer reads")
        .unwrap();
    assert!(reader.join().unwrap() > sent);
    drop(ctx);
}

#[test]
fn send_async_to_a_connection_that_never_existed_fails() {
    let client = builder().start().unwrap();
    let h = client.handle();
    let nobody = lokimq::ConnectionId::Outgoing {
        id: 999_999,
        pubkey: None,
    };
    let r = block_on(h.send_async(&nobody, "a.b", ["x"]), LIMIT);
    assert!(
        matches!(
            r,
            Err(SendError::NotConnected(_) | SendError::NoConnection(_))
        ),
        "{r:?}"
    );
}

/// `connect_remote_async` tells the causes apart, each without waiting out the connect
/// timeout where the failure is known sooner.
#[test]
fn connect_remote_async_reports_a_typed_cause() {
    let mut b = server_builder();
    b.listen_curve(loopback(), |_, key, _| {
        // Deny one key: the handshake completes, then the server refuses us.
        if key.is_some_and(|k| k.as_bytes()[0] == 0xd0) {
            AuthLevel::Denied
        } else {
            AuthLevel::None
        }
    })
    .unwrap();
    let server = b.start().unwrap();
    let curve = server.bound_addresses()[0].clone();
    let client = builder().start().unwrap();
    let h = client.handle();
    let opts = || ConnectOptions::default().timeout(Duration::from_secs(8));
    let connect = |addr: lokimq::Address| {
        let t = Stopwatch::start();
        let r = block_on(h.connect_remote_async(addr, opts()).unwrap(), LIMIT);
        (r, t.elapsed())
    };

    // Nothing listens: refused, at once.
    let port = {
        let l = std::net::TcpListener::bind(loopback()).unwrap();
        l.local_addr().unwrap().port()
    };
    let (r, took) = connect(format!("tcp://127.0.0.1:{port}").parse().unwrap());
    assert_eq!(r, Err(ConnectError::Refused));
    assert!(took < Duration::from_secs(4), "{took:?}");

    // The right address with another key: the server cannot open our HELLO.
    let wrong = curve
        .clone()
        .with_pubkey(Some(*Keypair::from_secret_bytes([9; 32]).public()));
    let (r, took) = connect(wrong);
    assert_eq!(
        r,
        Err(ConnectError::Handshake(HandshakeError::WrongServerKey))
    );
    assert!(took < Duration::from_secs(4), "{took:?}");

    // A plain client on the CURVE port: a mechanism mismatch.
    let (r, took) = connect(curve.clone().with_pubkey(None));
    assert!(
        matches!(
            r,
            Err(ConnectError::Handshake(
                HandshakeError::MechanismMismatch { .. }
            ))
        ),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");

    // The server's allow function denies this client's key.
    let denied = {
        let mut secret = [0u8; 32];
        let mut n = 0u8;
        loop {
            secret[0] = n;
            let kp = Keypair::from_secret_bytes(secret);
            if kp.public().as_bytes()[0] == 0xd0 {
                break kp;
            }
            n = n.wrapping_add(1);
            secret[1] = secret[1].wrapping_add(u8::from(n == 0));
        }
    };
    let mut db = builder();
    db.keypair(denied);
    let denied_client = db.start().unwrap();
    let t = Stopwatch::start();
    let r = block_on(
        denied_client
            .handle()
            .connect_remote_async(curve.clone(), opts())
            .unwrap(),
        LIMIT,
    );
    assert!(
        matches!(
            r,
            Err(ConnectError::Handshake(HandshakeError::Denied { .. }))
        ),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());

    // Something that accepts TCP but never speaks ZMTP: timed out, after the timeout.
    let silent = std::net::TcpListener::bind(loopback()).unwrap();
    let port = silent.local_addr().unwrap().port();
    let short = ConnectOptions::default().timeout(Duration::from_millis(400));
    let r = block_on(
        h.connect_remote_async(format!("tcp://127.0.0.1:{port}").as_str(), short)
            .unwrap(),
        LIMIT,
    );
    assert_eq!(r, Err(ConnectError::TimedOut));
    drop(silent);
}
