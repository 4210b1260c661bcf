//! The RTOS's once-a-second `uptime` reports, as the RTOS tests read them: `[rtos] uptime
//! <S>s ticks <N> late_max_ticks <L> misses <M> overruns <O>`.

use bulkhead_tools::ctl::client::Client;
use regex::Regex;

/// One report: (second, misses so far, overruns so far).
pub type Report = (u64, u64, u64);

/// Every report in `log`, in order.
pub fn uptimes(log: &str) -> Vec<Report> {
    let line = Regex::new(r"\[rtos\] uptime (\d+)s .* misses (\d+) overruns (\d+)").unwrap();
    line.captures_iter(log)
        .filter_map(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)))
        .collect()
}

/// Waits until the RTOS made `n` more reports than history `h` holds; the history then.
pub fn more_uptimes(c: &mut Client, h: &str, n: usize) -> String {
    let have = uptimes(h).len();
    crate::wait_until(
        c,
        |h| uptimes(h).len() >= have + n,
        "[rtos] uptime",
        "the RTOS's reports",
        600,
    )
}

/// Panics (naming `log_path`) unless the reports start at the first second and none is
/// missing.
pub fn assert_every_second(reports: &[Report], log_path: &std::path::Path) {
    let seconds: Vec<u64> = reports.iter().map(|r| r.0).collect();
    assert_eq!(seconds.first(), Some(&1), "{}", log_path.display());
    assert!(
        seconds.windows(2).all(|w| w[1] == w[0] + 1),
        "a report is missing: {seconds:?} ({})",
        log_path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_read_in_order() {
        let log = "[rtos] uptime 1s ticks 1000 late_max_ticks 5 misses 0 overruns 0\n\
                   [linux] noise\n\
                   [rtos] uptime 2s ticks 2000 late_max_ticks 9 misses 3 overruns 1\n";
        assert_eq!(uptimes(log), vec![(1, 0, 0), (2, 3, 1)]);
        assert_every_second(&uptimes(log), std::path::Path::new("log"));
    }

    #[test]
    #[should_panic(expected = "a report is missing")]
    fn a_missing_second_is_caught() {
        let log = "[rtos] uptime 1s ticks 1000 late_max_ticks 5 misses 0 overruns 0\n\
                   [rtos] uptime 3s ticks 3000 late_max_ticks 5 misses 0 overruns 0\n";
        assert_every_second(&uptimes(log), std::path::Path::new("log"));
    }
}
