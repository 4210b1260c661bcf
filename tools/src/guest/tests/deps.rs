//! Parsers of other tools' output: modules.dep, modules.builtin, `.modinfo`, apt-cache, dpkg.

use super::fake_module;
use crate::guest::apt::{lists_arch, versioned_kernel, KernelPackage};
use crate::guest::modules::{
    find, is_builtin, load_order, modinfo_depends, module_name, parse_modules_dep, plain_path,
    same_module,
};
use crate::guest::GuestError;

const MODULES_DEP: &str = "\
kernel/drivers/block/xen-blkfront.ko.xz: kernel/lib/a.ko.xz kernel/lib/b.ko.xz
kernel/drivers/net/xen-netfront.ko.xz: kernel/lib/b.ko.xz
# a comment

kernel/lib/a.ko.xz: kernel/lib/c.ko.xz kernel/lib/b.ko.xz
kernel/lib/b.ko.xz: kernel/lib/c.ko.xz
kernel/lib/c.ko.xz:
";

#[test]
fn modules_dep_parses_into_direct_dependencies() {
    let deps = parse_modules_dep(MODULES_DEP);
    assert_eq!(deps.len(), 5);
    assert_eq!(
        deps["kernel/drivers/block/xen-blkfront.ko.xz"],
        ["kernel/lib/a.ko.xz", "kernel/lib/b.ko.xz"]
    );
    assert!(deps["kernel/lib/c.ko.xz"].is_empty());
}

#[test]
fn load_order_puts_every_dependency_first_and_once() {
    let deps = parse_modules_dep(MODULES_DEP);
    let order = load_order(
        &deps,
        &[
            "kernel/drivers/block/xen-blkfront.ko.xz",
            "kernel/drivers/net/xen-netfront.ko.xz",
        ],
    )
    .unwrap();
    let names: Vec<&str> = order.iter().map(|p| module_name(p)).collect();
    assert_eq!(names, ["c", "b", "a", "xen-blkfront", "xen-netfront"]);
}

#[test]
fn load_order_reports_a_cycle() {
    let deps = parse_modules_dep("x.ko: y.ko\ny.ko: x.ko\n");
    assert_eq!(
        load_order(&deps, &["x.ko"]),
        Err(GuestError::ModuleCycle { module: "x".into() })
    );
}

#[test]
fn module_names_and_plain_paths() {
    assert_eq!(
        module_name("kernel/drivers/block/xen-blkfront.ko.xz"),
        "xen-blkfront"
    );
    assert_eq!(
        module_name("kernel/drivers/net/xen-netfront.ko"),
        "xen-netfront"
    );
    assert_eq!(module_name("x.ko.zst"), "x");
    assert_eq!(plain_path("kernel/a/b.ko.zst"), "kernel/a/b.ko");
    assert_eq!(plain_path("kernel/a/b.ko"), "kernel/a/b.ko");
    assert!(same_module("xen_blkfront", "xen-blkfront"));
    assert!(!same_module("xen-blkfront", "xen-blkback"));
    let deps = parse_modules_dep(MODULES_DEP);
    assert_eq!(
        find(deps.keys(), "xen_netfront"),
        Some("kernel/drivers/net/xen-netfront.ko.xz")
    );
    assert_eq!(find(deps.keys(), "xen-blkback"), None);
}

#[test]
fn builtin_list_matches_names_either_way() {
    let builtin = "kernel/drivers/tty/hvc/hvc_xen.ko\nkernel/drivers/xen/xen-front.ko\n";
    assert!(is_builtin(builtin, "hvc-xen"));
    assert!(is_builtin(builtin, "xen_front"));
    assert!(!is_builtin(builtin, "xen-blkfront"));
}

#[test]
fn modinfo_depends_reads_the_field() {
    let m = fake_module(&["license=GPL", "depends=a,b_c", "name=x", "vermagic=6.1.0"]);
    assert_eq!(modinfo_depends(&m).unwrap(), ["a", "b_c"]);
    let none = fake_module(&["depends=", "name=y"]);
    assert!(modinfo_depends(&none).unwrap().is_empty());
    assert!(modinfo_depends(b"not an elf").is_err());
}

/// `apt-cache show --no-all-versions linux-image-arm64:arm64` on bookworm.
const APT_SHOW: &str = "\
Package: linux-image-arm64
Source: linux-signed-arm64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 13
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: arm64
Provides: linux-image-generic, linux-latest-modules-6.1.0-56-arm64, wireguard-modules (= 1.0.0)
Depends: linux-image-6.1.0-56-arm64 (= 6.1.192-2)
Description: Linux for 64-bit ARMv8 machines (meta-package)
Built-Using: linux (= 6.1.192-2)
Filename: pool/updates/main/l/linux-signed-arm64/linux-image-arm64_6.1.192-2_arm64.deb
";

#[test]
fn versioned_kernel_from_apt_cache_show() {
    assert_eq!(
        versioned_kernel(APT_SHOW),
        Some(KernelPackage {
            package: "linux-image-6.1.0-56-arm64".into(),
            version: "6.1.0-56-arm64".into(),
        })
    );
}

#[test]
fn versioned_kernel_from_apt_cache_depends() {
    let out = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-28-arm64:arm64\n";
    assert_eq!(
        versioned_kernel(out).map(|k| k.version),
        Some("6.1.0-28-arm64".into())
    );
}

#[test]
fn versioned_kernel_skips_other_dependencies_and_accepts_unsigned() {
    let out = "Depends: initramfs-tools | linux-initramfs-tool, linux-image-6.12.9-arm64-unsigned (= 6.12.9-1)\n";
    assert_eq!(
        versioned_kernel(out),
        Some(KernelPackage {
            package: "linux-image-6.12.9-arm64-unsigned".into(),
            version: "6.12.9-arm64".into(),
        })
    );
    assert_eq!(versioned_kernel("Depends: linux-image-arm64\n"), None);
    assert_eq!(
        versioned_kernel("Provides: linux-image-6.1.0-1-arm64\n"),
        None
    );
    assert_eq!(versioned_kernel(""), None);
}

#[test]
fn foreign_architectures_are_listed_one_per_line() {
    assert!(lists_arch("i386\narm64\n", "arm64"));
    assert!(!lists_arch("armhf\n", "arm64"));
    assert!(!lists_arch("", "arm64"));
}
