//! Two nodes over plain (NULL mechanism) TCP and unix sockets: requests, sends, auth levels,
//! denied connections, connect retries and timeouts.

mod common;

use lokimq::{CategoryOptions, QueueLimit};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use lokimq::{AuthLevel, ConnectOptions, Listen, NO_DATA, RequestError, Stopwatch};

#[test]
fn plain_tcp_request_and_reply() {
    let (_server, addr) = start_server(Listen::plain(loopback()).unwrap());
    assert!(addr.to_string().starts_with("tcp://127.0.0.1:"), "{addr}");
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        strings(
            &request_wait(
                client.handle(),
                &conn,
                "public.echo",
                ["a", "", "b"],
                "reply"
            )
            .unwrap()
        ),
        ["a", "", "b"]
    );
    // A plain listener without an allow function grants `none`; the peer is 127.0.0.1.
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap()),
        ["none", "", "127.0.0.1"]
    );
    assert_eq!(
        request_wait(client.handle(), &conn, "admin.echo", ["x"], "admin").unwrap_err(),
        RequestError::Forbidden
    );
    assert_eq!(
        request_wait(client.handle(), &conn, "public.nope", ["x"], "unknown").unwrap_err(),
        RequestError::UnknownCommand
    );
}

#[test]
fn send_and_send_back() {
    let (_server, addr) = start_server(Listen::plain(loopback()).unwrap());
    let (tx, rx) = mpsc::channel();
    let mut b = builder();
    b.add_category("public", AuthLevel::None)
        .unwrap()
        .add_command("public", "hi", move |m| {
            let _ = tx.send((strings(m.data()), m.conn().clone()));
        })
        .unwrap();
    let client = b.start().unwrap();
    let conn = connect(client.handle(), &addr);
    client
        .handle()
        .send(&conn, "public.hello", ["one", "two"])
        .unwrap();
    let (data, from) = wait(&rx, "send_back");
    assert_eq!(data, ["one", "two"]);
    assert_eq!(from, conn, "the send_back arrives on the same connection");
}

#[test]
fn allow_function_sets_the_auth_level() {
    let (tx, seen) = mpsc::channel();
    let (_server, addr) = start_server(Listen::plain(loopback()).unwrap().allow(
        move |ip, key, sn| {
            let _ = tx.send((ip.to_owned(), key.copied(), sn));
            AuthLevel::Admin
        },
    ));
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        wait(&seen, "allow call"),
        ("127.0.0.1".to_owned(), None, false)
    );
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "admin.echo", ["x"], "admin").unwrap()),
        ["x"]
    );
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap())
            [0],
        "admin"
    );
}

#[test]
fn allow_none_is_forbidden_for_a_basic_category() {
    let mut b = server_builder();
    b.add_category("members", AuthLevel::Basic)
        .unwrap()
        .add_request_command("members", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap();
    let (_server, addr) = start_plain(b, AuthLevel::None);
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        request_wait(
            client.handle(),
            &conn,
            "members.echo",
            ["x"],
            "members.echo"
        )
        .unwrap_err(),
        RequestError::Forbidden
    );
    assert_eq!(
        strings(
            &request_wait(client.handle(), &conn, "public.echo", ["y"], "public.echo").unwrap()
        ),
        ["y"]
    );
}

#[test]
fn denied_connection_fails() {
    let (tx, handled) = mpsc::channel::<()>();
    let mut b = server_builder();
    b.add_category("probe", AuthLevel::None)
        .unwrap()
        .add_command("probe", "ping", move |_| {
            let _ = tx.send(());
        })
        .unwrap();
    let (_server, addr) = start_plain(b, AuthLevel::Denied);
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().timeout(Duration::from_secs(2));
    let conn = client
        .handle()
        .connect_remote(&addr, ok, fail, opts)
        .unwrap();
    client.handle().send(&conn, "probe.ping", NO_DATA).unwrap();
    let r = wait(&connected, "connect failure");
    assert!(r.is_err(), "a denied connection must not connect: {r:?}");
    assert!(
        handled.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing may be delivered over a denied connection"
    );
}

/// A free loopback port (bound and released; nobody listens on it afterwards).
fn closed_port() -> u16 {
    let l = TcpListener::bind(loopback()).unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn connect_to_a_closed_port_fails_at_once() {
    let port = closed_port();
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let t = Stopwatch::start();
    let _conn = client
        .handle()
        .connect_remote(
            format!("tcp://127.0.0.1:{port}"),
            ok,
            fail,
            ConnectOptions::default(),
        )
        .unwrap();
    let r = wait(&connected, "failure");
    assert_eq!(r.unwrap_err(), "connect() failed: Connection refused");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn connect_to_a_closed_port_times_out() {
    let port = closed_port();
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default()
        .timeout(Duration::from_millis(600))
        .retry_refused(true);
    let t = Stopwatch::start();
    let _conn = client
        .handle()
        .connect_remote(format!("tcp://127.0.0.1:{port}"), ok, fail, opts)
        .unwrap();
    let r = wait(&connected, "failure");
    let took = t.elapsed();
    assert_eq!(r.unwrap_err(), "connection attempt timed out");
    assert!(took >= Duration::from_millis(600), "failed early: {took:?}");
    assert!(took < Duration::from_secs(5), "failed late: {took:?}");
}

#[test]
fn connect_retries_until_the_server_appears() {
    let port = closed_port();
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().retry_refused(true);
    let conn = client
        .handle()
        .connect_remote(format!("tcp://127.0.0.1:{port}"), ok, fail, opts)
        .unwrap();
    let (cb, replies) = reply_channel();
    client
        .handle()
        .request(&conn, "public.echo", ["queued"], cb)
        .unwrap();
    // The first attempts are refused; the server appears later on the same port.
    std::thread::sleep(Duration::from_millis(400));
    let (_server, _) =
        start_server(Listen::plain(format!("tcp://127.0.0.1:{port}").as_str()).unwrap());
    assert_eq!(wait(&connected, "connect").unwrap(), conn);
    assert_eq!(strings(&wait(&replies, "reply").unwrap()), ["queued"]);
}

#[test]
fn unresolvable_host_fails_at_once() {
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let t = Stopwatch::start();
    client
        .handle()
        .connect_remote(
            "tcp://no-such-host.invalid:5555",
            ok,
            fail,
            ConnectOptions::default(),
        )
        .unwrap();
    let why = wait(&connected, "failure").unwrap_err();
    assert!(why.starts_with("connect() failed:"), "{why}");
    assert!(
        t.elapsed() < Duration::from_secs(9),
        "must not wait for the timeout"
    );
}

#[test]
fn host_names_are_resolved() {
    let (_server, addr) = start_server(Listen::plain(loopback()).unwrap());
    let port = addr.port().unwrap();
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(
            format!("tcp://localhost:{port}"),
            ok,
            fail,
            ConnectOptions::default(),
        )
        .unwrap();
    wait(&connected, "connect").unwrap();
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.echo", ["dns"], "reply").unwrap()),
        ["dns"]
    );
}

#[test]
fn unix_socket_request_and_reply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.sock");
    let listen = Listen::plain(format!("ipc://{}", path.display()).as_str()).unwrap();
    let (server, addr) = start_server(listen);
    assert!(path.exists());
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap()),
        ["none", "", "(unknown)"]
    );
    drop(client);
    drop(server);
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[test]
fn unix_socket_mode_and_owner_are_applied_after_bind() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    // Our own uid and gid: changing a file to them is always permitted.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    let me = std::fs::metadata(&probe).unwrap();
    let path = dir.path().join("node.sock");
    let listen = Listen::plain(format!("ipc://{}", path.display()).as_str())
        .unwrap()
        .unix_mode(0o600)
        .unix_owner(Some(me.uid()), Some(me.gid()));
    let (server, addr) = start_server(listen);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), (me.uid(), me.gid()));
    // The owner can still connect.
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert!(request_wait(client.handle(), &conn, "public.echo", ["x"], "echo").is_ok());
    drop(client);
    drop(server);
}

#[test]
fn bind_failure_makes_start_fail() {
    let taken = TcpListener::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut b = server_builder();
    b.listen(Listen::plain(addr).unwrap().on_bind(move |r| {
        let _ = tx.send(r);
    }));
    let err = b.start().unwrap_err();
    assert!(
        matches!(err, lokimq::Error::Bind { .. }),
        "expected a bind error, got {err}"
    );
    assert!(wait(&rx, "on_bind").is_err());
}

#[test]
fn listen_after_start_calls_on_bind() {
    let server = server_builder().start().unwrap();
    let (tx, rx) = mpsc::channel();
    server
        .handle()
        .listen(Listen::plain(loopback()).unwrap().on_bind(move |r| {
            let _ = tx.send(r);
        }))
        .unwrap();
    let addr = wait(&rx, "on_bind").unwrap();
    // on_bind runs after the address is recorded.
    assert_eq!(server.bound_addresses(), std::slice::from_ref(&addr));
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.echo", ["late"], "reply").unwrap()),
        ["late"]
    );
}

#[test]
fn incoming_connection_id_can_be_used_later() {
    let (tx, rx) = mpsc::channel();
    let mut b = server_builder();
    b.add_category("keep", AuthLevel::None)
        .unwrap()
        .add_command("keep", "me", move |m| {
            let _ = tx.send(m.conn().clone());
        })
        .unwrap();
    let (server, addr) = start_plain(b, AuthLevel::None);
    let (got_tx, got) = mpsc::channel();
    let mut cb = builder();
    cb.add_category("public", AuthLevel::None)
        .unwrap()
        .add_command("public", "later", move |m| {
            let _ = got_tx.send(strings(m.data()));
        })
        .unwrap();
    let client = cb.start().unwrap();
    let conn = connect(client.handle(), &addr);
    client.handle().send(&conn, "keep.me", NO_DATA).unwrap();
    let incoming = wait(&rx, "keep.me");
    server
        .handle()
        .send(&incoming, "public.later", ["hi"])
        .unwrap();
    assert_eq!(wait(&got, "later"), ["hi"]);
}

#[test]
fn many_pipelined_requests_and_large_messages() {
    // An unlimited queue: with the default limit (200) OxenMQ drops the excess, as it should.
    let mut b = server_builder();
    b.add_category(
        "bulk",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )
    .unwrap()
    .add_request_command("bulk", "echo", |m| m.send_reply(m.data().to_vec()))
    .unwrap();
    b.listen(Listen::plain(loopback()).unwrap());
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    let (tx, rx) = mpsc::channel();
    const N: usize = 2000;
    for i in 0..N {
        let tx = tx.clone();
        client
            .handle()
            .request(&conn, "bulk.echo", [format!("{i}")], move |r| {
                let _ = tx.send((i, r));
            })
            .unwrap();
    }
    let mut seen = vec![false; N];
    for _ in 0..N {
        let (i, r) = wait(&rx, "pipelined reply");
        assert_eq!(strings(&r.unwrap()), [format!("{i}")]);
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    // Frames near the 1 MiB default limit need many partial writes on both sides.
    let big = vec![0x5au8; 1000 * 1024];
    for _ in 0..3 {
        let r = request_wait(
            client.handle(),
            &conn,
            "bulk.echo",
            [big.clone(), big.clone()],
            "big reply",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|f| f.as_ref() == big.as_slice()));
    }
}

#[test]
fn disconnect_flushes_queued_messages_within_linger() {
    let (tx, rx) = mpsc::channel();
    let mut b = server_builder();
    b.add_category("sink", AuthLevel::None)
        .unwrap()
        .add_command("sink", "put", move |m| {
            let _ = tx.send(strings(m.data()));
        })
        .unwrap();
    let (_server, addr) = start_plain(b, AuthLevel::None);
    let client = builder().start().unwrap();
    let conn = connect(client.handle(), &addr);
    // Far more than the loopback socket buffers hold, so most of it is still queued in the
    // driver when the disconnect arrives.
    let big = "z".repeat(1000 * 1024);
    for i in 0..24 {
        client
            .handle()
            .send(&conn, "sink.put", [format!("{i}"), big.clone()])
            .unwrap();
    }
    client
        .handle()
        .disconnect(&conn, Duration::from_secs(5))
        .unwrap();
    // Handlers run on two workers, so arrival order at the handlers is not send order.
    let mut got: Vec<usize> = (0..24)
        .map(|_| {
            let m = wait(&rx, "flushed message");
            assert_eq!(m[1].len(), big.len());
            m[0].parse().unwrap()
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..24).collect::<Vec<_>>());
}
