//! Greeting decoder, frame decoder and NULL sessions, whole versus split
//! (`lokimq_fuzz_harness::fuzz_greeting_and_frames`). The input starts with a split plan
//! (`fuzzing::take_split`): one count byte, then one distance byte per cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lokimq_fuzz_harness as fuzzing;

fuzz_target!(|data: &[u8]| {
    let (cuts, rest) = fuzzing::take_split(data);
    fuzzing::fuzz_greeting_and_frames(rest, &cuts);
});
