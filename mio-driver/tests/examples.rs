//! Runs the crate's examples as a newcomer would, and checks that they end by themselves,
//! succeed, and print what their documentation promises: the server and the client together
//! (over CURVE and over plain TCP), the client without a server, and `batches` and `timers`
//! alone.
//!
//! The example binaries are built by `cargo test -p lokimq` (cargo builds every example of a
//! package it tests) next to the test binaries: `target/<profile>/examples/NAME`.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use lokimq::Stopwatch;

/// How long any one example may run before the test gives up on it (generous: CI machines
/// are small and shared; the examples take a few seconds).
const LIMIT: Duration = Duration::from_secs(60);

/// The path of a built example.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: the examples are built by `cargo test -p lokimq` (or `cargo build -p \
         lokimq --examples`), not by `--test examples` alone",
        path.display()
    );
    path
}

/// Forwards a pipe's lines to a channel from a helper thread, so reads can be bounded.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running example; killed if the test ends (or panics) while it still runs.
struct Running {
    name: String,
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    out: Vec<String>,
}

/// What a finished example left behind.
struct Finished {
    status: ExitStatus,
    out: String,
    err: String,
}

impl Finished {
    fn assert_success(&self, name: &str) {
        assert!(
            self.status.success(),
            "{name} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.out,
            self.err
        );
    }

    fn assert_prints(&self, name: &str, expected: &[&str]) {
        for e in expected {
            assert!(
                self.out.contains(e),
                "{name} did not print {e:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.out,
                self.err
            );
        }
    }
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        Self {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
            out: Vec::new(),
        }
    }

    /// Waits (bounded) for a stdout line starting with `prefix`; returns the rest of it.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        let clock = Stopwatch::start();
        loop {
            match self.stdout.recv_timeout(clock.remaining(LIMIT)) {
                Ok(line) => {
                    let rest = line.strip_prefix(prefix).map(str::to_owned);
                    self.out.push(line);
                    if let Some(rest) = rest {
                        return rest;
                    }
                }
                Err(e) => panic!(
                    "{} never printed {prefix:?} ({e})\n--- stdout so far\n{}",
                    self.name,
                    self.out.join("\n")
                ),
            }
        }
    }

    /// Waits (bounded) for the example to exit and collects its output.
    fn finish(mut self) -> Finished {
        let clock = Stopwatch::start();
        let status = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => break status,
                None if clock.elapsed() >= LIMIT => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not exit within {LIMIT:?}\n--- stdout so far\n{}",
                        self.name,
                        self.out.join("\n")
                    );
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let mut out = std::mem::take(&mut self.out);
        out.extend(drain(&self.stdout));
        let err = drain(&self.stderr);
        Finished {
            status,
            out: out.join("\n"),
            err: err.join("\n"),
        }
    }
}

/// Every remaining line of an exited process's pipe (the reader ends at EOF).
fn drain(rx: &Receiver<String>) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => all.push(line),
            Err(RecvTimeoutError::Disconnected) => return all,
            Err(RecvTimeoutError::Timeout) => panic!("a pipe stayed open after its process exited"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs an example to completion.
fn run(name: &str, args: &[&str]) -> Finished {
    Running::start(name, args).finish()
}

/// A `--once` server on ephemeral loopback ports, writing its address into `dir`; returns it
/// with its CURVE and plain addresses.
fn start_server(dir: &Path) -> (Running, String, String) {
    let addr_file = dir.join("server.addr");
    let mut server = Running::start(
        "server",
        &[
            "--once",
            "--seconds",
            "50",
            "--curve",
            "127.0.0.1:0",
            "--plain",
            "127.0.0.1:0",
            "--addr-file",
            addr_file.to_str().expect("a UTF-8 temp path"),
        ],
    );
    let curve = server.wait_for_line("listening (curve): ");
    let plain = server.wait_for_line("listening (plain): ");
    // Printed after the file is written, so the client can read it from now on.
    server.wait_for_line("address written to ");
    (server, curve, plain)
}

#[test]
fn server_and_client_talk_over_curve() {
    let dir = tempfile::tempdir().unwrap();
    let (server, curve, _plain) = start_server(dir.path());
    assert!(curve.starts_with("curve://127.0.0.1:"), "{curve}");
    let addr_file = dir.path().join("server.addr");
    assert_eq!(
        std::fs::read_to_string(&addr_file).unwrap().trim(),
        curve,
        "the address file holds the printed address"
    );

    // The client finds the server through the address file, as with the examples' defaults.
    let client = run(
        "client",
        &[
            "--addr-file",
            addr_file.to_str().unwrap(),
            "--timeout",
            "10",
        ],
    );
    client.assert_success("client");
    client.assert_prints(
        "client",
        &[
            &format!("connected to {curve}"),
            "the server granted us auth level basic",
            r#"public.echo -> ["hello", "world"]"#,
            r#"legacy.echo -> ["via an alias"]"#,
            r#"public.later -> ["later:", "patience"]"#,
            r#"basic.sum -> ["42"]"#,
            "admin.stats -> FORBIDDEN:",
            "sn.status -> FORBIDDEN_SN:",
            "local.status -> NOT_A_SERVICE_NODE:",
            "public.nope -> UNKNOWNCOMMAND:",
            "public.ignore -> TIMEOUT:",
            r#"client.greeting <- "hello, 127.0.0.1!""#,
            "all answers as expected",
        ],
    );

    // The client's bye ends the --once server.
    let server = server.finish();
    server.assert_success("server");
    server.assert_prints(
        "server",
        &[
            "accepted a CURVE connection from 127.0.0.1 as basic",
            "bye from non-SN authenticated remote ",
            "server stopped",
        ],
    );
    assert!(!addr_file.exists(), "the server removes its address file");
}

#[test]
fn client_over_plain_tcp_gets_less_access() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _curve, plain) = start_server(dir.path());
    assert!(plain.starts_with("tcp://127.0.0.1:"), "{plain}");

    let client = run("client", &[&plain, "--timeout", "10"]);
    client.assert_success("client");
    client.assert_prints(
        "client",
        &[
            "the server granted us auth level none",
            r#"public.echo -> ["hello", "world"]"#,
            "basic.sum -> FORBIDDEN:",
            "admin.stats -> FORBIDDEN:",
            "all answers as expected",
        ],
    );

    let server = server.finish();
    server.assert_success("server");
    server.assert_prints(
        "server",
        &[
            "accepted a plain connection from 127.0.0.1 as none",
            "bye from unauthenticated remote",
        ],
    );
}

#[test]
fn client_gives_up_on_a_peer_that_never_answers() {
    // A socket that accepts TCP connections (the kernel does, into the backlog) but never
    // speaks ZMTP: the client's connect must time out and the example must fail cleanly.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", silent.local_addr().unwrap());
    let client = run("client", &[&addr, "--timeout", "1"]);
    assert!(
        !client.status.success(),
        "the client succeeded against a silent peer:\n{}",
        client.out
    );
    assert!(
        client.err.contains("could not connect"),
        "stderr: {}",
        client.err
    );
    drop(silent);
}

#[test]
fn once_server_without_a_client_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("server.addr");
    let server = run(
        "server",
        &[
            "--once",
            "--seconds",
            "1",
            "--curve",
            "127.0.0.1:0",
            "--plain",
            "127.0.0.1:0",
            "--addr-file",
            addr_file.to_str().unwrap(),
        ],
    );
    assert!(!server.status.success(), "no client came: {}", server.out);
    server.assert_prints("server", &["time limit reached", "server stopped"]);
}

#[test]
fn batches_runs_its_demonstrations_and_exits() {
    let done = run("batches", &[]);
    done.assert_success("batches");
    done.assert_prints(
        "batches",
        &[
            "tagged thread db started",
            "batch 1: sum of squares 1..=8 = 204 (expected 204)",
            "batch 2: a second completion is refused",
            "batch 2: job 2 -> batch job panicked: job 2 gave up",
            "batch 2: completion ran on lmq-proxy",
            "an empty batch is refused",
            "tagged jobs ran on db in the order [0, 1, 2, 3, 4]",
            "injected task ran on lmq-w",
            "unknown category refused",
            "all batch demonstrations done",
        ],
    );

    let three = run("batches", &["3"]);
    three.assert_success("batches 3");
    three.assert_prints("batches 3", &["sum of squares 1..=3 = 14 (expected 14)"]);
}

#[test]
fn async_client_keeps_requests_in_flight_and_bounds_the_work_left_to_tasks() {
    let done = run("async_client", &[]);
    done.assert_success("async_client");
    done.assert_prints(
        "async_client",
        &["server listening on curve://", "connected"],
    );
    let line = done
        .out
        .lines()
        .find(|l| l.starts_with("200 concurrent requests"))
        .unwrap_or_else(|| panic!("no summary line: {}", done.out));
    // "... N answered, M told busy (at most 64 ...)": every request got one of the two, and
    // no more lookups ran at once than the semaphore allows.
    let number_before = |word: &str| -> u32 {
        let at = line.find(word).expect("the word");
        line[..at]
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .expect("a number")
    };
    let (ok, busy) = (number_before(" answered"), number_before(" told busy"));
    assert_eq!(ok + busy, 200, "{line}");
    assert!((1..=200).contains(&ok), "{line}");
}

#[test]
fn timers_runs_its_demonstrations_and_exits() {
    let done = run("timers", &[]);
    done.assert_success("timers");
    done.assert_prints(
        "timers",
        &[
            "cancel: ",
            "squelch on: ",
            "at most 1 running at once",
            "squelch off: ",
            "tagged: the timer fired on ticker and ticker",
            "in-proxy: stats refused on lmq-proxy",
            "in-proxy: cancelled itself after ",
            "all timer demonstrations done",
        ],
    );
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    for (name, args) in [
        ("server", &["--bogus"][..]),
        ("client", &["--bogus"][..]),
        ("batches", &["zero"][..]),
        ("timers", &["extra"][..]),
    ] {
        let done = run(name, args);
        assert_eq!(done.status.code(), Some(2), "{name} {args:?}: {}", done.err);
        assert!(done.err.contains("usage:"), "{name}: {}", done.err);
    }
}
