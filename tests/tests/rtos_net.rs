//! netdom's second, independent client: the RTOS's own netfront under smoltcp. It takes an
//! address from QEMU's user network by DHCP through netdom, and a stock Linux guest on the
//! same switch pings it and has a line echoed over TCP (port 7). (Debian's busybox `nc`
//! has no UDP mode, so the UDP echo on the same port is not driven from Linux here.)

use bulkhead_tests::{
    connect, dhcp_address, linux_failures, scratch_dir, type_line, value_after, wait_for_text,
    wait_until, Boot, Expect,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use std::path::PathBuf;
use std::time::Duration;

fn system() -> PathBuf {
    let dir = scratch_dir("rtos-net");
    let toml = r#"# Written by tests/tests/rtos_net.rs.
[system]
smp = 4
memory = 1024

[[domain]]
name = "netdom"
image = "netdom"
memory = 16
cpus = "0"

[[domain]]
name = "rtos"
image = "rtos"
memory = 8
cpus = "1"
exclusive = true
cmdline = "hz=1000"
vif = [""]

[[domain]]
name = "linux"
image = "debian-linux"
ramdisk = "debian-initramfs"
memory = 192
cpus = "2-3"
vcpus = 2
cmdline = "console=hvc0 loglevel=4"
on_poweroff = "destroy"
vif = [""]
"#;
    let path = dir.join("rtos_net.toml");
    std::fs::write(&path, toml).expect("system");
    path
}

#[test]
fn linux_pings_the_rtos_and_gets_its_line_echoed() {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[netdom\] ready nic=")
        .and_then(|e| e.then(r"\[rtos\] net: vif 0 connected mac=00:16:3e:"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .and_then(|e| e.forbid(r"\[rtos\] net: (ring|address lost)"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((netdom|rtos)\) stopped"))
        .expect("markers");
    let sys = system();
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(420)));

    let mut c = connect();
    let h = wait_for_text(&mut c, "[rtos] net: address ", "the RTOS's DHCP lease", 240);
    let cidr = value_after(&h, "[rtos] net: address ");
    let rtos_ip = cidr.split('/').next().unwrap_or_default().to_owned();
    assert!(rtos_ip.starts_with("10.0.2."), "{cidr}\n{h}");

    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        240,
    );
    let linux_ip = dhcp_address(&mut c, "linux");
    assert_ne!(linux_ip, rtos_ip);

    type_line(
        &mut c,
        "linux",
        &format!(
            "ping -c 3 -W 5 {rtos_ip} >/dev/null; echo PING-RC=$?; \
             (echo bulkhead-tcp-echo; sleep 4) | nc -w 5 {rtos_ip} 7 > /tmp/echo; echo NC-RC=$? ECHO=$(cat /tmp/echo)"
        ),
    );
    // The typed command echoes back too: wait for nc's exit status as a number.
    let h = wait_until(
        &mut c,
        |h| {
            h.lines()
                .any(|l| l.contains("NC-RC=") && !l.contains("NC-RC=$"))
        },
        "NC-RC=<n>",
        "ping and tcp echo",
        240,
    );
    assert!(h.contains("[linux] PING-RC=0"), "{h}");
    assert!(h.contains("ECHO=bulkhead-tcp-echo"), "{h}");
    type_line(&mut c, "linux", "poweroff -f");
    boot.finish("system rtos_net");
}
