//! Plain (NULL mechanism) TCP in both directions between the embedded loop and `lokimq`, and
//! between two embedded loops on one thread (plain, CURVE, and a unix socket).

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    WAIT, bound, connect, connect_with, embedded, loopback, mq_ask, mq_connect, mq_server_builder,
    request, stop, strings,
};
use lokimq::{Address, AuthLevel, Builder, Bytes, ConnectOptions, LokiMq, Stopwatch};
use lokimq_embed_example::Embedded;

#[test]
fn embedded_client_to_a_lokimq_plain_server() {
    let mut b = mq_server_builder();
    b.listen_plain(loopback(), |_, key, _| {
        assert!(key.is_none(), "a plain listener has no client key");
        AuthLevel::Admin
    })
    .unwrap();
    let server = b.start().unwrap();
    let addr = server.bound_addresses()[0].clone();
    assert!(!addr.is_curve());

    let mut c = embedded(Builder::new());
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
    stop(server);
}

#[test]
fn lokimq_client_to_an_embedded_plain_server() {
    let remotes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&remotes);
    let mut b = Builder::new();
    b.add_category("svc", AuthLevel::Basic)
        .unwrap()
        .add_request_command("svc", "upper", move |m| {
            seen.lock().unwrap().push(m.remote().to_owned());
            let up: Vec<Bytes> = m
                .data()
                .iter()
                .map(|d| Bytes::from(d.to_ascii_uppercase()))
                .collect();
            m.send_reply(up);
        })
        .unwrap()
        .listen_plain(loopback(), |ip, key, _| {
            assert!(key.is_none());
            if ip == "127.0.0.1" {
                AuthLevel::Basic
            } else {
                AuthLevel::Denied
            }
        })
        .unwrap();
    let mut s = embedded(b);
    let addr = bound(&s);
    assert!(addr.pubkey().is_none());

    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 1;
    let client = b.start().unwrap();
    let conn = mq_connect(&mut s, &client, &addr);
    let r = mq_ask(&mut s, &client, &conn, "svc.upper", &["abc", "xyz"]);
    assert_eq!(strings(&r.unwrap()), ["ABC", "XYZ"]);
    assert_eq!(*remotes.lock().unwrap(), ["127.0.0.1"]);
    assert!(s.shutdown(WAIT));
    stop(client);
}

/// Turns both nodes until `done` holds (bounded).
fn turn_both(
    a: &mut Embedded,
    b: &mut Embedded,
    what: &str,
    mut done: impl FnMut(&Embedded, &Embedded) -> bool,
) {
    let clock = Stopwatch::start();
    while !done(a, b) {
        assert!(clock.elapsed() < WAIT, "timed out waiting for {what}");
        // Short waits each: either node may be the one with work.
        a.turn(Duration::from_millis(1));
        b.turn(Duration::from_millis(1));
    }
}

#[test]
fn two_embedded_loops_on_one_thread() {
    let dir = std::env::temp_dir().join(format!("lokimq-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("math.sock");
    let listeners: [(&str, Address); 3] = [
        ("plain", Address::tcp("127.0.0.1", 0)),
        ("curve", Address::tcp("127.0.0.1", 0)),
        ("plain", Address::ipc(sock.to_string_lossy().into_owned())),
    ];
    for (mechanism, at) in listeners {
        let mut b = Builder::new();
        b.add_category("math", AuthLevel::None)
            .unwrap()
            .add_request_command("math", "sum", |m| {
                let sum: u64 = m
                    .data()
                    .iter()
                    .filter_map(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
                    .sum();
                m.send_reply([sum.to_string()]);
            })
            .unwrap();
        if mechanism == "curve" {
            b.listen_curve(&at, |_, _, _| AuthLevel::None).unwrap();
        } else {
            b.listen_plain(&at, |_, _, _| AuthLevel::None).unwrap();
        }
        let mut server = embedded(b);
        let addr = bound(&server);
        assert_eq!(addr.is_curve(), mechanism == "curve", "{addr}");

        let mut client = embedded(Builder::new());
        let (tx, rx) = mpsc::channel();
        let conn = connect_with(&client, &addr, ConnectOptions::default(), tx);
        let mut up = None;
        turn_both(&mut client, &mut server, "connect", |_, _| {
            up = rx.try_recv().ok();
            up.is_some()
        });
        assert_eq!(up, Some(Ok(conn.clone())), "{addr}");

        let (tx, rx) = mpsc::channel();
        client
            .handle()
            .request(&conn, "math.sum", ["1", "2", "39"], move |r| {
                let _ = tx.send(r);
            })
            .unwrap();
        let mut reply = None;
        turn_both(&mut client, &mut server, "math.sum", |_, _| {
            reply = rx.try_recv().ok();
            reply.is_some()
        });
        assert_eq!(strings(&reply.unwrap().unwrap()), ["42"], "{addr}");

        // The client's disconnect flushes and half-closes; the server sees our EOF, forgets
        // the peer and closes its side.
        client.handle().disconnect(&conn, WAIT).unwrap();
        turn_both(&mut client, &mut server, "both sides closed", |c, s| {
            !c.node().is_connected(&conn)
                && c.node().stats().connections == 0
                && s.node().stats().connections == 0
        });
        assert!(client.shutdown(WAIT) && server.shutdown(WAIT));
        // The unix socket's file goes with its listener.
        assert!(!sock.exists(), "{} left behind", sock.display());
    }
    let _ = std::fs::remove_dir(&dir);
}
