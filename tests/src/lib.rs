//! # lokimq-tests: the deterministic simulator and shared test helpers
//!
//! * [`sim`]: N sans-IO nodes on one virtual clock and a virtual network with faults (latency,
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
#![warn(missing_docs)]

pub mod capture;
pub mod fixtures;
pub mod mesh;
pub mod sim;
