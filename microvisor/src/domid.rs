//! Choosing a new domain's id: round-robin over the id space, as Xen does (F9).
//!
//! Grant entries, unbound event-channel ports and xenstore permissions name raw domain
//! ids. Handing a destroyed domain's id straight to the next new domain would let it inherit
//! what was meant for the dead one, so ids are taken in turn after the last one given out,
//! and a freed id comes back only after every other free id was used. A restart in place
//! keeps its own id on purpose and does not go through here.
#![forbid(unsafe_code)]

/// The first id after `last` (wrapping within `0..len`) for which `is_free` holds.
pub fn round_robin(len: usize, last: usize, is_free: impl Fn(usize) -> bool) -> Option<usize> {
    (1..=len).map(|k| (last + k) % len).find(|&i| is_free(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Destroying the newest domain and creating another must not give the new one the
    /// dead one's id (before, the first free slot was taken: the same id at once).
    #[test]
    fn a_freed_id_is_not_reused_at_once() {
        let mut used = [false; 8];
        let mut last = 0;
        used[0] = true; // dom0
        for want in 1..=3 {
            last = round_robin(8, last, |i| !used[i]).unwrap();
            assert_eq!(last, want);
            used[last] = true;
        }
        used[3] = false; // destroy d3
        last = round_robin(8, last, |i| !used[i]).unwrap();
        assert_eq!(last, 4, "d3 must not be handed out again at once");
        used[4] = true;
        // Fill the rest: the search wraps, skips used ids and reaches d3 last.
        let mut order = alloc::vec::Vec::new();
        while let Some(i) = round_robin(8, last, |i| !used[i]) {
            used[i] = true;
            order.push(i);
            last = i;
        }
        assert_eq!(order, [5, 6, 7, 3]);
        assert_eq!(round_robin(8, last, |i| !used[i]), None);
    }
}
