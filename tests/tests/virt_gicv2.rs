//! `--machine virt-gicv2`: QEMU `virt` with a GICv2, the default system packed for it and
//! booted there. The microvisor logs on the PL011 the DTB names and drives the GICv2; every
//! domain gets a virtual GICv2 (emulated distributor, the host's GICV frame as its CPU
//! interface): dom0 and the RTOS through the runtime's GICv2 driver, the stock Linux guest
//! through its own `irq-gic` driver, with both vCPUs and its timer interrupt on the GICv2.
//! The host manages the system through `ctl` as on GICv3.

use bulkhead_tests::{
    connect, ctl, default_system_boots, type_line, wait_for_text, Boot, Expect, Machine,
    BOOT_TIMEOUT,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;

#[test]
fn default_system_on_a_gicv2() {
    let _ = std::fs::remove_file(default_socket());
    let before = Expect::new()
        .then(r"^bulkhead: console: PL011 UART at 0x9000000$")
        .and_then(|e| e.then(r"^bulkhead: GICv2: distributor 0x8000000"))
        .expect("markers");
    let expect = default_system_boots(before, 0)
        .all(&[
            r"\[rtos\] uptime \d+s ticks",
            // Linux's timer interrupt is PPI 27 of its GICv2 ("GIC-0"), not of a GICv3.
            r"\[linux\] TIMER-IRQ .* GIC-0 +27 ",
        ])
        .expect("markers");
    let mut opts = RunOptions::test(Machine::VirtGicv2.default_system(), expect, BOOT_TIMEOUT);
    opts.overrides.machine = Machine::VirtGicv2;
    let boot = Boot::start(opts);

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        300,
    );
    let list = ctl(&mut c, &["list"]);
    for name in ["dom0", "rtos", "linux"] {
        assert!(list.contains(name), "ctl list shows {name}:\n{list}");
    }
    type_line(
        &mut c,
        "linux",
        "echo TIMER-IRQ $(grep -m1 arch_timer /proc/interrupts)",
    );
    let out = boot.finish("the default system on --machine virt-gicv2");

    // The system was packed with the GICv2 board's DTB, not the GICv3 one.
    let dtb = std::fs::read(bulkhead_tools::paths::image_dir().join("system.dtb"))
        .expect("packed system.dtb");
    let fdt = fdt::Fdt::new(&dtb).expect("system.dtb parses");
    assert!(fdt.find_compatible(&["arm,cortex-a15-gic"]).is_some());
    assert!(fdt.find_compatible(&["arm,gic-v3"]).is_none());
    // Linux relied on no leniency of the emulated GIC: it set up its virtual GICv2 the way
    // a GICv2 expects.
    assert!(
        !out.log.contains("(linux): warning: vGIC"),
        "{}",
        out.log_path.display()
    );
}
