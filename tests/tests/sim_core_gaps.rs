//! Core gaps the simulator found, kept as regression tests now that the core fixes them.

use lokimq_core::address::Address;
use lokimq_core::ids::ListenerId;
use lokimq_core::node::NodeError;
use lokimq_tests::fixtures::{conformance_node, quiet_config};
use lokimq_tests::sim::Sim;

#[test]
fn sim_core_accept_after_stop_is_refused() {
    let mut sim = Sim::new(1);
    let n = sim.add_node(conformance_node(quiet_config(1)));
    sim.listen_on(n, Address::tcp("127.0.0.1", 4000), false);
    sim.shutdown(n);
    sim.run_until_idle();
    assert!(sim.node(n).stopped.is_some());
    let r = sim.with_node(n, |node, now| node.accept(now, ListenerId(0), "127.0.0.1"));
    assert_eq!(r, Err(NodeError::Stopped));
    assert_eq!(sim.node(n).node.stats().connections, 0);
}

#[test]
fn sim_core_disconnect_lingers_for_messages_queued_before_the_handshake() {
    use lokimq_core::time::Duration;
    use lokimq_tests::fixtures::strs;

    let mut sim = Sim::new(2);
    let (server, client, conn) = sim.add_plain_pair(|| conformance_node(quiet_config(1)));
    sim.send_default(client, &conn, "public.hello", strs(&["bye"]))
        .unwrap();
    sim.disconnect(client, &conn, Duration::from_secs(1))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(server).command_names(), ["public.hello"]);
}

#[test]
fn sim_core_two_links_from_one_node_to_one_listener_do_not_flap() {
    use lokimq_core::node::{ConnectOptions, ConnectionId};
    use lokimq_core::time::Duration;
    use std::collections::BTreeSet;

    let mut sim = Sim::new(3);
    let mut config = quiet_config(1);
    config.service_node = true;
    let b = sim.add_node(
        conformance_node(config).keypair(lokimq_core::keys::Keypair::from_secret_bytes([5; 32])),
    );
    let a = sim.add_node(conformance_node(quiet_config(1)));
    let (_, addr) = sim.listen_curve(b);
    let pkb = sim.pubkey(b);
    sim.set_address(a, pkb, addr.clone().with_pubkey(None));
    sim.set_active_sns(a, BTreeSet::from([pkb]));
    sim.connect_remote(a, addr, &ConnectOptions::default());
    sim.send_default(a, &ConnectionId::Sn(pkb), "public.hello", vec![])
        .unwrap();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(
        sim.node(a).dials.len(),
        2,
        "one dial per connection, no reconnects"
    );
    assert!(sim.node(b).closes.is_empty());
}
