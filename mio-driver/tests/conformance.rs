//! The `conformance_server` example's contract (see its module doc), checked from outside the
//! way an acceptance harness sees it: the binary as a child process, real libzmq DEALERs (the
//! `zmq` crate's vendored libzmq 4.3) for the protocol, raw TCP for what libzmq will not send.
//!
//! The example must be built: `cargo test -p lokimq` builds it along with this file.

mod common;
#[path = "conformance/harness.rs"]
mod harness;
#[path = "conformance/raw.rs"]
mod raw;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::libzmq::{dealer_socket, l_route};
use harness::{CHILD_WAIT, Options, Proc, Server};
use lokimq::{Keypair, Stopwatch};
use raw::End;

const TAG: &[u8] = b"fifteen-bytes!!";
const MIB: usize = 1 << 20;
/// The bytes CURVE adds to a frame: `\x07MESSAGE`, the 8-byte short nonce, the 16-byte MAC
/// and the flags byte.
const CURVE_OVERHEAD: usize = 33;

fn key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

/// A libzmq DEALER with OxenMQ's routing id (`L` + pubkey), a CURVE client of `server` if
/// `curve`, connected to the matching listener. `prepare` runs before the connect (monitors,
/// heartbeat options).
fn dealer_with(
    ctx: &zmq::Context,
    me: &Keypair,
    server: &Server,
    curve: bool,
    prepare: impl FnOnce(&zmq::Socket),
) -> zmq::Socket {
    let s = dealer_socket(ctx, me, curve.then_some(&server.pubkey), true);
    prepare(&s);
    let endpoint = if curve {
        server.curve_endpoint()
    } else {
        server.plain_endpoint()
    };
    s.connect(&endpoint).unwrap();
    s
}

/// [`dealer_with`] without preparation, after checking `HI` → `HELLO`.
fn dealer(ctx: &zmq::Context, me: &Keypair, server: &Server, curve: bool) -> zmq::Socket {
    let s = dealer_with(ctx, me, server, curve, |_| {});
    assert_eq!(ask(&s, &[b"HI"]), frames(&[b"HELLO"]));
    s
}

fn frames(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn send(s: &zmq::Socket, parts: &[&[u8]]) {
    s.send_multipart(parts.iter().copied(), 0)
        .expect("libzmq send");
}

fn recv(s: &zmq::Socket) -> Vec<Vec<u8>> {
    s.recv_multipart(0)
        .expect("libzmq receive (timed out after 10 s?)")
}

fn ask(s: &zmq::Socket, parts: &[&[u8]]) -> Vec<Vec<u8>> {
    send(s, parts);
    recv(s)
}

/// True if nothing arrives on `s` within `ms`.
fn silent_for(s: &zmq::Socket, ms: i64) -> bool {
    s.poll(zmq::POLLIN, ms).expect("zmq poll") == 0
}

fn reply(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut v = frames(&[b"REPLY", TAG]);
    v.extend(frames(parts));
    v
}

/// Calls `cmd` as a request with the data `e` (answered `reply(&[b"e"])` when allowed).
fn echo(s: &zmq::Socket, cmd: &[u8]) -> Vec<Vec<u8>> {
    ask(s, &[cmd, TAG, b"e"])
}

fn refused(word: &[u8]) -> Vec<Vec<u8>> {
    frames(&[word, b"REPLY", TAG])
}

/// `public.whoami` as seen by `me` on `s`.
fn whoami(s: &zmq::Socket) -> Vec<String> {
    let r = ask(s, &[b"public.whoami", TAG]);
    assert_eq!(&r[..2], &frames(&[b"REPLY", TAG])[..], "{r:?}");
    r[2..]
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn expect_whoami(s: &zmq::Socket, key: &str, level: &str, sn: bool) {
    let sn = if sn { "1" } else { "0" };
    assert_eq!(whoami(s), [key, level, sn]);
}

/// Waits (bounded) until `public.count_get` reports `want`; it must never exceed it.
fn expect_count(s: &zmq::Socket, want: u64) {
    let start = Stopwatch::start();
    loop {
        let r = ask(s, &[b"public.count_get", TAG]);
        assert_eq!(r.len(), 3, "{r:?}");
        let got: u64 = String::from_utf8_lossy(&r[2])
            .parse()
            .unwrap_or_else(|e| panic!("count_get replied {r:?}: {e}"));
        assert!(got <= want, "counter {got} > {want}");
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "counter stuck at {got}, want {want}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// libzmq's monitor for `s`'s DISCONNECTED events: set it up before connecting.
fn monitor_disconnects(ctx: &zmq::Context, s: &zmq::Socket, name: &str) -> zmq::Socket {
    let endpoint = format!("inproc://{name}");
    s.monitor(&endpoint, zmq::SocketEvent::DISCONNECTED as i32)
        .unwrap();
    let m = ctx.socket(zmq::PAIR).unwrap();
    m.set_linger(0).unwrap();
    m.connect(&endpoint).unwrap();
    m
}

/// True if the monitor reports a disconnect within `ms`.
fn disconnected_within(monitor: &zmq::Socket, ms: i64) -> bool {
    if monitor.poll(zmq::POLLIN, ms).expect("zmq poll") == 0 {
        return false;
    }
    let event = monitor.recv_multipart(0).expect("monitor event");
    let id = u16::from_le_bytes([event[0][0], event[0][1]]);
    assert_eq!(
        zmq::SocketEvent::from_raw(id),
        zmq::SocketEvent::DISCONNECTED
    );
    true
}

// ---------------------------------------------------------------------------------------------
// commands

#[test]
fn public_commands_and_error_replies_on_curve_and_plain() {
    let server = Server::start(&Options::default());
    let ctx = zmq::Context::new();
    let mut count = 0;
    for curve in [true, false] {
        let me = key(if curve { 1 } else { 2 });
        let s = dealer(&ctx, &me, &server, curve);
        let what = if curve { "curve" } else { "plain" };

        assert_eq!(
            ask(&s, &[b"public.echo", TAG, b"abc", b"", b"\0\xff"]),
            reply(&[b"abc", b"", b"\0\xff"]),
            "{what}"
        );
        assert_eq!(ask(&s, &[b"public.echo", TAG]), reply(&[]), "{what}");
        assert_eq!(ask(&s, &[b"pub.e", TAG, b"x"]), reply(&[b"x"]), "{what}");
        assert_eq!(
            ask(&s, &[b"public.hello", b"a", b"b"]),
            frames(&[b"public.hi", b"a", b"b"]),
            "{what}"
        );
        assert_eq!(
            ask(&s, &[b"public.hello"]),
            frames(&[b"public.hi"]),
            "{what}"
        );

        let hex = if curve {
            me.public().to_hex()
        } else {
            String::new()
        };
        expect_whoami(&s, &hex, "none", false);

        for _ in 0..3 {
            send(&s, &[b"public.count"]);
        }
        count += 3;
        expect_count(&s, count);

        // Errors: exact frames (behaviour.md §2.4); error replies name the command as sent.
        assert_eq!(
            ask(&s, &[b"nope.nope", TAG]),
            frames(&[b"UNKNOWNCOMMAND", b"nope.nope"])
        );
        assert_eq!(
            ask(&s, &[b"public.nope", TAG]),
            frames(&[b"UNKNOWNCOMMAND", b"public.nope"])
        );
        assert_eq!(
            ask(&s, &[b"publicecho", TAG]),
            frames(&[b"UNKNOWNCOMMAND", b"publicecho"])
        );
        assert_eq!(
            ask(&s, &[b"public.echo"]),
            frames(&[b"NO_REPLY_TAG", b"public.echo"])
        );
        assert_eq!(ask(&s, &[b"pub.e"]), frames(&[b"NO_REPLY_TAG", b"pub.e"]));
        assert_eq!(ask(&s, &[b"basic.echo", TAG]), refused(b"FORBIDDEN"));
        assert_eq!(ask(&s, &[b"admin.echo", TAG]), refused(b"FORBIDDEN"));
        assert_eq!(
            ask(&s, &[b"basic.echo"]),
            frames(&[b"FORBIDDEN", b"basic.echo"])
        );
        assert_eq!(ask(&s, &[b"sn.echo", TAG]), refused(b"FORBIDDEN_SN"));
        assert_eq!(
            ask(&s, &[b"local.echo", TAG]),
            refused(b"NOT_A_SERVICE_NODE")
        );

        // slow.sleep: good and bad durations.
        assert_eq!(ask(&s, &[b"slow.sleep", TAG, b"0"]), reply(&[b"done"]));
        assert_eq!(ask(&s, &[b"slow.sleep", TAG, b"30"]), reply(&[b"done"]));
        for bad in [
            &[][..],
            &[&b""[..]],
            &[b"abc"],
            &[b"-1"],
            &[b"+5"],
            &[b"60001"],
            &[b"99999999999999999999999"],
        ] {
            let mut parts: Vec<&[u8]> = vec![b"slow.sleep", TAG];
            parts.extend_from_slice(bad);
            let r = ask(&s, &parts);
            assert_eq!(r.len(), 4, "{bad:?}: {r:?}");
            assert_eq!(&r[..3], &reply(&[b"error"])[..], "{bad:?}: {r:?}");
        }
    }
}

#[test]
fn auth_levels_and_remote_service_nodes() {
    let (basic, admin, sn, nobody) = (key(10), key(11), key(12), key(13));
    let server = Server::start(&Options {
        allow: vec![(basic.clone(), "basic"), (admin.clone(), "admin")],
        active_sn: vec![sn.clone()],
        ..Options::default()
    });
    let ctx = zmq::Context::new();
    let ok = reply(&[b"e"]);

    {
        let s = dealer(&ctx, &basic, &server, true);
        expect_whoami(&s, &basic.public().to_hex(), "basic", false);
        assert_eq!(echo(&s, b"basic.echo"), ok);
        assert_eq!(echo(&s, b"admin.echo"), refused(b"FORBIDDEN"));
        assert_eq!(echo(&s, b"sn.echo"), refused(b"FORBIDDEN_SN"));
        assert_eq!(echo(&s, b"local.echo"), refused(b"NOT_A_SERVICE_NODE"));
    }
    {
        let s = dealer(&ctx, &admin, &server, true);
        expect_whoami(&s, &admin.public().to_hex(), "admin", false);
        assert_eq!(echo(&s, b"basic.echo"), ok);
        assert_eq!(echo(&s, b"admin.echo"), ok);
        assert_eq!(echo(&s, b"sn.echo"), refused(b"FORBIDDEN_SN"));
    }
    {
        let s = dealer(&ctx, &sn, &server, true);
        expect_whoami(&s, &sn.public().to_hex(), "none", true);
        assert_eq!(echo(&s, b"sn.echo"), ok);
        assert_eq!(echo(&s, b"basic.echo"), refused(b"FORBIDDEN"));
        // The server is not a service node: that check comes before the caller's.
        assert_eq!(echo(&s, b"local.echo"), refused(b"NOT_A_SERVICE_NODE"));
    }
    {
        let s = dealer(&ctx, &nobody, &server, true);
        expect_whoami(&s, &nobody.public().to_hex(), "none", false);
        assert_eq!(echo(&s, b"basic.echo"), refused(b"FORBIDDEN"));
    }
    // Plain clients are nobody, whatever key their routing id carries.
    for k in [&admin, &sn] {
        let s = dealer(&ctx, k, &server, false);
        expect_whoami(&s, "", "none", false);
        assert_eq!(echo(&s, b"basic.echo"), refused(b"FORBIDDEN"));
        assert_eq!(echo(&s, b"sn.echo"), refused(b"FORBIDDEN_SN"));
    }
}

#[test]
fn service_node_mode_with_a_generated_key_file() {
    let sn = key(20);
    let other = key(21);
    let server = Server::start(&Options {
        service_node: true,
        active_sn: vec![sn.clone()],
        ..Options::default()
    });

    // The key file did not exist: it was created, private, holding the printed key's secret.
    let meta = std::fs::metadata(&server.key_file).expect("key file created");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&server.key_file).unwrap();
    let secret: [u8; 32] =
        lokimq::core::encoding::hex::decode_array(text.trim_end_matches('\n')).unwrap();
    assert_eq!(
        Keypair::from_secret_bytes(secret).public().as_bytes(),
        &server.pubkey
    );

    let ctx = zmq::Context::new();
    let ok = reply(&[b"e"]);
    {
        let s = dealer(&ctx, &sn, &server, true);
        expect_whoami(&s, &sn.public().to_hex(), "none", true);
        assert_eq!(echo(&s, b"local.echo"), ok);
        assert_eq!(echo(&s, b"sn.echo"), ok);
    }
    {
        let s = dealer(&ctx, &other, &server, true);
        expect_whoami(&s, &other.public().to_hex(), "none", false);
        assert_eq!(echo(&s, b"local.echo"), ok);
        assert_eq!(echo(&s, b"sn.echo"), refused(b"FORBIDDEN_SN"));
    }
    {
        let s = dealer(&ctx, &other, &server, false);
        assert_eq!(echo(&s, b"local.echo"), ok);
        assert_eq!(echo(&s, b"sn.echo"), refused(b"FORBIDDEN_SN"));
    }
}

#[test]
fn slow_category_queues_two_and_drops_the_rest() {
    // Own server: nothing else may occupy its two general workers.
    let server = Server::start(&Options::default());
    let ctx = zmq::Context::new();
    let s = dealer(&ctx, &key(30), &server, true);
    // Two run at once (two general workers, no reserved thread), two wait in the queue, and
    // the fifth finds the queue full: dropped without a reply (behaviour.md §3.1, §3.4).
    let tags: Vec<[u8; 1]> = (1..=5u8).map(|i| [i]).collect();
    for t in &tags {
        send(&s, &[b"slow.sleep", t, b"1500"]);
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        let r = recv(&s);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(
            (&r[0][..], &r[2][..]),
            (&b"REPLY"[..], &b"done"[..]),
            "{r:?}"
        );
        got.push(r[1][0]);
    }
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4]);
    // Had the fifth been queued instead, it would finish 1.5 s after the fourth.
    assert!(silent_for(&s, 3_000), "the fifth sleep was answered");
    // The category works again once drained.
    assert_eq!(ask(&s, &[b"slow.sleep", TAG, b"0"]), reply(&[b"done"]));
}

// ---------------------------------------------------------------------------------------------
// transport limits

fn frame_size_limit(curve: bool) {
    let server = Server::start(&Options::default());
    let ctx = zmq::Context::new();
    let name = if curve { "mon-curve" } else { "mon-plain" };
    let mut monitor = None;
    let s = dealer_with(&ctx, &key(40), &server, curve, |s| {
        monitor = Some(monitor_disconnects(&ctx, s, name));
    });
    let monitor = monitor.unwrap();
    assert_eq!(ask(&s, &[b"HI"]), frames(&[b"HELLO"]));

    // libzmq counts the frame as it is on the wire: under CURVE the encrypted MESSAGE body.
    let at_limit = if curve { MIB - CURVE_OVERHEAD } else { MIB };
    let body = vec![0xa5u8; at_limit];
    let r = ask(&s, &[b"public.echo", TAG, &body]);
    assert_eq!(r.len(), 3);
    assert_eq!((&r[0][..], &r[1][..]), (&b"REPLY"[..], TAG));
    assert!(r[2] == body, "the 1 MiB frame came back changed");
    assert!(
        !disconnected_within(&monitor, 0),
        "a frame at the limit closed the connection"
    );

    let over = vec![0x5au8; at_limit + 1];
    send(&s, &[b"public.echo", TAG, &over]);
    assert!(
        disconnected_within(&monitor, 15_000),
        "a frame one byte over 1 MiB did not close the connection"
    );
    // libzmq reconnects by itself; the server is still there and the large frame was dropped.
    assert_eq!(
        ask(&s, &[b"public.echo", TAG, b"after"]),
        reply(&[b"after"])
    );
}

#[test]
fn plain_frames_over_one_mib_close_the_connection() {
    frame_size_limit(false);
}

#[test]
fn curve_frames_count_their_encrypted_size() {
    frame_size_limit(true);
}

#[test]
fn zmtp_1_and_2_peers_are_refused() {
    let server = Server::start(&Options::default());
    let mut zmtp2 = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f];
    // Revision 1 (ZMTP 2.0), socket type DEALER, an empty identity frame.
    zmtp2.extend_from_slice(&[0x01, 0x05, 0x00, 0x00]);
    let mut zmtp1_versioned = zmtp2.clone();
    zmtp1_versioned[10] = 0x00;
    // Unversioned ZMTP 1.0: an identity frame (length 1, flags 0), then a message frame.
    let zmtp1: Vec<u8> = [&[0x01, 0x00][..], &[0x08, 0x00], b"sneaky\0"].concat();
    for port in [server.plain_port, server.curve_port] {
        for (what, hello) in [
            ("ZMTP 2.0", &zmtp2),
            ("ZMTP 1.0 (versioned)", &zmtp1_versioned),
            ("ZMTP 1.0", &zmtp1),
        ] {
            let mut s = raw::connect(port, Duration::from_secs(10));
            // The peer may already have closed by the time the tail of our bytes goes out.
            let _ = s.write_all(hello);
            match raw::read_until_closed(&mut s, Duration::from_secs(10)) {
                End::Closed(n) => assert!(n <= 64, "{what}: {n} bytes before closing"),
                End::StillOpen => panic!("{what} on port {port}: still open after 10 s"),
            }
        }
    }
    // The server survived all of that.
    let ctx = zmq::Context::new();
    let s = dealer(&ctx, &key(50), &server, true);
    assert_eq!(ask(&s, &[b"public.echo", TAG]), reply(&[]));
}

#[test]
fn zmtp_heartbeats_are_answered() {
    let server = Server::start(&Options::default());

    // Raw NULL session: PING (with and without context) gets PONG echoing the context.
    let mut s = raw::connect(server.plain_port, Duration::from_secs(10));
    raw::null_handshake(&mut s, &l_route(key(60).public()));
    for context in [&b""[..], b"ctx-42"] {
        let mut ping = vec![0u8, 0]; // TTL 0: no deadline imposed on the server
        ping.extend_from_slice(context);
        s.write_all(&raw::command("PING", &ping)).unwrap();
        let pong = raw::read_frame(&mut s);
        assert!(pong.command, "{pong:?}");
        let mut want = b"\x04PONG".to_vec();
        want.extend_from_slice(context);
        assert_eq!(pong.body, want);
    }
    // Still a working session afterwards.
    s.write_all(&raw::message(&[b"HI"])).unwrap();
    assert_eq!(raw::read_message(&mut s), frames(&[b"HELLO"]));
    s.write_all(&raw::message(&[b"public.echo", TAG, b"raw"]))
        .unwrap();
    assert_eq!(raw::read_message(&mut s), reply(&[b"raw"]));

    // libzmq over CURVE, pinging every 100 ms and giving up after 2 s without traffic: the
    // server's (encrypted) PONGs keep the connection up.
    let ctx = zmq::Context::new();
    let mut monitor = None;
    let z = dealer_with(&ctx, &key(61), &server, true, |z| {
        z.set_heartbeat_ivl(100).unwrap();
        z.set_heartbeat_timeout(2_000).unwrap();
        monitor = Some(monitor_disconnects(&ctx, z, "mon-heartbeat"));
    });
    let monitor = monitor.unwrap();
    assert_eq!(ask(&z, &[b"HI"]), frames(&[b"HELLO"]));
    assert!(
        !disconnected_within(&monitor, 3_000),
        "libzmq's heartbeat timed out"
    );
    assert_eq!(ask(&z, &[b"public.echo", TAG]), reply(&[]));
}

#[test]
fn silent_connections_are_closed_by_the_handshake_timeout() {
    let server = Server::start(&Options::default());
    let start = Stopwatch::start();
    // Plain: not a byte. CURVE: a greeting and then nothing (no HELLO).
    let mut plain = raw::connect(server.plain_port, Duration::from_secs(20));
    let mut curve = raw::connect(server.curve_port, Duration::from_secs(20));
    curve.write_all(&raw::greeting(b"CURVE")).unwrap();
    for (what, s) in [("plain", &mut plain), ("curve", &mut curve)] {
        let left = Duration::from_secs(20).saturating_sub(start.elapsed());
        match raw::read_until_closed(s, left) {
            // Just the server's greeting, then the close.
            End::Closed(n) => assert!(n <= 64, "{what}: {n} bytes"),
            End::StillOpen => panic!("{what}: still open after 20 s"),
        }
    }
    // A sanity bound only (lower bounds cannot flake): the close came from the 10 s timer.
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "closed after {:?}, too early for the handshake timeout",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// process lifecycle

fn signal_exits_zero(sig: &str) {
    let mut server = Server::start(&Options::default());
    let ctx = zmq::Context::new();
    let s = dealer(&ctx, &key(70), &server, true);
    let p = dealer(&ctx, &key(71), &server, false);
    // A handler busy for a minute must not hold up the exit. The echo behind it on the same
    // connection proves it was dispatched.
    send(&s, &[b"slow.sleep", b"long", b"60000"]);
    assert_eq!(ask(&s, &[b"public.echo", TAG]), reply(&[]));
    assert_eq!(ask(&p, &[b"public.echo", TAG]), reply(&[]));
    // A peer that never closes its end: the server must not wait on it past the deadline.
    let mut idle = raw::connect(server.plain_port, Duration::from_secs(10));
    raw::null_handshake(&mut idle, &l_route(key(72).public()));
    server.proc.signal(sig);
    // The contract says 5 s; the bound here is looser so a loaded machine cannot fail it.
    let status = server
        .proc
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running 15 s after SIG{sig}"));
    assert!(
        status.success(),
        "SIG{sig} → {status}; stderr:\n{}",
        server.proc.stderr()
    );
}

#[test]
fn sigterm_exits_zero() {
    signal_exits_zero("TERM");
}

#[test]
fn sigint_exits_zero() {
    signal_exits_zero("INT");
}

#[test]
fn existing_key_files_with_or_without_a_newline() {
    let dir = tempfile::tempdir().unwrap();
    let kp = key(80);
    let hex = lokimq::core::encoding::hex::encode(kp.secret().to_bytes());
    for (name, content) in [
        ("newline.key", format!("{hex}\n")),
        ("bare.key", hex.clone()),
        ("upper.key", format!("{}\n", hex.to_uppercase())),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let server = Server::start(&Options {
            key_file: Some(path.clone()),
            ..Options::default()
        });
        assert_eq!(&server.pubkey, kp.public().as_bytes(), "{name}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "{name} rewritten"
        );
    }
}

/// Runs the server with `args`; it must exit non-zero (bounded) having printed no pubkey and
/// a message on stderr. Returns the stderr text.
fn expect_refusal(args: &[String]) -> String {
    let mut p = Proc::spawn(args);
    let status = p
        .wait_exit(CHILD_WAIT)
        .unwrap_or_else(|| panic!("{args:?}: still running"));
    assert!(!status.success(), "{args:?} exited {status}");
    assert_eq!(p.next_line(), None, "{args:?} printed on stdout");
    let err = p.stderr();
    assert!(!err.trim().is_empty(), "{args:?}: no message on stderr");
    err
}

fn base_args(key_file: &std::path::Path) -> Vec<String> {
    // Never bound: each of these runs is refused before listening.
    [
        "--curve",
        "tcp://127.0.0.1:1",
        "--plain",
        "tcp://127.0.0.1:2",
        "--key-file",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([key_file.display().to_string()])
    .collect()
}

#[test]
fn malformed_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hex = "ab".repeat(32);
    for (i, content) in [
        String::new(),
        "\n".to_owned(),
        "zz\n".to_owned(),
        hex[..63].to_owned(),
        "g".repeat(64),
        format!("{hex}\n\n"),
        format!(" {hex}"),
        format!("{hex}ab"),
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("bad{i}.key"));
        std::fs::write(&path, content).unwrap();
        let err = expect_refusal(&base_args(&path));
        assert!(err.contains("key file"), "{content:?}: {err}");
        assert_eq!(&std::fs::read_to_string(&path).unwrap(), content);
    }
    // A directory is not a key file either.
    let err = expect_refusal(&base_args(dir.path()));
    assert!(err.contains("key file"), "{err}");
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k.key");
    let good = key(90).public().to_hex();
    let with = |extra: &[&str]| {
        let mut a = base_args(&key_file);
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let cases: Vec<Vec<String>> = vec![
        Vec::new(),
        vec!["--curve".into(), "tcp://127.0.0.1:1".into()],
        with(&["--allow", "zz=basic"]),
        with(&["--allow", &format!("{good}=superuser")]),
        with(&["--allow", &format!("{good}=denied")]),
        with(&["--allow", &good]),
        with(&["--active-sn", &good[..62]]),
        with(&["--active-sn", &"x".repeat(64)]),
        with(&[
            "--allow",
            &format!("{good}=basic"),
            "--allow",
            &format!("{good}=admin"),
        ]),
        with(&["--bogus"]),
        {
            let mut a = base_args(&key_file);
            a[1] = "not-an-address".into();
            a
        },
        {
            let mut a = base_args(&key_file);
            a[3] = "curve://127.0.0.1:2".into();
            a
        },
    ];
    for args in &cases {
        expect_refusal(args);
    }
}

#[test]
fn a_taken_port_is_refused() {
    let server = Server::start(&Options::default());
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(&dir.path().join("k.key"));
    args[1] = server.curve_endpoint();
    args[3] = server.plain_endpoint();
    let err = expect_refusal(&args);
    assert!(err.contains("failed to listen"), "{err}");
}
