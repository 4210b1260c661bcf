//! Host tests for the translation-table builder, against a map-backed `TableMemory`.

use super::*;
use std::collections::HashMap;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Table pages in a map, with counters so tests can check nothing leaks.
#[derive(Default)]
struct FakeMem {
    tables: HashMap<u64, [u64; ENTRIES]>,
    next: u64,
    allocs: usize,
    frees: usize,
    /// Allocation fails once this many pages are live.
    limit: Option<usize>,
    /// TLB flushes.
    flushes: usize,
}

impl FakeMem {
    fn new() -> Self {
        Self {
            next: 0x10_0000_0000,
            ..Self::default()
        }
    }
}

impl TableMemory for FakeMem {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        if self.limit.is_some_and(|l| self.tables.len() >= l) {
            return None;
        }
        let pa = self.next;
        self.next += PAGE_SIZE;
        self.tables.insert(pa, [0; ENTRIES]);
        self.allocs += 1;
        Some(PhysAddr::new(pa))
    }
    fn free_table(&mut self, table: PhysAddr) {
        assert!(
            self.tables.remove(&table.as_u64()).is_some(),
            "double free of {table}"
        );
        self.frees += 1;
    }
    fn read_entry(&self, table: PhysAddr, index: usize) -> u64 {
        self.tables[&table.as_u64()][index]
    }
    fn write_entry(&mut self, table: PhysAddr, index: usize, value: u64) {
        let slot = &mut self
            .tables
            .get_mut(&table.as_u64())
            .expect("write to a non-table")[index];
        let old = *slot;
        // Break-before-make (F15): a valid entry never becomes a different valid entry
        // directly (the split tests also count the TLB flush in between).
        assert!(
            old & VALID == 0 || value & VALID == 0 || old == value,
            "live entry {old:#x} replaced by {value:#x} without break-before-make"
        );
        *slot = value;
    }
    fn flush_tlb(&mut self) {
        self.flushes += 1;
    }
}

const RAM_RWX: Attrs = Attrs {
    mem: MemType::Normal,
    read: true,
    write: true,
    exec: true,
};
const MMIO: Attrs = Attrs {
    mem: MemType::Device,
    read: true,
    write: true,
    exec: false,
};

fn pa(x: u64) -> PhysAddr {
    PhysAddr::new(x)
}

fn setup(stage: Stage) -> (FakeMem, PageTable) {
    let mut mem = FakeMem::new();
    let pt = PageTable::new(&mut mem, stage).unwrap();
    (mem, pt)
}

#[test]
fn register_values() {
    assert_eq!(VTCR_EL2_VALUE, 0x8002_3559);
    assert_eq!(TCR_EL2_VALUE, 0x8082_3519);
    assert_eq!(MAIR_EL2_VALUE, 0xFF04);
}

#[test]
fn one_gib_aligned_mapping_is_one_l1_block() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(&mut mem, 0x4000_0000, pa(0x8000_0000), GIB, RAM_RWX)
        .unwrap();
    assert_eq!(mem.allocs, 1, "no table below the root");
    let d = mem.read_entry(pt.root(), 1);
    assert_eq!(d & 0b11, 0b01, "block descriptor");
    assert_eq!(d & OA_MASK, 0x8000_0000);
    assert_eq!(
        pt.translate(&mem, 0x4000_0000 + 0x1234_5678),
        Some((pa(0x9234_5678), RAM_RWX))
    );
    assert_eq!(pt.translate(&mem, 0x3fff_ffff), None);
    assert_eq!(pt.translate(&mem, 0x8000_0000), None);
}

#[test]
fn two_mib_blocks_when_only_two_mib_aligned() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    // Input is 1 GiB aligned but output only 2 MiB aligned: 512 L2 blocks.
    pt.map(&mut mem, 0, pa(0x4020_0000), GIB, RAM_RWX).unwrap();
    assert_eq!(mem.allocs, 2);
    let l2 = PhysAddr::new(mem.read_entry(pt.root(), 0) & OA_MASK);
    for i in 0..ENTRIES {
        let d = mem.read_entry(l2, i);
        assert_eq!(d & 0b11, 0b01);
        assert_eq!(d & OA_MASK, 0x4020_0000 + i as u64 * 2 * MIB);
    }
    assert_eq!(
        pt.translate(&mem, GIB - 1),
        Some((pa(0x4020_0000 + GIB - 1), RAM_RWX))
    );
}

#[test]
fn odd_sizes_mix_levels() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    // From one page below the 1 GiB boundary to 2 MiB + 8 KiB past the next one: a page,
    // a 1 GiB block, a 2 MiB block, then two pages.
    let input = 0x3fff_f000;
    let size = PAGE_SIZE + GIB + 2 * MIB + 2 * PAGE_SIZE;
    pt.map(&mut mem, input, pa(input), size, RAM_RWX).unwrap();
    // root, L2 for GiB 0, L3 for the first page, L2 for GiB 2, L3 for the tail.
    assert_eq!(mem.allocs, 5);
    assert_eq!(
        mem.read_entry(pt.root(), 1) & 0b11,
        0b01,
        "GiB 1 is one block"
    );
    let l2_last = PhysAddr::new(mem.read_entry(pt.root(), 2) & OA_MASK);
    assert_eq!(
        mem.read_entry(l2_last, 0) & 0b11,
        0b01,
        "then a 2 MiB block"
    );
    assert_eq!(
        mem.read_entry(l2_last, 1) & 0b11,
        0b11,
        "then a table of pages"
    );
    for probe in [input, 0x4000_0000, 0x7fff_ffff, 0x8000_0000, 0x8020_1fff] {
        assert_eq!(
            pt.translate(&mem, probe),
            Some((pa(probe), RAM_RWX)),
            "{probe:#x}"
        );
    }
    assert_eq!(pt.translate(&mem, 0x8020_2000), None);
    assert_eq!(pt.translate(&mem, input - 1), None);
}

#[test]
fn translate_keeps_offsets_in_pages() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(&mut mem, 0x1000, pa(0x4567_8000), 2 * PAGE_SIZE, MMIO)
        .unwrap();
    assert_eq!(pt.translate(&mem, 0x1abc), Some((pa(0x4567_8abc), MMIO)));
    assert_eq!(pt.translate(&mem, 0x2fff), Some((pa(0x4567_9fff), MMIO)));
    assert_eq!(pt.translate(&mem, 0x3000), None);
    assert_eq!(pt.translate(&mem, 1 << 39), None);
}

/// A `stage` table with a RAM page mapped `ram` at IPA 0 and an MMIO page at 0x1000, and
/// the level-3 table holding both.
fn ram_and_mmio_pages(stage: Stage, ram: Attrs) -> (FakeMem, PageTable, PhysAddr) {
    let (mut mem, mut pt) = setup(stage);
    pt.map(&mut mem, 0, pa(0x4000_0000), PAGE_SIZE, ram)
        .unwrap();
    pt.map(&mut mem, 0x1000, pa(0x0900_0000), PAGE_SIZE, MMIO)
        .unwrap();
    let l2 = PhysAddr::new(mem.read_entry(pt.root(), 0) & OA_MASK);
    let l3 = PhysAddr::new(mem.read_entry(l2, 0) & OA_MASK);
    (mem, pt, l3)
}

#[test]
fn stage2_attribute_bits() {
    let ro_nx = Attrs {
        mem: MemType::Normal,
        read: true,
        write: false,
        exec: false,
    };
    let (mut mem, mut pt, l3) = ram_and_mmio_pages(Stage::Stage2, ro_nx);
    // AF | SH=11 | S2AP=01 | MemAttr=1111 | page, XN=10.
    assert_eq!(
        mem.read_entry(l3, 0),
        0x4000_0000 | 1 << 10 | 0b11 << 8 | 0b01 << 6 | 0b1111 << 2 | 0b11 | 0b10 << 53
    );
    // AF | SH=00 | S2AP=11 | MemAttr=0001 | page, XN=10.
    assert_eq!(
        mem.read_entry(l3, 1),
        0x0900_0000 | 1 << 10 | 0b11 << 6 | 0b0001 << 2 | 0b11 | 0b10 << 53
    );
    for (i, a) in all_attrs().enumerate() {
        let ipa = 0x100_0000 + i as u64 * PAGE_SIZE;
        pt.map(&mut mem, ipa, pa(ipa), PAGE_SIZE, a).unwrap();
        assert_eq!(pt.translate(&mem, ipa), Some((pa(ipa), a)));
    }
}

#[test]
fn a_forced_write_back_stage2_encodes_normal_memory_for_fwb_and_says_so() {
    let (mut mem, mut pt, l3) = ram_and_mmio_pages(Stage::Stage2ForcedWb, RAM_RWX);
    // MemAttr=0110 (forced write-back) where a plain stage 2 has 1111; device unchanged.
    assert_eq!((mem.read_entry(l3, 0) >> 2) & 0b1111, 0b0110);
    assert_eq!((mem.read_entry(l3, 1) >> 2) & 0b1111, 0b0001);
    for (i, a) in all_attrs().enumerate() {
        let ipa = 0x100_0000 + i as u64 * PAGE_SIZE;
        pt.map(&mut mem, ipa, pa(ipa), PAGE_SIZE, a).unwrap();
        assert_eq!(pt.translate(&mem, ipa), Some((pa(ipa), a)));
    }
    let v = pt.vttbr(5).expect("a stage 2 has a VTTBR");
    assert!(v.forced_wb(), "loading it must set HCR_EL2.FWB");
    assert_eq!(v.raw(), pt.root().as_u64() | 5 << 48);
    let (_, plain) = setup(Stage::Stage2);
    assert!(!plain.vttbr(5).unwrap().forced_wb());
    let (_, el2) = setup(Stage::El2Stage1);
    assert_eq!(el2.vttbr(5), None);
}

#[test]
fn el2_stage1_attribute_bits() {
    let (mut mem, mut pt) = setup(Stage::El2Stage1);
    let ro_nx = Attrs {
        mem: MemType::Normal,
        read: true,
        write: false,
        exec: false,
    };
    pt.map(&mut mem, 0x4000_0000, pa(0x4000_0000), 2 * MIB, ro_nx)
        .unwrap();
    pt.map(&mut mem, 0x0900_0000, pa(0x0900_0000), 2 * MIB, MMIO)
        .unwrap();
    let l2 = PhysAddr::new(mem.read_entry(pt.root(), 1) & OA_MASK);
    // AF | SH=11 | AP=10 | AttrIndx=1 | block, XN.
    assert_eq!(
        mem.read_entry(l2, 0),
        0x4000_0000 | 1 << 10 | 0b11 << 8 | 0b10 << 6 | 1 << 2 | 0b01 | 1 << 54
    );
    let l2 = PhysAddr::new(mem.read_entry(pt.root(), 0) & OA_MASK);
    // AF | AP=00 | AttrIndx=0 | block, XN.
    assert_eq!(
        mem.read_entry(l2, 0x48),
        0x0900_0000 | 1 << 10 | 0b01 | 1 << 54
    );
    for (i, a) in all_attrs().enumerate() {
        let va = 0x100_0000 + i as u64 * PAGE_SIZE;
        pt.map(&mut mem, va, pa(va), PAGE_SIZE, a).unwrap();
        // EL2 can always read what it maps.
        assert_eq!(
            pt.translate(&mem, va),
            Some((pa(va), Attrs { read: true, ..a }))
        );
    }
}

fn all_attrs() -> impl Iterator<Item = Attrs> {
    (0..16u8).map(|b| Attrs {
        mem: if b & 8 != 0 {
            MemType::Normal
        } else {
            MemType::Device
        },
        read: b & 1 != 0,
        write: b & 2 != 0,
        exec: b & 4 != 0,
    })
}

#[test]
fn refuses_to_overwrite() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(&mut mem, 0x20_0000, pa(0x4000_0000), 2 * MIB, RAM_RWX)
        .unwrap();
    let allocs = mem.allocs;
    // Overlapping the block's last page from below: nothing may be written.
    assert_eq!(
        pt.map(&mut mem, 0x1000, pa(0x5000_0000), 4 * MIB, RAM_RWX),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(pt.translate(&mem, 0x1000), None);
    assert_eq!(mem.allocs, allocs);
    assert_eq!(
        pt.map(&mut mem, 0x3f_f000, pa(0), PAGE_SIZE, RAM_RWX),
        Err(MapError::AlreadyMapped)
    );
    // Adjacent is fine.
    pt.map(&mut mem, 0x40_0000, pa(0x5000_0000), PAGE_SIZE, RAM_RWX)
        .unwrap();
}

#[test]
fn argument_checks() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    assert_eq!(
        pt.map(&mut mem, 0x800, pa(0), PAGE_SIZE, RAM_RWX),
        Err(MapError::Misaligned)
    );
    assert_eq!(
        pt.map(&mut mem, 0, pa(0x800), PAGE_SIZE, RAM_RWX),
        Err(MapError::Misaligned)
    );
    assert_eq!(
        pt.map(&mut mem, 0, pa(0), 0x800, RAM_RWX),
        Err(MapError::Misaligned)
    );
    assert_eq!(
        pt.map(
            &mut mem,
            (1 << 39) - PAGE_SIZE,
            pa(0),
            2 * PAGE_SIZE,
            RAM_RWX
        ),
        Err(MapError::OutOfRange)
    );
    assert_eq!(
        pt.map(&mut mem, 0, pa(1 << 40), PAGE_SIZE, RAM_RWX),
        Err(MapError::OutOfRange)
    );
    assert_eq!(
        pt.map(&mut mem, !0xfff, pa(0), 2 * PAGE_SIZE, RAM_RWX),
        Err(MapError::OutOfRange)
    );
    assert_eq!(
        pt.unmap(&mut mem, 1 << 39, PAGE_SIZE),
        Err(MapError::OutOfRange)
    );
    assert_eq!(
        pt.unmap(&mut mem, 0x10, PAGE_SIZE),
        Err(MapError::Misaligned)
    );
    // The very top of the input space is usable.
    pt.map(&mut mem, (1 << 39) - GIB, pa(0), GIB, RAM_RWX)
        .unwrap();
    assert_eq!(
        pt.translate(&mem, (1 << 39) - 1),
        Some((pa(GIB - 1), RAM_RWX))
    );
    pt.map(&mut mem, 0, pa(0), 0, RAM_RWX).unwrap();
    assert_eq!(mem.allocs, 1);
}

#[test]
fn unmap_splits_a_two_mib_block() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(&mut mem, 0x4000_0000, pa(0x8000_0000), 2 * MIB, MMIO)
        .unwrap();
    pt.unmap(&mut mem, 0x4001_0000, 2 * PAGE_SIZE).unwrap();
    assert_eq!(
        mem.flushes, 1,
        "break-before-make flushes between invalid and table"
    );
    assert_eq!(pt.translate(&mem, 0x4001_0000), None);
    assert_eq!(pt.translate(&mem, 0x4001_1fff), None);
    assert_eq!(
        pt.translate(&mem, 0x4000_fabc),
        Some((pa(0x8000_fabc), MMIO))
    );
    assert_eq!(
        pt.translate(&mem, 0x4001_2000),
        Some((pa(0x8001_2000), MMIO))
    );
    assert_eq!(
        pt.translate(&mem, 0x401f_ffff),
        Some((pa(0x801f_ffff), MMIO))
    );
    assert_eq!(
        pt.unmap(&mut mem, 0x4001_0000, 2 * PAGE_SIZE),
        Err(MapError::NotMapped)
    );
    // The hole can be mapped again, to somewhere else.
    pt.map(&mut mem, 0x4001_0000, pa(0x1000), PAGE_SIZE, RAM_RWX)
        .unwrap();
    assert_eq!(pt.translate(&mem, 0x4001_0010), Some((pa(0x1010), RAM_RWX)));
}

#[test]
fn unmap_splits_a_gib_block_down_to_pages() {
    let (mut mem, mut pt) = setup(Stage::El2Stage1);
    pt.map(&mut mem, 0, pa(0), GIB, RAM_RWX).unwrap();
    pt.unmap(&mut mem, 0x1234_5000, PAGE_SIZE).unwrap();
    assert_eq!(mem.allocs, 3, "root + split L2 + split L3");
    assert_eq!(mem.flushes, 2, "one break-before-make per split");
    assert_eq!(pt.translate(&mem, 0x1234_5000), None);
    for probe in [0, 0x1234_4fff, 0x1234_6000, 0x1220_0000, GIB - 1] {
        assert_eq!(pt.translate(&mem, probe), Some((pa(probe), RAM_RWX)));
    }
}

#[test]
fn unmap_nothing_and_holes() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    assert_eq!(pt.unmap(&mut mem, 0, GIB), Err(MapError::NotMapped));
    pt.map(&mut mem, 0x5000, pa(0x5000), PAGE_SIZE, RAM_RWX)
        .unwrap();
    // A range with holes around one page is fine; clearing it twice is not.
    pt.unmap(&mut mem, 0, 4 * GIB).unwrap();
    assert_eq!(pt.unmap(&mut mem, 0, 4 * GIB), Err(MapError::NotMapped));
    assert_eq!(pt.translate(&mem, 0x5000), None);
}

#[test]
fn emptied_tables_are_freed_and_remap_uses_a_block() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(&mut mem, 0, pa(0), 2 * MIB, RAM_RWX).unwrap();
    pt.unmap(&mut mem, 0, PAGE_SIZE).unwrap();
    assert_eq!(mem.tables.len(), 3, "root, L2, split L3");
    pt.unmap(&mut mem, 0, 2 * MIB).unwrap();
    assert_eq!(mem.tables.len(), 1, "only the root is left");
    pt.map(&mut mem, 0, pa(0x4000_0000), 2 * MIB, MMIO).unwrap();
    assert_eq!(pt.translate(&mem, 0x1f_ffff), Some((pa(0x401f_ffff), MMIO)));
    assert_eq!(mem.tables.len(), 2, "a 2 MiB block again, not 512 pages");
}

/// F4: a guest maps one granted page at 2 MiB steps over its IPA space and unmaps it each
/// time. Before tables were freed on unmap this left one L3 table per step (and an L2 per
/// GiB) behind; now the table count returns to what its RAM mapping needs.
#[test]
fn map_unmap_walk_returns_to_baseline() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(&mut mem, 0x4000_0000, pa(0x8000_0000), 64 * MIB, RAM_RWX)
        .unwrap();
    let baseline = mem.tables.len();
    for k in 0..4096u64 {
        let ipa = 0x80_0000_0000 - (k + 1) * 2 * MIB; // 8 GiB of the top of the space
        pt.map(&mut mem, ipa, pa(0x8000_0000), PAGE_SIZE, RAM_RWX)
            .unwrap();
        pt.unmap(&mut mem, ipa, PAGE_SIZE).unwrap();
    }
    assert_eq!(mem.tables.len(), baseline);
    assert_eq!(mem.allocs - mem.frees, baseline);
    // RAM is untouched.
    assert_eq!(
        pt.translate(&mem, 0x4000_1234),
        Some((pa(0x8000_1234), RAM_RWX))
    );
}

#[test]
fn destroy_frees_every_table() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    pt.map(
        &mut mem,
        0x3fff_f000,
        pa(0x3fff_f000),
        GIB + 3 * MIB,
        RAM_RWX,
    )
    .unwrap();
    pt.map(&mut mem, 0x40_0000_0000, pa(0), 5 * PAGE_SIZE, MMIO)
        .unwrap();
    pt.unmap(&mut mem, 0x4000_0000 + 0x1000, PAGE_SIZE).unwrap();
    assert!(mem.allocs > 5);
    pt.destroy(&mut mem);
    assert_eq!(mem.allocs, mem.frees);
    assert!(mem.tables.is_empty());
}

#[test]
fn out_of_table_memory_rolls_back() {
    let (mut mem, mut pt) = setup(Stage::Stage2);
    // Root + one L2: the first 2 MiB block fits, the page tail needs an L3 that cannot exist.
    mem.limit = Some(2);
    assert_eq!(
        pt.map(&mut mem, 0, pa(0), 2 * MIB + PAGE_SIZE, RAM_RWX),
        Err(MapError::NoMemory)
    );
    assert_eq!(pt.translate(&mem, 0), None);
    assert_eq!(pt.translate(&mem, 2 * MIB), None);
    assert_eq!(
        PageTable::new(
            &mut FakeMem {
                limit: Some(0),
                ..FakeMem::new()
            },
            Stage::Stage2
        )
        .err(),
        Some(MapError::NoMemory)
    );
    // Splitting a block also needs memory.
    mem.limit = None;
    pt.map(&mut mem, 0, pa(0), 2 * MIB, RAM_RWX).unwrap();
    mem.limit = Some(mem.tables.len());
    assert_eq!(pt.unmap(&mut mem, 0, PAGE_SIZE), Err(MapError::NoMemory));
    assert_eq!(pt.translate(&mem, 0), Some((pa(0), RAM_RWX)));
    pt.destroy(&mut mem);
    assert_eq!(mem.allocs, mem.frees);
}

use crate::test_rng::Rng as XorShift;

/// Random maps and unmaps against a list-of-intervals model: every result and every probed
/// translation must agree, and destroy must free everything.
#[test]
fn random_operations_match_a_model() {
    // (input, output, size, attrs), disjoint in input.
    type Model = Vec<(u64, u64, u64, Attrs)>;
    fn model_translate(m: &Model, va: u64) -> Option<(PhysAddr, Attrs)> {
        m.iter()
            .find(|&&(i, _, s, _)| i <= va && va < i + s)
            .map(|&(i, o, _, a)| (pa(o + (va - i)), a))
    }
    for seed in 1..=8u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (mut mem, mut pt) = setup(Stage::Stage2);
        let mut model: Model = Vec::new();
        let attrs: Vec<Attrs> = all_attrs().collect();
        for _ in 0..300 {
            // Alignments that make every block size likely: 4 KiB, 2 MiB or 1 GiB.
            // Sizes are kept to a few units of the alignment so page-granular cases stay
            // small enough for a debug build.
            let sizes = [PAGE_SIZE, 2 * MIB, GIB];
            let level = rng.below(3) as usize;
            let align = sizes[level];
            let input = rng.below(8 * GIB / align) * align;
            let size = (1 + rng.below(3)) * sizes[rng.below(level as u64 + 1) as usize]
                + rng.below(3) * PAGE_SIZE;
            let overlaps = model
                .iter()
                .any(|&(i, _, s, _)| i < input + size && input < i + s);
            if rng.below(3) != 0 {
                let output = rng.below(64 * GIB / align) * align;
                let a = attrs[rng.below(16) as usize];
                let r = pt.map(&mut mem, input, pa(output), size, a);
                if overlaps {
                    assert_eq!(r, Err(MapError::AlreadyMapped));
                } else {
                    r.unwrap();
                    model.push((input, output, size, a));
                }
            } else {
                let r = pt.unmap(&mut mem, input, size);
                assert_eq!(r.is_ok(), overlaps, "{r:?}");
                let end = input + size;
                let mut next = Vec::new();
                for (i, o, s, a) in model.drain(..) {
                    if i < input {
                        next.push((i, o, (i + s).min(input) - i, a));
                    }
                    if i + s > end {
                        let from = end.max(i);
                        next.push((from, o + (from - i), i + s - from, a));
                    }
                }
                model = next;
            }
            for _ in 0..20 {
                let va = rng.below(12 * GIB) & !0x7;
                assert_eq!(
                    pt.translate(&mem, va),
                    model_translate(&model, va),
                    "{va:#x}"
                );
            }
            for &(i, _, s, _) in &model {
                for va in [i, i + s - 1] {
                    assert_eq!(pt.translate(&mem, va), model_translate(&model, va));
                }
                assert_eq!(pt.translate(&mem, i + s), model_translate(&model, i + s));
            }
        }
        pt.destroy(&mut mem);
        assert_eq!(mem.allocs, mem.frees);
    }
}
