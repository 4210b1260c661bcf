//! Physical memory management: the frame allocator (a bitmap, seeded at boot from the
//! boot-time range list), per-domain frame budgets, domain RAM maps, and the
//! translation-table builder.

pub mod boot_ranges;
pub mod charged;
pub mod frames;
pub mod lazy_ram;
pub mod pagetable;
pub mod ram;
pub mod reach;

use protocol::addr::{PhysAddr, PAGE_SIZE};

/// A range runs past the end of the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// `[base, base + size)` shrunk inward to whole pages, as `(start, end)`; `None` if no whole
/// page is left. Both allocators take free memory in this form.
pub fn whole_pages(base: PhysAddr, size: u64) -> Result<Option<(u64, u64)>, Overflow> {
    let end = base.as_u64().checked_add(size).ok_or(Overflow)?;
    let start = base.align_up(PAGE_SIZE).ok_or(Overflow)?.as_u64();
    let end = end & !(PAGE_SIZE - 1);
    Ok((end > start).then_some((start, end)))
}
