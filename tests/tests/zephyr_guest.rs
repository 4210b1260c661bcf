//! An unmodified Zephyr RTOS built for Xen (`samples/synchronization` for the
//! `xenvm_gicv3` board, Zephyr v3.1.0) boots as a domU beside the default system, from the
//! xl.cfg a Xen user writes, and its two threads keep greeting each other: that needs the
//! virtual timer interrupt and the Xen PV console. Before the vGIC gave a Non-secure guest
//! Group 1 whatever it wrote to `IGROUPR` (as Xen does), it printed one greeting and
//! stopped.
//!
//! The image is third-party and not in the repository. The test takes it from
//! `$BULKHEAD_ZEPHYR_IMAGE`, else from `../shared/guests/` beside the repository, and
//! checks its sha256 against that folder's README; when there is none it prints a loud
//! `SKIPPED:` line and passes.

use bulkhead_tests::{Expect, BOOT_TIMEOUT, TAIL_LINES};
use bulkhead_tools::qemu::{self, Outcome, RunOptions};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The image's name in `shared/guests/`.
const IMAGE: &str = "zephyr-xenvm-synchronization.bin";
/// Its sha256, as `shared/guests/README.md` gives it.
const SHA256: &str = "c3e8aac7a2c67e7889a5f67efca84e9d07f6ff3bd7517e366b0e2b2f1fd365c9";
/// Greetings (thread_a then thread_b) that must follow each other.
const ROUNDS: usize = 4;

fn repo() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests.parent().map_or(tests.join(".."), PathBuf::from)
}

/// The image to boot, or `None` (after printing why) when it is not on this machine.
fn find_image() -> Option<PathBuf> {
    let (path, from_env) = match std::env::var_os("BULKHEAD_ZEPHYR_IMAGE") {
        Some(p) => (PathBuf::from(p), true),
        None => {
            let beside = repo().parent().map_or(repo().join(".."), PathBuf::from);
            (beside.join("shared/guests").join(IMAGE), false)
        }
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if !from_env => {
            eprintln!(
                "\n********\nSKIPPED: zephyr_guest: no Zephyr image at {} ({e}). Put the \
                 unmodified `{IMAGE}` (sha256 {SHA256}) there, or point BULKHEAD_ZEPHYR_IMAGE \
                 at it, to run this test.\n********\n",
                path.display()
            );
            return None;
        }
        Err(e) => panic!("BULKHEAD_ZEPHYR_IMAGE={}: {e}", path.display()),
    };
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        SHA256,
        "{} is not the Zephyr image this test expects ({IMAGE} from shared/guests)",
        path.display()
    );
    Some(path.canonicalize().expect("image path"))
}

#[test]
fn unmodified_zephyr_greets_in_turns_beside_the_default_system() {
    let Some(image) = find_image() else { return };
    // The xl.cfg of the Xen-on-Arm guide, with the image's real path.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zephyr_guest");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let cfg = dir.join("zephyr.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"zephyr\"\nmemory = 512\nvcpus = 1\nkernel = \"{}\"\ngic_version = \"v3\"\n",
            image.display()
        ),
    )
    .expect("write cfg");
    let cfgs: &'static [PathBuf] = Box::leak(Box::new([cfg]));

    let greeting = |t: &str| format!(r"\[zephyr\] thread_{t}: Hello World from cpu 0 on xenvm!");
    let mut expect = Expect::new()
        .all(&[
            r"\[dom0\] started zephyr \(d\d+\)",
            // The one-line diagnosis of a guest that believes it is in the Secure world.
            r"bulkhead: d\d+ \(zephyr\): warning: vGIC: the guest puts interrupts in Group 0",
        ])
        .and_then(|e| e.then(r"\[zephyr\] \*\*\* Booting Zephyr OS build zephyr-v3\.1\.0"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(\w+\) stopped"))
        .and_then(|e| e.forbid(r"cannot (create|build) zephyr"))
        // Only the guest that needs it is warned about.
        .and_then(|e| e.forbid(r"\((dom0|rtos|blkdom|linux)\): warning: vGIC"))
        .expect("markers");
    for _ in 0..ROUNDS {
        expect = expect
            .then(&greeting("a"))
            .and_then(|e| e.then(&greeting("b")))
            .expect("markers");
    }
    let mut opts = RunOptions::test(
        repo().join("systems/default.toml"),
        expect,
        BOOT_TIMEOUT * 3,
    );
    opts.overrides.domains = cfgs;
    let out = qemu::run(&opts).expect("boot");
    assert!(
        out.outcome == Outcome::Matched,
        "default system + zephyr: {}",
        out.report(TAIL_LINES)
    );
    // `then` skips lines in between, so check the turns themselves: a, b, a, b, ...
    let turns: Vec<char> = out
        .log
        .lines()
        .filter_map(|l| l.strip_prefix("[zephyr] thread_"))
        .filter_map(|rest| rest.chars().next())
        .collect();
    assert!(turns.len() >= 2 * ROUNDS, "{turns:?}");
    for (i, t) in turns.iter().enumerate() {
        let want = if i % 2 == 0 { 'a' } else { 'b' };
        assert_eq!(*t, want, "greeting {i} out of turn: {turns:?}");
    }
}
