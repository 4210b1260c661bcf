use super::*;

fn modules() -> Vec<Module> {
    vec![
        Module {
            label: "dom0".into(),
            addr: 0x5000_0000,
            size: 0x1234,
        },
        Module {
            label: "debian-linux".into(),
            addr: 0x5020_0000,
            size: 0x30_0000,
        },
    ]
}

const VIRT: RamBank = RamBank {
    base: 0x4000_0000,
    size: 0x4000_0000,
};

#[test]
fn the_tftp_script_loads_every_file_with_tftpboot_at_the_same_addresses() {
    let plan = Plan::new(VIRT, &modules(), 0xcb000).unwrap();
    let disk = script("default", &modules(), &plan);
    let tftp = script_for(Source::Tftp, "default", &modules(), &plan);
    assert!(tftp.contains("tftpboot ${kernel_addr_r} microvisor.bin || setenv bh_ok 0\n"));
    assert!(tftp.contains("tftpboot 0x50000000 dom0.bin || setenv bh_ok 0\n"));
    assert!(tftp.contains("tftpboot 0x50200000 debian-linux.bin || setenv bh_ok 0\n"));
    // The DTB goes after the last module (0x50500000, 2 MiB aligned), as on the SD card.
    assert_eq!(plan.fdt_addr, 0x5060_0000);
    assert!(tftp.contains("if tftpboot 0x50600000 bulkhead.dtb; then"));
    assert!(
        !tftp.contains("devtype") && !tftp.contains("load ${"),
        "{tftp}"
    );
    // The network checks, then the same kernel_addr_r checks.
    assert!(tftp.contains(
        "if test -z \"${ipaddr}\"; then setenv autoload no; dhcp || echo \"bulkhead: DHCP failed: setenv ipaddr and serverip by hand\"; fi\n"
    ));
    assert!(tftp.contains(
        "if test -z \"${serverip}\" || test -z \"${ipaddr}\"; then echo \"bulkhead: set ipaddr and serverip first (or run dhcp)\"; setenv bh_ok 0; fi\n"
    ));
    assert!(tftp.contains("setexpr bh_kend ${kernel_addr_r} + 0x2cb000\n"));
    assert!(tftp
        .contains("itest.q ${bh_kend} -gt 0x50000000 && itest.q ${kernel_addr_r} -lt 0x50800000;"));
    assert!(tftp.contains(
        "# Compile: mkimage -A arm64 -T script -C none -d boot-tftp.cmd boot-tftp.scr\n"
    ));
    assert!(tftp.contains("at the root of the TFTP server ${serverip}"));
    // Apart from how files are loaded and the checks that precede it, the two are the same
    // script: the DTB edits and booti line for line.
    let tail = |s: &str| s[s.find("fdt addr").unwrap()..].to_owned();
    assert_eq!(tail(&disk), tail(&tftp));
    let opened = tftp.lines().filter(|l| l.ends_with("; then")).count();
    assert_eq!(opened, tftp.lines().filter(|l| *l == "fi").count());
    assert!(!tftp.contains('\''), "{tftp}");
    assert_eq!(Source::Tftp.file(), "boot-tftp.cmd");
    assert_eq!(Source::Disk.file(), "boot.cmd");
}
