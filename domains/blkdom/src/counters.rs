//! Per-vbd request counters, as `ctl info blkdom` reports them.

use crate::request::{Kind, Segments};
use protocol::xen::blkif::BlkifSegment;

/// Per-vbd request counters (for `ctl info blkdom`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Read requests performed (direct and indirect).
    pub read: u64,
    /// Write requests performed (including flush/barrier requests that carry data).
    pub write: u64,
    /// Flush and barrier requests.
    pub flush: u64,
    /// Discard requests.
    pub discard: u64,
    /// Indirect requests (also counted as read or write).
    pub indirect: u64,
    /// Requests answered with an error status.
    pub errors: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Sectors written.
    pub sectors_written: u64,
}

/// Counts a performed request.
pub(crate) fn count(c: &mut Counters, kind: Kind, segs: &[BlkifSegment]) {
    let sectors: u64 = segs
        .iter()
        .map(|s| u64::from(s.last_sect - s.first_sect) + 1)
        .sum();
    let indirect = |s: Segments| matches!(s, Segments::Indirect { .. });
    match kind {
        Kind::Read { segs: s, .. } => {
            c.read += 1;
            c.indirect += u64::from(indirect(s));
            c.sectors_read += sectors;
        }
        Kind::Write {
            segs: s,
            flush_before,
            ..
        } => {
            c.write += 1;
            c.flush += u64::from(flush_before);
            c.indirect += u64::from(indirect(s));
            c.sectors_written += sectors;
        }
        Kind::Flush => c.flush += 1,
        Kind::Discard { .. } => c.discard += 1,
    }
}
