//! The diskspec parser: Xen's equivalent spellings, its defaults, and every error.

use super::{parse, DiskSpec, DEFAULT_BACKEND};

fn spec(target: &str, vdev: &str, devid: u32, read_only: bool) -> DiskSpec {
    DiskSpec {
        target: target.into(),
        vdev: vdev.into(),
        devid,
        read_only,
        backend: DEFAULT_BACKEND.into(),
        discard: true,
    }
}

#[test]
fn positional_and_named_forms_agree() {
    let want = spec("/srv/disk.img", "xvda", 51712, false);
    for text in [
        "/srv/disk.img,raw,xvda,rw",
        "/srv/disk.img,,xvda",
        "/srv/disk.img,raw,xvda,w",
        "/srv/disk.img,raw,xvda,rw,",
        "format=raw, vdev=xvda, access=rw, target=/srv/disk.img",
        "format=raw, vdev=xvda, access=rw, backend=blkdom, target=/srv/disk.img",
        "vdev=xvda,/srv/disk.img",
        " /srv/disk.img , raw,xvda",
        // xend's deprecated spellings: prefixes, then vdev and access.
        "raw:/srv/disk.img,xvda,w",
        "phy:/srv/disk.img,xvda,w",
        "tap:aio:/srv/disk.img,xvda,w",
        "file:/srv/disk.img,xvda:disk,w",
        ",,xvda,target=/srv/disk.img",
        "discard,/srv/disk.img,raw,xvda",
    ] {
        assert_eq!(parse(text), Ok(want.clone()), "{text:?}");
    }
}

#[test]
fn access_backend_and_discard() {
    let mut want = spec("d.img", "xvdb", 51728, true);
    for text in [
        "d.img,raw,xvdb,ro",
        "d.img,raw,xvdb,r",
        "access=r,vdev=xvdb,target=d.img",
    ] {
        assert_eq!(parse(text), Ok(want.clone()), "{text:?}");
    }
    want.backend = "store".into();
    want.discard = false;
    assert_eq!(
        parse("d.img,raw,xvdb,ro,backend=store,no-discard"),
        Ok(want)
    );
}

#[test]
fn target_takes_the_rest_of_the_spec() {
    let got = parse("vdev=xvdc, target=/srv/a,b c ").unwrap();
    assert_eq!(got.target, "/srv/a,b c ");
    assert_eq!(got.devid, 51744);
    // An unknown prefix is part of the path.
    assert_eq!(parse("/srv/a:b,,xvda").unwrap().target, "/srv/a:b");
    assert_eq!(parse("data:x.img,,xvda").unwrap().target, "data:x.img");
    assert_eq!(parse("d.img,,sdb3").unwrap().devid, 2067);
    assert_eq!(parse("d.img,,d1p2").unwrap().vdev, "d1p2");
}

fn err(text: &str) -> String {
    parse(text).unwrap_err()
}

#[test]
fn unsupported_options_are_errors() {
    let q = |t: &str| format!("disk {t:?}: ");
    let cases: [(&str, &str); 19] = [
        ("d.img,qcow2,xvda", "`format=qcow2` is not supported, expected format=raw (convert an image with `qemu-img convert -O raw`)"),
        ("format=vhd,vdev=xvda,target=d.img", "`format=vhd` is not supported, expected format=raw (convert an image with `qemu-img convert -O raw`)"),
        ("qcow2:d.img,xvda,w", "`format=qcow2` is not supported, expected format=raw (convert an image with `qemu-img convert -O raw`)"),
        ("d.img,iso,xvda", "`format=iso` is not an image format, expected format=raw (convert an image with `qemu-img convert -O raw`)"),
        ("d.img,raw,hdc,devtype=cdrom", "`devtype=cdrom` is not supported (there are no virtual CD-ROM drives), expected a disk (no devtype or devtype=disk)"),
        ("d.img,,hdc,cdrom", "`cdrom` is not supported (there are no virtual CD-ROM drives), expected a disk (no devtype or devtype=disk)"),
        ("raw:d.img,hdc:cdrom,ro", "`vdev=hdc:cdrom` is not supported (there are no virtual CD-ROM drives), expected a disk (no devtype or devtype=disk)"),
        ("d.img,,xvda,devtype=floppy", "`devtype=floppy` is not a device type, expected devtype=disk"),
        ("d.img,,xvda,backendtype=qdisk", "`backendtype=qdisk` is not supported (Bulkhead's block backend is the driver domain named by `backend`), expected no backendtype or backendtype=phy"),
        ("d.img,,xvda,backendtype=tap", "`backendtype=tap` is not supported (Bulkhead's block backend is the driver domain named by `backend`), expected no backendtype or backendtype=phy"),
        ("d.img,,xvda,backendtype=vbd3", "`backendtype=vbd3` is not a backend type, expected no backendtype or backendtype=phy"),
        ("d.img,,xvda,script=block-iscsi", "`script=` is not supported (there are no hotplug scripts: the target is a host file the tools attach), expected a plain target file"),
        ("nbd:host:1234,xvda,w", "`nbd:` names a hotplug script, which is not supported, expected the path of a raw disk image"),
        ("d.img,,xvda,direct-io-safe", "`direct-io-safe` is not supported (it tunes QEMU's Xen backend, which Bulkhead does not have), expected it removed"),
        ("d.img,,xvda,colo,colo-host=h", "`colo` is not supported (there is no COLO replication), expected it removed"),
        ("d.img,,xvda,colo-port=9", "`colo-port` is not supported (there is no COLO replication), expected it removed"),
        ("d.img,,xvda,cache=none", "`cache` is not a disk parameter, expected target, format, vdev, access, devtype, backend or backendtype"),
        ("d.img,,xvda,rw,extra", "too many positional parameters at \"extra\", expected at most target, format, vdev, access"),
        ("d.img,,xvda,rx", "`access=rx` is not an access mode, expected rw, w, ro or r"),
    ];
    for (text, problem) in cases {
        assert_eq!(err(text), format!("{}{problem}", q(text)), "{text:?}");
    }
}

#[test]
fn missing_and_repeated_parameters() {
    assert_eq!(
        err("d.img"),
        "disk \"d.img\": no `vdev`, expected the guest's device name such as xvda (third positional parameter or vdev=)"
    );
    assert_eq!(
        err(",,xvda"),
        "disk \",,xvda\": no `target`, expected the path of a raw disk image (first positional parameter or target=)"
    );
    assert_eq!(
        err(""),
        "disk \"\": no `vdev`, expected the guest's device name such as xvda (third positional parameter or vdev=)"
    );
    assert_eq!(
        err("d.img,,xvda,vdev=xvdb"),
        "disk \"d.img,,xvda,vdev=xvdb\": `vdev` is given twice, expected each parameter at most once (positionally or as vdev=)"
    );
    assert_eq!(
        err("d.img,,xvda,backend=a,backend=b"),
        "disk \"d.img,,xvda,backend=a,backend=b\": `backend` is given twice, expected each parameter at most once (positionally or as backend=)"
    );
    assert_eq!(
        err("d.img,,xvda,backend=dom0"),
        "disk \"d.img,,xvda,backend=dom0\": `backend=dom0` is not a domain name, expected the name of the block backend domain (default blkdom)"
    );
    assert_eq!(
        err("d.img,,vda"),
        "disk \"d.img,,vda\": \"vda\" is not a virtual device name, expected a virtual device such as xvda, xvdb1, sda, hdc or d0p1"
    );
    assert_eq!(
        err("d.img,,sdq"),
        "disk \"d.img,,sdq\": \"sdq\" is out of range (sd disks sda..sdp, partitions up to 15), expected a virtual device such as xvda, xvdb1, sda, hdc or d0p1"
    );
}
