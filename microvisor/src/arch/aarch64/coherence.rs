//! What this CPU's caches need from the microvisor when it hands memory to a guest:
//! whether stage 2 can force guest RAM write-back (FEAT_S2FWB), and whether instruction
//! fetches need the instruction caches invalidated (no `CTR_EL0.DIC`).
//!
//! With FEAT_S2FWB no data-cache clean is needed for instruction fetches either: the
//! architecture then requires `CLIDR_EL1.{LoUU, LoUIS}` to be 0 (no level of data cache to
//! clean to the point of unification), whatever `CTR_EL0.IDC` says, and KVM relies on the
//! same. QEMU's `max` CPU reports FWB with `IDC` 0.
//! Probed once per CPU at bring-up; every CPU of a board reports the same.

use super::sysreg::{read_ctr_el0, read_id_group3};
use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

/// FEAT_S2FWB (`ID_AA64MMFR2_EL1.FWB`, bits \[43:40\]).
const FORCED_WB: u8 = 1 << 0;
/// `CTR_EL0.DIC` (bit 29): no instruction-cache invalidation needed either.
const DIC: u8 = 1 << 2;

static FEATURES: AtomicU8 = AtomicU8::new(0);

/// Reads the features on this CPU.
pub fn probe() {
    let mut f = 0;
    if (read_id_group3(7, 2) >> 40) & 0xf != 0 {
        f |= FORCED_WB;
    }
    if read_ctr_el0() & (1 << 29) != 0 {
        f |= DIC;
    }
    FEATURES.store(f, Ordering::Relaxed);
}

fn has(bit: u8) -> bool {
    FEATURES.load(Ordering::Relaxed) & bit != 0
}

/// Whether stage 2 can force guest RAM write-back cacheable (`HCR_EL2.FWB`).
pub fn has_forced_wb() -> bool {
    has(FORCED_WB)
}

/// Invalidates every instruction cache of the inner shareable domain, unless the CPU needs
/// none (`CTR_EL0.DIC`): after an image is written where something else may have run.
pub fn invalidate_icache_for_new_code() {
    if has(DIC) {
        return;
    }
    // SAFETY: invalidating instruction caches only drops cached instructions.
    unsafe {
        asm!(
            "dsb ish",
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
