//! Re-pinning a vCPU at run time (`xl vcpu-pin`, `CapOp::DomainVcpuPin`): a shared vCPU
//! moves to another pCPU's run queue, or changes priority on its own.
//!
//! A vCPU's state may still be in its old CPU's hardware (it is "loaded" there until that
//! CPU needs to run something else). It must never be loaded on two CPUs, so a loaded vCPU
//! leaves its old queue at once but joins the new one only when the old CPU unloads it: the
//! old CPU is kicked, finds it gone from its queue and switches it out ([`Hyp::unload`]
//! then calls [`Hyp::enqueue_moved`]). A vCPU not loaded anywhere moves at once.
//!
//! Not moved: exclusive vCPUs and vCPUs onto exclusive pCPUs (an exclusive placement is
//! the RTOS's guarantee, made at creation), and vCPUs of a domain holding passthrough
//! devices (their physical interrupts are routed to its pCPU).

use super::{key_parts, vcpu_key, Hyp};
use crate::sched::{VcpuKey, QUEUE_CAPACITY};
use protocol::control::{CapError, VcpuPlacement};
use protocol::ids::DomainId;

impl Hyp {
    /// Moves vCPU `v` of `target` to `pcpu` with `priority`.
    pub(super) fn pin_vcpu(
        &mut self,
        target: DomainId,
        v: usize,
        pcpu: usize,
        priority: u8,
        this_cpu: usize,
    ) -> Result<(), CapError> {
        let cpus = self.platform.cpus.as_slice().len();
        let Some(queue) = self.runqueues.get(pcpu).filter(|_| pcpu < cpus) else {
            return Err(CapError::CpuUnavailable);
        };
        if queue.is_exclusive() {
            return Err(CapError::CpuUnavailable);
        }
        let holds_devices = self
            .devices
            .iter()
            .any(|dev| dev.holding.assigned == Some(target));
        let d = self.domain(target).ok_or(CapError::Stale)?;
        let vcpu = d.vcpus.get(v).ok_or(CapError::InvalidArgument)?;
        if d.dying || vcpu.placement.exclusive || vcpu.migrating || holds_devices {
            return Err(CapError::WrongState);
        }
        let old = usize::from(vcpu.placement.pcpu);
        if old != pcpu && self.runqueues[pcpu].len() >= QUEUE_CAPACITY {
            return Err(CapError::NoSlots);
        }
        let key = vcpu_key(target, v);
        let _ = self.runqueues[old].remove(key);
        let loaded_on = self.loaded.iter().position(|l| *l == Some(key));
        let d = self.domain_mut(target).ok_or(CapError::Stale)?;
        d.vcpus[v].placement = VcpuPlacement {
            pcpu: pcpu as u16,
            priority,
            exclusive: false,
        };
        crate::info!(
            "{} ({}) vCPU {v}: pinned to pCPU {pcpu}, priority {priority}",
            target,
            d.name
        );
        match loaded_on {
            Some(cpu) if cpu != pcpu => {
                d.vcpus[v].migrating = true;
                self.kick_cpu(cpu, this_cpu);
            }
            _ => self.enqueue_moved(key, this_cpu),
        }
        self.kick_cpu(old, this_cpu);
        Ok(())
    }

    /// Puts a vCPU that left its old CPU (or changed priority) on the run queue of its
    /// placement, runnable or not as it is.
    pub(super) fn enqueue_moved(&mut self, key: VcpuKey, this_cpu: usize) {
        let (id, v) = key_parts(key);
        let Some(d) = self.domain_mut(id) else { return };
        d.vcpus[v].migrating = false;
        if d.dying {
            return;
        }
        let p = d.vcpus[v].placement;
        let runnable = d.vcpu_runnable(v);
        let cpu = usize::from(p.pcpu);
        // Room was checked when the move was asked for, and exclusive queues are refused:
        // this cannot fail unless a queue filled meanwhile, which the log would show.
        match self.runqueues[cpu].add(key, p.priority, false) {
            Ok(()) => {
                let _ = self.runqueues[cpu].set_runnable(key, runnable);
            }
            Err(e) => crate::info!("{id} vCPU {v}: cannot join pCPU {cpu}: {e:?}"),
        }
        self.kick_cpu(cpu, this_cpu);
    }
}
