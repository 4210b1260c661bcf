//! libFuzzer entry of the `rings` target (see `bulkhead_fuzz::rings`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::rings::run(data));
