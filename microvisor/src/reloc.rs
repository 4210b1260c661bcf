//! Self-relocation: the microvisor is linked at address 0 as a position-independent
//! executable and runs wherever the boot loader put it (U-Boot's `booti` chooses the address
//! for an Image whose header flags bit 3 is set). Its code only uses PC-relative addressing;
//! the absolute addresses stored in its data (vtables, `&str`s in statics, function-pointer
//! tables) are listed by the linker in `.rela.dyn` as `R_AARCH64_RELATIVE` entries, which
//! the boot CPU applies here before anything reads such a pointer.
//!
//! This runs with the MMU off, before BSS is zeroed and before the log exists: it must not
//! panic, format or touch a static. All accesses are aligned (MMU-off data accesses are
//! Device memory, where an unaligned access faults).
#![forbid(unsafe_code)]

/// `R_AARCH64_NONE`: nothing to do.
pub const R_AARCH64_NONE: u32 = 0;
/// `R_AARCH64_RELATIVE`: `*offset = load base + addend`.
pub const R_AARCH64_RELATIVE: u32 = 1027;

/// One `Elf64_Rela` entry, as the linker writes it (little endian on aarch64).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rela {
    /// Image offset of the 64-bit word to write.
    pub offset: u64,
    /// Symbol index (high 32 bits, always 0 here) and type (low 32 bits).
    pub info: u64,
    /// The link-time address (relative to 0) the word must point at.
    pub addend: i64,
}

/// Why the image cannot be relocated (the entry code then stops the CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocError {
    /// A relocation of another type than the two above, or against a symbol.
    Unsupported,
    /// A target outside the image or not 8-byte aligned.
    BadTarget,
    /// The load address plus an addend overflows.
    Overflow,
}

/// Applies `rela` to an image of `image_len` bytes linked at 0 and loaded at `base`:
/// `write(offset, value)` stores one word at image offset `offset` (in bounds, 8-byte
/// aligned), or refuses it by returning false (a word the caller must not change, such as
/// the table being read). Stops at the first bad entry, having written the earlier ones;
/// returns how many words were written.
pub fn apply(
    base: u64,
    image_len: u64,
    rela: &[Rela],
    mut write: impl FnMut(u64, u64) -> bool,
) -> Result<usize, RelocError> {
    let mut written = 0;
    for r in rela {
        let kind = r.info as u32;
        let symbol = r.info >> 32;
        match (kind, symbol) {
            (R_AARCH64_NONE, _) => continue,
            (R_AARCH64_RELATIVE, 0) => {}
            _ => return Err(RelocError::Unsupported),
        }
        let in_bounds = r.offset.checked_add(8).is_some_and(|end| end <= image_len);
        if !in_bounds || r.offset % 8 != 0 {
            return Err(RelocError::BadTarget);
        }
        let value = base
            .checked_add_signed(r.addend)
            .ok_or(RelocError::Overflow)?;
        if !write(r.offset, value) {
            return Err(RelocError::BadTarget);
        }
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative(offset: u64, addend: i64) -> Rela {
        Rela {
            offset,
            info: u64::from(R_AARCH64_RELATIVE),
            addend,
        }
    }

    /// Applies `rela` to a zeroed 64-byte image at `base`; the image's words afterwards.
    fn run(base: u64, rela: &[Rela]) -> (Result<usize, RelocError>, [u64; 8]) {
        let mut words = [0u64; 8];
        // The last word stands for the relocation table itself: never written.
        let r = apply(base, 64, rela, |off, v| {
            words[(off / 8) as usize] = v;
            off != 56
        });
        (r, words)
    }

    #[test]
    fn relative_entries_point_into_the_loaded_image() {
        let rela = [
            relative(0, 0x30),
            Rela {
                offset: 0,
                info: u64::from(R_AARCH64_NONE),
                addend: 99,
            },
            relative(0x18, 0x1000),
        ];
        let (r, words) = run(0x4040_0000, &rela);
        assert_eq!(r, Ok(2));
        assert_eq!(words[0], 0x4040_0030);
        assert_eq!(words[3], 0x4040_1000);
        assert_eq!(words[1], 0);
        // Loaded at the link address (0): the words are the addends.
        assert_eq!(run(0, &rela).1[3], 0x1000);
    }

    #[test]
    fn bad_entries_stop_the_walk() {
        let outside = [relative(0, 1), relative(64, 0), relative(8, 1)];
        let (r, words) = run(0x1000, &outside);
        assert_eq!(r, Err(RelocError::BadTarget));
        assert_eq!(words[0], 0x1001, "entries before the bad one are applied");
        assert_eq!(words[1], 0, "entries after it are not");
        assert_eq!(run(0, &[relative(4, 0)]).0, Err(RelocError::BadTarget));
        assert_eq!(run(0, &[relative(56, 0)]).0, Err(RelocError::BadTarget));
        assert_eq!(
            run(0, &[relative(u64::MAX - 3, 0)]).0,
            Err(RelocError::BadTarget)
        );
        let abs64 = Rela {
            offset: 0,
            info: 257,
            addend: 0,
        };
        assert_eq!(run(0, &[abs64]).0, Err(RelocError::Unsupported));
        let against_symbol = Rela {
            offset: 0,
            info: (1 << 32) | u64::from(R_AARCH64_RELATIVE),
            addend: 0,
        };
        assert_eq!(run(0, &[against_symbol]).0, Err(RelocError::Unsupported));
        assert_eq!(
            run(u64::MAX, &[relative(0, 1)]).0,
            Err(RelocError::Overflow)
        );
        // A negative addend is an address below the load base (never in an image of ours,
        // but the arithmetic is ELF's).
        assert_eq!(run(0x2000, &[relative(0, -0x1000)]).1[0], 0x1000);
    }
}
