//! The most urgent interrupts waiting for a vCPU's list registers, gathered by
//! [`super::VgicDomain::flush_lrs`] without a buffer per INTID or a sort.
//!
//! A flush places at most one candidate per LR (a slot refilled by eviction then holds a
//! more urgent interrupt than every later candidate), and the architecture has at most
//! [`MAX_PLACED`] LRs, so only that many of the most urgent are kept, in order, with the
//! count of all that were offered (more than were placed means the caller must ask for a
//! refill).

/// Most LRs the architecture has, so most interrupts one flush can place.
pub(crate) const MAX_PLACED: usize = 16;

/// The most urgent candidates offered, ascending by (priority, INTID), and how many were
/// offered in all.
pub(crate) struct Candidates {
    best: [(u8, u32); MAX_PLACED],
    len: usize,
    /// Every candidate offered, kept or not.
    pub total: usize,
}

impl Candidates {
    /// None yet.
    pub fn new() -> Self {
        Self {
            best: [(0, 0); MAX_PLACED],
            len: 0,
            total: 0,
        }
    }

    /// Counts `(priority, intid)` and keeps it if it is among the [`MAX_PLACED`] most urgent
    /// so far (lower priority value, then lower INTID, first).
    pub fn offer(&mut self, priority: u8, intid: u32) {
        self.total += 1;
        let key = (priority, intid);
        let at = self.best[..self.len].partition_point(|&k| k < key);
        if at >= MAX_PLACED {
            return;
        }
        let end = (self.len + 1).min(MAX_PLACED);
        if at + 1 < end {
            self.best.copy_within(at..end - 1, at + 1);
        }
        self.best[at] = key;
        self.len = end;
    }

    /// The kept ones, most urgent first.
    pub fn best(&self) -> &[(u8, u32)] {
        &self.best[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the order of offers, the kept ones are the most urgent, sorted, and the
    /// count is of all of them: checked against sorting everything.
    #[test]
    fn keeps_the_most_urgent_in_order() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for n in [0usize, 1, 2, 15, 16, 17, 40, 96] {
            let mut all = alloc::vec::Vec::new();
            let mut c = Candidates::new();
            for intid in 0..n as u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Few priorities, so ties on priority are ordered by INTID.
                let p = (x % 5) as u8 * 0x20;
                c.offer(p, intid);
                all.push((p, intid));
            }
            all.sort_unstable();
            all.truncate(MAX_PLACED);
            assert_eq!(c.best(), &all[..], "{n} offered");
            assert_eq!(c.total, n);
        }
    }

    #[test]
    fn a_later_more_urgent_offer_displaces_the_least_urgent() {
        let mut c = Candidates::new();
        for intid in 32..32 + MAX_PLACED as u32 {
            c.offer(0xa0, intid);
        }
        c.offer(0x10, 90);
        assert_eq!(c.best()[0], (0x10, 90));
        assert_eq!(c.best()[MAX_PLACED - 1], (0xa0, 32 + MAX_PLACED as u32 - 2));
        assert_eq!(c.total, MAX_PLACED + 1);
    }
}
