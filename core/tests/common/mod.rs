//! Helpers shared by the core's integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

use std::collections::VecDeque;

use lokimq_core::rng::{CryptoRng, RngCore};

/// The parser of the recorded OxenMQ conversations (`vectors/oxenmq-*.txt`), shared with the
/// `lokimq-tests` crate, which cannot see the core's test files.
#[allow(unreachable_pub)]
#[path = "../../../tests/src/capture.rs"]
pub(crate) mod capture;

pub(crate) use capture::unhex;

/// An RNG that hands out the scripted chunks in order and fails the test if the code under test
/// draws a different size or more than scripted.
pub(crate) struct Script(VecDeque<Vec<u8>>);

impl Script {
    pub(crate) fn new(chunks: &[&[u8]]) -> Self {
        Self(chunks.iter().map(|c| c.to_vec()).collect())
    }

    pub(crate) fn assert_consumed(&self) {
        assert!(self.0.is_empty(), "scripted draws left over: {:?}", self.0);
    }
}

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        panic!("unexpected next_u32")
    }
    fn next_u64(&mut self) -> u64 {
        panic!("unexpected next_u64")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let chunk = self
            .0
            .pop_front()
            .expect("RNG drawn more often than scripted");
        assert_eq!(chunk.len(), dest.len(), "draw of unexpected size");
        dest.copy_from_slice(&chunk);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Script {}

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
