//! CPU-level operations: per-CPU setup of EL2, PSCI calls to firmware, timers, barriers,
//! cache and TLB maintenance, waiting.

use super::sysreg::*;
use super::vectors::GuestLoaded;
use core::arch::asm;

/// `HCR_EL2` bits we use.
pub mod hcr {
    /// Stage-2 translation on.
    pub const VM: u64 = 1 << 0;
    /// Set/way cache ops become clean+invalidate.
    pub const SWIO: u64 = 1 << 1;
    /// Physical FIQs go to EL2.
    pub const FMO: u64 = 1 << 3;
    /// Physical IRQs go to EL2; virtual IRQs are delivered.
    pub const IMO: u64 = 1 << 4;
    /// SErrors go to EL2.
    pub const AMO: u64 = 1 << 5;
    /// Broadcast TLB/cache maintenance to the inner shareable domain (vCPUs on many CPUs).
    pub const FB: u64 = 1 << 9;
    /// Barriers upgraded to inner shareable.
    pub const BSU_IS: u64 = 1 << 10;
    /// Trap WFI.
    pub const TWI: u64 = 1 << 13;
    /// Trap reads of the feature ID registers (group 3) so features can be hidden.
    pub const TID3: u64 = 1 << 18;
    /// Trap SMC.
    pub const TSC: u64 = 1 << 19;
    /// EL1 is AArch64.
    pub const RW: u64 = 1 << 31;
    /// Stage 2 may force normal memory write-back (FEAT_S2FWB): set exactly while a table
    /// encoded for it is installed (`Vttbr::forced_wb`).
    pub const FWB: u64 = 1 << 46;
    /// Every guest gets these.
    pub const GUEST_BASE: u64 = VM | SWIO | FMO | IMO | AMO | FB | BSU_IS | TID3 | TSC | RW;
}

/// Sets up this CPU's EL2 state: vectors, timer, debug and PMU traps, FP policy.
///
/// # Safety
/// Must run once per CPU at EL2 before any guest runs there.
pub unsafe fn init_el2(vtcr: u64) {
    // SAFETY: the vector table is 2 KiB aligned code; the other values keep EL2 in control
    // (timer traps).
    unsafe {
        write_vbar_el2(super::vectors::vector_table_addr());
        // EL1 may read the physical counter; the physical timer itself is trapped.
        // Event stream on (EVNTEN, bit 2; every 2^(10+1) ticks) so a CPU waiting in WFE for
        // a lock always wakes within microseconds even if an SEV was missed.
        write_cnthctl_el2(1 | (1 << 2) | (10 << 4));
        write_cntvoff_el2(0);
        // No FP/SIMD traps: the microvisor is built soft-float and never touches them.
        write_cptr_el2(0x33ff);
        write_vtcr_el2(vtcr);
        write_hcr_el2(hcr::RW);
    }
    isb();
    // Debug and PMU traps (`MDCR_EL2`), then per vCPU as it is loaded.
    super::monitors::init();
    probe_ras();
    super::coherence::probe();
}

/// Loads the stage-2 table and trap configuration for the vCPU about to run; the result
/// is what [`super::vectors::run_guest`] needs to enter it (see there). The caller keeps
/// it while the vCPU stays loaded and `vttbr`'s table stays live, and drops it before the
/// table can be freed.
pub fn load_guest_config(hcr_value: u64, vttbr: crate::mm::pagetable::Vttbr) -> GuestLoaded {
    let fwb = if vttbr.forced_wb() { hcr::FWB } else { 0 };
    // SAFETY: `vttbr` is a stage-2 table the table builder made (only it makes a `Vttbr`),
    // so the guest reaches only what its domain was given; `hcr::GUEST_BASE` is always set
    // (stage 2 on, interrupts routed to EL2, the traps EL2 relies on), the caller may only
    // add traps; FWB follows the table's own encoding of normal memory.
    unsafe {
        write_hcr_el2(hcr_value | hcr::GUEST_BASE | fwb);
        write_vttbr_el2(vttbr.raw());
    }
    isb();
    // The rest of what entering relies on, `VBAR_EL2` and `VTCR_EL2`, `init_el2` wrote on
    // this CPU before there was a `Hyp` to call this (see `GuestLoaded`).
    GuestLoaded::new()
}

/// Instruction synchronization barrier.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Full-system data synchronization barrier.
#[inline(always)]
pub fn dsb_sy() {
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Inner-shareable store barrier: earlier stores (a block's zeroes, a table entry) are
/// visible to every CPU and table walker before later ones.
#[inline(always)]
pub fn dsb_ishst() {
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt (taken or pending, even while masked at EL2).
pub fn wait_for_interrupt() {
    // SAFETY: WFI only suspends the CPU.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// Current physical counter value.
pub fn counter_now() -> u64 {
    isb();
    read_cntpct_el0()
}

/// Counter frequency in Hz.
pub fn counter_hz() -> u64 {
    read_cntfrq_el0()
}

/// Arms (or with `None` disarms) this CPU's EL2 physical timer.
pub fn set_hyp_timer(deadline: Option<u64>) {
    // SAFETY: the hypervisor timer's interrupt is handled by the run loop (PPI 26).
    unsafe {
        match deadline {
            Some(t) => {
                write_cnthp_cval_el2(t);
                write_cnthp_ctl_el2(1);
            }
            None => write_cnthp_ctl_el2(0),
        }
    }
    isb();
}

/// This CPU's affinity (`MPIDR_EL1` without the U/MT/RES1 bits).
pub fn mpidr() -> u64 {
    read_mpidr_el1() & 0xff_00ff_ffff
}

/// Asks PSCI firmware (over SMC) to start physical CPU `mpidr` at `entry` with `x0 = ctx`.
/// Returns the PSCI status.
pub fn psci_cpu_on(mpidr: u64, entry: u64, ctx: u64) -> i64 {
    let mut x0: u64 = 0xC400_0003;
    // SAFETY: CPU_ON only starts another CPU at `entry`, code of this image that sets up its
    // own stack; it does not touch this CPU's memory.
    unsafe {
        asm!("smc #0", inout("x0") x0, in("x1") mpidr, in("x2") entry, in("x3") ctx,
             options(nostack));
    }
    x0 as i64
}

/// Asks PSCI firmware to power the machine off.
pub fn psci_system_off() -> ! {
    // SAFETY: SYSTEM_OFF ends the machine; nothing runs afterwards.
    unsafe { asm!("smc #0", in("x0") 0x8400_0008u64, options(nostack)) };
    loop {
        wait_for_interrupt();
    }
}

/// Cleans data-cache lines covering `[pa, pa + len)` to the point of coherency, so a guest
/// running with its MMU off (non-cacheable accesses) sees what the microvisor wrote.
///
/// Four lines per round while they fit, as `mem::zero` does with `DC ZVA`: a domain's
/// build cleans its whole RAM, and under `-icount` the loop's own instructions are boot
/// time (one round per line was a third of a 512 MiB Linux guest's build).
pub fn clean_dcache_range(pa: u64, len: u64) {
    let line: u64 = 64;
    let mut addr = pa & !(line - 1);
    let end = pa.saturating_add(len);
    const ROUND: u64 = 4;
    while addr.saturating_add(ROUND * line) <= end {
        // SAFETY: as below, for the `ROUND` lines from `addr`, all below `end`.
        unsafe {
            asm!(
                ".rept {n}",
                "dc cvac, {a}",
                "add {a}, {a}, {l}",
                ".endr",
                n = const ROUND,
                a = inout(reg) addr,
                l = in(reg) line,
                options(nostack, preserves_flags),
            );
        }
    }
    while addr < end {
        // SAFETY: cleaning a line writes back data, never changes its value; the address is
        // identity-mapped RAM.
        unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    dsb_sy();
}

/// Invalidates every EL1&0 stage-1 and stage-2 TLB entry on every CPU (all VMIDs): used when
/// a VMID is recycled.
pub fn tlb_flush_all_guests() {
    // SAFETY: invalidation only drops cached translations.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi alle1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates, on every CPU, the stage-1 and stage-2 TLB entries of the one guest whose
/// stage 2 is `vttbr` (its table root and VMID), and no other guest's, and waits until that
/// is complete everywhere.
///
/// Why `TLBI VMALLS12E1IS` and not `TLBI IPAS2E1IS` per page (Arm ARM, D8.13 / the TLBI
/// descriptions): both act on the VMID in *this* CPU's `VTTBR_EL2`, so neither spares
/// loading the target's VTTBR. `IPAS2E1IS` removes only stage-2-only entries; a TLB may also
/// hold combined stage 1+2 entries (VA to PA) for that IPA, which only a stage-1 TLBI can
/// remove, and EL2 does not know the guest's VAs, so per-IPA invalidation must be followed
/// by `TLBI VMALLE1IS` anyway: a batch of n pages would cost n+1 broadcasts where this is
/// one. The price, refilling this guest's other stage-2 walks, falls on that guest alone.
///
/// In the common case (a hypercall editing its caller's own stage 2) the VTTBR is already
/// loaded and no swap is needed; otherwise this CPU loads the guest's VTTBR for the
/// instruction and puts its own back. EL2 does not translate through either.
pub fn tlb_flush_guest(vttbr: u64) {
    let saved = read_vttbr_el2();
    if saved == vttbr {
        // SAFETY: invalidation only drops cached translations; DSB ISHST first makes the
        // caller's table writes visible to every walker, DSB ISH waits for completion on
        // every CPU in the Inner Shareable domain.
        unsafe {
            asm!(
                "dsb ishst",
                "tlbi vmalls12e1is",
                "dsb ish",
                "isb",
                options(nostack, preserves_flags)
            )
        };
        return;
    }
    // SAFETY: `vttbr` is a real stage 2 (root and VMID) of a live domain, so even a
    // speculative walk in the window reads that guest's own valid tables; invalidation only
    // drops cached translations; the saved VTTBR is restored before any guest runs here.
    unsafe {
        asm!(
            "dsb ishst",
            "msr vttbr_el2, {v}",
            "isb",
            "tlbi vmalls12e1is",
            "dsb ish",
            "msr vttbr_el2, {s}",
            "isb",
            v = in(reg) vttbr,
            s = in(reg) saved,
            options(nostack, preserves_flags)
        )
    };
}

/// Whether this CPU's `VTTBR_EL2` is `vttbr` (that guest's stage 2 is the one loaded here).
pub fn vttbr_loaded(vttbr: u64) -> bool {
    read_vttbr_el2() == vttbr
}

/// [`tlb_flush_guest`] on this CPU only, for the guest whose stage 2 is loaded here: when
/// no other CPU can hold its translations (see [`crate::tlb_reach`]), a broadcast would
/// only make every other CPU wait for nothing.
#[inline(never)]
pub fn tlb_flush_loaded_guest_here() {
    // SAFETY: invalidation only drops cached translations; DSB ISHST first makes the
    // caller's table writes visible to this CPU's walker, DSB NSH waits for this CPU's
    // invalidation to complete.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Whether this CPU implements FEAT_RAS (so ESB defers a pending SError into `DISR_EL1`);
/// probed by [`probe_ras`] at boot. Without it, SErrors still reach EL2 as `SError` exits.
static RAS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Probes FEAT_RAS (`ID_AA64PFR0_EL1.RAS`, bits \[31:28\]).
pub fn probe_ras() {
    let ras = (read_id_group3(4, 0) >> 28) & 0xf != 0;
    RAS.store(ras, core::sync::atomic::Ordering::Relaxed);
}

/// Error synchronisation at a guest exit: ESB (EL2 runs with SErrors masked) turns an
/// SError the guest's accesses left pending into a record in `DISR_EL1`, which is read
/// and cleared here. Returns the record if there was one.
#[inline]
pub fn take_deferred_serror() -> Option<u64> {
    if !RAS.load(core::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let disr: u64;
    // SAFETY: ESB (HINT #16) and reading DISR_EL1 (S3_0_C12_C1_1) only synchronise and
    // report errors; FEAT_RAS was checked, so the register exists.
    unsafe {
        asm!(
            "hint #16",
            "isb",
            "mrs {d}, s3_0_c12_c1_1",
            d = out(reg) disr,
            options(nostack, preserves_flags)
        )
    };
    if disr & (1 << 31) == 0 {
        return None;
    }
    // SAFETY: clearing the record we just read.
    unsafe {
        asm!(
            "msr s3_0_c12_c1_1, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
    Some(disr)
}

/// Installs the EL2 identity map and turns on the MMU and caches.
///
/// # Safety
/// `root` must be a valid EL2 stage-1 table (format `tcr`, attributes `mair`) that
/// identity-maps this image, its stacks, the per-CPU blocks and every device EL2 touches.
pub unsafe fn enable_el2_mmu(root: u64, tcr: u64, mair: u64) {
    // SAFETY: per the contract; TLBs are invalidated before the tables take effect.
    unsafe {
        write_mair_el2(mair);
        write_tcr_el2(tcr);
        write_ttbr0_el2(root);
        asm!(
            "dsb sy",
            "tlbi alle2",
            "dsb sy",
            "isb",
            options(nostack, preserves_flags)
        );
        // M | C | I plus SCTLR_EL2's RES1 bits.
        write_sctlr_el2(0x30c5_0830 | 1 | (1 << 2) | (1 << 12));
    }
    isb();
}

/// Waits for an event (SEV from another CPU, the event stream, or an interrupt).
pub fn wait_for_event() {
    // SAFETY: WFE only suspends the CPU.
    unsafe { asm!("wfe", options(nostack, preserves_flags)) };
}

/// Wakes CPUs waiting in WFE.
pub fn send_event() {
    // SAFETY: SEV only signals an event.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

/// Translates a virtual address of the vCPU whose EL1 context is loaded on this CPU through
/// its stage-1 tables (`AT S1E1R`/`AT S1E1W`) to a guest-physical address. `None` if the
/// guest's tables do not map it (or not writably, for `write`). The guest's `PAR_EL1` is
/// preserved. Stage 2 is not consulted: the caller checks the result against the domain's
/// memory, so a guest cannot make EL2 touch anything it does not own.
pub fn translate_guest_va(va: u64, write: bool) -> Option<u64> {
    let saved = read_par_el1();
    // SAFETY: address translation instructions only write PAR_EL1 (restored below); run at
    // EL2 they report faults in PAR_EL1 instead of taking an exception.
    unsafe {
        if write {
            asm!("at s1e1w, {}", in(reg) va, options(nostack, preserves_flags));
        } else {
            asm!("at s1e1r, {}", in(reg) va, options(nostack, preserves_flags));
        }
    }
    isb();
    let par = read_par_el1();
    write_par_el1(saved);
    if par & 1 != 0 {
        return None;
    }
    Some((par & 0x000F_FFFF_FFFF_F000) | (va & 0xFFF))
}
