//! The default system as `cargo bulkhead run` boots it (`systems/default.toml`: dom0, the
//! RTOS, blkdom, netdom and the stock Linux guest) fits the documented minimum,
//! `--mem 512`: every domain starts, both driver domains come up with their devices and the
//! Linux guest reaches userspace (issue 13: "--mem 512, the documented minimum, boots the
//! default system or the minimum is raised").

use bulkhead_tests::{linux_failures, Boot, Expect, BOOT_TIMEOUT};
use bulkhead_tools::qemu::RunOptions;
use std::path::PathBuf;

#[test]
fn the_default_system_boots_in_512_mib() {
    let expect = Expect::new()
        .then("bulkhead: microvisor 0.1.0 starting: 4 CPUs, 512 MiB RAM")
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] all domains started",
                r"\[rtos\] ready",
                r"\[blkdom\] blkdom ready: \d+ disk",
                r"\[netdom\] ready nic=52:54:",
                r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
            ])
        })
        .and_then(|e| e.forbid(r"out of memory|cannot create|NoMemory"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(\w+\) stopped"))
        .and_then(|e| e.forbid(&linux_failures("linux", &[])))
        .expect("markers");
    let system = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../systems/default.toml");
    let mut options = RunOptions::test(system, expect, BOOT_TIMEOUT * 2);
    options.overrides.memory_mib = Some(512);
    Boot::start(options).finish("the default system at --mem 512");
}
