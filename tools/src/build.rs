//! `bulkhead build`: cross-builds the microvisor and the domains and turns each ELF into a
//! flat binary under `target/bulkhead/bin/`, and builds the Linux guest's own userspace
//! programs ([`LINUX_PROGRAMS`], static ELFs that go into its initramfs as they are).

use crate::paths::{self, IMAGES, TARGET};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Static aarch64 Linux programs (crates of the same name) packed into the Linux guest's
/// initramfs as `/bin/<name>`.
pub const LINUX_PROGRAMS: [&str; 1] = ["cntvct"];

/// Bare guests of ours in the arm64 Linux `Image` format (crates of the same name), run
/// unchanged on Bulkhead and on Xen: built with the images, flattened to
/// `target/bulkhead/bin/<name>.img`.
pub const GUEST_KERNELS: [&str; 1] = ["micro"];

/// The cargo to use: the one that launched us, if any.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds every image and converts them; returns the flat binaries' paths.
pub fn build() -> Result<Vec<PathBuf>> {
    crate::deps::ensure_target()?;
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", TARGET])
        .current_dir(paths::workspace_root());
    for name in IMAGES.iter().chain(&LINUX_PROGRAMS).chain(&GUEST_KERNELS) {
        cmd.args(["-p", name]);
    }
    eprintln!(
        "bulkhead: building {}, {}, {} for {TARGET}",
        IMAGES.join(", "),
        LINUX_PROGRAMS.join(", "),
        GUEST_KERNELS.join(", ")
    );
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build for {TARGET} failed ({status})");
    }
    convert_all()
}

/// Converts the already built ELFs (no cargo run), e.g. from the integration tests.
pub fn convert_all() -> Result<Vec<PathBuf>> {
    let dir = paths::bin_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = Vec::new();
    for name in IMAGES {
        let elf = paths::elf(name);
        if !elf.is_file() {
            bail!(
                "{} does not exist; run `cargo bulkhead build` first",
                elf.display()
            );
        }
        let bin = dir.join(format!("{name}.bin"));
        let flat = crate::elf::convert(&elf, &bin)?;
        if name == "microvisor" {
            check_microvisor(&elf, &bin)?;
        }
        eprintln!(
            "bulkhead: {} ({} bytes, base {:#x})",
            bin.display(),
            flat.bytes.len(),
            flat.base
        );
        out.push(bin);
    }
    for name in GUEST_KERNELS {
        out.push(convert_guest_kernel(name)?);
    }
    Ok(out)
}

/// The microvisor must run wherever a boot loader puts it: a self-relocating ELF, and an
/// `Image` whose header says so (flags bit 3), or `booti` would move it.
fn check_microvisor(elf: &std::path::Path, bin: &std::path::Path) -> Result<()> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    crate::elf::check_self_relocating(&data).with_context(|| format!("{}", elf.display()))?;
    let head = std::fs::read(bin).with_context(|| format!("cannot read {}", bin.display()))?;
    let flags = head
        .get(24..32)
        .filter(|_| head.get(56..60) == Some(b"ARM\x64"))
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    if flags.is_none_or(|f| f & 8 == 0) {
        bail!(
            "{}: no arm64 Image header with flags bit 3 (may be placed anywhere)",
            bin.display()
        );
    }
    Ok(())
}

/// `target/bulkhead/bin/<name>.img`, the flat `Image` of guest kernel `name`.
pub fn guest_kernel(name: &str) -> PathBuf {
    paths::bin_dir().join(format!("{name}.img"))
}

/// Flattens the ELF of guest kernel `name` (one of [`GUEST_KERNELS`]) and checks that it
/// is an `Image` linked at the start of guest RAM, where both hypervisors load it.
fn convert_guest_kernel(name: &str) -> Result<PathBuf> {
    let elf = paths::elf(name);
    if !elf.is_file() {
        bail!(
            "{} does not exist; run `cargo bulkhead build` first",
            elf.display()
        );
    }
    let img = guest_kernel(name);
    let flat = crate::elf::convert(&elf, &img)?;
    let base = protocol::layout::GUEST_RAM_BASE.as_u64();
    if flat.base != base || !crate::system::images::is_linux_image(&img) {
        bail!(
            "{}: not an arm64 Image linked at {base:#x} (base {:#x})",
            elf.display(),
            flat.base
        );
    }
    Ok(img)
}

/// The ELF of the Linux program `name` (one of [`LINUX_PROGRAMS`]). Built here only when it
/// does not exist yet (e.g. `bulkhead fetch` before any build): otherwise, like the images,
/// it is as fresh as the last `bulkhead build`.
pub fn linux_program(name: &str) -> Result<PathBuf> {
    let elf = paths::elf(name);
    if elf.is_file() {
        return Ok(elf);
    }
    crate::deps::ensure_target()?;
    eprintln!("bulkhead: building {name} for {TARGET}");
    let status = cargo()
        .args(["build", "--release", "--target", TARGET, "-p", name])
        .current_dir(paths::workspace_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() || !elf.is_file() {
        bail!("cargo build of {name} for {TARGET} failed ({status})");
    }
    Ok(elf)
}
