//! The heartbeat watchdog (issue 11): on the default system, `ctl crash blkdom --hang` makes
//! the microvisor wedge blkdom's vCPU (it spins on its next hypercall or WFI with interrupts
//! masked) without telling anyone, so blkdom simply stops getting anything done; no stop
//! event reaches dom0, only the silence of its heartbeats. dom0's watchdog (10 s, the
//! driver domains' default) must notice within its timeout and restart blkdom in place,
//! and `ctl list` / `ctl info blkdom` must show the restart, its reason (watchdog) and the
//! recovery time (restart decided -> the new incarnation's first heartbeat).

use bulkhead_tests::{connect, ctl, last_call, Boot, Expect, BOOT_TIMEOUT};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, HealthRow, Request, Response, RestartReason};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The default system's watchdog on blkdom, in ms.
const TIMEOUT_MS: u64 = 10_000;

fn blkdom_health(c: &mut Client) -> HealthRow {
    match c.call(&Request::Health).expect("health") {
        Response::Health(rows) => rows
            .into_iter()
            .find(|r| r.name == "blkdom")
            .expect("blkdom is listed"),
        other => panic!("health answered {other:?}"),
    }
}

/// Polls blkdom's supervision facts until `done` holds; panics after `secs` seconds.
fn wait_health(
    c: &mut Client,
    what: &str,
    secs: u64,
    done: impl Fn(&HealthRow) -> bool,
) -> HealthRow {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = blkdom_health(c);
        if done(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "{what}: blkdom is {h:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_hung_blkdom_is_restarted_by_its_watchdog() {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[dom0\] watchdog on blkdom: 10000 ms")
        .and_then(|e| e.then(r"\[blkdom\] blkdom ready"))
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] mgmt: hang blkdom: done",
                r"bulkhead: d\d+ \(blkdom\): hung: vCPUs spin with interrupts masked",
            ])
        })
        .and_then(|e| {
            e.then(r"\[dom0\] blkdom \(d\d+\): no heartbeat for \d+ ms \(watchdog\) -> restart in \d+ ms")
        })
        .and_then(|e| e.then(r"\[dom0\] blkdom \(d\d+\): restarted \(restart 1, 1 within 30 s\)"))
        .and_then(|e| e.then(r"\[blkdom\] blkdom ready"))
        .and_then(|e| e.then(r"\[dom0\] blkdom \(d\d+\): ready, recovered in \d+ ms"))
        // The test's last word, once it has checked `ctl list` and `ctl info`.
        .and_then(|e| e.then(r"\[dom0\] mgmt: pause rtos: done"))
        // A hang is no exception: blkdom never reports a crash, and nobody else stops.
        .and_then(|e| e.forbid(r"\[blkdom\] vcpu\d: unexpected"))
        .and_then(|e| e.forbid(r"crash loop|FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|linux|netdom)\) stopped"))
        .expect("markers");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let opts = RunOptions::test(root.join("systems/default.toml"), expect, BOOT_TIMEOUT * 4);
    let boot = Boot::start(opts);

    let mut c = connect();
    // blkdom is up and beating (its first beat comes once its loop first goes idle).
    let before = wait_health(&mut c, "blkdom's first heartbeat", 240, |h| {
        h.beat_ago_ms.is_some()
    });
    assert_eq!(before.watchdog_ms, Some(TIMEOUT_MS as u32));
    assert_eq!((before.incarnation, &before.last_restart), (0, &None));

    let hung = Instant::now();
    let out = ctl(&mut c, &["crash", "blkdom", "--hang"]);
    assert_eq!(out, "crash blkdom: done\n");
    // Restarted by the watchdog: dom0 got no stop event, only silence.
    let after = wait_health(&mut c, "the watchdog's restart", 120, |h| {
        h.incarnation == 1
    });
    let waited = hung.elapsed();
    let last = after.last_restart.clone().expect("a restart record");
    let RestartReason::Watchdog { silent_ms } = last.reason else {
        panic!("restarted for {:?}, expected the watchdog", last.reason);
    };
    // It fired once the timeout had passed and not much later (dom0 reads beats twice a
    // second; the stamp of the last beat dates the silence). The wall-clock bound allows
    // for a loaded host.
    assert!(
        (TIMEOUT_MS..TIMEOUT_MS + 5_000).contains(&silent_ms),
        "silent for {silent_ms} ms"
    );
    assert!(waited < Duration::from_secs(90), "restart took {waited:?}");
    // The new incarnation gets ready and beats: its recovery time is known.
    let recovered = wait_health(&mut c, "the new incarnation's first heartbeat", 180, |h| {
        h.last_restart
            .as_ref()
            .is_some_and(|r| r.recovery_ms.is_some())
    });
    let recovery = recovered.last_restart.unwrap().recovery_ms.unwrap();
    assert!(recovery > 0 && recovery < 180_000, "recovery {recovery} ms");
    assert_eq!(recovered.held, None);

    // What a user sees.
    let list = ctl(&mut c, &["list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("blkdom "))
        .unwrap_or_else(|| panic!("no blkdom in\n{list}"));
    assert!(row.contains(" running "), "{list}");
    assert!(row.contains("        1  watchdog, recovered in "), "{list}");
    let info = ctl(&mut c, &["info", "blkdom"]);
    assert!(info.contains("restarts       : 1\n"), "{info}");
    assert!(
        info.contains("last restart   : watchdog: no heartbeat for "),
        "{info}"
    );
    assert!(info.contains("recovery time  : "), "{info}");
    assert!(!info.contains("recovery time  : -"), "{info}");
    assert!(
        info.contains("watchdog       : 10.0 s, last heartbeat "),
        "{info}"
    );
    let json = ctl(&mut c, &["--json", "info", "blkdom"]);
    assert!(json.contains(r#""reason": "watchdog""#), "{json}");
    assert!(
        json.contains(&format!(r#""recovery_ms": {recovery}"#)),
        "{json}"
    );

    // The boot ends at dom0's audit line for this pause.
    last_call(
        &mut c,
        &Request::Pause {
            domain: DomainRef::Name("rtos".into()),
        },
    );
    boot.finish("system default (driver_watchdog)");
}
