//! The RTOS shell's wiring, shared by the `rtos` binary (a domain under the microvisor) and
//! `rtos-native` (the same kernel bare metal, the baseline of `bulkhead bench rt`).
//!
//! Thread tid n runs in runtime thread slot n; tid 0 (idle) is `main`'s own context.
//! Kernel calls run with IRQs masked: `os::kcall` makes the call, reschedules and programs
//! the timer for the kernel's next event (tick-less); interrupt handlers use
//! `os::with_kernel` and the post-IRQ hook reschedules once every interrupt is ended.
//!
//! Markers: `ready`, `uptime <S>s ticks <N> late_max_ticks <L> misses <M> overruns <O>`
//! (once per second of control-task releases), after it `late-irq n=<N> worst_us=<U>
//! due=<T> elr=<PC> idle=<B>` when a timer interrupt of that second came 200 µs or more
//! after its deadline (`os::LateIrq`), shell answers prefixed `threads:`,
//! `stats:`, `help:`, and for the benchmark `bench-rt <what> n=.. min=.. avg=.. max=..
//! p99=..`, `bench-rt counters ...` and `bench-rt done`.

pub mod app;
pub mod bench;
#[cfg(feature = "native")]
pub mod load;
#[cfg(not(feature = "native"))]
pub mod net;
pub mod os;

use bulkhead_runtime::{self as rt, println, StartInfo};

rt::entry!(main);

/// The command line of the `native` build when the tools gave none.
const NATIVE_CMDLINE: &str = "bench=rt";

fn main(info: &'static StartInfo) {
    println!("ready");
    let cmdline = match info.cmdline.as_str() {
        "" if cfg!(feature = "native") => NATIVE_CMDLINE,
        c => c,
    };
    let cfg = rtos::config::parse(cmdline).unwrap_or_else(|e| {
        println!("{e}; running the demo at the default rate");
        rtos::config::parse("").unwrap_or(rtos::config::Config {
            hz: rtos::config::DEFAULT_HZ,
            bench: None,
            load: 0,
        })
    });
    os::init();
    #[cfg(feature = "native")]
    load::start(cfg.load);
    match cfg.bench {
        Some(b) => bench::start(b),
        None => {
            app::start(cfg.hz);
            #[cfg(not(feature = "native"))]
            if let Err(e) = net::start() {
                println!("net: cannot start: {e:?}");
            }
        }
    }
    os::run_idle()
}
