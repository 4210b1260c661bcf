//! Whether a file named in a `ctl create` xl.cfg is the module packed at boot under the
//! label the tools derive from its name: compared byte for byte, so a different file with
//! the same name is uploaded (`upload`) instead of silently booting the packed one.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Bytes compared at a time.
const CHUNK: usize = 64 * 1024;

/// Whether files `a` and `b` hold the same bytes (lengths first, then content).
pub(super) fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
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
