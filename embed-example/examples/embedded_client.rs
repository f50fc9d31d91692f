//! The embedded loop in both roles, against the native `lokimq` node.
//!
//! ```text
//! cargo run -p lokimq-embed-example --example embedded_client [CURVE-ADDRESS]
//! ```
//!
//! 1. **Client**: the embedded loop connects over CURVE to a `lokimq` node and calls
//!    `demo.echo` and `demo.whoami`. Give the address of a running node, e.g. one started with
//!    `lokimq listen tcp://127.0.0.1:5555 --curve` (it prints its `curve://…` address), or
//!    none, and one is started in this process.
//! 2. **Server**: the embedded loop listens with CURVE and serves `embedded.echo` inline; a
//!    `lokimq` node connects to it and makes a request while the loop turns.
//!
//! Every wait is bounded; the example exits with an error message if something does not
//! happen in time.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use lokimq::{Address, AuthLevel, Builder, Bytes, ConnectOptions, LokiMq, RequestError};
use lokimq_embed_example::Embedded;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);

type Reply = Result<Vec<Bytes>, RequestError>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the in-process server (if any) alive until the end.
    let (server, addr) = match std::env::args().nth(1) {
        Some(text) => (None, Address::parse(&text)?),
        None => {
            let (server, addr) = start_lokimq_server()?;
            (Some(server), addr)
        }
    };
    client_part(&addr)?;
    server_part()?;
    stop(server);
    println!("done");
    Ok(())
}

/// A `lokimq` node serving `demo.echo` and `demo.whoami` on a CURVE loopback port.
fn start_lokimq_server() -> Result<(LokiMq, Address), lokimq::Error> {
    let mut b = LokiMq::builder();
    b.add_category("demo", AuthLevel::None)?
        .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
        .add_request_command("demo", "whoami", |m| {
            let key = m.conn().pubkey().map(|k| k.to_hex()).unwrap_or_default();
            m.send_reply([Bytes::from(m.access().auth.as_str()), Bytes::from(key)]);
        })?
        .listen_curve(SocketAddr::from(([127, 0, 0, 1], 0)), |_, _, _| {
            AuthLevel::Basic
        })?;
    let server = b.start()?;
    let addr = server.bound_addresses()[0].clone();
    println!("started a lokimq node at {addr}");
    Ok((server, addr))
}

fn client_part(addr: &Address) -> Result<(), Box<dyn std::error::Error>> {
    let mut node = Embedded::new(Builder::new())?;
    println!(
        "embedded client {} -> {addr}",
        node.handle().pubkey().to_hex()
    );

    let (tx, rx) = mpsc::channel();
    let failed = tx.clone();
    let conn = node.handle().connect_remote(
        addr,
        move |c| {
            let _ = tx.send(Ok(c));
        },
        move |_, why| {
            let _ = failed.send(Err(why));
        },
        ConnectOptions::default(),
    )?;
    wait(&mut node, &rx, "the connection")?.map_err(|why| format!("could not connect: {why}"))?;
    println!("  connected");

    for (command, data) in [("demo.echo", &["hello", "world"][..]), ("demo.whoami", &[])] {
        let (tx, rx) = mpsc::channel();
        node.handle()
            .request(&conn, command, data.iter().copied(), move |r| {
                let _ = tx.send(r);
            })?;
        let reply = wait(&mut node, &rx, command)?.map_err(|e| format!("{command}: {e}"))?;
        println!("  {command} {data:?} -> {}", text(&reply));
    }
    if !node.shutdown(STEP) {
        return Err("the embedded client did not shut down in time".into());
    }
    Ok(())
}

fn server_part() -> Result<(), Box<dyn std::error::Error>> {
    let mut b = Builder::new();
    b.add_category("embedded", AuthLevel::Basic)?
        .add_request_command("embedded", "echo", |m| {
            println!(
                "  (handler) embedded.echo from {} on the loop's thread",
                m.remote()
            );
            m.send_reply(m.data().to_vec());
        })?
        .listen_curve(SocketAddr::from(([127, 0, 0, 1], 0)), |ip, key, _sn| {
            println!(
                "  (allow) {ip} with key {:?}: basic",
                key.map(|k| k.to_hex())
            );
            AuthLevel::Basic
        })?;
    let mut node = Embedded::new(b)?;
    let addr = node.handle().bound_addresses()[0].clone();
    println!("embedded server at {addr}");

    // The lokimq client works on its own threads; this thread keeps turning the embedded loop
    // so that the server side makes progress, and checks the client's channel in between.
    let client = LokiMq::builder().start()?;
    let (tx, rx) = mpsc::channel::<Result<Reply, String>>();
    let on_fail = tx.clone();
    let conn = client.handle().connect_remote(
        &addr,
        |_| {},
        move |_, why| {
            let _ = on_fail.send(Err(why));
        },
        ConnectOptions::default(),
    )?;
    client
        .handle()
        .request(&conn, "embedded.echo", ["ping"], move |r| {
            let _ = tx.send(Ok(r));
        })?;
    match wait(&mut node, &rx, "the lokimq client's reply")? {
        Ok(Ok(reply)) => println!("  lokimq client got embedded.echo -> {}", text(&reply)),
        Ok(Err(e)) => return Err(format!("embedded.echo failed: {e}").into()),
        Err(why) => return Err(format!("the lokimq client could not connect: {why}").into()),
    }
    if !node.shutdown(STEP) {
        return Err("the embedded server did not shut down in time".into());
    }
    stop(Some(client));
    Ok(())
}

/// The application's loop: turn until `rx` yields, at most [`STEP`].
fn wait<T>(node: &mut Embedded, rx: &Receiver<T>, what: &str) -> Result<T, String> {
    let mut got = None;
    node.run_until(
        |_| {
            got = rx.try_recv().ok();
            got.is_some()
        },
        STEP,
    );
    got.ok_or_else(|| format!("timed out waiting for {what}"))
}

/// Drops a `lokimq` node on a thread of its own, so that the drop waits for its shutdown: this
/// thread drives an embedded node, which makes it count as a node's own thread.
fn stop(node: Option<LokiMq>) {
    let _ = std::thread::spawn(move || drop(node)).join();
}

fn text(parts: &[Bytes]) -> String {
    let shown: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    format!("[{}]", shown.join(", "))
}
