//! Runs the `conformance_server` example as a child process: locating the binary, picking free
//! ports, reading its `pubkey` line, collecting its stderr, and killing it when a test ends.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lokimq::{Keypair, Stopwatch};

/// Every wait on the child is bounded by this (a debug build under load starts slowly).
pub(crate) const CHILD_WAIT: Duration = Duration::from_secs(20);

/// The example binary, next to this test executable's directory: `target/<profile>/deps/..`
/// `/examples/conformance_server`. Cargo builds it for `cargo test -p lokimq` (all targets).
pub(crate) fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("examples").join(format!(
        "conformance_server{}",
        std::env::consts::EXE_SUFFIX
    ));
    let hint = "build it with `cargo build -p lokimq --example conformance_server` (plain \
                `cargo test -p lokimq` builds it; `cargo test --test conformance` alone does not)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{} is missing ({e}): {hint}", bin.display()));
    // Catches the likeliest stale binary: the example edited, then only this test rebuilt.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/conformance_server.rs");
    if let Ok(edited) = std::fs::metadata(&source).and_then(|m| m.modified()) {
        assert!(
            built >= edited,
            "{} is older than its source: {hint}",
            bin.display()
        );
    }
    bin
}

/// Two distinct loopback ports that were free a moment ago (bound to port 0 and released).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let ports = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    // Both held at once, so they differ.
    drop((a, b));
    ports
}

/// Whatever a child printed on stderr, collected by a thread so the child never blocks on a
/// full pipe.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn collect(&self, mut from: impl Read + Send + 'static) -> JoinHandle<()> {
        let into = Arc::clone(&self.0);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                into.lock().unwrap().push_str(&text);
            }
        })
    }

    /// Everything captured so far.
    pub(crate) fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// A running child (killed and reaped on drop, so a failing test leaves nothing behind).
pub(crate) struct Proc {
    child: Child,
    lines: Receiver<String>,
    stderr: Captured,
    stderr_reader: Option<JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Starts the example with `args`, stdout and stderr piped.
    pub(crate) fn spawn(args: &[String]) -> Self {
        let mut child = Command::new(binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn conformance_server");
        let stderr = Captured::default();
        let stderr_reader = Some(stderr.collect(child.stderr.take().unwrap()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr,
            stderr_reader,
            exited: None,
        }
    }

    /// The next stdout line, or `None` if stdout closed or nothing came within `CHILD_WAIT`.
    pub(crate) fn next_line(&self) -> Option<String> {
        self.lines.recv_timeout(CHILD_WAIT).ok()
    }

    /// Waits (bounded by `limit`) for the child to exit.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Stopwatch::start();
        loop {
            if let Some(s) = self.exited {
                return Some(s);
            }
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(s);
                return Some(s);
            }
            if start.elapsed() >= limit {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal with `kill -SIG pid`.
    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// What the child wrote on stderr so far; all of it once the child has exited.
    pub(crate) fn stderr(&mut self) -> String {
        if self.exited.is_some() {
            // The pipe reaches EOF when the child is gone: wait for the reader to get there.
            if let Some(reader) = self.stderr_reader.take() {
                let _ = reader.join();
            }
        }
        self.stderr.text()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Extra command-line options for a server.
#[derive(Default, Clone)]
pub(crate) struct Options {
    /// `--allow KEY=LEVEL` pairs.
    pub(crate) allow: Vec<(Keypair, &'static str)>,
    /// `--active-sn KEY` keys.
    pub(crate) active_sn: Vec<Keypair>,
    /// `--service-node`.
    pub(crate) service_node: bool,
    /// The key file to use (default: a missing file in a fresh temporary directory).
    pub(crate) key_file: Option<PathBuf>,
}

/// A started conformance server.
pub(crate) struct Server {
    /// The child process.
    pub(crate) proc: Proc,
    /// Its public key, as printed.
    pub(crate) pubkey: [u8; 32],
    /// The CURVE listener's port.
    pub(crate) curve_port: u16,
    /// The plain listener's port.
    pub(crate) plain_port: u16,
    /// The key file it was given.
    pub(crate) key_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `opts` on two free ports; retries with new ports if one was taken
    /// in the meantime.
    pub(crate) fn start(opts: &Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = opts
            .key_file
            .clone()
            .unwrap_or_else(|| dir.path().join("server.key"));
        let mut failures = Vec::new();
        for _ in 0..5 {
            let (curve_port, plain_port) = free_ports();
            let mut args = vec![
                "--curve".to_owned(),
                format!("tcp://127.0.0.1:{curve_port}"),
                "--plain".to_owned(),
                format!("tcp://127.0.0.1:{plain_port}"),
                "--key-file".to_owned(),
                key_file.display().to_string(),
            ];
            for (k, level) in &opts.allow {
                args.push("--allow".to_owned());
                args.push(format!("{}={level}", k.public().to_hex()));
            }
            for k in &opts.active_sn {
                args.push("--active-sn".to_owned());
                args.push(k.public().to_hex());
            }
            if opts.service_node {
                args.push("--service-node".to_owned());
            }
            let mut proc = Proc::spawn(&args);
            match proc.next_line() {
                Some(line) => {
                    let hex = line
                        .strip_prefix("pubkey ")
                        .unwrap_or_else(|| panic!("first stdout line {line:?} is not `pubkey …`"));
                    assert_eq!(hex.len(), 64, "pubkey line {line:?}");
                    assert_eq!(hex, hex.to_lowercase(), "pubkey is lower-case hex");
                    let pubkey = lokimq::core::encoding::hex::decode_array(hex)
                        .unwrap_or_else(|e| panic!("pubkey line {line:?}: {e}"));
                    return Self {
                        proc,
                        pubkey,
                        curve_port,
                        plain_port,
                        key_file,
                        _dir: dir,
                    };
                }
                None => {
                    let status = proc.wait_exit(CHILD_WAIT);
                    let err = proc.stderr();
                    // A port taken between our probe and its bind: try other ports.
                    if status.is_some_and(|s| !s.success()) && err.contains("failed to listen") {
                        failures.push(err);
                        continue;
                    }
                    panic!("conformance_server did not start (exit {status:?}); stderr:\n{err}");
                }
            }
        }
        panic!("conformance_server could not bind after 5 attempts: {failures:?}");
    }

    /// The CURVE listener's libzmq endpoint.
    pub(crate) fn curve_endpoint(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.curve_port)
    }

    /// The plain listener's libzmq endpoint.
    pub(crate) fn plain_endpoint(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.plain_port)
    }
}
