//! Host tests of `bench restart`'s guest script, log parsing, pauses, statistics and table.

use super::*;

/// A console log: stamps at the given counter values (the loop's indices in order), with
/// dom0's restart delays and recovery lines and the echo of the typed script mixed in.
fn log(ticks: &[u64], backoff: &[u64], recovered: &[u64]) -> String {
    let mut s = format!("[linux] # {}", script(2));
    for b in backoff {
        s += &format!("[dom0] blkdom (d1): crashed (code 0x2000000) -> restart in {b} ms\n");
    }
    // Batches of 3 stamps (the last one shorter), as the script prints 8.
    for (n, b) in ticks.chunks(3).enumerate() {
        let t: Vec<String> = b.iter().map(u64::to_string).collect();
        s += &format!("[linux] RSTIO {} 0 {}\n", n * 3, t.join(" "));
    }
    for r in recovered {
        s += &format!("[dom0] blkdom (d1): ready, recovered in {r} ms\n");
    }
    s += &format!("[linux] RSTIO-DONE {}\n", ticks.len());
    s
}

#[test]
fn the_script_never_echoes_its_tag_and_reads_directly() {
    let s = script(DEFAULT_CRASHES);
    assert!(!s.contains(TAG), "{s}");
    assert!(s.ends_with('\n') && s.matches('\n').count() == 1);
    assert!(s.len() < 512, "{} bytes", s.len());
    assert!(s.contains("if=/dev/xvda") && s.contains("bs=4096 count=1"));
    assert!(s.contains("iflag=direct") && s.contains("$(cntvct)"));
    assert!(s.contains(&format!("-lt {} ", iterations(DEFAULT_CRASHES))));
    assert_eq!(iterations(3), 4 * PER_CRASH + 3 * WAIT_READY + TAIL);
    assert_eq!(iterations(3) % BATCH, 0);
    assert!(s.contains("[ $((i%8)) -eq 0 ]"));
    // The echo of the typed line yields no stamps.
    assert!(parse_stamps(&format!("[linux] {s}")).is_empty());
}

#[test]
fn parses_stamps_and_dom0_recoveries() {
    let l = log(&[100, 250, 400], &[100, 200], &[31, 7]);
    let s = parse_stamps(&l);
    assert_eq!(
        s,
        vec![
            Stamp {
                i: 0,
                rc: 0,
                ticks: 100
            },
            Stamp {
                i: 1,
                rc: 0,
                ticks: 250
            },
            Stamp {
                i: 2,
                rc: 0,
                ticks: 400
            },
        ]
    );
    assert_eq!(last_index(&l), Some(2));
    assert_eq!(recovered_of(&l, "blkdom"), vec![31, 7]);
    assert_eq!(backoff_of(&l, "blkdom"), vec![100, 200]);
    assert_eq!(
        dom0_figures(&l, "blkdom", 2).unwrap(),
        (vec![31, 7], vec![100, 200])
    );
    assert!(
        dom0_figures(&l, "blkdom", 3).is_err(),
        "a restart delay is missing"
    );
    assert!(
        dom0_figures(&l, "blkdom", 1).is_err(),
        "more recoveries than crashes"
    );
    // Another domain's lines and other dom0 lines are not stamps or recoveries.
    let l = "[linux] RSTIO 8 2 11 12\n";
    assert_eq!(
        parse_stamps(l),
        vec![
            Stamp {
                i: 8,
                rc: 2,
                ticks: 11
            },
            Stamp {
                i: 9,
                rc: 2,
                ticks: 12
            },
        ]
    );
    let other = "[rtos] RSTIO 0 0 5\n[dom0] netdom (d3): ready, recovered in 9 ms\n";
    assert!(parse_stamps(other).is_empty() && recovered_of(other, "blkdom").is_empty());
    assert_eq!(last_index("nothing"), None);
}

#[test]
fn a_pause_is_the_largest_gap_after_each_crash() {
    // Gaps: 10 10 10 | 500 10 10 | 10 900 10
    let t = [0, 10, 20, 30, 530, 540, 550, 560, 1460, 1470];
    let s = parse_stamps(&log(&t, &[], &[]));
    let (p, base) = pauses(&s, &[3, 6]).unwrap();
    assert_eq!(p, vec![500, 900]);
    assert_eq!(base, vec![10, 10, 10]);
    // A crash seen late (index 4) misses the gap before it.
    let (p, _) = pauses(&s, &[4, 6]).unwrap();
    assert_eq!(p, vec![10, 900]);
    assert!(pauses(&s, &[]).is_err());
    assert!(pauses(&s, &[0]).is_err(), "no baseline");
    assert!(pauses(&s, &[3, 9]).is_err(), "nothing after the last crash");
}

#[test]
fn failed_reads_lost_lines_and_backward_counters_are_errors() {
    let mut s = parse_stamps(&log(&[0, 10, 20, 30], &[], &[]));
    assert!(gaps(&s).is_ok());
    s[2].rc = 1;
    assert!(gaps(&s).unwrap_err().to_string().contains("failed"));
    s[2].rc = 0;
    s[2].ticks = 5;
    assert!(gaps(&s).is_err());
    s.remove(2);
    assert!(gaps(&s).unwrap_err().to_string().contains("index"));
}

#[test]
fn statistics() {
    let s = Stats::of(&[3, 1, 2], 1.0).unwrap();
    assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
    let s = Stats::of(&[4, 1, 2, 10], 0.5).unwrap();
    assert_eq!((s.min, s.median, s.max), (0.5, 1.5, 5.0));
    assert!(Stats::of(&[], 1.0).is_none());
}

#[test]
fn report_and_table() {
    let ms = super::super::boot::COUNTER_HZ / 1000;
    // Baseline gaps 2 ms; pauses 40 ms and 70 ms.
    let t = [0, 2 * ms, 4 * ms, 44 * ms, 46 * ms, 116 * ms, 118 * ms];
    let r = report(&log(&t, &[30, 50], &[35, 60]), &[2, 4]).unwrap();
    assert_eq!(r.crashes, 2);
    assert_eq!(r.pauses_ms, vec![40.0, 70.0]);
    assert_eq!(r.pause.median, 55.0);
    assert_eq!(
        (r.baseline.min, r.baseline.max, r.baseline_gaps),
        (2.0, 2.0, 2)
    );
    assert_eq!(r.dom0_recovered.unwrap().median, 47.5);
    assert_eq!(r.pause_less_backoff.min, 10.0);
    assert_eq!(r.pause_less_backoff.max, 20.0);
    assert!(!r.meets_goal);
    let t1 = table(&r);
    assert!(
        t1.contains("above goal") && t1.contains("40.00, 70.00"),
        "{t1}"
    );
    // dom0's last recovery line may come after the loop; a missing restart delay, or more
    // recoveries than crashes, is an error, not a silent figure.
    let r = report(&log(&t, &[30, 50], &[35]), &[2, 4]).unwrap();
    assert!(table(&r).contains("(1 of 2)"), "{}", table(&r));
    assert!(report(&log(&t, &[30], &[35]), &[2, 4]).is_err());
    assert!(report(&log(&t, &[30, 50], &[35, 60, 1]), &[2, 4]).is_err());
    let r = report(&log(&[0, ms, 2 * ms, 12 * ms, 13 * ms], &[5], &[9]), &[2]).unwrap();
    assert!(r.meets_goal && table_ok(&r));
}

fn table_ok(r: &RestartReport) -> bool {
    table(r).contains("goal: median pause < 50 ms: ok")
}

#[test]
fn targets_and_the_combined_json() {
    assert_eq!(
        Target::parse(None).unwrap(),
        [Target::Blkdom, Target::Netdom]
    );
    assert_eq!(Target::parse(Some("netdom")).unwrap(), [Target::Netdom]);
    assert_eq!(Target::parse(Some("blkdom")).unwrap(), [Target::Blkdom]);
    assert!(Target::parse(Some("rtos")).is_err());
    let ms = super::super::boot::COUNTER_HZ / 1000;
    let r = report(&log(&[0, ms, 2 * ms, 12 * ms, 13 * ms], &[5], &[9]), &[2]).unwrap();
    let c = Combined {
        benchmark: "restart",
        blkdom: Some(r),
        netdom: None,
    };
    let v: serde_json::Value = serde_json::to_value(&c).unwrap();
    assert_eq!(v["benchmark"], "restart");
    assert_eq!(v["blkdom"]["pause"]["median"], 10.0);
    assert!(v["netdom"].is_null());
}
