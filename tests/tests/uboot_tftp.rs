//! The network boot, end to end (`run --firmware u-boot-tftp`): Debian's U-Boot for QEMU
//! has no boot disk, so its distro boot runs `dhcp` on QEMU's user network, loads
//! `boot-tftp.scr` (as `boot.scr.uimg`) from the built-in TFTP server, and the script
//! `tftpboot`s the microvisor, every module and the DTB from `${serverip}` to the addresses
//! `cargo bulkhead image` planned, then `booti`s the microvisor. The RTOS and the Debian
//! Linux guest come up as after a direct boot.

use bulkhead_tests::{default_system_boots, scratch_dir, Expect};
use bulkhead_tools::qemu::{Outcome, RunOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// dom0, the RTOS and the Linux guest: no disks, so U-Boot finds no `boot.scr` before it
/// tries the network.
fn system(dir: &Path) -> PathBuf {
    let toml = r#"# Written by tests/tests/uboot_tftp.rs.
[system]
smp = 4
memory = 1024

[[domain]]
name = "rtos"
image = "rtos"
memory = 8
vcpus = 1
cpus = "1"
exclusive = true
cmdline = "hz=1000"

[[domain]]
name = "linux"
image = "debian-linux"
ramdisk = "debian-initramfs"
memory = 256
vcpus = 2
cpus = "2-3"
cmdline = "console=hvc0 loglevel=4"
"#;
    let path = dir.join("uboot_tftp.toml");
    std::fs::write(&path, toml).expect("system");
    path
}

/// Hard limit for the whole boot, firmware and ~40 MB of TFTP included.
const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn uboot_tftp() {
    let dir = scratch_dir("uboot-tftp");
    let firmware = Expect::new()
        .then(r"DHCP client bound to address 10\.0\.2\.\d+")
        .and_then(|e| e.then(r"Filename 'boot\.scr\.uimg'"))
        .and_then(|e| e.then(r"## Executing script at"))
        .and_then(|e| e.then(r"Filename 'microvisor\.bin'"))
        .and_then(|e| e.then(r"Filename 'debian-initramfs\.bin'"))
        .and_then(|e| e.then(r"bulkhead: DTB from bulkhead\.dtb"))
        .expect("firmware markers");
    let expect = default_system_boots(firmware, 0)
        .forbid(r"bulkhead: PANIC")
        .and_then(|e| e.forbid(r"bulkhead: not booting"))
        .and_then(|e| e.forbid(r"bulkhead: set ipaddr and serverip"))
        .expect("markers");
    let out = bulkhead_tools::uboot::tftp::run(&RunOptions::test(system(&dir), expect, TIMEOUT))
        .unwrap_or_else(|e| panic!("cannot boot: {e:#}"));
    assert_eq!(
        out.outcome,
        Outcome::Matched,
        "the TFTP boot: {}",
        out.report(40)
    );
    // Every module came over TFTP, each to its planned address.
    let packed = std::fs::read_to_string(bulkhead_tools::paths::image_dir().join("boot-tftp.cmd"))
        .expect("boot-tftp.cmd");
    let loads: Vec<&str> = packed
        .lines()
        .filter(|l| l.starts_with("tftpboot 0x"))
        .collect();
    assert_eq!(
        loads.len(),
        5,
        "dom0, manifest, rtos, kernel, initramfs:\n{packed}"
    );
    for l in loads {
        let file = l.split_whitespace().nth(2).expect("file name");
        assert!(
            out.log.contains(&format!("Filename '{file}'")),
            "{file} was not fetched:\n{}",
            out.report(40)
        );
    }
}
