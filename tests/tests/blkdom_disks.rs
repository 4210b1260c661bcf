//! blkdom serves stock Linux `xen-blkfront` from host files: two Linux guests, each with its
//! own read-write disk and both sharing one read-only image. One guest mounts an ext4 image
//! the host made and writes files; the other makes a filesystem with busybox `mke2fs` on a
//! blank image. Writes to the read-only disk fail in the guest. After both power off, the
//! host checks the images with `e2fsck -fn` and reads the files back with `debugfs`; on the
//! way, `ctl info blkdom`'s request (`Vbds`) lists the four vbds with blkdom's counters.
//! blkdom says that the microvisor granted it device maps (the zero-copy path).

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, linux_failures, scratch_dir, type_line, value_after, wait_for_text, Boot, Expect,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request, Response};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A zeroed image of `mib` MiB.
fn blank(path: &Path, mib: u64) {
    let f = std::fs::File::create(path).expect("image");
    f.set_len(mib << 20).expect("image size");
}

fn system(dir: &Path) -> PathBuf {
    let img = |n: &str| dir.join(n).display().to_string();
    let (a, b, ro) = (img("ext4.img"), img("blank.img"), img("shared-ro.img"));
    SystemToml::new("blkdom_disks", 4, "")
        .driver("blkdom", 1, "")
        .linux(
            "linux1",
            2,
            &format!(
                "disk = [\"{a},raw,xvda,rw\", \"format=raw, vdev=xvdb, access=ro, target={ro}\"]\n"
            ),
        )
        .linux(
            "linux2",
            3,
            &format!("disk = [\"{b},raw,xvda,rw\", \"{ro},raw,xvdb,ro\"]\n"),
        )
        .write(dir, "blkdom.toml")
}

#[test]
fn stock_linux_uses_disks_served_by_blkdom() {
    let dir = scratch_dir("blkdom-test");
    let ext4 = dir.join("ext4.img");
    blank(&ext4, 64);
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&ext4));
    blank(&dir.join("blank.img"), 32);
    let ro = dir.join("shared-ro.img");
    let mut content = b"BULKHEAD-RO-DISK".to_vec();
    content.resize(4 << 20, 0);
    std::fs::write(&ro, content).expect("ro image");

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[blkdom\] blkdom ready: 3 disk\(s\)")
        // The guests' data moves by grant device map, not by copy.
        .and_then(|e| e.then(r"\[blkdom\] device maps granted: data moves zero-copy"))
        .and_then(|e| e.then(r"\[dom0\] linux1 \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.then(r"\[dom0\] linux2 \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux\d", &["blk_update_request"])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(blkdom\) stopped"))
        .expect("markers");
    let sys = system(&dir);
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
    // Both disks appear through the stock xen-blkfront, with the sizes blkdom published.
    for d in ["linux1", "linux2"] {
        type_line(
            &mut c,
            d,
            "echo PARTS=$(grep -c xvd /proc/partitions) XVDA=$(cat /sys/block/xvda/size) RO=$(cat /sys/block/xvdb/ro)",
        );
    }
    let h = wait_for_text(&mut c, "[linux1] PARTS=", "linux1 partitions", 240);
    assert!(h.contains("[linux1] PARTS=2 XVDA=131072 RO=1"), "{h}");
    let h = wait_for_text(&mut c, "[linux2] PARTS=", "linux2 partitions", 240);
    assert!(h.contains("[linux2] PARTS=2 XVDA=65536 RO=1"), "{h}");

    // linux1: the host's ext4 image, mounted, written and synced.
    type_line(
        &mut c,
        "linux1",
        "mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt && echo hello-from-bulkhead > /mnt/hello.txt && dd if=/dev/urandom of=/mnt/blob bs=4096 count=512 2>/dev/null && sync && echo BLOB=$(sha256sum /mnt/blob) && umount /mnt && echo XVDA-DONE",
    );
    let h = wait_for_text(&mut c, "[linux1] XVDA-DONE", "linux1 writes", 240);
    let guest_sum = value_after(&h, "[linux1] BLOB=");
    // linux2: a filesystem made inside the guest with busybox mke2fs.
    type_line(
        &mut c,
        "linux2",
        "mkdir -p /mnt && mke2fs -q /dev/xvda && mount -t ext4 /dev/xvda /mnt && echo made-in-guest > /mnt/two.txt && sync && umount /mnt && echo MKFS-DONE",
    );
    wait_for_text(&mut c, "[linux2] MKFS-DONE", "linux2 mkfs", 240);
    // Both read the shared read-only image; neither can write it.
    for d in ["linux1", "linux2"] {
        type_line(
            &mut c,
            d,
            "echo SHARED=$(head -c 16 /dev/xvdb); dd if=/dev/zero of=/dev/xvdb bs=4096 count=1 oflag=direct 2>/dev/null; echo RO-WRITE-RC=$?",
        );
    }
    for d in ["linux1", "linux2"] {
        let h = wait_for_text(
            &mut c,
            &format!("[{d}] RO-WRITE-RC="),
            "read-only write",
            240,
        );
        assert!(h.contains(&format!("[{d}] SHARED=BULKHEAD-RO-DISK")), "{h}");
        assert!(!h.contains(&format!("[{d}] RO-WRITE-RC=0")), "{h}");
    }
    // `ctl info blkdom`: four connected vbds with the counters blkdom published.
    std::thread::sleep(Duration::from_millis(1500));
    let rows = match c
        .call(&Request::Vbds {
            domain: DomainRef::Name("blkdom".into()),
        })
        .expect("vbds")
    {
        Response::Vbds(rows) => rows,
        other => panic!("vbds answered {other:?}"),
    };
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.backend_state == 4 && r.frontend_state == 4),
        "{rows:?}"
    );
    let xvda1 = &rows[0];
    assert_eq!((xvda1.vdev.as_str(), xvda1.read_only), ("xvda", false));
    let counters = xvda1.counters.expect("blkdom publishes counters");
    assert!(
        counters.writes > 0 && counters.sectors_written >= 4096,
        "{counters:?}"
    );
    assert!(rows
        .iter()
        .filter(|r| r.vdev == "xvdb")
        .all(|r| r.read_only));
    // One after the other: the boot's markers expect linux1's poweroff before linux2's.
    type_line(&mut c, "linux1", "poweroff -f");
    wait_for_text(
        &mut c,
        "[dom0] linux1 (d2): powered off",
        "linux1 poweroff",
        240,
    );
    type_line(&mut c, "linux2", "poweroff -f");

    boot.finish("system blkdom_disks");
    // The host sees consistent filesystems holding what the guests wrote.
    run(Command::new("e2fsck").arg("-fn").arg(&ext4));
    run(Command::new("e2fsck").arg("-fn").arg(dir.join("blank.img")));
    let cat = |img: &Path, file: &str| {
        run(Command::new("debugfs")
            .args(["-R", &format!("cat {file}")])
            .arg(img))
    };
    assert!(cat(&ext4, "/hello.txt").contains("hello-from-bulkhead"));
    assert!(cat(&dir.join("blank.img"), "/two.txt").contains("made-in-guest"));
    let dumped = dir.join("blob.out");
    run(Command::new("debugfs")
        .args(["-R", &format!("dump /blob {}", dumped.display())])
        .arg(&ext4));
    let host_sum = run(Command::new("sha256sum").arg(&dumped));
    assert_eq!(
        host_sum.split_whitespace().next(),
        Some(guest_sum.as_str()),
        "the blob the guest wrote differs on the host"
    );
    let ro_now = std::fs::read(&ro).expect("ro image");
    assert!(
        ro_now.starts_with(b"BULKHEAD-RO-DISK"),
        "the read-only image changed"
    );
}
