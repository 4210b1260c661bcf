//! The RTOS domain's binary: the kernel core (`lib.rs`) wired to the hardware in
//! `wiring/`. Runs as a domain under the microvisor.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod wiring;

#[cfg(not(target_os = "none"))]
fn main() {}
