//! Bare-metal EL1 runtime every Rust domain links.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
