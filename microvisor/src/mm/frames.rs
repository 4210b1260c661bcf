//! Physical frame allocator: one bit per 4 KiB page over the RAM span, with a per-2 MiB-block
//! count of free pages.
//!
//! Unlike a list of free ranges, a bitmap's size depends only on the span it covers, so no
//! pattern of allocations and frees can exhaust it: a free of allocated pages always
//! succeeds (F11). The per-block counts make the two common requests cheap: a whole 2 MiB
//! block (a stage-2 block mapping of guest RAM) is a block whose count is 512, and a single
//! page (table pages, grant and event-channel frames) comes from a block that is already
//! partly used, so single pages do not break up whole blocks while partly used ones remain.
//!
//! Invariants (checked by `check_invariants` in tests after every operation):
//! - `counts[b]` is the number of set bits in block `b`'s eight bitmap words;
//! - `free` is the sum of the counts;
//! - a set bit is a free page that was added with [`FrameAllocator::add_free`] or freed, and
//!   has not been handed out since: an allocation clears exactly the bits it returns, a
//!   free sets exactly the bits it is given and refuses any that are already set.
//!
//! Allocation is from the **highest** address downwards: low RAM is where the boot loader
//! places the microvisor and its modules and what 32-bit DMA masters can reach.
//!
//! No heap: the bitmap lives in storage the caller provides (at boot, pages carved from RAM
//! with [`super::boot_ranges`]; in tests, a leaked vector), so the allocator can exist
//! before the microvisor heap does.
#![forbid(unsafe_code)]

use protocol::addr::{PhysAddr, PAGE_SIZE};

/// Bytes in one 2 MiB block.
pub const BLOCK_SIZE: u64 = 2 * 1024 * 1024;
/// Pages in one 2 MiB block.
pub const BLOCK_PAGES: u64 = BLOCK_SIZE / PAGE_SIZE;
/// Bitmap words per block.
const WORDS_PER_BLOCK: usize = (BLOCK_PAGES / 64) as usize;

/// Why a frame-allocator operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// no free run is large enough for the requested pages and alignment
    OutOfMemory,
    /// the range is empty, misaligned, overflows, lies outside the allocator's span, or
    /// (for a free) overlaps memory that is already free
    BadRange,
    /// the storage given for the bitmap is too small for the span
    StorageTooSmall,
}

/// A bitmap frame allocator over one physical span (2 MiB-aligned at both ends).
#[derive(Debug)]
pub struct FrameAllocator {
    /// Base of the span.
    base: u64,
    /// 2 MiB blocks in the span.
    blocks: usize,
    /// `blocks * 8` bitmap words (bit set = page free), then `blocks` free-page counts.
    words: &'static mut [u64],
    /// Free pages in total.
    free: u64,
}

impl FrameAllocator {
    /// Storage words needed to cover `[base, end)` (rounded out to whole 2 MiB blocks).
    pub fn storage_words(base: PhysAddr, end: PhysAddr) -> usize {
        let (_, blocks) = span(base.as_u64(), end.as_u64());
        blocks * (WORDS_PER_BLOCK + 1)
    }

    /// An allocator for `[base, end)` with no free memory; `storage` must hold at least
    /// [`Self::storage_words`] words and is cleared.
    pub fn new(
        base: PhysAddr,
        end: PhysAddr,
        storage: &'static mut [u64],
    ) -> Result<Self, FrameError> {
        if end.as_u64() <= base.as_u64() {
            return Err(FrameError::BadRange);
        }
        let (start, blocks) = span(base.as_u64(), end.as_u64());
        let need = blocks * (WORDS_PER_BLOCK + 1);
        let words = storage.get_mut(..need).ok_or(FrameError::StorageTooSmall)?;
        words.fill(0);
        Ok(Self {
            base: start,
            blocks,
            words,
            free: 0,
        })
    }

    /// Adds `[base, base + size)`, shrunk inward to whole pages, to the free pool. A range
    /// smaller than a page after shrinking adds nothing. `BadRange` (and no change) if it
    /// overflows, leaves the span or overlaps free memory.
    pub fn add_free(&mut self, base: PhysAddr, size: u64) -> Result<(), FrameError> {
        let Some((start, end)) =
            super::whole_pages(base, size).map_err(|_| FrameError::BadRange)?
        else {
            return Ok(());
        };
        self.free(PhysAddr::new(start), (end - start) / PAGE_SIZE)
    }

    /// Allocates `pages` contiguous pages whose base is a multiple of `align` bytes (a power
    /// of two, at least `PAGE_SIZE`), the highest such run first; a single page comes from
    /// a partly used block when there is one. `BadRange` for zero pages or a bad alignment;
    /// `OutOfMemory` if nothing fits.
    pub fn alloc(&mut self, pages: u64, align: u64) -> Result<PhysAddr, FrameError> {
        if pages == 0 || !align.is_power_of_two() || align < PAGE_SIZE {
            return Err(FrameError::BadRange);
        }
        let first = if pages == 1 {
            self.find_single(align)
        } else {
            self.find_run(pages, align)
        };
        let first = first.ok_or(FrameError::OutOfMemory)?;
        self.set_range(first, pages, false);
        Ok(PhysAddr::new(self.base + first * PAGE_SIZE))
    }

    /// Takes free pages for `pages` pages of domain RAM wherever they are: whole 2 MiB
    /// blocks first (the highest first), then the largest remaining runs. `sink` receives
    /// each run as it is taken (base, pages), in that order; adjacent whole blocks go as
    /// one run, low to high, so a domain's RAM is as few extents as the pool allows (block
    /// by block from the top, a 512 MiB guest was 256 extents, and every walk of its RAM
    /// map paid for them). `OutOfMemory` (taking nothing) if fewer than `pages` pages are
    /// free.
    pub fn alloc_scattered(
        &mut self,
        pages: u64,
        mut sink: impl FnMut(PhysAddr, u64),
    ) -> Result<(), FrameError> {
        if pages > self.free {
            return Err(FrameError::OutOfMemory);
        }
        let mut left = pages;
        let mut b = self.blocks;
        while b > 0 && left >= BLOCK_PAGES {
            b -= 1;
            if self.count(b) != BLOCK_PAGES {
                continue;
            }
            // The run of whole free blocks ending at `b`, no longer than still wanted.
            let want = (left / BLOCK_PAGES) as usize;
            let mut lo = b;
            while lo > 0 && b - lo + 1 < want && self.count(lo - 1) == BLOCK_PAGES {
                lo -= 1;
            }
            let run = (b - lo + 1) as u64 * BLOCK_PAGES;
            let first = lo as u64 * BLOCK_PAGES;
            self.set_range(first, run, false);
            sink(PhysAddr::new(self.base + first * PAGE_SIZE), run);
            left -= run;
            b = lo;
        }
        // Then the free runs from the top down, each cut to what is still needed.
        let mut cursor = self.blocks as u64 * BLOCK_PAGES;
        while left > 0 {
            let (first, len) = self.run_below(cursor).ok_or(FrameError::OutOfMemory)?;
            let take = len.min(left);
            let first = first + len - take;
            self.set_range(first, take, false);
            sink(PhysAddr::new(self.base + first * PAGE_SIZE), take);
            left -= take;
            cursor = first;
        }
        Ok(())
    }

    /// Returns `pages` pages at `base` (page-aligned) to the pool. Freeing pages any of
    /// which is already free is a double free, and pages outside the span were never
    /// handed out: both are `BadRange` and change nothing. Never fails otherwise.
    pub fn free(&mut self, base: PhysAddr, pages: u64) -> Result<(), FrameError> {
        if pages == 0 || !base.is_aligned(PAGE_SIZE) {
            return Err(FrameError::BadRange);
        }
        let first = base
            .as_u64()
            .checked_sub(self.base)
            .ok_or(FrameError::BadRange)?
            / PAGE_SIZE;
        let end = first.checked_add(pages).ok_or(FrameError::BadRange)?;
        if end > self.blocks as u64 * BLOCK_PAGES {
            return Err(FrameError::BadRange);
        }
        if Self::word_masks(first, pages).any(|(w, m)| self.words[w] & m != 0) {
            return Err(FrameError::BadRange);
        }
        self.set_range(first, pages, true);
        Ok(())
    }

    /// Total free pages.
    pub fn free_pages(&self) -> u64 {
        self.free
    }

    /// Pages in the longest run of contiguous free pages.
    pub fn largest_free_run(&self) -> u64 {
        self.largest_run().map_or(0, |(_, len)| len)
    }

    /// The free runs as `(base, pages)`, lowest first.
    pub fn ranges(&self) -> impl Iterator<Item = (PhysAddr, u64)> + '_ {
        let total = self.blocks as u64 * BLOCK_PAGES;
        let mut p = 0;
        core::iter::from_fn(move || {
            let start = self.next_free(p, total)?;
            p = self.next_used(start, total);
            Some((PhysAddr::new(self.base + start * PAGE_SIZE), p - start))
        })
    }

    fn count(&self, block: usize) -> u64 {
        self.words[self.blocks * WORDS_PER_BLOCK + block]
    }

    fn is_free(&self, page: u64) -> bool {
        self.words[(page / 64) as usize] & (1 << (page % 64)) != 0
    }

    /// The bitmap words `[first, first + pages)` covers, each with the mask of its bits
    /// there. A word at a time, not a page at a time: this runs under the global lock
    /// when a domain's hundreds of MiB are taken or returned (issue 12).
    fn word_masks(first: u64, pages: u64) -> impl Iterator<Item = (usize, u64)> {
        let end = first + pages;
        let mut p = first;
        core::iter::from_fn(move || {
            if p >= end {
                return None;
            }
            let (w, lo) = (p / 64, p % 64);
            let hi = (end - w * 64).min(64);
            let mask = (u64::MAX >> (64 - (hi - lo))) << lo;
            p = (w + 1) * 64;
            Some((w as usize, mask))
        })
    }

    /// Sets (frees) or clears (allocates) the bits of `[first, first + pages)`; the caller
    /// has checked that each bit currently has the other value.
    fn set_range(&mut self, first: u64, pages: u64, free: bool) {
        for (w, mask) in Self::word_masks(first, pages) {
            let c = self.blocks * WORDS_PER_BLOCK + w / WORDS_PER_BLOCK;
            let n = u64::from(mask.count_ones());
            if free {
                self.words[w] |= mask;
                self.words[c] += n;
            } else {
                self.words[w] &= !mask;
                self.words[c] -= n;
            }
        }
        if free {
            self.free += pages;
        } else {
            self.free -= pages;
        }
    }

    /// The first free page in `[p, end)`, if any (whole empty blocks skipped by count).
    fn next_free(&self, mut p: u64, end: u64) -> Option<u64> {
        while p < end {
            if p.is_multiple_of(BLOCK_PAGES) && self.count((p / BLOCK_PAGES) as usize) == 0 {
                p += BLOCK_PAGES;
                continue;
            }
            let bits = self.words[(p / 64) as usize] >> (p % 64);
            if bits != 0 {
                let found = p + u64::from(bits.trailing_zeros());
                return (found < end).then_some(found);
            }
            p = (p / 64 + 1) * 64;
        }
        None
    }

    /// The first used page in `[p, end)`, or `end` (whole free blocks skipped by count).
    fn next_used(&self, mut p: u64, end: u64) -> u64 {
        while p < end {
            if p.is_multiple_of(BLOCK_PAGES)
                && self.count((p / BLOCK_PAGES) as usize) == BLOCK_PAGES
            {
                p += BLOCK_PAGES;
                continue;
            }
            let bits = !self.words[(p / 64) as usize] >> (p % 64);
            if bits != 0 {
                return (p + u64::from(bits.trailing_zeros())).min(end);
            }
            p = (p / 64 + 1) * 64;
        }
        end
    }

    /// The highest page below `end` whose bit is `free`, if any (whole blocks of the other
    /// kind skipped by count).
    fn prev_with(&self, mut end: u64, free: bool) -> Option<u64> {
        let skip = if free { 0 } else { BLOCK_PAGES };
        while end > 0 {
            if end.is_multiple_of(BLOCK_PAGES)
                && self.count((end / BLOCK_PAGES - 1) as usize) == skip
            {
                end -= BLOCK_PAGES;
                continue;
            }
            let last = end - 1;
            let word = self.words[(last / 64) as usize];
            let word = if free { word } else { !word };
            // Only the bits at or below `last` in its word.
            let bits = word & (u64::MAX >> (63 - last % 64));
            if bits != 0 {
                return Some(last / 64 * 64 + 63 - u64::from(bits.leading_zeros()));
            }
            end = last / 64 * 64;
        }
        None
    }

    /// The highest free page at `align` in a partly used block, else in a whole free one.
    fn find_single(&self, align: u64) -> Option<u64> {
        let step = (align / PAGE_SIZE).max(1);
        let pick = |b: usize| {
            let first = b as u64 * BLOCK_PAGES;
            (first..first + BLOCK_PAGES)
                .rev()
                .find(|&p| (self.base / PAGE_SIZE + p).is_multiple_of(step) && self.is_free(p))
        };
        let partial = (0..self.blocks)
            .rev()
            .filter(|&b| (1..BLOCK_PAGES).contains(&self.count(b)))
            .find_map(pick);
        partial.or_else(|| {
            (0..self.blocks)
                .rev()
                .filter(|&b| self.count(b) == BLOCK_PAGES)
                .find_map(pick)
        })
    }

    /// The first page of the highest run of `pages` free pages starting at `align`.
    fn find_run(&self, pages: u64, align: u64) -> Option<u64> {
        let step = align / PAGE_SIZE;
        let base_page = self.base / PAGE_SIZE;
        // `above` = free pages directly above the one being looked at.
        let mut above = 0u64;
        for b in (0..self.blocks).rev() {
            let first = b as u64 * BLOCK_PAGES;
            match self.count(b) {
                0 => above = 0,
                BLOCK_PAGES if step <= BLOCK_PAGES => {
                    // The whole block is free: the highest aligned start it allows, if any.
                    let need = pages.saturating_sub(above);
                    if need <= BLOCK_PAGES {
                        let top = base_page + first + BLOCK_PAGES - need;
                        let start = top - top % step - base_page;
                        if start >= first {
                            return Some(start);
                        }
                    }
                    above += BLOCK_PAGES;
                }
                _ => {
                    for p in (first..first + BLOCK_PAGES).rev() {
                        if !self.is_free(p) {
                            above = 0;
                            continue;
                        }
                        above += 1;
                        if above >= pages && (base_page + p).is_multiple_of(step) {
                            return Some(p);
                        }
                    }
                }
            }
        }
        None
    }

    /// `(first page, length)` of the longest free run (the highest among equals).
    fn largest_run(&self) -> Option<(u64, u64)> {
        let mut best: Option<(u64, u64)> = None;
        for (base, len) in self.ranges() {
            if best.is_none_or(|(_, l)| len >= l) {
                best = Some(((base.as_u64() - self.base) / PAGE_SIZE, len));
            }
        }
        best
    }

    /// `(first page, length)` of the highest free run that ends at or below page `end`
    /// (a run crossing `end` is cut there), skipping fully used blocks.
    fn run_below(&self, end: u64) -> Option<(u64, u64)> {
        let top = self.prev_with(end, true)?;
        let start = self.prev_with(top, false).map_or(0, |used| used + 1);
        Some((start, top + 1 - start))
    }
}

/// The span `[base, end)` rounded out to 2 MiB blocks: its start and block count.
fn span(base: u64, end: u64) -> (u64, usize) {
    let start = base & !(BLOCK_SIZE - 1);
    let end = end.saturating_add(BLOCK_SIZE - 1) & !(BLOCK_SIZE - 1);
    (start, ((end - start) / BLOCK_SIZE) as usize)
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
