//! The embedded loop as a CURVE client of a `lokimq` (mio driver) server, through the same
//! `Handle` calls a native client makes.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    WAIT, connect, embedded, loopback, mq_server_builder, request, stop, strings, turn_recv,
    turn_until,
};
use lokimq::{
    Address, AuthLevel, Batch, Builder, ConnectionId, Keypair, LokiMq, RequestError,
    RequestOptions, Target,
};
use lokimq_embed_example::Embedded;

/// A `lokimq` server granting every CURVE client `basic`, and its address (with its key).
fn mq_server() -> (LokiMq, Address) {
    let mut b = mq_server_builder();
    b.listen_curve(loopback(), |_, _, _| AuthLevel::Basic)
        .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();
    assert!(addr.is_curve());
    (server, addr)
}

/// An embedded client whose `public.hi` command (which the server sends back) forwards its data.
fn client() -> (Embedded, mpsc::Receiver<Vec<String>>) {
    let (tx, rx) = mpsc::channel();
    let mut b = Builder::new();
    b.add_category("public", AuthLevel::None)
        .unwrap()
        .add_command("public", "hi", move |m| {
            let _ = tx.send(strings(m.data()));
        })
        .unwrap();
    (embedded(b), rx)
}

/// Shuts the embedded client down first (cleanly: flushed, closed), then the server.
fn finish(mut c: Embedded, server: LokiMq) {
    assert!(c.shutdown(WAIT), "the embedded client did not stop");
    assert!(c.is_stopped());
    stop(server);
}

#[test]
fn requests_replies_and_send_back() {
    let (server, addr) = mq_server();
    let (mut c, hi) = client();
    let conn = connect(&mut c, &addr);
    assert!(c.node().is_connected(&conn));

    let reply = request(&mut c, &conn, "public.echo", &["one", "two"]).unwrap();
    assert_eq!(strings(&reply), ["one", "two"]);

    // The server sees our CURVE key and the level its allow function granted.
    let reply = request(&mut c, &conn, "public.whoami", &[]).unwrap();
    assert_eq!(strings(&reply), ["basic", &c.handle().pubkey().to_hex()]);

    c.handle()
        .send(&conn, "public.hello", ["back at me"])
        .unwrap();
    assert_eq!(turn_recv(&mut c, &hi, "public.hi"), ["back at me"]);

    // Many requests in flight at once: each callback gets its own reply.
    let (tx, rx) = mpsc::channel();
    for i in 0..20 {
        let tx = tx.clone();
        c.handle()
            .request(&conn, "public.echo", [i.to_string()], move |r| {
                let _ = tx.send((i, r));
            })
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..20 {
        let (i, r) = turn_recv(&mut c, &rx, "pipelined echo");
        assert_eq!(strings(&r.unwrap()), [i.to_string()]);
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    finish(c, server);
}

#[test]
fn error_replies_reach_the_callback() {
    let (server, addr) = mq_server();
    let (mut c, _) = client();
    let conn = connect(&mut c, &addr);
    assert_eq!(
        request(&mut c, &conn, "admin.echo", &["x"]),
        Err(RequestError::Forbidden)
    );
    assert_eq!(
        request(&mut c, &conn, "public.nope", &[]),
        Err(RequestError::UnknownCommand)
    );
    assert_eq!(
        request(&mut c, &conn, "nocategory.x", &[]),
        Err(RequestError::UnknownCommand)
    );
    // The connection survives error replies.
    assert!(request(&mut c, &conn, "public.echo", &["still here"]).is_ok());
    finish(c, server);
}

#[test]
fn a_request_larger_than_a_socket_buffer_goes_through_partial_writes() {
    let (server, addr) = mq_server();
    let (mut c, _) = client();
    let conn = connect(&mut c, &addr);
    // 900 KiB: far more than one write takes, under the 1 MiB frame limit.
    let big: Vec<u8> = (0..900 * 1024).map(|i| (i % 251) as u8).collect();
    let (tx, rx) = mpsc::channel();
    c.handle()
        .request(&conn, "public.echo", [big.clone()], move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
    let reply = turn_recv(&mut c, &rx, "big echo").unwrap();
    assert_eq!(reply.len(), 1);
    assert!(reply[0] == big, "the echo differs from what was sent");
    finish(c, server);
}

#[test]
fn a_disconnect_delivers_what_was_queued_first() {
    let dir = std::env::temp_dir().join(format!("lokimq-embed-linger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("sink.sock");
    let (tx, rx) = mpsc::channel();
    let mut b = LokiMq::builder();
    b.add_category("sink", AuthLevel::None)
        .unwrap()
        .add_command("sink", "take", move |m| {
            let _ = tx.send(m.data().iter().map(|d| d.len()).sum::<usize>());
        })
        .unwrap()
        // A unix socket: its buffers hold a few hundred kilobytes, where loopback TCP's grow
        // to tens of megabytes.
        .listen_curve(format!("ipc://{}", sock.display()), |_, _, _| {
            AuthLevel::None
        })
        .unwrap();
    let server = b.start().unwrap();
    let (mut c, _) = client();
    let conn = connect(&mut c, &server.bound_addresses()[0]);
    // The server's loop stops reading for a moment (a completion run on its own thread)...
    let (stalled, stalling) = mpsc::channel();
    let mut stall = Batch::new();
    stall.add_job(|| ());
    stall
        .completion_on(
            move |_| {
                let _ = stalled.send(());
                std::thread::sleep(Duration::from_millis(500));
            },
            Target::InDriver,
        )
        .unwrap();
    server.handle().batch(stall).unwrap();
    stalling.recv_timeout(WAIT).unwrap();
    // ... while we send far more than the sockets hold, then close in the same turn: the close
    // procedure writes the rest when the server reads again (lingering up to 10 s), and only
    // then half-closes.
    let big = lokimq::Bytes::from(vec![7u8; 900 * 1024]);
    for _ in 0..8 {
        c.handle().send(&conn, "sink.take", [big.clone()]).unwrap();
    }
    c.handle().disconnect(&conn, WAIT).unwrap();
    for i in 0..8 {
        let what = format!("message {i}");
        assert_eq!(turn_recv(&mut c, &rx, &what), 900 * 1024);
    }
    turn_until(&mut c, "the close", |c| c.node().stats().connections == 0);
    finish(c, server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn service_node_sends_use_the_lookup() {
    let (server, addr) = mq_server();
    let server_key = *server.pubkey();
    let looked_up = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&looked_up);
    let mut b = Builder::new();
    b.sn_lookup(move |pk| {
        *seen.lock().unwrap() = Some(*pk);
        (*pk == server_key).then(|| addr.clone())
    });
    let mut c = embedded(b);

    // By key alone: the node asks for the address, the lookup answers, the node dials.
    let sn = ConnectionId::Sn(server_key);
    let reply = request(&mut c, &sn, "public.echo", &["by key"]).unwrap();
    assert_eq!(strings(&reply), ["by key"]);
    assert_eq!(*looked_up.lock().unwrap(), Some(server_key));

    // An unknown key: the lookup answers `None`, so the request can never be delivered, and
    // fails at once as its connection is gone for good.
    let stranger = *Keypair::generate(&mut rand_core::OsRng).public();
    let (tx, rx) = mpsc::channel();
    let opts = RequestOptions::default().timeout(Duration::from_millis(300));
    c.handle()
        .request_with(
            &ConnectionId::Sn(stranger),
            "public.echo",
            ["lost"],
            opts,
            move |r| {
                let _ = tx.send(r);
            },
        )
        .unwrap();
    assert_eq!(
        turn_recv(&mut c, &rx, "undeliverable request"),
        Err(RequestError::Disconnected)
    );
    assert_eq!(*looked_up.lock().unwrap(), Some(stranger));
    finish(c, server);
}
