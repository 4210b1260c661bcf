//! `run --firmware u-boot-tftp`: the network boot, end to end on QEMU virt. Debian's U-Boot
//! for QEMU (`qemu_arm64`) is the firmware with a virtio-net NIC on PCIe on QEMU's user
//! network, whose built-in TFTP server serves `target/bulkhead/uboot-tftp/`: the packed
//! files and `boot-tftp.scr` under the name U-Boot's distro boot asks DHCP/TFTP for
//! ([`DISTRO_SCRIPT`]). Distro boot finds no disk with a `boot.scr`, runs `dhcp`, which
//! sets `ipaddr` and `serverip` and loads that script, and the script `tftpboot`s
//! everything else from `${serverip}`.
//!
//! The NIC is on PCI, which the microvisor does not probe: it is never handed to netdom.

use crate::image::{self, ImageOptions};
use crate::qemu::{RunOptions, RunOutcome};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The script name U-Boot's distro boot loads over DHCP/TFTP (`boot_script_dhcp`).
pub const DISTRO_SCRIPT: &str = "boot.scr.uimg";
/// The QEMU user network that serves the TFTP root.
const NETDEV: &str = "bulkhead-tftp";

/// QEMU's arguments for the network U-Boot boots from (`root`: the TFTP server's
/// directory).
pub fn nic_args(root: &Path) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!(
            "user,id={NETDEV},tftp={}",
            root.display().to_string().replace(',', ",,")
        ),
        "-device".into(),
        format!("virtio-net-pci,netdev={NETDEV}"),
    ]
}

/// Fills `root` (emptied first) with the packed `boot_files` but the disk's scripts, and
/// `tftp_scr` as [`DISTRO_SCRIPT`].
pub fn fill_root(boot_files: &[PathBuf], tftp_scr: &Path, root: &Path) -> Result<()> {
    if root.exists() {
        std::fs::remove_dir_all(root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let link = |from: &Path, name: &std::ffi::OsStr| -> Result<()> {
        let to = root.join(name);
        // Same file system (both under target/): a link costs nothing; else copy.
        if std::fs::hard_link(from, &to).is_err() {
            std::fs::copy(from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    };
    for f in boot_files {
        let name = f.file_name().context("a boot file without a name")?;
        if name == "boot.cmd" || name == "boot.scr" {
            continue;
        }
        link(f, name)?;
    }
    if !tftp_scr.is_file() {
        bail!(
            "{} does not exist (mkimage did not run)",
            tftp_scr.display()
        );
    }
    link(tftp_scr, DISTRO_SCRIPT.as_ref())
}

/// Packs `opts.system`, fills `target/bulkhead/uboot-tftp/` and boots QEMU virt with U-Boot
/// from the network. Installs U-Boot and `mkimage` first if needed.
pub fn run(opts: &RunOptions) -> Result<RunOutcome> {
    let machine = opts.overrides.machine;
    if !machine.has_virtio_mmio() {
        bail!(
            "--firmware u-boot-tftp boots Debian's U-Boot for QEMU's virt board (qemu_arm64); --machine {} is not virt: use --firmware direct (`image` still writes boot-tftp.scr for the real board)",
            machine.name()
        );
    }
    crate::deps::ensure_uboot()?;
    crate::deps::ensure_mkimage()?;
    let packed = image::image(&ImageOptions {
        system: opts.system.clone(),
        overrides: opts.overrides,
        build: opts.build,
    })?;
    let root = crate::paths::out_dir().join("uboot-tftp");
    let scr = packed
        .dir
        .join(super::Source::Tftp.file())
        .with_extension("scr");
    fill_root(&packed.boot_files, &scr, &root)?;
    let args = image::qemu_args(
        machine,
        packed.system.smp,
        packed.system.memory_mib,
        image::Boot::UBootTftp {
            firmware: Path::new(crate::deps::UBOOT_QEMU_ARM64),
            root: &root,
        },
        &crate::system::disks::host_disks(&packed.system),
        &crate::system::nics::host_nics(&packed.system),
    );
    crate::qemu::run_args(args, &packed.dir, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_holds_the_files_and_the_script_under_the_distro_name() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = ["microvisor.bin", "dom0.bin", "boot.cmd", "boot.scr"]
            .iter()
            .map(|n| {
                let p = dir.path().join(n);
                std::fs::write(&p, n).unwrap();
                p
            })
            .collect();
        let scr = dir.path().join("boot-tftp.scr");
        std::fs::write(&scr, "tftp script").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("stale.bin"), "old").unwrap();
        fill_root(&files, &scr, &root).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [DISTRO_SCRIPT, "dom0.bin", "microvisor.bin"]);
        assert_eq!(
            std::fs::read_to_string(root.join(DISTRO_SCRIPT)).unwrap(),
            "tftp script"
        );
        assert!(fill_root(&files, &dir.path().join("none.scr"), &root).is_err());
    }

    #[test]
    fn the_nic_is_on_pci_with_the_tftp_root() {
        let a = nic_args(Path::new("/t/a,b")).join(" ");
        assert_eq!(
            a,
            "-netdev user,id=bulkhead-tftp,tftp=/t/a,,b -device virtio-net-pci,netdev=bulkhead-tftp"
        );
        let all = image::qemu_args(
            crate::machine::Machine::Virt,
            2,
            512,
            image::Boot::UBootTftp {
                firmware: Path::new("/u/u-boot.bin"),
                root: Path::new("/t/r"),
            },
            &[],
            &[],
        )
        .join(" ");
        assert!(
            all.contains("-echr 0x14 -bios /u/u-boot.bin -device virtio-serial-device"),
            "{all}"
        );
        assert!(all.ends_with(&a.replace("a,,b", "r")), "{all}");
        assert!(!all.contains("-kernel") && !all.contains("loader,") && !all.contains("ahci"));
    }
}
