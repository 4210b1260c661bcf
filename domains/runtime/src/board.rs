//! The fallback board for the `native` build: QEMU `virt` addresses, used when the runtime
//! runs bare metal without the microvisor. Under the microvisor a domain sees only the guest
//! layout of `protocol::layout`, never these.
//!
//! QEMU's `gic-version=3` is the baseline; with `gic-version=2` the same distributor address
//! holds a GICv2 distributor and the CPU interface appears at [`GICC_BASE`] (the runtime
//! tells the two apart by `ID_AA64PFR0_EL1.GIC`, as it does under the microvisor).

/// GIC distributor (v3, or v2 with `gic-version=2`).
pub const GICD_BASE: u64 = 0x0800_0000;
/// Distributor frame size.
pub const GICD_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors (one 128 KiB RD+SGI pair per CPU).
pub const GICR_BASE: u64 = 0x080A_0000;
/// Redistributor region size.
pub const GICR_SIZE: u64 = 0xF6_0000;
/// GICv2 CPU interface (only with `gic-version=2`).
pub const GICC_BASE: u64 = 0x0801_0000;
/// The CPU interface's registers we use (`GICC_CTLR` .. `GICC_DIR`, two 4 KiB pages).
pub const GICC_SIZE: u64 = 0x2000;
/// PL011 UART.
pub const PL011_BASE: u64 = 0x0900_0000;
/// RAM the native build uses from 0x4000_0000 (QEMU must have at least this much).
pub const NATIVE_RAM: u64 = 64 << 20;
/// Where the native build reads its command line (NUL-terminated, at most
/// [`NATIVE_CMDLINE_MAX`] bytes): just past its RAM, written by the tools with QEMU's
/// `-device loader,file=...,addr=...`. Zeroed memory (nothing loaded) is an empty line.
pub const NATIVE_CMDLINE_ADDR: u64 = 0x4000_0000 + NATIVE_RAM;
/// Longest native command line.
pub const NATIVE_CMDLINE_MAX: usize = 256;
