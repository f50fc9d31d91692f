//! Helpers shared by the integration tests: bounded turning, requests and connects that wait by
//! turning, a `lokimq` server.

#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use lokimq::{
    Address, AuthLevel, Builder, Bytes, ConnectOptions, ConnectionId, LokiMq, RequestError,
};
use lokimq_embed_example::Embedded;

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// What a reply callback receives.
pub(crate) type Reply = Result<Vec<Bytes>, RequestError>;

/// Builds an embedded node; its listeners are bound when this returns.
pub(crate) fn embedded(b: Builder) -> Embedded {
    Embedded::new(b).expect("the embedded node builds")
}

/// The address of a node's first listener (with its key, for CURVE).
pub(crate) fn bound(node: &Embedded) -> Address {
    node.handle().bound_addresses()[0].clone()
}

/// Turns `node` until `done` holds, failing the test after [`WAIT`].
pub(crate) fn turn_until(node: &mut Embedded, what: &str, done: impl FnMut(&Embedded) -> bool) {
    assert!(
        node.run_until(done, WAIT),
        "timed out waiting for {what} (stats: {:?})",
        node.node().stats()
    );
}

/// Turns `node` (which the other side needs to make progress) until `rx` yields.
pub(crate) fn turn_recv<T>(node: &mut Embedded, rx: &Receiver<T>, what: &str) -> T {
    let mut got = None;
    turn_until(node, what, |_| {
        got = rx.try_recv().ok();
        got.is_some()
    });
    got.expect("received")
}

/// Sends a request from `node`'s handle and turns until its outcome arrives.
pub(crate) fn request(
    node: &mut Embedded,
    to: &ConnectionId,
    command: &'static str,
    data: &[&'static str],
) -> Reply {
    let (tx, rx) = mpsc::channel();
    node.handle()
        .request(to, command, data.iter().copied(), move |r| {
            let _ = tx.send(r);
        })
        .expect("request queued");
    turn_recv(node, &rx, command)
}

/// Connects `node` to `addr` and turns until the remote said `HELLO`.
pub(crate) fn connect(node: &mut Embedded, addr: &Address) -> ConnectionId {
    let (tx, rx) = mpsc::channel();
    let conn = connect_with(node, addr, ConnectOptions::default(), tx);
    let got = turn_recv(node, &rx, "connect").expect("connected");
    assert_eq!(got, conn);
    conn
}

/// Starts a connect from `handle`, sending its outcome to `tx`.
pub(crate) fn connect_with(
    node: &Embedded,
    addr: &Address,
    opts: ConnectOptions,
    tx: mpsc::Sender<Result<ConnectionId, String>>,
) -> ConnectionId {
    let tx2 = tx.clone();
    node.handle()
        .connect_remote(
            addr,
            move |c| {
                let _ = tx.send(Ok(c));
            },
            move |_, why| {
                let _ = tx2.send(Err(why));
            },
            opts,
        )
        .expect("connect posted")
}

/// Connects the `lokimq` node `client` to the embedded `server`, turning the server until the
/// connection is up.
pub(crate) fn mq_connect(server: &mut Embedded, client: &LokiMq, addr: &Address) -> ConnectionId {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let conn = client
        .handle()
        .connect_remote(
            addr,
            move |c| {
                let _ = tx.send(Ok(c));
            },
            move |_, why| {
                let _ = tx2.send(Err(why));
            },
            ConnectOptions::default(),
        )
        .unwrap();
    let up: Result<ConnectionId, String> = turn_recv(server, &rx, "connect");
    assert_eq!(up, Ok(conn.clone()));
    conn
}

/// Sends a request from the `lokimq` node `client` and turns the embedded `server` until the
/// reply arrives.
pub(crate) fn mq_ask(
    server: &mut Embedded,
    client: &LokiMq,
    conn: &ConnectionId,
    command: &'static str,
    data: &[&'static str],
) -> Reply {
    let (tx, rx) = mpsc::channel();
    client
        .handle()
        .request(conn, command, data.iter().copied(), move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
    turn_recv(server, &rx, command)
}

/// Shuts a `lokimq` node down and waits for it. A thread that drives an embedded node counts
/// as a node's own thread, where dropping a `LokiMq` does not wait (it could be waiting for
/// itself), so the drop happens on a thread of its own.
pub(crate) fn stop(mq: LokiMq) {
    std::thread::spawn(move || drop(mq))
        .join()
        .expect("the lokimq node shut down");
}

/// Frames as strings, for readable assertions.
pub(crate) fn strings(frames: &[Bytes]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// An ephemeral loopback TCP address.
pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A `lokimq` node builder with `public.echo` (request, echoes), `public.hello` (command, sends
/// back `public.hi` with the same data), `public.whoami` (request, replies with the caller's
/// auth level and key) and `admin.echo` (request, needs admin).
pub(crate) fn mq_server_builder() -> Builder {
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 2;
    b.add_category("public", AuthLevel::None)
        .unwrap()
        .add_request_command("public", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap()
        .add_command("public", "hello", |m| {
            m.send_back("public.hi", m.data().to_vec())
        })
        .unwrap()
        .add_request_command("public", "whoami", whoami)
        .unwrap()
        .add_category("admin", AuthLevel::Admin)
        .unwrap()
        .add_request_command("admin", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap();
    b
}

/// Replies with the caller's auth level and key (hex, or empty on a plain connection).
pub(crate) fn whoami(m: &mut lokimq::Message) {
    let auth = m.access().auth.as_str();
    let key = m.conn().pubkey().map(|k| k.to_hex()).unwrap_or_default();
    m.send_reply([Bytes::from(auth), Bytes::from(key)]);
}
