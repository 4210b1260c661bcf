//! PSCI calls over `HVC #0`: start/stop vCPUs, power the domain off or reset it.

use protocol::psci::PsciStatus;

/// Decodes a PSCI return value in `x0`; an unknown value is `InternalFailure`.
pub fn status(x0: u64) -> Result<(), PsciStatus> {
    Err(match x0 as i64 {
        0 => return Ok(()),
        -1 => PsciStatus::NotSupported,
        -2 => PsciStatus::InvalidParameters,
        -3 => PsciStatus::Denied,
        -4 => PsciStatus::AlreadyOn,
        -5 => PsciStatus::OnPending,
        -7 => PsciStatus::NotPresent,
        -8 => PsciStatus::Disabled,
        -9 => PsciStatus::InvalidAddress,
        _ => PsciStatus::InternalFailure,
    })
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::status;
    use crate::arch;
    use protocol::psci::{PsciFn, PsciStatus};

    /// PSCI_VERSION.
    pub fn version() -> u64 {
        arch::hvc(PsciFn::Version as u64, [0; 6])[0]
    }

    /// CPU_ON: starts the vCPU whose MPIDR is `mpidr` at `entry` (EL1h, MMU off) with
    /// `x0 = context`. Use [`crate::smp::start_vcpu`] to run Rust code there.
    pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciStatus> {
        status(arch::hvc(PsciFn::CpuOn as u64, [mpidr, entry, context, 0, 0, 0])[0])
    }

    /// CPU_OFF for the calling vCPU; returns only on failure.
    pub fn cpu_off() -> PsciStatus {
        match status(arch::hvc(PsciFn::CpuOff as u64, [0; 6])[0]) {
            Ok(()) => PsciStatus::InternalFailure,
            Err(e) => e,
        }
    }

    /// SYSTEM_OFF: ends the domain (reported as powered off). Never returns.
    pub fn system_off() -> ! {
        arch::hvc(PsciFn::SystemOff as u64, [0; 6]);
        park()
    }

    /// SYSTEM_RESET: asks the controller to reboot the domain. Never returns.
    pub fn system_reset() -> ! {
        arch::hvc(PsciFn::SystemReset as u64, [0; 6]);
        park()
    }

    /// Parks the calling vCPU forever (after a PSCI call that should not have returned).
    pub fn park() -> ! {
        loop {
            arch::wfe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(status(0), Ok(()));
        assert_eq!(
            status(PsciStatus::AlreadyOn.to_reg()),
            Err(PsciStatus::AlreadyOn)
        );
        assert_eq!(
            status(PsciStatus::InvalidAddress.to_reg()),
            Err(PsciStatus::InvalidAddress)
        );
        assert_eq!(status(17), Err(PsciStatus::InternalFailure));
    }
}
