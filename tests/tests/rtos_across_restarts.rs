//! The RTOS keeps every deadline while the driver domains beside it crash and restart in
//! place (issue 11: "the RTOS's deadlines hold during both"). blkdom and netdom serve a
//! stock Linux guest's disk and vif, which it keeps busy (direct reads of `/dev/xvda` and
//! a ping every 0.5 s); the test crashes each of them [`CRASHES`] times by a genuine fault
//! (`ctl crash`), waiting for every new incarnation to resume its backend before the next
//! crash, while the RTOS runs its 1 kHz periodic tasks pinned alone on an exclusive pCPU.
//! dom0 tearing a driver domain down (revoking its grants, resetting its device) and
//! building the next one (scrubbing, loading, starting it) all happen on the other pCPUs
//! and must not cost the RTOS a release.
//!
//! Runs under `-icount` so time is virtual and deterministic: a slow or busy host cannot
//! make a task miss its deadline, only the system under test can. What is asserted: the
//! RTOS reports every second, it misses no release and overruns no job while the whole
//! system boots (six domains built by dom0), and from a second with the guest's I/O running
//! to two seconds after the last restart it misses none either.
//!
//! The system's first domain is the metronome (`SystemToml::metronome`), and the run has
//! QEMU's own tick (`RunOptions::realtime_test`): under `-icount` QEMU emulates one CPU
//! at a time, each until the machine's next timer deadline, so without them a CPU-bound
//! dom0 or driver domain runs for milliseconds while the RTOS's CPU, its timer interrupt
//! pending, waits its turn. That emulation effect alone cost the RTOS about 15 releases per
//! restart; with the metronome, none. The metronome lapses while its own timer waits for
//! its CPU's turn, and the boot then still cost the RTOS about 150 releases; with the tick
//! as well, none. And the
//! RTOS's pCPU follows one that holds nothing (`check_rtos_placement`): QEMU 7.2 gives
//! the CPU behind a busy one no instructions until the busy one idles, which cost this
//! test a miss about once in 30 runs while the RTOS sat behind Linux's pCPU.

use bulkhead_tests::rtos_reports::{assert_every_second, more_uptimes, uptimes};
use bulkhead_tests::{check_rtos_placement, disk_xvda, SystemToml};
use bulkhead_tests::{connect, history, scratch_dir, wait_count, wait_for_text, Boot, Expect};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request, Response};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Crashes of each driver domain.
const CRASHES: usize = 3;

/// How long the microvisor may hold its global lock (virtual µs) on the CPU rebuilding a
/// driver domain, from the restart to the new instance's memory being loaded (its
/// `bulkhead: HYP held … (longest while dN was built)` line), in the median restart of
/// the six. Before issue 12's fixes the restart pass itself held it 480-760 µs (stage-2
/// teardown read a table entry at a time through a checked window, the frame bitmap was
/// set and checked a page at a time); after, about 200-230 µs. Under `-icount` a pass that
/// makes QEMU leave its CPU loop (a broadcast TLB invalidation, a device register access)
/// also waits out a round of the other CPUs' turns, hence the margin over the 100 µs the
/// microvisor aims for (`lock_holds::BUDGET_US`).
const RESTART_HOLD_MEDIAN_US: u64 = 300;
/// The same for any one restart. A pass that QEMU splits across its turns counts the other
/// CPUs' instructions in between (they share one virtual clock): with QEMU's tick, one
/// restart of six took 435 µs where the others took 201-224.
const RESTART_HOLD_BOUND_US: u64 = 800;

fn system(dir: &Path) -> PathBuf {
    let restart = "on_crash = \"restart\"\ncrash_limit = \"10/60s\"\n";
    // pCPU 3 holds nothing: see `check_rtos_placement`.
    SystemToml::new("rtos_across_restarts", 7, "")
        .metronome((5, 6))
        .domain("[[domain]]\nname = \"rtos\"\nimage = \"rtos\"\nmemory = 8\ncpus = \"4\"\nexclusive = true\ncmdline = \"hz=1000\"\n")
        .driver("blkdom", 1, restart)
        .driver("netdom", 1, restart)
        .linux(
            "linux",
            2,
            &format!("{}vif = [\"\"]\n", disk_xvda(&dir.join("disk.img"))),
        )
        .write(dir, "rtos-across-restarts.toml")
}

#[test]
fn rtos_keeps_deadlines_while_driver_domains_restart() {
    let dir = scratch_dir("rtos-across-restarts");
    let f = std::fs::File::create(dir.join("disk.img")).expect("image");
    f.set_len(8 << 20).expect("image size");
    drop(f);

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[dom0\] linux \(d\d+\): powered off -> destroy")
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(rtos\) stopped"))
        .expect("markers");
    let system = system(&dir);
    check_rtos_placement(&system).unwrap();
    let opts = RunOptions::realtime_test(system, expect, Duration::from_secs(1500));
    let boot = Boot::start(opts);

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        900,
    );
    wait_for_text(&mut c, "[netdom] vif 5/0 connected", "the vif", 300);
    // Keep both backends busy through the crashes: direct reads of the disk, and pings.
    bulkhead_tests::dhcp_address(&mut c, "linux");
    bulkhead_tests::type_line(
        &mut c,
        "linux",
        "(while :; do dd if=/dev/xvda of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null; done) & ping -i 0.5 10.0.2.2 >/tmp/ping.log 2>&1 & echo LOAD-STARTED",
    );
    wait_for_text(&mut c, "[linux] LOAD-STARTED", "the guest's I/O", 120);
    // The baseline: the first whole second of reports with the guest's I/O running.
    let h = history(&mut c);
    let h = more_uptimes(&mut c, &h, 2);
    let baseline = *uptimes(&h).last().expect("uptime");

    for (name, ready) in [
        ("blkdom", "[blkdom] vbd d5/51712: resumed at response "),
        ("netdom", "[netdom] vif 5/0 resumed tx at "),
    ] {
        for n in 1..=CRASHES {
            let r = c
                .call(&Request::Crash {
                    domain: DomainRef::Name(name.into()),
                })
                .expect("crash");
            assert_eq!(r, Response::Done, "crash {name}");
            wait_count(&mut c, ready, n, "the restarted backend resumed", 600);
        }
    }
    // Two more whole seconds of releases after the last restart.
    let h = history(&mut c);
    let h = more_uptimes(&mut c, &h, 2);
    assert_eq!(
        h.matches("[dom0] blkdom (d3): crashed (code ").count(),
        CRASHES,
        "every blkdom crash was a real fault handled by dom0"
    );
    bulkhead_tests::type_line(
        &mut c,
        "linux",
        "echo PING-REPLIES=$(grep -c 'bytes from' /tmp/ping.log); poweroff -f",
    );
    let out = boot.finish("system rtos_across_restarts");
    let replies: u32 = out
        .log
        .split("[linux] PING-REPLIES=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the guest's ping count");
    assert!(replies > 0, "the guest's pings got no reply");
    bulkhead_tests::lock_holds::print("rtos_across_restarts", &out.log);
    assert!(
        !bulkhead_tests::lock_holds::holds(&out.log).is_empty(),
        "the microvisor logged no lock hold at all (it logs a new longest from 20 us, and \
         the longest of each domain build): {}",
        out.log_path.display()
    );
    let reports = uptimes(&out.log);
    assert_every_second(&reports, &out.log_path);
    let at = |second: u64| {
        *reports
            .iter()
            .find(|r| r.0 == second)
            .expect("every second is reported")
    };
    let (start, end) = (at(baseline.0), *reports.last().expect("uptime"));
    // The rebuilds from the baseline report on: each restart's line covers its teardown and
    // rebuild, from the restart to the new instance's memory being loaded.
    let from = out
        .log
        .find(&format!("[rtos] uptime {}s ", baseline.0))
        .expect("the baseline report is in the log");
    let restarts = bulkhead_tests::lock_holds::of_builds(&out.log[from..]);
    let (median, longest) = (
        bulkhead_tests::lock_holds::median(&restarts),
        restarts.iter().copied().max().unwrap_or(0),
    );
    eprintln!("HYP holds while a driver domain was rebuilt: {restarts:?} us (median {median})");
    assert!(
        !restarts.is_empty(),
        "no rebuild logged its longest lock hold: {}",
        out.log_path.display()
    );
    assert!(
        median <= RESTART_HOLD_MEDIAN_US && longest <= RESTART_HOLD_BOUND_US,
        "the microvisor held its lock {restarts:?} us while rebuilding driver domains (bounds: median {RESTART_HOLD_MEDIAN_US} us, each {RESTART_HOLD_BOUND_US} us): {}",
        out.log_path.display()
    );
    let (missed, overran) = (end.1 - start.1, end.2 - start.2);
    eprintln!(
        "RTOS from second {} to {} ({} restarts, the guest's disk and network I/O): {missed} misses, {overran} overruns; {replies} ping replies; before that (the system's boot): {} misses",
        start.0,
        end.0,
        2 * CRASHES,
        start.1
    );
    assert_eq!(
        (missed, overran),
        (0, 0),
        "the RTOS missed {missed} release(s) and overran {overran} job(s) during the restarts: {}",
        out.log_path.display()
    );
    assert_eq!(
        (start.1, start.2),
        (0, 0),
        "the RTOS missed {} release(s) and overran {} job(s) while the system booted: {}",
        start.1,
        start.2,
        out.log_path.display()
    );
}
