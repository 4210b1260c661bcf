//! The newc writer read back byte for byte, and the initramfs plan: scripts and archive.

use super::{entry, parse_cpio};
use crate::guest::cpio::{mode, padding, CpioWriter};
use crate::guest::initramfs::{
    check_console, ModuleStep, Plan, APPLETS, COUNTER_PROGRAM, MARKER, UDHCPC_SCRIPT,
    UDHCPC_SCRIPT_DEBIAN, UDHCPC_SCRIPT_TEXT,
};
use crate::guest::GuestError;

#[test]
fn padding_reaches_multiples_of_four() {
    assert_eq!(
        [0, 1, 2, 3, 4, 5, 110, 111].map(padding),
        [0, 3, 2, 1, 0, 3, 2, 1]
    );
}

#[test]
fn cpio_round_trip_keeps_every_kind_of_entry() {
    let mut w = CpioWriter::new(Vec::new());
    w.dir("/etc", 0o755).unwrap();
    // Data lengths 0..=5 exercise every padding amount.
    for n in 0..=5u8 {
        w.file(&format!("etc/f{n}"), 0o644, &vec![n + 1; usize::from(n)])
            .unwrap();
    }
    w.symlink("bin/sh", "busybox").unwrap();
    w.char_dev("dev/console", 0o600, 5, 1).unwrap();
    w.char_dev("dev/null", 0o666, 1, 3).unwrap();
    let bytes = w.finish().unwrap();
    let entries = parse_cpio(&bytes);

    for n in 0..=5u8 {
        let f = entry(&entries, &format!("etc/f{n}"));
        assert_eq!(f.mode, mode::FILE | 0o644);
        assert_eq!(f.data, vec![n + 1; usize::from(n)]);
        assert_eq!(f.nlink, 1);
    }
    let sh = entry(&entries, "bin/sh");
    assert_eq!(
        (sh.mode, sh.data.as_slice()),
        (mode::SYMLINK | 0o777, &b"busybox"[..])
    );
    let console = entry(&entries, "dev/console");
    assert_eq!((console.mode, console.rdev), (mode::CHAR | 0o600, (5, 1)));
    assert!(console.data.is_empty());
    let null = entry(&entries, "dev/null");
    assert_eq!((null.mode, null.rdev), (mode::CHAR | 0o666, (1, 3)));
    let etc = entry(&entries, "etc");
    assert_eq!((etc.mode, etc.nlink), (mode::DIR | 0o755, 2));
}

#[test]
fn cpio_emits_each_parent_once_before_its_children() {
    let mut w = CpioWriter::new(Vec::new());
    w.file("lib/modules/v/kernel/a.ko", 0o644, b"a").unwrap();
    w.file("lib/modules/v/kernel/b.ko", 0o644, b"b").unwrap();
    w.dir("lib/modules", 0o755).unwrap();
    let entries = parse_cpio(&w.finish().unwrap());
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "lib",
            "lib/modules",
            "lib/modules/v",
            "lib/modules/v/kernel",
            "lib/modules/v/kernel/a.ko",
            "lib/modules/v/kernel/b.ko"
        ]
    );
    let mut inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
    inos.dedup();
    assert_eq!(inos.len(), entries.len(), "inode numbers are unique");
    assert!(inos.iter().all(|&i| i != 0));
}

#[test]
fn cpio_rejects_paths_the_kernel_would_misplace() {
    let mut w = CpioWriter::new(Vec::new());
    for bad in ["", "/", "../etc/x", "a/../b", "TRAILER!!!", "a\0b"] {
        assert!(w.file(bad, 0o644, b"").is_err(), "accepted {bad:?}");
    }
}

#[test]
fn empty_archive_is_just_the_trailer() {
    let bytes = CpioWriter::new(Vec::new()).finish().unwrap();
    assert!(parse_cpio(&bytes).is_empty());
    assert_eq!(bytes.len(), 124); // 110 + "TRAILER!!!\0" (11) padded to 4
}

fn plan(console: &str) -> Plan {
    Plan {
        kernel_version: "6.1.0-28-arm64".into(),
        console: console.into(),
        modules: vec![
            ModuleStep::Load {
                name: "xen-blkfront".into(),
                path: "kernel/drivers/block/xen-blkfront.ko".into(),
                source: "kernel/drivers/block/xen-blkfront.ko.xz".into(),
            },
            ModuleStep::BuiltIn {
                name: "xen-netfront".into(),
            },
        ],
    }
}

#[test]
fn inittab_runs_rcs_then_a_shell_on_the_chosen_console() {
    for console in ["hvc0", "ttyAMA0"] {
        let tab = plan(console).inittab();
        let lines: Vec<&str> = tab.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines[0], "::sysinit:/etc/rcS");
        assert_eq!(lines[1], format!("{console}::respawn:-/bin/sh"));
        assert!(lines.iter().any(|l| l.starts_with("::shutdown:")));
    }
}

#[test]
fn rcs_mounts_loads_modules_and_prints_one_marker() {
    let rcs = plan("hvc0").rcs();
    assert!(rcs.starts_with("#!/bin/sh\n"));
    assert!(!rcs.contains("set -e"));
    for fs in [
        "proc proc /proc",
        "sysfs sysfs /sys",
        "devtmpfs devtmpfs /dev",
    ] {
        assert!(rcs.contains(&format!("\nmount -t {fs}\n")), "mount {fs}");
    }
    assert!(rcs.contains(
        "load xen-blkfront /lib/modules/6.1.0-28-arm64/kernel/drivers/block/xen-blkfront.ko\n"
    ));
    assert!(rcs.contains("echo \"bulkhead: loaded $1\""));
    assert!(rcs.contains("bulkhead: xen-netfront is built in"));
    let markers: Vec<&str> = rcs.lines().filter(|l| l.contains(MARKER)).collect();
    assert_eq!(
        markers,
        ["echo \"BULKHEAD-LINUX-USERSPACE kernel=$(uname -r) cpus=$(nproc) counter=$(/bin/cntvct)\""]
    );
    assert!(
        rcs.trim_end().ends_with(markers[0]),
        "the marker comes last"
    );
}

#[test]
fn recipe_changes_with_console_and_modules() {
    let a = plan("hvc0");
    let mut b = a.clone();
    b.modules.pop();
    assert_ne!(a.recipe(), plan("ttyAMA0").recipe());
    assert_ne!(a.recipe(), b.recipe());
    assert_eq!(a.recipe(), plan("hvc0").recipe());
}

#[test]
fn console_names_are_checked() {
    for ok in ["hvc0", "ttyAMA0", "ttyS0", "tty_x-1"] {
        assert_eq!(check_console(ok), Ok(()));
    }
    for bad in ["", "../hvc0", "hvc0 x", "hvc0:", "a/b"] {
        assert_eq!(check_console(bad), Err(GuestError::BadConsole(bad.into())));
    }
}

#[test]
fn initramfs_archive_holds_init_busybox_devices_and_modules() {
    let p = plan("hvc0");
    let bytes = p
        .write(
            Vec::new(),
            b"\x7fELF busybox",
            b"\x7fELF cntvct",
            &[b"module".to_vec()],
        )
        .unwrap();
    let entries = parse_cpio(&bytes);
    let busybox = entry(&entries, "bin/busybox");
    assert_eq!(
        (busybox.mode, busybox.data.as_slice()),
        (mode::FILE | 0o755, &b"\x7fELF busybox"[..])
    );
    assert_eq!(entry(&entries, "init").data, b"bin/busybox");
    let cntvct = entry(&entries, COUNTER_PROGRAM);
    assert_eq!(
        (cntvct.mode, cntvct.data.as_slice()),
        (mode::FILE | 0o755, &b"\x7fELF cntvct"[..])
    );
    for applet in APPLETS {
        assert_eq!(entry(&entries, &format!("bin/{applet}")).data, b"busybox");
    }
    assert_eq!(entry(&entries, "dev/console").rdev, (5, 1));
    assert_eq!(entry(&entries, "dev/null").rdev, (1, 3));
    for dir in [
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "root",
        "lib/modules/6.1.0-28-arm64",
    ] {
        assert_eq!(entry(&entries, dir).mode & mode::DIR, mode::DIR, "{dir}");
    }
    assert_eq!(entry(&entries, "etc/rcS").mode, mode::FILE | 0o755);
    assert_eq!(entry(&entries, "etc/rcS").data, p.rcs().as_bytes());
    assert_eq!(entry(&entries, "etc/inittab").data, p.inittab().as_bytes());
    let script = entry(&entries, UDHCPC_SCRIPT);
    assert_eq!(
        (script.mode, script.data.as_slice()),
        (mode::FILE | 0o755, UDHCPC_SCRIPT_TEXT.as_bytes())
    );
    // Debian's busybox (the one the tools fetch) looks in /etc/udhcpc.
    assert_eq!(
        entry(&entries, UDHCPC_SCRIPT_DEBIAN).data,
        b"/usr/share/udhcpc/default.script"
    );
    for applet in ["udhcpc", "ifconfig", "route", "ping", "wget", "nc", "httpd"] {
        assert_eq!(entry(&entries, &format!("bin/{applet}")).data, b"busybox");
    }
    let ko = entry(
        &entries,
        "lib/modules/6.1.0-28-arm64/kernel/drivers/block/xen-blkfront.ko",
    );
    assert_eq!(ko.data, b"module");
    assert!(!entries.iter().any(|e| e.name.contains("netfront")));
}

/// Runs the udhcpc script with the host's `sh` for `event`, with `ifconfig` and `route`
/// replaced by stubs that log their arguments; returns (log, resolv.conf).
fn run_udhcpc_script(event: &str, env: &[(&str, &str)]) -> (String, String) {
    let dir = std::env::temp_dir().join(format!("bulkhead-udhcpc-{}-{event}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log");
    for stub in ["ifconfig", "route"] {
        let path = dir.join(stub);
        // `route del` fails like the real one once no default route is left.
        let body = format!(
            "#!/bin/sh\necho \"{stub} $*\" >> {}\n[ \"$1\" = del ] && exit 1\nexit 0\n",
            log.display()
        );
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let script = dir.join("default.script");
    std::fs::write(&script, UDHCPC_SCRIPT_TEXT).unwrap();
    let resolv = dir.join("resolv.conf");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .arg(&script)
        .arg(event)
        .env("PATH", path)
        .env("RESOLV_CONF", &resolv)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let got = (read(&log), read(&resolv));
    let _ = std::fs::remove_dir_all(&dir);
    got
}

#[test]
fn udhcpc_script_sets_address_route_and_resolver() {
    let lease = [
        ("interface", "eth0"),
        ("ip", "10.0.2.15"),
        ("subnet", "255.255.255.0"),
        ("router", "10.0.2.2 10.0.2.9"),
        ("dns", "10.0.2.3 1.1.1.1"),
        ("domain", "example"),
    ];
    let (log, resolv) = run_udhcpc_script("bound", &lease);
    assert_eq!(
        log,
        "ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up\n\
         route del default dev eth0\n\
         route add default gw 10.0.2.2 dev eth0\n"
    );
    assert_eq!(
        resolv,
        "search example\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n"
    );
    let (log, _) = run_udhcpc_script("deconfig", &[("interface", "eth0")]);
    assert_eq!(log, "ifconfig eth0 0.0.0.0 up\n");
}
