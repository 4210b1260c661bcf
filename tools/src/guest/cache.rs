//! The guest cache: where downloads, extracted packages and built artifacts live, whether an
//! output is still fresh, and writing outputs so that a crash never leaves half a file.
//!
//! Layout under the cache root: `debs/` (apt's downloads), `extract/<package>/` (one
//! `dpkg-deb -x` tree each, with `extract/<package>.stamp` naming the `.deb` it came from) and
//! `linux/` (the kernel `Image` and initramfs we hand to QEMU).

use super::GuestError;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The cache root and its subdirectories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache named by the environment (see [`cache_root`]).
    pub fn from_env() -> Result<Self, GuestError> {
        cache_root(
            std::env::var_os("BULKHEAD_CACHE"),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
        .map(Self::at)
    }

    /// A cache rooted at `root`.
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Downloaded `.deb` files (apt-get download runs here).
    pub fn debs(&self) -> PathBuf {
        self.root.join("debs")
    }

    /// The extracted tree of `package`.
    pub fn extract(&self, package: &str) -> PathBuf {
        self.root.join("extract").join(package)
    }

    /// Built artifacts: `Image-<version>`, `initramfs-<version>-<console>.cpio`.
    pub fn linux(&self) -> PathBuf {
        self.root.join("linux")
    }
}

/// `$BULKHEAD_CACHE`, else `$XDG_CACHE_HOME/bulkhead`, else `$HOME/.cache/bulkhead`. Empty
/// and relative values count as unset, as the XDG spec asks for `XDG_CACHE_HOME`.
pub fn cache_root(
    bulkhead_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, GuestError> {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dir) = absolute(bulkhead_cache) {
        return Ok(dir);
    }
    if let Some(dir) = absolute(xdg_cache_home) {
        return Ok(dir.join("bulkhead"));
    }
    absolute(home)
        .map(|h| h.join(".cache").join("bulkhead"))
        .ok_or(GuestError::NoCacheDir)
}

/// The modification time of `path`, or `None` if it does not exist.
pub fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `output` exists and is at least as new as every input (a missing input makes it
/// stale, so the caller rebuilds and reports the missing input properly).
pub fn is_fresh<'a>(output: &Path, inputs: impl IntoIterator<Item = &'a Path>) -> bool {
    let Some(out) = mtime(output) else {
        return false;
    };
    inputs
        .into_iter()
        .all(|input| mtime(input).is_some_and(|t| t <= out))
}

/// A sibling of `path` private to this process, renamed over `path` once complete.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `path` through `fill`, via a temporary file renamed into place: readers (another
/// `fetch`, QEMU) see either the old file or the whole new one, never a torn one.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = temp_sibling(path);
    let result = (|| {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = BufWriter::new(file);
        fill(&mut out)?;
        out.flush()
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
