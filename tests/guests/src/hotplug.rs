//! `mode=hotplug`: vCPU 0 powers vCPU 1 on and off [`HOTPLUG_ROUNDS`] times (PSCI CPU_ON /
//! CPU_OFF, as Linux's CPU hotplug stress does), each round at the other of two entry points
//! and with a new context id, and checks each time that vCPU 1 started fresh there with that
//! id in `x0`. vCPU 0 issues the next CPU_ON as soon as vCPU 1 reported, so it races vCPU
//! 1's CPU_OFF (review finding F14: a CPU_ON that overtakes the off vCPU's unload must not
//! be lost, nor resume the vCPU after its CPU_OFF).
//!
//! The runtime's secondary entry ignores the context id and always enters the same place,
//! so this mode brings its own: two entry stubs (asm, below) that note which one ran, turn
//! on the MMU with the runtime's identity map, take a private stack and call
//! [`secondary`] with the context id. vCPU 1 runs nothing else (no interrupts, no console).

use bulkhead_runtime::{arch, mmu, println, psci, timer};
use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};
use protocol::psci::PsciStatus;
use testguest::{hotplug_context, hotplug_entry, hotplug_judge, HOTPLUG_ROUNDS};

/// The vCPU that is hotplugged.
const VCPU: u64 = 1;
/// Seconds one round may take before it is a failure.
const ROUND_SECS: u64 = 2;

/// Bytes of vCPU 1's stack (a multiple of 4 KiB: the asm adds it as a shifted immediate).
const STACK_BYTES: usize = 16 << 10;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_BYTES]>);

// SAFETY: Rust never reads or writes the stack as data; only vCPU 1's asm points SP into
// it, and vCPU 1 runs one instance of the stub at a time (it is on again only after CPU_OFF).
unsafe impl Sync for Stack {}

static STACK: Stack = Stack(UnsafeCell::new([0; STACK_BYTES]));

#[repr(C, align(4096))]
struct Table([u64; 512]);

/// vCPU 1's translation table: the same identity map as the runtime's own.
static L1: Table = Table(mmu::identity_l1());

/// The context id vCPU 1 last found in `x0` (0: none yet). Written last, with Release.
static CONTEXT: AtomicU64 = AtomicU64::new(0);
/// The entry stub vCPU 1 last came through (valid once [`CONTEXT`] changed).
static ENTERED: AtomicU64 = AtomicU64::new(u64::MAX);
/// The context id of a round in which vCPU 1's CPU_OFF returned (0: never).
static OFF_RETURNED: AtomicU64 = AtomicU64::new(0);

const _: () = assert!(mmu::MAIR < 1 << 16);
const _: () = assert!(mmu::SCTLR_SET == (1 << 0) | (1 << 2) | (1 << 12));
const _: () = assert!(mmu::SCTLR_CLEAR == (1 << 1) | (1 << 19));
const _: () = assert!(STACK_BYTES.is_multiple_of(4096) && STACK_BYTES < 1 << 24);

// Entered by CPU_ON at EL1h with the MMU off, IRQs masked, `x0` = context id, every other
// register zero. x20/x21 carry the context id and the stub index across the MMU set-up.
// vCPU 1 never takes an exception it expects: every vector parks it (vCPU 0 then fails the
// round on its deadline).
global_asm!(
    r#"
    .section .text, "ax"
    .global testguest_hotplug_entry_0
    .global testguest_hotplug_entry_1
    .balign 4
testguest_hotplug_entry_0:
    mov     x21, #0
    b       1f
testguest_hotplug_entry_1:
    mov     x21, #1
1:  msr     daifset, #0xf
    mov     x20, x0
    movz    x9, #{mair}
    msr     mair_el1, x9
    movz    x9, #{tcr_lo}
    movk    x9, #{tcr_hi}, lsl #16
    msr     tcr_el1, x9
    adrp    x9, {l1}
    add     x9, x9, :lo12:{l1}
    msr     ttbr0_el1, x9
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    mrs     x9, sctlr_el1
    orr     x9, x9, #{sctlr_m}
    orr     x9, x9, #{sctlr_c}
    orr     x9, x9, #{sctlr_i}
    bic     x9, x9, #{sctlr_a}
    bic     x9, x9, #{sctlr_wxn}
    msr     sctlr_el1, x9
    isb
    adrp    x9, {stack}
    add     x9, x9, :lo12:{stack}
    add     x9, x9, #{stack_pages}, lsl #12
    mov     sp, x9
    adrp    x9, testguest_hotplug_vectors
    add     x9, x9, :lo12:testguest_hotplug_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, x20
    mov     x1, x21
    bl      {main}
2:  wfe
    b       2b

    .balign 2048
testguest_hotplug_vectors:
    .rept   16
    .balign 0x80
3:  wfe
    b       3b
    .endr
"#,
    l1 = sym L1,
    stack = sym STACK,
    main = sym secondary,
    stack_pages = const STACK_BYTES >> 12,
    mair = const mmu::MAIR,
    tcr_lo = const mmu::TCR & 0xFFFF,
    tcr_hi = const (mmu::TCR >> 16) & 0xFFFF,
    sctlr_m = const 1 << 0,
    sctlr_c = const 1 << 2,
    sctlr_i = const 1 << 12,
    sctlr_a = const 1 << 1,
    sctlr_wxn = const 1 << 19,
);

extern "C" {
    fn testguest_hotplug_entry_0();
    fn testguest_hotplug_entry_1();
}

/// vCPU 1, fresh from entry stub `entered` with context id `context`: report both, then
/// power off. CPU_OFF returning is the bug this mode looks for: it is noted for vCPU 0.
extern "C" fn secondary(context: u64, entered: u64) -> ! {
    ENTERED.store(entered, Ordering::Relaxed);
    CONTEXT.store(context, Ordering::Release);
    let _ = psci::cpu_off();
    OFF_RETURNED.store(context, Ordering::Release);
    psci::park()
}

/// vCPU 0: the rounds.
pub fn run() {
    let entries = [
        testguest_hotplug_entry_0 as *const () as usize as u64,
        testguest_hotplug_entry_1 as *const () as usize as u64,
    ];
    let mut refused = 0u64;
    let mut last = CONTEXT.load(Ordering::Acquire);
    for round in 1..=HOTPLUG_ROUNDS {
        let context = hotplug_context(round);
        let entry = entries[hotplug_entry(round) as usize];
        let deadline = timer::now().saturating_add(ROUND_SECS * timer::freq());
        // vCPU 1 may still be on its way out of the last round (it reported, then called
        // CPU_OFF): ALREADY_ON until the microvisor has it off.
        loop {
            match psci::cpu_on(VCPU, entry, context) {
                Ok(()) => break,
                Err(PsciStatus::AlreadyOn) if timer::now() < deadline => refused += 1,
                Err(e) => {
                    println!("FAIL: hotplug round {round}: CPU_ON: expected Ok got {e:?}");
                    return;
                }
            }
            core::hint::spin_loop();
        }
        loop {
            let returned = OFF_RETURNED.load(Ordering::Acquire);
            if returned != 0 {
                println!(
                    "FAIL: hotplug round {round}: vcpu1's CPU_OFF returned (context {returned:#x})"
                );
                return;
            }
            let seen = CONTEXT.load(Ordering::Acquire);
            if seen != last || timer::now() >= deadline {
                if let Some(line) = hotplug_judge(round, seen, ENTERED.load(Ordering::Relaxed)) {
                    println!("{line}");
                    return;
                }
                last = seen;
                break;
            }
            arch::isb();
        }
    }
    println!("hotplug: {HOTPLUG_ROUNDS} rounds, CPU_ON refused {refused} times while vcpu1 was going off");
    println!("PASS");
}
