//! Debian's own tools, driven for arm64 packages on an x86-64 (or any) Debian host: the
//! foreign-architecture check, resolving the kernel metapackage to its versioned package,
//! `apt-get download` and `dpkg-deb -x`. The parsers of their output are pure functions.

use super::GuestError;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The Debian architecture of the guest.
pub const ARCH: &str = "arm64";

/// The metapackage that always depends on the current arm64 kernel.
pub const KERNEL_META: &str = "linux-image-arm64";

/// The statically linked busybox (no libc needed in the initramfs).
pub const BUSYBOX: &str = "busybox-static";

/// The versioned kernel package the metapackage points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPackage {
    /// e.g. `linux-image-6.1.0-28-arm64`.
    pub package: String,
    /// `uname -r` of that kernel, e.g. `6.1.0-28-arm64`.
    pub version: String,
}

impl KernelPackage {
    /// The package `linux-image-<version>[-unsigned]`, if `name` is one (a digit follows the
    /// prefix, which rules out the metapackage `linux-image-arm64`).
    pub fn from_name(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("linux-image-")?;
        rest.starts_with(|c: char| c.is_ascii_digit())
            .then(|| Self {
                package: name.to_owned(),
                version: rest.trim_end_matches("-unsigned").to_owned(),
            })
    }
}

/// Finds the versioned kernel package in `apt-cache show` (`Depends: linux-image-6.1.0-28-arm64
/// (= 6.1.119-1)`) or `apt-cache depends` (`  Depends: linux-image-6.1.0-28-arm64:arm64`)
/// output: the first dependency named `linux-image-<digit>…`. A `-unsigned` variant is
/// accepted; the version is the name without prefix and that suffix.
pub fn versioned_kernel(apt_output: &str) -> Option<KernelPackage> {
    apt_output
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('|');
            line.strip_prefix("Depends:")
                .or_else(|| line.strip_prefix("Pre-Depends:"))
                .or_else(|| line.strip_prefix("PreDepends:"))
        })
        .flat_map(|deps| deps.split([',', '|']))
        .filter_map(|dep| {
            let name = dep.split_whitespace().next()?;
            KernelPackage::from_name(name.split(':').next()?.trim_matches(['<', '>']))
        })
        .next()
}

/// Whether `dpkg --print-foreign-architectures` output lists `arch`.
pub fn lists_arch(dpkg_output: &str, arch: &str) -> bool {
    dpkg_output.split_whitespace().any(|a| a == arch)
}

/// Whether we run as root (the owner of `/proc/self` is our effective uid).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `package:arm64`.
pub fn qualified(package: &str) -> String {
    format!("{package}:{ARCH}")
}

/// Runs a command with our stdio inherited (apt's progress goes straight to the user) and
/// turns a non-zero exit into [`GuestError::CommandFailed`] carrying `hint`.
pub fn run(program: &str, args: &[&str], dir: Option<&Path>, hint: &str) -> Result<(), GuestError> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let status = cmd.status().map_err(|_| GuestError::ToolMissing {
        program: program.to_owned(),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(GuestError::CommandFailed {
            command: format!("{program} {}", args.join(" ")),
            status: status.to_string(),
            hint: hint.to_owned(),
        })
    }
}

/// Runs a query command and returns its stdout, or `None` if it exited non-zero (apt-cache
/// does for an unknown package). Its stderr is dropped: the caller words the error.
pub fn query(program: &str, args: &[&str]) -> Result<Option<String>, GuestError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|_| GuestError::ToolMissing {
            program: program.to_owned(),
        })?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Makes sure dpkg accepts arm64 packages, adding the architecture (and fetching its package
/// lists) when we are root.
pub fn ensure_foreign_arch() -> Result<(), GuestError> {
    let archs = query("dpkg", &["--print-foreign-architectures"])?.unwrap_or_default();
    if lists_arch(&archs, ARCH) {
        return Ok(());
    }
    if !is_root() {
        return Err(GuestError::ForeignArchMissing);
    }
    eprintln!("bulkhead: adding arm64 as a dpkg foreign architecture");
    run(
        "dpkg",
        &["--add-architecture", ARCH],
        None,
        "run `dpkg --add-architecture arm64` by hand",
    )?;
    apt_get_update()
}

/// `apt-get update` (root only; otherwise an error saying to run it).
pub fn apt_get_update() -> Result<(), GuestError> {
    if !is_root() {
        return Err(GuestError::CommandFailed {
            command: "apt-get update".into(),
            status: "not root".into(),
            hint: "run `sudo apt-get update` and retry".into(),
        });
    }
    run(
        "apt-get",
        &["update"],
        None,
        "check the network and /etc/apt/sources.list, then retry",
    )
}

/// The versioned kernel package apt's current lists name, or `None` if apt does not know the
/// metapackage (its lists lack arm64 until `apt-get update`).
pub fn resolve_kernel() -> Result<Option<KernelPackage>, GuestError> {
    let meta = qualified(KERNEL_META);
    let Some(record) = query("apt-cache", &["show", "--no-all-versions", &meta])? else {
        return Ok(None);
    };
    versioned_kernel(&record)
        .map(Some)
        .ok_or(GuestError::NoVersionedKernel { meta })
}

/// `apt-get download` of `packages` (already `:arm64`-qualified) into `dir`.
pub fn download(dir: &Path, packages: &[String]) -> Result<(), GuestError> {
    let mut args: Vec<&str> = Vec::new();
    if is_root() {
        // apt drops to `_apt` for downloads and warns when that user cannot write `dir`
        // (under root's home it cannot); it then downloads as root anyway.
        args.extend(["-o", "APT::Sandbox::User=root"]);
    }
    args.push("download");
    args.extend(packages.iter().map(String::as_str));
    run("apt-get", &args, Some(dir), "").map_err(|e| match e {
        GuestError::CommandFailed { .. } => GuestError::Download {
            packages: packages.to_vec(),
            dir: dir.to_path_buf(),
        },
        other => other,
    })
}

/// `dpkg-deb -x deb dest`.
pub fn extract(deb: &Path, dest: &Path) -> Result<(), GuestError> {
    let (deb, dest) = (deb.to_string_lossy(), dest.to_string_lossy());
    run(
        "dpkg-deb",
        &["-x", &deb, &dest],
        None,
        "the .deb may be truncated: delete it and retry",
    )
}
