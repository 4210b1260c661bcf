//! `ctl create` is `xl create`: a kernel file the running system was not booted with is
//! sent to dom0 through the management port, checked by length and SHA-256, and booted;
//! a file that only shares its name with a packed module is that file, not the packed one.
//! The system also reserves a device with `[system] passthrough` (dom0 must hold it).

use bulkhead_tests::BOOT_TIMEOUT;
use bulkhead_tests::{connect, ctl, history, scratch_dir, system, wait_for_text, Boot, Expect};
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{Request, Response, UploadOp};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The dom0 line for each upload it completed.
const UPLOADED: &str = "[dom0] mgmt: upload complete and checked";

/// An xl.cfg for a testguest that checks its capability errors, says PASS and powers off.
fn cfg(dir: &Path, name: &str, kernel: &Path) -> String {
    let f = dir.join(format!("{name}.cfg"));
    let text = format!(
        "name = \"{name}\"\nkernel = \"{}\"\nmemory = 8\nvcpus = 1\nextra = \"mode=badcap\"\n\
         on_poweroff = \"destroy\"\n",
        kernel.display()
    );
    std::fs::write(&f, text).expect("write cfg");
    f.display().to_string()
}

#[test]
fn ctl_create_uploads_kernels_the_system_was_not_booted_with() {
    let expect = Expect::new()
        .then(r"\[dom0\] management port ready")
        .and_then(|e| e.then(r"\[fresh\] PASS"))
        .and_then(|e| e.then(r"\[again\] PASS"))
        .and_then(|e| e.then(r"\[impostor\] PASS"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: shutdown rtos: requested"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(system("upload"), expect, BOOT_TIMEOUT));
    let dir = scratch_dir("ctl-create-upload");
    let testguest = bulkhead_tools::paths::bin_dir().join("testguest.bin");
    let fresh = dir.join("fresh-guest.bin");
    std::fs::copy(&testguest, &fresh).expect("copy the guest image");

    let mut c = connect();
    // `[system] passthrough` reserved the PL061 without a domain: dom0 holds it.
    let info = ctl(&mut c, &["info", "dom0"]);
    assert!(
        info.lines().any(|l| l.starts_with("0x9030000+0x1000")),
        "the reserved PL061 is not among dom0's devices:\n{info}"
    );
    // Not packed at boot: sent, checked, booted.
    let out = ctl(&mut c, &["create", &cfg(&dir, "fresh", &fresh)]);
    assert!(out.contains("create fresh: started"), "{out}");
    wait_for_text(&mut c, "[fresh] PASS", "the uploaded guest", 120);
    // The same file again: dom0 still holds it and nothing is sent.
    let out = ctl(&mut c, &["create", &cfg(&dir, "again", &fresh)]);
    assert!(out.contains("create again: started"), "{out}");
    wait_for_text(
        &mut c,
        "[again] PASS",
        "the second guest from the same file",
        120,
    );
    assert_eq!(history(&mut c).matches(UPLOADED).count(), 1, "sent once");
    // Named like the packed RTOS, but another file: it is sent and booted, not the RTOS.
    let impostor = dir.join("rtos.bin");
    std::fs::copy(&testguest, &impostor).expect("copy the guest image");
    let out = ctl(&mut c, &["create", &cfg(&dir, "impostor", &impostor)]);
    assert!(out.contains("create impostor: started"), "{out}");
    wait_for_text(
        &mut c,
        "[impostor] PASS",
        "the guest named like a module",
        120,
    );
    assert_eq!(history(&mut c).matches(UPLOADED).count(), 2);

    // A file damaged on the way (bytes that do not match the announced hash): refused at
    // the end, and the module is dropped.
    let good = b"the bytes the host hashed".to_vec();
    let mut bad = good.clone();
    bad[0] ^= 1;
    let begin = Request::Upload {
        op: UploadOp::Begin {
            label: "damaged@000000000000".into(),
            size: good.len() as u64,
            sha256: Sha256::digest(&good).into(),
        },
    };
    assert_eq!(
        c.call(&begin).expect("begin"),
        Response::Upload { have: false }
    );
    let chunk = Request::Upload {
        op: UploadOp::Chunk {
            offset: 0,
            bytes: bad,
        },
    };
    assert_eq!(c.call(&chunk).expect("chunk"), Response::Done);
    let e = c
        .call(&Request::Upload { op: UploadOp::End })
        .expect_err("a damaged upload");
    assert!(format!("{e:#}").contains("SHA-256 does not match"), "{e:#}");
    // A chunk out of order is refused at once.
    assert_eq!(
        c.call(&begin).expect("begin"),
        Response::Upload { have: false }
    );
    let skip = Request::Upload {
        op: UploadOp::Chunk {
            offset: 5,
            bytes: good,
        },
    };
    let e = c.call(&skip).expect_err("a chunk out of order");
    assert!(format!("{e:#}").contains("does not follow"), "{e:#}");

    // Last: ends the boot.
    bulkhead_tests::last_call(
        &mut c,
        &Request::Shutdown {
            domain: protocol::mgmt::DomainRef::Name("rtos".into()),
        },
    );
    boot.finish("system `upload`");
}
