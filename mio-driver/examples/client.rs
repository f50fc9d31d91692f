//! A LokiMQ client for the `server` example: connects over CURVE (or plain TCP), makes
//! requests, receives a command the server sends back, and meets every kind of request error.
//!
//! ```sh
//! cargo run -p lokimq --example server                  # in one terminal
//! cargo run -p lokimq --example client                  # in another
//! cargo run -p lokimq --example client -- curve://127.0.0.1:5566/<server key>
//! cargo run -p lokimq --example client -- tcp://127.0.0.1:5567     # plain: less access
//! ```
//!
//! Without an address it reads the one the server wrote to the temporary directory.
//!
//! Options: `--addr-file PATH` (where to read the address), `--timeout S` (connect timeout,
//! default 10). It exits 0 when every answer was the one expected for the auth level the
//! server granted, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use lokimq::{
    Address, AuthLevel, Bytes, ConnectOptions, ConnectionId, Handle, LokiMq, NO_DATA, RequestError,
    RequestOptions,
};

/// The command line, parsed by hand so the example needs no argument-parsing crate.
struct Options {
    address: Option<String>,
    addr_file: PathBuf,
    timeout: Duration,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        address: None,
        // The server example's default.
        addr_file: std::env::temp_dir().join("lokimq-example-server.addr"),
        timeout: Duration::from_secs(10),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr-file" => {
                opts.addr_file = PathBuf::from(args.next().ok_or("--addr-file needs a path")?);
            }
            "--timeout" => {
                let s = args.next().ok_or("--timeout needs seconds")?;
                let secs: u64 = s.parse().map_err(|e| format!("--timeout {s}: {e}"))?;
                opts.timeout = Duration::from_secs(secs.max(1));
            }
            a if a.starts_with("--") => return Err(format!("unknown option {a:?}")),
            a if opts.address.is_none() => opts.address = Some(a.to_owned()),
            a => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("client: {e}");
            eprintln!("usage: client [ADDRESS] [--addr-file PATH] [--timeout S]");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(0) => {
            println!("all answers as expected");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            eprintln!("client: {n} answer(s) differed from what was expected");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What each `RequestError` means, from the caller's side. The enum is `#[non_exhaustive]`:
/// future versions may add kinds, so a match needs a catch-all arm.
fn explain(e: RequestError) -> &'static str {
    match e {
        RequestError::Timeout => "no reply in time (or the request could not be sent at all)",
        RequestError::Forbidden => "our connection's auth level is below the category's",
        RequestError::ForbiddenSn => "only service nodes may call it, and we are not one",
        RequestError::NotAServiceNode => "the command needs the server to be a service node",
        RequestError::UnknownCommand => "the server has no such command",
        RequestError::NoReplyTag => "the server received the request without its reply tag",
        _ => "an error kind this example does not know",
    }
}

/// Frames as text, for printing.
fn show(frames: &[Bytes]) -> String {
    let parts: Vec<String> = frames
        .iter()
        .map(|f| format!("{:?}", String::from_utf8_lossy(f)))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Sends a request and waits for its outcome. `request` never blocks: the reply arrives in a
/// callback on a worker thread, which this example turns into a blocking call with a channel.
fn ask(
    client: &Handle,
    conn: &ConnectionId,
    command: &'static str,
    data: &[&'static str],
    timeout: Option<Duration>,
) -> Result<Vec<Bytes>, RequestError> {
    let (tx, rx) = mpsc::channel();
    // `None` keeps the node's default (15 s, `Config::request_timeout`).
    let opts = RequestOptions::default().timeout(timeout);
    let sent = client.request_with(conn, command, data.iter().copied(), opts, move |r| {
        let _ = tx.send(r);
    });
    if let Err(e) = sent {
        eprintln!("client: {command} not sent: {e}");
        return Err(RequestError::Timeout);
    }
    // The node always calls the callback (with `Timeout` at the latest after the request
    // timeout, 15 s by default), unless it is shutting down; the margin covers a busy machine.
    let limit = timeout.unwrap_or(Duration::from_secs(15)) + Duration::from_secs(10);
    rx.recv_timeout(limit).unwrap_or(Err(RequestError::Timeout))
}

/// Prints one outcome and returns 1 if it is not the expected one.
fn check(
    command: &str,
    got: &Result<Vec<Bytes>, RequestError>,
    expected: &Result<Vec<&str>, RequestError>,
) -> u32 {
    match got {
        Ok(frames) => println!("{command} -> {}", show(frames)),
        Err(e) => println!("{command} -> {e}: {}", explain(*e)),
    }
    let same = match (got, expected) {
        (Ok(frames), Ok(want)) => {
            frames.len() == want.len() && frames.iter().zip(want).all(|(f, w)| f == w.as_bytes())
        }
        (Err(e), Err(want)) => e == want,
        _ => false,
    };
    if same {
        0
    } else {
        eprintln!("client: {command}: expected {expected:?}");
        1
    }
}

fn run(opts: &Options) -> Result<u32, Box<dyn std::error::Error>> {
    let text = match &opts.address {
        Some(a) => a.clone(),
        None => std::fs::read_to_string(&opts.addr_file)
            .map_err(|e| {
                format!(
                    "no address given and {} unreadable ({e}); start the server example first \
                     or pass its address",
                    opts.addr_file.display()
                )
            })?
            .trim()
            .to_owned(),
    };
    // `curve://HOST:PORT/KEY` connects with CURVE and checks that the server holds KEY;
    // `tcp://HOST:PORT` connects in plain text. The key may be hex, z-base-32 or base64.
    let address = Address::from_str(&text)?;

    // The server's `public.hello` answers with a `client.greeting` command sent back to us,
    // so the client registers that command like any server would. Commands arriving on our
    // outgoing connection get the auth level of `ConnectOptions::auth_level` (default none).
    let (greet_tx, greet_rx) = mpsc::channel::<String>();
    let mut b = LokiMq::builder();
    b.add_category("client", AuthLevel::None)?
        .add_command("client", "greeting", move |m| {
            let text = m
                .data()
                .first()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .unwrap_or_default();
            let _ = greet_tx.send(text);
        })?;
    let client = b.start()?;
    println!("client pubkey: {}", client.pubkey());

    // `connect_remote` returns the connection's id at once; exactly one of the two callbacks
    // runs later, on a worker thread. Requests sent before the connection is up are queued.
    let (up_tx, up_rx) = mpsc::channel::<Result<ConnectionId, String>>();
    let fail_tx = up_tx.clone();
    let connect_opts = ConnectOptions::default().timeout(opts.timeout);
    let conn = client.handle().connect_remote(
        address.clone(),
        move |c| {
            let _ = up_tx.send(Ok(c));
        },
        move |_, why| {
            let _ = fail_tx.send(Err(why));
        },
        connect_opts,
    )?;
    match up_rx.recv_timeout(opts.timeout + Duration::from_secs(10)) {
        Ok(Ok(_)) => println!("connected to {address}"),
        Ok(Err(why)) => return Err(format!("could not connect to {address}: {why}").into()),
        Err(_) => return Err(format!("could not connect to {address}: no answer").into()),
    }

    // What did the server grant us? Everything else is judged against it.
    let whoami = ask(client.handle(), &conn, "public.whoami", &[], None);
    let level = match &whoami {
        Ok(frames) if !frames.is_empty() => {
            let level = String::from_utf8_lossy(&frames[0]).into_owned();
            println!("public.whoami -> {}", show(frames));
            AuthLevel::from_str(&level)?
        }
        Ok(_) => return Err("public.whoami: empty reply".into()),
        Err(e) => return Err(format!("public.whoami failed: {e}").into()),
    };
    println!("the server granted us auth level {level}");

    let mut wrong = 0;
    let r = ask(
        client.handle(),
        &conn,
        "public.echo",
        &["hello", "world"],
        None,
    );
    wrong += check("public.echo", &r, &Ok(vec!["hello", "world"]));
    let r = ask(
        client.handle(),
        &conn,
        "legacy.echo",
        &["via an alias"],
        None,
    );
    wrong += check("legacy.echo", &r, &Ok(vec!["via an alias"]));
    let r = ask(client.handle(), &conn, "public.later", &["patience"], None);
    wrong += check("public.later", &r, &Ok(vec!["later:", "patience"]));

    // Access-controlled commands: the answer depends on the level we were granted.
    let r = ask(client.handle(), &conn, "basic.sum", &["1", "2", "39"], None);
    let want = if level >= AuthLevel::Basic {
        Ok(vec!["42"])
    } else {
        Err(RequestError::Forbidden)
    };
    wrong += check("basic.sum", &r, &want);
    let r = ask(client.handle(), &conn, "admin.stats", &[], None);
    if level >= AuthLevel::Admin {
        match &r {
            Ok(frames) => println!("admin.stats -> {}", show(frames)),
            Err(e) => {
                println!("admin.stats -> {e}: {}", explain(*e));
                wrong += 1;
            }
        }
    } else {
        wrong += check("admin.stats", &r, &Err(RequestError::Forbidden));
    }

    // Every other way a request can fail.
    let r = ask(client.handle(), &conn, "sn.status", &[], None);
    wrong += check("sn.status", &r, &Err(RequestError::ForbiddenSn));
    let r = ask(client.handle(), &conn, "local.status", &[], None);
    wrong += check("local.status", &r, &Err(RequestError::NotAServiceNode));
    let r = ask(client.handle(), &conn, "public.nope", &[], None);
    wrong += check("public.nope", &r, &Err(RequestError::UnknownCommand));
    // A per-request timeout, much shorter than the 15 s default.
    let r = ask(
        client.handle(),
        &conn,
        "public.ignore",
        &[],
        Some(Duration::from_secs(1)),
    );
    wrong += check("public.ignore", &r, &Err(RequestError::Timeout));

    // A plain command: no reply, but the server sends `client.greeting` back.
    client.handle().send(&conn, "public.hello", NO_DATA)?;
    match greet_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(text) => println!("client.greeting <- {text:?}"),
        Err(_) => {
            eprintln!("client: no client.greeting came back");
            wrong += 1;
        }
    }

    // Tell the server we are done, then close: `disconnect` flushes what is queued (for at
    // most the linger given) before closing, so the bye is not lost.
    client.handle().send(&conn, "public.bye", NO_DATA)?;
    client.handle().disconnect(&conn, Duration::from_secs(1))?;
    client.shutdown();
    Ok(wrong)
}
