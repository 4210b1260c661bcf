//! A stock Debian arm64 kernel whose two vCPUs are pinned exclusive: every IPI between them
//! and every event upcall from dom0 is a posted interrupt (the sender's fast path or the
//! event core posts it, the target CPU's fast path puts it in a list register without the
//! global lock). Linux must reach userspace with both CPUs, answer commands typed on its
//! console (console events, cross-CPU wake-ups) over and over, take vCPU 1 offline and
//! back (a vCPU that is switched out while siblings may post to it), and reboot in place
//! (the new incarnation starts with nothing posted). Idle, it must show as idle: an
//! exclusive Linux vCPU traps WFI, so its idle time is not counted as running; and its
//! CPUs, waiting out its WFIs at EL2, publish its counts without taking the lock.

use bulkhead_tests::{
    connect, ctl, linux_failures, system, type_line, wait_count, wait_until_online, Boot, Expect,
    BOOT_TIMEOUT,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;

/// Most locked passes Linux's two CPUs may take in 6 s of idling: none are expected (the
/// build before its counts were published without the lock took 18, 14 + 4, all to hand
/// them over).
const IDLE_PASSES_MAX: u64 = 2;

type Client = bulkhead_tools::ctl::client::Client;

/// `ctl vcpu-list DOMAIN --json`'s rows, each vCPU's field `key`.
fn vcpu_field(c: &mut Client, domain: &str, key: &str) -> Vec<serde_json::Value> {
    let out = ctl(c, &["vcpu-list", domain, "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("vcpu-list json");
    let rows = rows.as_array().expect("rows");
    rows.iter().map(|r| r[key].clone()).collect()
}

/// The RTOS's listed CPU time.
fn rtos_seconds(c: &mut Client) -> f64 {
    vcpu_field(c, "rtos", "cpu_seconds")[0]
        .as_f64()
        .expect("cpu_seconds")
}

/// Each of Linux's vCPUs' exits, as listed.
fn exits(c: &mut Client) -> Vec<u64> {
    vcpu_field(c, "linux", "exits")
        .iter()
        .map(|e| e.as_u64().expect("exits"))
        .collect()
}

/// Linux's listed CPU time, its vCPUs together (each of them pinned exclusive).
fn busy(c: &mut Client) -> f64 {
    let exclusive = vcpu_field(c, "linux", "exclusive");
    assert!(exclusive.iter().all(|e| *e == true), "{exclusive:?}");
    vcpu_field(c, "linux", "cpu_seconds")
        .iter()
        .map(|s| s.as_f64().expect("cpu_seconds"))
        .sum()
}

#[test]
fn exclusive_smp_linux_takes_posted_ipis_and_events() {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2")
        .and_then(|e| e.then(r"\[dom0\] linux \(d2\): reboot requested -> restart"))
        .and_then(|e| e.then(r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2"))
        // The run ends at the last marker: the shell's answer after the reboot.
        .and_then(|e| e.then(r"\[linux\] AGAIN=42"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|dom0)\) stopped"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &["rcu: INFO", "soft lockup"])))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(
        system("linux_exclusive"),
        expect,
        BOOT_TIMEOUT * 4,
    ));

    let mut c = connect();
    wait_count(&mut c, "BULKHEAD-LINUX-USERSPACE", 1, "first boot", 150);
    // Idle at its shell prompt: its vCPUs are busy for far less than the wall time. The
    // command at the end makes the shell's vCPU take the locked path (a hypercall), which
    // hands over whatever CPU time the fast path had not yet.
    let (before, t0) = (busy(&mut c), std::time::Instant::now());
    let exits_before = exits(&mut c);
    ctl(&mut c, &["info", "--reset-holds"]);
    // Meanwhile the RTOS beside it (exclusive, its WFI not trapped, every exit on its CPU's
    // fast path) shows its time too: its run time less the idle time it reports once a
    // second, published as of each report, so the figure never steps back.
    let rtos: Vec<f64> = (0..12)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            rtos_seconds(&mut c)
        })
        .collect();
    eprintln!("rtos busy over 6 s idle: {rtos:?}");
    assert!(
        rtos.windows(2).all(|w| w[1] >= w[0]),
        "the RTOS's listed time stepped back: {rtos:?}"
    );
    assert!(
        rtos[11] > rtos[0] && rtos[11] - rtos[0] < 3.0,
        "the RTOS's listed time did not grow, or grew by more than half of 6 s: {rtos:?}"
    );
    // Idle, its CPUs wait out its WFIs at EL2 and publish its counts every 100 ms without
    // the lock (`microvisor::unfolded`): the listing moves on while they take (almost) no
    // locked pass. Before, each took one after every wait that ended a stay of more than
    // 100 ms, to hand its counts over.
    let exits_idle = exits(&mut c);
    let info: serde_json::Value =
        serde_json::from_str(&ctl(&mut c, &["info", "--json"])).expect("info json");
    let passes = |cpu: u64| {
        info["lock_holds"]["cpus"]
            .as_array()
            .and_then(|cpus| cpus.iter().find(|x| x["cpu"] == cpu))
            .map_or(0, |x| x["passes"].as_u64().expect("passes"))
    };
    let (p2, p3) = (passes(2), passes(3));
    eprintln!(
        "linux idle 6 s: exits {exits_before:?} -> {exits_idle:?}, locked passes cpu2 {p2}, cpu3 {p3}: {}",
        info["lock_holds"]["cpus"]
    );
    assert!(
        exits_idle.iter().zip(&exits_before).all(|(a, b)| a > b),
        "an idle vCPU's listed exits stood still: {exits_before:?} -> {exits_idle:?}"
    );
    assert!(
        p2 + p3 <= IDLE_PASSES_MAX,
        "its CPUs took the lock {p2} + {p3} times in 6 s idle: {}",
        info["lock_holds"]["cpus"]
    );
    type_line(&mut c, "linux", "echo IDLE=$((20+22))");
    wait_count(&mut c, "[linux] IDLE=42", 1, "Linux after idling", 150);
    let (after, wall) = (busy(&mut c), t0.elapsed().as_secs_f64());
    eprintln!("linux: busy {:.3} s of 2 x {wall:.2} s", after - before);
    assert!(
        after - before < wall / 2.0,
        "an idle exclusive Linux counted {:.2} s busy in {wall:.2} s on 2 vCPUs",
        after - before
    );
    // Busy: a vCPU running a CPU-bound loop exits only for its timer, on the fast path, and
    // its CPU publishes its time anyway (every 256th interrupt exit asks whether 100 ms
    // have passed). Before, the listing stood still until the CPU next took the lock.
    type_line(&mut c, "linux", "yes > /dev/null & echo SPIN=$((20+22))");
    wait_count(&mut c, "[linux] SPIN=42", 1, "a busy loop started", 150);
    let (before, t0) = (busy(&mut c), std::time::Instant::now());
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (after, wall) = (busy(&mut c), t0.elapsed().as_secs_f64());
    type_line(&mut c, "linux", "kill $! ; echo UNSPIN=$((20+22))");
    wait_count(&mut c, "[linux] UNSPIN=42", 1, "the busy loop stopped", 150);
    eprintln!(
        "linux: busy {:.3} s of 2 x {wall:.2} s spinning",
        after - before
    );
    // The counter follows the host's clock, so a spinning vCPU's time is about the wall
    // time however slowly QEMU runs it; a quarter leaves room for the listing's staleness.
    assert!(
        after - before > wall / 4.0,
        "a spinning exclusive Linux counted {:.2} s busy in {wall:.2} s",
        after - before
    );
    // Each command is a console event to vCPU 0 and a shell that runs wherever Linux puts
    // it; the pipeline's processes spread over both CPUs and wake each other with IPIs.
    for round in 1..=5 {
        type_line(
            &mut c,
            "linux",
            &format!("echo ROUND{round}=$(seq 1 2000 | sort -n | tail -n 1)"),
        );
        wait_count(
            &mut c,
            &format!("[linux] ROUND{round}=2000"),
            1,
            "a round",
            150,
        );
    }
    // vCPU 1 offline (PSCI CPU_OFF: switched out) and back (CPU_ON: loaded again).
    ctl(&mut c, &["vcpu-set", "linux", "1"]);
    wait_until_online(&mut c, "linux", "0", "");
    ctl(&mut c, &["vcpu-set", "linux", "2"]);
    wait_until_online(
        &mut c,
        "linux",
        "0-1",
        "echo 1 > /sys/devices/system/cpu/cpu1/online 2>/dev/null; ",
    );
    type_line(
        &mut c,
        "linux",
        "echo AFTER=$(seq 1 2000 | sort -n | tail -n 1)",
    );
    wait_count(&mut c, "[linux] AFTER=2000", 1, "after hotplug", 150);
    // A restart in place keeps the domain id: the new incarnation's words start empty.
    type_line(&mut c, "linux", "reboot");
    wait_count(&mut c, "BULKHEAD-LINUX-USERSPACE", 2, "second boot", 150);
    // Its answer is the run's last marker: `finish` waits for it.
    type_line(&mut c, "linux", "echo AGAIN=$((7*6))");
    boot.finish("system `linux_exclusive`");
}
