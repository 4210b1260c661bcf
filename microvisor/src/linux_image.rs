//! The arm64 Linux `Image` header and where a Linux guest's kernel, initrd and device tree
//! go in its RAM, following the kernel's boot protocol (`Documentation/arch/arm64/booting.rst`).
//!
//! Pure arithmetic on lengths and guest-physical addresses: nothing here touches memory, so
//! every rule of the protocol is checked by host tests. All sums are checked; a layout that
//! would wrap or overlap is an [`ImageError`], never a panic.
//!
//! Layout (low to high): the kernel at the first 2 MiB boundary of RAM plus `text_offset`;
//! the initrd, page-aligned, ending just below the device tree's block; the device tree at
//! the start of the last 2 MiB block of RAM, alone in that block (Linux maps it with block
//! mappings of up to 2 MiB, so nothing else may share the block).

use protocol::addr::PAGE_SIZE;

/// Size of the `Image` header.
pub const HEADER_LEN: usize = 64;
/// `"ARM\x64"` read as a little-endian `u32` at offset 56.
pub const IMAGE_MAGIC: u32 = 0x644d_5241;
/// `text_offset` assumed for kernels older than 3.17, whose header has `image_size == 0`.
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// The kernel's base (before `text_offset`) and the device tree's block are 2 MiB aligned.
pub const BLOCK_2M: u64 = 2 << 20;
/// Largest device tree Linux accepts.
pub const MAX_DTB_LEN: u64 = BLOCK_2M;
/// The initrd and the kernel must both lie in one window this large...
pub const INITRD_WINDOW: u64 = 32 << 30;
/// ... starting on a boundary this large.
pub const INITRD_WINDOW_ALIGN: u64 = 1 << 30;

const FLAG_BE: u64 = 1 << 0;
const FLAG_PAGE_SIZE_SHIFT: u64 = 1;
const FLAG_PAGE_SIZE_MASK: u64 = 0b11;
const FLAG_PHYS_BASE: u64 = 1 << 3;

/// The fields of an `Image` header the loader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the load address from a 2 MiB-aligned base.
    pub text_offset: u64,
    /// Effective size (file plus BSS and early data) from the load address; `None` for
    /// kernels older than 3.17, whose footprint is then taken to be the file's length.
    pub image_size: Option<u64>,
    /// The informative flags (always little-endian here: big-endian kernels are refused).
    pub flags: u64,
}

impl ImageHeader {
    /// The kernel's page size in bytes, if the header states it.
    pub fn page_size(&self) -> Option<u64> {
        match (self.flags >> FLAG_PAGE_SIZE_SHIFT) & FLAG_PAGE_SIZE_MASK {
            1 => Some(4 << 10),
            2 => Some(16 << 10),
            3 => Some(64 << 10),
            _ => None,
        }
    }

    /// Whether the kernel may sit anywhere in RAM; when false its 2 MiB base should be as
    /// close as possible to the start of RAM (memory below it is lost to the linear map).
    /// The planner always uses the start of RAM, which satisfies both.
    pub fn placement_anywhere(&self) -> bool {
        self.flags & FLAG_PHYS_BASE != 0
    }
}

/// Which blob of a Linux boot a layout error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blob {
    /// The kernel `Image` (its effective size, BSS included).
    Kernel,
    /// The initial RAM disk.
    Initrd,
    /// The flattened device tree.
    Dtb,
}

/// Why a Linux `Image` cannot be booted, or its blobs cannot be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// The file is shorter than the 64-byte arm64 `Image` header.
    TooShort,
    /// The header's magic is not `"ARM\x64"`: this is not an arm64 Linux `Image`.
    BadMagic,
    /// The kernel is big-endian; only little-endian kernels are booted.
    BigEndian,
    /// The header's `image_size` is smaller than the file, so the header is corrupt.
    SizeBelowFile,
    /// The device tree is empty or larger than the 2 MiB Linux accepts.
    DtbSize,
    /// The guest RAM range is empty or runs past the end of the address space.
    BadRam,
    /// This blob does not fit in guest RAM.
    DoesNotFit(Blob),
    /// These two blobs would overlap in guest RAM.
    Overlap(Blob, Blob),
    /// The initrd and kernel do not fit in one 1 GiB-aligned 32 GiB window.
    InitrdOutOfWindow,
}

/// Where each blob goes, as guest-physical addresses. Boot with the PC at `kernel`,
/// `x0 = dtb`, `x1 = x2 = x3 = 0`, MMU off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootLayout {
    /// Load address and entry point of the kernel.
    pub kernel: u64,
    /// End (exclusive) of the kernel's footprint: `kernel + max(image_size, file length)`.
    pub kernel_end: u64,
    /// `(start, end)` of the initrd, end exclusive, if there is one.
    pub initrd: Option<(u64, u64)>,
    /// Address of the device tree: 2 MiB aligned, alone in its 2 MiB block.
    pub dtb: u64,
}

fn le32(b: &[u8], off: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

/// Reads and checks the header at the start of a kernel `Image` file.
pub fn parse_header(image: &[u8]) -> Result<ImageHeader, ImageError> {
    let h = image.get(..HEADER_LEN).ok_or(ImageError::TooShort)?;
    if le32(h, 56) != IMAGE_MAGIC {
        return Err(ImageError::BadMagic);
    }
    let (text_offset, image_size, flags) = (le64(h, 8), le64(h, 16), le64(h, 24));
    if flags & FLAG_BE != 0 {
        return Err(ImageError::BigEndian);
    }
    if image_size == 0 {
        // Before 3.17 `text_offset` had no defined byte order and the kernel always ran at
        // 0x80000; the flags word was reserved (zero).
        return Ok(ImageHeader {
            text_offset: LEGACY_TEXT_OFFSET,
            image_size: None,
            flags,
        });
    }
    if image_size < image.len() as u64 {
        return Err(ImageError::SizeBelowFile);
    }
    Ok(ImageHeader {
        text_offset,
        image_size: Some(image_size),
        flags,
    })
}

const fn align_down(v: u64, align: u64) -> u64 {
    v & !(align - 1)
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

/// Places a kernel of `kernel_len` file bytes (header `hdr`), an initrd of `initrd_len`
/// bytes (0 = none) and a device tree of `dtb_len` bytes in the guest RAM
/// `[ram_base, ram_base + ram_size)`, following the arm64 boot protocol.
pub fn plan_layout(
    ram_base: u64,
    ram_size: u64,
    hdr: &ImageHeader,
    kernel_len: u64,
    initrd_len: u64,
    dtb_len: u64,
) -> Result<BootLayout, ImageError> {
    let ram_end = ram_base.checked_add(ram_size).ok_or(ImageError::BadRam)?;
    if ram_size == 0 {
        return Err(ImageError::BadRam);
    }
    if dtb_len == 0 || dtb_len > MAX_DTB_LEN {
        return Err(ImageError::DtbSize);
    }

    // The device tree starts a 2 MiB block (so it is 8-byte aligned too) and ends inside
    // RAM; the rest of its block is past the end of RAM or unused, so nothing shares it.
    let dtb = ram_end
        .checked_sub(dtb_len)
        .map(|top| align_down(top, BLOCK_2M))
        .filter(|&d| d >= ram_base)
        .ok_or(ImageError::DoesNotFit(Blob::Dtb))?;

    let too_big = ImageError::DoesNotFit(Blob::Kernel);
    let kernel = align_up(ram_base, BLOCK_2M)
        .and_then(|base| base.checked_add(hdr.text_offset))
        .ok_or(too_big)?;
    let footprint = hdr.image_size.unwrap_or(0).max(kernel_len);
    let kernel_end = kernel.checked_add(footprint).ok_or(too_big)?;
    if kernel_end > ram_end {
        return Err(too_big);
    }
    if kernel_end > dtb {
        return Err(ImageError::Overlap(Blob::Kernel, Blob::Dtb));
    }

    let initrd = match initrd_len {
        0 => None,
        len => {
            let start = dtb
                .checked_sub(len)
                .map(|s| align_down(s, PAGE_SIZE))
                .filter(|&s| s >= ram_base)
                .ok_or(ImageError::DoesNotFit(Blob::Initrd))?;
            if start < kernel_end {
                return Err(ImageError::Overlap(Blob::Kernel, Blob::Initrd));
            }
            // `start + len <= dtb` by construction.
            let end = start + len;
            // Counted in whole 1 GiB units so that RAM at the top of the address space
            // does not overflow; `end > start >= kernel`.
            let units = (end - 1) / INITRD_WINDOW_ALIGN - kernel / INITRD_WINDOW_ALIGN + 1;
            if units > INITRD_WINDOW / INITRD_WINDOW_ALIGN {
                return Err(ImageError::InitrdOutOfWindow);
            }
            Some((start, end))
        }
    };

    Ok(BootLayout {
        kernel,
        kernel_end,
        initrd,
        dtb,
    })
}

#[cfg(test)]
#[path = "linux_image_tests.rs"]
mod tests;
