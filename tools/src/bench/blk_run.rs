//! Runs `bench blk`: the Linux guest beside blkdom under the microvisor (the script typed
//! through dom0's management port, as `ctl console` would), then the same kernel natively
//! with a virtio-blk disk (the script written to QEMU's stdin, the PL011), each with a fresh
//! raw image, and prints and writes the report of [`super::blk`].

use super::blk::{self, BlkReport, Raw, BULKHEAD_DEV, DISK_MIB, NATIVE_DEV, TAG};
use super::console::{boot_typing, steps_for};
use crate::ctl::default_socket;
use crate::markers::Expect;
use crate::qemu::{self, RunOptions};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The system booted under the microvisor: dom0, blkdom and the Linux guest with one disk.
pub const SYSTEM: &str = "tests/systems/bench_blk.toml";
/// The guest's disk image, as [`SYSTEM`] names it (relative to the file's folder).
pub const DISK: &str = "../../target/bulkhead/bench/blk-bulkhead.img";
/// The Linux domain's name in [`SYSTEM`].
pub const DOMAIN: &str = "linux";
/// The native run's disk image, in `target/bulkhead/bench/`.
pub const NATIVE_DISK: &str = "blk-native.img";
/// Hard limit per boot, benchmark included.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// What makes either run fail early.
const FORBIDDEN: &str = r"(Kernel panic|BUG:|Oops|blk_update_request|I/O error)";

/// A fresh, all-zero (sparse) raw image of [`DISK_MIB`] MiB at `path`.
fn fresh_disk(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.set_len(DISK_MIB << 20)
        .with_context(|| format!("cannot size {}", path.display()))
}

fn expect(prefix: &str) -> Result<Expect> {
    Expect::new()
        .then(&format!("{prefix}{}", blk::result_re()))?
        .forbid(&format!("{prefix}.*{FORBIDDEN}"))
}

/// A benchmark run whose idle waits for the disk cost the host's time (see [`blk`]'s doc).
fn options(system: PathBuf, expect: Expect, build: bool) -> RunOptions {
    RunOptions {
        icount_io: true,
        ..RunOptions::bench(system, expect, TIMEOUT, build)
    }
}

/// The run under the microvisor.
fn bulkhead(build: bool) -> Result<Raw> {
    let system = crate::paths::workspace_root().join(SYSTEM);
    let disk = system.parent().unwrap_or(Path::new(".")).join(DISK);
    fresh_disk(&disk)?;
    let _ = std::fs::remove_file(default_socket());
    let opts = options(system, expect(&format!(r"\[{DOMAIN}\] "))?, build);
    let steps = steps_for(DOMAIN, &blk::script(BULKHEAD_DEV));
    let out = boot_typing("Linux on blkdom under the microvisor", &opts, &steps)?;
    blk::parse(&out.log).with_context(|| format!("no {TAG} result in {}", out.log_path.display()))
}

/// The native run: the script goes to QEMU's stdin, each line on its trigger.
fn native() -> Result<Raw> {
    let linux = crate::guest::linux_artifacts_for_console(super::boot::NATIVE_CONSOLE)
        .context("cannot get the native Linux kernel and initramfs")?;
    let disk = crate::paths::out_dir().join("bench").join(NATIVE_DISK);
    fresh_disk(&disk)?;
    let mut e = expect("")?;
    for (trigger, line) in blk::script(NATIVE_DEV) {
        e = e.send_when(&regex::escape(&trigger), line.as_bytes())?;
    }
    let opts = options(PathBuf::from("blk_native"), e, false);
    // As the microvisor's QEMU command line attaches a disk; QEMU doubles a comma in a value.
    let drive = format!(
        "file={},if=none,format=raw,id=bkd0,discard=unmap",
        disk.display().to_string().replace(',', ",,")
    );
    let out = super::boot_with_spinner("Linux native on virtio-blk", || {
        qemu::run_native_linux_with(
            &linux.image,
            &linux.initramfs,
            super::boot::NATIVE_CMDLINE,
            1,
            super::boot::NATIVE_MEM_MIB,
            &[
                "-drive".into(),
                drive,
                "-device".into(),
                "virtio-blk-device,drive=bkd0,serial=bkd0".into(),
            ],
            &opts,
        )
    })?;
    blk::parse(&out.log).with_context(|| format!("no {TAG} result in {}", out.log_path.display()))
}

/// Runs both, prints the table and writes `target/bulkhead/bench/blk.json`.
pub fn bench(build: bool) -> Result<BlkReport> {
    let b = bulkhead(build)?;
    let n = native()?;
    let r = blk::report(&b, &n)?;
    println!("{}", blk::table(&r));
    super::write_json("blk", &r)?;
    Ok(r)
}
