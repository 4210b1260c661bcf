//! The guest's interrupt controller, GICv3 or GICv2, at Xen's guest addresses (which
//! Bulkhead uses too). `ID_AA64PFR0_EL1.GIC` tells them apart: nonzero is a GICv3
//! system-register CPU interface (distributor at `GUEST_GICD_BASE`, one redistributor per
//! vCPU); zero is a GICv2 host (GIC-400), whose guests get a 4 KiB distributor at the same
//! address with banked SGI/PPI registers and the memory-mapped CPU interface at
//! `GUEST_GICV2_GICC_BASE`.
//!
//! On a GICv2 the interrupt groups are left as the hypervisor presents them; the CPU
//! interface enables both and sets AckCtl, so `GICC_IAR` acknowledges either (as the
//! domains' runtime does). An acknowledged SGI carries its sender in `GICC_IAR`'s CPUID
//! field, which `GICC_EOIR` must be given back: [`ack`] returns the whole value.

use crate::arch::{self, mmio_read32, mmio_write32};
use core::sync::atomic::{AtomicBool, Ordering};
use protocol::layout::{
    GUEST_GICD_BASE, GUEST_GICR_BASE, GUEST_GICR_STRIDE, GUEST_GICV2_GICC_BASE,
};

const GICD: u64 = GUEST_GICD_BASE.as_u64();
const GICC: u64 = GUEST_GICV2_GICC_BASE.as_u64();
const GICD_CTLR: u64 = 0x0;
/// GICv3: EnableGrp1A | ARE.
const GICD_CTLR_V3: u32 = (1 << 1) | (1 << 4);
/// GICv2: EnableGrp0 | EnableGrp1.
const GICD_CTLR_V2: u32 = 0x3;
const GICD_SGIR: u64 = 0xF00;
/// Redistributor SGI frame, relative to the redistributor's base.
const GICR_SGI: u64 = 0x1_0000;
/// The same offsets in a GICv3 SGI frame and a GICv2 distributor (banked below 32).
const IGROUPR0: u64 = 0x80;
const ISENABLER0: u64 = 0x100;
const IPRIORITYR: u64 = 0x400;
const GICC_CTLR: u64 = 0x0;
const GICC_PMR: u64 = 0x4;
const GICC_BPR: u64 = 0x8;
const GICC_IAR: u64 = 0xC;
const GICC_EOIR: u64 = 0x10;
/// `GICC_CTLR`: EnableGrp0 | EnableGrp1 | AckCtl (group 0 signalled as IRQ, EOImode 0).
const GICC_CTLR_VALUE: u32 = 0x7;
/// One priority for everything: the benchmarks never nest interrupts.
const PRIORITY: u8 = 0x80;

/// Set by [`detect`] on a GICv2: the interrupt paths read this, not the ID register, which
/// a hypervisor may trap (Bulkhead does, to show a GICv2 host's guests GIC = 0), so the
/// measured paths take no extra exit.
static V2: AtomicBool = AtomicBool::new(false);

/// Reads `ID_AA64PFR0_EL1.GIC` into [`V2`] (every vCPU finds the same).
fn detect() {
    V2.store((arch::id_aa64pfr0() >> 24) & 0xF == 0, Ordering::Relaxed);
}

/// Whether this vCPU has a GICv3 (system-register CPU interface); valid after
/// [`dist_init`] or [`cpu_init`].
pub fn is_v3() -> bool {
    !V2.load(Ordering::Relaxed)
}

/// Turns the distributor on (vCPU 0 does it once).
pub fn dist_init() {
    detect();
    let v = if is_v3() { GICD_CTLR_V3 } else { GICD_CTLR_V2 };
    // SAFETY: the guest distributor takes 32-bit writes.
    unsafe { mmio_write32(GICD + GICD_CTLR, v) };
}

/// One priority and enabled for each of `intids` (SGIs and PPIs) in this vCPU's own
/// registers (its redistributor, or the GICv2 distributor's banked copies), then the CPU
/// interface on.
pub fn cpu_init(intids: &[u32]) {
    detect();
    let v3 = is_v3();
    let frame = if v3 {
        GUEST_GICR_BASE.as_u64() + GUEST_GICR_STRIDE * arch::cpu_index() as u64 + GICR_SGI
    } else {
        GICD
    };
    let mut enable = 0u32;
    for &id in intids {
        enable |= 1 << id;
        let reg = IPRIORITYR + u64::from(id & !3);
        let shift = (id & 3) * 8;
        // SAFETY: this vCPU's SGI/PPI registers at Xen's guest addresses; the priority
        // registers are byte fields read and written as whole words.
        unsafe {
            let old = mmio_read32(frame + reg);
            let v = (old & !(0xff << shift)) | (u32::from(PRIORITY) << shift);
            mmio_write32(frame + reg, v);
        }
    }
    // SAFETY: as above; the GICv2 CPU interface is this vCPU's own.
    unsafe {
        if v3 {
            mmio_write32(frame + IGROUPR0, u32::MAX);
        }
        mmio_write32(frame + ISENABLER0, enable);
        if !v3 {
            mmio_write32(GICC + GICC_PMR, 0xff);
            mmio_write32(GICC + GICC_BPR, 0);
            mmio_write32(GICC + GICC_CTLR, GICC_CTLR_VALUE);
        }
    }
    if v3 {
        arch::gic_cpu_init();
    }
}

/// Acknowledges the highest-priority pending interrupt; returns the acknowledgement
/// (INTID in bits [9:0] for every INTID this guest uses, 1023 when spurious), which
/// [`eoi`] takes back.
pub fn ack() -> u32 {
    if is_v3() {
        arch::gic_ack()
    } else {
        // SAFETY: reading IAR acknowledges an interrupt of this vCPU only.
        unsafe { mmio_read32(GICC + GICC_IAR) }
    }
}

/// The INTID of an acknowledgement.
pub fn intid(ack: u32) -> u32 {
    ack & 0x3ff
}

/// Ends the interrupt `ack` acknowledged (priority drop and deactivation: EOImode 0).
pub fn eoi(ack: u32) {
    if is_v3() {
        arch::gic_eoi(intid(ack));
    } else {
        // SAFETY: EOI of an interrupt this vCPU acknowledged.
        unsafe { mmio_write32(GICC + GICC_EOIR, ack) };
    }
}

/// Sends SGI `intid` to vCPU `target` (affinity 0; on a GICv2 CPU interface `target`).
pub fn send_sgi(intid: u32, target: usize) {
    if is_v3() {
        arch::send_sgi(intid, target);
    } else {
        // SAFETY: an SGI only raises an interrupt at a vCPU of this domain.
        unsafe { mmio_write32(GICD + GICD_SGIR, (1 << (16 + (target & 7))) | (intid & 0xf)) };
    }
}
