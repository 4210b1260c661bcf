//! The physical GICv3: distributor and redistributor set-up, acknowledge/EOI, IPIs, and
//! the virtual CPU interface's system registers (list registers, VMCR, active priorities).
//! Reached only through [`super::gic`], which picks this driver or [`super::gic_v2`].
//!
//! The microvisor owns the physical GIC. All interrupts are group 1 non-secure, with split
//! EOI (EOImode 1): [`eoi`] drops priority and deactivates, [`drop_priority`] only drops it
//! for an interrupt handed to a guest through a hardware-linked list register, which the
//! guest's own EOI then deactivates. Guests see only the virtual CPU interface.

use super::context::VgicHwState;
use super::gic::{HYP_TIMER_PPI, KICK_SGI, MAINTENANCE_PPI, VTIMER_PPI};
use super::mem;
use super::sysreg::*;
use core::sync::atomic::{AtomicU64, Ordering};

static GICD: AtomicU64 = AtomicU64::new(0);
static GICR: AtomicU64 = AtomicU64::new(0);

const GICD_CTLR: u64 = 0x0;
const GICD_TYPER: u64 = 0x4;
const GICD_IGROUPR: u64 = 0x80;
const GICD_ICENABLER: u64 = 0x180;
const GICD_IPRIORITYR: u64 = 0x400;
const CTLR_RWP: u32 = 1 << 31;

const GICR_TYPER: u64 = 0x8;
const GICR_WAKER: u64 = 0x14;
const SGI_FRAME: u64 = 0x1_0000;
const GICR_STRIDE: u64 = 0x2_0000;

/// Initialises the distributor (boot CPU only).
///
/// # Safety
/// `gicd`/`gicr` must be the GICv3 distributor and redistributor region, mapped for EL2.
pub unsafe fn init_distributor(gicd: u64, gicr: u64) {
    GICD.store(gicd, Ordering::Release);
    GICR.store(gicr, Ordering::Release);
    // SAFETY: per the contract, these are the distributor's registers.
    unsafe {
        mem::mmio_write32(gicd + GICD_CTLR, 0);
        wait_rwp(gicd);
        let lines = ((mem::mmio_read32(gicd + GICD_TYPER) & 0x1f) + 1) * 32;
        for n in (32..lines).step_by(32) {
            mem::mmio_write32(gicd + GICD_IGROUPR + u64::from(n / 8), !0);
            mem::mmio_write32(gicd + GICD_ICENABLER + u64::from(n / 8), !0);
        }
        for n in (32..lines).step_by(4) {
            mem::mmio_write32(gicd + GICD_IPRIORITYR + u64::from(n), 0xa0a0_a0a0);
        }
        // ARE (affinity routing) | EnableGrp1.
        mem::mmio_write32(gicd + GICD_CTLR, (1 << 4) | (1 << 1));
        wait_rwp(gicd);
    }
}

/// # Safety
/// `gicd` must be the mapped distributor.
unsafe fn wait_rwp(gicd: u64) {
    // SAFETY: per the contract.
    while unsafe { mem::mmio_read32(gicd + GICD_CTLR) } & CTLR_RWP != 0 {}
}

/// Wakes this CPU's redistributor, enables the private interrupts EL2 handles and turns on
/// the CPU interface and the virtual CPU interface. Returns false if no redistributor
/// matches this CPU's affinity.
pub fn init_cpu(mpidr: u64) -> bool {
    let Some(rd) = find_redistributor(mpidr) else {
        return false;
    };
    let sgi = rd + SGI_FRAME;
    // SAFETY: `rd` is this CPU's redistributor found in the mapped region.
    unsafe {
        let waker = mem::mmio_read32(rd + GICR_WAKER) & !(1 << 1);
        mem::mmio_write32(rd + GICR_WAKER, waker);
        while mem::mmio_read32(rd + GICR_WAKER) & (1 << 2) != 0 {}
        mem::mmio_write32(sgi + GICD_IGROUPR, !0);
        mem::mmio_write32(sgi + GICD_ICENABLER, !0);
        for n in (0..32).step_by(4) {
            mem::mmio_write32(sgi + GICD_IPRIORITYR + n, 0xa0a0_a0a0);
        }
        let enable =
            (1u32 << KICK_SGI) | (1 << MAINTENANCE_PPI) | (1 << HYP_TIMER_PPI) | (1 << VTIMER_PPI);
        mem::mmio_write32(sgi + 0x100, enable);
        // System-register interface on for EL2 and for EL1 (Enable bit 3).
        write_icc_sre_el2(0xf);
        super::cpu::isb();
        write_icc_pmr_el1(0xf0);
        // EOImode 1: priority drop and deactivation are separate (see module docs).
        write_icc_ctlr_el1(1 << 1);
        write_icc_igrpen1_el1(1);
        // Virtual CPU interface on; maintenance interrupts only via per-LR EOI bits.
        write_ich_hcr_el2(1);
    }
    super::cpu::isb();
    true
}

fn find_redistributor(mpidr: u64) -> Option<u64> {
    let base = GICR.load(Ordering::Acquire);
    let want = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
    for i in 0..64 {
        let rd = base + i * GICR_STRIDE;
        // SAFETY: frames are walked from the region's base until the Last bit, all inside
        // the mapped redistributor region.
        let typer = unsafe { mem::mmio_read64(rd + GICR_TYPER) };
        if typer >> 32 == want {
            return Some(rd);
        }
        if typer & (1 << 4) != 0 {
            break;
        }
    }
    None
}

/// Acknowledges the next pending interrupt, or [`SPURIOUS`].
pub fn ack() -> u32 {
    icc_ack() & 0xff_ffff
}

/// Drops the running priority of an acknowledged interrupt but leaves it active: the guest
/// whose hardware-linked list register names it deactivates it.
pub fn drop_priority(intid: u32) {
    // SAFETY: callers pass an id returned by `ack` on this CPU.
    unsafe { write_icc_eoir1_el1(u64::from(intid)) };
}

/// Deactivates an interrupt (also one whose priority was dropped earlier).
pub fn deactivate(intid: u32) {
    // SAFETY: deactivating an interrupt this CPU acknowledged; a no-op if it is inactive.
    unsafe { write_icc_dir_el1(u64::from(intid)) };
}

/// Sends the kick SGI to the physical CPU with affinity `mpidr`.
pub fn kick(mpidr: u64) {
    let aff0 = mpidr & 0xf;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let value =
        (aff3 << 48) | (aff2 << 32) | (u64::from(KICK_SGI) << 24) | (aff1 << 16) | (1 << aff0);
    // The target reads its mailbox when the SGI arrives: the post must be visible first.
    super::cpu::dsb_sy();
    // SAFETY: the target's run loop treats the kick SGI as "re-check your state".
    unsafe { write_icc_sgi1r_el1(value) };
    super::cpu::isb();
}

/// Turns the list-register underflow maintenance interrupt on or off (`ICH_HCR_EL2.UIE`).
pub fn set_underflow_irq(on: bool) {
    // SAFETY: En stays set; UIE only adds a maintenance interrupt the run loop handles.
    unsafe { write_ich_hcr_el2(1 | (u64::from(on) << 1)) };
}

/// Enables SPI `intid` at the distributor and routes it to the CPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64) {
    let gicd = GICD.load(Ordering::Acquire);
    if !(32..1020).contains(&intid) || gicd == 0 {
        return;
    }
    let route = ((mpidr >> 32) & 0xff) << 32 | (mpidr & 0xff_ffff);
    // SAFETY: IROUTER and ISENABLER of an implemented SPI in our distributor.
    unsafe {
        let irouter = gicd + 0x6000 + 8 * u64::from(intid);
        mem::mmio_write32(irouter, route as u32);
        mem::mmio_write32(irouter + 4, (route >> 32) as u32);
        mem::mmio_write32(gicd + 0x100 + 4 * u64::from(intid / 32), 1 << (intid % 32));
    }
}

/// Masks SPI `intid` at the distributor.
pub fn mask_spi(intid: u32) {
    spi_enable_bit(intid, 0x180);
}

/// Unmasks SPI `intid` at the distributor.
pub fn unmask_spi(intid: u32) {
    spi_enable_bit(intid, 0x100);
}

fn spi_enable_bit(intid: u32, reg: u64) {
    let gicd = GICD.load(Ordering::Acquire);
    if !(32..1020).contains(&intid) || gicd == 0 {
        return;
    }
    // SAFETY: ISENABLER/ICENABLER word of an implemented SPI in our distributor.
    unsafe { mem::mmio_write32(gicd + reg + 4 * u64::from(intid / 32), 1 << (intid % 32)) };
}

/// Number of implemented list registers.
pub fn nr_lrs() -> usize {
    ((read_ich_vtr_el2() & 0x1f) + 1) as usize
}

/// Reads the first `lrs.len()` list registers: straight-line reads, as [`lrs_match`] (a
/// loop over [`read_ich_lr`] dispatched on the index for each one).
#[inline]
pub fn read_lrs(lrs: &mut [u64]) {
    macro_rules! read {
        ($($i:literal),*) => {
            $(
                let Some(slot) = lrs.get_mut($i) else { return };
                // SAFETY: reading a list register has no side effects.
                unsafe {
                    core::arch::asm!(
                        concat!("mrs {}, ich_lr", stringify!($i), "_el2"),
                        out(reg) *slot,
                        options(nomem, nostack, preserves_flags)
                    )
                };
            )*
        };
    }
    read!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Writes the first `lrs.len()` list registers (straight-line, as [`read_lrs`]).
#[inline]
pub fn write_lrs(lrs: &[u64]) {
    macro_rules! write {
        ($($i:literal),*) => {
            $(
                let Some(&value) = lrs.get($i) else { return };
                // SAFETY: a list register describes a virtual interrupt for the guest; it
                // cannot affect EL2.
                unsafe {
                    core::arch::asm!(
                        concat!("msr ich_lr", stringify!($i), "_el2, {}"),
                        in(reg) value,
                        options(nomem, nostack, preserves_flags)
                    )
                };
            )*
        };
    }
    write!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Zeroes each of the first `lrs.len()` list registers whose value in `lrs` (what they
/// hold) is not zero (straight-line, as [`read_lrs`]).
#[inline]
pub fn clear_lrs(lrs: &[u64]) {
    macro_rules! clear {
        ($($i:literal),*) => {
            $(
                let Some(&value) = lrs.get($i) else { return };
                if value != 0 {
                    // SAFETY: an empty list register describes no virtual interrupt; it
                    // cannot affect EL2.
                    unsafe {
                        core::arch::asm!(
                            concat!("msr ich_lr", stringify!($i), "_el2, xzr"),
                            options(nomem, nostack, preserves_flags)
                        )
                    };
                }
            )*
        };
    }
    clear!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Writes list register `n`.
#[inline]
pub fn write_lr(n: usize, value: u64) {
    write_ich_lr(n, value);
}

/// Whether the first `shadow.len()` list registers hold exactly `shadow`: straight-line
/// reads, no buffer (the fast path's check).
#[inline]
pub fn lrs_match(shadow: &[u64]) -> bool {
    macro_rules! check {
        ($($i:literal),*) => {
            $(
                let Some(&want) = shadow.get($i) else { return true };
                let v: u64;
                // SAFETY: reading a list register has no side effects.
                unsafe {
                    core::arch::asm!(
                        concat!("mrs {}, ich_lr", stringify!($i), "_el2"),
                        out(reg) v,
                        options(nomem, nostack, preserves_flags)
                    )
                };
                if v != want {
                    return false;
                }
            )*
        };
    }
    check!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    true
}

/// `ICH_VMCR_EL2`.
pub fn read_vmcr() -> u64 {
    read_ich_vmcr_el2()
}

/// Captures the virtual CPU interface state (not the LRs).
pub fn save_hw(s: &mut VgicHwState) {
    s.vmcr = read_ich_vmcr_el2();
    s.ap0r0 = read_ich_ap0r0_el2();
    s.ap1r0 = read_ich_ap1r0_el2();
}

/// Loads the virtual CPU interface state.
pub fn restore_hw(s: &VgicHwState) {
    write_ich_vmcr_el2(s.vmcr);
    write_ich_ap0r0_el2(s.ap0r0);
    write_ich_ap1r0_el2(s.ap1r0);
}
