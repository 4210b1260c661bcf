//! libFuzzer entry of the `control` target (see `bulkhead_fuzz::control`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::control::run(data));
