//! PSCI 1.1 as the microvisor offers it to guests over `HVC #0`.

/// PSCI function ids we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum PsciFn {
    /// PSCI_VERSION.
    Version = 0x8400_0000,
    /// CPU_SUSPEND (SMC64).
    CpuSuspend = 0xC400_0001,
    /// CPU_OFF.
    CpuOff = 0x8400_0002,
    /// CPU_ON (SMC64).
    CpuOn = 0xC400_0003,
    /// AFFINITY_INFO (SMC64).
    AffinityInfo = 0xC400_0004,
    /// MIGRATE_INFO_TYPE.
    MigrateInfoType = 0x8400_0006,
    /// SYSTEM_OFF.
    SystemOff = 0x8400_0008,
    /// SYSTEM_RESET.
    SystemReset = 0x8400_0009,
    /// PSCI_FEATURES.
    Features = 0x8400_000A,
}

impl PsciFn {
    /// Decodes a function id, accepting the SMC32 forms of the SMC64 calls.
    pub fn from_id(fid: u64) -> Option<Self> {
        Some(match u32::try_from(fid).ok()? {
            0x8400_0000 => Self::Version,
            0xC400_0001 | 0x8400_0001 => Self::CpuSuspend,
            0x8400_0002 => Self::CpuOff,
            0xC400_0003 | 0x8400_0003 => Self::CpuOn,
            0xC400_0004 | 0x8400_0004 => Self::AffinityInfo,
            0x8400_0006 => Self::MigrateInfoType,
            0x8400_0008 => Self::SystemOff,
            0x8400_0009 => Self::SystemReset,
            0x8400_000A => Self::Features,
            _ => return None,
        })
    }
    /// Whether `fid` is in the PSCI range at all (standard secure service, 0x00..0x1F).
    pub fn in_range(fid: u64) -> bool {
        matches!(fid as u32 & 0xBFFF_FFE0, 0x8400_0000)
    }
}

/// PSCI return codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum PsciStatus {
    /// Success.
    Success = 0,
    /// Function not supported.
    NotSupported = -1,
    /// Bad parameters (unknown target CPU).
    InvalidParameters = -2,
    /// Operation denied.
    Denied = -3,
    /// Target already on.
    AlreadyOn = -4,
    /// Target being turned on.
    OnPending = -5,
    /// Internal failure.
    InternalFailure = -6,
    /// Target not present.
    NotPresent = -7,
    /// Target disabled.
    Disabled = -8,
    /// Entry point outside the guest's memory.
    InvalidAddress = -9,
}

impl PsciStatus {
    /// As returned in `x0` (sign-extended).
    pub const fn to_reg(self) -> u64 {
        self as i32 as i64 as u64
    }
}

/// PSCI version we report: 1.1.
pub const PSCI_VERSION_1_1: u64 = 0x0001_0001;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_calling_conventions() {
        assert_eq!(PsciFn::from_id(0xC400_0003), Some(PsciFn::CpuOn));
        assert_eq!(PsciFn::from_id(0x8400_0003), Some(PsciFn::CpuOn));
        assert_eq!(PsciFn::from_id(0x8400_0005), None);
        assert!(PsciFn::in_range(0x8400_0005));
        assert!(PsciFn::in_range(0xC400_0003));
        assert!(!PsciFn::in_range(0xC600_0000));
        assert_eq!(PsciStatus::InvalidParameters.to_reg(), (-2i64) as u64);
    }
}
