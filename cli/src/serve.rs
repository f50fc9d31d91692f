//! `lokimq serve`: a node with the `echo` category on the given listeners, until SIGINT or
//! SIGTERM.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use lokimq::core::address::Encoding;
use lokimq::{
    Address, AuthLevel, Builder, Keypair, Listen, LokiMq, Message, PublicKey, ShutdownSignals,
};
use rand_core::OsRng;

use crate::fail::Failure;
use crate::keys::{self, Allow};

/// Registers `echo.echo` and `echo.ping` (auth level none).
pub(crate) fn register_echo(b: &mut Builder) -> Result<(), lokimq::Error> {
    b.add_category("echo", AuthLevel::None)?
        .add_request_command("echo", "echo", |m| m.send_reply(m.data().to_vec()))?
        .add_command("echo", "ping", ping)?;
    Ok(())
}

/// `echo.ping` answers both ways. A request is, on the wire, a command whose first data part
/// is the reply tag, so the command is registered as a plain one and a first data part is taken
/// as a tag: `[REPLY, tag, "pong"]` goes back. Without data parts it was a plain command and
/// `echo.pong` goes back.
fn ping(m: &mut Message) {
    match m.data().first().cloned() {
        Some(tag) => m.send_back("REPLY", [tag, lokimq::Bytes::from_static(b"pong")]),
        None => m.send_back("echo.pong", lokimq::NO_DATA),
    }
}

/// A listen address: like OxenMQ's forms, but port 0 is allowed and CURVE forms need no key.
/// The key, if present, must be `ours`. Returns the listener and whether it is CURVE.
pub(crate) fn parse_listen(text: &str, ours: &PublicKey) -> Result<(Listen, bool), Failure> {
    let bad = |why: &str| Failure::bad_input(format!("bad listen address `{text}`: {why}"));
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad("expected tcp://, curve://, ipc:// or ipc+curve://"))?;
    let (address, key, curve) = match scheme {
        "tcp" => (tcp(rest, false).map_err(|w| bad(&w))?, None, false),
        "curve" | "tcp+curve" => {
            let (hostport, key) = match rest.split_once('/') {
                Some((hp, key)) => (hp, Some(key)),
                None => (rest, None),
            };
            (tcp(hostport, true).map_err(|w| bad(&w))?, key, true)
        }
        "ipc" | "ipc+curve" => {
            let curve = scheme == "ipc+curve";
            // A trailing component that is a key is the key; the rest is the socket path.
            let (path, key) = match rest.rsplit_once('/') {
                Some((path, key))
                    if curve && !path.is_empty() && keys::parse_pubkey(key).is_ok() =>
                {
                    (path, Some(key))
                }
                _ => (rest, None),
            };
            if path.is_empty() {
                return Err(bad("empty socket path"));
            }
            (Address::ipc(path), key, curve)
        }
        other => {
            return Err(bad(&format!(
                "unknown scheme `{other}` (expected tcp, curve, ipc or ipc+curve)"
            )));
        }
    };
    if let Some(key) = key {
        let key = keys::parse_pubkey(key).map_err(|w| bad(&w))?;
        if key != *ours {
            return Err(bad(&format!(
                "its key is not this node's key ({}); drop the key or use --key-file",
                ours.to_hex()
            )));
        }
    }
    let listen = if curve {
        Listen::curve(address)
    } else {
        Listen::plain(address)
    };
    listen.map(|l| (l, curve)).map_err(|e| bad(&e.to_string()))
}

/// `HOST:PORT` (port 0 allowed; nothing after the port unless `curve` split it off already).
fn tcp(hostport: &str, curve: bool) -> Result<Address, String> {
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| String::from("expected HOST:PORT"))?;
    if host.is_empty() {
        return Err(String::from("empty host"));
    }
    let port: u16 = port.parse().map_err(|_| {
        if curve {
            format!("`{port}` is not a port")
        } else {
            format!("`{port}` is not a port (a key belongs to curve:// addresses only)")
        }
    })?;
    Ok(Address::tcp(host, port))
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn serve(
    listen: &[String],
    key_file: Option<&Path>,
    allow: &[Allow],
) -> Result<(), Failure> {
    let keypair = match key_file {
        Some(path) => {
            let (kp, created) = keys::load_or_create(path)?;
            if created {
                eprintln!("created key file {} (mode 0600)", path.display());
            }
            kp
        }
        None => Keypair::generate(&mut OsRng),
    };
    let ours = *keypair.public();
    let levels: BTreeMap<PublicKey, AuthLevel> = allow.iter().map(|a| (a.key, a.level)).collect();
    let mut b = LokiMq::builder();
    b.keypair(keypair);
    register_echo(&mut b).map_err(|e| Failure::other(e.to_string()))?;
    let mut any_curve = false;
    for text in listen {
        let (l, curve) = parse_listen(text, &ours)?;
        any_curve |= curve;
        let levels = levels.clone();
        b.listen(l.allow(move |ip, key, _sn| {
            let level = key
                .and_then(|k| levels.get(k).copied())
                .unwrap_or(AuthLevel::None);
            tracing::info!(
                "connection from {ip}, key {}: {level}",
                key.map_or_else(|| String::from("(plain)"), PublicKey::to_hex)
            );
            level
        }));
    }
    if !levels.is_empty() && !any_curve {
        tracing::warn!("--allow only applies to CURVE listeners, and there are none");
    }

    // Install the handler before listening, so a signal right after the addresses are printed
    // is not lost.
    let mut signals = ShutdownSignals::install()
        .map_err(|e| Failure::other(format!("cannot install the signal handler: {e}")))?;

    let node = b
        .start()
        .map_err(|e| Failure::other(format!("cannot start the server: {e}")))?;
    tracing::info!("pubkey {}", node.pubkey().to_hex());
    let mut out = std::io::stdout().lock();
    for addr in node.bound_addresses() {
        let _ = writeln!(out, "listening on {}", addr.full_address(Encoding::Base32z));
    }
    out.flush()
        .map_err(|e| Failure::other(format!("cannot write to stdout: {e}")))?;
    drop(out);

    let signal = signals.wait();
    eprintln!("{signal} received, shutting down");
    node.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        *Keypair::from_secret_bytes([7; 32]).public()
    }

    #[test]
    fn listen_addresses_allow_port_zero_and_keyless_curve() {
        let k = key();
        let (l, curve) = parse_listen("tcp://127.0.0.1:0", &k).unwrap();
        assert_eq!((l.address().port(), curve), (Some(0), false));
        let (l, curve) = parse_listen("curve://127.0.0.1:0", &k).unwrap();
        assert_eq!((l.address().host(), curve), (Some("127.0.0.1"), true));
        let ours = format!("curve://127.0.0.1:4567/{}", k.to_hex());
        assert!(parse_listen(&ours, &k).is_ok());
        let with_key = format!("ipc+curve:///tmp/x.sock/{}", k.to_hex());
        let (l, curve) = parse_listen(&with_key, &k).unwrap();
        assert_eq!((l.address().socket(), curve), (Some("/tmp/x.sock"), true));
        let (l, curve) = parse_listen("ipc+curve:///tmp/y.sock", &k).unwrap();
        assert_eq!((l.address().socket(), curve), (Some("/tmp/y.sock"), true));
        let (l, curve) = parse_listen("ipc://rel/z.sock", &k).unwrap();
        assert_eq!((l.address().socket(), curve), (Some("rel/z.sock"), false));
    }

    #[test]
    fn listen_addresses_refuse_foreign_keys_and_nonsense() {
        let k = key();
        let other = Keypair::from_secret_bytes([8; 32]).public().to_hex();
        for bad in [
            format!("curve://127.0.0.1:0/{other}"),
            format!("ipc+curve:///tmp/x.sock/{other}"),
            String::from("127.0.0.1:0"),
            String::from("udp://127.0.0.1:0"),
            String::from("tcp://127.0.0.1"),
            String::from("tcp://:80"),
            String::from("tcp://127.0.0.1:99999"),
            String::from("ipc://"),
            String::from("curve://127.0.0.1:0/notakey"),
        ] {
            let e = parse_listen(&bad, &k).unwrap_err();
            assert_eq!(e.exit.code(), 7, "{bad}: {}", e.message);
        }
    }
}
