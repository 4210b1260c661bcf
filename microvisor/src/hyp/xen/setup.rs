//! Per-domain Xen-ABI resources: created when a domain is built, released when it is freed.
//!
//! Every domain gets a shared_info frame, an event-channel table and a grant table. Every
//! domain but dom0 also gets the two "magic" pages Xen's toolstack provides at
//! `GUEST_MAGIC_BASE`: the PV console ring and the xenstore ring, each with an event channel
//! left unbound for dom0 (their backend) and a reserved grant entry (`GNTTAB_RESERVED_*`)
//! granting dom0 the page, so dom0 reaches them by ordinary grant mapping and never needs
//! rights over the guest's memory.

use crate::arch::phys::Window;
use crate::hyp::domain::Domain;
use crate::hyp::tables::ChargedTables;
use crate::hyp::Hyp;
use crate::mm::charged::FrameBudget;
use crate::mm::pagetable::{Attrs, MemType};
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::control::CapError;
use protocol::ids::DomainId;
use protocol::layout::GUEST_MAGIC_BASE;

pub use crate::xen::physmap::{CONSOLE_GFN, XENSTORE_GFN};
/// `GNTTAB_RESERVED_CONSOLE`.
pub const GREF_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`.
pub const GREF_XENSTORE: u32 = 1;
/// Magic pages per domain.
const MAGIC_PAGES: u64 = 2;
/// Frames the microvisor may allocate for one domain, charged to it at creation: the
/// shared_info frame, the magic pages and a full grant table. (Event channels need no
/// frames of their own: the 2-level ABI keeps its bits in shared_info.)
pub const XEN_FRAME_PAGES: u64 = 1 + MAGIC_PAGES + super::events::MAX_GRANT_FRAMES as u64;

impl Hyp {
    /// Allocates zeroed frames charged to `budget`.
    fn zeroed_frames(
        &mut self,
        budget: &mut FrameBudget,
        pages: u64,
    ) -> Result<PhysAddr, CapError> {
        let pa = budget
            .alloc(&mut self.frames, pages)
            .ok_or(CapError::NoMemory)?;
        match Window::new(pa, pages * PAGE_SIZE) {
            Some(w) => w.zero(),
            None => {
                // Not reachable RAM: a frame-allocator bug; never hand it out.
                let _ = budget.free(&mut self.frames, pa, pages);
                return Err(CapError::NoMemory);
            }
        }
        Ok(pa)
    }

    /// Gives domain `d` (not yet published in `domains`) its Xen-ABI resources. On error
    /// everything allocated here is released again.
    pub(in crate::hyp) fn xen_setup(&mut self, d: &mut Domain) -> Result<(), CapError> {
        let shared = self.zeroed_frames(&mut d.xen_frames, 1)?;
        d.xen.shared_info = Some(shared);
        self.xen_tables_open(d);
        let result = if d.id == DomainId::DOM0 {
            Ok(())
        } else {
            self.magic_pages(d)
        };
        match result {
            // Its frames may be granted and copied from now on.
            Ok(()) => {
                super::grant_state::with_grants(|g| g.mirror(d));
            }
            Err(_) => self.xen_release(d),
        }
        result
    }

    /// Maps the console and xenstore pages and prepares their channels and grants.
    fn magic_pages(&mut self, d: &mut Domain) -> Result<(), CapError> {
        let magic = self.zeroed_frames(&mut d.xen_frames, MAGIC_PAGES)?;
        d.xen.magic = Some(magic);
        let stage2 = d.stage2.as_mut().ok_or(CapError::WrongState)?;
        let vttbr = stage2.root().as_u64() | (u64::from(d.vmid) << 48);
        let attrs = Attrs {
            mem: MemType::Normal,
            read: true,
            write: true,
            exec: false,
        };
        let mut tables = ChargedTables {
            frames: &mut self.frames,
            budget: &mut d.tables,
            vttbr: Some(vttbr),
            reach: &mut d.tlb_reach,
        };
        stage2
            .map(
                &mut tables,
                GUEST_MAGIC_BASE.as_u64(),
                magic,
                MAGIC_PAGES * PAGE_SIZE,
                attrs,
            )
            .map_err(|_| CapError::NoMemory)?;
        d.xen.params.console_pfn = CONSOLE_GFN;
        d.xen.params.store_pfn = XENSTORE_GFN;
        self.xen_backend_channels(d)
    }

    /// Frees what [`Hyp::xen_setup`] gave domain `d` (its stage 2 goes with its memory).
    pub(in crate::hyp) fn xen_release(&mut self, d: &mut Domain) {
        // First: no sender reaches the frames freed below once the tables are closed.
        self.xen_tables_close(d);
        if let Some(pa) = d.xen.shared_info.take() {
            self.free_scrubbed(&mut d.xen_frames, pa, 1);
        }
        if let Some(pa) = d.xen.magic.take() {
            self.free_scrubbed(&mut d.xen_frames, pa, MAGIC_PAGES);
        }
    }

    /// Scrubs and frees frames the microvisor gave a domain, back to its `budget`.
    pub(in crate::hyp) fn free_scrubbed(
        &mut self,
        budget: &mut FrameBudget,
        pa: PhysAddr,
        pages: u64,
    ) {
        // The frames belonged to a domain that is being freed; nothing maps them. Frames
        // the doorway refused would be a bug: kept out of the pool rather than reused dirty.
        let Some(w) = Window::new(pa, pages * PAGE_SIZE) else {
            crate::info!("frames {pa} not reachable RAM: not freed");
            return;
        };
        w.zero();
        let r = budget.free(&mut self.frames, pa, pages);
        debug_assert!(r.is_ok(), "frames {pa} freed twice");
    }
}
