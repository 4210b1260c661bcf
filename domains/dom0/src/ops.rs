//! dom0's capability calls behind the management service ([`dom0::mgmt::DomainOps`]): the
//! host's `ctl` verbs act on the domains the supervisor watches.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bulkhead_runtime::{arch, cap, println, timer, StartInfo};
use dom0::mgmt::{DomainEntry, DomainOps};
use dom0::upload::{ModuleStore, Uploads};
use dom0::{plan_domain, Policy, Supervisor};
use protocol::cap::{CapDetail, CapHandle, CapKind};
use protocol::control::{
    CapError, CapOp, DomainInfo, DomainState, FaultKind, ShutdownKind, VcpuInfo, VcpuPlacement,
};
use protocol::manifest::ManifestDomain;
use protocol::mgmt::MgmtError;
use protocol::mgmt::{Response, UploadOp};

/// The supervisor's domains, reached through dom0's Domain caps.
pub struct Ops<'a> {
    /// Who dom0 watches (and holds handles for).
    pub sup: &'a mut Supervisor,
    /// dom0's own start info (dom0 has no capability on itself).
    pub info: &'static StartInfo,
    /// The PV backends (Linux guests are asked to shut down through xenstore).
    pub pv: &'a mut crate::pv::Backends,
    /// Files uploaded for `ctl create`.
    pub uploads: &'a mut Uploads<CapHandle>,
}

/// Modules made with dom0's own Memory cap (looked up only when a module is made: chunks
/// and checks need none).
struct CapStore;

impl ModuleStore for CapStore {
    type Handle = CapHandle;
    fn create(&mut self, label: &str, size: u64) -> Result<CapHandle, CapError> {
        let memory = cap::cap_list()?
            .into_iter()
            .find(|c| c.kind == CapKind::Memory)
            .ok_or(CapError::WrongKind)?;
        cap::module_create(memory.handle, label, size)
    }
    fn write(&mut self, module: CapHandle, offset: u64, bytes: &[u8]) -> Result<(), CapError> {
        cap::module_write(module, offset, bytes)
    }
    fn free(&mut self, module: CapHandle) {
        if let Err(e) = cap::module_free(module) {
            println!("upload: cannot give a module back: {e}");
        }
    }
}

impl Ops<'_> {
    /// `ctl create`: builds, starts and supervises the domain; its id.
    fn create_domain(
        &mut self,
        d: &ManifestDomain,
        budget: Option<(u32, u32)>,
    ) -> Result<u16, MgmtError> {
        let caps = cap::cap_list().map_err(MgmtError::Capability)?;
        let running: Vec<String> = self
            .sup
            .domains()
            .iter()
            .filter(|w| !w.is_gone())
            .map(|w| w.name.clone())
            .collect();
        let mut d = d.clone();
        if d.auto_cpus {
            // The host chose pCPUs without knowing what runs here: keep off exclusive ones.
            d.vcpus = dom0::place_auto(&d.vcpus, &self.sup.exclusive_pcpus(), self.info.pcpus)
                .ok_or_else(|| MgmtError::Refused {
                    why: format!("cannot create {}: every pCPU is held exclusively", d.name),
                })?;
        }
        let d = &d;
        if let Some(why) = self
            .pv
            .vbd_conflict(d, |name| running.iter().any(|r| r == name))
        {
            return Err(MgmtError::Refused {
                why: format!("cannot create {}: {why}", d.name),
            });
        }
        let mut spec = plan_domain(d, &caps, &running).map_err(|e| MgmtError::Refused {
            why: format!("cannot create {}: {e}", d.name),
        })?;
        // Against the placement made above: a vCPU that ended up exclusive gets none.
        spec.budgets = dom0::vcpu_budget_each(budget, d);
        let (handle, domid) = cap::domain_create(&spec).map_err(MgmtError::Capability)?;
        if let Err(e) = cap::domain_start(handle) {
            let _ = cap::domain_destroy(handle);
            return Err(MgmtError::Capability(e));
        }
        // Only now: a refused create must not replace a running namesake's description.
        // The new domain attaches to xenstore on a later turn, after this.
        self.pv.describe(d);
        self.sup
            .watch(&d.name, domid, handle, DomainState::Running, Policy::of(d));
        self.sup.placed(&d.vcpus);
        println!("mgmt: create {}: started (d{domid})", d.name);
        Ok(domid)
    }

    /// Index in the supervisor of live domain `id`.
    fn index(&self, id: u16) -> Result<usize, CapError> {
        self.sup
            .domains()
            .iter()
            .position(|w| w.domid == id && !w.is_gone())
            .ok_or(CapError::InvalidHandle)
    }

    fn name(&self, i: usize) -> &str {
        &self.sup.domains()[i].name
    }

    /// Runs a lifecycle call and prints what it did (the console is the audit trail).
    fn act(
        &mut self,
        verb: &str,
        id: u16,
        f: fn(protocol::cap::CapHandle) -> Result<(), CapError>,
    ) -> Result<(), CapError> {
        let i = self.index(id)?;
        let r = f(self.sup.domains()[i].handle);
        match &r {
            Ok(()) => println!("mgmt: {verb} {}: done", self.name(i)),
            Err(e) => println!("mgmt: {verb} {}: {e}", self.name(i)),
        }
        r
    }
}

impl DomainOps for Ops<'_> {
    fn domains(&mut self) -> Vec<DomainEntry> {
        let mut all = Vec::new();
        all.push(DomainEntry {
            name: self.info.name.clone(),
            id: self.info.domid,
            handle: None,
        });
        for w in self.sup.domains().iter().filter(|w| !w.is_gone()) {
            all.push(DomainEntry {
                name: w.name.clone(),
                id: w.domid,
                handle: Some(w.handle),
            });
        }
        all
    }

    fn query(&mut self, id: u16) -> Result<DomainInfo, CapError> {
        if id == self.info.domid {
            // dom0 holds no Domain cap on itself; any domain may ask about itself.
            return cap::self_query();
        }
        let i = self.index(id)?;
        cap::domain_query(self.sup.domains()[i].handle)
    }

    fn vcpus(&mut self, id: u16) -> Result<Vec<VcpuInfo>, CapError> {
        if id == self.info.domid {
            return cap::domain_vcpus(None);
        }
        let i = self.index(id)?;
        cap::domain_vcpus(Some(self.sup.domains()[i].handle))
    }

    fn pause(&mut self, id: u16) -> Result<(), CapError> {
        self.act("pause", id, cap::domain_pause)
    }

    fn unpause(&mut self, id: u16) -> Result<(), CapError> {
        self.act("unpause", id, cap::domain_unpause)
    }

    fn destroy(&mut self, id: u16) -> Result<(), CapError> {
        let i = self.index(id)?;
        self.pv.detach(id);
        let r = cap::domain_destroy(self.sup.domains()[i].handle);
        match &r {
            Ok(()) => println!("mgmt: destroy {}: done", self.name(i)),
            Err(e) => println!("mgmt: destroy {}: {e}", self.name(i)),
        }
        if let Some(line) = self.sup.destroyed(i, r) {
            println!("{line}");
        }
        r
    }

    fn restart(&mut self, id: u16) -> Result<(), CapError> {
        let i = self.index(id)?;
        self.pv.detach_restarting(id);
        let r = cap::domain_restart(self.sup.domains()[i].handle);
        let ok = r.map(drop);
        let (line, _) = self.sup.restarted(i, r, timer::now());
        println!("mgmt: restart: {line}");
        ok
    }

    fn crash(&mut self, id: u16) -> Result<(), CapError> {
        self.act("crash", id, |h| cap::domain_fault(h, FaultKind::Exception))
    }

    fn hang(&mut self, id: u16) -> Result<(), CapError> {
        self.act("hang", id, |h| cap::domain_fault(h, FaultKind::Hang))
    }

    fn health(&mut self) -> Result<Vec<protocol::mgmt::HealthRow>, MgmtError> {
        let (now, hz) = (timer::now(), timer::freq());
        Ok(self
            .sup
            .domains()
            .iter()
            .filter(|w| !w.is_gone())
            .map(|w| w.health_row(now, hz))
            .collect())
    }

    fn vcpu_pin(&mut self, id: u16, vcpu: u16, pcpu: u16, priority: u8) -> Result<(), CapError> {
        let i = self.index(id)?;
        let r = cap::domain_vcpu_pin(self.sup.domains()[i].handle, vcpu, pcpu, priority);
        match &r {
            Ok(()) => {
                println!(
                    "mgmt: vcpu-pin {} {vcpu}: pCPU {pcpu}, priority {priority}",
                    self.name(i)
                );
                // Automatic placement of later domains must see where it went.
                let exclusive = self.sup.domains()[i]
                    .placement
                    .get(usize::from(vcpu))
                    .is_some_and(|p| p.exclusive);
                let to = VcpuPlacement {
                    pcpu,
                    priority,
                    exclusive,
                };
                self.sup.repinned(i, vcpu, to);
            }
            Err(e) => println!("mgmt: vcpu-pin {} {vcpu}: {e}", self.name(i)),
        }
        r
    }

    fn vcpu_budget(&mut self, id: u16, vcpu: u16, budget_us: (u32, u32)) -> Result<(), CapError> {
        let i = self.index(id)?;
        let (b, p) = budget_us;
        let r = cap::domain_vcpu_budget(self.sup.domains()[i].handle, vcpu, b, p);
        match &r {
            Ok(()) => println!(
                "mgmt: sched-fp {} {vcpu}: budget {b} us per {p} us",
                self.name(i)
            ),
            Err(e) => println!("mgmt: sched-fp {} {vcpu}: {e}", self.name(i)),
        }
        r
    }

    fn console_output(&mut self, id: u16, from: u64) -> Result<(Vec<u8>, u64, u64), MgmtError> {
        // A reply stays well inside a frame.
        const MAX: usize = 8 * 1024;
        self.pv
            .console_output(id, from, MAX)
            .ok_or_else(|| MgmtError::NotSupported {
                what: String::from(
                    "raw console output of a domain without a PV console (its lines are in dmesg)",
                ),
            })
    }

    fn upload(&mut self, op: &UploadOp) -> Result<Response, MgmtError> {
        let r = self.uploads.step(op, &mut CapStore);
        match (&r, op) {
            (Ok(_), UploadOp::End) => println!("mgmt: upload complete and checked"),
            (Err(e), _) => println!("mgmt: {e}"),
            _ => {}
        }
        r
    }

    fn create(&mut self, d: &ManifestDomain, budget: Option<(u32, u32)>) -> Result<u16, MgmtError> {
        // A refusal is on dom0's console too, like every other management action's outcome.
        self.create_domain(d, budget).inspect_err(|e| {
            println!("mgmt: create {}: refused: {e}", d.name);
        })
    }

    fn shutdown(&mut self, id: u16, kind: ShutdownKind) -> Result<(), CapError> {
        let i = self.index(id)?;
        let reboot = kind == ShutdownKind::Reboot;
        let r = if self.pv.request_shutdown(id, reboot) {
            Ok(())
        } else {
            cap::domain_shutdown(self.sup.domains()[i].handle, kind)
        };
        let verb = match kind {
            ShutdownKind::PowerOff => "shutdown",
            ShutdownKind::Reboot => "reboot",
        };
        match &r {
            Ok(()) => println!("mgmt: {verb} {}: requested", self.name(i)),
            Err(e) => println!("mgmt: {verb} {}: {e}", self.name(i)),
        }
        r
    }

    fn vbds(&mut self, id: u16) -> Result<Vec<protocol::mgmt::VbdRow>, MgmtError> {
        Ok(self.pv.vbd_rows(id))
    }

    fn vifs(&mut self, id: u16) -> Result<Vec<protocol::mgmt::VifRow>, MgmtError> {
        Ok(self.pv.vif_rows(id))
    }

    fn uplink(&mut self, id: u16) -> Result<Option<protocol::mgmt::UplinkCounters>, MgmtError> {
        Ok(self.pv.uplink(id))
    }

    fn devices(&mut self, id: u16) -> Result<Vec<protocol::mgmt::DeviceRow>, MgmtError> {
        let caps = cap::cap_list().map_err(MgmtError::Capability)?;
        Ok(dom0::passthrough::device_rows(&caps, id))
    }

    fn xenstore(
        &mut self,
        op: &protocol::mgmt::XenstoreOp,
    ) -> Result<protocol::mgmt::Response, MgmtError> {
        let r = dom0::mgmt::xs::serve(self.pv.xenstore(), op);
        if !matches!(
            op,
            protocol::mgmt::XenstoreOp::List { .. } | protocol::mgmt::XenstoreOp::Read { .. }
        ) {
            // A change from the host is part of the audit trail, as every lifecycle verb.
            let outcome = match &r {
                Ok(_) => String::from("done"),
                Err(e) => format!("{e}"),
            };
            println!("mgmt: xenstore {}: {outcome}", op.path());
        }
        r
    }

    fn console_input(&mut self, id: u16, bytes: &[u8]) -> Result<(), CapError> {
        let i = self.index(id)?;
        let handle = self.sup.domains()[i].handle;
        for chunk in bytes.chunks(protocol::control::CONSOLE_READ_BYTES) {
            cap::console_inject(handle, chunk)?;
        }
        // A PV-console guest's input is taken from the microvisor by the next PV pass.
        self.pv.input_arrived();
        Ok(())
    }

    fn log_read(&mut self, from: u64) -> Result<(Vec<u8>, u64, u64), CapError> {
        cap::log_read(from)
    }

    fn lock_holds(&mut self, reset: bool) -> Result<protocol::lock_holds::LockHolds, CapError> {
        let r = lock_holds(reset);
        if reset && r.is_ok() {
            println!("mgmt: lock-hold record reset");
        }
        r
    }

    fn counter_hz(&mut self) -> u64 {
        timer::freq()
    }

    fn free_memory(&mut self) -> (u64, u64) {
        cap::cap_list()
            .ok()
            .and_then(|caps| {
                caps.iter()
                    .find(|c| c.kind == CapKind::Memory)
                    .and_then(|c| match c.detail {
                        CapDetail::Memory {
                            free_pages,
                            largest_free_pages,
                        } => Some((free_pages, largest_free_pages)),
                        _ => None,
                    })
            })
            .unwrap_or((0, 0))
    }
}

/// `CapOp::LockHolds`, as the runtime's queries make a call (dom0 is its one caller, and
/// any code added to the runtime shifts every domain's, the RTOS's timing included): the
/// message page registered (again: idempotent; negotiation was done at boot), the call and
/// the read with interrupts masked, then the reply decoded.
fn lock_holds(reset: bool) -> Result<protocol::lock_holds::LockHolds, CapError> {
    cap::register_msg_page()?;
    let bytes = arch::without_interrupts(|| {
        let r = cap::call(CapOp::LockHolds, [u64::from(reset), 0, 0, 0, 0, 0])?;
        Ok::<_, CapError>(arch::msg_read(cap::reply_len(r[0])?))
    })?;
    cap::decode(&bytes)
}
