//! Helpers shared by the integration tests: bounded turning, result slots, a `lokimq` server.

#![allow(dead_code)] // each test file uses its own subset

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use lokimq::{AuthLevel, Builder as MqBuilder, Bytes, ConnectOptions, LokiMq, Stopwatch};
use lokimq_core::address::Address;
use lokimq_core::node::{ConnectionId, RequestError};
use lokimq_embed_example::{Ctx, Embedded};

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// How long one idle turn may sleep: the polling granularity of the embedded loop.
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// What a reply callback receives.
pub(crate) type Reply = Result<Vec<Bytes>, RequestError>;

/// A single-threaded cell a callback fills and the test reads.
pub(crate) type Slot<T> = Rc<RefCell<Option<T>>>;

/// An empty slot.
pub(crate) fn slot<T>() -> Slot<T> {
    Rc::new(RefCell::new(None))
}

/// A reply callback that stores the outcome in `slot`.
pub(crate) fn into_slot(slot: &Slot<Reply>) -> impl FnOnce(&mut Ctx<'_>, Reply) + 'static {
    let slot = Rc::clone(slot);
    move |_, r| *slot.borrow_mut() = Some(r)
}

/// Turns `node` until `done` holds, failing the test after [`WAIT`].
pub(crate) fn turn_until(
    node: &mut Embedded,
    what: &str,
    mut done: impl FnMut(&mut Embedded) -> bool,
) {
    let clock = Stopwatch::start();
    while !done(node) {
        assert!(
            clock.elapsed() < WAIT,
            "timed out waiting for {what} (stats: {:?})",
            node.node().stats()
        );
        node.turn(TICK);
    }
}

/// Turns `node` until `slot` is filled, and takes the value.
pub(crate) fn turn_for<T>(node: &mut Embedded, slot: &Slot<T>, what: &str) -> T {
    turn_until(node, what, |_| slot.borrow().is_some());
    slot.borrow_mut().take().expect("filled")
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

/// Sends a request from `node` and turns until its outcome arrives.
pub(crate) fn request(
    node: &mut Embedded,
    to: &ConnectionId,
    command: &'static str,
    data: &[&'static str],
) -> Reply {
    let out = slot();
    node.request(to, command, data.iter().copied(), into_slot(&out))
        .expect("request queued");
    turn_for(node, &out, command)
}

/// Connects `node` to `addr` and turns until the remote said `HELLO`.
pub(crate) fn connect(node: &mut Embedded, addr: &Address) -> ConnectionId {
    let up: Slot<Result<ConnectionId, String>> = slot();
    let filled = Rc::clone(&up);
    let conn = node.connect_remote(addr, &Default::default(), move |_, r| {
        *filled.borrow_mut() = Some(r);
    });
    let got = turn_for(node, &up, "connect").expect("connected");
    assert_eq!(got, conn);
    conn
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

/// Frames as strings, for readable assertions.
pub(crate) fn strings(frames: &[Bytes]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// An ephemeral loopback TCP address, as the core spells it.
pub(crate) fn loopback() -> Address {
    Address::tcp("127.0.0.1", 0)
}

/// An ephemeral loopback socket address, for `lokimq` listeners.
pub(crate) fn loopback_sa() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A `lokimq` node builder with `public.echo` (request, echoes), `public.hello` (command, sends
/// back `public.hi` with the same data), `public.whoami` (request, replies with the caller's
/// auth level and key) and `admin.echo` (request, needs admin).
pub(crate) fn mq_server_builder() -> MqBuilder {
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
        .add_request_command("public", "whoami", |m| {
            let auth = m.access().auth.as_str();
            let key = m.conn().pubkey().map(|k| k.to_hex()).unwrap_or_default();
            m.send_reply([Bytes::from(auth), Bytes::from(key)]);
        })
        .unwrap()
        .add_category("admin", AuthLevel::Admin)
        .unwrap()
        .add_request_command("admin", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap();
    b
}
