//! The U-Boot flow, end to end: Debian's U-Boot for QEMU (`u-boot-qemu`) is the firmware;
//! its distro boot finds `boot.scr` on the boot disk the tools build, loads the microvisor,
//! the modules and the DTB and `booti`s the microvisor at an address of U-Boot's choosing
//! (its `kernel_addr_r`), not the one QEMU's `-kernel` uses. The default system's domains
//! come up, and `ctl` works over the management port as after a direct boot.
//!
//! The system also has blkdom with a virtio-blk disk for the Linux guest: U-Boot must still
//! boot from its own disk (SATA, scanned before `virtio0`), and that boot disk must not be
//! among the devices the microvisor finds and dom0 hands to blkdom.

use bulkhead_tests::{connect, ctl, last_call, scratch_dir, wait_for_text, Boot, Expect};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default system's RTOS and Linux guest, plus blkdom serving Linux a disk.
fn system(dir: &Path) -> PathBuf {
    let toml = format!(
        r#"# Written by tests/tests/uboot_boot.rs.
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
name = "blkdom"
image = "blkdom"
memory = 16
cpus = "0"

[[domain]]
name = "linux"
image = "debian-linux"
ramdisk = "debian-initramfs"
memory = 256
vcpus = 2
cpus = "2-3"
cmdline = "console=hvc0 loglevel=4"
disk = ["{disk},raw,xvda,rw"]
"#,
        disk = dir.join("disk.img").display()
    );
    let path = dir.join("uboot.toml");
    std::fs::write(&path, toml).expect("system");
    path
}

/// Hard limit for the whole boot, firmware included: U-Boot's SATA probe and loads add
/// some seconds to a direct boot's budget.
const TIMEOUT: Duration = Duration::from_secs(240);
/// Where QEMU's `-kernel` puts the microvisor: U-Boot must not have used it.
const DIRECT_ADDR: &str = "0x40200000";

#[test]
fn uboot_boot() {
    let dir = scratch_dir("uboot-boot");
    let disk = std::fs::File::create(dir.join("disk.img")).expect("disk image");
    disk.set_len(16 << 20).expect("disk size");
    drop(disk);
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"Scanning scsi \d+:1\.\.\.")
        .and_then(|e| e.then(r"Found U-Boot script /boot\.scr"))
        .and_then(|e| e.then(r"bulkhead: DTB from bulkhead\.dtb"))
        .and_then(|e| e.then(r"bulkhead: microvisor image at 0x[0-9a-f]+\.\."))
        .and_then(|e| e.then("bulkhead: microvisor up"))
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] all domains started",
                r"\[rtos\] ready",
                r"\[blkdom\] vbd d\d+/51712: disk bkd0",
                r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
            ])
        })
        // The test's last request: its audit line ends the boot.
        .and_then(|e| e.then(r"\[dom0\] mgmt: pause rtos: done"))
        .and_then(|e| e.forbid(r"bulkhead: PANIC"))
        .and_then(|e| e.forbid(r"bulkhead: kernel_addr_r .* overlaps"))
        .expect("markers");
    let boot = Boot::start_uboot(RunOptions::test(system(&dir), expect, TIMEOUT));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "BULKHEAD-LINUX-USERSPACE",
        "Linux userspace after a U-Boot boot",
        200,
    );
    let list = ctl(&mut c, &["list"]);
    for name in ["rtos ", "blkdom ", "linux "] {
        let row = list
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}in\n{list}"));
        assert!(row.contains(" running "), "{list}");
    }
    last_call(
        &mut c,
        &Request::Pause {
            domain: DomainRef::Name("rtos".into()),
        },
    );
    let out = boot.finish("the system booted through U-Boot");
    // The microvisor found one block device, blkdom's disk: not U-Boot's boot disk.
    let block_devices = out
        .log
        .lines()
        .filter(|l| l.starts_with("bulkhead: device: virtio type 2 "))
        .count();
    assert_eq!(block_devices, 1, "virtio-blk devices found:\n{}", out.log);
    let placed = out
        .log
        .lines()
        .find_map(|l| l.strip_prefix("bulkhead: microvisor image at "))
        .expect("the image line matched");
    assert!(
        !placed.starts_with(&format!("{DIRECT_ADDR}..")),
        "U-Boot put the microvisor where -kernel would: {placed}"
    );
}
