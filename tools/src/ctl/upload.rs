//! `ctl create` of files the running system was not booted with (`xl create` loads the
//! kernel named in the cfg): each such file is sent to dom0 through the management port in
//! chunks, with a progress bar, and checked there by length and SHA-256. A file identical
//! to a module packed at boot is not sent: dom0 builds from the packed one.

use super::client::Client;
use super::packed::same_bytes;
use crate::guest::progress::Step;
use crate::system::Image;
use anyhow::{bail, Context, Result};
use protocol::manifest::ManifestDomain;
use protocol::mgmt::{Request, Response, UploadOp, UPLOAD_CHUNK};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Chunks sent ahead of their answers.
const WINDOW: usize = 4;
/// Bytes of the file's stem kept in an upload's label (the rest is the hash).
const STEM_BYTES: usize = 12;

/// The label an uploaded file gets: its packed label's start and 12 hex digits of its hash,
/// so equal labels mean equal files (dom0 reuses what it already holds).
pub fn upload_label(label: &str, sha256: &[u8]) -> String {
    let stem: String = label.chars().take(STEM_BYTES).collect();
    let hex: String = sha256.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{stem}@{hex}")
}

/// Points every reference to module `from` in `domain` at `to`.
pub fn relabel(domain: &mut ManifestDomain, from: &str, to: &str) {
    for field in [
        Some(&mut domain.image),
        domain.ramdisk.as_mut(),
        domain.device_tree.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        if field == from {
            *field = to.to_string();
        }
    }
}

/// Sends each file-backed image of `domain` that is not packed in `dir` as it is, and
/// renames the domain's references to the uploaded modules.
pub fn send_new_files(
    c: &mut Client,
    domain: &mut ManifestDomain,
    images: &[(String, Image)],
    dir: &Path,
) -> Result<()> {
    for (label, image) in images {
        let Image::File(path) = image else { continue };
        let packed = dir.join(format!("{label}.bin"));
        if packed.is_file() && same_bytes(path, &packed)? {
            continue;
        }
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        if bytes.is_empty() {
            bail!("{}: the file is empty", path.display());
        }
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let new_label = upload_label(label, &sha256);
        send(c, &new_label, &bytes, sha256, path)?;
        relabel(domain, label, &new_label);
    }
    Ok(())
}

/// One file: Begin, the chunks (unless dom0 has it already), End.
fn send(c: &mut Client, label: &str, bytes: &[u8], sha256: [u8; 32], path: &Path) -> Result<()> {
    let begin = Request::Upload {
        op: UploadOp::Begin {
            label: label.to_string(),
            size: bytes.len() as u64,
            sha256,
        },
    };
    match c.call(&begin)? {
        Response::Upload { have: true } => return Ok(()),
        Response::Upload { have: false } => {}
        other => bail!("unexpected reply from dom0 to an upload: {other:?}"),
    }
    let step = Step::bytes(format!("uploading {}", path.display()), bytes.len() as u64);
    let chunks = bytes
        .chunks(UPLOAD_CHUNK)
        .enumerate()
        .map(|(i, chunk)| Request::Upload {
            op: UploadOp::Chunk {
                offset: (i * UPLOAD_CHUNK) as u64,
                bytes: chunk.to_vec(),
            },
        });
    let sent = c.call_windowed(chunks, WINDOW, |req| {
        if let Request::Upload {
            op: UploadOp::Chunk { bytes, .. },
        } = req
        {
            step.advance(bytes.len() as u64);
        }
    });
    step.done();
    sent.with_context(|| format!("uploading {}", path.display()))?;
    match c.call(&Request::Upload { op: UploadOp::End })? {
        Response::Done => Ok(()),
        other => bail!("unexpected reply from dom0 to an upload: {other:?}"),
    }
}
