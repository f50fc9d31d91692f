//! Application-level interop of the native node with real libzmq 4.3 (the `zmq` crate's
//! vendored build), frame by frame, against OxenMQ's documented protocol:
//!
//! * a libzmq DEALER playing an OxenMQ client against our listener: HI/HELLO, requests,
//!   commands, `send_back`, every built-in error reply in both forms, ignored inputs, the
//!   service-node set judged per message, the allow function's arguments and verdicts, denial;
//! * our node's outgoing connections (`connect_remote`, `connect_sn`) against a libzmq ROUTER
//!   playing an OxenMQ listener: the frames it sees, replies and error replies mapped to
//!   `RequestError`s, late replies, commands the ROUTER sends back, `BYE`, a wrong server key;
//! * volume: 1000 pipelined requests and near-1 MiB multipart messages, both directions.
//!
//! Plain (NULL) and CURVE are covered by one body each, run twice (`…::plain`, `…::curve`).
//! `libzmq.rs` holds the basic smoke tests; nothing here repeats them.

mod common;
#[path = "libzmq_app/peers.rs"]
mod peers;

use lokimq::{CategoryOptions, QueueLimit};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::libzmq::{RECV_MS, l_route};
use common::*;
use lokimq::{
    Access, AuthLevel, Builder, Bytes, ConnectOptions, ConnectSnOptions, ConnectionId, Keypair,
    Listen, LokiMq, Message, PublicKey, RequestError, RequestOptions,
};
use peers::*;
use zmq::SocketEvent;

/// Runs a `fn(curve: bool)` body as two tests, `NAME::plain` and `NAME::curve`.
macro_rules! plain_and_curve {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[test]
            fn plain() {
                super::$body(false);
            }
            #[test]
            fn curve() {
                super::$body(true);
            }
        }
    )*};
}

fn keypair(seed: u8) -> Keypair {
    Keypair::from_secret_bytes([seed; 32])
}

fn echo(m: &mut Message) {
    m.send_reply(m.data().to_vec());
}

/// Replies `[auth level, hex key or "", remote address, "1"/"0" caller is an SN, id kind]`.
fn whoami(m: &mut Message) {
    let access = m.access();
    let key = m.conn().pubkey().map(|k| k.to_hex()).unwrap_or_default();
    let kind = match m.conn() {
        ConnectionId::Sn(_) => "sn",
        ConnectionId::Outgoing { .. } => "outgoing",
        ConnectionId::Incoming { .. } => "incoming",
        _ => "other",
    };
    m.send_reply([
        Bytes::from(access.auth.as_str()),
        Bytes::from(key),
        Bytes::from(m.remote().to_owned()),
        Bytes::from(if access.remote_sn { "1" } else { "0" }),
        Bytes::from(kind),
    ]);
}

/// The longest command OxenMQ accepts: a 50-byte category, a dot, a 200-byte name.
fn longest_command() -> (String, String, String) {
    let cat = "c".repeat(50);
    let name = "x".repeat(200);
    let full = format!("{cat}.{name}");
    assert_eq!(full.len(), 251);
    (cat, name, full)
}

/// The categories our listening node offers, one per access rule of OxenMQ:
///
/// | category | access | commands |
/// |---|---|---|
/// | public | none | echo (request), hello (→ send_back public.hi), whoami (request) |
/// | basic | basic | echo (request), note (→ send_back public.noted) |
/// | admin | admin | echo |
/// | sn | remote_sn | echo, ping (→ send_back sn.pong) |
/// | local | local_sn | echo |
/// | snlocal | remote_sn + local_sn | echo |
/// | strict | basic + remote_sn + local_sn | echo |
/// | bulk | none, unlimited queue | echo |
/// | c×50 | none | x×200 (echo) |
///
/// plus the alias `legacy.echo` → `basic.echo`.
fn app_builder(service_node: bool) -> Builder {
    let (cat, name, _) = longest_command();
    let mut b = builder();
    // OxenMQ requires a service node to be given its keys.
    b.keypair(keypair(60)).service_node(service_node);
    add_shared_categories(&mut b)
        .add_command("basic", "note", |m| {
            m.send_back("public.noted", m.data().to_vec())
        })
        .unwrap()
        .add_command("sn", "ping", |m| m.send_back("sn.pong", m.data().to_vec()))
        .unwrap()
        .add_category("local", Access::new(AuthLevel::None, false, true))
        .unwrap()
        .add_request_command("local", "echo", echo)
        .unwrap()
        .add_category("snlocal", Access::new(AuthLevel::None, true, true))
        .unwrap()
        .add_request_command("snlocal", "echo", echo)
        .unwrap()
        .add_category("strict", Access::new(AuthLevel::Basic, true, true))
        .unwrap()
        .add_request_command("strict", "echo", echo)
        .unwrap()
        .add_category(
            "bulk",
            CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::Unlimited),
        )
        .unwrap()
        .add_request_command("bulk", "echo", echo)
        .unwrap()
        .add_category(&cat, AuthLevel::None)
        .unwrap()
        .add_request_command(&cat, &name, echo)
        .unwrap()
        .add_command_alias("legacy.echo", "basic.echo")
        .unwrap();
    b
}

/// What our listening node ([`app_builder`]) and our client node ([`client_node`]) both offer:
/// `public` (echo and whoami requests, hello → send_back `public.hi`) and an `echo` request in
/// `basic`, `admin` and `sn` (remote_sn).
fn add_shared_categories(b: &mut Builder) -> &mut Builder {
    b.add_category("public", AuthLevel::None)
        .unwrap()
        .add_request_command("public", "echo", echo)
        .unwrap()
        .add_command("public", "hello", |m| {
            m.send_back("public.hi", m.data().to_vec())
        })
        .unwrap()
        .add_request_command("public", "whoami", whoami)
        .unwrap()
        .add_category("basic", AuthLevel::Basic)
        .unwrap()
        .add_request_command("basic", "echo", echo)
        .unwrap()
        .add_category("admin", AuthLevel::Admin)
        .unwrap()
        .add_request_command("admin", "echo", echo)
        .unwrap()
        .add_category("sn", Access::new(AuthLevel::None, true, false))
        .unwrap()
        .add_request_command("sn", "echo", echo)
        .unwrap()
}

/// What the allow function was called with: `(ip, key, service node)`.
type AllowCall = (String, Option<PublicKey>, bool);

/// A started listening node and what its allow function saw.
struct App {
    node: LokiMq,
    endpoint: String,
    curve: bool,
    allow_calls: mpsc::Receiver<AllowCall>,
}

impl App {
    /// Starts `b` with one loopback listener (CURVE or plain) whose allow function records
    /// its arguments and answers `level(key)`.
    fn start(
        mut b: Builder,
        curve: bool,
        level: impl Fn(Option<&PublicKey>) -> AuthLevel + Send + Sync + 'static,
    ) -> Self {
        let (tx, allow_calls) = mpsc::channel();
        let listen = if curve {
            Listen::curve(loopback())
        } else {
            Listen::plain(loopback())
        }
        .unwrap()
        .allow(move |ip, key, sn| {
            let _ = tx.send((ip.to_owned(), key.copied(), sn));
            level(key)
        });
        b.listen(listen);
        let node = b.start().expect("node starts");
        let endpoint = node.bound_addresses()[0].zmq_address();
        Self {
            node,
            endpoint,
            curve,
            allow_calls,
        }
    }

    /// A DEALER for client `me`, with OxenMQ's `L` routing id or an assigned one.
    fn dealer(&self, me: &Keypair, routing_id: bool) -> Dealer {
        self.dealer_monitored(me, routing_id, 0)
    }

    fn dealer_monitored(&self, me: &Keypair, routing_id: bool, monitor: i32) -> Dealer {
        self.dealer_tweaked(me, routing_id, monitor, None)
    }

    fn dealer_tweaked(
        &self,
        me: &Keypair,
        routing_id: bool,
        monitor: i32,
        tweak: Option<&dyn Fn(&zmq::Socket)>,
    ) -> Dealer {
        let server = *self.node.pubkey();
        Dealer::connect(
            &self.endpoint,
            DealerOpts {
                me,
                server: self.curve.then_some(&server),
                routing_id,
                monitor,
                tweak,
            },
        )
    }

    /// Waits until every call posted from this thread has reached the proxy (its channel is
    /// FIFO per sender), so a later wire message is judged with the new state.
    fn barrier(&self) {
        self.node.handle().stats().expect("proxy answers");
    }

    /// The next allow-function call (bounded wait).
    fn allow_call(&self) -> AllowCall {
        wait(&self.allow_calls, "the allow function")
    }
}

fn hex_or_empty(curve: bool, key: &PublicKey) -> Vec<u8> {
    if curve {
        key.to_hex().into_bytes()
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A libzmq DEALER (an OxenMQ client) against our listener
// ---------------------------------------------------------------------------------------------

plain_and_curve! {
    dealer_requests_commands_and_send_back => dealer_requests_commands_and_send_back;
    dealer_with_assigned_routing_id => dealer_with_assigned_routing_id;
    dealer_gets_every_error_reply => dealer_gets_every_error_reply;
    dealer_inputs_the_listener_ignores => dealer_inputs_the_listener_ignores;
    local_sn_categories_on_a_service_node => local_sn_categories_on_a_service_node;
    allow_function_level_is_enforced => allow_function_level_is_enforced;
    denied_dealer_never_gets_through => denied_dealer_never_gets_through;
    oversize_frame_drops_the_connection => oversize_frame_drops_the_connection;
    pipelined_requests => pipelined_requests;
    near_mebibyte_multipart_messages => near_mebibyte_multipart_messages;
}

fn dealer_requests_commands_and_send_back(curve: bool) {
    let app = App::start(app_builder(false), curve, |_| AuthLevel::Basic);
    let me = keypair(11);
    let d = app.dealer(&me, true);
    let t = [tag(1), tag(2), tag(3), tag(4), tag(5)];

    // OxenMQ accepts commands without HI (service-node connections never send it).
    d.exchange(
        &[b"public.echo", &t[0], b"first"],
        &[b"REPLY", &t[0], b"first"],
    );
    // HI is answered every time it is sent to a listener.
    d.exchange(&[b"HI"], &[b"HELLO"]);
    d.exchange(&[b"HI"], &[b"HELLO"]);
    // Binary, empty and NUL-bearing parts survive in order; the tag is echoed as sent.
    d.exchange(
        &[b"public.echo", &t[1], b"", b"\0\x01\xff", b"abc", b""],
        &[b"REPLY", &t[1], b"", b"\0\x01\xff", b"abc", b""],
    );
    // A request with only its tag gets a reply with only the tag.
    d.exchange(&[b"public.echo", &t[2]], &[b"REPLY", &t[2]]);
    // A plain command whose handler uses send_back: the answer reaches this DEALER.
    d.exchange(&[b"public.hello", b"x", b"y"], &[b"public.hi", b"x", b"y"]);
    d.exchange(&[b"public.hello"], &[b"public.hi"]);
    // Commands of a category the allow function's level admits.
    d.exchange(&[b"basic.note", b"n"], &[b"public.noted", b"n"]);
    d.exchange(&[b"basic.echo", &t[3], b"b"], &[b"REPLY", &t[3], b"b"]);
    // An alias resolves to its target.
    d.exchange(&[b"legacy.echo", &t[4], b"q"], &[b"REPLY", &t[4], b"q"]);
    // The longest accepted command (50 + 1 + 200 bytes).
    let (_, _, full) = longest_command();
    d.exchange(
        &[full.as_bytes(), &t[0], b"long"],
        &[b"REPLY", &t[0], b"long"],
    );
    // What a handler learns about this caller.
    let key = hex_or_empty(curve, me.public());
    d.exchange(
        &[b"public.whoami", &t[1]],
        &[
            b"REPLY",
            &t[1],
            b"basic",
            &key,
            b"127.0.0.1",
            b"0",
            b"incoming",
        ],
    );

    // The allow function ran once, for this connection, with OxenMQ's arguments.
    let (ip, k, sn) = app.allow_call();
    assert_eq!(ip, "127.0.0.1");
    assert_eq!(k, curve.then_some(*me.public()));
    assert!(!sn, "not in the active set");
    assert!(app.allow_calls.try_recv().is_err(), "allow ran once");
}

fn dealer_with_assigned_routing_id(curve: bool) {
    let app = App::start(app_builder(false), curve, |_| AuthLevel::None);
    let (a, b) = (keypair(12), keypair(13));
    let anon = app.dealer(&a, false);
    let named = app.dealer(&b, true);
    let (t1, t2) = (tag(10), tag(11));

    anon.exchange(&[b"HI"], &[b"HELLO"]);
    named.exchange(&[b"HI"], &[b"HELLO"]);
    // Interleaved traffic: each peer gets only its own answers.
    anon.send(&[b"public.echo", &t1, b"anon"]);
    named.send(&[b"public.echo", &t2, b"named"]);
    anon.send(&[b"public.hello", b"to-anon"]);
    named.send(&[b"public.hello", b"to-named"]);
    // The two commands run on different workers, so their answers may come in either order.
    let two = |d: &Dealer| {
        let mut got = vec![d.recv(), d.recv()];
        got.sort();
        got
    };
    assert_eq!(
        two(&anon),
        [
            msg(&[b"REPLY", &t1, b"anon"]),
            msg(&[b"public.hi", b"to-anon"])
        ]
    );
    assert_eq!(
        two(&named),
        [
            msg(&[b"REPLY", &t2, b"named"]),
            msg(&[b"public.hi", b"to-named"])
        ]
    );
    // Without an L routing id, CURVE still identifies the key; plain has none.
    anon.exchange(
        &[b"public.whoami", &t1],
        &[
            b"REPLY",
            &t1,
            b"none",
            &hex_or_empty(curve, a.public()),
            b"127.0.0.1",
            b"0",
            b"incoming",
        ],
    );
}

fn dealer_gets_every_error_reply(curve: bool) {
    // Level none, not a service node, key not in the active set.
    let app = App::start(app_builder(false), curve, |_| AuthLevel::None);
    let me = keypair(14);
    let d = app.dealer(&me, true);
    let t = tag(20);
    d.exchange(&[b"HI"], &[b"HELLO"]);

    // FORBIDDEN: auth level too low. Reply form iff a request command came with a tag; the
    // request's data are not echoed. Auth is checked before the tag, so no NO_REPLY_TAG.
    d.exchange(&[b"basic.echo", &t, b"x"], &[b"FORBIDDEN", b"REPLY", &t]);
    d.exchange(&[b"basic.echo"], &[b"FORBIDDEN", b"basic.echo"]);
    d.exchange(&[b"basic.note", b"x"], &[b"FORBIDDEN", b"basic.note"]);
    d.exchange(&[b"admin.echo", &t], &[b"FORBIDDEN", b"REPLY", &t]);
    // Through an alias, the error echoes the command as sent.
    d.exchange(&[b"legacy.echo"], &[b"FORBIDDEN", b"legacy.echo"]);
    d.exchange(&[b"legacy.echo", &t], &[b"FORBIDDEN", b"REPLY", &t]);

    // NOT_A_SERVICE_NODE: a local_sn category on a node that is not one.
    d.exchange(
        &[b"local.echo", &t, b"y"],
        &[b"NOT_A_SERVICE_NODE", b"REPLY", &t],
    );
    d.exchange(&[b"local.echo"], &[b"NOT_A_SERVICE_NODE", b"local.echo"]);

    // FORBIDDEN_SN: a remote_sn category from a caller that is not an active SN.
    d.exchange(&[b"sn.echo", &t], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    d.exchange(&[b"sn.echo"], &[b"FORBIDDEN_SN", b"sn.echo"]);
    d.exchange(&[b"sn.ping", b"p"], &[b"FORBIDDEN_SN", b"sn.ping"]);

    // Check order: auth, then local_sn, then remote_sn.
    d.exchange(&[b"strict.echo", &t], &[b"FORBIDDEN", b"REPLY", &t]);
    d.exchange(
        &[b"snlocal.echo", &t],
        &[b"NOT_A_SERVICE_NODE", b"REPLY", &t],
    );

    // NO_REPLY_TAG: a request command (the caller is allowed) with no tag frame.
    d.exchange(&[b"public.echo"], &[b"NO_REPLY_TAG", b"public.echo"]);

    // UNKNOWNCOMMAND, never in reply form (even when a tag-like frame follows).
    let (_, _, full) = longest_command();
    let too_long = format!("{full}x");
    let cases: [&[u8]; 9] = [
        b"nope.echo",                 // unknown category
        b"public.nope",               // unknown command
        b"publicecho",                // no dot
        b".echo",                     // leading dot
        b"public.",                   // empty command name
        b"",                          // empty command frame
        too_long.as_bytes(),          // 252 bytes
        b"REPLY.x",                   // a built-in word is not a category
        b"public.echo.extra\0binary", // trailing garbage
    ];
    for cmd in cases {
        d.exchange(&[cmd], &[b"UNKNOWNCOMMAND", cmd]);
        d.exchange(&[cmd, &t, b"data"], &[b"UNKNOWNCOMMAND", cmd]);
    }

    // Still fully usable after all that.
    d.exchange(&[b"public.echo", &t, b"ok"], &[b"REPLY", &t, b"ok"]);
}

fn dealer_inputs_the_listener_ignores(curve: bool) {
    let app = App::start(app_builder(false), curve, |_| AuthLevel::Admin);
    let d = app.dealer(&keypair(15), true);
    d.exchange(&[b"HI"], &[b"HELLO"]);
    let t = tag(30);
    let stray = tag(31);
    // None of these is answered: built-ins that make no sense on a listener, replies with no
    // or unknown tags, and error words (OxenMQ never answers an error, so two nodes cannot
    // ping-pong them). BYE on a listener is ignored too: the connection stays up.
    let ignored: [&[&[u8]]; 14] = [
        &[b"BYE"],
        &[b"HELLO"],
        &[b"REPLY"],
        &[b"REPLY", &stray, b"late"],
        &[b"UNKNOWNCOMMAND"],
        &[b"UNKNOWNCOMMAND", b"a.b"],
        &[b"FORBIDDEN", b"public.echo"],
        &[b"FORBIDDEN", b"REPLY", &stray],
        &[b"FORBIDDEN_SN", b"sn.echo"],
        &[b"FORBIDDEN_SN", b"REPLY", &stray],
        &[b"NOT_A_SERVICE_NODE", b"local.echo"],
        &[b"NOT_A_SERVICE_NODE", b"REPLY", &stray],
        &[b"NO_REPLY_TAG", b"public.echo"],
        &[b"NO_REPLY_TAG", b"REPLY", &stray],
    ];
    for parts in ignored {
        d.send(parts);
        // Messages on one connection stay in order and built-ins are answered by the proxy
        // as they arrive, before any worker runs the probe: had the ignored message been
        // answered, that answer would arrive before the probe's reply.
        d.exchange(&[b"public.echo", &t, b"probe"], &[b"REPLY", &t, b"probe"]);
    }
    // After BYE the connection is still the same one: admin access, same peer.
    d.exchange(&[b"admin.echo", &t, b"still"], &[b"REPLY", &t, b"still"]);
    assert!(
        d.try_recv(300).is_none(),
        "nothing else was sent to the DEALER"
    );
}

fn local_sn_categories_on_a_service_node(curve: bool) {
    let app = App::start(app_builder(true), curve, |_| AuthLevel::Basic);
    let d = app.dealer(&keypair(16), true);
    let t = tag(40);
    d.exchange(&[b"local.echo", &t, b"y"], &[b"REPLY", &t, b"y"]);
    // local_sn now holds, so remote_sn is what fails.
    d.exchange(&[b"snlocal.echo", &t], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    d.exchange(&[b"strict.echo", &t], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    d.exchange(&[b"strict.echo"], &[b"FORBIDDEN_SN", b"strict.echo"]);
}

#[test]
fn sn_category_follows_the_active_set_per_message() {
    let me = keypair(17);
    let app = App::start(app_builder(true), true, |_| AuthLevel::Basic);
    let d = app.dealer(&me, true);
    let t = tag(50);
    let key = me.public().to_hex().into_bytes();

    d.exchange(&[b"sn.echo", &t, b"a"], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    d.exchange(
        &[b"public.whoami", &t],
        &[
            b"REPLY",
            &t,
            b"basic",
            &key,
            b"127.0.0.1",
            b"0",
            b"incoming",
        ],
    );

    // Added to the set: the same connection's next command is an SN's.
    app.node.handle().set_active_sns([*me.public()]).unwrap();
    app.barrier();
    d.exchange(&[b"sn.echo", &t, b"b"], &[b"REPLY", &t, b"b"]);
    d.exchange(&[b"snlocal.echo", &t, b"c"], &[b"REPLY", &t, b"c"]);
    d.exchange(&[b"strict.echo", &t, b"d"], &[b"REPLY", &t, b"d"]);
    // send_back to an SN id travels back over this incoming connection.
    d.exchange(&[b"sn.ping", b"p"], &[b"sn.pong", b"p"]);
    d.exchange(
        &[b"public.whoami", &t],
        &[b"REPLY", &t, b"basic", &key, b"127.0.0.1", b"1", b"sn"],
    );

    // Removed again: refused from the next message on, connection unchanged.
    app.node
        .handle()
        .update_active_sns([], [*me.public()])
        .unwrap();
    app.barrier();
    d.exchange(&[b"sn.echo", &t, b"e"], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    d.exchange(&[b"sn.ping", b"p"], &[b"FORBIDDEN_SN", b"sn.ping"]);

    // update_active_sns adding it back works like set_active_sns.
    app.node
        .handle()
        .update_active_sns([*me.public()], [])
        .unwrap();
    app.barrier();
    d.exchange(&[b"sn.echo", &t, b"f"], &[b"REPLY", &t, b"f"]);

    // The allow function saw "not an SN" for the first connection; a connection made while
    // the key is active is reported as an SN's.
    let (_, k, sn) = app.allow_call();
    assert_eq!(k, Some(*me.public()));
    assert!(!sn);
    let d2 = app.dealer(&me, false);
    d2.exchange(&[b"sn.echo", &t, b"g"], &[b"REPLY", &t, b"g"]);
    // Two connections from one SN key: the reply went back on the one the request came in on
    // (OxenMQ 1.2.16 uses whichever connection to the key it finds first).
    assert!(
        d.try_recv(200).is_none(),
        "the other connection got nothing"
    );
    let (ip, k, sn) = app.allow_call();
    assert_eq!(
        (ip.as_str(), k, sn),
        ("127.0.0.1", Some(*me.public()), true)
    );
}

#[test]
fn sends_to_an_sn_reuse_its_incoming_connection() {
    // An SN that connected to us (its key active, over CURVE) is reached by key over that
    // connection: no lookup, no new outgoing connection (this node has no sn_lookup at all).
    let me = keypair(19);
    let mut b = app_builder(false);
    b.set_active_sns([*me.public()]);
    let app = App::start(b, true, |_| AuthLevel::None);
    let d = app.dealer(&me, true);
    let t = tag(65);
    // OxenMQ learns the route from the SN's first command.
    d.exchange(&[b"sn.echo", &t, b"hi"], &[b"REPLY", &t, b"hi"]);

    let sn = ConnectionId::Sn(*me.public());
    app.node.handle().send(&sn, "peer.note", ["n"]).unwrap();
    assert_eq!(d.recv(), msg(&[b"peer.note", b"n"]));
    let incoming_only = lokimq::SendOptions::default().incoming(true);
    app.node
        .handle()
        .send_with(&sn, "peer.incoming", ["i"], incoming_only)
        .unwrap();
    assert_eq!(d.recv(), msg(&[b"peer.incoming", b"i"]));

    let (cb, rx) = reply_channel();
    app.node.handle().request(&sn, "peer.q", ["q"], cb).unwrap();
    let req = d.recv();
    assert_eq!(req.len(), 3, "{}", show(&req));
    assert_eq!(
        (req[0].as_slice(), req[2].as_slice()),
        (&b"peer.q"[..], &b"q"[..])
    );
    assert_eq!(req[1].len(), 15);
    d.send(&[b"REPLY", &req[1], b"a"]);
    assert_eq!(wait(&rx, "SN reply").unwrap(), frames_of(&[b"a"]));
}

#[test]
fn plain_dealer_is_never_a_service_node() {
    // Over plain there is no authenticated key: an L + pubkey routing id claims nothing, even
    // for a key in the active set (as the OxenMQ SN capture shows).
    let me = keypair(18);
    let mut b = app_builder(true);
    b.set_active_sns([*me.public()]);
    let app = App::start(b, false, |_| AuthLevel::Basic);
    let d = app.dealer(&me, true);
    let t = tag(60);
    d.exchange(&[b"sn.echo", &t], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    d.exchange(
        &[b"public.whoami", &t],
        &[b"REPLY", &t, b"basic", b"", b"127.0.0.1", b"0", b"incoming"],
    );
    assert_eq!(app.allow_call(), ("127.0.0.1".to_owned(), None, false));
}

fn allow_function_level_is_enforced(curve: bool) {
    let (none, basic, admin) = (keypair(21), keypair(22), keypair(23));
    let t = tag(70);
    if curve {
        // The level follows the client's CURVE key.
        let (kb, ka) = (*basic.public(), *admin.public());
        let app = App::start(app_builder(false), true, move |k| match k {
            Some(k) if *k == kb => AuthLevel::Basic,
            Some(k) if *k == ka => AuthLevel::Admin,
            _ => AuthLevel::None,
        });
        let dn = app.dealer(&none, true);
        let db = app.dealer(&basic, true);
        let da = app.dealer(&admin, false);
        dn.exchange(&[b"public.echo", &t], &[b"REPLY", &t]);
        dn.exchange(&[b"basic.echo", &t], &[b"FORBIDDEN", b"REPLY", &t]);
        db.exchange(&[b"basic.echo", &t], &[b"REPLY", &t]);
        db.exchange(&[b"admin.echo", &t], &[b"FORBIDDEN", b"REPLY", &t]);
        da.exchange(&[b"basic.echo", &t], &[b"REPLY", &t]);
        da.exchange(&[b"admin.echo", &t, b"root"], &[b"REPLY", &t, b"root"]);
        for (d, level, kp) in [
            (&dn, "none", &none),
            (&db, "basic", &basic),
            (&da, "admin", &admin),
        ] {
            d.exchange(
                &[b"public.whoami", &t],
                &[
                    b"REPLY",
                    &t,
                    level.as_bytes(),
                    kp.public().to_hex().as_bytes(),
                    b"127.0.0.1",
                    b"0",
                    b"incoming",
                ],
            );
        }
        let mut seen: Vec<_> = (0..3).map(|_| app.allow_call()).collect();
        seen.sort_by_key(|(_, k, _)| k.map(|k| *k.as_bytes()));
        let mut want: Vec<_> = [&none, &basic, &admin]
            .iter()
            .map(|kp| ("127.0.0.1".to_owned(), Some(*kp.public()), false))
            .collect();
        want.sort_by_key(|(_, k, _)| k.map(|k| *k.as_bytes()));
        assert_eq!(seen, want);
    } else {
        // Plain: the allow function sees no key; its one answer applies to everyone.
        let app = App::start(app_builder(false), false, |k| {
            assert!(k.is_none(), "no key on a plain listener");
            AuthLevel::Admin
        });
        let d = app.dealer(&none, true);
        d.exchange(&[b"admin.echo", &t, b"root"], &[b"REPLY", &t, b"root"]);
        d.exchange(
            &[b"public.whoami", &t],
            &[b"REPLY", &t, b"admin", b"", b"127.0.0.1", b"0", b"incoming"],
        );
        assert_eq!(app.allow_call(), ("127.0.0.1".to_owned(), None, false));
    }
}

fn denied_dealer_never_gets_through(curve: bool) {
    let deny = Arc::new(AtomicBool::new(true));
    let denying = deny.clone();
    let app = App::start(app_builder(false), curve, move |_| {
        if denying.load(Ordering::SeqCst) {
            AuthLevel::Denied
        } else {
            AuthLevel::Basic
        }
    });
    let me = keypair(24);
    let events = SocketEvent::HANDSHAKE_FAILED_AUTH as i32
        | SocketEvent::HANDSHAKE_SUCCEEDED as i32
        | SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
        | SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32;
    let d = app.dealer_monitored(&me, true, events);
    // Queued before the handshake, as OxenMQ's connect_remote does.
    d.send(&[b"HI"]);
    let monitor = d.monitor.as_ref().unwrap();
    let (event, status) = monitor
        .next(RECV_MS)
        .expect("libzmq reports the handshake outcome");
    assert_eq!(
        (event, status),
        (SocketEvent::HANDSHAKE_FAILED_AUTH, 400),
        "libzmq sees a ZAP-style 400 refusal"
    );
    let (ip, k, sn) = app.allow_call();
    assert_eq!(
        (ip.as_str(), k, sn),
        ("127.0.0.1", curve.then_some(*me.public()), false)
    );
    assert!(
        d.try_recv(1000).is_none(),
        "a denied peer gets no application message"
    );
    drop(d);

    // The listener still serves everyone it admits.
    deny.store(false, Ordering::SeqCst);
    let ok = app.dealer_monitored(&keypair(25), true, events);
    let t = tag(80);
    ok.exchange(&[b"basic.echo", &t, b"in"], &[b"REPLY", &t, b"in"]);
    assert_eq!(
        ok.monitor.as_ref().unwrap().next(RECV_MS).map(|e| e.0),
        Some(SocketEvent::HANDSHAKE_SUCCEEDED)
    );
}

fn oversize_frame_drops_the_connection(curve: bool) {
    // OxenMQ sets MAXMSGSIZE to 1 MiB: a larger frame is a transport error that drops the
    // connection; the libzmq DEALER reconnects and carries on.
    let app = App::start(app_builder(false), curve, |_| AuthLevel::None);
    let events = SocketEvent::DISCONNECTED as i32;
    let d = app.dealer_monitored(&keypair(26), true, events);
    let t = tag(90);
    d.exchange(&[b"public.echo", &t, b"before"], &[b"REPLY", &t, b"before"]);
    let huge = vec![0x5a_u8; 1024 * 1024 + 1];
    d.send(&[b"public.echo", &t, &huge]);
    assert!(
        d.monitor
            .as_ref()
            .unwrap()
            .wait_for(SocketEvent::DISCONNECTED)
            .is_some(),
        "our listener dropped the connection"
    );
    d.exchange(&[b"public.echo", &t, b"after"], &[b"REPLY", &t, b"after"]);
}

plain_and_curve! {
    same_routing_id_takes_over_the_route => same_routing_id_takes_over_the_route;
    deferred_replies_and_requests_to_the_dealer => deferred_replies_and_requests_to_the_dealer;
    heartbeats_are_answered_both_ways => heartbeats_are_answered_both_ways;
}

fn same_routing_id_takes_over_the_route(curve: bool) {
    // OxenMQ's listeners set ROUTER_HANDOVER: a new connection presenting a routing id in use
    // takes the route, so a peer that reconnects with its L + pubkey id is reached by the
    // same connection id.
    let (tx, kept) = mpsc::channel();
    let mut b = app_builder(false);
    b.add_category("keep", AuthLevel::None)
        .unwrap()
        .add_command("keep", "me", move |m| {
            let _ = tx.send(m.conn().clone());
        })
        .unwrap();
    let app = App::start(b, curve, |_| AuthLevel::None);
    let me = keypair(31);
    let t = tag(120);

    // The first socket must not reconnect once displaced, or the two would take the route
    // from each other forever.
    let no_reconnect = |s: &zmq::Socket| s.set_reconnect_ivl(-1).unwrap();
    let first = app.dealer_tweaked(
        &me,
        true,
        SocketEvent::DISCONNECTED as i32,
        Some(&no_reconnect),
    );
    first.send(&[b"keep.me"]);
    let conn = wait(&kept, "the first connection's id");
    app.node
        .handle()
        .send(&conn, "public.pushed", ["one"])
        .unwrap();
    assert_eq!(first.recv(), msg(&[b"public.pushed", b"one"]));

    let second = app.dealer(&me, true);
    second.exchange(&[b"public.echo", &t, b"two"], &[b"REPLY", &t, b"two"]);
    assert!(
        first
            .monitor
            .as_ref()
            .unwrap()
            .wait_for(SocketEvent::DISCONNECTED)
            .is_some(),
        "the displaced connection was closed"
    );
    second.send(&[b"keep.me"]);
    assert_eq!(
        wait(&kept, "the second connection's id"),
        conn,
        "same id after handover"
    );
    app.node
        .handle()
        .send(&conn, "public.pushed", ["three"])
        .unwrap();
    assert_eq!(second.recv(), msg(&[b"public.pushed", b"three"]));
    assert!(
        first.try_recv(200).is_none(),
        "nothing reaches the displaced socket"
    );
}

#[test]
fn curve_routing_id_cannot_be_taken_by_another_key() {
    // The outside probe's attack: a client with another key connects with the victim's
    // `L` + pubkey routing id while the victim waits for a slow reply. libzmq's ROUTER
    // handover (and OxenMQ) give the route to the attacker, with the victim's reply, and close
    // the victim. Over CURVE the route is bound to the key that authenticated it.
    let mut b = app_builder(false);
    b.add_category("slow", AuthLevel::None)
        .unwrap()
        .add_request_command("slow", "sleep", |m| {
            std::thread::sleep(Duration::from_millis(300));
            m.send_reply(["slept"]);
        })
        .unwrap();
    let app = App::start(b, true, |_| AuthLevel::None);
    let victim = keypair(41);
    let attacker = keypair(42);
    let victim_id = l_route(victim.public());
    let claim_victims_id = |s: &zmq::Socket| s.set_identity(&victim_id).unwrap();

    let v = app.dealer_monitored(&victim, true, SocketEvent::DISCONNECTED as i32);
    let t = tag(130);
    v.exchange(&[b"public.echo", &t, b"up"], &[b"REPLY", &t, b"up"]);
    let slow = tag(131);
    v.send(&[b"slow.sleep", &slow]);

    let a = app.dealer_tweaked(&attacker, false, 0, Some(&claim_victims_id));
    let t2 = tag(132);
    a.exchange(&[b"public.echo", &t2, b"mine"], &[b"REPLY", &t2, b"mine"]);

    assert_eq!(
        v.recv(),
        msg(&[b"REPLY", &slow, b"slept"]),
        "the victim keeps its reply"
    );
    assert!(
        a.try_recv(300).is_none(),
        "nothing of the victim's reaches the attacker"
    );
    assert!(
        v.monitor.as_ref().unwrap().next(100).is_none(),
        "the victim's connection stays open"
    );
    let t3 = tag(133);
    v.exchange(&[b"public.echo", &t3, b"still"], &[b"REPLY", &t3, b"still"]);
}

#[test]
fn curve_routing_id_cannot_be_squatted_by_another_key() {
    // The attacker connects first with the victim's `L` + pubkey id; the route still goes to
    // the victim when it comes, and messages the node sends to the victim's id reach it.
    let (tx, seen) = mpsc::channel();
    let mut b = app_builder(false);
    b.add_category("keep", AuthLevel::None)
        .unwrap()
        .add_command("keep", "me", move |m| {
            let _ = tx.send(m.conn().clone());
        })
        .unwrap();
    let app = App::start(b, true, |_| AuthLevel::None);
    let victim = keypair(43);
    let attacker = keypair(44);
    let victim_id = l_route(victim.public());
    let claim_victims_id = |s: &zmq::Socket| s.set_identity(&victim_id).unwrap();

    let a = app.dealer_tweaked(&attacker, false, 0, Some(&claim_victims_id));
    a.send(&[b"keep.me"]);
    let squatter = wait(&seen, "the attacker's connection id");
    let v = app.dealer(&victim, true);
    v.send(&[b"keep.me"]);
    let real = wait(&seen, "the victim's connection id");
    assert_ne!(
        squatter, real,
        "the attacker did not get the victim's route"
    );
    app.node
        .handle()
        .send(&real, "public.pushed", ["for the victim"])
        .unwrap();
    assert_eq!(v.recv(), msg(&[b"public.pushed", b"for the victim"]));
    assert!(
        a.try_recv(300).is_none(),
        "nothing for the victim reaches the attacker"
    );
}

/// A multipart message written inline: `&[b"cmd", b"data"]`.
type Parts<'a> = &'a [&'a [u8]];

fn deferred_replies_and_requests_to_the_dealer(curve: bool) {
    let mut b = app_builder(false);
    b.add_category("defer", AuthLevel::None)
        .unwrap()
        // Replies from another thread after the handler returned (OxenMQ's send_later).
        .add_request_command("defer", "later", |m| {
            let later = m.send_later();
            let data = m.data().to_vec();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                later.reply(data).unwrap();
            });
        })
        .unwrap()
        .add_command("defer", "back", |m| {
            let later = m.send_later();
            let data = m.data().to_vec();
            std::thread::spawn(move || later.back("defer.backed", data).unwrap());
        })
        .unwrap()
        // A request from the listener to the caller; the outcome is reported to the caller.
        .add_command("defer", "ask", |m| {
            let h = m.handle().clone();
            let conn = m.conn().clone();
            m.send_request("client.q", m.data().to_vec(), move |r| {
                let report: Vec<Bytes> = match r {
                    Ok(mut parts) => {
                        parts.insert(0, Bytes::from_static(b"ok"));
                        parts
                    }
                    Err(e) => vec![Bytes::from(e.to_string())],
                };
                h.send(&conn, "defer.answered", report).unwrap();
            });
        })
        .unwrap();
    let app = App::start(b, curve, |_| AuthLevel::None);
    let d = app.dealer(&keypair(32), true);
    let t = tag(130);

    d.exchange(&[b"defer.later", &t, b"l", b""], &[b"REPLY", &t, b"l", b""]);
    d.exchange(&[b"defer.back", b"b"], &[b"defer.backed", b"b"]);

    // The listener's request arrives as [command, 15-byte tag, data…]; each answer the DEALER
    // gives (a reply, an error reply, UNKNOWNCOMMAND) reaches the request's callback.
    let answers: [(Parts<'_>, Parts<'_>); 3] = [
        (
            &[b"REPLY", b"<tag>", b"ans", b""],
            &[b"defer.answered", b"ok", b"ans", b""],
        ),
        (
            &[b"FORBIDDEN", b"REPLY", b"<tag>"],
            &[b"defer.answered", b"FORBIDDEN"],
        ),
        (
            &[b"UNKNOWNCOMMAND", b"client.q"],
            &[b"defer.answered", b"UNKNOWNCOMMAND"],
        ),
    ];
    for (answer, report) in answers {
        d.send(&[b"defer.ask", b"q1", b""]);
        let req = d.recv();
        assert_eq!(req.len(), 4, "request shape: {}", show(&req));
        assert_eq!(req[0], b"client.q");
        assert_eq!(req[1].len(), 15, "a 15-byte tag");
        assert_eq!(&req[2..], msg(&[b"q1", b""]).as_slice());
        let answer: Vec<&[u8]> = answer
            .iter()
            .map(|p| {
                if *p == b"<tag>" {
                    req[1].as_slice()
                } else {
                    *p
                }
            })
            .collect();
        d.send(&answer);
        assert_eq!(
            d.recv(),
            msg(report),
            "after answering {}",
            show(&msg(&answer))
        );
    }
}

fn heartbeats_are_answered_both_ways(curve: bool) {
    // Fast ZMTP heartbeats on both sides of both kinds of connection. A side that failed to
    // answer PINGs would be dropped by the other after the 1.5 s timeout, well inside the
    // 3 s idle window (a monitor would report the disconnect).
    let heartbeat = |s: &zmq::Socket| {
        s.set_heartbeat_ivl(100).unwrap();
        s.set_heartbeat_timeout(1500).unwrap();
    };
    let events = SocketEvent::DISCONNECTED as i32 | SocketEvent::ACCEPTED as i32;
    let mut b = app_builder(false);
    b.config_mut().heartbeat_interval = Duration::from_millis(100);
    b.config_mut().heartbeat_timeout = Duration::from_millis(1500);
    let app = App::start(b, curve, |_| AuthLevel::None);
    let d = app.dealer_tweaked(&keypair(33), true, events, Some(&heartbeat));
    let t = tag(140);
    d.exchange(&[b"public.echo", &t, b"1"], &[b"REPLY", &t, b"1"]);

    let client = {
        let mut b = builder();
        b.config_mut().heartbeat_interval = Duration::from_millis(100);
        b.config_mut().heartbeat_timeout = Duration::from_millis(1500);
        b.start().unwrap()
    };
    let router = Router::bind_with(curve.then(|| keypair(40)).as_ref(), events, heartbeat);
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());
    let rmon = router.monitor.as_ref().unwrap();
    assert!(rmon.wait_for(SocketEvent::ACCEPTED).is_some());

    // Idle for 3 s: only heartbeats flow.
    std::thread::sleep(Duration::from_secs(3));
    let dmon = d.monitor.as_ref().unwrap();
    assert_eq!(dmon.next(0), None, "the DEALER kept its connection");
    assert_eq!(rmon.next(0), None, "the ROUTER kept our connection");
    d.exchange(&[b"public.echo", &t, b"2"], &[b"REPLY", &t, b"2"]);
    let rx = ask(&client, &conn, "x.after", frames_of(&[b"idle"]));
    let tg = expect_request(&router, &route, b"x.after", &[b"idle"]);
    router.send(&route, &[b"REPLY", &tg, b"alive"]);
    assert_eq!(
        wait(&rx, "reply after idling").unwrap(),
        frames_of(&[b"alive"])
    );
}

// ---------------------------------------------------------------------------------------------
// 3 (listener side). Volume through a libzmq DEALER
// ---------------------------------------------------------------------------------------------

fn pipelined_requests(curve: bool) {
    const N: u32 = 1000;
    let app = App::start(app_builder(false), curve, |_| AuthLevel::None);
    let d = app.dealer(&keypair(27), true);
    d.exchange(&[b"HI"], &[b"HELLO"]);
    // All sent before any reply is read (the DEALER's send HWM is 1000). `bulk` has an
    // unlimited queue: with OxenMQ's default of 200, a burst like this may be dropped.
    for i in 0..N {
        let n = i.to_string();
        d.send(&[b"bulk.echo", &tag(i), n.as_bytes(), b"", &[i as u8; 3]]);
    }
    let mut answered = BTreeMap::new();
    for _ in 0..N {
        let r = d.recv();
        assert_eq!(r.len(), 5, "reply shape: {}", show(&r));
        assert_eq!(r[0], b"REPLY");
        let i: u32 = String::from_utf8(r[2].clone()).unwrap().parse().unwrap();
        assert_eq!(r[1], tag(i), "tag matches its data");
        assert_eq!(r[3], b"");
        assert_eq!(r[4], [i as u8; 3]);
        assert!(
            answered.insert(i, ()).is_none(),
            "request {i} answered twice"
        );
    }
    assert_eq!(answered.len(), N as usize);
    assert!(d.try_recv(200).is_none(), "no extra replies");
}

/// A deterministic large payload: `len` bytes that differ with `seed` and along the buffer.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

const NEAR_MIB: usize = 1024 * 1024 - 64;

fn near_mebibyte_multipart_messages(curve: bool) {
    let app = App::start(app_builder(false), curve, |_| AuthLevel::None);
    let d = app.dealer(&keypair(28), true);
    const N: u32 = 6;
    let bodies: Vec<Vec<u8>> = (0..N).map(|i| payload(NEAR_MIB, i as u8)).collect();
    for (i, body) in bodies.iter().enumerate() {
        let i = i as u32;
        d.send(&[
            b"bulk.echo",
            &tag(i),
            b"",
            body,
            b"s",
            b"",
            &i.to_be_bytes(),
        ]);
    }
    let mut seen = BTreeMap::new();
    for _ in 0..N {
        let r = d.recv();
        assert_eq!(r.len(), 7, "reply shape: {}", show(&r));
        let i = u32::from_be_bytes(r[6].as_slice().try_into().unwrap());
        assert_eq!(r[0], b"REPLY");
        assert_eq!(r[1], tag(i));
        assert_eq!(r[2], b"");
        assert!(r[3] == bodies[i as usize], "body {i} intact");
        assert_eq!(r[4], b"s");
        assert_eq!(r[5], b"");
        assert!(seen.insert(i, ()).is_none());
    }
    assert_eq!(seen.len(), N as usize);
}

// ---------------------------------------------------------------------------------------------
// 2. Our node's outgoing connections against a libzmq ROUTER (an OxenMQ listener)
// ---------------------------------------------------------------------------------------------

plain_and_curve! {
    connect_remote_frames_and_replies => connect_remote_frames_and_replies;
    router_error_replies_become_request_errors => router_error_replies_become_request_errors;
    router_commands_on_our_outgoing_connection => router_commands_on_our_outgoing_connection;
    router_bye_closes_our_connection => router_bye_closes_our_connection;
    our_pipelined_and_large_requests => our_pipelined_and_large_requests;
}

/// Our client node: a fixed key and the categories a ROUTER may call back on.
fn client_node(seed: u8) -> LokiMq {
    let mut b = builder();
    b.keypair(keypair(seed));
    add_shared_categories(&mut b);
    b.start().expect("client starts")
}

/// A ROUTER, plain or CURVE (key seed 40).
fn router_for(curve: bool, monitor: i32) -> Router {
    Router::bind(curve.then(|| keypair(40)).as_ref(), monitor)
}

/// `connect_remote` from `client` to `router` with `opts`; the ROUTER answers the HI (which
/// must be the first thing it receives) with HELLO. Returns our id and the ROUTER's route.
fn handshake(client: &LokiMq, router: &Router, opts: ConnectOptions) -> (ConnectionId, Vec<u8>) {
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(router.address().as_str(), ok, fail, opts)
        .unwrap();
    let hi = router.recv();
    assert_eq!(hi.len(), 2, "HI first: {}", show(&hi));
    assert_eq!(hi[1], b"HI", "HI first: {}", show(&hi));
    let route = hi[0].clone();
    router.send(&route, &[b"HELLO"]);
    let up = wait(&connected, "on_connect after HELLO").expect("connected");
    assert_eq!(up, conn, "on_connect gets the id connect_remote returned");
    (conn, route)
}

/// Starts a request and returns the receiver its callback reports to.
fn ask(
    client: &LokiMq,
    conn: &ConnectionId,
    cmd: &'static str,
    data: Vec<Bytes>,
) -> mpsc::Receiver<Reply> {
    let (cb, rx) = reply_channel();
    client.handle().request(conn, cmd, data, cb).unwrap();
    rx
}

/// [`ask`] with a request timeout.
fn ask_within(
    client: &LokiMq,
    conn: &ConnectionId,
    cmd: &'static str,
    data: Vec<Bytes>,
    timeout: Duration,
) -> mpsc::Receiver<Reply> {
    let opts = RequestOptions::default().timeout(timeout);
    let (cb, rx) = reply_channel();
    client
        .handle()
        .request_with(conn, cmd, data, opts, cb)
        .unwrap();
    rx
}

fn frames_of(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

/// Receives a request for `cmd` at the ROUTER: asserts `[route, cmd, tag(15 bytes), data…]`
/// and returns the tag.
fn expect_request(router: &Router, route: &[u8], cmd: &[u8], data: &[&[u8]]) -> Vec<u8> {
    let m = router.recv();
    assert!(m.len() >= 3, "request shape: {}", show(&m));
    assert_eq!(m[0], route, "routing id");
    assert_eq!(m[1], cmd, "command: {}", show(&m));
    assert_eq!(m[2].len(), 15, "a 15-byte reply tag: {}", show(&m));
    assert_eq!(&m[3..], msg(data).as_slice(), "data parts: {}", show(&m));
    m[2].clone()
}

fn connect_remote_frames_and_replies(curve: bool) {
    let client = client_node(41);
    let router = router_for(curve, 0);
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());
    // OxenMQ's default routing id, over plain as well as CURVE.
    assert_eq!(route, l_route(client.pubkey()));
    assert_eq!(
        conn.pubkey(),
        router.key.as_ref(),
        "the id carries the server key"
    );

    // request = [cmd, tag, data…]; the reply's parts reach the callback exactly.
    let rx = ask(
        &client,
        &conn,
        "x.y",
        frames_of(&[b"hello", b"", b"\0bin\xff"]),
    );
    let t = expect_request(&router, &route, b"x.y", &[b"hello", b"", b"\0bin\xff"]);
    router.send(&route, &[b"REPLY", &t, b"world", b"", b"\x00\x01"]);
    let got = wait(&rx, "the reply").expect("success");
    assert_eq!(got, frames_of(&[b"world", b"", b"\x00\x01"]));

    // A request without data; a reply without parts.
    let rx = ask(&client, &conn, "x.empty", Vec::new());
    let t = expect_request(&router, &route, b"x.empty", &[]);
    router.send(&route, &[b"REPLY", &t]);
    assert_eq!(
        wait(&rx, "empty reply").expect("success"),
        Vec::<Bytes>::new()
    );

    // send = [cmd, data…]; no tag.
    client.handle().send(&conn, "x.z", ["data", ""]).unwrap();
    assert_eq!(router.recv(), msg(&[&route, b"x.z", b"data", b""]));
    client.handle().send(&conn, "x.n", lokimq::NO_DATA).unwrap();
    assert_eq!(router.recv(), msg(&[&route, b"x.n"]));

    // Pipelined requests get distinct tags; answered out of order, each callback gets its own.
    let rxs: Vec<_> = (0..3)
        .map(|i: u8| ask(&client, &conn, "x.p", frames_of(&[&[i]])))
        .collect();
    let tags: Vec<_> = (0..3u8)
        .map(|i| expect_request(&router, &route, b"x.p", &[&[i]]))
        .collect();
    assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
    for i in [2usize, 0, 1] {
        router.send(&route, &[b"REPLY", &tags[i], b"r", &[i as u8]]);
    }
    for (i, rx) in rxs.iter().enumerate() {
        assert_eq!(
            wait(rx, "pipelined reply").unwrap(),
            frames_of(&[b"r", &[i as u8]])
        );
    }
}

#[test]
fn messages_sent_before_hello_follow_hi() {
    // connect_remote returns at once; what is sent before HELLO is queued behind HI.
    let client = client_node(55);
    let router = router_for(false, 0);
    let (ok, fail, connected) = connect_channel();
    let conn = client
        .handle()
        .connect_remote(
            router.address().as_str(),
            ok,
            fail,
            ConnectOptions::default(),
        )
        .unwrap();
    client.handle().send(&conn, "x.early", ["e"]).unwrap();
    let rx = ask(&client, &conn, "x.earlyq", frames_of(&[b"q"]));
    let route = l_route(client.pubkey());
    assert_eq!(router.recv(), msg(&[&route, b"HI"]));
    assert_eq!(router.recv(), msg(&[&route, b"x.early", b"e"]));
    let t = expect_request(&router, &route, b"x.earlyq", &[b"q"]);
    router.send(&route, &[b"REPLY", &t, b"r"]);
    // The reply is delivered even though HELLO has not come yet.
    assert_eq!(wait(&rx, "early reply").unwrap(), frames_of(&[b"r"]));
    router.send(&route, &[b"HELLO"]);
    assert_eq!(wait(&connected, "on_connect"), Ok(conn));
}

#[test]
fn connect_remote_without_hello_times_out_and_closes() {
    let client = client_node(56);
    let router = router_for(
        false,
        SocketEvent::DISCONNECTED as i32 | SocketEvent::ACCEPTED as i32,
    );
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().timeout(Duration::from_millis(800));
    let conn = client
        .handle()
        .connect_remote(router.address().as_str(), ok, fail, opts)
        .unwrap();
    assert_eq!(router.recv()[1], b"HI");
    // The ROUTER never says HELLO.
    assert_eq!(
        wait(&connected, "on_failure"),
        Err("connection attempt timed out".to_owned())
    );
    let monitor = router.monitor.as_ref().unwrap();
    assert!(monitor.wait_for(SocketEvent::ACCEPTED).is_some());
    assert!(
        monitor.wait_for(SocketEvent::DISCONNECTED).is_some(),
        "the socket was closed"
    );
    assert!(!client.handle().is_connected(&conn).unwrap());
    assert!(monitor.next(1000).is_none(), "and not reopened");
}

#[test]
fn disconnect_flushes_then_closes() {
    let client = client_node(57);
    let router = router_for(true, SocketEvent::DISCONNECTED as i32);
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());
    client.handle().send(&conn, "x.last", ["bye"]).unwrap();
    client
        .handle()
        .disconnect(&conn, Duration::from_secs(1))
        .unwrap();
    assert_eq!(router.recv(), msg(&[&route, b"x.last", b"bye"]));
    assert!(
        router
            .monitor
            .as_ref()
            .unwrap()
            .wait_for(SocketEvent::DISCONNECTED)
            .is_some()
    );
    assert!(!client.handle().is_connected(&conn).unwrap());
}

#[test]
fn connect_sn_with_ephemeral_routing_id() {
    let sn = keypair(58);
    let router = Router::bind(Some(&sn), 0);
    let client = client_node(59);
    let opts = ConnectSnOptions::default()
        .hint(router.endpoint.parse::<lokimq::Address>().unwrap())
        .ephemeral_routing_id(true);
    let conn = client.handle().connect_sn(*sn.public(), opts).unwrap();
    client.handle().send(&conn, "sn.hello", ["x"]).unwrap();
    let m = router.recv();
    assert_eq!(m.len(), 3, "{}", show(&m));
    assert_eq!(
        (m[0].len(), m[0][0]),
        (5, 0),
        "a libzmq-assigned routing id"
    );
    assert_eq!(&m[1..], msg(&[b"sn.hello", b"x"]).as_slice());
}

#[test]
fn connect_remote_with_ephemeral_routing_id() {
    let client = client_node(42);
    let router = router_for(false, 0);
    let opts = ConnectOptions::default().ephemeral_routing_id(true);
    let (conn, route) = handshake(&client, &router, opts);
    // libzmq assigns `\0` + 4 bytes to a DEALER that presents no identity.
    assert_eq!(route.len(), 5, "assigned id {route:?}");
    assert_eq!(route[0], 0);
    let rx = ask(&client, &conn, "x.y", frames_of(&[b"e"]));
    let t = expect_request(&router, &route, b"x.y", &[b"e"]);
    router.send(&route, &[b"REPLY", &t, b"ok"]);
    assert_eq!(wait(&rx, "reply").unwrap(), frames_of(&[b"ok"]));
}

#[test]
fn connect_sn_with_hint_sends_no_hi() {
    let sn = keypair(43);
    let router = Router::bind(Some(&sn), 0);
    let zap = Zap::start(router.context(), "200");
    let client = client_node(44);
    let hint: lokimq::Address = router.endpoint.parse().unwrap();
    let opts = ConnectSnOptions::default().hint(hint);
    let conn = client.handle().connect_sn(*sn.public(), opts).unwrap();
    assert_eq!(conn, ConnectionId::Sn(*sn.public()));

    // The first message is the request itself: no HI on service-node connections.
    let rx = ask(&client, &conn, "sn.q", frames_of(&[b"d"]));
    let route = l_route(client.pubkey());
    let t = expect_request(&router, &route, b"sn.q", &[b"d"]);
    router.send(&route, &[b"REPLY", &t, b"sn-reply"]);
    assert_eq!(
        wait(&rx, "reply over the SN connection").unwrap(),
        frames_of(&[b"sn-reply"])
    );
    client.handle().send(&conn, "sn.c", ["z"]).unwrap();
    assert_eq!(router.recv(), msg(&[&route, b"sn.c", b"z"]));

    // libzmq's ZAP handler authenticated our real key with CURVE.
    let (mechanism, key) = wait(&zap.requests, "a ZAP request");
    assert_eq!(mechanism, "CURVE");
    assert_eq!(key, client.pubkey().as_bytes());

    // The remote of a connect_sn connection counts as a service node: it may call remote_sn
    // commands on it, and the reply goes back on the same connection.
    let t = tag(100);
    router.send(&route, &[b"sn.echo", &t, b"back"]);
    assert_eq!(router.recv(), msg(&[&route, b"REPLY", &t, b"back"]));
    router.send(&route, &[b"public.whoami", &t]);
    let sn_hex = sn.public().to_hex();
    assert_eq!(
        router.recv(),
        msg(&[
            &route,
            b"REPLY",
            &t,
            b"none",
            sn_hex.as_bytes(),
            b"127.0.0.1",
            b"1",
            b"sn"
        ])
    );
}

fn router_error_replies_become_request_errors(curve: bool) {
    let client = client_node(45);
    let router = router_for(curve, 0);
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());

    // Reply-form errors fail exactly the request with that tag.
    let words: [(&[u8], RequestError); 4] = [
        (b"FORBIDDEN", RequestError::Forbidden),
        (b"FORBIDDEN_SN", RequestError::ForbiddenSn),
        (b"NOT_A_SERVICE_NODE", RequestError::NotAServiceNode),
        (b"NO_REPLY_TAG", RequestError::NoReplyTag),
    ];
    for (word, error) in words {
        let rx = ask(&client, &conn, "r.q", frames_of(&[word]));
        let t = expect_request(&router, &route, b"r.q", &[word]);
        router.send(&route, &[word, b"REPLY", &t]);
        assert_eq!(
            wait(&rx, "error reply"),
            Err(error),
            "{}",
            String::from_utf8_lossy(word)
        );
    }

    // Non-reply-form errors and UNKNOWNCOMMAND for some other command only get logged: the
    // pending request is untouched and its real reply still lands.
    let rx = ask(&client, &conn, "r.keep", frames_of(&[b"k"]));
    let t = expect_request(&router, &route, b"r.keep", &[b"k"]);
    for parts in [
        &[&b"FORBIDDEN"[..], b"r.keep"][..],
        &[b"NOT_A_SERVICE_NODE", b"r.keep"],
        &[b"FORBIDDEN_SN", b"r.keep"],
        &[b"NO_REPLY_TAG", b"r.keep"],
        &[b"UNKNOWNCOMMAND", b"r.other"],
        &[b"UNKNOWNCOMMAND"],
        &[b"FORBIDDEN", b"REPLY", &tag(9999)],
    ] {
        router.send(&route, parts);
    }
    router.send(&route, &[b"REPLY", &t, b"kept"]);
    assert_eq!(
        wait(&rx, "reply after noise").unwrap(),
        frames_of(&[b"kept"])
    );

    // UNKNOWNCOMMAND names no tag; this port fails the pending requests for that command at
    // once (OxenMQ would leave them to time out).
    let rx1 = ask(&client, &conn, "r.unknown", frames_of(&[b"1"]));
    let rx2 = ask(&client, &conn, "r.unknown", frames_of(&[b"2"]));
    let rx3 = ask(&client, &conn, "r.known", frames_of(&[b"3"]));
    expect_request(&router, &route, b"r.unknown", &[b"1"]);
    expect_request(&router, &route, b"r.unknown", &[b"2"]);
    let t3 = expect_request(&router, &route, b"r.known", &[b"3"]);
    router.send(&route, &[b"UNKNOWNCOMMAND", b"r.unknown"]);
    assert_eq!(wait(&rx1, "unknown 1"), Err(RequestError::UnknownCommand));
    assert_eq!(wait(&rx2, "unknown 2"), Err(RequestError::UnknownCommand));
    router.send(&route, &[b"REPLY", &t3, b"3"]);
    assert_eq!(wait(&rx3, "known").unwrap(), frames_of(&[b"3"]));
}

#[test]
fn late_reply_after_timeout_is_ignored() {
    let client = client_node(46);
    let router = router_for(false, 0);
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());
    let rx = ask_within(
        &client,
        &conn,
        "x.slow",
        frames_of(&[b"s"]),
        Duration::from_millis(300),
    );
    let late = expect_request(&router, &route, b"x.slow", &[b"s"]);
    assert_eq!(wait(&rx, "timeout"), Err(RequestError::Timeout));

    // The stale reply (and a stale error reply) arrive before the next request's answer; only
    // the latter is delivered, to the right callback.
    let rx2 = ask(&client, &conn, "x.next", frames_of(&[b"n"]));
    let t2 = expect_request(&router, &route, b"x.next", &[b"n"]);
    router.send(&route, &[b"REPLY", &late, b"stale"]);
    router.send(&route, &[b"FORBIDDEN", b"REPLY", &late]);
    router.send(&route, &[b"REPLY", &t2, b"fresh"]);
    assert_eq!(wait(&rx2, "fresh reply").unwrap(), frames_of(&[b"fresh"]));
    // A reply to an already answered tag is ignored as well.
    router.send(&route, &[b"REPLY", &t2, b"again"]);
    let rx3 = ask(&client, &conn, "x.last", frames_of(&[]));
    let t3 = expect_request(&router, &route, b"x.last", &[]);
    router.send(&route, &[b"REPLY", &t3, b"last"]);
    assert_eq!(wait(&rx3, "last reply").unwrap(), frames_of(&[b"last"]));
}

fn router_commands_on_our_outgoing_connection(curve: bool) {
    let client = client_node(47);
    let router = router_for(curve, 0);
    let opts = ConnectOptions::default().auth_level(AuthLevel::Basic);
    let (_conn, route) = handshake(&client, &router, opts);
    let t = tag(110);
    let exchange = |sent: &[&[u8]], want: &[&[u8]]| {
        router.send(&route, sent);
        let got = router.recv();
        let mut expected = msg(&[&route]);
        expected.extend(msg(want));
        assert_eq!(
            got,
            expected,
            "sent {}: got {}",
            show(&msg(sent)),
            show(&got)
        );
    };
    // Requests and commands from the listener run our handlers; answers go back on this
    // connection (no route frame on a DEALER; libzmq adds ours).
    exchange(&[b"public.echo", &t, b"x"], &[b"REPLY", &t, b"x"]);
    exchange(&[b"public.hello", b"y"], &[b"public.hi", b"y"]);
    // Commands from the remote get the level granted by connect_remote's option.
    exchange(&[b"basic.echo", &t, b"b"], &[b"REPLY", &t, b"b"]);
    exchange(&[b"admin.echo", &t], &[b"FORBIDDEN", b"REPLY", &t]);
    exchange(&[b"admin.echo"], &[b"FORBIDDEN", b"admin.echo"]);
    // A connect_remote peer is not a service node.
    exchange(&[b"sn.echo", &t], &[b"FORBIDDEN_SN", b"REPLY", &t]);
    exchange(&[b"public.echo"], &[b"NO_REPLY_TAG", b"public.echo"]);
    exchange(&[b"a.b"], &[b"UNKNOWNCOMMAND", b"a.b"]);
    let server_hex = router.key.map(|k| k.to_hex()).unwrap_or_default();
    exchange(
        &[b"public.whoami", &t],
        &[
            b"REPLY",
            &t,
            b"basic",
            server_hex.as_bytes(),
            b"127.0.0.1",
            b"0",
            b"outgoing",
        ],
    );
    // HI and HELLO on an outgoing connection are ignored, as are error words.
    for parts in [
        &[&b"HI"[..]][..],
        &[b"HELLO"],
        &[b"UNKNOWNCOMMAND", b"x.y"],
        &[b"FORBIDDEN", b"x.y"],
    ] {
        router.send(&route, parts);
        exchange(&[b"public.echo", &t, b"probe"], &[b"REPLY", &t, b"probe"]);
    }
}

fn router_bye_closes_our_connection(curve: bool) {
    let client = client_node(48);
    let router = router_for(
        curve,
        SocketEvent::DISCONNECTED as i32 | SocketEvent::ACCEPTED as i32,
    );
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());
    let monitor = router.monitor.as_ref().unwrap();
    assert!(
        monitor.wait_for(SocketEvent::ACCEPTED).is_some(),
        "accepted"
    );

    // A request pending when BYE arrives can never be answered: it fails with DISCONNECTED
    // when the connection closes (OxenMQ lets it reach its deadline, 60 s away, for TIMEOUT).
    let pending = ask_within(
        &client,
        &conn,
        "x.wait",
        frames_of(&[b"w"]),
        Duration::from_secs(60),
    );
    expect_request(&router, &route, b"x.wait", &[b"w"]);
    router.send(&route, &[b"BYE"]);

    assert!(
        monitor.wait_for(SocketEvent::DISCONNECTED).is_some(),
        "our side closed the TCP connection"
    );
    assert_eq!(
        wait(&pending, "the pending request"),
        Err(RequestError::Disconnected)
    );
    assert!(!client.handle().is_connected(&conn).unwrap());
    // The connection is gone for good: no reconnect, and later sends fail.
    let rx = ask(&client, &conn, "x.after", frames_of(&[]));
    assert_eq!(wait(&rx, "request after BYE"), Err(RequestError::Timeout));
    client.handle().send(&conn, "x.after", ["s"]).unwrap();
    assert!(
        monitor.next(1500).is_none(),
        "no reconnection after BYE (OxenMQ closes with linger 0 and forgets the socket)"
    );
    assert!(router.try_recv(100).is_none(), "nothing arrived after BYE");
}

#[test]
fn curve_with_wrong_server_key_never_connects() {
    let real = keypair(49);
    let router = Router::bind(Some(&real), 0);
    let client = client_node(50);
    let wrong = keypair(51);
    let addr = format!(
        "curve://{}/{}",
        router.endpoint.trim_start_matches("tcp://"),
        wrong.public().to_hex()
    );
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().timeout(Duration::from_secs(8));
    let t = lokimq::Stopwatch::start();
    client
        .handle()
        .connect_remote(addr.as_str(), ok, fail, opts)
        .unwrap();
    // libzmq cannot open our HELLO (sealed to another key) and closes without a word: the
    // failure names the likely cause, at once.
    assert_eq!(
        wait(&connected, "on_failure"),
        Err(
            "handshake failed: the server closed the connection after our CURVE HELLO \
             (wrong server key?)"
                .to_owned()
        )
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // OxenMQ's policy retries until the timeout instead.
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default()
        .timeout(Duration::from_millis(1500))
        .retry_refused(true);
    client
        .handle()
        .connect_remote(addr.as_str(), ok, fail, opts)
        .unwrap();
    assert_eq!(
        wait(&connected, "on_failure"),
        Err("connection attempt timed out".to_owned())
    );
    assert!(
        router.try_recv(200).is_none(),
        "the ROUTER never got a message through"
    );
}

#[test]
fn libzmq_zap_denial_fails_our_connect() {
    let sn = keypair(52);
    let router = Router::bind(Some(&sn), 0);
    let zap = Zap::start(router.context(), "400");
    let client = client_node(53);
    let (ok, fail, connected) = connect_channel();
    let opts = ConnectOptions::default().timeout(Duration::from_millis(1500));
    client
        .handle()
        .connect_remote(router.address().as_str(), ok, fail, opts)
        .unwrap();
    let (mechanism, key) = wait(&zap.requests, "a ZAP request");
    assert_eq!(
        (mechanism.as_str(), key.as_slice()),
        ("CURVE", &client.pubkey().as_bytes()[..])
    );
    // libzmq sends ERROR "400": the failure names the refusal and its reason.
    assert_eq!(
        wait(&connected, "on_failure"),
        Err("handshake failed: connection refused by the remote: \"400\"".to_owned())
    );
    assert!(router.try_recv(200).is_none());
}

fn our_pipelined_and_large_requests(curve: bool) {
    const N: usize = 1000;
    let client = client_node(54);
    let router = router_for(curve, 0);
    let (conn, route) = handshake(&client, &router, ConnectOptions::default());

    // 1000 requests in flight at once; the ROUTER answers them in reverse order.
    let rxs: Vec<_> = (0..N)
        .map(|i| {
            ask(
                &client,
                &conn,
                "bulk.q",
                frames_of(&[i.to_string().as_bytes()]),
            )
        })
        .collect();
    let mut tags = BTreeMap::new();
    for _ in 0..N {
        let m = router.recv();
        assert_eq!(m.len(), 4, "{}", show(&m));
        assert_eq!(
            (m[0].as_slice(), m[1].as_slice()),
            (route.as_slice(), &b"bulk.q"[..])
        );
        let i: usize = String::from_utf8(m[3].clone()).unwrap().parse().unwrap();
        assert!(tags.insert(i, m[2].clone()).is_none(), "request {i} twice");
    }
    assert_eq!(tags.len(), N);
    for (i, t) in tags.iter().rev() {
        router.send(&route, &[b"REPLY", t, format!("r{i}").as_bytes()]);
    }
    for (i, rx) in rxs.iter().enumerate() {
        assert_eq!(
            wait(rx, "bulk reply").unwrap(),
            frames_of(&[format!("r{i}").as_bytes()])
        );
    }

    // Near-1 MiB parts both ways.
    let up = payload(NEAR_MIB, 7);
    let down = payload(NEAR_MIB, 8);
    let rx = ask(&client, &conn, "big.q", frames_of(&[b"", &up, b"tail"]));
    let t = expect_request(&router, &route, b"big.q", &[b"", &up, b"tail"]);
    router.send(&route, &[b"REPLY", &t, &down, b"", &up]);
    let got = wait(&rx, "big reply").unwrap();
    assert_eq!(got.len(), 3);
    assert!(
        got[0] == down && got[1].is_empty() && got[2] == up,
        "big parts intact"
    );
}
