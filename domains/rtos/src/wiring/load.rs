//! Bare-metal neighbour load (`load=<n>`): CPUs 1..=n run what the `mode=load` test guest
//! runs under the microvisor — busy arithmetic, a 50 µs virtual timer and an SGI to the
//! next loaded CPU every 2000 rounds — so the native baseline of `bench rt` can be loaded
//! the same way.

use bulkhead_runtime::{gic, irq, println, smp, timer};
use core::sync::atomic::{AtomicUsize, Ordering};
use protocol::layout::VTIMER_PPI;

const LOAD_SGI: u32 = 3;
const TIMER_US: u64 = 50;
const ROUNDS_PER_SGI: u32 = 2_000;
static CPUS: AtomicUsize = AtomicUsize::new(0);

fn period() -> u64 {
    (TIMER_US * timer::freq() / 1_000_000).max(1)
}

/// Starts `n` load CPUs (1..=n).
pub fn start(n: u32) {
    CPUS.store(n as usize, Ordering::Release);
    for v in 1..=n as usize {
        if let Err(e) = smp::start_vcpu(v, cpu) {
            println!("load: CPU_ON {v}: {e:?}");
        }
    }
}

/// Interrupts of a load CPU.
pub fn on_irq(intid: u32) {
    if intid == VTIMER_PPI {
        timer::set_deadline(timer::now() + period());
    }
}

fn cpu() {
    irq::init_secondary();
    let me = bulkhead_runtime::current_vcpu();
    let n = CPUS.load(Ordering::Acquire);
    // Loaded CPUs are 1..=n; the next one, wrapping within them.
    let peer = if me >= n { 1 } else { me + 1 };
    gic::enable(LOAD_SGI);
    gic::enable(VTIMER_PPI);
    timer::set_deadline(timer::now() + period());
    irq::enable_irqs();
    println!("load cpu{me} running");
    let mut x = me as u64;
    loop {
        for i in 0..ROUNDS_PER_SGI {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(u64::from(i));
        }
        core::hint::black_box(x);
        if peer != me {
            gic::send_sgi(LOAD_SGI, peer);
        }
    }
}
