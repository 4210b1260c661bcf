//! Host CLI: build, image, run, test, bench.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
