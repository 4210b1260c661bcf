//! Getting the two Debian packages into the cache: resolve the kernel metapackage, download
//! what `debs/` lacks (one `apt-get update` and retry on failure), and extract each `.deb`
//! once into `extract/<package>/`.

use super::apt::{self, KernelPackage, BUSYBOX};
use super::cache::{is_fresh, temp_sibling, Cache};
use super::progress::Step;
use super::GuestError;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// apt's package lists: `apt-get update` replaces files here, which bumps the directory's
/// mtime, so a resolution recorded after that is still what apt would answer.
const APT_LISTS: &str = "/var/lib/apt/lists";

/// The downloaded packages.
#[derive(Debug, Clone)]
pub struct Debs {
    /// The versioned kernel package.
    pub kernel: KernelPackage,
    /// Its `.deb`.
    pub kernel_deb: PathBuf,
    /// busybox-static's `.deb`.
    pub busybox_deb: PathBuf,
}

/// The newest `<package>_<version>_arm64.deb` in `dir` (any version: a deb the user put there
/// by hand counts, which is how an offline machine is fed).
pub fn cached_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let suffix = format!("_{}.deb", apt::ARCH);
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(&suffix)
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// Makes sure both `.deb` files are in `cache.debs()`, downloading what is missing.
pub fn fetch_debs(cache: &Cache) -> Result<Debs> {
    let dir = cache.debs();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    apt::ensure_foreign_arch()?;
    let mut updated = false;
    let mut kernel = match resolve_kernel(cache)? {
        Some(k) => k,
        None => {
            update_for(apt::KERNEL_META)?;
            updated = true;
            known_kernel(cache)?
        }
    };
    if let Err(e) = download_missing(&dir, &kernel) {
        // Stale lists name files the mirror has dropped: refresh once, re-resolve, retry.
        if updated || !apt::is_root() || apt::apt_get_update().is_err() {
            return Err(e.into());
        }
        let _ = fs::remove_file(memo_path(cache));
        kernel = known_kernel(cache)?;
        download_missing(&dir, &kernel)?;
    }
    let found = |package: &str| {
        cached_deb(&dir, package).ok_or_else(|| GuestError::Download {
            packages: vec![apt::qualified(package)],
            dir: dir.clone(),
        })
    };
    Ok(Debs {
        kernel_deb: found(&kernel.package)?,
        busybox_deb: found(BUSYBOX)?,
        kernel,
    })
}

/// `apt-get update` because apt does not know `package`; when we may not, says so.
fn update_for(package: &str) -> Result<(), GuestError> {
    apt::apt_get_update().map_err(|e| match e {
        GuestError::CommandFailed { hint, .. } => GuestError::UnknownPackage {
            package: apt::qualified(package),
            hint,
        },
        other => other,
    })
}

/// The kernel package as last resolved, if apt's lists have not changed since; else
/// [`apt::resolve_kernel`], recorded. Saves the second or so `apt-cache` takes to load its
/// lists when they have no binary cache (Debian's container images disable it).
fn resolve_kernel(cache: &Cache) -> Result<Option<KernelPackage>> {
    let memo = memo_path(cache);
    if is_fresh(&memo, [Path::new(APT_LISTS)]) {
        let name = fs::read_to_string(&memo).unwrap_or_default();
        if let Some(kernel) = KernelPackage::from_name(name.trim()) {
            return Ok(Some(kernel));
        }
    }
    let _ = fs::remove_file(&memo);
    let kernel = apt::resolve_kernel()?;
    if let Some(k) = &kernel {
        fs::write(&memo, &k.package).with_context(|| format!("writing {}", memo.display()))?;
    }
    Ok(kernel)
}

/// Where [`resolve_kernel`] records its answer.
fn memo_path(cache: &Cache) -> PathBuf {
    cache.debs().join(format!("{}.resolved", apt::KERNEL_META))
}

/// The kernel package, which apt must know by now (after an `apt-get update`).
fn known_kernel(cache: &Cache) -> Result<KernelPackage> {
    resolve_kernel(cache)?.ok_or_else(|| {
        GuestError::UnknownPackage {
            package: apt::qualified(apt::KERNEL_META),
            hint: "check that /etc/apt/sources.list has a Debian `main` suite, then retry".into(),
        }
        .into()
    })
}

/// Downloads whichever of the kernel and busybox `.deb` files `dir` lacks.
fn download_missing(dir: &Path, kernel: &KernelPackage) -> Result<(), GuestError> {
    let missing: Vec<String> = [kernel.package.as_str(), BUSYBOX]
        .into_iter()
        .filter(|p| cached_deb(dir, p).is_none())
        .map(apt::qualified)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt::download(dir, &missing)
}

/// `cache.extract(package)`, extracted from `deb` unless its stamp says it already was. The
/// stamp is written last, so an interrupted extraction is redone; its mtime is when the tree
/// last changed (dpkg-deb keeps the package's own, older, file times).
pub fn extracted(cache: &Cache, package: &str, deb: &Path) -> Result<PathBuf> {
    let dest = cache.extract(package);
    let stamp = stamp_path(&dest);
    let deb_name = deb
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if dest.is_dir() && fs::read_to_string(&stamp).is_ok_and(|s| s == deb_name) {
        return Ok(dest);
    }
    let step = Step::spinner(format!("extracting {deb_name}"));
    let tmp = temp_sibling(&dest);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    apt::extract(deb, &tmp)?;
    let _ = fs::remove_file(&stamp);
    if dest.exists() {
        fs::remove_dir_all(&dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    fs::rename(&tmp, &dest).with_context(|| format!("renaming to {}", dest.display()))?;
    fs::write(&stamp, &deb_name).with_context(|| format!("writing {}", stamp.display()))?;
    step.done();
    Ok(dest)
}

/// `extract/<package>.stamp` beside `extract/<package>/`.
pub fn stamp_path(extracted: &Path) -> PathBuf {
    let mut name = extracted.file_name().unwrap_or_default().to_os_string();
    name.push(".stamp");
    extracted.with_file_name(name)
}
