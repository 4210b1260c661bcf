//! The management service's core: answers `protocol::mgmt` requests from the host CLI.
//!
//! [`serve`] turns one request into one response through [`DomainOps`], which the shell
//! implements with capability calls; [`Server`] adds the byte-stream side (frames in,
//! frames out) so the shell only moves bytes between the management port and it.
//! Nothing here blocks or panics on what a client sends: every malformed, oversize or
//! unanswerable request gets a `Response::Error`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::cap::CapHandle;
use protocol::control::{
    CapError, DomainInfo, DomainState, ShutdownKind, VcpuInfo, Version, PROTOCOL_VERSION,
};
use protocol::ids::DomainId;
use protocol::lock_holds::LockHolds;
use protocol::manifest::ManifestDomain;
use protocol::mgmt::{
    decode, encode, DeviceRow, DomainRef, DomainRow, FrameDecoder, HealthRow, MgmtError, Request,
    Response, SystemInfo, UplinkCounters, UploadOp, VbdRow, VcpuRow, VifRow, XenstoreOp,
    MGMT_VERSION,
};

/// A domain the service can name: every child dom0 controls, and dom0 itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainEntry {
    /// Its name.
    pub name: String,
    /// Its id (0 for dom0).
    pub id: u16,
    /// dom0's Domain cap for it; `None` for dom0 itself. Not used by [`serve`]; carried so
    /// the shell can build the list straight from its supervisor.
    pub handle: Option<CapHandle>,
}

/// What the service needs from dom0's shell. Operations take domain ids; the shell maps an
/// id to its current Domain cap (a restart replaces the handle).
pub trait DomainOps {
    /// Every domain: the children dom0 controls and dom0 itself (id 0).
    fn domains(&mut self) -> Vec<DomainEntry>;
    /// The domain's current facts. For dom0 itself the shell answers from what it knows
    /// about itself (it holds no Domain cap for itself).
    fn query(&mut self, id: u16) -> Result<DomainInfo, CapError>;
    /// `CapOp::DomainPause`.
    fn pause(&mut self, id: u16) -> Result<(), CapError>;
    /// `CapOp::DomainUnpause`.
    fn unpause(&mut self, id: u16) -> Result<(), CapError>;
    /// `CapOp::DomainDestroy`; the shell also stops supervising the domain.
    fn destroy(&mut self, id: u16) -> Result<(), CapError>;
    /// `CapOp::DomainRestart`; the shell keeps the new handle.
    fn restart(&mut self, id: u16) -> Result<(), CapError>;
    /// `CapOp::DomainFault` (the test capability behind `ctl crash`).
    fn crash(&mut self, _id: u16) -> Result<(), CapError> {
        Err(CapError::UnknownCall)
    }
    /// `CapOp::DomainFault` with `FaultKind::Hang` (`ctl crash --hang`).
    fn hang(&mut self, _id: u16) -> Result<(), CapError> {
        Err(CapError::UnknownCall)
    }
    /// Supervision facts of every domain dom0 supervises (dom0 itself is added by
    /// [`serve`]).
    fn health(&mut self) -> Result<Vec<HealthRow>, MgmtError> {
        Err(MgmtError::NotSupported {
            what: "supervision facts".into(),
        })
    }
    /// Frequency of the generic timer's counter (`StartInfo::counter_hz`).
    fn counter_hz(&mut self) -> u64;
    /// Free pages and largest contiguous free run in dom0's Memory cap
    /// (`CapDetail::Memory`).
    fn free_memory(&mut self) -> (u64, u64);
    /// The capability-protocol version the microvisor answered at negotiation.
    fn protocol_version(&mut self) -> Version {
        PROTOCOL_VERSION
    }
    /// The microvisor's console history from `from`: (bytes, first offset, total).
    fn log_read(&mut self, from: u64) -> Result<(Vec<u8>, u64, u64), CapError> {
        let _ = from;
        Err(CapError::UnknownCall)
    }
    /// The microvisor's global-lock holds (`CapOp::LockHolds`); with `reset`, the record
    /// starts again once read.
    fn lock_holds(&mut self, reset: bool) -> Result<LockHolds, CapError> {
        let _ = reset;
        Err(CapError::UnknownCall)
    }
    /// Asks domain `id` to power off or reboot cleanly.
    fn shutdown(&mut self, id: u16, kind: ShutdownKind) -> Result<(), CapError> {
        let _ = (id, kind);
        Err(CapError::UnknownCall)
    }
    /// Queues console input for domain `id`.
    fn console_input(&mut self, id: u16, bytes: &[u8]) -> Result<(), CapError> {
        let _ = (id, bytes);
        Err(CapError::UnknownCall)
    }
    /// The virtual block devices domain `id` uses or serves, in (frontend, device) order.
    fn vbds(&mut self, id: u16) -> Result<Vec<VbdRow>, MgmtError> {
        let _ = id;
        Err(MgmtError::NotSupported {
            what: "virtual block devices".into(),
        })
    }
    /// The virtual network interfaces domain `id` uses or serves, in (frontend, device)
    /// order.
    fn vifs(&mut self, id: u16) -> Result<Vec<VifRow>, MgmtError> {
        let _ = id;
        Err(MgmtError::NotSupported {
            what: "virtual network interfaces".into(),
        })
    }
    /// The uplink counters domain `id` published as a network backend, if any.
    fn uplink(&mut self, id: u16) -> Result<Option<UplinkCounters>, MgmtError> {
        let _ = id;
        Err(MgmtError::NotSupported {
            what: "uplink counters".into(),
        })
    }
    /// The host devices domain `id` holds (every device for dom0), in address order.
    fn devices(&mut self, id: u16) -> Result<Vec<DeviceRow>, MgmtError> {
        let _ = id;
        Err(MgmtError::NotSupported {
            what: "device listing".into(),
        })
    }
    /// Each vCPU of domain `id` (`CapOp::DomainVcpus`; dom0 asks about itself).
    fn vcpus(&mut self, id: u16) -> Result<Vec<VcpuInfo>, CapError> {
        let _ = id;
        Err(CapError::UnknownCall)
    }
    /// `CapOp::DomainVcpuPin`.
    fn vcpu_pin(&mut self, id: u16, vcpu: u16, pcpu: u16, priority: u8) -> Result<(), CapError> {
        let _ = (id, vcpu, pcpu, priority);
        Err(CapError::UnknownCall)
    }
    /// `CapOp::DomainVcpuBudget`: `budget_us` is (budget, period), `(0, 0)` for none.
    fn vcpu_budget(&mut self, id: u16, vcpu: u16, budget_us: (u32, u32)) -> Result<(), CapError> {
        let _ = (id, vcpu, budget_us);
        Err(CapError::UnknownCall)
    }
    /// `ctl xenstore`: reads or changes dom0's xenstore with the toolstack's rights
    /// ([`xs::serve`] does it on the store).
    fn xenstore(&mut self, op: &XenstoreOp) -> Result<Response, MgmtError> {
        let _ = op;
        Err(MgmtError::NotSupported {
            what: "xenstore access".into(),
        })
    }
    /// Raw PV console output of domain `id` from offset `from`: bytes, their offset, total.
    fn console_output(&mut self, id: u16, from: u64) -> Result<(Vec<u8>, u64, u64), MgmtError> {
        let _ = (id, from);
        Err(MgmtError::NotSupported {
            what: "raw console output".into(),
        })
    }
    /// One step of uploading a file for a later `create` ([`crate::upload`]).
    fn upload(&mut self, op: &UploadOp) -> Result<Response, MgmtError> {
        let _ = op;
        Err(MgmtError::NotSupported {
            what: "uploading files".into(),
        })
    }
    /// Builds, starts and supervises a new domain from a boot-module image; its id.
    /// `budget`: every shared vCPU's, at creation and at each restart in place.
    fn create(
        &mut self,
        domain: &ManifestDomain,
        budget: Option<(u32, u32)>,
    ) -> Result<u16, MgmtError> {
        let _ = (domain, budget);
        Err(MgmtError::NotSupported {
            what: "creating domains".into(),
        })
    }
}

/// Answers one request.
pub fn serve(req: &Request, ops: &mut impl DomainOps) -> Response {
    handle(req, ops).unwrap_or_else(Response::Error)
}

fn handle(req: &Request, ops: &mut impl DomainOps) -> Result<Response, MgmtError> {
    match req {
        Request::Hello { version } if MGMT_VERSION.accepts(*version) => Ok(Response::Hello {
            version: MGMT_VERSION,
        }),
        Request::Hello { .. } => Err(MgmtError::VersionMismatch { ours: MGMT_VERSION }),
        Request::Session { token } => Ok(Response::Session { token: *token }),
        Request::List | Request::Top => Ok(Response::Domains(rows(ops))),
        Request::Info => {
            let domains = u32::try_from(ops.domains().len()).unwrap_or(u32::MAX);
            let (free_pages, largest_free_pages) = ops.free_memory();
            Ok(Response::System(SystemInfo {
                protocol_version: ops.protocol_version(),
                counter_hz: ops.counter_hz(),
                domains,
                free_pages,
                largest_free_pages,
            }))
        }
        Request::Pause { domain } => {
            lifecycle(ops, domain, Some(DomainState::Running), |o, id| o.pause(id))
        }
        Request::Unpause { domain } => {
            lifecycle(ops, domain, Some(DomainState::Paused), |o, id| {
                o.unpause(id)
            })
        }
        Request::Destroy { domain } => lifecycle(ops, domain, None, |o, id| o.destroy(id)),
        Request::Restart { domain } => lifecycle(ops, domain, None, |o, id| o.restart(id)),
        Request::Crash { domain } => {
            lifecycle(ops, domain, Some(DomainState::Running), |o, id| o.crash(id))
        }
        Request::Hang { domain } => {
            lifecycle(ops, domain, Some(DomainState::Running), |o, id| o.hang(id))
        }
        Request::Health => {
            let mut rows = ops.health()?;
            if let Some(me) = ops.domains().iter().find(|d| d.id == DomainId::DOM0.0) {
                if !rows.iter().any(|r| r.id == me.id) {
                    rows.push(HealthRow {
                        id: me.id,
                        name: me.name.clone(),
                        incarnation: 0,
                        last_restart: None,
                        watchdog_ms: None,
                        beat_ago_ms: None,
                        held: None,
                    });
                }
            }
            rows.sort_by_key(|r| r.id);
            Ok(Response::Health(rows))
        }
        Request::Vbds { domain } => {
            let id = resolve(ops, domain)?;
            ops.vbds(id).map(Response::Vbds)
        }
        Request::Vifs { domain } => {
            let id = resolve(ops, domain)?;
            ops.vifs(id).map(Response::Vifs)
        }
        Request::Uplink { domain } => {
            let id = resolve(ops, domain)?;
            ops.uplink(id).map(Response::Uplink)
        }
        Request::ConsoleInput { domain, bytes } => {
            let id = resolve(ops, domain)?;
            if id == DomainId::DOM0.0 {
                return Err(MgmtError::NotSupported {
                    what: "input to dom0's own console over the management port".into(),
                });
            }
            match ops.console_input(id, bytes) {
                Ok(()) => Ok(Response::Done),
                Err(CapError::Stale | CapError::InvalidHandle) => Err(MgmtError::UnknownDomain),
                Err(e) => Err(MgmtError::Capability(e)),
            }
        }
        Request::Dmesg { from } => {
            let (bytes, start, end) = ops.log_read(*from).map_err(MgmtError::Capability)?;
            Ok(Response::Log { bytes, start, end })
        }
        Request::Create { domain, budget } => {
            if ops.domains().iter().any(|d| d.name == domain.name) {
                return Err(MgmtError::Refused {
                    why: format!("a domain named `{}` already exists", domain.name),
                });
            }
            ops.create(domain, *budget).map(|_| Response::Done)
        }
        Request::Shutdown { domain } => {
            lifecycle(ops, domain, Some(DomainState::Running), |o, id| {
                o.shutdown(id, ShutdownKind::PowerOff)
            })
        }
        Request::Reboot { domain } => {
            lifecycle(ops, domain, Some(DomainState::Running), |o, id| {
                o.shutdown(id, ShutdownKind::Reboot)
            })
        }
        Request::Xenstore { op } => ops.xenstore(op),
        Request::Devices { domain } => {
            let id = resolve(ops, domain)?;
            ops.devices(id).map(Response::Devices)
        }
        Request::Vcpus { domain } => vcpu_rows(ops, domain.as_ref()).map(Response::Vcpus),
        Request::VcpuSet { domain, online } => {
            let id = resolve(ops, domain)?;
            vcpu_set(ops, id, *online).map(|()| Response::Done)
        }
        Request::Upload { op } => ops.upload(op),
        Request::VcpuPin {
            domain,
            vcpu,
            pcpu,
            priority,
        } => {
            let id = resolve(ops, domain)?;
            sched::vcpu_pin(ops, id, *vcpu, *pcpu, *priority).map(|()| Response::Done)
        }
        Request::VcpuBudget {
            domain,
            vcpu,
            budget_us,
            period_us,
        } => {
            let id = resolve(ops, domain)?;
            sched::vcpu_budget(ops, id, *vcpu, (*budget_us, *period_us)).map(|()| Response::Done)
        }
        Request::ConsoleOutput { domain, from } => {
            let id = resolve(ops, domain)?;
            let (bytes, start, end) = ops.console_output(id, *from)?;
            Ok(Response::Log { bytes, start, end })
        }
        Request::LockHolds { reset } => ops
            .lock_holds(*reset)
            .map(Response::LockHolds)
            .map_err(MgmtError::Capability),
    }
}

/// `vcpu-set`: writes each vCPU's `cpu/N/availability` (the first `online` online, the rest
/// offline). Only a guest whose home has these nodes (the toolstack writes them for a
/// Xen-ABI guest) watches them; anything else is refused rather than silently ignored.
fn vcpu_set(ops: &mut impl DomainOps, id: u16, online: u16) -> Result<(), MgmtError> {
    if id == DomainId::DOM0.0 {
        return Err(MgmtError::Dom0Protected);
    }
    let vcpus = ops.query(id)?.vcpus;
    if online == 0 || online > vcpus {
        return Err(MgmtError::Refused {
            why: format!("{online} vCPUs online: the domain has {vcpus}; give 1 to {vcpus}"),
        });
    }
    let node = |v: u16| format!("/local/domain/{id}/cpu/{v}/availability");
    if !matches!(
        ops.xenstore(&XenstoreOp::Read { path: node(0) }),
        Ok(Response::Xenstore(_))
    ) {
        return Err(MgmtError::NotSupported {
            what: "vcpu-set of a domain without cpu/N/availability in xenstore (only Xen-ABI guests such as Linux watch them)".into(),
        });
    }
    for v in 0..vcpus {
        let value: &[u8] = if v < online { b"online" } else { b"offline" };
        ops.xenstore(&XenstoreOp::Write {
            path: node(v),
            value: value.to_vec(),
        })?;
    }
    Ok(())
}

/// `vcpu-list`: one domain's vCPUs, or every domain's in id order (a domain destroyed
/// meanwhile is left out of the full listing; asked for by name, it is an error).
fn vcpu_rows(
    ops: &mut impl DomainOps,
    domain: Option<&DomainRef>,
) -> Result<Vec<VcpuRow>, MgmtError> {
    let mut targets: Vec<(u16, String)> = match domain {
        Some(r) => {
            let id = resolve(ops, r)?;
            let name = ops.query(id).map_err(MgmtError::from)?.name;
            alloc::vec![(id, name)]
        }
        None => ops.domains().into_iter().map(|d| (d.id, d.name)).collect(),
    };
    targets.sort_by_key(|t| t.0);
    let mut rows = Vec::new();
    for (id, name) in targets {
        match ops.vcpus(id) {
            Ok(v) => rows.extend(v.iter().map(|i| VcpuRow::new(id, &name, i))),
            Err(e) if domain.is_some() => return Err(e.into()),
            Err(_) => {}
        }
    }
    Ok(rows)
}

/// Every domain that answers a query, in id order. A domain whose query fails (destroyed
/// between `domains()` and `query()`) is left out rather than failing the whole listing.
fn rows(ops: &mut impl DomainOps) -> Vec<DomainRow> {
    let mut rows: Vec<DomainRow> = ops
        .domains()
        .iter()
        .filter_map(|d| ops.query(d.id).ok())
        .map(DomainRow::from)
        .collect();
    rows.sort_by_key(|r| r.id);
    rows
}

/// The id `r` names.
fn resolve(ops: &mut impl DomainOps, r: &DomainRef) -> Result<u16, MgmtError> {
    ops.domains()
        .iter()
        .find(|d| match r {
            DomainRef::Name(n) => d.name == *n,
            DomainRef::Id(id) => d.id == *id,
        })
        .map(|d| d.id)
        .ok_or(MgmtError::UnknownDomain)
}

/// The state of domain `id`; a domain that vanished under us is unknown.
fn state(ops: &mut impl DomainOps, id: u16) -> Result<DomainState, MgmtError> {
    match ops.query(id) {
        Ok(info) => Ok(info.state),
        Err(CapError::Stale | CapError::InvalidHandle) => Err(MgmtError::UnknownDomain),
        Err(e) => Err(MgmtError::Capability(e)),
    }
}

/// Resolves `r`, refuses dom0, checks the domain is in `required` (if any), then runs `op`.
fn lifecycle<O: DomainOps>(
    ops: &mut O,
    r: &DomainRef,
    required: Option<DomainState>,
    op: impl FnOnce(&mut O, u16) -> Result<(), CapError>,
) -> Result<Response, MgmtError> {
    let id = resolve(ops, r)?;
    if id == DomainId::DOM0.0 {
        return Err(MgmtError::Dom0Protected);
    }
    let before = state(ops, id)?;
    if required.is_some_and(|s| s != before) {
        return Err(MgmtError::WrongState { state: before });
    }
    match op(ops, id) {
        Ok(()) => Ok(Response::Done),
        // The state changed between our check and the call: report the state now.
        Err(CapError::WrongState) => Err(MgmtError::WrongState {
            state: state(ops, id).unwrap_or(before),
        }),
        Err(CapError::Stale | CapError::InvalidHandle) => Err(MgmtError::UnknownDomain),
        Err(e) => Err(MgmtError::Capability(e)),
    }
}

/// The byte-stream side of the service: feed it what the management port delivered, write
/// back what it returns.
#[derive(Clone, Debug, Default)]
pub struct Server {
    decoder: FrameDecoder,
}

impl Server {
    /// A server waiting for a frame.
    pub const fn new() -> Self {
        Self {
            decoder: FrameDecoder::new(),
        }
    }

    /// Serves every request `bytes` completes; returns the response frames to send (empty
    /// until a request is complete). A frame that is not a request is answered with
    /// `Error(BadRequest)` or `Error(TooLarge)`, so the client never waits in vain.
    pub fn input(&mut self, bytes: &[u8], ops: &mut impl DomainOps) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(reply) = self.push(b, ops) {
                out.extend(reply);
            }
        }
        out
    }

    /// Takes one byte; when it ends a frame, serves it and returns the response frame (at
    /// most `MAX_FRAME` bytes). [`link::Link`] uses this to stop between requests.
    pub fn push(&mut self, byte: u8, ops: &mut impl DomainOps) -> Option<Vec<u8>> {
        let frame = self.decoder.push(byte)?;
        let resp = match frame.and_then(|f| decode::<Request>(&f)) {
            Ok(req) => serve(&req, ops),
            Err(e) => Response::Error(e.into()),
        };
        Some(
            encode(&resp)
                .or_else(|e| encode(&Response::Error(e.into())))
                .unwrap_or_default(),
        )
    }

    /// Forgets a partial request (the host side disconnected).
    pub fn reset(&mut self) {
        self.decoder.reset();
    }
}

pub mod link;
mod sched;
pub mod xs;

#[cfg(test)]
mod tests;
