//! A stock Debian arm64 kernel (unmodified, with a busybox initramfs) boots as a Xen-ABI
//! guest with 2 vCPUs: it reaches userspace on hvc0, runs commands typed on its console
//! through the management port, and its own `reboot` and a host `ctl shutdown` follow the
//! domain's policy (restart, destroy) through SCHEDOP_shutdown and xenstore; a host
//! `ctl xenstore write` fires Linux's own control/sysrq watch. Then a user's
//! xl.cfg for a Linux guest (`systems/xl/linux-guest.cfg`) is started with `ctl create`.
//! Its RAM, scrubbed on first touch, holds 64 MiB written by both vCPUs at once intact, and
//! its device tree carried the seeds it used.

use bulkhead_tests::terminal::Terminal;
use bulkhead_tests::{
    connect, ctl, linux_failures, system, type_line, wait_count, wait_until_online, Boot, Expect,
    BOOT_TIMEOUT,
};
use bulkhead_tools::ctl::{create_request, default_socket};
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request, Response};
use std::time::Duration;

fn linux() -> DomainRef {
    DomainRef::Name("linux".into())
}

#[test]
fn stock_linux_boots_runs_commands_and_follows_policy() {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"bulkhead: guest seeds: keyed from the boot loader's rng-seed and RNDR")
        .and_then(|e| e.then(r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d2\): reboot requested -> restart"))
        // Its RAM was scrubbed on first touch: the 64 MiB filled below, at least 32 blocks.
        .and_then(|e| {
            e.then(
                r"bulkhead: d2 \(linux\): RAM blocks \(2 MiB\) scrubbed at build \d+, on first touch (3[2-9]|[4-9]\d|1\d\d), never touched \d+",
            )
        })
        .and_then(|e| e.then(r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: xenstore /local/domain/2/control/sysrq: done"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: shutdown linux: requested"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d2\): powered off -> destroy"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: create debian: started"))
        .and_then(|e| e.then(r"\[debian\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|dom0)\) stopped"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .expect("markers");
    let timeout = BOOT_TIMEOUT * 4;
    let boot = Boot::start(RunOptions::test(system("linux"), expect, timeout));

    let mut c = connect();
    wait_count(&mut c, "BULKHEAD-LINUX-USERSPACE", 1, "first boot", 150);
    // A command typed on hvc0 runs in busybox's shell: both vCPUs are online.
    type_line(
        &mut c,
        "linux",
        "echo CPUS=$(grep -c ^processor /proc/cpuinfo) ANSWER=$((6*7))",
    );
    wait_count(&mut c, "[linux] CPUS=2 ANSWER=42", 1, "shell answer", 150);
    // Linux's RAM is scrubbed block by block as it first touches it (`mm::lazy_ram`): both
    // vCPUs fill 32 MiB of tmpfs each at once (a random 1 MiB, 32 times) and read it back.
    type_line(
        &mut c,
        "linux",
        "mkdir -p /tmp; dd if=/dev/urandom of=/tmp/p bs=64k count=16 2>/dev/null; \
         for i in 1 2; do (g() { for j in $(seq 32); do cat /tmp/p; done; echo $i; }; \
         g > /tmp/f$i; [ \"$(md5sum < /tmp/f$i)\" = \"$(g | md5sum)\" ] && echo FILL$i-$((40+2))) & \
         done; wait; rm -f /tmp/p /tmp/f1 /tmp/f2",
    );
    wait_count(&mut c, "[linux] FILL1-42", 1, "first fill read back", 300);
    wait_count(&mut c, "[linux] FILL2-42", 1, "second fill read back", 300);
    // Its tree carried a kaslr-seed and an rng-seed (`microvisor::seeds`): Linux zeroes the
    // first once it has used it and takes the second out of the tree.
    type_line(
        &mut c,
        "linux",
        "echo SEED=$(od -An -tx1 /proc/device-tree/chosen/kaslr-seed | tr -d ' \n') \
         RNG=$(ls /proc/device-tree/chosen | grep -c rng-seed)",
    );
    wait_count(
        &mut c,
        "[linux] SEED=0000000000000000 RNG=0",
        1,
        "the seeds Linux used",
        150,
    );
    // `ctl vcpu-set` (xl vcpu-set): Linux's own Xen CPU-hotplug watcher takes vCPU 1
    // offline (PSCI CPU_OFF). Given back, it is only marked present again: as on Xen,
    // userspace (a udev rule there) brings it online, and PSCI CPU_ON starts it.
    ctl(&mut c, &["vcpu-set", "linux", "1"]);
    wait_until_online(&mut c, "linux", "0", "");
    ctl(&mut c, &["vcpu-set", "linux", "2"]);
    wait_until_online(
        &mut c,
        "linux",
        "0-1",
        "echo 1 > /sys/devices/system/cpu/cpu1/online 2>/dev/null; ",
    );
    // `reboot` inside Linux: SCHEDOP_shutdown(reboot) -> on_reboot = restart, same id.
    type_line(&mut c, "linux", "reboot");
    wait_count(&mut c, "BULKHEAD-LINUX-USERSPACE", 2, "second boot", 150);
    // The second incarnation's console and xenstore work too.
    type_line(&mut c, "linux", "echo AGAIN=$((7*6))");
    wait_count(&mut c, "[linux] AGAIN=42", 1, "shell after reboot", 150);
    // `ctl console` is a terminal: the prompt shows without a newline, Ctrl-C reaches the
    // guest's shell (it interrupts a long sleep), and Ctrl-] detaches at once.
    c.release();
    let term = Terminal::attach("linux");
    term.type_keys(b"\r");
    term.wait_for("# ", 60);
    term.type_keys(b"sleep 1000\r");
    std::thread::sleep(Duration::from_secs(2));
    term.type_keys(&[0x03]);
    term.type_keys(b"echo TERM-$((6*7))\r");
    let shown = term.wait_for("TERM-42", 60);
    assert!(shown.contains("^C"), "the shell saw Ctrl-C:\n{shown}");
    assert!(
        !shown.contains("[linux]"),
        "raw output, not history lines:\n{shown}"
    );
    term.detach().expect("ctl console ends cleanly on Ctrl-]");
    // `ctl vcpu-pin` (xl vcpu-pin): vCPU 1 moves from pCPU 3 to pCPU 2 while Linux runs, a
    // task bound to it still runs, and it moves back.
    for (pcpu, mark) in [(2, "ONCPU1A"), (3, "ONCPU1B")] {
        ctl(&mut c, &["vcpu-pin", "linux", "1", &pcpu.to_string()]);
        let listed = ctl(&mut c, &["vcpu-list", "linux", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&listed).expect("vcpu-list json");
        let row = rows
            .as_array()
            .and_then(|r| r.iter().find(|r| r["vcpu"] == 1))
            .unwrap_or_else(|| panic!("no vCPU 1: {listed}"));
        assert_eq!(row["cpu"].as_u64(), Some(pcpu), "{row}");
        type_line(
            &mut c,
            "linux",
            &format!("busybox taskset 2 busybox sh -c 'echo {mark}=$((40+2))'"),
        );
        wait_count(
            &mut c,
            &format!("[linux] {mark}=42"),
            1,
            "a task on vCPU 1 after it moved",
            150,
        );
    }
    // `ctl sched-fp` (xl's sched-* for the fixed-priority scheduler): both vCPUs get
    // priority 20 where they are, and Linux keeps answering.
    let set = ctl(&mut c, &["sched-fp", "linux", "--priority", "20"]);
    assert!(set.contains("priority 20"), "{set}");
    let listed = ctl(&mut c, &["sched-fp", "linux", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&listed).expect("sched-fp json");
    let got: Vec<(u64, u64)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["cpu"].as_u64().unwrap(), r["priority"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, vec![(2, 20), (3, 20)], "{listed}");
    type_line(&mut c, "linux", "echo PRIO=$((10+10))");
    wait_count(&mut c, "[linux] PRIO=20", 1, "Linux after sched-fp", 150);
    // `ctl xenstore` acts with the toolstack's rights, and its writes fire the guest's own
    // watches: Linux watches control/sysrq, clears it and runs the key (`h`: the SysRq
    // help on its console).
    c.release();
    assert_eq!(
        ctl(&mut c, &["xenstore", "read", "/local/domain/2/name"]).trim(),
        "linux"
    );
    ctl(
        &mut c,
        &["xenstore", "write", "/local/domain/2/control/sysrq", "h"],
    );
    wait_count(
        &mut c,
        "sysrq: HELP",
        1,
        "SysRq from a host xenstore write",
        150,
    );
    let listed = ctl(&mut c, &["xenstore", "ls", "/local/domain/2/control"]);
    assert!(
        listed.contains("sysrq = \"\""),
        "Linux cleared control/sysrq:\n{listed}"
    );
    // A host shutdown request goes through xenstore control/shutdown; Linux powers off
    // cleanly and on_poweroff = destroy removes it.
    let r = c
        .call(&Request::Shutdown { domain: linux() })
        .expect("shutdown");
    assert_eq!(r, Response::Done);
    wait_count(
        &mut c,
        "[dom0] linux (d2): powered off -> destroy",
        1,
        "poweroff",
        150,
    );
    // `xl create` of a user's Linux xl.cfg (kernel, ramdisk, extra, memory, vcpus).
    let cfg =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/xl/linux-guest.cfg");
    let r = c
        .call(&create_request(&cfg).expect("linux-guest.cfg resolves"))
        .expect("create");
    assert_eq!(r, Response::Done);

    boot.finish("system `linux`");
}
