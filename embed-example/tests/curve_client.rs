//! The embedded loop as a CURVE client of a `lokimq` (mio driver) server.

mod common;

use std::rc::Rc;

use common::{
    Reply, Slot, connect, into_slot, loopback_sa, mq_server_builder, request, slot, strings,
    turn_for,
};
use lokimq::{AuthLevel, LokiMq};
use lokimq_core::address::Address;
use lokimq_core::node::{ConnectionId, RequestError, RequestOptions};
use lokimq_core::time::Duration;
use lokimq_embed_example::{Builder, Embedded};

/// A `lokimq` server granting every CURVE client `basic`, and its address (with its key).
fn mq_server() -> (LokiMq, Address) {
    let mut b = mq_server_builder();
    b.listen_curve(loopback_sa(), |_, _, _| AuthLevel::Basic)
        .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();
    assert!(addr.is_curve());
    (server, addr)
}

/// An embedded client that records the `public.hi` commands the server sends back.
fn client(hi: &Slot<Vec<String>>) -> Embedded {
    let mut b = Builder::new();
    b.registry_mut()
        .add_category_with_defaults("public", AuthLevel::None)
        .unwrap();
    let hi = Rc::clone(hi);
    b.command("public", "hi", move |_, msg| {
        *hi.borrow_mut() = Some(strings(&msg.data));
    })
    .unwrap();
    b.build().unwrap()
}

/// Shuts the embedded client down first: the server's own shutdown waits (up to its linger)
/// for each peer's EOF, which an embedded loop nobody turns would never send.
fn finish(mut c: Embedded, server: LokiMq) {
    assert!(c.shutdown(common::WAIT), "the embedded client did not stop");
    assert!(c.is_stopped());
    server.shutdown();
}

#[test]
fn requests_replies_and_send_back() {
    let (server, addr) = mq_server();
    let hi = slot();
    let mut c = client(&hi);
    let conn = connect(&mut c, &addr);
    assert!(c.node().is_connected(&conn));

    let reply = request(&mut c, &conn, "public.echo", &["one", "two"]).unwrap();
    assert_eq!(strings(&reply), ["one", "two"]);

    // The server sees our CURVE key and the level its allow function granted.
    let reply = request(&mut c, &conn, "public.whoami", &[]).unwrap();
    assert_eq!(strings(&reply), ["basic", &c.pubkey().to_hex()]);

    c.send(&conn, "public.hello", ["back at me"]).unwrap();
    assert_eq!(turn_for(&mut c, &hi, "public.hi"), ["back at me"]);

    // Many requests in flight at once: each callback gets its own reply.
    let slots: Vec<Slot<Reply>> = (0..20).map(|_| slot()).collect();
    for (i, s) in slots.iter().enumerate() {
        c.request(&conn, "public.echo", [i.to_string()], into_slot(s))
            .unwrap();
    }
    for (i, s) in slots.iter().enumerate() {
        let r = turn_for(&mut c, s, "pipelined echo").unwrap();
        assert_eq!(strings(&r), [i.to_string()]);
    }
    finish(c, server);
}

#[test]
fn error_replies_reach_the_callback() {
    let (server, addr) = mq_server();
    let mut c = client(&slot());
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
    let mut c = client(&slot());
    let conn = connect(&mut c, &addr);
    // 900 KiB: far more than one write takes, under the 1 MiB frame limit.
    let big: Vec<u8> = (0..900 * 1024).map(|i| (i % 251) as u8).collect();
    let out = slot();
    c.request(&conn, "public.echo", [big.clone()], into_slot(&out))
        .unwrap();
    let reply = turn_for(&mut c, &out, "big echo").unwrap();
    assert_eq!(reply.len(), 1);
    assert!(reply[0] == big, "the echo differs from what was sent");
    finish(c, server);
}

#[test]
fn service_node_sends_use_the_lookup() {
    let (server, addr) = mq_server();
    let server_key = *server.handle().pubkey();
    let mut b = Builder::new();
    let looked_up = slot();
    let flag = Rc::clone(&looked_up);
    let known = addr.clone();
    b.sn_lookup(move |pk| {
        *flag.borrow_mut() = Some(*pk);
        (*pk == server_key).then(|| known.clone())
    });
    let mut c = b.build().unwrap();

    // By key alone: the node asks `Event::LookupSn`, we answer, it dials.
    let sn = ConnectionId::Sn(server_key);
    let reply = request(&mut c, &sn, "public.echo", &["by key"]).unwrap();
    assert_eq!(strings(&reply), ["by key"]);
    assert_eq!(*looked_up.borrow(), Some(server_key));

    // An unknown key: the lookup answers `None`, so the request can never be delivered.
    let stranger = lokimq_core::keys::Keypair::generate(&mut rand_core::OsRng);
    let out = slot();
    let opts = RequestOptions {
        timeout: Some(Duration::from_millis(300)),
        ..RequestOptions::default()
    };
    c.request_with(
        &ConnectionId::Sn(*stranger.public()),
        "public.echo",
        ["lost"],
        &opts,
        into_slot(&out),
    )
    .unwrap();
    // The failed lookup gives the connection up: the request fails at once.
    assert_eq!(
        turn_for(&mut c, &out, "undeliverable request"),
        Err(RequestError::Disconnected)
    );
    assert_eq!(*looked_up.borrow(), Some(*stranger.public()));
    finish(c, server);
}
