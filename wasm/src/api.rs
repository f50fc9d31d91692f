//! Operations: what each `lmq_call` op code does, its arguments and its result, in the
//! [`wire`](crate::wire) format. `wasm/js/lokimq.mjs` is the only intended caller and mirrors
//! the table below.
//!
//! Every result starts with a status byte: 0 then the result listed here, or 1 then the error
//! code and message (two strings). `now` is the call's `now_us` argument (µs on the host's
//! monotonic clock; a finite number ≥ 0); calls that do not need it ignore it.
//!
//! | op | name | arguments | result |
//! |---|---|---|---|
//! | 1 | create | bytes secret (0 bytes: generate one from host randomness; else 32) | u32 node, bytes pubkey |
//! | 2 | free | — | — |
//! | 3 | set_log_level | u8 level (0 off … 5 trace) | — |
//! | 10 | set_option | str name, f64 value | — |
//! | 11 | add_category | str name, str access (`none`/`basic`/`admin`) | — |
//! | 12 | add_command | str category, str name, bool request | u32 command |
//! | 13 | add_alias | str from, str to | — |
//! | 14 | start | — | — |
//! | 20 | listen | str address, bool curve | u32 listener |
//! | 21 | connect | str address, f64 timeout ms (< 0: default), str auth (`""`: default) | conn, id outgoing |
//! | 22 | disconnect | conn, f64 linger ms | — |
//! | 23 | request | conn, str command, parts, f64 timeout ms (< 0: default) | id request |
//! | 24 | send | conn, str command, parts | — |
//! | 25 | reply | id handle, parts | — |
//! | 26 | forget_reply | id handle | bool existed |
//! | 27 | shutdown | — | — |
//! | 30 | accept | u32 listener, str remote | id stream |
//! | 31 | received | id stream, bytes | — |
//! | 32 | connected | id stream | — |
//! | 33 | closed | id stream, u8 how (0 eof, 1 reset, 2 connect failed, 3 invalid address), str reason | — |
//! | 34 | listen_failed | u32 listener, str reason | — |
//! | 35 | auth_decision | id stream, str level (`denied`/`none`/`basic`/`admin`) | — |
//! | 36 | job_finished | u32 worker | — |
//! | 37 | timeout | — | — |
//! | 40 | poll | — | one output (below) |
//! | 41 | info | — | u32 streams, pending requests, pending replies, running jobs, links |
//! | 90 | bench (feature `bench`) | u8 kind (0 handshakes, 1 round trips), u32 count, u32 payload | u32 completed |
//!
//! A *conn* is a connection token: bytes this module produced (in a `connect` result or an
//! output) and the host hands back unchanged.
//!
//! `poll` results, by their first byte:
//!
//! | kind | output | fields |
//! |---|---|---|
//! | 0 | idle | f64 next timeout (µs; -1: none) |
//! | 1 | transmit | id stream, bytes |
//! | 2 | connect | id stream, str address, str host, u32 port, str path |
//! | 3 | close | id stream, f64 linger ms |
//! | 4 | listen | u32 listener, str address, str host, u32 port, str path |
//! | 5 | auth | id stream, u32 listener, str remote, bytes pubkey (0 or 32), bool service node |
//! | 6 | command | u32 worker, u32 command, id reply (0: not a request), conn, bytes pubkey, str auth, str remote, parts |
//! | 7 | reply | id request, then 0 and parts, or 1 and str error (`TIMEOUT`, `FORBIDDEN`, …) |
//! | 8 | connected | id outgoing, conn, bytes pubkey |
//! | 9 | connect failed | id outgoing, conn, str reason |
//! | 10 | stopped | — |

use std::collections::BTreeMap;

use bytes::Bytes;
use lokimq_core::node::ConnectionId;
use lokimq_core::{Address, AuthLevel, Instant, Keypair, ListenerId, PublicKey};

use crate::host::{self, HostRng};
use crate::node::{Error, ErrorCode, HostOutput, StreamEnd, WasmNode, optional_ms};
use crate::wire::{Reader, Writer};

/// Operation codes (arguments and results: the [module docs](self)).
pub mod op {
    /// Creates a node (being built).
    pub const CREATE: u32 = 1;
    /// Frees a node.
    pub const FREE: u32 = 2;
    /// Sets the module-wide log level.
    pub const SET_LOG_LEVEL: u32 = 3;
    /// Sets a configuration option.
    pub const SET_OPTION: u32 = 10;
    /// Adds a command category.
    pub const ADD_CATEGORY: u32 = 11;
    /// Adds a command.
    pub const ADD_COMMAND: u32 = 12;
    /// Adds a command alias.
    pub const ADD_ALIAS: u32 = 13;
    /// Starts the node.
    pub const START: u32 = 14;
    /// Listens on an address.
    pub const LISTEN: u32 = 20;
    /// Connects to a remote node.
    pub const CONNECT: u32 = 21;
    /// Closes an outgoing connection.
    pub const DISCONNECT: u32 = 22;
    /// Sends a request.
    pub const REQUEST: u32 = 23;
    /// Sends a plain command.
    pub const SEND: u32 = 24;
    /// Answers a request by its reply handle.
    pub const REPLY: u32 = 25;
    /// Drops a reply handle unanswered.
    pub const FORGET_REPLY: u32 = 26;
    /// Starts shutdown.
    pub const SHUTDOWN: u32 = 27;
    /// A connection arrived on a listener.
    pub const ACCEPT: u32 = 30;
    /// Bytes arrived on a stream.
    pub const RECEIVED: u32 = 31;
    /// A dial succeeded.
    pub const CONNECTED: u32 = 32;
    /// A stream ended, or its dial failed.
    pub const CLOSED: u32 = 33;
    /// A bind failed.
    pub const LISTEN_FAILED: u32 = 34;
    /// The answer to an auth request.
    pub const AUTH_DECISION: u32 = 35;
    /// A command handler returned.
    pub const JOB_FINISHED: u32 = 36;
    /// The node's deadline came.
    pub const TIMEOUT: u32 = 37;
    /// The next output.
    pub const POLL: u32 = 40;
    /// Counters.
    pub const INFO: u32 = 41;
    /// The in-module benchmark loop (feature `bench`).
    pub const BENCH: u32 = 90;
}

/// Output kinds of `poll` (fields: the [module docs](self)).
pub mod kind {
    /// Nothing to do; the next deadline follows.
    pub const IDLE: u8 = 0;
    /// Write bytes to a stream.
    pub const TRANSMIT: u8 = 1;
    /// Dial a stream.
    pub const CONNECT: u8 = 2;
    /// Close a stream.
    pub const CLOSE: u8 = 3;
    /// Bind a listener.
    pub const LISTEN: u8 = 4;
    /// Decide a connection's auth level.
    pub const AUTH: u8 = 5;
    /// Run a command handler.
    pub const COMMAND: u8 = 6;
    /// A request finished.
    pub const REPLY: u8 = 7;
    /// A connection is up.
    pub const CONNECTED: u8 = 8;
    /// A connection attempt failed.
    pub const CONNECT_FAILED: u8 = 9;
    /// Shutdown finished.
    pub const STOPPED: u8 = 10;
}

/// Every node the host created, by handle.
#[derive(Default)]
pub struct Api {
    nodes: BTreeMap<u32, WasmNode<HostRng>>,
    next_node: u32,
}

impl Api {
    /// Runs `op` with `args`, writing the status byte and result (or error) to `out`.
    pub fn call(&mut self, op: u32, node: u32, now_us: f64, args: &[u8], out: &mut Vec<u8>) {
        let mut w = Vec::new();
        match self.dispatch(op, node, now_us, args, &mut w) {
            Ok(()) => {
                out.push(0);
                out.extend_from_slice(&w);
            }
            Err(e) => {
                out.push(1);
                Writer::new(out).str(e.code.as_str()).str(&e.message);
            }
        }
    }

    fn dispatch(
        &mut self,
        op: u32,
        handle: u32,
        now_us: f64,
        args: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut r = Reader::new(args);
        let mut w = Writer::new(out);
        match op {
            op::CREATE => {
                let secret = r.bytes()?;
                r.finish()?;
                let keypair = match secret.len() {
                    0 => Keypair::generate(&mut HostRng),
                    32 => {
                        let mut s = [0u8; 32];
                        s.copy_from_slice(secret);
                        Keypair::from_secret_bytes(s)
                    }
                    n => {
                        return Err(Error::new(
                            ErrorCode::BadKey,
                            format!("a secret key is 32 bytes, not {n}"),
                        ));
                    }
                };
                let id = self
                    .next_node
                    .checked_add(1)
                    .ok_or_else(|| Error::new(ErrorCode::BadArgument, "too many nodes created"))?;
                self.next_node = id;
                let node = WasmNode::new(keypair, HostRng);
                w.u32(id).bytes(node.pubkey().as_bytes());
                self.nodes.insert(id, node);
                return Ok(());
            }
            op::SET_LOG_LEVEL => {
                let level = r.u8()?;
                r.finish()?;
                host::set_log_level(level);
                return Ok(());
            }
            #[cfg(feature = "bench")]
            op::BENCH => {
                let kind = r.u8()?;
                let count = r.u32()?;
                let payload = r.u32()? as usize;
                r.finish()?;
                let done = crate::bench::run(kind, count, payload, HostRng)?;
                w.u32(done);
                return Ok(());
            }
            op::FREE => {
                r.finish()?;
                return self
                    .nodes
                    .remove(&handle)
                    .map(|_| ())
                    .ok_or_else(|| unknown_node(handle));
            }
            _ => {}
        }
        let node = self
            .nodes
            .get_mut(&handle)
            .ok_or_else(|| unknown_node(handle))?;
        let now = instant(now_us)?;
        match op {
            op::SET_OPTION => {
                let name = r.str()?;
                let value = r.f64()?;
                r.finish()?;
                node.set_option(name, value)?;
            }
            op::ADD_CATEGORY => {
                let name = r.str()?;
                let access = level(r.str()?)?;
                r.finish()?;
                node.add_category(name, access)?;
            }
            op::ADD_COMMAND => {
                let category = r.str()?;
                let name = r.str()?;
                let request = r.bool()?;
                r.finish()?;
                w.u32(u32::from(node.add_command(category, name, request)?));
            }
            op::ADD_ALIAS => {
                let from = r.str()?;
                let to = r.str()?;
                r.finish()?;
                node.add_alias(from, to)?;
            }
            op::START => {
                r.finish()?;
                node.start(now)?;
            }
            op::LISTEN => {
                let address = r.str()?;
                let curve = r.bool()?;
                r.finish()?;
                w.u32(u32::from(node.listen(now, address, curve)?));
            }
            op::CONNECT => {
                let address = r.str()?;
                let timeout = optional_ms("timeout", r.f64()?)?;
                let auth = match r.str()? {
                    "" => None,
                    text => Some(level(text)?),
                };
                r.finish()?;
                let conn = node.connect(now, address, timeout, auth)?;
                write_conn(&mut w, &conn);
                w.id(outgoing_id(&conn));
            }
            op::DISCONNECT => {
                let conn = read_conn(&mut r)?;
                let linger = optional_ms("linger", r.f64()?)?.unwrap_or_default();
                r.finish()?;
                node.disconnect(now, &conn, linger)?;
            }
            op::REQUEST => {
                let conn = read_conn(&mut r)?;
                let command = r.str()?;
                let parts = r.parts()?;
                let timeout = optional_ms("timeout", r.f64()?)?;
                r.finish()?;
                w.id(node.request(now, &conn, command, parts, timeout)?);
            }
            op::SEND => {
                let conn = read_conn(&mut r)?;
                let command = r.str()?;
                let parts = r.parts()?;
                r.finish()?;
                node.send(now, &conn, command, parts)?;
            }
            op::REPLY => {
                let handle = r.id()?;
                let parts = r.parts()?;
                r.finish()?;
                node.reply(now, handle, parts)?;
            }
            op::FORGET_REPLY => {
                let handle = r.id()?;
                r.finish()?;
                w.bool(node.forget_reply(handle));
            }
            op::SHUTDOWN => {
                r.finish()?;
                node.shutdown(now)?;
            }
            op::ACCEPT => {
                let listener = listener(r.u32()?)?;
                let remote = r.str()?;
                r.finish()?;
                w.id(node.accept(now, listener, remote)?);
            }
            op::RECEIVED => {
                let stream = r.id()?;
                let data = r.bytes()?;
                r.finish()?;
                node.received(now, stream, data)?;
            }
            op::CONNECTED => {
                let stream = r.id()?;
                r.finish()?;
                node.connected(now, stream)?;
            }
            op::CLOSED => {
                let stream = r.id()?;
                let how = r.u8()?;
                let reason = String::from(r.str()?);
                r.finish()?;
                let end = match how {
                    0 => StreamEnd::Eof,
                    1 => StreamEnd::Reset(reason),
                    2 => StreamEnd::ConnectFailed(reason),
                    3 => StreamEnd::InvalidAddress(reason),
                    n => {
                        return Err(Error::new(
                            ErrorCode::BadArgument,
                            format!("{n} is not a way for a stream to end (0 to 3)"),
                        ));
                    }
                };
                node.closed(now, stream, end)?;
            }
            op::LISTEN_FAILED => {
                let listener = listener(r.u32()?)?;
                let reason = r.str()?;
                r.finish()?;
                node.listen_failed(now, listener, reason)?;
            }
            op::AUTH_DECISION => {
                let stream = r.id()?;
                let level = level(r.str()?)?;
                r.finish()?;
                node.auth_decision(now, stream, level)?;
            }
            op::JOB_FINISHED => {
                let worker = u16::try_from(r.u32()?)
                    .map_err(|_| Error::new(ErrorCode::BadArgument, "no such worker"))?;
                r.finish()?;
                node.job_finished(now, worker)?;
            }
            op::TIMEOUT => {
                r.finish()?;
                node.timeout(now)?;
            }
            op::POLL => {
                r.finish()?;
                match node.poll() {
                    Some(output) => write_output(&mut w, &output),
                    None => {
                        #[allow(clippy::cast_precision_loss)] // µs fit an f64 for 285 years
                        let t = node.poll_timeout().map_or(-1.0, |t| t.as_micros() as f64);
                        w.u8(kind::IDLE).f64(t);
                    }
                }
            }
            op::INFO => {
                r.finish()?;
                let i = node.info();
                for n in [
                    i.streams,
                    i.pending_requests,
                    i.pending_replies,
                    i.running_jobs,
                    i.links,
                ] {
                    w.u32(u32::try_from(n).unwrap_or(u32::MAX));
                }
            }
            other => {
                return Err(Error::new(
                    ErrorCode::BadArgument,
                    format!("unknown operation {other}"),
                ));
            }
        }
        Ok(())
    }
}

fn unknown_node(handle: u32) -> Error {
    Error::new(
        ErrorCode::UnknownNode,
        format!("no node {handle} (never created, or freed)"),
    )
}

/// The host's `now_us` as an [`Instant`].
fn instant(now_us: f64) -> Result<Instant, Error> {
    if !(now_us.is_finite() && now_us >= 0.0) {
        return Err(Error::new(
            ErrorCode::BadArgument,
            format!("time must be a finite number of microseconds ≥ 0, not {now_us}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked above; saturates
    Ok(Instant::from_micros(now_us as u64))
}

fn level(text: &str) -> Result<AuthLevel, Error> {
    text.parse().map_err(|_| {
        Error::new(
            ErrorCode::BadArgument,
            format!("`{text}` is not an auth level (denied, none, basic or admin)"),
        )
    })
}

fn listener(n: u32) -> Result<u16, Error> {
    u16::try_from(n)
        .ok()
        .filter(|&l| l != ListenerId(u16::MAX).get())
        .ok_or_else(|| Error::new(ErrorCode::Refused, format!("no listener {n}")))
}

fn outgoing_id(conn: &ConnectionId) -> u64 {
    match conn {
        ConnectionId::Outgoing { id, .. } => *id,
        _ => 0,
    }
}

fn pubkey_bytes(pk: Option<&PublicKey>) -> &[u8] {
    pk.map_or(&[][..], |k| k.as_bytes().as_slice())
}

/// Connection tokens: 0 + pubkey (service node), 1 + id + pubkey? (outgoing), 2 + listener +
/// route + pubkey? (incoming).
fn write_conn(w: &mut Writer<'_>, conn: &ConnectionId) {
    let mut token = Vec::new();
    let mut t = Writer::new(&mut token);
    match conn {
        ConnectionId::Sn(pk) => {
            t.u8(0).bytes(pk.as_bytes());
        }
        ConnectionId::Outgoing { id, pubkey } => {
            t.u8(1).id(*id).bytes(pubkey_bytes(pubkey.as_ref()));
        }
        ConnectionId::Incoming {
            listener,
            route,
            pubkey,
        } => {
            t.u8(2)
                .u32(u32::from(listener.get()))
                .bytes(route)
                .bytes(pubkey_bytes(pubkey.as_ref()));
        }
        other => {
            log::error!("a connection id this module cannot name: {other}");
            t.u8(255);
        }
    }
    w.bytes(&token);
}

fn read_conn(r: &mut Reader<'_>) -> Result<ConnectionId, Error> {
    let token = r.bytes()?;
    decode_conn(token).ok_or_else(|| {
        Error::new(
            ErrorCode::BadArgument,
            "not a connection this module produced (pass the object connect() or a handler gave you)",
        )
    })
}

fn decode_conn(token: &[u8]) -> Option<ConnectionId> {
    let mut t = Reader::new(token);
    let key = |b: &[u8]| -> Option<Option<PublicKey>> {
        match b.len() {
            0 => Some(None),
            _ => PublicKey::from_slice(b).ok().map(Some),
        }
    };
    let conn = match t.u8().ok()? {
        0 => ConnectionId::Sn(key(t.bytes().ok()?)??),
        1 => ConnectionId::Outgoing {
            id: t.id().ok()?,
            pubkey: key(t.bytes().ok()?)?,
        },
        2 => ConnectionId::Incoming {
            listener: ListenerId(u16::try_from(t.u32().ok()?).ok()?),
            route: Bytes::copy_from_slice(t.bytes().ok()?),
            pubkey: key(t.bytes().ok()?)?,
        },
        _ => return None,
    };
    t.finish().ok()?;
    Some(conn)
}

fn write_address(w: &mut Writer<'_>, a: &Address) {
    w.str(&a.zmq_address())
        .str(a.host().unwrap_or(""))
        .u32(u32::from(a.port().unwrap_or(0)))
        .str(a.socket().unwrap_or(""));
}

fn write_output(w: &mut Writer<'_>, output: &HostOutput) {
    match output {
        HostOutput::Transmit { stream, data } => {
            w.u8(kind::TRANSMIT).id(*stream).bytes(data);
        }
        HostOutput::Connect { stream, address } => {
            w.u8(kind::CONNECT).id(*stream);
            write_address(w, address);
        }
        HostOutput::Close { stream, linger } => {
            w.u8(kind::CLOSE)
                .id(*stream)
                .f64(linger.as_secs_f64() * 1000.0);
        }
        HostOutput::Listen { listener, address } => {
            w.u8(kind::LISTEN).u32(u32::from(*listener));
            write_address(w, address);
        }
        HostOutput::Auth {
            stream,
            listener,
            remote,
            pubkey,
            service_node,
        } => {
            w.u8(kind::AUTH)
                .id(*stream)
                .u32(u32::from(*listener))
                .str(remote)
                .bytes(pubkey_bytes(pubkey.as_ref()))
                .bool(*service_node);
        }
        HostOutput::Command {
            worker,
            command,
            reply,
            message,
        } => {
            w.u8(kind::COMMAND)
                .u32(u32::from(*worker))
                .u32(u32::from(*command))
                .id(reply.unwrap_or(0));
            write_conn(w, &message.conn);
            w.bytes(pubkey_bytes(message.conn.pubkey()))
                .str(message.access.auth.as_str())
                .str(&message.remote)
                .parts(&message.data);
        }
        HostOutput::Reply { request, result } => {
            w.u8(kind::REPLY).id(*request);
            match result {
                Ok(parts) => {
                    w.u8(0).parts(parts);
                }
                Err(e) => {
                    w.u8(1).str(&e.to_string());
                }
            }
        }
        HostOutput::Connected { conn } => {
            w.u8(kind::CONNECTED).id(outgoing_id(conn));
            write_conn(w, conn);
            w.bytes(pubkey_bytes(conn.pubkey()));
        }
        HostOutput::ConnectFailed { conn, reason } => {
            w.u8(kind::CONNECT_FAILED).id(outgoing_id(conn));
            write_conn(w, conn);
            w.str(reason);
        }
        HostOutput::Stopped => {
            w.u8(kind::STOPPED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(api: &mut Api, op: u32, node: u32, args: &[u8]) -> Result<Vec<u8>, (String, String)> {
        let mut out = Vec::new();
        api.call(op, node, 1.0, args, &mut out);
        let mut r = Reader::new(&out[1..]);
        if out[0] == 0 {
            Ok(out[1..].to_vec())
        } else {
            Err((r.str().unwrap().into(), r.str().unwrap().into()))
        }
    }

    fn args(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut Writer::new(&mut v));
        v
    }

    #[test]
    fn bad_input_is_a_coded_error() {
        let mut api = Api::default();
        let e = call(
            &mut api,
            op::CREATE,
            0,
            &args(|w| {
                w.bytes(&[1; 31]);
            }),
        )
        .unwrap_err();
        assert_eq!(e.0, "BAD_KEY");
        assert!(e.1.contains("32 bytes, not 31"), "{}", e.1);
        let ok = call(
            &mut api,
            op::CREATE,
            0,
            &args(|w| {
                w.bytes(&[]);
            }),
        )
        .unwrap();
        let node = Reader::new(&ok).u32().unwrap();
        assert_eq!(
            call(&mut api, op::START, 99, &[]).unwrap_err().0,
            "UNKNOWN_NODE"
        );
        assert_eq!(call(&mut api, 77, node, &[]).unwrap_err().0, "BAD_ARGUMENT");
        // Running-only calls before start, and a malformed connection token.
        let e = call(&mut api, op::TIMEOUT, node, &[]).unwrap_err();
        assert_eq!(e.0, "NOT_STARTED");
        call(&mut api, op::START, node, &[]).unwrap();
        let e = call(
            &mut api,
            op::SEND,
            node,
            &args(|w| {
                w.bytes(&[7, 7]).str("a.b").parts(&[]);
            }),
        )
        .unwrap_err();
        assert_eq!(e.0, "BAD_ARGUMENT");
        let e = call(
            &mut api,
            op::RECEIVED,
            node,
            &args(|w| {
                w.id(5).bytes(b"x");
            }),
        )
        .unwrap_err();
        assert_eq!(e.0, "UNKNOWN_STREAM");
        let e = call(
            &mut api,
            op::ADD_CATEGORY,
            node,
            &args(|w| {
                w.str("x").str("none");
            }),
        )
        .unwrap_err();
        assert_eq!(e.0, "ALREADY_STARTED");
        // Time must be a number of microseconds.
        let mut out = Vec::new();
        api.call(op::TIMEOUT, node, f64::NAN, &[], &mut out);
        assert_eq!(out[0], 1);
        call(&mut api, op::FREE, node, &[]).unwrap();
        assert_eq!(
            call(&mut api, op::FREE, node, &[]).unwrap_err().0,
            "UNKNOWN_NODE"
        );
    }

    /// Random op codes and random argument bytes, on a running node with a live connection
    /// and on unknown handles: every call answers with a status byte, none panics.
    #[test]
    fn random_calls_never_panic() {
        let mut api = Api::default();
        let created = call(
            &mut api,
            op::CREATE,
            0,
            &args(|w| {
                w.bytes(&[]);
            }),
        )
        .unwrap();
        let node = Reader::new(&created).u32().unwrap();
        call(&mut api, op::START, node, &[]).unwrap();
        call(
            &mut api,
            op::LISTEN,
            node,
            &args(|w| {
                w.str("tcp://127.0.0.1:0").bool(true);
            }),
        )
        .unwrap();
        call(
            &mut api,
            op::ACCEPT,
            node,
            &args(|w| {
                w.u32(0).str("127.0.0.1");
            }),
        )
        .unwrap();
        let ops: Vec<u32> = (0..=100).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let op = ops[(next() % ops.len() as u64) as usize];
            let len = (next() % 48) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Small leading lengths and ids, so that some calls get past the first field.
            if len >= 8 && i % 2 == 0 {
                bytes[..8].copy_from_slice(&f64::from((next() % 4) as u32).to_le_bytes());
            }
            let handle = if i % 5 == 0 { 99 } else { node };
            if op == op::FREE || op == op::SHUTDOWN {
                continue;
            }
            let now = if i % 97 == 0 { f64::NAN } else { i as f64 };
            let mut out = Vec::new();
            api.call(op, handle, now, &bytes, &mut out);
            assert!(
                matches!(out.first(), Some(0 | 1)),
                "op {op}: no status byte"
            );
        }
    }

    #[test]
    fn conn_tokens_round_trip() {
        let pk = *Keypair::from_secret_bytes([3; 32]).public();
        for conn in [
            ConnectionId::Sn(pk),
            ConnectionId::Outgoing {
                id: 9,
                pubkey: Some(pk),
            },
            ConnectionId::Outgoing {
                id: 1,
                pubkey: None,
            },
            ConnectionId::Incoming {
                listener: ListenerId(2),
                route: Bytes::from_static(b"Lroute"),
                pubkey: Some(pk),
            },
        ] {
            let mut v = Vec::new();
            write_conn(&mut Writer::new(&mut v), &conn);
            let back = read_conn(&mut Reader::new(&v)).unwrap();
            assert_eq!(back, conn);
            assert_eq!(back.pubkey(), conn.pubkey());
        }
        assert!(decode_conn(&[0, 3, 0, 0, 0, 1, 2, 3]).is_none());
        assert!(decode_conn(&[]).is_none());
    }
}
