//! Host tests of the management service against a fake microvisor.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use protocol::control::StopReason;
use protocol::mgmt::{FrameError, MAX_FRAME};

/// A fake set of domains; operations change their state as the microvisor would.
struct Fake {
    doms: Vec<DomainInfo>,
    /// Error the next lifecycle call returns instead of acting.
    fail_next: Option<CapError>,
    calls: Vec<(&'static str, u16)>,
    /// xenstore writes, in order (only domain 2 has `cpu/N/availability` nodes).
    writes: Vec<(String, Vec<u8>)>,
    /// vcpu-pin calls: (vCPU, pCPU, priority).
    pins: Vec<(u16, u16, u8)>,
    budgets: Vec<(u16, (u32, u32))>,
}

fn info(domid: u16, name: &str, state: DomainState) -> DomainInfo {
    DomainInfo {
        domid,
        name: name.into(),
        state,
        vcpus: 1,
        vcpus_online: 1,
        mem_mib: 8,
        cpu_ticks: 62_500_000 * u64::from(domid),
        exits: 10,
        irqs_injected: 20,
        restarts: 0,
    }
}

impl Fake {
    fn new() -> Self {
        Self {
            doms: vec![
                info(2, "smp", DomainState::Paused),
                info(0, "dom0", DomainState::Running),
                info(1, "rtos", DomainState::Running),
                info(
                    3,
                    "crashy",
                    DomainState::Stopped(StopReason::Crashed { code: 9 }),
                ),
            ],
            fail_next: None,
            calls: Vec::new(),
            writes: Vec::new(),
            pins: Vec::new(),
            budgets: Vec::new(),
        }
    }

    fn act(
        &mut self,
        what: &'static str,
        id: u16,
        to: Option<DomainState>,
    ) -> Result<(), CapError> {
        self.calls.push((what, id));
        if let Some(e) = self.fail_next.take() {
            return Err(e);
        }
        let i = self
            .doms
            .iter()
            .position(|d| d.domid == id)
            .ok_or(CapError::Stale)?;
        match to {
            Some(s) => self.doms[i].state = s,
            None => {
                self.doms.remove(i);
            }
        }
        Ok(())
    }
}

impl DomainOps for Fake {
    fn domains(&mut self) -> Vec<DomainEntry> {
        self.doms
            .iter()
            .map(|d| DomainEntry {
                name: d.name.clone(),
                id: d.domid,
                handle: (d.domid != 0).then_some(CapHandle {
                    index: d.domid,
                    generation: 1,
                }),
            })
            .collect()
    }
    fn query(&mut self, id: u16) -> Result<DomainInfo, CapError> {
        self.doms
            .iter()
            .find(|d| d.domid == id)
            .cloned()
            .ok_or(CapError::Stale)
    }
    fn pause(&mut self, id: u16) -> Result<(), CapError> {
        self.act("pause", id, Some(DomainState::Paused))
    }
    fn unpause(&mut self, id: u16) -> Result<(), CapError> {
        self.act("unpause", id, Some(DomainState::Running))
    }
    fn destroy(&mut self, id: u16) -> Result<(), CapError> {
        self.act("destroy", id, None)
    }
    fn restart(&mut self, id: u16) -> Result<(), CapError> {
        self.act("restart", id, Some(DomainState::Running))
    }
    fn shutdown(&mut self, id: u16, _kind: ShutdownKind) -> Result<(), CapError> {
        self.act("shutdown", id, Some(DomainState::Running))
    }
    fn crash(&mut self, id: u16) -> Result<(), CapError> {
        let crashed = DomainState::Stopped(StopReason::Crashed { code: 0x200_0000 });
        self.act("crash", id, Some(crashed))
    }
    fn vcpu_pin(&mut self, id: u16, vcpu: u16, pcpu: u16, priority: u8) -> Result<(), CapError> {
        if let Some(e) = self.fail_next.take() {
            return Err(e);
        }
        self.calls.push(("vcpu-pin", id));
        self.pins.push((vcpu, pcpu, priority));
        Ok(())
    }
    fn vcpu_budget(&mut self, id: u16, vcpu: u16, budget_us: (u32, u32)) -> Result<(), CapError> {
        if let Some(e) = self.fail_next.take() {
            return Err(e);
        }
        self.calls.push(("sched-fp", id));
        self.budgets.push((vcpu, budget_us));
        Ok(())
    }
    fn vcpus(&mut self, id: u16) -> Result<Vec<VcpuInfo>, CapError> {
        // The crashed domain vanishes between the listing and this call.
        let d = self.query(id).ok().filter(|d| d.domid != 3);
        let d = d.ok_or(CapError::Stale)?;
        Ok((0..d.vcpus)
            .map(|vcpu| VcpuInfo {
                vcpu,
                placement: protocol::control::VcpuPlacement {
                    pcpu: d.domid + vcpu,
                    priority: 1,
                    exclusive: d.name == "rtos",
                },
                state: protocol::control::VcpuState::Blocked,
                cpu_ticks: d.cpu_ticks,
                exits: d.exits,
                budget_us: (0, 0),
            })
            .collect())
    }
    fn xenstore(&mut self, op: &XenstoreOp) -> Result<Response, MgmtError> {
        match op {
            XenstoreOp::Read { path } if path.starts_with("/local/domain/2/cpu/") => Ok(
                Response::Xenstore(protocol::mgmt::XenstoreAnswer::Value(b"online".to_vec())),
            ),
            XenstoreOp::Read { .. } => Err(MgmtError::Refused {
                why: "ENOENT".into(),
            }),
            XenstoreOp::Write { path, value } => {
                self.writes.push((path.clone(), value.clone()));
                Ok(Response::Done)
            }
            _ => Err(MgmtError::BadRequest),
        }
    }
    fn counter_hz(&mut self) -> u64 {
        62_500_000
    }
    fn free_memory(&mut self) -> (u64, u64) {
        (1234, 512)
    }
    fn lock_holds(&mut self, reset: bool) -> Result<LockHolds, CapError> {
        let since_reset = self.calls.iter().any(|c| c.0 == "reset holds");
        if reset {
            self.calls.push(("reset holds", 0));
        }
        Ok(fake_holds(since_reset))
    }
    fn vbds(&mut self, id: u16) -> Result<Vec<protocol::mgmt::VbdRow>, MgmtError> {
        Ok((id == 2)
            .then(|| protocol::mgmt::VbdRow {
                frontend: 3,
                backend: 2,
                devid: 51712,
                vdev: "xvda".into(),
                disk: "bkd0".into(),
                read_only: false,
                backend_state: 4,
                frontend_state: 4,
                counters: None,
            })
            .into_iter()
            .collect())
    }
    fn uplink(&mut self, id: u16) -> Result<Option<protocol::mgmt::UplinkCounters>, MgmtError> {
        Ok((id == 2).then_some(protocol::mgmt::UplinkCounters {
            rx_frames: 7,
            ..Default::default()
        }))
    }
    fn vifs(&mut self, id: u16) -> Result<Vec<protocol::mgmt::VifRow>, MgmtError> {
        Ok((id == 2)
            .then(|| protocol::mgmt::VifRow {
                frontend: 3,
                backend: 2,
                devid: 0,
                mac: "00:16:3e:00:00:01".into(),
                bridge: "xenbr0".into(),
                backend_state: 4,
                frontend_state: 4,
                counters: None,
            })
            .into_iter()
            .collect())
    }
}

fn name(n: &str) -> DomainRef {
    DomainRef::Name(n.into())
}

fn err(r: Response) -> MgmtError {
    match r {
        Response::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn hello_checks_the_version() {
    let mut f = Fake::new();
    let hello = |version| Request::Hello { version };
    assert_eq!(
        serve(&hello(MGMT_VERSION), &mut f),
        Response::Hello {
            version: MGMT_VERSION
        }
    );
    let newer = Version {
        major: MGMT_VERSION.major,
        minor: MGMT_VERSION.minor + 1,
    };
    let other = Version {
        major: MGMT_VERSION.major + 1,
        minor: 0,
    };
    for v in [newer, other] {
        assert_eq!(
            err(serve(&hello(v), &mut f)),
            MgmtError::VersionMismatch { ours: MGMT_VERSION }
        );
    }
}

#[test]
fn a_session_token_is_echoed() {
    let mut f = Fake::new();
    for token in [0, 7, u64::MAX] {
        assert_eq!(
            serve(&Request::Session { token }, &mut f),
            Response::Session { token }
        );
    }
}

#[test]
fn lists_every_domain_in_id_order() {
    let mut f = Fake::new();
    let Response::Domains(rows) = serve(&Request::List, &mut f) else {
        panic!("not a listing");
    };
    let ids: Vec<_> = rows.iter().map(|r| (r.id, r.name.as_str())).collect();
    assert_eq!(ids, [(0, "dom0"), (1, "rtos"), (2, "smp"), (3, "crashy")]);
    assert_eq!(rows[1].cpu_ticks, 62_500_000);
    assert_eq!(serve(&Request::Top, &mut f), Response::Domains(rows));
}

#[test]
fn listing_skips_a_domain_that_vanished() {
    struct Vanishing(Fake);
    impl DomainOps for Vanishing {
        fn domains(&mut self) -> Vec<DomainEntry> {
            let mut d = self.0.domains();
            d.push(DomainEntry {
                name: "ghost".into(),
                id: 9,
                handle: None,
            });
            d
        }
        fn query(&mut self, id: u16) -> Result<DomainInfo, CapError> {
            self.0.query(id)
        }
        fn pause(&mut self, id: u16) -> Result<(), CapError> {
            self.0.pause(id)
        }
        fn unpause(&mut self, id: u16) -> Result<(), CapError> {
            self.0.unpause(id)
        }
        fn destroy(&mut self, id: u16) -> Result<(), CapError> {
            self.0.destroy(id)
        }
        fn restart(&mut self, id: u16) -> Result<(), CapError> {
            self.0.restart(id)
        }
        fn counter_hz(&mut self) -> u64 {
            1
        }
        fn free_memory(&mut self) -> (u64, u64) {
            (0, 0)
        }
    }
    let mut v = Vanishing(Fake::new());
    let Response::Domains(rows) = serve(&Request::List, &mut v) else {
        panic!("not a listing");
    };
    assert_eq!(rows.len(), 4);
    // Named but gone: unknown, not a capability error.
    assert_eq!(
        err(serve(
            &Request::Pause {
                domain: name("ghost")
            },
            &mut v
        )),
        MgmtError::UnknownDomain
    );
}

#[test]
fn info_describes_the_system() {
    let mut f = Fake::new();
    assert_eq!(
        serve(&Request::Info, &mut f),
        Response::System(SystemInfo {
            protocol_version: PROTOCOL_VERSION,
            counter_hz: 62_500_000,
            domains: 4,
            free_pages: 1234,
            largest_free_pages: 512,
        })
    );
}

/// What the fake microvisor's record holds: CPU 0 with a long capability call.
fn fake_holds(since_reset: bool) -> LockHolds {
    use protocol::control::CapOp;
    use protocol::lock_holds::{CpuHolds, Hold, Pass};
    LockHolds {
        cpus: vec![CpuHolds {
            cpu: 0,
            passes: 42,
            longest: Some(Hold {
                ns: 269_000,
                pass: Pass::capability_call(0, 0, CapOp::DomainCreate),
            }),
            by_reason: [3; protocol::lock_holds::Reason::COUNT],
            by_intid: [protocol::lock_holds::IntidPasses {
                intid: 78,
                passes: 3,
            }; protocol::lock_holds::TRACKED_INTIDS],
            longest_wait: None,
            waited_ns: 0,
        }],
        since_reset,
    }
}

#[test]
fn lock_holds_are_read_and_reset_on_request() {
    let mut f = Fake::new();
    let read = Request::LockHolds { reset: false };
    assert_eq!(serve(&read, &mut f), Response::LockHolds(fake_holds(false)));
    assert!(f.calls.is_empty(), "a read changes nothing");
    // A reset answers with what it read, then the record says it was reset.
    assert_eq!(
        serve(&Request::LockHolds { reset: true }, &mut f),
        Response::LockHolds(fake_holds(false))
    );
    assert_eq!(f.calls, [("reset holds", 0)]);
    assert_eq!(serve(&read, &mut f), Response::LockHolds(fake_holds(true)));
}

#[test]
fn the_prompts_info_adds_the_lock_holds() {
    let lines = crate::prompt::run("info", &mut Fake::new());
    assert_eq!(
        lines[1],
        "lock holds: 42 passes since boot, longest 269.0 us on cpu0: d0 vCPU0 exit ESR 0x5a000000 (capability call DomainCreate)"
    );
    let mut none = fake_holds(true);
    none.cpus[0].longest = None;
    assert_eq!(
        crate::prompt::holds_line(&none),
        "lock holds: 42 passes since reset"
    );
}

#[test]
fn resolves_by_name_and_id() {
    let mut f = Fake::new();
    assert_eq!(
        serve(
            &Request::Pause {
                domain: name("rtos")
            },
            &mut f
        ),
        Response::Done
    );
    assert_eq!(
        serve(
            &Request::Unpause {
                domain: DomainRef::Id(1)
            },
            &mut f
        ),
        Response::Done
    );
    assert_eq!(f.calls, [("pause", 1), ("unpause", 1)]);
    for domain in [name("nope"), DomainRef::Id(77), name("1")] {
        assert_eq!(
            err(serve(&Request::Destroy { domain }, &mut f)),
            MgmtError::UnknownDomain
        );
    }
    assert_eq!(f.calls.len(), 2);
}

#[test]
fn wrong_states_are_refused_before_calling() {
    let mut f = Fake::new();
    assert_eq!(
        err(serve(
            &Request::Unpause {
                domain: name("rtos")
            },
            &mut f
        )),
        MgmtError::WrongState {
            state: DomainState::Running
        }
    );
    assert_eq!(
        err(serve(
            &Request::Pause {
                domain: name("smp")
            },
            &mut f
        )),
        MgmtError::WrongState {
            state: DomainState::Paused
        }
    );
    let crashed = DomainState::Stopped(StopReason::Crashed { code: 9 });
    assert_eq!(
        err(serve(
            &Request::Pause {
                domain: name("crashy")
            },
            &mut f
        )),
        MgmtError::WrongState { state: crashed }
    );
    assert!(f.calls.is_empty());
    // Restart and destroy work whatever the state.
    assert_eq!(
        serve(
            &Request::Restart {
                domain: name("crashy")
            },
            &mut f
        ),
        Response::Done
    );
    assert_eq!(
        serve(
            &Request::Destroy {
                domain: name("smp")
            },
            &mut f
        ),
        Response::Done
    );
    assert_eq!(f.calls, [("restart", 3), ("destroy", 2)]);
    assert_eq!(
        err(serve(
            &Request::Destroy {
                domain: name("smp")
            },
            &mut f
        )),
        MgmtError::UnknownDomain
    );
}

#[test]
fn microvisor_refusals_are_reported() {
    let mut f = Fake::new();
    f.fail_next = Some(CapError::NoRights);
    assert_eq!(
        err(serve(
            &Request::Destroy {
                domain: name("rtos")
            },
            &mut f
        )),
        MgmtError::Capability(CapError::NoRights)
    );
    // A race: the microvisor says wrong state; we report the state it is in now.
    f.fail_next = Some(CapError::WrongState);
    assert_eq!(
        err(serve(
            &Request::Pause {
                domain: name("rtos")
            },
            &mut f
        )),
        MgmtError::WrongState {
            state: DomainState::Running
        }
    );
    f.fail_next = Some(CapError::Stale);
    assert_eq!(
        err(serve(
            &Request::Restart {
                domain: name("rtos")
            },
            &mut f
        )),
        MgmtError::UnknownDomain
    );
}

#[test]
fn dom0_is_protected() {
    let mut f = Fake::new();
    for domain in [name("dom0"), DomainRef::Id(0)] {
        for req in [
            Request::Pause {
                domain: domain.clone(),
            },
            Request::Unpause {
                domain: domain.clone(),
            },
            Request::Destroy {
                domain: domain.clone(),
            },
            Request::Restart {
                domain: domain.clone(),
            },
        ] {
            assert_eq!(
                err(serve(&req, &mut f)),
                MgmtError::Dom0Protected,
                "{req:?}"
            );
        }
    }
    assert!(f.calls.is_empty());
    assert_eq!(
        MgmtError::Dom0Protected.to_string(),
        "dom0 cannot be paused, destroyed or restarted: it runs the management service"
    );
}

#[test]
fn shutdown_and_reboot_ask_a_running_domain() {
    let mut f = Fake::new();
    let ok = serve(
        &Request::Shutdown {
            domain: name("rtos"),
        },
        &mut f,
    );
    assert_eq!(ok, Response::Done);
    assert_eq!(f.calls.last(), Some(&("shutdown", 1)));
    // smp is paused: a clean shutdown needs it running.
    assert!(matches!(
        err(serve(
            &Request::Reboot {
                domain: name("smp")
            },
            &mut f
        )),
        MgmtError::WrongState { .. }
    ));
    // An unknown domain is reported as such first; dom0 refuses.
    assert_eq!(
        err(serve(&Request::Reboot { domain: name("x") }, &mut f)),
        MgmtError::UnknownDomain
    );
    assert_eq!(
        err(serve(
            &Request::Shutdown {
                domain: name("dom0")
            },
            &mut f
        )),
        MgmtError::Dom0Protected
    );
}

#[test]
fn crash_faults_a_running_domain_only() {
    let mut f = Fake::new();
    let ok = serve(
        &Request::Crash {
            domain: name("rtos"),
        },
        &mut f,
    );
    assert_eq!(ok, Response::Done);
    assert_eq!(f.calls.last(), Some(&("crash", 1)));
    // Already crashed, or paused: refused before the microvisor is asked.
    for who in ["rtos", "smp"] {
        assert!(matches!(
            err(serve(&Request::Crash { domain: name(who) }, &mut f)),
            MgmtError::WrongState { .. }
        ));
    }
    assert_eq!(f.calls.len(), 1);
    assert_eq!(
        err(serve(
            &Request::Crash {
                domain: name("dom0")
            },
            &mut f
        )),
        MgmtError::Dom0Protected
    );
}

fn responses(bytes: &[u8]) -> Vec<Response> {
    FrameDecoder::new()
        .feed(bytes)
        .into_iter()
        .map(|f| decode(&f.unwrap()).unwrap())
        .collect()
}

#[test]
fn server_answers_frames_however_they_arrive() {
    let mut f = Fake::new();
    let mut s = Server::new();
    let mut stream = vec![0u8];
    stream.extend(
        encode(&Request::Hello {
            version: MGMT_VERSION,
        })
        .unwrap(),
    );
    stream.extend(
        encode(&Request::Pause {
            domain: name("rtos"),
        })
        .unwrap(),
    );
    stream.extend(encode(&Request::Info).unwrap());
    let mut out = Vec::new();
    for b in &stream {
        out.extend(s.input(&[*b], &mut f));
    }
    let got = responses(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], Response::Done);
    // All at once gives the same answers (the pause now meets a paused domain).
    let again = responses(&s.input(&stream, &mut f));
    assert_eq!(again[0], got[0]);
    assert_eq!(
        again[1],
        Response::Error(MgmtError::WrongState {
            state: DomainState::Paused
        })
    );
}

#[test]
fn server_answers_garbage_with_errors() {
    let mut f = Fake::new();
    let mut s = Server::new();
    let out = s.input(&[2, 99, 0, 5, 1, 0], &mut f);
    assert_eq!(
        responses(&out),
        [
            Response::Error(MgmtError::BadRequest),
            Response::Error(MgmtError::BadRequest)
        ]
    );
    let mut big = vec![7u8; MAX_FRAME + 10];
    big.push(0);
    big.extend(encode(&Request::List).unwrap());
    let got = responses(&s.input(&big, &mut f));
    assert_eq!(
        got[0],
        Response::Error(MgmtError::from(FrameError::TooLarge))
    );
    assert!(matches!(got[1], Response::Domains(_)));
    // A partial request is forgotten on reset.
    assert!(s.input(&[3, 1], &mut f).is_empty());
    s.reset();
    assert_eq!(
        responses(&s.input(&encode(&Request::Top).unwrap(), &mut f)).len(),
        1
    );
}

#[test]
fn vbds_are_asked_of_the_named_domain() {
    let mut f = Fake::new();
    let rows = |r: Response| match r {
        Response::Vbds(v) => v,
        other => panic!("expected vbds, got {other:?}"),
    };
    let id2 = f
        .doms
        .iter()
        .find(|d| d.domid == 2)
        .map(|d| d.name.clone())
        .unwrap();
    let got = rows(serve(&Request::Vbds { domain: name(&id2) }, &mut f));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].frontend, got[0].devid), (3, 51712));
    assert_eq!(
        err(serve(
            &Request::Vbds {
                domain: name("nosuch")
            },
            &mut f
        )),
        MgmtError::UnknownDomain
    );
}

#[test]
fn vifs_are_asked_of_the_named_domain() {
    let mut f = Fake::new();
    let rows = |r: Response| match r {
        Response::Vifs(v) => v,
        other => panic!("expected vifs, got {other:?}"),
    };
    let got = rows(serve(
        &Request::Vifs {
            domain: DomainRef::Id(2),
        },
        &mut f,
    ));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].frontend, got[0].devid), (3, 0));
    assert!(rows(serve(
        &Request::Vifs {
            domain: DomainRef::Id(0),
        },
        &mut f,
    ))
    .is_empty());
    assert_eq!(
        err(serve(
            &Request::Vifs {
                domain: name("nosuch")
            },
            &mut f
        )),
        MgmtError::UnknownDomain
    );
}

#[test]
fn uplink_counters_are_asked_of_the_named_domain() {
    let mut f = Fake::new();
    let ask = |f: &mut Fake, domain| serve(&Request::Uplink { domain }, f);
    match ask(&mut f, DomainRef::Id(2)) {
        Response::Uplink(Some(c)) => assert_eq!(c.rx_frames, 7),
        other => panic!("expected the backend's counters, got {other:?}"),
    }
    // A domain that is no network backend has none; an unknown one is an error.
    assert_eq!(ask(&mut f, DomainRef::Id(0)), Response::Uplink(None));
    assert_eq!(err(ask(&mut f, name("nosuch"))), MgmtError::UnknownDomain);
}

#[test]
fn vcpus_of_one_or_every_domain() {
    let mut f = Fake::new();
    f.doms[0].vcpus = 2;
    let rows = |r: Response| match r {
        Response::Vcpus(v) => v,
        other => panic!("expected vcpus, got {other:?}"),
    };
    // Every domain in id order, vCPUs in index order; the one that vanished is left out.
    let all = rows(serve(&Request::Vcpus { domain: None }, &mut f));
    let got: Vec<(u16, u16, u16)> = all.iter().map(|r| (r.id, r.vcpu, r.pcpu)).collect();
    assert_eq!(got, vec![(0, 0, 0), (1, 0, 1), (2, 0, 2), (2, 1, 3)]);
    assert!(all[1].exclusive && all[1].name == "rtos");
    // One domain by name; a domain that cannot answer is an error when asked for.
    let smp = rows(serve(
        &Request::Vcpus {
            domain: Some(name("smp")),
        },
        &mut f,
    ));
    assert_eq!(smp.len(), 2);
    assert_eq!(
        err(serve(
            &Request::Vcpus {
                domain: Some(name("crashy"))
            },
            &mut f
        )),
        MgmtError::from(CapError::Stale)
    );
    assert_eq!(
        err(serve(
            &Request::Vcpus {
                domain: Some(name("nosuch"))
            },
            &mut f
        )),
        MgmtError::UnknownDomain
    );
}

#[test]
fn vcpu_pin_keeps_the_priority_and_refuses_what_cannot_move() {
    let mut f = Fake::new();
    f.doms[0].vcpus = 2;
    let pin = |domain: &str, vcpu, pcpu, priority| Request::VcpuPin {
        domain: name(domain),
        vcpu,
        pcpu,
        priority,
    };
    assert_eq!(serve(&pin("smp", 1, 2, None), &mut f), Response::Done);
    assert_eq!(serve(&pin("smp", 0, 3, Some(7)), &mut f), Response::Done);
    assert_eq!(f.pins, vec![(1, 2, 1), (0, 3, 7)]);
    let refused = |r: Response| match err(r) {
        MgmtError::Refused { why } => why,
        other => panic!("{other:?}"),
    };
    // A vCPU that does not exist, dom0: refused before the microvisor.
    assert!(refused(serve(&pin("smp", 5, 2, None), &mut f)).contains("no vCPU 5"));
    assert_eq!(
        err(serve(&pin("dom0", 0, 1, None), &mut f)),
        MgmtError::Dom0Protected
    );
    // The microvisor's refusals, in words.
    f.fail_next = Some(CapError::CpuUnavailable);
    assert!(refused(serve(&pin("smp", 1, 1, None), &mut f)).contains("pCPU 1 does not exist"));
    f.fail_next = Some(CapError::WrongState);
    assert!(refused(serve(&pin("smp", 1, 3, None), &mut f)).contains("passthrough devices"));
    // An exclusive vCPU moves too, to an unused pCPU; onto one in use, in its own words.
    assert_eq!(serve(&pin("rtos", 0, 3, None), &mut f), Response::Done);
    f.fail_next = Some(CapError::CpuUnavailable);
    let why = refused(serve(&pin("rtos", 0, 2, None), &mut f));
    assert!(
        why.contains("pCPU 2 does not exist or is in use") && why.contains("exclusively"),
        "{why}"
    );
    assert_eq!(f.pins.len(), 3);
}

#[test]
fn vcpu_budget_is_checked_and_refused_for_exclusive_vcpus() {
    let mut f = Fake::new();
    f.doms[0].vcpus = 2;
    let set = |domain: &str, vcpu, budget_us, period_us| Request::VcpuBudget {
        domain: name(domain),
        vcpu,
        budget_us,
        period_us,
    };
    assert_eq!(serve(&set("smp", 1, 2_000, 10_000), &mut f), Response::Done);
    assert_eq!(serve(&set("smp", 0, 0, 0), &mut f), Response::Done);
    assert_eq!(f.budgets, vec![(1, (2_000, 10_000)), (0, (0, 0))]);
    let refused = |r: Response| match err(r) {
        MgmtError::Refused { why } => why,
        other => panic!("{other:?}"),
    };
    for (b, p) in [
        (20_000, 10_000),
        (50, 10_000),
        (0, 10_000),
        (1_000, 20_000_000),
    ] {
        let why = refused(serve(&set("smp", 0, b, p), &mut f));
        assert!(why.contains("100 <= budget <= period <= 10000000"), "{why}");
    }
    assert!(refused(serve(&set("rtos", 0, 2_000, 10_000), &mut f)).contains("exclusively"));
    assert!(refused(serve(&set("smp", 4, 2_000, 10_000), &mut f)).contains("no vCPU 4"));
    assert_eq!(
        err(serve(&set("dom0", 0, 2_000, 10_000), &mut f)),
        MgmtError::Dom0Protected
    );
    f.fail_next = Some(CapError::WrongState);
    assert!(refused(serve(&set("smp", 1, 2_000, 10_000), &mut f)).contains("exclusive"));
    assert_eq!(f.budgets.len(), 2);
}

#[test]
fn vcpu_set_writes_each_availability_node() {
    let mut f = Fake::new();
    f.doms[0].vcpus = 3;
    let set = |f: &mut Fake, who: &str, online: u16| {
        serve(
            &Request::VcpuSet {
                domain: name(who),
                online,
            },
            f,
        )
    };
    assert_eq!(set(&mut f, "smp", 1), Response::Done);
    let got: Vec<(&str, &[u8])> = f
        .writes
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("/local/domain/2/cpu/0/availability", &b"online"[..]),
            ("/local/domain/2/cpu/1/availability", &b"offline"[..]),
            ("/local/domain/2/cpu/2/availability", &b"offline"[..]),
        ]
    );
    // Out of range, dom0, and a domain nobody watches the nodes of: refused, nothing written.
    f.writes.clear();
    for bad in [0, 4] {
        assert!(matches!(
            err(set(&mut f, "smp", bad)),
            MgmtError::Refused { .. }
        ));
    }
    assert_eq!(err(set(&mut f, "dom0", 1)), MgmtError::Dom0Protected);
    assert!(matches!(
        err(set(&mut f, "rtos", 1)),
        MgmtError::NotSupported { .. }
    ));
    assert!(f.writes.is_empty());
}
