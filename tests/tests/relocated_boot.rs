//! The microvisor runs wherever it is loaded: the default system boots with the microvisor
//! 4 MiB above where QEMU's `-kernel` normally puts it (RAM + 6 MiB instead of RAM + 2 MiB).
//!
//! QEMU loads an arm64 Image at RAM + its header's `text_offset` and passes the DTB in x0,
//! so a copy of `microvisor.bin` whose `text_offset` says 6 MiB lands at 0x4060_0000. The
//! image is linked at 0, so any address exercises its self-relocation; this one also
//! moves it off the address it was linked at before it became position-independent.

use bulkhead_tests::{boot_edited_expect, default_system_boots, Expect};

/// Where QEMU puts the moved copy: virt's RAM base + 6 MiB.
const MOVED_TO: u64 = 0x4060_0000;

#[test]
fn relocated_boot() {
    let moved = Expect::new()
        .then(&format!(r"bulkhead: microvisor image at {MOVED_TO:#x}\.\."))
        .expect("marker");
    let expect = default_system_boots(moved, 1);
    boot_edited_expect("default_boot", expect, |dir, args| {
        let mut image = std::fs::read(dir.join("microvisor.bin")).expect("packed microvisor");
        assert_eq!(&image[0x38..0x3c], b"ARM\x64", "an arm64 Image header");
        let flags = u64::from_le_bytes(image[0x18..0x20].try_into().expect("8 bytes"));
        assert_eq!(flags & 8, 8, "header flags bit 3: may be placed anywhere");
        image[8..16].copy_from_slice(&(MOVED_TO - 0x4000_0000).to_le_bytes());
        std::fs::write(dir.join("microvisor-moved.bin"), image).expect("write the moved copy");
        let kernel = args
            .iter_mut()
            .find(|a| *a == "microvisor.bin")
            .expect("-kernel microvisor.bin");
        *kernel = "microvisor-moved.bin".into();
    });
}
