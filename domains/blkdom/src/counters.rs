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

/// What `ctl info` reports of them (indirect requests are already counted as reads or
/// writes).
impl From<Counters> for protocol::mgmt::VbdCounters {
    fn from(c: Counters) -> Self {
        Self {
            reads: c.read,
            writes: c.write,
            flushes: c.flush,
            discards: c.discard,
            errors: c.errors,
            sectors_read: c.sectors_read,
            sectors_written: c.sectors_written,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::Counters;
    use protocol::mgmt::VbdCounters;

    #[test]
    fn reported_counters_keep_each_field() {
        let c = Counters {
            read: 1,
            write: 2,
            flush: 3,
            discard: 4,
            indirect: 9,
            errors: 5,
            sectors_read: 6,
            sectors_written: 7,
        };
        let v = VbdCounters::from(c);
        assert_eq!(
            [
                v.reads,
                v.writes,
                v.flushes,
                v.discards,
                v.errors,
                v.sectors_read,
                v.sectors_written
            ],
            [1, 2, 3, 4, 5, 6, 7]
        );
    }
}
