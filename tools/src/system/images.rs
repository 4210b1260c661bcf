//! What a domain boots: a built-in Bulkhead domain, Debian's Linux kernel and initramfs
//! (fetched by [`crate::guest`]) or a file, either a Bulkhead flat binary or an arm64 Linux
//! `Image`. The TOML's `image`/`ramdisk` and xl.cfg's `kernel`/`ramdisk` resolve the same
//! names; only a Linux kernel takes an initramfs and reads `cmdline` as its command line.

use crate::paths::BUILTIN_DOMAINS;
use std::path::{Path, PathBuf};

/// Where a domain's image (or initramfs) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// One of [`crate::paths::BUILTIN_DOMAINS`].
    Builtin(String),
    /// Debian's arm64 kernel or the busybox initramfs built for it, fetched when packed.
    Debian(DebianArtifact),
    /// A file on disk: a flat binary, a Linux `Image` or (as a ramdisk) an initramfs.
    File(PathBuf),
}

/// The Linux guest files [`crate::guest::linux_artifacts`] provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebianArtifact {
    /// The raw arm64 `Image` (`"debian-linux"`).
    Kernel,
    /// The newc initramfs with busybox (`"debian-initramfs"`).
    Initramfs,
}

impl DebianArtifact {
    /// Its name in configs, which is also its boot module's label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kernel => "debian-linux",
            Self::Initramfs => "debian-initramfs",
        }
    }
}

/// The command line of a Linux domain whose `cmdline` (or xl's `root`/`extra`) is empty:
/// without `console=` Linux stays silent, and the microvisor's console is Xen's `hvc0`.
pub const LINUX_DEFAULT_CMDLINE: &str = "console=hvc0";

/// The names `image` (xl: `kernel`) accepts instead of a path, for messages.
pub fn image_names() -> String {
    let mut names = BUILTIN_DOMAINS.to_vec();
    names.push(DebianArtifact::Kernel.name());
    names.join(", ")
}

impl Image {
    /// The image a name stands for as `image`/`kernel`, if it is a known name.
    pub fn named(name: &str) -> Option<Self> {
        if BUILTIN_DOMAINS.contains(&name) {
            Some(Self::Builtin(name.into()))
        } else if name == DebianArtifact::Kernel.name() {
            Some(Self::Debian(DebianArtifact::Kernel))
        } else {
            None
        }
    }

    /// The initramfs a name stands for as `ramdisk`, if it is a known name.
    pub fn named_ramdisk(name: &str) -> Option<Self> {
        (name == DebianArtifact::Initramfs.name())
            .then_some(Self::Debian(DebianArtifact::Initramfs))
    }

    /// Whether it is a Linux kernel (reads a file's header).
    pub fn is_linux(&self) -> bool {
        match self {
            Self::Debian(DebianArtifact::Kernel) => true,
            Self::File(path) => is_linux_image(path),
            Self::Builtin(_) | Self::Debian(DebianArtifact::Initramfs) => false,
        }
    }
}

/// Whether `path` starts with an arm64 Linux `Image` header (magic "ARM\x64" at byte 56).
pub fn is_linux_image(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 60];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head[56..60] == *b"ARM\x64")
}

/// Why `image` (written `shown` under `key`: `image` or `kernel`) cannot take a ramdisk, if
/// it cannot: only a Linux kernel knows what to do with an initramfs.
pub(crate) fn ramdisk_problem(image: &Image, key: &str, shown: &str) -> Option<String> {
    let what = match image {
        _ if image.is_linux() => return None,
        Image::Builtin(_) => "a built-in Bulkhead domain",
        Image::Debian(_) => "an initramfs",
        Image::File(_) => "not an arm64 Linux Image (no \"ARM\\x64\" magic at byte 56)",
    };
    Some(format!(
        "only Linux kernels take an initramfs, but {key} {shown:?} is {what}, expected no ramdisk or {key} = \"{}\" or a path to an arm64 Linux Image",
        DebianArtifact::Kernel.name()
    ))
}

/// `cmdline` as the domain gets it: [`LINUX_DEFAULT_CMDLINE`] for a Linux kernel given none.
pub(crate) fn effective_cmdline(image: &Image, cmdline: String) -> String {
    if cmdline.trim().is_empty() && image.is_linux() {
        LINUX_DEFAULT_CMDLINE.into()
    } else {
        cmdline
    }
}
