//! Host tests of the lock-hold record: what counts as a new longest, which holds are worth
//! a log line, the window of a domain's build, how a hold is described, and the summary
//! management shows.

use super::*;
use protocol::control::CapOp;
use protocol::lock_holds::{IntidPasses, TRACKED_INTIDS};
use std::string::ToString;

/// A 1 MHz counter: one tick per microsecond.
const HZ: u64 = 1_000_000;

#[test]
fn a_longer_pass_is_a_record_a_shorter_one_is_not() {
    let mut r = Record::<2>::new(HZ);
    assert!(r.note(0, 5, 0, Pass::Idle).is_none());
    assert!(r.note(0, 3, 0, Pass::Schedule).is_none());
    assert_eq!(r.per_cpu[0].longest.unwrap().ticks, 5);
    assert_eq!(r.per_cpu[0].longest.unwrap().pass, Pass::Idle);
    // Another CPU keeps its own record; the longest is the system's.
    assert!(r.note(1, 4, 0, Pass::Schedule).is_none());
    assert_eq!(r.per_cpu[1].longest.unwrap().ticks, 4);
    assert_eq!(r.longest().unwrap(), (0, r.per_cpu[0].longest.unwrap()));
}

#[test]
fn only_a_doubled_longest_from_the_floor_is_logged() {
    let mut r = Record::<1>::new(HZ);
    assert!(r.note(0, REPORT_FLOOR_US - 1, 0, Pass::Idle).is_none());
    let line = r.note(0, REPORT_FLOOR_US, 0, Pass::Idle).unwrap();
    assert_eq!(line.why, Why::Longest);
    // Recorded, but not twice the last line.
    assert!(r
        .note(0, REPORT_FLOOR_US * 2 - 1, 0, Pass::BulkFinish)
        .is_none());
    assert_eq!(r.per_cpu[0].longest.unwrap().pass, Pass::BulkFinish);
    assert!(r.note(0, REPORT_FLOOR_US * 2, 0, Pass::Schedule).is_some());
    // However many long holds follow, a line needs another doubling.
    let lines = (0..1000)
        .filter_map(|_| r.note(0, 70, 0, Pass::Schedule))
        .count();
    assert_eq!(lines, 0);
}

#[test]
fn a_build_reports_the_longest_hold_since_it_began() {
    let mut r = Record::<2>::new(HZ);
    // No build yet: nothing to report.
    assert!(r.build_done(3).is_none());
    r.note(0, 500, 0, Pass::Idle);
    r.build_began(0);
    let call = dom0_call(0, CapOp::DomainRestart);
    r.note(0, 200, 0, call);
    // Another CPU's hold is not the build's, however long.
    r.note(1, 900, 0, Pass::Schedule);
    let line = r.build_done(3).unwrap();
    // The 500 us hold came before the build: not in its window.
    assert_eq!((line.us, line.cpu, line.pass), (200, 0, call));
    assert_eq!(
        line.to_string(),
        "HYP held 200 us on cpu0: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainRestart) (longest while d3 was built)"
    );
    // A build whose window stayed under the floor logs nothing.
    r.build_began(1);
    r.note(1, REPORT_FLOOR_US - 1, 0, Pass::Schedule);
    assert!(r.build_done(4).is_none());
}

#[test]
fn an_unknown_cpu_is_ignored() {
    let mut r = Record::<1>::new(HZ);
    assert!(r.note(1, 1_000_000, 0, Pass::Idle).is_none());
    assert!(r.longest().is_none());
}

#[test]
fn the_line_names_the_time_cpu_and_exit() {
    // A 62.5 MHz counter: 62,500 ticks are a millisecond.
    let mut r = Record::<4>::new(62_500_000);
    let call = dom0_call(1, CapOp::DomainCreate);
    assert_eq!(
        r.note(2, 62_500, 0, call).unwrap().to_string(),
        "HYP held 1000 us on cpu2: d0 vCPU1 exit ESR 0x5a000000 (capability call DomainCreate) (longest yet)"
    );
    let mmio = Pass::Sync {
        domid: 3,
        vcpu: 0,
        esr: 0x939f_0045,
        x0: 7,
        x16: 0,
        ipa: 0x0a00_3e50,
    };
    assert_eq!(
        mmio.to_string(),
        "d3 vCPU0 exit ESR 0x939f0045 (data abort: MMIO at 0xa003e50)"
    );
    let hvc = Pass::Sync {
        domid: 1,
        vcpu: 0,
        esr: 0x5a00_0001,
        x0: 0x8400_0000,
        x16: 0,
        ipa: 0,
    };
    assert_eq!(
        hvc.to_string(),
        "d1 vCPU0 exit ESR 0x5a000001 (HVC x0 0x84000000)"
    );
    let xen = Pass::Sync {
        domid: 3,
        vcpu: 0,
        esr: 0x5a00_0ea1,
        x0: 7,
        x16: 12,
        ipa: 0,
    };
    assert_eq!(
        xen.to_string(),
        "d3 vCPU0 exit ESR 0x5a000ea1 (Xen hypercall 12 x0 0x7)"
    );
    assert_eq!(Pass::BulkFinish.to_string(), "finishing a bulk job");
}

#[test]
fn a_zero_frequency_reads_as_zero_microseconds() {
    let r = Record::<1>::new(0);
    assert_eq!(r.micros(12_345), 0);
}

/// The pass of a capability call `op` from dom0's vCPU `vcpu` (`HVC #0`).
fn dom0_call(vcpu: u8, op: CapOp) -> Pass {
    Pass::capability_call(0, vcpu, op)
}

#[test]
fn the_summary_counts_passes_and_gives_each_cpus_longest_in_nanoseconds() {
    // A 62.5 MHz counter: a tick is 16 ns.
    let mut r = Record::<4>::new(62_500_000);
    assert_eq!(r.summary(), LockHolds::default(), "nothing yet");
    let call = dom0_call(0, CapOp::DomainCreate);
    r.note(0, 100, 0, Pass::Idle);
    r.note(0, 62_500, 10, call);
    r.note(0, 7, 3, Pass::Schedule);
    r.note(2, 3, 0, Pass::BulkFinish);
    let disk = Pass::Async {
        domid: 1,
        vcpu: 0,
        intid: 78,
    };
    r.note(2, 2, 0, disk);
    r.note(2, 1, 0, disk);
    r.note(
        2,
        1,
        0,
        Pass::Async {
            domid: 1,
            vcpu: 0,
            intid: NO_INTID,
        },
    );
    let s = r.summary();
    // Each CPU's passes by reason, in `Reason::ALL`'s order.
    let by = |reasons: &[Reason]| {
        let mut n = [0; Reason::COUNT];
        for r in reasons {
            n[Reason::ALL.iter().position(|a| a == r).unwrap()] += 1;
        }
        n
    };
    // CPUs without a pass (1 and 3) are left out.
    assert_eq!(
        s.cpus,
        [
            CpuHolds {
                cpu: 0,
                passes: 3,
                by_reason: by(&[Reason::Idle, Reason::CapabilityCall, Reason::Scheduling]),
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest: Some(protocol::lock_holds::Hold {
                    ns: 1_000_000,
                    pass: call
                }),
                longest_wait: Some(protocol::lock_holds::Hold {
                    ns: 160,
                    pass: call
                }),
                waited_ns: 208,
            },
            CpuHolds {
                cpu: 2,
                passes: 4,
                by_reason: by(&[
                    Reason::BulkFinish,
                    Reason::Interrupt,
                    Reason::Interrupt,
                    Reason::Interrupt,
                ]),
                by_intid: [
                    IntidPasses {
                        intid: 78,
                        passes: 2
                    },
                    IntidPasses {
                        intid: NO_INTID,
                        passes: 1
                    },
                    IntidPasses::default(),
                    IntidPasses::default(),
                ],
                longest: Some(protocol::lock_holds::Hold {
                    ns: 48,
                    pass: Pass::BulkFinish
                }),
                longest_wait: Some(protocol::lock_holds::Hold {
                    ns: 0,
                    pass: Pass::BulkFinish
                }),
                waited_ns: 0,
            },
        ]
    );
    assert!(!s.since_reset);
    assert_eq!((s.passes(), s.longest().unwrap().0), (7, 0));
}

#[test]
fn a_reset_starts_the_summary_again_but_not_the_log() {
    let mut r = Record::<2>::new(HZ);
    assert!(r.note(0, 100, 0, Pass::Idle).is_some());
    r.build_began(1);
    r.note(1, 30, 0, Pass::Schedule);
    r.reset();
    let s = r.summary();
    assert!(s.cpus.is_empty() && s.since_reset);
    // A shorter hold is the new longest for management, but the log still waits for a
    // new record since boot (twice the 100 us it logged).
    assert!(r.note(0, 150, 0, Pass::Schedule).is_none());
    assert_eq!(r.summary().longest().unwrap().1.us(), 150);
    assert!(r.note(0, 200, 0, Pass::Schedule).is_some());
    // The build's window was kept.
    assert_eq!(r.build_done(5).unwrap().us, 30);
    assert_eq!(r.summary().passes(), 2);
}

#[test]
fn a_huge_hold_saturates_in_nanoseconds() {
    let r = Record::<1>::new(1);
    assert_eq!(r.nanos(u64::MAX), u64::MAX);
    assert_eq!(r.micros(3), 3_000_000);
}
