//! Time-driven behaviour of the embedded loop: timers, request and connect timeouts, the
//! handshake deadline for an idle peer, and reconnecting after the server restarts.

mod common;

use std::cell::Cell;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use common::{
    Reply, Slot, WAIT, connect, into_slot, loopback, loopback_sa, mq_server_builder, request, slot,
    strings, turn_for, turn_until,
};
use lokimq::{AuthLevel, Keypair, LokiMq};
use lokimq_core::address::Address;
use lokimq_core::node::{ConnectOptions, RequestError, RequestOptions};
use lokimq_embed_example::Builder;

#[test]
fn a_timer_fires_until_cancelled_then_is_released() {
    let mut node = Builder::new().build().unwrap();
    let fired = Rc::new(Cell::new(0u32));
    let count = Rc::clone(&fired);
    let timer = node
        .add_timer(Duration::from_millis(10), move |_| {
            count.set(count.get() + 1)
        })
        .unwrap();
    assert_eq!(node.timer_count(), 1);
    turn_until(&mut node, "three firings", |_| fired.get() >= 3);

    assert!(node.cancel_timer(timer));
    turn_until(&mut node, "the timer's release", |n| n.timer_count() == 0);
    // Released means gone for good: no firing can follow, however long we turn.
    let after = fired.get();
    for _ in 0..20 {
        node.turn(Duration::from_millis(5));
    }
    assert_eq!(fired.get(), after);
    assert!(!node.cancel_timer(timer), "a released timer is unknown");
}

#[test]
fn a_timer_callback_can_use_the_node() {
    // The timer sends a request from inside its callback and stops itself after one round.
    let (server, addr) = {
        let mut b = mq_server_builder();
        b.listen_curve(loopback_sa(), |_, _, _| AuthLevel::None)
            .unwrap();
        let s = b.start().unwrap();
        let a = s.bound_addresses()[0].clone();
        (s, a)
    };
    let mut c = Builder::new().build().unwrap();
    let conn = connect(&mut c, &addr);
    let out: Slot<Reply> = slot();
    let reply_to = Rc::clone(&out);
    let me: Rc<Cell<Option<lokimq::TimerId>>> = Rc::new(Cell::new(None));
    let me_inside = Rc::clone(&me);
    let timer = c
        .add_timer(Duration::from_millis(5), move |ctx| {
            let reply_to = Rc::clone(&reply_to);
            ctx.request(&conn, "public.echo", ["tick"], move |_, r| {
                *reply_to.borrow_mut() = Some(r);
            })
            .unwrap();
            if let Some(t) = me_inside.get() {
                ctx.cancel_timer(t);
            }
        })
        .unwrap();
    me.set(Some(timer));
    let reply = turn_for(&mut c, &out, "the timer's request").unwrap();
    assert_eq!(strings(&reply), ["tick"]);
    turn_until(&mut c, "the timer's release", |n| n.timer_count() == 0);
    assert!(c.shutdown(WAIT));
    server.shutdown();
}

#[test]
fn an_unanswered_request_times_out() {
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 1;
    b.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_request_command("slow", "never", |_| {})
        .unwrap();
    b.listen_curve(loopback_sa(), |_, _, _| AuthLevel::None)
        .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();

    let mut c = Builder::new().build().unwrap();
    let conn = connect(&mut c, &addr);
    let out = slot();
    let opts = RequestOptions {
        timeout: Some(Duration::from_millis(200)),
        ..RequestOptions::default()
    };
    c.request_with(&conn, "slow.never", ["?"], &opts, into_slot(&out))
        .unwrap();
    assert_eq!(
        turn_for(&mut c, &out, "the request timeout"),
        Err(RequestError::Timeout)
    );
    assert_eq!(c.node().stats().pending_requests, 0);
    assert!(c.shutdown(WAIT));
    server.shutdown();
}

/// A loopback port nobody listens on (bound, read, released).
fn dead_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn a_refused_connect_fails_at_its_deadline() {
    let mut c = Builder::new().build().unwrap();
    let failed: Slot<Result<lokimq_core::node::ConnectionId, String>> = slot();
    let filled = Rc::clone(&failed);
    // OxenMQ's policy: refused attempts are retried until the deadline.
    let opts = ConnectOptions {
        timeout: Some(Duration::from_millis(300)),
        retry_refused: true,
        ..ConnectOptions::default()
    };
    let addr = Address::from_socket_addr(dead_port());
    let conn = c.connect_remote(&addr, &opts, move |_, r| *filled.borrow_mut() = Some(r));
    let outcome = turn_for(&mut c, &failed, "connect failure");
    assert_eq!(outcome, Err(String::from("connection attempt timed out")));
    assert!(!c.node().is_connected(&conn));
    // Every refused dial was reported and forgotten: no socket is left behind.
    assert_eq!(c.node().stats().connections, 0);
}

#[test]
fn an_idle_peer_is_dropped_at_the_handshake_deadline() {
    let mut b = Builder::new();
    b.config_mut().handshake_timeout = Duration::from_millis(200);
    let mut s = b.build().unwrap();
    let addr = s
        .listen_curve(&loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    // A TCP peer that connects and never speaks ZMTP.
    let mut idle = TcpStream::connect(addr.socket_addr().unwrap()).unwrap();
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
    let (first, addr) = start_server(loopback_sa());
    let mut c = Builder::new().build().unwrap();
    let conn = connect(&mut c, &addr);
    assert!(request(&mut c, &conn, "public.echo", &["before"]).is_ok());

    first.shutdown();
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
    second.shutdown();
}
