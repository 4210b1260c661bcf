//! Interrupt dispatch: the EL1 IRQ vector acknowledges interrupts and hands each INTID to
//! the domain's registered handler, then ends it.
//!
//! With no handler registered, a virtual-timer interrupt stops the timer (that is all
//! [`crate::timer::sleep_until`] needs) and anything else is just ended. Handlers run with
//! IRQs masked and must not block; shared state goes through atomics or locks taken with
//! [`without_interrupts`].

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use crate::{arch, gic, timer};
    use protocol::layout::{SHUTDOWN_PPI, VTIMER_PPI};

    pub use crate::arch::{enable_irqs, without_interrupts};

    static HANDLER: spin::Mutex<Option<fn(u32)>> = spin::Mutex::new(None);
    static POST: spin::Mutex<Option<fn()>> = spin::Mutex::new(None);

    /// Waits in WFI until `cond` holds. The check and the WFI run with IRQs masked (WFI
    /// still wakes on a pending interrupt, which is taken right after), so an interrupt
    /// that makes `cond` true between the check and the WFI cannot be lost.
    ///
    /// Going idle is also the domain's heartbeat ([`crate::heartbeat`]): the first call
    /// marks it ready, and each call beats (at most once a second). A loop that never comes
    /// back here stops beating and its controller's watchdog restarts it.
    pub fn wait_until(mut cond: impl FnMut() -> bool) {
        crate::heartbeat::idle();
        while !without_interrupts(|| {
            let done = cond();
            if !done {
                arch::wfi();
            }
            done
        }) {}
    }

    /// An event loop's idle wait: sleeps until `woken()` holds or the counter reaches
    /// `deadline`, with the virtual timer armed for the earlier of `deadline` and the next
    /// heartbeat's due time, so a loop that has nothing to do for longer than a heartbeat
    /// period still goes round to beat on time (a later deadline is the caller's to keep:
    /// it calls again).
    pub fn idle_until(deadline: u64, mut woken: impl FnMut() -> bool) {
        crate::heartbeat::idle();
        let wake = deadline.min(crate::heartbeat::next_due());
        if woken() || timer::now() >= wake {
            return;
        }
        timer::set_deadline(wake);
        wait_until(|| woken() || timer::now() >= wake);
        timer::stop();
    }

    /// Waits in WFI until `cond` holds, as [`wait_until`] does, but without counting as going
    /// idle: no heartbeat and no readiness. For a driver waiting on its device in the middle
    /// of serving requests: a device that never answers must leave the domain silent, so
    /// that its controller's watchdog restarts it (and resets the device), as a spin would.
    pub fn wait_for_device(mut cond: impl FnMut() -> bool) {
        while !without_interrupts(|| {
            let done = cond();
            if !done {
                arch::wfi();
            }
            done
        }) {}
    }

    /// Registers the domain's interrupt handler (replacing any previous one).
    pub fn set_handler(handler: fn(u32)) {
        without_interrupts(|| *HANDLER.lock() = Some(handler));
    }

    /// Registers a function run once per IRQ exception after every interrupt has been
    /// ended (EOI), still with IRQs masked: a thread scheduler preempts from here, so the
    /// interrupt is already deactivated when another thread takes over.
    pub fn set_post_handler(post: fn()) {
        without_interrupts(|| *POST.lock() = Some(post));
    }

    /// Sets up the GIC for the first vCPU: distributor plus this vCPU's banked interrupts
    /// and CPU interface. IRQs stay masked until [`enable_irqs`].
    pub fn init_primary() {
        gic::init_distributor();
        gic::init_cpu();
        // Every domain honours clean shutdown requests from its controller.
        gic::enable(SHUTDOWN_PPI);
    }

    /// Sets up the calling secondary vCPU's banked interrupts and CPU interface.
    pub fn init_secondary() {
        gic::init_cpu();
    }

    /// Called by the IRQ vector.
    pub(crate) fn dispatch() {
        while let Some(irq) = gic::ack() {
            let intid = irq.intid();
            if intid == SHUTDOWN_PPI {
                gic::eoi(irq);
                crate::cap::honour_shutdown_request();
                continue;
            }
            let handler = *HANDLER.lock();
            match handler {
                Some(h) => h(intid),
                None if intid == VTIMER_PPI => timer::stop(),
                None => {}
            }
            gic::eoi(irq);
        }
        let post = *POST.lock();
        if let Some(p) = post {
            p();
        }
        arch::isb();
    }
}
