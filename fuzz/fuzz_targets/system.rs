//! libFuzzer entry of the `system` target (see `bulkhead_fuzz::config::run_system`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::config::run_system(data));
