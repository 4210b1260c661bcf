//! xl disk specifications (`disk = ['…']`), as Xen's `docs/misc/xl-disk-configuration.txt`
//! specifies them: comma-separated `key=value` parameters, flags and positional
//! parameters (target, format, vdev, access, in that order), so that
//! `/srv/disk.img,raw,xvda,rw` and `format=raw, vdev=xvda, access=rw, target=/srv/disk.img`
//! mean the same. `target=` takes the rest of the spec, commas included.
//!
//! Bulkhead serves raw images through a block driver domain (`backend`, default
//! [`DEFAULT_BACKEND`]); options that need something else (other formats, CD-ROMs, hotplug
//! scripts, QEMU's or tapdisk's backends, COLO) are errors, never silently dropped. This
//! module reads the text only; the target file is checked where the spec is used.

use super::vdev;

/// The block backend domain a spec without `backend=` names.
pub const DEFAULT_BACKEND: &str = "blkdom";

/// One disk line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// `target` as written (deprecated `phy:`/`file:`-style prefixes removed).
    pub target: String,
    /// `vdev` as written, e.g. `xvda`.
    pub vdev: String,
    /// Its Xen vbd number ([`vdev::devid`]).
    pub devid: u32,
    /// `access=ro` (or `r`).
    pub read_only: bool,
    /// `backend`, or [`DEFAULT_BACKEND`].
    pub backend: String,
    /// Whether the backend may offer discard (`discard`, the default, or `no-discard`).
    pub discard: bool,
}

/// The positional parameters, in the order bare values fill them.
const POSITIONAL: [&str; 4] = ["target", "format", "vdev", "access"];
/// Deprecated target prefixes xl strips and ignores.
const IGNORED_PREFIXES: [&str; 6] = ["tapdisk", "tap2", "aio", "ioemu", "file", "phy"];
const FORMATS: &str = "expected format=raw (convert an image with `qemu-img convert -O raw`)";

/// Reads `spec`; an error says what is wrong with it and what is expected.
pub fn parse(spec: &str) -> Result<DiskSpec, String> {
    let mut values: [Option<String>; 4] = Default::default();
    let mut backend: Option<String> = None;
    let mut discard = true;
    for param in params(spec) {
        if let Some((key, value)) = param.split_once('=') {
            let key = key.trim_end();
            if let Some(i) = POSITIONAL.iter().position(|p| *p == key) {
                // An empty positional target may still be given as `target=` (Xen allows it).
                if values[i]
                    .as_deref()
                    .is_some_and(|v| !(key == "target" && v.is_empty()))
                {
                    return Err(twice(spec, key));
                }
                values[i] = Some(value.to_string());
                continue;
            }
            match key {
                "backend" => {
                    if backend.is_some() {
                        return Err(twice(spec, key));
                    }
                    backend = Some(value.trim().to_string());
                }
                "devtype" => match value.trim() {
                    "disk" | "" => {}
                    "cdrom" => return Err(cdrom(spec, "devtype=cdrom")),
                    v => return Err(format!("{}: `devtype={v}` is not a device type, expected devtype=disk", quote(spec))),
                },
                "backendtype" => match value.trim() {
                    // The kernel-blkback-like backend: what a driver domain serving raw
                    // images is.
                    "phy" | "" => {}
                    v @ ("qdisk" | "tap") => return Err(format!("{}: `backendtype={v}` is not supported (Bulkhead's block backend is the driver domain named by `backend`), expected no backendtype or backendtype=phy", quote(spec))),
                    v => return Err(format!("{}: `backendtype={v}` is not a backend type, expected no backendtype or backendtype=phy", quote(spec))),
                },
                "script" => return Err(format!("{}: `script=` is not supported (there are no hotplug scripts: the target is a host file the tools attach), expected a plain target file", quote(spec))),
                "colo-host" | "colo-port" | "colo-export" | "active-disk" | "hidden-disk" => {
                    return Err(colo(spec, key))
                }
                _ => return Err(format!("{}: `{key}` is not a disk parameter, expected target, format, vdev, access, devtype, backend or backendtype", quote(spec))),
            }
            continue;
        }
        match param.trim_end() {
            "discard" => discard = true,
            "no-discard" => discard = false,
            "cdrom" => return Err(cdrom(spec, "cdrom")),
            "colo" => return Err(colo(spec, "colo")),
            "direct-io-safe" => return Err(format!("{}: `direct-io-safe` is not supported (it tunes QEMU's Xen backend, which Bulkhead does not have), expected it removed", quote(spec))),
            word => match values.iter().position(Option::is_none) {
                Some(0) => {
                    let (target, prefixed, format) = strip_prefixes(spec, word)?;
                    values[0] = Some(target);
                    // xend's `[<format>:]<target>,<vdev>,<access>`: after a prefix, the next
                    // positional parameter is the vdev.
                    if prefixed && values[1].is_none() {
                        values[1] = Some(format.unwrap_or_default());
                    }
                }
                Some(i) => values[i] = Some(word.to_string()),
                // Empty parameters past the last positional (a trailing comma) say nothing.
                None if word.is_empty() => {}
                None => return Err(format!("{}: too many positional parameters at {word:?}, expected at most target, format, vdev, access", quote(spec))),
            },
        }
    }
    let [target, format, vdev_text, access] = values.map(|v| v.unwrap_or_default());
    match format.trim() {
        "raw" | "" => {}
        f @ ("qcow" | "qcow2" | "vhd" | "qed") => {
            return Err(format!(
                "{}: `format={f}` is not supported, {FORMATS}",
                quote(spec)
            ))
        }
        f => {
            return Err(format!(
                "{}: `format={f}` is not an image format, {FORMATS}",
                quote(spec)
            ))
        }
    }
    let vdev_text = vdev_text.trim();
    // xend's `hdc:cdrom` spelling of a device type.
    let vdev_name = match vdev_text.split_once(':') {
        Some((_, "cdrom")) => return Err(cdrom(spec, &format!("vdev={vdev_text}"))),
        Some((name, "disk")) => name,
        Some(_) => {
            return Err(format!(
                "{}: {}",
                quote(spec),
                vdev::devid(vdev_text).unwrap_err()
            ))
        }
        None => vdev_text,
    };
    if vdev_name.is_empty() {
        return Err(format!("{}: no `vdev`, expected the guest's device name such as xvda (third positional parameter or vdev=)", quote(spec)));
    }
    let devid = vdev::devid(vdev_name).map_err(|e| format!("{}: {e}", quote(spec)))?;
    let read_only = match access.trim() {
        "rw" | "w" | "" => false,
        "ro" | "r" => true,
        a => {
            return Err(format!(
                "{}: `access={a}` is not an access mode, expected rw, w, ro or r",
                quote(spec)
            ))
        }
    };
    if target.is_empty() {
        return Err(format!("{}: no `target`, expected the path of a raw disk image (first positional parameter or target=)", quote(spec)));
    }
    let backend = backend
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| DEFAULT_BACKEND.into());
    if !crate::system::valid_name(&backend) {
        return Err(format!("{}: `backend={backend}` is not a domain name, expected the name of the block backend domain (default {DEFAULT_BACKEND})", quote(spec)));
    }
    Ok(DiskSpec {
        target,
        vdev: vdev_name.to_string(),
        devid,
        read_only,
        backend,
        discard,
    })
}

/// The parameters of `spec`: comma-separated, leading whitespace dropped; `target=` takes
/// the rest, commas and trailing whitespace included.
fn params(spec: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = spec;
    loop {
        let t = rest.trim_start();
        if t.starts_with("target=") {
            out.push(t);
            return out;
        }
        match t.split_once(',') {
            Some((param, tail)) => {
                out.push(param);
                rest = tail;
            }
            None => {
                out.push(t);
                return out;
            }
        }
    }
}

/// The spec, quoted, to start a message with.
fn quote(spec: &str) -> String {
    format!("disk {spec:?}")
}

fn twice(spec: &str, key: &str) -> String {
    format!(
        "{}: `{key}` is given twice, expected each parameter at most once (positionally or as {key}=)",
        quote(spec)
    )
}

fn cdrom(spec: &str, what: &str) -> String {
    format!(
        "{}: `{what}` is not supported (there are no virtual CD-ROM drives), expected a disk (no devtype or devtype=disk)",
        quote(spec)
    )
}

fn colo(spec: &str, what: &str) -> String {
    format!(
        "{}: `{what}` is not supported (there is no COLO replication), expected it removed",
        quote(spec)
    )
}

/// Removes xend's deprecated prefixes from a positional target (`phy:`, `file:`, `raw:`,
/// ...): ignored ones go, a format prefix is returned, a script prefix is an error. A
/// target whose text before `:` is no known prefix keeps its colon. Returns the target,
/// whether it had a prefix, and the format a prefix gave.
fn strip_prefixes(spec: &str, target: &str) -> Result<(String, bool, Option<String>), String> {
    let mut t = target;
    let mut format = None;
    while let Some((prefix, rest)) = t.split_once(':') {
        match prefix {
            p if IGNORED_PREFIXES.contains(&p) || p == "tap" => {}
            p @ ("raw" | "qcow" | "qcow2" | "vhd" | "qed") => format = Some(p.to_string()),
            p @ ("iscsi" | "nbd" | "enbd" | "drbd") => {
                return Err(format!("{}: `{p}:` names a hotplug script, which is not supported, expected the path of a raw disk image", quote(spec)))
            }
            _ => break,
        }
        t = rest;
    }
    Ok((t.to_string(), t.len() != target.len(), format))
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
