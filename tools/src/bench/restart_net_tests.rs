//! Host tests of `bench restart`'s netdom half: the guest script, log parsing, pauses and
//! lost requests, the report and its table.

use super::*;

/// A console log: replies (sequence number, counter) in lines of 3, the first after the
/// shell's prompt, with dom0's restart delays and recovery lines, the DHCP line and the echo
/// of the typed script mixed in.
fn log(replies: &[(u64, u64)], backoff: &[u64], recovered: &[u64]) -> String {
    let mut s = format!("[linux] # {}", script());
    s += "[linux] RSTNET-DHCP 0\n";
    for b in backoff {
        s += &format!("[dom0] netdom (d1): crashed (code 0x2000000) -> restart in {b} ms\n");
    }
    for (n, b) in replies.chunks(3).enumerate() {
        let t: Vec<String> = b.iter().map(|(q, t)| format!("{q}:{t}")).collect();
        let prompt = if n == 0 { "/ # \x1b[6n" } else { "" };
        s += &format!("[linux] {prompt}RSTNET {n} {}\n", t.join(" "));
    }
    for r in recovered {
        s += &format!("[dom0] netdom (d1): ready, recovered in {r} ms\n");
    }
    s += &format!("[linux] RSTNET-DONE {}\n", replies.len());
    s
}

/// Replies to consecutive requests from 0 at the given counters.
fn seq(ticks: &[u64]) -> Vec<(u64, u64)> {
    (0..).zip(ticks.iter().copied()).collect()
}

#[test]
fn the_script_gets_an_address_then_stamps_each_reply_in_the_background() {
    let s = script();
    assert!(!s.contains(TAG), "{s}");
    assert!(s.ends_with("&\n") && s.matches('\n').count() == 1);
    assert!(s.len() < 512, "{} bytes", s.len());
    assert!(s.starts_with("ip link set eth0 up; udhcpc -i eth0"));
    assert!(s.contains("(ping -i 0.005 10.0.2.2 2>&1 | (") && s.contains(":$(cntvct)"));
    assert!(s.contains("${l#*seq=}") && s.contains("${q%% *}"));
    assert!(s.contains(&format!("[ -e {STOP_FILE} ] && break")) && stop_line().contains(STOP_FILE));
    assert!(s.contains("[ $((n%8)) -eq 0 ]"));
    // The echo of the typed line yields no stamps, no DHCP status and no end.
    let echo = format!("[linux] {s}");
    assert!(parse_stamps(&echo).is_empty() && parse_dhcp(&echo).is_none());
    assert!(!echo.contains(&format!("{TAG}-DONE")));
    assert_eq!(parse_dhcp("[linux] RSTNET-DHCP 1\n"), Some(1));
    assert_eq!(parse_dhcp("[linux] / # RSTNET-DHCP 0\n"), Some(0));
}

#[test]
fn parses_replies_after_a_prompt_but_not_other_lines() {
    let l = log(&[(0, 100), (1, 250), (3, 400), (4, 450)], &[], &[]);
    let s = parse_stamps(&l);
    let got: Vec<(u64, u64, u64)> = s.iter().map(|s| (s.line, s.seq, s.ticks)).collect();
    assert_eq!(
        got,
        vec![(0, 0, 100), (0, 1, 250), (0, 3, 400), (1, 4, 450)]
    );
    assert_eq!(last_seq(&l), Some(4));
    // The blkdom half's lines and another domain's are not this half's stamps.
    assert!(parse_stamps("[linux] RSTIO 0 0 5 6\n[rtos] RSTNET 0 0:5\n").is_empty());
    assert!(super::super::restart::parse_stamps(&l).is_empty());
    assert_eq!(
        super::super::restart::recovered_of(&log(&[], &[], &[12, 7]), DRIVER),
        vec![12, 7]
    );
    assert!(super::super::restart::recovered_of(&log(&[], &[], &[12]), "blkdom").is_empty());
}

#[test]
fn a_pause_runs_from_the_fault_to_the_next_reply_and_counts_the_lost() {
    // Gaps: 10 10 10 | 40 10 10 | 10, 300 (3 lost), 10 | 10
    let r = [
        (0, 0),
        (1, 10),
        (2, 20),
        (3, 30),
        (4, 70),
        (5, 80),
        (6, 90),
        (7, 100),
        (11, 400),
        (12, 410),
        (13, 420),
    ];
    let s = parse_stamps(&log(&r, &[], &[]));
    let (p, base, before) = pauses(&s, &[3, 7], u64::MAX).unwrap();
    assert_eq!(
        p,
        vec![
            Pause { ticks: 40, lost: 0 },
            Pause {
                ticks: 300,
                lost: 3
            }
        ]
    );
    assert_eq!((base, before), (vec![10, 10, 10], 0));
    // A request lost before the first crash is the baseline's.
    let s = parse_stamps(&log(
        &[(0, 0), (2, 20), (3, 30), (4, 70), (5, 80)],
        &[],
        &[],
    ));
    let (p, base, before) = pauses(&s, &[3], u64::MAX).unwrap();
    assert_eq!(p, vec![Pause { ticks: 40, lost: 0 }]);
    assert_eq!((base, before), (vec![20, 10], 1));
    assert!(pauses(&s, &[], u64::MAX).is_err());
    assert!(pauses(&s, &[0], u64::MAX).is_err(), "no baseline");
    assert!(
        pauses(&s, &[5], u64::MAX).is_err(),
        "nothing after the crash"
    );
}

#[test]
fn lost_lines_and_backward_counters_are_errors_up_to_the_stop() {
    let r = seq(&[0, 10, 20, 30, 40, 50, 60, 70, 80]);
    let s = parse_stamps(&log(&r, &[], &[]));
    assert!(pauses(&s, &[1], u64::MAX).is_ok());
    // A missing console line is not three lost requests.
    let gone: Vec<Stamp> = s.iter().copied().filter(|s| s.line != 1).collect();
    let e = pauses(&gone, &[1], u64::MAX).unwrap_err().to_string();
    assert!(e.contains("console line 2 follows line 0"), "{e}");
    let e = pauses(&s[3..], &[4], u64::MAX).unwrap_err().to_string();
    assert!(e.contains("first console line"), "{e}");
    let mut b = s.clone();
    b[4].ticks = 5;
    assert!(pauses(&b, &[1], u64::MAX)
        .unwrap_err()
        .to_string()
        .contains("went back"));
    // Lines after the one holding the stop's sequence number (whose echo may garble a
    // later line) do not count.
    assert_eq!(
        pauses(&b, &[1], 2).unwrap().0,
        vec![Pause { ticks: 10, lost: 0 }]
    );
    assert_eq!(pauses(&gone, &[1], 1).unwrap().1, vec![10]);
}

#[test]
fn report_and_table() {
    let ms = super::super::boot::COUNTER_HZ / 1000;
    // Baseline gaps 5 ms; pauses 30 ms (5 lost), then 20 ms (3 lost).
    let r = [
        (0, 0),
        (1, 5 * ms),
        (2, 10 * ms),
        (8, 40 * ms),
        (9, 45 * ms),
        (13, 65 * ms),
        (14, 70 * ms),
    ];
    let rep = report(&log(&r, &[0, 0], &[20, 25]), &[2, 9], u64::MAX).unwrap();
    assert_eq!(rep.crashes, 2);
    assert_eq!(rep.pauses_ms, vec![30.0, 20.0]);
    assert_eq!(rep.lost, vec![5, 3]);
    assert_eq!(rep.pause.median, 25.0);
    assert_eq!(rep.pause_without_loss, None);
    assert_eq!((rep.baseline.median, rep.baseline_gaps), (5.0, 2));
    assert_eq!(rep.dom0_recovered.unwrap().median, 22.5);
    assert!(rep.meets_goal);
    let tb = table(&rep);
    assert!(
        tb.contains("goal: median pause < 50 ms: ok") && tb.contains("30.00, 20.00"),
        "{tb}"
    );
    assert!(tb.contains("requests lost per crash: 5, 3;"), "{tb}");
    assert!(!tb.contains("lost no request"), "{tb}");
    // A missing restart delay, or more recoveries than crashes, is an error.
    assert!(report(&log(&r, &[0], &[20]), &[2, 9], u64::MAX).is_err());
    assert!(report(&log(&r, &[0, 0], &[1, 2, 3]), &[2, 9], u64::MAX).is_err());
    // blkdom's lines are not netdom's.
    let blk = log(&r, &[0, 0], &[20, 25]).replace("netdom", "blkdom");
    assert!(report(&blk, &[2, 9], u64::MAX).is_err());
    // A long pause misses the goal; a crash without loss is shown apart.
    let r = seq(&[0, 5 * ms, 10 * ms, 90 * ms, 95 * ms]);
    let rep = report(&log(&r, &[0], &[20]), &[2], u64::MAX).unwrap();
    assert!(!rep.meets_goal && table(&rep).contains("above goal"));
    assert!(
        table(&rep).contains("lost no request (1 of 1)"),
        "{}",
        table(&rep)
    );
}
