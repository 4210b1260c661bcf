//! Tests of `ctl`: formatting, JSON shape, error wording, and whole sessions against a fake
//! dom0 on a temporary unix socket (no QEMU).

use super::*;
use clap::Parser;
use protocol::control::{DomainState, StopReason, Version, PROTOCOL_VERSION};
use protocol::lock_holds::LockHolds;
use protocol::mgmt::{
    decode, encode, DomainRow, FrameDecoder, HealthRow, MgmtError, RestartReason, RestartRecord,
    SystemInfo, MGMT_VERSION,
};
use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

const HZ: u64 = 62_500_000;

fn row(id: u16, name: &str, state: DomainState, secs: u64) -> DomainRow {
    DomainRow {
        id,
        name: name.into(),
        mem_mib: 8 << id,
        vcpus: 2,
        vcpus_online: 2,
        state,
        cpu_ticks: secs * HZ + HZ / 4,
        exits: 1000 * u64::from(id),
        irqs_injected: 10 * u64::from(id),
        restarts: 0,
    }
}

fn rows() -> Vec<DomainRow> {
    let mut smp = row(2, "smp", DomainState::Paused, 3);
    smp.vcpus_online = 1;
    vec![
        row(0, "dom0", DomainState::Running, 12),
        row(1, "rtos", DomainState::Running, 150),
        smp,
        row(
            3,
            "crashy-guest",
            DomainState::Stopped(StopReason::Crashed { code: 7 }),
            0,
        ),
    ]
}

/// Supervision facts for [`rows`]: rtos was restarted by its watchdog and recovered, smp
/// by a user, and crashy-guest is held after a crash loop.
fn health() -> Vec<HealthRow> {
    let plain = |id: u16, name: &str| HealthRow {
        id,
        name: name.into(),
        incarnation: 0,
        last_restart: None,
        watchdog_ms: None,
        beat_ago_ms: None,
        held: None,
    };
    let mut rtos = plain(1, "rtos");
    rtos.incarnation = 2;
    rtos.watchdog_ms = Some(10_000);
    rtos.beat_ago_ms = Some(400);
    rtos.last_restart = Some(RestartRecord {
        reason: RestartReason::Watchdog { silent_ms: 10_512 },
        ago_ms: 12_000,
        recovery_ms: Some(2_534),
    });
    let mut smp = plain(2, "smp");
    smp.incarnation = 1;
    smp.last_restart = Some(RestartRecord {
        reason: RestartReason::User,
        ago_ms: 5_000,
        recovery_ms: None,
    });
    let mut crashy = plain(3, "crashy-guest");
    crashy.incarnation = 3;
    crashy.held = Some("crash loop: 3 restarts within 30 s, then crash: panic".into());
    vec![plain(0, "dom0"), rtos, smp, crashy]
}

fn system() -> SystemInfo {
    SystemInfo {
        protocol_version: PROTOCOL_VERSION,
        counter_hz: HZ,
        domains: 4,
        free_pages: 249_143,
        largest_free_pages: 131_072,
    }
}

/// Passes by reason, as the microvisor counts them.
fn reasons(
    counts: &[(protocol::lock_holds::Reason, u64)],
) -> [u64; protocol::lock_holds::Reason::COUNT] {
    let mut by = [0; protocol::lock_holds::Reason::COUNT];
    for (r, n) in counts {
        by[*r as usize] = *n;
    }
    by
}

/// `ctl info --json`'s passes by reason: every reason's word, 0 but for `counts`.
fn by_reason(counts: &[(&str, u64)]) -> serde_json::Value {
    let mut v = json!({});
    for r in protocol::lock_holds::Reason::ALL {
        v[r.word()] = json!(0);
    }
    for (word, n) in counts {
        v[*word] = json!(n);
    }
    v
}

/// The microvisor's lock holds: CPU 0 built a domain (a 269 µs capability call), CPU 2
/// idled; CPU 1 made no locked pass.
fn holds() -> LockHolds {
    use protocol::control::CapOp;
    use protocol::lock_holds::{
        CpuHolds, Hold, IntidPasses, Pass, Reason, NO_INTID, TRACKED_INTIDS,
    };
    LockHolds {
        cpus: vec![
            CpuHolds {
                cpu: 0,
                passes: 120_000,
                longest: Some(Hold {
                    ns: 269_345,
                    pass: Pass::capability_call(0, 0, CapOp::DomainCreate),
                }),
                by_reason: reasons(&[
                    (Reason::XenEventChannelOp, 100_000),
                    (Reason::Interrupt, 19_999),
                    (Reason::CapabilityCall, 1),
                ]),
                // Two of the interrupt passes were of INTIDs after the table filled.
                by_intid: [
                    IntidPasses {
                        intid: 27,
                        passes: 4,
                    },
                    IntidPasses {
                        intid: 78,
                        passes: 19_990,
                    },
                    IntidPasses {
                        intid: NO_INTID,
                        passes: 3,
                    },
                    IntidPasses::default(),
                ],
                longest_wait: Some(Hold {
                    ns: 41_250,
                    pass: Pass::Schedule,
                }),
                waited_ns: 1_234_567,
            },
            CpuHolds {
                cpu: 2,
                passes: 3_456,
                longest: Some(Hold {
                    ns: 12_999,
                    pass: Pass::Idle,
                }),
                by_reason: reasons(&[(Reason::Idle, 3_456)]),
                by_intid: [IntidPasses::default(); TRACKED_INTIDS],
                longest_wait: None,
                waited_ns: 0,
            },
        ],
        since_reset: false,
    }
}

#[test]
fn list_table_looks_like_xl_list() {
    assert_eq!(
        show::list_table(&rows(), &health(), HZ),
        "\
Name            ID    Mem VCPUs  State       Time(s) Restarts  Last restart
dom0             0      8     2  running        12.2        0  -
rtos             1     16     2  running       150.2        2  watchdog, recovered in 2.5 s
smp              2     32   1/2  paused          3.2        1  ctl restart
crashy-guest     3     64     2  held            0.2        3  held: crash loop: 3 restarts within 30 s, then crash: panic
"
    );
    // Unknown counter frequency: no time rather than a division by zero. No supervision
    // facts: the microvisor's restart count, no last restart.
    assert!(show::list_table(&rows()[..1], &[], 0).ends_with("running           -        0  -\n"));
}

#[test]
fn info_shows_supervision_facts() {
    let h = health();
    assert_eq!(
        show_health::health_text(&h[1]),
        "\
restarts       : 2
last restart   : watchdog: no heartbeat for 10.5 s (12.0 s ago)
recovery time  : 2.5 s (restart decided -> first heartbeat)
watchdog       : 10.0 s, last heartbeat 0.4 s ago
"
    );
    assert_eq!(
        show_health::health_text(&h[2]),
        "\
restarts       : 1
last restart   : ctl restart (5.0 s ago)
recovery time  : - (no heartbeat from this incarnation yet, or it sends none)
watchdog       : off
"
    );
    assert!(show_health::health_text(&h[3])
        .ends_with("held           : crash loop: 3 restarts within 30 s, then crash: panic\n"));
    assert_eq!(
        show_health::health_json(&h[1]),
        json!({
            "restarts": 2,
            "last_restart": {
                "reason": "watchdog",
                "detail": "watchdog: no heartbeat for 10.5 s",
                "ago_ms": 12_000,
                "recovery_ms": 2_534,
            },
            "watchdog_ms": 10_000,
            "heartbeat_ago_ms": 400,
            "held": null,
        })
    );
}

#[test]
fn list_json_shape() {
    let v = show::list_json(&rows(), &[], HZ);
    assert_eq!(v["domains"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        v["domains"][3],
        json!({
            "name": "crashy-guest",
            "id": 3,
            "mem_mib": 64,
            "vcpus": 2,
            "vcpus_online": 2,
            "state": "crashed",
            "stop_reason": "crashed (code 7)",
            "cpu_seconds": 0.25,
            "cpu_ticks": HZ / 4,
            "exits": 3000,
            "irqs_injected": 30,
            "restarts": 0,
        })
    );
    assert_eq!(v["domains"][0]["stop_reason"], serde_json::Value::Null);
    let v = show::list_json(&rows(), &health(), HZ);
    assert_eq!(
        v["domains"][3]["held"],
        json!("crash loop: 3 restarts within 30 s, then crash: panic")
    );
    assert_eq!(v["domains"][1]["last_restart"]["reason"], json!("watchdog"));
    assert_eq!(v["domains"][1]["restarts"], json!(2));
}

#[test]
fn info_text_and_json() {
    // The management version is this tree's own (the client reports what it speaks).
    let mgmt = format!("{}.{}", MGMT_VERSION.major, MGMT_VERSION.minor);
    let cap = format!("{}.{}", PROTOCOL_VERSION.major, PROTOCOL_VERSION.minor);
    assert_eq!(
        show::info_text(&system(), &holds(), false),
        format!(
            "\
management protocol : {mgmt}
capability protocol : {cap}
counter frequency   : 62500000 Hz
domains             : 4
free memory         : 973 MiB (249143 pages)
largest free block  : 512 MiB (131072 pages)
locked passes       : 123456 since boot
longest lock hold   : 269.3 us on cpu0: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)
  cpu0              : 120000 passes, longest 269.3 us: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)
    by reason       : xen-event-channel-op 100000, interrupt 19999 (INTID 78: 19990, INTID 27: 4, no INTID: 3, others: 2), capability-call 1
    lock waits      : 1234.5 us in all, longest 41.2 us before: scheduling
  cpu2              : 3456 passes, longest 12.9 us: interrupts while idle
    by reason       : idle 3456
"
        )
    );
    let call = json!({
        "us": 269,
        "ns": 269_345,
        "kind": "exit",
        "what": "d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)",
        "domain": 0,
        "vcpu": 0,
    });
    let mut longest = call.clone();
    longest["cpu"] = json!(0);
    assert_eq!(
        show::info_json(&system(), &holds(), false),
        json!({
            "mgmt_version": mgmt,
            "protocol_version": cap,
            "counter_hz": HZ,
            "domains": 4,
            "free_pages": 249_143,
            "free_mib": 973,
            "largest_free_pages": 131_072,
            "largest_free_mib": 512,
            "lock_holds": {
                "since": "boot",
                "passes": 123_456,
                "longest": longest,
                "cpus": [
                    {
                        "cpu": 0,
                        "passes": 120_000,
                        "by_reason": by_reason(&[
                            ("xen-event-channel-op", 100_000),
                            ("interrupt", 19_999),
                            ("capability-call", 1),
                        ]),
                        "interrupts_by_intid": {
                            "tracked": [
                                { "intid": 78, "passes": 19_990 },
                                { "intid": 27, "passes": 4 },
                                { "intid": null, "passes": 3 },
                            ],
                            "others": 2,
                        },
                        "longest": call,
                        "waited_ns": 1_234_567,
                        "longest_wait": {
                            "us": 41,
                            "ns": 41_250,
                            "kind": "scheduling",
                            "what": "scheduling",
                            "domain": null,
                            "vcpu": null,
                        },
                    },
                    {
                        "cpu": 2,
                        "passes": 3_456,
                        "by_reason": by_reason(&[("idle", 3_456)]),
                        "interrupts_by_intid": { "tracked": [], "others": 0 },
                        "longest": {
                            "us": 12,
                            "ns": 12_999,
                            "kind": "idle",
                            "what": "interrupts while idle",
                            "domain": null,
                            "vcpu": null,
                        },
                        "waited_ns": 0,
                        "longest_wait": null,
                    },
                ],
                "reset": false,
            },
        })
    );
}

#[test]
fn lock_holds_after_a_reset() {
    let mut h = holds();
    h.since_reset = true;
    h.cpus[1].longest = None;
    // Waits that would read 0.0 us in all get no line.
    h.cpus[1].waited_ns = 99;
    h.cpus[1].longest_wait = Some(protocol::lock_holds::Hold {
        ns: 99,
        pass: protocol::lock_holds::Pass::Idle,
    });
    let text = show_holds::holds_text(&h, true);
    assert_eq!(
        text,
        "\
locked passes       : 123456 since the last reset
longest lock hold   : 269.3 us on cpu0: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)
  cpu0              : 120000 passes, longest 269.3 us: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)
    by reason       : xen-event-channel-op 100000, interrupt 19999 (INTID 78: 19990, INTID 27: 4, no INTID: 3, others: 2), capability-call 1
    lock waits      : 1234.5 us in all, longest 41.2 us before: scheduling
  cpu2              : 3456 passes
    by reason       : idle 3456
lock-hold record    : reset (the figures above were read just before)
"
    );
    let j = show_holds::holds_json(&h, true);
    assert_eq!((&j["since"], &j["reset"]), (&json!("reset"), &json!(true)));
    assert_eq!(j["cpus"][1]["longest"], json!(null));
    // Nothing recorded at all.
    let none = show_holds::holds_text(&LockHolds::default(), false);
    assert_eq!(
        none,
        "locked passes       : 0 since boot\nlongest lock hold   : -\n"
    );
    assert_eq!(
        show_holds::holds_json(&LockHolds::default(), false)["longest"],
        json!(null)
    );
}

#[test]
fn top_rates_and_table() {
    let before = rows();
    let mut after = rows();
    after[1].cpu_ticks += HZ; // one CPU-second in two seconds: 50 %
    after[1].exits += 400;
    after[2].restarts = 1; // restarted: counters start again, no rate
    let r = top::rates(&before, &after, Duration::from_secs(2), HZ);
    assert_eq!(r[1].cpu_percent, Some(50.0));
    assert_eq!(r[1].exits_per_s, Some(200.0));
    assert_eq!(r[1].irqs_per_s, Some(0.0));
    assert_eq!(r[2], top::Rates::default());
    let t = top::top_table(&system(), &after, &r, Duration::from_secs(2));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "bulkhead top: 4 domains, 973 MiB free, every 2 s (Ctrl-C to quit)"
    );
    assert!(
        lines[2].starts_with("Name            ID  State"),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[4].split_whitespace().collect::<Vec<_>>(),
        ["rtos", "1", "running", "151.2", "50.0", "16", "2", "1400", "200", "10", "0"]
    );
    let j = top::top_json(&system(), &after, &r);
    assert_eq!(j["domains"][1]["cpu_percent"], json!(50.0));
    assert_eq!(j["domains"][2]["cpu_percent"], serde_json::Value::Null);
}

#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    ctl: CtlArgs,
}

fn parse(args: &[&str]) -> CtlArgs {
    Cmd::try_parse_from(std::iter::once("ctl").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .ctl
}

#[test]
fn parses_verbs_and_global_flags() {
    let a = parse(&["list", "--json"]);
    assert!(a.json && a.verb == CtlVerb::List);
    let a = parse(&["--socket", "/tmp/s", "pause", "rtos"]);
    assert_eq!(a.socket, Some(PathBuf::from("/tmp/s")));
    assert_eq!(
        a.verb.request(),
        Some(Request::Pause {
            domain: DomainRef::Name("rtos".into())
        })
    );
    assert_eq!(
        parse(&["destroy", "3"]).verb.request(),
        Some(Request::Destroy {
            domain: DomainRef::Id(3)
        })
    );
    assert_eq!(
        parse(&["top", "--interval", "0.5", "--count", "3"]).verb,
        CtlVerb::Top {
            interval: 0.5,
            count: Some(3)
        }
    );
    assert_eq!(
        parse(&["vcpu-set", "linux", "1"]).verb.request(),
        Some(Request::VcpuSet {
            domain: DomainRef::Name("linux".into()),
            online: 1
        })
    );
    assert!(Cmd::try_parse_from(["ctl", "vcpu-set", "linux", "-1"]).is_err());
    assert!(Cmd::try_parse_from(["ctl", "pause"]).is_err());
    assert!(Cmd::try_parse_from(["ctl", "frobnicate"]).is_err());
}

/// A unique socket path in the temporary directory.
fn temp_socket() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("bulkhead-ctl-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A fake dom0: serves one connection at a time, as QEMU's socket backend does, answering
/// each request with `answer`. Returns the requests it saw once no client has come for
/// `FAKE_IDLE` after the last one hung up.
fn fake_dom0(
    socket: &Path,
    answer: impl Fn(&Request) -> Vec<Response> + Send + 'static,
) -> JoinHandle<Vec<Request>> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut wait = Duration::from_secs(5);
        while let Some(mut s) = accept_within(&listener, wait) {
            serve_one(&mut s, &answer, &mut seen);
            wait = FAKE_IDLE;
        }
        seen
    })
}

/// How long `ctl` waits for the fake dom0's replies: generous, as the host may be busy
/// (a QEMU test beside these); no test here waits for it to expire.
const LOADED_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the fake dom0 waits for another connection after one ends.
const FAKE_IDLE: Duration = Duration::from_millis(600);

/// Serves one connection until the client hangs up.
fn serve_one(
    s: &mut UnixStream,
    answer: &dyn Fn(&Request) -> Vec<Response>,
    seen: &mut Vec<Request>,
) {
    let mut dec = FrameDecoder::new();
    let mut buf = [0u8; 256];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for frame in dec.feed(&buf[..n]) {
            let req: Request = decode(&frame.unwrap()).unwrap();
            for resp in answer(&req) {
                // A client that gave up (see `LOADED_REPLY_TIMEOUT`) is the test's failure
                // to report, not a panic of this thread.
                if s.write_all(&encode(&resp).unwrap()).is_err() {
                    return;
                }
            }
            seen.push(req);
        }
    }
}

/// The first connection within `limit`, so a test whose client never connects cannot hang.
fn accept_within(listener: &UnixListener, limit: Duration) -> Option<UnixStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(limit)).unwrap();
                return Some(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

/// A fake dom0 with [`rows`] that knows the lifecycle rules well enough for the CLI.
fn dom0(req: &Request) -> Vec<Response> {
    let find = |d: &DomainRef| {
        rows().into_iter().find(|r| match d {
            DomainRef::Name(n) => r.name == *n,
            DomainRef::Id(id) => r.id == *id,
        })
    };
    vec![match req {
        Request::Hello { .. } => Response::Hello {
            version: MGMT_VERSION,
        },
        Request::Session { token } => Response::Session { token: *token },
        Request::List | Request::Top => Response::Domains(rows()),
        Request::Info => Response::System(system()),
        Request::LockHolds { .. } => Response::LockHolds(holds()),
        Request::Health => Response::Health(health()),
        Request::Hang { domain } | Request::Crash { domain } => match find(domain) {
            None => Response::Error(MgmtError::UnknownDomain),
            Some(_) => Response::Done,
        },
        Request::Unpause { domain } | Request::Pause { domain } => match find(domain) {
            None => Response::Error(MgmtError::UnknownDomain),
            Some(r) if matches!(req, Request::Unpause { .. }) && r.state != DomainState::Paused => {
                Response::Error(MgmtError::WrongState { state: r.state })
            }
            Some(_) => Response::Done,
        },
        _ => Response::Error(MgmtError::NotSupported {
            what: "PV shutdown requests (needs the Xen ABI, issue #5)".into(),
        }),
    }]
}

/// Runs `ctl ARGS` against a fresh fake dom0; returns (stdout or error, requests seen).
fn session(
    args: &[&str],
    answer: impl Fn(&Request) -> Vec<Response> + Send + 'static,
) -> (Result<String, String>, Vec<Request>) {
    let socket = temp_socket();
    let server = fake_dom0(&socket, answer);
    let mut out = Vec::new();
    let r = run(&parse(args), &socket, LOADED_REPLY_TIMEOUT, false, &mut out);
    // The session token is fresh each time: left out of what the tests compare.
    let seen = server
        .join()
        .unwrap()
        .into_iter()
        .filter(|r| !matches!(r, Request::Session { .. }))
        .collect();
    let _ = std::fs::remove_file(&socket);
    let r = r
        .map(|()| String::from_utf8(out).unwrap())
        .map_err(|e| format!("{e:#}"));
    (r, seen)
}

#[test]
fn list_end_to_end() {
    let (out, seen) = session(&["list"], dom0);
    assert_eq!(out.unwrap(), show::list_table(&rows(), &health(), HZ));
    assert_eq!(
        seen,
        [
            Request::Hello {
                version: MGMT_VERSION
            },
            Request::Info,
            Request::List,
            Request::Health
        ]
    );
    let (out, _) = session(&["list", "--json"], dom0);
    let v: serde_json::Value = serde_json::from_str(&out.unwrap()).unwrap();
    assert_eq!(v, show::list_json(&rows(), &health(), HZ));
    let (out, seen) = session(&["info"], dom0);
    assert_eq!(out.unwrap(), show::info_text(&system(), &holds(), false));
    assert_eq!(
        seen[1..],
        [Request::Info, Request::LockHolds { reset: false }]
    );
}

#[test]
fn info_resets_lock_holds_on_request() {
    let (out, seen) = session(&["info", "--reset-holds", "--json"], dom0);
    let v: serde_json::Value = serde_json::from_str(&out.unwrap()).unwrap();
    assert_eq!(v, show::info_json(&system(), &holds(), true));
    assert_eq!(
        seen[1..],
        [Request::Info, Request::LockHolds { reset: true }]
    );
    // The record is the system's: not with a domain.
    assert!(Cmd::try_parse_from(["ctl", "info", "rtos", "--reset-holds"]).is_err());
}

#[test]
fn crash_and_hang_end_to_end() {
    let (out, seen) = session(&["crash", "rtos", "--hang"], dom0);
    assert_eq!(out.unwrap(), "crash rtos: done\n");
    assert_eq!(
        seen[1],
        Request::Hang {
            domain: DomainRef::Name("rtos".into())
        }
    );
    let (_, seen) = session(&["crash", "1"], dom0);
    assert_eq!(
        seen[1],
        Request::Crash {
            domain: DomainRef::Id(1)
        }
    );
}

#[test]
fn lifecycle_verbs_end_to_end() {
    let (out, seen) = session(&["pause", "rtos"], dom0);
    assert_eq!(out.unwrap(), "pause rtos: done\n");
    assert_eq!(
        seen[1],
        Request::Pause {
            domain: DomainRef::Name("rtos".into())
        }
    );
    let (out, _) = session(&["--json", "unpause", "2"], dom0);
    let v: serde_json::Value = serde_json::from_str(&out.unwrap()).unwrap();
    assert_eq!(v, json!({"ok": true, "verb": "unpause", "domain": "2"}));
    let cases: [(&[&str], &str); 4] = [
        (&["pause", "nope"], "pause nope: no such domain"),
        (
            &["unpause", "rtos"],
            "unpause rtos: not allowed while the domain is running",
        ),
        (
            &["shutdown", "rtos"],
            "shutdown rtos: not supported yet: PV shutdown requests (needs the Xen ABI, issue #5)",
        ),
        (
            &["reboot", "7"],
            "reboot 7: not supported yet: PV shutdown requests (needs the Xen ABI, issue #5)",
        ),
    ];
    for (args, msg) in cases {
        assert_eq!(session(args, dom0).0, Err(msg.to_string()), "{args:?}");
    }
}

#[test]
fn top_end_to_end() {
    let (out, seen) = session(
        &["top", "--json", "--interval", "0.01", "--count", "2"],
        dom0,
    );
    let out = out.unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["domains"][1]["cpu_percent"],
        serde_json::Value::Null
    );
    assert_eq!(lines[1]["domains"][1]["cpu_percent"], json!(0.0));
    // Hello, info and top per sample: the client lets go of the port between samples.
    assert_eq!(seen.len(), 6);
    let (out, _) = session(&["top", "--interval", "0.01", "--count", "1"], dom0);
    assert!(out.unwrap().starts_with("bulkhead top: 4 domains"));
    // Checked before connecting.
    let e = run(
        &parse(&["top", "--interval", "0"]),
        &temp_socket(),
        REPLY_TIMEOUT,
        false,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--interval 0: expected seconds between 0 and 3600"
    );
}

/// ux review: a `ctl top` (or `ctl console`) polling in one terminal must not make a
/// `ctl list` in another time out. dom0's port serves one connection at a time; the poller
/// lets go of it between polls. (Before, the list waited for the whole `top` and failed.)
#[test]
fn a_polling_client_leaves_room_for_another() {
    let socket = temp_socket();
    let server = fake_dom0(&socket, dom0);
    let poll_socket = socket.clone();
    let poller = std::thread::spawn(move || {
        let args = parse(&["top", "--json", "--interval", "0.4", "--count", "4"]);
        run(
            &args,
            &poll_socket,
            Duration::from_secs(2),
            false,
            &mut Vec::new(),
        )
        .map_err(|e| format!("{e:#}"))
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut out = Vec::new();
    let listed = run(
        &parse(&["list"]),
        &socket,
        LOADED_REPLY_TIMEOUT,
        false,
        &mut out,
    );
    assert!(listed.is_ok(), "{listed:?}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        show::list_table(&rows(), &health(), HZ)
    );
    assert_eq!(poller.join().unwrap(), Ok(()));
    server.join().unwrap();
    let _ = std::fs::remove_file(&socket);
}

#[test]
fn hello_skips_stale_replies_and_checks_the_version() {
    // Left over from a client that hung up early, its own Hello answer and a listing
    // included: all skipped until our session token comes back.
    let (out, _) = session(&["list"], |req| {
        let mut r = dom0(req);
        if matches!(req, Request::Hello { .. }) {
            let stale = [
                Response::Done,
                Response::Hello {
                    version: MGMT_VERSION,
                },
                Response::Domains(Vec::new()),
                Response::Session { token: 7 },
            ];
            r.splice(0..0, stale);
        }
        r
    });
    assert_eq!(out.unwrap(), show::list_table(&rows(), &health(), HZ));
    let newer = Version {
        major: MGMT_VERSION.major + 1,
        minor: 0,
    };
    let expected = format!(
        "dom0 speaks management protocol {}.0, this tool speaks {}.{}: rebuild and restart \
         the system with `cargo bulkhead run`",
        newer.major, MGMT_VERSION.major, MGMT_VERSION.minor
    );
    let (out, _) = session(&["list"], move |_| vec![Response::Hello { version: newer }]);
    assert_eq!(out, Err(expected.clone()));
    let (out, _) = session(&["list"], move |_| {
        vec![Response::Error(MgmtError::VersionMismatch { ours: newer })]
    });
    assert_eq!(out, Err(expected));
}

#[test]
fn an_opening_the_port_dropped_is_sent_again() {
    // A UART whose receiver dom0 has not enabled yet drops the first opening (Hello and
    // Session) whole; the client sends it again with a new token and is served.
    use std::sync::atomic::{AtomicUsize, Ordering};
    let socket = temp_socket();
    let hellos = AtomicUsize::new(0);
    let deaf = std::sync::atomic::AtomicBool::new(false);
    let server = fake_dom0(&socket, move |req| {
        if matches!(req, Request::Hello { .. }) {
            deaf.store(hellos.fetch_add(1, Ordering::SeqCst) == 0, Ordering::SeqCst);
        }
        if deaf.load(Ordering::SeqCst) {
            return vec![];
        }
        dom0(req)
    });
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    let r = run(
        &parse(&["list"]),
        &socket,
        Duration::from_secs(5),
        false,
        &mut out,
    );
    let seen = server.join().unwrap();
    let _ = std::fs::remove_file(&socket);
    r.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        show::list_table(&rows(), &health(), HZ)
    );
    let count = |f: fn(&Request) -> bool| seen.iter().filter(|r| f(r)).count();
    assert_eq!(count(|r| matches!(r, Request::Hello { .. })), 2);
    assert_eq!(count(|r| matches!(r, Request::Session { .. })), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn silent_or_closed_dom0() {
    let socket = temp_socket();
    let server = fake_dom0(&socket, |_| vec![]);
    let mut out = Vec::new();
    let e = run(
        &parse(&["list"]),
        &socket,
        Duration::from_millis(200),
        false,
        &mut out,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no reply from dom0 within 0.2 s (socket {}): is the system still booting?",
            socket.display()
        )
    );
    server.join().unwrap();
    let _ = std::fs::remove_file(&socket);

    // A reply that is not a frame of ours.
    let socket = temp_socket();
    let listener = UnixListener::bind(&socket).unwrap();
    let t = std::thread::spawn(move || {
        let mut s = accept_within(&listener, Duration::from_secs(5)).unwrap();
        s.write_all(&[2, 99, 0]).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    let e = run(
        &parse(&["list"]),
        &socket,
        Duration::from_millis(500),
        false,
        &mut out,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed reply from dom0: frame does not hold a valid message"
    );
    t.join().unwrap();
    let _ = std::fs::remove_file(&socket);
}

#[test]
fn no_running_system() {
    let socket = temp_socket();
    let mut out = Vec::new();
    let e = run(&parse(&["list"]), &socket, REPLY_TIMEOUT, false, &mut out).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no running system: start one with `cargo bulkhead run` (socket {} not found)",
            socket.display()
        )
    );
    // A socket file left by a QEMU that has exited.
    drop(UnixListener::bind(&socket).unwrap());
    let e = run(&parse(&["list"]), &socket, REPLY_TIMEOUT, false, &mut out).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no running system: start one with `cargo bulkhead run` (socket {} has no listener)",
            socket.display()
        )
    );
    let _ = std::fs::remove_file(&socket);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        assert_eq!(
            client::shown(&default_socket()),
            "target/bulkhead/mgmt.sock"
        );
    }
}

#[test]
fn create_carries_a_checked_budget() {
    let dir = std::env::temp_dir().join(format!("bulkhead-ctl-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("paced.cfg");
    std::fs::write(
        &cfg,
        "name = \"paced\"\nkernel = \"testguest\"\nmemory = 8\n",
    )
    .unwrap();
    let packed = dir.join("image");
    let budget_of = |budget| match super::create_parts(
        &cfg,
        &packed,
        &super::CreateOptions {
            budget,
            priority: None,
        },
    ) {
        Ok((Request::Create { budget, .. }, _)) => Ok(budget),
        Ok((other, _)) => panic!("{other:?}"),
        Err(e) => Err(format!("{e:#}")),
    };
    assert_eq!(
        budget_of(Some((2_000, 10_000))).unwrap(),
        Some((2_000, 10_000))
    );
    assert_eq!(budget_of(None).unwrap(), None);
    for (b, p) in [(20_000, 10_000), (50, 10_000), (0, 0), (1_000, 20_000_000)] {
        let e = budget_of(Some((b, p))).unwrap_err();
        assert!(
            e.contains(&format!("--budget-us {b} --period-us {p}")),
            "{e}"
        );
    }
}

#[test]
fn create_gives_every_vcpu_its_priority() {
    let dir = std::env::temp_dir().join(format!("bulkhead-ctl-prio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("ranked.cfg");
    std::fs::write(
        &cfg,
        "name = \"ranked\"\nkernel = \"testguest\"\nmemory = 8\nvcpus = 2\n",
    )
    .unwrap();
    let packed = dir.join("image");
    let priorities = |priority| {
        let given = super::CreateOptions {
            budget: None,
            priority,
        };
        match super::create_parts(&cfg, &packed, &given).unwrap() {
            (Request::Create { domain, .. }, _) => {
                domain.vcpus.iter().map(|v| v.priority).collect::<Vec<_>>()
            }
            (other, _) => panic!("{other:?}"),
        }
    };
    assert_eq!(priorities(Some(42)), vec![42, 42]);
    assert_eq!(priorities(Some(0)), vec![0, 0]);
    let default = priorities(None);
    assert_eq!(default, vec![10, 10]);
    // And from the command line, where clap bounds it to a byte.
    match parse(&["create", "ranked.cfg", "--priority", "200"]).verb {
        CtlVerb::Create { priority, .. } => assert_eq!(priority, Some(200)),
        other => panic!("{other:?}"),
    }
    assert!(Cmd::try_parse_from(["ctl", "create", "ranked.cfg", "--priority", "256"]).is_err());
}

#[test]
fn create_resolves_an_xl_cfg_like_a_system_description() {
    let dir = std::env::temp_dir().join(format!("bulkhead-ctl-create-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("late.cfg");
    std::fs::write(
        &good,
        "name = \"late\"\nkernel = \"testguest\"\nmemory = 8\nextra = \"mode=smp\"\n",
    )
    .unwrap();
    match super::create_request(&good).unwrap() {
        Request::Create { domain, .. } => {
            assert_eq!(domain.name, "late");
            assert_eq!(domain.image, "testguest");
            assert_eq!(domain.mem_mib, 8);
            assert_eq!(domain.cmdline, "mode=smp");
        }
        other => panic!("{other:?}"),
    }
    let bad = dir.join("bad.cfg");
    std::fs::write(&bad, "name = \"bad\"\nkernel = \"testguest\"\ncolour = 3\n").unwrap();
    let e = format!("{:#}", super::create_request(&bad).unwrap_err());
    assert!(e.contains("bad.cfg:3") && e.contains("colour"), "{e}");
    // Disks are attached at boot: a disk must be one the running system (packed in
    // `image/`) was booted with, and the request names it by that system's numbering.
    let img = dir.join("d.img");
    std::fs::write(&img, vec![0u8; 4096]).unwrap();
    let disk = dir.join("disk.cfg");
    std::fs::write(
        &disk,
        "name = \"disky\"\nkernel = \"testguest\"\nmemory = 8\ndisk = ['d.img,raw,xvda,rw']\n",
    )
    .unwrap();
    let packed = dir.join("image");
    std::fs::create_dir_all(&packed).unwrap();
    let e = format!(
        "{:#}",
        super::create_parts(&disk, &packed, &Default::default()).unwrap_err()
    );
    assert!(e.contains("no packed system to attach disks from"), "{e}");
    let host = |index: u32, name: &std::path::Path| protocol::manifest::ManifestDisk {
        index,
        serial: format!("bkd{index}"),
        read_only: false,
        sectors: 8,
        backend: "blkdom".into(),
        name: name.display().to_string(),
    };
    let pack = |disks: Vec<protocol::manifest::ManifestDisk>| {
        let m = protocol::manifest::SystemManifest {
            version: protocol::manifest::MANIFEST_VERSION,
            domains: vec![],
            disks,
            nics: vec![],
            watchdogs: vec![],
            crash_limits: vec![],
            budgets: vec![],
        };
        std::fs::write(packed.join("manifest.bin"), m.encode().unwrap()).unwrap();
    };
    let other = dir.join("other.img");
    pack(vec![host(0, &other)]);
    let e = format!(
        "{:#}",
        super::create_parts(&disk, &packed, &Default::default()).unwrap_err()
    );
    assert!(
        e.contains("disk.cfg:4: key `disk`: target \"d.img\"")
            && e.contains("is not a disk of the running system, expected one it was booted with")
            && e.contains("boot the guest with `cargo bulkhead run --domain "),
        "{e}"
    );
    pack(vec![
        host(0, &other),
        host(1, &std::fs::canonicalize(&img).unwrap()),
    ]);
    let (Request::Create { domain, .. }, _) =
        super::create_parts(&disk, &packed, &Default::default()).unwrap()
    else {
        panic!("not a create")
    };
    assert_eq!(domain.vbds.len(), 1);
    assert_eq!(
        (domain.vbds[0].disk, domain.vbds[0].vdev.as_str()),
        (1, "xvda")
    );
    assert!(
        domain.depends_on.iter().any(|d| d == "blkdom"),
        "{domain:?}"
    );
    // Vifs need no host device: the request carries them, to be served by the running
    // backend, which the guest depends on.
    let net = dir.join("net.cfg");
    std::fs::write(
        &net,
        "name = \"netty\"\nkernel = \"testguest\"\nmemory = 8\nvif = ['', 'bridge=xenbr1']\n",
    )
    .unwrap();
    match super::create_request(&net).unwrap() {
        Request::Create { domain, .. } => {
            assert_eq!(domain.name, "netty");
            assert_eq!(domain.depends_on, ["netdom"]);
            let got: Vec<(u32, &str, &str)> = domain
                .vifs
                .iter()
                .map(|v| (v.devid, v.bridge.as_str(), v.backend.as_str()))
                .collect();
            assert_eq!(got, [(0, "xenbr0", "netdom"), (1, "xenbr1", "netdom")]);
            assert_eq!(
                domain.vifs[0].mac,
                crate::xlcfg::vif::derived_mac("netty", 0)
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn create_uploads_a_kernel_file_that_is_not_the_packed_one() {
    let dir = std::env::temp_dir().join(format!("bulkhead-ctl-packed-{}", std::process::id()));
    let (a, b, packed) = (dir.join("a"), dir.join("b"), dir.join("image"));
    for d in [&a, &b, &packed] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Two different files with the same name, as in the review: a/Image was packed at boot.
    std::fs::write(a.join("Image"), b"the kernel packed at boot").unwrap();
    std::fs::write(b.join("Image"), b"another kernel, same name").unwrap();
    let cfg = |d: &std::path::Path| {
        let f = d.join("g.cfg");
        std::fs::write(&f, "name = \"g\"\nkernel = \"Image\"\nmemory = 8\n").unwrap();
        f
    };
    let (req, images) = super::create_parts(&cfg(&a), &packed, &Default::default()).unwrap();
    let Request::Create { mut domain, .. } = req else {
        panic!("not a create")
    };
    assert_eq!(images.len(), 1);
    let label = images[0].0.clone();
    assert_eq!(domain.image, label);
    let packed_file = packed.join(format!("{label}.bin"));
    std::fs::copy(a.join("Image"), &packed_file).unwrap();
    // The packed file itself is not sent; another with the same name (even the same
    // length) is.
    assert!(super::packed::same_bytes(&a.join("Image"), &packed_file).unwrap());
    assert!(!super::packed::same_bytes(&b.join("Image"), &packed_file).unwrap());
    std::fs::write(b.join("Image"), b"the kernel packed at boos").unwrap();
    assert!(!super::packed::same_bytes(&b.join("Image"), &packed_file).unwrap());
    // An upload's label keeps the start of the name and adds the hash: equal labels mean
    // equal files, and it fits a module label.
    let h1 = [0xabu8; 32];
    let mut h2 = h1;
    h2[5] = 0;
    let l1 = super::upload::upload_label("a-very-long-kernel-name", &h1);
    assert_eq!(l1, "a-very-long-@abababababab");
    assert_ne!(
        l1,
        super::upload::upload_label("a-very-long-kernel-name", &h2)
    );
    assert!(l1.len() < 32);
    super::upload::relabel(&mut domain, &label, &l1);
    assert_eq!(domain.image, l1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_text_and_json() {
    use protocol::mgmt::DeviceRow;
    let rows = [
        DeviceRow {
            mmio_base: 0x0901_0000,
            mmio_size: 0x1000,
            irqs: vec![34],
            virtio_id: 0,
            holder: Some(3),
        },
        DeviceRow {
            mmio_base: 0x0a00_3e00,
            mmio_size: 0x200,
            irqs: vec![],
            virtio_id: 2,
            holder: None,
        },
    ];
    let text = show_dev::devices_text(&rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("0x9010000+0x1000"), "{text}");
    assert!(lines[1].contains("34") && lines[1].contains("device") && lines[1].contains("d3"));
    assert!(lines[2].contains("block") && lines[2].contains("free") && lines[2].contains(" - "));
    assert_eq!(show_dev::devices_text(&[]), "");
    let j = show_dev::devices_json(&rows);
    assert_eq!(j[0]["holder"], 3);
    assert_eq!(j[1]["holder"], serde_json::Value::Null);
    assert_eq!(j[1]["kind"], "block");
}

#[test]
fn sched_fp_takes_a_budget_only_with_its_period() {
    let args = CtlArgs::from_words(&[
        "sched-fp",
        "hi",
        "--budget-us",
        "2000",
        "--period-us",
        "10000",
    ])
    .expect("budget and period");
    match args.verb {
        CtlVerb::SchedFp {
            budget_us,
            period_us,
            priority,
            ..
        } => assert_eq!(
            (budget_us, period_us, priority),
            (Some(2000), Some(10000), None)
        ),
        other => panic!("{other:?}"),
    }
    for words in [
        &["sched-fp", "hi", "--budget-us", "2000"][..],
        &["sched-fp", "hi", "--period-us", "10000"][..],
    ] {
        let e = CtlArgs::from_words(words).expect_err("one without the other");
        assert!(format!("{e:#}").contains("required"), "{e:#}");
    }
}
