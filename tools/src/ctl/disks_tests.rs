use super::*;
use crate::xlcfg::disk;
use protocol::manifest::ManifestVbd;
use std::path::PathBuf;

fn host(index: u32, name: &str, read_only: bool) -> ManifestDisk {
    ManifestDisk {
        index,
        serial: format!("bkd{index}"),
        read_only,
        sectors: 8,
        backend: "blkdom".into(),
        name: name.into(),
    }
}

fn line(spec: &str, path: &str, line: usize) -> At<Disk> {
    At::new(
        Disk {
            spec: disk::parse(spec).unwrap(),
            path: PathBuf::from(path),
            sectors: 8,
        },
        line,
    )
}

#[test]
fn a_booted_disk_passes_in_its_mode() {
    let running = [host(0, "/d/a.img", false), host(1, "/d/b.img", true)];
    let cfg = Path::new("/c/g.cfg");
    check(cfg, &[line("a.img,raw,xvda,rw", "/d/a.img", 3)], &running).unwrap();
    check(cfg, &[line("b.img,raw,xvdb,ro", "/d/b.img", 3)], &running).unwrap();
    check(cfg, &[line("a.img,raw,xvda,ro", "/d/a.img", 3)], &running).unwrap();
}

#[test]
fn every_refusal_names_the_file_line_and_key() {
    let running = [host(0, "/d/a.img", false), host(1, "/d/b.img", true)];
    let cfg = Path::new("/c/g.cfg");
    let err = |l: At<Disk>| format!("{:#}", check(cfg, &[l], &running).unwrap_err());
    let e = err(line("c.img,raw,xvda,rw", "/d/c.img", 4));
    assert!(
        e.starts_with("/c/g.cfg:4: key `disk`: target \"c.img\" (/d/c.img) is not a disk of the running system, expected one it was booted with (/d/a.img, /d/b.img)"),
        "{e}"
    );
    let e = err(line("b.img,raw,xvdb,rw", "/d/b.img", 5));
    assert!(
        e.starts_with("/c/g.cfg:5: key `disk`: target /d/b.img was attached read-only"),
        "{e}"
    );
    let e = err(line(
        "vdev=xvda, backend=otherblk, target=a.img",
        "/d/a.img",
        6,
    ));
    assert!(
        e.starts_with("/c/g.cfg:6: key `disk`: backend \"otherblk\" differs from the running system's backend for /d/a.img (\"blkdom\")"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        check(cfg, &[line("a.img,raw,xvda,rw", "/d/a.img", 2)], &[]).unwrap_err()
    );
    assert!(e.contains("(it has none)"), "{e}");
}

#[test]
fn vbds_are_renumbered_to_the_running_system_by_file() {
    let vbd = |disk: u32, vdev: &str| ManifestVbd {
        disk,
        vdev: vdev.into(),
        devid: 51712,
        read_only: false,
        backend: "blkdom".into(),
        discard: true,
    };
    let mut domain: ManifestDomain = crate::memfit::tests::domain("g", 8);
    domain.vbds = vec![vbd(0, "xvda"), vbd(1, "xvdb")];
    let created = [host(0, "/d/b.img", false), host(1, "/d/a.img", false)];
    let running = [
        host(0, "/d/a.img", false),
        host(1, "/d/x.img", false),
        host(2, "/d/b.img", false),
    ];
    renumber(&mut domain, &created, &running).unwrap();
    assert_eq!(domain.vbds[0].disk, 2);
    assert_eq!(domain.vbds[1].disk, 0);
    domain.vbds = vec![vbd(0, "xvda")];
    let e = renumber(&mut domain, &created, &running[..1]).unwrap_err();
    assert!(format!("{e:#}").contains("/d/b.img is not a disk of the running system"));
}
