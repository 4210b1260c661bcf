//! Host tests for [`super`]: `ctl create` of an xl.cfg with passthrough keys, against a
//! packed image directory shaped like QEMU `virt`'s (its host tree, the boot tree marking
//! the PL031 only, and the manifest naming the partial tree packed for `rtcguest`).

use super::super::create_parts;
use crate::system::{Overrides, System};
use protocol::boot::MANIFEST_LABEL;
use protocol::mgmt::Request;
use std::path::Path;

/// Packs `dir/image` as a system whose domain `rtcguest` was given the PL031 with the
/// partial tree `dir/rtc.dtb`.
fn packed(dir: &Path) -> std::path::PathBuf {
    let image = dir.join("image");
    std::fs::create_dir_all(&image).unwrap();
    let host = crate::passthru::tests::virt_like();
    std::fs::write(image.join(crate::machine::HOST_DTB), &host).unwrap();
    let marked =
        crate::dtb::add_modules(&host, &[], &["/pl031@9010000".to_string()], None).unwrap();
    std::fs::write(image.join("system.dtb"), marked).unwrap();
    let partial = crate::partial_dt::tests::rtc_one_cell(&[], &[0x0901_0000, 0x1000], 3);
    std::fs::write(dir.join("rtc.dtb"), &partial).unwrap();
    let blob = crate::partial_dt::merge(&partial).unwrap().blob;
    std::fs::write(image.join("rtcguest-dt.bin"), blob).unwrap();
    std::fs::write(
        dir.join("boot.cfg"),
        "name = \"rtcguest\"\nkernel = \"rtos\"\nmemory = 8\n",
    )
    .unwrap();
    let toml = "[[domain]]\nconfig = \"boot.cfg\"\n";
    let system = System::parse(&dir.join("s.toml"), toml, Overrides::default()).unwrap();
    let (mut manifest, _) = crate::image::manifest(&system).unwrap();
    manifest.domains[0].device_tree = Some("rtcguest-dt".into());
    std::fs::write(
        image.join(format!("{MANIFEST_LABEL}.bin")),
        manifest.encode().unwrap(),
    )
    .unwrap();
    image
}

fn cfg(dir: &Path, name: &str, keys: &str) -> std::path::PathBuf {
    let f = dir.join(format!("{name}.cfg"));
    let text = format!("name = \"{name}\"\nkernel = \"rtos\"\nmemory = 8\n{keys}");
    std::fs::write(&f, text).unwrap();
    f
}

fn err(file: &Path, image: &Path) -> String {
    format!(
        "{:#}",
        create_parts(file, image, &Default::default()).unwrap_err()
    )
}

#[test]
fn a_device_reserved_at_boot_is_given_with_its_packed_tree() {
    let dir = tempfile::tempdir().unwrap();
    let image = packed(dir.path());
    let rtc = "iomem = [ \"0x9010,1@0x9010\" ]\nirqs = [ 34 ]\ndtdev = [ \"/pl031@9010000\" ]\n";
    // Another name than the booted guest's: the packed tree is found by its bytes.
    let f = cfg(
        dir.path(),
        "late",
        &format!("{rtc}device_tree = \"rtc.dtb\"\n"),
    );
    let (req, _) = create_parts(&f, &image, &Default::default()).unwrap();
    let Request::Create { domain, .. } = req else {
        panic!("not a create")
    };
    assert_eq!(domain.devices.len(), 1);
    assert_eq!(domain.devices[0].path, "/pl031@9010000");
    assert_eq!(domain.devices[0].mmio_base, 0x0901_0000);
    assert_eq!(domain.devices[0].irqs, [34]);
    assert_eq!(domain.device_tree.as_deref(), Some("rtcguest-dt"));
    // Without a partial tree: the device, and no tree.
    let f = cfg(dir.path(), "bare", rtc);
    let (Request::Create { domain, .. }, _) =
        create_parts(&f, &image, &Default::default()).unwrap()
    else {
        panic!("not a create")
    };
    assert_eq!(domain.devices.len(), 1);
    assert_eq!(domain.device_tree, None);
}

#[test]
fn a_partial_tree_the_system_was_not_packed_with_is_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let image = packed(dir.path());
    let other = crate::partial_dt::tests::rtc_one_cell(&[], &[0x0901_0000, 0x1000], 4);
    std::fs::write(dir.path().join("other.dtb"), other).unwrap();
    let f = cfg(
        dir.path(),
        "newdt",
        "dtdev = [ \"/pl031@9010000\" ]\ndevice_tree = \"other.dtb\"\n",
    );
    let (Request::Create { domain, .. }, images) =
        create_parts(&f, &image, &Default::default()).unwrap()
    else {
        panic!("not a create")
    };
    let label = domain.device_tree.clone().expect("a device tree");
    assert_ne!(label, "rtcguest-dt", "not the packed one");
    let (_, crate::system::Image::File(path)) = images
        .iter()
        .find(|(l, _)| *l == label)
        .expect("the tree is among the files to send")
    else {
        panic!("not a file")
    };
    // What is sent is the tree fixed up for the guest, a valid device tree.
    let bytes = std::fs::read(path).unwrap();
    assert!(fdt::Fdt::new(&bytes).is_ok());
    assert_eq!(domain.devices.len(), 1);
}

#[test]
fn every_refusal_names_the_line_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let image = packed(dir.path());
    // The PL061 is a device of the host, but no packed domain named it.
    let f = cfg(dir.path(), "gpio", "dtdev = [ \"/pl061@9030000\" ]\n");
    let e = err(&f, &image);
    assert!(
        e.contains("gpio.cfg:4: key `dtdev`: /pl061@9030000 was not reserved for passthrough")
            && e.contains("names it in `dtdev`"),
        "{e}"
    );
    // Given by `iomem` alone: the error names that line.
    let f = cfg(dir.path(), "gpio2", "iomem = [ \"0x9030,1\" ]\n");
    let e = err(&f, &image);
    assert!(
        e.contains("gpio2.cfg:4: key `iomem`: /pl061@9030000 was not"),
        "{e}"
    );
    // The host checks still apply, as at packing.
    let f = cfg(dir.path(), "uart", "dtdev = [ \"/pl011@9000000\" ]\n");
    assert!(err(&f, &image).contains("uart.cfg:4: key `dtdev`"));
    // No packed system at all.
    let f = cfg(dir.path(), "lost", "dtdev = [ \"/pl031@9010000\" ]\n");
    let e = err(&f, &dir.path().join("nowhere"));
    assert!(
        e.contains(crate::machine::HOST_DTB) && e.contains("packed"),
        "{e}"
    );
}
