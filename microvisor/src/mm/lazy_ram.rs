//! Scrubbing a domain's RAM on first touch, one 2 MiB block at a time, instead of all of it
//! before its first instruction.
//!
//! A new domain's RAM must never show what an earlier owner left in those frames. Zeroing
//! 512 MiB costs about 27 ms of a Linux guest's boot (under `-icount`, 8 M `DC ZVA` plus as
//! many `DC CVAC`), and a booting Linux touches a fraction of it. So the blocks the build
//! writes (kernel, initramfs, device tree) are scrubbed and mapped at build as before, and
//! every other block starts [`State::Pending`]: unmapped in stage 2 and never handed to
//! anyone until it is scrubbed. Two ways lead from there to [`State::Clean`]:
//! - the guest touches it: a stage-2 translation fault, whose locked path queues the scrub
//!   on its CPU's bulk queue (done outside the global lock, `hyp::bulk`) and maps the block
//!   after it;
//! - the microvisor resolves a frame of it for anyone (a hypercall argument, a grant map
//!   or copy, a device-mapped grant, an event page): [`crate::mm::ram::RamMap::to_phys`]
//!   scrubs it first, on the spot, so nothing written there is ever wiped by a later
//!   scrub and nothing stale is ever read.
//!
//! Concurrency: a block's state moves only forwards, Pending → Scrubbing → Clean → Mapped
//! (the last under the global lock). The scrub is done by whoever wins Pending → Scrubbing;
//! anyone else finding it Scrubbing waits for Clean, which takes a bounded time (the winner
//! zeroes 2 MiB and touches no lock). Freeing the domain's frames first [`LazyRam::retire`]s
//! it: no scrub may start afterwards, and it waits out any in progress, so a late scrub can
//! never write frames that already went to their next owner. That is a store-then-load
//! handshake on each side (`dead` then `inflight` against `inflight` then `dead`), both
//! sequentially consistent, so at least one side sees the other. Then only the blocks
//! that left [`State::Pending`] are zeroed: a pending block was never exposed and holds
//! nothing of the domain's (its next owner scrubs it before exposing it, as every owner of
//! a frame from the pool does).
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use protocol::addr::PhysAddr;

/// Where one 2 MiB block of guest RAM stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Holds whatever an earlier owner left: unmapped, never resolved for anyone.
    Pending = 0,
    /// Being zeroed by one CPU.
    Scrubbing = 1,
    /// Zeroed (and at the point of coherency); not yet in the guest's stage 2.
    Clean = 2,
    /// Zeroed and mapped.
    Mapped = 3,
}

impl State {
    fn from_raw(raw: u8) -> Self {
        match raw {
            0 => State::Pending,
            1 => State::Scrubbing,
            2 => State::Clean,
            _ => State::Mapped,
        }
    }
}

/// Zeroes `len` bytes at host address `pa` so that the domain sees zeroes (cleaned to the
/// point of coherency unless its stage 2 forces write-back).
pub type ScrubFn = fn(PhysAddr, u64);

/// What became of a domain's blocks, for the log line when it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Census {
    /// Scrubbed and mapped by the build (what its load wrote).
    pub built: usize,
    /// Scrubbed when the guest or the microvisor first touched them.
    pub touched: usize,
    /// Of those, the ones the microvisor scrubbed itself, resolving a frame of the block
    /// for a hypercall or a grant (under the caller's lock), rather than the guest's
    /// first access (on its CPU's bulk queue, under no lock).
    pub resolved: usize,
    /// Never touched by anyone.
    pub never: usize,
}

/// One domain incarnation's first-touch scrub state.
#[derive(Debug)]
pub struct LazyRam {
    blocks: Vec<AtomicU8>,
    inflight: AtomicU32,
    dead: AtomicBool,
    scrubbed: AtomicU32,
    resolved: AtomicU32,
    scrub: ScrubFn,
}

impl LazyRam {
    /// `blocks` blocks, all [`State::Pending`], scrubbed with `scrub`.
    pub fn new(blocks: usize, scrub: ScrubFn) -> Self {
        Self {
            blocks: (0..blocks)
                .map(|_| AtomicU8::new(State::Pending as u8))
                .collect(),
            inflight: AtomicU32::new(0),
            dead: AtomicBool::new(false),
            scrubbed: AtomicU32::new(0),
            resolved: AtomicU32::new(0),
            scrub,
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Block `b`'s state (`Mapped` past the end: nothing lazy there).
    pub fn state(&self, b: usize) -> State {
        self.blocks.get(b).map_or(State::Mapped, |s| {
            State::from_raw(s.load(Ordering::Acquire))
        })
    }

    /// Whether block `b` is scrubbed (clean or mapped; past the end: nothing lazy there).
    #[inline]
    pub fn is_clean(&self, b: usize) -> bool {
        self.blocks
            .get(b)
            .is_none_or(|s| s.load(Ordering::Acquire) >= State::Clean as u8)
    }

    /// Blocks scrubbed on first touch so far.
    pub fn scrubbed(&self) -> u32 {
        self.scrubbed.load(Ordering::Relaxed)
    }

    /// How many blocks were built, touched later, or never touched (a block being
    /// scrubbed right now counts as built).
    pub fn census(&self) -> Census {
        let never = (0..self.blocks.len())
            .filter(|&b| self.state(b) == State::Pending)
            .count();
        let touched = self.scrubbed() as usize;
        Census {
            built: self.blocks.len().saturating_sub(never + touched),
            touched,
            resolved: self.resolved.load(Ordering::Relaxed) as usize,
            never,
        }
    }

    /// Marks block `b` scrubbed and mapped by the build itself (before anything can see
    /// the domain).
    pub fn set_built(&self, b: usize) {
        if let Some(s) = self.blocks.get(b) {
            s.store(State::Mapped as u8, Ordering::Release);
        }
    }

    /// Makes block `b` clean: scrubs its host pieces (`pieces()`) if nobody has, or waits
    /// for the scrub in progress. False if the domain's frames are being freed (nothing is
    /// scrubbed then).
    pub fn ensure_clean(&self, b: usize, pieces: impl FnOnce() -> Vec<(PhysAddr, u64)>) -> bool {
        self.ensure(b, pieces, false)
    }

    /// [`Self::ensure_clean`] for a frame the microvisor resolves (a hypercall's argument,
    /// a granted page): a scrub it does is counted in [`Census::resolved`] too.
    pub fn ensure_clean_resolving(
        &self,
        b: usize,
        pieces: impl FnOnce() -> Vec<(PhysAddr, u64)>,
    ) -> bool {
        self.ensure(b, pieces, true)
    }

    fn ensure(
        &self,
        b: usize,
        pieces: impl FnOnce() -> Vec<(PhysAddr, u64)>,
        resolving: bool,
    ) -> bool {
        let Some(slot) = self.blocks.get(b) else {
            return true;
        };
        if slot.load(Ordering::Acquire) >= State::Clean as u8 {
            return true;
        }
        // Counted before `dead` is read (against `retire`'s store, then load).
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if self.dead.load(Ordering::SeqCst) {
            self.inflight.fetch_sub(1, Ordering::Release);
            return false;
        }
        let mut pieces = Some(pieces);
        loop {
            match slot.compare_exchange(
                State::Pending as u8,
                State::Scrubbing as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    for (pa, len) in pieces.take().map(|p| p()).unwrap_or_default() {
                        (self.scrub)(pa, len);
                    }
                    self.scrubbed.fetch_add(1, Ordering::Relaxed);
                    if resolving {
                        self.resolved.fetch_add(1, Ordering::Relaxed);
                    }
                    slot.store(State::Clean as u8, Ordering::Release);
                    break;
                }
                // Another CPU is zeroing it: 2 MiB and no lock, so this wait is bounded.
                Err(s) if s == State::Scrubbing as u8 => core::hint::spin_loop(),
                Err(_) => break,
            }
        }
        self.inflight.fetch_sub(1, Ordering::Release);
        true
    }

    /// Records that block `b`, clean, is now in the guest's stage 2 (under the global
    /// lock). False if it was not clean.
    pub fn set_mapped(&self, b: usize) -> bool {
        self.blocks.get(b).is_some_and(|s| {
            s.compare_exchange(
                State::Clean as u8,
                State::Mapped as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        })
    }

    /// The domain's frames are about to be freed: no scrub starts from now on, and this
    /// returns once none is in progress.
    pub fn retire(&self) {
        self.dead.store(true, Ordering::SeqCst);
        while self.inflight.load(Ordering::SeqCst) != 0 {
            core::hint::spin_loop();
        }
    }
}

#[cfg(test)]
#[path = "lazy_ram_tests.rs"]
mod tests;
