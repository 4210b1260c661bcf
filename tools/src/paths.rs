//! Where things live: the workspace root, the cross target directory and our outputs under
//! `target/bulkhead/`.

use std::path::PathBuf;

/// The Rust target every bare-metal crate is built for.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// Crates `bulkhead build` builds for the target, each producing an ELF of the same name.
pub const IMAGES: [&str; 6] = [
    "microvisor",
    "dom0",
    "rtos",
    "testguest",
    "blkdom",
    "netdom",
];

/// Domain images a system description may name without a path.
pub const BUILTIN_DOMAINS: [&str; 4] = ["rtos", "testguest", "blkdom", "netdom"];

/// The workspace root (this crate lives in `<root>/tools`).
pub fn workspace_root() -> PathBuf {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tools.parent().map(PathBuf::from).unwrap_or(tools)
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The ELF cargo produced for `name`.
pub fn elf(name: &str) -> PathBuf {
    target_dir().join(TARGET).join("release").join(name)
}

/// `target/bulkhead/`: everything the tools produce.
pub fn out_dir() -> PathBuf {
    target_dir().join("bulkhead")
}

/// Flat binaries made from the ELFs.
pub fn bin_dir() -> PathBuf {
    out_dir().join("bin")
}

/// The packed boot image: modules, manifest, DTB, QEMU command line, U-Boot script.
pub fn image_dir() -> PathBuf {
    out_dir().join("image")
}

/// Console logs of QEMU runs.
pub fn logs_dir() -> PathBuf {
    out_dir().join("logs")
}

/// The system booted by `cargo bulkhead run` without `--system`.
pub fn default_system() -> PathBuf {
    workspace_root().join("systems").join("default.toml")
}
