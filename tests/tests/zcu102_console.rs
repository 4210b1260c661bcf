//! `--machine zcu102`: the ZCU102's default system (systems/zcu102.toml) packed with the
//! board's own DTB from Debian's kernel package and booted on QEMU's `xlnx-zcu102`. The
//! microvisor must find its console from `/chosen/stdout-path` (`serial0:115200n8`, an
//! alias of `/axi/serial@ff000000`, a Cadence UART under the `axi` bus) and log on it.
//!
//! Only the first console line is awaited: it comes before the GIC is touched, so this
//! holds whether or not the microvisor drives the board's GIC-400 yet.

use bulkhead_tests::{boot_machine_expect, Expect, Machine};

#[test]
fn zcu102_console() {
    let expect = Expect::new()
        .then(r"^bulkhead: console: Cadence UART at 0xff000000$")
        .expect("marker");
    let system = Machine::Zcu102.default_system();
    boot_machine_expect(Machine::Zcu102, &system, expect);
    // Packed for the board: its DRAM starts at 0, so the modules QEMU loads do too.
    let dir = bulkhead_tools::paths::image_dir();
    let dtb = std::fs::read(dir.join("system.dtb")).expect("packed system.dtb");
    let modules = bulkhead_tools::dtb::modules(&dtb).expect("module nodes");
    assert!(!modules.is_empty());
    assert!(
        modules.iter().all(|m| m.addr + m.size <= 2 << 30),
        "{modules:?}"
    );
    let banks = bulkhead_tools::dtb::ram_banks(&dtb).expect("RAM banks");
    assert_eq!(banks[0].base, 0, "{banks:?}");
}
