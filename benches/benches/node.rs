//! Whole-node costs (issue 4), in memory.
//!
//! * `node_rpc/*/100`: one request→reply with a 100-byte payload (throughput: round trips).
//!   `curve_round_trip` is two `Node`s over CURVE; `null_round_trip` the same over NULL;
//!   `session_exchange` is just the two CURVE sessions carrying the same six frames (no node);
//!   `raw_crypto_floor` seals and opens the six boxes of those frames with raw `crypto_box`.
//! * `node_dispatch/*`: the core's cost to turn one received command into a job. `plain_command`
//!   feeds a pre-encoded `[bench.ping, 100 B]` message to a node's established plain connection
//!   and drains the `RunJob`, answering `JobFinished`; `frame_decode` is the ZMTP decode of those
//!   same bytes alone; `sched_cycle` is one offer → `RunJob` → `job_finished` of the scheduler
//!   alone. Together they bound what dispatch adds on top.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lokimq_benches::node::{ECHO, NodePair, PING, TAG_LEN, round_trip_boxes};
use lokimq_benches::payload;
use lokimq_benches::sched::{SchedLoop, Shape};
use lokimq_benches::session::{Mechanism, SessionPair};
use lokimq_core::zmtp::FrameDecoder;

#[path = "common/config.rs"]
mod config;

#[path = "common/raw.rs"]
mod raw;

use raw::Raw;

const PAYLOAD: usize = 100;

fn rpc(c: &mut Criterion) {
    let mut g = c.benchmark_group("node_rpc");
    g.throughput(Throughput::Elements(1));
    let data = Bytes::from(payload(PAYLOAD));

    let mut r = Raw::new();
    let mut bufs: Vec<Vec<u8>> = round_trip_boxes(PAYLOAD)
        .iter()
        .map(|&n| payload(n))
        .collect();
    g.bench_with_input(
        BenchmarkId::new("raw_crypto_floor", PAYLOAD),
        &PAYLOAD,
        |b, _| {
            b.iter(|| {
                for buf in &mut bufs {
                    let nonce = r.next_nonce();
                    let tag = r.seal(&nonce, black_box(buf));
                    assert!(r.open(&nonce, black_box(buf), &tag));
                }
            });
        },
    );

    let mut sessions = SessionPair::new(Mechanism::Curve).expect("session pair");
    let tag = Bytes::from(vec![0x42; TAG_LEN]);
    let request = vec![
        Bytes::from_static(ECHO.as_bytes()),
        tag.clone(),
        data.clone(),
    ];
    let reply = vec![Bytes::from_static(b"REPLY"), tag, data.clone()];
    g.bench_with_input(
        BenchmarkId::new("session_exchange", PAYLOAD),
        &PAYLOAD,
        |b, _| {
            b.iter(|| {
                black_box(
                    sessions
                        .exchange(request.clone(), reply.clone())
                        .expect("exchange"),
                )
            });
        },
    );

    for (name, mechanism) in [
        ("curve_round_trip", Mechanism::Curve),
        ("null_round_trip", Mechanism::Null),
    ] {
        let mut pair = NodePair::new(mechanism).expect("node pair");
        g.bench_with_input(BenchmarkId::new(name, PAYLOAD), &PAYLOAD, |b, _| {
            b.iter(|| pair.round_trip(vec![data.clone()]).expect("round trip"));
        });
    }
    g.finish();
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("node_dispatch");
    g.throughput(Throughput::Elements(1));

    let mut pair = NodePair::new(Mechanism::Null).expect("node pair");
    let wire = pair
        .capture_send(PING, vec![Bytes::from(payload(PAYLOAD))])
        .expect("capture");
    g.bench_function("plain_command", |b| {
        b.iter(|| pair.feed_command(&wire).expect("dispatch"));
    });

    let mut decoder = FrameDecoder::new(Some(1 << 20));
    g.bench_function("frame_decode", |b| {
        b.iter(|| {
            let mut input = &wire[..];
            while let Some(frame) = decoder.decode(&mut input).expect("decode") {
                black_box(frame);
            }
        });
    });

    let mut sched = SchedLoop::new(Shape {
        categories: 1,
        reserved: 0,
        general: 2,
        in_system: 0,
    })
    .expect("scheduler");
    g.bench_function("sched_cycle", |b| {
        b.iter(|| sched.cycle().expect("cycle"));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config::config();
    targets = rpc, dispatch
}
criterion_main!(benches);
