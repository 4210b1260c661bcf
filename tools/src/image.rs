//! `bulkhead image`: packs a system into `target/bulkhead/image/`: the microvisor, one file
//! per boot module (dom0, the manifest, each distinct domain image), the DTB with the
//! module nodes, `qemu.sh` and a U-Boot `boot.cmd`.
//!
//! Modules load from [`MODULES_BASE`] upwards, each at a 2 MiB boundary, above the
//! microvisor (RAM + 2 MiB) and QEMU's own DTB (RAM + 128 MiB).

use crate::dtb::{self, Module};
use crate::paths;
use crate::system::{self, Image, Overrides, System};
use anyhow::{bail, Context, Result};
use protocol::boot::{DOM0_LABEL, MANIFEST_LABEL};
use protocol::control::VcpuPlacement;
use protocol::manifest::{ManifestDomain, SystemManifest, MANIFEST_VERSION};
use std::path::{Path, PathBuf};

/// Guest-physical base of RAM on QEMU's virt board.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Where the first module loads: RAM + 256 MiB.
pub const MODULES_BASE: u64 = 0x5000_0000;
/// Module alignment.
pub const MODULE_ALIGN: u64 = 2 << 20;

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
}

/// The manifest of `system` and the image of each distinct label (first use first).
pub fn manifest(
    system: &System,
) -> Result<(SystemManifest, Vec<(String, Image)>), system::ConfigError> {
    let mut images: Vec<(String, Image)> = Vec::new();
    let mut domains = Vec::new();
    for i in system::start_order(system)? {
        let d = &system.domains[i];
        let label = match images.iter().find(|(_, img)| *img == d.image.value) {
            Some((label, _)) => label.clone(),
            None => {
                let label = fresh_label(&d.image.value, &images);
                images.push((label.clone(), d.image.value.clone()));
                label
            }
        };
        domains.push(ManifestDomain {
            name: d.name.value.clone(),
            image: label,
            mem_mib: d.memory_mib,
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
        });
    }
    Ok((
        SystemManifest {
            version: MANIFEST_VERSION,
            domains,
        },
        images,
    ))
}

/// A label for `image` not yet used: the built-in's name or the file's stem (sanitized).
fn fresh_label(image: &Image, taken: &[(String, Image)]) -> String {
    let base = match image {
        Image::Builtin(name) => name.clone(),
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
    let reserved =
        |l: &str| l == DOM0_LABEL || l == MANIFEST_LABEL || taken.iter().any(|(t, _)| t == l);
    if !reserved(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|l| !reserved(l))
        .unwrap_or(base)
}

/// Load addresses for modules of the given sizes; an error if they pass the end of RAM.
pub fn layout(sizes: &[(String, u64)], mem_mib: u32) -> Result<Vec<Module>> {
    let ram_end = RAM_BASE + u64::from(mem_mib) * (1 << 20);
    let mut addr = MODULES_BASE;
    let mut out = Vec::new();
    for (label, size) in sizes {
        out.push(Module {
            label: label.clone(),
            addr,
            size: *size,
        });
        addr = (addr + size).div_ceil(MODULE_ALIGN) * MODULE_ALIGN;
        if addr > ram_end {
            bail!("boot modules end at {addr:#x}, past the end of RAM at {ram_end:#x}; give QEMU more memory (--mem)");
        }
    }
    Ok(out)
}

/// QEMU's arguments for a packed image (files relative to the image directory).
pub fn qemu_args(smp: u16, mem_mib: u32, modules: &[Module]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        "virt,virtualization=on,gic-version=3",
        "-cpu",
        "max",
        "-smp",
        &smp.to_string(),
        "-m",
        &mem_mib.to_string(),
        "-nographic",
        // QEMU's console escape moves from Ctrl-A to Ctrl-T, so Ctrl-A reaches the
        // microvisor (three switch the console focus, as on Xen). Quit QEMU: Ctrl-T x.
        "-echr",
        "0x14",
        "-kernel",
        "microvisor.bin",
        "-dtb",
        "system.dtb",
        // dom0's management port: a virtio console whose host end is the unix socket
        // target/bulkhead/mgmt.sock (QEMU runs in target/bulkhead/image/) that
        // `cargo bulkhead ctl` talks to.
        "-device",
        "virtio-serial-device",
        "-chardev",
        "socket,id=mgmt,path=../mgmt.sock,server=on,wait=off",
        "-device",
        "virtconsole,chardev=mgmt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for m in modules {
        args.push("-device".into());
        args.push(format!(
            "loader,file={}.bin,addr={:#x},force-raw=on",
            m.label, m.addr
        ));
    }
    args
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
    let (manifest, images) = manifest(&system)?;
    let dir = paths::image_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bins = paths::bin_dir();
    copy(&bins.join("microvisor.bin"), &dir.join("microvisor.bin"))?;
    let mut sizes = vec![(
        DOM0_LABEL.to_string(),
        copy(&bins.join("dom0.bin"), &dir.join("dom0.bin"))?,
    )];
    let encoded = manifest.encode().context("cannot encode the manifest")?;
    write(&dir.join(format!("{MANIFEST_LABEL}.bin")), &encoded)?;
    sizes.push((MANIFEST_LABEL.to_string(), encoded.len() as u64));
    for (label, image) in &images {
        let from = match image {
            Image::Builtin(name) => bins.join(format!("{name}.bin")),
            Image::File(path) => path.clone(),
        };
        sizes.push((
            label.clone(),
            copy(&from, &dir.join(format!("{label}.bin")))?,
        ));
    }
    let modules = layout(&sizes, system.memory_mib)?;
    let base = dtb::dump_qemu_dtb(system.smp, system.memory_mib, &dir.join("qemu-virt.dtb"))?;
    write(&dir.join("system.dtb"), &dtb::add_modules(&base, &modules)?)?;
    let qemu_args = qemu_args(system.smp, system.memory_mib, &modules);
    let script = format!(
        "#!/bin/sh\n# Boots system `{}` ({}); generated by `cargo bulkhead image`.\ncd \"$(dirname \"$0\")\" || exit 1\nexec {} {} \"$@\"\n",
        system.name,
        system.file.display(),
        crate::deps::QEMU,
        qemu_args.join(" ")
    );
    write(&dir.join("qemu.sh"), script.as_bytes())?;
    std::fs::set_permissions(
        dir.join("qemu.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    write(
        &dir.join("boot.cmd"),
        crate::uboot::script(&system.name, &modules).as_bytes(),
    )?;
    Ok(Packed {
        system,
        dir,
        qemu_args,
        modules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_2mib_aligned_from_the_base() {
        let sizes = vec![
            ("dom0".into(), 0x20_0001),
            ("manifest".into(), 10),
            ("rtos".into(), 5),
        ];
        let mods = layout(&sizes, 1024).unwrap();
        let addrs: Vec<u64> = mods.iter().map(|m| m.addr).collect();
        assert_eq!(addrs, [0x5000_0000, 0x5040_0000, 0x5060_0000]);
        let err = layout(&[("big".into(), 300 << 20)], 512)
            .unwrap_err()
            .to_string();
        assert!(err.contains("past the end of RAM"), "{err}");
    }

    #[test]
    fn qemu_command_line_loads_every_module() {
        let mods = layout(&[("dom0".into(), 1), ("manifest".into(), 1)], 1024).unwrap();
        let args = qemu_args(4, 1024, &mods).join(" ");
        assert!(args.starts_with(
            "-M virt,virtualization=on,gic-version=3 -cpu max -smp 4 -m 1024 -nographic -echr 0x14"
        ));
        assert!(args.ends_with(
            "-device loader,file=dom0.bin,addr=0x50000000,force-raw=on -device loader,file=manifest.bin,addr=0x50200000,force-raw=on"
        ));
    }
}
