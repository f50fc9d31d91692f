//! Smoke test of `bench-net`: for each peer (lokimq, and libzmq vendored), a server process and
//! a short client run of every workload at 100 B, over CURVE, plus one plain (NULL) run. It
//! checks that messages actually flowed (a positive count in the measured window), that every
//! echo came back intact (the clients compare each one with what they sent and count the
//! rest as errors), and that the server reports its message count and CPU time on exit. A
//! harness that silently did nothing, or a broken protocol on either side, fails here rather
//! than in the next benchmark session.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bench-net");

/// A server process; killed on drop if the test fails before stopping it.
struct Server {
    child: Child,
    out: BufReader<ChildStdout>,
    /// The words after `READY`.
    ready: Vec<String>,
}

impl Server {
    fn start(kind: &str, plain: bool) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg(format!("{kind}-server"))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if plain {
            cmd.arg("--plain");
        }
        let mut child = cmd.spawn().expect("spawn the server");
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        // A server that fails to start exits, so this read ends (with EOF) either way.
        out.read_line(&mut line).expect("read READY");
        let mut words = line.split_whitespace().map(str::to_owned);
        assert_eq!(
            words.next().as_deref(),
            Some("READY"),
            "server said {line:?}"
        );
        let ready: Vec<String> = words.collect();
        assert!(!ready.is_empty(), "READY without an address: {line:?}");
        Self { child, out, ready }
    }

    /// The client arguments that reach this server.
    fn connect_args(&self) -> Vec<String> {
        let mut a = vec![String::from("--connect"), self.ready[0].clone()];
        if let Some(key) = self.ready.get(1) {
            a.extend([String::from("--server-key"), key.clone()]);
        }
        a
    }

    /// Closes stdin (the stop request) and returns what the server printed: its message count
    /// and CPU seconds.
    fn stop(mut self) -> (u64, f64) {
        drop(self.child.stdin.take());
        let (mut messages, mut cpu) = (None, None);
        for line in (&mut self.out).lines() {
            let line = line.expect("read the server's output");
            if let Some(n) = line.strip_prefix("MESSAGES ") {
                messages = n.trim().parse().ok();
            } else if let Some(s) = line.strip_prefix("CPU ") {
                cpu = s.trim().parse().ok();
            }
        }
        let status = self.child.wait().expect("wait for the server");
        assert!(status.success(), "server exited with {status}");
        (messages.expect("MESSAGES line"), cpu.expect("CPU line"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already reaped after `stop`; otherwise the test failed and the server must go.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A number field of the client's flat JSON line.
fn field(json: &str, key: &str) -> Option<f64> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}'])?;
    rest[..end].parse().ok()
}

/// Runs one client for 0.2 s (after a 0.05 s warm-up) and checks its report.
fn run_client(kind: &str, server: &Server, workload: &str, plain: bool) {
    let mut cmd = Command::new(BIN);
    cmd.arg(format!("{kind}-client"))
        .args(server.connect_args())
        .args(["--workload", workload, "--size", "100"])
        .args(["--seconds", "0.3", "--warmup", "0.1"]);
    if plain {
        cmd.arg("--plain");
    }
    let out = cmd.output().expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let what = format!(
        "{kind} {workload} plain={plain}: status {}, stdout {stdout:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}");
    let json = stdout.lines().last().unwrap_or_default();
    let get = |k: &str| field(json, k).unwrap_or_else(|| panic!("no {k} in {what}"));
    // `count` is what the measured window saw, which on a loaded machine can be nothing for
    // the slow tweetnacl CURVE; `total` includes the warm-up, so it proves traffic flowed.
    assert!(get("total") > 0.0, "nothing flowed: {what}");
    assert!(get("total") >= get("count"), "{what}");
    // Every echo is compared with what was sent; a mismatch, a failed request or a garbled
    // ack counts as an error.
    assert_eq!(get("errors"), 0.0, "{what}");
    if workload == "latency" {
        let (p50, p99) = (get("p50_us"), get("p99_us"));
        assert!(p50 > 0.0 && p99 >= p50, "{what}");
    }
    assert!(
        json.contains(&format!("\"workload\":\"{workload}\"")),
        "{what}"
    );
    let security = if plain { "plain" } else { "curve" };
    assert!(
        json.contains(&format!("\"security\":\"{security}\"")),
        "{what}"
    );
}

fn smoke(kind: &str) {
    let server = Server::start(kind, false);
    for workload in ["oneway", "pipelined", "latency"] {
        run_client(kind, &server, workload, false);
    }
    let (messages, cpu) = server.stop();
    assert!(
        messages > 0 && cpu > 0.0,
        "{kind} server: {messages} messages, {cpu} s"
    );

    let server = Server::start(kind, true);
    run_client(kind, &server, "pipelined", true);
    let (messages, _) = server.stop();
    assert!(messages > 0, "{kind} plain server handled nothing");
}

#[test]
fn lokimq_peers_exchange_messages() {
    smoke("lokimq");
}

#[test]
fn zmq_peers_exchange_messages() {
    smoke("zmq");
}

#[test]
fn json_field_extraction() {
    let j = r#"{"count":12,"rate":3.5,"p50_us":null,"errors":0}"#;
    assert_eq!(field(j, "count"), Some(12.0));
    assert_eq!(field(j, "rate"), Some(3.5));
    assert_eq!(field(j, "errors"), Some(0.0));
    assert_eq!(field(j, "p50_us"), None);
    assert_eq!(field(j, "missing"), None);
}

/// A server started with a bad option exits non-zero without printing READY.
#[test]
fn bad_options_are_refused() {
    let out = Command::new(BIN)
        .args(["zmq-server", "--lisen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run bench-net");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    // A plain address without --plain is a mistake the client must catch at once.
    let out = Command::new(BIN)
        .args([
            "lokimq-client",
            "--connect",
            "tcp://127.0.0.1:1",
            "--workload",
            "oneway",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run bench-net");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plain"));
}
