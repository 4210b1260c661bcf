//! Translation-table pages drawn from the frame allocator and reached through the EL2
//! identity map; a domain's stage-2 table pages are charged to that domain.
//!
//! F4: a guest chooses where grants and `add_to_physmap` frames go in its 39-bit IPA
//! space, and each new 2 MiB or 1 GiB region it touches costs a table page. Those pages are
//! counted against the domain's [`TableBudget`] (part of the memory charged to its
//! controller at creation), and the builder frees a table as soon as its last entry goes,
//! so a map/unmap walk returns to its baseline and a domain that keeps mapping hits its own
//! limit, never the shared pool's.

use super::Hyp;
use crate::arch::{self, phys::Window};
use crate::mm::frames::{FrameAllocator, BLOCK_PAGES};
use crate::mm::pagetable::PageTable;
use crate::mm::pagetable::TableMemory;
use crate::tlb_reach::{Invalidation, TlbReach};
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::ids::DomainId;

/// Table memory backed by the frame allocator (the microvisor's own EL2 map).
pub struct FrameTables<'a>(pub &'a mut FrameAllocator);

impl TableMemory for FrameTables<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let pa = self.0.alloc(1, PAGE_SIZE).ok()?;
        let Some(page) = Window::page(pa) else {
            // Not reachable RAM: a frame-allocator bug; never use it as a table.
            crate::info!("table page {pa} is not reachable RAM");
            return None;
        };
        page.zero();
        Some(pa)
    }

    fn free_table(&mut self, table: PhysAddr) {
        // The builder returns each table page exactly once and the bitmap allocator cannot
        // refuse a free of allocated pages; an error here is a microvisor bug.
        let r = self.0.free(table, 1);
        debug_assert!(r.is_ok(), "table page {table} freed twice");
    }

    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        read_entry(table, index)
    }

    fn read_entries(&self, table: PhysAddr, first: usize, out: &mut [u64]) {
        read_entries(table, first, out)
    }

    fn write_entries(&mut self, table: PhysAddr, first: usize, values: &[u64]) {
        write_entries(table, first, values)
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        write_entry(table, index, value)
    }

    fn flush_tlb(&mut self) {
        // Only stage-2 tables are ever unmapped (the EL2 map only grows), so dropping every
        // guest translation is what break-before-make needs here.
        arch::tlb_flush_all_guests();
    }
}

/// Stage-2 table pages beyond what RAM needs that a domain may hold at once: grant
/// mappings, `add_to_physmap` frames, magic pages and device windows (512 KiB).
pub const TABLE_ALLOWANCE_PAGES: u64 = 128;

/// A domain's stage-2 table pages: how many it holds and how many it may hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableBudget {
    /// Table pages held now (the root included).
    pub used: u64,
    /// Most it may hold.
    pub limit: u64,
}

impl TableBudget {
    /// The budget of a domain with `ram_pages` pages of RAM: a level-3 table per 2 MiB of
    /// RAM (RAM in 4 KiB extents needs them all), a level-2 table per GiB plus one, the
    /// root, and [`TABLE_ALLOWANCE_PAGES`].
    pub fn for_ram(ram_pages: u64) -> Self {
        let l3 = ram_pages.div_ceil(BLOCK_PAGES);
        let l2 = ram_pages.div_ceil(BLOCK_PAGES * 512) + 1;
        Self {
            used: 0,
            limit: l3 + l2 + 1 + TABLE_ALLOWANCE_PAGES,
        }
    }
}

/// Table memory for one domain's stage 2: pages come from the frame allocator and are
/// counted in (and refused beyond) the domain's budget.
pub struct ChargedTables<'a> {
    /// Where the pages come from.
    pub frames: &'a mut FrameAllocator,
    /// The domain's budget.
    pub budget: &'a mut TableBudget,
    /// Its VTTBR (root and VMID) once it has one: invalidations are scoped to its VMID.
    /// `None` while the table is being built (invalidate every guest's entries).
    pub vttbr: Option<u64>,
    /// The CPUs that may cache its translations: one invalidation on this CPU is enough
    /// when that is only this one.
    pub reach: &'a mut TlbReach,
}

impl TableMemory for ChargedTables<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        if self.budget.used >= self.budget.limit {
            return None;
        }
        let pa = FrameTables(self.frames).alloc_table()?;
        self.budget.used += 1;
        Some(pa)
    }

    fn free_table(&mut self, table: PhysAddr) {
        FrameTables(self.frames).free_table(table);
        self.budget.used = self.budget.used.saturating_sub(1);
    }

    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        read_entry(table, index)
    }

    fn read_entries(&self, table: PhysAddr, first: usize, out: &mut [u64]) {
        read_entries(table, first, out)
    }

    fn write_entries(&mut self, table: PhysAddr, first: usize, values: &[u64]) {
        write_entries(table, first, values)
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        write_entry(table, index, value)
    }

    fn flush_tlb(&mut self) {
        // Only this domain's translations can be stale: other guests' TLB entries survive.
        let Some(vttbr) = self.vttbr else {
            arch::tlb_flush_all_guests();
            return;
        };
        match self.reach.invalidation(arch::vttbr_loaded(vttbr)) {
            Invalidation::Local => arch::tlb_flush_loaded_guest_here(),
            Invalidation::Broadcast => arch::tlb_flush_guest(vttbr),
        }
    }
}

impl Hyp {
    /// Domain `id`'s stage 2 with table memory charged to it.
    pub fn stage2_mut(&mut self, id: DomainId) -> Option<(&mut PageTable, ChargedTables<'_>)> {
        stage2_of(&mut self.domains, &mut self.frames, id)
    }
}

/// [`Hyp::stage2_mut`] from the two fields it needs, so a caller can hold other parts of
/// [`Hyp`] (the grant tables) at the same time.
pub fn stage2_of<'a>(
    domains: &'a mut [Option<alloc::boxed::Box<super::domain::Domain>>],
    frames: &'a mut FrameAllocator,
    id: DomainId,
) -> Option<(&'a mut PageTable, ChargedTables<'a>)> {
    let d = domains.get_mut(usize::from(id.0))?.as_deref_mut()?;
    let pt = d.stage2.as_mut()?;
    let vttbr = pt.root().as_u64() | (u64::from(d.vmid) << 48);
    Some((
        pt,
        ChargedTables {
            frames,
            budget: &mut d.tables,
            vttbr: Some(vttbr),
            reach: &mut d.tlb_reach,
        },
    ))
}

/// Entry `index` of table page `table` (both implementations' tables are frames from the
/// pool, identity-mapped at EL2).
fn read_entry(table: PhysAddr, index: usize) -> u64 {
    table_page(table)
        .read_u64((index as u64) * 8)
        .expect("a table entry index is below 512")
}

/// Entries `first..` of table page `table` into `out`, through one window (opening one
/// checks the memory layout and the sealed uploads: once per call, not per entry).
fn read_entries(table: PhysAddr, first: usize, out: &mut [u64]) {
    let page = table_page(table);
    for (i, e) in out.iter_mut().enumerate() {
        *e = page
            .read_u64(((first + i) as u64) * 8)
            .expect("a table entry index is below 512");
    }
}

/// Writes `values` from entry `first` of table page `table`, through one window.
fn write_entries(table: PhysAddr, first: usize, values: &[u64]) {
    let page = table_page(table);
    for (i, &v) in values.iter().enumerate() {
        page.write_u64(((first + i) as u64) * 8, v)
            .expect("a table entry index is below 512");
    }
}

/// Writes entry `index` of table page `table`.
/// A DSB before the tables are used publishes the write.
fn write_entry(table: PhysAddr, index: usize, value: u64) {
    table_page(table)
        .write_u64((index as u64) * 8, value)
        .expect("a table entry index is below 512")
}

/// The window onto table page `table` (a frame `alloc_table` handed out, zeroed through
/// the same kind of window, so it opens again).
fn table_page(table: PhysAddr) -> Window {
    Window::page(table).expect("a table page is reachable RAM")
}
