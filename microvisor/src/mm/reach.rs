//! What the physical-memory doorway (`arch::phys`) may reach: the rules it checks before it
//! turns a physical address into an access, kept here so they are host-tested.
//!
//! EL2 identity-maps all RAM, so any physical address is one pointer cast away from the
//! microvisor's own heap, image or stacks. The doorway only opens a window onto RAM that is
//! not *private* (this image, the boot device tree, the frame bitmap, the heap, the boot
//! modules — memory that Rust references point into) and not a *sealed* module (an upload
//! that domains are built from, read as a byte slice). Device windows must lie outside RAM,
//! so MMIO forwarding can never be turned into a RAM access.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// RAM ranges recorded: the banks, split by `no-map` reservations.
pub const MAX_RAM: usize = crate::platform::MAX_RAM_BANKS + crate::platform::MAX_RESERVED;
/// Private ranges recorded: image, DT, bitmap, heap and every boot module.
pub const MAX_PRIVATE: usize = 4 + crate::platform::MAX_MODULES;
/// Sealed uploads at once (dom0 keeps two; restarts may hold a few more).
pub const MAX_SEALED: usize = 16;

/// `[base, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    base: u64,
    end: u64,
}

impl Span {
    fn new(base: u64, len: u64) -> Option<Self> {
        let end = base.checked_add(len)?;
        (len > 0).then_some(Self { base, end })
    }
    fn overlaps(self, o: Span) -> bool {
        self.base < o.end && o.base < self.end
    }
    fn contains(self, o: Span) -> bool {
        self.base <= o.base && o.end <= self.end
    }
}

/// A fixed-capacity list is full, or a range wraps or is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected;

/// The boot-time layout: RAM banks and private ranges. Built once, then only read.
#[derive(Clone, Debug)]
pub struct Layout {
    ram: [Span; MAX_RAM],
    nr_ram: usize,
    private: [Span; MAX_PRIVATE],
    nr_private: usize,
    modules: [Span; crate::platform::MAX_MODULES],
    nr_modules: usize,
    /// RAM minus the private ranges, sorted: what [`Self::memory_ok`] searches. Filled by
    /// [`Self::finish`].
    reach: [Span; MAX_REACH],
    nr_reach: usize,
}

/// Reachable intervals: each private range splits at most one RAM range in two.
const MAX_REACH: usize = MAX_RAM + MAX_PRIVATE;

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    /// An empty layout: nothing is reachable.
    pub const fn new() -> Self {
        Self {
            ram: [Span { base: 0, end: 0 }; MAX_RAM],
            nr_ram: 0,
            private: [Span { base: 0, end: 0 }; MAX_PRIVATE],
            nr_private: 0,
            modules: [Span { base: 0, end: 0 }; crate::platform::MAX_MODULES],
            nr_modules: 0,
            reach: [Span { base: 0, end: 0 }; MAX_REACH],
            nr_reach: 0,
        }
    }

    /// Records a RAM bank.
    pub fn add_ram(&mut self, base: u64, len: u64) -> Result<(), Rejected> {
        let s = Span::new(base, len).ok_or(Rejected)?;
        *self.ram.get_mut(self.nr_ram).ok_or(Rejected)? = s;
        self.nr_ram += 1;
        Ok(())
    }

    /// Records a range that windows must never touch.
    pub fn add_private(&mut self, base: u64, len: u64) -> Result<(), Rejected> {
        let Some(mut s) = Span::new(base, len) else {
            return Ok(()); // nothing to protect
        };
        // Kept sorted and merged (touching ranges become one): the boot modules usually lie
        // back to back, so the hot check in `memory_ok` scans two or three ranges, not twenty.
        let list = &mut self.private[..self.nr_private];
        let mut kept = 0;
        let mut merged = [Span::default(); MAX_PRIVATE];
        for &p in list.iter() {
            if p.base <= s.end && s.base <= p.end {
                s = Span {
                    base: s.base.min(p.base),
                    end: s.end.max(p.end),
                };
            } else {
                merged[kept] = p;
                kept += 1;
            }
        }
        if kept == MAX_PRIVATE {
            return Err(Rejected);
        }
        let at = merged[..kept].partition_point(|p| p.base < s.base);
        merged.copy_within(at..kept, at + 1);
        merged[at] = s;
        self.private = merged;
        self.nr_private = kept + 1;
        Ok(())
    }

    /// Records a boot module: private to windows, readable as a byte slice.
    pub fn add_module(&mut self, base: u64, len: u64) -> Result<(), Rejected> {
        let Some(s) = Span::new(base, len) else {
            return Ok(());
        };
        *self.modules.get_mut(self.nr_modules).ok_or(Rejected)? = s;
        self.add_private(base, len)?;
        self.nr_modules += 1;
        Ok(())
    }

    /// Computes what windows may reach (RAM minus private ranges); until then nothing is.
    pub fn finish(&mut self) {
        let mut n = 0;
        let mut ram = self.ram;
        let ram = &mut ram[..self.nr_ram];
        ram.sort_unstable_by_key(|r| r.base);
        for r in ram.iter() {
            let mut from = r.base;
            // `private` is sorted and merged (see `add_private`).
            for p in self.private[..self.nr_private].iter() {
                if p.end <= from || p.base >= r.end {
                    continue;
                }
                if p.base > from {
                    self.reach[n] = Span {
                        base: from,
                        end: p.base,
                    };
                    n += 1;
                }
                from = from.max(p.end);
            }
            if from < r.end {
                self.reach[n] = Span {
                    base: from,
                    end: r.end,
                };
                n += 1;
            }
        }
        self.nr_reach = n;
    }

    /// Whether `[base, base + len)` is RAM of one bank and overlaps no private range: it
    /// lies inside one reachable interval (a binary search: this runs on every window).
    #[inline]
    pub fn memory_ok(&self, base: u64, len: u64) -> bool {
        let Some(s) = Span::new(base, len) else {
            return false;
        };
        let reach = &self.reach[..self.nr_reach];
        let i = reach.partition_point(|r| r.base <= s.base);
        i > 0 && reach[i - 1].contains(s)
    }

    /// Whether `[base, base + len)` lies inside one boot module.
    pub fn is_module(&self, base: u64, len: u64) -> bool {
        Span::new(base, len).is_some_and(|s| {
            self.modules[..self.nr_modules]
                .iter()
                .any(|m| m.contains(s))
        })
    }

    /// Whether `[base, base + len)` lies outside every RAM bank (device registers).
    pub fn device_ok(&self, base: u64, len: u64) -> bool {
        let Some(s) = Span::new(base, len) else {
            return false;
        };
        !self.ram[..self.nr_ram].iter().any(|r| r.overlaps(s))
    }
}

/// Sealed modules: ranges of pool RAM read as byte slices until released. Written by the
/// CPU holding the global lock (seal, release), read by any CPU opening a window; a slot
/// is `base` and `end` words, `end == 0` meaning free.
pub struct SealedSet {
    slots: [(AtomicU64, AtomicU64); MAX_SEALED],
    /// Slots in use, so the common case (none) costs one load.
    used: AtomicUsize,
}

impl Default for SealedSet {
    fn default() -> Self {
        Self::new()
    }
}

impl SealedSet {
    /// No sealed ranges.
    pub const fn new() -> Self {
        Self {
            slots: [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_SEALED],
            used: AtomicUsize::new(0),
        }
    }

    /// Seals `[base, base + len)`; the slot index is the handle for [`Self::release`].
    pub fn seal(&self, base: u64, len: u64) -> Result<usize, Rejected> {
        let s = Span::new(base, len).ok_or(Rejected)?;
        let i = self
            .slots
            .iter()
            .position(|(_, e)| e.load(Ordering::Acquire) == 0)
            .ok_or(Rejected)?;
        self.slots[i].0.store(s.base, Ordering::Relaxed);
        // Publishing `end` last makes the slot live with its base already in place.
        self.slots[i].1.store(s.end, Ordering::Release);
        self.used.fetch_add(1, Ordering::AcqRel);
        Ok(i)
    }

    /// Frees slot `i`.
    pub fn release(&self, i: usize) {
        if let Some((_, e)) = self.slots.get(i) {
            if e.swap(0, Ordering::AcqRel) != 0 {
                self.used.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Whether `[base, base + len)` overlaps a sealed range.
    #[inline]
    pub fn overlaps(&self, base: u64, len: u64) -> bool {
        if self.used.load(Ordering::Acquire) == 0 {
            return false;
        }
        let Some(s) = Span::new(base, len) else {
            return true;
        };
        self.slots.iter().any(|(b, e)| {
            let end = e.load(Ordering::Acquire);
            end != 0
                && s.overlaps(Span {
                    base: b.load(Ordering::Relaxed),
                    end,
                })
        })
    }

    /// Whether `[base, base + len)` lies inside one sealed range.
    pub fn contains(&self, base: u64, len: u64) -> bool {
        let Some(s) = Span::new(base, len) else {
            return false;
        };
        self.used.load(Ordering::Acquire) != 0
            && self.slots.iter().any(|(b, e)| {
                let end = e.load(Ordering::Acquire);
                end != 0
                    && Span {
                        base: b.load(Ordering::Relaxed),
                        end,
                    }
                    .contains(s)
            })
    }
}

#[cfg(test)]
#[path = "reach_tests.rs"]
mod tests;
