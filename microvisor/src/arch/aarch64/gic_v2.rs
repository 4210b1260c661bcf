//! The physical GICv2 (GIC-400): distributor with `ITARGETSR` routing, the memory-mapped
//! CPU interface in EOImode 1, IPIs through `GICD_SGIR`, and the virtual interface control
//! (`GICH`) whose list registers the vCPUs use. Reached only through [`super::gic`].
//!
//! The microvisor leaves interrupt groups as firmware set them, as Linux does: on a GIC
//! without security extensions (QEMU virt without EL3) everything is group 0 and bit 0 of
//! `GICD_CTLR`/`GICC_CTLR` enables it; seen from the non-secure side of one with them (a
//! ZCU102 under Trusted Firmware) firmware made everything group 1 and bit 0 enables that.
//! Bit 9 is then the matching EOI mode bit (`EOImodeS` / `EOImodeNS`).
//!
//! SGIs: `GICC_IAR` reports an SGI with its source CPU, and only that exact value ends it.
//! The microvisor's one SGI is the kick, whose handling ("look at your mailbox", posted
//! before the SGI was sent) does not care when it is ended, so [`ack`] ends an SGI at once
//! and the later [`eoi`] / [`drop_priority`] / [`deactivate`] of an SGI number do nothing.
//!
//! List registers are kept in the `ICH_LR_EL2` format everywhere else; they are converted
//! here ([`crate::gich_lr`]).
//!
//! The functions the run loop calls on every exit are `#[cold]` and never inlined, so the
//! GICv3 fast path that [`super::gic`] also dispatches to keeps its code and registers.

use super::context::{VgicHwState, MAX_LRS};
use super::gic::{HYP_TIMER_PPI, KICK_SGI, SPURIOUS, VTIMER_PPI};
use super::mem;
use crate::gich_lr::{from_gich, to_gich};
use crate::platform::{GicV2, Region, GICV2_ALIAS_OFFSET, GICV2_IIDR};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static GICD: AtomicU64 = AtomicU64::new(0);
/// The CPU interface's 8 KiB window (alias-corrected).
static GICC: AtomicU64 = AtomicU64::new(0);
static GICH: AtomicU64 = AtomicU64::new(0);
/// The maintenance interrupt's INTID.
static MAINTENANCE: AtomicU32 = AtomicU32::new(25);

/// Each started CPU's `(MPIDR affinity << 8) | CPU-interface mask`, 0 = unused slot.
static CPU_IFACE: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

const GICD_CTLR: u64 = 0x0;
const GICD_TYPER: u64 = 0x4;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_SGIR: u64 = 0xf00;

const GICC_CTLR: u64 = 0x0;
const GICC_PMR: u64 = 0x4;
const GICC_IAR: u64 = 0xc;
const GICC_EOIR: u64 = 0x10;
const GICC_DIR: u64 = 0x1000;
/// `GICC_CTLR`: enable (bit 0) and EOImode (bit 9): see the module docs.
const GICC_CTLR_VALUE: u32 = 1 | (1 << 9);

const GICH_HCR: u64 = 0x0;
const GICH_VTR: u64 = 0x4;
const GICH_VMCR: u64 = 0x8;
const GICH_APR: u64 = 0xf0;
const GICH_LR0: u64 = 0x100;

/// MPIDR affinity bits compared when looking a CPU up.
const AFFINITY: u64 = 0xff_00ff_ffff;

/// Reads the IIDR of the CPU-interface range `r` at its start and at the GIC-400 alias.
///
/// # Safety
/// `r` must be mapped for EL2 as device memory.
unsafe fn probe_window(r: Region) -> Region {
    let base = r.base.as_u64();
    // SAFETY: IIDR is a read-only identification register inside the mapped range. The
    // alias is read only when the range is the 128 KiB of an aliased GIC-400: elsewhere
    // the mapped range may extend past the frame's decoder (QEMU's 64 KiB GICC range
    // decodes 8 KiB; an access beyond is an external abort).
    let (low, high) = unsafe {
        let low = mem::mmio_read32(base + GICV2_IIDR);
        let high = if r.size == 0x2_0000 {
            mem::mmio_read32(base + GICV2_ALIAS_OFFSET + GICV2_IIDR)
        } else {
            0
        };
        (low, high)
    };
    GicV2::cpu_interface_window(r, low, high)
}

/// Initialises the distributor (boot CPU only) and returns the GICV window guests get.
///
/// # Safety
/// Every range of `v2` and `gicd` must be this GICv2's, mapped for EL2 as device memory.
pub unsafe fn init_distributor(gicd: u64, v2: &GicV2) -> Region {
    // SAFETY: per the contract.
    let (gicc, gicv) = unsafe { (probe_window(v2.gicc), probe_window(v2.gicv)) };
    GICD.store(gicd, Ordering::Release);
    GICC.store(gicc.base.as_u64(), Ordering::Release);
    GICH.store(v2.gich.base.as_u64(), Ordering::Release);
    if let Some(irq) = v2.maintenance_irq {
        MAINTENANCE.store(irq, Ordering::Release);
    }
    // SAFETY: per the contract, these are the distributor's registers; ITARGETSR0 is this
    // CPU's banked view.
    unsafe {
        mem::mmio_write32(gicd + GICD_CTLR, 0);
        let lines = ((mem::mmio_read32(gicd + GICD_TYPER) & 0x1f) + 1) * 32;
        let me = own_mask(gicd);
        let targets = u32::from(me) * 0x0101_0101;
        for n in (32..lines).step_by(32) {
            mem::mmio_write32(gicd + GICD_ICENABLER + u64::from(n / 8), !0);
        }
        for n in (32..lines).step_by(4) {
            mem::mmio_write32(gicd + GICD_IPRIORITYR + u64::from(n), 0xa0a0_a0a0);
            mem::mmio_write32(gicd + GICD_ITARGETSR + u64::from(n), targets);
        }
        mem::mmio_write32(gicd + GICD_CTLR, 1);
    }
    gicv
}

/// This CPU's interface mask, read from its banked `GICD_ITARGETSR0..7` (a uniprocessor
/// GIC reads 0 there: its one interface is bit 0).
///
/// # Safety
/// `gicd` must be the mapped distributor.
unsafe fn own_mask(gicd: u64) -> u8 {
    let mut mask = 0u8;
    for word in 0..8 {
        // SAFETY: per the contract; SGI/PPI target registers are read-only.
        let v = unsafe { mem::mmio_read32(gicd + GICD_ITARGETSR + 4 * word) };
        for b in v.to_le_bytes() {
            mask |= b;
        }
    }
    if mask == 0 {
        1
    } else {
        mask
    }
}

/// Records this CPU's interface, enables the private interrupts EL2 handles and turns on
/// the CPU interface and the virtual interface.
pub fn init_cpu(mpidr: u64) -> bool {
    let gicd = GICD.load(Ordering::Acquire);
    let gicc = GICC.load(Ordering::Acquire);
    let gich = GICH.load(Ordering::Acquire);
    if gicd == 0 {
        return false;
    }
    // SAFETY: `init_distributor` published these mapped frames; the SGI/PPI registers
    // written are this CPU's banked copies.
    unsafe {
        let mask = own_mask(gicd);
        let entry = ((mpidr & AFFINITY) << 8) | u64::from(mask);
        if !CPU_IFACE.iter().any(|slot| {
            slot.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }) {
            return false;
        }
        mem::mmio_write32(gicd + GICD_ICENABLER, !0);
        for n in (0..32).step_by(4) {
            mem::mmio_write32(gicd + GICD_IPRIORITYR + n, 0xa0a0_a0a0);
        }
        let enable = (1u32 << KICK_SGI)
            | (1 << MAINTENANCE.load(Ordering::Acquire))
            | (1 << HYP_TIMER_PPI)
            | (1 << VTIMER_PPI);
        mem::mmio_write32(gicd + GICD_ISENABLER, enable);
        mem::mmio_write32(gicc + GICC_PMR, 0xf0);
        mem::mmio_write32(gicc + GICC_CTLR, GICC_CTLR_VALUE);
        // Virtual interface on; maintenance interrupts only via per-LR EOI bits.
        mem::mmio_write32(gich + GICH_HCR, 1);
    }
    close_sysreg_interface();
    true
}

/// A core that implements the GICv3 system-register interface (`ID_AA64PFR0_EL1.GIC`
/// non-zero) next to a GICv2 must not let guests reach it: `ICC_SRE_EL2` = 0 makes EL1's
/// GIC system registers undefined and traps EL1 accesses to `ICC_SRE_EL1` to EL2, where
/// they are made undefined too. A core without it (a GIC-400 system) has no such register,
/// so it is not touched there.
fn close_sysreg_interface() {
    let pfr0 = super::sysreg::read_id_group3(4, 0);
    if (pfr0 >> 24) & 0xf != 0 {
        // SAFETY: EL2 itself uses the memory-mapped GICv2 interface, never the system
        // registers, so turning them off changes nothing the microvisor relies on.
        unsafe { super::sysreg::write_icc_sre_el2(0) };
        super::cpu::isb();
    }
}

/// The maintenance interrupt's INTID.
pub fn maintenance_irq() -> u32 {
    MAINTENANCE.load(Ordering::Relaxed)
}

/// Acknowledges the next pending interrupt, or [`SPURIOUS`]; an SGI is ended at once (see
/// the module docs).
#[cold]
#[inline(never)]
pub fn ack() -> u32 {
    let gicc = GICC.load(Ordering::Relaxed);
    // SAFETY: reading IAR acknowledges; the caller handles what it returns.
    let iar = unsafe { mem::mmio_read32(gicc + GICC_IAR) };
    let intid = iar & 0x3ff;
    if intid >= 1020 {
        return SPURIOUS;
    }
    if intid < 16 {
        // SAFETY: ending, with its exact IAR value, the SGI this CPU just acknowledged.
        unsafe {
            mem::mmio_write32(gicc + GICC_EOIR, iar);
            mem::mmio_write32(gicc + GICC_DIR, iar);
        }
    }
    intid
}

/// Drops the running priority of an acknowledged interrupt (not an SGI: already ended).
#[cold]
#[inline(never)]
pub fn drop_priority(intid: u32) {
    if intid < 16 {
        return;
    }
    // SAFETY: callers pass an id returned by `ack` on this CPU.
    unsafe { mem::mmio_write32(GICC.load(Ordering::Relaxed) + GICC_EOIR, intid) };
}

/// Deactivates an interrupt (not an SGI: already ended).
#[cold]
#[inline(never)]
pub fn deactivate(intid: u32) {
    if intid < 16 {
        return;
    }
    // SAFETY: deactivating an interrupt this CPU acknowledged; a no-op if it is inactive.
    unsafe { mem::mmio_write32(GICC.load(Ordering::Relaxed) + GICC_DIR, intid) };
}

/// The CPU-interface mask of the CPU with affinity `mpidr`, once it ran `init_cpu`.
fn iface_of(mpidr: u64) -> Option<u8> {
    CPU_IFACE.iter().find_map(|slot| {
        let e = slot.load(Ordering::Acquire);
        (e != 0 && e >> 8 == mpidr & AFFINITY).then_some(e as u8)
    })
}

/// Sends the kick SGI to the physical CPU with affinity `mpidr` (nothing if that CPU has
/// not initialised its interface: it is not running guests yet).
#[cold]
#[inline(never)]
pub fn kick(mpidr: u64) {
    let Some(mask) = iface_of(mpidr) else { return };
    // The target reads its mailbox when the SGI arrives: the post must be visible first.
    super::cpu::dsb_sy();
    // SAFETY: the target's run loop treats the kick SGI as "re-check your state".
    unsafe {
        mem::mmio_write32(
            GICD.load(Ordering::Relaxed) + GICD_SGIR,
            (u32::from(mask) << 16) | KICK_SGI,
        )
    };
}

/// Turns the list-register underflow maintenance interrupt on or off (`GICH_HCR.UIE`).
#[cold]
#[inline(never)]
pub fn set_underflow_irq(on: bool) {
    // SAFETY: En stays set; UIE only adds a maintenance interrupt the run loop handles.
    unsafe {
        mem::mmio_write32(
            GICH.load(Ordering::Relaxed) + GICH_HCR,
            1 | (u32::from(on) << 1),
        )
    };
}

/// Enables SPI `intid` and routes it to the CPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64) {
    let gicd = GICD.load(Ordering::Acquire);
    if !(32..1020).contains(&intid) || gicd == 0 {
        return;
    }
    // A CPU that has not started yet: the boot CPU (the first recorded) takes it for now.
    let boot = CPU_IFACE[0].load(Ordering::Acquire) as u8;
    let mask = iface_of(mpidr).unwrap_or(if boot == 0 { 1 } else { boot });
    // SAFETY: the byte-accessible ITARGETSR entry and the ISENABLER bit of an implemented
    // SPI in our distributor.
    unsafe {
        mem::mmio_access(
            gicd + GICD_ITARGETSR + u64::from(intid),
            1,
            Some(u64::from(mask)),
        );
        mem::mmio_write32(
            gicd + GICD_ISENABLER + 4 * u64::from(intid / 32),
            1 << (intid % 32),
        );
    }
}

/// Sets (`ISENABLER`) or clears (`ICENABLER`) SPI `intid`'s enable bit.
pub fn spi_enable_bit(intid: u32, set: bool) {
    let gicd = GICD.load(Ordering::Acquire);
    if !(32..1020).contains(&intid) || gicd == 0 {
        return;
    }
    let reg = if set { GICD_ISENABLER } else { GICD_ICENABLER };
    // SAFETY: ISENABLER/ICENABLER word of an implemented SPI in our distributor.
    unsafe { mem::mmio_write32(gicd + reg + 4 * u64::from(intid / 32), 1 << (intid % 32)) };
}

fn lr_addr(n: usize) -> u64 {
    GICH.load(Ordering::Relaxed) + GICH_LR0 + 4 * n as u64
}

/// Number of implemented list registers (`GICH_VTR.ListRegs` + 1).
pub fn nr_lrs() -> usize {
    // SAFETY: VTR is read-only.
    let vtr = unsafe { mem::mmio_read32(GICH.load(Ordering::Acquire) + GICH_VTR) };
    ((vtr & 0x3f) + 1) as usize
}

/// Reads the first `lrs.len()` list registers; on entry `lrs` holds what was last written
/// to them (see [`crate::gich_lr`]).
#[cold]
#[inline(never)]
pub fn read_lrs(lrs: &mut [u64]) {
    for (i, lr) in lrs.iter_mut().enumerate().take(MAX_LRS) {
        // SAFETY: reading a list register of this CPU's GICH has no side effects; `i` < 16
        // stays among GICH_LR0..63.
        let raw = unsafe { mem::mmio_read32(lr_addr(i)) };
        *lr = from_gich(raw, *lr);
    }
}

/// Writes list register `n` (an `ICH_LR` value).
#[cold]
#[inline(never)]
pub fn write_lr(n: usize, value: u64) {
    if n >= MAX_LRS {
        return;
    }
    // SAFETY: a list register describes a virtual interrupt for the guest; it cannot affect
    // EL2. `n` < 16 keeps the address among GICH_LR0..63 (unimplemented ones are RAZ/WI).
    unsafe { mem::mmio_write32(lr_addr(n), to_gich(value)) };
}

/// Zeroes each of the first `lrs.len()` list registers whose value in `lrs` is not zero.
#[cold]
#[inline(never)]
pub fn clear_lrs(lrs: &[u64]) {
    for (i, _) in lrs.iter().enumerate().filter(|(_, lr)| **lr != 0) {
        write_lr(i, 0);
    }
}

/// Writes the first `lrs.len()` list registers.
#[cold]
#[inline(never)]
pub fn write_lrs(lrs: &[u64]) {
    for (i, lr) in lrs.iter().enumerate() {
        write_lr(i, *lr);
    }
}

/// Whether the first `shadow.len()` list registers hold exactly `shadow`.
#[cold]
#[inline(never)]
pub fn lrs_match(shadow: &[u64]) -> bool {
    shadow.iter().enumerate().take(MAX_LRS).all(|(i, &want)| {
        // SAFETY: as in `read_lrs`.
        let raw = unsafe { mem::mmio_read32(lr_addr(i)) };
        raw == to_gich(want)
    })
}

/// `GICH_VMCR`, in the `ICH_VMCR_EL2` layout it shares (see [`VgicHwState`]).
#[cold]
#[inline(never)]
pub fn read_vmcr() -> u64 {
    // SAFETY: reading the virtual machine control register has no side effects.
    u64::from(unsafe { mem::mmio_read32(GICH.load(Ordering::Relaxed) + GICH_VMCR) })
}

/// Captures the virtual CPU interface state (not the LRs).
#[cold]
#[inline(never)]
pub fn save_hw(s: &mut VgicHwState) {
    let gich = GICH.load(Ordering::Relaxed);
    // SAFETY: plain reads of this CPU's GICH registers.
    unsafe {
        s.vmcr = u64::from(mem::mmio_read32(gich + GICH_VMCR));
        s.ap0r0 = u64::from(mem::mmio_read32(gich + GICH_APR));
    }
    s.ap1r0 = 0;
}

/// Loads the virtual CPU interface state.
#[cold]
#[inline(never)]
pub fn restore_hw(s: &VgicHwState) {
    let gich = GICH.load(Ordering::Relaxed);
    // SAFETY: the values are a vCPU's own saved interface state; they shape only what that
    // vCPU's virtual CPU interface shows.
    unsafe {
        mem::mmio_write32(gich + GICH_APR, s.ap0r0 as u32);
        mem::mmio_write32(gich + GICH_VMCR, s.vmcr as u32);
    }
}
