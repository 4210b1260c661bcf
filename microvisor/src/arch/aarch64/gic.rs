//! The physical GIC, whatever its version: one API over [`super::gic_v3`] (system-register
//! CPU interface) and [`super::gic_v2`] (GIC-400, memory-mapped). The version is decided
//! once at boot ([`init_distributor`]) and read with one relaxed load per call after that.
//!
//! The microvisor owns the physical GIC. It runs with split EOI (EOImode 1): [`eoi`] drops
//! priority and deactivates, [`drop_priority`] only drops it for an interrupt handed to a
//! guest through a hardware-linked list register, which the guest's own EOI then
//! deactivates. Guests see only the virtual CPU interface. List registers are given and
//! returned in the `ICH_LR_EL2` format on both versions.
//!
//! The fast path does not pay the version check per call: it is compiled once per version
//! over [`Hot`] ([`V3`], [`V2`]) and picks its copy once per stay in a guest.

use super::context::VgicHwState;
use super::{gic_v2 as v2, gic_v3 as v3};
use crate::platform::{Platform, Region};
use core::sync::atomic::{AtomicBool, Ordering};
use protocol::layout::GicVersion;

/// SGI the microvisor uses to make another CPU re-examine its run queue and list registers.
pub const KICK_SGI: u32 = 0;
/// GIC maintenance interrupt (PPI) on a GICv3; a GICv2 takes it from the device tree
/// ([`maintenance_irq`]).
pub const MAINTENANCE_PPI: u32 = 25;
/// EL2 physical timer (PPI).
pub const HYP_TIMER_PPI: u32 = 26;
/// EL1 virtual timer (PPI).
pub const VTIMER_PPI: u32 = 27;
/// Interrupt id meaning "nothing pending".
pub const SPURIOUS: u32 = 1023;

/// Set once, before any other CPU starts, when the host GIC is a GICv2.
static IS_V2: AtomicBool = AtomicBool::new(false);

#[inline(always)]
fn is_v2() -> bool {
    IS_V2.load(Ordering::Relaxed)
}

/// The host GIC's version (every domain's virtual GIC has the same).
pub fn version() -> GicVersion {
    if is_v2() {
        GicVersion::V2
    } else {
        GicVersion::V3
    }
}

/// Initialises the distributor (boot CPU only, before the other CPUs start) and returns
/// the GICv2 virtual CPU interface window guests get (`None` on a GICv3).
///
/// # Safety
/// The platform's GIC ranges must be mapped for EL2 as device memory.
pub unsafe fn init_distributor(p: &Platform) -> Option<Region> {
    let gicd = p.gicd.base.as_u64();
    match &p.gicv2 {
        Some(frames) => {
            IS_V2.store(true, Ordering::Release);
            // SAFETY: per the contract.
            Some(unsafe { v2::init_distributor(gicd, frames) })
        }
        None => {
            // SAFETY: per the contract.
            unsafe { v3::init_distributor(gicd, p.gicr.base.as_u64()) };
            None
        }
    }
}

/// Sets up this CPU's interface; false if the GIC has none for this CPU's affinity.
pub fn init_cpu(mpidr: u64) -> bool {
    if is_v2() {
        v2::init_cpu(mpidr)
    } else {
        v3::init_cpu(mpidr)
    }
}

/// The maintenance interrupt's INTID.
pub fn maintenance_irq() -> u32 {
    if is_v2() {
        v2::maintenance_irq()
    } else {
        MAINTENANCE_PPI
    }
}

/// Acknowledges the next pending interrupt, or [`SPURIOUS`].
#[inline]
pub fn ack() -> u32 {
    if is_v2() {
        v2::ack()
    } else {
        v3::ack()
    }
}

/// Ends (drops priority and deactivates) an acknowledged interrupt.
#[inline]
pub fn eoi(intid: u32) {
    if is_v2() {
        v2::drop_priority(intid);
        v2::deactivate(intid);
    } else {
        v3::drop_priority(intid);
        v3::deactivate(intid);
    }
}

/// Drops the running priority of an acknowledged interrupt but leaves it active.
#[inline]
pub fn drop_priority(intid: u32) {
    if is_v2() {
        v2::drop_priority(intid)
    } else {
        v3::drop_priority(intid)
    }
}

/// Deactivates an interrupt (also one whose priority was dropped earlier).
#[inline]
pub fn deactivate(intid: u32) {
    if is_v2() {
        v2::deactivate(intid)
    } else {
        v3::deactivate(intid)
    }
}

/// Sends the kick SGI to the physical CPU with affinity `mpidr`.
#[inline]
pub fn kick(mpidr: u64) {
    if is_v2() {
        v2::kick(mpidr)
    } else {
        v3::kick(mpidr)
    }
}

/// Turns the list-register underflow maintenance interrupt on or off.
pub fn set_underflow_irq(on: bool) {
    if is_v2() {
        v2::set_underflow_irq(on)
    } else {
        v3::set_underflow_irq(on)
    }
}

/// Enables SPI `intid` at the distributor and routes it to the CPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64) {
    if is_v2() {
        v2::enable_spi(intid, mpidr)
    } else {
        v3::enable_spi(intid, mpidr)
    }
}

/// Masks SPI `intid` at the distributor.
pub fn mask_spi(intid: u32) {
    if is_v2() {
        v2::spi_enable_bit(intid, false)
    } else {
        v3::mask_spi(intid)
    }
}

/// Unmasks SPI `intid` at the distributor.
pub fn unmask_spi(intid: u32) {
    if is_v2() {
        v2::spi_enable_bit(intid, true)
    } else {
        v3::unmask_spi(intid)
    }
}

/// Number of implemented list registers.
pub fn nr_lrs() -> usize {
    if is_v2() {
        v2::nr_lrs()
    } else {
        v3::nr_lrs()
    }
}

/// Reads the first `lrs.len()` list registers. On entry `lrs` must hold what was last
/// written to them (the vCPU's shadow): a GICv2 LR holds fewer bits, and the rest come
/// from there.
#[inline]
pub fn read_lrs(lrs: &mut [u64]) {
    if is_v2() {
        v2::read_lrs(lrs)
    } else {
        v3::read_lrs(lrs)
    }
}

/// Writes the first `lrs.len()` list registers.
#[inline]
pub fn write_lrs(lrs: &[u64]) {
    if is_v2() {
        v2::write_lrs(lrs)
    } else {
        v3::write_lrs(lrs)
    }
}

/// Zeroes each of the first `lrs.len()` list registers whose value in `lrs` (as just read
/// by [`read_lrs`]) is not zero: an empty one is already clear.
#[inline]
pub fn clear_lrs(lrs: &[u64]) {
    if is_v2() {
        v2::clear_lrs(lrs)
    } else {
        v3::clear_lrs(lrs)
    }
}

/// Writes list register `n` (below [`nr_lrs`]).
#[inline]
pub fn write_lr(n: usize, value: u64) {
    if is_v2() {
        v2::write_lr(n, value)
    } else {
        v3::write_lr(n, value)
    }
}

/// Whether the first `shadow.len()` list registers hold exactly `shadow` (the fast path's
/// "did the guest take or finish an interrupt?").
#[inline]
pub fn lrs_match(shadow: &[u64]) -> bool {
    if is_v2() {
        v2::lrs_match(shadow)
    } else {
        v3::lrs_match(shadow)
    }
}

/// The loaded vCPU's virtual machine control register (`ICH_VMCR_EL2` layout).
pub fn read_vmcr() -> u64 {
    if is_v2() {
        v2::read_vmcr()
    } else {
        v3::read_vmcr()
    }
}

/// Captures the virtual CPU interface state (not the LRs).
pub fn save_hw(s: &mut VgicHwState) {
    if is_v2() {
        v2::save_hw(s)
    } else {
        v3::save_hw(s)
    }
}

/// Loads the virtual CPU interface state.
pub fn restore_hw(s: &VgicHwState) {
    if is_v2() {
        v2::restore_hw(s)
    } else {
        v3::restore_hw(s)
    }
}

/// One GIC version's per-exit operations, for code compiled once per version.
pub trait Hot {
    /// The version.
    const VERSION: GicVersion;
    /// [`ack`].
    fn ack() -> u32;
    /// [`eoi`].
    fn eoi(intid: u32);
    /// [`drop_priority`].
    fn drop_priority(intid: u32);
    /// [`kick`].
    fn kick(mpidr: u64);
    /// [`read_lrs`].
    fn read_lrs(lrs: &mut [u64]);
    /// [`write_lr`].
    fn write_lr(n: usize, value: u64);
    /// [`lrs_match`].
    fn lrs_match(shadow: &[u64]) -> bool;
}

/// The GICv3's [`Hot`] operations.
pub struct V3;
/// The GICv2's [`Hot`] operations.
pub struct V2;

impl Hot for V3 {
    const VERSION: GicVersion = GicVersion::V3;
    #[inline(always)]
    fn ack() -> u32 {
        v3::ack()
    }
    #[inline(always)]
    fn eoi(intid: u32) {
        v3::drop_priority(intid);
        v3::deactivate(intid);
    }
    #[inline(always)]
    fn drop_priority(intid: u32) {
        v3::drop_priority(intid)
    }
    #[inline(always)]
    fn kick(mpidr: u64) {
        v3::kick(mpidr)
    }
    #[inline(always)]
    fn read_lrs(lrs: &mut [u64]) {
        v3::read_lrs(lrs)
    }
    #[inline(always)]
    fn write_lr(n: usize, value: u64) {
        v3::write_lr(n, value)
    }
    #[inline(always)]
    fn lrs_match(shadow: &[u64]) -> bool {
        v3::lrs_match(shadow)
    }
}

impl Hot for V2 {
    const VERSION: GicVersion = GicVersion::V2;
    fn ack() -> u32 {
        v2::ack()
    }
    fn eoi(intid: u32) {
        v2::drop_priority(intid);
        v2::deactivate(intid);
    }
    fn drop_priority(intid: u32) {
        v2::drop_priority(intid)
    }
    fn kick(mpidr: u64) {
        v2::kick(mpidr)
    }
    fn read_lrs(lrs: &mut [u64]) {
        v2::read_lrs(lrs)
    }
    fn write_lr(n: usize, value: u64) {
        v2::write_lr(n, value)
    }
    fn lrs_match(shadow: &[u64]) -> bool {
        v2::lrs_match(shadow)
    }
}
