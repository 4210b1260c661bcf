//! The vbds dom0's toolstack gave us, each tied to its core entry, its mapped ring and its
//! bound channel; the core's handshake [`Action`]s performed on xenstore and the ABI.

use super::hw::{GrantCopier, MappedRing};
use super::OwnedDisk;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use blkdom::{Action, Counters, Step, VbdConfig, VbdId, VbdState, VbdTable};
use bulkhead_runtime::publish::Published;
use bulkhead_runtime::xenstore::{XsClient, XsError};
use bulkhead_runtime::{println, timer, xen};
use protocol::mgmt::{VbdCounters, VBD_COUNTERS_KEY};
use protocol::xen::xenbus::XenbusState;

/// How often a vbd's counters are published at most (`ctl info` reads them).
const PUBLISH_MS: u64 = 1000;

/// Grant-map slots per vbd: room for the largest ring we offer (order 4).
const SLOTS_PER_VBD: u32 = 16;

/// One vbd as the shell sees it.
struct Conn {
    frontend: u16,
    devid: u32,
    id: VbdId,
    disk: usize,
    /// `backend/vbd/<fe>/<devid>`, relative to our home.
    dir: String,
    /// The frontend's directory (absolute).
    frontend_dir: String,
    /// First grant-map slot of this vbd's ring.
    slot: u32,
    ring: Option<MappedRing>,
    port: Option<u32>,
    /// Its directory vanished (the guest went): ring and port released.
    gone: bool,
    /// The counters last published, and when.
    published: Published<Counters>,
}

/// Every vbd, and the grant engine their rings' data moves through.
#[derive(Default)]
pub struct Conns {
    conns: Vec<Conn>,
    grants: GrantCopier,
}

impl Conns {
    /// Finds new vbds under `backend/vbd` and forgets removed ones. Only a directory the
    /// store says is gone counts as removed: a failed read (a timeout while dom0 is busy)
    /// removes nothing.
    pub fn scan(&mut self, xs: &mut XsClient, table: &mut VbdTable, disks: &[OwnedDisk]) {
        let mut present: Vec<(u16, u32)> = Vec::new();
        let mut complete = true;
        let frontends = xs.listing("backend/vbd").unwrap_or_else(|| {
            complete = false;
            Vec::new()
        });
        for fe in frontends {
            let Ok(frontend) = fe.parse::<u16>() else {
                continue;
            };
            let Some(devs) = xs.listing(&format!("backend/vbd/{fe}")) else {
                complete = false;
                continue;
            };
            for dev in devs {
                if let Ok(devid) = dev.parse::<u32>() {
                    present.push((frontend, devid));
                }
            }
        }
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if complete && !c.gone && !present.contains(&(c.frontend, c.devid)) {
                println!("vbd d{}/{}: removed by the toolstack", c.frontend, c.devid);
                self.disconnect(i, table);
                self.conns[i].gone = true;
            }
        }
        for (frontend, devid) in present {
            let live = self
                .conns
                .iter()
                .position(|c| !c.gone && c.frontend == frontend && c.devid == devid);
            match live {
                Some(i) => self.check_rewritten(i, xs, table, disks),
                None => self.add(frontend, devid, xs, table, disks),
            }
        }
    }

    /// dom0 removes and rewrites a vbd's nodes when its guest restarts in place, often
    /// between two of our scans: our `state` back at Initialising is the sign
    /// ([`VbdTable::rewritten`]). The old ring and channel belong to the guest's previous
    /// life: release them and take the vbd as new (same entry, fresh handshake).
    fn check_rewritten(
        &mut self,
        i: usize,
        xs: &mut XsClient,
        table: &mut VbdTable,
        disks: &[OwnedDisk],
    ) {
        let c = &self.conns[i];
        let Some(found) = xs.text(&format!("{}/state", c.dir)) else {
            return;
        };
        if !table.rewritten(c.id, XenbusState::parse(found.as_bytes())) {
            return;
        }
        let (frontend, devid) = (c.frontend, c.devid);
        println!("vbd d{frontend}/{devid}: written afresh (its guest restarted): reconnecting");
        self.disconnect(i, table);
        self.conns[i].gone = true;
        self.add(frontend, devid, xs, table, disks);
    }

    fn add(
        &mut self,
        frontend: u16,
        devid: u32,
        xs: &mut XsClient,
        table: &mut VbdTable,
        disks: &[OwnedDisk],
    ) {
        let dir = format!("backend/vbd/{frontend}/{devid}");
        // dom0 writes `state` last: until it is there the directory is half written.
        let Some(state) = xs.text(&format!("{dir}/state")) else {
            return;
        };
        let (Some(params), Some(frontend_dir)) = (
            xs.text(&format!("{dir}/params")),
            xs.text(&format!("{dir}/frontend")),
        ) else {
            return;
        };
        let Some(disk) = disks.iter().position(|d| d.serial == params) else {
            println!("vbd d{frontend}/{devid}: no disk with serial {params}");
            return;
        };
        let read_only = xs.text(&format!("{dir}/mode")).as_deref() != Some("w");
        let config = VbdConfig {
            frontend,
            devid,
            disk,
            read_only,
        };
        let info = blkdom::io::Disk::info(&disks[disk].disk);
        // Reuse the entry (and its ring slots) of a vbd that went away.
        let reuse = self
            .conns
            .iter()
            .position(|c| c.gone && c.frontend == frontend && c.devid == devid);
        let (i, id) = match reuse {
            Some(i) => {
                let id = self.conns[i].id;
                table.replace(id, config, info);
                (i, id)
            }
            None => {
                let id = table.add(config, info);
                let slot = self.conns.len() as u32 * SLOTS_PER_VBD;
                self.conns.push(Conn {
                    frontend,
                    devid,
                    id,
                    disk,
                    dir: String::new(),
                    frontend_dir: String::new(),
                    slot,
                    ring: None,
                    port: None,
                    gone: false,
                    published: Published::as_if(Counters::default(), 0),
                });
                (self.conns.len() - 1, id)
            }
        };
        let token = format!("fe:{frontend}:{devid}");
        let c = &mut self.conns[i];
        c.gone = false;
        c.disk = disk;
        c.dir = dir;
        c.frontend_dir = frontend_dir.clone();
        println!(
            "vbd d{frontend}/{devid}: disk {params}{}",
            if read_only { " (read-only)" } else { "" }
        );
        let backend = XenbusState::parse(state.as_bytes());
        let resuming = backend == XenbusState::Connected;
        let step = if resuming {
            // A previous instance of us had it connected: pick the ring up where it was.
            let fe_state = xs.xenbus_state(&frontend_dir);
            table.resume(id, backend, fe_state, |k| {
                xs.text(&format!("{frontend_dir}/{k}"))
            })
        } else {
            table.start(id)
        };
        self.perform(i, step, xs, table);
        if resuming {
            self.report_resume(i, table);
        }
        match xs.watch(&format!("{frontend_dir}/state"), &token) {
            Ok(()) => {}
            // Watched already, for the vbd's previous life.
            Err(XsError::Store(e)) if e == "EEXIST" => {}
            Err(e) => println!("vbd d{frontend}/{devid}: cannot watch the frontend: {e:?}"),
        }
    }

    /// Logs how a vbd found Connected was picked up: the replay window of its ring (the
    /// requests the previous instance left unanswered), or that it had to start over.
    fn report_resume(&self, i: usize, table: &VbdTable) {
        let c = &self.conns[i];
        let ring = table.get(c.id).and_then(|v| v.ring().copied());
        match (ring, c.ring.as_ref(), c.port) {
            (Some(r), Some(mem), Some(_)) => {
                let replay = r.pending(mem).unwrap_or(0);
                println!(
                    "vbd d{}/{}: resumed at response {}: {replay} request(s) to replay",
                    c.frontend,
                    c.devid,
                    r.rsp_prod_pvt()
                );
            }
            _ => println!(
                "vbd d{}/{}: was connected, cannot be resumed: starting over",
                c.frontend, c.devid
            ),
        }
    }

    /// A frontend's `state` watch fired.
    pub fn frontend_event(&mut self, token: &str, xs: &mut XsClient, table: &mut VbdTable) {
        let mut parts = token.split(':').skip(1);
        let (Some(Ok(frontend)), Some(Ok(devid))) = (
            parts.next().map(str::parse::<u16>),
            parts.next().map(str::parse::<u32>),
        ) else {
            return;
        };
        let Some(i) = self
            .conns
            .iter()
            .position(|c| !c.gone && c.frontend == frontend && c.devid == devid)
        else {
            return;
        };
        let dir = self.conns[i].frontend_dir.clone();
        let state = xs.xenbus_state(&dir);
        let id = self.conns[i].id;
        let step = table.frontend_changed(id, state, |k| xs.text(&format!("{dir}/{k}")));
        if step
            .actions
            .contains(&Action::SetState(XenbusState::InitWait))
        {
            println!(
                "vbd d{frontend}/{devid}: its frontend reinitialised: offering a fresh connection"
            );
        }
        self.perform(i, step, xs, table);
    }

    /// Performs the core's actions for conn `i`, in order.
    fn perform(&mut self, i: usize, step: Step, xs: &mut XsClient, table: &mut VbdTable) {
        let (frontend, devid) = (self.conns[i].frontend, self.conns[i].devid);
        if let Some(e) = &step.error {
            println!("vbd d{frontend}/{devid}: {e}");
        }
        for action in step.actions {
            let dir = self.conns[i].dir.clone();
            match action {
                Action::Write { key, value } => {
                    let _ = xs.write(&format!("{dir}/{key}"), value.as_bytes());
                }
                Action::SetState(s) => {
                    let _ = xs.write(&format!("{dir}/state"), s.as_str().as_bytes());
                }
                Action::MapRing { order, grefs } => {
                    let c = &mut self.conns[i];
                    match map_ring(frontend, c.slot, &grefs) {
                        Some(mut ring) => {
                            if table.connect(c.id, order, &mut ring).is_ok() {
                                c.ring = Some(ring);
                            } else {
                                ring.unmap();
                                let s = table.connect_failed(c.id);
                                return self.perform(i, s, xs, table);
                            }
                        }
                        None => {
                            println!("vbd d{frontend}/{devid}: cannot map the ring");
                            let s = table.connect_failed(c.id);
                            return self.perform(i, s, xs, table);
                        }
                    }
                }
                Action::BindEvtchn { port } => match xen::evtchn_bind_interdomain(frontend, port) {
                    Ok(local) => self.conns[i].port = Some(local),
                    Err(e) => {
                        println!("vbd d{frontend}/{devid}: cannot bind its channel: {e}");
                        self.disconnect(i, table);
                        let s = table.connect_failed(self.conns[i].id);
                        return self.perform(i, s, xs, table);
                    }
                },
                Action::Disconnect => self.disconnect(i, table),
            }
        }
    }

    /// Releases conn `i`'s channel, ring and kept grant maps (the connection ended, or the
    /// vbd was removed or rewritten).
    fn disconnect(&mut self, i: usize, table: &mut VbdTable) {
        let c = &mut self.conns[i];
        if let Some(port) = c.port.take() {
            let _ = xen::evtchn_close(port);
        }
        if let Some(ring) = c.ring.take() {
            ring.unmap();
        }
        table.release_grants(c.id, &mut self.grants);
    }

    /// Serves every connected ring once; true if some ring has more waiting.
    pub fn serve(
        &mut self,
        table: &mut VbdTable,
        disks: &mut [OwnedDisk],
        xs: &mut XsClient,
    ) -> bool {
        let mut more = false;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            let (Some(ring), false) = (c.ring.as_mut(), c.gone) else {
                continue;
            };
            if table.get(c.id).map(|v| v.state()) != Some(VbdState::Connected) {
                continue;
            }
            let Some(disk) = disks.get_mut(c.disk) else {
                continue;
            };
            let p = table.poll(c.id, ring, &mut disk.disk, &mut self.grants);
            if p.notify {
                if let Some(port) = c.port {
                    let _ = xen::evtchn_send(port);
                }
            }
            more |= p.more;
            if let Some(reason) = p.halted {
                self.halted(i, reason, p.step, xs, table, &*disks);
            }
        }
        more
    }

    /// Conn `i`'s ring broke the protocol. A guest restarted or destroyed takes its ring
    /// pages with it (they read as zeros here from then on), and dom0 removes or rewrites
    /// the vbd before that: no fault of a frontend, and our Closing must not land in the
    /// new vbd's nodes.
    fn halted(
        &mut self,
        i: usize,
        reason: blkdom::HaltReason,
        step: Step,
        xs: &mut XsClient,
        table: &mut VbdTable,
        disks: &[OwnedDisk],
    ) {
        let c = &self.conns[i];
        let (frontend, devid) = (c.frontend, c.devid);
        match xs.text(&format!("{}/state", c.dir)) {
            None => {
                println!("vbd d{frontend}/{devid}: its guest went ({reason})");
                self.disconnect(i, table);
            }
            Some(s) if table.rewritten(c.id, XenbusState::parse(s.as_bytes())) => {
                self.check_rewritten(i, xs, table, disks);
            }
            Some(_) => {
                println!("vbd d{frontend}/{devid}: {reason}: ring stopped");
                self.perform(i, step, xs, table);
            }
        }
    }

    /// Writes each vbd's counters to xenstore when they changed, at most once per
    /// [`PUBLISH_MS`]. Returns when a change held back by that limit is due (`u64::MAX`:
    /// none), for the loop to wake then.
    pub fn publish(&mut self, table: &VbdTable, xs: &mut XsClient) -> u64 {
        let now = timer::now();
        let period = timer::ms_to_ticks(PUBLISH_MS, timer::freq());
        let mut owed = u64::MAX;
        for c in self.conns.iter_mut().filter(|c| !c.gone) {
            let Some(v) = table.get(c.id) else { continue };
            if !c.published.due_now(&v.counters, now, period, &mut owed) {
                continue;
            }
            let k = v.counters;
            let text = VbdCounters::from(k).encode();
            let _ = xs.write(&format!("{}/{VBD_COUNTERS_KEY}", c.dir), text.as_bytes());
            c.published.record(k, now);
        }
        owed
    }
}

/// Maps a ring's pages at consecutive grant-map slots from `slot`.
fn map_ring(frontend: u16, slot: u32, grefs: &[u32]) -> Option<MappedRing> {
    let mut ring = MappedRing { pages: Vec::new() };
    for (n, &gref) in grefs.iter().enumerate() {
        match xen::grant_map(frontend, gref, slot + n as u32) {
            Ok(p) => ring.pages.push(p),
            Err(_) => {
                ring.unmap();
                return None;
            }
        }
    }
    Some(ring)
}
