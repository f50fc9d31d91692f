//! Helpers shared by the core's integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

/// The parser of the recorded OxenMQ conversations (`vectors/oxenmq-*.txt`), shared with the
/// `lokimq-tests` crate, which cannot see the core's test files.
#[allow(unreachable_pub)]
#[path = "../../../tests/src/capture.rs"]
pub(crate) mod capture;

mod script;

#[allow(unused_imports)]
pub(crate) use capture::unhex;
#[allow(unused_imports)]
pub(crate) use script::Script;

/// Runs `body` once with every crypto provider this build has (`RustCrypto`, and `FastCrypto`
/// with the `fast-crypto` feature); the provider is printed first, so a failure names it.
pub(crate) fn each_provider(
    mut body: impl FnMut(&'static dyn lokimq_core::crypto::CryptoProvider),
) {
    for &p in lokimq_core::crypto::all_providers() {
        eprintln!("crypto provider: {p:?}");
        body(p);
    }
}

/// Reads the ZMTP frame header at the start of `bytes`: (flags, header length, body size).
pub(crate) fn frame_header(bytes: &[u8]) -> (u8, usize, usize) {
    let flags = bytes[0];
    if flags & 0x02 != 0 {
        let size = u64::from_be_bytes(bytes[1..9].try_into().unwrap());
        (flags, 9, usize::try_from(size).unwrap())
    } else {
        (flags, 2, usize::from(bytes[1]))
    }
}

/// Splits a complete ZMTP frame into (flags, body), checking that the size field matches and
/// that the long form is used exactly when the body exceeds 255 bytes (as libzmq sends).
pub(crate) fn frame_body(frame: &[u8]) -> (u8, &[u8]) {
    let (flags, at, size) = frame_header(frame);
    assert_eq!(frame.len() - at, size, "frame size field");
    assert_eq!(flags & 0x02 != 0, size > 255, "long form iff > 255");
    (flags, &frame[at..])
}
