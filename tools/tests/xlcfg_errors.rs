//! Xen xl.cfg domain files: every error has a fixture in `tests/fixtures/xl/` and an exact
//! expected message; warnings, the values read and the Xen documentation's example are
//! checked too.

mod common;

use bulkhead_tools::system::{DebianArtifact, Image};
use bulkhead_tools::xlcfg::{self, XlCpus};
use protocol::manifest::Action;
use std::path::Path;

fn error(name: &str) -> String {
    let path = Path::new("tests/fixtures/xl").join(format!("{name}.cfg"));
    common::error_of(&path, xlcfg::load)
}

macro_rules! fixture {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            let file = concat!("tests/fixtures/xl/", stringify!($name), ".cfg");
            assert_eq!(error(stringify!($name)), format!("{file}:{}", $msg));
        }
    };
}

fixture!(unknown_key, "3: key `colour`: unknown key, expected an xl.cfg(5) key; Bulkhead uses name, type, memory, vcpus, cpus, kernel, ramdisk, cmdline, extra, root, on_poweroff, on_reboot, on_crash, gic_version, disk, vif, iomem, irqs, dtdev, device_tree");
fixture!(x86_key, "3: key `viridian`: is an x86 PV/HVM option, which makes no sense for an Arm guest, expected it removed");
fixture!(type_hvm, "2: key `type`: \"hvm\" guests do not exist on Arm, expected \"pvh\" (the only Arm guest type, as on Xen) or no `type`");
fixture!(
    type_bad,
    "2: key `type`: \"pvhh\" is not a guest type, expected \"pvh\" or no `type`"
);
fixture!(
    gic_bad,
    "3: key `gic_version`: \"v4\" is not a GIC version, expected \"v2\", \"v3\" or \"default\" (the host's)"
);
fixture!(
    memory_text,
    "3: key `memory`: \"lots\" is not a number, expected MiB in 1..=2048"
);
fixture!(
    memory_range,
    "3: key `memory`: 4096 is out of range, expected MiB in 1..=2048"
);
fixture!(
    maxmem_small,
    "4: key `maxmem`: 32 is less than memory (64), expected maxmem >= memory"
);
fixture!(
    vcpus_range,
    "3: key `vcpus`: 0 is out of range, expected a vCPU count in 1..=8"
);
fixture!(bad_cpus, "3: key `cpus`: \"1-\" is not a pCPU list, expected a pCPU list such as \"2\", \"1-3\", \"0,2\", \"all\" or \"all,^1\"");
fixture!(numa_cpus, "3: key `cpus`: \"nodes:0-1\" names NUMA nodes, which Bulkhead does not model, expected a pCPU list such as \"2\", \"1-3\", \"0,2\", \"all\" or \"all,^1\"");
fixture!(cpus_set_per_vcpu, "4: key `cpus`: vCPU 1's entry \"3-4\" is not a single pCPU, expected one pCPU per vCPU such as [\"2\", \"3\"] (each vCPU is pinned to one pCPU)");
fixture!(bad_action, "3: key `on_crash`: \"reboot\" is not an action, expected destroy, restart or preserve (or rename-restart, coredump-destroy, coredump-restart)");
fixture!(soft_reset, "3: key `on_crash`: \"soft-reset\" is not supported, expected destroy, restart or preserve (or rename-restart, coredump-destroy, coredump-restart)");
fixture!(
    missing_name,
    "1: key `name`: missing, expected name = \"NAME\" (xl.cfg(5) requires it)"
);
fixture!(missing_kernel, "1: key `kernel`: missing, expected kernel = \"PATH\" to a Bulkhead flat image or an arm64 Linux Image, or one of rtos, testguest, blkdom, netdom, debian-linux");
fixture!(kernel_not_found, "2: key `kernel`: \"no-such-kernel.bin\" is neither an existing file (tests/fixtures/xl/no-such-kernel.bin) nor a built-in image, expected a path relative to the .cfg file or one of rtos, testguest, blkdom, netdom, debian-linux");
fixture!(ramdisk_not_found, "3: key `ramdisk`: \"no-such-initramfs.cpio\" is neither an existing file (tests/fixtures/xl/no-such-initramfs.cpio) nor debian-initramfs, expected a path relative to the .cfg file or \"debian-initramfs\"");
fixture!(ramdisk_not_linux, "2: key `ramdisk`: only Linux kernels take an initramfs, but kernel \"testguest\" is a built-in Bulkhead domain, expected no ramdisk or kernel = \"debian-linux\" or a path to an arm64 Linux Image");
fixture!(ramdisk_flat_kernel, "3: key `ramdisk`: only Linux kernels take an initramfs, but kernel \"../blob.bin\" is not an arm64 Linux Image (no \"ARM\\x64\" magic at byte 56), expected no ramdisk or kernel = \"debian-linux\" or a path to an arm64 Linux Image");
fixture!(bad_name, "1: key `name`: \"My VM\" is not a valid domain name, expected 1..=31 bytes of [A-Za-z0-9_.-], not \"dom0\"");
fixture!(
    name_list,
    "1: key `name`: found a list, expected a domain name"
);
fixture!(
    disk_string,
    "3: key `disk`: found a string, expected a list of strings"
);
fixture!(
    irqs_text,
    "3: key `irqs`: \"spi\" is not a number, expected a list of SPI numbers (GIC INTIDs 32..1019) such as [ 34 ]"
);
fixture!(python, "3: key `(syntax)`: unexpected character `(` (xl.cfg is not Python), expected KEY = \"string\", number or [list]");
fixture!(
    unterminated,
    "2: key `(syntax)`: unterminated string, expected a closing ' on the same line"
);
fixture!(
    missing_equals,
    "2: key `kernel`: found string \"testguest\", expected `=` or `+=` after the key"
);
fixture!(
    list_unclosed,
    "4: key `vif`: found string \"mac=00:16:3e:00:00:01\", expected `,` or `]` in a list"
);
fixture!(
    append_mismatch,
    "4: key `disk`: cannot append a string to a list, expected `+=` of the same kind"
);

#[test]
fn unreadable_file() {
    common::stand_ins();
    assert_eq!(
        error("no-such-file").split(": cannot read it:").next(),
        Some("tests/fixtures/xl/no-such-file.cfg:1: key `(file)`")
    );
}

#[test]
fn every_used_key_is_read() {
    common::stand_ins();
    let d = xlcfg::load(Path::new("tests/fixtures/xl/full.cfg")).unwrap();
    assert_eq!(d.name.value, "full");
    assert_eq!(d.name.line, 2);
    assert_eq!(d.image.value, Image::Builtin("testguest".into()));
    assert_eq!((d.memory_mib, d.vcpus), (16, 2), "memory = 0x10 is hex");
    assert_eq!(d.cpus.unwrap().value, XlCpus::List(vec![2, 3]));
    assert_eq!(
        d.cmdline, "root=/dev/xvda mode=smp",
        "root= then extra, as xl"
    );
    assert_eq!(
        (d.on_poweroff, d.on_reboot, d.on_crash),
        (Action::Preserve, Action::Destroy, Action::Restart)
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn defaults_are_xl_defaults() {
    common::stand_ins();
    let d = xlcfg::parse(
        Path::new("tests/fixtures/xl/min.cfg"),
        "name = 'min'\nkernel = 'rtos'\n",
    )
    .unwrap();
    assert_eq!((d.memory_mib, d.vcpus, d.cpus), (32, 1, None));
    assert_eq!(
        (d.on_poweroff, d.on_reboot, d.on_crash),
        (Action::Destroy, Action::Restart, Action::Destroy)
    );
    assert_eq!(d.cmdline, "");
    assert_eq!(d.ramdisk, None);
    let d = xlcfg::load(Path::new("tests/fixtures/xl/unpinned.cfg")).unwrap();
    assert_eq!(d.cpus.unwrap().value, XlCpus::Any { except: vec![3] });
}

#[test]
fn unimplemented_keys_warn_once_each() {
    common::stand_ins();
    let d = xlcfg::load(Path::new("tests/fixtures/xl/warnings.cfg")).unwrap();
    let got: Vec<String> = d.warnings.iter().map(|w| w.to_string()).collect();
    let f = "tests/fixtures/xl/warnings.cfg";
    let want: Vec<String> = [
        "5: key `maxmem`: not implemented yet (no ballooning: the domain gets `memory` MiB), ignored",
        "6: key `maxvcpus`: not implemented yet (no vCPU hotplug: the domain gets `vcpus` vCPUs), ignored",
        "7: key `pool`: not implemented yet (there are no CPU pools), ignored",
        "8: key `vtpm`: not implemented yet (vTPMs are not implemented), ignored",
        "10: key `driver_domain`: not implemented yet (driver domains are not implemented yet), ignored",
        "11: key `on_watchdog`: not implemented yet (there is no guest watchdog yet), ignored",
        "12: key `on_reboot`: \"rename-restart\" is treated as \"restart\" (the new instance keeps the name and the domain id)",
        "13: key `on_crash`: \"coredump-restart\" is treated as \"restart\" (no core dumps yet)",
        "15: key `extra`: ignored because `cmdline` is set (as xl does)",
    ]
    .iter()
    .map(|w| format!("{f}:{w}"))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        (d.on_reboot, d.on_crash),
        (Action::Restart, Action::Restart)
    );
    assert_eq!(d.cmdline, "mode=smp");
}

/// The passthrough keys of the Zynq UltraScale+ Xen guide's Ethernet example are read as
/// written (whether the host has the device is checked when the system is packed).
#[test]
fn passthrough_keys_are_read() {
    common::stand_ins();
    let text = "name = 'eth'\nkernel = 'rtos'\nmemory = 16\ndtdev = [ \"/amba/ethernet@ff0e0000\" ]\niomem = [ \"0xff0e0,1\", \"0x9010,1@0x2000\" ]\nirqs = [ 95, 0x60 ]\n";
    let d = xlcfg::parse(Path::new("tests/fixtures/xl/eth.cfg"), text).unwrap();
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let p = &d.passthrough;
    assert_eq!(p.dtdevs[0].value, "/amba/ethernet@ff0e0000");
    let iomem: Vec<(u64, u64, u64)> = p
        .iomem
        .iter()
        .map(|a| (a.value.start, a.value.pages, a.value.gfn))
        .collect();
    assert_eq!(iomem, [(0xff0e0, 1, 0xff0e0), (0x9010, 1, 0x2000)]);
    assert_eq!(p.iomem[0].line, 5);
    let irqs: Vec<u32> = p.irqs.iter().map(|a| a.value).collect();
    assert_eq!(irqs, [95, 96]);
    let err = |text: &str| {
        xlcfg::parse(
            Path::new("e.cfg"),
            &format!("name = 'e'\nkernel = 'rtos'\n{text}\n"),
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(err("iomem = [ \"0x9010,1\", \"0x9010,1@0x9020\" ]"), "e.cfg:3: key `iomem`: entries 0x9010,0x1@0x9010 and 0x9010,0x1@0x9020 overlap in host pages, expected disjoint ranges");
    assert_eq!(err("iomem = [ \"0x9010\" ]"), "e.cfg:3: key `iomem`: \"0x9010\" has no `,NUM_PAGES`, expected \"IOMEM_START,NUM_PAGES[@GFN]\" in hexadecimal page numbers, such as \"0x9010,1@0x9010\"");
    assert_eq!(err("irqs = [ 30 ]"), "e.cfg:3: key `irqs`: 30 is a private interrupt (SGI or PPI) of the CPUs, which the microvisor keeps, expected a list of SPI numbers (GIC INTIDs 32..1019) such as [ 34 ]");
    assert_eq!(err("dtdev = \"/pl031@9010000\""), "e.cfg:3: key `dtdev`: found a string, expected a list of host device-tree paths such as \"/pl031@9010000\"");
}

/// The example of xl.cfg(5) and Xen's Arm docs, verbatim, with stand-ins for its files (an
/// arm64 Image header, an empty gzipped cpio): every key is read as written.
#[test]
fn xen_docs_example() {
    common::stand_ins();
    let d = xlcfg::load(Path::new("tests/fixtures/xl/xen-example/domU.cfg")).unwrap();
    assert_eq!(d.name.value, "domU");
    assert_eq!((d.memory_mib, d.vcpus), (512, 1));
    let dir = Path::new("tests/fixtures/xl/xen-example");
    assert_eq!(d.image.value, Image::File(dir.join("Image")));
    assert_eq!(
        d.ramdisk.map(|r| (r.value, r.line)),
        Some((Image::File(dir.join("rootfs.cpio.gz")), 5))
    );
    assert_eq!(d.cmdline, "console=hvc0 root=/dev/xvda rw");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn linux_kernels_and_their_command_lines() {
    common::stand_ins();
    let d = xlcfg::load(Path::new("tests/fixtures/xl/linux.cfg")).unwrap();
    assert_eq!(
        d.ramdisk.map(|r| r.value),
        Some(Image::Debian(DebianArtifact::Initramfs))
    );
    assert_eq!(
        d.cmdline, "root=/dev/ram0 console=hvc0 rw",
        "root= then extra, as xl"
    );
    let parse = |text: &str| xlcfg::parse(Path::new("tests/fixtures/xl/l.cfg"), text).unwrap();
    let d = parse("name = 'l'\nkernel = 'debian-linux'\n");
    assert_eq!(d.image.value, Image::Debian(DebianArtifact::Kernel));
    assert_eq!(d.ramdisk, None, "an initramfs is optional");
    assert_eq!(d.cmdline, "console=hvc0", "Linux without a command line");
    let d = parse("name = 'l'\nkernel = 'debian-linux'\ncmdline = ''\nextra = 'quiet'\n");
    assert_eq!(
        d.cmdline, "console=hvc0",
        "an empty cmdline wins over extra, then defaults"
    );
    let d = parse("name = 'l'\nkernel = 'debian-linux'\nroot = '/dev/xvda'\n");
    assert_eq!(d.cmdline, "root=/dev/xvda", "given, so no console= added");
    let d = parse("name = 'l'\nkernel = 'rtos'\n");
    assert_eq!(d.cmdline, "", "Bulkhead domains get no default");
}

#[test]
fn shipped_linux_guest() {
    common::stand_ins();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let d = xlcfg::load(&root.join("systems/xl/linux-guest.cfg")).unwrap();
    assert_eq!(d.name.value, "debian");
    assert_eq!(d.image.value, Image::Debian(DebianArtifact::Kernel));
    assert_eq!(
        d.ramdisk.map(|r| r.value),
        Some(Image::Debian(DebianArtifact::Initramfs))
    );
    assert_eq!(d.cmdline, "console=hvc0 loglevel=4");
    assert_eq!((d.memory_mib, d.vcpus, d.cpus), (256, 2, None));
    assert_eq!(
        (d.on_poweroff, d.on_reboot),
        (Action::Destroy, Action::Restart)
    );
}

#[test]
fn shipped_xl_files_are_valid() {
    common::stand_ins();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in [
        "systems/xl/smp-guest.cfg",
        "systems/xl/linux-guest.cfg",
        "tests/systems/xl/xlsmp.cfg",
        "tests/systems/xl/kept.cfg",
    ] {
        let d = xlcfg::load(&root.join(file));
        let d = d.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(d.warnings.is_empty(), "{file}: {:?}", d.warnings);
    }
}

// A hostile file of nested `[`: the parser's recursion is bounded (security review F18).
fixture!(
    nested_lists,
    "2: key `cpus`: lists are nested more than 16 deep, expected at most 16 levels of [ ]"
);
