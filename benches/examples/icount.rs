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
//! With a fourth argument `setup-only` the program prepares everything for `iters` units and
//! runs none: `scripts/bench` subtracts the CPU time of such a run from a full one to get the
//! CPU time of the units alone (process CPU time does not count the time other processes hold
//! the core, unlike wall-clock time).
//!
//! Workloads (`SIZE` is the payload; the others ignore it):
//! `raw-seal`, `codec-seal`, `session-send`, `raw-open`, `codec-open`, `raw-seal-open`,
//! `session-pair`, `rt-crypto-floor`, `session-exchange`, `node-rt-curve`, `node-rt-null`,
//! `dispatch`, `frame-decode`, `sched-queued-cC-rR` (C categories, R reserved each),
//! `sched-immediate`, `fifo`; and the crypto provider's own box, `prov-seal`, `prov-open`,
//! `prov-seal-open` (full 24-byte nonce, HSalsa20 per box) and `prov-sub-seal`,
//! `prov-sub-seal-open` (the MESSAGE codec's path: the prefix's subkey precomputed, 8-byte
//! nonce per box). `poly-donna` and `poly-simd` are FastCrypto's Poly1305 alone over SIZE
//! bytes, donna-64 only and the vectorised code on every whole step (64 B, 128 B with AVX2;
//! the crossover measurement); `poly-auto` is its default choice.
//!
//! The CURVE workloads run on the RustCrypto provider; a suffix picks another: `@fast`
//! (FastCrypto) or `@rust` (`codec-seal@fast`, `prov-seal@fast`). The `raw-*` workloads are
//! always the `crypto_box` crate.

use std::hint::black_box;
use std::process::ExitCode;

use bytes::{Bytes, BytesMut};
use lokimq_benches::codec::{Opener, codec_pair_with, seal_frame, sealed_stream};
use lokimq_benches::node::{ECHO, NodePair, PING, TAG_LEN, round_trip_boxes};
use lokimq_benches::sched::{FifoLoop, SchedLoop, Shape};
use lokimq_benches::session::{Mechanism, SessionPair};
use lokimq_benches::{HarnessError, RUST, payload, provider_named};
use lokimq_core::zmtp::FrameDecoder;

#[path = "../benches/common/raw.rs"]
mod raw;

use raw::{ProviderRaw, Raw};

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

/// Prepares `iters` units of `workload` and runs `units` of them (`iters` or 0).
fn run(workload: &str, size: usize, iters: usize, units: usize) -> Result<(), HarnessError> {
    let data = Bytes::from(payload(size));
    let (workload, provider) = match workload.split_once('@') {
        Some((w, p)) => (
            w,
            provider_named(p)
                .ok_or_else(|| HarnessError::Unexpected(format!("unknown provider {p}")))?,
        ),
        None => (workload, RUST),
    };
    match workload {
        "poly-donna" | "poly-simd" | "poly-auto" => {
            let simd_from = match workload {
                "poly-donna" => usize::MAX,
                "poly-simd" => 0,
                _ => lokimq_core::crypto::FAST_POLY1305_SIMD_FROM,
            };
            let msg = payload(size);
            let mut key = [7u8; 32];
            measured(units, || {
                let tag = lokimq_core::crypto::fast_poly1305(&key, black_box(&msg), simd_from);
                key[..16].copy_from_slice(&tag);
                Ok(())
            })?;
            black_box(key);
            Ok(())
        }
        "prov-sub-seal" => {
            let mut r = ProviderRaw::new(provider);
            let mut buf = payload(size);
            measured(units, || {
                let nonce = r.next_nonce();
                black_box(r.seal_sub(&nonce, black_box(&mut buf)));
                Ok(())
            })
        }
        "prov-sub-seal-open" => {
            let mut r = ProviderRaw::new(provider);
            let mut buf = payload(size);
            measured(units, || {
                let nonce = r.next_nonce();
                let tag = r.seal_sub(&nonce, black_box(&mut buf));
                if r.open_sub(&nonce, black_box(&mut buf), &tag) {
                    Ok(())
                } else {
                    Err(HarnessError::Unexpected("provider open failed".into()))
                }
            })
        }
        "prov-seal" => {
            let mut r = ProviderRaw::new(provider);
            let mut buf = payload(size);
            measured(units, || {
                let nonce = r.next_nonce();
                black_box(r.seal(&nonce, black_box(&mut buf)));
                Ok(())
            })
        }
        "prov-open" => {
            let mut r = ProviderRaw::new(provider);
            let mut inputs: Vec<_> = (0..iters)
                .map(|_| raw::provider_sealed(&mut r, size))
                .collect();
            let mut it = inputs.iter_mut();
            measured(units, || {
                let (nonce, buf, tag) = it
                    .next()
                    .ok_or_else(|| HarnessError::Unexpected("out of inputs".into()))?;
                if r.open(nonce, buf, tag) {
                    Ok(())
                } else {
                    Err(HarnessError::Unexpected("provider open failed".into()))
                }
            })
        }
        "prov-seal-open" => {
            let mut r = ProviderRaw::new(provider);
            let mut buf = payload(size);
            measured(units, || {
                let nonce = r.next_nonce();
                let tag = r.seal(&nonce, black_box(&mut buf));
                if r.open(&nonce, black_box(&mut buf), &tag) {
                    Ok(())
                } else {
                    Err(HarnessError::Unexpected("provider open failed".into()))
                }
            })
        }
        "raw-seal" => {
            let mut r = Raw::new();
            let mut buf = payload(size);
            measured(units, || {
                let nonce = r.next_nonce();
                black_box(r.seal(&nonce, black_box(&mut buf)));
                Ok(())
            })
        }
        "codec-seal" => {
            let (mut codec, _) = codec_pair_with(provider)?;
            let p = payload(size);
            let mut out = BytesMut::new();
            measured(units, || {
                out.clear();
                seal_frame(&mut codec, 0, black_box(&p), &mut out)?;
                black_box(&out);
                Ok(())
            })
        }
        "session-send" => {
            let mut pair = SessionPair::with_provider(Mechanism::Curve, provider)?;
            measured(units, || {
                black_box(pair.client_send(vec![data.clone()])?);
                Ok(())
            })
        }
        "raw-open" => {
            let mut r = Raw::new();
            let mut inputs: Vec<_> = (0..iters).map(|_| raw::sealed(&mut r, size)).collect();
            let mut it = inputs.iter_mut();
            measured(units, || {
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
            let (mut client, server) = codec_pair_with(provider)?;
            let stream = sealed_stream(&mut client, &payload(size), iters)?;
            let mut opener = Opener::new(server);
            let mut input = &stream[..];
            measured(units, || {
                let (flags, body) = opener.open(&mut input)?;
                black_box((flags, body.len()));
                Ok(())
            })
        }
        "raw-seal-open" => {
            let mut r = Raw::new();
            let mut buf = payload(size);
            measured(units, || {
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
            let mut pair = SessionPair::with_provider(Mechanism::Curve, provider)?;
            measured(units, || {
                black_box(pair.client_to_server(vec![data.clone()])?);
                Ok(())
            })
        }
        "rt-crypto-floor" => {
            let mut r = Raw::new();
            let mut bufs: Vec<Vec<u8>> =
                round_trip_boxes(size).iter().map(|&n| payload(n)).collect();
            measured(units, || {
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
            let mut pair = SessionPair::with_provider(Mechanism::Curve, provider)?;
            let tag = Bytes::from(vec![0x42; TAG_LEN]);
            let request = vec![
                Bytes::from_static(ECHO.as_bytes()),
                tag.clone(),
                data.clone(),
            ];
            let reply = vec![Bytes::from_static(b"REPLY"), tag, data];
            measured(units, || {
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
            let mut pair = NodePair::with_provider(mechanism, provider)?;
            measured(units, || pair.round_trip(vec![data.clone()]))
        }
        "dispatch" => {
            let mut pair = NodePair::new(Mechanism::Null)?;
            let wire = pair.capture_send(PING, vec![data])?;
            measured(units, || pair.feed_command(&wire))
        }
        "frame-decode" => {
            let mut pair = NodePair::new(Mechanism::Null)?;
            let wire = pair.capture_send(PING, vec![data])?;
            let mut decoder = FrameDecoder::new(Some(1 << 20));
            measured(units, || {
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
            measured(units, || l.cycle())
        }
        "fifo" => {
            let mut f = FifoLoop::new(64);
            measured(units, || {
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
            measured(units, || l.cycle())
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
    let (numbers, setup_only) = match args.as_slice() {
        [_, workload, size, iters] => (Some((workload, size, iters)), false),
        [_, workload, size, iters, flag] if flag == "setup-only" => {
            (Some((workload, size, iters)), true)
        }
        _ => (None, false),
    };
    let parsed = numbers.and_then(|(workload, size, iters)| {
        Some((workload.as_str(), size.parse().ok()?, iters.parse().ok()?))
    });
    let Some((workload, size, iters)) = parsed else {
        eprintln!(
            "usage: icount WORKLOAD SIZE ITERS [setup-only] (see the source for the workloads)"
        );
        return ExitCode::from(2);
    };
    let units = if setup_only { 0 } else { iters };
    match run(workload, size, iters, units) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("icount {workload}: {e}");
            ExitCode::FAILURE
        }
    }
}
