//! The capability protocol (`protocol::control`): one function per operation, each checking
//! the caller's capability and rights before acting.

use super::domain::{cause, BuildRequest};
use super::{key_parts, Hyp};
use crate::arch::context::GuestRegs;
use crate::arch::phys::{self, Window};
use crate::captable::{Capability, Object};
use crate::console_line::register_text;
use crate::sched::VcpuKey;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::cap::{CapDetail, CapHandle, CapInfo, CapKind, Rights};
use protocol::control::{
    CapError, CapOp, DomainInfo, DomainSpec, FaultKind, ShutdownKind, StopReason, VcpuInfo,
    VcpuState, Version, CONSOLE_FOR_BYTES, CONSOLE_READ_BYTES, MSG_PAGE_SIZE, PROTOCOL_VERSION,
    SELF_DOMAIN,
};
use protocol::ids::DomainId;

/// Results of a successful call, placed in x1..x3.
pub(super) type Reply = [u64; 3];

impl Hyp {
    /// Serves one capability-protocol call; results go back in the caller's registers.
    pub fn cap_call(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs, op: CapOp) {
        let (id, v) = key_parts(key);
        let args = [
            regs.x[1], regs.x[2], regs.x[3], regs.x[4], regs.x[5], regs.x[6],
        ];
        let result = self.dispatch(cpu, id, v, op, &args);
        match result {
            Ok(reply) => {
                regs.x[0] = 0;
                regs.x[1..4].copy_from_slice(&reply);
            }
            Err(e) => {
                regs.x[0] = e as u64;
                if e == CapError::VersionMismatch {
                    regs.x[1] = PROTOCOL_VERSION.to_raw();
                }
                if let Some(d) = self.domain_mut(id) {
                    d.log_once(
                        cause::CAP_ERROR,
                        format_args!("first refused call: {op:?}: {e}"),
                    );
                }
            }
        }
    }

    fn dispatch(
        &mut self,
        cpu: usize,
        id: DomainId,
        v: usize,
        op: CapOp,
        a: &[u64; 6],
    ) -> Result<Reply, CapError> {
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        match op {
            CapOp::NullCall => return Ok([0; 3]),
            CapOp::WhoAmI => return Ok([u64::from(id.0), v as u64, 0]),
            CapOp::ConsoleWrite => return console_write(d, a),
            CapOp::Crash => {
                self.stop_domain(id, StopReason::Crashed { code: a[0] }, cpu);
                return Ok([0; 3]);
            }
            // The fast path serves these from the domain's slot; here only when it did not
            // (the same effect).
            CapOp::Heartbeat => {
                if let Some(s) = super::fast_slots::slot(id) {
                    s.lock().beat(crate::arch::counter_now());
                }
                return Ok([0; 3]);
            }
            CapOp::IdleReport => {
                if let Some(s) = super::fast_slots::slot(id) {
                    s.lock().report_idle(v, a[0]);
                }
                return Ok([0; 3]);
            }
            CapOp::Negotiate => {
                let client = Version::from_raw(a[0]);
                if !PROTOCOL_VERSION.accepts(client) {
                    return Err(CapError::VersionMismatch);
                }
                d.negotiated = true;
                super::fast_slots::set_negotiated(id);
                return Ok([PROTOCOL_VERSION.to_raw(), 0, 0]);
            }
            _ if !d.negotiated => return Err(CapError::NotNegotiated),
            _ => {}
        }
        match op {
            CapOp::MsgPageSet => {
                if !a[0].is_multiple_of(PAGE_SIZE) {
                    return Err(CapError::InvalidArgument);
                }
                let pa = d.ram_to_phys(a[0], PAGE_SIZE)?;
                d.vcpus[v].msg_page = Some(pa);
                Ok([0; 3])
            }
            CapOp::CapList => {
                let infos = self.cap_infos(id);
                let len = self.reply_message(id, v, &infos)?;
                Ok([len, 0, 0])
            }
            CapOp::ModuleInfo => {
                let index = self.module_cap(id, a[0])?;
                let (_, size) = self.module_region(index).ok_or(CapError::Stale)?;
                Ok([size, 0, 0])
            }
            CapOp::ModuleRead => self.module_read(id, v, a),
            CapOp::ModuleCreate => self.module_create(cpu, id, v, a),
            CapOp::ModuleWrite => self.module_write(id, v, a),
            CapOp::ModuleFree => self.module_free(cpu, id, a),
            CapOp::DomainCreate => self.domain_create(cpu, id, v, a[0]),
            CapOp::DomainStart => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                self.start_domain(target, cpu)?;
                Ok([0; 3])
            }
            CapOp::DomainPause | CapOp::DomainUnpause => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                self.set_paused(target, op == CapOp::DomainPause, cpu)?;
                Ok([0; 3])
            }
            CapOp::DomainDestroy => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                self.destroy_domain(target, cpu);
                Ok([0; 3])
            }
            CapOp::DomainRestart => {
                let raw = CapHandle::from_raw(a[0]).ok_or(CapError::InvalidHandle)?;
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                let rights = self
                    .domain(id)
                    .and_then(|d| d.caps.get(raw).ok())
                    .map_or(Rights::empty(), |c| c.rights);
                let instance = self.restart_domain(target, cpu)?;
                let cap = Capability {
                    object: Object::Domain {
                        domid: target,
                        instance,
                    },
                    rights,
                };
                let d = self.domain_mut(id).ok_or(CapError::Stale)?;
                let h = d.caps.insert(cap)?;
                Ok([h.to_raw(), u64::from(target.0), 0])
            }
            CapOp::DomainFault => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                match FaultKind::from_raw(a[1]).ok_or(CapError::InvalidArgument)? {
                    FaultKind::Exception => self.fault_domain(target, cpu)?,
                    FaultKind::Hang => self.hang_domain(target, cpu)?,
                }
                Ok([0; 3])
            }
            CapOp::DomainBeats => {
                let target = self.domain_cap(id, a[0], Rights::READ)?;
                let b = self.incarnation_beats(target)?;
                Ok([b.count, b.first, b.last])
            }
            CapOp::DeviceMap => self.device_map(id, a[0]),
            CapOp::DomainShutdown => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                let kind = ShutdownKind::from_raw(a[1]).ok_or(CapError::InvalidArgument)?;
                let t = self.domain_mut(target).ok_or(CapError::Stale)?;
                if t.state != protocol::control::DomainState::Running {
                    return Err(CapError::WrongState);
                }
                t.shutdown_request = Some(kind);
                self.inject(target, 0, protocol::layout::SHUTDOWN_PPI, cpu);
                Ok([0; 3])
            }
            CapOp::ShutdownPending => {
                let d = self.domain(id).ok_or(CapError::Stale)?;
                Ok([d.shutdown_request.map_or(0, |k| k as u64), 0, 0])
            }
            CapOp::ConsoleInject => {
                let target = self.domain_cap(id, a[0], Rights::WRITE)?;
                let n = a[1] as usize;
                if n > CONSOLE_READ_BYTES {
                    return Err(CapError::InvalidArgument);
                }
                let mut bytes = [0u8; CONSOLE_READ_BYTES];
                bytes[..8].copy_from_slice(&a[2].to_le_bytes());
                bytes[8..].copy_from_slice(&a[3].to_le_bytes());
                for &b in &bytes[..n] {
                    self.push_input_to(target, b);
                }
                Ok([n as u64, 0, 0])
            }
            CapOp::LogRead => {
                let d = self.domain(id).ok_or(CapError::Stale)?;
                d.caps.holds(CapKind::Console, Rights::READ)?;
                let page = msg_window(d, v)?;
                let mut buf = alloc::vec![0u8; MSG_PAGE_SIZE];
                let (start, n, total) = crate::log::read_history(a[0], &mut buf);
                page.write(0, &buf[..n]).map_err(|_| CapError::NoMsgPage)?;
                Ok([n as u64, start, total])
            }
            CapOp::DomainBeatsMany => self.beats_many(id, v, a[0]),
            CapOp::LockHolds => {
                let reset = match a[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(CapError::InvalidArgument),
                };
                let d = self.domain(id).ok_or(CapError::Stale)?;
                d.caps.holds(CapKind::Console, Rights::READ)?;
                // This pass is noted once it ends: the record read (and a reset) comes
                // before it.
                let len = self.reply_message(id, v, &self.holds.summary())?;
                if reset {
                    self.holds.reset();
                }
                Ok([len, 0, 0])
            }
            CapOp::DomainEvents => {
                let d = self.domain_mut(id).ok_or(CapError::Stale)?;
                let events = core::mem::take(&mut d.child_events);
                Ok([events, 0, 0])
            }
            CapOp::ConsoleRead => {
                let d = self.domain(id).ok_or(CapError::Stale)?;
                // A domain's own input comes with the right to use its console (WRITE);
                // READ on the console is the right to the system's log history.
                d.caps.holds(CapKind::Console, Rights::WRITE)?;
                Ok(take_input(id, a[0]))
            }
            CapOp::ConsoleReadFor => {
                let target = self.domain_cap(id, a[0], Rights::WRITE)?;
                Ok(take_input(target, a[1]))
            }
            CapOp::ConsoleWriteFor => {
                let target = self.domain_cap(id, a[0], Rights::WRITE)?;
                // x3..x6: at most CONSOLE_FOR_BYTES.
                const _: () = assert!(CONSOLE_FOR_BYTES == 4 * 8);
                let (bytes, n) = register_text(a[1], &a[2..6]).ok_or(CapError::InvalidArgument)?;
                super::fast_slots::write(target, &bytes[..n]);
                Ok([n as u64, 0, 0])
            }
            CapOp::DomainQuery => {
                let target = self.query_target(id, a[0])?;
                let info = self.domain_info(target).ok_or(CapError::Stale)?;
                let len = self.reply_message(id, v, &info)?;
                Ok([len, 0, 0])
            }
            CapOp::DomainVcpuPin => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                let v = usize::try_from(a[1]).map_err(|_| CapError::InvalidArgument)?;
                let pcpu = usize::try_from(a[2]).map_err(|_| CapError::CpuUnavailable)?;
                let priority = u8::try_from(a[3]).map_err(|_| CapError::InvalidArgument)?;
                self.pin_vcpu(target, v, pcpu, priority, cpu)?;
                Ok([0; 3])
            }
            CapOp::DomainVcpuBudget => {
                let target = self.domain_cap(id, a[0], Rights::CONTROL)?;
                let v = usize::try_from(a[1]).map_err(|_| CapError::InvalidArgument)?;
                let budget = u32::try_from(a[2]).map_err(|_| CapError::InvalidArgument)?;
                let period = u32::try_from(a[3]).map_err(|_| CapError::InvalidArgument)?;
                self.set_vcpu_budget(target, v, (budget, period), cpu)?;
                Ok([0; 3])
            }
            CapOp::DomainVcpus => {
                let target = self.query_target(id, a[0])?;
                let rows = self.vcpu_infos(target).ok_or(CapError::Stale)?;
                let len = self.reply_message(id, v, &rows)?;
                Ok([len, 0, 0])
            }
            _ => Err(CapError::UnknownCall),
        }
    }

    /// The domain a query is about: the caller itself for [`SELF_DOMAIN`] (what a domain may
    /// always learn about itself), else the one its Domain cap (READ) names.
    fn query_target(&self, holder: DomainId, raw: u64) -> Result<DomainId, CapError> {
        if raw == SELF_DOMAIN {
            return Ok(holder);
        }
        self.domain_cap(holder, raw, Rights::READ)
    }

    /// Resolves a Domain capability to a live domain of the right incarnation.
    pub(super) fn domain_cap(
        &self,
        holder: DomainId,
        raw: u64,
        needed: Rights,
    ) -> Result<DomainId, CapError> {
        let h = CapHandle::from_raw(raw).ok_or(CapError::InvalidHandle)?;
        let d = self.domain(holder).ok_or(CapError::Stale)?;
        let cap = d.caps.lookup(h, CapKind::Domain, needed)?;
        let Object::Domain { domid, instance } = cap.object else {
            return Err(CapError::WrongKind);
        };
        match self.domain(domid) {
            Some(t) if t.instance == instance && !t.dying => Ok(domid),
            // Restarted, rebuild pending: the new handle already names it (queries show it
            // stopped for reboot; destroy cancels the rebuild).
            Some(t) if t.dying && t.restart_pending == Some(instance) => Ok(domid),
            _ => Err(CapError::Stale),
        }
    }

    /// Resolves a Module capability to a boot-module index.
    fn module_cap(&self, holder: DomainId, raw: u64) -> Result<usize, CapError> {
        let h = CapHandle::from_raw(raw).ok_or(CapError::InvalidHandle)?;
        let d = self.domain(holder).ok_or(CapError::Stale)?;
        match d.caps.lookup(h, CapKind::Module, Rights::READ)?.object {
            Object::Module { index } => Ok(usize::from(index)),
            _ => Err(CapError::WrongKind),
        }
    }

    /// Encodes `value` into the calling vCPU's message page; returns the length.
    pub(super) fn reply_message<T: serde::Serialize>(
        &self,
        id: DomainId,
        v: usize,
        value: &T,
    ) -> Result<u64, CapError> {
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let page = msg_window(d, v)?;
        let bytes = postcard::to_allocvec(value).map_err(|_| CapError::TooLarge)?;
        if bytes.len() > MSG_PAGE_SIZE {
            return Err(CapError::TooLarge);
        }
        page.write(0, &bytes).map_err(|_| CapError::NoMsgPage)?;
        Ok(bytes.len() as u64)
    }

    /// Copies `len` request bytes out of the calling vCPU's message page, once.
    pub(super) fn request_bytes(
        &self,
        id: DomainId,
        v: usize,
        len: u64,
    ) -> Result<Vec<u8>, CapError> {
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let page = msg_window(d, v)?;
        if len as usize > MSG_PAGE_SIZE {
            return Err(CapError::BadMessage);
        }
        let mut buf = alloc::vec![0u8; len as usize];
        page.read(0, &mut buf).map_err(|_| CapError::BadMessage)?;
        Ok(buf)
    }

    fn cap_infos(&self, id: DomainId) -> Vec<CapInfo> {
        let Some(d) = self.domain(id) else {
            return Vec::new();
        };
        d.caps
            .iter()
            .map(|(handle, cap)| {
                let (label, detail) = match cap.object {
                    Object::Domain { domid, .. } => (
                        self.domain(domid)
                            .map(|t| t.name.clone())
                            .unwrap_or_default(),
                        CapDetail::Domain { domid: domid.0 },
                    ),
                    Object::Memory { quota_pages } => (
                        String::from("ram"),
                        CapDetail::Memory {
                            free_pages: quota_pages.min(self.frames.free_pages()),
                            largest_free_pages: quota_pages.min(self.frames.largest_free_run()),
                        },
                    ),
                    Object::Module { index } => {
                        let index = usize::from(index);
                        let label = match self.uploads.get(index) {
                            Some(u) => u.label(),
                            // A cap names a live module; "?" rather than a panic if not.
                            None => self
                                .platform
                                .modules
                                .as_slice()
                                .get(index)
                                .map_or("?", |m| m.label()),
                        };
                        let size = self.module_region(index).map_or(0, |(_, size)| size);
                        (String::from(label), CapDetail::Module { size })
                    }
                    Object::Console => (String::from("console"), CapDetail::Console),
                    Object::Device { index } => match self.devices.get(usize::from(index)) {
                        Some(dev) => (
                            match dev.mgmt_uart {
                                Some(kind) => String::from(crate::mgmt_port::label(kind)),
                                None => alloc::format!("virtio-mmio type {}", dev.virtio_id),
                            },
                            CapDetail::Device {
                                mmio_base: dev.node.region.base.as_u64(),
                                mmio_size: dev.node.region.size,
                                irqs: dev.node.irq.into_iter().collect(),
                                virtio_id: dev.virtio_id,
                                assigned: dev.holding.assigned.map(|a| a.0),
                            },
                        ),
                        None => (String::from("device"), CapDetail::Console),
                    },
                };
                CapInfo {
                    handle,
                    kind: cap.object.kind(),
                    rights: cap.rights,
                    label,
                    detail,
                }
            })
            .collect()
    }

    fn module_read(&self, id: DomainId, v: usize, a: &[u64; 6]) -> Result<Reply, CapError> {
        let index = self.module_cap(id, a[0])?;
        let (base, size) = self.module_region(index).ok_or(CapError::Stale)?;
        let (offset, len) = (a[1], a[2]);
        if len as usize > MSG_PAGE_SIZE {
            return Err(CapError::InvalidArgument);
        }
        let end = offset.checked_add(len).ok_or(CapError::InvalidArgument)?;
        if end > size {
            return Err(CapError::InvalidArgument);
        }
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let page = msg_window(d, v)?;
        // A boot module or sealed upload reads as bytes; an unsealed upload (held by the
        // caller's cap, so its frames stay allocated) through a window.
        let from = PhysAddr::new(base + offset);
        let mut buf = alloc::vec![0u8; len as usize];
        match phys::module_bytes(from, len) {
            Some(bytes) => buf.copy_from_slice(bytes),
            None => Window::new(from, len)
                .ok_or(CapError::InvalidArgument)?
                .read(0, &mut buf)
                .map_err(|_| CapError::InvalidArgument)?,
        }
        page.write(0, &buf).map_err(|_| CapError::NoMsgPage)?;
        Ok([len, 0, 0])
    }

    fn domain_create(
        &mut self,
        cpu: usize,
        id: DomainId,
        v: usize,
        len: u64,
    ) -> Result<Reply, CapError> {
        // F13: only a holder of a writable Memory cap gets its message decoded at all.
        let d = self.domain(id).ok_or(CapError::Stale)?;
        d.caps.holds(CapKind::Memory, Rights::WRITE)?;
        let bytes = self.request_bytes(id, v, len)?;
        let spec: DomainSpec = postcard::from_bytes(&bytes).map_err(|_| CapError::BadMessage)?;
        if !protocol::control::budgets_valid(&spec.vcpus, &spec.budgets) {
            return Err(CapError::InvalidArgument);
        }
        let image = self.module_cap(id, spec.image.to_raw())?;
        let ramdisk = match spec.ramdisk {
            Some(h) => Some(self.module_cap(id, h.to_raw())?),
            None => None,
        };
        let device_tree = match spec.device_tree {
            Some(h) => Some(self.module_cap(id, h.to_raw())?),
            None => None,
        };
        // RAM plus its stage-2 table budget (F4) and its Xen frames (shared_info, magic
        // pages, grant table), all charged to the Memory cap.
        let ram_pages = u64::from(spec.mem_mib) * 256;
        let pages = ram_pages
            + super::tables::TableBudget::for_ram(ram_pages).limit
            + super::xen::setup::XEN_FRAME_PAGES;
        {
            let d = self.domain_mut(id).ok_or(CapError::Stale)?;
            let mcap = d.caps.lookup(spec.memory, CapKind::Memory, Rights::WRITE)?;
            let Object::Memory { quota_pages } = mcap.object else {
                return Err(CapError::WrongKind);
            };
            if quota_pages < pages {
                crate::info!(
                    "cannot create {}: asked for {} MiB (+{} KiB of page tables and Xen frames), {} MiB left in {}'s memory quota",
                    spec.name,
                    spec.mem_mib,
                    (pages - ram_pages) * 4,
                    quota_pages / 256,
                    id
                );
                return Err(CapError::NoMemory);
            }
        }
        // Its modules must not change under it from now on: it is built, and may be
        // rebuilt, from them (and the doorway reads only sealed uploads as slices).
        for index in [Some(image), ramdisk, device_tree].into_iter().flatten() {
            self.seal_module(index);
        }
        // The indices come from Module caps, which name existing modules.
        let image_bytes = self.module(image).ok_or(CapError::InvalidHandle)?;
        let ramdisk = match ramdisk {
            Some(index) => Some((
                self.module(index).ok_or(CapError::InvalidHandle)?,
                index as u16,
            )),
            None => None,
        };
        let extra_dt = match device_tree {
            Some(index) => self.module(index).ok_or(CapError::InvalidHandle)?,
            None => &[],
        };
        let devices = spec
            .devices
            .iter()
            .map(|h| self.device_index(id, h.to_raw(), Rights::DELEGATE))
            .collect::<Result<Vec<_>, _>>()?;
        if devices.iter().any(|&i| !self.devices[i].holding.is_free()) {
            // Held or in use by someone (possibly the caller itself): no sharing.
            return Err(CapError::WrongState);
        }
        let mut caps = alloc::vec![Capability {
            object: Object::Console,
            rights: Rights::WRITE,
        }];
        caps.extend(devices.iter().map(|&i| Capability {
            object: Object::Device { index: i as u16 },
            rights: Rights::READ | Rights::WRITE,
        }));
        let req = BuildRequest {
            name: &spec.name,
            image: image_bytes,
            mem_mib: spec.mem_mib,
            vcpus: &spec.vcpus,
            cmdline: &spec.cmdline,
            parent: Some((id, spec.memory)),
            caps: &caps,
            module: Some(image as u16),
            ramdisk,
            extra_dt,
            pmu: spec.pmu,
            budgets: &spec.budgets,
        };
        let child = self.build_domain(&req, cpu)?;
        self.guest_dts[usize::from(child.0)] = device_tree.map(|i| i as u16);
        if let Err(e) = self
            .assign_devices(&devices, child)
            .and_then(|()| self.give_windows(child, &devices, &spec.windows))
        {
            self.destroy_domain(child, cpu);
            return Err(e);
        }
        let instance = self.domain(child).map_or(0, |c| c.instance);
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        if let Ok(mcap) = d.caps.get_mut(spec.memory) {
            if let Object::Memory { quota_pages } = &mut mcap.object {
                *quota_pages -= pages;
            }
        }
        let cap = Capability {
            object: Object::Domain {
                domid: child,
                instance,
            },
            rights: Rights::READ | Rights::WRITE | Rights::CONTROL,
        };
        match d.caps.insert(cap) {
            Ok(h) => {
                crate::info!(
                    "{} created {} ({} MiB) by {}",
                    child,
                    spec.name,
                    spec.mem_mib,
                    id
                );
                Ok([h.to_raw(), u64::from(child.0), 0])
            }
            Err(e) => {
                self.destroy_domain(child, cpu);
                Err(e)
            }
        }
    }

    fn set_paused(&mut self, target: DomainId, pause: bool, cpu: usize) -> Result<(), CapError> {
        use protocol::control::DomainState;
        let d = self.domain_mut(target).ok_or(CapError::Stale)?;
        d.state = match (d.state, pause) {
            (DomainState::Running | DomainState::Paused, true) => DomainState::Paused,
            (DomainState::Paused | DomainState::Running, false) => DomainState::Running,
            _ => return Err(CapError::WrongState),
        };
        self.refresh_runnable(target, cpu);
        Ok(())
    }

    fn domain_info(&self, target: DomainId) -> Option<DomainInfo> {
        let d = self.domain(target)?;
        let stats = |v: usize, c: &super::domain::Vcpu| self.live_stats(target, v, c.stats);
        let sum = |f: fn(&super::domain::VcpuStats) -> u64| {
            d.vcpus
                .iter()
                .enumerate()
                .map(|(v, c)| f(&stats(v, c)))
                .sum::<u64>()
        };
        Some(DomainInfo {
            domid: target.0,
            name: d.name.clone(),
            state: d.state,
            vcpus: d.vcpus.len() as u16,
            vcpus_online: d
                .vcpus
                .iter()
                .filter(|c| c.power == super::domain::Power::On)
                .count() as u16,
            mem_mib: (d.ram.size() >> 20) as u32,
            cpu_ticks: self.cpu_ticks(target)?,
            exits: sum(|s| s.exits),
            irqs_injected: sum(|s| s.irqs),
            restarts: d.restarts,
        })
    }

    fn vcpu_infos(&self, target: DomainId) -> Option<Vec<VcpuInfo>> {
        let d = self.domain(target)?;
        let idle = |v: u16| super::fast_slots::idle(target, usize::from(v));
        Some(
            (0u16..)
                .zip(&d.vcpus)
                .map(|(vcpu, c)| {
                    let stats = self.live_stats(target, usize::from(vcpu), c.stats);
                    VcpuInfo {
                        vcpu,
                        placement: c.placement,
                        state: VcpuState::of(c.power == super::domain::Power::On, c.blocked),
                        cpu_ticks: stats.busy_ticks(c.placement.exclusive, idle(vcpu)),
                        exits: stats.exits,
                        budget_us: c.budget_us,
                    }
                })
                .collect(),
        )
    }
}

/// Takes up to `want` bytes of domain `id`'s queued console input: `[count, bytes 0..8,
/// 8..16]`.
fn take_input(id: DomainId, want: u64) -> Reply {
    super::fast_slots::slot(id).map_or([0; 3], |c| c.lock().take_input(want))
}

/// `ConsoleWrite`: bytes in x2..x6, printed a line at a time with the domain's name. (The
/// fast path serves it while the domain's console slot is open; this is the rest.)
fn console_write(d: &super::domain::Domain, a: &[u64; 6]) -> Result<Reply, CapError> {
    let (bytes, len) = register_text(a[0], &a[1..6]).ok_or(CapError::InvalidArgument)?;
    d.caps.holds(CapKind::Console, Rights::WRITE)?;
    super::fast_slots::write(d.id, &bytes[..len]);
    Ok([len as u64, 0, 0])
}

/// The message page vCPU `v` of `d` registered (validated then to lie in its RAM).
fn msg_window(d: &super::domain::Domain, v: usize) -> Result<Window, CapError> {
    let page = d.vcpus[v].msg_page.ok_or(CapError::NoMsgPage)?;
    Window::new(page, MSG_PAGE_SIZE as u64).ok_or(CapError::NoMsgPage)
}
