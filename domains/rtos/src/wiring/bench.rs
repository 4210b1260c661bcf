//! `bench=rt`: one periodic thread at the highest priority, released every `period_us`;
//! for `releases` jobs it records the release delay (job start minus nominal release)
//! while the timer interrupt records its latency (handler entry minus programmed
//! deadline). The PMU counts EL2 and guest instructions over the window. Nothing else runs
//! and nothing is printed until the end, so every EL2 instruction counted is spent on the
//! RTOS's timer interrupts.

use super::os::{self, IRQ, RECORDING};
use alloc::sync::Arc;
use bulkhead_runtime::{irq, pmu, println, timer};
use core::sync::atomic::{AtomicU64, Ordering};
use rtos::config::Bench;
use rtos::kernel::PeriodicSpec;
use rtos::stats::Samples;

static PMU_START: spin::Mutex<Option<(pmu::Sample, u64)>> = spin::Mutex::new(None);

/// Spawns the benchmark thread.
pub fn start(b: Bench) {
    let period = os::us_to_ticks(u64::from(b.period_us));
    let n = b.releases as usize;
    let jitter = Arc::new(spin::Mutex::new(Samples::with_capacity(n)));
    irq::without_interrupts(|| IRQ.lock().samples = Some(Samples::with_capacity(n + 64)));
    let done = Arc::new(AtomicU64::new(0));
    let first = timer::now() + 10 * period;
    let r = os::spawn_periodic(
        "bench",
        60,
        PeriodicSpec {
            period,
            deadline: period,
            budget: period / 2,
        },
        first,
        move || {
            let start = timer::now();
            let delay = start.saturating_sub(os::job_release());
            let k = done.fetch_add(1, Ordering::Relaxed);
            if k == 0 {
                // First job: start the window (its own release is not counted).
                pmu::start();
                let irqs = irq::without_interrupts(|| IRQ.lock().timer_irqs);
                *PMU_START.lock() = Some((pmu::sample(), irqs));
                RECORDING.store(true, Ordering::Relaxed);
                return;
            }
            if k as usize <= n {
                irq::without_interrupts(|| jitter.lock().push(delay));
            }
            if k as usize == n {
                RECORDING.store(false, Ordering::Relaxed);
                let end = pmu::sample();
                report(b, period, &jitter.lock(), end);
            }
            if k as usize >= n {
                os::sleep_until(u64::MAX);
            }
        },
    );
    if let Err(e) = r {
        println!("bench-rt failed to start: {e:?}");
    }
}

fn report(b: Bench, period: u64, jitter: &Samples, end: pmu::Sample) {
    let freq = timer::freq();
    let ns = |s: rtos::stats::Summary| s.scaled(1_000_000_000, freq);
    let (lat, irqs_now) = irq::without_interrupts(|| {
        let g = IRQ.lock();
        (g.samples.as_ref().map(|s| s.summary()), g.timer_irqs)
    });
    let Some((start, irqs_start)) = *PMU_START.lock() else {
        return;
    };
    let d = start.until(end);
    let irqs = irqs_now - irqs_start;
    println!("bench-rt irq_latency_ns {}", ns(lat.unwrap_or_default()));
    println!("bench-rt release_delay_ns {}", ns(jitter.summary()));
    println!(
        "bench-rt counters releases={} period_ns={} counter_hz={freq} timer_irqs={irqs} el2_instructions={} guest_instructions={}",
        b.releases,
        u128::from(period) * 1_000_000_000 / u128::from(freq),
        d.el2,
        d.guest
    );
    println!("bench-rt done");
    // Bare metal, the benchmark is the whole machine: power it off so QEMU exits.
    #[cfg(feature = "native")]
    bulkhead_runtime::psci::system_off();
}
