//! Persistent grants (`feature-persistent`): device maps kept for a whole connection.
//!
//! A frontend that negotiates `feature-persistent` (Linux's blkfront does by default) grants
//! a fixed pool of its pages once and reuses them for every request, copying the data
//! between them and its own buffers itself. The backend then maps each gref the first time
//! it sees it and keeps the map, keyed by gref, until the connection ends: a request whose
//! pages are all known costs no map or unmap hypercall at all. (Xen's blkback does the same
//! with CPU maps; we keep device maps, see [`crate::io::Grants::map_persistent`].)
//!
//! The table is bounded ([`PersistentGrants::new`]'s limit, shared by every vbd of a
//! [`crate::VbdTable`] because the maps of all of them come out of one maptrack): once full,
//! a new gref is refused and its request moves with a per-batch device map (or by copy),
//! exactly as without the feature. Nothing is evicted: blkfront reuses its pool most
//! recently used first, so the refs a steady workload needs are the ones mapped first.
//!
//! The maps are undone when the connection ends ([`crate::VbdTable::release_grants`]); a
//! restarted blkdom starts with an empty table (the microvisor revoked its predecessor's
//! maps when it died) and maps the refs again as requests use them.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use protocol::xen::structs::GrantRef;

/// One kept device map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The map's handle (what unmapping it needs).
    pub handle: u32,
    /// The device address of the granted page.
    pub addr: u64,
}

/// Why a map was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The table is at its limit.
    Full,
    /// The gref is kept already (a second map of it is not needed).
    Known,
}

/// The kept maps of one connection, by gref.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistentGrants {
    maps: BTreeMap<GrantRef, Kept>,
}

impl PersistentGrants {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Kept maps.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// The device address of `gref`'s page, if it is kept.
    pub fn get(&self, gref: GrantRef) -> Option<u64> {
        self.maps.get(&gref).map(|k| k.addr)
    }

    /// Keeps `kept` as `gref`'s map if fewer than `limit` maps are kept in all (`total`,
    /// counting every table that shares the limit). On refusal the caller still holds the
    /// map and must undo it.
    pub fn insert(
        &mut self,
        gref: GrantRef,
        kept: Kept,
        total: &mut usize,
        limit: usize,
    ) -> Result<(), Refused> {
        if self.maps.contains_key(&gref) {
            return Err(Refused::Known);
        }
        if *total >= limit {
            return Err(Refused::Full);
        }
        self.maps.insert(gref, kept);
        *total += 1;
        Ok(())
    }

    /// Empties the table into `out` (the maps to undo), lowering `total` to match.
    pub fn drain_into(&mut self, out: &mut Vec<Kept>, total: &mut usize) {
        *total = total.saturating_sub(self.maps.len());
        out.extend(core::mem::take(&mut self.maps).into_values());
    }
}
