//! QEMU's command line for a packed system: the machine with EL2, the microvisor and its
//! DTB, dom0's management port, one virtio-blk device per host disk, the network
//! backend's virtio-net uplink on QEMU's user network and a loader per boot module; and the
//! quoting `qemu.sh` needs.

use crate::dtb::Module;
use crate::machine::Machine;
use crate::system::disks::HostDisk;
use crate::system::nics::HostNic;
use std::path::Path;

/// How QEMU starts the microvisor.
#[derive(Debug, Clone, Copy)]
pub enum Boot<'a> {
    /// QEMU loads it (`-kernel`), the DTB (`-dtb system.dtb`) and each module (a loader
    /// device per module).
    Direct(&'a [Module]),
    /// U-Boot (`firmware`, run with `-bios`) loads everything from `disk`, an AHCI SATA disk
    /// on PCIe. The microvisor probes only virtio-mmio, so the boot disk is never handed to
    /// a driver domain; and U-Boot's distro boot tries SATA (`scsi0`) before `virtio0`, so
    /// it finds the boot disk first even when blkdom's virtio disks are there too.
    UBoot {
        /// U-Boot.
        firmware: &'a Path,
        /// The boot disk ([`crate::uboot::disk`]).
        disk: &'a Path,
    },
    /// U-Boot (`firmware`) loads everything over TFTP from QEMU's user network, which
    /// serves `root` to a virtio-net NIC on PCIe ([`crate::uboot::tftp`]).
    UBootTftp {
        /// U-Boot.
        firmware: &'a Path,
        /// The TFTP server's directory.
        root: &'a Path,
    },
}

/// QEMU's arguments for a packed image (files relative to the image directory; disks by
/// their absolute paths).
///
/// QEMU's virt board has 32 virtio-mmio transports and gives each `-device …-device` the
/// free transport with the highest address first: the management console lands on the
/// last transport (0x0a003e00, SPI 47), disk `bkd0` on the one below it, and so on. Nothing
/// depends on that order: dom0 finds its console by device type and blkdom its disks by
/// serial.
pub fn qemu_args(
    machine: Machine,
    smp: u16,
    mem_mib: u32,
    boot: Boot<'_>,
    disks: &[HostDisk],
    nics: &[HostNic],
) -> Vec<String> {
    qemu_args_mgmt(machine, smp, mem_mib, boot, disks, nics, true)
}

/// [`qemu_args`] for a system with (`mgmt`) or without (`[system] mgmt_port = "none"`)
/// dom0's management port.
pub fn qemu_args_mgmt(
    machine: Machine,
    smp: u16,
    mem_mib: u32,
    boot: Boot<'_>,
    disks: &[HostDisk],
    nics: &[HostNic],
    mgmt: bool,
) -> Vec<String> {
    let start: Vec<String> = match boot {
        Boot::Direct(_) => ["-kernel", "microvisor.bin", "-dtb", "system.dtb"]
            .map(String::from)
            .to_vec(),
        Boot::UBoot { firmware, .. } | Boot::UBootTftp { firmware, .. } => {
            vec!["-bios".into(), firmware.display().to_string()]
        }
    };
    let mut args: Vec<String> = vec!["-M".into(), machine.qemu_machine().into()];
    args.extend(machine.cpu_args().iter().map(|s| s.to_string()));
    args.extend(
        [
            "-smp",
            &smp.to_string(),
            "-m",
            &mem_mib.to_string(),
            "-nographic",
            // QEMU's console escape moves from Ctrl-A to Ctrl-T, so Ctrl-A reaches the
            // microvisor (three switch the console focus, as on Xen). Quit QEMU: Ctrl-T x.
            "-echr",
            "0x14",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(start);
    // dom0's management port: its host end is the unix socket target/bulkhead/mgmt.sock
    // (QEMU runs in target/bulkhead/image/) that `cargo bulkhead ctl` talks to.
    args.extend(machine.mgmt_args(mgmt));
    for d in disks {
        // QEMU's option syntax doubles a comma inside a value.
        let file = d.path.display().to_string().replace(',', ",,");
        // A writable disk passes the guest's discards on to the host file (its blocks
        // are freed: `fstrim` in the guest shrinks the image); QEMU's default ignores them.
        let mode = if d.read_only {
            ",readonly=on"
        } else {
            ",discard=unmap"
        };
        args.push("-drive".into());
        args.push(format!(
            "file={file},if=none,format=raw,id={}{mode}",
            d.serial
        ));
        args.push("-device".into());
        args.push(format!(
            "virtio-blk-device,drive={},serial={}",
            d.serial, d.serial
        ));
    }
    for n in nics {
        // QEMU's user network (slirp: DHCP, DNS and NAT to the host's network, no root
        // needed), on a virtio-mmio transport: the network backend's uplink.
        args.push("-netdev".into());
        args.push(n.netdev());
        args.push("-device".into());
        args.push(n.device());
    }
    match boot {
        Boot::Direct(modules) => {
            for m in modules {
                args.push("-device".into());
                args.push(format!(
                    "loader,file={}.bin,addr={:#x},force-raw=on",
                    m.label, m.addr
                ));
            }
        }
        Boot::UBoot { disk, .. } => {
            // A scratch overlay (snapshot): U-Boot never changes the disk file.
            let file = disk.display().to_string().replace(',', ",,");
            args.push("-drive".into());
            args.push(format!(
                "file={file},if=none,format=raw,id=bulkhead-boot,snapshot=on"
            ));
            args.extend(
                [
                    "-device",
                    "ich9-ahci,id=bulkhead-ahci",
                    "-device",
                    "ide-hd,drive=bulkhead-boot,bus=bulkhead-ahci.0",
                ]
                .map(String::from),
            );
        }
        Boot::UBootTftp { root, .. } => args.extend(crate::uboot::tftp::nic_args(root)),
    }
    args
}

/// `arg` as one sh word: as it is when that is safe, else single-quoted (a disk's path may
/// hold spaces or quotes).
pub(super) fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || ",._+:@%/=-^".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
