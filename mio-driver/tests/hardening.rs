//! What an outside probe found by attacking the conformance server, each checked on real
//! sockets: peers that try to forge or flood the log, and shutdown with peers that never close
//! or keep reconnecting. (The routing-id takeover is in `libzmq_app.rs`.)

mod common;
// Shared with the conformance tests, which use the rest of them.
#[allow(dead_code)]
#[path = "conformance/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "conformance/raw.rs"]
mod raw;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::libzmq::l_route;
use harness::{Options, Server};
use lokimq::{AuthLevel, Keypair, LokiMq, Stopwatch};

fn key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

/// A raw plain connection to the conformance server, handshake done.
fn raw_peer(server: &Server, seed: u8) -> TcpStream {
    let mut s = raw::connect(server.plain_port, Duration::from_secs(10));
    raw::null_handshake(&mut s, &l_route(key(seed).public()));
    s
}

/// Lines of the server's stderr that contain `needle`.
fn lines_with<'a>(stderr: &'a str, needle: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(needle)).collect()
}

/// Stops the server and returns everything it wrote on stderr.
fn stop(mut server: Server) -> String {
    server.proc.signal("TERM");
    let status = server.proc.wait_exit(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    server.proc.stderr()
}

#[test]
fn a_peer_cannot_forge_or_flood_log_lines() {
    let server = Server::start(&Options::default());
    let mut peer = raw_peer(&server, 90);
    // Replies are read as they come; fewer messages than the server's send high-water mark
    // (1000), so none of the replies is dropped even while the big one is being read.
    let mut replies = peer.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        (0..502)
            .map(|_| raw::read_message(&mut replies)[0].clone())
            .filter(|w| w == b"UNKNOWNCOMMAND")
            .count()
    });
    let clock = Stopwatch::start();
    // A command name that carries a line of its own, then one of nearly a mebibyte, then a
    // flood of unknown commands: each is answered UNKNOWNCOMMAND and logged (OxenMQ warns).
    peer.write_all(&raw::message(&[b"nope.x\nERROR forged line", b"tag"]))
        .unwrap();
    let huge = vec![b'z'; 1000 * 1024];
    peer.write_all(&raw::message(&[&huge])).unwrap();
    for i in 0..500u32 {
        peer.write_all(&raw::message(&[format!("nope.{i}").as_bytes()]))
            .unwrap();
    }
    // Every one of them is answered, so the server has seen them all when the last arrives.
    // (Answering them all used to overflow the server's stack: see `hostile_input.rs`.)
    assert_eq!(reader.join().unwrap(), 502);
    let secs = clock.elapsed().as_secs() + 1;
    let stderr = stop(server);
    assert!(
        !stderr.lines().any(|l| l.starts_with("ERROR forged line")),
        "a peer forged a log line:\n{stderr}"
    );
    assert!(
        stderr.contains("nope.x\\nERROR forged line"),
        "the bad name is logged, escaped:\n{stderr}"
    );
    let longest = stderr.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1024, "a {longest}-byte log line");
    let invalid = lines_with(&stderr, "Invalid command");
    // One line per second per peer and reason (plus the first), whatever the peer sends.
    assert!(
        invalid.len() as u64 <= secs + 1,
        "{} lines in {secs} s:\n{stderr}",
        invalid.len()
    );
    assert!(
        !stderr.contains("\u{1b}["),
        "colour codes in a log that is not a terminal"
    );
}

#[test]
fn a_flood_of_dropped_commands_logs_one_line_a_second_naming_the_command() {
    let server = Server::start(&Options::default());
    let mut peer = raw_peer(&server, 91);
    let clock = Stopwatch::start();
    // `slow` runs two and queues two; everything else is dropped (the contract), and each drop
    // used to be a log line.
    for i in 0..3000u32 {
        let tag = i.to_be_bytes();
        peer.write_all(&raw::message(&[b"slow.sleep", &tag, b"300"]))
            .unwrap();
    }
    // The four that ran answer; then the server has seen every drop.
    for _ in 0..4 {
        assert_eq!(raw::read_message(&mut peer)[0], b"REPLY");
    }
    let secs = clock.elapsed().as_secs() + 1;
    let stderr = stop(server);
    let drops = lines_with(&stderr, "No space to queue");
    assert!(!drops.is_empty(), "drops are still reported:\n{stderr}");
    assert!(
        drops.len() as u64 <= secs + 1,
        "{} drop lines in {secs} s:\n{stderr}",
        drops.len()
    );
    assert!(
        drops[0].contains("slow.sleep"),
        "the line names the command: {}",
        drops[0]
    );
}

#[test]
fn shutdown_is_prompt_with_idle_peers_that_never_close() {
    let mut server = Server::start(&Options::default());
    // Peers that completed the handshake and then neither send nor close: shutdown used to
    // wait for their end of stream until the example's 3 s deadline.
    let idle: Vec<TcpStream> = (0..20).map(|i| raw_peer(&server, 100 + i)).collect();
    let clock = Stopwatch::start();
    server.proc.signal("TERM");
    let status = server
        .proc
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits");
    let took = clock.elapsed();
    assert!(status.success(), "{status}");
    // The target is 100 ms; the bound leaves room for a loaded test machine.
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    drop(idle);
}

#[test]
fn no_connection_is_accepted_once_shutdown_starts() {
    // A handler that holds shutdown up for a while: meanwhile the listener must be closed.
    let (started_tx, started) = std::sync::mpsc::channel();
    let mut b = LokiMq::builder();
    b.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_command("slow", "hold", move |_| {
            let _ = started_tx.send(());
            std::thread::sleep(Duration::from_millis(800));
        })
        .unwrap()
        .listen_plain(common::loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let node = b.start().unwrap();
    let addr = node.bound_addresses()[0].clone();
    let port = addr.port().unwrap();
    let client = common::builder().start().unwrap();
    let conn = common::connect(client.handle(), &addr);
    client
        .handle()
        .send(&conn, "slow.hold", lokimq::NO_DATA)
        .unwrap();
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the handler started");
    let stopping = std::thread::spawn(move || drop(node));
    std::thread::sleep(Duration::from_millis(200));
    let refused = TcpStream::connect(("127.0.0.1", port));
    assert!(
        refused.is_err(),
        "a connection was accepted while shutting down"
    );
    stopping.join().unwrap();
}
