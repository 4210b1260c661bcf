//! A CPU-and-interrupt load: busy arithmetic, a 50 µs virtual timer and an SGI to a peer CPU
//! every 2000 rounds. The `mode=load` test guest runs it under the microvisor and the
//! bare-metal RTOS build runs it natively, so `bench rt` loads both the same way.

/// SGI the load sends between its CPUs.
pub const SGI: u32 = 3;
/// Virtual-timer period, in µs.
pub const TIMER_US: u64 = 50;
/// Busy-loop rounds between two SGIs.
pub const ROUNDS_PER_SGI: u32 = 2_000;

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::{ROUNDS_PER_SGI, SGI, TIMER_US};
    use crate::{gic, irq, println, smp, timer};
    use protocol::layout::VTIMER_PPI;

    fn period() -> u64 {
        (TIMER_US * timer::freq() / 1_000_000).max(1)
    }

    /// Handles the load's interrupts (re-arms its timer); route a load CPU's IRQs here.
    pub fn on_irq(intid: u32) {
        if intid == VTIMER_PPI {
            timer::set_deadline(timer::now() + period());
        }
    }

    /// Runs the load on the calling CPU forever, sending SGIs to CPU `peer` (none if it is
    /// this CPU). The caller has initialised this CPU's interrupt controller.
    pub fn run(peer: usize) -> ! {
        let me = smp::current_vcpu();
        gic::enable(SGI);
        gic::enable(VTIMER_PPI);
        timer::set_deadline(timer::now() + period());
        irq::enable_irqs();
        println!("load vcpu{me} running");
        let mut x = me as u64;
        loop {
            for i in 0..ROUNDS_PER_SGI {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(u64::from(i));
            }
            core::hint::black_box(x);
            if peer != me {
                gic::send_sgi(SGI, peer);
            }
        }
    }
}
