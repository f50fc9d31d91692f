//! A CURVE server session fed attacker bytes (`lokimq_fuzz_harness::fuzz_curve_server_handshake`):
//! byte 0 selects raw / after HELLO / after the handshake / sealed MESSAGE records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lokimq_fuzz_harness::fuzz_curve_server_handshake(data);
});
