//! The native baseline's QEMU on each `--machine`: Linux at EL1 with no microvisor, on the
//! same board model the Bulkhead run uses (no `virtualization=on`, so QEMU's direct boot
//! enters the kernel at EL1).
//!
//! The ZCU102 boots with the board's own device tree from Debian's kernel package, with one
//! change ([`fixed_uart_clock`]): its console UART takes its clocks, power domain and pins
//! from the ZynqMP platform firmware (the PMU firmware behind EL3), which QEMU's direct boot
//! does not run. Unchanged, Linux defers the UART's probe forever and userspace has no
//! console ("unable to open an initial console"); the marker line never appears.

use crate::machine::{self, Machine};
use anyhow::{anyhow, Context, Result};
use fdt::node::FdtNode;
use fdt::Fdt;
use std::path::{Path, PathBuf};
use vm_fdt::FdtWriter;

/// The fixed clock [`fixed_uart_clock`] adds at the root (QEMU's Cadence UART ignores the
/// rate; 100 MHz is the board's UART reference clock).
pub const UART_CLOCK_NODE: &str = "bulkhead-uart-clock";
/// Its rate.
pub const UART_CLOCK_HZ: u32 = 100_000_000;
/// The console UART's properties that name the platform firmware's providers.
const FIRMWARE_PROPS: [&str; 4] = ["clocks", "power-domains", "pinctrl-0", "pinctrl-names"];

/// The console (`/dev/<this>`) of a native Linux on `machine`: the PL011 on virt, the first
/// Cadence UART on the ZCU102.
pub fn console(machine: Machine) -> &'static str {
    match machine {
        Machine::Virt | Machine::VirtGicv2 => "ttyAMA0",
        Machine::Zcu102 => "ttyPS0",
    }
}

/// QEMU's `-M`/`-cpu`/`-dtb` for a native boot on `machine` (`dtb`: the ZCU102's tree).
pub fn machine_args(machine: Machine, dtb: Option<&Path>) -> Vec<String> {
    let mut a: Vec<String> = match machine {
        Machine::Virt => vec!["-M".into(), "virt,gic-version=3".into()],
        Machine::VirtGicv2 => vec!["-M".into(), "virt,gic-version=2".into()],
        Machine::Zcu102 => vec!["-M".into(), "xlnx-zcu102".into()],
    };
    a.extend(machine.cpu_args().iter().map(|s| s.to_string()));
    if let Some(d) = dtb {
        a.extend(["-dtb".into(), d.display().to_string()]);
    }
    a
}

/// The whole QEMU command line (without the clock arguments, which the launcher adds) of a
/// native Linux boot.
pub fn linux_args(
    machine: Machine,
    dtb: Option<&Path>,
    kernel: &Path,
    initrd: &Path,
    append: &str,
    smp: u16,
    mem_mib: u32,
) -> Vec<String> {
    let mut a = machine_args(machine, dtb);
    a.extend([
        "-smp".into(),
        smp.to_string(),
        "-m".into(),
        mem_mib.to_string(),
        "-nographic".into(),
        "-kernel".into(),
        kernel.display().to_string(),
        "-initrd".into(),
        initrd.display().to_string(),
        "-append".into(),
        append.into(),
    ]);
    a
}

/// The device tree a native boot on `machine` with `mem_mib` MiB needs, written under
/// `target/bulkhead/native/`: on virt, QEMU's own tree with only what a guest of the
/// microvisor is given ([`guest_view`]); the ZCU102's board tree with
/// [`fixed_uart_clock`].
pub fn dtb(machine: Machine, mem_mib: u32) -> Result<Option<PathBuf>> {
    let out = crate::paths::out_dir().join("native");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let (name, blob) = match machine {
        Machine::Zcu102 => {
            let board = machine::board_dtb(machine::ZCU102_DTB)?;
            let blob = std::fs::read(&board)
                .with_context(|| format!("cannot read {}", board.display()))?;
            ("zcu102-native.dtb", fixed_uart_clock(&blob)?)
        }
        Machine::Virt | Machine::VirtGicv2 => {
            let dumped = out.join(format!("{}-qemu.dtb", machine.name()));
            let blob = machine.dump_dtb(1, mem_mib, &dumped)?;
            ("virt-native.dtb", guest_view(&blob)?)
        }
    };
    let path = out.join(name);
    std::fs::write(&path, blob).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}

/// Nodes of QEMU's virt tree a guest of the microvisor never sees, by name up to the `@`:
/// the PCIe host bridge, the virtio-mmio transports, fw_cfg, the flash, the RTC, the GPIO
/// controller and its keys, the platform bus, and the GIC's MSI frames (ITS, v2m). A native
/// baseline with them probes devices (PCIe enumeration above all) the guest under
/// comparison does not have.
const NOT_IN_A_GUEST: [&str; 10] = [
    "its",
    "v2m",
    "pcie",
    "virtio_mmio",
    "fw-cfg",
    "flash",
    "pl031",
    "pl061",
    "gpio-keys",
    "platform-bus",
];

/// QEMU's virt tree `blob` with only the devices a guest of the microvisor is given (CPUs,
/// memory, GIC, timer, PSCI) plus the PL011 for the native console: the native boot then
/// does the same work as the guest it is compared with.
pub fn guest_view(blob: &[u8]) -> Result<Vec<u8>> {
    let blob = crate::dtb::without_nops(blob)?;
    let fdt = Fdt::new(&blob).map_err(|e| anyhow!("QEMU's DTB does not parse: {e:?}"))?;
    let mut w = crate::dtb::writer_like(&fdt)?;
    let root = fdt.find_node("/").context("QEMU's DTB has no root")?;
    let top = w.begin_node("").map_err(crate::dtb::fdt_err)?;
    copy_except(&mut w, root, &|name| {
        let base = name.split('@').next().unwrap_or(name);
        NOT_IN_A_GUEST.contains(&base)
    })?;
    w.end_node(top).map_err(crate::dtb::fdt_err)?;
    w.finish().map_err(crate::dtb::fdt_err)
}

/// Copies `node`'s properties and the children `drop` does not name into the open node
/// of `w`.
fn copy_except(
    w: &mut FdtWriter,
    node: FdtNode<'_, '_>,
    drop: &dyn Fn(&str) -> bool,
) -> Result<()> {
    for p in node.properties().filter(|p| p.name.len() <= 31) {
        w.property(p.name, p.value).map_err(crate::dtb::fdt_err)?;
    }
    for child in node.children().filter(|c| !drop(c.name)) {
        let h = w.begin_node(child.name).map_err(crate::dtb::fdt_err)?;
        copy_except(w, child, drop)?;
        w.end_node(h).map_err(crate::dtb::fdt_err)?;
    }
    Ok(())
}

/// `blob` re-emitted with a [`UART_CLOCK_NODE`] fixed clock at the root and the `serial0`
/// alias's node taking both its clocks from it, without its power domain and pin control.
/// Properties longer than the 31 characters the specification allows (and `vm-fdt` writes)
/// are left out, as in [`crate::dtb`]; none is the console's.
pub fn fixed_uart_clock(blob: &[u8]) -> Result<Vec<u8>> {
    let blob = crate::dtb::without_nops(blob)?;
    let fdt = Fdt::new(&blob).map_err(|e| anyhow!("the board DTB does not parse: {e:?}"))?;
    let uart = fdt
        .aliases()
        .and_then(|a| a.resolve("serial0"))
        .context("the board DTB has no serial0 alias")?
        .to_owned();
    fdt.find_node(&uart)
        .with_context(|| format!("the board DTB has no {uart} (its serial0)"))?;
    let phandle = fdt
        .all_nodes()
        .filter_map(|n| n.property("phandle").and_then(|p| p.as_usize()))
        .max()
        .unwrap_or(0) as u32
        + 1;
    let mut w = crate::dtb::writer_like(&fdt)?;
    let root = fdt.find_node("/").context("the board DTB has no root")?;
    let top = w.begin_node("").map_err(crate::dtb::fdt_err)?;
    copy(&mut w, root, "", &uart, phandle)?;
    let clk = w.begin_node(UART_CLOCK_NODE).map_err(crate::dtb::fdt_err)?;
    w.property_string("compatible", "fixed-clock")
        .map_err(crate::dtb::fdt_err)?;
    w.property_u32("#clock-cells", 0)
        .map_err(crate::dtb::fdt_err)?;
    w.property_u32("clock-frequency", UART_CLOCK_HZ)
        .map_err(crate::dtb::fdt_err)?;
    w.property_u32("phandle", phandle)
        .map_err(crate::dtb::fdt_err)?;
    w.end_node(clk).map_err(crate::dtb::fdt_err)?;
    w.end_node(top).map_err(crate::dtb::fdt_err)?;
    w.finish().map_err(crate::dtb::fdt_err)
}

/// Copies `node`'s properties and children (it is at `path`; the root is "") into the open
/// node of `w`, rewiring `uart`.
fn copy(
    w: &mut FdtWriter,
    node: FdtNode<'_, '_>,
    path: &str,
    uart: &str,
    phandle: u32,
) -> Result<()> {
    let is_uart = path == uart;
    for p in node.properties() {
        if (is_uart && FIRMWARE_PROPS.contains(&p.name)) || p.name.len() > 31 {
            continue;
        }
        w.property(p.name, p.value).map_err(crate::dtb::fdt_err)?;
    }
    if is_uart {
        w.property_array_u32("clocks", &[phandle, phandle])
            .map_err(crate::dtb::fdt_err)?;
    }
    for child in node.children() {
        let child_path = format!("{path}/{}", child.name);
        let h = w.begin_node(child.name).map_err(crate::dtb::fdt_err)?;
        copy(w, child, &child_path, uart, phandle)?;
        w.end_node(h).map_err(crate::dtb::fdt_err)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "native_tests.rs"]
mod tests;
