//! Host dependencies: QEMU, the bare-metal rustup target, for the U-Boot flow Debian's
//! U-Boot for QEMU, `mkimage` and `mke2fs`, and, for the fuzz targets, a C++ compiler.
//! Installed when we are root (CI, containers); otherwise we print the exact command and
//! stop.

use crate::paths::TARGET;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The QEMU binary every run uses.
pub const QEMU: &str = "qemu-system-aarch64";

/// U-Boot's `mkimage` (Debian's `u-boot-tools`): compiles `boot.cmd` to `boot.scr`.
pub const MKIMAGE: &str = "mkimage";
/// e2fsprogs' `mke2fs`: writes the U-Boot boot disk's file system.
pub const MKE2FS: &str = "mke2fs";
/// Where Debian puts `mke2fs` (not on a normal user's `PATH`).
const MKE2FS_SBIN: &str = "/usr/sbin/mke2fs";

/// The `mke2fs` to run: on `PATH`, else Debian's.
pub fn mke2fs() -> &'static str {
    if on_path(MKE2FS) {
        MKE2FS
    } else {
        MKE2FS_SBIN
    }
}

/// Debian's U-Boot for QEMU's 64-bit virt board (`u-boot-qemu`), run as the firmware by
/// `run --firmware u-boot`.
pub const UBOOT_QEMU_ARM64: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// Whether `prog` is an executable on `PATH`.
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(prog);
            candidate.is_file()
                && std::fs::metadata(&candidate)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

/// Whether this process runs as root (`id -u` is 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a command with inherited stdio; an error if it fails.
fn run_streaming(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Makes sure `qemu-system-aarch64` is installed.
pub fn ensure_qemu() -> Result<()> {
    if on_path(QEMU) {
        return Ok(());
    }
    if !is_root() {
        bail!("{QEMU} not found; install it with: sudo apt-get install -y qemu-system-arm");
    }
    eprintln!("bulkhead: {QEMU} not found, installing qemu-system-arm with apt-get");
    run_streaming(Command::new("apt-get").arg("update"))?;
    run_streaming(
        Command::new("apt-get")
            .args(["install", "-y", "qemu-system-arm"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if !on_path(QEMU) {
        bail!("installed qemu-system-arm but {QEMU} is still not on PATH");
    }
    Ok(())
}

/// A Debian package we may install, and how to tell it is there.
struct Package {
    name: &'static str,
    present: fn() -> bool,
}

/// Installs the `missing` packages with apt-get when root; otherwise an error with the
/// exact command. `why` says what they are for.
fn install(missing: &[&Package], why: &str) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    let names = names.join(" ");
    if !is_root() {
        bail!("{why} needs {names}; install with: sudo apt-get install -y {names}");
    }
    eprintln!("bulkhead: installing {names} with apt-get ({why})");
    run_streaming(Command::new("apt-get").arg("update"))?;
    run_streaming(
        Command::new("apt-get")
            .args(["install", "-y"])
            .args(missing.iter().map(|p| p.name))
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if let Some(p) = missing.iter().find(|p| !(p.present)()) {
        bail!("installed {} but it is still missing", p.name);
    }
    Ok(())
}

const UBOOT_TOOLS: Package = Package {
    name: "u-boot-tools",
    present: || on_path(MKIMAGE),
};
const E2FSPROGS: Package = Package {
    name: "e2fsprogs",
    present: || on_path(MKE2FS) || std::path::Path::new(MKE2FS_SBIN).is_file(),
};
const UBOOT_QEMU: Package = Package {
    name: "u-boot-qemu",
    present: || std::path::Path::new(UBOOT_QEMU_ARM64).is_file(),
};

/// Makes sure `mkimage` is installed (for `boot.scr`).
pub fn ensure_mkimage() -> Result<()> {
    let missing: Vec<&Package> = [&UBOOT_TOOLS]
        .into_iter()
        .filter(|p| !(p.present)())
        .collect();
    install(&missing, "compiling boot.scr")
}

/// Makes sure everything `run --firmware u-boot` needs is installed: Debian's U-Boot for
/// QEMU, `mkimage` and `mke2fs`.
pub fn ensure_uboot() -> Result<()> {
    let missing: Vec<&Package> = [&UBOOT_QEMU, &UBOOT_TOOLS, &E2FSPROGS]
        .into_iter()
        .filter(|p| !(p.present)())
        .collect();
    install(&missing, "booting through U-Boot")
}

/// Makes sure the rustup target for the bare-metal crates is installed.
pub fn ensure_target() -> Result<()> {
    let root = crate::paths::workspace_root();
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(&root)
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        // No rustup (e.g. a distro toolchain): let cargo report a missing target itself.
        _ => return Ok(()),
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        return Ok(());
    }
    eprintln!("bulkhead: installing rustup target {TARGET}");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(&root)
        .status()
        .context("cannot run rustup")?;
    if !status.success() {
        bail!("rustup target add {TARGET} failed; run it yourself: rustup target add {TARGET}");
    }
    Ok(())
}

/// The C++ compilers libFuzzer's sources build with (the `cc` crate tries `$CXX`, then `c++`).
const CXX: [&str; 3] = ["c++", "g++", "clang++"];

/// Makes sure a C++ compiler is installed for libFuzzer (`libfuzzer-sys` compiles its
/// sources). The fuzz targets need nothing else: no nightly toolchain, no `cargo-fuzz`.
pub fn ensure_cxx() -> Result<()> {
    let from_env = std::env::var("CXX").ok().filter(|c| on_path(c));
    if from_env.is_some() || CXX.iter().any(|c| on_path(c)) {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "no C++ compiler (for libFuzzer) found; install one with: sudo apt-get install -y g++"
        );
    }
    eprintln!("bulkhead: no C++ compiler found, installing g++ with apt-get (for libFuzzer)");
    run_streaming(Command::new("apt-get").arg("update"))?;
    run_streaming(
        Command::new("apt-get")
            .args(["install", "-y", "g++"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if !CXX.iter().any(|c| on_path(c)) {
        bail!("installed g++ but no C++ compiler is on PATH");
    }
    Ok(())
}
