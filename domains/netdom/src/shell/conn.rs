//! The vifs dom0's toolstack gave us, each tied to its core entry, its mapped rings and
//! its bound channel; the core's handshake [`Action`]s performed on xenstore and the ABI.
//!
//! Conn `i` always serves the core's `VifId(i)`: a vif that goes away keeps its entry, and
//! the next vif of the same frontend and devid reuses it.

use super::hw::{GrantCopier, RingPage, Rings, ShellIo};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bulkhead_runtime::publish::Published;
use bulkhead_runtime::xenstore::{XsClient, XsError};
use bulkhead_runtime::{println, timer, xen};
use netdom::{parse_mac, Action, MacText, Netback, Step, VifConfig, VifId, VifState};
use protocol::mgmt::{UplinkCounters, VifCounters, UPLINK_COUNTERS_KEY, VIF_COUNTERS_KEY};
use protocol::xen::xenbus::XenbusState;

/// How often a vif's counters are published at most (`ctl info` reads them).
const PUBLISH_MS: u64 = 1000;

/// One vif as the shell sees it.
pub struct Conn {
    frontend: u16,
    devid: u32,
    /// `backend/vif/<fe>/<devid>`, relative to our home.
    dir: String,
    /// The frontend's directory (absolute).
    frontend_dir: String,
    /// Its two ring pages, when mapped.
    pub rings: Option<Rings>,
    port: Option<u32>,
    /// Its directory vanished (the guest went): rings and port released.
    gone: bool,
    /// The counters last published, and when; none yet for a new vif.
    published: Published<VifCounters>,
}

/// Every vif.
#[derive(Default)]
pub struct Conns {
    pub conns: Vec<Conn>,
    /// The uplink's counters last published, and when.
    uplink: Published<UplinkCounters>,
}

impl Conns {
    /// Finds new vifs under `backend/vif` and forgets removed ones (only a directory the
    /// store says is gone counts as removed).
    pub fn scan(&mut self, xs: &mut XsClient, nb: &mut Netback, grants: &mut GrantCopier) {
        let mut present: Vec<(u16, u32)> = Vec::new();
        let mut complete = true;
        let frontends = xs.listing("backend/vif").unwrap_or_else(|| {
            complete = false;
            Vec::new()
        });
        for fe in frontends {
            let Ok(frontend) = fe.parse::<u16>() else {
                continue;
            };
            let Some(devs) = xs.listing(&format!("backend/vif/{fe}")) else {
                complete = false;
                continue;
            };
            present.extend(
                devs.iter()
                    .filter_map(|d| d.parse().ok().map(|d| (frontend, d))),
            );
        }
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if complete && !c.gone && !present.contains(&(c.frontend, c.devid)) {
                println!("vif {}/{} removed", c.frontend, c.devid);
                self.disconnect(i);
                self.conns[i].gone = true;
                nb.remove(VifId(i));
            }
        }
        for (frontend, devid) in present {
            let live = self
                .conns
                .iter()
                .position(|c| !c.gone && c.frontend == frontend && c.devid == devid);
            match live {
                Some(i) => self.check_rewritten(i, xs, nb, grants),
                None => self.add(frontend, devid, xs, nb, grants),
            }
        }
    }

    /// dom0 removes and rewrites a vif's nodes when its guest restarts in place, often
    /// between two of our scans: our `state` back at Initialising is the sign. The old
    /// rings and channel belong to the guest's previous life; start over.
    fn check_rewritten(
        &mut self,
        i: usize,
        xs: &mut XsClient,
        nb: &mut Netback,
        grants: &mut GrantCopier,
    ) {
        let c = &self.conns[i];
        let Some(found) = xs.text(&format!("{}/state", c.dir)) else {
            return;
        };
        if !nb.rewritten(VifId(i), XenbusState::parse(found.as_bytes())) {
            return;
        }
        println!(
            "vif {}/{}: written afresh (its guest restarted): reconnecting",
            c.frontend, c.devid
        );
        let dir = c.frontend_dir.clone();
        let fe = xs.xenbus_state(&dir);
        let step = nb.reincarnate(VifId(i), fe, |k| xs.text(&format!("{dir}/{k}")));
        self.perform(i, step, xs, nb, grants);
    }

    fn add(
        &mut self,
        frontend: u16,
        devid: u32,
        xs: &mut XsClient,
        nb: &mut Netback,
        grants: &mut GrantCopier,
    ) {
        let dir = format!("backend/vif/{frontend}/{devid}");
        // dom0 writes `state` last: until it is there the directory is half written.
        let Some(state) = xs.text(&format!("{dir}/state")) else {
            return;
        };
        let (Some(mac_text), Some(frontend_dir)) = (
            xs.text(&format!("{dir}/mac")),
            xs.text(&format!("{dir}/frontend")),
        ) else {
            return;
        };
        let Some(mac) = parse_mac(&mac_text) else {
            println!("vif {frontend}/{devid}: mac {mac_text:?} is not a MAC address");
            return;
        };
        let config = VifConfig {
            frontend,
            devid,
            mac,
        };
        let reuse = self
            .conns
            .iter()
            .position(|c| c.gone && c.frontend == frontend && c.devid == devid);
        let i = match reuse {
            Some(i) => {
                nb.replace(VifId(i), config);
                i
            }
            None => {
                let id = nb.add(config);
                self.conns.push(Conn {
                    frontend,
                    devid,
                    dir: String::new(),
                    frontend_dir: String::new(),
                    rings: None,
                    port: None,
                    gone: false,
                    published: Published::new(),
                });
                debug_assert_eq!(id.0, self.conns.len() - 1);
                id.0
            }
        };
        let c = &mut self.conns[i];
        c.gone = false;
        c.dir = dir;
        c.frontend_dir = frontend_dir.clone();
        c.published = Published::new();
        println!("vif {frontend}/{devid}: mac {}", MacText(mac));
        let backend = XenbusState::parse(state.as_bytes());
        let id = VifId(i);
        let step = if backend == XenbusState::Connected {
            // A previous instance of us had it connected (we were restarted in place; dom0
            // kept the vif's nodes): take the rings up where it left them.
            let fe_state = xs.xenbus_state(&frontend_dir);
            nb.resume(id, backend, fe_state, |k| {
                xs.text(&format!("{frontend_dir}/{k}"))
            })
        } else {
            nb.start(id)
        };
        self.perform(i, step, xs, nb, grants);
        let token = format!("fe:{frontend}:{devid}");
        match xs.watch(&format!("{frontend_dir}/state"), &token) {
            Ok(()) => {}
            // Watched already, for the vif's previous life.
            Err(XsError::Store(e)) if e == "EEXIST" => {}
            Err(e) => println!("vif {frontend}/{devid}: cannot watch the frontend: {e:?}"),
        }
    }

    /// A frontend's `state` watch fired.
    pub fn frontend_event(
        &mut self,
        token: &str,
        xs: &mut XsClient,
        nb: &mut Netback,
        grants: &mut GrantCopier,
    ) {
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
        let step = nb.frontend_changed(VifId(i), state, |k| xs.text(&format!("{dir}/{k}")));
        self.perform(i, step, xs, nb, grants);
    }

    /// Performs the core's actions for conn `i`, in order.
    pub fn perform(
        &mut self,
        i: usize,
        step: Step,
        xs: &mut XsClient,
        nb: &mut Netback,
        grants: &mut GrantCopier,
    ) {
        let (frontend, devid) = (self.conns[i].frontend, self.conns[i].devid);
        if let Some(e) = &step.error {
            println!("vif {frontend}/{devid}: {e}");
        }
        let id = VifId(i);
        for action in step.actions {
            let dir = self.conns[i].dir.clone();
            match action {
                Action::Write { key, value } => {
                    let _ = xs.write(&format!("{dir}/{key}"), value.as_bytes());
                }
                Action::SetState(s) => {
                    let _ = xs.write(&format!("{dir}/state"), s.as_str().as_bytes());
                }
                Action::MapRings { tx, rx } => {
                    // Two grant-map slots per vif, fixed by its index.
                    let slot = 2 * i as u32;
                    let tx = RingPage::map(frontend, tx, slot);
                    let rx = RingPage::map(frontend, rx, slot + 1);
                    let (Some(tx), Some(rx)) = (tx, rx) else {
                        println!("vif {frontend}/{devid}: cannot map its rings");
                        let s = nb.connect_failed(id);
                        return self.perform(i, s, xs, nb, grants);
                    };
                    self.conns[i].rings = Some(Rings { tx, rx });
                    let mut io = ShellIo {
                        conns: &mut self.conns,
                        grants,
                        nic: None,
                    };
                    if !nb.connect(id, &mut io) {
                        self.disconnect(i);
                        let s = nb.connect_failed(id);
                        return self.perform(i, s, xs, nb, grants);
                    }
                    if let Some(r) = nb.take_resumed(id) {
                        println!(
                            "vif {frontend}/{devid} resumed tx at {} rx at {} ({} tx packet(s) dropped, {} rx slot(s) completed)",
                            r.tx_at, r.rx_at, r.tx_dropped, r.rx_completed
                        );
                    }
                }
                Action::BindEvtchn { port } => match xen::evtchn_bind_interdomain(frontend, port) {
                    Ok(local) => {
                        self.conns[i].port = Some(local);
                        if let Some(v) = nb.get(id) {
                            println!(
                                "vif {frontend}/{devid} connected mac={}{}",
                                MacText(v.config.mac),
                                if v.handshake.sg() { " sg" } else { "" }
                            );
                        }
                    }
                    Err(e) => {
                        println!("vif {frontend}/{devid}: cannot bind its channel: {e}");
                        self.disconnect(i);
                        let s = nb.connect_failed(id);
                        return self.perform(i, s, xs, nb, grants);
                    }
                },
                Action::Disconnect => {
                    self.disconnect(i);
                    let u = nb.uplink;
                    println!(
                        "vif {frontend}/{devid} disconnected (uplink so far: {} in, {} out, {} dropped)",
                        u.rx_frames, u.tx_frames, u.tx_drops
                    );
                }
            }
        }
    }

    fn disconnect(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(port) = c.port.take() {
            let _ = xen::evtchn_close(port);
        }
        if let Some(r) = c.rings.take() {
            r.tx.unmap();
            r.rx.unmap();
        }
    }

    /// Whether conn `i` is being served.
    pub fn live(&self, i: usize, nb: &Netback) -> bool {
        let c = &self.conns[i];
        !c.gone
            && c.rings.is_some()
            && nb.get(VifId(i)).map(|v| v.state()) == Some(VifState::Connected)
    }

    /// Sends the events the core asked for, and logs and performs its halts.
    pub fn after(&mut self, nb: &mut Netback, xs: &mut XsClient, grants: &mut GrantCopier) {
        for id in nb.take_notify() {
            if let Some(port) = self.conns.get(id.0).and_then(|c| c.port) {
                let _ = xen::evtchn_send(port);
            }
        }
        for (id, reason, step) in nb.take_halts() {
            let c = &self.conns[id.0];
            // A guest restarted or destroyed takes its ring pages with it (they read as
            // zeros here from then on), and dom0 removes or rewrites the vif before that:
            // no fault of a frontend, and our Closing must not land in the new vif's nodes.
            match xs.text(&format!("{}/state", c.dir)) {
                None => {
                    println!("vif {}/{}: its guest went ({reason})", c.frontend, c.devid);
                    self.disconnect(id.0);
                }
                Some(s) if nb.rewritten(id, XenbusState::parse(s.as_bytes())) => {
                    self.check_rewritten(id.0, xs, nb, grants);
                }
                Some(_) => {
                    println!("vif {}/{}: {reason}: vif stopped", c.frontend, c.devid);
                    self.perform(id.0, step, xs, nb, grants);
                }
            }
        }
    }

    /// Writes each vif's counters to xenstore, and the uplink's if there is a `nic`: once
    /// when it appears, then when they changed, at most once per [`PUBLISH_MS`]. Returns
    /// when a change held back by that limit is due (`u64::MAX`: none), for the loop to
    /// wake then.
    pub fn publish(&mut self, nb: &Netback, nic: bool, xs: &mut XsClient) -> u64 {
        let now = timer::now();
        let period = timer::ms_to_ticks(PUBLISH_MS, timer::freq());
        let mut owed = u64::MAX;
        let u = nb.uplink;
        if nic && self.uplink.due_now(&u, now, period, &mut owed) {
            // Under our own home's `data`, outside the `backend/vif` tree we watch.
            let _ = xs.write(UPLINK_COUNTERS_KEY, u.encode().as_bytes());
            self.uplink.record(u, now);
        }
        for (i, c) in self.conns.iter_mut().enumerate().filter(|(_, c)| !c.gone) {
            let Some(v) = nb.get(VifId(i)) else { continue };
            if !c.published.due_now(&v.counters, now, period, &mut owed) {
                continue;
            }
            let text = v.counters.encode();
            let _ = xs.write(&format!("{}/{VIF_COUNTERS_KEY}", c.dir), text.as_bytes());
            c.published.record(v.counters, now);
        }
        owed
    }
}
