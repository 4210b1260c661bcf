//! The guest kernel: Debian's `/boot/vmlinuz-<version>` turned into the raw arm64 `Image` the
//! boot protocol loads. Bookworm's signed arm64 kernel ships it uncompressed (an EFI-stub
//! Image with the signature appended), older Debian kernels gzipped it; both are accepted,
//! and the header is checked either way.

use super::cache::{is_fresh, write_atomically};
use super::progress::Step;
use super::GuestError;
use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// `ARM\x64`, the arm64 Image header magic (Documentation/arch/arm64/booting.rst).
pub const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";

/// Offset of [`IMAGE_MAGIC`] in the 64-byte Image header.
pub const IMAGE_MAGIC_OFFSET: usize = 56;

/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Checks the arm64 Image header at the start of `bytes`; the error says what was found.
pub fn check_image_header(bytes: &[u8]) -> Result<(), String> {
    match bytes.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + IMAGE_MAGIC.len()) {
        None => Err(format!(
            "only {} bytes, shorter than the 64-byte header",
            bytes.len()
        )),
        Some(m) if m == IMAGE_MAGIC => Ok(()),
        Some(m) => Err(format!(
            "bytes {m:02x?} at offset {IMAGE_MAGIC_OFFSET}, expected {IMAGE_MAGIC:02x?} (`ARM\\x64`)"
        )),
    }
}

/// Whether `bytes` start like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// `vmlinuz` as a raw Image: decompressed if gzip, else as is; either way header-checked.
pub fn raw_image(vmlinuz: &Path) -> Result<Vec<u8>> {
    let file = File::open(vmlinuz).with_context(|| format!("opening {}", vmlinuz.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut input = BufReader::new(file);
    let gzip = is_gzip(input.fill_buf()?);
    let verb = if gzip { "decompressing" } else { "copying" };
    let step = Step::bytes(format!("{verb} {}", vmlinuz.display()), size);
    let mut image = Vec::new();
    let read = if gzip {
        MultiGzDecoder::new(step.read(&mut input)).read_to_end(&mut image)
    } else {
        step.read(&mut input).read_to_end(&mut image)
    };
    step.done();
    read.with_context(|| format!("{verb} {}", vmlinuz.display()))?;
    check_image_header(&image).map_err(|reason| GuestError::BadImage {
        path: vmlinuz.to_path_buf(),
        reason,
    })?;
    Ok(image)
}

/// `linux/Image-<version>` from the extracted kernel package, rebuilt only when older than
/// its inputs (the vmlinuz and the extraction stamp).
pub fn image(tree: &Path, extract_stamp: &Path, version: &str, out_dir: &Path) -> Result<PathBuf> {
    let vmlinuz = tree.join("boot").join(format!("vmlinuz-{version}"));
    if !vmlinuz.is_file() {
        return Err(GuestError::MissingFile {
            what: "the kernel".into(),
            path: vmlinuz,
        }
        .into());
    }
    let out = out_dir.join(format!("Image-{version}"));
    if is_fresh(&out, [vmlinuz.as_path(), extract_stamp]) {
        return Ok(out);
    }
    let image = raw_image(&vmlinuz)?;
    write_atomically(&out, |w| {
        io::Write::write_all(w, &image).with_context(|| format!("writing {}", out.display()))
    })?;
    Ok(out)
}
