//! FP/SIMD state of a vCPU. The microvisor is built soft-float and never touches these
//! registers, so they only need saving when another vCPU takes the CPU.

/// V0..V31, FPSR and FPCR.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct FpState {
    /// The 32 128-bit vector registers.
    pub v: [u128; 32],
    /// Floating-point status.
    pub fpsr: u64,
    /// Floating-point control.
    pub fpcr: u64,
}

core::arch::global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .global fpsimd_save
fpsimd_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x3, x0, #512
    stp     x1, x2, [x3]
    ret

    .global fpsimd_restore
fpsimd_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x3, x0, #512
    ldp     x1, x2, [x3]
    msr     fpsr, x1
    msr     fpcr, x2
    ret
"#
);

unsafe extern "C" {
    fn fpsimd_save(state: *mut FpState);
    fn fpsimd_restore(state: *const FpState);
}

impl FpState {
    /// Captures the FP/SIMD registers of the vCPU leaving this CPU.
    pub fn save(&mut self) {
        // SAFETY: writes exactly `size_of::<FpState>()` bytes into `self`; FP is not
        // trapped at EL2 (CPTR_EL2.TFP = 0).
        unsafe { fpsimd_save(self) };
    }
    /// Loads the FP/SIMD registers of the vCPU taking this CPU.
    pub fn restore(&self) {
        // SAFETY: reads exactly `size_of::<FpState>()` bytes from `self`; EL2 code never
        // uses these registers, so the values only reach the guest.
        unsafe { fpsimd_restore(self) };
    }
}

// The asm above hard-codes these offsets.
const _: () = assert!(core::mem::size_of::<FpState>() == 528);
const _: () = assert!(core::mem::offset_of!(FpState, fpsr) == 512);
