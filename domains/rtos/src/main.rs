//! The RTOS shell: wires the virtual timer and the console to the tick core in `lib.rs`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod shell {
    use bulkhead_runtime::{self as rt, arch, gic, irq, println, timer, StartInfo};
    use protocol::layout::VTIMER_PPI;
    use rtos::{parse_hz, Ticker, DEFAULT_HZ};

    rt::entry!(main);

    /// Shared by the tick handler and the idle loop; locked with IRQs masked by the loop.
    static TICKER: spin::Mutex<Option<Ticker>> = spin::Mutex::new(None);

    fn main(info: &'static StartInfo) {
        println!("ready");
        let hz = parse_hz(&info.cmdline).unwrap_or_else(|e| {
            println!("{e}; using hz={DEFAULT_HZ}");
            DEFAULT_HZ
        });
        irq::init_primary();
        gic::enable(VTIMER_PPI);
        irq::set_handler(on_irq);
        let ticker = Ticker::new(hz, timer::freq(), timer::now());
        let first = ticker.deadline();
        irq::without_interrupts(|| *TICKER.lock() = Some(ticker));
        timer::set_deadline(first);
        irq::enable_irqs();
        loop {
            arch::wfi();
            while let Some(r) = irq::without_interrupts(|| TICKER.lock().as_mut()?.report()) {
                println!("{r}");
            }
        }
    }

    fn on_irq(intid: u32) {
        if intid != VTIMER_PPI {
            return;
        }
        let now = timer::now();
        match TICKER.lock().as_mut().map(|t| t.on_tick(now)) {
            // Rewrites CVAL and CTL every time, as the microvisor expects.
            Some(next) => timer::set_deadline(next),
            None => timer::stop(),
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
