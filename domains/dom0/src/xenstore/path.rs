//! Node paths: validation, resolution of relative paths, and the parent/child relation.
//!
//! A canonical path is either absolute (`/`, `/a/b`: no empty component, no trailing slash)
//! or a special watch name starting with `@`. Valid characters are ASCII alphanumerics and
//! `-/_@`, so a canonical path is always ASCII.

use super::error::XsError;
use super::quota;
use alloc::format;
use alloc::string::String;
use protocol::xen::ring::XENSTORE_ABS_PATH_MAX;
use protocol::xen::structs::DomId;

/// Special watch path fired when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Special watch path fired when a domain is released.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// `/local/domain/<domid>`, a domain's home; relative paths resolve below it.
pub fn home(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

fn valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// Length of the `/local/domain/<id>/` prefix of `path`, or 0 if it has none (the part of a
/// path that counts against the `path_max` quota is what follows).
fn local_prefix(path: &str) -> usize {
    let Some(rest) = path.strip_prefix("/local/domain/") else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=5).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'/') {
        "/local/domain/".len() + digits + 1
    } else {
        0
    }
}

/// Who resolves a path: the home for relative paths and whether quotas apply.
#[derive(Clone, Copy, Debug)]
pub struct Resolver<'a> {
    /// The caller's home, `/local/domain/<id>`.
    pub home: &'a str,
    /// Limit on the part of the path below a domain home (0 = none; dom0 passes 0).
    pub path_max: usize,
}

impl Resolver<'_> {
    /// Validates `raw` and makes it absolute; `@` names are accepted only if `special`.
    /// Returns the canonical path and whether `raw` was relative.
    pub fn resolve(&self, raw: &[u8], special: bool) -> Result<(String, bool), XsError> {
        if raw.is_empty() || !raw.iter().all(|&b| valid_char(b)) {
            return Err(XsError::Invalid);
        }
        // All bytes are ASCII, so this cannot fail.
        let raw = core::str::from_utf8(raw).map_err(|_| XsError::Invalid)?;
        let relative = !raw.starts_with('/') && !raw.starts_with('@');
        if raw.starts_with('@') && !special {
            return Err(XsError::Invalid);
        }
        let path = if relative {
            format!("{}/{raw}", self.home)
        } else {
            String::from(raw)
        };
        if (path.ends_with('/') && path != "/")
            || path.contains("//")
            || path.len() > XENSTORE_ABS_PATH_MAX
            || quota::exceeds(path.len() - local_prefix(&path), self.path_max)
        {
            return Err(XsError::Invalid);
        }
        Ok((path, relative))
    }
}

/// The parent of a canonical path; `/` for top-level nodes, special names and `/` itself.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a canonical absolute path (empty for `/`).
pub fn basename(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `child` below or equal to `parent`, with `parent` `/` covering every absolute path.
pub fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return child.starts_with('/');
    }
    match child.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `base` joined with a child name.
pub fn join(base: &str, name: &str) -> String {
    if base == "/" {
        format!("/{name}")
    } else {
        format!("{base}/{name}")
    }
}
