//! A budget per period for a shared vCPU (`ctl sched-fp --budget-us B --period-us P`): two
//! busy guests share pCPU 1, `hi` at a higher fixed priority than `lo`. Without a budget
//! `lo` gets nothing; with 2 ms per 10 ms for `hi`, `hi` gets about its 20% and `lo` the
//! rest; with the budget removed, `lo` is starved again. A budget given in the system
//! description holds from the start and comes back with each restart in place, and one
//! given to `ctl create` (with a priority, which an xl.cfg cannot give) holds from the start. Shares are
//! of guest CPU time as `ctl vcpu-list` counts it, not of wall-clock time.

use bulkhead_tests::{connect, ctl, last_call, system, wait_count, Boot, Expect, BOOT_TIMEOUT};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request};
use std::sync::Mutex;
use std::time::Duration;

/// The two tests boot one QEMU each, never both at once (one image directory, one
/// management socket).
static SERIAL: Mutex<()> = Mutex::new(());

/// `name`'s CPU time so far, in seconds.
fn cpu_seconds(c: &mut Client, name: &str) -> f64 {
    let out = ctl(c, &["vcpu-list", name, "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("vcpu-list json");
    rows[0]["cpu_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no cpu_seconds: {out}"))
}

/// `hi`'s priority, budget and period as `ctl sched-fp --json` lists them.
fn hi_budget(c: &mut Client) -> (Option<u64>, Option<u64>, Option<u64>) {
    let listed = ctl(c, &["sched-fp", "hi", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&listed).expect("sched-fp json");
    (
        rows[0]["priority"].as_u64(),
        rows[0]["budget_us"].as_u64(),
        rows[0]["period_us"].as_u64(),
    )
}

/// Asserts that `lo` gets most of pCPU 1 beside a busy `hi` on a 20% budget.
fn assert_shares(c: &mut Client) {
    assert_shares_with(c, 20);
}

/// Asserts that `lo` gets most of pCPU 1 beside a busy `hi` on a `percent`% budget: all
/// but that share and a tenth, and `hi` at least half its share.
fn assert_shares_with(c: &mut Client, percent: u32) {
    let (hi, lo) = ran(c, 5);
    let total = hi + lo;
    assert!(total > 1.0, "pCPU 1 ran {total:.3} s of guests in 5 s");
    let (hi, lo) = (hi / total, lo / total);
    let share = f64::from(percent) / 100.0;
    assert!(
        lo >= 0.9 - share && hi >= share / 2.0,
        "with a {percent}% budget on hi: hi {:.1}%, lo {:.1}%",
        hi * 100.0,
        lo * 100.0
    );
}

/// The CPU time `hi` and `lo` get over `secs` seconds.
fn ran(c: &mut Client, secs: u64) -> (f64, f64) {
    let (hi0, lo0) = (cpu_seconds(c, "hi"), cpu_seconds(c, "lo"));
    std::thread::sleep(Duration::from_secs(secs));
    let (hi1, lo1) = (cpu_seconds(c, "hi"), cpu_seconds(c, "lo"));
    eprintln!(
        "over {secs} s: hi {:.3} s, lo {:.3} s",
        hi1 - hi0,
        lo1 - lo0
    );
    (hi1 - hi0, lo1 - lo0)
}

#[test]
fn a_budget_bounds_a_high_priority_vcpu_and_the_lower_one_gets_the_rest() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[hi\] spinning")
        .and_then(|e| e.then(r"bulkhead: d\d+ \(hi\) vCPU 0: budget 2000 us per 10000 us"))
        .and_then(|e| e.then(r"bulkhead: d\d+ \(hi\) vCPU 0: no budget"))
        // The run ends here, once every check is done.
        .and_then(|e| e.then(r"\[dom0\] mgmt: destroy lo: done"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((hi|lo|dom0)\) stopped"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(
        system("sched_budget"),
        expect,
        BOOT_TIMEOUT,
    ));

    let mut c = connect();
    wait_count(&mut c, "[hi] spinning", 1, "hi running", 120);
    // Fixed priority alone: the lower one is starved. (hi's own time is not read here: a
    // vCPU that never exits is only charged when it next does.)
    let (_, lo) = ran(&mut c, 3);
    assert!(lo < 0.05, "lo ran {lo:.3} s beside a busy hi");

    let set = ctl(
        &mut c,
        &[
            "sched-fp",
            "hi",
            "--budget-us",
            "2000",
            "--period-us",
            "10000",
        ],
    );
    assert!(set.contains("budget 2000 us / 10000 us (20%)"), "{set}");
    wait_count(
        &mut c,
        "[lo] spinning",
        1,
        "lo running beside a budgeted hi",
        60,
    );
    assert_shares(&mut c);
    assert_eq!(hi_budget(&mut c), (Some(20), Some(2000), Some(10000)));
    let table = ctl(&mut c, &["sched-fp", "lo"]);
    assert!(
        table.lines().nth(1).is_some_and(|l| l.ends_with(" -")),
        "{table}"
    );

    // 0/0 removes it: hi has the pCPU to itself again.
    let cleared = ctl(
        &mut c,
        &["sched-fp", "hi", "--budget-us", "0", "--period-us", "0"],
    );
    assert!(cleared.contains("no budget"), "{cleared}");
    let (_, lo) = ran(&mut c, 3);
    assert!(lo < 0.05, "lo ran {lo:.3} s once hi's budget was removed");

    // Its audit line is the boot's last marker: QEMU may stop before the reply arrives.
    last_call(
        &mut c,
        &Request::Destroy {
            domain: DomainRef::Name("lo".into()),
        },
    );
    boot.finish("system `sched_budget`");
}

#[test]
fn a_configured_budget_holds_from_the_start_and_across_a_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = std::fs::remove_file(default_socket());
    let configured = r"bulkhead: d\d+ \(hi\) vCPU 0: budget 2000 us per 10000 us \(configured\)";
    let created = r"bulkhead: d\d+ \(hi\) vCPU 0: budget 1500 us per 10000 us \(configured\)";
    let expect = Expect::new()
        .then(configured)
        .and_then(|e| e.then(r"\[lo\] spinning"))
        .and_then(|e| e.then(r"bulkhead: d\d+ \(hi\) vCPU 0: no budget"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: restart: hi \(d\d+\): restarted"))
        .and_then(|e| e.then(configured))
        .and_then(|e| e.then(created))
        .and_then(|e| e.then(r"\[dom0\] mgmt: create hi: started"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: destroy lo: done"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((hi|lo|dom0)\) stopped"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(
        system("sched_budget_config"),
        expect,
        BOOT_TIMEOUT,
    ));

    let mut c = connect();
    // Without its budget `hi` (higher priority, busy) would starve `lo` from the start.
    wait_count(&mut c, "[hi] spinning", 1, "hi running", 120);
    wait_count(
        &mut c,
        "[lo] spinning",
        1,
        "lo running beside a budgeted hi",
        60,
    );
    assert_eq!(hi_budget(&mut c), (Some(20), Some(2000), Some(10000)));
    assert_shares(&mut c);

    // Removed at run time, it comes back with the restart: the domain returns as configured.
    let cleared = ctl(
        &mut c,
        &["sched-fp", "hi", "--budget-us", "0", "--period-us", "0"],
    );
    assert!(cleared.contains("no budget"), "{cleared}");
    assert_eq!(hi_budget(&mut c).1, Some(0));
    // A refusal fails `ctl`; the restart itself is the boot's marker above.
    ctl(&mut c, &["restart", "hi"]);
    wait_count(&mut c, "[hi] spinning", 2, "hi restarted", 120);
    assert_eq!(hi_budget(&mut c), (Some(20), Some(2000), Some(10000)));
    assert_shares(&mut c);

    // `ctl create --priority --budget-us/--period-us`: a domain added at run time from an
    // xl.cfg (which has no priority key) gets its priority and budget from the start too.
    // Above `lo` a busy `hi` would starve it; on a 15% budget it gets that, and `lo` the
    // rest.
    ctl(&mut c, &["destroy", "hi"]);
    let cfg = bulkhead_tests::scratch_dir("sched-budget").join("hi.cfg");
    std::fs::write(
        &cfg,
        "name = \"hi\"\nkernel = \"testguest\"\nmemory = 8\ncpus = \"1\"\nextra = \"mode=spin\"\n",
    )
    .expect("write hi.cfg");
    let cfg = cfg.display().to_string();
    ctl(
        &mut c,
        &[
            "create",
            &cfg,
            "--priority",
            "20",
            "--budget-us",
            "1500",
            "--period-us",
            "10000",
        ],
    );
    wait_count(&mut c, "[hi] spinning", 3, "hi created", 120);
    assert_eq!(hi_budget(&mut c), (Some(20), Some(1500), Some(10000)));
    assert_shares_with(&mut c, 15);

    last_call(
        &mut c,
        &Request::Destroy {
            domain: DomainRef::Name("lo".into()),
        },
    );
    boot.finish("system `sched_budget_config`");
}
