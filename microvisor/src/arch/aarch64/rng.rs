//! FEAT_RNG: the CPU's own random numbers (`RNDR`), one of the sources guests' seeds are
//! keyed from ([`crate::seeds`]).

use super::sysreg::read_id_group3;
use core::arch::asm;

/// 32 bytes from `RNDR`, or `None` if the CPU has no FEAT_RNG
/// (`ID_AA64ISAR0_EL1.RNDR`, bits \[63:60\]) or it kept failing.
pub fn random_32() -> Option<[u8; 32]> {
    if (read_id_group3(6, 0) >> 60) & 0xf == 0 {
        return None;
    }
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        // A read may fail for a moment (NZCV.Z set); a few retries, then give up.
        let v = (0..16).find_map(|_| rndr())?;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    Some(out)
}

fn rndr() -> Option<u64> {
    let (v, ok): (u64, u64);
    // SAFETY: FEAT_RNG was checked; reading RNDR (S3_3_C2_C4_0) only returns a number and
    // sets the flags, which `cset` reads (the asm does not preserve them).
    unsafe {
        asm!(
            "mrs {v}, s3_3_c2_c4_0",
            "cset {ok}, ne",
            v = out(reg) v,
            ok = out(reg) ok,
            options(nomem, nostack)
        )
    };
    (ok != 0).then_some(v)
}
