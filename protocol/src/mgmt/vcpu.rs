//! `ctl vcpu-list`: one row per vCPU (`xl vcpu-list`). Since 1.9.

use crate::control::{VcpuInfo, VcpuState};
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// One vCPU of one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuRow {
    /// Domain id.
    pub id: u16,
    /// Domain name.
    pub name: String,
    /// vCPU index in its domain.
    pub vcpu: u16,
    /// The physical CPU it is pinned to (Bulkhead pins every vCPU to one pCPU).
    pub pcpu: u16,
    /// Alone on its pCPU: no scheduler on its path, its WFI not trapped.
    pub exclusive: bool,
    /// Fixed priority on a shared pCPU (higher runs first).
    pub priority: u8,
    /// What it is doing.
    pub state: VcpuState,
    /// Time spent running guest code, in counter ticks.
    pub cpu_ticks: u64,
    /// Traps to the microvisor.
    pub exits: u64,
    /// Budget and period in microseconds on a shared pCPU; `(0, 0)` for none. Since 1.11.
    pub budget_us: (u32, u32),
}

impl VcpuRow {
    /// The row for vCPU `info` of domain `id` called `name`.
    pub fn new(id: u16, name: &str, info: &VcpuInfo) -> Self {
        Self {
            id,
            name: name.into(),
            vcpu: info.vcpu,
            pcpu: info.placement.pcpu,
            exclusive: info.placement.exclusive,
            priority: info.placement.priority,
            state: info.state,
            cpu_ticks: info.cpu_ticks,
            exits: info.exits,
            budget_us: info.budget_us,
        }
    }
}

/// `xl vcpu-list`'s state letters: `r` running or runnable, `b` blocked, `-` offline.
pub const fn state_letter(state: VcpuState) -> &'static str {
    match state {
        VcpuState::Running => "r",
        VcpuState::Blocked => "b",
        VcpuState::Off => "-",
    }
}
