//! Fairness between connections under load, on real sockets against the conformance server
//! (docs/reliability.md, issue 14): one peer flooding a category must not take the queue from
//! a well-behaved peer, and one peer streaming mebibyte frames must not hold the server up for
//! the others. The two tests run one at a time: each loads both cores on its own.

mod common;
// Shared with the conformance tests, which use the rest of them.
#[allow(dead_code)]
#[path = "conformance/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "conformance/raw.rs"]
mod raw;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::libzmq::{dealer_socket, l_route};
use harness::{Options, Server};
use lokimq::{Address, Bytes, Keypair, PublicKey, RequestError, Stopwatch};

/// The tests of this file, one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

/// A raw plain connection to the conformance server, handshake done.
fn raw_peer(server: &Server, seed: u8) -> TcpStream {
    let mut s = raw::connect(server.plain_port, Duration::from_secs(10));
    raw::null_handshake(&mut s, &l_route(key(seed).public()));
    s
}

/// Reads one message (skipping commands) if it arrives within the stream's read timeout;
/// `None` on a timeout.
fn read_message_or_timeout(s: &mut TcpStream) -> Option<Vec<Vec<u8>>> {
    let mut parts = Vec::new();
    loop {
        let mut head = [0u8; 2];
        match s.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(e) => panic!("reading a reply: {e}"),
        }
        let (flags, size) = if head[0] & 0x02 != 0 {
            let mut rest = [0u8; 7];
            s.read_exact(&mut rest).expect("a long frame size");
            let mut b = [0u8; 8];
            b[0] = head[1];
            b[1..].copy_from_slice(&rest);
            (head[0], usize::try_from(u64::from_be_bytes(b)).unwrap())
        } else {
            (head[0], usize::from(head[1]))
        };
        assert!(size <= 2 << 20, "implausible frame size {size}");
        let mut body = vec![0u8; size];
        s.read_exact(&mut body).expect("a frame body");
        if flags & 0x04 != 0 {
            continue; // a command (heartbeat)
        }
        parts.push(body);
        if flags & 0x01 == 0 {
            return Some(parts);
        }
    }
}

/// Issue 14, finding 2: one peer floods `slow.sleep` (two workers, a queue of two) and never
/// reads; another peer's `slow.sleep` requests, one at a time, must all be answered. The
/// flooder's commands reach the full queue first on every turn, so before the fair-drop rule
/// the other peer's requests were the ones dropped (it got almost none answered).
#[test]
fn a_flooding_peer_cannot_take_a_queue_from_a_well_behaved_one() {
    let _serial = serial();
    let server = Server::start(&Options::default());
    let mut flooder = raw_peer(&server, 40);
    let mut client = raw_peer(&server, 41);
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();

    // The flooder writes as fast as the server reads (it drops what does not fit), for as
    // long as the client asks, bounded at 30 s; it never reads its replies.
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let clock = Stopwatch::start();
            let mut batch = Vec::new();
            for i in 0..64u32 {
                batch.extend(raw::message(&[b"slow.sleep", &i.to_be_bytes(), b"50"]));
            }
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && clock.elapsed() < Duration::from_secs(30) {
                if flooder.write_all(&batch).is_err() {
                    break;
                }
                sent += 64;
            }
            sent
        })
    };
    // Let the flood fill the queue first.
    std::thread::sleep(Duration::from_millis(300));

    // The client asks 20 times, each request waited for up to 3 s (a dropped one never gets
    // an answer), all of it bounded at 20 s.
    let clock = Stopwatch::start();
    let (mut asked, mut answered) = (0u32, 0u32);
    while asked < 20 && clock.elapsed() < Duration::from_secs(20) {
        let tag = (1000 + asked).to_be_bytes();
        client
            .write_all(&raw::message(&[b"slow.sleep", &tag, b"0"]))
            .unwrap();
        asked += 1;
        if let Some(reply) = read_message_or_timeout(&mut client) {
            assert_eq!(
                reply,
                vec![b"REPLY".to_vec(), tag.to_vec(), b"done".to_vec()]
            );
            answered += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = flooding.join().unwrap();
    assert!(sent > 10_000, "the flooder only sent {sent} requests");
    // The target is 99 %: with 20 requests, every one.
    assert_eq!(
        answered, asked,
        "the well-behaved peer got {answered} of {asked} answered next to a flood of {sent}"
    );
}

/// Issue 14, finding 3: while one peer streams echoes of 1,048,000 B over CURVE with eight in
/// flight, another peer's 100 B echoes must wait for about one turn's work, not for the
/// streamer's whole backlog. The server bounds what one connection costs a turn (one 64 KiB
/// read; the calls workers post stop once a turn has queued 256 KiB, about one large reply's
/// sealing), so a small echo is read and answered between the streamer's mebibytes.
///
/// Measured against the streamer's own round trip rather than in milliseconds, so the test
/// means the same on a fast machine and on a loaded debug build: the streamer's median round
/// trip is the time the server takes for eight mebibyte echoes, and the small echoes' 99th
/// percentile must stay under half of it. Before the fix (`8af35ee`'s proxy: 256 KiB reads,
/// re-read in the same turn, every posted reply sealed in one turn) the small echoes waited
/// behind the whole backlog, and longer the more the streamer had in flight: p99 0.81-1.75x
/// the streamer's median (four runs, loaded and idle machine, debug build). After: 0.12-0.20x
/// (eight runs), whatever the window. Figures in docs/reliability.md, "Tests".
///
/// The streamer is a lokimq node: with a libzmq streamer over CURVE the test measured libzmq's
/// vendored TweetNaCl, unoptimised in test builds (p99 230-310 ms for the old proxy and the
/// new alike); the small echoes come from a real libzmq DEALER over CURVE.
#[test]
fn a_peer_streaming_mebibyte_frames_does_not_hold_up_the_others() {
    let _serial = serial();
    let server = Server::start(&Options::default());
    let addr: Address = format!(
        "curve://127.0.0.1:{}/{}",
        server.curve_port,
        PublicKey::from_bytes(server.pubkey).to_hex()
    )
    .parse()
    .unwrap();
    let node = common::builder().start().unwrap();
    let handle = node.handle().clone();
    let conn = common::connect(&handle, &addr);
    let ctx = zmq::Context::new();
    let client = dealer_socket(&ctx, &key(51), Some(&server.pubkey), true);
    client.connect(&server.curve_endpoint()).unwrap();
    client
        .send_multipart([&b"public.echo"[..], b"t", b"x"], 0)
        .unwrap();
    assert_eq!(client.recv_multipart(0).unwrap()[2], b"x");

    const IN_FLIGHT: usize = 8;
    const BIG: usize = 1_048_000;
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let big = Bytes::from(vec![0x5a_u8; BIG]);
            let (done, replies) = mpsc::channel::<(Duration, Result<usize, RequestError>)>();
            let send = || {
                let (done, clock) = (done.clone(), Stopwatch::start());
                handle
                    .request(
                        &conn,
                        "public.echo",
                        [Bytes::from_static(b"t"), big.clone()],
                        {
                            move |r| {
                                let size = r.map(|parts| parts.get(1).map_or(0, Bytes::len));
                                let _ = done.send((clock.elapsed(), size));
                            }
                        },
                    )
                    .unwrap();
            };
            for _ in 0..IN_FLIGHT {
                send();
            }
            // Bounded: the main thread stops it after its echoes, 60 s at most.
            let clock = Stopwatch::start();
            let mut round_trips = Vec::new();
            while !stop.load(Ordering::Relaxed) && clock.elapsed() < Duration::from_secs(60) {
                let (took, size) = replies
                    .recv_timeout(Duration::from_secs(20))
                    .expect("a streamed echo within 20 s");
                assert_eq!(size, Ok(BIG), "a streamed echo");
                round_trips.push(took);
                send();
            }
            round_trips
        })
    };
    // Let the stream fill its window.
    std::thread::sleep(Duration::from_millis(1000));

    // 200 small echoes, 5 ms apart, each timed.
    let payload = [0x42_u8; 100];
    let mut waits = Vec::new();
    for i in 0..200u32 {
        let tag = i.to_be_bytes();
        let clock = Stopwatch::start();
        client
            .send_multipart([&b"public.echo"[..], &tag, &payload], 0)
            .unwrap();
        let reply = client.recv_multipart(0).expect("a small echo back");
        waits.push(clock.elapsed());
        assert_eq!(
            reply,
            vec![b"REPLY".to_vec(), tag.to_vec(), payload.to_vec()]
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let mut round_trips = streaming.join().unwrap();
    assert!(
        round_trips.len() >= 2 * IN_FLIGHT,
        "the stream stalled: {} echoes",
        round_trips.len()
    );
    round_trips.sort();
    waits.sort();
    let big_p50 = round_trips[round_trips.len() / 2];
    let p50 = waits[waits.len() / 2];
    let p99 = waits[waits.len() * 99 / 100];
    eprintln!(
        "small echoes next to {} streamed mebibytes ({IN_FLIGHT} in flight, their round trip \
         p50 {big_p50:?}): p50 {p50:?}, p99 {p99:?}, max {:?}",
        round_trips.len(),
        waits[waits.len() - 1]
    );
    assert!(
        p99 < big_p50 / 2,
        "small echoes waited behind the stream's backlog: p99 {p99:?} (p50 {p50:?}) against \
         the streamer's round trip of {big_p50:?} for {IN_FLIGHT} mebibytes"
    );
}
