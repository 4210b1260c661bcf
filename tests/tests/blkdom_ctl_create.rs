//! `ctl create` of an xl.cfg with a disk, as a Xen user does `xl destroy` then `xl create`:
//! a stock Linux guest booted with the system writes a file on its disk and powers off;
//! `ctl create` of the same xl.cfg brings it back on the same disk, through blkdom, and the
//! file is there. While it runs, a second guest asking for that disk read-write is refused
//! by dom0 (a disk has one writer), and a disk the system was not booted with is refused
//! by the tools naming the file, line and key.

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, ctl, linux_failures, scratch_dir, type_line, wait_count, wait_for_text, Boot, Expect,
};
use bulkhead_tools::ctl::{client::REPLY_TIMEOUT, default_socket, run, CtlArgs};
use bulkhead_tools::qemu::RunOptions;
use std::path::Path;
use std::time::Duration;

/// An xl.cfg for a stock Linux guest `name` with `disk` as its xvda.
fn cfg(dir: &Path, name: &str, disk: &str) -> String {
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nkernel = \"debian-linux\"\nramdisk = \"debian-initramfs\"\nmemory = 160\nvcpus = 1\ncpus = \"2\"\nextra = \"console=hvc0 loglevel=4\"\non_poweroff = \"destroy\"\ndisk = [ '{disk},raw,xvda,rw' ]\n"
        ),
    )
    .expect("write the xl.cfg");
    path.display().to_string()
}

/// `ctl create FILE`'s error (it must fail).
fn create_fails(c: &mut bulkhead_tools::ctl::client::Client, file: &str) -> String {
    c.release();
    let args = CtlArgs::from_words(&["create", file]).expect("ctl words");
    let mut out = Vec::new();
    let e = run(&args, &default_socket(), REPLY_TIMEOUT, false, &mut out)
        .expect_err("the create must be refused");
    format!("{e:#}")
}

#[test]
fn ctl_create_brings_a_guest_back_on_its_disk() {
    let dir = scratch_dir("blkdom-ctl-create");
    let img = dir.join("guest.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(32 << 20))
        .expect("blank image");
    let other = dir.join("other.img");
    std::fs::File::create(&other)
        .and_then(|f| f.set_len(1 << 20))
        .expect("other image");
    let guest = cfg(&dir, "diskguest", "guest.img");
    let sys = SystemToml::new("blkdom_ctl_create", 4, "")
        .driver("blkdom", 1, "")
        .domain(&format!("[[domain]]\nconfig = {guest:?}\n"))
        .write(&dir, "system.toml");

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[blkdom\] blkdom ready: 1 disk\(s\)")
        .and_then(|e| e.then(r"\[dom0\] diskguest \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.then(r"mgmt: create diskguest: started"))
        .and_then(|e| e.then(r"\[diskguest\] READ-BACK=written-before-destroy"))
        .and_then(|e| e.forbid(&linux_failures("diskguest", &["blk_update_request"])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(blkdom\) stopped"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(420)));
    let mut c = connect();
    wait_for_text(
        &mut c,
        "[diskguest] BULKHEAD-LINUX-USERSPACE",
        "first boot",
        240,
    );
    type_line(
        &mut c,
        "diskguest",
        "mke2fs -q /dev/xvda && mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt && echo written-before-destroy > /mnt/note && sync && umount /mnt && echo WROTE && poweroff -f",
    );
    wait_for_text(&mut c, "[diskguest] WROTE", "the write", 240);
    wait_for_text(&mut c, "powered off -> destroy", "the destroy", 240);

    // Not a disk of the running system: the tools refuse it before asking dom0.
    let e = create_fails(&mut c, &cfg(&dir, "stranger", "other.img"));
    assert!(
        e.contains("stranger.cfg:9: key `disk`: target \"other.img\"")
            && e.contains("is not a disk of the running system"),
        "{e}"
    );

    // The same xl.cfg again: the guest comes back on its own disk.
    let out = ctl(&mut c, &["create", &guest]);
    assert!(out.contains("create diskguest: started"), "{out}");
    wait_count(
        &mut c,
        "[diskguest] BULKHEAD-LINUX-USERSPACE",
        2,
        "second boot",
        240,
    );

    // A second guest asking for the same disk read-write while it runs: dom0 refuses.
    let e = create_fails(&mut c, &cfg(&dir, "twin", "guest.img"));
    assert!(
        e.contains("cannot create twin: xvda:")
            && e.contains(
                "is in use by diskguest (xvda, read-write); a disk is shared only read-only"
            ),
        "{e}"
    );

    type_line(
        &mut c,
        "diskguest",
        "mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt && echo READ-BACK=$(cat /mnt/note) && umount /mnt",
    );
    boot.finish("system blkdom_ctl_create");
}
