//! The simple Xen hypercalls: xen_version, console_io, hvm_op, vcpu_op and sched_op.

use super::guest::Loaded;
use super::{resolve_domid, XenResult};
use crate::arch;
use crate::guestcopy;
use crate::hyp::{key_parts, Hyp};
use crate::sched::VcpuKey;
use protocol::control::StopReason;
use protocol::ids::DomainId;
use protocol::xen::structs::{
    runstate, SchedPoll, SchedShutdown, VcpuInfo, VcpuRegisterRunstateMemoryArea,
    VcpuRegisterVcpuInfo, XenFeatureInfo, XenHvmParam,
};
use protocol::xen::{
    feature, ConsoleIoOp, HvmOp, HvmParam, SchedOp, ShutdownReason, VcpuOp, XenErrno, XenVersionOp,
};

use crate::fastpath::XEN_VERSION;
/// `XENVER_extraversion`.
const EXTRAVERSION: &[u8; 16] = b"-bulkhead\0\0\0\0\0\0\0";
/// Longest console_io write served in one call (the guest loops for more).
const CONSOLE_IO_MAX: usize = 1024;
/// Most ports one `SCHEDOP_poll` may name.
const POLL_MAX_PORTS: u32 = 128;

/// Nanoseconds of system time (Xen's clock for runstate areas).
pub(super) fn system_time_ns() -> u64 {
    let hz = arch::counter_hz().max(1);
    (u128::from(arch::counter_now()) * 1_000_000_000 / u128::from(hz)) as u64
}

impl Hyp {
    /// `xen_version(cmd, arg)`.
    pub(super) fn xen_version(&mut self, id: DomainId, a: [u64; 5]) -> XenResult {
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| XenVersionOp::try_from(c).ok());
        match op {
            Some(XenVersionOp::Version) => Ok(XEN_VERSION),
            Some(XenVersionOp::Extraversion) => {
                guestcopy::write(&mut Loaded(d), a[1], EXTRAVERSION)
                    .map_err(|_| XenErrno::EFAULT)?;
                Ok(0)
            }
            Some(XenVersionOp::GetFeatures) => {
                let mut mem = Loaded(d);
                let mut fi: XenFeatureInfo =
                    guestcopy::read_struct(&mut mem, a[1]).map_err(|_| XenErrno::EFAULT)?;
                fi.submap = if fi.submap_idx == 0 {
                    // Translated physmap, never direct-mapped; never dom0 to a Xen guest:
                    // our dom0 is not a Xen control domain.
                    (1 << feature::AUTO_TRANSLATED_PHYSMAP) | (1 << feature::NOT_DIRECT_MAPPED)
                } else {
                    0
                };
                guestcopy::write_struct(&mut mem, a[1], &fi).map_err(|_| XenErrno::EFAULT)?;
                Ok(0)
            }
            None => Err(XenErrno::ENOSYS),
        }
    }

    /// `console_io(cmd, count, buffer)`: writes go to the domain's console like its other
    /// output (prefixed, rate-limited); reads return nothing (input reaches Xen guests
    /// through the PV console ring).
    pub(super) fn xen_console_io(&mut self, id: DomainId, a: [u64; 5]) -> XenResult {
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| ConsoleIoOp::try_from(c).ok());
        match op {
            Some(ConsoleIoOp::Write) => {
                let count = usize::try_from(a[1]).map_err(|_| XenErrno::EINVAL)?;
                let mut buf = alloc::vec![0u8; count.min(CONSOLE_IO_MAX)];
                let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
                guestcopy::read(&mut Loaded(d), a[2], &mut buf).map_err(|_| XenErrno::EFAULT)?;
                crate::hyp::fast_slots::write(id, &buf);
                Ok(0)
            }
            Some(ConsoleIoOp::Read) => Ok(0),
            None => Err(XenErrno::ENOSYS),
        }
    }

    /// `hvm_op(op, arg)`: only `HVMOP_get_param` for the store and console parameters.
    pub(super) fn xen_hvm_op(&mut self, id: DomainId, a: [u64; 5]) -> XenResult {
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| HvmOp::try_from(c).ok());
        match op {
            Some(HvmOp::GetParam) => {}
            // Parameters are the builder's to set, never the guest's.
            Some(HvmOp::SetParam) => return Err(XenErrno::EPERM),
            None => return Err(XenErrno::ENOSYS),
        }
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        let mut p: XenHvmParam =
            guestcopy::read_struct(&mut Loaded(d), a[1]).map_err(|_| XenErrno::EFAULT)?;
        let target = resolve_domid(id, p.domid, id == DomainId::DOM0)?;
        let params = self.domain(target).ok_or(XenErrno::ESRCH)?.xen.params;
        p.value = match HvmParam::try_from(p.index) {
            Ok(HvmParam::StorePfn) => params.store_pfn,
            Ok(HvmParam::StoreEvtchn) => params.store_evtchn,
            Ok(HvmParam::ConsolePfn) => params.console_pfn,
            Ok(HvmParam::ConsoleEvtchn) => params.console_evtchn,
            Err(_) => return Err(XenErrno::EINVAL),
        };
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        guestcopy::write_struct(&mut Loaded(d), a[1], &p).map_err(|_| XenErrno::EFAULT)?;
        Ok(0)
    }

    /// `vcpu_op(cmd, vcpuid, arg)`: vcpu_info and runstate area registration.
    pub(super) fn xen_vcpu_op(&mut self, cpu: usize, key: VcpuKey, a: [u64; 5]) -> XenResult {
        let (id, _) = key_parts(key);
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| VcpuOp::try_from(c).ok());
        let d = self.domain_mut(id).ok_or(XenErrno::ESRCH)?;
        let vcpu = usize::try_from(a[1])
            .ok()
            .filter(|&v| v < d.vcpus.len())
            .ok_or(XenErrno::ENOENT)?;
        match op {
            Some(VcpuOp::RegisterVcpuInfo) => {
                let info: VcpuRegisterVcpuInfo =
                    guestcopy::read_struct(&mut Loaded(d), a[2]).map_err(|_| XenErrno::EFAULT)?;
                let size = core::mem::size_of::<VcpuInfo>() as u64;
                if u64::from(info.offset) + size > 4096 {
                    return Err(XenErrno::EINVAL);
                }
                let gpa = info
                    .mfn
                    .checked_mul(4096)
                    .and_then(|g| g.checked_add(u64::from(info.offset)))
                    .ok_or(XenErrno::EINVAL)?;
                // Inside one page (checked above) the domain owns.
                let pa = d.own_page(gpa).ok_or(XenErrno::EINVAL)?;
                let new = super::vcpu_info_window(pa).ok_or(XenErrno::EINVAL)?;
                // Under the event lock, so no sender raises into the old one meanwhile.
                let mut events = super::event_state::lock();
                let pages = events
                    .get()
                    .and_then(|ev| ev.domain_mut(id))
                    .ok_or(XenErrno::ESRCH)?;
                let slot = pages.vcpu_info.get_mut(vcpu).ok_or(XenErrno::EINVAL)?;
                let mut old = [0u8; 48];
                if let Some(prev) = slot {
                    // The previous vcpu_info (this domain's RAM or its shared_info slot).
                    prev.read(0, &mut old).map_err(|_| XenErrno::EINVAL)?;
                }
                // As Xen: mark every word pending so nothing raised before the move is lost
                // (the guest scans and finds what is really pending).
                old[0] = 1;
                old[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
                new.write(0, &old).map_err(|_| XenErrno::EINVAL)?;
                *slot = Some(new);
                drop(events);
                self.inject(id, vcpu, protocol::layout::EVTCHN_PPI, cpu);
                Ok(0)
            }
            Some(VcpuOp::RegisterRunstateMemoryArea) => {
                let area: VcpuRegisterRunstateMemoryArea =
                    guestcopy::read_struct(&mut Loaded(d), a[2]).map_err(|_| XenErrno::EFAULT)?;
                d.xen.runstate[vcpu] = (area.addr != 0).then_some(area.addr);
                if area.addr != 0 && d.xen.runstate_acct[vcpu].entry_ns == 0 {
                    // Running since it came online, as far as the area is concerned.
                    d.xen.runstate_acct[vcpu].entry_ns = system_time_ns();
                }
                if vcpu == key_parts(key).1 {
                    // Xen accepts an area it cannot write yet; so do we.
                    self.runstate_enter(id, vcpu, runstate::RUNNING);
                }
                Ok(0)
            }
            None => Err(XenErrno::ENOSYS),
        }
    }

    /// `sched_op(cmd, arg)`: yield, block, poll and shutdown.
    pub(super) fn xen_sched_op(&mut self, cpu: usize, key: VcpuKey, a: [u64; 5]) -> XenResult {
        let (id, _) = key_parts(key);
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| SchedOp::try_from(c).ok());
        match op {
            Some(SchedOp::Yield) => {
                self.resched[cpu] = true;
                Ok(0)
            }
            Some(SchedOp::Block) => {
                self.wfi(cpu, key);
                Ok(0)
            }
            Some(SchedOp::Poll) => {
                let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
                let poll: SchedPoll =
                    guestcopy::read_struct(&mut Loaded(d), a[1]).map_err(|_| XenErrno::EFAULT)?;
                if poll.nr_ports > POLL_MAX_PORTS {
                    return Err(XenErrno::EINVAL);
                }
                let mut ports = alloc::vec![0u8; poll.nr_ports as usize * 4];
                guestcopy::read(&mut Loaded(d), poll.ports, &mut ports)
                    .map_err(|_| XenErrno::EFAULT)?;
                let ports: alloc::vec::Vec<u32> = ports
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                self.sched_poll(cpu, key, ports, poll.timeout)
            }
            Some(SchedOp::Shutdown) => {
                let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
                let s: SchedShutdown =
                    guestcopy::read_struct(&mut Loaded(d), a[1]).map_err(|_| XenErrno::EFAULT)?;
                let reason = match ShutdownReason::try_from(s.reason) {
                    Ok(ShutdownReason::Poweroff) => StopReason::PowerOff,
                    Ok(ShutdownReason::Reboot) => StopReason::Reboot,
                    Ok(ShutdownReason::Crash | ShutdownReason::Watchdog) => StopReason::Crashed {
                        code: u64::from(s.reason),
                    },
                    Ok(ShutdownReason::Suspend | ShutdownReason::SoftReset) => {
                        return Err(XenErrno::EOPNOTSUPP)
                    }
                    Err(_) => return Err(XenErrno::EINVAL),
                };
                self.stop_domain(id, reason, cpu);
                Ok(0)
            }
            None => Err(XenErrno::ENOSYS),
        }
    }
}
