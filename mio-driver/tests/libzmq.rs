//! Interop with real libzmq 4.3 (the `zmq` crate's vendored build): a libzmq DEALER speaking
//! OxenMQ's protocol to our listener, and our node connecting to a libzmq ROUTER that answers
//! like OxenMQ. Plain (NULL) and CURVE.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::libzmq::{RECV_MS, dealer_socket, l_route};
use common::*;
use lokimq::{AuthLevel, ConnectOptions, Keypair, Listen};

const TAG: &[u8; 15] = b"fifteen-bytes!!";

fn keypair(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

fn recv(s: &zmq::Socket) -> Vec<Vec<u8>> {
    s.recv_multipart(0).expect("libzmq receive (timed out?)")
}

fn dealer_session(curve: bool) {
    let listen = if curve {
        Listen::curve(loopback())
    } else {
        Listen::plain(loopback())
    }
    .unwrap()
    .allow(|_, _, _| AuthLevel::Basic);
    let (server, addr) = start_server(listen);
    let ctx = zmq::Context::new();
    let me = keypair(3);
    let server_key = *server.pubkey().as_bytes();
    let s = dealer_socket(&ctx, &me, curve.then_some(&server_key), true);
    s.connect(&addr.zmq_address()).unwrap();

    s.send_multipart([&b"HI"[..]], 0).unwrap();
    assert_eq!(recv(&s), [b"HELLO".to_vec()]);

    s.send_multipart([&b"public.echo"[..], TAG, b"abc", b""], 0)
        .unwrap();
    assert_eq!(
        recv(&s),
        [b"REPLY".to_vec(), TAG.to_vec(), b"abc".to_vec(), Vec::new()]
    );

    s.send_multipart([&b"public.whoami"[..], TAG], 0).unwrap();
    let who = recv(&s);
    let key = if curve {
        me.public().to_hex()
    } else {
        String::new()
    };
    assert_eq!(
        who,
        [
            b"REPLY".to_vec(),
            TAG.to_vec(),
            b"basic".to_vec(),
            key.into_bytes(),
            b"127.0.0.1".to_vec()
        ]
    );

    s.send_multipart([&b"admin.echo"[..], TAG], 0).unwrap();
    assert_eq!(
        recv(&s),
        [b"FORBIDDEN".to_vec(), b"REPLY".to_vec(), TAG.to_vec()]
    );

    s.send_multipart([&b"nope.nope"[..], TAG], 0).unwrap();
    assert_eq!(
        recv(&s),
        [b"UNKNOWNCOMMAND".to_vec(), b"nope.nope".to_vec()]
    );
}

#[test]
fn libzmq_plain_dealer_talks_to_our_listener() {
    dealer_session(false);
}

#[test]
fn libzmq_curve_dealer_talks_to_our_listener() {
    dealer_session(true);
}

/// A libzmq ROUTER that answers `HI` with `HELLO` and any request with `REPLY`, echoing the
/// data; reports the routing ids it saw. Stops after answering `requests` requests.
fn router(
    server: Option<Keypair>,
    requests: usize,
) -> (String, mpsc::Receiver<Result<Vec<u8>, String>>) {
    let (ep_tx, ep_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let ctx = zmq::Context::new();
        let r = ctx.socket(zmq::ROUTER).unwrap();
        r.set_rcvtimeo(RECV_MS).unwrap();
        r.set_linger(0).unwrap();
        r.set_router_mandatory(true).unwrap();
        if let Some(k) = &server {
            r.set_curve_server(true).unwrap();
            r.set_curve_publickey(k.public().as_bytes()).unwrap();
            r.set_curve_secretkey(&k.secret().to_bytes()).unwrap();
        }
        r.bind("tcp://127.0.0.1:*").unwrap();
        let ep = r.get_last_endpoint().unwrap().unwrap();
        let _ = ep_tx.send(ep);
        let mut answered = 0;
        while answered < requests {
            let frames = match r.recv_multipart(0) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.send(Err(format!("router receive: {e}")));
                    return;
                }
            };
            let route = frames[0].clone();
            match frames.get(1).map(Vec::as_slice) {
                Some(b"HI") => {
                    let _ = tx.send(Ok(route.clone()));
                    r.send_multipart([route.as_slice(), b"HELLO"], 0).unwrap();
                }
                Some(_) if frames.len() >= 3 => {
                    let mut reply = vec![route, b"REPLY".to_vec(), frames[2].clone()];
                    reply.extend(frames[3..].iter().cloned());
                    r.send_multipart(reply, 0).unwrap();
                    answered += 1;
                }
                _ => {
                    let _ = tx.send(Err(format!("unexpected frames {frames:?}")));
                    return;
                }
            }
        }
        // Give the reply time to leave before the socket closes (linger is 0).
        thread::sleep(Duration::from_millis(100));
    });
    let ep = ep_rx.recv_timeout(WAIT).expect("router endpoint");
    (ep, rx)
}

fn router_session(curve: bool) {
    let server_keys = keypair(4);
    let (ep, seen) = router(curve.then(|| server_keys.clone()), 1);
    let mut addr = ep.replace("tcp://", "");
    if curve {
        addr = format!("curve://{addr}/{}", server_keys.public().to_hex());
    } else {
        addr = format!("tcp://{addr}");
    }
    let mut b = builder();
    b.keypair(keypair(5));
    let client = b.start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(addr.as_str(), ok, fail, ConnectOptions::default())
        .unwrap();
    wait(&connected, "HELLO from libzmq").unwrap();
    let route = wait(&seen, "router saw HI").unwrap();
    assert_eq!(
        route,
        l_route(client.pubkey()),
        "routing id is L + our pubkey"
    );
    let reply = request_wait(
        client.handle(),
        &conn,
        "any.thing",
        ["x", "yz"],
        "REPLY from libzmq",
    );
    assert_eq!(strings(&reply.unwrap()), ["x", "yz"]);
}

#[test]
fn libzmq_plain_router_answers_our_connect() {
    router_session(false);
}

#[test]
fn libzmq_curve_router_answers_our_connect() {
    router_session(true);
}
