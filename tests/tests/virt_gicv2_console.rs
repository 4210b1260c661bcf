//! `--machine virt-gicv2`: the default system packed for QEMU `virt` with a GICv2 and
//! booted there. The microvisor must log on the PL011 the DTB names; and the host DTB the
//! system was packed with must be the GICv2 board's, not the GICv3 one.
//!
//! Only the first console line is awaited: it comes before the GIC is touched, so this
//! holds whether or not the microvisor drives a GICv2 yet.

use bulkhead_tests::{boot_machine_expect, Expect, Machine};

#[test]
fn virt_gicv2_console() {
    let expect = Expect::new()
        .then(r"^bulkhead: console: PL011 UART at 0x9000000$")
        .expect("marker");
    let system = Machine::VirtGicv2.default_system();
    boot_machine_expect(Machine::VirtGicv2, &system, expect);
    let dir = bulkhead_tools::paths::image_dir();
    let dtb = std::fs::read(dir.join("system.dtb")).expect("packed system.dtb");
    let fdt = fdt::Fdt::new(&dtb).expect("system.dtb parses");
    assert!(
        fdt.find_compatible(&["arm,cortex-a15-gic"]).is_some(),
        "QEMU virt's GICv2 node"
    );
    assert!(fdt.find_compatible(&["arm,gic-v3"]).is_none());
}
