//! The `lokimq` binary: the demo (the project's main job) and keygen, run as a user would.

use std::process::Command;

fn lokimq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lokimq"))
}

#[test]
fn demo_succeeds_over_curve() {
    let out = lokimq().args(["demo", "--timeout", "20"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("talking CURVE-encrypted ZMTP"), "{stdout}");
    assert!(
        stdout.contains("listening on curve://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"demo.echo ["hello", "world"] -> ["hello", "world"]"#),
        "{stdout}"
    );
    assert!(stdout.contains("handler saw auth level basic"), "{stdout}");
    assert!(stdout.contains("demo OK"), "{stdout}");
}

#[test]
fn demo_succeeds_over_plain_tcp() {
    let out = lokimq().args(["demo", "--plain"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keygen_prints_a_matching_keypair() {
    let out = lokimq().arg("keygen").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    let public = field("public (hex):");
    let secret = field("secret (hex):");
    let decode = |h: &str| -> [u8; 32] { lokimq::core::encoding::hex::decode_array(h).unwrap() };
    let kp = lokimq::Keypair::from_secret_bytes(decode(&secret));
    assert_eq!(kp.public().to_hex(), public);
}

#[test]
fn bad_usage_exits_non_zero() {
    let out = lokimq()
        .args(["request", "not-an-address", "a.b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no protocol found"));
}
