//! A held driver domain's guests get a clean error, not a hang (issue 11, DESIGN §6.2):
//! blkdom serves a stock Linux guest's `/dev/xvda`; the test crashes it by a genuine fault
//! (`ctl crash blkdom`) as soon as each incarnation is ready, so dom0 restarts it in place
//! three times and holds it at the fourth crash. dom0 then moves the vbd's backend `state`
//! through Closing to Closed, as Xen's toolstack does when a backend goes away: the guest's
//! `xen-blkfront` marks the disk dead and closes its end. A read of the disk then ends at
//! once (an error, or nothing read: the dead disk's size is 0) and a write fails, where
//! before the guest waited for ever; the guest itself carries on. `ctl list` says the
//! domain is held and that its guest connection was closed.

use bulkhead_tests::{
    connect, ctl, history_tail, linux_failures, scratch_dir, type_line, wait_count, wait_for_text,
    Boot, Expect,
};
use bulkhead_tests::{disk_xvda, vbd_states, SystemToml};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::control::CapError;
use protocol::mgmt::{DomainRef, MgmtError, Request, Response};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Crashes until dom0 holds blkdom: its default limit is 3 restarts within 30 s.
const CRASHES: usize = 4;

fn system(dir: &Path) -> PathBuf {
    SystemToml::new("blkdom_held_fails_cleanly", 3, "")
        .driver("blkdom", 1, "on_crash = \"restart\"\n")
        .linux("linux", 2, &disk_xvda(&dir.join("disk.img")))
        .write(dir, "blkdom-held.toml")
}

/// Crashes blkdom. While the microvisor rebuilds it, dom0 refuses (it is not running yet,
/// or its handle is stale until then), so try again for a while; any other answer fails at
/// once.
fn crash_blkdom(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = c.call(&Request::Crash {
            domain: DomainRef::Name("blkdom".into()),
        });
        match r {
            Ok(Response::Done) => return,
            Ok(Response::Error(
                MgmtError::WrongState { .. } | MgmtError::Capability(CapError::Stale),
            )) => assert!(Instant::now() < deadline, "crash blkdom: still {r:?}"),
            other => panic!("crash blkdom: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_held_blkdom_fails_its_guests_io_cleanly() {
    let dir = scratch_dir("blkdom-held");
    let f = std::fs::File::create(dir.join("disk.img")).expect("image");
    f.set_len(4 << 20).expect("image size");
    drop(f);

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[blkdom\] blkdom ready: 1 disk\(s\)")
        .and_then(|e| e.then(r"\[dom0\] blkdom \(d1\): crash loop, held after 3 restarts"))
        .and_then(|e| e.then(r"\[dom0\] blkdom \(d1\): 1 guest connection\(s\) closed \("))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .and_then(|e| e.forbid(r"\[dom0\] blkdom \(d1\): restarted \(restart 4"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(
        system(&dir),
        expect,
        Duration::from_secs(900),
    ));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        420,
    );
    // The disk works while blkdom does. Markers are typed split (`X""Y`) so that the
    // console's echo of the typed line never matches them.
    type_line(
        &mut c,
        "linux",
        "dd if=/dev/xvda of=/dev/null bs=4k count=1 iflag=direct && echo READ\"\"-OK",
    );
    wait_for_text(&mut c, "[linux] READ-OK", "a read while blkdom serves", 300);

    // Crash every incarnation once it is ready: the fourth crash is one too many.
    for n in 1..=CRASHES {
        wait_count(&mut c, "[blkdom] blkdom ready", n, "blkdom ready", 300);
        crash_blkdom(&mut c);
        eprintln!("crash {n} of blkdom");
    }
    wait_for_text(
        &mut c,
        "[dom0] blkdom (d1): 1 guest connection(s) closed",
        "dom0 closing the held backend's vbd",
        120,
    );

    // A read ends at once (an error, or nothing read: the dead disk's size is 0), a write
    // fails; before, both waited for ever. The bound is generous for a loaded TCG host.
    type_line(
        &mut c,
        "linux",
        "dd if=/dev/xvda of=/dev/null bs=4k count=1 iflag=direct 2>/rd; echo RD\"\"-RC=$? \
         RD-IN=$(grep -c '^1+0 records in' /rd); \
         dd if=/dev/zero of=/dev/xvda bs=4k count=1 oflag=direct 2>/dev/null; echo WR\"\"-RC=$? \
         SIZE=$(cat /sys/block/xvda/size)",
    );
    let h = wait_for_text(
        &mut c,
        "[linux] WR-RC=",
        "I/O on the held backend's disk",
        120,
    );
    let line = |key: &str| {
        h.lines()
            .rev()
            .find(|l| l.starts_with(&format!("[linux] {key}")))
            .unwrap_or_else(|| panic!("no {key}:\n{}", history_tail(&h)))
            .to_owned()
    };
    let rd = line("RD-RC=");
    assert!(
        !rd.starts_with("[linux] RD-RC=0 ") || rd.ends_with("RD-IN=0"),
        "the read of a dead disk returned data: {rd}"
    );
    let wr = line("WR-RC=");
    assert!(
        !wr.starts_with("[linux] WR-RC=0 "),
        "the write succeeded: {wr}"
    );
    assert!(wr.ends_with("SIZE=0"), "the disk is not dead: {wr}");

    // The guest is otherwise alive.
    type_line(&mut c, "linux", "echo STILL\"\"-ALIVE");
    wait_for_text(&mut c, "[linux] STILL-ALIVE", "the guest's shell", 120);

    // Both ends of the vbd are Closed; `ctl list` shows the hold and the closed connection.
    assert_eq!(vbd_states(&mut c, "linux"), vec![(6, 6)]);
    let list = ctl(&mut c, &["list"]);
    let row = list
        .lines()
        .find(|l| l.contains("blkdom"))
        .unwrap_or_else(|| panic!("no blkdom in ctl list:\n{list}"));
    assert!(row.contains("held"), "{row}");
    assert!(row.contains("1 guest connection(s) closed"), "{row}");

    type_line(&mut c, "linux", "poweroff -f");
    boot.finish("system blkdom_held_fails_cleanly");
}
