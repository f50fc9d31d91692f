//! Timers: repeating callbacks on the worker pool, on a tagged thread, or on the proxy thread
//! itself; cancelling them; and what `squelch` does to a timer slower than its interval.
//!
//! ```sh
//! cargo run -p lokimq --example timers
//! ```
//!
//! It runs four short demonstrations (about three seconds in all) and exits, 0 if each
//! behaved as documented.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use lokimq::{Error, Handle, LokiMq, Stopwatch, Target, TimerId};

/// Every wait in this example is bounded by this, so it always ends.
const WAIT: Duration = Duration::from_secs(10);

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed)")
        .to_owned()
}

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: timers   (no arguments)");
        return ExitCode::from(2);
    }
    match run() {
        Ok(()) => {
            println!("all timer demonstrations done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("timers: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut b = LokiMq::builder();
    // Timer firings run as batch jobs: on any idle general worker, plus the threads reserved
    // for batch jobs (`batch_threads`, half the general workers by default) when the general
    // ones are busy with commands.
    b.config_mut().general_workers = 4;
    let ticker = b.add_tagged_thread("ticker")?;
    let node = b.start()?;

    cancel_demo(node.handle())?;
    squelch_demo(node.handle())?;
    tagged_demo(node.handle(), ticker)?;
    in_proxy_demo(node.handle())?;

    node.shutdown();
    Ok(())
}

/// 1. A timer repeats until cancelled; after `cancel_timer` it stops.
fn cancel_demo(node: &Handle) -> Result<(), Box<dyn std::error::Error>> {
    let ticks = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let counter = Arc::clone(&ticks);
    let timer = node.add_timer(
        move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = tx.send(n);
        },
        Duration::from_millis(100),
        true,
        Target::Worker,
    )?;
    for _ in 0..5 {
        rx.recv_timeout(WAIT)?;
    }
    node.cancel_timer(timer)?;
    // `cancel_timer` only posts the cancellation; `stats` waits for the proxy thread, so once
    // it returns the cancellation has been handled.
    node.stats()?;
    let at_cancel = ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    let later = ticks.load(Ordering::SeqCst);
    println!("cancel: {at_cancel} ticks when cancelled, {later} half a second later");
    // Firings queued but not started are discarded; one already handed to a worker still
    // runs. With squelch on there is never more than one, so at most one tick can follow.
    if later > at_cancel + 1 {
        return Err("the timer kept firing after cancel_timer".into());
    }
    // Cancelling again (or cancelling an unknown timer) is harmless.
    node.cancel_timer(timer)?;
    Ok(())
}

/// Counts how many firings of a timer run at the same time.
#[derive(Default)]
struct Overlap {
    fired: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Overlap {
    fn fire(&self, work: Duration) {
        self.fired.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(work);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs a timer whose work (250 ms) is much slower than its interval (50 ms) for a while,
/// and returns (firings, most firings running at once).
fn slow_timer(node: &Handle, squelch: bool) -> Result<(usize, usize), Box<dyn std::error::Error>> {
    let stats = Arc::new(Overlap::default());
    let s = Arc::clone(&stats);
    let timer = node.add_timer(
        move || s.fire(Duration::from_millis(250)),
        Duration::from_millis(50),
        squelch,
        Target::Worker,
    )?;
    let clock = Stopwatch::start();
    while stats.fired.load(Ordering::SeqCst) < 4 && clock.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    node.cancel_timer(timer)?;
    node.stats()?;
    // Let the firings already running finish before the next demonstration.
    while stats.running.load(Ordering::SeqCst) > 0 && clock.elapsed() < WAIT * 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((
        stats.fired.load(Ordering::SeqCst),
        stats.max_running.load(Ordering::SeqCst),
    ))
}

/// 2. `squelch`: skip a firing while the previous one is still queued or running.
fn squelch_demo(node: &Handle) -> Result<(), Box<dyn std::error::Error>> {
    let (fired, overlap) = slow_timer(node, true)?;
    println!("squelch on: {fired} firings, at most {overlap} running at once");
    if overlap != 1 {
        return Err("a squelched timer overlapped itself".into());
    }
    // Without squelch every firing is queued, so a slow timer piles up work and runs on as
    // many batch threads as it can get. How many overlap depends on the machine's load.
    let (fired, overlap) = slow_timer(node, false)?;
    println!("squelch off: {fired} firings, at most {overlap} running at once");
    Ok(())
}

/// 3. A timer on a tagged thread: its firings run there, in order with the thread's jobs.
fn tagged_demo(
    node: &Handle,
    ticker: lokimq::TaggedThreadId,
) -> Result<(), Box<dyn std::error::Error>> {
    let (tx, rx) = mpsc::channel();
    let timer = node.add_timer(
        move || {
            let _ = tx.send(thread_name());
        },
        Duration::from_millis(50),
        true,
        Target::Tagged(ticker),
    )?;
    let first = rx.recv_timeout(WAIT)?;
    let second = rx.recv_timeout(WAIT)?;
    node.cancel_timer(timer)?;
    println!("tagged: the timer fired on {first} and {second}");
    if first != "ticker" || second != "ticker" {
        return Err("the tagged timer ran elsewhere".into());
    }
    Ok(())
}

/// 4. An in-proxy timer (`Target::InDriver`, OxenMQ's `run_in_proxy`): it runs on the
///    proxy thread itself, so it costs no thread hop, but the whole node waits while it runs.
///    It must be quick and must not wait for the proxy (that would be waiting for itself):
///    `stats` and `is_connected` refuse to run there, while posting calls (send, add_timer,
///    cancel_timer, job, …) are fine.
fn in_proxy_demo(node: &Handle) -> Result<(), Box<dyn std::error::Error>> {
    let fired = Arc::new(AtomicUsize::new(0));
    // The timer cancels itself, so it needs its own id, known only once `add_timer` returns.
    let own_id: Arc<OnceLock<TimerId>> = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel::<String>();
    let (h, f, id) = (node.clone(), Arc::clone(&fired), Arc::clone(&own_id));
    let timer = node.add_timer(
        move || {
            let n = f.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 1 {
                // Calls that wait for the proxy's answer refuse to run here instead of
                // deadlocking; `stats` is one of them.
                let text = match h.stats() {
                    Err(Error::OnProxyThread) => format!("stats refused on {}", thread_name()),
                    other => format!("stats unexpectedly gave {other:?}"),
                };
                let _ = tx.send(text);
            }
            // Calls that only post (send, cancel_timer, job, …) are fine.
            if n >= 3 {
                if let Some(me) = id.get() {
                    let _ = h.cancel_timer(*me);
                    let _ = tx.send(String::from("cancelled"));
                }
            }
        },
        Duration::from_millis(50),
        true,
        Target::InDriver,
    )?;
    let _ = own_id.set(timer);
    let refusal = rx.recv_timeout(WAIT)?;
    println!("in-proxy: {refusal}");
    if !refusal.starts_with("stats refused on lmq-proxy") {
        return Err("the in-proxy timer did not see OnProxyThread".into());
    }
    let done = rx.recv_timeout(WAIT)?;
    // The cancellation was posted before `stats` asks, so it is handled when `stats` returns;
    // an in-proxy timer has no firing in flight on another thread.
    node.stats()?;
    let at_cancel = fired.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    let later = fired.load(Ordering::SeqCst);
    println!("in-proxy: {done} itself after {at_cancel} firings; {later} firings after a pause");
    if later != at_cancel {
        return Err("the in-proxy timer fired after cancelling itself".into());
    }
    Ok(())
}
