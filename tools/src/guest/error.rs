//! The ways fetching or building the Linux guest artifacts can fail, each worded as one line
//! that says what failed and what to run about it.

use std::fmt;
use std::path::PathBuf;

/// A failure of [`super::linux_artifacts`] that the user can act on. I/O errors on our own
/// cache files are not listed here; they reach the user as `anyhow` context chains.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestError {
    /// Neither `BULKHEAD_CACHE`, `XDG_CACHE_HOME` nor `HOME` names a cache directory.
    NoCacheDir,
    /// A console name that cannot be a `/dev` entry (it lands in inittab and a file name).
    BadConsole(String),
    /// A host program we drive could not be started (not installed).
    ToolMissing {
        /// The program, e.g. `dpkg-deb`.
        program: String,
    },
    /// A host command ran and failed.
    CommandFailed {
        /// The command line as the user would type it.
        command: String,
        /// Its exit status, as printed by std.
        status: String,
        /// What to do about it.
        hint: String,
    },
    /// `arm64` is not a dpkg foreign architecture and we may not add it ourselves.
    ForeignArchMissing,
    /// apt knows no such package, even after `apt-get update` (or we could not run it).
    UnknownPackage {
        /// The package, with its `:arm64` qualifier.
        package: String,
        /// What to do about it.
        hint: String,
    },
    /// The metapackage's record names no versioned kernel package.
    NoVersionedKernel {
        /// The metapackage we asked apt about.
        meta: String,
    },
    /// `apt-get download` failed, even after one `apt-get update`.
    Download {
        /// The packages that were missing, with `:arm64`.
        packages: Vec<String>,
        /// Where the `.deb` files are looked for.
        dir: PathBuf,
    },
    /// A file the Debian package should contain is not in the extracted tree.
    MissingFile {
        /// What we looked for.
        what: String,
        /// Where.
        path: PathBuf,
    },
    /// The kernel file is neither an arm64 `Image` nor a gzip-compressed one.
    BadImage {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A kernel module we need is neither loadable nor built in.
    ModuleNotFound {
        /// Module name, e.g. `xen-blkfront`.
        module: String,
        /// The module tree searched.
        dir: PathBuf,
    },
    /// Module dependencies form a cycle (a broken modules.dep).
    ModuleCycle {
        /// The module where the cycle was found.
        module: String,
    },
    /// A module file compressed with a format we do not decompress.
    UnsupportedCompression {
        /// The module file.
        path: PathBuf,
    },
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCacheDir => write!(
                f,
                "no cache directory: set BULKHEAD_CACHE (or XDG_CACHE_HOME or HOME) to an absolute path"
            ),
            Self::BadConsole(c) => write!(
                f,
                "console `{c}` is not a device name like hvc0 or ttyAMA0 (letters, digits, `_`, `-`)"
            ),
            Self::ToolMissing { program } => write!(
                f,
                "could not run `{program}`: the guest fetch needs Debian's dpkg and apt (`apt-get install dpkg apt`)"
            ),
            Self::CommandFailed { command, status, hint } => {
                write!(f, "`{command}` failed ({status}); {hint}")
            }
            Self::ForeignArchMissing => write!(
                f,
                "arm64 is not a dpkg foreign architecture; as root run `dpkg --add-architecture arm64 && apt-get update`, then retry"
            ),
            Self::UnknownPackage { package, hint } => {
                write!(f, "apt knows no package {package}; {hint}")
            }
            Self::NoVersionedKernel { meta } => write!(
                f,
                "`apt-cache show {meta}` names no versioned linux-image-<version> dependency; run `apt-get update` and retry"
            ),
            Self::Download { packages, dir } => write!(
                f,
                "could not download {} with apt-get download (no network?); run `apt-get update` and retry, or put the .debs in {}",
                packages.join(" "),
                dir.display()
            ),
            Self::MissingFile { what, path } => write!(
                f,
                "{what} not found at {} (did the Debian package layout change?)",
                path.display()
            ),
            Self::BadImage { path, reason } => {
                write!(f, "{} is not an arm64 kernel Image: {reason}", path.display())
            }
            Self::ModuleNotFound { module, dir } => write!(
                f,
                "kernel module {module} is neither a file nor built in under {}",
                dir.display()
            ),
            Self::ModuleCycle { module } => {
                write!(f, "kernel module dependencies loop through {module}")
            }
            Self::UnsupportedCompression { path } => write!(
                f,
                "{}: only plain .ko and .ko.xz modules are supported",
                path.display()
            ),
        }
    }
}

impl std::error::Error for GuestError {}
