//! `mode=xenbad`: an XTF-style attacker of the Xen-compatible ABI (DESIGN §3.2, §7). Every
//! hypercall here is misused on purpose and its answer checked against the errno or
//! `GNTST_*` status the microvisor's cores define (which follow Xen's); a few positive
//! checks (loopback event channel, self-granted page) keep the run from passing vacuously.
//! The pass condition: every check ok, and this guest is still running afterwards (it
//! prints `xenbad: still alive <n>` every second).

mod calls;
mod grants;
mod poll;
mod ports;
pub(crate) use ports::loopback_port;
mod selfgrant;
mod store;

use bulkhead_runtime::{arch, gic, irq, println, timer, StartInfo};
use core::sync::atomic::{AtomicU64, Ordering};
use protocol::layout::VTIMER_PPI;
use protocol::xen::{GnttabOp, Hypercall, XenErrno};
use testguest::xencheck::{bad_pointers, pointer_calls, Report, Want};

/// What every attack needs: the report, who we are and where our RAM ends.
pub struct Ctx {
    r: Report,
    /// Our domain id.
    me: u16,
    /// First byte past our RAM.
    ram_end: u64,
}

impl Ctx {
    /// Checks `x0` of a call.
    fn ret(&mut self, what: &str, x0: u64, want: Want) {
        println!("{}", self.r.ret(what, x0, want));
    }

    /// Checks a call that must fail with `e`.
    fn err(&mut self, what: &str, x0: u64, e: XenErrno) {
        self.ret(what, x0, Want::Err(e));
    }

    /// Checks a grant operation's `x0` (must be 0) and per-entry status.
    fn status(&mut self, what: &str, x0: u64, status: i16, want: i16) {
        println!("{}", self.r.status(what, x0, status, want));
    }

    /// Checks anything else.
    fn truth(
        &mut self,
        what: &str,
        ok: bool,
        got: impl core::fmt::Display,
        want: impl core::fmt::Display,
    ) {
        println!("{}", self.r.truth(what, ok, got, want));
    }
}

/// One raw Xen hypercall.
fn hv(n: Hypercall, args: [u64; 5]) -> u64 {
    arch::xen_hvc(n as u64, args)
}

/// Our (identity-mapped) address of `x`, handed to the microvisor as a guest pointer.
fn addr<T>(x: &mut T) -> u64 {
    core::ptr::from_mut(x) as u64
}

/// `number(cmd, &x)`.
fn op<T>(n: Hypercall, cmd: u32, x: &mut T) -> u64 {
    hv(n, [u64::from(cmd), addr(x), 0, 0, 0])
}

/// `grant_table_op(cmd, &x, 1)`.
fn gnt<T>(cmd: GnttabOp, x: &mut T) -> u64 {
    hv(Hypercall::GrantTableOp, [cmd as u64, addr(x), 1, 0, 0])
}

/// A page of our RAM the microvisor may read and write behind our back (grant copies and
/// mappings), so every access is atomic.
#[repr(C, align(4096))]
pub struct Page([AtomicU64; 512]);

impl Page {
    const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; 512])
    }

    fn addr(&self) -> u64 {
        core::ptr::from_ref(self) as u64
    }

    fn gfn(&self) -> u64 {
        self.addr() / 4096
    }

    /// Fills word `i` with `seed + i`.
    fn fill(&self, seed: u64) {
        for (i, w) in (0u64..).zip(self.0.iter()) {
            w.store(seed.wrapping_add(i), Ordering::Relaxed);
        }
    }

    fn word(&self, i: usize) -> u64 {
        self.0[i].load(Ordering::Acquire)
    }
}

/// Every pointer-taking call against every bad address: -EFAULT, and we keep running.
fn bad_pointer_attacks(cx: &mut Ctx) {
    for (label, va) in bad_pointers(cx.ram_end) {
        for c in pointer_calls() {
            let x0 = hv(c.number, c.with(va));
            cx.err(
                &alloc::format!("efault {} @{label}", c.name),
                x0,
                XenErrno::EFAULT,
            );
        }
    }
}

/// Runs every attack, prints the verdict, then proves we are alive.
pub fn run(info: &StartInfo) {
    irq::init_primary();
    gic::enable(VTIMER_PPI);
    let mut cx = Ctx {
        r: Report::default(),
        me: info.domid,
        ram_end: info.ram_base.saturating_add(info.ram_size),
    };
    println!("xenbad: attacking as d{}", cx.me);
    bad_pointer_attacks(&mut cx);
    calls::unknown_ops(&mut cx);
    calls::hvm_vcpu_sched_console(&mut cx);
    calls::physmap(&mut cx);
    ports::bad_ports(&mut cx);
    ports::exhaustion(&mut cx);
    ports::loopback(&mut cx);
    poll::run(&mut cx);
    grants::bad_grants(&mut cx);
    selfgrant::run(&mut cx);
    calls::arg_in_shared_info(&mut cx);
    store::run(&mut cx, &info.name);
    println!("{}", cx.r.summary());
    still_alive()
}

/// Prints a heartbeat every second, with a Xen hypercall in it, forever.
fn still_alive() {
    irq::enable_irqs();
    let mut n: u64 = 0;
    loop {
        timer::sleep_ms(1000);
        n += 1;
        let v = hv(Hypercall::XenVersion, [0; 5]);
        println!("xenbad: still alive {n} (xen_version {v:#x})");
    }
}
