//! libFuzzer entry of the `blkif` target (see `bulkhead_fuzz::blkif`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::blkif::run(data));
