//! The host manages a running system through dom0's management port: the real `ctl`
//! client over the real unix socket and virtio console, against a booted system.

use bulkhead_tests::{connect, ctl, history, system, Boot, Expect, BOOT_TIMEOUT};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::client::REPLY_TIMEOUT;
use bulkhead_tools::ctl::{create_request, default_socket, run, CtlArgs};
use bulkhead_tools::qemu::RunOptions;
use protocol::control::DomainState;
use protocol::lock_holds::Pass;
use protocol::mgmt::{DomainRef, Request, Response};
use std::time::{Duration, Instant};

fn rtos() -> DomainRef {
    DomainRef::Name("rtos".into())
}

fn listed(c: &mut Client, name: &str) -> bool {
    match c.call(&Request::List).expect("list") {
        Response::Domains(rows) => rows.iter().any(|r| r.name == name),
        other => panic!("list answered {other:?}"),
    }
}

fn rtos_state(c: &mut Client) -> Option<DomainState> {
    match c.call(&Request::List).expect("list") {
        Response::Domains(rows) => rows.iter().find(|r| r.name == "rtos").map(|r| r.state),
        other => panic!("list answered {other:?}"),
    }
}

/// `ctl info` shows the microvisor's global-lock holds: after six builds, a restart and a
/// destroy, a longest hold of some microseconds for a known kind of pass (no timing is
/// asserted: under TCG a hold includes time QEMU spent on other CPUs); `--reset-holds`
/// starts the record again.
fn lock_holds_show_in_info(c: &mut Client) {
    let info: serde_json::Value =
        serde_json::from_str(&ctl(c, &["info", "--json"])).expect("info json");
    let holds = &info["lock_holds"];
    assert_eq!(holds["since"], "boot", "{holds:#}");
    let passes = holds["passes"].as_u64().expect("passes");
    let longest = &holds["longest"];
    let kind = longest["kind"].as_str().expect("a longest hold");
    assert!(Pass::KINDS.contains(&kind), "{longest:#}");
    assert!(longest["us"].as_u64() > Some(0), "{longest:#}");
    // dom0's CPU 0 took the lock (every build); the RTOS's pCPU is another.
    let cpus = holds["cpus"].as_array().expect("cpus");
    assert!(cpus.len() >= 2, "{holds:#}");
    assert!(cpus
        .iter()
        .any(|c| c["cpu"] == 0 && c["passes"].as_u64() > Some(0)));
    assert_eq!(
        cpus.iter()
            .filter_map(|c| c["passes"].as_u64())
            .sum::<u64>(),
        passes
    );
    let text = ctl(c, &["info"]);
    eprintln!("{text}");
    let line =
        regex::Regex::new(r"(?m)^longest lock hold   : \d+\.\d us on cpu\d+: \S.*$").unwrap();
    assert!(line.is_match(&text), "{text}");
    assert!(text.contains("since boot"), "{text}");
    let text = ctl(c, &["info", "--reset-holds"]);
    assert!(text.contains("lock-hold record    : reset"), "{text}");
    let info: serde_json::Value =
        serde_json::from_str(&ctl(c, &["info", "--json"])).expect("info json");
    assert_eq!(info["lock_holds"]["since"], "reset", "{info:#}");
}

fn done(c: &mut Client, req: Request) {
    let r = c.call(&req).expect("request");
    assert_eq!(r, Response::Done, "{req:?}");
}

#[test]
fn management_verbs_drive_a_running_system() {
    let _ = std::fs::remove_file(default_socket());
    // dom0 prints one audit line per lifecycle action: the boot ends at the last one.
    let expect = Expect::new()
        .then(r"\[dom0\] management port ready")
        // Console input typed through `ctl console` reaches the RTOS shell, which answers.
        .and_then(|e| e.then(r"\[rtos\] threads: +\d+[ *]shell "))
        .and_then(|e| e.then(r"\[dom0\] mgmt: pause rtos: done"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: unpause rtos: done"))
        // The new domain runs on another CPU: its verdict may precede dom0's audit line.
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] mgmt: create late: started \(d\d+\)",
                r"\[late\] PASS",
            ])
        })
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] mgmt: create unpinned: started \(d\d+\)",
                r"\[unpinned\] PASS",
            ])
        })
        .and_then(|e| e.then(r"\[dom0\] mgmt: restart: rtos \(d1\): restarted"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: destroy rtos: done"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: lock-hold record reset"))
        .and_then(|e| e.then(r"\[dom0\] mgmt: shutdown spare: requested"))
        // A clean shutdown: the domain powers itself off and dom0 applies on_poweroff.
        .and_then(|e| e.then(r"\[dom0\] spare \(d\d+\): powered off -> destroy"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(system("mgmt"), expect, BOOT_TIMEOUT));

    let mut c = connect();
    assert_eq!(rtos_state(&mut c), Some(DomainState::Running));
    // `dmesg`: the microvisor's console history, boot log first.
    match c.call(&Request::Dmesg { from: 0 }).expect("dmesg") {
        Response::Log { bytes, start, end } => {
            let text = String::from_utf8_lossy(&bytes);
            assert_eq!(start, 0, "the boot log still fits in the ring");
            assert!(end >= bytes.len() as u64);
            assert!(text.contains("bulkhead: microvisor up"), "{text}");
            assert!(text.contains("[dom0] started rtos"), "{text}");
        }
        other => panic!("dmesg answered {other:?}"),
    }
    done(
        &mut c,
        Request::ConsoleInput {
            domain: rtos(),
            bytes: b"threads\r".to_vec(),
        },
    );
    // Wait (through `dmesg`, as `ctl console` follows output) for the shell's answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !history(&mut c).contains("[rtos] threads:") {
        assert!(Instant::now() < deadline, "the RTOS shell never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    done(&mut c, Request::Pause { domain: rtos() });
    assert_eq!(rtos_state(&mut c), Some(DomainState::Paused));
    done(&mut c, Request::Unpause { domain: rtos() });
    assert_eq!(rtos_state(&mut c), Some(DomainState::Running));
    // Misuse is refused with a clear error and changes nothing.
    let e = c
        .call(&Request::Unpause { domain: rtos() })
        .expect_err("unpause of a running domain");
    assert!(
        format!("{e:#}").contains("not allowed while the domain is running"),
        "{e:#}"
    );
    let e = c
        .call(&Request::Pause {
            domain: DomainRef::Name("nope".into()),
        })
        .expect_err("pause of an unknown domain");
    assert!(format!("{e:#}").contains("no such domain"), "{e:#}");
    assert_eq!(rtos_state(&mut c), Some(DomainState::Running));
    // `xl create` at runtime: an xl.cfg domain whose image is already a boot module.
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systems/xl/late.cfg");
    done(&mut c, create_request(&cfg).expect("late.cfg resolves"));
    // It checks its capability errors, powers off and is destroyed by its on_poweroff.
    let deadline = Instant::now() + Duration::from_secs(60);
    while listed(&mut c, "late") {
        assert!(Instant::now() < deadline, "`late` never powered off");
        std::thread::sleep(Duration::from_millis(200));
    }
    // An unpinned guest beside domains holding pCPUs 1 and 2 exclusively: dom0 places it.
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systems/xl/unpinned.cfg");
    done(&mut c, create_request(&cfg).expect("unpinned.cfg resolves"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while listed(&mut c, "unpinned") {
        assert!(Instant::now() < deadline, "`unpinned` never powered off");
        std::thread::sleep(Duration::from_millis(200));
    }
    done(&mut c, Request::Restart { domain: rtos() });
    done(&mut c, Request::Destroy { domain: rtos() });
    assert_eq!(
        rtos_state(&mut c),
        None,
        "a destroyed domain is no longer listed"
    );
    // `ctl vcpu-pin` of an exclusive vCPU: onto a pCPU in use (dom0's) it is refused, in
    // words; onto the pCPU the RTOS left it moves, stays exclusive and keeps running (its
    // idle reports below come from there).
    let refused = |c: &mut Client, words: &[&str]| -> String {
        c.release();
        let args = CtlArgs::from_words(words).expect("ctl args");
        let e = run(
            &args,
            &default_socket(),
            REPLY_TIMEOUT,
            false,
            &mut Vec::new(),
        )
        .expect_err("refused");
        format!("{e:#}")
    };
    let e = refused(&mut c, &["vcpu-pin", "spare", "0", "0"]);
    assert!(e.contains("pCPU 0 does not exist or is in use"), "{e}");
    let uptimes = history(&mut c).matches("[spare] uptime").count();
    ctl(&mut c, &["vcpu-pin", "spare", "0", "1"]);
    bulkhead_tests::wait_count(
        &mut c,
        "[spare] uptime",
        uptimes + 3,
        "the RTOS after it moved to pCPU 1",
        60,
    );
    // An exclusive vCPU has no budget.
    let e = refused(
        &mut c,
        &[
            "sched-fp",
            "spare",
            "--budget-us",
            "2000",
            "--period-us",
            "10000",
        ],
    );
    assert!(e.contains("exclusively"), "{e}");
    // Two clients at once, through QEMU's real socket: `ctl top` polls in one "terminal"
    // while `ctl list` runs in another (the poller lets go of the port between samples).
    c.release();
    let poller = std::thread::spawn(|| {
        let args = CtlArgs::from_words(&["top", "--json", "--interval", "1", "--count", "3"])
            .expect("top args");
        let mut out = Vec::new();
        run(&args, &default_socket(), REPLY_TIMEOUT, false, &mut out).map(|()| out)
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut listed = Vec::new();
    let args = CtlArgs::from_words(&["list"]).expect("list args");
    run(&args, &default_socket(), REPLY_TIMEOUT, false, &mut listed).expect("list beside top");
    assert!(String::from_utf8_lossy(&listed).contains("spare"));
    let top = poller.join().expect("top thread").expect("top beside list");
    assert_eq!(
        String::from_utf8_lossy(&top).lines().count(),
        3,
        "three samples"
    );
    // `ctl vcpu-list` (`xl vcpu-list`): every vCPU with its pCPU and pinning; dom0 sees
    // its own CPU time (it asks about itself, holding no capability for itself).
    let args = CtlArgs::from_words(&["vcpu-list", "--json"]).expect("vcpu-list args");
    let mut out = Vec::new();
    run(&args, &default_socket(), REPLY_TIMEOUT, false, &mut out).expect("vcpu-list");
    let vcpus: serde_json::Value = serde_json::from_slice(&out).expect("vcpu-list json");
    let row = |name: &str| {
        vcpus
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in vcpu-list: {vcpus:#}"))
    };
    let (dom0, spare) = (row("dom0"), row("spare"));
    assert_eq!(
        (dom0["id"].as_u64(), dom0["cpu"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(dom0["cpu_seconds"].as_f64() > Some(0.0), "{dom0}");
    assert_eq!(spare["cpu"].as_u64(), Some(1), "moved by vcpu-pin: {spare}");
    assert_eq!(spare["exclusive"], true);
    // An idle RTOS on an exclusive pCPU shows as mostly idle: its WFI is not trapped, but it
    // reports its idle time (`IdleReport`, once a second) and that is not counted.
    let spare_cpu = |c: &mut bulkhead_tools::ctl::client::Client| {
        let out = ctl(c, &["vcpu-list", "spare", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&out).expect("vcpu-list json");
        rows[0]["cpu_seconds"].as_f64().expect("cpu_seconds")
    };
    let (before, t0) = (spare_cpu(&mut c), Instant::now());
    std::thread::sleep(Duration::from_secs(6));
    let (after, wall) = (spare_cpu(&mut c), t0.elapsed().as_secs_f64());
    eprintln!(
        "spare busy {:.3} s of {wall:.2} s (total {after:.3})",
        after - before
    );
    assert!(
        after - before < wall / 2.0,
        "the idle RTOS counted {:.2} s busy in {wall:.2} s",
        after - before
    );
    let table = ctl(&mut c, &["vcpu-list", "spare"]);
    assert_eq!(table.lines().count(), 2, "one vCPU:\n{table}");
    assert!(table.contains("1 exclusive"), "{table}");
    lock_holds_show_in_info(&mut c);
    // Last: a clean shutdown request; the power-off that follows ends the boot, so nothing
    // above races with QEMU's exit (the reply itself may be cut off: the console is the
    // check).
    let _ = c.call(&Request::Shutdown {
        domain: DomainRef::Name("spare".into()),
    });

    boot.finish("system `mgmt`");
}
