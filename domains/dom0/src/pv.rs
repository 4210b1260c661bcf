//! dom0's PV backends for every child domain: the xenstore server and the PV console
//! backend, over the rings the microvisor set up in each child's magic pages.
//!
//! For each child the microvisor pre-granted dom0 its console page (grant ref 0) and its
//! xenstore page (ref 1) and left one unbound event channel per ring for dom0. [`Backends`]
//! maps both pages by grant, binds both channels, introduces the domain to xenstore, and
//! from then on moves bytes: console output to the child's console (so `ctl console`, the
//! focus switch and `dmesg` work as for our own domains), queued console input into the
//! ring, and xenstore requests through [`dom0::xenstore::Xenstore`]. The byte moving itself
//! (bounded per pass, a corrupt ring stopping only its child) is [`dom0::pvcore`]; this
//! file maps, binds and issues the hypercalls.
//!
//! Attachment follows the supervisor: [`Backends::sync`] (run right before each
//! [`Backends::poll`]) detaches from domains that were destroyed or restarted (their pages
//! go away with the old incarnation) and attaches to new incarnations as soon as they
//! exist.

mod vbd;
mod vif;

use alloc::format;
use alloc::vec::Vec;
use bulkhead_runtime::xen::{self, MappedPage};
use bulkhead_runtime::{cap, println};
use dom0::pvcore::{Child, Event, Pv, PvHost, Ring};
use dom0::xenstore::{Access, Perm, Quotas, Xenstore};
use dom0::Supervisor;
use protocol::cap::CapHandle;
use protocol::xen::xenbus::XenbusState;
use protocol::xen::HvmParam;

/// `GNTTAB_RESERVED_CONSOLE`.
const GREF_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`.
const GREF_XENSTORE: u32 = 1;
/// Grant-map slots per child (console, xenstore).
const SLOTS_PER_CHILD: u32 = 2;

/// One mapped ring page's grant handle and bound channel.
#[derive(Clone, Copy)]
struct Link {
    handle: u32,
    port: u32,
}

/// What the shell keeps per child beside its pages.
struct Links {
    /// The child's Domain capability (its console is written through it).
    handle: CapHandle,
    console: Link,
    store: Link,
    /// Its pair of grant-map slots (console, xenstore).
    pair: u32,
}

/// The hypercalls the core's passes need.
struct Host;

impl PvHost<Links> for Host {
    fn console_write(&mut self, child: &Links, bytes: &[u8]) -> bool {
        cap::console_write_for(child.handle, bytes).is_ok()
    }

    fn console_read(&mut self, child: &Links, buf: &mut [u8]) -> usize {
        cap::console_read_for(child.handle, buf).unwrap_or(0)
    }

    fn notify(&mut self, child: &Links, ring: Ring) {
        let link = match ring {
            Ring::Console => child.console,
            Ring::Store => child.store,
        };
        let _ = xen::evtchn_send(link.port);
    }
}

/// Every child's backends.
pub struct Backends {
    core: Pv<MappedPage, Links>,
    /// Grant-map slot pairs in use (index = pair number).
    pairs: Vec<bool>,
    /// Virtual block devices: what to write, what is written.
    vbds: vbd::Wiring,
    /// Virtual network interfaces: what to write, what is written.
    vifs: vif::Wiring,
    /// Held domains whose served connections are closed (see [`Backends::close_held`]).
    closed: Vec<u16>,
    /// Console input may have arrived for a child since the last pass
    /// ([`Backends::input_arrived`]).
    input_due: bool,
}

impl Backends {
    /// No children yet; maps our shared_info so backend channels raise our upcall.
    pub fn new() -> Self {
        if let Err(e) = xen::map_shared_info() {
            // Without it the rings still work, at the loop's polling period.
            println!("xen: cannot map shared_info ({e}): polling PV rings");
        }
        Self {
            core: Pv::new(Xenstore::new(Quotas::default())),
            pairs: Vec::new(),
            vbds: vbd::Wiring::default(),
            vifs: vif::Wiring::default(),
            closed: Vec::new(),
            input_due: false,
        }
    }

    /// The xenstore, for the host's `ctl xenstore` (changes fire watches; the next pass
    /// of the loop delivers them).
    pub fn xenstore(&mut self) -> &mut Xenstore {
        &mut self.core.xs
    }

    /// Up to `max` bytes of child `domid`'s raw PV console output from offset `from` (see
    /// [`dom0::bytelog`]); `None` if it does not use its PV console.
    pub fn console_output(&self, domid: u16, from: u64, max: usize) -> Option<(Vec<u8>, u64, u64)> {
        self.core
            .children
            .iter()
            .find(|c| c.domid == domid && c.console_used)
            .map(|c| c.output.read(from, max))
    }

    /// Attaches to new incarnations and detaches from gone ones (see the module docs).
    pub fn sync(&mut self, sup: &Supervisor) {
        let live: Vec<(u16, CapHandle, &str)> = sup
            .domains()
            .iter()
            .filter(|w| !w.is_gone())
            .map(|w| (w.domid, w.handle, w.name.as_str()))
            .collect();
        let stale: Vec<u16> = self
            .core
            .children
            .iter()
            .filter(|c| !live.iter().any(|l| l.0 == c.domid && l.1 == c.extra.handle))
            .map(|c| c.domid)
            .collect();
        for domid in stale {
            self.detach(domid);
        }
        for (domid, handle, name) in live {
            if !self.core.children.iter().any(|c| c.domid == domid) {
                self.attach(domid, handle, name);
            }
        }
        self.wire_vbds(sup);
        self.wire_vifs(sup);
    }

    fn pair(&mut self) -> u32 {
        match self.pairs.iter().position(|used| !used) {
            Some(i) => {
                self.pairs[i] = true;
                i as u32
            }
            None => {
                self.pairs.push(true);
                (self.pairs.len() - 1) as u32
            }
        }
    }

    fn link(
        domid: u16,
        gref: u32,
        slot: u32,
        param: HvmParam,
    ) -> Result<(MappedPage, Link), xen::XenError> {
        let remote = xen::hvm_get_param(domid, param)? as u32;
        let (page, handle) = xen::grant_map(domid, gref, slot)?;
        match xen::evtchn_bind_interdomain(domid, remote) {
            Ok(port) => Ok((page, Link { handle, port })),
            Err(e) => {
                let _ = xen::grant_unmap(page, handle);
                Err(e)
            }
        }
    }

    /// Maps the child's rings, binds its channels and introduces it to xenstore. A domain
    /// that does not exist yet (a restart still in progress) is retried at the next sync.
    fn attach(&mut self, domid: u16, handle: CapHandle, name: &str) {
        let pair = self.pair();
        let slot = pair * SLOTS_PER_CHILD;
        let console = match Self::link(domid, GREF_CONSOLE, slot, HvmParam::ConsoleEvtchn) {
            Ok(l) => l,
            Err(_) => {
                self.pairs[pair as usize] = false;
                return;
            }
        };
        let store = match Self::link(domid, GREF_XENSTORE, slot + 1, HvmParam::StoreEvtchn) {
            Ok(l) => l,
            Err(e) => {
                println!("pv: {name} (d{domid}): cannot attach xenstore: {e}");
                Self::unlink(console.0, console.1);
                self.pairs[pair as usize] = false;
                return;
            }
        };
        let xs = &mut self.core.xs;
        let _ = xs.introduce(domid);
        let home = format!("/local/domain/{domid}");
        let ro = [Perm::new(0, Access::None), Perm::new(domid, Access::Read)];
        let rw = [Perm::new(domid, Access::None)];
        let _ = xs.set_node(&format!("{home}/name"), name.as_bytes(), &ro);
        let _ = xs.set_node(&format!("{home}/domid"), format!("{domid}").as_bytes(), &ro);
        for dir in [
            "control", "device", "data", "drivers", "feature", "attr", "error",
        ] {
            let _ = xs.set_node(&format!("{home}/{dir}"), b"", &rw);
        }
        // A guest given vifs finds `device/vif` from its first look, even though the vifs
        // themselves are written only once their backend is attached too: a frontend that
        // finds no such directory knows it has none to wait for (the RTOS's net thread).
        if self.vifs.has_vifs(name) {
            let _ = xs.set_node(&format!("{home}/device/vif"), b"", &rw);
        }
        // As xl: every vCPU online (Linux's Xen CPU-hotplug watcher reads these).
        let vcpus = cap::domain_query(handle).map_or(0, |i| i.vcpus);
        for v in 0..vcpus {
            let path = format!("{home}/cpu/{v}/availability");
            let _ = xs.set_node(&path, b"online", &ro);
        }
        let links = Links {
            handle,
            console: console.1,
            store: store.1,
            pair,
        };
        self.core
            .children
            .push(Child::new(domid, console.0, store.0, links));
        println!("pv: {name} (d{domid}): console and xenstore attached");
    }

    fn unlink(page: MappedPage, l: Link) {
        let _ = xen::evtchn_close(l.port);
        let _ = xen::grant_unmap(page, l.handle);
    }

    /// Stops serving `domid` and removes its xenstore home. Call it before destroying or
    /// restarting the domain, so its pages are unmapped while they are still its own. The
    /// block and network connections it served as a backend are closed, and their nodes
    /// stay for the frontends to read (see [`dom0::restart`]); they go with the frontend.
    pub fn detach(&mut self, domid: u16) {
        if self.unlink_child(domid) {
            let serves = !dom0::restart::served_states(&self.core.xs, domid).is_empty();
            let n = self.close_served(domid);
            if n > 0 {
                println!("pv: d{domid}: destroyed; {n} guest connection(s) closed");
            }
            self.unwire_vbds(domid, serves);
            self.unwire_vifs(domid, serves);
            for path in dom0::restart::gone_removals(&self.core.xs, domid) {
                let _ = self.core.xs.remove_node(&path);
            }
        }
    }

    /// Closes the block and network connections every held domain serves as a backend,
    /// once per hold, and has the supervisor record it: dom0 gave up on the backend, so
    /// its frontends must see it go instead of waiting for ever (see [`dom0::restart`]).
    pub fn close_held(&mut self, sup: &mut Supervisor) {
        let held: Vec<u16> = sup
            .domains()
            .iter()
            .filter(|w| w.is_held())
            .map(|w| w.domid)
            .collect();
        // A domain no longer held (restarted by the user) is closed again if held again.
        self.closed.retain(|d| held.contains(d));
        for domid in held {
            if self.closed.contains(&domid) {
                continue;
            }
            self.closed.push(domid);
            let n = self.close_served(domid);
            if let Some(line) = sup.backends_closed(domid, n) {
                println!("{line}");
            }
        }
    }

    /// Moves every connection `domid` serves to Closing, then Closed; returns how many
    /// were closed.
    fn close_served(&mut self, domid: u16) -> usize {
        let writes = dom0::restart::closing_writes(&self.core.xs, domid);
        let mut n = 0;
        for (path, value) in writes {
            // Value only: the nodes keep their owner and readers.
            let ok = self
                .core
                .xs
                .set_node(&path, value.as_str().as_bytes(), &[])
                .is_ok();
            n += usize::from(ok && value == XenbusState::Closed);
        }
        n
    }

    /// As [`Backends::detach`], for a restart in place: the vbds and vifs `domid` serves as
    /// a block or network backend keep their nodes (see [`dom0::restart`]), so their
    /// frontends stay Connected and the new instance picks them up; the rest of its home
    /// goes.
    pub fn detach_restarting(&mut self, domid: u16) {
        if self.unlink_child(domid) {
            self.unwire_vbds(domid, true);
            self.unwire_vifs(domid, true);
            for path in dom0::restart::restart_removals(&self.core.xs, domid) {
                let _ = self.core.xs.remove_node(&path);
            }
        }
    }

    /// Stops serving `domid`'s rings and drops its xenstore connection; false if it was
    /// not attached.
    fn unlink_child(&mut self, domid: u16) -> bool {
        let children = &mut self.core.children;
        let Some(i) = children.iter().position(|c| c.domid == domid) else {
            return false;
        };
        // In attach order: the order children are served in.
        let c = children.remove(i);
        Self::unlink(c.console, c.extra.console);
        Self::unlink(c.store, c.extra.store);
        if let Some(used) = self.pairs.get_mut(c.extra.pair as usize) {
            *used = false;
        }
        let _ = self.core.xs.release(domid);
        true
    }

    /// Asks `domid` to power off or reboot through xenstore (`control/shutdown`), as xl
    /// does for PV guests. Returns false (the caller then uses the microvisor's shutdown
    /// request) unless the guest watches that node, as Linux's PV shutdown handler does:
    /// speaking xenstore alone proves nothing (our Rust domains speak it and never look).
    pub fn request_shutdown(&mut self, domid: u16, reboot: bool) -> bool {
        let path = format!("/local/domain/{domid}/control/shutdown");
        if !self.has_frontend(domid) || !self.core.xs.is_watched_by(domid, &path) {
            return false;
        }
        let what: &[u8] = if reboot { b"reboot" } else { b"poweroff" };
        let perms = [Perm::new(domid, Access::None)];
        self.core.xs.set_node(&path, what, &perms).is_ok()
    }

    /// Whether `domid` runs a PV frontend (it has spoken xenstore).
    pub fn has_frontend(&self, domid: u16) -> bool {
        self.core
            .children
            .iter()
            .any(|c| c.domid == domid && c.frontend && !c.failed)
    }

    /// Whether any child is served (its console input must be polled).
    pub fn any(&self) -> bool {
        self.core.children.iter().any(|c| !c.failed)
    }

    /// Whether the last [`Backends::poll`] left xenstore replies to write or typed input
    /// to give: poll again without waiting.
    pub fn output_left(&self) -> bool {
        self.core.output_left() || self.core.input_left()
    }

    /// Console input may have come for a child: the UART's (the microvisor raised our
    /// control event), one injected for `ctl console`, or the safety poll is due. The
    /// next [`Backends::poll`] asks the microvisor for it; other passes do not (each ask is
    /// a locked call, and the loop turns several times a second when idle).
    pub fn input_arrived(&mut self) {
        self.input_due = true;
    }

    /// One bounded pass over every child's rings ([`Pv::poll`]); a child whose ring is
    /// corrupt is reported here once and served no more (its pages stay mapped until its
    /// domain goes, so `sync` does not attach it again).
    pub fn poll(&mut self) {
        let input = core::mem::take(&mut self.input_due);
        for event in self.core.poll(&mut Host, input) {
            match event {
                Event::Failed { domid, ring, error } => {
                    let what = match ring {
                        Ring::Console => "console",
                        Ring::Store => "xenstore",
                    };
                    println!("pv: d{domid}: {what} ring: {error}; PV service stopped");
                }
                Event::ConsoleRefused { domid } => {
                    println!("pv: d{domid}: console output refused by the microvisor");
                }
            }
        }
    }
}
