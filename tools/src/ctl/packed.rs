//! What `ctl create` may boot: dom0 builds a new domain from a boot module, found by the
//! label the tools derive from the kernel's (or ramdisk's) file name. A file in the xl.cfg
//! is therefore compared, byte for byte, with the module packed under that label in the
//! running system's image directory; a different file with the same name is refused
//! instead of silently booting the packed one, and a file that was never packed gets an
//! error that says so and what to do.

use crate::system::Image;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Bytes compared at a time.
const CHUNK: usize = 64 * 1024;

/// Checks every file-backed image of a `ctl create` (label, image) against the modules
/// packed in `dir`; `cfg` names the xl.cfg for the advice. Built-in and Debian images are
/// packed by name and need no check.
pub fn check_packed(images: &[(String, Image)], dir: &Path, cfg: &Path) -> Result<()> {
    for (label, image) in images {
        let Image::File(path) = image else { continue };
        let packed = dir.join(format!("{label}.bin"));
        let advice = format!(
            "ctl create cannot load new files into a running system yet; boot it with \
             `cargo bulkhead run --domain {}`",
            cfg.display()
        );
        if !packed.is_file() {
            bail!(
                "{}: not a boot module of the running system (nothing is packed as \"{label}\" \
                 in {}): {advice}",
                path.display(),
                dir.display()
            );
        }
        if !same_bytes(path, &packed)? {
            bail!(
                "{}: differs from the boot module \"{label}\" the running system was packed \
                 with ({}), which is what dom0 would boot: {advice}",
                path.display(),
                packed.display()
            );
        }
    }
    Ok(())
}

/// Whether files `a` and `b` hold the same bytes (lengths first, then content).
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| File::open(p).with_context(|| format!("{}", p.display()));
    let (fa, fb) = (open(a)?, open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = read_full(&mut ra, &mut ba)?;
        let m = read_full(&mut rb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buf` as far as the file allows; returns how much it got (0 at the end).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
