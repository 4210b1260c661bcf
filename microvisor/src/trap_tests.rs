//! Host tests for the syndrome decoder, on hand-assembled ESR values.

use super::*;

const HPFAR_UART: u64 = (0x0900_0000 >> 12) << 4;
const FAR: u64 = 0xffff_0000_1234_5abc;

fn data_abort(esr: u64) -> Abort {
    match decode(esr, FAR, HPFAR_UART) {
        Exit::DataAbort(a) => a,
        other => panic!("{esr:#x} decoded as {other:?}"),
    }
}

#[test]
fn str_w1_stage2_translation_fault_level3() {
    // EC=0x24 IL ISV SAS=2 SRT=1 WnR DFSC=0b000111.
    let a = data_abort(0x9381_0047);
    assert_eq!(
        a,
        Abort {
            ipa: GuestPhysAddr::new(0x0900_0abc),
            far: GuestVirtAddr::new(FAR),
            access: Some(MmioAccess {
                width: 4,
                reg: 1,
                sign_extend: false,
                sixty_four: false
            }),
            write: true,
            s1ptw: false,
            fault: FaultKind::Translation { level: 3 },
            instr_len: 4,
        }
    );
}

#[test]
fn ldr_x30_eight_bytes() {
    // SAS=3 SRT=30 SF, read.
    let a = data_abort(0x93de_8007);
    assert_eq!(
        a.access,
        Some(MmioAccess {
            width: 8,
            reg: 30,
            sign_extend: false,
            sixty_four: true
        })
    );
    assert!(!a.write);
}

#[test]
fn str_xzr_and_ldrsh() {
    let a = data_abort(0x93df_8047);
    assert_eq!(a.access.map(|m| (m.reg, m.width)), Some((31, 8)));
    assert!(a.write);
    // ldrsh w0: SAS=1 SSE SRT=0.
    let a = data_abort(0x9360_0007);
    assert_eq!(
        a.access,
        Some(MmioAccess {
            width: 2,
            reg: 0,
            sign_extend: true,
            sixty_four: false
        })
    );
    // ldrb: SAS=0.
    assert_eq!(data_abort(0x9300_0007).access.map(|m| m.width), Some(1));
}

#[test]
fn no_valid_syndrome() {
    // An stp: ISV=0, but WnR and the fault are still reported.
    let a = data_abort(0x9200_0047);
    assert_eq!(a.access, None);
    assert!(a.write);
    assert_eq!(a.fault, FaultKind::Translation { level: 3 });
}

#[test]
fn ipa_combines_hpfar_page_and_far_offset() {
    // Bits above FIPA (e.g. HPFAR_EL2.NS, bit 63) are ignored.
    let a = match decode(0x9381_0047, 0x8, (0x12_3456_7000 >> 8) | (1 << 63)) {
        Exit::DataAbort(a) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(a.ipa, GuestPhysAddr::new(0x12_3456_7008));
}

#[test]
fn fault_kinds() {
    let cases = [
        (0x04, FaultKind::Translation { level: 0 }),
        (0x05, FaultKind::Translation { level: 1 }),
        (0x09, FaultKind::AccessFlag { level: 1 }),
        (0x0f, FaultKind::Permission { level: 3 }),
        (0x21, FaultKind::Alignment),
        (0x10, FaultKind::External),
        (0x30, FaultKind::Other(0x30)),
        (0x00, FaultKind::Other(0x00)),
    ];
    for (fsc, kind) in cases {
        assert_eq!(data_abort(0x9200_0000 | fsc).fault, kind, "fsc {fsc:#x}");
    }
}

#[test]
fn instruction_aborts() {
    // EC=0x20, permission fault level 2.
    let Exit::InstructionAbort(a) = decode(0x8200_000e, FAR, HPFAR_UART) else {
        panic!("not an instruction abort");
    };
    assert_eq!(a.fault, FaultKind::Permission { level: 2 });
    assert_eq!((a.access, a.write, a.s1ptw), (None, false, false));
    // On the guest's stage-1 walk, translation level 0. Bits 24 and 6 mean nothing here.
    let Exit::InstructionAbort(a) = decode(0x8300_00c4, FAR, HPFAR_UART) else {
        panic!("not an instruction abort");
    };
    assert!(a.s1ptw);
    assert_eq!((a.access, a.write), (None, false));
    assert_eq!(a.fault, FaultKind::Translation { level: 0 });
}

#[test]
fn instruction_length() {
    assert_eq!(esr_il(0x9381_0047), 4);
    assert_eq!(esr_il(0x9181_0047), 2);
    assert_eq!(data_abort(0x9181_0047).instr_len, 2);
}

#[test]
fn hypercalls() {
    assert_eq!(decode(0x5a00_0ea1, 0, 0), Exit::Hvc { imm: 0xea1 });
    assert_eq!(decode(0x5e00_0000, 0, 0), Exit::Smc { imm: 0 });
    assert_eq!(decode(0x5e00_ffff, 0, 0), Exit::Smc { imm: 0xffff });
}

#[test]
fn wfx() {
    assert_eq!(decode(0x0600_0000, 0, 0), Exit::Wfi);
    assert_eq!(decode(0x0600_0001, 0, 0), Exit::Wfe);
    assert_eq!(decode(0x0600_0002, 0, 0), Exit::Wfi, "WFIT");
    assert_eq!(decode(0x0600_0003, 0, 0), Exit::Wfe, "WFET");
}

#[test]
fn icc_sgi1r_write_from_x3() {
    // EC=0x18 IL; op0=3 op2=5 op1=0 CRn=12 Rt=3 CRm=11, write.
    let Exit::SysReg(s) = decode(0x623a_3076, 0, 0) else {
        panic!("not a sysreg trap");
    };
    assert_eq!(
        s,
        SysRegAccess {
            op0: 3,
            op1: 0,
            crn: 12,
            crm: 11,
            op2: 5,
            rt: 3,
            read: false
        }
    );
    assert_eq!(s.encoding(), ICC_SGI1R_EL1);
    assert_eq!(s.encoding().id(), 0x3a_3016);
}

/// Builds an MSR/MRS syndrome from the ISS layout, independently of the decoder.
fn sysreg_esr(r: SysReg, rt: u64, read: bool) -> u64 {
    (0x18 << 26)
        | (1 << 25)
        | (r.op0 as u64) << 20
        | (r.op2 as u64) << 17
        | (r.op1 as u64) << 14
        | (r.crn as u64) << 10
        | rt << 5
        | (r.crm as u64) << 1
        | read as u64
}

#[test]
fn named_sysregs_round_trip() {
    let all = [
        ICC_SGI1R_EL1,
        ICC_ASGI1R_EL1,
        ICC_SGI0R_EL1,
        CNTP_CTL_EL0,
        CNTP_CVAL_EL0,
        CNTP_TVAL_EL0,
    ];
    for (i, r) in all.iter().enumerate() {
        let rt = (i as u64 * 7) % 32;
        let Exit::SysReg(s) = decode(sysreg_esr(*r, rt, i % 2 == 0), 0, 0) else {
            panic!("not a sysreg trap");
        };
        assert_eq!(s.encoding(), *r);
        assert_eq!((s.rt as u64, s.read), (rt, i % 2 == 0));
        // No two named registers share an id.
        assert_eq!(all.iter().filter(|o| o.id() == r.id()).count(), 1);
    }
    // Constants are usable as match patterns.
    let Exit::SysReg(s) = decode(sysreg_esr(CNTP_TVAL_EL0, 0, true), 0, 0) else {
        panic!("not a sysreg trap");
    };
    assert!(matches!(s.encoding(), CNTP_TVAL_EL0));
}

#[test]
fn fp_and_unknown() {
    assert_eq!(decode(0x1e00_0000, 0, 0), Exit::FpAccess);
    // BRK #5 (EC 0x3c) is not something a guest should trap to EL2 with.
    assert_eq!(
        decode(0xf200_0005, 0, 0),
        Exit::Unknown { ec: 0x3c, iss: 5 }
    );
    assert_eq!(decode(0, 0, 0), Exit::Unknown { ec: 0, iss: 0 });
    assert_eq!(
        decode(u64::MAX, 0, 0),
        Exit::Unknown {
            ec: 0x3f,
            iss: 0x1ff_ffff
        }
    );
}

/// A stage-2 data abort syndrome with a valid ISS: `sas` (0..=3), `rt`, write or read.
fn dabt_esr(sas: u64, rt: u64, write: bool) -> u64 {
    (0x24 << 26) | (1 << 25) | (1 << 24) | (sas << 22) | (rt << 16) | (u64::from(write) << 6)
}

/// FAR/HPFAR of a fault at `ipa` (FAR holds the page offset in its low bits).
fn located(ipa: u64) -> (u64, u64) {
    (0xffff_0000_0000_0000 | (ipa & 0xfff), (ipa >> 12) << 4)
}

#[test]
fn gicd_sgir_writes_are_told_apart_as_decode_sees_them() {
    let sgir = 0x0300_1F00;
    let (far, hpfar) = located(sgir);
    let esr = dabt_esr(2, 7, true);
    assert_eq!(sgir_write(esr, far, hpfar), Some(7));
    let Exit::DataAbort(a) = decode(esr, far, hpfar) else {
        panic!("not a data abort");
    };
    assert_eq!(a.ipa.as_u64(), sgir);
    assert!(a.write);
    assert_eq!(a.access.map(|m| (m.width, m.reg)), Some((4, 7)));
    assert_eq!(
        sgir_write(dabt_esr(2, 31, true), far, hpfar),
        Some(31),
        "XZR"
    );
    // A read, another width, no valid syndrome, another register or another exit.
    assert_eq!(sgir_write(dabt_esr(2, 7, false), far, hpfar), None);
    assert_eq!(sgir_write(dabt_esr(3, 7, true), far, hpfar), None);
    assert_eq!(sgir_write(dabt_esr(0, 7, true), far, hpfar), None);
    assert_eq!(sgir_write(esr & !(1 << 24), far, hpfar), None);
    let (far2, hpfar2) = located(sgir + 4);
    assert_eq!(sgir_write(esr, far2, hpfar2), None);
    let (far3, hpfar3) = located(sgir + 0x1000);
    assert_eq!(sgir_write(esr, far3, hpfar3), None);
    assert_eq!(sgir_write(0x623a_3076, far, hpfar), None, "an MSR");
}

/// The locked path tells a `GICD_SGIR` write apart from its decoded abort exactly as the
/// fast path does from the raw syndrome: otherwise an SGI the fast path could not take
/// (say, its LRs needed the model first) would go through the vGIC model instead of being
/// posted, and the target's completion of it would drag its next posted interrupt into
/// the locked path too, round after round.
#[test]
fn the_locked_path_finds_gicd_sgir_writes_as_the_fast_path_does() {
    let sgir = 0x0300_1F00;
    let cases = [
        (dabt_esr(2, 7, true), sgir),
        (dabt_esr(2, 31, true), sgir),
        (dabt_esr(2, 7, false), sgir),
        (dabt_esr(3, 7, true), sgir),
        (dabt_esr(1, 7, true), sgir),
        (dabt_esr(0, 7, true), sgir),
        (dabt_esr(2, 7, true) & !(1 << 24), sgir),
        (dabt_esr(2, 7, true), sgir + 4),
        (dabt_esr(2, 7, true), sgir - 0x100),
        (dabt_esr(2, 7, true), sgir + 0x1000),
    ];
    let mut found = 0;
    for (esr, ipa) in cases {
        let (far, hpfar) = located(ipa);
        let Exit::DataAbort(a) = decode(esr, far, hpfar) else {
            panic!("{esr:#x} is not a data abort");
        };
        let fast = sgir_write(esr, far, hpfar);
        assert_eq!(abort_sgir_write(&a), fast, "esr {esr:#x} at {ipa:#x}");
        found += usize::from(fast.is_some());
    }
    assert_eq!(found, 2, "the two word writes of GICD_SGIR");
}

#[test]
fn mmio_values_are_cut_and_extended_as_the_register_says() {
    let access = |width, reg, sign_extend, sixty_four| MmioAccess {
        width,
        reg,
        sign_extend,
        sixty_four,
    };
    // Stores: cut to the width; XZR stores zero whatever the register block holds there.
    assert_eq!(access(1, 3, false, false).store_value(0x1234), 0x34);
    assert_eq!(access(4, 3, false, true).store_value(u64::MAX), 0xffff_ffff);
    assert_eq!(access(8, 3, false, true).store_value(u64::MAX), u64::MAX);
    assert_eq!(access(4, 31, false, false).store_value(0xdead), 0);
    // Loads: zero- or sign-extended, then cut to 32 bits for a Wn register.
    assert_eq!(access(1, 0, false, true).load_value(0x80), 0x80);
    assert_eq!(
        access(1, 0, true, true).load_value(0x80),
        0xffff_ffff_ffff_ff80
    );
    assert_eq!(access(1, 0, true, false).load_value(0x80), 0xffff_ff80);
    assert_eq!(access(2, 0, true, true).load_value(0x7fff), 0x7fff);
    assert_eq!(
        access(4, 0, true, true).load_value(0x8000_0000),
        0xffff_ffff_8000_0000
    );
    assert_eq!(
        access(8, 0, true, true).load_value(0x8000_0000),
        0x8000_0000
    );
}
