//! The simulator's key scenarios again, over real sockets with real threads: TCP and unix
//! sockets, plain and CURVE. Request/reply and `send_back`, auth levels per listener, service
//! node connections (lookup, reuse both ways, backchatter, idle expiry, the active set judged
//! per message), reconnection after a server restart, disconnect with linger, queue limits and
//! reserved threads under load, batches and timers driven from handlers, 200 concurrent
//! connections, shutdown with handlers running, and backpressure from a peer that stops reading.
//!
//! Each scenario is one function taking the transport (and security where it matters); the
//! `#[test]`s are one-line instantiations of it.

mod common;

use lokimq::{CategoryOptions, QueueLimit};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use common::*;
use lokimq::{
    Access, Address, AuthLevel, Batch, Builder, Bytes, ConnectOptions, ConnectSnOptions,
    ConnectionId, Error, Keypair, Listen, LokiMq, NO_DATA, PublicKey, RequestError, RequestOptions,
    SendOptions, Stopwatch, Target,
};

// =============================================================================================
// transports and helpers

/// The two socket families a node listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Tcp,
    Ipc,
}

/// Plain (NULL mechanism) or CURVE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sec {
    Plain,
    Curve,
}

use Net::{Ipc, Tcp};
use Sec::{Curve, Plain};

/// Where a scenario's listeners live: loopback with ephemeral ports, or unix sockets in a
/// private temporary directory (removed with it).
struct Site {
    net: Net,
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Site {
    fn new(net: Net) -> Self {
        Self {
            net,
            dir: tempfile::tempdir().expect("temporary directory"),
            next: AtomicUsize::new(0),
        }
    }

    /// A fresh address to bind: an ephemeral loopback port, or a new socket file.
    fn bind_addr(&self) -> Address {
        match self.net {
            Tcp => Address::from_socket_addr(loopback()),
            Ipc => {
                let n = self.next.fetch_add(1, Ordering::SeqCst);
                Address::ipc(format!("{}/s{n}.sock", self.dir.path().display()))
            }
        }
    }

    /// A listener on a fresh address.
    fn listen(&self, sec: Sec) -> Listen {
        listen_at(self.bind_addr(), sec)
    }

    /// What a handler sees as the peer's address over this transport.
    fn remote(&self) -> &'static str {
        match self.net {
            Tcp => "127.0.0.1",
            Ipc => "(unknown)",
        }
    }
}

/// A listener on `addr` (any key in it is ignored: the node's own is used).
fn listen_at(addr: impl lokimq::ToAddress, sec: Sec) -> Listen {
    match sec {
        Plain => Listen::plain(addr),
        Curve => Listen::curve(addr),
    }
    .expect("listen address")
}

/// A node with one general worker (the batch and reply pools get one each): clients are many.
fn small() -> Builder {
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 1;
    b
}

/// Starts `b` listening on a fresh address of `site` and granting everyone `level`.
fn serve(mut b: Builder, site: &Site, sec: Sec, level: AuthLevel) -> (LokiMq, Address) {
    b.listen(site.listen(sec).allow(move |_, _, _| level));
    let node = b.start().expect("server starts");
    let addr = node.bound_addresses()[0].clone();
    (node, addr)
}

/// Polls `cond` until it holds (bounded by `WAIT`).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Stopwatch::start();
    while !cond() {
        assert!(t.elapsed() < WAIT, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Request options with a reply timeout.
fn within(timeout: Duration) -> RequestOptions {
    RequestOptions::default().timeout(timeout)
}

/// Shuts `node` down on another thread and waits (bounded) for it: a hang fails the test
/// instead of hanging it. Returns once every thread of the node was joined.
fn shutdown_bounded(node: LokiMq, what: &str) {
    let (tx, rx) = mpsc::channel();
    let join = thread::spawn(move || {
        node.shutdown();
        let _ = tx.send(());
    });
    if rx.recv_timeout(WAIT).is_err() {
        panic!("shutting down {what} did not finish within {WAIT:?}");
    }
    join.join().expect("shutdown panicked");
}

/// A channel-backed recorder for commands: `(data, sender)`.
type Seen = (Vec<String>, ConnectionId);

fn recorder(tx: &Sender<Seen>) -> impl Fn(&mut lokimq::Message) + Send + Sync + 'static {
    let tx = Mutex::new(tx.clone());
    move |m| {
        let tx = tx.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = tx.send((strings(m.data()), m.conn().clone()));
    }
}

// =============================================================================================
// request/reply, send_back, stored incoming ids

/// Echo, whoami, `send_back` on the same connection, a later send to a stored incoming id, and
/// many requests in flight at once.
fn request_reply_and_send_back(net: Net, sec: Sec) {
    let site = Site::new(net);
    let (kept_tx, kept) = mpsc::channel();
    let mut sb = server_builder();
    sb.add_category("keep", AuthLevel::None)
        .unwrap()
        .add_command("keep", "me", recorder(&kept_tx))
        .unwrap();
    let (server, addr) = serve(sb, &site, sec, AuthLevel::Basic);
    assert_eq!(addr.is_curve(), sec == Curve, "{addr}");
    assert_eq!(addr.is_ipc(), net == Ipc, "{addr}");

    let (hi_tx, hi) = mpsc::channel();
    let mut cb = small();
    cb.add_category("public", AuthLevel::None)
        .unwrap()
        .add_command("public", "hi", recorder(&hi_tx))
        .unwrap();
    let client = cb.start().unwrap();
    let conn = connect(client.handle(), &addr);

    assert_eq!(
        strings(
            &request_wait(
                client.handle(),
                &conn,
                "public.echo",
                ["a", "", "b"],
                "echo"
            )
            .unwrap()
        ),
        ["a", "", "b"]
    );
    let key = match sec {
        Plain => String::new(),
        Curve => client.pubkey().to_hex(),
    };
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap()),
        ["basic", key.as_str(), site.remote()]
    );
    assert_eq!(
        request_wait(client.handle(), &conn, "admin.echo", ["x"], "admin").unwrap_err(),
        RequestError::Forbidden
    );

    client
        .handle()
        .send(&conn, "public.hello", ["one", "two"])
        .unwrap();
    let (data, from) = wait(&hi, "send_back");
    assert_eq!(data, ["one", "two"]);
    assert_eq!(
        from, conn,
        "send_back arrives on the connection the command came from"
    );

    client.handle().send(&conn, "keep.me", NO_DATA).unwrap();
    let (_, incoming) = wait(&kept, "keep.me");
    assert!(
        matches!(incoming, ConnectionId::Incoming { .. }),
        "{incoming:?}"
    );
    server
        .handle()
        .send(&incoming, "public.hi", ["later"])
        .unwrap();
    assert_eq!(wait(&hi, "send to a stored incoming id").0, ["later"]);

    // Within the default queue limit (200) of `public`, nothing is dropped.
    let (tx, rx) = mpsc::channel();
    const N: usize = 150;
    for i in 0..N {
        let tx = tx.clone();
        client
            .handle()
            .request(&conn, "public.echo", [format!("{i}")], move |r| {
                let _ = tx.send((i, r));
            })
            .unwrap();
    }
    let mut seen = BTreeSet::new();
    for _ in 0..N {
        let (i, r) = wait(&rx, "pipelined reply");
        assert_eq!(strings(&r.unwrap()), [format!("{i}")]);
        seen.insert(i);
    }
    assert_eq!(seen.len(), N);
}

#[test]
fn request_reply_tcp_plain() {
    request_reply_and_send_back(Tcp, Plain);
}

#[test]
fn request_reply_tcp_curve() {
    request_reply_and_send_back(Tcp, Curve);
}

#[test]
fn request_reply_ipc_plain() {
    request_reply_and_send_back(Ipc, Plain);
}

#[test]
fn request_reply_ipc_curve() {
    request_reply_and_send_back(Ipc, Curve);
}

// =============================================================================================
// auth levels per listener

/// One node, two listeners with different allow functions: the level is the listener's.
fn auth_levels_per_listener(net: Net) {
    let site = Site::new(net);
    let mut b = server_builder();
    b.add_category("members", AuthLevel::Basic)
        .unwrap()
        .add_request_command("members", "echo", |m| m.send_reply(m.data().to_vec()))
        .unwrap();
    b.listen(site.listen(Plain).allow(|_, _, _| AuthLevel::Basic));
    b.listen(site.listen(Curve).allow(|_, key, _| {
        if key.is_some() {
            AuthLevel::Admin
        } else {
            AuthLevel::Denied
        }
    }));
    let server = b.start().unwrap();
    let (plain_addr, curve_addr) = (
        server.bound_addresses()[0].clone(),
        server.bound_addresses()[1].clone(),
    );
    let client = small().start().unwrap();
    let basic = connect(client.handle(), &plain_addr);
    let admin = connect(client.handle(), &curve_addr);
    let whoami = |conn| {
        strings(&request_wait(client.handle(), conn, "public.whoami", NO_DATA, "whoami").unwrap())
            [0]
        .clone()
    };
    assert_eq!(whoami(&basic), "basic");
    assert_eq!(whoami(&admin), "admin");
    assert_eq!(
        request_wait(
            client.handle(),
            &basic,
            "admin.echo",
            ["x"],
            "admin over plain"
        )
        .unwrap_err(),
        RequestError::Forbidden
    );
    assert_eq!(
        strings(
            &request_wait(
                client.handle(),
                &admin,
                "admin.echo",
                ["x"],
                "admin over curve"
            )
            .unwrap()
        ),
        ["x"]
    );
    for conn in [&basic, &admin] {
        assert_eq!(
            strings(
                &request_wait(client.handle(), conn, "members.echo", ["m"], "members").unwrap()
            ),
            ["m"]
        );
    }
    assert_eq!(server.handle().stats().unwrap().connections, 2);
}

#[test]
fn auth_levels_per_listener_tcp() {
    auth_levels_per_listener(Tcp);
}

#[test]
fn auth_levels_per_listener_ipc() {
    auth_levels_per_listener(Ipc);
}

// =============================================================================================
// service nodes

/// Where every service node of a scenario listens, as its `sn_lookup` sees it.
type Directory = Arc<Mutex<BTreeMap<PublicKey, Address>>>;

/// Rounds of `sn.ping`/`sn.pong` backchatter.
const ROUNDS: u32 = 5;

/// A service node of a scenario and what it records.
struct Sn {
    node: LokiMq,
    pk: PublicKey,
    /// How often its `sn_lookup` ran.
    lookups: Arc<AtomicUsize>,
    /// `sn.note` commands received.
    notes: Receiver<Seen>,
    /// `sn.ping` commands received.
    pings: Receiver<Seen>,
    /// `sn.pong` commands received.
    pongs: Receiver<Seen>,
}

fn sn_key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

fn round_of(m: &lokimq::Message) -> u32 {
    m.data()
        .first()
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A service node with a CURVE listener on `site`, the given active set, and the `sn`
/// category (remote service nodes only): `echo` (request; replies with the data and whether
/// the sender is a service node), `note` (recorded), `ping` (recorded, answered with `pong`
/// by `send_back`) and `pong` (recorded, answered with the next `ping` until [`ROUNDS`]).
fn sn_node(seed: u8, site: &Site, dir: &Directory, active: &[PublicKey]) -> Sn {
    let keys = sn_key(seed);
    let pk = *keys.public();
    let lookups = Arc::new(AtomicUsize::new(0));
    let (note_tx, notes) = mpsc::channel();
    let (ping_tx, pings) = mpsc::channel();
    let (pong_tx, pongs) = mpsc::channel();
    let mut b = small();
    b.config_mut().general_workers = 2;
    let (l, d) = (Arc::clone(&lookups), Arc::clone(dir));
    b.keypair(keys)
        .service_node(true)
        .set_active_sns(active.iter().copied())
        .sn_lookup(move |pk| {
            l.fetch_add(1, Ordering::SeqCst);
            d.lock().unwrap().get(pk).cloned()
        });
    let record_ping = recorder(&ping_tx);
    let record_pong = recorder(&pong_tx);
    b.add_category("sn", Access::new(AuthLevel::None, true, false))
        .unwrap()
        .add_request_command("sn", "echo", |m| {
            let mut parts = m.data().to_vec();
            parts.push(Bytes::from(m.conn().is_sn().to_string()));
            m.send_reply(parts);
        })
        .unwrap()
        .add_command("sn", "note", recorder(&note_tx))
        .unwrap()
        .add_command("sn", "ping", move |m| {
            record_ping(m);
            m.send_back("sn.pong", m.data().to_vec());
        })
        .unwrap()
        .add_command("sn", "pong", move |m| {
            record_pong(m);
            let round = round_of(m);
            if round < ROUNDS {
                m.send_back("sn.ping", [(round + 1).to_string()]);
            }
        })
        .unwrap();
    b.listen(site.listen(Curve));
    let node = b.start().unwrap();
    dir.lock()
        .unwrap()
        .insert(pk, node.bound_addresses()[0].clone());
    Sn {
        node,
        pk,
        lookups,
        notes,
        pings,
        pongs,
    }
}

/// Two service nodes that know each other's addresses and have both in their active sets.
fn sn_pair(net: Net) -> (Site, Sn, Sn) {
    let site = Site::new(net);
    let dir = Directory::default();
    let active = [*sn_key(1).public(), *sn_key(2).public()];
    let a = sn_node(1, &site, &dir, &active);
    let b = sn_node(2, &site, &dir, &active);
    (site, a, b)
}

/// Asks `from` to request `sn.echo` from `to` by key and waits for the outcome.
fn ask_sn(from: &Sn, to: &Sn) -> Result<Vec<String>, RequestError> {
    request_wait(
        from.node.handle(),
        &ConnectionId::Sn(to.pk),
        "sn.echo",
        ["x"],
        "sn.echo",
    )
    .map(|r| strings(&r))
}

/// `connect_sn` through `sn_lookup`; the one connection carries traffic both ways: requests
/// and replies, backchatter (commands sent back over the connection the receiver did not
/// open, arriving at the opener as from the service node), and the receiver's own requests by
/// key without a lookup of its own.
fn sn_connection_reused_both_ways(net: Net) {
    let (_site, a, b) = sn_pair(net);
    let to_b = ConnectionId::Sn(b.pk);
    let to_a = ConnectionId::Sn(a.pk);
    assert_eq!(
        a.node
            .handle()
            .connect_sn(b.pk, ConnectSnOptions::default())
            .unwrap(),
        to_b
    );
    eventually("a's connection to b is up", || {
        a.node.handle().is_connected(&to_b).unwrap()
    });
    assert_eq!(a.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(ask_sn(&a, &b).unwrap(), ["x", "true"]);

    // Backchatter: b answers each ping over a's connection, a answers each pong likewise.
    a.node.handle().send(&to_b, "sn.ping", ["1"]).unwrap();
    for round in 1..=ROUNDS {
        let (data, from) = wait(&b.pings, "ping");
        assert_eq!(data, [round.to_string()]);
        assert_eq!(from, to_a, "b sees a by key");
        let (data, from) = wait(&a.pongs, "pong");
        assert_eq!(data, [round.to_string()]);
        assert_eq!(
            from, to_b,
            "a sees the backchatter as from b, not as anonymous"
        );
    }

    // b reaches a by key over the incoming connection: no lookup, no second connection.
    assert_eq!(ask_sn(&b, &a).unwrap(), ["x", "true"]);
    b.node.handle().send(&to_a, "sn.note", ["from b"]).unwrap();
    let (data, from) = wait(&a.notes, "note from b");
    assert_eq!((data, from), (vec![String::from("from b")], to_b.clone()));
    assert_eq!(b.lookups.load(Ordering::SeqCst), 0, "b never looked a up");
    assert_eq!(a.lookups.load(Ordering::SeqCst), 1, "a looked b up once");
    let (sa, sb) = (
        a.node.handle().stats().unwrap(),
        b.node.handle().stats().unwrap(),
    );
    assert_eq!(
        (sa.connections, sa.links),
        (1, 1),
        "a: one outgoing connection"
    );
    assert_eq!(
        (sb.connections, sb.links),
        (1, 0),
        "b: only the incoming one"
    );
}

#[test]
fn sn_connection_reused_both_ways_tcp() {
    sn_connection_reused_both_ways(Tcp);
}

#[test]
fn sn_connection_reused_both_ways_ipc() {
    sn_connection_reused_both_ways(Ipc);
}

/// An idle service-node connection expires after its keep-alive; the next send re-opens it
/// (with a new lookup) and is delivered.
fn sn_idle_expiry_then_reopen(net: Net) {
    let (_site, a, b) = sn_pair(net);
    let to_b = ConnectionId::Sn(b.pk);
    let short = SendOptions::default().keep_alive(Duration::from_millis(300));
    a.node
        .handle()
        .send_with(&to_b, "sn.note", ["1"], short)
        .unwrap();
    assert_eq!(wait(&b.notes, "first note").0, ["1"]);
    eventually("a's idle connection expires", || {
        !a.node.handle().is_connected(&to_b).unwrap()
    });
    eventually("b sees the connection closed", || {
        b.node.handle().stats().unwrap().connections == 0
    });
    assert_eq!(a.node.handle().stats().unwrap().links, 0);
    a.node.handle().send(&to_b, "sn.note", ["2"]).unwrap();
    let (data, from) = wait(&b.notes, "note after re-open");
    assert_eq!(
        (data, from),
        (vec![String::from("2")], ConnectionId::Sn(a.pk))
    );
    assert!(a.node.handle().is_connected(&to_b).unwrap());
    assert_eq!(
        a.lookups.load(Ordering::SeqCst),
        2,
        "the re-open looked b up again"
    );
}

#[test]
fn sn_idle_expiry_then_reopen_tcp() {
    sn_idle_expiry_then_reopen(Tcp);
}

#[test]
fn sn_idle_expiry_then_reopen_ipc() {
    sn_idle_expiry_then_reopen(Ipc);
}

/// The receiver checks its active set on every message, over one connection; removing the
/// receiver from the sender's set closes the sender's connection, and the next request
/// re-opens it.
fn active_sn_set_judged_per_message(net: Net) {
    let (_site, a, b) = sn_pair(net);
    let none: [PublicKey; 0] = [];
    assert_eq!(ask_sn(&a, &b).unwrap(), ["x", "true"]);
    // `stats()` waits for b's proxy, so the change is in force before a's next request.
    b.node.handle().update_active_sns(none, [a.pk]).unwrap();
    b.node.handle().stats().unwrap();
    assert_eq!(ask_sn(&a, &b).unwrap_err(), RequestError::ForbiddenSn);
    b.node.handle().update_active_sns([a.pk], [a.pk]).unwrap();
    b.node.handle().stats().unwrap();
    assert_eq!(
        ask_sn(&a, &b).unwrap(),
        ["x", "true"],
        "a key in both counts as added"
    );
    b.node.handle().set_active_sns(none).unwrap();
    b.node.handle().stats().unwrap();
    assert_eq!(ask_sn(&a, &b).unwrap_err(), RequestError::ForbiddenSn);
    b.node.handle().set_active_sns([a.pk]).unwrap();
    b.node.handle().stats().unwrap();
    assert_eq!(ask_sn(&a, &b).unwrap(), ["x", "true"]);
    assert_eq!(a.lookups.load(Ordering::SeqCst), 1, "all on one connection");

    let to_b = ConnectionId::Sn(b.pk);
    a.node.handle().update_active_sns(none, [b.pk]).unwrap();
    eventually("a closes its connection to a removed service node", || {
        !a.node.handle().is_connected(&to_b).unwrap()
    });
    eventually("b sees the close", || {
        b.node.handle().stats().unwrap().connections == 0
    });
    assert_eq!(ask_sn(&a, &b).unwrap(), ["x", "true"]);
    assert_eq!(
        a.lookups.load(Ordering::SeqCst),
        2,
        "the next request re-opened it"
    );
}

#[test]
fn active_sn_set_judged_per_message_tcp() {
    active_sn_set_judged_per_message(Tcp);
}

#[test]
fn active_sn_set_judged_per_message_ipc() {
    active_sn_set_judged_per_message(Ipc);
}

// =============================================================================================
// reconnection, disconnect

/// OxenMQ's connect policy: refused (re)connects are retried with back-off instead of failing
/// the connection.
fn retrying() -> ConnectOptions {
    ConnectOptions::default().retry_refused(true)
}

/// The server goes away and comes back on the same address (same key): the client's
/// connection reconnects by itself, a request queued while it was down is answered, and
/// `on_connect` is not called again.
fn reconnect_after_server_restart(net: Net, sec: Sec) {
    let site = Site::new(net);
    let keys = sn_key(40);
    let start = |listen: Listen| {
        let mut b = server_builder();
        b.keypair(keys.clone()).listen(listen);
        let s = b.start().expect("server (re)starts");
        let addr = s.bound_addresses()[0].clone();
        (s, addr)
    };
    let (server, addr) = start(site.listen(sec));
    let mut cb = small();
    cb.config_mut().reconnect_interval_max = Duration::from_millis(500);
    let client = cb.start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(&addr, ok, fail, retrying())
        .unwrap();
    assert_eq!(wait(&connected, "connect").unwrap(), conn);
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.echo", ["before"], "echo").unwrap()),
        ["before"]
    );

    shutdown_bounded(server, "the first server");
    let (cb1, down) = reply_channel();
    client
        .handle()
        .request_with(
            &conn,
            "public.echo",
            ["lost"],
            within(Duration::from_millis(500)),
            cb1,
        )
        .unwrap();
    assert_eq!(
        wait(&down, "request while down").unwrap_err(),
        RequestError::Timeout
    );
    let (cb2, queued) = reply_channel();
    client
        .handle()
        .request_with(&conn, "public.echo", ["queued"], within(WAIT), cb2)
        .unwrap();

    let (_server, addr2) = start(listen_at(&addr, sec));
    assert_eq!(addr2, addr, "same address and key");
    assert_eq!(
        strings(&wait(&queued, "queued request").unwrap()),
        ["queued"]
    );
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.echo", ["after"], "echo").unwrap()),
        ["after"]
    );
    assert!(
        connected.try_recv().is_err(),
        "on_connect runs once per connect_remote"
    );
}

#[test]
fn reconnect_after_server_restart_tcp_plain() {
    reconnect_after_server_restart(Tcp, Plain);
}

#[test]
fn reconnect_after_server_restart_tcp_curve() {
    reconnect_after_server_restart(Tcp, Curve);
}

#[test]
fn reconnect_after_server_restart_ipc_plain() {
    reconnect_after_server_restart(Ipc, Plain);
}

#[test]
fn reconnect_after_server_restart_ipc_curve() {
    reconnect_after_server_restart(Ipc, Curve);
}

/// A disconnect with a linger flushes everything queued before it (far more than the socket
/// buffers hold), then closes: the server sees the connection go, the client's id is dead.
fn disconnect_with_linger(net: Net, sec: Sec) {
    let site = Site::new(net);
    let (tx, rx) = mpsc::channel();
    let mut sb = server_builder();
    sb.add_category(
        "sink",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )
    .unwrap()
    .add_command("sink", "put", recorder(&tx))
    .unwrap();
    let (server, addr) = serve(sb, &site, sec, AuthLevel::None);
    let client = small().start().unwrap();
    let conn = connect(client.handle(), &addr);
    const COUNT: usize = 12;
    let big = "z".repeat(1000 * 1024);
    for i in 0..COUNT {
        client
            .handle()
            .send(&conn, "sink.put", [format!("{i}"), big.clone()])
            .unwrap();
    }
    client
        .handle()
        .disconnect(&conn, Duration::from_secs(10))
        .unwrap();
    let mut got: Vec<usize> = (0..COUNT)
        .map(|_| {
            let (m, _) = wait(&rx, "flushed message");
            assert_eq!(m[1].len(), big.len());
            m[0].parse().unwrap()
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..COUNT).collect::<Vec<_>>());
    eventually("the server sees the connection closed", || {
        server.handle().stats().unwrap().connections == 0
    });
    assert!(!client.handle().is_connected(&conn).unwrap());
}

#[test]
fn disconnect_with_linger_tcp_curve() {
    disconnect_with_linger(Tcp, Curve);
}

#[test]
fn disconnect_with_linger_ipc_plain() {
    disconnect_with_linger(Ipc, Plain);
}

#[test]
fn disconnect_with_linger_ipc_curve() {
    disconnect_with_linger(Ipc, Curve);
}

// =============================================================================================
// scheduling under load

/// A gate handlers wait at (bounded), opened by the test or by dropping its [`Opener`].
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (_open, _timeout) = self
            .cv
            .wait_timeout_while(open, WAIT, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }
}

/// Opens the gate when dropped, so a failing assertion never leaves handlers parked.
struct Opener(Arc<Gate>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// One general worker, a `slow` category (no reserved thread, queue of 2) whose handler
/// blocks, and a `fast` category with a reserved thread: a saturated `slow` runs one, queues
/// two and drops the rest (their requesters time out), while `fast` commands and injected
/// `fast` tasks still run; an injected `slow` task is dropped (and counted) like a command.
fn saturated_category_does_not_starve_a_reserved_one(net: Net, sec: Sec) {
    let site = Site::new(net);
    let gate = Arc::new(Gate::default());
    let opener = Opener(Arc::clone(&gate));
    let (started_tx, started) = mpsc::channel();
    let started_tx = Mutex::new(started_tx);
    let g = Arc::clone(&gate);
    let mut sb = small();
    sb.add_category(
        "slow",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::At(2)),
    )
    .unwrap()
    .add_request_command("slow", "wait", move |m| {
        let _ = started_tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(strings(m.data()));
        g.wait();
        m.send_reply(m.data().to_vec());
    })
    .unwrap()
    .add_category(
        "fast",
        CategoryOptions::new(AuthLevel::None)
            .reserved_threads(1)
            .max_queue(QueueLimit::Unlimited),
    )
    .unwrap()
    .add_request_command("fast", "echo", |m| m.send_reply(m.data().to_vec()))
    .unwrap();
    let (server, addr) = serve(sb, &site, sec, AuthLevel::None);
    let client = small().start().unwrap();
    let conn = connect(client.handle(), &addr);

    const SLOW: usize = 10;
    let (tx, outcomes) = mpsc::channel();
    for i in 0..SLOW {
        let tx = tx.clone();
        client
            .handle()
            .request_with(
                &conn,
                "slow.wait",
                [i.to_string()],
                within(Duration::from_secs(3)),
                move |r| {
                    let _ = tx.send((i, r));
                },
            )
            .unwrap();
    }
    assert_eq!(wait(&started, "first slow handler"), ["0"]);
    eventually("slow runs one, queues two and drops seven", || {
        let s = server.handle().stats().unwrap();
        s.sched.commands_queued == 2 && s.dropped_commands == 7
    });

    for i in 0..3 {
        assert_eq!(
            strings(
                &request_wait(
                    client.handle(),
                    &conn,
                    "fast.echo",
                    [format!("f{i}")],
                    "fast"
                )
                .unwrap()
            ),
            [format!("f{i}")],
            "the reserved thread serves fast while slow is saturated"
        );
    }
    let (ran_tx, ran) = mpsc::channel();
    server
        .handle()
        .inject_task("fast", "task", "test", move || {
            let _ = ran_tx.send(());
        })
        .unwrap();
    wait(&ran, "injected fast task");
    let slow_injected_ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&slow_injected_ran);
    server
        .handle()
        .inject_task("slow", "task", "test", move || {
            flag.store(true, Ordering::SeqCst)
        })
        .unwrap();
    assert_eq!(
        server.handle().stats().unwrap().dropped_commands,
        8,
        "the task injected into the full category is dropped (and counted) like a command"
    );

    drop(opener);
    let mut ok = Vec::new();
    for _ in 0..SLOW {
        match wait(&outcomes, "slow outcome") {
            (i, Ok(r)) => {
                assert_eq!(strings(&r), [i.to_string()]);
                ok.push(i);
            }
            (_, Err(e)) => assert_eq!(e, RequestError::Timeout),
        }
    }
    ok.sort_unstable();
    assert_eq!(
        ok,
        [0, 1, 2],
        "the running one and the two queued ones are answered"
    );
    assert_eq!(server.handle().stats().unwrap().dropped_commands, 8);
    assert!(
        !slow_injected_ran.load(Ordering::SeqCst),
        "a task injected into a full category is dropped"
    );
}

#[test]
fn saturated_category_does_not_starve_a_reserved_one_tcp_plain() {
    saturated_category_does_not_starve_a_reserved_one(Tcp, Plain);
}

#[test]
fn saturated_category_does_not_starve_a_reserved_one_ipc_curve() {
    saturated_category_does_not_starve_a_reserved_one(Ipc, Curve);
}

/// Sum of `i²` for `i` in `0..n`.
fn squares_below(n: u64) -> u64 {
    (0..n).map(|i| i * i).sum()
}

/// Handlers start batches (the completion replies) and timers (each firing sends to the
/// requester; the firing that reaches the wanted count cancels the timer and replies).
fn batches_and_timers_from_handlers(net: Net, sec: Sec) {
    let site = Site::new(net);
    let mut sb = server_builder();
    sb.add_category(
        "work",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )
    .unwrap()
    .add_request_command("work", "sum", |m| {
        let n: u64 = strings(m.data())[0].parse().unwrap();
        let later = m.send_later();
        let mut batch = Batch::new();
        for i in 0..n {
            batch.add_job(move || i * i);
        }
        batch
            .completion(move |results| {
                let sum: u64 = results.into_iter().map(Result::unwrap).sum();
                later.reply([sum.to_string()]).unwrap();
            })
            .unwrap();
        m.handle().batch(batch).unwrap();
    })
    .unwrap()
    .add_request_command("work", "ticks", |m| {
        let want: usize = strings(m.data())[0].parse().unwrap();
        let handle = m.handle().clone();
        let (to, later) = (m.conn().clone(), m.send_later());
        let id: Arc<OnceLock<lokimq::TimerId>> = Arc::default();
        let fired = AtomicUsize::new(0);
        let (h, i) = (handle.clone(), Arc::clone(&id));
        let timer = handle
            .add_timer(
                move || {
                    let n = fired.fetch_add(1, Ordering::SeqCst) + 1;
                    h.send(&to, "public.tick", [n.to_string()]).unwrap();
                    // The id is set once add_timer returned; until then keep firing.
                    if let (true, Some(t)) = (n >= want, i.get()) {
                        h.cancel_timer(*t).unwrap();
                        later.reply([n.to_string()]).unwrap();
                    }
                },
                Duration::from_millis(20),
                true,
                Target::Worker,
            )
            .unwrap();
        id.set(timer).unwrap();
    })
    .unwrap();
    let (_server, addr) = serve(sb, &site, sec, AuthLevel::None);
    let (tick_tx, ticks) = mpsc::channel();
    let mut cb = small();
    cb.add_category("public", AuthLevel::None)
        .unwrap()
        .add_command("public", "tick", recorder(&tick_tx))
        .unwrap();
    let client = cb.start().unwrap();
    let conn = connect(client.handle(), &addr);

    let (tx, sums) = mpsc::channel();
    for n in 1..=12u64 {
        let tx = tx.clone();
        client
            .handle()
            .request(&conn, "work.sum", [n.to_string()], move |r| {
                let _ = tx.send((n, r));
            })
            .unwrap();
    }
    for _ in 1..=12 {
        let (n, r) = wait(&sums, "batch sum");
        assert_eq!(
            strings(&r.unwrap()),
            [squares_below(n).to_string()],
            "n = {n}"
        );
    }

    let r = request_wait(client.handle(), &conn, "work.ticks", ["3"], "ticks done").unwrap();
    let fired: usize = strings(&r)[0].parse().unwrap();
    assert!(fired >= 3, "cancelled after {fired} firings");
    let got: Vec<String> = (0..fired)
        .map(|_| wait(&ticks, "tick").0[0].clone())
        .collect();
    let expected: Vec<String> = (1..=fired).map(|n| n.to_string()).collect();
    assert_eq!(got, expected, "one tick per firing, in order");
    // Anything still on its way after the cancel would be a firing after the cancel.
    thread::sleep(Duration::from_millis(300));
    assert!(
        ticks.try_recv().is_err(),
        "the timer fired after it was cancelled"
    );
}

#[test]
fn batches_and_timers_from_handlers_tcp_curve() {
    batches_and_timers_from_handlers(Tcp, Curve);
}

#[test]
fn batches_and_timers_from_handlers_ipc_plain() {
    batches_and_timers_from_handlers(Ipc, Plain);
}

// =============================================================================================
// 200 concurrent connections

/// 8 client nodes (one general worker each) × 25 connections each, all open at once, each
/// connection making several requests: every request gets its own answer, and the server
/// counts 200 connections.
fn two_hundred_connections(net: Net, sec: Sec) {
    const NODES: usize = 8;
    const PER_NODE: usize = 25;
    const REQUESTS: usize = 4;
    let site = Site::new(net);
    let mut sb = server_builder();
    sb.add_category(
        "load",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )
    .unwrap()
    .add_request_command("load", "echo", |m| {
        let mut parts = m.data().to_vec();
        // The id's hash covers the route, which tells connections of one client apart.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        m.conn().hash(&mut h);
        parts.push(Bytes::from(h.finish().to_string()));
        m.send_reply(parts);
    })
    .unwrap();
    let (server, addr) = serve(sb, &site, sec, AuthLevel::None);
    let clients: Vec<LokiMq> = (0..NODES).map(|_| small().start().unwrap()).collect();
    let (up_tx, up) = mpsc::channel::<Connected>();
    let mut conns = Vec::new();
    for (n, client) in clients.iter().enumerate() {
        for c in 0..PER_NODE {
            let (ok_tx, fail_tx) = (up_tx.clone(), up_tx.clone());
            let conn = client
                .handle()
                .connect_remote(
                    &addr,
                    move |id| {
                        let _ = ok_tx.send(Ok(id));
                    },
                    move |_, why| {
                        let _ = fail_tx.send(Err(why));
                    },
                    ConnectOptions::default(),
                )
                .unwrap();
            conns.push((n, c, conn));
        }
    }
    for _ in 0..NODES * PER_NODE {
        wait(&up, "connection up").expect("every connection succeeds");
    }
    eventually("the server counts 200 connections", || {
        server.handle().stats().unwrap().connections == NODES * PER_NODE
    });

    let (tx, replies) = mpsc::channel();
    for (n, c, conn) in &conns {
        for i in 0..REQUESTS {
            let tx = tx.clone();
            let tag = format!("{n}/{c}/{i}");
            let expect = tag.clone();
            clients[*n]
                .handle()
                .request(conn, "load.echo", [tag], move |r| {
                    let _ = tx.send((expect, r));
                })
                .unwrap();
        }
    }
    let mut seen = BTreeSet::new();
    let mut server_ids = BTreeSet::new();
    for _ in 0..NODES * PER_NODE * REQUESTS {
        let (expect, r) = wait(&replies, "load reply");
        let r = strings(&r.unwrap_or_else(|e| panic!("request {expect} failed: {e}")));
        assert_eq!(r[0], expect);
        assert!(seen.insert(expect), "one reply per request");
        server_ids.insert(r[1].clone());
    }
    assert_eq!(
        server_ids.len(),
        NODES * PER_NODE,
        "the server saw 200 distinct connection ids"
    );
    assert_eq!(
        server.handle().stats().unwrap().connections,
        NODES * PER_NODE
    );
}

#[test]
fn two_hundred_connections_tcp_plain() {
    two_hundred_connections(Tcp, Plain);
}

#[test]
fn two_hundred_connections_ipc_curve() {
    two_hundred_connections(Ipc, Curve);
}

// =============================================================================================
// shutdown

thread_local! {
    /// Set on a worker thread by the handlers of the shutdown scenario; dropped (counting) when
    /// that thread exits.
    static EXIT_GUARD: RefCell<Option<ExitGuard>> = const { RefCell::new(None) };
}

/// Counts the exit of the thread that holds it.
struct ExitGuard(Arc<AtomicUsize>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the handlers of the shutdown scenario record.
#[derive(Default)]
struct ShutdownProbe {
    started: AtomicUsize,
    finished: AtomicUsize,
    /// Distinct worker threads that ran a handler.
    threads: Mutex<BTreeSet<String>>,
    exited: Arc<AtomicUsize>,
    shutdown_begun: AtomicBool,
}

/// Two handlers run (and wait until shutdown has begun), four more requests are queued. The
/// shutdown waits for the running two, whose replies, sends and handle calls during shutdown
/// neither panic nor hang; the queued four never run and their requesters time out; the
/// worker threads have exited when it returns. The client of the vanished server then sees
/// requests fail within their timeout while its connection keeps retrying, and shuts down
/// cleanly itself.
fn shutdown_while_handlers_run(net: Net) {
    let site = Site::new(net);
    let probe = Arc::new(ShutdownProbe::default());
    let p = Arc::clone(&probe);
    let mut sb = server_builder();
    sb.config_mut().close_linger = Duration::from_millis(200);
    sb.add_category(
        "slow",
        CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
    )
    .unwrap()
    .add_request_command("slow", "work", move |m| {
        p.started.fetch_add(1, Ordering::SeqCst);
        let name = thread::current().name().unwrap_or("").to_owned();
        p.threads.lock().unwrap().insert(name);
        EXIT_GUARD.with(|g| {
            g.borrow_mut()
                .get_or_insert_with(|| ExitGuard(Arc::clone(&p.exited)));
        });
        let t = Stopwatch::start();
        while !p.shutdown_begun.load(Ordering::SeqCst) && t.elapsed() < WAIT {
            thread::sleep(Duration::from_millis(5));
        }
        // Give the shutdown request time to reach the proxy before answering.
        thread::sleep(Duration::from_millis(100));
        m.send_reply(["late"]);
        m.send_back("public.hi", ["late"]);
        let _ = m.handle().stats();
        let _ = m.send_later().reply(["later"]);
        p.finished.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let (server, addr) = serve(sb, &site, Plain, AuthLevel::None);
    let mut cb = small();
    cb.config_mut().reconnect_interval_max = Duration::from_millis(500);
    let client = cb.start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(&addr, ok, fail, retrying())
        .unwrap();
    assert_eq!(wait(&connected, "connect").unwrap(), conn);

    let (tx, outcomes) = mpsc::channel();
    for i in 0..6 {
        let tx = tx.clone();
        client
            .handle()
            .request_with(
                &conn,
                "slow.work",
                [i.to_string()],
                within(Duration::from_secs(3)),
                move |r| {
                    let _ = tx.send((i, r));
                },
            )
            .unwrap();
    }
    eventually("two handlers run and four requests are queued", || {
        let s = server.handle().stats().unwrap();
        probe.started.load(Ordering::SeqCst) == 2 && s.sched.commands_queued == 4
    });
    let handle = server.handle().clone();
    probe.shutdown_begun.store(true, Ordering::SeqCst);
    shutdown_bounded(server, "the server with running handlers");
    assert_eq!(
        probe.finished.load(Ordering::SeqCst),
        2,
        "shutdown waited for both"
    );
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        2,
        "queued commands were discarded"
    );
    let threads = probe.threads.lock().unwrap().len();
    assert_eq!(threads, 2, "two workers ran the handlers");
    assert_eq!(
        probe.exited.load(Ordering::SeqCst),
        threads,
        "the workers were joined before shutdown returned"
    );
    assert!(matches!(handle.stats(), Err(Error::Stopped)));

    let mut timed_out = BTreeSet::new();
    for _ in 0..6 {
        let (i, r) = wait(&outcomes, "request outcome after shutdown");
        if i >= 2 {
            assert_eq!(r.unwrap_err(), RequestError::Timeout, "queued request {i}");
            timed_out.insert(i);
        }
    }
    assert_eq!(timed_out.len(), 4);

    // The server is gone: requests fail within their timeout, the connection keeps retrying
    // and the client stays usable.
    for _ in 0..2 {
        let (cb, rx) = reply_channel();
        client
            .handle()
            .request_with(
                &conn,
                "slow.work",
                ["x"],
                within(Duration::from_millis(500)),
                cb,
            )
            .unwrap();
        assert_eq!(
            wait(&rx, "request to a vanished server").unwrap_err(),
            RequestError::Timeout
        );
    }
    assert!(!client.handle().is_connected(&conn).unwrap());
    assert_eq!(
        client.handle().stats().unwrap().links,
        1,
        "the connection persists, retrying"
    );
    shutdown_bounded(client, "the client of a vanished server");
}

#[test]
fn shutdown_while_handlers_run_tcp() {
    shutdown_while_handlers_run(Tcp);
}

#[test]
fn shutdown_while_handlers_run_ipc() {
    shutdown_while_handlers_run(Ipc);
}

/// A client shut down while it has requests pending (the server never answers) and a
/// connection retrying (nobody listens there): the shutdown is bounded and none of those
/// callbacks is ever called.
#[test]
fn shutdown_with_pending_work_never_calls_callbacks() {
    let site = Site::new(Tcp);
    let received = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&received);
    let mut sb = small();
    sb.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_request_command("slow", "never", move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let (server, addr) = serve(sb, &site, Plain, AuthLevel::None);
    let client = small().start().unwrap();
    let conn = connect(client.handle(), &addr);
    let called = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let c = Arc::clone(&called);
        client
            .handle()
            .request(&conn, "slow.never", NO_DATA, move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    let dead = std::net::TcpListener::bind(loopback()).unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let (c1, c2) = (Arc::clone(&called), Arc::clone(&called));
    client
        .handle()
        .connect_remote(
            format!("tcp://127.0.0.1:{dead_port}"),
            move |_| {
                c1.fetch_add(1, Ordering::SeqCst);
            },
            move |_, _| {
                c2.fetch_add(1, Ordering::SeqCst);
            },
            retrying(),
        )
        .unwrap();
    eventually("the server got the five requests", || {
        received.load(Ordering::SeqCst) == 5
    });
    assert_eq!(client.handle().stats().unwrap().pending_requests, 5);
    shutdown_bounded(client, "a client with pending requests and connects");
    assert_eq!(
        called.load(Ordering::SeqCst),
        0,
        "no callback at or after shutdown"
    );
    shutdown_bounded(server, "its server");
}

// =============================================================================================
// backpressure

/// A libzmq DEALER that registers with the server (so the server knows its incoming id) and
/// then never reads: libzmq stops reading the socket once its one-message receive queue is
/// full, so everything the server sends piles up.
fn stalled_dealer(ctx: &zmq::Context, addr: &Address) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).unwrap();
    s.set_rcvhwm(1).unwrap();
    s.set_rcvbuf(4096).unwrap();
    s.set_linger(0).unwrap();
    s.set_sndtimeo(10_000).unwrap();
    s.connect(&addr.zmq_address()).unwrap();
    s.send_multipart([&b"sink.register"[..]], 0).unwrap();
    s
}

/// The server sends requests of 16 KiB to a peer that never reads. The unsent backlog must be
/// bounded: once it is full, further requests must fail at once (OxenMQ: a request that
/// cannot be queued fails with TIMEOUT at once) instead of queueing forever, while the
/// connection stays up and other peers are still served.
fn backpressure_stalled_peer(net: Net) {
    const PAYLOAD: usize = 16 * 1024;
    /// 128 MiB: far beyond any sane per-connection backlog.
    const CAP: usize = 8192;
    /// Requests sent after the first failure was seen: all must fail too.
    const AFTER: usize = 256;
    let site = Site::new(net);
    let (reg_tx, registered) = mpsc::channel();
    let mut sb = server_builder();
    sb.config_mut().close_linger = Duration::from_millis(100);
    sb.add_category("sink", AuthLevel::None)
        .unwrap()
        .add_command("sink", "register", recorder(&reg_tx))
        .unwrap();
    let (server, addr) = serve(sb, &site, Plain, AuthLevel::None);
    let ctx = zmq::Context::new();
    let _dealer = stalled_dealer(&ctx, &addr);
    let (_, stalled) = wait(&registered, "the stalled peer registers");

    // Far longer than the test: a failure reported within it is a queueing failure.
    let long = within(Duration::from_secs(120));
    let (tx, failures) = mpsc::channel();
    let send = |i: usize| {
        let tx = tx.clone();
        server
            .handle()
            .request_with(
                &stalled,
                "sink.data",
                [vec![i as u8; PAYLOAD]],
                long.clone(),
                move |r| {
                    let _ = tx.send((i, r));
                },
            )
            .unwrap();
    };
    let mut first_failure = None;
    let mut sent = 0;
    while sent < CAP && first_failure.is_none() {
        for _ in 0..64 {
            send(sent);
            sent += 1;
        }
        // Wait for the proxy to have taken them, so the backlog is real before looking.
        server.handle().stats().unwrap();
        if let Ok(f) = failures.try_recv() {
            first_failure = Some(f);
        }
    }
    let first_failure = first_failure.or_else(|| failures.recv_timeout(WAIT).ok());
    let Some((i, outcome)) = first_failure else {
        panic!(
            "backpressure: {sent} requests of {PAYLOAD} bytes ({} MiB) to a peer that never \
             reads were all accepted and none failed: the send backlog is unbounded",
            (sent * PAYLOAD) >> 20
        );
    };
    assert_eq!(outcome.unwrap_err(), RequestError::Timeout, "request {i}");
    let backlog = sent;
    for _ in 0..AFTER {
        send(sent);
        sent += 1;
    }
    let mut late_failures = 0;
    while let Ok((j, r)) = failures.recv_timeout(Duration::from_secs(5)) {
        assert_eq!(r.unwrap_err(), RequestError::Timeout, "request {j}");
        if j >= backlog {
            late_failures += 1;
        }
        if late_failures == AFTER {
            break;
        }
    }
    assert_eq!(
        late_failures, AFTER,
        "every request sent once the backlog was full must fail at once"
    );
    assert!(
        server.handle().is_connected(&stalled).unwrap(),
        "a full queue is reported, not punished by dropping the connection"
    );

    // The proxy still serves everyone else.
    let client = small().start().unwrap();
    let conn = connect(client.handle(), &addr);
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.echo", ["alive"], "echo").unwrap()),
        ["alive"]
    );
}

#[test]
fn backpressure_stalled_peer_tcp() {
    backpressure_stalled_peer(Tcp);
}

#[test]
fn backpressure_stalled_peer_ipc() {
    backpressure_stalled_peer(Ipc);
}
