//! The libzmq side of the interop tests (the `zmq` crate's vendored libzmq 4.3): the DEALER
//! setup every test that plays an OxenMQ client against a listener starts from.

use lokimq::{Keypair, PublicKey};

/// Every blocking libzmq send or receive gives up after this (a test fails instead of hanging).
pub(crate) const RECV_MS: i32 = 10_000;

/// OxenMQ's default routing id: `L` followed by the 32-byte public key.
pub(crate) fn l_route(key: &PublicKey) -> Vec<u8> {
    let mut id = vec![b'L'];
    id.extend_from_slice(key.as_bytes());
    id
}

/// A libzmq DEALER for client `me`, not yet connected, set up as OxenMQ's clients are: sends
/// and receives bounded by [`RECV_MS`], linger 0, the `L` + pubkey routing id if `routing_id`
/// (otherwise the ROUTER assigns one), and a CURVE client of `server` if one is given (plain
/// otherwise).
pub(crate) fn dealer_socket(
    ctx: &zmq::Context,
    me: &Keypair,
    server: Option<&[u8; 32]>,
    routing_id: bool,
) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).unwrap();
    if routing_id {
        s.set_identity(&l_route(me.public())).unwrap();
    }
    s.set_rcvtimeo(RECV_MS).unwrap();
    s.set_sndtimeo(RECV_MS).unwrap();
    s.set_linger(0).unwrap();
    if let Some(server) = server {
        s.set_curve_serverkey(server).unwrap();
        s.set_curve_publickey(me.public().as_bytes()).unwrap();
        s.set_curve_secretkey(&me.secret().to_bytes()).unwrap();
    }
    s
}
