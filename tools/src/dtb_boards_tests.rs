//! Memory maps and module placement from real boards' DTBs, the ones Debian's kernel
//! package ships (the tools' cache has it once `cargo bulkhead fetch` or any boot ran;
//! without it these tests say so on stderr and check nothing: no test downloads).

use super::*;
use crate::image::layout;
use std::path::PathBuf;

/// `<cache>/extract/linux-image-*/usr/lib/linux-image-*/<rel>`, if the cache has it.
pub(crate) fn cached_dtb(rel: &str) -> Option<Vec<u8>> {
    let root = crate::guest::cache::Cache::from_env()
        .ok()?
        .root()
        .join("extract");
    let found = subdirs(&root, "linux-image-")
        .into_iter()
        .flat_map(|pkg| subdirs(&pkg.join("usr/lib"), "linux-image-"))
        .map(|dir| dir.join(rel))
        .find(|p| p.is_file());
    match found {
        Some(path) => std::fs::read(path).ok(),
        None => {
            eprintln!(
                "note: {rel} is not in the bulkhead cache under {}; skipped",
                root.display()
            );
            None
        }
    }
}

fn subdirs(dir: &std::path::Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// A microvisor, a dom0 and a 40 MiB kernel, as `image` lays them out.
fn sizes() -> Vec<(String, u64)> {
    vec![
        ("microvisor".into(), 300 << 10),
        ("dom0".into(), 400 << 10),
        ("debian-linux".into(), 40 << 20),
    ]
}

#[test]
fn zcu102_modules_go_into_its_dram_at_zero() {
    let Some(dtb) = cached_dtb("xilinx/zynqmp-zcu102-rev1.0.dtb") else {
        return;
    };
    let banks = ram_banks(&dtb).unwrap();
    // 2 GiB at 0 (U-Boot trims the PMU firmware's share on a real board), 2 GiB more at
    // 32 GiB.
    assert_eq!(
        banks[0],
        RamBank {
            base: 0,
            size: 0x8000_0000
        }
    );
    assert_eq!(banks[1].base, 0x8_0000_0000);
    let mods = layout(&sizes(), banks[0]).unwrap();
    assert_eq!(mods[0].addr, 0x1000_0000, "RAM + 256 MiB");
    assert!(mods.iter().all(|m| m.addr + m.size <= banks[0].end()));
}

#[test]
fn kunpeng_like_d05_has_ram_from_zero() {
    let Some(dtb) = cached_dtb("hisilicon/hip07-d05.dtb") else {
        return;
    };
    let banks = ram_banks(&dtb).unwrap();
    assert_eq!(banks[0].base, 0, "{banks:?}");
    let mods = layout(&sizes(), banks[0]).unwrap();
    assert_eq!(mods[0].addr, 0x1000_0000);
    assert!(mods.iter().all(|m| m.addr + m.size <= banks[0].end()));
}

#[test]
fn raspberry_pi_4_leaves_its_memory_to_the_firmware() {
    let Some(dtb) = cached_dtb("broadcom/bcm2711-rpi-4-b.dtb") else {
        return;
    };
    // The Pi's firmware writes /memory's reg at boot; the shipped DTB has none to place
    // modules by, and the tools say so rather than guess.
    let e = ram_banks(&dtb).unwrap_err().to_string();
    assert!(e.contains("no RAM"), "{e}");
}
