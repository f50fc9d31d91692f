//! Batches, jobs, tagged threads and injected tasks: the node as a small thread pool.
//!
//! ```sh
//! cargo run -p lokimq --example batches
//! cargo run -p lokimq --example batches -- 32      # 32 jobs in the first batch
//! ```
//!
//! It runs four short demonstrations and exits (0 if each produced what it should):
//!
//! 1. a batch of jobs on the batch pool and one on a tagged thread, with a completion on a
//!    worker that gets every result;
//! 2. a batch in which one job panics, with a completion run on the proxy thread itself;
//! 3. single jobs on a tagged thread, which runs them one at a time, in order;
//! 4. a task injected into a command category, queued under that category's limits.

use lokimq::{CategoryOptions, NodeError, QueueLimit};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use lokimq::{AuthLevel, Batch, Error, JobPanicked, LokiMq, Target};

/// Every wait in this example is bounded by this, so it always ends.
const WAIT: Duration = Duration::from_secs(10);

/// The name of the thread running the caller, for the printout.
fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed)")
        .to_owned()
}

fn main() -> ExitCode {
    let jobs = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => 8,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: batches [JOBS]   (JOBS ≥ 1, default 8)");
            return ExitCode::from(2);
        }
    };
    match run(jobs) {
        Ok(()) => {
            println!("all batch demonstrations done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("batches: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(jobs: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut b = LokiMq::builder();
    // Two general workers are plenty here; by default there is one per CPU core. Batch jobs
    // run on idle general workers and on threads reserved for them (`batch_threads`).
    b.config_mut().general_workers = 2;
    // A tagged thread runs only what is addressed to it, one job at a time, in order: a home
    // for work that must not run concurrently (a database handle, a non-thread-safe library).
    // It must be added before start; the optional start callback runs in the thread itself.
    let db = b.add_tagged_thread_with_start("db", || {
        println!("tagged thread {} started", thread_name());
    })?;
    // A category for injected tasks (demonstration 4): one reserved thread, at most 16
    // queued tasks.
    b.add_category(
        "work",
        CategoryOptions::new(AuthLevel::Admin)
            .reserved_threads(1)
            .max_queue(QueueLimit::At(16)),
    )?;
    let node = b.start()?;

    // 1. A batch: jobs run in parallel in no particular order; the completion runs once,
    //    after all of them, with every result in the order the jobs were added.
    let (tx, rx) = mpsc::channel();
    let mut batch = Batch::new();
    batch.reserve(usize::try_from(jobs).unwrap_or(0) + 1);
    for i in 1..=jobs {
        batch.add_job(move || (i * i, thread_name()));
    }
    // One job on the tagged thread, mixed into the same batch.
    batch.add_job_on(move || (0, thread_name()), db);
    batch.completion(move |results: Vec<Result<(u64, String), JobPanicked>>| {
        let mut sum = 0;
        let mut threads = std::collections::BTreeSet::new();
        for r in results {
            // A job that panicked yields `Err(JobPanicked)` instead of a value.
            match r {
                Ok((square, thread)) => {
                    sum += square;
                    threads.insert(thread);
                }
                Err(e) => println!("a job failed: {e}"),
            }
        }
        let _ = tx.send((sum, threads, thread_name()));
    })?;
    // `batch` hands it to the node and returns at once.
    node.handle().batch(batch)?;
    let (sum, threads, completion_thread) = rx.recv_timeout(WAIT)?;
    let expected: u64 = (1..=jobs).map(|i| i * i).sum();
    println!("batch 1: sum of squares 1..={jobs} = {sum} (expected {expected})");
    println!("batch 1: jobs ran on {threads:?}; completion on {completion_thread}");
    if sum != expected {
        return Err("batch 1 gave the wrong sum".into());
    }

    // 2. A panicking job does not take anything down: its result is an error. This
    //    completion runs on the proxy thread (`Target::InDriver`, OxenMQ's `run_in_proxy`):
    //    no hop to a worker, but the whole node waits while it runs, so keep it tiny.
    let (tx, rx) = mpsc::channel();
    let mut batch = Batch::new();
    batch.add_job(|| 1u32);
    batch.add_job(|| -> u32 { panic!("job 2 gave up") });
    batch.add_job(|| 3u32);
    batch.completion_on(
        move |results| {
            let _ = tx.send((results, thread_name()));
        },
        Target::InDriver,
    )?;
    // A second completion is refused: there is exactly one per batch.
    match batch.completion(|_| {}) {
        Err(Error::CompletionAlreadySet) => println!("batch 2: a second completion is refused"),
        other => return Err(format!("second completion: unexpected {other:?}").into()),
    }
    // The node catches the panic; Rust's panic hook still reports it. Replace the default
    // hook (a message plus, with RUST_BACKTRACE, a backtrace) with one short line.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        eprintln!("{} panicked: {what}", thread_name());
    }));
    node.handle().batch(batch)?;
    let (results, completion_thread) = rx.recv_timeout(WAIT)?;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => println!("batch 2: job {} -> {v}", i + 1),
            Err(e) => println!("batch 2: job {} -> {e}", i + 1),
        }
    }
    println!("batch 2: completion ran on {completion_thread}");
    let panicked = matches!(&results[..], [Ok(1), Err(e), Ok(3)] if e.message() == "job 2 gave up");
    if !panicked {
        return Err("batch 2: unexpected results".into());
    }

    // An empty batch is an error, reported at once.
    match node.handle().batch(Batch::<()>::new()) {
        Err(Error::EmptyBatch) => println!("an empty batch is refused: {}", Error::EmptyBatch),
        other => return Err(format!("empty batch: unexpected {other:?}").into()),
    }

    // 3. Single jobs (`job`) have no result; sent to a tagged thread they run in the order
    //    they were queued, never two at once.
    let (tx, rx) = mpsc::channel();
    for i in 0..5 {
        let tx = tx.clone();
        node.handle().job(
            move || {
                let _ = tx.send((i, thread_name()));
            },
            Some(db),
        )?;
    }
    let mut order = Vec::new();
    for _ in 0..5 {
        let (i, thread) = rx.recv_timeout(WAIT)?;
        if thread != "db" {
            return Err(format!("job {i} ran on {thread}, not on the tagged thread").into());
        }
        order.push(i);
    }
    println!("tagged jobs ran on db in the order {order:?}");
    if order != [0, 1, 2, 3, 4] {
        return Err("tagged jobs ran out of order".into());
    }
    // Without a tagged thread, `job` uses the batch pool.
    let (tx2, rx2) = mpsc::channel();
    node.handle().job(
        move || {
            let _ = tx2.send(thread_name());
        },
        None,
    )?;
    println!("an untagged job ran on {}", rx2.recv_timeout(WAIT)?);

    // 4. `inject_task` runs a closure as if it were a command of a category: it waits for the
    //    category's reserved thread or a free worker, and is dropped if the queue is full.
    //    The names are only for logs.
    let (tx, rx) = mpsc::channel();
    node.handle()
        .inject_task("work", "rebuild-index", "example", move || {
            let _ = tx.send(thread_name());
        })?;
    println!("injected task ran on {}", rx.recv_timeout(WAIT)?);
    match node.handle().inject_task("nosuch", "x", "example", || {}) {
        Err(e @ Error::Node(NodeError::UnknownCategory(_))) => {
            println!("unknown category refused: {e}")
        }
        other => return Err(format!("unknown category: unexpected {other:?}").into()),
    }

    // Dropping the node waits for running jobs and joins every thread, tagged ones included.
    node.shutdown();
    Ok(())
}
