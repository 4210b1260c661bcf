//! libFuzzer entry of the `netif` target (see `bulkhead_fuzz::netif`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead_fuzz::netif::run(data));
