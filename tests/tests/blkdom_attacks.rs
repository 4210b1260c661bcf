//! blkdom under attack (issue 9, DESIGN §6 and §6.1).
//!
//! * An adversarial blkif frontend (testguest `mode=blkfront`) drives its own two vbds of
//!   blkdom by hand: valid reads, requests that must be answered with an error (bad grant
//!   refs, a read into a read-only grant, a write to a read-only vbd), and six malformed
//!   requests that must each stop that ring (backend Closing, no response), reconnecting
//!   in between. Meanwhile a stock Linux guest keeps reading and writing its own vbd of the
//!   same blkdom with `O_DIRECT`; its I/O must go on after the attack, and blkdom must
//!   still be running.
//! * A block backend (testguest `mode=neighbour`) that reads the virtio-mmio transport next
//!   to its own in the same page is stopped with a stage-2 fault at exactly that address,
//!   and the other domains keep running.

use bulkhead_tests::{
    connect, linux_failures, scratch_dir, system, type_line, wait_for_text, wait_until, Boot,
    Expect,
};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::control::DomainState;
use protocol::mgmt::{Request, Response};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The two tests boot one QEMU each, never both at once (one image directory, one
/// management socket).
static SERIAL: Mutex<()> = Mutex::new(());

/// An image of `sectors` 512-byte sectors whose every 32-bit word of sector `s` is
/// `tag << 24 | s` (testguest's `disk_word`).
fn patterned(path: &Path, tag: u8, sectors: u32) {
    let mut bytes = Vec::with_capacity(sectors as usize * 512);
    for s in 0..sectors {
        let w = (u32::from(tag) << 24 | s).to_le_bytes();
        for _ in 0..128 {
            bytes.extend_from_slice(&w);
        }
    }
    std::fs::write(path, bytes).expect("image");
}

/// Waits until Linux's I/O loop has printed a counter of at least `n`.
fn wait_dd(c: &mut Client, n: u64, what: &str) -> String {
    wait_until(c, |h| dd_count(h) >= n, &format!("DDLOOP {n}"), what, 120)
}

/// The highest `DDLOOP <n>` counter Linux has printed.
fn dd_count(h: &str) -> u64 {
    h.lines()
        .filter_map(|l| l.strip_prefix("[linux] DDLOOP "))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Linux's I/O loop: a 128 KiB direct write then a 512 KiB direct read of its own disk, a
/// counter line per round; `DDLOOP-END` if either fails.
const DD_LOOP: &str = "(i=0; while dd if=/dev/zero of=/dev/xvda bs=4096 count=32 oflag=direct 2>/dev/null && dd if=/dev/xvda of=/dev/null bs=4096 count=128 iflag=direct 2>/dev/null; do i=$((i+1)); echo DDLOOP $i; done; echo DDLOOP-END) &";

#[test]
fn malicious_frontend_is_cut_off_while_linux_io_continues() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir("blkattack");
    std::fs::File::create(dir.join("linux.img"))
        .and_then(|f| f.set_len(16 << 20))
        .expect("linux image");
    patterned(&dir.join("attacker.img"), 0xA1, 2048);
    patterned(&dir.join("attacker-ro.img"), 0xB2, 512);

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[blkdom\] blkdom ready: 3 disk\(s\)")
        .and_then(|e| e.then(r"\[blkfront\] blkfront: done \d+ checks, \d+ failures"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| {
            e.forbid(&linux_failures(
                r"linux",
                &["blk_update_request", "I/O error"],
            ))
        })
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(blkdom\) stopped"))
        .and_then(|e| e.forbid(r"\[linux\] DDLOOP-END"))
        .expect("markers");
    let sys = system("blkattack");
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(420)));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[blkfront] blkfront: waiting for go",
        "attacker ready",
        240,
    );
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        240,
    );
    type_line(
        &mut c,
        "linux",
        "dd if=/dev/xvda of=/dev/null bs=4096 count=1 iflag=direct; echo DDPROBE=$?",
    );
    let h = wait_for_text(&mut c, "[linux] DDPROBE=", "direct read probe", 60);
    assert!(
        h.contains("[linux] DDPROBE=0"),
        "O_DIRECT read failed:\n{h}"
    );
    type_line(&mut c, "linux", DD_LOOP);
    wait_dd(&mut c, 3, "linux I/O loop");

    // The attack runs while Linux's loop is going.
    type_line(&mut c, "blkfront", "go");
    let h = wait_for_text(&mut c, "[blkfront] blkfront: done", "attack", 240);
    let at_end = dd_count(&h);
    let h = wait_dd(&mut c, at_end + 3, "linux I/O after the attack");

    // How many of Linux's rounds overlapped the attack depends on how long the attack
    // took on this host (it can be shorter than one round under load), so it is reported,
    // not asserted; the loop going on afterwards and never failing is the check.
    let during = h
        .lines()
        .skip_while(|l| !l.starts_with("[blkfront] blkfront: xvda connects"))
        .take_while(|l| !l.starts_with("[blkfront] blkfront: done"))
        .filter(|l| l.starts_with("[linux] DDLOOP "))
        .count();
    eprintln!("Linux I/O rounds completed during the attack: {during}");
    let checks: Vec<&str> = h
        .lines()
        .filter(|l| l.starts_with("[blkfront] blkfront: ") && !l.contains("waiting for go"))
        .collect();
    let failed: Vec<&&str> = checks
        .iter()
        .filter(|l| !l.ends_with(" PASS") && !l.contains("done"))
        .collect();
    assert!(
        failed.is_empty(),
        "attacker checks failed:\n{}",
        failed.iter().map(|l| **l).collect::<Vec<_>>().join("\n")
    );
    let passes = checks.iter().filter(|l| l.ends_with(" PASS")).count();
    assert!(
        h.contains(&format!(
            "[blkfront] blkfront: done {passes} checks, 0 failures"
        )),
        "summary disagrees with {passes} PASS lines:\n{}",
        checks.join("\n")
    );
    // Every malformed request was logged once, for the attacker's xvda only.
    let stops: Vec<&str> = h
        .lines()
        .filter(|l| l.starts_with("[blkdom] ") && l.contains("ring stopped"))
        .collect();
    assert_eq!(stops.len(), 6, "ring stops:\n{}", stops.join("\n"));
    assert!(
        stops.iter().all(|l| l.contains("/51712: ")),
        "{}",
        stops.join("\n")
    );
    for reason in [
        "unknown operation 200",
        "bad segment count 0",
        "bad segment count 12",
        "segment 0 covers sectors 5..=2",
        "run past the end of the vbd",
        "ring indexes are corrupt",
    ] {
        assert!(
            stops.iter().any(|l| l.contains(reason)),
            "no stop for {reason:?}:\n{}",
            stops.join("\n")
        );
    }
    // blkdom is still running.
    let rows = match c.call(&Request::List).expect("list") {
        Response::Domains(r) => r,
        other => panic!("list answered {other:?}"),
    };
    let blkdom = rows
        .iter()
        .find(|r| r.name == "blkdom")
        .expect("blkdom listed");
    assert_eq!(blkdom.state, DomainState::Running, "{rows:?}");

    type_line(&mut c, "linux", "poweroff -f");
    boot.finish("system blkattack");
}

#[test]
fn backend_cannot_read_its_neighbour_transport() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir("blkneighbour");
    std::fs::File::create(dir.join("disk.img"))
        .and_then(|f| f.set_len(1 << 20))
        .expect("disk image");
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .all(&[
            r"bulkhead: d\d+ \(nbr\) stopped: stage-2 fault at IPA",
            r"\[smp\] PASS",
        ])
        // Typed through dom0's management port after the fault (see below); then time
        // still flows for the RTOS (it prints its uptime every second).
        .and_then(|e| e.then(r"\[rtos\] help: "))
        .and_then(|e| e.then(r"\[rtos\] uptime \d+s ticks \d+"))
        .and_then(|e| e.forbid(r"\[nbr\] neighbour: FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|smp)\) stopped: (stage-2|unhandled)"))
        .and_then(|e| e.forbid(r"bulkhead: d0 .*stopped"))
        .expect("markers");
    let sys = system("blkneighbour");
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(180)));

    let mut c = connect();
    let h = wait_for_text(&mut c, "(nbr) stopped: stage-2 fault", "the fault", 120);
    let own = h
        .lines()
        .find(|l| l.contains("[nbr] neighbour: own MagicValue"))
        .unwrap_or_else(|| panic!("no MagicValue line:\n{h}"));
    assert!(own.contains("MagicValue 0x74726976 at "), "{own}");
    let touched = h
        .lines()
        .find_map(|l| l.split("[nbr] neighbour: touching ").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no touching line:\n{h}"));
    let fault = h
        .lines()
        .find(|l| l.contains("(nbr) stopped: stage-2 fault"))
        .expect("fault line");
    assert!(
        fault.contains(&format!("stage-2 fault at IPA {touched} ")),
        "fault {fault:?} is not at the neighbour {touched}"
    );
    // The others run on: dom0 answers on its own virtio transport (which may be the very
    // neighbour that was touched), the RTOS is running and takes console input.
    let rows = match c.call(&Request::List).expect("list") {
        Response::Domains(r) => r,
        other => panic!("list answered {other:?}"),
    };
    let state = |n: &str| rows.iter().find(|r| r.name == n).map(|r| r.state);
    assert!(
        matches!(state("nbr"), Some(DomainState::Stopped(_))),
        "{rows:?}"
    );
    assert_eq!(state("rtos"), Some(DomainState::Running), "{rows:?}");
    type_line(&mut c, "rtos", "help");
    boot.finish("system blkneighbour");
}
