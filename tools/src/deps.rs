//! Host dependencies: QEMU, the bare-metal rustup target and, for the fuzz targets, a C++
//! compiler. Installed when we are root (CI,
//! containers); otherwise we print the exact command and stop.

use crate::paths::TARGET;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The QEMU binary every run uses.
pub const QEMU: &str = "qemu-system-aarch64";

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
