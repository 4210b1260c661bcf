//! The watchdog state machine and the restart record, alone and driven through the
//! supervisor (beats, a missed beat, the first-beat grace, the reason recorded).

use super::*;
use crate::supervise::{Limits, Policy, Supervisor};
use protocol::cap::CapHandle;
use protocol::control::{CapError, DomainState};
use protocol::manifest::Action;

const HZ: u64 = 1000; // 1 tick = 1 ms

fn beats(count: u64, first: u64, last: u64) -> Beats {
    Beats { count, first, last }
}

/// dom0's reading period in these tests, and the most silence one reading adds.
const POLL: u64 = 500;
const STEP: u64 = 1_000;

/// Reads `b` every [`POLL`] from `from` (exclusive) to `to` (inclusive); the first verdict
/// that is not quiet, and when.
fn poll(w: &mut Watchdog, b: Beats, from: u64, to: u64) -> Option<(u64, Check)> {
    let mut t = from;
    while t < to {
        t = (t + POLL).min(to);
        match w.check(b, true, t) {
            Check::Quiet => {}
            other => return Some((t, other)),
        }
    }
    None
}

#[test]
fn steady_beats_keep_it_quiet_and_silence_fires_once() {
    let mut w = Watchdog::new(10_000, 60_000, STEP, 0);
    assert_eq!(poll(&mut w, beats(0, 0, 0), 0, 5_000), None, "booting");
    assert_eq!(
        w.check(beats(1, 5_200, 5_200), true, 5_500),
        Check::FirstBeat { at: 5_200 }
    );
    // Beating every second for a while: quiet.
    let mut t = 5_500;
    for n in 2..19 {
        let b = beats(n, 5_200, t - 100);
        assert_eq!(poll(&mut w, b, t, t + 1_000), None);
        t += 1_000;
    }
    // A last beat, then silence, with dom0 reading twice a second: caught once the silence
    // passes the timeout, at the first reading after it.
    let last = t + 200;
    assert_eq!(w.check(beats(19, 5_200, last), true, t + 300), Check::Quiet);
    let got = poll(&mut w, beats(19, 5_200, last), t + 300, t + 60_000);
    assert_eq!(got, Some((t + 10_300, Check::Missed { silent: 10_100 })));
    assert_eq!(w.last_beat(), last);
    // Fired: it waits for the restart instead of firing again.
    assert_eq!(
        poll(&mut w, beats(19, 5_200, last), t + 10_000, t + 90_000),
        None
    );
}

#[test]
fn a_starved_machine_is_not_a_hung_domain() {
    let mut w = Watchdog::new(10_000, 60_000, STEP, 0);
    w.check(beats(1, 1_000, 1_000), true, 1_000);
    // The host did not run the machine (dom0 included) for 30 s, then dom0 reads again:
    // the gap counts as one step, not as 30 s of silence.
    assert_eq!(w.check(beats(1, 1_000, 1_000), true, 31_000), Check::Quiet);
    assert_eq!(w.check(beats(2, 1_000, 31_400), true, 31_500), Check::Quiet);
    // Dom0 starved again and again, the domain silent meanwhile: each late reading adds
    // one step, so it takes ten of them.
    let mut t = 31_500;
    for _ in 0..9 {
        t += 20_000;
        assert_eq!(w.check(beats(2, 1_000, 31_400), true, t), Check::Quiet);
    }
    t += 20_000;
    assert_eq!(
        w.check(beats(2, 1_000, 31_400), true, t),
        Check::Missed { silent: 10_100 }
    );
}

#[test]
fn a_domain_that_did_not_run_is_judged_four_times_slower() {
    let mut w = Watchdog::new(10_000, 60_000, STEP, 0);
    w.check(beats(1, 1_000, 1_000), true, 1_000);
    // Blocked or left unscheduled: a quarter of each step counts.
    let mut t = 1_000;
    while t < 41_000 {
        t += POLL;
        assert_eq!(
            w.check(beats(1, 1_000, 1_000), false, t),
            Check::Quiet,
            "{t}"
        );
    }
    t += POLL;
    assert_eq!(
        w.check(beats(1, 1_000, 1_000), false, t),
        Check::Missed { silent: 10_125 }
    );
    // Running without beating counts in full.
    let mut w = Watchdog::new(10_000, 60_000, STEP, 0);
    w.check(beats(1, 1_000, 1_000), true, 1_000);
    assert_eq!(
        poll(&mut w, beats(1, 1_000, 1_000), 1_000, 20_000),
        Some((11_500, Check::Missed { silent: 10_500 }))
    );
}

#[test]
fn the_first_beat_gets_a_longer_grace() {
    let mut w = Watchdog::new(10_000, 60_000, STEP, 1_000);
    // Well past one timeout without a first beat: still within the grace.
    assert_eq!(poll(&mut w, Beats::default(), 1_000, 61_000), None);
    assert_eq!(
        poll(&mut w, Beats::default(), 61_000, 70_000),
        Some((61_500, Check::Missed { silent: 60_500 }))
    );
    // A restart re-arms it: a new incarnation, silent again, with a fresh grace.
    w.restarted(70_000);
    assert_eq!(poll(&mut w, Beats::default(), 70_000, 100_000), None);
    assert_eq!(
        w.check(beats(1, 100_300, 100_300), true, 100_500),
        Check::FirstBeat { at: 100_300 }
    );
}

#[test]
fn a_pause_does_not_count_as_silence() {
    let mut w = Watchdog::new(10_000, 60_000, STEP, 0);
    w.check(beats(1, 1_000, 1_000), true, 1_000);
    // Paused from 2 s to 30 s (not judged meanwhile), then resumed.
    w.resumed(30_000);
    assert_eq!(poll(&mut w, beats(1, 1_000, 1_000), 30_000, 40_000), None);
    assert_eq!(
        w.check(beats(1, 1_000, 1_000), true, 40_500),
        Check::Missed { silent: 10_500 }
    );
}

#[test]
fn the_record_measures_recovery_from_the_decision_to_the_first_beat() {
    let mut h = Health {
        watchdog: Some(Watchdog::new(10_000, 60_000, STEP, 0)),
        ..Health::default()
    };
    assert_eq!(h.record(5, HZ), None);
    h.decided(RestartReason::Watchdog { silent_ms: 10_400 }, 20_000);
    h.restarted(20_100);
    let r = h.record(21_000, HZ).unwrap();
    assert_eq!(r.reason, RestartReason::Watchdog { silent_ms: 10_400 });
    assert_eq!((r.ago_ms, r.recovery_ms), (1_000, None));
    h.first_beat(23_500);
    h.first_beat(99_999); // only the first counts
    assert_eq!(h.record(24_000, HZ).unwrap().recovery_ms, Some(3_500));
    // A user's restart carries no pending reason.
    h.restarted(30_000);
    let r = h.record(30_000, HZ).unwrap();
    assert_eq!((r.reason, r.recovery_ms), (RestartReason::User, None));
}

/// Reads `b` for domain 0 every [`POLL`] after `from` until the supervisor has something
/// to say (at most 200 s): when, the line and the command.
fn until_said(
    s: &mut Supervisor,
    b: Beats,
    from: u64,
) -> (u64, String, Option<crate::supervise::Command>) {
    let mut t = from;
    while t < from + 200_000 {
        t += POLL;
        if let (Some(line), cmd) = s.beats(0, Ok((b, t)), t) {
            return (t, line, cmd);
        }
    }
    panic!("nothing said in 200 s");
}

fn watched(on_crash: Action) -> Supervisor {
    let mut s = Supervisor::new(Limits::for_hz(HZ));
    let policy = Policy {
        on_crash,
        ..Policy::XL_DEFAULT
    };
    let h = CapHandle {
        index: 4,
        generation: 1,
    };
    s.watch("blkdom", 1, h, DomainState::Running, policy);
    s.guard(10_000, 60_000, STEP, 0);
    s
}

#[test]
fn a_silent_domain_restarts_with_reason_watchdog_and_reports_recovery() {
    let mut s = watched(Action::Restart);
    assert_eq!(s.beat_watch(), [0]);
    assert_eq!(
        s.beats(0, Ok((beats(1, 4_000, 4_000), 4_100)), 4_100),
        (None, None),
        "the first boot's first beat has no recovery to report"
    );
    assert_eq!(
        s.beats(0, Ok((beats(5, 4_000, 8_000), 9_000)), 9_000),
        (None, None)
    );
    // A failed reading (e.g. mid-restart) changes nothing.
    assert_eq!(s.beats(0, Err(CapError::Stale), 9_000), (None, None));
    let (at, line, cmd) = until_said(&mut s, beats(5, 4_000, 8_000), 9_000);
    assert_eq!(
        (at, line.as_str()),
        (
            18_500,
            "blkdom (d1): no heartbeat for 10500 ms (watchdog) -> restart in 0 ms"
        )
    );
    assert_eq!(cmd, None);
    assert!(s.beat_watch().is_empty(), "a restart is pending");
    assert_eq!(s.due(18_500), [0]);
    let h = CapHandle {
        index: 5,
        generation: 2,
    };
    s.restarted(0, Ok(h), 18_600);
    assert!(s.beat_watch().is_empty(), "not seen again yet");
    s.observe(0, Ok(DomainState::Running), 18_700);
    assert_eq!(s.beat_watch(), [0]);
    let (line, _) = s.beats(0, Ok((beats(1, 21_000, 21_000), 21_200)), 21_200);
    assert_eq!(
        line.as_deref(),
        Some("blkdom (d1): ready, recovered in 2500 ms")
    );
    let row = s.domains()[0].health_row(22_000, HZ);
    assert_eq!(row.incarnation, 1);
    assert_eq!(row.watchdog_ms, Some(10_000));
    assert_eq!(row.beat_ago_ms, Some(1_000));
    assert_eq!(row.held, None);
    let last = row.last_restart.unwrap();
    assert_eq!(last.reason, RestartReason::Watchdog { silent_ms: 10_500 });
    assert_eq!(last.reason.text(), "watchdog: no heartbeat for 10.5 s");
    assert_eq!((last.ago_ms, last.recovery_ms), (3_500, Some(2_500)));
}

/// Firings a grace apart (60 s) never have three within the 30 s window: no hold.
#[test]
fn watchdog_firings_far_apart_do_not_hold() {
    let mut s = watched(Action::Restart);
    let mut now = 0;
    for gen in 2..=4 {
        // Never a first beat: the grace runs out each time.
        let (at, line, _) = until_said(&mut s, Beats::default(), now);
        assert!(line.contains("(watchdog) -> restart in"), "{line}");
        assert_eq!(at, now + 60_500);
        now = s.next_deadline().unwrap();
        let h = CapHandle {
            index: 4,
            generation: gen,
        };
        s.restarted(0, Ok(h), now);
        s.observe(0, Ok(DomainState::Running), now);
    }
    let row = s.domains()[0].health_row(now, HZ);
    assert_eq!(row.incarnation, 3);
    assert_eq!(row.held, None);
}

#[test]
fn a_held_domain_says_why_and_other_policies_apply() {
    // A crash loop of quick crashes, then the hold names the last cause.
    let mut s = watched(Action::Restart);
    s.guard(1_000, 1_000, STEP, 0);
    let mut now = 0;
    for gen in 2..=4 {
        until_said(&mut s, Beats::default(), now);
        now = s.next_deadline().unwrap();
        let h = CapHandle {
            index: 4,
            generation: gen,
        };
        s.restarted(0, Ok(h), now);
        s.observe(0, Ok(DomainState::Running), now);
    }
    let (now, line, _) = until_said(&mut s, Beats::default(), now);
    assert_eq!(line, "blkdom (d1): crash loop, held after 3 restarts");
    assert_eq!(
        s.domains()[0].health_row(now, HZ).held.as_deref(),
        Some("crash loop: 3 restarts within 30 s, then watchdog: no heartbeat for 1.5 s")
    );
    assert!(s.beat_watch().is_empty(), "held: no longer judged");

    // on_crash = destroy: the watchdog asks for a destroy.
    let mut s = watched(Action::Destroy);
    let (_, line, cmd) = until_said(&mut s, Beats::default(), 0);
    assert_eq!(
        line,
        "blkdom (d1): no heartbeat for 60500 ms (watchdog) -> destroy"
    );
    assert_eq!(cmd, Some(crate::supervise::Command::Destroy(0)));

    // A domain without a watchdog is never judged.
    let mut s = Supervisor::new(Limits::for_hz(HZ));
    let h = CapHandle {
        index: 4,
        generation: 1,
    };
    s.watch("linux", 2, h, DomainState::Running, Policy::XL_DEFAULT);
    assert!(s.beat_watch().is_empty());
    assert_eq!(s.beats(0, Ok((Beats::default(), 1)), 1 << 40), (None, None));
}

#[test]
fn a_crash_records_its_exception_and_a_paused_domain_is_not_judged() {
    let mut s = watched(Action::Restart);
    let undef = protocol::control::StopReason::Crashed { code: 0x0200_0000 };
    s.observe(0, Ok(DomainState::Stopped(undef)), 5_000);
    let now = s.next_deadline().unwrap();
    let h = CapHandle {
        index: 4,
        generation: 2,
    };
    s.restarted(0, Ok(h), now);
    let row = s.domains()[0].health_row(now, HZ);
    assert_eq!(
        row.last_restart.unwrap().reason.text(),
        "crash: undefined instruction (esr 0x2000000)"
    );
    s.observe(0, Ok(DomainState::Paused), now + 10);
    assert!(s.beat_watch().is_empty(), "paused: not judged");
    s.observe(0, Ok(DomainState::Running), now + 90_000);
    assert_eq!(s.beat_watch(), [0]);
    // Silence counts from the unpause, and the grace still holds (no first beat yet).
    assert_eq!(
        s.beats(0, Ok((Beats::default(), now + 95_000)), now + 95_000),
        (None, None)
    );
}

#[test]
fn a_batched_reading_is_one_per_domain_and_a_failed_call_fails_each() {
    use super::readings;
    use protocol::control::{BeatsReading, CapError};
    let beats = Beats {
        count: 3,
        first: 10,
        last: 30,
    };
    let ok = BeatsReading {
        beats,
        cpu_ticks: 7,
    };
    assert_eq!(
        readings(2, Ok(vec![Ok(ok), Err(CapError::Stale)])),
        vec![Ok((beats, 7)), Err(CapError::Stale)]
    );
    assert_eq!(
        readings(2, Err(CapError::NoMsgPage)),
        vec![Err(CapError::NoMsgPage); 2]
    );
    // An answer for other domains than asked is no reading of any.
    assert_eq!(
        readings(2, Ok(vec![Ok(ok)])),
        vec![Err(CapError::BadMessage); 2]
    );
    assert!(readings(0, Ok(Vec::new())).is_empty());
}

#[test]
fn readings_come_a_tenth_of_the_shortest_timeout_apart_within_bounds() {
    use super::{reading_period_ms, READ_MAX_MS, READ_MIN_MS};
    assert_eq!(reading_period_ms([]), READ_MAX_MS, "nothing watched");
    assert_eq!(reading_period_ms([10_000, 30_000]), 1000);
    assert_eq!(reading_period_ms([8_000]), 800);
    assert_eq!(reading_period_ms([10_000, 1_000]), READ_MIN_MS);
    assert_eq!(reading_period_ms([3_600_000]), READ_MAX_MS);
}
