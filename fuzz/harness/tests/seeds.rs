//! Every committed seed (`fuzz/seeds/<target>/`) through its target's entry point, plus random
//! inputs through every entry point, on the stable toolchain: what `scripts/fuzz-check` runs so
//! that CI exercises the fuzz targets' invariants without nightly or libFuzzer.

use std::path::PathBuf;

use lokimq_fuzz_harness as fuzzing;
use proptest::prelude::*;

/// The greeting/framing target's input layout: a split plan, then the stream.
fn greeting_framing(data: &[u8]) {
    let (cuts, rest) = fuzzing::take_split(data);
    fuzzing::fuzz_greeting_and_frames(rest, &cuts);
}

/// A target's name (as in `fuzz/Cargo.toml`) and the entry point its `fuzz_target!` calls.
type Target = (&'static str, fn(&[u8]));

/// Every target.
const TARGETS: &[Target] = &[
    ("greeting_framing", greeting_framing),
    (
        "curve_server_handshake",
        fuzzing::fuzz_curve_server_handshake,
    ),
    (
        "curve_client_handshake",
        fuzzing::fuzz_curve_client_handshake,
    ),
    ("node_listener", fuzzing::fuzz_node_listener),
    ("bt_decode", fuzzing::fuzz_bt),
    ("application", fuzzing::fuzz_application),
];

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("seed entry").path();
            let data = std::fs::read(&p).expect("seed file");
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn every_target_has_seeds_and_every_seed_dir_a_target() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let mut dirs: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/seeds")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(dirs, names);
    let manifest =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .expect("fuzz/Cargo.toml");
    for n in &names {
        assert!(
            manifest.contains(&format!("name = \"{n}\"")),
            "{n} is not a target of fuzz/Cargo.toml"
        );
    }
}

#[test]
fn fuzz_seeds_pass_every_target() {
    for (target, run) in TARGETS {
        for (p, data) in seeds(target) {
            eprintln!("{}", p.display());
            run(&data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn fuzz_entry_points_take_random_input(
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        for (_, run) in TARGETS {
            run(&data);
        }
    }
}
