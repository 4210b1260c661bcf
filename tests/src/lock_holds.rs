//! The microvisor's global-lock hold lines, as the tests read them: `bulkhead: HYP held <N>
//! us on cpu<C>: <what> (<why>)` (see `microvisor/src/lock_holds.rs`), logged for a new
//! longest hold (from 20 us, each at least double the last) and, when a domain's build
//! completes, for the longest hold since that build began.

use regex::Regex;

/// One line: (microseconds, the whole line).
pub type Hold = (u64, String);

/// Every hold line in `log`, in order.
pub fn holds(log: &str) -> Vec<Hold> {
    let line = Regex::new(r"(?m)^bulkhead: HYP held (\d+) us on cpu\d+: .*$").unwrap();
    line.captures_iter(log)
        .filter_map(|c| Some((c[1].parse().ok()?, c[0].to_string())))
        .collect()
}

/// The longest hold logged in `log` (0 if none was: every hold was under the 20 us floor).
pub fn longest(log: &str) -> u64 {
    holds(log).iter().map(|h| h.0).max().unwrap_or(0)
}

/// The holds logged in `log` for domain builds (`(longest while dN was built)`: the
/// building CPU's longest from the build to the load), in log order.
pub fn of_builds(log: &str) -> Vec<u64> {
    holds(log)
        .iter()
        .filter(|h| h.1.contains(" was built)"))
        .map(|h| h.0)
        .collect()
}

/// The longest of [`of_builds`], 0 if none was logged.
pub fn longest_of_builds(log: &str) -> u64 {
    of_builds(log).into_iter().max().unwrap_or(0)
}

/// The median of `values` (the lower middle one of an even count), 0 for none.
pub fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// Prints every hold line in `log` on stderr, under `what`.
pub fn print(what: &str, log: &str) {
    let all = holds(log);
    eprintln!(
        "{what}: {} HYP hold line(s), longest {} us",
        all.len(),
        longest(log)
    );
    for (_, line) in all {
        eprintln!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_lines_are_read_with_their_length() {
        let log = "bulkhead: HYP held 25 us on cpu0: scheduling (longest yet)\n\
                   [dom0] bulkhead: HYP held 999 us on cpu0: quoted, not ours\n\
                   bulkhead: HYP held 140 us on cpu2: d0 vCPU0 exit ESR 0x939f0045 (data abort: MMIO at 0xa003e50)\n";
        let h = holds(log);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].0, 25);
        assert!(h[1].1.ends_with("(data abort: MMIO at 0xa003e50)"));
        assert_eq!(longest(log), 140);
        assert_eq!(longest("nothing"), 0);
        let builds = "bulkhead: HYP held 900 us on cpu1: scheduling (longest yet)\n\
                      bulkhead: HYP held 210 us on cpu0: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainRestart) (longest while d3 was built)\n";
        assert_eq!(longest_of_builds(builds), 210);
        assert_eq!(of_builds(builds), [210]);
        assert_eq!(longest_of_builds(log), 0);
    }

    #[test]
    fn the_median_is_the_lower_middle() {
        assert_eq!(median(&[]), 0);
        assert_eq!(median(&[7]), 7);
        assert_eq!(median(&[435, 222, 223, 201, 224, 222]), 222);
        assert_eq!(median(&[3, 1, 2]), 2);
    }
}
