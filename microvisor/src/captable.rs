//! A domain's capability table: fixed slots addressed by `{index, generation}` handles.
//!
//! Invariants:
//! - a slot's generation only grows, and grows exactly when a capability leaves the slot,
//!   so every generation below the current one was once issued, and an old handle can be
//!   told apart ([`CapError::Stale`]) from a forged one ([`CapError::InvalidHandle`]);
//! - generations start at 1, so generation 0 is never valid;
//! - a slot whose generation reaches `u32::MAX` is retired rather than wrapped, so no
//!   `(index, generation)` pair ever designates two different capabilities.
#![forbid(unsafe_code)]

use protocol::cap::{CapHandle, CapKind, Rights};
use protocol::control::CapError;
use protocol::ids::DomainId;

/// Slots in each domain's table.
pub const CAP_SLOTS: usize = 64;

/// What a capability designates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A child domain, in one incarnation.
    Domain {
        /// The domain.
        domid: DomainId,
        /// Its incarnation; a restart bumps it, so capabilities to the old one can be
        /// revoked by matching on it.
        instance: u32,
    },
    /// A RAM quota.
    Memory {
        /// Pages the holder may still allocate.
        quota_pages: u64,
    },
    /// A host device, by index in the platform's device list.
    Device {
        /// Index in the device list.
        index: u16,
    },
    /// A boot module, by index in the boot info's module list.
    Module {
        /// Index in the module list.
        index: u16,
    },
    /// The debug console.
    Console,
}

impl Object {
    /// The protocol-visible kind of this object.
    pub fn kind(&self) -> CapKind {
        match self {
            Self::Domain { .. } => CapKind::Domain,
            Self::Memory { .. } => CapKind::Memory,
            Self::Device { .. } => CapKind::Device,
            Self::Module { .. } => CapKind::Module,
            Self::Console => CapKind::Console,
        }
    }
}

/// A capability: an object and what the holder may do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// What it designates.
    pub object: Object,
    /// What it allows.
    pub rights: Rights,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    cap: Option<Capability>,
}

/// One domain's capabilities.
#[derive(Clone, Debug)]
pub struct CapTable {
    slots: [Slot; CAP_SLOTS],
}

impl Default for CapTable {
    fn default() -> Self {
        Self::new()
    }
}

impl CapTable {
    /// An empty table; every slot starts at generation 1.
    pub const fn new() -> Self {
        Self {
            slots: [Slot {
                generation: 1,
                cap: None,
            }; CAP_SLOTS],
        }
    }

    /// Stores `cap` in the first free slot. `NoSlots` when the table is full.
    pub fn insert(&mut self, cap: Capability) -> Result<CapHandle, CapError> {
        let (index, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.cap.is_none() && s.generation != u32::MAX)
            .ok_or(CapError::NoSlots)?;
        slot.cap = Some(cap);
        Ok(handle(index, slot.generation))
    }

    /// The capability at `h`. `InvalidHandle` for an index out of range, an empty slot or a
    /// generation never issued; `Stale` for a generation that was issued and since removed.
    pub fn get(&self, h: CapHandle) -> Result<&Capability, CapError> {
        let slot = self.slot(h)?;
        slot.cap.as_ref().ok_or(CapError::InvalidHandle)
    }

    /// Like [`CapTable::get`], mutably (e.g. to spend a memory quota).
    pub fn get_mut(&mut self, h: CapHandle) -> Result<&mut Capability, CapError> {
        self.slot(h)?;
        let slot = &mut self.slots[usize::from(h.index)];
        slot.cap.as_mut().ok_or(CapError::InvalidHandle)
    }

    /// The capability at `h`, checked to be of `kind` (else `WrongKind`) and to carry all of
    /// `needed` (else `NoRights`).
    pub fn lookup(
        &self,
        h: CapHandle,
        kind: CapKind,
        needed: Rights,
    ) -> Result<&Capability, CapError> {
        let cap = self.get(h)?;
        check(cap, kind, needed)?;
        Ok(cap)
    }

    /// Like [`CapTable::lookup`], mutably.
    pub fn lookup_mut(
        &mut self,
        h: CapHandle,
        kind: CapKind,
        needed: Rights,
    ) -> Result<&mut Capability, CapError> {
        let cap = self.get_mut(h)?;
        check(cap, kind, needed)?;
        Ok(cap)
    }

    /// Takes the capability out of `h`'s slot; the handle and any copies become `Stale`.
    pub fn remove(&mut self, h: CapHandle) -> Result<Capability, CapError> {
        self.get(h)?;
        let slot = &mut self.slots[usize::from(h.index)];
        let cap = slot.cap.take().ok_or(CapError::InvalidHandle)?;
        // Saturating: at u32::MAX the slot is retired (see `insert`), never wrapped to reuse
        // an old generation.
        slot.generation = slot.generation.saturating_add(1);
        Ok(cap)
    }

    /// Removes every capability `pred` matches (their handles become `Stale`) and returns
    /// how many there were. Used when an object dies: a domain destroyed or restarted.
    pub fn revoke(&mut self, pred: impl Fn(&Capability) -> bool) -> usize {
        let mut n = 0;
        for slot in &mut self.slots {
            if slot.cap.as_ref().is_some_and(&pred) {
                slot.cap = None;
                slot.generation = slot.generation.saturating_add(1);
                n += 1;
            }
        }
        n
    }

    /// Every capability with its current handle, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (CapHandle, &Capability)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.cap.as_ref().map(|c| (handle(i, s.generation), c)))
    }

    /// `Ok` if some capability of `kind` carries all of `needed`; else `NoRights`. For
    /// checks that must come before a request's handles are even decoded (F13).
    pub fn holds(&self, kind: CapKind, needed: Rights) -> Result<(), CapError> {
        if self.iter().any(|(_, c)| check(c, kind, needed).is_ok()) {
            Ok(())
        } else {
            Err(CapError::NoRights)
        }
    }

    /// The slot `h` names, if its generation is the current one.
    fn slot(&self, h: CapHandle) -> Result<&Slot, CapError> {
        let slot = self
            .slots
            .get(usize::from(h.index))
            .ok_or(CapError::InvalidHandle)?;
        if h.generation == slot.generation {
            Ok(slot)
        } else if h.generation != 0 && h.generation < slot.generation {
            Err(CapError::Stale)
        } else {
            Err(CapError::InvalidHandle)
        }
    }
}

fn handle(index: usize, generation: u32) -> CapHandle {
    // CAP_SLOTS is far below u16::MAX, so the index always fits.
    CapHandle {
        index: index as u16,
        generation,
    }
}

fn check(cap: &Capability, kind: CapKind, needed: Rights) -> Result<(), CapError> {
    if cap.object.kind() != kind {
        Err(CapError::WrongKind)
    } else if !cap.rights.contains(needed) {
        Err(CapError::NoRights)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "captable_tests.rs"]
mod tests;
