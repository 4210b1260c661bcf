//! The Xen side of `bench micro --against xen`: Debian's own `xen-hypervisor-4.17-arm64`
//! (fetched once with `apt-get download` into the guest cache and extracted there), booted
//! dom0less in the same QEMU as Bulkhead (`-M virt,virtualization=on,gic-version=3 -cpu
//! max`, `-icount shift=0,sleep=off`) with the unchanged `micro` guest as its domUs.
//!
//! QEMU loads Xen with `-kernel`, the guest copies with `-device loader`, and a device tree
//! we write from QEMU's own: `/chosen/xen,xen-bootargs` and one `xen,domain` node per domU
//! with its `multiboot,kernel` module and `bootargs` (docs/misc/arm/device-tree/booting.txt
//! in Xen). There is no dom0: Xen builds the domUs itself. Under `-icount` Xen is given one
//! CPU (`maxcpus=1`, `-smp 1`), so every domU vCPU shares pCPU 0 under Xen's default
//! credit2 scheduler. Domain output: `console_io`, which Xen allows dom0less domUs, printed
//! only with `guest_loglvl=all`; each domU also gets a `vpl011`, which the guest falls back to
//! when `console_io` is refused.

use super::micro::Dist;
use crate::guest::{apt, cache::Cache, fetch};
use crate::qemu::{self, RunOptions, RunOutcome};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vm_fdt::FdtWriter;

/// Debian's Xen hypervisor package for arm64 (bookworm).
pub const XEN_PACKAGE: &str = "xen-hypervisor-4.17-arm64";
/// Xen's command line: one CPU (secondary CPUs do not come up under `-icount`), no boot-time
/// memory scrubbing (minutes under TCG), and the domUs' console output shown.
pub const XEN_BOOTARGS: &str =
    "console=dtuart maxcpus=1 bootscrub=0 loglvl=warning guest_loglvl=all";
/// Added for the exclusive-timer boot: WFI left to the hardware instead of trapping, so the
/// idle vCPU stays loaded and its timer interrupt needs no wake-up through the scheduler
/// (Xen's advice for real-time guests). Xen's null scheduler would suit too, but Debian
/// builds Xen without it ("Could not find scheduler: null"), so credit2 stays.
pub const XEN_EXCLUSIVE_ARGS: &str = "vwfi=native";
/// QEMU RAM for the Xen runs (MiB).
pub const XEN_MEM_MIB: u32 = 1024;
/// Where the first domU kernel is loaded (host-physical); later ones follow 2 MiB apart.
/// Well above where QEMU puts Xen and the DTB (the first 128 MiB of RAM and just after).
pub const MODULE_BASE: u64 = 0x5000_0000;
/// Spacing of the domU kernel copies.
pub const MODULE_STRIDE: u64 = 0x20_0000;
/// RAM per domU (KiB), as Bulkhead's domains get.
pub const DOMU_KIB: u64 = 8 * 1024;

/// One dom0less domU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomU {
    /// vCPUs.
    pub vcpus: u32,
    /// The guest's command line.
    pub bootargs: String,
}

/// One Xen boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XenBoot {
    /// Log and DTB name.
    pub name: &'static str,
    /// Added to [`XEN_BOOTARGS`].
    pub xen_args: &'static str,
    /// The domUs.
    pub domus: Vec<DomU>,
    /// The role whose `done` ends the boot.
    pub role: &'static str,
    /// Metrics of this boot that another boot measures under a fitter configuration.
    pub superseded: &'static [&'static str],
}

/// The Xen boots. `xen_solo` (round trips, virtual IPI) needs two vCPUs on the one pCPU, so
/// it runs the default credit2 scheduler with trapping WFI; its timer figure is replaced by
/// `xen_exclusive`'s, a 1-vCPU domU under [`XEN_EXCLUSIVE_ARGS`]. `xen_shared` is the timer
/// beside a busy domU under credit2, and `xen_running` the timer of a spinning domU alone
/// under credit2 (its pCPU open to others, as Bulkhead's placed-shared vCPU).
pub fn boots(samples: usize) -> [XenBoot; 4] {
    let d = |vcpus, bootargs: String| DomU { vcpus, bootargs };
    [
        XenBoot {
            name: "xen_solo",
            xen_args: "",
            domus: vec![d(2, format!("role=main n={samples}"))],
            role: "main",
            superseded: &[micro::metric::TIMER_EXCLUSIVE],
        },
        XenBoot {
            name: "xen_exclusive",
            xen_args: XEN_EXCLUSIVE_ARGS,
            domus: vec![d(1, format!("role=exclusive n={samples}"))],
            role: "exclusive",
            superseded: &[],
        },
        XenBoot {
            name: "xen_shared",
            xen_args: "",
            domus: vec![
                d(1, format!("role=timer n={samples}")),
                d(1, "role=busy".into()),
            ],
            role: "timer",
            superseded: &[],
        },
        XenBoot {
            name: "xen_running",
            xen_args: "",
            domus: vec![d(1, format!("role=timer_spin n={samples}"))],
            role: "timer_spin",
            superseded: &[],
        },
    ]
}

/// The Xen binary from the cached package, downloading and extracting it when missing.
pub fn xen_binary() -> Result<PathBuf> {
    let cache = Cache::from_env()?;
    let dir = cache.debs();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let deb = match fetch::cached_deb(&dir, XEN_PACKAGE) {
        Some(deb) => deb,
        None => {
            apt::ensure_foreign_arch()?;
            let want = [apt::qualified(XEN_PACKAGE)];
            if apt::download(&dir, &want).is_err() {
                // Stale lists name a file the mirror dropped: refresh once and retry.
                apt::apt_get_update()?;
                apt::download(&dir, &want)?;
            }
            fetch::cached_deb(&dir, XEN_PACKAGE).with_context(|| {
                format!(
                    "apt-get download left no {XEN_PACKAGE} in {}",
                    dir.display()
                )
            })?
        }
    };
    let tree = fetch::extracted(&cache, XEN_PACKAGE, &deb)?;
    find_xen(&tree.join("boot"))
}

/// `boot/xen-<version>-arm64` in the extracted package (not its `.config` or `.efi`).
pub fn find_xen(boot: &Path) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(boot)
        .with_context(|| format!("reading {}", boot.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("xen-") && n.ends_with("-arm64"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("no xen-*-arm64 in {}", boot.display()))
}

/// The dom0less device tree: QEMU's `base` with Xen's command line ([`XEN_BOOTARGS`] and
/// `xen_args`) and one `domU<i>` node per entry of `domus`, whose kernel module is
/// `image_len` bytes at `MODULE_BASE + i * MODULE_STRIDE`.
pub fn dom0less_dtb(
    base: &[u8],
    xen_args: &str,
    domus: &[DomU],
    image_len: u64,
) -> Result<Vec<u8>> {
    use crate::dtb::fdt_err;
    let bootargs = format!("{XEN_BOOTARGS} {xen_args}");
    crate::dtb::with_chosen(base, |w: &mut FdtWriter| {
        w.property_string("xen,xen-bootargs", bootargs.trim_end())
            .map_err(fdt_err)?;
        for (i, d) in domus.iter().enumerate() {
            let node = w.begin_node(&format!("domU{}", i + 1)).map_err(fdt_err)?;
            w.property_string("compatible", "xen,domain")
                .map_err(fdt_err)?;
            w.property_u32("#address-cells", 2).map_err(fdt_err)?;
            w.property_u32("#size-cells", 2).map_err(fdt_err)?;
            w.property_u64("memory", DOMU_KIB).map_err(fdt_err)?;
            w.property_u32("cpus", d.vcpus).map_err(fdt_err)?;
            w.property_null("vpl011").map_err(fdt_err)?;
            let addr = MODULE_BASE + i as u64 * MODULE_STRIDE;
            let m = w.begin_node(&format!("module@{addr:x}")).map_err(fdt_err)?;
            w.property_string_list(
                "compatible",
                vec!["multiboot,kernel".into(), "multiboot,module".into()],
            )
            .map_err(fdt_err)?;
            w.property_array_u64("reg", &[addr, image_len])
                .map_err(fdt_err)?;
            w.property_string("bootargs", &d.bootargs)
                .map_err(fdt_err)?;
            w.end_node(m).map_err(fdt_err)?;
            w.end_node(node).map_err(fdt_err)?;
        }
        Ok(())
    })
}

/// QEMU's arguments for one Xen boot.
pub fn qemu_args(xen: &Path, dtb: &Path, image: &Path, domus: usize) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        "virt,virtualization=on,gic-version=3",
        "-cpu",
        "max",
        "-smp",
        "1",
        "-m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        XEN_MEM_MIB.to_string(),
        "-nographic".into(),
        "-kernel".into(),
        xen.display().to_string(),
        "-dtb".into(),
        dtb.display().to_string(),
    ]);
    for i in 0..domus {
        args.push("-device".into());
        args.push(format!(
            "loader,file={},addr={:#x},force-raw=on",
            image.display(),
            MODULE_BASE + i as u64 * MODULE_STRIDE
        ));
    }
    args
}

/// Boots Xen as `boot` says until its role is done.
fn run(boot: &XenBoot, xen: &Path) -> Result<RunOutcome> {
    let (name, domus) = (boot.name, &boot.domus);
    let image = super::micro_run::guest_image()?;
    let len = std::fs::metadata(&image)
        .with_context(|| format!("reading {}", image.display()))?
        .len();
    let dir = crate::paths::out_dir().join("bench").join("micro");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base =
        crate::machine::Machine::Virt.dump_dtb(1, XEN_MEM_MIB, &dir.join("qemu-virt.dtb"))?;
    let dtb = dir.join(format!("{name}.dtb"));
    std::fs::write(&dtb, dom0less_dtb(&base, boot.xen_args, domus, len)?)
        .with_context(|| format!("cannot write {}", dtb.display()))?;
    let opts = RunOptions::bench(
        PathBuf::from(name),
        super::micro_run::expect(boot.role)?.forbid(r"\(XEN\).*Panic")?,
        Duration::from_secs(600),
        false,
    );
    super::boot_with_spinner(&format!("micro: {name} on Xen 4.17"), || {
        qemu::run_args(qemu_args(xen, &dtb, &image, domus.len()), &dir, &opts)
    })
}

/// Every figure from the Xen boots.
pub fn xen(samples: usize) -> Result<Vec<(String, Dist)>> {
    let bin = xen_binary()?;
    let mut all = Vec::new();
    for boot in boots(samples) {
        let out = run(&boot, &bin)?;
        let got = super::micro::parse(&out.log);
        if got.is_empty() {
            bail!(
                "Xen run {} printed no figures; log: {}",
                boot.name,
                out.log_path.display()
            );
        }
        all.extend(
            got.into_iter()
                .filter(|(n, _)| !boot.superseded.contains(&n.as_str())),
        );
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdt::Fdt;

    fn base() -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("stdout-path", "/pl011@9000000").unwrap();
        w.end_node(chosen).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    /// The dom0less binding Xen reads: its command line in /chosen and, per domU, a
    /// `xen,domain` node with memory (KiB), vCPUs, a vpl011 and a kernel module with
    /// the guest's command line.
    #[test]
    fn the_dom0less_tree_follows_xens_binding() {
        let boot = &boots(50)[2];
        let dtb = dom0less_dtb(&base(), boot.xen_args, &boot.domus, 4096).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        let args = chosen
            .property("xen,xen-bootargs")
            .unwrap()
            .as_str()
            .unwrap();
        assert!(
            args.contains("maxcpus=1") && args.contains("guest_loglvl=all"),
            "{args}"
        );
        assert_eq!(
            chosen.property("stdout-path").unwrap().as_str(),
            Some("/pl011@9000000")
        );
        for (i, want) in ["role=timer n=50", "role=busy"].iter().enumerate() {
            let node = fdt.find_node(&format!("/chosen/domU{}", i + 1)).unwrap();
            assert_eq!(node.compatible().unwrap().first(), "xen,domain");
            assert_eq!(node.property("memory").unwrap().as_usize(), Some(8192));
            assert_eq!(node.property("cpus").unwrap().as_usize(), Some(1));
            assert!(node.property("vpl011").is_some());
            let addr = MODULE_BASE + i as u64 * MODULE_STRIDE;
            let m = fdt
                .find_node(&format!("/chosen/domU{}/module@{addr:x}", i + 1))
                .unwrap();
            let compat: Vec<_> = m.compatible().unwrap().all().collect();
            assert_eq!(compat, ["multiboot,kernel", "multiboot,module"]);
            let reg = m.property("reg").unwrap().value;
            assert_eq!(reg[..8], addr.to_be_bytes());
            assert_eq!(reg[8..], 4096u64.to_be_bytes());
            assert_eq!(m.property("bootargs").unwrap().as_str(), Some(*want));
        }
        // The exclusive boot adds its options to Xen's command line.
        let excl = &boots(50)[1];
        let dtb = dom0less_dtb(&base(), excl.xen_args, &excl.domus, 1).unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let args = fdt
            .find_node("/chosen")
            .unwrap()
            .property("xen,xen-bootargs")
            .unwrap();
        assert!(args.as_str().unwrap().ends_with("vwfi=native"));
    }

    #[test]
    fn finds_the_hypervisor_in_the_package() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "xen-4.17-arm64",
            "xen-4.17-arm64.config",
            "xen-4.17-arm64.efi",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(
            find_xen(dir.path()).unwrap(),
            dir.path().join("xen-4.17-arm64")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(find_xen(empty.path()).is_err());
    }
}
