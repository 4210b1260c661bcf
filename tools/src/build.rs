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
    for name in IMAGES.iter().chain(&LINUX_PROGRAMS) {
        cmd.args(["-p", name]);
    }
    eprintln!(
        "bulkhead: building {}, {} for {TARGET}",
        IMAGES.join(", "),
        LINUX_PROGRAMS.join(", ")
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
        eprintln!(
            "bulkhead: {} ({} bytes, base {:#x})",
            bin.display(),
            flat.bytes.len(),
            flat.base
        );
        out.push(bin);
    }
    Ok(out)
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
