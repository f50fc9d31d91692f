//! `bench-net`: lokimq against plain libzmq sockets, over loopback TCP, moving the same frames.
//!
//! Each peer is a server and a client process:
//!
//! ```text
//! bench-net lokimq-server [--listen IP:PORT] [--plain]
//! bench-net lokimq-client --connect ADDR --workload W [--size N] [--seconds S] [--warmup S] [--plain]
//! bench-net zmq-server    [--listen IP:PORT] [--plain]
//! bench-net zmq-client    --connect ENDPOINT [--server-key Z85] --workload W [--size N] [--seconds S] [--warmup S] [--plain]
//! ```
//!
//! Workloads: `oneway` (commands with at most 400 unacknowledged, the server acking every
//! 50th), `pipelined` (400 echo requests in flight) and `latency` (one echo request at a
//! time). Servers print `READY <address>` when listening and `MESSAGES <n>` / `CPU <seconds>`
//! when stdin closes or on SIGTERM; clients print one JSON line. `scripts/bench-net` runs
//! them in pairs, interleaved with the same harness built against the system libzmq
//! (`benches/net-zmq-sys`), and prints the ratios. Why the two sides are comparable is in
//! `zmq_peer` (the frames) and `lokimq_peer` (the API use).

mod args;
mod lokimq_peer;
mod report;
mod run;
mod zmq_peer;

use std::process::ExitCode;

use args::{Args, CLIENT_FLAGS, CLIENT_VALUED, SERVER_FLAGS, SERVER_VALUED};

const USAGE: &str = "\
usage: bench-net lokimq-server [--listen IP:PORT] [--plain]
       bench-net lokimq-client --connect ADDR --workload oneway|pipelined|latency
                               [--size BYTES] [--seconds S] [--warmup S] [--plain]
       bench-net zmq-server    [--listen IP:PORT] [--plain]
       bench-net zmq-client    --connect ENDPOINT [--server-key Z85] --workload W
                               [--size BYTES] [--seconds S] [--warmup S] [--plain]";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let sub = argv.first().map_or("", String::as_str);
    let (valued, flags) = match sub {
        "lokimq-server" | "zmq-server" => (SERVER_VALUED, SERVER_FLAGS),
        "lokimq-client" | "zmq-client" => (CLIENT_VALUED, CLIENT_FLAGS),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let args = match Args::parse(&argv, valued, flags) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-net: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match sub {
        "lokimq-server" => lokimq_peer::server(&args),
        "lokimq-client" => lokimq_peer::client(&args),
        "zmq-server" => zmq_peer::server(&args),
        _ => zmq_peer::client(&args, "zmq"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-net {sub}: {e}");
            ExitCode::FAILURE
        }
    }
}
