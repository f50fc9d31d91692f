//! The `lokimq` binary, run as a user would: demo, keygen, serve + call end to end, output
//! formats, exit codes and signals. Every child process is killed if a test fails, and every
//! wait is bounded.

#[path = "../../mio-driver/tests/common/mod.rs"]
mod common;

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::server_builder;
use lokimq::core::address::Encoding;
use lokimq::core::encoding::{base32z, hex};
use lokimq::{AuthLevel, Bytes, ConnectOptions, Keypair, Stopwatch};

/// The longest any one `lokimq` run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(40);
/// How long a server may take to print its addresses, or a libzmq peer to see a message.
const WAIT: Duration = Duration::from_secs(15);

fn lokimq() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lokimq"));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The tests read stderr messages; a RUST_LOG in the environment must not add to them.
        .env_remove("RUST_LOG");
    c
}

/// Kills the child on drop (a failed assertion must not leave a server running).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Collects a pipe in a thread, so the child never blocks on a full pipe.
fn collect(pipe: Option<impl std::io::Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    }
    rx
}

/// Waits (bounded by `limit`) for the child to exit.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let t = Stopwatch::start();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(t.elapsed() < limit, "{what} still running after {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// What a finished run printed.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts the exit code, showing everything printed if it differs.
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "{self:#?}");
        self
    }

    /// The value after `label` on the stdout line that starts with it.
    fn field(&self, label: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` in {self:#?}"))
            .trim()
            .to_owned()
    }
}

/// Runs `lokimq ARGS` to completion (bounded).
fn run(args: &[&str]) -> Run {
    let mut child = Guard(lokimq().args(args).spawn().expect("spawn lokimq"));
    let out = collect(child.0.stdout.take());
    let err = collect(child.0.stderr.take());
    let status = wait_exit(&mut child.0, RUN_LIMIT, &format!("lokimq {args:?}"));
    let get = |rx: &Receiver<String>| rx.recv_timeout(WAIT).unwrap_or_default();
    Run {
        status,
        stdout: get(&out),
        stderr: get(&err),
    }
}

/// A running `lokimq serve`, killed on drop.
struct Server {
    child: Guard,
    /// The addresses it printed, in `--listen` order.
    addrs: Vec<String>,
    stderr: Receiver<String>,
}

impl Server {
    /// Starts `lokimq serve ARGS` and waits (bounded) for one `listening on` line per
    /// `--listen` address.
    fn start(args: &[&str], listeners: usize) -> Self {
        let mut child = Guard(
            lokimq()
                .arg("serve")
                .args(args)
                .spawn()
                .expect("spawn lokimq serve"),
        );
        let stdout = child.0.stdout.take().expect("stdout");
        let stderr = collect(child.0.stderr.take());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addrs = Vec::new();
        while addrs.len() < listeners {
            let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
                let _ = child.0.kill();
                let err = stderr.recv_timeout(WAIT).unwrap_or_default();
                panic!("serve printed {addrs:?} only; stderr: {err}")
            });
            let addr = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected serve output {line:?}"));
            addrs.push(addr.to_owned());
        }
        Self {
            child,
            addrs,
            stderr,
        }
    }

    fn pid(&self) -> String {
        self.child.0.id().to_string()
    }

    /// Sends `signal` with kill(1) and waits (bounded by `limit`) for the exit.
    fn signal(mut self, signal: &str, limit: Duration) -> (ExitStatus, String) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.pid()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
        let status = wait_exit(&mut self.child.0, limit, "lokimq serve after a signal");
        let err = self.stderr.recv_timeout(WAIT).unwrap_or_default();
        (status, err)
    }
}

fn read_key(path: &Path) -> Keypair {
    let text = std::fs::read_to_string(path).expect("key file");
    Keypair::from_secret_bytes(hex::decode_array(text.trim()).expect("64 hex digits"))
}

/// A loopback port that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr").port()
}

// ----- demo -----

#[test]
fn demo_succeeds_over_curve() {
    let r = run(&["demo"]);
    r.expect_code(0);
    let out = &r.stdout;
    for want in [
        "talking CURVE-encrypted ZMTP",
        "listening on curve://127.0.0.1:",
        r#"demo.echo ["hello", "world"] -> ["hello", "world"]"#,
        "handler saw auth level basic",
        "admin.secret (needs admin, B has basic) -> error FORBIDDEN",
        "demo.nope (no such command) -> error UNKNOWNCOMMAND",
        "completion got [0, 4999950000, 9999900000, 14999850000, 19999800000]",
        "cancelled,",
        "2000 pipelined demo.echo requests over CURVE in",
        "requests/s",
        "demo OK",
    ] {
        assert!(out.contains(want), "no `{want}` in {out}");
    }
}

#[test]
fn demo_succeeds_over_plain_tcp() {
    let r = run(&["demo", "--plain", "--requests", "300"]);
    r.expect_code(0);
    assert!(r.stdout.contains("talking plain ZMTP"), "{r:#?}");
    assert!(
        r.stdout
            .contains("300 pipelined demo.echo requests over plain TCP"),
        "{r:#?}"
    );
}

// ----- keygen -----

#[test]
fn keygen_prints_a_matching_keypair() {
    let r = run(&["keygen"]);
    r.expect_code(0);
    let kp = Keypair::from_secret_bytes(hex::decode_array(r.field("secret hex:")).unwrap());
    assert_eq!(r.field("pubkey hex:"), kp.public().to_hex());
    assert_eq!(
        r.field("pubkey base32z:"),
        base32z::encode(kp.public().as_bytes())
    );
}

#[test]
fn keygen_out_writes_a_private_key_file_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.key");
    let p = path.to_str().unwrap();
    let r = run(&["keygen", "--out", p]);
    r.expect_code(0);
    assert!(!r.stdout.contains("secret"), "secret printed: {r:#?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65, "{text:?}");
    assert!(text.ends_with('\n'));
    assert!(
        text[..64]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let kp = read_key(&path);
    assert_eq!(r.field("pubkey hex:"), kp.public().to_hex());
    assert_eq!(
        r.field("pubkey base32z:"),
        base32z::encode(kp.public().as_bytes())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = run(&["keygen", "--out", p]);
    again.expect_code(1);
    assert!(again.stderr.contains("already exists"), "{again:#?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "overwritten");

    let forced = run(&["keygen", "--out", p, "--force"]);
    forced.expect_code(0);
    assert_ne!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(
        forced.field("pubkey hex:"),
        read_key(&path).public().to_hex()
    );
}

// ----- serve + call -----

#[test]
fn serve_and_call_over_curve_tcp_and_ipc() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("server.key");
    let client_key = dir.path().join("client.key");
    let client = run(&["keygen", "--out", client_key.to_str().unwrap()]);
    client.expect_code(0);
    let plain_sock = format!("ipc://{}", dir.path().join("plain.sock").display());
    let curve_sock = format!("ipc+curve://{}", dir.path().join("curve.sock").display());
    // The client gets admin (named in hex); another key gets basic (named in z-base-32).
    let allow_client = format!("{}=admin", client.field("pubkey hex:"));
    let other = Keypair::from_secret_bytes([11; 32]);
    let allow_other = format!("{}=basic", base32z::encode(other.public().as_bytes()));
    let server = Server::start(
        &[
            "-v",
            "--listen",
            "curve://127.0.0.1:0",
            "tcp://127.0.0.1:0",
            &plain_sock,
            &curve_sock,
            "--key-file",
            key.to_str().unwrap(),
            "--allow",
            &allow_client,
            "--allow",
            &allow_other,
        ],
        4,
    );
    // The key file was created, and the CURVE listeners carry its key in z-base-32.
    let ours = base32z::encode(read_key(&key).public().as_bytes());
    let a = &server.addrs;
    assert!(a[0].starts_with("curve://127.0.0.1:"), "{a:?}");
    assert!(a[0].ends_with(&format!("/{ours}")), "{a:?}");
    assert!(a[1].starts_with("tcp://127.0.0.1:"), "{a:?}");
    assert!(!a[1].ends_with(":0"), "the real port: {a:?}");
    assert_eq!(a[2], plain_sock);
    assert_eq!(a[3], format!("{curve_sock}/{ours}"));

    for addr in a {
        let r = run(&["call", addr, "echo.echo", "hello", "two words", ""]);
        r.expect_code(0);
        assert_eq!(r.stdout, "hello\ntwo words\n\n", "{addr}");
        let r = run(&["call", addr, "echo.ping"]);
        r.expect_code(0);
        assert_eq!(r.stdout, "pong\n", "{addr}");
    }
    // With a client key file, as the --allow rules name.
    let r = run(&[
        "call",
        &a[0],
        "echo.echo",
        "keyed",
        "--key-file",
        client_key.to_str().unwrap(),
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout, "keyed\n");

    // The allow function gave that key admin, and everyone else none (server log, -v).
    let (status, log) = server.signal("TERM", WAIT);
    assert_eq!(status.code(), Some(0), "{log}");
    let client_hex = client.field("pubkey hex:");
    assert!(log.contains(&format!("key {client_hex}: admin")), "{log}");
    assert!(log.contains("key (plain): none"), "{log}");
    let anonymous = log
        .lines()
        .filter(|l| l.contains("connection from") && l.ends_with(": none"))
        .count();
    assert!(anonymous >= 6, "every unkeyed call got none: {log}");
}

#[test]
fn call_prints_hex_bt_json_and_escaped_text() {
    let server = Server::start(&["--listen", "tcp://127.0.0.1:0"], 1);
    let addr = &server.addrs[0];
    let r = run(&["call", addr, "echo.echo", "--hex", "ab", "", "\u{e9}"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "6162\n\nc3a9\n");

    let r = run(&[
        "call",
        addr,
        "echo.echo",
        "--bt",
        "d3:fooi42ee",
        "l4:spami-7ee",
        "5:h\u{e9}!!",
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout, "{\"foo\":42}\n[\"spam\",-7]\n\"h\u{e9}!!\"\n");

    let r = run(&["call", addr, "echo.echo", "--bt", "not bt"]);
    r.expect_code(1);
    assert!(r.stderr.contains("reply part 1 is not bt"), "{r:#?}");

    let r = run(&["call", addr, "echo.echo", "a\nb\\c\t", "--", "-v", "--hex"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "a\\nb\\\\c\\t\n-v\n--hex\n");
}

#[test]
fn call_unknown_command_exits_5() {
    let server = Server::start(&["--listen", "curve://127.0.0.1:0"], 1);
    let r = run(&["call", &server.addrs[0], "nope.nope"]);
    r.expect_code(5);
    assert!(r.stderr.contains("UNKNOWNCOMMAND"), "{r:#?}");
    assert_eq!(r.stderr.lines().count(), 1, "one line: {r:#?}");
}

#[test]
fn call_forbidden_exits_4() {
    // serve has nothing above level none, so an admin command comes from a library server.
    let mut b = server_builder();
    b.listen_plain(common::loopback(), |_, _, _| AuthLevel::None)
        .unwrap();
    let node = b.start().unwrap();
    let addr = node.bound_addresses()[0].full_address(Encoding::Hex);
    let r = run(&["call", &addr, "admin.echo", "x"]);
    r.expect_code(4);
    assert!(r.stderr.contains("(FORBIDDEN)"), "{r:#?}");
    // The same server answers what a none-level caller may call.
    run(&["call", &addr, "public.echo", "x"]).expect_code(0);
}

/// A libzmq ROUTER that answers `HI` with `HELLO` and never answers anything else; every
/// other message it receives is reported. Stops when the returned flag is set (or after 30 s).
fn silent_router() -> (String, Receiver<Vec<Vec<u8>>>, Arc<AtomicBool>) {
    let (ep_tx, ep_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    thread::spawn(move || {
        let ctx = zmq::Context::new();
        let r = ctx.socket(zmq::ROUTER).unwrap();
        r.set_rcvtimeo(100).unwrap();
        r.set_linger(0).unwrap();
        r.bind("tcp://127.0.0.1:*").unwrap();
        let _ = ep_tx.send(r.get_last_endpoint().unwrap().unwrap());
        let t = Stopwatch::start();
        while !stop2.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(30) {
            let Ok(frames) = r.recv_multipart(0) else {
                continue;
            };
            if frames.get(1).map(Vec::as_slice) == Some(b"HI") {
                r.send_multipart([frames[0].as_slice(), b"HELLO"], 0)
                    .unwrap();
            } else {
                let _ = tx.send(frames[1..].to_vec());
            }
        }
    });
    let ep = ep_rx.recv_timeout(WAIT).expect("router endpoint");
    (ep, rx, stop)
}

#[test]
fn call_timeout_exits_3() {
    let (ep, seen, stop) = silent_router();
    let r = run(&["call", "--timeout", "0.5", &ep, "slow.thing", "x"]);
    stop.store(true, Ordering::SeqCst);
    r.expect_code(3);
    assert!(
        r.stderr.contains("timed out after 0.5s (TIMEOUT)"),
        "{r:#?}"
    );
    // The request did reach the router: the timeout is the reply's, not the connection's.
    let got = seen.recv_timeout(WAIT).expect("the request");
    assert_eq!(got[0], b"slow.thing");
    assert_eq!(got.last().unwrap(), b"x");
}

#[test]
fn call_send_delivers_the_command_and_exits_0() {
    let (ep, seen, stop) = silent_router();
    let r = run(&["call", "--send", &ep, "some.command", "a", "b"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "");
    let got = seen.recv_timeout(WAIT).expect("the command");
    stop.store(true, Ordering::SeqCst);
    assert_eq!(
        got,
        [b"some.command".to_vec(), b"a".to_vec(), b"b".to_vec()]
    );
}

#[test]
fn serve_sends_back_echo_pong_for_a_plain_echo_ping() {
    let server = Server::start(&["--listen", "curve://127.0.0.1:0"], 1);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let mut b = common::builder();
    b.add_category("echo", AuthLevel::None)
        .unwrap()
        .add_command("echo", "pong", move |m| {
            let _ = tx.lock().unwrap().send(m.data().to_vec());
        })
        .unwrap();
    let client = b.start().unwrap();
    let (ok, fail, connected) = common::connect_channel();
    let conn = client
        .handle()
        .connect_remote(&server.addrs[0], ok, fail, ConnectOptions::default())
        .unwrap();
    common::wait(&connected, "connect to serve").unwrap();
    client
        .handle()
        .send(&conn, "echo.ping", lokimq::NO_DATA)
        .unwrap();
    let got: Vec<Bytes> = common::wait(&rx, "echo.pong");
    assert!(got.is_empty(), "{got:?}");
    drop(client);
}

#[test]
fn call_connection_failures_exit_6() {
    let closed = format!("tcp://127.0.0.1:{}", closed_port());
    let r = run(&["call", "--timeout", "0.5", &closed, "echo.echo"]);
    r.expect_code(6);
    assert!(r.stderr.contains("could not connect to"), "{r:#?}");

    // A CURVE server with a key that is not the one the address names.
    let server = Server::start(&["--listen", "curve://127.0.0.1:0"], 1);
    let (hostport, _key) = server.addrs[0].rsplit_once('/').unwrap();
    let wrong = Keypair::from_secret_bytes([9; 32]);
    let addr = format!("{hostport}/{}", wrong.public().to_hex());
    let r = run(&["call", "--timeout", "0.5", &addr, "echo.echo"]);
    r.expect_code(6);
    assert!(r.stderr.contains("could not connect to"), "{r:#?}");
}

#[test]
fn bad_addresses_and_key_files_exit_7() {
    let r = run(&["call", "not-an-address", "a.b"]);
    r.expect_code(7);
    assert!(r.stderr.contains("no protocol found"), "{r:#?}");
    run(&["call", "curve://127.0.0.1:5000", "a.b"]).expect_code(7);

    run(&["serve", "--listen", "udp://127.0.0.1:0"]).expect_code(7);
    let foreign = format!(
        "curve://127.0.0.1:0/{}",
        Keypair::from_secret_bytes([9; 32]).public().to_hex()
    );
    let r = run(&["serve", "--listen", &foreign]);
    r.expect_code(7);
    assert!(r.stderr.contains("not this node's key"), "{r:#?}");

    let dir = tempfile::tempdir().unwrap();
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "not a key\n").unwrap();
    let bad_key = bad_key.to_str().unwrap();
    let r = run(&[
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--key-file",
        bad_key,
    ]);
    r.expect_code(7);
    assert!(r.stderr.contains("64 hex digits"), "{r:#?}");
    let closed = format!("tcp://127.0.0.1:{}", closed_port());
    run(&["call", &closed, "a.b", "--key-file", bad_key]).expect_code(7);
}

#[test]
fn serve_that_cannot_bind_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", taken.local_addr().unwrap());
    let r = run(&["serve", "--listen", &addr]);
    r.expect_code(1);
    assert!(r.stderr.contains("cannot start the server"), "{r:#?}");
    assert!(r.stdout.is_empty(), "nothing announced: {r:#?}");
}

#[test]
fn usage_errors_exit_2() {
    let key = Keypair::from_secret_bytes([5; 32]).public().to_hex();
    for args in [
        vec![
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--allow",
            &*format!("{key}=root"),
        ],
        vec![
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--allow",
            "abc=admin",
        ],
        vec!["serve", "--listen", "tcp://127.0.0.1:0", "--allow", &key],
        vec!["serve"],
        vec!["call", "tcp://127.0.0.1:1"],
        vec!["call", "--timeout", "0", "tcp://127.0.0.1:1", "a.b"],
        vec!["call", "--hex", "--bt", "tcp://127.0.0.1:1", "a.b"],
        vec!["keygen", "--force"],
        vec!["frobnicate"],
    ] {
        let r = run(&args);
        assert_eq!(r.code(), Some(2), "{args:?}: {r:#?}");
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn help_is_everywhere_and_lists_exit_codes() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["keygen", "--help"],
        vec!["serve", "--help"],
        vec!["call", "--help"],
        vec!["help", "call"],
    ] {
        let r = run(&args);
        r.expect_code(0);
        assert!(r.stdout.contains("Exit codes:"), "{args:?}: {r:#?}");
        assert!(r.stdout.contains("UNKNOWNCOMMAND"), "{args:?}");
    }
    let r = run(&["serve", "--help"]);
    assert!(r.stdout.contains("z-base-32"), "{r:#?}");
}

#[test]
fn serve_exits_0_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let server = Server::start(&["--listen", "tcp://127.0.0.1:0"], 1);
        // Serving: a call works before the signal.
        run(&["call", &server.addrs[0], "echo.ping"]).expect_code(0);
        let (status, stderr) = server.signal(signal, Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "SIG{signal}: {stderr}");
        assert!(stderr.contains("shutting down"), "{stderr}");
    }
}
