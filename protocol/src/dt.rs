//! Device-tree address arithmetic shared by the microvisor (reading the boot DTB) and the
//! tools (checking `dtdev` paths against the host DTB): big-endian cells and a bus's
//! `ranges`, with every malformed input a `None`, never a panic.

/// A big-endian number of `cells` 32-bit cells (0 to 2) from the start of `bytes`.
pub fn read_cells(bytes: &[u8], cells: usize) -> Option<u64> {
    if cells > 2 {
        return None;
    }
    let mut v = 0u64;
    for i in 0..cells {
        let b: [u8; 4] = bytes.get(i * 4..i * 4 + 4)?.try_into().ok()?;
        v = (v << 32) | u64::from(u32::from_be_bytes(b));
    }
    Some(v)
}

/// `addr` in a bus's child address space mapped through its `ranges` (entries of
/// `child_cells` child address, `parent_cells` parent address, `size_cells` size): empty
/// `ranges` is the identity; an address no entry covers is `None`.
pub fn translate_ranges(
    ranges: &[u8],
    child_cells: usize,
    parent_cells: usize,
    size_cells: usize,
    addr: u64,
) -> Option<u64> {
    if ranges.is_empty() {
        return Some(addr);
    }
    if child_cells > 2 || parent_cells > 2 || size_cells > 2 {
        return None;
    }
    let entry = (child_cells + parent_cells + size_cells) * 4;
    if entry == 0 {
        return None;
    }
    ranges.chunks_exact(entry).find_map(|e| {
        let child = read_cells(e, child_cells)?;
        let parent = read_cells(&e[child_cells * 4..], parent_cells)?;
        let size = read_cells(&e[(child_cells + parent_cells) * 4..], size_cells)?;
        let offset = addr.checked_sub(child)?;
        (offset < size).then(|| parent.checked_add(offset))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// `values` as big-endian cells.
    fn cells(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn translation_of_raw_ranges() {
        // child 1 cell, parent 2, size 1: two windows.
        let r = cells(&[0x0, 0x1, 0x0, 0x1000, 0x8000, 0x0, 0x9000_0000, 0x100]);
        assert_eq!(translate_ranges(&r, 1, 2, 1, 0x10), Some(0x1_0000_0010));
        assert_eq!(translate_ranges(&r, 1, 2, 1, 0x8010), Some(0x9000_0010));
        assert_eq!(translate_ranges(&r, 1, 2, 1, 0x1000), None);
        assert_eq!(translate_ranges(&r, 1, 2, 1, 0x8100), None);
        assert_eq!(translate_ranges(&[], 2, 2, 2, 0x1234), Some(0x1234));
        // Three-cell (PCI) addresses and a truncated property are refused, not misread.
        assert_eq!(translate_ranges(&r, 3, 2, 1, 0x10), None);
        assert_eq!(translate_ranges(&r[..6], 1, 2, 1, 0x10), None);
        // An overflowing translation is refused.
        let top = cells(&[0x0, 0xffff_ffff, 0xffff_ff00, 0x1000]);
        assert_eq!(
            translate_ranges(&top, 1, 2, 1, 0x10),
            Some(0xffff_ffff_ffff_ff10)
        );
        assert_eq!(translate_ranges(&top, 1, 2, 1, 0x100), None);
    }

    #[test]
    fn cells_are_read_big_endian_and_bounded() {
        assert_eq!(read_cells(&cells(&[1, 2]), 2), Some(0x1_0000_0002));
        assert_eq!(read_cells(&cells(&[7]), 1), Some(7));
        assert_eq!(read_cells(&[], 0), Some(0));
        assert_eq!(read_cells(&cells(&[1]), 2), None);
        assert_eq!(read_cells(&cells(&[1, 2, 3]), 3), None);
    }
}
