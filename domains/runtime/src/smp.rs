//! Secondary vCPUs: start one running a Rust function on its own stack.
//!
//! The boot asm gives each vCPU the stack slice and message page indexed by its MPIDR Aff0
//! (the microvisor sets Aff0 = vCPU index), so `current_vcpu()` is also the index into every
//! per-vCPU table of the runtime.

/// Index of the calling vCPU (MPIDR_EL1 Aff0).
#[cfg(target_os = "none")]
pub fn current_vcpu() -> usize {
    (crate::arch::mpidr() & 0xFF) as usize
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use crate::{arch, psci};
    use protocol::layout::MAX_VCPUS;
    use protocol::psci::PsciStatus;

    /// What each secondary vCPU runs once started.
    type Entries = [Option<fn()>; MAX_VCPUS];
    static ENTRIES: spin::Mutex<Entries> = spin::Mutex::new([None; MAX_VCPUS]);

    /// Starts vCPU `vcpu` (PSCI CPU_ON) running `f` at EL1 with the MMU on, its own stack and
    /// IRQs masked. When `f` returns the vCPU turns itself off.
    pub fn start_vcpu(vcpu: usize, f: fn()) -> Result<(), PsciStatus> {
        if vcpu >= MAX_VCPUS {
            return Err(PsciStatus::InvalidParameters);
        }
        arch::without_interrupts(|| ENTRIES.lock()[vcpu] = Some(f));
        let r = psci::cpu_on(vcpu as u64, arch::secondary_entry_ipa(), vcpu as u64);
        if r.is_err() {
            arch::without_interrupts(|| ENTRIES.lock()[vcpu] = None);
        }
        r
    }

    /// Rust entry of a secondary vCPU (called by the boot asm).
    pub(crate) fn secondary_main(vcpu: usize) {
        let entry =
            arch::without_interrupts(|| ENTRIES.lock().get_mut(vcpu).and_then(Option::take));
        if let Some(f) = entry {
            f();
        }
        let e = psci::cpu_off();
        crate::console::emergency(format_args!("vcpu{vcpu}: CPU_OFF failed: {e:?}\n"));
        psci::park()
    }
}
