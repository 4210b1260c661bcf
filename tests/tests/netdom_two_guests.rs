//! Two stock Linux guests on netdom's switch reach each other without leaving the machine:
//! both get addresses from QEMU's user network, one pings the other, and one fetches a file
//! from the other's busybox `httpd` (checksums compared in both guests).

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, dhcp_address, linux_failures, scratch_dir, type_line, value_after, wait_for_text,
    wait_until, Boot, Expect,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request, Response};
use std::path::PathBuf;
use std::time::Duration;

fn system() -> PathBuf {
    let vif = "vif = [\"\"]\n";
    SystemToml::new("netdom_two_guests", 4, "")
        .driver("netdom", 1, "")
        .linux("linux1", 2, vif)
        .linux("linux2", 3, vif)
        .write(&scratch_dir("netdom-two"), "two.toml")
}

#[test]
fn two_linux_guests_talk_through_the_switch() {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[netdom\] ready nic=")
        .and_then(|e| e.then(r"\[dom0\] linux1 \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.then(r"\[dom0\] linux2 \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux\d", &[])))
        .and_then(|e| e.forbid(r"\[netdom\] .*(vif stopped|cannot)"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(netdom\) stopped"))
        .expect("markers");
    let sys = system();
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(420)));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux1] BULKHEAD-LINUX-USERSPACE",
        "linux1 boot",
        240,
    );
    wait_for_text(
        &mut c,
        "[linux2] BULKHEAD-LINUX-USERSPACE",
        "linux2 boot",
        240,
    );
    let a1 = dhcp_address(&mut c, "linux1");
    let a2 = dhcp_address(&mut c, "linux2");
    assert_ne!(a1, a2);
    // linux2 serves 256 KiB of random bytes; linux1 pings it and fetches them.
    type_line(
        &mut c,
        "linux2",
        "mkdir -p /www && dd if=/dev/urandom of=/www/blob bs=4096 count=64 2>/dev/null && httpd -p 80 -h /www && echo SERVED=$(sha256sum /www/blob)",
    );
    let h = wait_for_text(&mut c, "[linux2] SERVED=", "httpd", 240);
    let served = value_after(&h, "[linux2] SERVED=");
    type_line(
        &mut c,
        "linux1",
        &format!("ping -c 3 -W 5 {a2} >/dev/null; echo PING-RC=$?; wget -q -O /tmp/b http://{a2}/blob; echo WGET-RC=$? GOT=$(sha256sum /tmp/b)"),
    );
    let h = wait_for_text(&mut c, "[linux1] WGET-RC=", "wget", 240);
    assert!(h.contains("[linux1] PING-RC=0"), "{h}");
    assert!(h.contains("[linux1] WGET-RC=0"), "{h}");
    assert_eq!(value_after(&h, "[linux1] WGET-RC=0 GOT="), served);
    // Both vifs moved the blob: linux1 received it, linux2 sent it.
    std::thread::sleep(Duration::from_millis(1500));
    let rows = match c
        .call(&Request::Vifs {
            domain: DomainRef::Name("netdom".into()),
        })
        .expect("vifs")
    {
        Response::Vifs(rows) => rows,
        other => panic!("vifs answered {other:?}"),
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    let total = |f: fn(&protocol::mgmt::VifCounters) -> u64| -> Vec<u64> {
        rows.iter()
            .map(|r| r.counters.as_ref().map_or(0, f))
            .collect()
    };
    assert!(
        total(|k| k.rx_bytes).iter().any(|&b| b >= 256 << 10),
        "{rows:?}"
    );
    assert!(
        total(|k| k.tx_bytes).iter().any(|&b| b >= 256 << 10),
        "{rows:?}"
    );
    assert_eq!(total(|k| k.tx_errors), vec![0, 0], "{rows:?}");
    type_line(&mut c, "linux1", "poweroff -f");
    // One after the other: the boot's markers expect linux1's poweroff first.
    wait_until(
        &mut c,
        |h| {
            h.lines()
                .any(|l| l.starts_with("[dom0] linux1 (d") && l.contains("powered off"))
        },
        "linux1 powered off",
        "linux1 poweroff",
        120,
    );
    type_line(&mut c, "linux2", "poweroff -f");

    boot.finish("system netdom_two_guests");
}
