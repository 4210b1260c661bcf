//! The seed-shaped Xen domU (`systems/xl/xen-linux.cfg`: `memory = 512`, `vcpus = 2`, a stock
//! kernel and ramdisk) boots to Linux userspace beside the default system on the default
//! 1 GiB, as `cargo bulkhead run --domain systems/xl/xen-linux.cfg` does. Before domain RAM
//! could be built from free extents, the boot modules split the pool so that no contiguous
//! 512 MiB block existed and dom0 reported `cannot create domU: out of memory`.

use bulkhead_tests::{linux_failures, Expect, BOOT_TIMEOUT, TAIL_LINES};
use bulkhead_tools::qemu::{self, Outcome, RunOptions};
use std::path::PathBuf;

#[test]
fn seed_domu_boots_beside_the_default_system() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg: &'static [PathBuf] = Box::leak(Box::new([root.join("systems/xl/xen-linux.cfg")]));
    let expect = Expect::new()
        .all(&[
            r"\[dom0\] started domU \(d\d+\)",
            r"\[domU\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
            r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
        ])
        .and_then(|e| e.then(r"\[rtos\] uptime \d+s ticks \d+"))
        .and_then(|e| e.forbid(r"cannot (create|build) domU"))
        .and_then(|e| e.forbid(&linux_failures(r"(linux|domU)", &[])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(\w+\) stopped"))
        .expect("markers");
    let mut opts = RunOptions::test(root.join("systems/default.toml"), expect, BOOT_TIMEOUT * 4);
    opts.overrides.domains = cfg;
    let out = qemu::run(&opts).expect("boot");
    assert!(
        out.outcome == Outcome::Matched,
        "default system + domU: {}",
        out.report(TAIL_LINES)
    );
}
