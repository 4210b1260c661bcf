//! Host tests for the arm64 `Image` header parser and the boot layout planner.

use super::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const RAM: u64 = 0x4000_0000;

/// A header followed by zero bytes up to `file_len` (at least the header).
fn image(text_offset: u64, image_size: u64, flags: u64, file_len: usize) -> Vec<u8> {
    let mut f = vec![0u8; file_len.max(HEADER_LEN)];
    f[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // b +0x40
    f[8..16].copy_from_slice(&text_offset.to_le_bytes());
    f[16..24].copy_from_slice(&image_size.to_le_bytes());
    f[24..32].copy_from_slice(&flags.to_le_bytes());
    f[56..60].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
    f
}

/// What a recent kernel says: text_offset 0, 4 KiB pages, place anywhere.
fn modern(image_size: u64) -> ImageHeader {
    ImageHeader {
        text_offset: 0,
        image_size: Some(image_size),
        flags: 0b1010,
    }
}

#[test]
fn modern_header_is_read() {
    let h = parse_header(&image(0, 0x0300_0000, 0b1010, 4096)).unwrap();
    assert_eq!(h, modern(0x0300_0000));
    assert_eq!(h.page_size(), Some(4096));
    assert!(h.placement_anywhere());
}

#[test]
fn magic_is_ascii_arm64() {
    assert_eq!(&IMAGE_MAGIC.to_le_bytes(), b"ARM\x64");
}

#[test]
fn page_size_and_placement_flags() {
    let with = |flags| ImageHeader { flags, ..modern(1) };
    assert_eq!(with(0).page_size(), None);
    assert_eq!(with(0b100).page_size(), Some(16 << 10));
    assert_eq!(with(0b110).page_size(), Some(64 << 10));
    assert!(!with(0b010).placement_anywhere());
}

#[test]
fn legacy_header_uses_0x80000_and_unknown_size() {
    // Pre-3.17: image_size 0 and text_offset of unspecified byte order (garbage here).
    let h = parse_header(&image(0xdead_beef, 0, 0, 4096)).unwrap();
    assert_eq!(h.text_offset, LEGACY_TEXT_OFFSET);
    assert_eq!(h.image_size, None);
    // Its footprint is the file's length.
    let l = plan_layout(RAM, 256 * MIB, &h, 5 * MIB, 0, 4096).unwrap();
    assert_eq!(l.kernel, RAM + 0x8_0000);
    assert_eq!(l.kernel_end, l.kernel + 5 * MIB);
}

#[test]
fn bad_magic_is_refused() {
    let mut f = image(0, 0x1000, 0, 4096);
    f[59] = 0x65;
    assert_eq!(parse_header(&f), Err(ImageError::BadMagic));
    // An ELF vmlinux is the classic mistake.
    let mut elf = vec![0u8; 4096];
    elf[..4].copy_from_slice(b"\x7fELF");
    assert_eq!(parse_header(&elf), Err(ImageError::BadMagic));
}

#[test]
fn truncated_files_are_refused() {
    let f = image(0, 0x1000, 0, HEADER_LEN);
    assert!(parse_header(&f).is_ok());
    for len in [0, 1, 8, 56, 60, HEADER_LEN - 1] {
        assert_eq!(
            parse_header(&f[..len]),
            Err(ImageError::TooShort),
            "len {len}"
        );
    }
}

#[test]
fn big_endian_kernels_are_refused() {
    let f = image(0, 0x10_0000, 0b1011, 4096);
    assert_eq!(parse_header(&f), Err(ImageError::BigEndian));
}

#[test]
fn image_size_below_file_is_refused() {
    assert_eq!(
        parse_header(&image(0, 4095, 0, 4096)),
        Err(ImageError::SizeBelowFile)
    );
    assert!(parse_header(&image(0, 4096, 0, 4096)).is_ok());
}

#[test]
fn typical_linux_guest_layout() {
    let ram_size = 512 * MIB;
    let (initrd_len, dtb_len) = (20 * MIB + 123, 0x1800);
    let l = plan_layout(
        RAM,
        ram_size,
        &modern(40 * MIB),
        30 * MIB,
        initrd_len,
        dtb_len,
    )
    .unwrap();
    assert_eq!(l.kernel, RAM);
    assert_eq!(l.kernel_end, RAM + 40 * MIB);
    assert_eq!(l.dtb, RAM + ram_size - BLOCK_2M);
    let (start, end) = l.initrd.unwrap();
    assert_eq!(end - start, initrd_len);
    assert_eq!(start % PAGE_SIZE, 0);
    assert!(end <= l.dtb, "initrd ends before the DTB's block");
    assert!(
        l.dtb - end < PAGE_SIZE,
        "initrd sits directly below that block"
    );
    assert!(start >= l.kernel_end);
}

#[test]
fn text_offset_counts_from_the_first_2m_boundary_of_ram() {
    let hdr = ImageHeader {
        text_offset: 0x8_0000,
        ..modern(8 * MIB)
    };
    let l = plan_layout(RAM, 64 * MIB, &hdr, MIB, 0, 64).unwrap();
    assert_eq!(l.kernel, RAM + 0x8_0000);
    // RAM that does not start on a 2 MiB boundary: the base is rounded up.
    let l = plan_layout(RAM + 0x1000, 64 * MIB, &hdr, MIB, 0, 64).unwrap();
    assert_eq!(l.kernel, RAM + BLOCK_2M + 0x8_0000);
    assert_eq!(l.kernel_end, l.kernel + 8 * MIB);
}

#[test]
fn footprint_is_the_larger_of_image_size_and_file() {
    let l = plan_layout(RAM, 64 * MIB, &modern(4 * MIB), 6 * MIB, 0, 64).unwrap();
    assert_eq!(l.kernel_end, RAM + 6 * MIB);
    let l = plan_layout(RAM, 64 * MIB, &modern(7 * MIB), 6 * MIB, 0, 64).unwrap();
    assert_eq!(l.kernel_end, RAM + 7 * MIB);
}

#[test]
fn no_initrd_means_none() {
    let l = plan_layout(RAM, 64 * MIB, &modern(8 * MIB), MIB, 0, 64).unwrap();
    assert_eq!(l.initrd, None);
}

#[test]
fn dtb_size_limits() {
    let hdr = modern(8 * MIB);
    let l = plan_layout(RAM, 64 * MIB, &hdr, MIB, 0, MAX_DTB_LEN).unwrap();
    assert_eq!(l.dtb, RAM + 62 * MIB);
    for bad in [0, MAX_DTB_LEN + 1, u64::MAX] {
        assert_eq!(
            plan_layout(RAM, 64 * MIB, &hdr, MIB, 0, bad),
            Err(ImageError::DtbSize)
        );
    }
}

#[test]
fn ram_end_off_a_2m_boundary_keeps_the_dtb_alone_in_its_block() {
    let hdr = modern(8 * MIB);
    let ram_size = 65 * MIB;
    let dtb_len = 3 * MIB / 2;
    let l = plan_layout(RAM, ram_size, &hdr, MIB, 4 * MIB, dtb_len).unwrap();
    assert_eq!(l.dtb, RAM + 62 * MIB);
    assert!(l.dtb + dtb_len <= RAM + ram_size);
    assert!(l.initrd.unwrap().1 <= l.dtb);
    // Small DTB: it fits in the last, partial block.
    let l = plan_layout(RAM, ram_size, &hdr, MIB, 0, 4096).unwrap();
    assert_eq!(l.dtb, RAM + 64 * MIB);
}

#[test]
fn too_small_ram_is_refused_naming_the_blob() {
    let hdr = modern(40 * MIB);
    assert_eq!(
        plan_layout(RAM, 4 * MIB, &hdr, MIB, 0, 4096),
        Err(ImageError::DoesNotFit(Blob::Kernel))
    );
    // 40 MiB: the kernel fits in RAM but runs into the DTB's block.
    assert_eq!(
        plan_layout(RAM, 40 * MIB, &hdr, MIB, 0, 4096),
        Err(ImageError::Overlap(Blob::Kernel, Blob::Dtb))
    );
    // Exactly enough: the kernel ends where the DTB's block starts.
    let l = plan_layout(RAM, 41 * MIB, &hdr, MIB, 0, 4096).unwrap();
    assert_eq!(l.kernel_end, l.dtb);
    // Less than a block, not starting on a block boundary: not even the DTB fits.
    assert_eq!(
        plan_layout(RAM + MIB, MIB, &hdr, MIB, 0, 4096),
        Err(ImageError::DoesNotFit(Blob::Dtb))
    );
}

#[test]
fn huge_initrd_is_refused() {
    let hdr = modern(8 * MIB);
    // Larger than RAM.
    assert_eq!(
        plan_layout(RAM, 64 * MIB, &hdr, MIB, 128 * MIB, 4096),
        Err(ImageError::DoesNotFit(Blob::Initrd))
    );
    assert_eq!(
        plan_layout(RAM, 64 * MIB, &hdr, MIB, u64::MAX, 4096),
        Err(ImageError::DoesNotFit(Blob::Initrd))
    );
    // Fits in RAM but not beside the kernel.
    assert_eq!(
        plan_layout(RAM, 64 * MIB, &hdr, MIB, 60 * MIB, 4096),
        Err(ImageError::Overlap(Blob::Kernel, Blob::Initrd))
    );
    // The gap between kernel and DTB block, to the byte.
    let l = plan_layout(RAM, 64 * MIB, &hdr, MIB, 54 * MIB, 4096).unwrap();
    assert_eq!(l.initrd, Some((l.kernel_end, l.dtb)));
    assert_eq!(
        plan_layout(RAM, 64 * MIB, &hdr, MIB, 54 * MIB + 1, 4096),
        Err(ImageError::Overlap(Blob::Kernel, Blob::Initrd))
    );
}

#[test]
fn initrd_must_share_a_32g_window_with_the_kernel() {
    let hdr = modern(8 * MIB);
    assert_eq!(
        plan_layout(RAM, 40 * GIB, &hdr, MIB, GIB, 4096),
        Err(ImageError::InitrdOutOfWindow)
    );
    let l = plan_layout(RAM, 31 * GIB, &hdr, MIB, GIB, 4096).unwrap();
    assert!(l.initrd.unwrap().1 <= RAM + 32 * GIB);
}

#[test]
fn bad_ram_ranges_are_refused() {
    let hdr = modern(MIB);
    assert_eq!(
        plan_layout(RAM, 0, &hdr, MIB, 0, 64),
        Err(ImageError::BadRam)
    );
    assert_eq!(
        plan_layout(u64::MAX - 10, 100, &hdr, MIB, 0, 64),
        Err(ImageError::BadRam)
    );
    // RAM ending at the top of the address space works without overflow.
    let top = u64::MAX - 128 * MIB + 1;
    let l = plan_layout(top, 64 * MIB, &hdr, MIB, MIB, 64).unwrap();
    assert_eq!(l.kernel, top);
}

#[test]
fn absurd_header_values_do_not_overflow() {
    let hdr = ImageHeader {
        text_offset: u64::MAX,
        ..modern(MIB)
    };
    assert_eq!(
        plan_layout(RAM, 64 * MIB, &hdr, MIB, 0, 64),
        Err(ImageError::DoesNotFit(Blob::Kernel))
    );
    assert_eq!(
        plan_layout(RAM, 64 * MIB, &modern(u64::MAX), MIB, 0, 64),
        Err(ImageError::DoesNotFit(Blob::Kernel))
    );
}

/// Every accepted layout obeys the boot protocol, for a spread of sizes; nothing panics.
#[test]
fn accepted_layouts_always_obey_the_protocol() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for _ in 0..20_000 {
        let ram_base = RAM + next(4) * MIB / 2;
        let ram_size = next(256 * MIB);
        let hdr = ImageHeader {
            text_offset: next(2) * 0x8_0000,
            ..modern(next(64 * MIB))
        };
        let (klen, ilen, dlen) = (next(64 * MIB), next(128 * MIB), next(3 * MIB));
        let Ok(l) = plan_layout(ram_base, ram_size, &hdr, klen, ilen, dlen) else {
            continue;
        };
        let ram_end = ram_base + ram_size;
        assert_eq!((l.kernel - hdr.text_offset) % BLOCK_2M, 0);
        assert!(l.kernel >= ram_base && l.kernel_end <= l.dtb);
        assert!(l.kernel_end - l.kernel >= klen.max(hdr.image_size.unwrap()));
        assert_eq!(l.dtb % BLOCK_2M, 0);
        assert!(l.dtb + dlen <= ram_end && dlen <= MAX_DTB_LEN);
        if let Some((s, e)) = l.initrd {
            assert_eq!(e - s, ilen);
            assert_eq!(s % PAGE_SIZE, 0);
            assert!(s >= l.kernel_end && e <= l.dtb);
        } else {
            assert_eq!(ilen, 0);
        }
    }
}
