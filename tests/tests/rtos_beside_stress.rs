//! The stress test of issue 12: a stock Linux guest with 4 vCPUs on 3 pCPUs hammers the
//! microvisor — four parallel direct-I/O readers of `/dev/xvda` (grant maps and event
//! channels through blkdom), a 50-a-second ping through netdom (grants, event channels,
//! SGIs between its vCPUs as its scheduler spreads the work) — while the RTOS runs its
//! 1 kHz tasks pinned exclusive on its own pCPU. Asserted: every read completes and none
//! fails, every echo is answered (a lost event-channel notification would stall a ring),
//! Linux reports no failure, and the RTOS misses no release and overruns no job, neither
//! while the six domains boot nor from a second before the stress to a second after it.
//!
//! History of the gap this closes: the RTOS's timer interrupt used to reach the microvisor
//! 150–900 µs late one to three times a second during the stress (QEMU 7.2's single TCG
//! thread gives the CPU behind a busy one no instructions until the busy one idles: pCPU 1
//! now holds nothing and the RTOS runs on pCPU 2, see `check_rtos_placement` in
//! tests/src/systems.rs), and then 1 run in 8 still had one job miss and overrun with its
//! interrupt on time, so the test allowed one late job. That second event was QEMU's
//! round-robin budget lapsing while every short timer of the machine had fired (a CPU then
//! ran for milliseconds in one turn); QEMU's own 100 µs tick (`RunOptions::realtime_test`)
//! removed it: 8 runs in a row and 2 more with the host overloaded (two busy loops on the 2
//! host cores) saw no miss and no overrun, during boot or the stress, so none is allowed.
//!
//! Under `-icount` (time is virtual and deterministic), with the metronome
//! (`SystemToml::metronome`) so that QEMU's one-CPU-at-a-time emulation interleaves the
//! eight CPUs finely, and QEMU's tick.

use bulkhead_tests::rtos_reports::{more_uptimes, uptimes};
use bulkhead_tests::{
    check_rtos_placement, connect, ctl, dhcp_address, history, linux_failures, scratch_dir,
    type_line, wait_for_text, Boot, Expect, SystemToml,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use regex::Regex;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Reads per reader (16 KiB each, direct).
const READS: u32 = 150;
/// Echo requests.
const PINGS: u32 = 150;

fn system(dir: &Path) -> PathBuf {
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(16 << 20))
        .expect("disk image");
    // pCPU 1 holds nothing (`check_rtos_placement`); the metronome follows the RTOS, so
    // neither of its vCPUs runs behind a busy pCPU either.
    SystemToml::new("rtos_beside_stress", 8, "")
        .metronome((3, 4))
        .domain("[[domain]]\nname = \"rtos\"\nimage = \"rtos\"\nmemory = 8\ncpus = \"2\"\nexclusive = true\ncmdline = \"hz=1000\"\n")
        .driver("blkdom", 0, "")
        .driver("netdom", 0, "")
        .domain(&format!(
            "[[domain]]\nname = \"linux\"\nimage = \"debian-linux\"\nramdisk = \"debian-initramfs\"\nmemory = 256\nvcpus = 4\ncpus = \"5-7\"\ncmdline = \"console=hvc0 loglevel=4\"\non_poweroff = \"destroy\"\ndisk = [\"{},raw,xvda,rw\"]\nvif = [\"\"]\n",
            disk.display()
        ))
        .write(dir, "rtos-beside-stress.toml")
}

#[test]
fn rtos_keeps_deadlines_while_a_4_vcpu_linux_hammers_the_microvisor() {
    let dir = scratch_dir("rtos-beside-stress");
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[dom0\] linux \(d\d+\): powered off -> destroy")
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|blkdom|netdom|metronome)\) stopped"))
        .expect("markers");
    let system = system(&dir);
    check_rtos_placement(&system).unwrap();
    let opts = RunOptions::realtime_test(system, expect, Duration::from_secs(1500));
    let boot = Boot::start(opts);

    let mut c = connect();
    let h = wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE kernel=",
        "linux boot",
        900,
    );
    assert!(
        Regex::new(r"BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=4 ")
            .unwrap()
            .is_match(&h),
        "Linux does not see 4 CPUs"
    );
    dhcp_address(&mut c, "linux");
    let h = history(&mut c);
    let h = more_uptimes(&mut c, &h, 1);
    let before = *uptimes(&h).last().expect("uptime");
    // The lock holds and waits of the stress alone, printed below.
    ctl(&mut c, &["info", "--reset-holds"]);

    type_line(
        &mut c,
        "linux",
        &format!(
            "for r in 0 1 2 3; do (i=0; f=0; while [ $i -lt {READS} ]; do dd if=/dev/xvda of=/dev/null bs=16k count=1 skip=$((r*200+i)) iflag=direct 2>/dev/null || f=$((f+1)); i=$((i+1)); done; echo READER-$r-DONE failed=$f) & done; ping -c {PINGS} -i 0.02 10.0.2.2 | grep -o '[0-9]* packets received'; wait; echo STRESS-\"\"DONE"
        ),
    );
    let h = wait_for_text(&mut c, "[linux] STRESS-DONE", "the stress", 1200);
    let h = more_uptimes(&mut c, &h, 1);
    let after = *uptimes(&h).last().expect("uptime");
    // What the global lock cost each CPU during the stress (`ctl info`: its passes, its
    // longest hold, its waits for the lock): for the record, not asserted.
    let info = ctl(&mut c, &["info"]);
    let from = info.find("locked passes").unwrap_or(info.len());
    eprintln!("global lock during the stress:\n{}", &info[from..]);
    type_line(&mut c, "linux", "poweroff -f");
    let out = boot.finish("system rtos_beside_stress");

    for r in 0..4 {
        assert!(
            out.log
                .contains(&format!("[linux] READER-{r}-DONE failed=0")),
            "reader {r} did not finish every read: {}",
            out.log_path.display()
        );
    }
    assert!(
        out.log
            .contains(&format!("[linux] {PINGS} packets received")),
        "not every echo was answered: {}",
        out.log_path.display()
    );
    let failed = Regex::new(&linux_failures("linux", &[])).unwrap();
    assert!(
        !failed.is_match(&out.log),
        "Linux failed: {}",
        out.log_path.display()
    );
    let (missed, overran) = (after.1 - before.1, after.2 - before.2);
    eprintln!(
        "RTOS seconds {}..{} (the stress): {missed} misses, {overran} overruns; before (the system's boot): {} misses",
        before.0, after.0, before.1
    );
    assert!(
        overran == 0 && missed == 0,
        "the RTOS missed {missed} release(s) and overran {overran} job(s) during the stress: {}",
        out.log_path.display()
    );
    assert_eq!(
        before.1,
        0,
        "the RTOS missed releases while the system booted: {}",
        out.log_path.display()
    );
}
