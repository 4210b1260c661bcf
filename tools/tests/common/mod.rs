//! What the configuration tests share: the loader behind every error fixture, and the
//! stand-in binaries some fixtures name (an arm64 Linux `Image` header, an initramfs, raw
//! disk images), written at test time so the repository carries no binary guest artifacts.

use std::fmt::Display;
use std::path::Path;
use std::sync::Once;

/// 64 bytes an arm64 Linux `Image` starts with: its magic at byte 56, nothing else.
fn image_header() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[56..60].copy_from_slice(b"ARM\x64");
    h
}

/// Writes the stand-in files (once per test binary; git ignores them).
pub fn stand_ins() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::fs::create_dir_all("tests/fixtures/disks").expect("create the disks folder");
        let files: [(&str, Vec<u8>); 10] = [
            ("tests/fixtures/xl/Image", image_header()),
            ("tests/fixtures/xl/xen-example/Image", image_header()),
            // Only its existence is checked: an initramfs is opaque to the tools.
            (
                "tests/fixtures/xl/xen-example/rootfs.cpio.gz",
                b"stand-in initramfs\n".to_vec(),
            ),
            // Raw disks of zeros (64 KiB, b.img 128 KiB), one not a whole number of sectors,
            // one empty.
            ("tests/fixtures/disks/a.img", vec![0; 64 << 10]),
            ("tests/fixtures/disks/b.img", vec![0; 128 << 10]),
            ("tests/fixtures/disks/c.img", vec![0; 64 << 10]),
            ("tests/fixtures/disks/d.img", vec![0; 64 << 10]),
            ("tests/fixtures/disks/shared.img", vec![0; 64 << 10]),
            ("tests/fixtures/disks/odd.img", vec![0; 1000]),
            ("tests/fixtures/disks/empty.img", Vec::new()),
        ];
        for (path, bytes) in files {
            let tmp = format!("{path}.tmp{}", std::process::id());
            std::fs::write(&tmp, &bytes).expect("write a stand-in fixture");
            std::fs::rename(&tmp, path).expect("place a stand-in fixture");
        }
    });
}

/// The error `load` gives for fixture `path`; panics if it loads.
pub fn error_of<T, E: Display>(path: &Path, load: impl FnOnce(&Path) -> Result<T, E>) -> String {
    stand_ins();
    match load(path) {
        Ok(_) => panic!("{} parsed but should not", path.display()),
        Err(e) => e.to_string(),
    }
}
