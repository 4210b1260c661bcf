//! dom0's PV backends for every child domain: the xenstore server and the PV console
//! backend, over the rings the microvisor set up in each child's magic pages.
//!
//! For each child the microvisor pre-granted dom0 its console page (grant ref 0) and its
//! xenstore page (ref 1) and left one unbound event channel per ring for dom0. [`Backends`]
//! maps both pages by grant, binds both channels, introduces the domain to xenstore, and
//! from then on moves bytes: console output to the child's console (so `ctl console`, the
//! focus switch and `dmesg` work as for our own domains), queued console input into the
//! ring, and xenstore requests through [`dom0::xenstore::Xenstore`].
//!
//! Attachment follows the supervisor: [`Backends::sync`] (run right before each
//! [`Backends::poll`]) detaches from domains that were destroyed or restarted (their pages
//! go away with the old incarnation) and attaches to new incarnations as soon as they
//! exist.

mod vbd;

use alloc::format;
use alloc::vec::Vec;
use bulkhead_runtime::xen::{self, MappedPage};
use bulkhead_runtime::{cap, println};
use dom0::xenstore::{Access, Perm, Quotas, Xenstore};
use dom0::Supervisor;
use protocol::cap::CapHandle;
use protocol::control::CONSOLE_FOR_BYTES;
use protocol::xen::ring_io::{CONS_IN, CONS_OUT, XS_REQ, XS_RSP};
use protocol::xen::HvmParam;

/// `GNTTAB_RESERVED_CONSOLE`.
const GREF_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`.
const GREF_XENSTORE: u32 = 1;
/// Grant-map slots per child (console, xenstore).
const SLOTS_PER_CHILD: u32 = 2;

/// One mapped ring page and its bound channel.
struct Link {
    page: MappedPage,
    handle: u32,
    port: u32,
}

/// A child dom0 serves.
struct Child {
    domid: u16,
    handle: CapHandle,
    console: Link,
    store: Link,
    /// A ring error was logged (once per child).
    complained: bool,
    /// Its pair of grant-map slots (console, xenstore).
    pair: u32,
    /// It has spoken xenstore: a PV frontend (Linux) runs there.
    frontend: bool,
    /// It has written to its PV console: its console input goes there (a domain that
    /// never uses the PV console, like our own, reads its input itself).
    console_used: bool,
}

/// Every child's backends.
pub struct Backends {
    children: Vec<Child>,
    xs: Xenstore,
    /// Grant-map slot pairs in use (index = pair number).
    pairs: Vec<bool>,
    /// Virtual block devices: what to write, what is written.
    vbds: vbd::Wiring,
}

impl Backends {
    /// No children yet; maps our shared_info so backend channels raise our upcall.
    pub fn new() -> Self {
        if let Err(e) = xen::map_shared_info() {
            // Without it the rings still work, at the loop's polling period.
            println!("xen: cannot map shared_info ({e}): polling PV rings");
        }
        Self {
            children: Vec::new(),
            xs: Xenstore::new(Quotas::default()),
            pairs: Vec::new(),
            vbds: vbd::Wiring::default(),
        }
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
            .children
            .iter()
            .filter(|c| !live.iter().any(|l| l.0 == c.domid && l.1 == c.handle))
            .map(|c| c.domid)
            .collect();
        for domid in stale {
            self.detach(domid);
        }
        for (domid, handle, name) in live {
            if !self.children.iter().any(|c| c.domid == domid) {
                self.attach(domid, handle, name);
            }
        }
        self.wire_vbds(sup);
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

    fn link(domid: u16, gref: u32, slot: u32, param: HvmParam) -> Result<Link, xen::XenError> {
        let remote = xen::hvm_get_param(domid, param)? as u32;
        let (page, handle) = xen::grant_map(domid, gref, slot)?;
        match xen::evtchn_bind_interdomain(domid, remote) {
            Ok(port) => Ok(Link { page, handle, port }),
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
                Self::unlink(&console);
                self.pairs[pair as usize] = false;
                return;
            }
        };
        let _ = self.xs.introduce(domid);
        let home = format!("/local/domain/{domid}");
        let ro = [Perm::new(0, Access::None), Perm::new(domid, Access::Read)];
        let rw = [Perm::new(domid, Access::None)];
        let _ = self
            .xs
            .set_node(&format!("{home}/name"), name.as_bytes(), &ro);
        let _ = self
            .xs
            .set_node(&format!("{home}/domid"), format!("{domid}").as_bytes(), &ro);
        for dir in [
            "control", "device", "data", "drivers", "feature", "attr", "error",
        ] {
            let _ = self.xs.set_node(&format!("{home}/{dir}"), b"", &rw);
        }
        // As xl: every vCPU online (Linux's Xen CPU-hotplug watcher reads these).
        let vcpus = cap::domain_query(handle).map_or(0, |i| i.vcpus);
        for v in 0..vcpus {
            let path = format!("{home}/cpu/{v}/availability");
            let _ = self.xs.set_node(&path, b"online", &ro);
        }
        self.children.push(Child {
            domid,
            handle,
            console,
            store,
            pair,
            complained: false,
            frontend: false,
            console_used: false,
        });
        println!("pv: {name} (d{domid}): console and xenstore attached");
    }

    fn unlink(l: &Link) {
        let _ = xen::evtchn_close(l.port);
        let _ = xen::grant_unmap(l.page, l.handle);
    }

    /// Stops serving `domid` and removes its xenstore home. Call it before destroying or
    /// restarting the domain, so its pages are unmapped while they are still its own.
    pub fn detach(&mut self, domid: u16) {
        let Some(i) = self.children.iter().position(|c| c.domid == domid) else {
            return;
        };
        let c = self.children.swap_remove(i);
        Self::unlink(&c.console);
        Self::unlink(&c.store);
        if let Some(used) = self.pairs.get_mut(c.pair as usize) {
            *used = false;
        }
        self.unwire_vbds(domid);
        let _ = self.xs.release(domid);
        let _ = self.xs.remove_node(&format!("/local/domain/{domid}"));
    }

    /// Asks `domid` to power off or reboot through xenstore (`control/shutdown`), as xl
    /// does for PV guests. Returns false if dom0 does not serve it.
    pub fn request_shutdown(&mut self, domid: u16, reboot: bool) -> bool {
        if !self.has_frontend(domid) {
            return false;
        }
        let what: &[u8] = if reboot { b"reboot" } else { b"poweroff" };
        let path = format!("/local/domain/{domid}/control/shutdown");
        let perms = [Perm::new(domid, Access::None)];
        self.xs.set_node(&path, what, &perms).is_ok()
    }

    /// Whether `domid` runs a PV frontend (it has spoken xenstore).
    pub fn has_frontend(&self, domid: u16) -> bool {
        self.children.iter().any(|c| c.domid == domid && c.frontend)
    }

    /// Whether any child is served (its console input must be polled).
    pub fn any(&self) -> bool {
        !self.children.is_empty()
    }

    /// Moves every ring's bytes; notifies a child when its rings changed.
    pub fn poll(&mut self) {
        for i in 0..self.children.len() {
            let mut notify_console = false;
            let mut notify_store = false;
            if let Err(e) = self.console_step(i, &mut notify_console) {
                self.complain(i, "console", e);
            }
            if let Err(e) = self.store_step(i, &mut notify_store) {
                self.complain(i, "xenstore", e);
            }
            let c = &self.children[i];
            if notify_console {
                let _ = xen::evtchn_send(c.console.port);
            }
            if notify_store {
                let _ = xen::evtchn_send(c.store.port);
            }
        }
    }

    fn complain(&mut self, i: usize, what: &str, e: protocol::xen::ring_io::RingError) {
        let c = &mut self.children[i];
        if !c.complained {
            c.complained = true;
            println!("pv: d{}: {what} ring: {e} (ignored from now on)", c.domid);
        }
    }

    fn console_step(
        &mut self,
        i: usize,
        notify: &mut bool,
    ) -> Result<(), protocol::xen::ring_io::RingError> {
        let c = &mut self.children[i];
        let mut buf = [0u8; CONSOLE_FOR_BYTES];
        loop {
            let n = CONS_OUT.consume(&mut c.console.page, &mut buf)?;
            if n == 0 {
                break;
            }
            *notify = true;
            c.console_used = true;
            if let Err(e) = cap::console_write_for(c.handle, &buf[..n]) {
                if !c.complained {
                    c.complained = true;
                    println!("pv: d{}: console output: {e}", c.domid);
                }
            }
        }
        // Input typed for the child goes in as the ring has room.
        if !c.console_used && !c.frontend {
            return Ok(());
        }
        let room = CONS_IN.space(&c.console.page)?;
        let mut typed = [0u8; protocol::control::CONSOLE_READ_BYTES];
        let mut left = room;
        while left > 0 {
            let want = left.min(typed.len());
            let n = cap::console_read_for(c.handle, &mut typed[..want]).unwrap_or(0);
            if n == 0 {
                break;
            }
            CONS_IN.produce(&mut c.console.page, &typed[..n])?;
            left -= n;
            *notify = true;
        }
        Ok(())
    }

    fn store_step(
        &mut self,
        i: usize,
        notify: &mut bool,
    ) -> Result<(), protocol::xen::ring_io::RingError> {
        let domid = self.children[i].domid;
        let mut buf = [0u8; 1024];
        while self.xs.accepts_input(domid) {
            let page = &mut self.children[i].store.page;
            let n = XS_REQ.consume(page, &mut buf)?;
            if n == 0 {
                break;
            }
            *notify = true;
            self.children[i].frontend = true;
            if self.xs.feed(domid, &buf[..n]).is_err() {
                break;
            }
        }
        // Replies to this child and watch events for anyone.
        for j in 0..self.children.len() {
            let conn = self.children[j].domid;
            let out = self.xs.output(conn);
            if out.is_empty() {
                continue;
            }
            let page = &mut self.children[j].store.page;
            let n = XS_RSP.produce(page, out)?;
            if n > 0 {
                self.xs.advance_output(conn, n);
                if j == i {
                    *notify = true;
                } else {
                    let _ = xen::evtchn_send(self.children[j].store.port);
                }
            }
        }
        Ok(())
    }
}
