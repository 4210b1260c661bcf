//! Host tests for module layout, RAM checks, manifest labels and QEMU's command line.

use super::*;
use crate::machine::Machine;
use crate::system::disks::HostDisk;
use crate::system::nics::HostNic;

/// QEMU virt's RAM with `mib` MiB.
fn virt(mib: u64) -> RamBank {
    RamBank {
        base: 0x4000_0000,
        size: mib << 20,
    }
}

#[test]
fn modules_are_2mib_aligned_from_the_base() {
    let sizes = vec![
        ("dom0".into(), 0x20_0001),
        ("manifest".into(), 10),
        ("rtos".into(), 5),
    ];
    let mods = layout(&sizes, virt(1024)).unwrap();
    let addrs: Vec<u64> = mods.iter().map(|m| m.addr).collect();
    assert_eq!(addrs, [0x5000_0000, 0x5040_0000, 0x5060_0000]);
    let err = layout(&[("big".into(), 300 << 20)], virt(512))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "boot modules end at 0x62c00000, past the end of the 512 MiB of RAM at 0x60000000 (they load from RAM + 256 MiB, each 2 MiB aligned; the largest is big, 300 MiB); give QEMU at least 556 MiB (--mem or [system] memory), more to leave room for the domains");
}

#[test]
fn a_linux_kernel_and_initramfs_fit_the_default_ram() {
    let sizes = vec![
        ("dom0".into(), 300 << 10),
        ("manifest".into(), 200),
        ("debian-linux".into(), (38 << 20) + 12345),
        ("debian-initramfs".into(), (5 << 20) + 1),
    ];
    let mods = layout(&sizes, virt(1024)).unwrap();
    let addrs: Vec<u64> = mods.iter().map(|m| m.addr).collect();
    assert_eq!(addrs, [0x5000_0000, 0x5020_0000, 0x5040_0000, 0x52c0_0000]);
    // Ending exactly at the end of RAM is fine; one byte more is not.
    let exact = [("m".to_string(), 256 << 20)];
    assert!(layout(&exact, virt(512)).is_ok());
    assert!(layout(&[("m".to_string(), (256 << 20) + 1)], virt(512)).is_err());
}

#[test]
fn domain_modules_must_fit_its_ram() {
    let text = "[[domain]]\nname = \"l\"\nimage = \"debian-linux\"\nramdisk = \"debian-initramfs\"\nmemory = 40\n";
    let system = System::parse(Path::new("x.toml"), text, Overrides::default()).unwrap();
    let (m, _) = manifest(&system).unwrap();
    let sizes = |kernel: u64| {
        vec![
            ("debian-linux".to_string(), kernel),
            ("debian-initramfs".to_string(), 5 << 20),
        ]
    };
    assert!(check_domain_ram(&m, &sizes(30 << 20)).is_ok());
    let err = check_domain_ram(&m, &sizes(35 << 20)).unwrap_err();
    assert_eq!(err.to_string(), "domain \"l\": its boot modules (debian-linux, 35 MiB; debian-initramfs, 5 MiB) do not fit in its 40 MiB of RAM; give it more `memory`");
}

#[test]
fn ramdisks_get_labels_like_images() {
    // Two Linux domains share Debian's files; a third brings its own kernel and
    // initramfs; a file may not take a Debian or built-in name.
    let text = "[[domain]]\nname = \"a\"\nimage = \"debian-linux\"\nramdisk = \"debian-initramfs\"\nmemory = 64\n\n[[domain]]\nname = \"b\"\nimage = \"debian-linux\"\nramdisk = \"debian-initramfs\"\nmemory = 64\n\n[[domain]]\nname = \"c\"\nimage = \"Image\"\nramdisk = \"Image\"\nmemory = 64\n\n[[domain]]\nname = \"d\"\nimage = \"rtos\"\nmemory = 8\n";
    // A stand-in arm64 Image (its magic at byte 56) beside the description.
    let dir = tempfile::tempdir().unwrap();
    let mut header = vec![0u8; 64];
    header[56..60].copy_from_slice(b"ARM\x64");
    std::fs::write(dir.path().join("Image"), header).unwrap();
    let system = System::parse(&dir.path().join("x.toml"), text, Overrides::default()).unwrap();
    let (m, images) = manifest(&system).unwrap();
    let got: Vec<(&str, Option<&str>)> = m
        .domains
        .iter()
        .map(|d| (d.image.as_str(), d.ramdisk.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("debian-linux", Some("debian-initramfs")),
            ("debian-linux", Some("debian-initramfs")),
            ("image", Some("image")),
            ("rtos", None),
        ],
        "one module per distinct file, whichever role it plays"
    );
    let labels: Vec<&str> = images.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["debian-linux", "debian-initramfs", "image", "rtos"]
    );
    let taken = images;
    for (file, label) in [
        ("x/debian-linux.bin", "debian-linux-2"),
        ("x/debian-initramfs.cpio", "debian-initramfs-2"),
        ("x/rtos.bin", "rtos-2"),
        ("x/manifest.bin", "manifest-2"),
        ("x/guest.bin", "guest"),
    ] {
        let image = Image::File(file.into());
        assert_eq!(fresh_label(&image, &taken), label, "{file}");
    }
    assert_eq!(
        fresh_label(&Image::Debian(DebianArtifact::Kernel), &[]),
        "debian-linux"
    );
    let long =
        |dir: &str| Image::File(format!("{dir}/a-very-long-initramfs-name-indeed.cpio").into());
    let first = fresh_label(&long("x"), &[]);
    assert_eq!(first, "a-very-long-initramfs-name-inde");
    let second = fresh_label(&long("y"), &[(first, long("x"))]);
    assert_eq!(
        second, "a-very-long-initramfs-name-in-2",
        "the suffix fits too"
    );
}

#[test]
fn qemu_command_line_loads_every_module() {
    let mods = layout(&[("dom0".into(), 1), ("manifest".into(), 1)], virt(1024)).unwrap();
    let args = qemu_args(Machine::Virt, 4, 1024, Boot::Direct(&mods), &[], &[]).join(" ");
    assert!(args.starts_with(
        "-M virt,virtualization=on,gic-version=3 -cpu max -smp 4 -m 1024 -nographic -echr 0x14"
    ));
    assert!(args.ends_with(
        "-device loader,file=dom0.bin,addr=0x50000000,force-raw=on -device loader,file=manifest.bin,addr=0x50200000,force-raw=on"
    ));
}

#[test]
fn qemu_command_line_attaches_every_host_disk() {
    let disk = |index: u32, path: &str, read_only: bool| HostDisk {
        index,
        serial: format!("bkd{index}"),
        path: path.into(),
        read_only,
        sectors: 8,
        backend: "blkdom".into(),
    };
    let disks = [disk(0, "/srv/a.img", false), disk(1, "/srv/b,c.img", true)];
    let args = qemu_args(Machine::Virt, 4, 1024, Boot::Direct(&[]), &disks, &[]).join(" ");
    assert!(
        args.ends_with(
            "-device virtconsole,chardev=mgmt \
         -drive file=/srv/a.img,if=none,format=raw,id=bkd0,discard=unmap \
         -device virtio-blk-device,drive=bkd0,serial=bkd0 \
         -drive file=/srv/b,,c.img,if=none,format=raw,id=bkd1,readonly=on \
         -device virtio-blk-device,drive=bkd1,serial=bkd1"
        ),
        "{args}"
    );
}

#[test]
fn qemu_command_line_puts_the_uplink_on_the_user_network() {
    let nic = HostNic {
        index: 0,
        backend: "netdom".into(),
        hostfwd: vec!["tcp::8080-:80".into()],
    };
    let mods = layout(&[("dom0".into(), 1)], virt(1024)).unwrap();
    let args = qemu_args(Machine::Virt, 4, 1024, Boot::Direct(&mods), &[], &[nic]).join(" ");
    assert!(
        args.contains(
            "-device virtconsole,chardev=mgmt \
         -netdev user,id=net0,hostfwd=tcp::8080-:80 \
         -device virtio-net-device,netdev=net0,mac=52:54:00:12:34:56 \
         -device loader,file=dom0.bin"
        ),
        "{args}"
    );
    // No network backend, no NIC.
    assert!(
        !qemu_args(Machine::Virt, 4, 1024, Boot::Direct(&mods), &[], &[])
            .join(" ")
            .contains("netdev")
    );
}

#[test]
fn qemu_sh_quotes_what_the_shell_would_split() {
    assert_eq!(shell_word("-device"), "-device");
    assert_eq!(
        shell_word("file=/srv/a.img,if=none"),
        "file=/srv/a.img,if=none"
    );
    assert_eq!(shell_word("file=/my disks/a.img"), "'file=/my disks/a.img'");
    assert_eq!(shell_word("it's"), "'it'\\''s'");
    assert_eq!(shell_word(""), "''");
}

#[test]
fn qemu_command_line_for_u_boot_boots_the_firmware_from_a_sata_disk() {
    let fw = Path::new("/usr/lib/u-boot/qemu_arm64/u-boot.bin");
    let disk = Path::new("/t/boot,disk.img");
    let boot = Boot::UBoot { firmware: fw, disk };
    let args = qemu_args(Machine::Virt, 4, 1024, boot, &[], &[]).join(" ");
    assert!(
        args.contains(
            "-echr 0x14 -bios /usr/lib/u-boot/qemu_arm64/u-boot.bin -device virtio-serial-device"
        ),
        "{args}"
    );
    assert!(
        args.ends_with(
            "-drive file=/t/boot,,disk.img,if=none,format=raw,id=bulkhead-boot,snapshot=on \
             -device ich9-ahci,id=bulkhead-ahci -device ide-hd,drive=bulkhead-boot,bus=bulkhead-ahci.0"
        ),
        "{args}"
    );
    assert!(!args.contains("-kernel") && !args.contains("loader,"));
    // The direct boot keeps -kernel and -dtb where they were.
    assert!(
        qemu_args(Machine::Virt, 4, 1024, Boot::Direct(&[]), &[], &[])
            .join(" ")
            .contains(
                "-echr 0x14 -kernel microvisor.bin -dtb system.dtb -device virtio-serial-device"
            )
    );
}
