//! A Linux guest restarted in place gets its disk back through blkdom. dom0 rewrites the
//! guest's vbd nodes for its new life; the new xen-blkfront comes up with a new ring grant
//! and a new event channel, and blkdom must drop the old mapping and channel and go
//! through the handshake again (issue 9). Two ways a guest restarts: its own `reboot`
//! (blkfront closes first; on_reboot = "restart") and the host's `ctl restart` (no close
//! at all). Each life mounts the ext4 filesystem the first one made, checks what the
//! previous life wrote, and writes its own file; the host checks the image at the end.

use bulkhead_tests::{
    connect, history_tail, linux_failures, scratch_dir, three_lives, type_line, wait_until, Boot,
    Expect,
};
use bulkhead_tests::{disk_xvda, SystemToml};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn system(dir: &Path) -> PathBuf {
    let extra = format!(
        "on_reboot = \"restart\"\n{}",
        disk_xvda(&dir.join("disk.img"))
    );
    SystemToml::new("blkdom_guest_restart", 3, "")
        .driver("blkdom", 1, "")
        .linux("linux", 2, &extra)
        .write(dir, "blkdom-guest-restart.toml")
}

fn use_the_disk(c: &mut Client, life: u32) {
    let check = if life == 1 {
        "mke2fs -q /dev/xvda && echo made".to_string()
    } else {
        format!("cat /mnt/life{}.txt", life - 1)
    };
    let mount_then_check = if life == 1 {
        format!("{check} && mount -t ext4 /dev/xvda /mnt")
    } else {
        format!("mount -t ext4 /dev/xvda /mnt && {check}")
    };
    type_line(
        c,
        "linux",
        &format!(
            "mkdir -p /mnt; {mount_then_check} && echo life-{life} > /mnt/life{life}.txt && sync && umount /mnt; echo L{life}-DISK=$?"
        ),
    );
    let key = format!("[linux] L{life}-DISK=");
    let h = wait_until(c, |h| h.contains(&key), &key, "disk", 240);
    assert!(
        h.contains(&format!("[linux] L{life}-DISK=0")),
        "life {life}: the disk did not work\n{}",
        history_tail(&h)
    );
    if life > 1 {
        assert!(
            h.contains(&format!("[linux] life-{}", life - 1)),
            "life {life}: the previous life's file is not there\n{}",
            history_tail(&h)
        );
    }
}

#[test]
fn a_restarted_linux_guest_gets_its_disk_back() {
    let dir = scratch_dir("blkdom-guest-restart");
    let image = dir.join("disk.img");
    let f = std::fs::File::create(&image).expect("image");
    f.set_len(32 << 20).expect("image size");
    drop(f);
    let _ = std::fs::remove_file(default_socket());
    // blkdom takes the vbd. After a restart it may see the removal and the new nodes
    // apart, only the rewritten state, or (after the guest's own reboot, whose blkfront
    // closes first) just the frontend's new handshake: the guest's own disk checks below
    // are what proves each life got its disk back.
    let connected = r"\[blkdom\] vbd d\d+/51712: disk bkd0";
    let expect = Expect::new()
        .then(r"\[blkdom\] blkdom ready")
        .and_then(|e| e.then(connected))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): reboot requested -> restart"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: restart: linux \(d\d+\): restarted"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| {
            e.forbid(&linux_failures(
                r"linux",
                &[r"I/O error", r"blk_update_request"],
            ))
        })
        .and_then(|e| e.forbid(r"\[blkdom\] .*(ring stopped|cannot)"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(blkdom\) stopped"))
        .expect("markers");
    let sys = system(&dir);
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(900)));

    let mut c = connect();
    three_lives(&mut c, use_the_disk);
    drop(c);
    boot.finish("blkdom guest restart");

    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&image)
        .output()
        .expect("e2fsck runs");
    assert!(
        fsck.status.success(),
        "e2fsck: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let cat = Command::new("debugfs")
        .args(["-R", "cat /life3.txt"])
        .arg(&image)
        .output()
        .expect("debugfs runs");
    assert_eq!(String::from_utf8_lossy(&cat.stdout).trim(), "life-3");
}
