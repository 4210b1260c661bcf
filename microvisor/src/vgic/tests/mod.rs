//! Host tests for the emulated GICv3: register reset values and access rules (`mmio.rs`),
//! interrupt delivery through list registers (`delivery.rs`), routing (`routing.rs`), real
//! guests' setups and the diagnostics for broken ones (`guest_setups.rs`), and a never-panic
//! fuzz loop (`fuzz.rs`, both versions). The emulated GICv2: its register map, banking,
//! `ITARGETSR` and `SGIR` (`v2.rs`), and Linux's bring-up replayed (`v2_linux.rs`).

mod delivery;
mod direct;
mod fast_spi;
mod fuzz;
mod guest_setups;
mod hwlink;
mod mmio;
mod routing;
mod v2;
mod v2_linux;

use super::*;
use protocol::layout::{
    GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_GICR_BASE, GUEST_GICR_SIZE, GUEST_GICR_STRIDE,
    GUEST_GICV2_GICD_SIZE,
};

/// Distributor base as a raw address.
const GICD: u64 = GUEST_GICD_BASE.as_u64();
/// LRs QEMU's GICv3 CPU interface implements.
const NR_LRS: usize = 4;

/// vCPU `v`'s RD frame.
fn rd_frame(v: usize) -> u64 {
    GUEST_GICR_BASE.as_u64() + v as u64 * GUEST_GICR_STRIDE
}

/// vCPU `v`'s SGI frame.
fn sgi_frame(v: usize) -> u64 {
    rd_frame(v) + 0x1_0000
}

/// Asserts that neither a read nor a write by vCPU 0 at `addr` is the GIC's to emulate.
fn assert_not_gic(g: &mut VgicDomain, addr: u64) {
    let gpa = GuestPhysAddr::new(addr);
    assert_eq!(
        g.mmio(0, gpa, 4, None),
        MmioOutcome::NotGic,
        "read {addr:#x}"
    );
    assert_eq!(
        g.mmio(0, gpa, 4, Some(1)),
        MmioOutcome::NotGic,
        "write {addr:#x}"
    );
}

fn read(g: &mut VgicDomain, addr: u64, width: u8) -> u64 {
    match g.mmio(0, GuestPhysAddr::new(addr), width, None) {
        MmioOutcome::Read(v) => v,
        other => panic!("read at {addr:#x} gave {other:?}"),
    }
}

fn write(g: &mut VgicDomain, addr: u64, width: u8, val: u64) -> VcpuMask {
    match g.mmio(0, GuestPhysAddr::new(addr), width, Some(val)) {
        MmioOutcome::Write { kick } => kick,
        other => panic!("write at {addr:#x} gave {other:?}"),
    }
}

/// A read of `width` bytes at `addr` made by vCPU `v` (what banks a GICv2's registers).
fn read_as(g: &mut VgicDomain, v: usize, addr: u64, width: u8) -> u64 {
    match g.mmio(v, GuestPhysAddr::new(addr), width, None) {
        MmioOutcome::Read(x) => x,
        other => panic!("read by vCPU {v} at {addr:#x} gave {other:?}"),
    }
}

/// A write of `width` bytes at `addr` made by vCPU `v`; returns the kick mask.
fn write_as(g: &mut VgicDomain, v: usize, addr: u64, width: u8, val: u64) -> VcpuMask {
    match g.mmio(v, GuestPhysAddr::new(addr), width, Some(val)) {
        MmioOutcome::Write { kick } => kick,
        other => panic!("write by vCPU {v} at {addr:#x} gave {other:?}"),
    }
}

fn rd32(g: &mut VgicDomain, addr: u64) -> u64 {
    read(g, addr, 4)
}

fn wr32(g: &mut VgicDomain, addr: u64, val: u64) -> VcpuMask {
    write(g, addr, 4, val)
}

/// A GIC for `n` vCPUs with Group 1 enabled, as a guest leaves it after init.
fn gic(n: usize) -> VgicDomain {
    let mut g = VgicDomain::new(GicVersion::V3, n);
    wr32(&mut g, GICD, 0b10);
    g
}

/// Enables SGI/PPI `intid` on `v` with `prio` through its redistributor.
fn enable_private(g: &mut VgicDomain, v: usize, intid: u32, prio: u8) {
    write(
        g,
        sgi_frame(v) + 0x400 + u64::from(intid),
        1,
        u64::from(prio),
    );
    wr32(g, sgi_frame(v) + 0x100, 1 << intid);
}

/// Enables SPI `intid` with `prio` through the distributor.
fn enable_spi(g: &mut VgicDomain, intid: u32, prio: u8) {
    write(g, GICD + 0x400 + u64::from(intid), 1, u64::from(prio));
    wr32(
        g,
        GICD + 0x100 + u64::from(intid / 32) * 4,
        1 << (intid % 32),
    );
}

/// Routes SPI `intid` to `target` (Aff0).
fn route_spi(g: &mut VgicDomain, intid: u32, target: u64) -> VcpuMask {
    write(g, GICD + 0x6000 + 8 * u64::from(intid), 8, target)
}

/// INTIDs of the valid LRs, in slot order.
fn lr_intids(lrs: &[u64]) -> Vec<u32> {
    lrs.iter()
        .filter(|&&l| lr::state(l) != lr::LrState::Invalid)
        .map(|&l| lr::intid(l))
        .collect()
}

/// What the guest does to an LR when it acknowledges the interrupt.
fn ack(l: &mut u64) {
    assert_eq!(
        lr::state(*l),
        lr::LrState::Pending,
        "ack of non-pending LR {l:#x}"
    );
    *l = lr::with_state(*l, lr::LrState::Active);
}

/// What the guest's EOI (EOImode 0: priority drop + deactivate) does to an active LR.
fn eoi(l: &mut u64) {
    assert!(*l & lr::ACTIVE != 0, "EOI of inactive LR {l:#x}");
    *l = lr::with_state(
        *l,
        if *l & lr::PENDING != 0 {
            lr::LrState::Pending
        } else {
            lr::LrState::Invalid
        },
    );
}
