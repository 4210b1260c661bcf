//! ELF to flat binary: the bytes of every loadable segment, placed at its physical address
//! relative to the lowest one, gaps zero-filled (what `objcopy -O binary` does).

use anyhow::{bail, Context, Result};
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::Endianness;
use std::path::Path;

/// A flat image and the physical address its first byte belongs at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flat {
    /// Lowest `p_paddr` of a loadable segment with file bytes.
    pub base: u64,
    /// The image.
    pub bytes: Vec<u8>,
}

/// Converts ELF64 bytes to a flat binary.
pub fn flatten(data: &[u8]) -> Result<Flat> {
    let elf = ElfFile64::<Endianness>::parse(data).context("not an ELF64 file")?;
    let endian = elf.endian();
    let mut segments = Vec::new();
    for ph in elf.elf_program_headers() {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|()| anyhow::anyhow!("segment data out of the file"))?;
        segments.push((ph.p_paddr(endian), bytes));
    }
    let Some(base) = segments.iter().map(|(addr, _)| *addr).min() else {
        bail!("no loadable segment with file contents");
    };
    let mut end = 0u64;
    for (addr, bytes) in &segments {
        end = end.max(addr - base + bytes.len() as u64);
    }
    if end > 1 << 30 {
        bail!("loadable segments span {end:#x} bytes; is a section at a stray address?");
    }
    let mut out = vec![0u8; end as usize];
    for (addr, bytes) in segments {
        let off = (addr - base) as usize;
        out[off..off + bytes.len()].copy_from_slice(bytes);
    }
    Ok(Flat { base, bytes: out })
}

/// Checks that `data` is an image that can relocate itself the way the microvisor's entry
/// code does (`microvisor/src/reloc.rs`): linked as a position-independent executable
/// (`ET_DYN`) whose dynamic relocations are all `R_AARCH64_RELATIVE`. Anything else would
/// stop the CPU at entry without a word, so the build refuses it. Returns how many there are.
pub fn check_self_relocating(data: &[u8]) -> Result<usize> {
    use object::read::{Object, RelocationFlags};
    let elf = ElfFile64::<Endianness>::parse(data).context("not an ELF64 file")?;
    if elf.elf_header().e_type.get(elf.endian()) != object::elf::ET_DYN {
        bail!("not linked as a position-independent executable (ELF type is not ET_DYN): is `-pie` missing from the link?");
    }
    let mut count = 0;
    for (offset, r) in elf.dynamic_relocations().into_iter().flatten() {
        match r.flags() {
            RelocationFlags::Elf { r_type } if r_type == object::elf::R_AARCH64_RELATIVE => {
                count += 1;
            }
            other => bail!(
                "dynamic relocation at {offset:#x} is {other:?}, not R_AARCH64_RELATIVE, which the entry code cannot apply"
            ),
        }
    }
    Ok(count)
}

/// Converts the ELF at `elf` and writes the flat binary to `bin`.
pub fn convert(elf: &Path, bin: &Path) -> Result<Flat> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let flat = flatten(&data).with_context(|| format!("{}", elf.display()))?;
    std::fs::write(bin, &flat.bytes).with_context(|| format!("cannot write {}", bin.display()))?;
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_address_executable_is_not_self_relocating() {
        let exec = elf(&[(0x4020_0000, b"aaaa", 8)]);
        let err = check_self_relocating(&exec).unwrap_err().to_string();
        assert!(err.contains("ET_DYN"), "{err}");
        assert!(check_self_relocating(b"nope").is_err());
    }

    /// A minimal little-endian aarch64 ELF64 with the given (paddr, bytes, memsz) segments.
    fn elf(segments: &[(u64, &[u8], u64)]) -> Vec<u8> {
        let phoff = 64u64;
        let data_off = phoff + 56 * segments.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, segments.len() as u16, 64, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let mut off = data_off;
        for (paddr, bytes, memsz) in segments {
            out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            out.extend_from_slice(&5u32.to_le_bytes());
            for v in [off, paddr + 0x1000, *paddr, bytes.len() as u64, *memsz, 8] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            off += bytes.len() as u64;
        }
        for (_, bytes, _) in segments {
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn segments_land_at_their_physical_offsets() {
        let data = elf(&[
            (0x4020_0010, b"bb", 2),
            (0x4020_0000, b"aaaa", 8),
            (0x4030_0000, b"", 64),
        ]);
        let flat = flatten(&data).unwrap();
        assert_eq!(flat.base, 0x4020_0000);
        assert_eq!(flat.bytes.len(), 0x12);
        assert_eq!(&flat.bytes[..4], b"aaaa");
        assert!(flat.bytes[4..0x10].iter().all(|&b| b == 0));
        assert_eq!(&flat.bytes[0x10..], b"bb");
    }

    #[test]
    fn rejects_non_elf_and_empty() {
        assert!(flatten(b"not an elf").is_err());
        assert!(flatten(&elf(&[])).is_err());
    }
}
