//! Two nodes over CURVE: TCP and unix sockets, client keys reaching the allow function and the
//! handlers, service-node connections found with `sn_lookup`, and a wrong server key.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use lokimq::{
    Access, Address, AuthLevel, ConnectOptions, ConnectSnOptions, ConnectionId, Keypair, Listen,
    NO_DATA, Stopwatch,
};

fn keypair(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

#[test]
fn curve_tcp_request_and_reply() {
    let (tx, seen) = mpsc::channel();
    let (server, addr) = start_server(Listen::curve(loopback()).unwrap().allow(
        move |ip, key, sn| {
            let _ = tx.send((ip.to_owned(), key.copied(), sn));
            AuthLevel::Basic
        },
    ));
    assert_eq!(addr.pubkey(), Some(server.pubkey()));
    assert!(addr.to_string().starts_with("curve://127.0.0.1:"), "{addr}");
    let mut b = builder();
    b.keypair(keypair(9));
    let client = b.start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(&addr, ok, fail, ConnectOptions::default())
        .unwrap();
    let up = wait(&connected, "connect").unwrap();
    assert_eq!(
        up.pubkey(),
        Some(server.pubkey()),
        "on_connect sees the server key"
    );
    let (ip, key, sn) = wait(&seen, "allow");
    assert_eq!(
        (ip.as_str(), key, sn),
        ("127.0.0.1", Some(*client.pubkey()), false)
    );
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap()),
        ["basic", &client.pubkey().to_hex(), "127.0.0.1"]
    );
    let big = [vec![0u8; 100_000]];
    let echoed = request_wait(client.handle(), &conn, "public.echo", big, "big echo").unwrap();
    assert_eq!(echoed[0].len(), 100_000);
}

#[test]
fn ipc_curve_request_and_reply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curve.sock");
    let listen = Listen::curve(format!("ipc://{}", path.display()).as_str()).unwrap();
    let (server, addr) = start_server(listen);
    assert_eq!(
        addr,
        Address::ipc_curve(path.display().to_string(), *server.pubkey())
    );
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(addr.to_string(), ok, fail, ConnectOptions::default())
        .unwrap();
    wait(&connected, "connect").unwrap();
    assert_eq!(
        strings(&request_wait(client.handle(), &conn, "public.whoami", NO_DATA, "whoami").unwrap())
            [1],
        client.pubkey().to_hex()
    );
}

#[test]
fn wrong_server_key_never_connects() {
    let (_server, addr) = start_server(Listen::curve(loopback()).unwrap());
    let wrong = addr.clone().with_pubkey(Some(*keypair(77).public()));
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().timeout(Duration::from_secs(8));
    let t = Stopwatch::start();
    client
        .handle()
        .connect_remote(wrong.clone(), ok, fail, opts)
        .unwrap();
    // Our listener cannot open a HELLO sealed to another key and closes silently, as libzmq
    // does: the failure names the likely cause, at once.
    assert_eq!(wait(&connected, "failure").unwrap_err(), WRONG_SERVER_KEY);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // OxenMQ's policy retries until the timeout instead.
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default()
        .timeout(Duration::from_millis(800))
        .retry_refused(true);
    client
        .handle()
        .connect_remote(wrong, ok, fail, opts)
        .unwrap();
    assert_eq!(
        wait(&connected, "failure").unwrap_err(),
        "connection attempt timed out"
    );
}

/// What `ConnectError::Handshake(HandshakeError::WrongServerKey)` says.
const WRONG_SERVER_KEY: &str =
    "handshake failed: the server closed the connection after our CURVE HELLO (wrong server key?)";

#[test]
fn service_node_connection_via_sn_lookup() {
    let server_keys = keypair(1);
    let client_keys = keypair(2);
    let mut sb = server_builder();
    sb.keypair(server_keys.clone())
        .service_node(true)
        .set_active_sns([*client_keys.public()]);
    sb.add_category("sn", Access::new(AuthLevel::None, true, true))
        .unwrap()
        .add_request_command("sn", "echo", |m| {
            let who = m.conn().clone();
            let mut parts = m.data().to_vec();
            parts.push(lokimq::Bytes::from(format!("{}", who.is_sn())));
            m.send_reply(parts);
        })
        .unwrap();
    sb.listen(Listen::curve(loopback()).unwrap());
    let server = sb.start().unwrap();
    let addr = server.bound_addresses()[0].clone().with_pubkey(None);

    let (looked_up_tx, looked_up) = mpsc::channel();
    let server_pk = *server_keys.public();
    let mut cb = builder();
    cb.keypair(client_keys).sn_lookup(move |pk| {
        let _ = looked_up_tx.send(*pk);
        (*pk == server_pk).then(|| addr.clone())
    });
    let client = cb.start().unwrap();
    let conn = client
        .handle()
        .connect_sn(server_pk, ConnectSnOptions::default())
        .unwrap();
    assert_eq!(conn, ConnectionId::Sn(server_pk));
    assert_eq!(wait(&looked_up, "lookup"), server_pk);
    let (reply, rx) = reply_channel();
    client
        .handle()
        .request(&conn, "sn.echo", ["sn"], reply)
        .unwrap();
    assert_eq!(strings(&wait(&rx, "sn.echo").unwrap()), ["sn", "true"]);
    // The server can reach the client by key over the same (incoming) connection.
    let (reply, rx) = reply_channel();
    let mut opts = lokimq::RequestOptions::default();
    opts.send.incoming = true;
    server
        .handle()
        .request_with(
            &ConnectionId::Sn(*client.pubkey()),
            "public.echo",
            ["back"],
            opts,
            reply,
        )
        .unwrap();
    // The client has no `public` category: it answers UNKNOWNCOMMAND, proving the route.
    assert_eq!(
        wait(&rx, "reverse request").unwrap_err(),
        lokimq::RequestError::UnknownCommand
    );
}

#[test]
fn sn_lookup_failure_fails_the_request() {
    let mut cb = builder();
    cb.sn_lookup(|_| None);
    let client = cb.start().unwrap();
    let unknown = *keypair(5).public();
    let (reply, rx) = reply_channel();
    client
        .handle()
        .request(&ConnectionId::Sn(unknown), "x.y", NO_DATA, reply)
        .unwrap();
    // Its connection is given up at once: the request cannot be answered.
    assert_eq!(
        wait(&rx, "failure").unwrap_err(),
        lokimq::RequestError::Disconnected
    );
}

#[test]
fn allow_function_can_deny_a_key() {
    let banned = keypair(66);
    let banned_pk = *banned.public();
    let (_server, addr) =
        start_server(Listen::curve(loopback()).unwrap().allow(move |_, key, _| {
            if key == Some(&banned_pk) {
                AuthLevel::Denied
            } else {
                AuthLevel::Basic
            }
        }));
    let mut b = builder();
    b.keypair(banned);
    let bad = b.start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().timeout(Duration::from_secs(2));
    bad.handle().connect_remote(&addr, ok, fail, opts).unwrap();
    assert!(wait(&connected, "denied").is_err());
    let good = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    good.handle()
        .connect_remote(&addr, ok, fail, ConnectOptions::default())
        .unwrap();
    assert!(wait(&connected, "allowed").is_ok());
}
