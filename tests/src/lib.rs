//! # lokimq-tests: the deterministic simulator and shared test helpers
//!
//! * [`sim`] ([`lokimq_sim::raw`]): N sans-IO nodes on one virtual clock and a virtual network with faults (latency,
//!   jitter, re-chunking down to single bytes, refused connects, partitions, resets), scripted
//!   workers, raw ZMTP peers ("taps"), a hashed log of everything, and invariant checks after
//!   every step. One seed drives every random choice.
//! * [`capture`]: a parser for the recorded OxenMQ conversations in `vectors/oxenmq-*.txt`.
//! * [`fixtures`]: the registries and handlers the scenario tests share (the categories of
//!   OxenMQ's conformance server).
//! * [`mesh`]: a ready-made network of plain/CURVE, service-node/remote nodes with known
//!   expected request outcomes, random traffic and random faults.
//!
//! The integration tests live in `tests/tests/`.
//!
//! ```
//! use lokimq_core::node::{ConnectOptions, RequestOptions};
//! use lokimq_tests::fixtures::{conformance_node, quiet_config, strs};
//! use lokimq_tests::sim::{Chunking, NetConfig, Sim};
//!
//! // One seed drives everything; here every byte arrives on its own.
//! let net = NetConfig { chunking: Chunking::Fixed(1), ..NetConfig::default() };
//! let mut sim = Sim::with_net(7, net);
//! let server = sim.add_node(conformance_node(quiet_config(2)));
//! let client = sim.add_node(conformance_node(quiet_config(2)));
//! let (_, addr) = sim.listen_curve(server);
//! let conn = sim.connect_remote(client, addr, &ConnectOptions::default());
//! let req = sim
//!     .request(client, &conn, "public.echo", strs(&["hi"]), &RequestOptions::default())
//!     .unwrap();
//! sim.run_until_idle();
//! assert_eq!(sim.node(client).outcome(req), Some(&Ok(strs(&["hi"]))));
//! // Every input and output of every node, with its time, is in the log.
//! assert!(sim.log().len() > 100);
//! ```
#![warn(missing_docs)]

pub mod capture;
pub mod fixtures;
pub mod mesh;
/// The project's node-level simulator, now [`lokimq_sim::raw`] (re-exported under its old name).
pub use lokimq_sim::raw as sim;
