//! Boot-time free-range list: RAM banks minus the microvisor image, the DT and the boot
//! modules, from which the frame allocator's own bitmap is carved (see [`super::frames`]).
//! Used only while booting, so its fixed capacity can never lose a runtime free.
//!
//! Invariants (checked by `check_invariants` in tests after every operation):
//! - every range is page-aligned and non-empty;
//! - ranges are sorted by base, never overlap and never touch (touching ranges are merged),
//!   so the representation of a given set of free pages is unique;
//! - at most [`MAX_RANGES`] ranges exist; an operation that would need more fails with
//!   [`FrameError::TooManyRanges`] and changes nothing.
//!
//! Allocation is first fit from the **highest** address downwards. Low RAM is where the boot
//! loader places the microvisor and its modules and what 32-bit DMA masters can reach, so
//! handing out high memory first keeps that scarce region free for longest.
//!
//! No heap: the allocator is a fixed array so it can exist before anything else does.
#![forbid(unsafe_code)]

use protocol::addr::{PhysAddr, PAGE_SIZE};

/// How many disjoint free ranges the allocator can track.
pub const MAX_RANGES: usize = 64;

/// Why a frame-allocator operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// no free range is large enough for the requested pages and alignment
    OutOfMemory,
    /// the range is empty, misaligned, overflows, or overlaps memory that is already free
    BadRange,
    /// the free list would need more than `MAX_RANGES` disjoint ranges
    TooManyRanges,
}

/// One free range, `[start, end)` in bytes, both page-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: u64,
    end: u64,
}

impl Range {
    const EMPTY: Range = Range { start: 0, end: 0 };

    const fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE_SIZE
    }
}

/// A physical frame allocator over up to [`MAX_RANGES`] free ranges.
#[derive(Clone, Debug)]
pub struct BootRanges {
    ranges: [Range; MAX_RANGES],
    count: usize,
}

impl Default for BootRanges {
    fn default() -> Self {
        Self::new()
    }
}

impl BootRanges {
    /// An allocator with no free memory.
    pub const fn new() -> Self {
        Self {
            ranges: [Range::EMPTY; MAX_RANGES],
            count: 0,
        }
    }

    /// Adds `[base, base + size)` to the free pool, shrunk inward to whole pages and merged
    /// with touching neighbours. A range smaller than a page after shrinking adds nothing.
    ///
    /// Fails with `BadRange` if the range overflows or overlaps memory that is already free.
    pub fn add_free(&mut self, base: PhysAddr, size: u64) -> Result<(), FrameError> {
        let Some((start, end)) =
            super::whole_pages(base, size).map_err(|_| FrameError::BadRange)?
        else {
            return Ok(());
        };
        self.insert(start, end)
    }

    /// Removes `[base, base + size)`, rounded outward to whole pages, from the free pool.
    /// Parts that are not free are ignored, so reserving firmware or image memory that was
    /// never added is fine. Fails with `TooManyRanges` (changing nothing) if carving a hole
    /// in the middle of a range needs a slot that does not exist.
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), FrameError> {
        if size == 0 {
            return Ok(());
        }
        let end = base
            .as_u64()
            .checked_add(size)
            .ok_or(FrameError::BadRange)?;
        let start = base.align_down(PAGE_SIZE).as_u64();
        // A reservation touching the top page rounds up to 2^64; clamping to the highest page
        // boundary is equivalent because no free range can extend past it.
        let end = PhysAddr::new(end)
            .align_up(PAGE_SIZE)
            .map_or(!(PAGE_SIZE - 1), PhysAddr::as_u64);

        // Only a range that strictly contains the hole splits; check room before mutating.
        let splits = self.ranges[..self.count]
            .iter()
            .any(|r| r.start < start && end < r.end);
        if splits && self.count == MAX_RANGES {
            return Err(FrameError::TooManyRanges);
        }

        let mut i = 0;
        while i < self.count {
            let r = self.ranges[i];
            if r.end <= start || end <= r.start {
                i += 1;
            } else if start <= r.start && r.end <= end {
                self.remove_at(i);
            } else if r.start < start && end < r.end {
                self.ranges[i].end = start;
                self.insert_at(
                    i + 1,
                    Range {
                        start: end,
                        end: r.end,
                    },
                );
                return Ok(());
            } else if r.start < start {
                self.ranges[i].end = start;
                i += 1;
            } else {
                self.ranges[i].start = end;
                i += 1;
            }
        }
        Ok(())
    }

    /// Allocates `pages` contiguous pages whose base is a multiple of `align` bytes (a power
    /// of two, at least `PAGE_SIZE`). Searches from the highest address downwards.
    ///
    /// `BadRange` for zero pages or a bad alignment; `OutOfMemory` if nothing fits;
    /// `TooManyRanges` if the only fits would split a range while the list is full.
    pub fn alloc(&mut self, pages: u64, align: u64) -> Result<PhysAddr, FrameError> {
        if pages == 0 || !align.is_power_of_two() || align < PAGE_SIZE {
            return Err(FrameError::BadRange);
        }
        let size = pages.checked_mul(PAGE_SIZE).ok_or(FrameError::BadRange)?;
        let mut blocked_by_slots = false;
        for i in (0..self.count).rev() {
            let r = self.ranges[i];
            let Some(top) = r.end.checked_sub(size) else {
                continue;
            };
            let base = top & !(align - 1);
            if base < r.start {
                continue;
            }
            let below = base > r.start;
            let above = base + size < r.end;
            match (below, above) {
                (false, false) => self.remove_at(i),
                (true, false) => self.ranges[i].end = base,
                (false, true) => self.ranges[i].start = base + size,
                (true, true) => {
                    if self.count == MAX_RANGES {
                        blocked_by_slots = true;
                        continue;
                    }
                    self.ranges[i].end = base;
                    self.insert_at(
                        i + 1,
                        Range {
                            start: base + size,
                            end: r.end,
                        },
                    );
                }
            }
            return Ok(PhysAddr::new(base));
        }
        Err(if blocked_by_slots {
            FrameError::TooManyRanges
        } else {
            FrameError::OutOfMemory
        })
    }

    /// Returns `pages` pages at `base` (page-aligned) to the pool, merging with neighbours.
    /// Freeing memory any part of which is already free is a double free: `BadRange`, and
    /// nothing changes. `TooManyRanges` if the pages touch no free range and the list is
    /// full; the pages then stay allocated, so the caller may keep them or retry later.
    pub fn free(&mut self, base: PhysAddr, pages: u64) -> Result<(), FrameError> {
        if pages == 0 || !base.is_aligned(PAGE_SIZE) {
            return Err(FrameError::BadRange);
        }
        let size = pages.checked_mul(PAGE_SIZE).ok_or(FrameError::BadRange)?;
        let end = base
            .as_u64()
            .checked_add(size)
            .ok_or(FrameError::BadRange)?;
        self.insert(base.as_u64(), end)
    }

    /// Total free pages.
    pub fn free_pages(&self) -> u64 {
        self.ranges[..self.count].iter().map(Range::pages).sum()
    }

    /// The free ranges as `(base, pages)`, lowest first.
    pub fn ranges(&self) -> impl Iterator<Item = (PhysAddr, u64)> + '_ {
        self.ranges[..self.count]
            .iter()
            .map(|r| (PhysAddr::new(r.start), r.pages()))
    }

    /// Adds the page-aligned, non-empty `[start, end)`, merging; rejects any overlap.
    fn insert(&mut self, start: u64, end: u64) -> Result<(), FrameError> {
        let idx = self.ranges[..self.count].partition_point(|r| r.start < start);
        let prev = idx.checked_sub(1).map(|p| self.ranges[p]);
        let next = (idx < self.count).then(|| self.ranges[idx]);
        if prev.is_some_and(|p| p.end > start) || next.is_some_and(|n| n.start < end) {
            return Err(FrameError::BadRange);
        }
        let join_prev = prev.is_some_and(|p| p.end == start);
        let join_next = next.is_some_and(|n| n.start == end);
        match (join_prev, join_next) {
            (true, true) => {
                self.ranges[idx - 1].end = self.ranges[idx].end;
                self.remove_at(idx);
            }
            (true, false) => self.ranges[idx - 1].end = end,
            (false, true) => self.ranges[idx].start = start,
            (false, false) => {
                if self.count == MAX_RANGES {
                    return Err(FrameError::TooManyRanges);
                }
                self.insert_at(idx, Range { start, end });
            }
        }
        Ok(())
    }

    /// Shifts ranges up to open slot `idx`; the caller has checked there is room.
    fn insert_at(&mut self, idx: usize, r: Range) {
        self.ranges.copy_within(idx..self.count, idx + 1);
        self.ranges[idx] = r;
        self.count += 1;
    }

    fn remove_at(&mut self, idx: usize) {
        self.ranges.copy_within(idx + 1..self.count, idx);
        self.count -= 1;
        self.ranges[self.count] = Range::EMPTY;
    }
}

#[cfg(test)]
#[path = "boot_ranges_tests.rs"]
mod tests;
