//! libFuzzer entry of the `mgmt` target (see `bulkhead_fuzz::mgmt`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::mgmt::run(data));
