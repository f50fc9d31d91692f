//! `lokimq call`: one request (or one plain command) to a remote node, and the three ways of
//! printing its reply parts.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use lokimq::core::bt::{self, BtValue};
use lokimq::core::encoding::hex;
use lokimq::{
    Address, Bytes, ConnectOptions, ConnectionId, LokiMq, RequestError, RequestOptions, Stopwatch,
};

use crate::fail::{Exit, Failure, secs};
use crate::keys;

/// How reply parts are printed, one line each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// UTF-8 text with `\\`, `\n`, `\t`, `\r` and `\xNN` escapes.
    Text,
    /// Lower-case hex.
    Hex,
    /// bt decoded, as JSON.
    Bt,
}

/// `lokimq call`'s parsed options.
#[derive(Debug)]
pub(crate) struct Options {
    /// The remote's address, as typed.
    pub(crate) address: String,
    /// `category.name`.
    pub(crate) command: String,
    /// Data parts.
    pub(crate) args: Vec<String>,
    /// Budget for connecting and the reply together.
    pub(crate) timeout: Duration,
    /// Our key file, if any.
    pub(crate) key_file: Option<PathBuf>,
    /// A plain command instead of a request.
    pub(crate) send: bool,
    /// How to print the reply.
    pub(crate) format: Format,
}

/// Extra time to wait for a callback the node promised for the end of a budget (it fires from
/// the node's own timer, which may run a little late on a busy machine).
const GRACE: Duration = Duration::from_secs(2);

/// After `--send`, how long the closing connection may take to flush (at most `--timeout`).
const SEND_LINGER: Duration = Duration::from_secs(1);

/// Connects `node` to `addr`, waiting at most `budget` for the remote's `HELLO`; the error is
/// the reason the node gave (or that none came).
pub(crate) fn connect(
    node: &LokiMq,
    addr: &Address,
    budget: Duration,
) -> Result<ConnectionId, String> {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let opts = ConnectOptions::default().timeout(budget);
    node.handle()
        .connect_remote(
            addr,
            move |c| {
                let _ = tx.send(Ok(c));
            },
            move |_, why| {
                let _ = tx2.send(Err(why));
            },
            opts,
        )
        .map_err(|e| e.to_string())?;
    match rx.recv_timeout(budget + GRACE) {
        Ok(r) => r,
        Err(_) => Err(String::from("no answer")),
    }
}

/// Runs `lokimq call`.
pub(crate) fn call(o: &Options) -> Result<(), Failure> {
    let addr = Address::parse(&o.address)
        .map_err(|e| Failure::bad_input(format!("bad address `{}`: {e}", o.address)))?;
    let mut b = LokiMq::builder();
    b.config_mut().general_workers = 1;
    b.config_mut().close_linger = o.timeout.min(SEND_LINGER);
    if let Some(path) = &o.key_file {
        let (kp, created) = keys::load_or_create(path)?;
        if created {
            eprintln!("created key file {} (mode 0600)", path.display());
        }
        b.keypair(kp);
    }
    let node = b
        .start()
        .map_err(|e| Failure::other(format!("cannot start a node: {e}")))?;
    let clock = Stopwatch::start();
    let conn = connect(&node, &addr, o.timeout).map_err(|why| {
        Failure::new(
            Exit::Connect,
            format!(
                "could not connect to {} within {}: {why}",
                o.address,
                secs(o.timeout)
            ),
        )
    })?;
    tracing::info!("connected in {:?}", clock.elapsed());
    let data: Vec<Bytes> = o.args.iter().map(|a| Bytes::from(a.clone())).collect();

    if o.send {
        node.handle()
            .send(&conn, o.command.clone(), data)
            .map_err(|e| Failure::other(format!("cannot send {}: {e}", o.command)))?;
        // The command is queued behind the handshake on a live connection; closing it flushes
        // the queue, and shutdown waits (up to the linger) until the socket is done.
        let _ = node.handle().disconnect(&conn, o.timeout.min(SEND_LINGER));
        node.shutdown();
        return Ok(());
    }

    let left = clock.remaining(o.timeout);
    let timed_out = || {
        Failure::new(
            Exit::Timeout,
            format!(
                "request {} to {} timed out after {} (TIMEOUT)",
                o.command,
                o.address,
                secs(o.timeout)
            ),
        )
    };
    if left.is_zero() {
        return Err(timed_out());
    }
    let (tx, rx) = mpsc::channel();
    let opts = RequestOptions::default().timeout(left);
    node.handle()
        .request_with(&conn, o.command.clone(), data, opts, move |r| {
            let _ = tx.send(r);
        })
        .map_err(|e| Failure::other(format!("cannot send {}: {e}", o.command)))?;
    let reply = rx.recv_timeout(left + GRACE).map_err(|_| timed_out())?;
    let parts = match reply {
        Ok(parts) => parts,
        Err(RequestError::Timeout) => return Err(timed_out()),
        Err(e) => return Err(refused(o, &e)),
    };
    let text = render(&parts, o.format)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::other(format!("cannot write to stdout: {e}")))
}

/// The failure for an error reply other than TIMEOUT.
fn refused(o: &Options, e: &RequestError) -> Failure {
    let (addr, cmd) = (&o.address, &o.command);
    let what = match e {
        RequestError::Forbidden => format!("{addr} refused {cmd}: our auth level is too low"),
        RequestError::ForbiddenSn => {
            format!("{addr} refused {cmd}: it is for service nodes only")
        }
        RequestError::NotAServiceNode => {
            format!("{addr} refused {cmd}: it is not a service node")
        }
        RequestError::UnknownCommand => format!("{addr} has no command {cmd}"),
        _ => format!("{addr} could not answer {cmd}"),
    };
    Failure::new(Exit::of_request_error(e), format!("{what} ({e})"))
}

/// All reply parts in `format`, one line each.
pub(crate) fn render(parts: &[Bytes], format: Format) -> Result<String, Failure> {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        match format {
            Format::Text => escape_text(part, &mut out),
            Format::Hex => out.push_str(&hex::encode(part)),
            Format::Bt => {
                let value = bt::decode(part)
                    .map_err(|e| Failure::other(format!("reply part {} is not bt: {e}", i + 1)))?;
                json(&value, &mut out);
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// UTF-8 as is, except `\` → `\\`, newline → `\n`, tab → `\t`, CR → `\r`, and other control
/// characters and invalid bytes as `\xNN` (per byte), so every part is exactly one line.
fn escape_text(part: &[u8], out: &mut String) {
    for chunk in part.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    for b in c.encode_utf8(&mut [0; 4]).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Compact JSON: byte strings as strings when UTF-8, else `{"hex":"…"}` (keys: `"hex:…"`).
fn json(v: &BtValue, out: &mut String) {
    match v {
        BtValue::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => json_string(s, out),
            Err(_) => {
                out.push_str("{\"hex\":\"");
                out.push_str(&hex::encode(b));
                out.push_str("\"}");
            }
        },
        BtValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        BtValue::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        BtValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(item, out);
            }
            out.push(']');
        }
        BtValue::Dict(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match std::str::from_utf8(k) {
                    Ok(s) => json_string(s, out),
                    Err(_) => json_string(&format!("hex:{}", hex::encode(k)), out),
                }
                out.push(':');
                json(item, out);
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(part: &[u8], format: Format) -> String {
        render(&[Bytes::copy_from_slice(part)], format).unwrap()
    }

    #[test]
    fn text_escapes_what_would_break_a_line() {
        assert_eq!(one(b"hello", Format::Text), "hello\n");
        assert_eq!(one("h\u{e9}llo".as_bytes(), Format::Text), "h\u{e9}llo\n");
        assert_eq!(one(b"a\nb\tc\\d\re", Format::Text), "a\\nb\\tc\\\\d\\re\n");
        assert_eq!(one(b"\x00\xff\x7f", Format::Text), "\\x00\\xff\\x7f\n");
        assert_eq!(one(b"", Format::Text), "\n");
    }

    #[test]
    fn hex_is_lower_case_per_part() {
        let parts = [Bytes::from_static(b"\x01\xAB"), Bytes::new()];
        assert_eq!(render(&parts, Format::Hex).unwrap(), "01ab\n\n");
    }

    #[test]
    fn bt_becomes_json() {
        assert_eq!(one(b"d3:fooi42ee", Format::Bt), "{\"foo\":42}\n");
        assert_eq!(
            one(b"li-3e4:\"q\\\ne", Format::Bt),
            "[-3,\"\\\"q\\\\\\n\"]\n"
        );
        assert_eq!(one(b"2:\xff\x00", Format::Bt), "{\"hex\":\"ff00\"}\n");
        assert_eq!(one(b"d1:\xffi1ee", Format::Bt), "{\"hex:ff\":1}\n");
        assert_eq!(one(b"1:\x01", Format::Bt), "\"\\u0001\"\n");
        assert_eq!(
            one(b"i18446744073709551615e", Format::Bt),
            "18446744073709551615\n"
        );
        let e = render(&[Bytes::from_static(b"hello")], Format::Bt).unwrap_err();
        assert_eq!(e.exit.code(), 1);
        assert!(
            e.message.contains("reply part 1 is not bt"),
            "{}",
            e.message
        );
    }
}
