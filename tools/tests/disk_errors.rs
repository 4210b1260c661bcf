//! Disks in xl.cfg files and system descriptions: every error has a fixture and an exact
//! expected message; the valid fixture checks the manifest's host disks and vbds.

mod common;

use bulkhead_tools::image::manifest;
use bulkhead_tools::system::disks::host_disks;
use bulkhead_tools::system::{Overrides, System};
use bulkhead_tools::xlcfg;
use protocol::manifest::{ManifestDisk, ManifestVbd};
use std::path::Path;

fn xl_error(name: &str) -> String {
    let path = Path::new("tests/fixtures/xl").join(format!("{name}.cfg"));
    common::error_of(&path, xlcfg::load)
}

fn system_error(name: &str) -> String {
    let path = Path::new("tests/fixtures").join(format!("{name}.toml"));
    common::error_of(&path, |p| System::load(p, Overrides::default()))
}

/// An xl.cfg fixture `tests/fixtures/xl/NAME.cfg` and its error after `FILE:`.
macro_rules! xl {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            let file = concat!("tests/fixtures/xl/", stringify!($name), ".cfg");
            assert_eq!(xl_error(stringify!($name)), format!("{file}:{}", $msg));
        }
    };
}

/// A system fixture `tests/fixtures/NAME.toml` and its error after `FILE:`.
macro_rules! toml {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            let file = concat!("tests/fixtures/", stringify!($name), ".toml");
            assert_eq!(system_error(stringify!($name)), format!("{file}:{}", $msg));
        }
    };
}

xl!(disk_qcow2, "4: key `disk`: disk \"../disks/a.img,qcow2,xvda,rw\": `format=qcow2` is not supported, expected format=raw (convert an image with `qemu-img convert -O raw`)");
xl!(disk_cdrom, "4: key `disk`: disk \"format=raw, vdev=hdc, access=ro, devtype=cdrom, target=../disks/a.img\": `devtype=cdrom` is not supported (there are no virtual CD-ROM drives), expected a disk (no devtype or devtype=disk)");
xl!(disk_backendtype, "4: key `disk`: disk \"vdev=xvda, backendtype=qdisk, target=../disks/a.img\": `backendtype=qdisk` is not supported (Bulkhead's block backend is the driver domain named by `backend`), expected no backendtype or backendtype=phy");
xl!(disk_missing, "4: key `disk`: disk \"../disks/no-such.img,raw,xvdb,rw\": target \"../disks/no-such.img\" (tests/fixtures/xl/../disks/no-such.img) cannot be opened for reading and writing: No such file or directory (os error 2), expected an existing raw disk image (a relative path starts from this file's folder)");
xl!(disk_directory, "4: key `disk`: disk \"../disks,raw,xvda,rw\": target \"../disks\" (tests/fixtures/xl/../disks) is a directory, expected an existing raw disk image (a relative path starts from this file's folder)");
xl!(disk_odd_size, "4: key `disk`: disk \"../disks/odd.img,raw,xvda,rw\": target \"../disks/odd.img\" (tests/fixtures/xl/../disks/odd.img) is 1000 bytes, expected a non-empty image of whole 512-byte sectors (e.g. `truncate -s 64M FILE`)");
xl!(disk_empty, "4: key `disk`: disk \"../disks/empty.img,raw,xvda,rw\": target \"../disks/empty.img\" (tests/fixtures/xl/../disks/empty.img) is 0 bytes, expected a non-empty image of whole 512-byte sectors (e.g. `truncate -s 64M FILE`)");
xl!(
    disk_number,
    "4: key `disk`: found a number in the list, expected a list of strings"
);

toml!(disk_no_backend, "6: key `disk`: backend \"blkdom\" is not a domain of this system, expected a [[domain]] named \"blkdom\" (image = \"blkdom\") or `backend=NAME` naming one");
toml!(disk_unknown_backend, "11: key `disk`: backend \"storage\" is not a domain of this system, expected a [[domain]] named \"storage\" (image = \"blkdom\") or `backend=NAME` naming one");
toml!(disk_two_backends, "17: key `disk`: backend \"store2\" differs from \"blkdom\" (line 16), expected one block backend domain per system");
toml!(disk_self_backend, "7: key `disk`: backend \"blkdom\" is this domain itself, expected the block backend domain (default blkdom)");
toml!(disk_duplicate_vdev, "12: key `disk`: vdev d0 (device 51712) is already \"guest\"'s xvda (line 11), expected one disk per vdev");
toml!(disk_shared_rw, "17: key `disk`: target \"disks/a.img\" is already \"one\"'s read-write xvda (line 11), expected a disk shared only read-only (access=ro everywhere)");
toml!(disk_string, "11: key `disk`: found a string, expected an array of xl disk specifications such as \"disk.img,raw,xvda,rw\"");
toml!(disk_missing_target, "12: key `disk`: disk \"vdev=xvdb, target=disks/nope.img\": target \"disks/nope.img\" (tests/fixtures/disks/nope.img) cannot be opened for reading and writing: No such file or directory (os error 2), expected an existing raw disk image (a relative path starts from this file's folder)");
toml!(disk_target_not_last, "12: key `disk`: disk \"target=disks/nope.img, vdev=xvdb\": no `vdev`, expected the guest's device name such as xvda (third positional parameter or vdev=)");
toml!(disk_beside_config, "9: key `disk`: comes from the xl.cfg file when `config` is set, expected it in xl/guest.cfg (beside `config`, a [[domain]] may set cpus, exclusive, priority, depends_on, on_poweroff, on_reboot, on_crash, crash_limit, pmu, budget_us, period_us)");

/// The error is located in the xl.cfg that writes what the TOML shares read-only, though
/// it spells the path differently.
#[test]
fn disk_shared_rw_ro() {
    assert_eq!(
        system_error("disk_shared_rw_ro"),
        "tests/fixtures/xl/disk_shared_rw_ro.cfg:4: key `disk`: target \"../disks/../disks/a.img\" is already \"one\"'s read-only xvda (tests/fixtures/disk_shared_rw_ro.toml:11), expected a disk shared only read-only (access=ro everywhere)"
    );
}

/// An xl.cfg's disks: both forms, targets relative to the .cfg, sizes in sectors.
#[test]
fn xl_disks_are_read() {
    common::stand_ins();
    let d = xlcfg::load(Path::new("tests/fixtures/xl/disk_guest.cfg")).unwrap();
    let got: Vec<_> = d
        .disks
        .iter()
        .map(|at| {
            let (disk, spec) = (&at.value, &at.value.spec);
            (
                spec.vdev.as_str(),
                spec.devid,
                spec.read_only,
                disk.sectors,
                at.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("xvda", 51712, false, 128, 5),
            ("xvdb", 51728, true, 256, 5)
        ]
    );
    let b = std::fs::canonicalize("tests/fixtures/disks/b.img").unwrap();
    assert_eq!(d.disks[1].value.path, b);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

/// The manifest of a system with disks: one host disk per distinct target (the shared one
/// read-only), each guest's vbds, and guests after blkdom.
#[test]
fn manifest_lists_host_disks_and_vbds() {
    common::stand_ins();
    let system = System::load(
        Path::new("tests/fixtures/disk_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let (m, _) = manifest(&system).unwrap();
    let abs = |f: &str| {
        std::fs::canonicalize(format!("tests/fixtures/disks/{f}"))
            .unwrap()
            .display()
            .to_string()
    };
    let disk = |index: u32, f: &str, read_only: bool| ManifestDisk {
        index,
        serial: format!("bkd{index}"),
        read_only,
        sectors: 128,
        backend: "blkdom".into(),
        name: abs(f),
    };
    assert_eq!(
        m.disks,
        [
            disk(0, "a.img", false),
            disk(1, "shared.img", true),
            disk(2, "c.img", false),
            disk(3, "d.img", false),
        ]
    );
    let order: Vec<&str> = m.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(order, ["blkdom", "one", "two", "three"]);
    let vbd = |disk: u32, vdev: &str, devid: u32, read_only: bool| ManifestVbd {
        disk,
        vdev: vdev.into(),
        devid,
        read_only,
        backend: "blkdom".into(),
        discard: true,
    };
    let of = |name: &str| m.domains.iter().find(|d| d.name == name).unwrap();
    assert_eq!(of("blkdom").vbds, []);
    assert_eq!(of("blkdom").depends_on, Vec::<String>::new());
    assert_eq!(
        of("one").vbds,
        [vbd(0, "xvda", 51712, false), vbd(1, "xvdb", 51728, true)]
    );
    assert_eq!(
        of("two").vbds,
        [vbd(2, "xvda", 51712, false), vbd(1, "xvdc", 51744, true)]
    );
    assert_eq!(
        of("three").vbds,
        [vbd(1, "xvda", 51712, true), vbd(3, "sdb", 2064, false)]
    );
    for guest in ["one", "two", "three"] {
        assert_eq!(of(guest).depends_on, ["blkdom"], "{guest}");
    }
    let hosts = host_disks(&system);
    assert_eq!(hosts.len(), 4);
    assert!(hosts[1].read_only && !hosts[0].read_only);
}

/// The shipped example: systems/default.toml with systems/xl/linux-disk.cfg, whose image the
/// README has the user make (made here, sparse, if missing; git ignores it).
#[test]
fn shipped_disk_example_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let image = root.join("systems/xl/linux-disk.img");
    if !image.exists() {
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(64 << 20).unwrap();
    }
    let cfg: &'static [std::path::PathBuf] = vec![root.join("systems/xl/linux-disk.cfg")].leak();
    let overrides = Overrides {
        domains: cfg,
        ..Overrides::default()
    };
    let system = System::load(&root.join("systems/default.toml"), overrides).unwrap();
    let (m, _) = manifest(&system).unwrap();
    let guest = m.domains.iter().find(|d| d.name == "linuxdisk").unwrap();
    assert_eq!(guest.depends_on, ["blkdom"]);
    assert_eq!(
        (guest.vbds[0].vdev.as_str(), guest.vbds[0].devid),
        ("xvda", 51712)
    );
    assert_eq!(m.disks.len(), 1);
    assert_eq!(m.disks[0].serial, "bkd0");
    assert!(!m.disks[0].read_only);
}
