//! Scheduler throughput (issue 5): admission + completion cycles of `Scheduler<u64>`.
//!
//! * `sched_cycle/queued/cC_rR`: 8 general workers, C categories each reserving R threads, every
//!   slot busy and 64 commands waiting; one cycle offers a command (round-robin over the
//!   categories, so it queues) and finishes the longest-running job (which starts the oldest
//!   runnable queued command).
//! * `sched_cycle/immediate/c1_r0`: the same with nothing in the system: the command starts at
//!   once and finishes.
//! * `sched_cycle/vecdeque_baseline`: push + pop of the same `u64` payload on a `VecDeque` 64
//!   deep, the trivial floor every ratio is taken against.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lokimq_benches::sched::{FifoLoop, SchedLoop, Shape};

#[path = "common/config.rs"]
mod config;

const GENERAL: u16 = 8;
const WAITING: usize = 64;

fn cycles(c: &mut Criterion) {
    let mut g = c.benchmark_group("sched_cycle");
    g.throughput(Throughput::Elements(1));

    let mut fifo = FifoLoop::new(WAITING);
    g.bench_function("vecdeque_baseline", |b| {
        b.iter(|| fifo.cycle());
    });
    black_box(fifo.checksum());

    let mut l = SchedLoop::new(Shape {
        categories: 1,
        reserved: 0,
        general: GENERAL,
        in_system: 0,
    })
    .expect("scheduler");
    g.bench_function(BenchmarkId::new("immediate", "c1_r0"), |b| {
        b.iter(|| l.cycle().expect("cycle"));
    });

    for categories in [1u16, 8, 64] {
        for reserved in [0u16, 1] {
            let shape = Shape {
                categories,
                reserved,
                general: GENERAL,
                in_system: usize::from(GENERAL + categories * reserved) + WAITING,
            };
            let mut l = SchedLoop::new(shape).expect("scheduler");
            let id = format!("c{categories}_r{reserved}");
            g.bench_function(BenchmarkId::new("queued", id), |b| {
                b.iter(|| l.cycle().expect("cycle"));
            });
            black_box(l.checksum());
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config::config();
    targets = cycles
}
criterion_main!(benches);
