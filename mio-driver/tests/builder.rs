//! Construction rules: keys, service-node mode, registry validation, listener addresses.

mod common;

use common::*;
use lokimq::{AuthLevel, Error, Keypair, Listen, LokiMq};

#[test]
fn key_rules_follow_oxenmq() {
    let kp = Keypair::from_secret_bytes([7; 32]);
    let mut b = LokiMq::builder();
    let e = b.keys(kp.public().as_bytes(), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "OxenMQ construction failed: one (and only one) of pubkey/privkey is empty. Both must be specified, or both empty to generate a key."
    );
    let e = b.keys(&[1; 31], &[2; 32]).unwrap_err();
    assert!(
        e.to_string()
            .contains("pubkey has invalid size 31, expected 32"),
        "{e}"
    );
    // A mismatched pair (e.g. an ed25519 key) is refused.
    let other = Keypair::from_secret_bytes([8; 32]);
    let e = b
        .keys(other.public().as_bytes(), &kp.secret().to_bytes())
        .unwrap_err();
    assert!(e.to_string().contains("pubkey verification failed"), "{e}");
    // A matching pair is used as given.
    b.keys(kp.public().as_bytes(), &kp.secret().to_bytes())
        .unwrap();
    let node = b.start().unwrap();
    assert_eq!(node.pubkey(), kp.public());
}

#[test]
fn service_node_needs_a_keypair() {
    let mut b = builder();
    b.service_node(true);
    let e = b.start().unwrap_err();
    assert!(matches!(e, Error::Key(_)), "{e}");
    assert!(e.to_string().contains("service node mode"), "{e}");
}

#[test]
fn generated_keys_differ() {
    let a = builder().start().unwrap();
    let b = builder().start().unwrap();
    assert_ne!(a.pubkey(), b.pubkey());
}

#[test]
fn registry_errors_carry_oxenmq_texts() {
    let mut b = builder();
    b.add_category("x", AuthLevel::None).unwrap();
    assert_eq!(
        b.add_category("x", AuthLevel::None)
            .unwrap_err()
            .to_string(),
        "Unable to add category `x': that category already exists"
    );
    assert_eq!(
        b.add_command("nope", "y", |_| {}).unwrap_err().to_string(),
        "Cannot add a command to unknown category `nope'"
    );
    assert_eq!(
        b.add_category("a.b", AuthLevel::None)
            .unwrap_err()
            .to_string(),
        "Invalid category name `a.b'"
    );
}

#[test]
fn bad_addresses_are_refused() {
    assert!(matches!(
        Listen::plain("inproc://x"),
        Err(Error::Address(_))
    ));
    assert!(matches!(Listen::curve("tcp://"), Err(Error::Address(_))));
    let node = builder().start().unwrap();
    let e = node
        .handle()
        .connect_remote("nonsense", |_| {}, |_, _| {}, Default::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "Invalid address: no protocol found");
}
