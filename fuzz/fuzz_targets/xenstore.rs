//! libFuzzer entry of the `xenstore` target (see `bulkhead_fuzz::xenstore`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::xenstore::run(data));
