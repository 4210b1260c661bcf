//! netdom under attack (issue 10, DESIGN §6): an adversarial netif frontend (testguest
//! `mode=netfront`) drives its own vif of netdom by hand — a valid frame, a runt (answered
//! with an error), five malformed TX requests that must each halt that vif (backend
//! Closing, no response, one line in netdom's log), reconnecting in between, and a valid
//! frame on a last fresh connection — while a stock Linux guest on the same switch keeps
//! pinging the gateway. Then it storms netdom with back-to-back sends on its vif's event
//! channel until told to stop: Linux must keep pinging through the storm, netdom must keep
//! its heartbeat (no watchdog restart), and the attacker's vif must still carry a frame
//! afterwards. Linux's pings must go on after the attack, and netdom must still be
//! running.

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, dhcp_address, linux_failures, scratch_dir, type_line, wait_for_text, wait_until, Boot,
    Expect,
};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::control::DomainState;
use protocol::mgmt::{Request, Response};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn system(dir: &Path) -> PathBuf {
    SystemToml::new("netdom_attacks", 4, "")
        .driver("netdom", 1, "")
        .linux("linux", 2, "vif = [\"\"]\n")
        .domain(
            "[[domain]]\nname = \"netfront\"\nimage = \"testguest\"\nmemory = 8\ncpus = \"3\"\n\
             cmdline = \"mode=netfront\"\nvif = [\"\"]\n",
        )
        .write(dir, "netattack.toml")
}

/// The highest `PINGLOOP <n>` counter Linux has printed.
fn ping_count(h: &str) -> u64 {
    h.lines()
        .filter_map(|l| l.strip_prefix("[linux] PINGLOOP "))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// How many `netfront: storm <n> sends` progress lines the attacker has printed.
fn storm_lines(h: &str) -> usize {
    h.lines()
        .filter(|l| l.starts_with("[netfront] netfront: storm ") && l.ends_with(" sends"))
        .count()
}

fn wait_pings(c: &mut Client, n: u64, what: &str) -> String {
    wait_until(
        c,
        |h| ping_count(h) >= n,
        &format!("PINGLOOP {n}"),
        what,
        180,
    )
}

/// Linux pings the gateway in a loop, a counter line per answer; `PINGLOOP-END` once one
/// goes unanswered for 10 s.
const PING_LOOP: &str = "(i=0; while ping -c 1 -W 10 10.0.2.2 >/dev/null; do i=$((i+1)); echo PINGLOOP $i; sleep 0.5; done; echo PINGLOOP-END) &";

#[test]
fn malicious_netfront_is_cut_off_while_linux_keeps_pinging() {
    let dir = scratch_dir("netattack");
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[netdom\] ready nic=52:54:")
        .and_then(|e| e.then(r"\[netfront\] netfront: done \d+ checks, \d+ failures"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(netdom\) stopped"))
        .and_then(|e| e.forbid(r"\[dom0\] netdom .*no heartbeat"))
        .and_then(|e| e.forbid(r"\[linux\] PINGLOOP-END"))
        .expect("markers");
    let sys = system(&dir);
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(900)));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[netfront] netfront: waiting for go",
        "attacker ready",
        240,
    );
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        480,
    );
    assert_eq!(dhcp_address(&mut c, "linux"), "10.0.2.15");
    type_line(&mut c, "linux", PING_LOOP);
    wait_pings(&mut c, 3, "linux ping loop");

    type_line(&mut c, "netfront", "go");
    let h = wait_for_text(&mut c, "[netfront] netfront: storming", "attack", 300);
    // The storm runs until told to stop: Linux must get five more pings through netdom
    // meanwhile, with the storm still going (three more progress lines after them).
    let (pings, storm) = (ping_count(&h), storm_lines(&h));
    let h = wait_until(
        &mut c,
        |h| ping_count(h) >= pings + 5,
        &format!("PINGLOOP {}", pings + 5),
        "linux pings during the storm",
        180,
    );
    let during = storm_lines(&h);
    wait_until(
        &mut c,
        |h| storm_lines(h) >= during + 3,
        "three more storm lines",
        "the storm still going",
        180,
    );
    assert!(
        during > storm,
        "the storm made no progress while Linux pinged"
    );
    type_line(&mut c, "netfront", "stop");
    let h = wait_for_text(&mut c, "[netfront] netfront: done", "attack", 300);
    let at_end = ping_count(&h);
    let h = wait_pings(&mut c, at_end + 3, "linux pings after the attack");

    let checks: Vec<&str> = h
        .lines()
        .filter(|l| l.starts_with("[netfront] netfront: ") && !l.contains("waiting for go"))
        .collect();
    let failed: Vec<&&str> = checks.iter().filter(|l| l.contains(" FAIL ")).collect();
    assert!(
        failed.is_empty(),
        "attacker checks failed:\n{}",
        checks.join("\n")
    );
    let passes = checks.iter().filter(|l| l.ends_with(" PASS")).count();
    assert!(
        h.contains(&format!(
            "[netfront] netfront: done {passes} checks, 0 failures"
        )),
        "summary disagrees with {passes} PASS lines:\n{}",
        checks.join("\n")
    );
    // Each malformed request was logged once, for the attacker's vif only.
    let stops: Vec<&str> = h
        .lines()
        .filter(|l| l.starts_with("[netdom] ") && l.contains("vif stopped"))
        .collect();
    assert_eq!(stops.len(), 5, "vif stops:\n{}", stops.join("\n"));
    for reason in [
        "a grant copy of packet data failed",
        "a packet uses more than 18 slots",
        "a packet's slots run past req_prod",
        "a fragment at offset 4000 of size 200 crosses its page",
        "ring indexes are corrupt",
    ] {
        assert!(
            stops.iter().any(|l| l.contains(reason)),
            "no stop for {reason:?}:\n{}",
            stops.join("\n")
        );
    }
    let rows = match c.call(&Request::List).expect("list") {
        Response::Domains(r) => r,
        other => panic!("list answered {other:?}"),
    };
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} listed: {rows:?}"))
    };
    assert_eq!(row("netdom").state, DomainState::Running, "{rows:?}");
    let attacker = row("netfront").id;
    assert!(
        stops
            .iter()
            .all(|l| l.starts_with(&format!("[netdom] vif {attacker}/0: "))),
        "a stop names another vif than the attacker's (d{attacker}):\n{}",
        stops.join("\n")
    );

    type_line(&mut c, "linux", "poweroff -f");
    boot.finish("system netattack");
}
