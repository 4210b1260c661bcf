//! What both PV backends (blkdom, netdom) need to move a frontend's data with
//! `GNTTABOP_copy`: the frontend's segments, the errors a copy reports, and the split of a
//! segment into copies that each stay inside one of our local pages (a grant copy names one
//! local frame). Pure logic, host-tested here once for both.

use super::structs::GrantRef;
use alloc::vec::Vec;

/// Bytes per page on both sides of a grant copy.
const PAGE: usize = 4096;

/// One piece of a frontend's granted page: `len` bytes at `offset` of the page `gref`
/// grants. `offset + len` never exceeds 4096 (the backend validated it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantSeg {
    /// The frontend's grant reference.
    pub gref: GrantRef,
    /// Byte offset within the granted page.
    pub offset: u16,
    /// Bytes to copy.
    pub len: u16,
}

/// A frontend segment and where its bytes are in the local buffer: `buf[at..at + seg.len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The frontend's side.
    pub seg: GrantSeg,
    /// Byte offset in the local buffer.
    pub at: usize,
}

/// Why a grant copy failed (Xen's `GNTST_*` for `GNTTABOP_copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantError {
    /// the grant reference is not valid in the frontend's table (`GNTST_bad_gntref`)
    BadRef,
    /// the frontend domain does not exist or does not grant to us (`GNTST_bad_domain`)
    BadDomain,
    /// the grant is read-only and the copy would write it (`GNTST_permission_denied`)
    PermissionDenied,
    /// the copy failed for another reason (`GNTST_general_error` and the rest)
    Failed,
}

impl GrantError {
    /// The error for a `GNTST_*` status; `None` for `GNTST_okay`.
    pub fn from_gntst(status: i16) -> Option<Self> {
        use super::structs::gntst;
        match status {
            gntst::OKAY => None,
            gntst::BAD_GNTREF => Some(Self::BadRef),
            gntst::BAD_DOMAIN => Some(Self::BadDomain),
            gntst::PERMISSION_DENIED => Some(Self::PermissionDenied),
            _ => Some(Self::Failed),
        }
    }
}

/// One grant copy: `len` bytes between the frontend's page `gref` at `remote_offset` and
/// the local address `local`. Neither side crosses a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyPiece {
    /// The frontend's grant reference.
    pub gref: GrantRef,
    /// Byte offset within the granted page.
    pub remote_offset: u16,
    /// Local (guest-physical = virtual) address.
    pub local: usize,
    /// Bytes.
    pub len: u16,
}

/// Appends the copies for segment `s` whose bytes sit at local address `at`, split where
/// the local side crosses a page.
fn split(s: GrantSeg, at: usize, out: &mut Vec<CopyPiece>) {
    let mut done = 0usize;
    while done < usize::from(s.len) {
        let here = at + done;
        let n = (PAGE - here % PAGE).min(usize::from(s.len) - done);
        out.push(CopyPiece {
            gref: s.gref,
            // Both fit: offset + len <= 4096 for every segment.
            remote_offset: s.offset + done as u16,
            local: here,
            len: n as u16,
        });
        done += n;
    }
}

/// The grant copies for `pieces` placed in a local buffer starting at address `local`.
/// Appends to `out`; empty pieces produce nothing.
pub fn copy_pieces(pieces: &[Placed], local: usize, out: &mut Vec<CopyPiece>) {
    for p in pieces {
        split(p.seg, local + p.at, out);
    }
}

#[cfg(test)]
mod tests;
