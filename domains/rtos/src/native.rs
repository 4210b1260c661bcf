//! The RTOS domain's binary: the kernel core (`lib.rs`) wired to the hardware in
//! `wiring/`. This root is built with the `native`
//! feature: bare metal on QEMU virt, the baseline of `bulkhead bench rt`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[path = "wiring/mod.rs"]
mod wiring;

#[cfg(not(target_os = "none"))]
fn main() {}
