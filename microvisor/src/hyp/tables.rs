//! Translation-table pages drawn from the frame allocator and reached through the EL2
//! identity map.

use crate::arch::mem;
use crate::mm::frames::FrameAllocator;
use crate::mm::pagetable::TableMemory;
use protocol::addr::{PhysAddr, PAGE_SIZE};

/// Table memory backed by the frame allocator.
pub struct FrameTables<'a>(pub &'a mut FrameAllocator);

impl TableMemory for FrameTables<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let pa = self.0.alloc(1, PAGE_SIZE).ok()?;
        // SAFETY: the page was just taken from the allocator, so nothing else refers to it.
        unsafe { mem::zero(pa.as_u64(), PAGE_SIZE) };
        Some(pa)
    }

    fn free_table(&mut self, table: PhysAddr) {
        // A table page is returned exactly once by the builder; a failure here would be a
        // microvisor bug, and losing one page is the safe reaction.
        let _ = self.0.free(table, 1);
    }

    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        // SAFETY: `table` is a table page from `alloc_table` and index < 512.
        unsafe { mem::read_u64(table.as_u64() + (index as u64) * 8) }
    }

    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        // SAFETY: as `read_entry`; a DSB before the tables are used publishes the write.
        unsafe { mem::write_u64(table.as_u64() + (index as u64) * 8, value) }
    }
}
