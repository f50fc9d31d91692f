//! The disconnect hook (`Builder::on_disconnect`) on real sockets: both ends of a connection
//! hear about its end (also the end that closed it), with the peer's key and the reason, and an outgoing connection that
//! cannot come back is reported as given up.

mod common;

use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use common::{builder, connect, loopback, server_builder, wait};
use lokimq::{AuthLevel, Builder, ConnectError, DisconnectReason, Disconnected, Keypair, Listen};

/// Installs a hook that forwards every report to a channel.
fn hook(b: &mut Builder) -> Receiver<Disconnected> {
    let (tx, rx) = mpsc::channel();
    b.on_disconnect(move |d| {
        let _ = tx.send(d);
    });
    rx
}

/// No report may arrive within `quiet`.
fn none_within(rx: &Receiver<Disconnected>, quiet: Duration) {
    if let Ok(d) = rx.recv_timeout(quiet) {
        panic!("unexpected report: {d}");
    }
}

#[test]
fn both_ends_hear_of_a_connection_ending_and_a_dead_server_is_given_up() {
    let server_keys = Keypair::from_secret_bytes([1; 32]);
    let client_keys = Keypair::from_secret_bytes([2; 32]);
    let mut sb = server_builder();
    sb.keypair(server_keys.clone());
    sb.listen(
        Listen::curve(loopback())
            .unwrap()
            .allow(|_, _, _| AuthLevel::Basic),
    );
    let server_reports = hook(&mut sb);
    let server = sb.start().unwrap();
    let addr = server.bound_addresses()[0].clone();

    let mut cb = builder();
    cb.keypair(client_keys.clone());
    let client_reports = hook(&mut cb);
    let client = cb.start().unwrap();

    // 1. The client closes its connection: the server hears of it, final, with the key.
    let first = connect(client.handle(), &addr);
    client
        .handle()
        .disconnect(&first, Duration::from_secs(1))
        .unwrap();
    let d = wait(&server_reports, "the server's report");
    assert_eq!(d.pubkey(), Some(client_keys.public()));
    assert!(d.is_final(), "{d}");
    assert!(
        matches!(
            d,
            Disconnected::Lost {
                reason: DisconnectReason::PeerClosed,
                ..
            }
        ),
        "{d:?}"
    );
    // The side that closed hears of it too, so cleanup has one place.
    let ours = wait(&client_reports, "the client's report");
    assert_eq!(
        ours,
        Disconnected::Lost {
            conn: first,
            pubkey: Some(*server_keys.public()),
            reason: DisconnectReason::Closed,
            reconnecting: false,
        }
    );

    // 2. The server goes away: the client's connection drops (and would reconnect), then is
    //    given up because nothing listens any more.
    let second = connect(client.handle(), &addr);
    drop(server);
    let lost = wait(&client_reports, "the drop");
    assert_eq!(lost.conn(), &second);
    assert_eq!(lost.pubkey(), Some(server_keys.public()));
    assert!(
        !lost.is_final(),
        "an outgoing connection reconnects: {lost}"
    );
    let gave_up = wait(&client_reports, "giving up");
    assert_eq!(
        gave_up,
        Disconnected::GaveUp {
            conn: second,
            error: ConnectError::Refused
        }
    );
    assert!(gave_up.is_final());
    none_within(&client_reports, Duration::from_millis(300));
}

#[test]
fn a_plain_connection_reports_no_key_and_shutdown_reports_nothing() {
    let mut sb = server_builder();
    sb.listen_plain(loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let server_reports = hook(&mut sb);
    let server = sb.start().unwrap();
    let addr = server.bound_addresses()[0].clone();

    let mut cb = builder();
    let client_reports = hook(&mut cb);
    let client = cb.start().unwrap();
    connect(client.handle(), &addr);

    // The client shuts down: the server hears of it; the client, shutting down, does not.
    drop(client);
    let d = wait(&server_reports, "the server's report");
    assert_eq!(d.pubkey(), None);
    assert!(d.is_final());
    none_within(&client_reports, Duration::from_millis(200));
    drop(server);
    none_within(&server_reports, Duration::from_millis(200));
}
