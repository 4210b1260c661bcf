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

use alloc::vec;
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

/// Slots of a table's first allocation (a power of two).
const FIRST_SLOTS: usize = 64;

/// The kept maps of one connection, by gref.
///
/// Every segment of every request is looked up here, so this is an open-addressing hash
/// table (linear probing, kept at most half full) rather than a tree: a lookup is a
/// multiply and a probe or two. Maps are only ever added one by one and dropped all at
/// once ([`PersistentGrants::drain_into`]), so no slot is ever emptied in between and a
/// probe ends at the first empty slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistentGrants {
    /// `(gref, map)` slots, `None` where empty; a power of two in length, or empty.
    slots: Vec<Option<(GrantRef, Kept)>>,
    len: usize,
}

/// Where `gref` starts probing in `n` slots (`n` a power of two): Fibonacci hashing, so
/// the consecutive refs blkfront allocates spread out.
fn home(gref: GrantRef, n: usize) -> usize {
    (gref.wrapping_mul(0x9e37_79b9) as usize) & (n - 1)
}

impl PersistentGrants {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Kept maps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot holding `gref`, or the empty slot where it would go (`None` only while
    /// nothing was ever allocated).
    fn find(&self, gref: GrantRef) -> Option<usize> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut i = home(gref, n);
        // At most half full: the probe meets an empty slot well before it wraps.
        loop {
            match self.slots[i] {
                Some((g, _)) if g != gref => i = (i + 1) & (n - 1),
                _ => return Some(i),
            }
        }
    }

    /// The device address of `gref`'s page, if it is kept.
    pub fn get(&self, gref: GrantRef) -> Option<u64> {
        let i = self.find(gref)?;
        self.slots[i].map(|(_, k)| k.addr)
    }

    /// Makes room for one more map (doubling, and re-placing every map, past half full).
    fn reserve_one(&mut self) {
        if (self.len + 1) * 2 <= self.slots.len() {
            return;
        }
        let n = (self.slots.len() * 2).max(FIRST_SLOTS);
        let old = core::mem::replace(&mut self.slots, vec![None; n]);
        for (g, k) in old.into_iter().flatten() {
            if let Some(i) = self.find(g) {
                self.slots[i] = Some((g, k));
            }
        }
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
        if self.get(gref).is_some() {
            return Err(Refused::Known);
        }
        if *total >= limit {
            return Err(Refused::Full);
        }
        self.reserve_one();
        let Some(i) = self.find(gref) else {
            return Err(Refused::Full); // unreachable: `reserve_one` allocated slots
        };
        self.slots[i] = Some((gref, kept));
        self.len += 1;
        *total += 1;
        Ok(())
    }

    /// Empties the table into `out` (the maps to undo, in no particular order), lowering
    /// `total` to match.
    pub fn drain_into(&mut self, out: &mut Vec<Kept>, total: &mut usize) {
        *total = total.saturating_sub(self.len);
        out.extend(self.slots.drain(..).flatten().map(|(_, k)| k));
        self.len = 0;
    }
}
