//! # lokimq-sim: deterministic simulation for applications built on lokimq
//!
//! Your application's nodes — the same [`lokimq::Builder`] setup, the same category and
//! command registrations, the same handler closures, [`Message::send_reply`],
//! [`send_back`](lokimq::Message::send_back), [`send_later`](lokimq::Message::send_later),
//! [`Batch`](lokimq::Batch)es, timers, `connect_remote`, `connect_sn` — run unchanged on a
//! virtual clock and a virtual network, inside one test thread. One seed drives every choice
//! (keys, request tags, CURVE nonces, latencies, how bytes are cut into reads, how long each
//! handler takes, which faults strike), so a run is a pure function of its seed: a race that
//! shows up on real sockets once a week shows up here on some seed, every time you run that
//! seed. This is what FoundationDB's simulation, TigerBeetle's VOPR and quinn-proto's `Pair`
//! do for their own code, for yours.
//!
//! ```
//! use lokimq::{AuthLevel, ConnectOptions};
//! use lokimq_sim::{Invariant, Sim};
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let mut sim = Sim::new(42);
//! sim.add_invariant(Invariant::no_request_lost());
//!
//! // The server: exactly what the application registers before `start()`.
//! let server = sim.add_node(|b| {
//!     b.add_category("demo", AuthLevel::None)?
//!         .add_request_command("demo", "echo", |m| m.send_reply(m.data().to_vec()))?
//!         .listen_curve("tcp://*:5000", |_ip, _key, _sn| AuthLevel::None)?;
//!     Ok(())
//! });
//! let client = sim.add_node(|_| Ok(()));
//!
//! // The test drives the client through the node's own `Handle`.
//! let got = Arc::new(Mutex::new(None));
//! let h = sim.handle(client);
//! let conn = h.connect_remote(sim.address(server), |_| {}, |_, _| {}, ConnectOptions::default())?;
//! let slot = Arc::clone(&got);
//! h.request(&conn, "demo.echo", ["hi"], move |r| *slot.lock().unwrap() = Some(r))?;
//!
//! sim.run_until(|_| got.lock().unwrap().is_some());
//! assert_eq!(got.lock().unwrap().clone(), Some(Ok(vec!["hi".into()])));
//! assert!(sim.elapsed() < Duration::from_millis(20)); // virtual: 1 ms links, instant jobs
//! # Ok::<(), lokimq::Error>(())
//! ```
//!
//! ## What is simulated, and what is not
//!
//! * **Real**: each node is a real [`lokimq_core`] node inside the real [`lokimq::kit::Host`],
//!   with your real closures; the bytes between nodes are the real ZMTP 3.1 / CurveZMQ bytes,
//!   parsed by the real codec (in whatever pieces the network cuts them into); scheduling
//!   (worker pools, reserved threads, queues, batch and reply reserves) is the core's own.
//! * **Virtual**: time ([`Sim::now`]; nothing sleeps), the network (every node has an IP,
//!   `10.0.0.1` for the first; links with latency and jitter; TCP-like ordered pipes; faults
//!   around them), and workers: a job runs inline, on the test thread, when its simulated
//!   duration ([`JobTimes`]) is over; its worker is busy meanwhile, and whatever it sends
//!   leaves when it finishes.
//! * **Not simulated**: OS scheduling and real threads (two jobs never run at the same
//!   instant on two CPUs; a data race between your handlers and a thread of your own is not
//!   found here), the mio driver's socket code (it has its own tests), `std::time` (code that
//!   reads the wall clock sees real time), host-name resolution (dial nodes by IP), and socket
//!   buffers (writes never block, so the send high-water mark is never reached).
//!
//! ## Faults
//!
//! Per link latency and jitter ([`Sim::set_link`]), re-chunking down to single bytes
//! ([`Sim::set_chunking`]), resets ([`Sim::reset_between`], [`Sim::reset_random_connection`]),
//! partitions that freeze or reset ([`Sim::partition`], [`Sim::isolate`], [`Sim::heal`]),
//! refused connections ([`Sim::set_refusing`]), slow and stuck workers ([`Sim::set_job_times`]),
//! and crashes with restarts under the same key ([`Sim::crash`], [`Sim::restart`]). Schedule
//! any of them in virtual time with [`Sim::at`], and draw them from [`Sim::rng`] to keep the
//! run a function of the seed.
//!
//! ## Checks and replay
//!
//! [`Invariant`]s run after every step: [`Invariant::no_request_lost`],
//! [`Invariant::replies_match_requests`], or your own closure. A failure panics with the seed
//! and prints the end of the trace; [`seeds`] runs a range of seeds, or only the one in
//! `LOKIMQ_SIM_SEED`, so `LOKIMQ_SIM_SEED=1234 cargo test my_test` replays it exactly.
//! [`explore`] runs many seeds and collects the failures instead of stopping at the first.
//!
//! `docs/simulation.md` in the repository is the guide; the `raw` module (feature `raw`, for
//! lokimq's own tests: it needs lokimq-core's unstable internals) is the lower-level simulator of
//! bare [`lokimq_core`] nodes with scripted handlers.
//!
//! [`Message::send_reply`]: lokimq::Message::send_reply

#![warn(missing_docs)]

mod check;
mod io;
mod jobs;
// Parts of the network, the queue and the log helpers serve only the `raw` simulator (which
// re-exports them), so without that feature they are unused or unreachable.
#[cfg_attr(not(feature = "raw"), allow(dead_code, unreachable_pub))]
mod net;
#[cfg_attr(not(feature = "raw"), allow(dead_code))]
mod queue;
#[cfg(feature = "raw")]
pub mod raw;
mod seeds;
#[cfg_attr(not(feature = "raw"), allow(unreachable_pub))]
mod show;
mod sim;
mod trace;

pub use check::{Invariant, LostRequest, RequestLedger, StrayReply};
pub use jobs::{Dur, DurFn, JobInfo, JobKind, JobTimes};
pub use net::{Chunking, LinkConfig, NetConfig, PartitionMode};
pub use seeds::{Exploration, Failure, SEED_VAR, explore, find_failure, seeds};
pub use sim::{Crash, NodeId, Sim, SimConfig, SnDirectory};
pub use trace::{Log, fnv1a};

pub use lokimq_core::time::{Duration, Instant};
