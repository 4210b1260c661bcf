//! netdom's shell: opens the virtio-net NIC dom0 delegated to it, then serves every vif
//! that dom0's toolstack wrote under its `backend/vif` in xenstore, switching frames
//! between them and the NIC. Every decision (ring indexes, TX validation, the switch, the
//! xenbus handshake) is the core's (`lib.rs`); this only performs what the core asks for on
//! the hardware and the hypercall ABI.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod shell;

#[cfg(not(target_os = "none"))]
fn main() {}
