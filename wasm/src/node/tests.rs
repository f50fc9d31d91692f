//! The host-facing checks of [`WasmNode`], driven natively through the in-memory [`Pair`]:
//! every misuse a JavaScript host can commit is a coded error, and requests work both ways.

use bytes::Bytes;
use lokimq_core::node::RequestError;
use lokimq_core::{AuthLevel, Duration, Keypair};

use super::{ErrorCode, HostOutput, StreamEnd, WasmNode};
use crate::bench::Pair;
use crate::host::HostRng;

fn pair() -> Pair<HostRng> {
    Pair::new(&HostRng).expect("pair")
}

fn code<T: std::fmt::Debug>(r: Result<T, super::Error>) -> ErrorCode {
    r.expect_err("an error").code
}

#[test]
fn curve_requests_echo_forbidden_and_unknown() {
    let mut p = pair();
    let conn = p.connect().unwrap();
    let data = vec![Bytes::from_static(b"hello"), Bytes::new()];
    assert_eq!(
        p.request(&conn, "bench.echo", data.clone()).unwrap(),
        Ok(data)
    );
    assert_eq!(
        p.request(&conn, "secure.echo", vec![]).unwrap(),
        Err(RequestError::Forbidden)
    );
    assert_eq!(
        p.request(&conn, "bench.nope", vec![]).unwrap(),
        Err(RequestError::UnknownCommand)
    );
    let info = p.server.info();
    assert_eq!(
        (info.streams, info.pending_replies, info.running_jobs),
        (1, 0, 0)
    );
}

#[test]
fn handshakes_leave_nothing_behind() {
    let mut p = pair();
    for _ in 0..3 {
        p.handshake().unwrap();
    }
    assert_eq!(p.client.info().streams, 0);
    assert_eq!(p.server.info().streams, 0);
    assert_eq!(p.client.info().links, 0);
}

#[test]
fn a_handler_may_reply_after_its_job_finished() {
    let mut p = pair();
    let conn = p.connect().unwrap();
    p.defer_replies(true);
    let now = p.now();
    let id = p
        .client
        .request(
            now,
            &conn,
            "bench.echo",
            vec![Bytes::from_static(b"later")],
            None,
        )
        .unwrap();
    p.pump().unwrap();
    assert!(p.take_reply(id).is_none());
    assert_eq!(p.server.info().pending_replies, 1);
    p.answer_deferred().unwrap();
    assert_eq!(
        p.take_reply(id).unwrap(),
        Ok(vec![Bytes::from_static(b"later")])
    );
    // Each handle answers once.
    assert_eq!(code(p.server.reply(now, 1, vec![])), ErrorCode::NoSuchReply);
}

#[test]
fn requests_time_out() {
    let mut p = pair();
    let conn = p.connect().unwrap();
    p.defer_replies(true);
    let now = p.now();
    let id = p
        .client
        .request(
            now,
            &conn,
            "bench.echo",
            vec![],
            Some(Duration::from_secs(2)),
        )
        .unwrap();
    p.pump().unwrap();
    p.advance(Duration::from_secs(3)).unwrap();
    assert_eq!(p.take_reply(id), Some(Err(RequestError::Timeout)));
}

#[test]
fn stream_misuse_is_a_coded_error() {
    let mut p = pair();
    let conn = p.connect().unwrap();
    let now = p.now();
    // The client's stream 1 is open; 2 was never handed out.
    assert_eq!(
        code(p.client.received(now, 2, b"x")),
        ErrorCode::UnknownStream
    );
    assert_eq!(
        code(p.client.received(now, 0, b"x")),
        ErrorCode::UnknownStream
    );
    assert_eq!(code(p.client.connected(now, 1)), ErrorCode::Unexpected);
    assert_eq!(
        code(p.server.auth_decision(now, 1, AuthLevel::Admin)),
        ErrorCode::Unexpected
    );
    assert_eq!(code(p.server.job_finished(now, 0)), ErrorCode::Unexpected);
    assert_eq!(code(p.server.accept(now, 9, "x")), ErrorCode::Refused);
    assert_eq!(
        code(p.server.listen_failed(now, 9, "x")),
        ErrorCode::Refused
    );
    // The node closes the connection: bytes after that are refused, its end is harmless.
    p.client.disconnect(now, &conn, Duration::ZERO).unwrap();
    p.pump().unwrap();
    assert_eq!(
        code(p.client.received(now, 1, b"x")),
        ErrorCode::StreamClosed
    );
    p.client.closed(now, 1, StreamEnd::Eof).unwrap();
    assert_eq!(
        code(p.client.closed(now, 7, StreamEnd::Eof)),
        ErrorCode::UnknownStream
    );
    // Sending on the closed connection is a send failure, not a panic.
    assert_eq!(
        code(p.client.request(now, &conn, "bench.echo", vec![], None)),
        ErrorCode::SendFailed
    );
}

#[test]
fn building_and_running_calls_are_kept_apart() {
    let mut n = WasmNode::new(Keypair::from_secret_bytes([5; 32]), HostRng);
    let now = lokimq_core::Instant::from_secs(1);
    assert_eq!(code(n.timeout(now)), ErrorCode::NotStarted);
    assert_eq!(
        code(n.connect(now, "tcp://a:1", None, None)),
        ErrorCode::NotStarted
    );
    assert_eq!(
        code(n.add_category("x", AuthLevel::Denied)),
        ErrorCode::BadArgument
    );
    assert_eq!(
        code(n.add_category("a.b", AuthLevel::None)),
        ErrorCode::Registry
    );
    assert_eq!(code(n.add_command("nope", "x", true)), ErrorCode::Registry);
    assert_eq!(code(n.set_option("nope", 1.0)), ErrorCode::BadArgument);
    assert_eq!(
        code(n.set_option("requestTimeoutMs", -1.0)),
        ErrorCode::BadArgument
    );
    assert_eq!(
        code(n.set_option("requestTimeoutMs", f64::NAN)),
        ErrorCode::BadArgument
    );
    assert_eq!(
        code(n.set_option("maxMessageSize", 0.5)),
        ErrorCode::BadArgument
    );
    assert_eq!(
        code(n.set_option("ephemeralRoutingId", 2.0)),
        ErrorCode::BadArgument
    );
    n.set_option("requestTimeoutMs", 1500.0).unwrap();
    n.set_option("maxMessageSize", -1.0).unwrap();
    n.start(now).unwrap();
    assert_eq!(code(n.start(now)), ErrorCode::AlreadyStarted);
    assert_eq!(
        code(n.add_category("y", AuthLevel::None)),
        ErrorCode::AlreadyStarted
    );
    assert_eq!(
        code(n.connect(now, "bogus", None, None)),
        ErrorCode::BadAddress
    );
    for bad in [
        "curve://127.0.0.1:5",
        "tcp://:5",
        "tcp://h:99999",
        "tcp://h",
        "ipc://",
        "x",
    ] {
        assert_eq!(
            code(n.listen(now, bad, true)),
            ErrorCode::BadAddress,
            "{bad}"
        );
    }
    assert_eq!(n.listen(now, "tcp://127.0.0.1:0", true).unwrap(), 0);
    assert_eq!(n.listen(now, "ipc:///tmp/x.sock", false).unwrap(), 1);
    // A clock that steps back is clamped, not a panic (the core debug-asserts on it).
    n.timeout(lokimq_core::Instant::from_secs(0)).unwrap();
}

#[test]
fn shutdown_stops_and_closes() {
    let mut p = pair();
    let _conn = p.connect().unwrap();
    let now = p.now();
    p.server.shutdown(now).unwrap();
    let mut stopped = false;
    let mut closed = 0;
    while let Some(out) = p.server.poll() {
        match out {
            HostOutput::Stopped => stopped = true,
            HostOutput::Close { .. } => closed += 1,
            _ => {}
        }
    }
    assert!(stopped && p.server.is_stopped());
    assert_eq!(closed, 1);
    assert_eq!(code(p.server.accept(now, 0, "x")), ErrorCode::Refused);
}
