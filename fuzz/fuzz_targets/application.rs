//! OxenMQ's application protocol on a node after a genuine NULL or CURVE handshake
//! (`lokimq_fuzz_harness::fuzz_application`): byte 0 picks the setup, the rest the peer's
//! messages (commands of every access rule, REPLY with real tags, error words, HI/HELLO/BYE).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lokimq_fuzz_harness::fuzz_application(data);
});
