//! A per-CPU mailbox: how one CPU asks another to do something (re-schedule, or look at its
//! loaded vCPU's posted interrupts, [`crate::posted`]) without touching that CPU's private
//! state. The sender ORs request bits into the target's word
//! and sends an SGI only when the word goes from empty to non-empty; the target, before it
//! re-enters a guest on its lock-free fast path, looks at the word and, if it is non-empty,
//! takes the slow path, where it empties the word and acts on every bit.
//!
//! Why no request is lost: the target either sees the bit before it enters the guest, or
//! the bit was set after its look, in which case the sender found the word empty (the
//! target empties it only after its look) and sent an SGI, which makes the guest exit at
//! once. [`tests`] checks this over every interleaving of a sender and the target.

use core::sync::atomic::{AtomicU32, Ordering};

/// Request bit: make a new scheduling decision (something became runnable or changed).
pub const RESCHED: u32 = 1 << 0;
/// Request bit: interrupts were posted to the loaded vCPU ([`crate::posted`]); the fast
/// path may deliver them itself when this is the only bit.
pub const POSTED: u32 = 1 << 1;
/// Request bit: a port became pending in a domain with a vCPU placed here blocked in
/// `SCHEDOP_poll` (a fast send raised it); the slow path wakes those whose ports are
/// pending (`Hyp::wake_ready_pollers`).
pub const POLL: u32 = 1 << 2;

/// One CPU's incoming requests.
#[derive(Debug, Default)]
pub struct Mailbox {
    bits: AtomicU32,
}

impl Mailbox {
    /// An empty mailbox.
    pub const fn new() -> Self {
        Self {
            bits: AtomicU32::new(0),
        }
    }

    /// Adds `bits`; true if the mailbox was empty, i.e. the caller must interrupt the
    /// target (a non-empty mailbox already has an interrupt or a look coming).
    pub fn post(&self, bits: u32) -> bool {
        // Release: whatever the sender wrote before posting is visible to the target that
        // takes the bits (Acquire).
        self.bits.fetch_or(bits, Ordering::AcqRel) == 0
    }

    /// Whether any request waits (the fast path's look before entering a guest).
    pub fn pending(&self) -> bool {
        self.bits.load(Ordering::Acquire) != 0
    }

    /// What is in the mailbox, without taking it.
    pub fn peek(&self) -> u32 {
        self.bits.load(Ordering::Acquire)
    }

    /// Removes `bits` (the fast path taking the one request it serves itself); whatever
    /// else is there stays for the slow path.
    pub fn clear(&self, bits: u32) {
        self.bits.fetch_and(!bits, Ordering::AcqRel);
    }

    /// Empties the mailbox and returns what was in it.
    pub fn take(&self) -> u32 {
        self.bits.swap(0, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests;
