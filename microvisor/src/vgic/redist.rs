//! Redistributor (`GICR_*`) offset decoding for one vCPU's 128 KiB region: the RD frame at
//! +0 (identity, wake-up) and the SGI frame at +0x1_0000 (SGI/PPI state).
//!
//! Invariants: the caller only passes `vcpu < nr_vcpus` (absent frames are RAZ/WI before
//! reaching here); LPIs are not implemented, so every LPI register is RAZ/WI and
//! `GICR_TYPER.PLPIS` reads 0. `None` means "no register of that width here".

use super::dist::{BIT_BANKS, GIC_IIDR, GIC_PIDR2, ID_BLOCK, PIDR2_OFFSET};
use super::regs::Reg;

/// Offset of the SGI frame within a redistributor region.
const SGI_FRAME: u64 = 0x1_0000;
/// `GICR_TYPER.Last`: this is the final redistributor of the contiguous region.
pub(crate) const TYPER_LAST: u64 = 1 << 4;
/// SGIs are always edge-triggered: `GICR_ICFGR0` reads 0b10 in every field.
const ICFGR0_SGIS: u64 = 0xAAAA_AAAA;

/// `GICR_TYPER` of `vcpu`'s redistributor: Affinity_Value [63:32] = the vCPU's affinity
/// (Aff0 = index), Processor_Number [23:8] = index, Last [4] on the final one, no LPIs.
pub(crate) fn typer(vcpu: usize, last: bool) -> u64 {
    let v = vcpu as u64;
    (v << 32) | ((v & 0xFFFF) << 8) | if last { TYPER_LAST } else { 0 }
}

/// Decodes an access at `off` within `vcpu`'s redistributor region (already checked
/// aligned and 1/2/4/8 bytes wide). `last` says whether it is the final redistributor.
pub(crate) fn decode(vcpu: usize, last: bool, off: u64, width: u8) -> Option<Reg> {
    if off < SGI_FRAME {
        decode_rd(vcpu, last, off, width)
    } else {
        decode_sgi(vcpu, off - SGI_FRAME, width)
    }
}

fn decode_rd(vcpu: usize, last: bool, off: u64, width: u8) -> Option<Reg> {
    let word = width == 4;
    let dword = width == 8;
    match off {
        // CTLR: no LPIs to enable, and writes complete at once, so RWP/UWP read 0.
        0x0000 if word => Some(Reg::Raz),
        0x0004 if word => Some(Reg::Const(u64::from(GIC_IIDR))),
        // TYPER is 64-bit; 32-bit reads of either half are also permitted.
        0x0008 if dword => Some(Reg::Const(typer(vcpu, last))),
        0x0008 if word => Some(Reg::Const(typer(vcpu, last) & 0xFFFF_FFFF)),
        0x000C if word => Some(Reg::Const(typer(vcpu, last) >> 32)),
        // STATUSR, MPAMIDR, PARTIDR: nothing to report.
        0x0010 | 0x0018 | 0x001C if word => Some(Reg::Raz),
        0x0014 if word => Some(Reg::Waker { vcpu }),
        // SETLPIR, CLRLPIR, PROPBASER, PENDBASER, INVLPIR, INVALLR, SYNCR: no LPIs.
        0x0040 | 0x0048 | 0x0070 | 0x0078 | 0x00A0 | 0x00B0 if dword || word => Some(Reg::Raz),
        0x0044 | 0x004C | 0x0074 | 0x007C | 0x00A4 | 0x00B4 if word => Some(Reg::Raz),
        0x00C0 if word => Some(Reg::Raz),
        PIDR2_OFFSET if word => Some(Reg::Const(u64::from(GIC_PIDR2))),
        o if ID_BLOCK.contains(&o) && word => Some(Reg::Raz),
        _ => None,
    }
}

fn decode_sgi(vcpu: usize, off: u64, width: u8) -> Option<Reg> {
    let word = width == 4;
    match off {
        0x0080 | 0x0100 | 0x0180 | 0x0200 | 0x0280 | 0x0300 | 0x0380 if word => {
            let (_, kind) = BIT_BANKS.iter().copied().find(|&(b, _)| b == off)?;
            Some(Reg::Bits {
                kind,
                vcpu,
                first: 0,
            })
        }
        0x0400..=0x041F if word || width == 1 => Some(Reg::Prio {
            vcpu,
            intid: (off - 0x0400) as u32,
            len: width,
        }),
        0x0C00 if word => Some(Reg::Const(ICFGR0_SGIS)),
        0x0C04 if word => Some(Reg::Cfg { vcpu, first: 16 }),
        // IGRPMODR0 and NSACR are RAZ/WI with a single security state (DS = 1).
        0x0D00 | 0x0E00 if word => Some(Reg::Raz),
        PIDR2_OFFSET if word => Some(Reg::Const(u64::from(GIC_PIDR2))),
        o if ID_BLOCK.contains(&o) && word => Some(Reg::Raz),
        _ => None,
    }
}
