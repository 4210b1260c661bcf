//! Modules uploaded at run time (`CapOp::ModuleCreate`): what `xl create` does with a
//! kernel file the system was not booted with. The toolstack creates an empty module from
//! its memory quota, fills it page by page, then names it in a `DomainSpec` like a boot
//! module. Boot modules keep their indices; an upload's module index is
//! [`UPLOAD_INDEX_BASE`] plus its slot, so the two never collide.
//!
//! Lifetime: a module is kept while its creator holds the cap or a domain built from it
//! exists (restarts in place rebuild from it). Once a domain used it, it is sealed: its
//! bytes can no longer change under a domain that may be rebuilt from them. This file
//! decides; `hyp` owns the memory.
//!
//! The table also keeps each sealed upload's seal `S` (on the board, the memory doorway's
//! `arch::phys::Sealed`, whose release lets its frames be written again). A seal leaves
//! the table only inside a [`Freed`], which only [`Uploads::drop_holder`] and
//! [`Uploads::reclaim`] make, at the moment they remove an upload that neither its creator
//! nor any domain keeps: from then on nothing can look the upload up (so nothing can take
//! a new slice of it), and whoever holds the `Freed` is the only one who can release it.
#![forbid(unsafe_code)]

use crate::platform::MAX_LABEL;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::cap::CapHandle;
use protocol::control::CapError;
use protocol::ids::DomainId;

/// Modules that may be uploaded at once.
pub const MAX_UPLOADS: usize = 8;
/// Module index of upload slot 0.
pub const UPLOAD_INDEX_BASE: u16 = 0x8000;

/// One uploaded module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// First frame (contiguous).
    pub base: PhysAddr,
    /// Length in bytes.
    pub size: u64,
    /// Who paid for it: the holder and its Memory cap, refunded when it is freed.
    pub charged_to: (DomainId, CapHandle),
    label: [u8; MAX_LABEL],
    label_len: usize,
    /// A domain was created from it: no more writes.
    sealed: bool,
    /// Its creator still holds the cap.
    held: bool,
}

impl Upload {
    /// A new, held, unsealed module; `None` if the label is empty or too long.
    pub fn new(
        label: &str,
        base: PhysAddr,
        size: u64,
        charged_to: (DomainId, CapHandle),
    ) -> Option<Self> {
        let bytes = label.as_bytes();
        if bytes.is_empty() || bytes.len() >= MAX_LABEL {
            return None;
        }
        let mut stored = [0; MAX_LABEL];
        stored[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            base,
            size,
            charged_to,
            label: stored,
            label_len: bytes.len(),
            sealed: false,
            held: true,
        })
    }

    /// Its label, as `CapList` shows it.
    pub fn label(&self) -> &str {
        core::str::from_utf8(&self.label[..self.label_len]).unwrap_or("?")
    }

    /// Whole pages it occupies.
    pub fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE_SIZE)
    }
}

/// The upload slots, and the seals `S` of the sealed ones.
#[derive(Debug)]
pub struct Uploads<S> {
    slots: [Option<Upload>; MAX_UPLOADS],
    seals: [Option<S>; MAX_UPLOADS],
}

impl<S> Default for Uploads<S> {
    fn default() -> Self {
        Self {
            slots: [const { None }; MAX_UPLOADS],
            seals: [const { None }; MAX_UPLOADS],
        }
    }
}

/// An upload the table gave up: its creator dropped the cap, no domain refers to it, and
/// the table no longer names it. The only way its seal leaves the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Freed<S> {
    /// The upload.
    pub upload: Upload,
    /// Its seal, if it was sealed (and the seal could be made).
    pub seal: Option<S>,
}

/// Pages needed for a module of `size` bytes; `InvalidArgument` for an empty one.
pub fn pages_for(size: u64) -> Result<u64, CapError> {
    if size == 0 {
        return Err(CapError::InvalidArgument);
    }
    Ok(size.div_ceil(PAGE_SIZE))
}

/// The slot behind module index `index`, if it names an upload.
pub fn slot_of(index: usize) -> Option<usize> {
    index
        .checked_sub(usize::from(UPLOAD_INDEX_BASE))
        .filter(|&s| s < MAX_UPLOADS)
}

impl<S> Uploads<S> {
    /// Whether a slot is free (check before allocating memory for one).
    pub fn has_room(&self) -> bool {
        self.slots.iter().any(Option::is_none)
    }

    /// Stores `upload`; its module index, or `NoSlots`.
    pub fn insert(&mut self, upload: Upload) -> Result<u16, CapError> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(CapError::NoSlots)?;
        self.slots[slot] = Some(upload);
        Ok(UPLOAD_INDEX_BASE + slot as u16)
    }

    /// The upload at module index `index`.
    pub fn get(&self, index: usize) -> Option<&Upload> {
        self.slots.get(slot_of(index)?)?.as_ref()
    }

    /// Where `len` bytes written at `offset` go: `WrongState` once sealed, `InvalidArgument`
    /// outside the module.
    pub fn write_target(&self, index: usize, offset: u64, len: u64) -> Result<u64, CapError> {
        let u = self.get(index).ok_or(CapError::InvalidHandle)?;
        if u.sealed {
            return Err(CapError::WrongState);
        }
        let end = offset.checked_add(len).ok_or(CapError::InvalidArgument)?;
        if end > u.size {
            return Err(CapError::InvalidArgument);
        }
        Ok(u.base.as_u64() + offset)
    }

    /// A domain is being built from module `index`: seal it (no effect on boot modules).
    /// The first time, `make` makes the seal the table keeps (`None` if it cannot).
    pub fn seal(&mut self, index: usize, make: impl FnOnce(&Upload) -> Option<S>) {
        let Some(slot) = slot_of(index) else { return };
        let Some(u) = self.slots[slot].as_mut() else {
            return;
        };
        u.sealed = true;
        if self.seals[slot].is_none() {
            self.seals[slot] = make(u);
        }
    }

    /// The creator gave up its cap; the module is returned if nothing else keeps it
    /// (`in_use(index)`: a domain built from it still exists).
    pub fn drop_holder(
        &mut self,
        index: usize,
        in_use: impl Fn(usize) -> bool,
    ) -> Option<Freed<S>> {
        let slot = slot_of(index)?;
        self.slots[slot].as_mut()?.held = false;
        self.reclaim_slot(slot, &in_use)
    }

    /// Every module no longer held nor used, removed from the table (call after a domain
    /// is gone for good).
    pub fn reclaim(&mut self, in_use: impl Fn(usize) -> bool) -> alloc::vec::Vec<Freed<S>> {
        (0..MAX_UPLOADS)
            .filter_map(|slot| self.reclaim_slot(slot, &in_use))
            .collect()
    }

    fn reclaim_slot(&mut self, slot: usize, in_use: &impl Fn(usize) -> bool) -> Option<Freed<S>> {
        let index = usize::from(UPLOAD_INDEX_BASE) + slot;
        match &self.slots[slot] {
            Some(u) if !u.held && !in_use(index) => Some(Freed {
                upload: self.slots[slot].take()?,
                seal: self.seals[slot].take(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
