//! Smoke tests of the simulator itself: the basic request paths work end to end through it.

use lokimq_core::node::ConnectOptions;
use lokimq_tests::fixtures::{conformance_node, quiet_config, strs};
use lokimq_tests::sim::{Chunking, NetConfig, Sim};

#[test]
fn sim_plain_and_curve_requests_get_replies() {
    for chunking in [
        Chunking::Whole,
        Chunking::Fixed(1),
        Chunking::Random { max: 7 },
    ] {
        let mut sim = Sim::with_net(
            1,
            NetConfig {
                chunking,
                ..NetConfig::default()
            },
        );
        let server = sim.add_node(conformance_node(quiet_config(2)));
        let client = sim.add_node(conformance_node(quiet_config(2)));
        let (_, plain) = sim.listen_plain(server);
        let (_, curve) = sim.listen_curve(server);
        let a = sim.connect_remote(client, plain, &ConnectOptions::default());
        let b = sim.connect_remote(client, curve, &ConnectOptions::default());
        let ra = sim
            .request_default(client, &a, "public.echo", strs(&["a", ""]))
            .unwrap();
        let rb = sim
            .request_default(client, &b, "public.echo", strs(&["b"]))
            .unwrap();
        sim.run_until_idle();
        let c = sim.node(client);
        assert_eq!(c.outcome(ra), Some(&Ok(strs(&["a", ""]))), "{chunking:?}");
        assert_eq!(c.outcome(rb), Some(&Ok(strs(&["b"]))), "{chunking:?}");
        assert_eq!(c.connected.len(), 2);
        sim.assert_requests_resolved();
    }
}
