//! Removes `FDT_NOP` tokens from a flattened device tree, in place.
//!
//! Boot loaders (QEMU with `-dtb`, U-Boot's `fdt` commands) edit device trees in place and
//! leave NOP tokens where properties shrank or vanished; the `fdt` crate stops walking at
//! them. Compacting first makes every boot loader's output readable.

use crate::platform::PlatformError;

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

fn be32(b: &[u8], off: usize) -> Result<u32, PlatformError> {
    let s = b.get(off..off + 4).ok_or(PlatformError::BadDeviceTree)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Strips NOP tokens; returns the new total size. The blob stays a valid FDT.
pub fn compact(blob: &mut [u8]) -> Result<usize, PlatformError> {
    if be32(blob, 0)? != MAGIC {
        return Err(PlatformError::BadDeviceTree);
    }
    let total = be32(blob, 4)? as usize;
    let off_struct = be32(blob, 8)? as usize;
    let off_strings = be32(blob, 12)? as usize;
    let size_strings = be32(blob, 32)? as usize;
    let size_struct = be32(blob, 36)? as usize;
    let end = off_struct
        .checked_add(size_struct)
        .ok_or(PlatformError::BadDeviceTree)?;
    if total > blob.len() || end > total || off_strings.saturating_add(size_strings) > total {
        return Err(PlatformError::BadDeviceTree);
    }
    let (mut r, mut w) = (off_struct, off_struct);
    loop {
        if r + 4 > end {
            return Err(PlatformError::BadDeviceTree);
        }
        let len = match be32(blob, r)? {
            BEGIN_NODE => {
                let name = blob.get(r + 4..end).ok_or(PlatformError::BadDeviceTree)?;
                let nul = name
                    .iter()
                    .position(|&c| c == 0)
                    .ok_or(PlatformError::BadDeviceTree)?;
                4 + align4(nul + 1)
            }
            END_NODE | END => 4,
            PROP => 12 + align4(be32(blob, r + 4)? as usize),
            NOP => {
                r += 4;
                continue;
            }
            _ => return Err(PlatformError::BadDeviceTree),
        };
        if r + len > end {
            return Err(PlatformError::BadDeviceTree);
        }
        let token = be32(blob, r)?;
        blob.copy_within(r..r + len, w);
        r += len;
        w += len;
        if token == END {
            break;
        }
    }
    put32(blob, 36, (w - off_struct) as u32);
    if off_strings >= end {
        // Usual layout: strings follow the structure block; close the gap.
        blob.copy_within(off_strings..off_strings + size_strings, w);
        put32(blob, 12, w as u32);
        put32(blob, 4, (w + size_strings) as u32);
        return Ok(w + size_strings);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root node with one property, a NOP before and after it, then END.
    fn sample() -> std::vec::Vec<u8> {
        let mut s = std::vec::Vec::new();
        let w = |s: &mut std::vec::Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
        w(&mut s, BEGIN_NODE);
        w(&mut s, 0); // "" name + padding
        w(&mut s, NOP);
        w(&mut s, PROP);
        w(&mut s, 4);
        w(&mut s, 0); // name offset 0
        w(&mut s, 0x1234);
        w(&mut s, NOP);
        w(&mut s, END_NODE);
        w(&mut s, END);
        let strings = b"model\0";
        let off_struct = 40 + 16;
        let mut blob = std::vec::Vec::new();
        for v in [
            MAGIC,
            0,
            off_struct as u32,
            (off_struct + s.len()) as u32,
            40,
            17,
            16,
            0,
            strings.len() as u32,
            s.len() as u32,
        ] {
            blob.extend_from_slice(&v.to_be_bytes());
        }
        blob.extend_from_slice(&[0; 16]);
        blob.extend_from_slice(&s);
        blob.extend_from_slice(strings);
        let total = blob.len() as u32;
        blob[4..8].copy_from_slice(&total.to_be_bytes());
        blob
    }

    #[test]
    fn nops_are_removed_and_strings_follow() {
        let mut blob = sample();
        let before = blob.len();
        let after = compact(&mut blob).unwrap();
        assert_eq!(after, before - 8);
        let fdt = fdt::Fdt::new(&blob[..after]).unwrap();
        let root = fdt.find_node("/").unwrap();
        assert_eq!(root.property("model").unwrap().as_usize(), Some(0x1234));
    }

    #[test]
    fn garbage_is_rejected_not_panicked() {
        assert!(compact(&mut [0u8; 8]).is_err());
        let mut blob = sample();
        blob[56] = 0x77; // corrupt the first token
        assert!(compact(&mut blob).is_err());
        let mut blob = sample();
        blob[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(compact(&mut blob).is_err());
    }
}
