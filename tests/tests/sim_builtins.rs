//! Built-in control words and error replies (behaviour.md §2.4–2.5), checked frame by frame with
//! a raw ZMTP DEALER (a tap with a NULL session) against a node's plain listener, through the
//! simulated network.

use bytes::Bytes;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::node::{ConnectOptions, RequestError};
use lokimq_core::registry::CategoryOptions;
use lokimq_core::time::Duration;
use lokimq_tests::fixtures::{conformance_builder, conformance_node, echo, quiet_config, strs};
use lokimq_tests::sim::{Chunking, NetConfig, NodeSpec, Sim};

fn b(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

const TAG: &[u8] = b"\x00TAG1-abcdefghi";

/// A conformance server with a plain listener and a raw DEALER connected to it.
fn setup(seed: u64, chunking: Chunking, spec: NodeSpec) -> (Sim, usize, usize) {
    let mut sim = Sim::with_net(
        seed,
        NetConfig {
            chunking,
            ..NetConfig::default()
        },
    );
    let server = sim.add_node(spec);
    let (_, addr) = sim.listen_plain(server);
    let t = sim.raw_dealer(&addr);
    sim.run_until_idle();
    assert!(sim.tap(t).ready_at.is_some(), "raw DEALER handshake");
    (sim, server, t)
}

/// Sends one message and returns everything that came back.
fn exchange(sim: &mut Sim, t: usize, frames: &[&[u8]]) -> Vec<Vec<Bytes>> {
    sim.raw_send(t, b(frames));
    sim.run_until_idle();
    sim.raw_take(t)
}

fn standard() -> (Sim, usize, usize) {
    setup(7, Chunking::Whole, conformance_node(quiet_config(2)))
}

#[test]
fn sim_builtin_hi_gets_a_single_frame_hello() {
    for chunking in [
        Chunking::Whole,
        Chunking::Fixed(1),
        Chunking::Random { max: 5 },
    ] {
        let (mut sim, _, t) = setup(1, chunking, conformance_node(quiet_config(2)));
        assert_eq!(exchange(&mut sim, t, &[b"HI"]), vec![b(&[b"HELLO"])]);
    }
}

#[test]
fn sim_builtin_unknown_and_invalid_commands_get_unknowncommand() {
    let (mut sim, _, t) = standard();
    for cmd in [
        &b"a.a"[..],
        b"public.nope",
        b"nodot",
        b".leading",
        b"public.",
        b"",
    ] {
        assert_eq!(
            exchange(&mut sim, t, &[cmd, b"data"]),
            vec![b(&[b"UNKNOWNCOMMAND", cmd])],
            "{:?}",
            String::from_utf8_lossy(cmd)
        );
    }
}

#[test]
fn sim_builtin_over_long_command_gets_unknowncommand() {
    // 251 bytes is the longest command OxenMQ looks up (50 + 1 + 200).
    let (mut sim, _, t) = standard();
    let long = format!("public.{}", "x".repeat(252 - 7));
    assert_eq!(long.len(), 252);
    assert_eq!(
        exchange(&mut sim, t, &[long.as_bytes()]),
        vec![b(&[b"UNKNOWNCOMMAND", long.as_bytes()])]
    );
}

#[test]
fn sim_builtin_request_without_tag_gets_no_reply_tag() {
    let (mut sim, _, t) = standard();
    assert_eq!(
        exchange(&mut sim, t, &[b"public.echo"]),
        vec![b(&[b"NO_REPLY_TAG", b"public.echo"])]
    );
}

#[test]
fn sim_builtin_request_with_tag_gets_reply() {
    let (mut sim, _, t) = standard();
    assert_eq!(
        exchange(&mut sim, t, &[b"public.echo", b"foo"]),
        vec![b(&[b"REPLY", b"foo"])]
    );
    assert_eq!(
        exchange(
            &mut sim,
            t,
            &[b"public.echo", TAG, b"abc", b"", b"\x00\x01"]
        ),
        vec![b(&[b"REPLY", TAG, b"abc", b"", b"\x00\x01"])]
    );
    // A plain command's send_back comes back on the same connection.
    assert_eq!(
        exchange(&mut sim, t, &[b"public.hello", b"x"]),
        vec![b(&[b"public.hi", b"x"])]
    );
}

#[test]
fn sim_builtin_auth_failures_in_both_forms() {
    let (mut sim, _, t) = standard();
    let cases: [(&[u8], &[u8]); 3] = [
        (b"basic.echo", b"FORBIDDEN"),
        (b"local.echo", b"NOT_A_SERVICE_NODE"),
        (b"sn.echo", b"FORBIDDEN_SN"),
    ];
    for (cmd, word) in cases {
        assert_eq!(
            exchange(&mut sim, t, &[cmd, TAG, b"x"]),
            vec![b(&[word, b"REPLY", TAG])],
            "reply form of {}",
            String::from_utf8_lossy(word)
        );
        // Access is checked before the tag: no NO_REPLY_TAG here.
        assert_eq!(
            exchange(&mut sim, t, &[cmd]),
            vec![b(&[word, cmd])],
            "plain form of {}",
            String::from_utf8_lossy(word)
        );
    }
    // A plain (non-request) command of a service-node category: always the plain form.
    assert_eq!(
        exchange(&mut sim, t, &[b"sn.hello", TAG]),
        vec![b(&[b"FORBIDDEN_SN", b"sn.hello"])]
    );
}

#[test]
fn sim_builtin_access_is_checked_in_oxenmq_order() {
    // auth level → local_sn → remote_sn → request tag.
    let strict = || {
        let mut r = conformance_builder();
        r.add_category(
            "strict",
            CategoryOptions::new(Access {
                auth: AuthLevel::Basic,
                remote_sn: true,
                local_sn: true,
            }),
        )
        .unwrap();
        r.add_request_command("strict", "echo").unwrap();
        r.build()
    };
    // None level, not an SN node: FORBIDDEN.
    let (mut sim, _, t) = setup(3, Chunking::Whole, NodeSpec::new(quiet_config(1), strict()));
    assert_eq!(
        exchange(&mut sim, t, &[b"strict.echo"]),
        vec![b(&[b"FORBIDDEN", b"strict.echo"])]
    );
    // Basic granted, still not an SN node: NOT_A_SERVICE_NODE.
    let mut sim = Sim::new(4);
    let server = sim.add_node(NodeSpec::new(quiet_config(1), strict()));
    let (l, addr) = sim.listen_plain(server);
    sim.allow_all(server, l, AuthLevel::Basic);
    let t = sim.raw_dealer(&addr);
    sim.run_until_idle();
    assert_eq!(
        exchange(&mut sim, t, &[b"strict.echo", TAG]),
        vec![b(&[b"NOT_A_SERVICE_NODE", b"REPLY", TAG])]
    );
    // Basic granted, SN node, plain caller (never an SN): FORBIDDEN_SN.
    let mut config = quiet_config(1);
    config.service_node = true;
    let mut sim = Sim::new(5);
    let server = sim.add_node(
        NodeSpec::new(config, strict())
            .keypair(lokimq_core::keys::Keypair::from_secret_bytes([9; 32])),
    );
    let (l, addr) = sim.listen_plain(server);
    sim.allow_all(server, l, AuthLevel::Basic);
    let t = sim.raw_dealer(&addr);
    sim.run_until_idle();
    assert_eq!(
        exchange(&mut sim, t, &[b"strict.echo"]),
        vec![b(&[b"FORBIDDEN_SN", b"strict.echo"])]
    );
}

#[test]
fn sim_builtin_error_replies_echo_the_pre_alias_command() {
    let mut r = conformance_builder();
    r.add_command_alias("old.basic", "basic.echo").unwrap();
    let spec = NodeSpec::new(quiet_config(1), r.build()).handler("public.echo", echo);
    let (mut sim, _, t) = setup(6, Chunking::Whole, spec);
    assert_eq!(
        exchange(&mut sim, t, &[b"legacy.echo"]),
        vec![b(&[b"NO_REPLY_TAG", b"legacy.echo"])]
    );
    assert_eq!(
        exchange(&mut sim, t, &[b"old.basic"]),
        vec![b(&[b"FORBIDDEN", b"old.basic"])]
    );
    assert_eq!(
        exchange(&mut sim, t, &[b"old.basic", TAG]),
        vec![b(&[b"FORBIDDEN", b"REPLY", TAG])]
    );
    // The alias itself works.
    assert_eq!(
        exchange(&mut sim, t, &[b"legacy.echo", TAG, b"q"]),
        vec![b(&[b"REPLY", TAG, b"q"])]
    );
}

#[test]
fn sim_builtin_messages_that_are_ignored_get_no_answer() {
    let (mut sim, server, t) = standard();
    let ignored: [&[&[u8]]; 13] = [
        &[b"UNKNOWNCOMMAND", b"x.y"],
        &[b"UNKNOWNCOMMAND"],
        &[b"FORBIDDEN", b"x.y"],
        &[b"FORBIDDEN", b"REPLY", TAG],
        &[b"FORBIDDEN_SN", b"x.y"],
        &[b"NOT_A_SERVICE_NODE", b"REPLY", TAG],
        &[b"NO_REPLY_TAG", b"x.y"],
        &[b"BYE"],
        &[b"HELLO"],
        &[b"REPLY"],
        &[b"REPLY", TAG, b"late"],
        &[b"REPLY", b"short-tag"],
        &[b"HELLO", b"extra"],
    ];
    for m in ignored {
        assert_eq!(exchange(&mut sim, t, m), Vec::<Vec<Bytes>>::new(), "{m:?}");
    }
    // The connection survived all of it (BYE on a listener is ignored) and nothing ran.
    assert!(sim.tap(t).eof_at.is_none() && sim.tap(t).failed.is_none());
    assert_eq!(exchange(&mut sim, t, &[b"HI"]), vec![b(&[b"HELLO"])]);
    assert!(sim.node(server).commands.is_empty());
    assert_eq!(sim.node(server).node.stats().connections, 1);
}

#[test]
fn sim_builtin_unknowncommand_fails_a_request_at_once() {
    // Our improvement over OxenMQ: the requester learns at once instead of after TIMEOUT.
    let mut sim = Sim::new(8);
    let (server, client, conn) = sim.add_plain_pair(|| conformance_node(quiet_config(1)));
    sim.run_until_idle();
    let t0 = sim.now();
    let unknown = sim
        .request_default(client, &conn, "nope.nope", strs(&["x"]))
        .unwrap();
    let known = sim
        .request_default(client, &conn, "public.echo", strs(&["y"]))
        .unwrap();
    sim.run_until_idle();
    let c = sim.node(client);
    assert_eq!(c.outcome(unknown), Some(&Err(RequestError::UnknownCommand)));
    assert!(c.outcome_time(unknown).unwrap() - t0 < Duration::from_millis(10));
    assert_eq!(c.outcome(known), Some(&Ok(strs(&["y"]))));
    // The server answered with the plain (non-reply) form, as OxenMQ does.
    assert!(
        sim.node(server)
            .commands
            .iter()
            .all(|(_, n, _)| n == "public.echo")
    );
}

#[test]
fn sim_builtin_hi_on_an_outgoing_connection_is_ignored() {
    // A listener that says HI to its client gets nothing back; the client stays connected.
    let mut sim = Sim::new(9);
    let client = sim.add_node(conformance_node(quiet_config(1)));
    let addr = lokimq_core::address::Address::tcp("127.0.0.1", 5999);
    let tl = sim.tap_listen(
        &addr,
        Some(lokimq_core::session::SessionConfig::new(
            lokimq_core::zmtp::SocketType::Router,
            lokimq_core::session::MechanismConfig::Null,
        )),
    );
    let conn = sim.connect_remote(client, addr, &ConnectOptions::default());
    sim.run_until_idle();
    let t = sim.tap_listener(tl).accepted[0];
    assert_eq!(sim.raw_take(t), vec![b(&[b"HI"])]);
    sim.raw_send_strs(t, &[b"HI"]);
    sim.raw_send_strs(t, &[b"HELLO"]);
    sim.run_until_idle();
    assert_eq!(sim.raw_take(t), Vec::<Vec<Bytes>>::new());
    assert_eq!(sim.node(client).connected.len(), 1);
    assert_eq!(sim.node(client).connected[0].1, conn);
    // A second HELLO is ignored too.
    sim.raw_send_strs(t, &[b"HELLO"]);
    sim.run_until_idle();
    assert_eq!(sim.node(client).connected.len(), 1);
    // Commands on the outgoing connection are handled like on a listener.
    sim.raw_send_strs(t, &[b"a.b"]);
    sim.run_until_idle();
    assert_eq!(sim.raw_take(t), vec![b(&[b"UNKNOWNCOMMAND", b"a.b"])]);
    // BYE closes it and it stays closed.
    sim.raw_send_strs(t, &[b"BYE"]);
    sim.run_for(Duration::from_secs(10));
    assert!(sim.tap(t).eof_at.is_some());
    assert_eq!(
        sim.tap_listener(tl).accepted.len(),
        1,
        "no reconnect after BYE"
    );
}
