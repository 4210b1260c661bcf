//! Runstate accounting for `VCPUOP_register_runstate_memory_area`: time per `RUNSTATE_*`
//! state, as the guest's area shows it (the microvisor writes it on every vCPU switch).
#![forbid(unsafe_code)]

use protocol::xen::structs::VcpuRunstateInfo;

/// One vCPU's accounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunstateAcct {
    /// Current `RUNSTATE_*`.
    pub state: i32,
    /// System time (ns) it entered `state`.
    pub entry_ns: u64,
    /// Nanoseconds spent in each state before `entry_ns`.
    pub time: [u64; 4],
}

impl RunstateAcct {
    /// Moves to `state` at `now`, charging the time since the last change to the old state.
    pub fn enter(&mut self, state: i32, now: u64) -> VcpuRunstateInfo {
        let old = usize::try_from(self.state).unwrap_or(0).min(3);
        self.time[old] = self.time[old].saturating_add(now.saturating_sub(self.entry_ns));
        self.state = state;
        self.entry_ns = now;
        VcpuRunstateInfo {
            state,
            _pad0: 0,
            state_entry_time: now,
            time: self.time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::xen::structs::runstate;

    #[test]
    fn time_is_charged_to_the_state_left() {
        // Registered at 100 while running.
        let mut a = RunstateAcct {
            entry_ns: 100,
            ..RunstateAcct::default()
        };
        let i = a.enter(runstate::RUNNABLE, 350);
        assert_eq!(i.time[runstate::RUNNING as usize], 250);
        let i = a.enter(runstate::RUNNING, 400);
        assert_eq!(i.time[runstate::RUNNABLE as usize], 50);
        assert_eq!(i.state_entry_time, 400);
    }
}
