//! Instruction counts of the benchmarked units, for `valgrind --tool=callgrind`.
//!
//! Wall-clock benchmarks on a shared machine are noisy; instruction counts are not. This
//! program sets a harness up, then runs `iters` units of one workload inside [`measured`], the
//! only function callgrind collects in (`--collect-atstart=no --toggle-collect=*measured*`), so
//! setup (handshakes, pre-sealed inputs) is excluded. `scripts/bench` divides the count by
//! `iters`.
//!
//! ```text
//! cargo build --profile bench -p lokimq-benches --example icount
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!     --toggle-collect='*measured*' target/release/examples/icount codec-seal 1024 1000
//! ```
//!
//! Workloads (`SIZE` is the payload; the others ignore it):
//! `raw-seal`, `codec-seal`, `session-send`, `raw-open`, `codec-open`, `raw-seal-open`,
//! `session-pair`, `rt-crypto-floor`, `session-exchange`, `node-rt-curve`, `node-rt-null`,
//! `dispatch`, `frame-decode`, `sched-queued-cC-rR` (C categories, R reserved each),
//! `sched-immediate`, `fifo`.

use std::hint::black_box;
use std::process::ExitCode;

use bytes::{Bytes, BytesMut};
use lokimq_benches::codec::{Opener, codec_pair, seal_frame, sealed_stream};
use lokimq_benches::node::{ECHO, NodePair, PING, TAG_LEN, round_trip_boxes};
use lokimq_benches::sched::{FifoLoop, SchedLoop, Shape};
use lokimq_benches::session::{Mechanism, SessionPair};
use lokimq_benches::{HarnessError, payload};
use lokimq_core::zmtp::FrameDecoder;

#[path = "../benches/common/raw.rs"]
mod raw;

use raw::Raw;

/// Runs `unit` `iters` times. Never inlined, so callgrind can switch collection on around it.
#[inline(never)]
fn measured(
    iters: usize,
    mut unit: impl FnMut() -> Result<(), HarnessError>,
) -> Result<(), HarnessError> {
    for _ in 0..iters {
        unit()?;
    }
    Ok(())
}

fn run(workload: &str, size: usize, iters: usize) -> Result<(), HarnessError> {
    let data = Bytes::from(payload(size));
    match workload {
        "raw-seal" => {
            let mut r = Raw::new();
            let mut buf = payload(size);
            measured(iters, || {
                let nonce = r.next_nonce();
                black_box(r.seal(&nonce, black_box(&mut buf)));
                Ok(())
            })
        }
        "codec-seal" => {
            let (mut codec, _) = codec_pair()?;
            let p = payload(size);
            let mut out = BytesMut::new();
            measured(iters, || {
                out.clear();
                seal_frame(&mut codec, 0, black_box(&p), &mut out)?;
                black_box(&out);
                Ok(())
            })
        }
        "session-send" => {
            let mut pair = SessionPair::new(Mechanism::Curve)?;
            measured(iters, || {
                black_box(pair.client_send(vec![data.clone()])?);
                Ok(())
            })
        }
        "raw-open" => {
            let mut r = Raw::new();
            let mut inputs: Vec<_> = (0..iters).map(|_| raw::sealed(&mut r, size)).collect();
            let mut it = inputs.iter_mut();
            measured(iters, || {
                let (nonce, buf, tag) = it
                    .next()
                    .ok_or_else(|| HarnessError::Unexpected("out of inputs".into()))?;
                if r.open(nonce, buf, tag) {
                    Ok(())
                } else {
                    Err(HarnessError::Unexpected("raw open failed".into()))
                }
            })
        }
        "codec-open" => {
            let (mut client, server) = codec_pair()?;
            let stream = sealed_stream(&mut client, &payload(size), iters)?;
            let mut opener = Opener::new(server);
            let mut input = &stream[..];
            measured(iters, || {
                let (flags, body) = opener.open(&mut input)?;
                black_box((flags, body.len()));
                Ok(())
            })
        }
        "raw-seal-open" => {
            let mut r = Raw::new();
            let mut buf = payload(size);
            measured(iters, || {
                let nonce = r.next_nonce();
                let tag = r.seal(&nonce, black_box(&mut buf));
                if r.open(&nonce, black_box(&mut buf), &tag) {
                    Ok(())
                } else {
                    Err(HarnessError::Unexpected("raw open failed".into()))
                }
            })
        }
        "session-pair" => {
            let mut pair = SessionPair::new(Mechanism::Curve)?;
            measured(iters, || {
                black_box(pair.client_to_server(vec![data.clone()])?);
                Ok(())
            })
        }
        "rt-crypto-floor" => {
            let mut r = Raw::new();
            let mut bufs: Vec<Vec<u8>> =
                round_trip_boxes(size).iter().map(|&n| payload(n)).collect();
            measured(iters, || {
                for buf in &mut bufs {
                    let nonce = r.next_nonce();
                    let tag = r.seal(&nonce, black_box(buf));
                    if !r.open(&nonce, black_box(buf), &tag) {
                        return Err(HarnessError::Unexpected("raw open failed".into()));
                    }
                }
                Ok(())
            })
        }
        "session-exchange" => {
            let mut pair = SessionPair::new(Mechanism::Curve)?;
            let tag = Bytes::from(vec![0x42; TAG_LEN]);
            let request = vec![
                Bytes::from_static(ECHO.as_bytes()),
                tag.clone(),
                data.clone(),
            ];
            let reply = vec![Bytes::from_static(b"REPLY"), tag, data];
            measured(iters, || {
                black_box(pair.exchange(request.clone(), reply.clone())?);
                Ok(())
            })
        }
        "node-rt-curve" | "node-rt-null" => {
            let mechanism = if workload == "node-rt-curve" {
                Mechanism::Curve
            } else {
                Mechanism::Null
            };
            let mut pair = NodePair::new(mechanism)?;
            measured(iters, || pair.round_trip(vec![data.clone()]))
        }
        "dispatch" => {
            let mut pair = NodePair::new(Mechanism::Null)?;
            let wire = pair.capture_send(PING, vec![data])?;
            measured(iters, || pair.feed_command(&wire))
        }
        "frame-decode" => {
            let mut pair = NodePair::new(Mechanism::Null)?;
            let wire = pair.capture_send(PING, vec![data])?;
            let mut decoder = FrameDecoder::new(Some(1 << 20));
            measured(iters, || {
                let mut input = &wire[..];
                while let Some(frame) = decoder.decode(&mut input)? {
                    black_box(frame);
                }
                Ok(())
            })
        }
        "sched-immediate" => {
            let mut l = SchedLoop::new(Shape {
                categories: 1,
                reserved: 0,
                general: 8,
                in_system: 0,
            })?;
            measured(iters, || l.cycle())
        }
        "fifo" => {
            let mut f = FifoLoop::new(64);
            measured(iters, || {
                f.cycle();
                Ok(())
            })?;
            black_box(f.checksum());
            Ok(())
        }
        other => {
            let Some((categories, reserved)) = parse_sched(other) else {
                return Err(HarnessError::Unexpected(format!(
                    "unknown workload {other}"
                )));
            };
            let mut l = SchedLoop::new(Shape {
                categories,
                reserved,
                general: 8,
                in_system: usize::from(8 + categories * reserved) + 64,
            })?;
            measured(iters, || l.cycle())
        }
    }
}

/// `sched-queued-c64-r1` → (64, 1).
fn parse_sched(workload: &str) -> Option<(u16, u16)> {
    let rest = workload.strip_prefix("sched-queued-c")?;
    let (c, r) = rest.split_once("-r")?;
    Some((c.parse().ok()?, r.parse().ok()?))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, workload, size, iters] => size
            .parse::<usize>()
            .ok()
            .zip(iters.parse::<usize>().ok())
            .map(|(s, i)| (workload.as_str(), s, i)),
        _ => None,
    };
    let Some((workload, size, iters)) = parsed else {
        eprintln!("usage: icount WORKLOAD SIZE ITERS (see the source for the workloads)");
        return ExitCode::from(2);
    };
    match run(workload, size, iters) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("icount {workload}: {e}");
            ExitCode::FAILURE
        }
    }
}
