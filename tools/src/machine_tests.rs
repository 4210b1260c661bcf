//! Host tests for `--machine`: names, QEMU command lines, limits and default systems.

use super::*;
use crate::image::{layout, qemu_args, Boot};
use crate::system::disks::host_disks;
use crate::system::nics::host_nics;
use crate::system::{Overrides, System};
use clap::ValueEnum;

#[test]
fn names_round_trip_and_virt_is_the_default() {
    assert_eq!(Machine::default(), Machine::Virt);
    for m in Machine::value_variants() {
        assert_eq!(Machine::from_str(m.name(), false), Ok(*m));
    }
    assert!(Machine::from_str("raspi4", false).is_err());
}

#[test]
fn each_machine_s_qemu_command_line() {
    let ram = crate::dtb::RamBank {
        base: 0,
        size: 2048 << 20,
    };
    let mods = layout(&[("dom0".into(), 1)], ram).unwrap();
    let line = |m: Machine, smp: u16, mem: u32| {
        qemu_args(m, smp, mem, Boot::Direct(&mods), &[], &[]).join(" ")
    };
    let virtio_mgmt = "-device virtio-serial-device -chardev socket,id=mgmt,path=../mgmt.sock,server=on,wait=off -device virtconsole,chardev=mgmt";
    assert_eq!(
        line(Machine::Virt, 4, 1024),
        format!("-M virt,virtualization=on,gic-version=3 -cpu max -smp 4 -m 1024 -nographic -echr 0x14 -kernel microvisor.bin -dtb system.dtb {virtio_mgmt} -device loader,file=dom0.bin,addr=0x10000000,force-raw=on")
    );
    assert_eq!(
        line(Machine::VirtGicv2, 8, 1024),
        format!("-M virt,virtualization=on,gic-version=2 -cpu max -smp 8 -m 1024 -nographic -echr 0x14 -kernel microvisor.bin -dtb system.dtb {virtio_mgmt} -device loader,file=dom0.bin,addr=0x10000000,force-raw=on")
    );
    // The ZCU102: no -cpu (fixed A53s), the first UART on stdio and the second on the
    // management socket, no virtio device at all; modules from RAM at 0 + 256 MiB.
    let zcu = line(Machine::Zcu102, 4, 2048);
    assert_eq!(
        zcu,
        "-M xlnx-zcu102,virtualization=on -smp 4 -m 2048 -nographic -echr 0x14 -kernel microvisor.bin -dtb system.dtb -chardev socket,id=mgmt,path=../mgmt.sock,server=on,wait=off -serial mon:stdio -serial chardev:mgmt -device loader,file=dom0.bin,addr=0x10000000,force-raw=on"
    );
    assert!(!zcu.contains("virtio"));
}

#[test]
fn the_dtb_dump_asks_for_the_machine_the_system_boots_on() {
    let out = Path::new("/t/host.dtb");
    assert_eq!(
        Machine::VirtGicv2.dump_args(2, 512, None, out).join(" "),
        "-M virt,virtualization=on,gic-version=2,dumpdtb=/t/host.dtb -cpu max -smp 2 -m 512 -display none"
    );
    assert_eq!(
        Machine::Zcu102
            .dump_args(4, 2048, Some(Path::new("/c/zcu102.dtb")), out)
            .join(" "),
        "-M xlnx-zcu102,virtualization=on,dumpdtb=/t/host.dtb -smp 4 -m 2048 -display none -dtb /c/zcu102.dtb"
    );
}

#[test]
fn limits_are_checked_with_the_reason() {
    assert!(Machine::Virt.check(8, 4096, 2, 1).is_ok());
    let e = Machine::VirtGicv2
        .check(9, 1024, 0, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--machine virt-gicv2 has at most 8 CPUs, the system asks for 9 (--smp or [system] smp)"
    );
    assert!(Machine::Zcu102.check(4, 2048, 0, 0).is_ok());
    let e = Machine::Zcu102
        .check(5, 2048, 0, 0)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--machine zcu102 has at most 4 CPUs"), "{e}");
    let e = Machine::Zcu102
        .check(4, 4096, 0, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "--machine zcu102 takes at most 2048 MiB (its DDR below 2 GiB), the system asks for 4096 (--mem or [system] memory)");
    let e = Machine::Zcu102
        .check(4, 1024, 1, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--machine zcu102 has no virtio-mmio transports")
            && e.contains("1 disk(s) and 1 NIC(s)")
            && e.ends_with("systems/zcu102.toml"),
        "{e}"
    );
}

#[test]
fn each_machine_s_default_system_fits_it() {
    for m in Machine::value_variants() {
        let file = m.default_system();
        let system = System::load(&file, Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
        m.check(
            system.smp,
            system.memory_mib,
            host_disks(&system).len(),
            host_nics(&system).len(),
        )
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    }
    // The ZCU102's runs without the driver domains, the others with them.
    let zcu = System::load(&Machine::Zcu102.default_system(), Overrides::default()).unwrap();
    let names: Vec<&str> = zcu.domains.iter().map(|d| d.name.value.as_str()).collect();
    assert_eq!(names, ["rtos", "linux"]);
    assert!(Machine::Zcu102.notice().unwrap().contains("second UART"));
    assert!(Machine::Virt.notice().is_none());
    // The port is named in the packed tree where it is a UART, and is wired to serial1.
    assert_eq!(Machine::Zcu102.mgmt_port(), Some("serial1"));
    assert!(Machine::Zcu102
        .mgmt_args(true)
        .windows(2)
        .any(|a| a == ["-serial", "chardev:mgmt"]));
    assert_eq!(Machine::VirtGicv2.mgmt_port(), None);
    assert_eq!(Machine::Virt.mgmt_port(), None);
}

#[test]
fn benchmarks_off_virt_are_those_without_a_native_baseline() {
    use crate::bench::machine_supports;
    for which in ["hypercall", "rt", "boot", "blk", "net", "restart", "micro"] {
        assert!(machine_supports(which, false, Machine::Virt), "{which}");
    }
    assert!(machine_supports("micro", false, Machine::Zcu102));
    assert!(machine_supports("hypercall", false, Machine::VirtGicv2));
    assert!(!machine_supports("micro", true, Machine::Zcu102));
    assert!(machine_supports("boot", false, Machine::Zcu102));
    assert!(!machine_supports("rt", false, Machine::Zcu102));
    assert!(!machine_supports("blk", false, Machine::VirtGicv2));
}

/// xl.cfg `gic_version`: the domain gets the host's GIC, so "v2" is accepted only on the
/// GICv2 machines and "v3" only on `virt`, each refusal naming file, line and key.
#[test]
fn gic_version_must_be_the_machines() {
    let xl = crate::xlcfg::load(Path::new("tests/fixtures/xl/gic_v2.cfg")).unwrap();
    let at = xl.gic_version.expect("gic_version = \"v2\" is kept");
    assert_eq!((at.value, at.line), (GicVersion::V2, 3));
    assert!(Machine::VirtGicv2.check_gic(&at, "gic_v2.cfg").is_ok());
    assert!(Machine::Zcu102.check_gic(&at, "gic_v2.cfg").is_ok());
    assert_eq!(
        Machine::Virt
            .check_gic(&at, "gic_v2.cfg")
            .unwrap_err()
            .to_string(),
        "gic_v2.cfg:3: key `gic_version`: GICv2 asked for, but --machine virt has a GICv3 \
         and every domain gets the host's interrupt controller; expected \"v3\" or \"default\""
    );
    let e = Machine::Virt.check_gic(&at, "gic_v2.cfg").unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.key.as_str()),
        ("gic_v2.cfg", 3, "gic_version")
    );
    let v3 = crate::system::At::new(GicVersion::V3, 7);
    assert!(Machine::Virt.check_gic(&v3, "x.cfg").is_ok());
    assert!(Machine::Zcu102
        .check_gic(&v3, "x.cfg")
        .unwrap_err()
        .to_string()
        .starts_with(
            "x.cfg:7: key `gic_version`: GICv3 asked for, but --machine zcu102 has a GICv2"
        ));
}
