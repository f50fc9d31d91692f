//! The embedded loop as a CURVE server for `lokimq` (mio driver) clients: its handlers run
//! inline, inside `turn`, and reply from there.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;

use common::{loopback, mq_ask, mq_connect, strings, turn_recv};
use lokimq::{AuthLevel, Bytes, ConnectOptions, LokiMq, PublicKey};
use lokimq_core::address::Address;
use lokimq_core::node::RequestError;
use lokimq_embed_example::{Builder, Embedded};

/// An embedded server: `rpc.echo` (request), `rpc.whoami` (request: auth level and key),
/// `rpc.ping` (command: sends `client.pong` back), `rpc.admin` (request, admin only). Its
/// allow function denies `banned` and grants everyone else `basic`; `handled` counts the
/// handler runs.
fn server(banned: Option<PublicKey>, handled: &Rc<Cell<u32>>) -> (Embedded, Address) {
    let mut b = Builder::new();
    let r = b.registry_mut();
    r.add_category_with_defaults("rpc", AuthLevel::None)
        .unwrap();
    r.add_category_with_defaults("rpcadmin", AuthLevel::Admin)
        .unwrap();
    let count = Rc::clone(handled);
    b.request_command("rpc", "echo", move |ctx, msg| {
        count.set(count.get() + 1);
        ctx.reply(&msg.reply_to, msg.data.clone()).unwrap();
    })
    .unwrap()
    .request_command("rpc", "whoami", |ctx, msg| {
        let key = msg.conn.pubkey().map(PublicKey::to_hex).unwrap_or_default();
        let auth = msg.access.auth.as_str();
        ctx.reply(&msg.reply_to, [Bytes::from(auth), Bytes::from(key)])
            .unwrap();
    })
    .unwrap()
    .command("rpc", "ping", |ctx, msg| {
        ctx.send_back(&msg.reply_to, "client.pong", msg.data.clone())
            .unwrap();
    })
    .unwrap()
    .request_command("rpcadmin", "echo", |ctx, msg| {
        ctx.reply(&msg.reply_to, msg.data.clone()).unwrap();
    })
    .unwrap();
    let mut s = b.build().unwrap();
    let addr = s
        .listen_curve(&loopback(), move |_ip, key, _sn| {
            if key.is_some() && key == banned.as_ref() {
                AuthLevel::Denied
            } else {
                AuthLevel::Basic
            }
        })
        .unwrap();
    assert_eq!(addr.pubkey(), Some(s.pubkey()));
    (s, addr)
}

/// A `lokimq` client with a `client.pong` command that forwards its data to the returned channel.
fn mq_client() -> (LokiMq, mpsc::Receiver<Vec<String>>) {
    let (tx, rx) = mpsc::channel();
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 2;
    b.add_category("client", AuthLevel::None)
        .unwrap()
        .add_command("client", "pong", move |m| {
            let _ = tx.send(strings(m.data()));
        })
        .unwrap();
    (b.start().unwrap(), rx)
}

/// Shuts the embedded server down first: a client's own shutdown waits (up to its linger) for
/// the peer's EOF, which an embedded loop nobody turns would never send.
fn finish(mut s: Embedded, clients: impl IntoIterator<Item = LokiMq>) {
    assert!(s.shutdown(common::WAIT), "the embedded server did not stop");
    for c in clients {
        c.shutdown();
    }
}

#[test]
fn handlers_run_inline_and_reply() {
    let handled = Rc::new(Cell::new(0));
    let (mut s, addr) = server(None, &handled);
    let (client, pongs) = mq_client();
    let conn = mq_connect(&mut s, &client, &addr);

    let r = mq_ask(&mut s, &client, &conn, "rpc.echo", &["a", "b"]).unwrap();
    assert_eq!(strings(&r), ["a", "b"]);
    assert_eq!(handled.get(), 1);

    let r = mq_ask(&mut s, &client, &conn, "rpc.whoami", &[]).unwrap();
    assert_eq!(strings(&r), ["basic", &client.handle().pubkey().to_hex()]);

    client.handle().send(&conn, "rpc.ping", ["p"]).unwrap();
    assert_eq!(turn_recv(&mut s, &pongs, "client.pong"), ["p"]);

    assert_eq!(
        mq_ask(&mut s, &client, &conn, "rpcadmin.echo", &[]),
        Err(RequestError::Forbidden)
    );
    assert_eq!(
        mq_ask(&mut s, &client, &conn, "rpc.missing", &[]),
        Err(RequestError::UnknownCommand)
    );
    finish(s, [client]);
}

#[test]
fn several_clients_at_once() {
    let handled = Rc::new(Cell::new(0));
    let (mut s, addr) = server(None, &handled);
    let clients: Vec<LokiMq> = (0..3).map(|_| mq_client().0).collect();
    let conns: Vec<_> = clients
        .iter()
        .map(|c| mq_connect(&mut s, c, &addr))
        .collect();
    let (tx, rx) = mpsc::channel();
    for (i, (c, conn)) in clients.iter().zip(&conns).enumerate() {
        for j in 0..5 {
            let tx = tx.clone();
            c.handle()
                .request(conn, "rpc.echo", [format!("{i}/{j}")], move |r| {
                    let _ = tx.send(r);
                })
                .unwrap();
        }
    }
    let mut got: Vec<String> = (0..15)
        .map(|_| strings(&turn_recv(&mut s, &rx, "echo").unwrap()).join(""))
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..3)
        .flat_map(|i| (0..5).map(move |j| format!("{i}/{j}")))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(handled.get(), 15);
    finish(s, clients);
}

#[test]
fn a_denied_client_never_reaches_a_handler() {
    let handled = Rc::new(Cell::new(0));
    let (client, _pongs) = mq_client();
    let banned = *client.handle().pubkey();
    let (mut s, addr) = server(Some(banned), &handled);

    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let opts = ConnectOptions {
        timeout: Some(std::time::Duration::from_millis(500)),
        ..ConnectOptions::default()
    };
    let conn = client
        .handle()
        .connect_remote(
            &addr,
            move |c| {
                let _ = tx.send(Ok(c));
            },
            move |_, why| {
                let _ = tx2.send(Err(why));
            },
            opts,
        )
        .unwrap();
    let (rtx, rrx) = mpsc::channel();
    client
        .handle()
        .request(&conn, "rpc.echo", ["x"], move |r| {
            let _ = rtx.send(r);
        })
        .unwrap();
    let outcome = turn_recv(&mut s, &rx, "connect failure");
    assert!(outcome.is_err(), "a denied client connected: {outcome:?}");
    assert_eq!(handled.get(), 0);
    // The request queued behind the refused connection fails without reaching a handler.
    assert!(turn_recv(&mut s, &rrx, "request failure").is_err());
    assert_eq!(handled.get(), 0);

    // Another client is let in by the same listener.
    let (other, _) = mq_client();
    let conn = mq_connect(&mut s, &other, &addr);
    assert!(mq_ask(&mut s, &other, &conn, "rpc.echo", &["ok"]).is_ok());
    assert_eq!(handled.get(), 1);
    finish(s, [client, other]);
}
