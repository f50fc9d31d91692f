//! `bench-net-zmq-sys`: `bench-net`'s `zmq-server` and `zmq-client`, linked against the
//! **system** libzmq instead of the vendored one.
//!
//! The vendored libzmq 4.3.2 of the `zmq` crate does CURVE with its bundled tweetnacl, a
//! compact reference implementation; OxenMQ deployments link a distribution's libzmq, which
//! uses libsodium (Debian 12: libzmq 4.3.4). Both floors are worth having, so this crate
//! compiles the very same harness source (`benches/net/src`, by `#[path]`) against the system
//! library. Results are labelled `zmq-sys`.

#[path = "../../net/src/args.rs"]
mod args;
#[path = "../../net/src/report.rs"]
mod report;
// `StopSignal::wait` is only used by the lokimq server, which this crate does not include.
#[allow(dead_code)]
#[path = "../../net/src/run.rs"]
mod run;
#[path = "../../net/src/zmq_peer.rs"]
mod zmq_peer;

use std::process::ExitCode;

use args::{Args, CLIENT_FLAGS, CLIENT_VALUED, SERVER_FLAGS, SERVER_VALUED};

const USAGE: &str = "\
usage: bench-net-zmq-sys zmq-server [--listen IP:PORT] [--plain]
       bench-net-zmq-sys zmq-client --connect ENDPOINT [--server-key Z85]
                                    --workload oneway|pipelined|latency
                                    [--size BYTES] [--seconds S] [--warmup S] [--plain]";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let sub = argv.first().map_or("", String::as_str);
    let (valued, flags) = match sub {
        "zmq-server" => (SERVER_VALUED, SERVER_FLAGS),
        "zmq-client" => (CLIENT_VALUED, CLIENT_FLAGS),
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
            eprintln!("bench-net-zmq-sys: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if sub == "zmq-server" {
        zmq_peer::server(&args)
    } else {
        zmq_peer::client(&args, "zmq-sys")
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-net-zmq-sys {sub}: {e}");
            ExitCode::FAILURE
        }
    }
}
