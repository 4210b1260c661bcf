//! `vcpu-pin` and `sched-fp --budget-us/--period-us`: where a guest's vCPUs run and what
//! the fixed-priority scheduler gives them, with the microvisor's refusals in words.

use super::DomainOps;
use alloc::format;
use alloc::string::String;
use protocol::control::{budget_valid, CapError, BUDGET_MIN_US, BUDGET_PERIOD_MAX_US};
use protocol::ids::DomainId;
use protocol::mgmt::MgmtError;

/// `vcpu-pin`: re-pins shared vCPU `vcpu` of domain `id` to `pcpu`, keeping its priority
/// unless one is given; the microvisor's refusals in words.
pub(super) fn vcpu_pin(
    ops: &mut impl DomainOps,
    id: u16,
    vcpu: u16,
    pcpu: u16,
    priority: Option<u8>,
) -> Result<(), MgmtError> {
    if id == DomainId::DOM0.0 {
        return Err(MgmtError::Dom0Protected);
    }
    let rows = ops.vcpus(id)?;
    let Some(row) = rows.iter().find(|r| r.vcpu == vcpu) else {
        return Err(MgmtError::Refused {
            why: format!("no vCPU {vcpu}: the domain has {}", rows.len()),
        });
    };
    let exclusive = row.placement.exclusive;
    let priority = priority.unwrap_or(row.placement.priority);
    ops.vcpu_pin(id, vcpu, pcpu, priority).map_err(|e| match e {
        CapError::CpuUnavailable if exclusive => MgmtError::Refused {
            why: format!(
                "pCPU {pcpu} does not exist or is in use: vCPU {vcpu} holds pCPU {} exclusively and moves only to a pCPU no other vCPU uses",
                row.placement.pcpu
            ),
        },
        CapError::CpuUnavailable => MgmtError::Refused {
            why: format!("pCPU {pcpu} does not exist or is held exclusively"),
        },
        CapError::WrongState => MgmtError::Refused {
            why: String::from(
                "the domain holds passthrough devices (their interrupts are routed to its pCPU), or the vCPU is still moving after an earlier vcpu-pin (try again)",
            ),
        },
        e => MgmtError::Capability(e),
    })
}

/// `sched-fp --budget-us B --period-us P`: gives shared vCPU `vcpu` of domain `id` a budget
/// per period (`(0, 0)`: none).
pub(super) fn vcpu_budget(
    ops: &mut impl DomainOps,
    id: u16,
    vcpu: u16,
    budget_us: (u32, u32),
) -> Result<(), MgmtError> {
    if id == DomainId::DOM0.0 {
        return Err(MgmtError::Dom0Protected);
    }
    let (budget, period) = budget_us;
    if !budget_valid(budget, period) {
        return Err(MgmtError::Refused {
            why: format!(
                "budget {budget} us per {period} us: give {BUDGET_MIN_US} <= budget <= period <= {BUDGET_PERIOD_MAX_US} us, or 0/0 for none"
            ),
        });
    }
    let rows = ops.vcpus(id)?;
    let Some(row) = rows.iter().find(|r| r.vcpu == vcpu) else {
        return Err(MgmtError::Refused {
            why: format!("no vCPU {vcpu}: the domain has {}", rows.len()),
        });
    };
    if row.placement.exclusive {
        return Err(MgmtError::Refused {
            why: format!(
                "vCPU {vcpu} holds pCPU {} exclusively: it has no budget (nothing else runs there)",
                row.placement.pcpu
            ),
        });
    }
    ops.vcpu_budget(id, vcpu, budget_us).map_err(|e| match e {
        CapError::WrongState => MgmtError::Refused {
            why: String::from("the vCPU is exclusive or its domain is going away"),
        },
        e => MgmtError::Capability(e),
    })
}
