//! The `micro` benchmark guest on Bulkhead, briefly (20 samples per metric): each of the
//! `bench micro` systems boots under `-icount` and every metric line of that boot
//! appears with a sane summary (the right sample count, ordered percentiles, figures in a
//! plausible range). Figures are not judged: benchmarks are measured, never asserted.
//! One more boot checks the RAM of an `Image` guest, scrubbed on first touch.

use bulkhead_tests::{Machine, TAIL_LINES};
use bulkhead_tools::bench::micro::parse;
use bulkhead_tools::bench::micro_run::{run, Boot};
use micro::metric;
use std::sync::Mutex;
use std::time::Duration;

/// One boot at a time: the boots share the packed image directory.
static QEMU: Mutex<()> = Mutex::new(());

/// Samples per metric: enough to exercise the loops, few enough to be quick.
const SAMPLES: usize = 20;
/// Largest figure accepted (instructions): 0.1 s of virtual time; a wrapped subtraction or a
/// stale timestamp would be far larger.
const SANE_MAX: u64 = 100_000_000;

fn check(boot: Boot, metrics: &[&str]) {
    let _one = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(boot, SAMPLES, Duration::from_secs(300), Machine::Virt)
        .unwrap_or_else(|e| panic!("micro {}: {e:#}", boot.name()));
    assert!(
        out.log.contains("hv=bulkhead extraversion=-bulkhead"),
        "{}",
        out.report(TAIL_LINES)
    );
    let got = parse(&out.log);
    for name in metrics {
        let (_, d) = got
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no `{name}` line: {}", out.report(TAIL_LINES)));
        assert_eq!(d.n, SAMPLES, "{name}: {d:?}");
        assert!(
            d.min <= d.p50 && d.p50 <= d.p99 && d.p99 <= d.max && d.max < SANE_MAX,
            "{name}: {d:?}"
        );
        assert!(
            d.p50 > 0,
            "{name}: a hypervisor path costs instructions: {d:?}"
        );
    }
}

#[test]
fn micro_solo_prints_round_trips_timer_and_ipi() {
    check(
        Boot::Solo,
        &[
            metric::XEN_VERSION,
            metric::CAP_NULL,
            metric::TIMER_EXCLUSIVE,
            metric::VIPI,
        ],
    );
}

#[test]
fn micro_vipi_shared_prints_the_shared_virtual_ipi() {
    check(Boot::SoloShared, &[metric::VIPI_SHARED]);
}

#[test]
fn micro_shared_prints_the_shared_timer() {
    check(Boot::Shared, &[metric::TIMER_SHARED]);
}

#[test]
fn micro_shared_running_prints_the_running_shared_timer() {
    check(Boot::SharedRunning, &[metric::TIMER_SHARED_RUNNING]);
}

#[test]
fn micro_evtchn_prints_the_event_channel_latency() {
    check(Boot::Evtchn, &[metric::EVTCHN]);
}

#[test]
fn micro_evtchn_shared_prints_the_shared_event_channel_latency() {
    check(Boot::EvtchnShared, &[metric::EVTCHN_SHARED]);
}

#[test]
fn micro_evtchn_switch_prints_the_switched_event_channel_latency() {
    check(Boot::EvtchnSwitch, &[metric::EVTCHN_SWITCH]);
}

#[test]
fn micro_evtchn_same_prints_the_same_pcpu_event_channel_latency() {
    check(Boot::EvtchnSame, &[metric::EVTCHN_SAME]);
}

#[test]
fn micro_lazy_ram_sees_zeroes_first_and_keeps_what_anyone_wrote() {
    let _one = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(
        Boot::LazyRam,
        SAMPLES,
        Duration::from_secs(300),
        Machine::Virt,
    )
    .unwrap_or_else(|e| panic!("micro {}: {e:#}", Boot::LazyRam.name()));
    assert!(
        out.log.contains(
            "MICRO lazy_ram ok: first load, hypervisor write, grant copy and first fetch"
        ),
        "{}",
        out.report(TAIL_LINES)
    );
}
