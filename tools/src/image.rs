//! `bulkhead image`: packs a system into `target/bulkhead/image/`: the microvisor, one file
//! per boot module (dom0, the manifest, each distinct domain image and initramfs), the DTB
//! with the module nodes (`system.dtb`, for QEMU's `-dtb`), `qemu.sh`, and for U-Boot the
//! DTB without them (`bulkhead.dtb`), `boot.cmd` and `boot.scr`, and their TFTP variant
//! `boot-tftp.cmd`/`boot-tftp.scr` (see [`crate::uboot`]).
//!
//! Modules load from the first RAM bank of the board's DTB + [`MODULES_OFFSET`] upwards,
//! each at a 2 MiB boundary, above the microvisor (RAM + 2 MiB on QEMU) and QEMU's own DTB
//! (RAM + 128 MiB). Debian's kernel and initramfs are fetched (or taken from the cache) only
//! when a domain names them.

use crate::dtb::{self, Module, RamBank};
use crate::paths;
use crate::system::disks::host_disks;
use crate::system::nics::host_nics;
use crate::system::{self, DebianArtifact, Image, Overrides, System};
use anyhow::{bail, Context, Result};
use protocol::boot::{DOM0_LABEL, MANIFEST_LABEL, MAX_NAME_LEN};
use protocol::control::VcpuPlacement;
use protocol::manifest::{
    ManifestBudget, ManifestCrashLimit, ManifestDisk, ManifestDomain, ManifestNic, ManifestVbd,
    ManifestVif, ManifestWatchdog, SystemManifest, MANIFEST_VERSION,
};
use std::path::{Path, PathBuf};

/// Where the first module loads, from the start of the first RAM bank: 256 MiB up, clear
/// of what boot loaders put low in RAM (the microvisor, a DTB, their own scripts).
pub const MODULES_OFFSET: u64 = 256 * MIB;
/// Module alignment.
pub const MODULE_ALIGN: u64 = 2 << 20;
const MIB: u64 = 1 << 20;

mod qemu_cmd;
use qemu_cmd::shell_word;
pub use qemu_cmd::{qemu_args, qemu_args_mgmt, Boot};

/// What to pack.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// System description.
    pub system: PathBuf,
    /// `--smp` / `--mem`.
    pub overrides: Overrides,
    /// Run cargo first (`bulkhead build`); otherwise reuse the built ELFs.
    pub build: bool,
}

/// A packed system.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The validated description.
    pub system: System,
    /// The image directory (QEMU runs there; paths in `qemu_args` are relative to it).
    pub dir: PathBuf,
    /// QEMU's arguments (without the program name).
    pub qemu_args: Vec<String>,
    /// The boot modules in load order.
    pub modules: Vec<Module>,
    /// What a U-Boot boot partition holds (`boot.scr` only if `mkimage` was there),
    /// absolute paths.
    pub boot_files: Vec<PathBuf>,
}

/// The manifest of `system` and the image of each distinct label (first use first; a
/// domain's image before its ramdisk).
pub fn manifest(
    system: &System,
) -> Result<(SystemManifest, Vec<(String, Image)>), system::ConfigError> {
    let mut images: Vec<(String, Image)> = Vec::new();
    let mut domains = Vec::new();
    let disks = host_disks(system);
    for i in system::start_order(system)? {
        let d = &system.domains[i];
        let image = label_of(&d.image.value, &mut images);
        let ramdisk = d.ramdisk.as_ref().map(|r| label_of(&r.value, &mut images));
        domains.push(ManifestDomain {
            name: d.name.value.clone(),
            image,
            ramdisk,
            mem_mib: d.memory_mib,
            auto_cpus: d.auto_cpus,
            vcpus: d
                .placement()
                .map(|pcpu| VcpuPlacement {
                    pcpu,
                    priority: d.priority,
                    exclusive: d.exclusive,
                })
                .collect(),
            cmdline: d.cmdline.clone(),
            depends_on: d.depends_on.value.clone(),
            on_poweroff: d.on_poweroff,
            on_reboot: d.on_reboot,
            on_crash: d.on_crash,
            pmu: d.pmu,
            vbds: d
                .disks
                .iter()
                .map(|at| {
                    let spec = &at.value.spec;
                    ManifestVbd {
                        disk: disks
                            .iter()
                            .find(|h| h.path == at.value.path)
                            .map_or(0, |h| h.index),
                        vdev: spec.vdev.clone(),
                        devid: spec.devid,
                        read_only: spec.read_only,
                        backend: spec.backend.clone(),
                        discard: spec.discard,
                    }
                })
                .collect(),
            vifs: d
                .vifs
                .iter()
                .map(|at| ManifestVif {
                    devid: at.value.devid,
                    mac: at.value.mac,
                    bridge: at.value.spec.bridge.clone(),
                    backend: at.value.spec.backend.clone(),
                })
                .collect(),
            // Filled by `crate::passthru::assign` once the host's device tree is known.
            devices: Vec::new(),
            device_tree: None,
        });
    }
    Ok((
        SystemManifest {
            version: MANIFEST_VERSION,
            domains,
            disks: disks
                .iter()
                .map(|h| ManifestDisk {
                    index: h.index,
                    serial: h.serial.clone(),
                    read_only: h.read_only,
                    sectors: h.sectors,
                    backend: h.backend.clone(),
                    name: h.path.display().to_string(),
                })
                .collect(),
            nics: host_nics(system)
                .iter()
                .map(|n| ManifestNic {
                    index: n.index,
                    backend: n.backend.clone(),
                    name: n.netdev(),
                })
                .collect(),
            watchdogs: system
                .domains
                .iter()
                .filter_map(|d| {
                    let s = d.watchdog_s?;
                    let first = s.saturating_mul(6).max(crate::system::MIN_FIRST_BEAT_S);
                    Some(ManifestWatchdog {
                        domain: d.name.value.clone(),
                        timeout_ms: s.saturating_mul(1000),
                        first_beat_ms: first.saturating_mul(1000),
                    })
                })
                .collect(),
            budgets: system
                .domains
                .iter()
                .filter(|d| d.budget_us != (0, 0))
                .map(|d| ManifestBudget {
                    domain: d.name.value.clone(),
                    budget_us: d.budget_us.0,
                    period_us: d.budget_us.1,
                })
                .collect(),
            crash_limits: system
                .domains
                .iter()
                .filter_map(|d| {
                    let l = d.crash_limit?;
                    Some(ManifestCrashLimit {
                        domain: d.name.value.clone(),
                        max_restarts: l.max_restarts,
                        window_ms: l.window_s.saturating_mul(1000),
                    })
                })
                .collect(),
        },
        images,
    ))
}

/// Checks the domains' `dtdev`/`iomem`/`irqs` against the host's device tree `dtb` and
/// fills each manifest domain's `devices`; the host paths given, to mark in the boot DTB.
/// `mgmt_port` (dom0's management UART, if any) is kept from guests.
fn give_devices(
    system: &System,
    manifest: &mut SystemManifest,
    dtb: &[u8],
    mgmt_port: Option<&str>,
) -> Result<Vec<String>> {
    let host = crate::passthru::host_devices(dtb, mgmt_port)?;
    let given = crate::passthru::assign(system, &host)?;
    let mut paths = crate::passthru::reserved(system, &host)?;
    for (d, devices) in system.domains.iter().zip(given) {
        for dev in &devices {
            if !paths.contains(&dev.path) {
                paths.push(dev.path.clone());
            }
        }
        if let Some(m) = manifest.domains.iter_mut().find(|m| m.name == d.name.value) {
            m.devices = devices;
        }
    }
    Ok(paths)
}

/// The label of `image`: the one it already has, else a fresh one, recorded in `images`.
fn label_of(image: &Image, images: &mut Vec<(String, Image)>) -> String {
    if let Some((label, _)) = images.iter().find(|(_, img)| img == image) {
        return label.clone();
    }
    let label = fresh_label(image, images);
    images.push((label.clone(), image.clone()));
    label
}

/// A label for `image` not yet used: the built-in's or Debian file's name, or the file's stem
/// (sanitized, ASCII, at most [`MAX_NAME_LEN`] bytes). A file never takes a built-in or
/// Debian name, so those labels always mean what they say.
pub(crate) fn fresh_label(image: &Image, taken: &[(String, Image)]) -> String {
    let named = |l: &str| {
        paths::BUILTIN_DOMAINS.contains(&l)
            || [DebianArtifact::Kernel, DebianArtifact::Initramfs]
                .iter()
                .any(|a| a.name() == l)
    };
    let base = match image {
        Image::Builtin(name) => name.clone(),
        Image::Debian(artifact) => artifact.name().into(),
        Image::File(path) => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let clean: String = stem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean.is_empty() {
                "image".into()
            } else {
                clean
            }
        }
    };
    let is_file = matches!(image, Image::File(_));
    let reserved = |l: &str| {
        l == DOM0_LABEL
            || l == MANIFEST_LABEL
            || (is_file && named(l))
            || taken.iter().any(|(t, _)| t == l)
    };
    // A label is looked up whole, so it must fit the module name the boot path keeps.
    let fit = |base: &str, suffix: &str| {
        let room = MAX_NAME_LEN.saturating_sub(suffix.len());
        format!("{}{suffix}", &base[..base.len().min(room)])
    };
    let first = fit(&base, "");
    if !reserved(&first) {
        return first;
    }
    (2..)
        .map(|n| fit(&base, &format!("-{n}")))
        .find(|l| !reserved(l))
        .unwrap_or(first)
}

/// Load addresses in RAM bank `ram` (the board's first) for modules of the given sizes; an
/// error if they pass the end of the bank.
pub fn layout(sizes: &[(String, u64)], ram: RamBank) -> Result<Vec<Module>> {
    let ram_end = ram.end();
    let mem_mib = ram.size / MIB;
    let mut addr = ram.base.saturating_add(MODULES_OFFSET);
    let mut end = addr;
    let mut out = Vec::new();
    for (label, size) in sizes {
        out.push(Module {
            label: label.clone(),
            addr,
            size: *size,
        });
        end = addr.saturating_add(*size);
        addr = end.div_ceil(MODULE_ALIGN).saturating_mul(MODULE_ALIGN);
    }
    if end > ram_end {
        let need = (end - ram.base).div_ceil(MIB);
        let largest = sizes
            .iter()
            .max_by_key(|(_, size)| *size)
            .map(|(label, size)| format!("; the largest is {label}, {} MiB", size.div_ceil(MIB)))
            .unwrap_or_default();
        bail!(
            "boot modules end at {end:#x}, past the end of the {mem_mib} MiB of RAM at {ram_end:#x} (they load from RAM + 256 MiB, each 2 MiB aligned{largest}); give QEMU at least {need} MiB (--mem or [system] memory), more to leave room for the domains"
        );
    }
    Ok(out)
}

/// An error if a domain's image and ramdisk cannot even fit in its RAM (the microvisor would
/// refuse to load it, less clearly).
pub fn check_domain_ram(manifest: &SystemManifest, sizes: &[(String, u64)]) -> Result<()> {
    let size_of = |label: &str| {
        sizes
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, size)| *size)
    };
    for d in &manifest.domains {
        let labels: Vec<&str> = std::iter::once(d.image.as_str())
            .chain(d.ramdisk.as_deref())
            .collect();
        let total: u64 = labels.iter().map(|l| size_of(l)).sum();
        if total >= u64::from(d.mem_mib) * MIB {
            let list: Vec<String> = labels
                .iter()
                .map(|l| format!("{l}, {} MiB", size_of(l).div_ceil(MIB)))
                .collect();
            bail!(
                "domain {:?}: its boot modules ({}) do not fit in its {} MiB of RAM; give it more `memory`",
                d.name,
                list.join("; "),
                d.mem_mib
            );
        }
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result<u64> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// Builds (or converts) the images and packs `opts.system`.
pub fn image(opts: &ImageOptions) -> Result<Packed> {
    // Validate first: a typo in the file should not cost a build.
    let system = System::load(&opts.system, opts.overrides)?;
    for w in &system.warnings {
        eprintln!("bulkhead: warning: {w}");
    }
    if opts.build {
        crate::build::build()?;
    } else {
        crate::build::convert_all()?;
    }
    crate::deps::ensure_qemu()?;
    let (mut manifest, images) = manifest(&system)?;
    let dir = paths::image_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The host's device tree decides which devices a guest may be given: checked before
    // anything is copied or boots.
    let machine = opts.overrides.machine;
    machine.check(
        system.smp,
        system.memory_mib,
        host_disks(&system).len(),
        host_nics(&system).len(),
    )?;
    for at in system.domains.iter().filter_map(|d| d.gic_version.as_ref()) {
        machine.check_gic(at, &system.file_of(at))?;
    }
    let base = machine.dump_dtb(
        system.smp,
        system.memory_mib,
        &dir.join(crate::machine::HOST_DTB),
    )?;
    write(
        &dir.join(crate::machine::MACHINE_FILE),
        format!("{}\n", machine.name()).as_bytes(),
    )?;
    let mgmt_port = machine.mgmt_port_of(&system)?;
    let passthrough = give_devices(&system, &mut manifest, &base, mgmt_port)?;
    let fragments = crate::partial_dt::device_trees(&system, &mut manifest, &images)?;
    let bins = paths::bin_dir();
    copy(&bins.join("microvisor.bin"), &dir.join("microvisor.bin"))?;
    let mut sizes = vec![(
        DOM0_LABEL.to_string(),
        copy(&bins.join("dom0.bin"), &dir.join("dom0.bin"))?,
    )];
    let encoded = manifest.encode().context("cannot encode the manifest")?;
    write(&dir.join(format!("{MANIFEST_LABEL}.bin")), &encoded)?;
    sizes.push((MANIFEST_LABEL.to_string(), encoded.len() as u64));
    for (label, blob) in &fragments {
        write(&dir.join(format!("{label}.bin")), blob)?;
        sizes.push((label.clone(), blob.len() as u64));
    }
    // One fetch (or cache check) serves both Debian files; none if no domain uses them.
    let linux = if images.iter().any(|(_, i)| matches!(i, Image::Debian(_))) {
        let linux = crate::guest::linux_artifacts()
            .context("cannot get Debian's Linux kernel and initramfs")?;
        Some(linux)
    } else {
        None
    };
    for (label, image) in &images {
        let from = match image {
            Image::Builtin(name) => {
                let bin = bins.join(format!("{name}.bin"));
                if !bin.is_file() {
                    bail!(
                        "domain image {name:?} has not been built ({} does not exist); `cargo bulkhead build` builds {}",
                        bin.display(),
                        paths::IMAGES.join(", ")
                    );
                }
                bin
            }
            Image::File(path) => path.clone(),
            Image::Debian(artifact) => {
                let linux = linux.as_ref().context("Debian files were not fetched")?;
                match artifact {
                    DebianArtifact::Kernel => linux.image.clone(),
                    DebianArtifact::Initramfs => linux.initramfs.clone(),
                }
            }
        };
        sizes.push((
            label.clone(),
            copy(&from, &dir.join(format!("{label}.bin")))?,
        ));
    }
    check_domain_ram(&manifest, &sizes)?;
    crate::memfit::check_fits(&manifest, &sizes, system.memory_mib)?;
    // Module addresses come from the board's memory map, as a board's own DTB would give it.
    let ram = dtb::ram_banks(&base)?[0];
    let modules = layout(&sizes, ram)?;
    write(
        &dir.join("system.dtb"),
        &dtb::add_modules(&base, &modules, &passthrough, mgmt_port)?,
    )?;
    let qemu_args = qemu_args_mgmt(
        machine,
        system.smp,
        system.memory_mib,
        Boot::Direct(&modules),
        &host_disks(&system),
        &host_nics(&system),
        machine.has_mgmt(&system),
    );
    let script = format!(
        "#!/bin/sh\n# Boots system `{}` ({}); generated by `cargo bulkhead image`.\ncd \"$(dirname \"$0\")\" || exit 1\nexec {} {} \"$@\"\n",
        system.name,
        system.file.display(),
        crate::deps::QEMU,
        qemu_args
            .iter()
            .map(|a| shell_word(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    write(&dir.join("qemu.sh"), script.as_bytes())?;
    std::fs::set_permissions(
        dir.join("qemu.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let boot_files = write_uboot(
        &dir,
        &system.name,
        &base,
        (&passthrough, mgmt_port),
        &modules,
        ram,
    )?;
    Ok(Packed {
        system,
        dir,
        qemu_args,
        modules,
        boot_files,
    })
}

/// Writes what a U-Boot boot partition needs beside the images: the board's DTB without
/// modules ([`crate::uboot::DTB_FILE`], devices given to guests marked), `boot.cmd` and,
/// when `mkimage` is (or can be) installed, `boot.scr`; and the TFTP variant
/// `boot-tftp.cmd`/`boot-tftp.scr`. Returns the partition's files (not the TFTP script).
fn write_uboot(
    dir: &Path,
    system: &str,
    base: &[u8],
    (passthrough, mgmt_port): (&[String], Option<&str>),
    modules: &[Module],
    ram: RamBank,
) -> Result<Vec<PathBuf>> {
    let microvisor = std::fs::read(dir.join("microvisor.bin"))
        .with_context(|| format!("cannot read {}", dir.join("microvisor.bin").display()))?;
    let image_size = crate::uboot::image_size(&microvisor)
        .context("microvisor.bin has no arm64 Image header")?;
    let plan = crate::uboot::Plan::new(ram, modules, image_size)?;
    write(
        &dir.join(crate::uboot::DTB_FILE),
        &dtb::add_modules(base, &[], passthrough, mgmt_port)?,
    )?;
    let cmd = write_script(dir, crate::uboot::Source::Disk, system, modules, &plan)?;
    let mut files = vec![
        dir.join("microvisor.bin"),
        dir.join(crate::uboot::DTB_FILE),
        cmd.clone(),
    ];
    files.extend(modules.iter().map(|m| dir.join(format!("{}.bin", m.label))));
    // The TFTP variant loads the same files from a server whose root is this directory; it
    // is not part of the boot partition.
    let tftp = write_script(dir, crate::uboot::Source::Tftp, system, modules, &plan)?;
    match crate::deps::ensure_mkimage() {
        Ok(()) => {
            files.push(compile_script(&cmd)?);
            compile_script(&tftp)?;
        }
        // Booting QEMU directly needs no boot.scr: say what is missing and go on.
        Err(e) => eprintln!("bulkhead: warning: boot.scr and boot-tftp.scr not written: {e:#}"),
    }
    Ok(files)
}

/// Writes the script loading from `source` and removes its stale `.scr`; returns the `.cmd`.
fn write_script(
    dir: &Path,
    source: crate::uboot::Source,
    system: &str,
    modules: &[Module],
    plan: &crate::uboot::Plan,
) -> Result<PathBuf> {
    let cmd = dir.join(source.file());
    write(
        &cmd,
        crate::uboot::script_for(source, system, modules, plan).as_bytes(),
    )?;
    let _ = std::fs::remove_file(cmd.with_extension("scr"));
    Ok(cmd)
}

/// `mkimage`s `cmd` into the `.scr` beside it; returns that path.
fn compile_script(cmd: &Path) -> Result<PathBuf> {
    let scr = cmd.with_extension("scr");
    let out = std::process::Command::new(crate::deps::MKIMAGE)
        .args([
            "-A", "arm64", "-T", "script", "-C", "none", "-n", "bulkhead",
        ])
        .arg("-d")
        .arg(cmd)
        .arg(&scr)
        .output()
        .with_context(|| format!("cannot run {}", crate::deps::MKIMAGE))?;
    if !out.status.success() {
        bail!(
            "{} failed on {}: {}",
            crate::deps::MKIMAGE,
            cmd.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(scr)
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
