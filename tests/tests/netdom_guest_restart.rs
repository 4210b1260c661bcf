//! A Linux guest restarted in place gets its network back through netdom. dom0 rewrites
//! the guest's vif nodes for its new life; the new xen-netfront comes up with new ring
//! grants and a new event channel, and netdom must drop the old mapping and channel and
//! go through the handshake again. Two ways a guest restarts: its own `reboot` (netfront
//! closes first; on_reboot = "restart") and the host's `ctl restart` (no close at all).
//! Each life takes a DHCP lease and pings the gateway.

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, history_tail, linux_failures, scratch_dir, three_lives, type_line, wait_until, Boot,
    Expect,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn system(dir: &Path) -> PathBuf {
    SystemToml::new("netdom_guest_restart", 4, "")
        .driver("netdom", 1, "")
        .linux("linux", 2, "on_reboot = \"restart\"\nvif = [\"\"]\n")
        .write(dir, "netdom-restart.toml")
}

fn lease_and_ping(c: &mut bulkhead_tools::ctl::client::Client, life: u32) {
    type_line(
        c,
        "linux",
        &format!(
            "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; echo L{life}-DHCP=$? ADDR=$(ip -4 -o addr show eth0 | grep -o 'inet [0-9.]*' | cut -d' ' -f2)"
        ),
    );
    let key = format!("[linux] L{life}-DHCP=");
    let h = wait_until(c, |h| h.contains(&key), &key, "dhcp", 240);
    assert!(
        h.contains(&format!("[linux] L{life}-DHCP=0 ADDR=10.0.2.")),
        "life {life}: no lease\n{}",
        history_tail(&h)
    );
    type_line(
        c,
        "linux",
        &format!("ping -c 3 -W 5 10.0.2.2 >/dev/null; echo L{life}-PING=$?"),
    );
    let key = format!("[linux] L{life}-PING=");
    let h = wait_until(c, |h| h.contains(&key), &key, "ping", 240);
    assert!(
        h.contains(&format!("[linux] L{life}-PING=0")),
        "life {life}: the gateway does not answer\n{}",
        history_tail(&h)
    );
}

#[test]
fn a_restarted_linux_guest_gets_its_network_back() {
    let dir = scratch_dir("netdom-restart");
    let _ = std::fs::remove_file(default_socket());
    let connected = r"\[netdom\] vif \d+/0 connected mac=00:16:3e";
    let expect = Expect::new()
        .then(r"\[netdom\] ready nic=52:54:")
        .and_then(|e| e.then(connected))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): reboot requested -> restart"))
        .and_then(|e| e.then(connected))
        .and_then(|e| e.then(r"\[dom0\] mgmt: restart: linux \(d\d+\): restarted"))
        .and_then(|e| e.then(connected))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .and_then(|e| e.forbid(r"\[netdom\] .*(vif stopped|cannot)"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(netdom\) stopped"))
        .expect("markers");
    let sys = system(&dir);
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(1200)));

    let mut c = connect();
    three_lives(&mut c, lease_and_ping);

    boot.finish("system netdom_guest_restart");
}
