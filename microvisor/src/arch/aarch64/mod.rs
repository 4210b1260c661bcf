//! AArch64 EL2: boot, vectors, guest entry/exit, system registers, GICv3 / GICv2, timers,
//! UART.

pub mod boot;
pub mod bringup;
pub mod coherence;
pub mod context;
pub mod cpu;
pub mod fpsimd;
pub mod gic;
pub mod gic_v2;
pub mod gic_v3;
pub mod mem;
pub mod monitors;
pub mod phys;
pub mod rng;
pub mod sysreg;
pub mod uart;
pub mod vectors;

pub use context::{El1Context, GuestRegs, VgicHwState};
pub use cpu::*;
pub use uart::write_bytes as write_console;
