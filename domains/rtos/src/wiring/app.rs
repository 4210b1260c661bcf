//! The demo application: what the RTOS runs by default, exercising every kernel service
//! while it reports once per second.
//!
//! - `control` (periodic at `hz`, highest priority): a small control-law job; measures its
//!   release delay; every `hz` jobs sends the second count to `monitor`'s queue.
//! - `sensor` (periodic 5 ms): updates shared data under `SHARED` (a mutex), wakes
//!   `logger` every 100 jobs (semaphore) and raises the demo SGI every 50 (the SGI's
//!   handler notifies `worker`: the ISR-to-thread path).
//! - `logger` (low priority): holds `SHARED` for a while; `sensor` then inherits-blocks on
//!   it and priority inheritance keeps `worker`/`monitor` from starving it.
//! - `worker`: counts notifications.
//! - `monitor`: prints the `uptime` line for each message.
//! - `shell`: polls the console every 20 ms and answers `threads`, `stats`, `help`.

use super::os::{self, IRQ};
use crate::printk;
use alloc::string::String;
use bulkhead_runtime::{cap, println, timer};
use core::sync::atomic::{AtomicU64, Ordering};
use rtos::kernel::PeriodicSpec;
use rtos::shell::{self, Command, IrqStats, LineEditor};

static LATE_MAX: AtomicU64 = AtomicU64::new(0);
static JOBS: AtomicU64 = AtomicU64::new(0);
static NOTIFIED: AtomicU64 = AtomicU64::new(0);
static SHARED_VALUE: AtomicU64 = AtomicU64::new(0);

/// Spawns the demo threads.
pub fn start(hz: u32) {
    let period = (timer::freq() / u64::from(hz)).max(1);
    let now = timer::now();
    let shared = os::with_kernel(|k, _| k.mutex_create());
    let wake_logger = os::with_kernel(|k, _| k.sem_create(0, 1));
    let reports = os::with_kernel(|k, _| k.queue_create(8));
    let hz = u64::from(hz);
    let r = (|| {
        os::start_klogd()?;
        os::spawn_periodic(
            "control",
            40,
            PeriodicSpec {
                period,
                deadline: period,
                budget: period / 2,
            },
            now + period,
            move || {
                let late = timer::now().saturating_sub(os::job_release());
                LATE_MAX.fetch_max(late, Ordering::Relaxed);
                // A small control law: a few hundred instructions of integer arithmetic.
                let mut x = JOBS.load(Ordering::Relaxed);
                for i in 0..64u64 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                }
                core::hint::black_box(x);
                let n = JOBS.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(hz) {
                    let _ = os::queue_try_send(reports, n / hz);
                }
            },
        )?;
        let sensor_period = os::us_to_ticks(5_000);
        os::spawn_periodic(
            "sensor",
            30,
            PeriodicSpec {
                period: sensor_period,
                deadline: sensor_period,
                budget: sensor_period / 2,
            },
            now + sensor_period,
            move || {
                if os::mutex_lock(shared).is_ok() {
                    SHARED_VALUE.fetch_add(1, Ordering::Relaxed);
                    let _ = os::mutex_unlock(shared);
                }
                let n = SHARED_VALUE.load(Ordering::Relaxed);
                if n.is_multiple_of(100) {
                    let _ = os::sem_give(wake_logger);
                }
                if n.is_multiple_of(50) {
                    os::raise_demo_sgi();
                }
            },
        )?;
        let worker = os::spawn("worker", 20, || loop {
            let bits = os::wait_notify();
            NOTIFIED.fetch_add(u64::from(bits.count_ones()), Ordering::Relaxed);
        })?;
        os::set_sgi_target(worker);
        os::spawn("monitor", 10, move || loop {
            let Ok(s) = os::queue_recv(reports) else {
                continue;
            };
            let (misses, overruns) = os::with_kernel(|k, _| {
                k.threads()
                    .iter()
                    .filter_map(|t| t.jobs())
                    .fold((0, 0), |(m, o), j| (m + j.misses, o + j.overruns))
            });
            printk!(
                "uptime {s}s ticks {} late_max_ticks {} misses {misses} overruns {overruns}",
                JOBS.load(Ordering::Relaxed),
                LATE_MAX.load(Ordering::Relaxed)
            );
            if let Some(l) = os::take_late_irq() {
                let tpu = os::ticks_per_us();
                printk!(
                    "late-irq n={} worst_us={} due={} elr={:#x} idle={}",
                    l.count,
                    l.lat / tpu,
                    l.armed,
                    l.elr,
                    l.idle
                );
            }
            // Once a second: `ctl list` then shows our CPU time without the idle time.
            bulkhead_runtime::cap::idle_report(os::idle_ticks());
        })?;
        os::spawn("logger", 3, move || loop {
            if os::sem_take(wake_logger, None).is_err() {
                os::sleep_us(100_000);
                continue;
            }
            // A long critical section: `sensor` may block on it (and lend its priority).
            if os::mutex_lock(shared).is_ok() {
                let until = timer::now() + os::us_to_ticks(300);
                while timer::now() < until {
                    core::hint::spin_loop();
                }
                let _ = os::mutex_unlock(shared);
            }
        })?;
        os::spawn("shell", 2, shell_thread)?;
        Ok::<(), rtos::Error>(())
    })();
    if let Err(e) = r {
        println!("demo start failed: {e:?}");
    }
}

fn shell_thread() {
    let mut editor = LineEditor::new();
    let mut reported = false;
    let boot = timer::now();
    println!("shell: commands: threads, stats, help");
    loop {
        os::sleep_us(20_000);
        let mut buf = [0u8; 16];
        let n = match cap::console_read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                if !reported {
                    println!("shell: no console input ({e:?}); still polling");
                    reported = true;
                }
                0
            }
        };
        for &b in &buf[..n] {
            if let Some(line) = editor.push(b) {
                run_command(&line, boot);
            }
        }
    }
}

fn run_command(line: &str, boot: u64) {
    let tpu = os::ticks_per_us();
    let lines = match shell::parse(line) {
        Command::Empty => return,
        Command::Help => alloc::vec![String::from("help: ") + shell::HELP],
        Command::Threads => os::with_kernel(|k, _| shell::threads_table(k, tpu)),
        Command::Stats => {
            let irq = {
                let s = bulkhead_runtime::irq::without_interrupts(|| {
                    let g = IRQ.lock();
                    (g.timer_irqs, g.summary())
                });
                IrqStats {
                    timer_irqs: s.0,
                    latency: s.1,
                }
            };
            let uptime_ms = (timer::now() - boot) / (tpu * 1000);
            let mut v = os::with_kernel(|k, _| shell::stats_lines(k, &irq, uptime_ms, tpu));
            v.push(alloc::format!(
                "stats: notifications={} shared_updates={}",
                NOTIFIED.load(Ordering::Relaxed),
                SHARED_VALUE.load(Ordering::Relaxed)
            ));
            v
        }
        Command::Unknown(c) => alloc::vec![alloc::format!(
            "shell: unknown command `{c}`; {}",
            shell::HELP
        )],
    };
    for l in lines {
        println!("{l}");
    }
}
