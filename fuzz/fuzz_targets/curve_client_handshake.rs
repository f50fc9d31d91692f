//! A CURVE client session fed attacker bytes as its server
//! (`lokimq_fuzz_harness::fuzz_curve_client_handshake`): byte 0 selects raw / after WELCOME /
//! after the handshake / sealed MESSAGE records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lokimq_fuzz_harness::fuzz_curve_client_handshake(data);
});
