//! Steps that touch files, on fake package trees in temporary directories: cache location
//! and freshness, the kernel Image, module reading and the whole initramfs build.

use super::{entry, fake_module, parse_cpio};
use crate::guest::cache::{cache_root, is_fresh, write_atomically};
use crate::guest::fetch::cached_deb;
use crate::guest::initramfs::{self, ModuleStep};
use crate::guest::kernel::{self, check_image_header, raw_image, IMAGE_MAGIC};
use crate::guest::modules::{dep_map, read_module};
use crate::guest::GuestError;
use flate2::write::GzEncoder;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn ago(secs: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(secs)
}

#[test]
fn cache_root_prefers_bulkhead_cache_then_xdg_then_home() {
    let s = |v: &str| Some(OsString::from(v));
    assert_eq!(
        cache_root(s("/c"), s("/x"), s("/h")).unwrap(),
        Path::new("/c")
    );
    assert_eq!(
        cache_root(None, s("/x"), s("/h")).unwrap(),
        Path::new("/x/bulkhead")
    );
    assert_eq!(
        cache_root(s(""), s("relative"), s("/h")).unwrap(),
        Path::new("/h/.cache/bulkhead")
    );
    assert_eq!(cache_root(None, None, None), Err(GuestError::NoCacheDir));
}

#[test]
fn fresh_means_present_and_not_older_than_any_input() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    fs::write(&input, "i").unwrap();
    assert!(!is_fresh(&out, [input.as_path()]));
    fs::write(&out, "o").unwrap();
    set_mtime(&input, ago(100));
    assert!(is_fresh(&out, [input.as_path()]));
    set_mtime(&out, ago(200));
    assert!(!is_fresh(&out, [input.as_path()]));
    assert!(!is_fresh(&out, [dir.path().join("missing").as_path()]));
}

#[test]
fn atomic_write_leaves_nothing_behind_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/out");
    write_atomically(&out, |w| Ok(w.write_all(b"new")?)).unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"new");
    let failed = write_atomically(&out, |w| {
        w.write_all(b"torn")?;
        anyhow::bail!("disk full")
    });
    assert!(failed.is_err());
    assert_eq!(fs::read(&out).unwrap(), b"new");
    assert_eq!(fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn cached_deb_matches_the_exact_package_name() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "busybox_1%3a1.35.0-4_arm64.deb",
        "busybox-static_1%3a1.35.0-4+b1_arm64.deb",
        "linux-image-6.1.0-28-arm64-unsigned_6.1.119-1_arm64.deb",
        "linux-image-6.1.0-28-arm64_6.1.119-1_amd64.deb",
    ] {
        fs::write(dir.path().join(name), "").unwrap();
    }
    let found = |p| cached_deb(dir.path(), p).map(|f| f.file_name().unwrap().to_owned());
    assert_eq!(
        found("busybox-static"),
        Some("busybox-static_1%3a1.35.0-4+b1_arm64.deb".into())
    );
    assert_eq!(found("linux-image-6.1.0-28-arm64"), None);
}

fn fake_image(len: usize) -> Vec<u8> {
    let mut image = vec![0u8; len];
    image[56..60].copy_from_slice(&IMAGE_MAGIC);
    image
}

#[test]
fn image_header_check_finds_the_magic_at_56() {
    assert_eq!(check_image_header(&fake_image(64)), Ok(()));
    assert!(check_image_header(&fake_image(64)[..59]).is_err());
    let mut wrong = fake_image(64);
    wrong[56] = b'X';
    let err = check_image_header(&wrong).unwrap_err();
    assert!(err.contains("offset 56"), "{err}");
}

#[test]
fn raw_image_decompresses_gzip_copies_raw_and_rejects_others() {
    let dir = tempfile::tempdir().unwrap();
    let image = fake_image(100_000);
    let raw = dir.path().join("raw");
    fs::write(&raw, &image).unwrap();
    assert_eq!(raw_image(&raw).unwrap(), image);

    let gz = dir.path().join("gz");
    let mut enc = GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&image).unwrap();
    enc.finish().unwrap();
    assert_eq!(raw_image(&gz).unwrap(), image);

    let bad = dir.path().join("bad");
    fs::write(&bad, vec![0u8; 4096]).unwrap();
    let err = raw_image(&bad).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<GuestError>(),
        Some(GuestError::BadImage { .. })
    ));
}

#[test]
fn kernel_image_is_written_once_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("boot")).unwrap();
    let vmlinuz = tree.join("boot/vmlinuz-6.1.0-9-arm64");
    fs::write(&vmlinuz, fake_image(4096)).unwrap();
    let stamp = dir.path().join("stamp");
    fs::write(&stamp, "deb").unwrap();
    set_mtime(&vmlinuz, ago(60));
    set_mtime(&stamp, ago(60));
    let out_dir = dir.path().join("linux");
    let out = kernel::image(&tree, &stamp, "6.1.0-9-arm64", &out_dir).unwrap();
    assert_eq!(out, out_dir.join("Image-6.1.0-9-arm64"));
    set_mtime(&out, ago(30));
    kernel::image(&tree, &stamp, "6.1.0-9-arm64", &out_dir).unwrap();
    assert!(
        fs::metadata(&out).unwrap().modified().unwrap() <= ago(29),
        "rebuilt"
    );
    let missing = kernel::image(&tree, &stamp, "6.1.0-10-arm64", &out_dir).unwrap_err();
    assert!(matches!(
        missing.downcast_ref::<GuestError>(),
        Some(GuestError::MissingFile { .. })
    ));
}

#[test]
fn modules_are_decompressed_by_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let body = fake_module(&["depends="]);
    let xz = dir.path().join("m.ko.xz");
    let mut packed = Vec::new();
    lzma_rs::xz_compress(&mut body.as_slice(), &mut packed).unwrap();
    fs::write(&xz, packed).unwrap();
    assert_eq!(read_module(&xz).unwrap(), body);
    let plain = dir.path().join("m.ko");
    fs::write(&plain, &body).unwrap();
    assert_eq!(read_module(&plain).unwrap(), body);
    let zst = dir.path().join("m.ko.zst");
    fs::write(&zst, "x").unwrap();
    assert!(matches!(
        read_module(&zst).unwrap_err().downcast_ref::<GuestError>(),
        Some(GuestError::UnsupportedCompression { .. })
    ));
}

const VERSION: &str = "6.1.0-9-arm64";

/// A kernel tree shaped like Debian's (no modules.dep) where xen-netfront needs `helper`
/// and ext4 needs jbd2 (found by their `.modinfo`), and a busybox tree.
fn fake_trees(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let kernel = root.join("kernel");
    let mods = kernel.join("lib/modules").join(VERSION);
    for (path, deps) in [
        ("kernel/drivers/block/xen-blkfront.ko", "depends="),
        ("kernel/drivers/net/xen-netfront.ko", "depends=helper"),
        ("kernel/lib/helper.ko", "depends="),
        ("kernel/fs/ext4/ext4.ko", "depends=jbd2"),
        ("kernel/crypto/crc32c_generic.ko", "depends="),
        ("kernel/fs/jbd2/jbd2.ko", "depends="),
        ("kernel/drivers/virtio/virtio.ko", "depends="),
        ("kernel/drivers/virtio/virtio_ring.ko", "depends="),
        (
            "kernel/drivers/virtio/virtio_mmio.ko",
            "depends=virtio,virtio_ring",
        ),
        (
            "kernel/drivers/block/virtio_blk.ko",
            "depends=virtio,virtio_ring",
        ),
        (
            "kernel/drivers/block/xen-blkback/xen-blkback.ko",
            "depends=",
        ),
    ] {
        let file = mods.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, fake_module(&[deps, "license=GPL"])).unwrap();
        // Package files carry the package's build time, well before any build of ours.
        set_mtime(&file, ago(3600));
    }
    fs::write(
        mods.join("modules.builtin"),
        "kernel/drivers/tty/hvc/hvc_xen.ko\n",
    )
    .unwrap();
    let busybox = root.join("busybox");
    fs::create_dir_all(busybox.join("bin")).unwrap();
    fs::write(busybox.join("bin/busybox"), "busybox").unwrap();
    set_mtime(&busybox.join("bin/busybox"), ago(3600));
    (kernel, busybox)
}

#[test]
fn dep_map_without_modules_dep_follows_modinfo() {
    let dir = tempfile::tempdir().unwrap();
    let (kernel, _) = fake_trees(dir.path());
    let mods = kernel.join("lib/modules").join(VERSION);
    let deps = dep_map(&mods, &["xen-blkfront", "xen-netfront"]).unwrap();
    assert_eq!(
        deps["kernel/drivers/net/xen-netfront.ko"],
        ["kernel/lib/helper.ko"]
    );
    assert!(deps["kernel/drivers/block/xen-blkfront.ko"].is_empty());
    assert!(!deps.contains_key("kernel/drivers/block/xen-blkback/xen-blkback.ko"));
}

#[test]
fn initramfs_build_includes_dependencies_and_is_reused_until_inputs_change() {
    let dir = tempfile::tempdir().unwrap();
    let (kernel, busybox) = fake_trees(dir.path());
    let stamp = dir.path().join("kernel.stamp");
    fs::write(&stamp, "deb").unwrap();
    set_mtime(&stamp, ago(60));
    let cntvct = dir.path().join("cntvct");
    fs::write(&cntvct, "\x7fELF cntvct").unwrap();
    set_mtime(&cntvct, ago(60));
    let out_dir = dir.path().join("linux");
    let build = |console| {
        initramfs::build(
            &kernel,
            &busybox,
            &cntvct,
            &[&stamp],
            VERSION,
            console,
            &out_dir,
        )
        .unwrap()
    };

    let out = build("hvc0");
    assert_eq!(out, out_dir.join(format!("initramfs-{VERSION}-hvc0.cpio")));
    let entries = parse_cpio(&fs::read(&out).unwrap());
    let rcs = String::from_utf8(entry(&entries, "etc/rcS").data.clone()).unwrap();
    let helper = rcs.find("load helper ").expect("helper loaded");
    let netfront = rcs.find("load xen-netfront ").expect("netfront loaded");
    assert!(helper < netfront, "dependency first:\n{rcs}");
    // The native baseline of `bench blk` needs virtio-blk on virtio-mmio, after the core.
    let ring = rcs.find("load virtio_ring ").expect("virtio_ring loaded");
    let mmio = rcs.find("load virtio_mmio ").expect("virtio_mmio loaded");
    let blk = rcs.find("load virtio_blk ").expect("virtio_blk loaded");
    assert!(ring < mmio && ring < blk, "virtio core first:\n{rcs}");
    assert_eq!(rcs.matches("load virtio_ring ").count(), 1, "{rcs}");
    entry(
        &entries,
        &format!("lib/modules/{VERSION}/kernel/lib/helper.ko"),
    );
    assert!(!entries.iter().any(|e| e.name.contains("blkback")));
    assert_eq!(entry(&entries, "bin/cntvct").data, b"\x7fELF cntvct");

    // Fresh: not rewritten.
    set_mtime(&out, ago(30));
    build("hvc0");
    assert!(fs::metadata(&out).unwrap().modified().unwrap() <= ago(29));
    // A different recorded recipe (older code) forces a rebuild.
    fs::write(out.with_extension("recipe"), "layout 0\n").unwrap();
    build("hvc0");
    assert!(fs::metadata(&out).unwrap().modified().unwrap() > ago(29));
    // A newer extraction forces a rebuild.
    set_mtime(&out, ago(30));
    set_mtime(&stamp, ago(10));
    build("hvc0");
    assert!(fs::metadata(&out).unwrap().modified().unwrap() > ago(29));
    // So does a newer cntvct.
    set_mtime(&out, ago(30));
    set_mtime(&cntvct, ago(10));
    build("hvc0");
    assert!(fs::metadata(&out).unwrap().modified().unwrap() > ago(29));

    // One archive per console.
    let native = build("ttyAMA0");
    assert_ne!(native, out);
    let entries = parse_cpio(&fs::read(&native).unwrap());
    let tab = String::from_utf8(entry(&entries, "etc/inittab").data.clone()).unwrap();
    assert!(tab.contains("ttyAMA0::respawn:-/bin/sh"));
}

#[test]
fn a_native_archive_does_not_load_the_xen_frontends() {
    let dir = tempfile::tempdir().unwrap();
    let (kernel, _) = fake_trees(dir.path());
    let mods = kernel.join("lib/modules").join(VERSION);
    let names = |console| {
        let plan = initramfs::plan(&mods, VERSION, console).unwrap();
        plan.modules
            .iter()
            .map(|m| match m {
                ModuleStep::Load { name, .. } | ModuleStep::BuiltIn { name } => name.clone(),
            })
            .collect::<Vec<_>>()
    };
    let guest = names("hvc0");
    let native = names("ttyAMA0");
    for xen in initramfs::XEN_FRONTENDS {
        assert!(guest.iter().any(|n| n == xen), "{guest:?}");
        assert!(!native.iter().any(|n| n == xen), "{native:?}");
    }
    // The rest is the same, dependencies of the front-ends (here `helper`) aside.
    assert!(
        native.iter().all(|n| guest.contains(n)),
        "{guest:?} {native:?}"
    );
    assert!(native.iter().any(|n| n == "virtio_blk"), "{native:?}");
}

#[test]
fn plan_reports_builtin_and_missing_modules() {
    let dir = tempfile::tempdir().unwrap();
    let (kernel, _) = fake_trees(dir.path());
    let mods = kernel.join("lib/modules").join(VERSION);
    fs::remove_file(mods.join("kernel/drivers/block/xen-blkfront.ko")).unwrap();
    fs::write(
        mods.join("modules.builtin"),
        "kernel/drivers/block/xen-blkfront.ko\n",
    )
    .unwrap();
    let plan = initramfs::plan(&mods, VERSION, "hvc0").unwrap();
    assert_eq!(
        plan.modules[0],
        ModuleStep::BuiltIn {
            name: "xen-blkfront".into()
        }
    );
    fs::write(mods.join("modules.builtin"), "").unwrap();
    let err = initramfs::plan(&mods, VERSION, "hvc0").unwrap_err();
    assert!(matches!(
        err.downcast_ref::<GuestError>(),
        Some(GuestError::ModuleNotFound { module, .. }) if module == "xen-blkfront"
    ));
}
