//! Domain and vCPU identifiers.

use serde::{Deserialize, Serialize};

/// A domain id. 0 is dom0; ids are reused only by a restart of the same domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct DomainId(pub u16);

impl DomainId {
    /// The orchestrator domain.
    pub const DOM0: DomainId = DomainId(0);
}

impl core::fmt::Display for DomainId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "d{}", self.0)
    }
}

/// A vCPU index within its domain (0-based; vCPU n has MPIDR Aff0 = n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct VcpuId(pub u16);

impl core::fmt::Display for VcpuId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "v{}", self.0)
    }
}
