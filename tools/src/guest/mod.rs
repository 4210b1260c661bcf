//! The stock Debian Linux guest: Debian's own arm64 kernel and busybox, fetched with apt and
//! turned into a raw `Image` and a newc initramfs that QEMU and the microvisor can load. The
//! initramfs also holds our static `cntvct` ([`crate::build::linux_program`]; cargo runs
//! only if its ELF is missing).
//!
//! Everything lands in the cache ([`cache`]): `debs/`, `extract/<package>/`, `linux/`. A call
//! whose outputs are fresh runs `dpkg --print-foreign-architectures` (and `apt-cache` only if
//! apt's lists changed since the last call) and stats files: no network, nothing rebuilt. Outputs are written to a temporary name and renamed, so
//! concurrent calls and interrupted ones never leave a torn file.

pub mod apt;
pub mod cache;
pub mod cpio;
mod error;
pub mod fetch;
pub mod initramfs;
pub mod kernel;
pub mod modules;
pub(crate) mod progress;
#[cfg(test)]
mod tests;

pub use error::GuestError;
pub use initramfs::DEFAULT_CONSOLE;

use anyhow::Result;
use std::path::PathBuf;

/// The Linux guest's boot files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxArtifacts {
    /// Raw (uncompressed) arm64 `Image`, header checked.
    pub image: PathBuf,
    /// newc cpio initramfs, uncompressed.
    pub initramfs: PathBuf,
    /// The kernel's `uname -r`, e.g. `6.1.0-28-arm64`.
    pub kernel_version: String,
}

/// The artifacts for a Bulkhead guest (shell on [`DEFAULT_CONSOLE`], Xen's `hvc0`), fetched
/// and built as needed.
pub fn linux_artifacts() -> Result<LinuxArtifacts> {
    linux_artifacts_for_console(DEFAULT_CONSOLE)
}

/// The artifacts with the shell on `/dev/<console>` (e.g. `ttyAMA0` for a native boot); the
/// kernel `Image` is shared, the initramfs is one per console.
pub fn linux_artifacts_for_console(console: &str) -> Result<LinuxArtifacts> {
    initramfs::check_console(console)?;
    let cache = cache::Cache::from_env()?;
    let debs = fetch::fetch_debs(&cache)?;
    let version = &debs.kernel.version;
    let kernel_tree = fetch::extracted(&cache, &debs.kernel.package, &debs.kernel_deb)?;
    let busybox_tree = fetch::extracted(&cache, apt::BUSYBOX, &debs.busybox_deb)?;
    let kernel_stamp = fetch::stamp_path(&kernel_tree);
    let busybox_stamp = fetch::stamp_path(&busybox_tree);
    let image = kernel::image(&kernel_tree, &kernel_stamp, version, &cache.linux())?;
    let cntvct = crate::build::linux_program("cntvct")?;
    let initramfs = initramfs::build(
        &kernel_tree,
        &busybox_tree,
        &cntvct,
        &[&kernel_stamp, &busybox_stamp],
        version,
        console,
        &cache.linux(),
    )?;
    Ok(LinuxArtifacts {
        image,
        initramfs,
        kernel_version: version.clone(),
    })
}
