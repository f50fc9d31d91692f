//! CURVE MESSAGE codec against raw `crypto_box` (issue 3).
//!
//! Groups (each size is one criterion input, throughput in payload bytes):
//!
//! * `curve_seal/{raw_salsabox,raw_salsabox_alloc,codec_frame,session_send}/N`:
//!   raw in-place seal; raw seal into a fresh `Vec` (the `Aead::encrypt` shape); the codec's
//!   frame header + `seal_bytes` into a reused buffer; and `Session::send` of a one-frame
//!   message with the drain of its output.
//! * `curve_open/{raw_salsabox,codec_frame}/N`: raw in-place open of a fresh box; the session's
//!   `FrameDecoder` + `CurveCodec::open_bytes` on a fresh wire frame. Inputs are prepared
//!   outside the timing (every MESSAGE nonce is single-use).
//! * `curve_session/{raw_seal_open,session_pair}/N`: raw seal + open of one box, against a
//!   whole CURVE session pair carrying one message (send, frame, seal, decode, open, assemble).
//!
//! The groups above run CURVE on the RustCrypto provider, the primitive `crypto_box` wraps, so
//! they measure the codec's overhead. The crypto providers side by side:
//!
//! * `provider_seal/{raw_salsabox,rustcrypto,fastcrypto}/N` and `provider_open/…/N`: one box
//!   sealed (opened) in place with the precomputed key, by `crypto_box` and through each
//!   provider's `seal_in_place` (`open_in_place`); `…/{rustcrypto,fastcrypto}_subkey/N` through
//!   `seal_in_place_sub` (`open_in_place_sub`) with the MESSAGE prefix's subkey precomputed, the
//!   MESSAGE codec's path.
//! * `provider_session/{raw_seal_open,rustcrypto,fastcrypto}/N`: a CURVE session pair
//!   carrying one message on each provider, against raw `crypto_box` seal + open.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lokimq_benches::codec::{Opener, codec_pair, seal_frame};
use lokimq_benches::session::{Mechanism, SessionPair};
use lokimq_benches::{FAST, RUST, SIZES, payload};

#[path = "common/config.rs"]
mod config;

#[path = "common/raw.rs"]
mod raw;

use raw::{ProviderRaw, Raw};

/// The providers compared, by benchmark name.
const PROVIDERS: [(&str, &dyn lokimq_core::crypto::CryptoProvider); 2] =
    [("rustcrypto", RUST), ("fastcrypto", FAST)];

fn seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("curve_seal");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let p = payload(size);

        let mut r = Raw::new();
        let mut buf = p.clone();
        g.bench_with_input(BenchmarkId::new("raw_salsabox", size), &size, |b, _| {
            b.iter(|| {
                let nonce = r.next_nonce();
                black_box(r.seal(&nonce, black_box(&mut buf)))
            });
        });

        let mut r = Raw::new();
        g.bench_with_input(
            BenchmarkId::new("raw_salsabox_alloc", size),
            &size,
            |b, _| {
                b.iter(|| {
                    let nonce = r.next_nonce();
                    black_box(r.seal_to_vec(&nonce, black_box(&p)))
                });
            },
        );

        let (mut codec, _) = codec_pair().expect("CURVE handshake");
        let mut out = BytesMut::new();
        g.bench_with_input(BenchmarkId::new("codec_frame", size), &size, |b, _| {
            b.iter(|| {
                out.clear();
                seal_frame(&mut codec, 0, black_box(&p), &mut out).expect("seal");
                black_box(&out);
            });
        });

        let mut pair = SessionPair::new(Mechanism::Curve).expect("session pair");
        let msg = Bytes::from(p.clone());
        g.bench_with_input(BenchmarkId::new("session_send", size), &size, |b, _| {
            b.iter(|| black_box(pair.client_send(vec![msg.clone()]).expect("send")));
        });
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("curve_open");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));

        let mut r = Raw::new();
        let (nonce, ct, tag) = raw::sealed(&mut r, size);
        g.bench_with_input(BenchmarkId::new("raw_salsabox", size), &size, |b, _| {
            b.iter_batched_ref(
                || ct.clone(),
                |buf| assert!(r.open(&nonce, buf, &tag)),
                BatchSize::SmallInput,
            );
        });

        let (mut client, server) = codec_pair().expect("CURVE handshake");
        let mut opener = Opener::new(server);
        let p = payload(size);
        g.bench_with_input(BenchmarkId::new("codec_frame", size), &size, |b, _| {
            b.iter_batched_ref(
                || {
                    let mut wire = BytesMut::new();
                    seal_frame(&mut client, 0, &p, &mut wire).expect("seal");
                    wire.to_vec()
                },
                |wire| {
                    let mut input = &wire[..];
                    let (flags, body) = opener.open(&mut input).expect("open");
                    // The payload is consumed (and freed) at once, as a handler would.
                    black_box((flags, body.len()))
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("curve_session");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));

        let mut r = Raw::new();
        let mut buf = payload(size);
        g.bench_with_input(BenchmarkId::new("raw_seal_open", size), &size, |b, _| {
            b.iter(|| {
                let nonce = r.next_nonce();
                let tag = r.seal(&nonce, black_box(&mut buf));
                assert!(r.open(&nonce, black_box(&mut buf), &tag));
            });
        });

        let mut pair = SessionPair::new(Mechanism::Curve).expect("session pair");
        let msg = Bytes::from(payload(size));
        g.bench_with_input(BenchmarkId::new("session_pair", size), &size, |b, _| {
            b.iter(|| black_box(pair.client_to_server(vec![msg.clone()]).expect("carry")));
        });
    }
    g.finish();
}

fn providers(c: &mut Criterion) {
    let mut g = c.benchmark_group("provider_seal");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut r = Raw::new();
        let mut buf = payload(size);
        g.bench_with_input(BenchmarkId::new("raw_salsabox", size), &size, |b, _| {
            b.iter(|| {
                let nonce = r.next_nonce();
                black_box(r.seal(&nonce, black_box(&mut buf)))
            });
        });
        for (name, provider) in PROVIDERS {
            let mut r = ProviderRaw::new(provider);
            let mut buf = payload(size);
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    let nonce = r.next_nonce();
                    black_box(r.seal(&nonce, black_box(&mut buf)))
                });
            });
            let mut r = ProviderRaw::new(provider);
            let mut buf = payload(size);
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_subkey"), size),
                &size,
                |b, _| {
                    b.iter(|| {
                        let nonce = r.next_nonce();
                        black_box(r.seal_sub(&nonce, black_box(&mut buf)))
                    });
                },
            );
        }
    }
    g.finish();

    let mut g = c.benchmark_group("provider_open");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut r = Raw::new();
        let (nonce, ct, tag) = raw::sealed(&mut r, size);
        g.bench_with_input(BenchmarkId::new("raw_salsabox", size), &size, |b, _| {
            b.iter_batched_ref(
                || ct.clone(),
                |buf| assert!(r.open(&nonce, buf, &tag)),
                BatchSize::SmallInput,
            );
        });
        for (name, provider) in PROVIDERS {
            let mut r = ProviderRaw::new(provider);
            let (nonce, ct, tag) = raw::provider_sealed(&mut r, size);
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter_batched_ref(
                    || ct.clone(),
                    |buf| assert!(r.open(&nonce, buf, &tag)),
                    BatchSize::SmallInput,
                );
            });
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_subkey"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || ct.clone(),
                        |buf| assert!(r.open_sub(&nonce, buf, &tag)),
                        BatchSize::SmallInput,
                    );
                },
            );
        }
    }
    g.finish();

    let mut g = c.benchmark_group("provider_session");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut r = Raw::new();
        let mut buf = payload(size);
        g.bench_with_input(BenchmarkId::new("raw_seal_open", size), &size, |b, _| {
            b.iter(|| {
                let nonce = r.next_nonce();
                let tag = r.seal(&nonce, black_box(&mut buf));
                assert!(r.open(&nonce, black_box(&mut buf), &tag));
            });
        });
        for (name, provider) in PROVIDERS {
            let mut pair =
                SessionPair::with_provider(Mechanism::Curve, provider).expect("session pair");
            let msg = Bytes::from(payload(size));
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| black_box(pair.client_to_server(vec![msg.clone()]).expect("carry")));
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config::config();
    targets = seal, open, session, providers
}
criterion_main!(benches);
