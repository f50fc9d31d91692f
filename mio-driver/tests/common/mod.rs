//! Helpers shared by the integration tests: bounded waits, node builders, loopback addresses.

#![allow(dead_code)] // each test file uses its own subset

pub(crate) mod libzmq;

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use lokimq::{AuthLevel, Builder, Bytes, ConnectOptions, Handle, LokiMq, RequestError};

/// Every wait in the tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// An ephemeral loopback TCP address.
pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A builder with two general workers (keeps thread counts down on small CI machines).
pub(crate) fn builder() -> Builder {
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 2;
    b
}

/// A server with `public.echo` (request, echoes), `public.hello` (command, sends back
/// `public.hi`), `public.whoami` (request, replies with auth level and remote) and
/// `admin.echo` (request, needs admin).
pub(crate) fn server_builder() -> Builder {
    let mut b = builder();
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
            let remote = m.remote().to_owned();
            m.send_reply([Bytes::from(auth), Bytes::from(key), Bytes::from(remote)]);
        })
        .unwrap()
        .add_category("admin", AuthLevel::Admin)
        .unwrap()
        .add_request_command("admin", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap();
    b
}

/// What a request callback receives.
pub(crate) type Reply = Result<Vec<Bytes>, RequestError>;
/// What the connect callbacks report: the connection, or why it failed.
pub(crate) type Connected = Result<lokimq::ConnectionId, String>;

/// A reply channel: a callback for `request` and the receiver to wait on.
pub(crate) fn reply_channel() -> (impl FnOnce(Reply) + Send + 'static, Receiver<Reply>) {
    let (tx, rx) = mpsc::channel();
    (
        move |r| {
            let _ = tx.send(r);
        },
        rx,
    )
}

/// Waits (bounded) for one value.
pub(crate) fn wait<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|e| panic!("timed out waiting for {what}: {e}"))
}

/// Connect callbacks that report into a channel: `Ok(conn)` or `Err(reason)`.
pub(crate) fn connect_channel() -> (
    impl FnOnce(lokimq::ConnectionId) + Send + 'static,
    impl FnOnce(lokimq::ConnectionId, String) + Send + 'static,
    Receiver<Connected>,
) {
    let (tx, rx) = mpsc::channel();
    let tx2: Sender<_> = tx.clone();
    (
        move |c| {
            let _ = tx.send(Ok(c));
        },
        move |_, why| {
            let _ = tx2.send(Err(why));
        },
        rx,
    )
}

/// Frames as strings, for readable assertions.
pub(crate) fn strings(frames: &[Bytes]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// Starts a server with `server_builder()` plus `listen`, returns it and its bound address.
pub(crate) fn start_server(listen: lokimq::Listen) -> (LokiMq, lokimq::Address) {
    let mut b = server_builder();
    b.listen(listen);
    let s = b.start().expect("server starts");
    let addr = s.bound_addresses()[0].clone();
    (s, addr)
}

/// Starts `b` with a plain loopback listener whose allow function grants every peer `level`;
/// returns the node and its bound address.
pub(crate) fn start_plain(mut b: Builder, level: AuthLevel) -> (LokiMq, lokimq::Address) {
    b.listen_plain(loopback(), move |_, _, _| level).unwrap();
    let s = b.start().unwrap();
    let addr = s.bound_addresses()[0].clone();
    (s, addr)
}

/// Connects `node` to `addr` with the default options and waits (bounded) until it is up.
pub(crate) fn connect(node: &Handle, addr: &lokimq::Address) -> lokimq::ConnectionId {
    let (ok, fail, connected) = connect_channel();
    let conn = node
        .connect_remote(addr, ok, fail, ConnectOptions::default())
        .unwrap();
    assert_eq!(wait(&connected, "connect").unwrap(), conn);
    conn
}

/// Sends a request and waits (bounded, described as `what`) for its outcome.
pub(crate) fn request_wait<D, B>(
    node: &Handle,
    conn: &lokimq::ConnectionId,
    command: &'static str,
    data: D,
    what: &str,
) -> Reply
where
    D: IntoIterator<Item = B>,
    B: Into<Bytes>,
{
    let (cb, rx) = reply_channel();
    node.request(conn, command, data, cb).unwrap();
    wait(&rx, what)
}
