//! Host tests of the lock-hold record's wire form: encoding, the totals, and the words a
//! pass is shown with.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;

fn pass() -> impl Strategy<Value = Pass> {
    prop_oneof![
        any::<(u16, u8, u32, u64, u64, u64)>().prop_map(|(domid, vcpu, esr, x0, x16, ipa)| {
            Pass::Sync {
                domid,
                vcpu,
                esr,
                x0,
                x16,
                ipa,
            }
        }),
        any::<(u16, u8, u16)>().prop_map(|(domid, vcpu, intid)| Pass::Async { domid, vcpu, intid }),
        Just(Pass::Schedule),
        Just(Pass::BulkFinish),
        Just(Pass::Idle),
    ]
}

fn cpu() -> impl Strategy<Value = CpuHolds> {
    (
        any::<u16>(),
        any::<u64>(),
        proptest::option::of((any::<u64>(), pass())),
        any::<[u64; Reason::COUNT]>(),
        any::<[(u16, u64); TRACKED_INTIDS]>(),
        proptest::option::of((any::<u64>(), pass())),
        any::<u64>(),
    )
        .prop_map(
            |(cpu, passes, longest, by_reason, intids, wait, waited_ns)| CpuHolds {
                cpu,
                passes,
                longest: longest.map(|(ns, pass)| Hold { ns, pass }),
                by_reason,
                by_intid: intids.map(|(intid, passes)| IntidPasses { intid, passes }),
                longest_wait: wait.map(|(ns, pass)| Hold { ns, pass }),
                waited_ns,
            },
        )
}

proptest! {
    #[test]
    fn a_record_round_trips(cpus in proptest::collection::vec(cpu(), 0..8), since_reset: bool) {
        let holds = LockHolds { cpus, since_reset };
        let bytes = postcard::to_allocvec(&holds).unwrap();
        prop_assert_eq!(postcard::from_bytes::<LockHolds>(&bytes).unwrap(), holds);
    }
}

/// The encoding is postcard's: pinned here, so a change to it is a deliberate one (a new
/// capability-protocol version).
#[test]
fn the_encoding_is_pinned() {
    let holds = LockHolds {
        cpus: vec![
            CpuHolds {
                cpu: 0,
                passes: 300,
                longest: Some(Hold {
                    ns: 1_000,
                    pass: Pass::Async {
                        domid: 2,
                        vcpu: 1,
                        intid: 78,
                    },
                }),
                by_reason: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 300, 0, 0, 0],
                by_intid: [
                    IntidPasses {
                        intid: 78,
                        passes: 300,
                    },
                    IntidPasses::default(),
                    IntidPasses::default(),
                    IntidPasses::default(),
                ],
                longest_wait: Some(Hold {
                    ns: 200,
                    pass: Pass::Schedule,
                }),
                waited_ns: 300,
            },
            CpuHolds {
                cpu: 3,
                passes: 1,
                longest: None,
                by_reason: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest_wait: None,
                waited_ns: 0,
            },
        ],
        since_reset: true,
    };
    assert_eq!(
        postcard::to_allocvec(&holds).unwrap(),
        [
            2, // two CPUs
            0, 0xac, 0x02, // cpu 0, 300 passes (varint)
            1, 0xe8, 0x07, 1, 2, 1, 78, // Some: 1000 ns, Async { d2, vCPU1, INTID 78 }
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xac, 0x02, 0, 0, 0, // by reason: 300 interrupts
            78, 0xac, 0x02, 0, 0, 0, 0, 0, 0, // by INTID: 300 of INTID 78, three unused
            1, 0xc8, 0x01,
            2, // longest wait: Some: 200 ns, before a scheduling pass (variant 2)
            0xac, 0x02, // 300 ns of waits in all
            3, 1, 0, // cpu 3, 1 pass, None
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // by reason: 1 WFI
            0, 0, 0, 0, 0, 0, 0, 0, // by INTID: none
            0, 0, // no wait
            1, // since_reset
        ]
    );
}

#[test]
fn totals_over_cpus() {
    let hold = |ns, pass| Some(Hold { ns, pass });
    let holds = LockHolds {
        cpus: vec![
            CpuHolds {
                cpu: 0,
                passes: 10,
                longest: hold(5_000, Pass::Idle),
                by_reason: [0; Reason::COUNT],
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest_wait: None,
                waited_ns: 0,
            },
            CpuHolds {
                cpu: 1,
                passes: u64::MAX,
                longest: None,
                by_reason: [0; Reason::COUNT],
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest_wait: None,
                waited_ns: 0,
            },
            CpuHolds {
                cpu: 2,
                passes: 4,
                longest: hold(9_999, Pass::Schedule),
                by_reason: [0; Reason::COUNT],
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest_wait: None,
                waited_ns: 0,
            },
            CpuHolds {
                cpu: 3,
                passes: 4,
                longest: hold(9_999, Pass::Idle),
                by_reason: [0; Reason::COUNT],
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest_wait: None,
                waited_ns: 0,
            },
        ],
        since_reset: false,
    };
    assert_eq!(holds.passes(), u64::MAX, "saturates");
    let (cpu, h) = holds.longest().unwrap();
    // The first of two equal holds.
    assert_eq!((cpu, h.pass, h.us()), (2, Pass::Schedule, 9));
    assert_eq!(LockHolds::default().longest(), None);
    assert_eq!(LockHolds::default().passes(), 0);
}

#[test]
fn each_pass_has_a_kind_and_words() {
    let call = Pass::capability_call(0, 0, CapOp::DomainCreate);
    assert_eq!(call.kind(), "exit");
    assert_eq!(call.vcpu(), Some((0, 0)));
    assert_eq!(
        call.to_string(),
        "d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)"
    );
    let irq = Pass::Async {
        domid: 4,
        vcpu: 2,
        intid: 78,
    };
    assert_eq!(
        (irq.kind(), irq.to_string().as_str()),
        ("interrupt", "d4 vCPU2 interrupt exit (INTID 78)")
    );
    let none = Pass::Async {
        domid: 4,
        vcpu: 2,
        intid: NO_INTID,
    };
    assert_eq!(none.to_string(), "d4 vCPU2 interrupt exit (no INTID)");
    assert_eq!(Pass::Schedule.kind(), "scheduling");
    assert_eq!(Pass::BulkFinish.kind(), "bulk-finish");
    assert_eq!((Pass::Idle.kind(), Pass::Idle.vcpu()), ("idle", None));
    assert_eq!(Pass::Idle.to_string(), "interrupts while idle");
}

#[test]
fn each_pass_is_counted_under_one_reason() {
    let exit = |esr: u32, x16: u64| Pass::Sync {
        domid: 1,
        vcpu: 0,
        esr,
        x0: 0,
        x16,
        ipa: 0,
    };
    let xen = |nr: u64| exit(0x5a00_0ea1, nr);
    assert_eq!(exit(0x0600_0000, 0).reason(), Reason::Wfi);
    assert_eq!(xen(29).reason(), Reason::XenSchedOp);
    assert_eq!(xen(32).reason(), Reason::XenEventChannelOp);
    assert_eq!(xen(20).reason(), Reason::XenGrantTableOp);
    assert_eq!(xen(17).reason(), Reason::XenOther);
    let call = Pass::capability_call(0, 0, CapOp::NullCall);
    assert_eq!(call.reason(), Reason::CapabilityCall);
    assert_eq!(exit(0x5a00_0001, 0).reason(), Reason::OtherHvc);
    assert_eq!(exit(0x5e00_0000, 0).reason(), Reason::Smc);
    assert_eq!(exit(0x6200_0000, 0).reason(), Reason::SystemRegister);
    assert_eq!(exit(0x9200_0046, 0).reason(), Reason::Mmio);
    assert_eq!(exit(0x0000_0000, 0).reason(), Reason::OtherExit);
    assert_eq!(
        Pass::Async {
            domid: 1,
            vcpu: 0,
            intid: 27
        }
        .reason(),
        Reason::Interrupt
    );
    assert_eq!(Pass::Schedule.reason(), Reason::Scheduling);
    assert_eq!(Pass::BulkFinish.reason(), Reason::BulkFinish);
    assert_eq!(Pass::Idle.reason(), Reason::Idle);
    // ALL lists each reason once, at its own index, with a word of its own.
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert_eq!(
            Reason::ALL.iter().filter(|o| o.word() == r.word()).count(),
            1
        );
    }
}

#[test]
fn a_cpus_reasons_are_listed_most_first() {
    let mut by_reason = [0; Reason::COUNT];
    by_reason[Reason::Wfi as usize] = 5;
    by_reason[Reason::Interrupt as usize] = 9;
    by_reason[Reason::Idle as usize] = 5;
    let c = CpuHolds {
        cpu: 1,
        passes: 19,
        longest: None,
        by_reason,
        by_intid: [IntidPasses::default(); TRACKED_INTIDS],
        longest_wait: None,
        waited_ns: 0,
    };
    assert_eq!(
        c.reasons(),
        [(Reason::Interrupt, 9), (Reason::Wfi, 5), (Reason::Idle, 5)]
    );
}

#[test]
fn interrupt_passes_are_counted_for_the_first_intids_and_listed_most_first() {
    let mut c = CpuHolds {
        cpu: 0,
        passes: 0,
        longest: None,
        by_reason: [0; Reason::COUNT],
        by_intid: [IntidPasses::default(); TRACKED_INTIDS],
        longest_wait: None,
        waited_ns: 0,
    };
    // Six INTIDs: the first four seen get an entry, the rest count only under the reason.
    for intid in [78, 27, 78, NO_INTID, 0, 78, 33, 34, 27] {
        IntidPasses::count(&mut c.by_intid, intid);
        c.by_reason[Reason::Interrupt as usize] += 1;
    }
    let (tracked, others) = c.intids();
    let pairs: Vec<(u16, u64)> = tracked.iter().map(|e| (e.intid, e.passes)).collect();
    assert_eq!(pairs, [(78, 3), (27, 2), (NO_INTID, 1), (0, 1)]);
    assert_eq!(others, 2, "INTIDs 33 and 34 came after the table was full");
}
