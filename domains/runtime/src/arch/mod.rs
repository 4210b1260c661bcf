//! The only place in the runtime with `asm!`, system registers, MMIO and `unsafe`.
//!
//! Everything here exists only when building for the bare-metal target; on the host the
//! runtime compiles to its pure, tested parts (console buffering, reply decoding, GIC and
//! MMU encodings, command-line parsing) and the hardware-facing modules are left out.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use aarch64::*;
