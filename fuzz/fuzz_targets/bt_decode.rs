//! bt (bencode) decoding: `decode`, `validate`, the consumers and serde's `from_bt` against each
//! other and the encoder (`lokimq_fuzz_harness::fuzz_bt`). The whole input is the bt text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lokimq_fuzz_harness::fuzz_bt(data);
});
