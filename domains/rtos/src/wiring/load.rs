//! Bare-metal neighbour load (`load=<n>`): CPUs 1..=n run what the `mode=load` test guest
//! runs under the microvisor — busy arithmetic, a 50 µs virtual timer and an SGI to the
//! next loaded CPU every 2000 rounds — so the native baseline of `bench rt` can be loaded
//! the same way.

use bulkhead_runtime::{irq, load, println, smp};
use core::sync::atomic::{AtomicUsize, Ordering};

static CPUS: AtomicUsize = AtomicUsize::new(0);

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
    load::on_irq(intid);
}

fn cpu() {
    irq::init_secondary();
    let me = bulkhead_runtime::current_vcpu();
    let n = CPUS.load(Ordering::Acquire);
    // Loaded CPUs are 1..=n; the next one, wrapping within them.
    load::run(if me >= n { 1 } else { me + 1 })
}
