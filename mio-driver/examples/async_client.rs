//! `async_client`: lokimq from async Rust, on tokio.
//!
//! ```text
//! cargo run -p lokimq --example async_client
//! ```
//!
//! A server whose `rpc.lookup` handler hands its work to an async task and returns at once
//! (the task replies later through a [`DeferredSend`](lokimq::DeferredSend)), and an async
//! client that connects with `connect_remote_async` and keeps many requests in flight with
//! `request_async`. The library needs no runtime: these futures work the same under async-std,
//! smol or a plain `block_on`.
//!
//! **Bounding work that leaves the handler.** A category's limits (reserved threads,
//! `max_queue`) count handlers while they run; once a handler returns, the work it handed to
//! an async task is no longer counted, so a flood of requests could start unbounded tasks. The
//! server below keeps the bound with a semaphore of `MAX_IN_FLIGHT` permits, taken in the
//! handler and released when the task replies: a request that finds none is answered `busy` at
//! once, as OxenMQ answers nothing for a full queue. (Another way: have the task finish with
//! `Handle::inject_task(category, ...)`, which queues the continuation under the category's
//! own limits.)

use std::sync::Arc;
use std::time::Duration;

use lokimq::{AuthLevel, ConnectOptions, LokiMq, Stopwatch};
use tokio::sync::Semaphore;

/// Lookups the server runs at once (over every client).
const MAX_IN_FLIGHT: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // The server: its handler runs on a lokimq worker, starts an async task, and returns.
    let tasks = rt.handle().clone();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut b = LokiMq::builder();
    b.add_category("rpc", AuthLevel::None)?
        .add_request_command("rpc", "lookup", move |m| {
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                m.send_reply(["busy"]);
                return;
            };
            let later = m.send_later();
            let key = String::from_utf8_lossy(&m.data()[0]).into_owned();
            tasks.spawn(async move {
                // Stands in for a database or an HTTP call.
                tokio::time::sleep(Duration::from_millis(10)).await;
                let _ = later.reply([format!("value of {key}")]);
                drop(permit);
            });
        })?
        .listen_curve("127.0.0.1:0".parse::<std::net::SocketAddr>()?, |_, _, _| {
            AuthLevel::None
        })?;
    let server = b.start()?;
    let address = server.bound_addresses()[0].clone();
    println!("server listening on {address}");

    // The client: everything below is async.
    let client = LokiMq::builder().start()?;
    let h = client.handle().clone();
    rt.block_on(async move {
        let conn = h
            .connect_remote_async(&address, ConnectOptions::default())?
            .await?;
        println!("connected");
        let clock = Stopwatch::start();
        let requests: Vec<_> = (0..200)
            .map(|i| {
                let (h, conn) = (h.clone(), conn.clone());
                tokio::spawn(async move {
                    h.request_async(&conn, "rpc.lookup", [format!("k{i}")])
                        .await
                })
            })
            .collect();
        let (mut ok, mut busy) = (0, 0);
        for r in requests {
            match r.await?? {
                parts if parts[0].as_ref() == b"busy" => busy += 1,
                _ => ok += 1,
            }
        }
        println!(
            "200 concurrent requests in {:.1} ms: {ok} answered, {busy} told busy (at most \
             {MAX_IN_FLIGHT} lookups run at once)",
            clock.elapsed().as_secs_f64() * 1e3
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
