//! A Node with a plain and a CURVE listener, one accepted connection fed attacker bytes
//! (`lokimq_fuzz_harness::fuzz_node_listener`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lokimq_fuzz_harness::fuzz_node_listener(data);
});
