//! Host tests of the lock-hold record: what counts as a new record, which holds are worth a
//! log line, and how a hold is described.

use super::*;
use std::string::ToString;

/// A 1 MHz counter: one tick per microsecond.
const HZ: u64 = 1_000_000;

#[test]
fn a_longer_pass_is_a_record_a_shorter_one_is_not() {
    let mut r = Record::<2>::new(HZ);
    assert!(r.note(0, 5, Pass::Idle, 0).is_none());
    assert!(r.note(0, 3, Pass::Schedule, 0).is_none());
    assert_eq!(r.per_cpu[0].unwrap().ticks, 5);
    assert_eq!(r.per_cpu[0].unwrap().pass, Pass::Idle);
    // Another CPU keeps its own record; the longest is the system's.
    assert!(r.note(1, 4, Pass::Schedule, 0).is_none());
    assert_eq!(r.per_cpu[1].unwrap().ticks, 4);
    assert_eq!(r.longest().unwrap(), (0, r.per_cpu[0].unwrap()));
}

#[test]
fn short_holds_and_small_gains_are_not_logged() {
    let mut r = Record::<1>::new(HZ);
    assert!(r.note(0, REPORT_FLOOR_US - 1, Pass::Idle, 0).is_none());
    let line = r.note(0, REPORT_FLOOR_US, Pass::Idle, 0).unwrap();
    assert!(line.record);
    // Recorded, but not a quarter longer than the last line, and within budget.
    assert!(r
        .note(0, REPORT_FLOOR_US + 1, Pass::BulkFinish, 0)
        .is_none());
    assert_eq!(r.per_cpu[0].unwrap().pass, Pass::BulkFinish);
    assert!(r
        .note(0, REPORT_FLOOR_US * 5 / 4, Pass::Schedule, 0)
        .is_some());
}

#[test]
fn every_hold_over_budget_is_logged_at_a_bounded_rate() {
    let mut r = Record::<1>::new(HZ);
    let first = r.note(0, 10 * BUDGET_US, Pass::Idle, 0).unwrap();
    assert!(first.record);
    // Shorter than the record, but over budget: logged, up to the burst...
    let over = BUDGET_US + 1;
    let logged = (0..100)
        .filter_map(|_| r.note(0, over, Pass::Schedule, 0))
        .inspect(|l| assert!(!l.record))
        .count();
    assert_eq!(logged as u64, OVER_BUDGET_BURST);
    // ...then at the steady rate: a second later, that many more.
    let later = (0..100)
        .filter(|_| r.note(0, over, Pass::Schedule, HZ).is_some())
        .count();
    assert_eq!(later as u64, OVER_BUDGET_RATE);
    // Within budget is never logged unless it is a record.
    assert!(r.note(0, BUDGET_US, Pass::Schedule, 10 * HZ).is_none());
}

#[test]
fn an_unknown_cpu_is_ignored() {
    let mut r = Record::<1>::new(HZ);
    assert!(r.note(1, 1_000_000, Pass::Idle, 0).is_none());
    assert!(r.longest().is_none());
}

#[test]
fn the_line_names_the_time_cpu_and_exit() {
    // A 62.5 MHz counter: 62,500 ticks are a millisecond.
    let mut r = Record::<4>::new(62_500_000);
    let call = Pass::Sync {
        domid: 0,
        vcpu: 1,
        esr: 0x5a00_0000,
        x0: u64::from(CapOp::DomainCreate.function_id()),
        x16: 0,
        ipa: 0,
    };
    assert_eq!(
        r.note(2, 62_500, call, 0).unwrap().to_string(),
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
        r.note(1, 12_500, mmio, 0).unwrap().to_string(),
        "HYP held 200 us on cpu1: d3 vCPU0 exit ESR 0x939f0045 (data abort: MMIO at 0xa003e50)"
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
