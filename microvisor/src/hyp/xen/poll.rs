//! `SCHEDOP_poll` (Xen's `do_poll`): a vCPU blocks until one of the ports it names becomes
//! pending, masked or not, or until its timeout, or until an interrupt is deliverable to
//! it as for a trapped WFI. The wait's state is in [`crate::poll_wait`]; here it meets the
//! event channels and the EL2 timer.
//!
//! - **Ports.** The vCPU is announced as a poller in its domain's event state in the same
//!   step as the last look at its ports ([`Hyp::poll_announce`]), so a send either
//!   happened before (the poll returns at once) or sees the poller: a send under the global
//!   lock wakes it ([`Hyp::wake_pollers`]); a fast send that made a port pending posts
//!   [`crate::mailbox::POLL`] to the poller's CPU, whose next locked pass wakes it if one
//!   of its ports is pending ([`Hyp::wake_ready_pollers`]). A poller moved to another
//!   pCPU has its ports looked at when it arrives there (`Hyp::enqueue_moved`): a send
//!   just before the move asked its old CPU, which no longer looks at it.
//! - **Timeout.** While some domain polls with a timeout ([`Hyp::poll_timed`]), the EL2
//!   timer of each CPU is also armed for the earliest deadline of its vCPUs blocked in a
//!   poll, loaded or not ([`Hyp::earliest_poll_deadline`]), and its expiry wakes those
//!   whose deadline passed ([`Hyp::end_expired_polls`]).
//! - **Wake.** Whatever wakes the vCPU ends the poll ([`Hyp::wake_mask`] forgets it and
//!   withdraws the poller), so later sends to that domain ask nobody to look.

use super::XenResult;
use crate::arch;
use crate::hyp::{domain_slots, key_parts, Hyp};
use crate::poll_wait::{deadline_ticks, earlier, PollWait};
use crate::sched::VcpuKey;
use alloc::vec::Vec;
use protocol::ids::DomainId;

impl Hyp {
    /// vCPU `key` on CPU `cpu` polls `ports` (already read and bounded) until Xen timeout
    /// `timeout_ns` (absolute system time in ns, 0 for none). Always 0 to the guest, as
    /// Xen's: it looks at its ports when it runs again.
    pub(super) fn sched_poll(
        &mut self,
        cpu: usize,
        key: VcpuKey,
        ports: Vec<u32>,
        timeout_ns: u64,
    ) -> XenResult {
        let (id, v) = key_parts(key);
        let deadline = deadline_ticks(timeout_ns, arch::counter_hz());
        if !self.poll_announce(id, v, &ports)? {
            return Ok(0);
        }
        if deadline.is_some_and(|t| t <= arch::counter_now()) {
            Self::poll_withdraw(id, v);
            return Ok(0);
        }
        self.wfi(cpu, key);
        let Some(vcpu) = self.domain_mut(id).and_then(|d| d.vcpus.get_mut(v)) else {
            Self::poll_withdraw(id, v);
            return Ok(0);
        };
        if !vcpu.blocked {
            // Something was deliverable already: the poll ends as a WFI would.
            Self::poll_withdraw(id, v);
            return Ok(0);
        }
        vcpu.poll = Some(PollWait::new(ports, deadline));
        if deadline.is_some() {
            self.poll_timed |= 1u32.checked_shl(id.0.into()).unwrap_or(0);
        }
        Ok(0)
    }

    /// `port` of domain `id` became pending while it has pollers: wakes those polling it
    /// (`cpu` is this CPU).
    pub(super) fn wake_pollers(&mut self, id: DomainId, port: u32, cpu: usize) {
        let Some(d) = self.domain(id) else { return };
        let mut mask = 0u32;
        for (v, vcpu) in d.vcpus.iter().enumerate() {
            if vcpu.poll.as_ref().is_some_and(|p| p.wants(port)) {
                mask |= 1u32.checked_shl(v as u32).unwrap_or(0);
            }
        }
        self.wake_mask(id, mask, cpu);
    }

    /// Wakes the vCPUs placed on `cpu` blocked in a poll one of whose ports is pending
    /// (a fast send on another CPU raised it and posted [`crate::mailbox::POLL`] here).
    pub(in crate::hyp) fn wake_ready_pollers(&mut self, cpu: usize) {
        for slot in domain_slots(self.placed_on(cpu)) {
            let Some(d) = self.domains.get(slot).and_then(|d| d.as_deref()) else {
                continue;
            };
            let mut ready = 0u32;
            for (v, vcpu) in d.vcpus.iter().enumerate() {
                let Some(p) = vcpu.poll.as_ref() else {
                    continue;
                };
                if usize::from(vcpu.placement.pcpu) == cpu && Self::poll_ready(d.id, p) {
                    ready |= 1u32.checked_shl(v as u32).unwrap_or(0);
                }
            }
            let id = d.id;
            self.wake_mask(id, ready, cpu);
        }
    }

    /// The earliest poll deadline of the vCPUs placed on `cpu` (loaded there or not), if
    /// some domain polls with a timeout; for the EL2 timer.
    pub(in crate::hyp) fn earliest_poll_deadline(&self, cpu: usize) -> Option<u64> {
        let mut earliest = None;
        for slot in domain_slots(self.poll_timed & self.placed_on(cpu)) {
            let Some(d) = self.domains.get(slot).and_then(|d| d.as_deref()) else {
                continue;
            };
            for vcpu in d.vcpus.iter() {
                if usize::from(vcpu.placement.pcpu) == cpu {
                    let t = vcpu.poll.as_ref().and_then(PollWait::deadline);
                    earliest = earlier(earliest, t);
                }
            }
        }
        earliest
    }

    /// The EL2 timer fired on `cpu`: wakes its vCPUs whose poll timed out, and forgets the
    /// domains that no longer poll with a timeout on any CPU.
    pub(in crate::hyp) fn end_expired_polls(&mut self, cpu: usize) {
        let now = arch::counter_now();
        for slot in domain_slots(self.poll_timed) {
            let Some(d) = self.domains.get(slot).and_then(|d| d.as_deref()) else {
                self.poll_timed &= !(1u32 << slot);
                continue;
            };
            let (id, mut expired, mut timed) = (d.id, 0u32, false);
            for (v, vcpu) in d.vcpus.iter().enumerate() {
                let Some(p) = vcpu.poll.as_ref().filter(|p| p.deadline().is_some()) else {
                    continue;
                };
                if usize::from(vcpu.placement.pcpu) == cpu && p.expired(now) {
                    expired |= 1u32.checked_shl(v as u32).unwrap_or(0);
                } else {
                    timed = true;
                }
            }
            if !timed {
                self.poll_timed &= !(1u32 << slot);
            }
            self.wake_mask(id, expired, cpu);
        }
    }
}
