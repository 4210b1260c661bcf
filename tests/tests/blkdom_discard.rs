//! Discard end to end: blkdom publishes `feature-discard` for a virtio-blk disk that offers
//! `VIRTIO_BLK_F_DISCARD` (the tools attach writable disks with QEMU's `discard=unmap`), a
//! stock Linux guest runs busybox `blkdiscard` on a range of `/dev/xvda`, and the host image
//! loses the blocks of that range (fewer allocated blocks, zeros there) while every byte
//! outside it is what the host wrote.

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, linux_failures, scratch_dir, type_line, value_after, wait_for_text, Boot, Expect,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

const MIB: usize = 1 << 20;
/// The image, and the range the guest discards (8 MiB at 8 MiB).
const IMAGE: usize = 32 * MIB;
const START: usize = 8 * MIB;
const LEN: usize = 8 * MIB;

/// Every byte non-zero and position-dependent, so that a moved or zeroed block shows.
fn pattern() -> Vec<u8> {
    (0..IMAGE)
        .map(|i| ((i / 4096 * 31 + i % 4096 * 7) % 255 + 1) as u8)
        .collect()
}

/// 512-byte blocks the host file has allocated.
fn allocated(img: &Path) -> u64 {
    std::fs::metadata(img).expect("image").blocks()
}

#[test]
fn a_guest_discard_frees_the_host_images_blocks() {
    let dir = scratch_dir("blkdom-discard");
    let img = dir.join("disk.img");
    let data = pattern();
    std::fs::write(&img, &data).expect("image");
    let before = allocated(&img);
    assert!(
        before >= (IMAGE / 512) as u64,
        "the image is fully allocated: {before}"
    );

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[blkdom\] blkdom ready: 1 disk\(s\)")
        .and_then(|e| e.then(r"\[dom0\] linux1 \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux1", &["blk_update_request"])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(blkdom\) stopped"))
        .expect("markers");
    let sys = SystemToml::new("blkdom_discard", 3, "")
        .driver("blkdom", 1, "")
        .linux(
            "linux1",
            2,
            &format!("disk = [\"{},raw,xvda,rw\"]\n", img.display()),
        )
        .write(&dir, "discard.toml");
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(360)));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux1] BULKHEAD-LINUX-USERSPACE",
        "linux1 boot",
        240,
    );
    // xen-blkfront turns feature-discard into a queue that takes discards.
    type_line(
        &mut c,
        "linux1",
        "echo DMAX=$(cat /sys/block/xvda/queue/discard_max_bytes) GRAN=$(cat /sys/block/xvda/queue/discard_granularity)",
    );
    let h = wait_for_text(&mut c, "[linux1] DMAX=", "discard limits", 120);
    let dmax = value_after(&h, "[linux1] DMAX=");
    assert!(dmax.parse::<u64>().is_ok_and(|n| n > 0), "no discard: {h}");
    type_line(
        &mut c,
        "linux1",
        &format!(
            "blkdiscard -o {START} -l {LEN} /dev/xvda; echo DISCARD-RC=$?; sync; echo DISCARD-DONE"
        ),
    );
    let h = wait_for_text(&mut c, "[linux1] DISCARD-DONE", "blkdiscard", 120);
    assert!(h.contains("[linux1] DISCARD-RC=0"), "{h}");
    type_line(&mut c, "linux1", "poweroff -f");
    boot.finish("system blkdom_discard");

    let after = allocated(&img);
    assert!(
        after + (LEN / 512) as u64 <= before,
        "the image kept its blocks: {before} -> {after} (512-byte blocks)"
    );
    let now = std::fs::read(&img).expect("image");
    assert_eq!(now.len(), IMAGE);
    assert!(
        now[START..START + LEN].iter().all(|&b| b == 0),
        "the discarded range is not zero"
    );
    assert!(
        now[..START] == data[..START],
        "data before the range changed"
    );
    assert!(
        now[START + LEN..] == data[START + LEN..],
        "data after the range changed"
    );
}
