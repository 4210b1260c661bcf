//! The only doorway to hardware. `aarch64/` holds every `asm!`, system-register access and
//! vector table; `host.rs` stands in for it so the logic modules build and test on a laptop.

#[cfg(target_os = "none")]
pub mod aarch64;
#[cfg(target_os = "none")]
pub use aarch64::*;

#[cfg(not(target_os = "none"))]
pub mod host;
#[cfg(not(target_os = "none"))]
pub use host::*;
