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

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use lokimq::{AuthLevel, Bytes, LokiMq, Stopwatch};
use lokimq_core::address::Address;
use lokimq_core::node::{ConnectOptions, ConnectionId, RequestError};
use lokimq_embed_example::{Builder, Embedded};

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);
/// The longest an idle turn sleeps: the loop's polling granularity.
const TICK: Duration = Duration::from_millis(2);

type Reply = Result<Vec<Bytes>, RequestError>;

fn main() -> Result<(), String> {
    let target = std::env::args().nth(1);
    // Keep the in-process server (if any) alive until the end.
    let (_server, addr) = match target {
        Some(text) => (None, Address::parse(&text).map_err(|e| e.to_string())?),
        None => {
            let (server, addr) = start_lokimq_server()?;
            (Some(server), addr)
        }
    };
    client_part(&addr)?;
    server_part()?;
    println!("done");
    Ok(())
}

/// A `lokimq` node serving `demo.echo` and `demo.whoami` on a CURVE loopback port.
fn start_lokimq_server() -> Result<(LokiMq, Address), String> {
    let mut b = LokiMq::builder();
    b.add_category("demo", AuthLevel::None)
        .and_then(|b| b.add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec())))
        .and_then(|b| {
            b.add_request_command("demo", "whoami", |m| {
                let key = m.conn().pubkey().map(|k| k.to_hex()).unwrap_or_default();
                m.send_reply([Bytes::from(m.access().auth.as_str()), Bytes::from(key)]);
            })
        })
        .and_then(|b| {
            b.listen_curve(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                |_, _, _| AuthLevel::Basic,
            )
        })
        .map_err(|e| e.to_string())?;
    let server = b.start().map_err(|e| e.to_string())?;
    let addr = server.bound_addresses()[0].clone();
    println!("started a lokimq node at {addr}");
    Ok((server, addr))
}

fn client_part(addr: &Address) -> Result<(), String> {
    let mut node = Builder::new().build().map_err(|e| e.to_string())?;
    println!("embedded client {} -> {addr}", node.pubkey().to_hex());

    let up = Rc::new(RefCell::new(None));
    let up_cb = Rc::clone(&up);
    let conn = node.connect_remote(addr, &ConnectOptions::default(), move |_, r| {
        *up_cb.borrow_mut() = Some(r);
    });
    turn_until(&mut node, "the connection", || up.borrow().is_some())?;
    if let Some(Err(why)) = up.borrow_mut().take() {
        return Err(format!("could not connect: {why}"));
    }
    println!("  connected");

    let echo = ask(&mut node, &conn, "demo.echo", &["hello", "world"])?;
    println!("  demo.echo [hello, world] -> {}", text(&echo));
    let who = ask(&mut node, &conn, "demo.whoami", &[])?;
    println!("  demo.whoami -> {}", text(&who));

    if !node.shutdown(STEP) {
        return Err(String::from(
            "the embedded client did not shut down in time",
        ));
    }
    Ok(())
}

fn server_part() -> Result<(), String> {
    let mut b = Builder::new();
    b.registry_mut()
        .add_category_with_defaults("embedded", AuthLevel::Basic)
        .map_err(|e| e.to_string())?;
    b.request_command("embedded", "echo", |ctx, msg| {
        println!(
            "  (handler) embedded.echo from {} on the loop's thread",
            msg.remote
        );
        if let Err(e) = ctx.reply(&msg.reply_to, msg.data.clone()) {
            println!("  (handler) could not reply: {e}");
        }
    })
    .map_err(|e| e.to_string())?;
    let mut node = b.build().map_err(|e| e.to_string())?;
    let addr = node
        .listen_curve(&Address::tcp("127.0.0.1", 0), |ip, key, _sn| {
            println!(
                "  (allow) {ip} with key {:?}: basic",
                key.map(|k| k.to_hex())
            );
            AuthLevel::Basic
        })
        .map_err(|e| e.to_string())?;
    println!("embedded server at {addr}");

    // The lokimq client works on its own threads; this thread keeps turning the embedded loop
    // so that the server side makes progress, and checks the client's channel in between.
    let client = LokiMq::builder().start().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel::<Result<Reply, String>>();
    let on_fail = tx.clone();
    let conn = client
        .handle()
        .connect_remote(
            &addr,
            |_| {},
            move |_, why| {
                let _ = on_fail.send(Err(why));
            },
            ConnectOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    client
        .handle()
        .request(&conn, "embedded.echo", ["ping"], move |r| {
            let _ = tx.send(Ok(r));
        })
        .map_err(|e| e.to_string())?;
    let mut got = None;
    turn_until(&mut node, "the lokimq client's reply", || {
        got = rx.try_recv().ok();
        got.is_some()
    })?;
    match got {
        Some(Ok(Ok(reply))) => println!("  lokimq client got embedded.echo -> {}", text(&reply)),
        Some(Ok(Err(e))) => return Err(format!("embedded.echo failed: {e}")),
        Some(Err(why)) => return Err(format!("the lokimq client could not connect: {why}")),
        None => unreachable!("turn_until returned without a reply"),
    }
    // Stop the embedded side first: the lokimq node's shutdown waits for its peers' EOF.
    if !node.shutdown(STEP) {
        return Err(String::from(
            "the embedded server did not shut down in time",
        ));
    }
    client.shutdown();
    Ok(())
}

/// Sends a request and turns until its outcome arrives.
fn ask(
    node: &mut Embedded,
    conn: &ConnectionId,
    command: &'static str,
    data: &[&'static str],
) -> Result<Vec<Bytes>, String> {
    let out: Rc<RefCell<Option<Reply>>> = Rc::new(RefCell::new(None));
    let out_cb = Rc::clone(&out);
    node.request(conn, command, data.iter().copied(), move |_, r| {
        *out_cb.borrow_mut() = Some(r);
    })
    .map_err(|e| e.to_string())?;
    turn_until(node, command, || out.borrow().is_some())?;
    let reply = out.borrow_mut().take();
    match reply {
        Some(Ok(parts)) => Ok(parts),
        Some(Err(e)) => Err(format!("{command} failed: {e}")),
        None => unreachable!("turn_until returned without a reply"),
    }
}

/// The application's loop: turn until `done`, at most [`STEP`].
fn turn_until(
    node: &mut Embedded,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let clock = Stopwatch::start();
    while !done() {
        if clock.elapsed() > STEP {
            return Err(format!("timed out waiting for {what}"));
        }
        node.turn(TICK);
    }
    Ok(())
}

fn text(parts: &[Bytes]) -> String {
    let shown: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    format!("[{}]", shown.join(", "))
}
