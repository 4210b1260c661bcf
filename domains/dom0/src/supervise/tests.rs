//! The supervision policies: actions, backoff, the crash-loop hold, stale handles.

use super::*;

const HZ: u64 = 1000; // 1 tick = 1 ms

fn handle(generation: u32) -> CapHandle {
    CapHandle {
        index: 4,
        generation,
    }
}

fn crashed() -> DomainState {
    DomainState::Stopped(StopReason::Crashed { code: 0xdead })
}

fn sup(policy: Policy) -> Supervisor {
    let mut s = Supervisor::new(Limits::for_hz(HZ));
    s.watch("crashy", 3, handle(1), DomainState::Running, policy);
    s
}

fn restart_all() -> Policy {
    Policy {
        on_poweroff: Action::Restart,
        on_reboot: Action::Restart,
        on_crash: Action::Restart,
    }
}

#[test]
fn backoff_doubles_to_a_cap() {
    let l = Limits::for_hz(HZ);
    let got: Vec<u64> = (0..9).map(|k| l.backoff(k)).collect();
    assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    assert_eq!(l.backoff(usize::MAX), 5000);
    assert_eq!(Limits::for_hz(62_500_000).backoff(0), 6_250_000);
}

#[test]
fn only_a_crash_loop_waits() {
    let l = Limits::for_hz(HZ);
    // The first crash in the window, or the crash of an incarnation that proved itself:
    // at once, however many restarts the window holds.
    assert_eq!(l.crash_delay(0, false), 0);
    assert_eq!(l.crash_delay(0, true), 0);
    assert_eq!(l.crash_delay(2, true), 0);
    // Dying again before proving itself: the backoff, from its first step.
    assert_eq!(l.crash_delay(1, false), 100);
    assert_eq!(l.crash_delay(2, false), 200);
    assert_eq!(l.crash_delay(3, false), 400);
    assert_eq!(l.crash_delay(usize::MAX, false), 5000);
}

#[test]
fn policies_pick_the_action() {
    let p = Policy::XL_DEFAULT;
    assert_eq!(p.action(&StopReason::PowerOff), Action::Destroy);
    assert_eq!(p.action(&StopReason::Reboot), Action::Restart);
    assert_eq!(
        p.action(&StopReason::Stage2Fault { ipa: 0, esr: 0 }),
        Action::Destroy
    );
    let p = Policy {
        on_crash: Action::Preserve,
        ..Policy::XL_DEFAULT
    };
    assert_eq!(
        p.action(&StopReason::UnhandledTrap { esr: 0, pc: 0 }),
        Action::Preserve
    );
    assert_eq!(p.action(&StopReason::Crashed { code: 1 }), Action::Preserve);
}

#[test]
fn destroy_and_preserve() {
    let mut s = sup(Policy::XL_DEFAULT);
    let (line, cmd) = s.observe(0, Ok(DomainState::Stopped(StopReason::PowerOff)), 5);
    assert_eq!(line.as_deref(), Some("crashy (d3): powered off -> destroy"));
    assert_eq!(cmd, Some(Command::Destroy(0)));
    assert_eq!(s.destroyed(0, Ok(())), None);
    // Gone: no longer observed nor flagged.
    assert_eq!(s.observe(0, Err(CapError::Stale), 6), (None, None));
    assert!(s.changed(u64::MAX).is_empty());

    let mut s = sup(Policy {
        on_crash: Action::Preserve,
        ..Policy::XL_DEFAULT
    });
    let fault = DomainState::Stopped(StopReason::Stage2Fault {
        ipa: 0x4500_0000,
        esr: 0x9200_0007,
    });
    let (line, cmd) = s.observe(0, Ok(fault), 5);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): stage-2 fault at 0x45000000 (esr 0x92000007) -> preserve")
    );
    assert_eq!(cmd, None);
    // The same state again (the safety poll) does nothing.
    assert_eq!(s.observe(0, Ok(fault), 600), (None, None));
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn destroy_failure_is_reported_and_held() {
    let mut s = sup(Policy::XL_DEFAULT);
    s.observe(0, Ok(crashed()), 0);
    assert_eq!(
        s.destroyed(0, Err(CapError::NoRights)).as_deref(),
        Some("crashy (d3): destroy failed: capability lacks the needed rights")
    );
    assert_eq!(s.changed(1 << 3), [0]);
}

#[test]
fn restart_with_backoff_then_crash_loop_hold() {
    let mut s = sup(restart_all());
    let mut now = 1_000;
    let mut lines = Vec::new();
    for gen in 2..=4 {
        let (line, cmd) = s.observe(0, Ok(crashed()), now);
        lines.push(line.unwrap());
        assert_eq!(cmd, None);
        let at = s.next_deadline().unwrap();
        if at > now {
            assert!(s.due(at - 1).is_empty(), "not before the backoff");
        }
        assert_eq!(s.due(at), [0]);
        now = at;
        let (line, old) = s.restarted(0, Ok(handle(gen)), now);
        lines.push(line);
        // Until the microvisor has rebuilt it, the new handle is stale: not an error.
        assert_eq!(s.observe(0, Err(CapError::Stale), now), (None, None));
        assert_eq!(
            s.observe(0, Ok(DomainState::Running), now + 1),
            (None, None)
        );
        assert_eq!(old, Some(handle(gen - 1)));
        assert_eq!(s.domains()[0].handle, handle(gen));
        assert_eq!(s.domains()[0].domid, 3, "same domain id");
        now += 10; // it crashes again 10 ms later
    }
    let (line, cmd) = s.observe(0, Ok(crashed()), now);
    lines.push(line.unwrap());
    assert_eq!(cmd, None);
    assert_eq!(s.next_deadline(), None, "held: no restart pending");
    assert_eq!(
        lines,
        [
            "crashy (d3): crashed (code 0xdead) -> restart in 0 ms",
            "crashy (d3): restarted (restart 1, 1 within 30 s)",
            "crashy (d3): crashed (code 0xdead) -> restart in 100 ms",
            "crashy (d3): restarted (restart 2, 2 within 30 s)",
            "crashy (d3): crashed (code 0xdead) -> restart in 200 ms",
            "crashy (d3): restarted (restart 3, 3 within 30 s)",
            "crashy (d3): crash loop, held after 3 restarts",
        ]
    );
    // Held: later polls and events change nothing.
    assert_eq!(s.observe(0, Ok(crashed()), now + 60_000), (None, None));
    assert_eq!(s.next_deadline(), None);
    assert!(s.domains()[0].is_held());
    // dom0 closed the connections it served: said once, and shown with why it is held.
    assert_eq!(
        s.backends_closed(3, 2).as_deref(),
        Some("crashy (d3): 2 guest connection(s) closed (its frontends see it go)")
    );
    assert_eq!(s.backends_closed(3, 0), None);
    let held = s.domains()[0].health_row(now, HZ).held.unwrap();
    assert_eq!(
        held,
        "crash loop: 3 restarts within 30 s, then crash: panic; \
         2 guest connection(s) closed"
    );
    // A user's restart gives it a new life.
    s.restarted(0, Ok(handle(9)), now + 70_000);
    assert!(!s.domains()[0].is_held());
    assert_eq!(s.domains()[0].health_row(now, HZ).held, None);
}

/// A domain that comes up and serves, then crashes, is restarted at once every time (its
/// guests wait only for the restart itself), and the crash-loop hold still stops it after
/// 3 restarts within 30 s.
#[test]
fn a_proven_incarnation_restarts_at_once_until_the_hold() {
    let mut s = sup(restart_all());
    let mut now = 5_000;
    for gen in 2..=4 {
        let (line, _) = s.observe(0, Ok(crashed()), now);
        assert_eq!(
            line.as_deref(),
            Some("crashy (d3): crashed (code 0xdead) -> restart in 0 ms")
        );
        assert_eq!(s.next_deadline(), Some(now));
        assert_eq!(s.due(now), [0], "due at once");
        s.restarted(0, Ok(handle(gen)), now);
        s.observe(0, Ok(DomainState::Running), now + 1);
        now += 1_000; // it served for 1 s (`settle`) before crashing again
    }
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crash loop, held after 3 restarts")
    );
    assert!(s.domains()[0].is_held());
}

/// A domain's own `crash_limit` replaces the default: 10 proven crashes within its 60 s
/// window restart it, the 11th holds it and says so with its window; a second domain
/// watched later keeps the default.
#[test]
fn a_domain_crash_limit_replaces_the_default() {
    let mut s = sup(restart_all());
    assert!(!s.limit_crashes(10, 0), "an empty window is refused");
    assert!(s.limit_crashes(10, 60_000));
    s.watch("other", 4, handle(1), DomainState::Running, restart_all());
    let mut now = 5_000;
    for gen in 2..=11 {
        let (line, _) = s.observe(0, Ok(crashed()), now);
        assert!(line.unwrap().ends_with("-> restart in 0 ms"), "crash {gen}");
        let (line, _) = s.restarted(0, Ok(handle(gen)), now);
        assert!(
            line.ends_with(&format!("{} within 60 s)", gen - 1)),
            "{line}"
        );
        s.observe(0, Ok(DomainState::Running), now + 1);
        now += 1_000;
    }
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crash loop, held after 10 restarts")
    );
    let held = s.domains()[0].health().held.clone().unwrap();
    assert!(
        held.starts_with("crash loop: 10 restarts within 60 s"),
        "{held}"
    );
    // The other domain is held after the default 3.
    for gen in 2..=4 {
        s.observe(1, Ok(crashed()), now);
        s.restarted(1, Ok(handle(gen)), now);
        s.observe(1, Ok(DomainState::Running), now + 1);
        now += 1_000;
    }
    let (line, _) = s.observe(1, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("other (d4): crash loop, held after 3 restarts")
    );
}

/// A limit of 0 holds a domain at its first crash.
#[test]
fn a_zero_crash_limit_holds_at_the_first_crash() {
    let mut s = sup(restart_all());
    assert!(s.limit_crashes(0, 30_000));
    let (line, _) = s.observe(0, Ok(crashed()), 5_000);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crash loop, held after 0 restarts")
    );
    assert!(s.domains()[0].is_held());
}

/// With a watchdog, the first heartbeat proves an incarnation at once (no need to wait
/// for `settle`); one that crashes before its first beat backs off.
#[test]
fn the_first_heartbeat_proves_an_incarnation() {
    let mut s = sup(restart_all());
    s.guard(10_000, 60_000, 1_000, 0);
    let beats = |count, first, last| Beats { count, first, last };
    let mut now = 1_000;
    s.observe(0, Ok(crashed()), now);
    s.restarted(0, Ok(handle(2)), now);
    s.observe(0, Ok(DomainState::Running), now);
    // Its first beat, 50 ms after the restart.
    now += 50;
    let (line, _) = s.beats(0, Ok((beats(1, now, now), 7)), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): ready, recovered in 50 ms")
    );
    now += 10;
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crashed (code 0xdead) -> restart in 0 ms")
    );
    s.restarted(0, Ok(handle(3)), now);
    s.observe(0, Ok(DomainState::Running), now);
    // This one dies 10 ms after its start, before any beat: a crash loop.
    now += 10;
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crashed (code 0xdead) -> restart in 200 ms")
    );
}

/// A beat dom0's periodic reading (twice a second) had not seen yet still proves the
/// incarnation: dom0 reads the beats of a stopped domain before judging its stop.
#[test]
fn beats_read_at_the_stop_prove_an_incarnation() {
    let mut s = sup(restart_all());
    s.guard(10_000, 60_000, 1_000, 0);
    let beats = |count, first, last| Beats { count, first, last };
    let mut now = 1_000;
    s.observe(0, Ok(crashed()), now);
    s.restarted(0, Ok(handle(2)), now);
    s.observe(0, Ok(DomainState::Running), now);
    // It beats 20 ms after its start and dies 10 ms later.
    now += 20;
    let first = now;
    now += 10;
    assert_eq!(
        s.final_beats(0, Ok(beats(1, first, first))).as_deref(),
        Some("crashy (d3): ready, recovered in 20 ms")
    );
    assert_eq!(s.final_beats(0, Ok(beats(2, first, now))), None, "once");
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crashed (code 0xdead) -> restart in 0 ms")
    );
    s.restarted(0, Ok(handle(3)), now);
    s.observe(0, Ok(DomainState::Running), now);
    // This one never beat: a crash loop.
    now += 10;
    assert_eq!(s.final_beats(0, Ok(Beats::default())), None);
    assert_eq!(s.final_beats(0, Err(CapError::Stale)), None);
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crashed (code 0xdead) -> restart in 200 ms")
    );
}

#[test]
fn a_user_restart_never_waits_and_clears_a_pending_backoff() {
    let mut s = sup(restart_all());
    s.observe(0, Ok(crashed()), 1_000);
    s.restarted(0, Ok(handle(2)), 1_000);
    s.observe(0, Ok(DomainState::Running), 1_001);
    s.observe(0, Ok(crashed()), 1_010);
    assert_eq!(s.next_deadline(), Some(1_110), "a crash loop waits");
    // `ctl restart` (the management service calls `restarted` at once).
    let (line, _) = s.restarted(0, Ok(handle(3)), 1_020);
    assert!(
        line.starts_with("crashy (d3): restarted (restart 2"),
        "{line}"
    );
    assert_eq!(s.next_deadline(), None, "nothing left pending");
}

#[test]
fn the_window_slides() {
    let mut s = sup(restart_all());
    let mut now = 0;
    // Three restarts 20 s apart never hit the limit: at most two are within 30 s.
    for gen in 2..=6 {
        let (line, _) = s.observe(0, Ok(crashed()), now);
        let line = line.unwrap();
        assert!(line.contains("-> restart in"), "{line}");
        now = s.next_deadline().unwrap();
        s.restarted(0, Ok(handle(gen)), now);
        now += 20_000;
    }
}

/// ux review: reboots (the guest's own, or `ctl reboot`) and a user's `ctl restart` are
/// not crashes; six of each within 30 s never hold the domain, and do not bring a crash
/// closer to the hold either.
#[test]
fn only_crashes_count_toward_the_hold() {
    let mut s = sup(restart_all());
    let reboot = DomainState::Stopped(StopReason::Reboot);
    let mut now = 0;
    for gen in 2..=7 {
        let (line, _) = s.observe(0, Ok(reboot), now);
        assert!(line.unwrap().contains("-> restart in 100 ms"));
        now = s.next_deadline().unwrap();
        s.restarted(0, Ok(handle(gen)), now);
        s.observe(0, Ok(DomainState::Running), now);
    }
    for gen in 8..=13 {
        now += 1_000;
        let (line, _) = s.restarted(0, Ok(handle(gen)), now);
        let want = format!("(restart {}, 0 within 30 s)", gen - 1);
        assert!(line.ends_with(&want), "{line}");
    }
    s.observe(0, Ok(DomainState::Running), now);
    // Crashes still count, from zero.
    for gen in 14..=16 {
        let (line, _) = s.observe(0, Ok(crashed()), now);
        assert!(line.unwrap().contains("-> restart in"));
        now = s.next_deadline().unwrap();
        s.restarted(0, Ok(handle(gen)), now);
    }
    let (line, _) = s.observe(0, Ok(crashed()), now);
    assert_eq!(
        line.as_deref(),
        Some("crashy (d3): crash loop, held after 3 restarts")
    );
}

#[test]
fn failed_restart_holds() {
    let mut s = sup(restart_all());
    s.observe(0, Ok(crashed()), 0);
    let (line, old) = s.restarted(0, Err(CapError::UnknownCall), 100);
    assert_eq!(
        line,
        "crashy (d3): restart failed: unknown capability-protocol operation; held"
    );
    assert_eq!(old, None);
    assert_eq!(s.domains()[0].handle, handle(1));
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn other_changes_and_query_errors_once() {
    let mut s = sup(Policy::XL_DEFAULT);
    assert_eq!(s.observe(0, Ok(DomainState::Running), 0), (None, None));
    assert_eq!(
        s.observe(0, Ok(DomainState::Paused), 0).0.as_deref(),
        Some("crashy (d3): running -> paused")
    );
    assert_eq!(
        s.observe(0, Err(CapError::Stale), 0).0.as_deref(),
        Some("crashy (d3): query failed: stale handle: the object was destroyed or replaced")
    );
    assert_eq!(s.observe(0, Err(CapError::Stale), 0), (None, None));
    assert_eq!(s.observe(9, Ok(DomainState::Running), 0), (None, None));
    assert_eq!(
        state_text(&DomainState::Stopped(StopReason::PowerOff)),
        "stopped: powered off"
    );
}

#[test]
fn event_masks_select_domains() {
    let mut s = sup(Policy::XL_DEFAULT);
    s.watch("b", 5, handle(1), DomainState::Running, Policy::XL_DEFAULT);
    s.watch(
        "far",
        70,
        handle(1),
        DomainState::Running,
        Policy::XL_DEFAULT,
    );
    assert_eq!(s.changed(0), Vec::<usize>::new());
    assert_eq!(s.changed(1 << 5), [1]);
    assert_eq!(s.changed(u64::MAX), [0, 1], "ids past 63 are only polled");
}

#[test]
fn stale_self_check() {
    let mut s = sup(restart_all());
    let stale: Result<(), CapError> = Err(CapError::Stale);
    assert_eq!(
        s.stale_check(0, &stale).as_deref(),
        Some("old handle of crashy is stale: ok")
    );
    assert_eq!(s.stale_check(0, &stale), None, "reported once");
    assert_eq!(
        s.stale_check(0, &Ok(())).as_deref(),
        Some("old handle of crashy still works: FAIL")
    );
    assert_eq!(
        s.stale_check::<()>(0, &Err(CapError::InvalidHandle))
            .as_deref(),
        Some("old handle of crashy: no capability at that handle: FAIL")
    );
}

#[test]
fn repins_move_the_exclusive_pcpus_until_a_restart() {
    use protocol::control::VcpuPlacement;
    let at = |pcpu, exclusive| VcpuPlacement {
        pcpu,
        priority: 10,
        exclusive,
    };
    let mut s = sup(restart_all());
    s.placed(&[at(1, true), at(2, false)]);
    assert_eq!(s.exclusive_pcpus(), [1]);
    s.repinned(0, 0, at(3, true));
    s.repinned(0, 1, at(1, false));
    assert_eq!(s.exclusive_pcpus(), [3]);
    assert_eq!(s.domains()[0].placement, [at(3, true), at(1, false)]);
    // Out of range: nothing.
    s.repinned(0, 7, at(2, true));
    s.repinned(5, 0, at(2, true));
    assert_eq!(s.exclusive_pcpus(), [3]);
    // A restart in place rebuilds it where it was configured.
    let (_, old) = s.restarted(0, Ok(handle(2)), 10);
    assert_eq!(old, Some(handle(1)));
    assert_eq!(s.exclusive_pcpus(), [1]);
}
