//! libFuzzer entry of the `xlcfg` target (see `bulkhead_fuzz::config::run_xlcfg`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::config::run_xlcfg(data));
