//! Translation-table builder: 4 KiB granule, 39-bit input, starting at level 1.
//!
//! One builder serves both the per-domain stage-2 tables and the microvisor's own EL2
//! stage-1 identity map; only the leaf attribute encoding differs ([`Stage`]). Levels 1, 2
//! and 3 translate 1 GiB, 2 MiB and 4 KiB respectively, and [`PageTable::map`] always uses
//! the largest block both addresses allow, because fewer TLB entries is the main cost of
//! stage 2 under a guest.
//!
//! Invariants:
//! - a table page is reachable from exactly one table descriptor (or is the root), so
//!   [`PageTable::destroy`] frees each page exactly once;
//! - `map` never overwrites a valid entry: changing a live mapping is always unmap + map.
//!
//! - a table page other than the root holds at least one valid entry: `unmap` frees a table
//!   as soon as its last entry goes (F4: a map/unmap walk over the IPA space must not strand
//!   tables), after invalidating the entry that pointed to it and the TLB.
//!
//! TLB maintenance: the caller invalidates the TLB for a range after `unmap`. An `unmap`
//! that cuts a live block does break-before-make itself (F15): the block entry is made
//! invalid, [`TableMemory::flush_tlb`] runs, and only then the table of the same translation
//! is installed, so no CPU ever sees two translations for one address.
#![forbid(unsafe_code)]

use protocol::addr::{PhysAddr, PAGE_SIZE};

mod desc;

use desc::{
    decode_leaf, encode_leaf, index_of, is_leaf, is_table, level_size, OA_MASK, TABLE_OR_PAGE,
    VALID,
};
pub use desc::{MAIR_EL2_VALUE, TCR_EL2_VALUE, VTCR_EL2_VALUE};

/// Input address bits translated (T0SZ = 64 - 39 = 25).
pub const INPUT_BITS: u32 = 39;
/// Output address bits the tables may produce (PS = 0b010, 40 bits).
pub const OUTPUT_BITS: u32 = 40;
/// Entries per 4 KiB table.
pub const ENTRIES: usize = 512;

/// Which translation regime a table serves; decides the leaf attribute encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A domain's stage-2 (IPA to PA) table, installed in `VTTBR_EL2`.
    Stage2,
    /// A domain's stage-2 table whose normal memory is forced write-back (FEAT_S2FWB):
    /// `HCR_EL2.FWB` is set while it is installed ([`Vttbr::forced_wb`]), so what the
    /// guest's stage 1 says cannot make its RAM non-cacheable and no cache maintenance is
    /// needed to show it what the microvisor wrote. Device mappings are as in [`Stage::Stage2`].
    Stage2ForcedWb,
    /// The microvisor's own EL2 stage-1 table, installed in `TTBR0_EL2`.
    El2Stage1,
}

/// Memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Normal write-back cacheable, inner shareable: RAM.
    Normal,
    /// Device-nGnRE: MMIO.
    Device,
}

/// What a mapping allows. At EL2 stage 1 memory is always readable, so `read` is ignored
/// there and reads back as `true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    /// Memory type.
    pub mem: MemType,
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
}

/// Why a mapping operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// an address or size is not a multiple of 4 KiB
    Misaligned,
    /// the input range exceeds the 39-bit input space or the output exceeds 40 bits
    OutOfRange,
    /// part of the input range is already mapped
    AlreadyMapped,
    /// nothing in the input range was mapped
    NotMapped,
    /// no memory for a translation table page
    NoMemory,
}

/// How the builder reaches table pages: identity-mapped RAM on hardware, a map in tests.
pub trait TableMemory {
    /// A zeroed 4 KiB page for a table, or `None` if there is no memory.
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    /// Returns a table page obtained from `alloc_table`.
    fn free_table(&mut self, table: PhysAddr);
    /// Entry `index` (< 512) of the table at `table`.
    fn read_entry(&self, table: PhysAddr, index: usize) -> u64;
    /// Entries `first..first + out.len()` (all < 512) of the table at `table`. One by one
    /// by default; an implementation that checks every access may check once per call
    /// (a whole table is walked under the global lock when a stage 2 is destroyed).
    fn read_entries(&self, table: PhysAddr, first: usize, out: &mut [u64]) {
        for (i, e) in out.iter_mut().enumerate() {
            *e = self.read_entry(table, first + i);
        }
    }
    /// Sets entry `index` (< 512) of the table at `table`.
    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64);
    /// Sets entries `first..first + values.len()` (all < 512) of the table at `table`; as
    /// [`Self::read_entries`], one by one by default.
    fn write_entries(&mut self, table: PhysAddr, first: usize, values: &[u64]) {
        for (i, &v) in values.iter().enumerate() {
            self.write_entry(table, first + i, v);
        }
    }
    /// Invalidates every cached translation (and walk) through this table, after an entry
    /// was made invalid: the middle step of break-before-make, and the step before a
    /// table page is freed.
    fn flush_tlb(&mut self);
}

/// A 4 KiB-granule, 3-level translation table rooted at level 1.
#[derive(Debug)]
pub struct PageTable {
    root: PhysAddr,
    stage: Stage,
}

/// A `VTTBR_EL2` value: the root of a stage-2 table built here, tagged with a VMID. Only
/// [`PageTable::vttbr`] makes one, so the arch layer can load it without trusting a bare
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vttbr(u64, bool);

impl Vttbr {
    /// The register value.
    pub fn raw(self) -> u64 {
        self.0
    }

    /// Whether the table encodes normal memory for `HCR_EL2.FWB` set
    /// ([`Stage::Stage2ForcedWb`]), which loading it must then set.
    pub fn forced_wb(self) -> bool {
        self.1
    }
}

impl PageTable {
    /// The `VTTBR_EL2` value for this table under `vmid`; `None` for an EL2 table.
    pub fn vttbr(&self, vmid: u16) -> Option<Vttbr> {
        let forced_wb = self.stage == Stage::Stage2ForcedWb;
        (self.stage != Stage::El2Stage1)
            .then(|| Vttbr(self.root.as_u64() | (u64::from(vmid) << 48), forced_wb))
    }

    /// An empty table (a zeroed root page).
    pub fn new(mem: &mut impl TableMemory, stage: Stage) -> Result<Self, MapError> {
        let root = mem.alloc_table().ok_or(MapError::NoMemory)?;
        Ok(Self { root, stage })
    }

    /// Physical address of the level-1 table, for `VTTBR_EL2` / `TTBR0_EL2`.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// Which regime the table encodes attributes for.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Maps `[input, input + size)` to `output` with `attrs`, using the largest blocks that
    /// the alignment of both addresses allows. Nothing is changed if any part of the range
    /// is already mapped. On `NoMemory` the part mapped so far is unmapped again. A zero
    /// size maps nothing.
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        input: u64,
        output: PhysAddr,
        size: u64,
        attrs: Attrs,
    ) -> Result<(), MapError> {
        let out = output.as_u64();
        if (input | out | size) & (PAGE_SIZE - 1) != 0 {
            return Err(MapError::Misaligned);
        }
        check_end(input, size, INPUT_BITS)?;
        check_end(out, size, OUTPUT_BITS)?;
        if size == 0 {
            return Ok(());
        }
        if self.any_mapped(mem, self.root, 1, input, size) {
            return Err(MapError::AlreadyMapped);
        }
        let leaf = encode_leaf(self.stage, attrs);
        let mut done = 0;
        let result = map_level(mem, self.root, 1, input, out, size, leaf, &mut done);
        if result.is_err() && done > 0 {
            // Undo exactly what was written: those leaves lie wholly inside the range, so
            // this unmap never splits and cannot fail for lack of memory.
            let undo = self.unmap(mem, input, done);
            debug_assert!(undo.is_ok(), "rollback of a fresh mapping failed: {undo:?}");
        }
        result
    }

    /// Unmaps `[input, input + size)`. A block only partly inside the range is first split
    /// into next-level entries (needing table memory). `NotMapped` if nothing was mapped;
    /// unmapped holes inside a range that is otherwise mapped are fine.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        input: u64,
        size: u64,
    ) -> Result<(), MapError> {
        if (input | size) & (PAGE_SIZE - 1) != 0 {
            return Err(MapError::Misaligned);
        }
        check_end(input, size, INPUT_BITS)?;
        let mut cleared = false;
        unmap_level(mem, self.root, 1, input, size, &mut cleared)?;
        if cleared {
            Ok(())
        } else {
            Err(MapError::NotMapped)
        }
    }

    /// The output address (including the offset inside the page or block) and attributes
    /// that `input` translates to, or `None` if it is unmapped or out of range.
    pub fn translate(&self, mem: &impl TableMemory, input: u64) -> Option<(PhysAddr, Attrs)> {
        if input >> INPUT_BITS != 0 {
            return None;
        }
        let mut table = self.root;
        for level in 1..=3u8 {
            let desc = mem.read_entry(table, index_of(input, level));
            if is_table(desc, level) {
                table = PhysAddr::new(desc & OA_MASK);
            } else if is_leaf(desc, level) {
                let mask = level_size(level) - 1;
                let pa = (desc & OA_MASK & !mask) | (input & mask);
                return Some((PhysAddr::new(pa), decode_leaf(self.stage, desc)));
            } else {
                return None;
            }
        }
        None
    }

    /// Frees every table page, the root included.
    pub fn destroy(self, mem: &mut impl TableMemory) {
        free_level(mem, self.root, 1);
    }

    /// Whether any leaf lies in `[input, input + size)` below `table` (at `level`).
    fn any_mapped(
        &self,
        mem: &impl TableMemory,
        table: PhysAddr,
        level: u8,
        input: u64,
        size: u64,
    ) -> bool {
        chunks(input, size, level).any(|(addr, len)| {
            let desc = mem.read_entry(table, index_of(addr, level));
            if is_table(desc, level) {
                self.any_mapped(mem, PhysAddr::new(desc & OA_MASK), level + 1, addr, len)
            } else {
                is_leaf(desc, level)
            }
        })
    }
}

/// `OutOfRange` unless `start + size <= 1 << bits`.
fn check_end(start: u64, size: u64, bits: u32) -> Result<(), MapError> {
    match start.checked_add(size) {
        Some(end) if end <= 1 << bits => Ok(()),
        _ => Err(MapError::OutOfRange),
    }
}

/// Splits `[input, input + size)` at the entry boundaries of `level`.
fn chunks(input: u64, size: u64, level: u8) -> impl Iterator<Item = (u64, u64)> {
    let entry = level_size(level);
    let end = input + size;
    let mut addr = input;
    core::iter::from_fn(move || {
        if addr >= end {
            return None;
        }
        let next = ((addr & !(entry - 1)) + entry).min(end);
        let chunk = (addr, next - addr);
        addr = next;
        Some(chunk)
    })
}

#[allow(clippy::too_many_arguments)] // A recursive walk; bundling the cursor into a struct obscures it.
fn map_level(
    mem: &mut impl TableMemory,
    table: PhysAddr,
    level: u8,
    input: u64,
    output: u64,
    size: u64,
    leaf: u64,
    done: &mut u64,
) -> Result<(), MapError> {
    let entry = level_size(level);
    for (addr, len) in chunks(input, size, level) {
        let out = output + (addr - input);
        let idx = index_of(addr, level);
        let desc = mem.read_entry(table, idx);
        if is_table(desc, level) {
            // A table left behind by an earlier unmap: map inside it rather than replace it,
            // which would need break-before-make.
            map_level(
                mem,
                PhysAddr::new(desc & OA_MASK),
                level + 1,
                addr,
                out,
                len,
                leaf,
                done,
            )?;
        } else if desc & VALID != 0 {
            // `map` checked the whole range first; reaching this is a builder bug.
            panic!("pagetable: valid entry {desc:#x} at level {level} inside a checked range");
        } else if len == entry && out & (entry - 1) == 0 {
            let kind = if level == 3 {
                VALID | TABLE_OR_PAGE
            } else {
                VALID
            };
            mem.write_entry(table, idx, out | leaf | kind);
            *done += len;
        } else {
            let next = mem.alloc_table().ok_or(MapError::NoMemory)?;
            mem.write_entry(table, idx, next.as_u64() | VALID | TABLE_OR_PAGE);
            map_level(mem, next, level + 1, addr, out, len, leaf, done)?;
        }
    }
    Ok(())
}

fn unmap_level(
    mem: &mut impl TableMemory,
    table: PhysAddr,
    level: u8,
    input: u64,
    size: u64,
    cleared: &mut bool,
) -> Result<(), MapError> {
    let entry = level_size(level);
    for (addr, len) in chunks(input, size, level) {
        let idx = index_of(addr, level);
        let desc = mem.read_entry(table, idx);
        if is_table(desc, level) {
            let sub = PhysAddr::new(desc & OA_MASK);
            unmap_level(mem, sub, level + 1, addr, len, cleared)?;
            if table_empty(mem, sub) {
                // Its last entry went: unhook it, drop cached walks through it, free it.
                mem.write_entry(table, idx, 0);
                mem.flush_tlb();
                mem.free_table(sub);
            }
        } else if !is_leaf(desc, level) {
            continue;
        } else if len == entry {
            mem.write_entry(table, idx, 0);
            *cleared = true;
        } else {
            // Cut the block into next-level leaves with the same attributes, then recurse.
            let next = mem.alloc_table().ok_or(MapError::NoMemory)?;
            let sub = level_size(level + 1);
            let base = desc & OA_MASK & !(entry - 1);
            let attrs = desc & !OA_MASK & !(VALID | TABLE_OR_PAGE);
            let kind = if level + 1 == 3 {
                VALID | TABLE_OR_PAGE
            } else {
                VALID
            };
            let mut chunk = [0u64; 64];
            for first in (0..ENTRIES).step_by(chunk.len()) {
                for (i, e) in chunk.iter_mut().enumerate() {
                    *e = (base + (first + i) as u64 * sub) | attrs | kind;
                }
                mem.write_entries(next, first, &chunk);
            }
            // Break-before-make: invalid, TLB invalidated, then the table.
            mem.write_entry(table, idx, 0);
            mem.flush_tlb();
            mem.write_entry(table, idx, next.as_u64() | VALID | TABLE_OR_PAGE);
            unmap_level(mem, next, level + 1, addr, len, cleared)?;
        }
    }
    Ok(())
}

/// Whether no entry of the table at `table` is valid (read in chunks, as in `free_level`).
fn table_empty(mem: &impl TableMemory, table: PhysAddr) -> bool {
    let mut chunk = [0u64; 64];
    (0..ENTRIES).step_by(chunk.len()).all(|first| {
        mem.read_entries(table, first, &mut chunk);
        chunk.iter().all(|&desc| desc & VALID == 0)
    })
}

fn free_level(mem: &mut impl TableMemory, table: PhysAddr, level: u8) {
    // Read in chunks (a small stack buffer per level of recursion, at most three).
    let mut chunk = [0u64; 64];
    for first in (0..ENTRIES).step_by(chunk.len()) {
        mem.read_entries(table, first, &mut chunk);
        for desc in chunk {
            if is_table(desc, level) {
                free_level(mem, PhysAddr::new(desc & OA_MASK), level + 1);
            }
        }
    }
    mem.free_table(table);
}

#[cfg(test)]
#[path = "pagetable_tests.rs"]
mod tests;
