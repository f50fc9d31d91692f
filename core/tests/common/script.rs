//! A scripted RNG for the CURVE tests, shared by the core's unit tests (included by path) and
//! its integration tests.

use std::collections::VecDeque;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};

/// An RNG that hands out the scripted chunks in order and fails the test if the code under test
/// draws a different size or more than scripted, so the draw order of the real code is checked
/// too.
pub(crate) struct Script(VecDeque<Vec<u8>>);

impl Script {
    pub(crate) fn new(chunks: &[&[u8]]) -> Self {
        Self(chunks.iter().map(|c| c.to_vec()).collect())
    }

    /// Fails the test unless every scripted chunk was drawn.
    pub(crate) fn assert_consumed(&self) {
        assert!(self.0.is_empty(), "scripted draws left over: {:?}", self.0);
    }
}

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        panic!("scripted RNG: next_u32 not expected")
    }
    fn next_u64(&mut self) -> u64 {
        panic!("scripted RNG: next_u64 not expected")
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
