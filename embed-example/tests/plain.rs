//! Plain (NULL mechanism) TCP in both directions between the embedded loop and `lokimq`, and
//! between two embedded loops on one thread.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{
    WAIT, connect, into_slot, loopback, loopback_sa, mq_ask, mq_connect, mq_server_builder,
    request, slot, strings,
};
use lokimq::{AuthLevel, Bytes, Stopwatch};
use lokimq_embed_example::{Builder, Embedded};

#[test]
fn embedded_client_to_a_lokimq_plain_server() {
    let mut b = mq_server_builder();
    b.listen_plain(loopback_sa(), |_, key, _| {
        assert!(key.is_none(), "a plain listener has no client key");
        AuthLevel::Admin
    })
    .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();
    assert!(!addr.is_curve());

    let mut c = Builder::new().build().unwrap();
    let conn = connect(&mut c, &addr);
    assert_eq!(
        strings(&request(&mut c, &conn, "public.echo", &["plain"]).unwrap()),
        ["plain"]
    );
    // No key on a plain connection; the listener granted admin.
    assert_eq!(
        strings(&request(&mut c, &conn, "public.whoami", &[]).unwrap()),
        ["admin", ""]
    );
    assert!(request(&mut c, &conn, "admin.echo", &["ok"]).is_ok());
    assert!(c.shutdown(WAIT));
    server.shutdown();
}

#[test]
fn lokimq_client_to_an_embedded_plain_server() {
    let mut b = Builder::new();
    b.registry_mut()
        .add_category_with_defaults("svc", AuthLevel::Basic)
        .unwrap();
    let remotes = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&remotes);
    b.request_command("svc", "upper", move |ctx, msg| {
        seen.borrow_mut().push(msg.remote.clone());
        let up: Vec<Bytes> = msg
            .data
            .iter()
            .map(|d| Bytes::from(d.to_ascii_uppercase()))
            .collect();
        ctx.reply(&msg.reply_to, up).unwrap();
    })
    .unwrap();
    let mut s = b.build().unwrap();
    let addr = s
        .listen_plain(&loopback(), |ip, key, _| {
            assert!(key.is_none());
            if ip == "127.0.0.1" {
                AuthLevel::Basic
            } else {
                AuthLevel::Denied
            }
        })
        .unwrap();
    assert!(addr.pubkey().is_none());

    let client = LokiMqClient::start();
    let conn = client.connect(&mut s, &addr);
    let r = mq_ask(&mut s, &client.mq, &conn, "svc.upper", &["abc", "xyz"]);
    assert_eq!(strings(&r.unwrap()), ["ABC", "XYZ"]);
    assert_eq!(
        remotes
            .borrow()
            .iter()
            .map(|r: &std::sync::Arc<str>| &**r)
            .collect::<Vec<_>>(),
        ["127.0.0.1"]
    );
    assert!(s.shutdown(WAIT));
    client.mq.shutdown();
}

/// A `lokimq` node used as a client.
struct LokiMqClient {
    mq: lokimq::LokiMq,
}

impl LokiMqClient {
    fn start() -> Self {
        let mut b = lokimq::LokiMq::builder();
        b.config_mut().general_workers = 1;
        Self {
            mq: b.start().unwrap(),
        }
    }

    fn connect(&self, server: &mut Embedded, addr: &lokimq::Address) -> lokimq::ConnectionId {
        mq_connect(server, &self.mq, addr)
    }
}

/// Turns both nodes until `done` holds (bounded).
fn turn_both(
    a: &mut Embedded,
    b: &mut Embedded,
    what: &str,
    done: impl Fn(&Embedded, &Embedded) -> bool,
) {
    let clock = Stopwatch::start();
    while !done(a, b) {
        assert!(clock.elapsed() < WAIT, "timed out waiting for {what}");
        // Short waits each: either node may be the one with work.
        a.turn(common::TICK / 2);
        b.turn(common::TICK / 2);
    }
}

#[test]
fn two_embedded_loops_on_one_thread() {
    for curve in [false, true] {
        let mut b = Builder::new();
        b.registry_mut()
            .add_category_with_defaults("math", AuthLevel::None)
            .unwrap();
        b.request_command("math", "sum", |ctx, msg| {
            let sum: u64 = msg
                .data
                .iter()
                .filter_map(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
                .sum();
            ctx.reply(&msg.reply_to, [sum.to_string()]).unwrap();
        })
        .unwrap();
        let mut server = b.build().unwrap();
        let addr = if curve {
            server.listen_curve(&loopback(), |_, _, _| AuthLevel::None)
        } else {
            server.listen_plain(&loopback(), |_, _, _| AuthLevel::None)
        }
        .unwrap();

        let mut client = Builder::new().build().unwrap();
        let up = slot();
        let filled = Rc::clone(&up);
        let conn = client.connect_remote(&addr, &Default::default(), move |_, r| {
            *filled.borrow_mut() = Some(r.is_ok());
        });
        turn_both(&mut client, &mut server, "connect", |_, _| {
            up.borrow().is_some()
        });
        assert_eq!(*up.borrow(), Some(true));

        let out = slot();
        client
            .request(&conn, "math.sum", ["1", "2", "39"], into_slot(&out))
            .unwrap();
        turn_both(&mut client, &mut server, "math.sum", |_, _| {
            out.borrow().is_some()
        });
        let reply = out.borrow_mut().take().unwrap().unwrap();
        assert_eq!(strings(&reply), ["42"], "curve: {curve}");

        // The client's disconnect flushes, half-closes and waits for the server's EOF; the
        // server sees ours, forgets the peer and closes its side.
        client.disconnect(&conn, WAIT).unwrap();
        assert!(!client.node().is_connected(&conn));
        turn_both(&mut client, &mut server, "both sides closed", |c, s| {
            c.node().stats().connections == 0 && s.node().stats().connections == 0
        });
        assert!(client.shutdown(WAIT) && server.shutdown(WAIT));
    }
}
