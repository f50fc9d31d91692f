//! Replays of real OxenMQ 1.2.16 conversations (`vectors/oxenmq-*.txt`) against our node, in
//! lock-step, through the simulated network: a tap plays the recorded peer byte for byte, our
//! node plays OxenMQ, and every byte our node sends must equal what OxenMQ sent.
//!
//! * `oxenmq-server-plain.txt`: a pyzmq DEALER against OxenMQ's `listen_plain` (our node is the
//!   server, with the conformance categories).
//! * `oxenmq-client-plain.txt`: OxenMQ's `connect_remote` against a scripted pyzmq ROUTER (our
//!   node is the client), four runs: default, ephemeral routing id, 500 ms heartbeats, and a
//!   generated key.
//! * `oxenmq-sn-plain.txt`: two SN-mode OxenMQs over plain; we replay each side in turn.
//!
//! Random bytes are the only allowed difference: OxenMQ's 15-byte request tags, and the
//! generated key of client run D. Each is located in the recording at its byte offset, read
//! back from our node's stream at the same offset, and substituted (in what we expect from our
//! node, and in what the peer sends back, e.g. its REPLY). Everything else, greetings, READY
//! metadata, PING/PONG, every frame header, must match exactly. Timing is not compared: the
//! recorded PINGs are reproduced by advancing virtual time until our node sends its own.

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::keys::Keypair;
use lokimq_core::node::{Config, ConnectOptions, RequestError, RequestOptions, SendOptions};
use lokimq_core::registry::RegistryBuilder;
use lokimq_core::time::Duration;
use lokimq_tests::capture::{ItemKind, Run, parse_runs, stream_units, unhex};
use lokimq_tests::fixtures::{conformance_node, strs};
use lokimq_tests::sim::{Chunking, NetConfig, NodeSpec, Sim};
use std::cell::RefCell;
use std::rc::Rc;

const SERVER_PLAIN: &str = include_str!("../../vectors/oxenmq-server-plain.txt");
const CLIENT_PLAIN: &str = include_str!("../../vectors/oxenmq-client-plain.txt");
const SN_PLAIN: &str = include_str!("../../vectors/oxenmq-sn-plain.txt");

const SERVER_SECRET: &str = "8e0bdd697628b91d8f245587ee95c5b04d48963f79259877b49cd9063aead3b7";
const SERVER_PUBLIC: &str = "54fcba24e93249969316fb617c872bb0c1d1ff14800427c594cbfacf1bc2d652";
const CLIENT_SECRET: &str = "7bb864b489afa3671fbe69101f94b38972f24816dfb01b51656b3fec8dfd0888";
const CLIENT_PUBLIC: &str = "bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518";

const CHUNKINGS: [Chunking; 3] = [
    Chunking::Whole,
    Chunking::Fixed(1),
    Chunking::Random { max: 7 },
];

fn keypair(secret: &str, public: &str) -> Keypair {
    let kp = Keypair::from_secret_bytes(unhex(secret).try_into().unwrap());
    assert_eq!(kp.public().as_bytes().as_slice(), unhex(public).as_slice());
    kp
}

fn sim(seed: u64, chunking: Chunking) -> Sim {
    Sim::with_net(
        seed,
        NetConfig {
            chunking,
            ..NetConfig::default()
        },
    )
}

fn replace_all(hay: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    while i + from.len() <= hay.len() {
        if &hay[i..i + from.len()] == from {
            hay[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..=hay.len().saturating_sub(needle.len()))
        .filter(|&i| &hay[i..i + needle.len()] == needle)
        .collect()
}

/// What a replay learned: the random values our node chose, `(recorded, ours)`.
type Substitutions = Vec<(Vec<u8>, Vec<u8>)>;

/// Plays `run` in lock-step: `peer`'s recorded units are written by the tap (with random values
/// substituted), `me` is our node. `hook(sim, item)` runs before each item (to make the
/// application calls the recording shows). Checks after every item that our node sent nothing
/// different from the recording and everything the recording shows it sent by then.
fn lockstep(
    sim: &mut Sim,
    tap: &dyn Fn(&Sim) -> usize,
    run: &Run,
    me: &str,
    peer: &str,
    random: &[Vec<u8>],
    hook: &mut dyn FnMut(&mut Sim, usize),
) -> Substitutions {
    let expected_raw = run.stream_from(me);
    let me_lens: Vec<usize> = stream_units(&expected_raw)
        .iter()
        .map(|u| u.len())
        .collect();
    let peer_stream = run.stream_from(peer);
    let peer_units: Vec<Vec<u8>> = stream_units(&peer_stream)
        .iter()
        .map(|u| u.to_vec())
        .collect();
    let mut sub_sites: Vec<(usize, Vec<u8>)> = Vec::new();
    for r in random {
        let sites = find_all(&expected_raw, r);
        assert!(
            !sites.is_empty(),
            "random value {r:02x?} not in {me}'s stream"
        );
        sub_sites.extend(sites.into_iter().map(|s| (s, r.clone())));
    }
    let (mut me_count, mut peer_count) = (0, 0);
    let mut subs: Substitutions = Vec::new();
    for (i, item) in run.items.iter().enumerate() {
        hook(sim, i);
        if item.from == peer {
            if item.kind == ItemKind::Eof {
                let t = tap(sim);
                sim.tap_close(t);
            } else {
                let mut unit = peer_units[peer_count].clone();
                peer_count += 1;
                for (rec, ours) in &subs {
                    replace_all(&mut unit, rec, ours);
                }
                let t = tap(sim);
                sim.tap_write(t, &unit);
            }
            sim.run_until_idle();
        } else {
            match item.kind {
                ItemKind::Ping { .. } => {
                    let t = tap(sim);
                    let before = sim.tap(t).received.len();
                    for _ in 0..1000 {
                        sim.run_for(Duration::from_millis(10));
                        if sim.tap(t).received.len() > before {
                            break;
                        }
                    }
                }
                ItemKind::Eof => {
                    sim.run_until_idle();
                    let t = tap(sim);
                    assert!(sim.tap(t).eof_at.is_some(), "item {i}: {me} closed");
                }
                _ => sim.run_until_idle(),
            }
            if item.kind != ItemKind::Eof {
                me_count += 1;
            }
        }
        // Lock-step checks.
        let t = tap(sim);
        let received = sim.tap(t).received.clone();
        let need: usize = me_lens[..me_count].iter().sum();
        assert!(
            received.len() >= need,
            "item {i} ({:?}): {me} sent {} bytes, the recording shows {need} by now",
            item.kind,
            received.len()
        );
        let mut expected = expected_raw.clone();
        for (site, rec) in &sub_sites {
            let end = site + rec.len();
            if end <= received.len() {
                let ours = received[*site..end].to_vec();
                if !subs.iter().any(|(r, _)| r == rec) {
                    assert_ne!(&ours, rec, "a random value equal to the recording's");
                    subs.push((rec.clone(), ours.clone()));
                }
                expected[*site..end].copy_from_slice(&ours);
            } else {
                // Not received yet (or partly): nothing to compare in that range.
                let have = received.len().saturating_sub(*site).min(rec.len());
                if have > 0 {
                    expected[*site..*site + have].copy_from_slice(&received[*site..*site + have]);
                }
            }
        }
        assert!(
            received.len() <= expected.len(),
            "item {i}: {me} sent more than the recording ({} > {})",
            received.len(),
            expected.len()
        );
        if received[..] != expected[..received.len()] {
            let at = received
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "item {i} ({:?}): {me}'s bytes differ from the recording at offset {at}:\n ours {:02x?}\n  rec {:02x?}",
                item.kind,
                &received[at..(at + 32).min(received.len())],
                &expected[at..(at + 32).min(expected.len())]
            );
        }
    }
    let t = tap(sim);
    assert_eq!(
        sim.tap(t).received.len(),
        expected_raw.len(),
        "{me} sent exactly the recorded stream"
    );
    assert_eq!(subs.len(), random.len(), "every random value was seen");
    subs
}

// =============================================================================================
// oxenmq-server-plain.txt

#[test]
fn replay_oxenmq_server_plain_byte_for_byte() {
    let run = &parse_runs(SERVER_PLAIN)[0];
    for chunking in CHUNKINGS {
        let mut sim = sim(11, chunking);
        // OxenMQ's defaults, heartbeats included (15 s: none fall in the recorded 0.66 s).
        let server = sim.add_node(
            conformance_node(Config::new(1)).keypair(keypair(SERVER_SECRET, SERVER_PUBLIC)),
        );
        let (_, addr) = sim.listen_plain(server);
        let t = sim.tap_dial(&addr);
        let subs = lockstep(
            &mut sim,
            &|_| t,
            run,
            "OxenMQ",
            "DEALER",
            &[],
            &mut |_, _| {},
        );
        assert!(subs.is_empty());
        // The commands that ran are exactly the recorded successful ones.
        assert_eq!(
            sim.node(server).command_names(),
            ["public.echo", "public.hello"],
            "{chunking:?}"
        );
        // The DEALER's 2 s PING TTL did not fire before its FIN closed the connection.
        assert_eq!(sim.node(server).node.stats().connections, 0);
    }
}

// =============================================================================================
// oxenmq-client-plain.txt

/// Our node as OxenMQ's client against a tap ROUTER; returns the substitutions and the sim.
fn client_run(
    run: &Run,
    chunking: Chunking,
    keypair: Option<Keypair>,
    config: Config,
    opts: ConnectOptions,
    random: &[Vec<u8>],
) -> (Sim, usize, Substitutions) {
    let mut sim = sim(12, chunking);
    let mut spec = NodeSpec::new(config, RegistryBuilder::new().build());
    if let Some(kp) = keypair {
        spec = spec.keypair(kp);
    }
    let client = sim.add_node(spec);
    let addr = Address::tcp("127.0.0.1", 4999);
    let tl = sim.tap_listen(&addr, None);
    let replies = Rc::new(RefCell::new(Vec::new()));
    let r2 = replies.clone();
    // On connect: request(conn, "x.y", "hello") then send(conn, "x.z", "data"), as recorded.
    sim.on_connect(client, move |ctx, conn| {
        let r3 = r2.clone();
        ctx.request(
            conn.clone(),
            "x.y",
            strs(&["hello"]),
            RequestOptions::default(),
            move |_, result| r3.borrow_mut().push(result.clone()),
        );
        ctx.send(conn.clone(), "x.z", strs(&["data"]), SendOptions::default());
    });
    let conn = sim.connect_remote(client, addr, &opts);
    let subs = lockstep(
        &mut sim,
        &|s: &Sim| s.tap_listener(tl).accepted[0],
        run,
        "OxenMQ",
        "ROUTER",
        random,
        &mut |_, _| {},
    );
    assert_eq!(sim.node(client).connected.len(), 1);
    assert_eq!(sim.node(client).connected[0].1, conn);
    // The requests only go out in run A (the ROUTER there answers with "world").
    let expect_reply: Vec<Result<Vec<Bytes>, RequestError>> = if run.name.starts_with("A") {
        vec![Ok(strs(&["world"]))]
    } else {
        vec![]
    };
    assert_eq!(*replies.borrow(), expect_reply, "run {}", run.name);
    (sim, tl, subs)
}

fn client_runs() -> Vec<Run> {
    let runs = parse_runs(CLIENT_PLAIN);
    assert_eq!(runs.len(), 4);
    runs
}

#[test]
fn replay_oxenmq_client_plain_run_a_request_send_unknown_bye() {
    let run = &client_runs()[0];
    assert!(run.name.starts_with("A"));
    let tag = unhex("b26ad4774dc844111c16a10a1ef8b0");
    for chunking in CHUNKINGS {
        let (mut sim, tl, subs) = client_run(
            run,
            chunking,
            Some(keypair(CLIENT_SECRET, CLIENT_PUBLIC)),
            Config::new(1),
            ConnectOptions::default(),
            std::slice::from_ref(&tag),
        );
        assert_eq!(subs[0].1.len(), 15, "a fresh 15-byte tag");
        // BYE: closed at once (linger 0) and never reconnected.
        assert_eq!(sim.node(0).closes.last().unwrap().2, Duration::ZERO);
        sim.run_for(Duration::from_millis(1500));
        assert_eq!(
            sim.tap_listener(tl).accepted.len(),
            1,
            "no reconnect after BYE"
        );
        assert_eq!(sim.node(0).node.stats().links, 0);
    }
}

#[test]
fn replay_oxenmq_client_plain_run_b_ephemeral_routing_id() {
    let run = &client_runs()[1];
    assert!(run.name.starts_with("B"));
    for chunking in CHUNKINGS {
        let mut sim = sim(13, chunking);
        let client = sim.add_node(
            NodeSpec::new(Config::new(1), RegistryBuilder::new().build())
                .keypair(keypair(CLIENT_SECRET, CLIENT_PUBLIC)),
        );
        let addr = Address::tcp("127.0.0.1", 4999);
        let tl = sim.tap_listen(&addr, None);
        let opts = ConnectOptions::default().ephemeral_routing_id(true);
        sim.connect_remote(client, addr, &opts);
        let mut hook = |sim: &mut Sim, i: usize| {
            // The recording ends with OxenMQ being destroyed: a FIN, no BYE.
            if run.items[i].from == "OxenMQ" && run.items[i].kind == ItemKind::Eof {
                sim.shutdown(0);
            }
        };
        lockstep(
            &mut sim,
            &|s: &Sim| s.tap_listener(tl).accepted[0],
            run,
            "OxenMQ",
            "ROUTER",
            &[],
            &mut hook,
        );
        assert_eq!(sim.node(client).connected.len(), 1);
        assert!(sim.node(client).stopped.is_some());
    }
}

/// Runs C and D: handshake and HI/HELLO only, then OxenMQ is destroyed (FIN).
fn idle_client_run(run: &Run, keypair: Option<Keypair>, config: Config, random: &[Vec<u8>]) {
    for chunking in CHUNKINGS {
        let mut sim = sim(14, chunking);
        let mut spec = NodeSpec::new(config.clone(), RegistryBuilder::new().build());
        if let Some(kp) = keypair.clone() {
            spec = spec.keypair(kp);
        }
        let client = sim.add_node(spec);
        let addr = Address::tcp("127.0.0.1", 4999);
        let tl = sim.tap_listen(&addr, None);
        sim.connect_remote(client, addr, &ConnectOptions::default());
        let mut hook = |sim: &mut Sim, i: usize| {
            if run.items[i].from == "OxenMQ" && run.items[i].kind == ItemKind::Eof {
                sim.shutdown(0);
            }
        };
        let subs = lockstep(
            &mut sim,
            &|s: &Sim| s.tap_listener(tl).accepted[0],
            run,
            "OxenMQ",
            "ROUTER",
            random,
            &mut hook,
        );
        if let Some((_, ours)) = subs.first() {
            assert_eq!(ours.as_slice(), sim.pubkey(client).as_bytes().as_slice());
        }
    }
}

#[test]
fn replay_oxenmq_client_plain_run_c_heartbeats_every_500ms() {
    let run = &client_runs()[2];
    assert!(run.name.starts_with("C"));
    let mut config = Config::new(1);
    config.heartbeat_interval = Duration::from_millis(500);
    idle_client_run(
        run,
        Some(keypair(CLIENT_SECRET, CLIENT_PUBLIC)),
        config,
        &[],
    );
}

#[test]
fn replay_oxenmq_client_plain_run_d_generated_key() {
    let run = &client_runs()[3];
    assert!(run.name.starts_with("D"));
    // OxenMQ generated a random key; ours is generated from the seed.
    let recorded = unhex("e0d30543aa4a8a6099030776e7377d2e5cd11dfae08bccd43fef4452e54c1e52");
    idle_client_run(run, None, Config::new(1), &[recorded]);
}

// =============================================================================================
// oxenmq-sn-plain.txt

fn sn_config() -> Config {
    let mut c = Config::new(1);
    c.service_node = true;
    c
}

#[test]
fn replay_oxenmq_sn_plain_server_side() {
    // Our SN-mode server, the client's key in its active set, against the recorded client.
    let run = &parse_runs(SN_PLAIN)[0];
    for chunking in CHUNKINGS {
        let mut sim = sim(15, chunking);
        let server = sim
            .add_node(conformance_node(sn_config()).keypair(keypair(SERVER_SECRET, SERVER_PUBLIC)));
        let client_pk = keypair(CLIENT_SECRET, CLIENT_PUBLIC).public().to_owned();
        sim.set_active_sns(server, [client_pk].into_iter().collect());
        let (_, addr) = sim.listen_plain(server);
        let t = sim.tap_dial(&addr);
        lockstep(
            &mut sim,
            &|_| t,
            run,
            "OxenMQ-server",
            "OxenMQ-client",
            &[],
            &mut |_, _| {},
        );
        // The client's key bought it nothing over plain: not an SN, no pubkey.
        let node = sim.node(server);
        assert_eq!(
            node.command_names(),
            ["public.whoami", "local.echo", "public.hello"]
        );
        assert!(node.commands.iter().all(|(_, _, m)| !m.access.remote_sn));
        assert!(node.auth_requests.iter().all(|a| a.pubkey.is_none()));
    }
}

#[test]
fn replay_oxenmq_sn_plain_client_side() {
    let run = &parse_runs(SN_PLAIN)[0];
    let tags: Vec<Vec<u8>> = [
        "9ef32a1daa09067f44da6740622916",
        "00add44e095e175aadd67862e5cc2b",
        "d09fe11cff948a07b6713b0efa9ef7",
    ]
    .iter()
    .map(|t| unhex(t))
    .collect();
    for chunking in CHUNKINGS {
        let mut sim = sim(16, chunking);
        let client = sim.add_node(
            NodeSpec::new(sn_config(), RegistryBuilder::new().build())
                .keypair(keypair(CLIENT_SECRET, CLIENT_PUBLIC)),
        );
        let addr = Address::tcp("127.0.0.1", 4998);
        let tl = sim.tap_listen(&addr, None);
        let results = Rc::new(RefCell::new(Vec::new()));
        // One request at a time: whoami, then sn.echo "x", then local.echo "y", then the send.
        let r = results.clone();
        sim.on_connect(client, move |ctx, conn| {
            let (r1, c1) = (r.clone(), conn.clone());
            ctx.request(
                conn.clone(),
                "public.whoami",
                vec![],
                RequestOptions::default(),
                move |ctx, res| {
                    r1.borrow_mut().push(res.clone());
                    let (r2, c2) = (r1.clone(), c1.clone());
                    ctx.request(
                        c1.clone(),
                        "sn.echo",
                        strs(&["x"]),
                        RequestOptions::default(),
                        move |ctx, res| {
                            r2.borrow_mut().push(res.clone());
                            let (r3, c3) = (r2.clone(), c2.clone());
                            ctx.request(
                                c2.clone(),
                                "local.echo",
                                strs(&["y"]),
                                RequestOptions::default(),
                                move |ctx, res| {
                                    r3.borrow_mut().push(res.clone());
                                    ctx.send(
                                        c3,
                                        "public.hello",
                                        strs(&["z"]),
                                        SendOptions::default(),
                                    );
                                },
                            );
                        },
                    );
                },
            );
        });
        sim.connect_remote(client, addr, &ConnectOptions::default());
        let mut hook = |sim: &mut Sim, i: usize| {
            if run.items[i].from == "OxenMQ-client" && run.items[i].kind == ItemKind::Eof {
                sim.shutdown(0);
            }
        };
        lockstep(
            &mut sim,
            &|s: &Sim| s.tap_listener(tl).accepted[0],
            run,
            "OxenMQ-client",
            "OxenMQ-server",
            &tags,
            &mut hook,
        );
        assert_eq!(
            *results.borrow(),
            vec![
                Ok(strs(&["", "none", "0"])),
                Err(RequestError::ForbiddenSn),
                Ok(strs(&["y"])),
            ]
        );
    }
}

#[test]
fn replay_oxenmq_two_of_our_nodes_talk_like_two_oxenmqs() {
    // Both sides ours, in the simulator: the server sees the same commands and the client gets
    // the same answers as in the recording between two real OxenMQs.
    let run = &parse_runs(SN_PLAIN)[0];
    let mut sim = sim(17, Chunking::Random { max: 3 });
    let server =
        sim.add_node(conformance_node(sn_config()).keypair(keypair(SERVER_SECRET, SERVER_PUBLIC)));
    let client = sim.add_node(
        NodeSpec::new(sn_config(), RegistryBuilder::new().build())
            .keypair(keypair(CLIENT_SECRET, CLIENT_PUBLIC)),
    );
    let client_pk = sim.pubkey(client);
    sim.set_active_sns(server, [client_pk].into_iter().collect());
    let (_, addr) = sim.listen_plain(server);
    let conn = sim.connect_remote(client, addr, &ConnectOptions::default());
    sim.run_until_idle();
    let mut got = Vec::new();
    for (cmd, data) in [
        ("public.whoami", vec![]),
        ("sn.echo", strs(&["x"])),
        ("local.echo", strs(&["y"])),
    ] {
        let r = sim.request_default(client, &conn, cmd, data).unwrap();
        sim.run_until_idle();
        got.push(sim.node(client).outcome(r).cloned().unwrap());
    }
    sim.send_default(client, &conn, "public.hello", strs(&["z"]))
        .unwrap();
    sim.run_until_idle();
    // The recorded replies, in the recorded order.
    let recorded: Vec<Vec<Vec<u8>>> = run.messages_from("OxenMQ-server");
    assert_eq!(
        recorded[1][2..],
        [b"".to_vec(), b"none".to_vec(), b"0".to_vec()]
    );
    assert_eq!(got[0], Ok(strs(&["", "none", "0"])));
    assert_eq!(recorded[2][0], b"FORBIDDEN_SN");
    assert_eq!(got[1], Err(RequestError::ForbiddenSn));
    assert_eq!(got[2], Ok(strs(&["y"])));
    // public.hi came back and the client (no such category) answered UNKNOWNCOMMAND, which the
    // server only logged: exactly one public.hello ran and nothing else arrived afterwards.
    assert_eq!(
        sim.node(server).command_names(),
        ["public.whoami", "local.echo", "public.hello"]
    );
}
