//! The embedded loop as a CURVE server for `lokimq` (mio driver) clients: its handlers are the
//! ordinary `lokimq` ones, run inline on the loop's thread, inside `turn`, and reply from there.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::{WAIT, bound, embedded, loopback, mq_ask, mq_connect, stop, strings, turn_recv};
use lokimq::{Address, AuthLevel, Builder, ConnectOptions, LokiMq, PublicKey, RequestError};
use lokimq_embed_example::Embedded;

/// The threads `rpc.echo` ran on, once per run.
type Runs = Arc<Mutex<Vec<ThreadId>>>;

/// An embedded server: `rpc.echo` (request), `rpc.whoami` (request: auth level and key),
/// `rpc.ping` (command: sends `client.pong` back), `rpcadmin.echo` (request, admin only). Its
/// allow function denies `banned` and grants everyone else `basic`; `runs` records where
/// `rpc.echo` ran.
fn server(banned: Option<PublicKey>, runs: &Runs) -> (Embedded, Address) {
    let runs = Arc::clone(runs);
    let mut b = Builder::new();
    b.add_category("rpc", AuthLevel::None)
        .unwrap()
        .add_category("rpcadmin", AuthLevel::Admin)
        .unwrap()
        .add_request_command("rpc", "echo", move |m| {
            runs.lock().unwrap().push(thread::current().id());
            m.send_reply(m.data().to_vec());
        })
        .unwrap()
        .add_request_command("rpc", "whoami", common::whoami)
        .unwrap()
        .add_command("rpc", "ping", |m| {
            m.send_back("client.pong", m.data().to_vec())
        })
        .unwrap()
        .add_request_command("rpcadmin", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap()
        .listen_curve(loopback(), move |_ip, key, _sn| {
            if key.is_some() && key == banned.as_ref() {
                AuthLevel::Denied
            } else {
                AuthLevel::Basic
            }
        })
        .unwrap();
    let s = embedded(b);
    let addr = bound(&s);
    assert_eq!(addr.pubkey(), Some(s.handle().pubkey()));
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

/// Shuts the embedded server down cleanly, then the clients.
fn finish(mut s: Embedded, clients: impl IntoIterator<Item = LokiMq>) {
    assert!(s.shutdown(WAIT), "the embedded server did not stop");
    clients.into_iter().for_each(stop);
}

#[test]
fn handlers_run_inline_and_reply() {
    let runs = Runs::default();
    let (mut s, addr) = server(None, &runs);
    let (client, pongs) = mq_client();
    let conn = mq_connect(&mut s, &client, &addr);

    let r = mq_ask(&mut s, &client, &conn, "rpc.echo", &["a", "b"]).unwrap();
    assert_eq!(strings(&r), ["a", "b"]);
    // Inline: on this thread, the one that turns the loop.
    assert_eq!(*runs.lock().unwrap(), [thread::current().id()]);

    let r = mq_ask(&mut s, &client, &conn, "rpc.whoami", &[]).unwrap();
    assert_eq!(strings(&r), ["basic", &client.pubkey().to_hex()]);

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
    let runs = Runs::default();
    let (mut s, addr) = server(None, &runs);
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
    assert_eq!(runs.lock().unwrap().len(), 15);
    finish(s, clients);
}

#[test]
fn a_denied_client_never_reaches_a_handler() {
    let runs = Runs::default();
    let (client, _pongs) = mq_client();
    let banned = *client.pubkey();
    let (mut s, addr) = server(Some(banned), &runs);

    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let opts = ConnectOptions::default().timeout(Duration::from_millis(500));
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
    // The request queued behind the refused connection fails without reaching a handler.
    assert!(turn_recv(&mut s, &rrx, "request failure").is_err());
    assert!(runs.lock().unwrap().is_empty());

    // Another client is let in by the same listener.
    let (other, _) = mq_client();
    let conn = mq_connect(&mut s, &other, &addr);
    assert!(mq_ask(&mut s, &other, &conn, "rpc.echo", &["ok"]).is_ok());
    assert_eq!(runs.lock().unwrap().len(), 1);
    finish(s, [client, other]);
}
