//! Host tests for [`super`]: a fixture shaped like QEMU `virt`'s device tree (PL011 the
//! microvisor logs on, PL031, PL061, a virtio-mmio transport, GIC, timer) and xl.cfg
//! domains given its devices.

use super::*;
use crate::system::Overrides;
use std::path::Path;
use vm_fdt::FdtWriter;

pub(crate) fn virt_like() -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let dev =
        |w: &mut FdtWriter, name: &str, compat: &str, reg: [u64; 2], irq: Option<[u32; 3]>| {
            let n = w.begin_node(name).unwrap();
            w.property_string("compatible", compat).unwrap();
            w.property_array_u64("reg", &reg).unwrap();
            if let Some(i) = irq {
                w.property_array_u32("interrupts", &i).unwrap();
            }
            w.end_node(n).unwrap();
        };
    let mem = w.begin_node("memory@40000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x4000_0000, 0x4000_0000])
        .unwrap();
    w.end_node(mem).unwrap();
    dev(
        &mut w,
        "intc@8000000",
        "arm,gic-v3",
        [0x0800_0000, 0x1_0000],
        Some([1, 9, 4]),
    );
    dev(
        &mut w,
        "pl011@9000000",
        "arm,pl011",
        [0x0900_0000, 0x1000],
        Some([0, 1, 4]),
    );
    dev(
        &mut w,
        "pl031@9010000",
        "arm,pl031",
        [0x0901_0000, 0x1000],
        Some([0, 2, 4]),
    );
    dev(
        &mut w,
        "pl061@9030000",
        "arm,pl061",
        [0x0903_0000, 0x1000],
        Some([0, 7, 4]),
    );
    dev(
        &mut w,
        "virtio_mmio@a000000",
        "virtio,mmio",
        [0x0a00_0000, 0x200],
        Some([0, 16, 1]),
    );
    let timer = w.begin_node("timer").unwrap();
    w.property_string("compatible", "arm,armv8-timer").unwrap();
    w.property_array_u32("interrupts", &[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
        .unwrap();
    w.end_node(timer).unwrap();
    let pcie = w.begin_node("pcie@10000000").unwrap();
    w.property_string("device_type", "pci").unwrap();
    w.property_array_u64("reg", &[0x40_1000_0000, 0x1000_0000])
        .unwrap();
    w.end_node(pcie).unwrap();
    let chosen = w.begin_node("chosen").unwrap();
    w.property_string("stdout-path", "/pl011@9000000").unwrap();
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// A system of xl.cfg domains `cfgs` (name, extra lines), checked against [`virt_like`].
fn assign_cfgs(cfgs: &[(&str, &str)]) -> Result<Vec<Vec<ManifestDevice>>, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    for (name, extra) in cfgs {
        let cfg = format!("name = \"{name}\"\nkernel = \"rtos\"\nmemory = 8\n{extra}\n");
        std::fs::write(dir.path().join(format!("{name}.cfg")), cfg).unwrap();
        toml.push_str(&format!("[[domain]]\nconfig = \"{name}.cfg\"\n\n"));
    }
    let host = host_devices(&virt_like(), None).unwrap();
    System::parse(&dir.path().join("s.toml"), &toml, Overrides::default())
        .and_then(|system| assign(&system, &host))
        .map_err(|mut e| {
            // Name the file without the temporary folder, for comparisons.
            e.file = Path::new(&e.file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into();
            e
        })
}

fn problem(cfgs: &[(&str, &str)]) -> String {
    assign_cfgs(cfgs).unwrap_err().to_string()
}

#[test]
fn the_host_tree_says_what_a_guest_may_have() {
    let host = host_devices(&virt_like(), None).unwrap();
    let kept = |p: &str| host.iter().find(|h| h.path == p).unwrap().kept.as_deref();
    assert_eq!(kept("/pl031@9010000"), None);
    assert_eq!(kept("/pl061@9030000"), None);
    assert!(kept("/pl011@9000000").unwrap().contains("UART"));
    assert!(kept("/intc@8000000").unwrap().contains("GIC"));
    assert!(kept("/timer").unwrap().contains("timer"));
    assert!(kept("/pcie@10000000").unwrap().contains("PCI passthrough"));
    assert!(kept("/virtio_mmio@a000000")
        .unwrap()
        .contains("driver domains"));
    let rtc = host.iter().find(|h| h.path == "/pl031@9010000").unwrap();
    assert_eq!(rtc.irqs, [34]);
    assert_eq!(rtc.regs, [(0x0901_0000, 0x1000)]);
}

#[test]
fn the_rtc_is_given_where_iomem_puts_it() {
    let got = assign_cfgs(&[(
        "rtc",
        "iomem = [\"0x9010,1@0x20000\"]\nirqs = [ 34 ]\ndtdev = [ \"/pl031@9010000\" ]",
    )])
    .unwrap();
    assert_eq!(
        got,
        [vec![ManifestDevice {
            path: "/pl031@9010000".into(),
            mmio_base: 0x0901_0000,
            windows: vec![ManifestWindow {
                host: 0x0901_0000,
                guest: 0x2000_0000,
                size: 0x1000
            }],
            irqs: vec![34],
        }]]
    );
    // A window in the guest's RAM (8 MiB from 0x40000000) is refused.
    let e = problem(&[("rtc", "iomem = [\"0x9010,1@0x40700\"]")]);
    assert!(e.starts_with("rtc.cfg:4: key `iomem`: /pl031@9010000 would be at guest address 0x40700000, inside the guest's 8 MiB of RAM"), "{e}");
    assert!(assign_cfgs(&[("rtc", "iomem = [\"0x9010,1@0x40800\"]")]).is_ok());
    // dtdev alone: the whole node at its host address.
    let got = assign_cfgs(&[("rtc", "dtdev = [ \"/pl031@9010000\" ]")]).unwrap();
    assert_eq!(got[0][0].windows[0].guest, 0x0901_0000);
}

#[test]
fn each_wrong_key_is_named_with_its_line() {
    assert_eq!(
        problem(&[("a", "dtdev = [ \"/pl032@9010000\" ]")]),
        "a.cfg:4: key `dtdev`: \"/pl032@9010000\" is not a node of the host's device tree, expected one of /pl031@9010000, /pl061@9030000"
    );
    assert!(problem(&[("a", "dtdev = [ \"/pl011@9000000\" ]")])
        .starts_with("a.cfg:4: key `dtdev`: /pl011@9000000 cannot be given to a guest: it is the microvisor's UART"));
    assert!(problem(&[("a", "iomem = [ \"0xa000,1\" ]")])
        .starts_with("a.cfg:4: key `iomem`: host pages 0xa000000..0xa001000 are not inside the registers of one device"));
    assert!(problem(&[("a", "iomem = [ \"0x9010,2\" ]")]).contains("not inside the registers"));
    assert!(
        problem(&[("a", "dtdev = [ \"/pl031@9010000\" ]\nirqs = [ 33 ]")]).starts_with(
            "a.cfg:5: key `irqs`: 33 is the interrupt of /pl011@9000000, which a guest cannot have"
        )
    );
    assert!(
        problem(&[("a", "dtdev = [ \"/pl031@9010000\" ]\nirqs = [ 39 ]")]).starts_with(
            "a.cfg:5: key `irqs`: 39 belongs to /pl061@9030000, which this domain is not given"
        )
    );
    assert!(
        problem(&[("a", "dtdev = [ \"/pl031@9010000\" ]\nirqs = [ 40 ]")])
            .contains("no device of the host's device tree uses interrupt 40")
    );
    assert!(problem(&[("a", "dtdev = [ \"/virtio_mmio@a000000\" ]")]).contains("use `disk`"));
}

#[test]
fn a_device_goes_to_one_domain() {
    let e = problem(&[
        ("a", "dtdev = [ \"/pl061@9030000\" ]"),
        ("b", "iomem = [ \"0x9030,1\" ]"),
    ]);
    assert!(
        e.starts_with("b.cfg:4: key `iomem`: /pl061@9030000 is already given to domain a ("),
        "{e}"
    );
    // Different devices: fine.
    let got = assign_cfgs(&[
        ("a", "dtdev = [ \"/pl061@9030000\" ]"),
        ("b", "dtdev = [ \"/pl031@9010000\" ]"),
    ])
    .unwrap();
    assert_eq!(got[1][0].irqs, [34]);
}

#[test]
fn xl_level_errors_name_the_line_before_the_host_is_consulted() {
    let e = problem(&[("a", "iomem = [ \"0x9010,1\", \"0x9010,1@0x9020\" ]")]);
    assert!(
        e.starts_with("a.cfg:4: key `iomem`: entries") && e.contains("overlap in host pages"),
        "{e}"
    );
    let e = problem(&[("a", "irqs = [ 27 ]")]);
    assert!(
        e.starts_with("a.cfg:4: key `irqs`: 27 is a private interrupt"),
        "{e}"
    );
    let e = problem(&[("a", "dtdev = [ \"pl031\" ]")]);
    assert!(e.contains("not an absolute device-tree path"), "{e}");
}

#[test]
fn system_passthrough_reserves_devices_for_later() {
    let host = host_devices(&virt_like(), None).unwrap();
    let reserve = |list: &str| {
        let toml = format!("[system]\nsmp = 2\npassthrough = {list}\n");
        System::parse(Path::new("/s.toml"), &toml, Overrides::default())
            .and_then(|system| reserved(&system, &host))
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        reserve(r#"["/pl061@9030000"]"#),
        Ok(vec!["/pl061@9030000".to_string()])
    );
    let e = reserve(r#"["/pl061@9"]"#).unwrap_err();
    assert!(
        e.contains("s.toml:3: key `passthrough`: \"/pl061@9\" is not a node")
            && e.contains("/pl031@9010000"),
        "{e}"
    );
    let e = reserve(r#"["/pl011@9000000"]"#).unwrap_err();
    assert!(
        e.contains("cannot be given to a guest") && e.contains("UART"),
        "{e}"
    );
    let e = reserve(r#"["pl061"]"#).unwrap_err();
    assert!(e.contains("\"pl061\" is not a node path"), "{e}");
    let e = reserve(r#""/pl061@9030000""#).unwrap_err();
    assert!(e.contains("found a string, expected an array"), "{e}");
}

/// The ZCU102's second UART (under `/axi`) while it is dom0's management port, and once
/// `[system] mgmt_port = "none"` frees it (the real board tree, when the cache has it).
#[test]
fn the_zcu102_management_uart_is_a_guests_only_once_freed() {
    use crate::machine::Machine;
    let Some(dtb) = crate::dtb::boards_tests::cached_dtb(crate::machine::ZCU102_DTB) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = "name = \"ps\"\nkernel = \"rtos\"\nmemory = 8\ndtdev = [ \"/axi/serial@ff010000\" ]\niomem = [ \"0xff010,1\" ]\nirqs = [ 54 ]\n";
    std::fs::write(dir.path().join("ps.cfg"), cfg).unwrap();
    let given = |system_table: &str| {
        let toml = format!("{system_table}[[domain]]\nconfig = \"ps.cfg\"\n");
        let system =
            System::parse(&dir.path().join("s.toml"), &toml, Overrides::default()).unwrap();
        let port = Machine::Zcu102.mgmt_port_of(&system).unwrap();
        let host = host_devices(&dtb, port).unwrap();
        assign(&system, &host).map_err(|e| e.to_string())
    };
    let e = given("").unwrap_err();
    assert!(
        e.ends_with("ps.cfg:4: key `dtdev`: /axi/serial@ff010000 cannot be given to a guest: it is dom0's management port (`[system] mgmt_port = \"serial1\"`); set `mgmt_port = \"none\"` in the system description to give it to a guest"),
        "{e}"
    );
    assert!(given("[system]\nmgmt_port = \"serial1\"\n").is_err());
    let got = given("[system]\nmgmt_port = \"none\"\n").unwrap();
    assert_eq!(
        got,
        [vec![ManifestDevice {
            path: "/axi/serial@ff010000".into(),
            mmio_base: 0xff01_0000,
            windows: vec![ManifestWindow {
                host: 0xff01_0000,
                guest: 0xff01_0000,
                size: 0x1000
            }],
            irqs: vec![54],
        }]]
    );
    // The microvisor's own console UART is never a guest's.
    std::fs::write(
        dir.path().join("ps.cfg"),
        "name = \"ps\"\nkernel = \"rtos\"\nmemory = 8\ndtdev = [ \"/axi/serial@ff000000\" ]\n",
    )
    .unwrap();
    let e = given("[system]\nmgmt_port = \"none\"\n").unwrap_err();
    assert!(e.contains("it is the microvisor's UART"), "{e}");
}

#[test]
fn mgmt_port_serial1_is_the_zcu102s_only() {
    use crate::machine::Machine;
    let parse = |t: &str| System::parse(Path::new("/s.toml"), t, Overrides::default()).unwrap();
    let serial1 = parse("[system]\nmgmt_port = \"serial1\"\n");
    assert_eq!(Machine::Zcu102.mgmt_port_of(&serial1), Ok(Some("serial1")));
    assert_eq!(
        Machine::Virt.mgmt_port_of(&serial1).unwrap_err().to_string(),
        "/s.toml:2: key `mgmt_port`: \"serial1\" asked for, but --machine virt has one UART (the microvisor's) and serves the management port on a virtio console; expected \"none\" or no `mgmt_port`"
    );
    let none = parse("[system]\nmgmt_port = \"none\"\n");
    assert_eq!(Machine::Zcu102.mgmt_port_of(&none), Ok(None));
    assert!(!Machine::Zcu102.has_mgmt(&none));
    assert!(Machine::Zcu102.has_mgmt(&parse("")));
    // Without a port the ZCU102's serial1 goes to its own socket, not the management one.
    let args = Machine::Zcu102.mgmt_args(false).join(" ");
    assert!(args.contains("path=../serial1.sock") && args.contains("-serial chardev:serial1"));
    assert!(!args.contains("mgmt"), "{args}");
    assert!(Machine::Virt.mgmt_args(false).is_empty());
}
