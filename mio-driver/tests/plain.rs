//! Two nodes over plain TCP on loopback.

mod common;

use common::*;
use lokimq::{AuthLevel, ConnectOptions, Listen};

#[test]
fn plain_tcp_request_and_reply() {
    let (server, addr) = start_server(Listen::plain(loopback()).unwrap());
    assert!(addr.to_string().starts_with("tcp://127.0.0.1:"), "{addr}");
    let client = builder().start().unwrap();
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .connect_remote(&addr, ok, fail, ConnectOptions::default())
        .unwrap();
    assert_eq!(wait(&connected, "connect").unwrap(), conn);
    let (cb, rx) = reply_channel();
    client
        .request(&conn, "public.echo", ["a", "", "b"], cb)
        .unwrap();
    assert_eq!(strings(&wait(&rx, "reply").unwrap()), ["a", "", "b"]);
    let (cb, rx) = reply_channel();
    client
        .request(&conn, "public.whoami", lokimq::NO_DATA, cb)
        .unwrap();
    let who = strings(&wait(&rx, "whoami").unwrap());
    assert_eq!(who, ["none", "", "127.0.0.1"]);
    let (cb, rx) = reply_channel();
    client.request(&conn, "admin.echo", ["x"], cb).unwrap();
    assert_eq!(
        wait(&rx, "admin").unwrap_err(),
        lokimq::RequestError::Forbidden
    );
    drop(client);
    drop(server);
    let _ = AuthLevel::None;
}
