//! The xenbus handshake: features, connection, close, reinit, errors, resume.

use crate::xenbus::{read_frontend_ring, Action, Handshake, HandshakeError, Published};
use protocol::xen::xenbus::XenbusState as S;
use std::collections::HashMap;

fn publish() -> Published {
    Published {
        sectors: 2048,
        sector_size: 512,
        physical_sector_size: 4096,
        read_only: false,
        flush: true,
        discard: Some((4096, 0, false)),
        max_ring_page_order: 2,
        max_indirect_segments: 32,
        persistent: false,
    }
}

fn keys(kv: &[(&str, &str)]) -> impl FnMut(&str) -> Option<String> {
    let m: HashMap<String, String> = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn w(key: &'static str, v: &str) -> Action {
    Action::Write {
        key,
        value: v.into(),
    }
}

#[test]
fn start_publishes_features_then_waits() {
    let mut h = Handshake::new(publish());
    let s = h.start();
    assert_eq!(
        s.actions,
        [
            w("max-ring-page-order", "2"),
            w("feature-max-indirect-segments", "32"),
            w("feature-flush-cache", "1"),
            w("feature-barrier", "1"),
            w("feature-persistent", "0"),
            w("feature-discard", "1"),
            w("discard-granularity", "4096"),
            w("discard-alignment", "0"),
            w("discard-secure", "0"),
            w("mode", "w"),
            Action::SetState(S::InitWait),
        ]
    );
    let mut p = publish();
    p.read_only = true;
    p.flush = false;
    p.discard = None;
    p.max_indirect_segments = 0;
    let a = Handshake::new(p).start().actions;
    assert!(!a.iter().any(|x| matches!(x, Action::Write { key, .. }
        if key.starts_with("feature-discard") || *key == "feature-max-indirect-segments")));
    assert!(a.contains(&w("feature-flush-cache", "0")) && a.contains(&w("mode", "r")));
}

#[test]
fn single_page_frontend_connects() {
    let mut h = Handshake::new(publish());
    h.start();
    // Nothing to do while the frontend is still initialising.
    assert!(h
        .frontend_changed(S::Initialising, keys(&[]))
        .actions
        .is_empty());
    let fe = keys(&[
        ("ring-ref", "8"),
        ("event-channel", "5"),
        ("protocol", "arm-abi"),
    ]);
    let s = h.frontend_changed(S::Initialised, fe);
    assert_eq!(s.error, None);
    assert_eq!(
        s.actions,
        [
            Action::MapRing {
                order: 0,
                grefs: vec![8]
            },
            Action::BindEvtchn { port: 5 },
            w("sectors", "2048"),
            w("info", "0"),
            w("sector-size", "512"),
            w("physical-sector-size", "4096"),
            Action::SetState(S::Connected),
        ]
    );
    assert!(h.connected());
    // The frontend reaching Connected changes nothing.
    assert!(h
        .frontend_changed(S::Connected, keys(&[]))
        .actions
        .is_empty());
}

#[test]
fn multi_page_ring_and_native_protocol_default() {
    let mut read = keys(&[
        ("ring-page-order", "2"),
        ("ring-ref0", "10"),
        ("ring-ref1", "11"),
        ("ring-ref2", "12"),
        ("ring-ref3", "13"),
        ("event-channel", "9"),
    ]);
    let r = read_frontend_ring(&mut read, 2).unwrap();
    assert_eq!((r.order, r.grefs, r.port), (2, vec![10, 11, 12, 13], 9));
}

#[test]
fn bad_frontend_parameters_close_the_vbd() {
    let cases: [(&[(&str, &str)], HandshakeError); 7] = [
        (
            &[("event-channel", "5")],
            HandshakeError::Missing("ring-ref0".into()),
        ),
        (
            &[("ring-ref", "8")],
            HandshakeError::Missing("event-channel".into()),
        ),
        (
            &[("ring-ref", "x"), ("event-channel", "5")],
            HandshakeError::BadNumber("ring-ref".into()),
        ),
        (
            &[("ring-page-order", "3"), ("event-channel", "5")],
            HandshakeError::RingOrder(3),
        ),
        (
            &[
                ("ring-page-order", "1"),
                ("ring-ref0", "1"),
                ("event-channel", "5"),
            ],
            HandshakeError::Missing("ring-ref1".into()),
        ),
        (
            &[
                ("ring-ref", "8"),
                ("event-channel", "5"),
                ("protocol", "x86_64-abi"),
            ],
            HandshakeError::Protocol("x86_64-abi".into()),
        ),
        (
            &[
                ("ring-ref", "8"),
                ("event-channel", "5"),
                ("multi-queue-num-queues", "2"),
            ],
            HandshakeError::Queues(2),
        ),
    ];
    for (kv, err) in cases {
        let mut h = Handshake::new(publish());
        h.start();
        let s = h.frontend_changed(S::Initialised, keys(kv));
        assert_eq!(s.error, Some(err));
        assert_eq!(s.actions, [Action::SetState(S::Closing)]);
        assert!(!h.connected());
    }
}

#[test]
fn close_and_reconnect_cycle() {
    let mut h = Handshake::new(publish());
    h.start();
    let fe = || keys(&[("ring-ref", "8"), ("event-channel", "5")]);
    h.frontend_changed(S::Initialised, fe());
    assert_eq!(
        h.frontend_changed(S::Closing, fe()).actions,
        [Action::SetState(S::Closing)]
    );
    assert_eq!(
        h.frontend_changed(S::Closed, fe()).actions,
        [Action::Disconnect, Action::SetState(S::Closed)]
    );
    // The frontend reinitialises (module reload, kexec): offer a fresh connection, with the
    // features published again.
    let fresh = Handshake::new(publish()).start().actions;
    assert_eq!(h.frontend_changed(S::Initialising, fe()).actions, fresh);
    let s = h.frontend_changed(S::Initialised, fe());
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::Connected)));
    // The frontend vanishing (node removed) disconnects too.
    assert_eq!(
        h.frontend_changed(S::Unknown, fe()).actions,
        [Action::Disconnect, Action::SetState(S::Closed)]
    );
}

/// A guest restarted in place while blkdom reads its vanished frontend directory: our
/// `Closed` may land over the toolstack's fresh backend directory (which holds none of our
/// features), and the new frontend's `Initialising` is then the only sign. The offer must
/// publish `feature-persistent` again: a frontend that reads none from us ends its grants
/// after each request, and kept maps would break it (Linux: "backed has not unmapped grant").
#[test]
fn a_frontend_reinitialising_gets_every_feature_again() {
    let on = Published {
        persistent: true,
        ..publish()
    };
    let fe = || {
        keys(&[
            ("ring-ref", "8"),
            ("event-channel", "5"),
            ("feature-persistent", "1"),
        ])
    };
    let offer = Handshake::new(on).start().actions;
    assert!(offer.contains(&w("feature-persistent", "1")));
    // Gone, then back.
    let mut h = Handshake::new(on);
    h.start();
    h.frontend_changed(S::Initialised, fe());
    assert!(h.persistent());
    h.frontend_changed(S::Unknown, fe());
    assert_eq!(h.frontend_changed(S::Initialising, fe()).actions, offer);
    // Back without ever being seen gone (the rewrite came between two reads).
    let mut h = Handshake::new(on);
    h.start();
    h.frontend_changed(S::Initialised, fe());
    let mut want = vec![Action::Disconnect];
    want.extend(offer.iter().cloned());
    assert_eq!(h.frontend_changed(S::Initialising, fe()).actions, want);
    assert!(!h.persistent());
    // Waiting already: nothing to do.
    assert!(h.frontend_changed(S::Initialising, fe()).actions.is_empty());
    let s = h.frontend_changed(S::Initialised, fe());
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::Connected)));
    assert!(h.persistent());
}

#[test]
fn halt_moves_to_closing_once() {
    let mut h = Handshake::new(publish());
    h.start();
    h.frontend_changed(
        S::Initialised,
        keys(&[("ring-ref", "8"), ("event-channel", "5")]),
    );
    assert_eq!(h.halt().actions, [Action::SetState(S::Closing)]);
    assert!(h.halt().actions.is_empty());
    assert!(h.frontend_changed(S::Closing, keys(&[])).actions.is_empty());
    assert_eq!(
        h.frontend_changed(S::Closed, keys(&[])).actions,
        [Action::Disconnect, Action::SetState(S::Closed)]
    );
}

#[test]
fn resume_remaps_without_writing() {
    let fe = || keys(&[("ring-ref", "8"), ("event-channel", "5")]);
    let mut h = Handshake::new(publish());
    let s = h.resume(S::Connected, S::Connected, fe());
    assert_eq!(
        s.actions,
        [
            Action::MapRing {
                order: 0,
                grefs: vec![8]
            },
            Action::BindEvtchn { port: 5 }
        ]
    );
    assert_eq!(h.state(), S::Connected);
    // A vbd that was not connected starts over.
    let mut h = Handshake::new(publish());
    let s = h.resume(S::InitWait, S::Initialising, fe());
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::InitWait)));
}

#[test]
fn table_drives_a_halted_vbd_through_close_and_a_fresh_ring() {
    use super::fakes::*;
    use crate::{HaltReason, VbdState};
    use protocol::xen::blkif::BlkifOp;
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    let fe = || keys(&[("ring-ref", "8"), ("event-channel", "5")]);
    // The rig connected the ring directly; bring the handshake to Connected as well.
    assert_eq!(
        r.table.start(r.id).actions.last(),
        Some(&Action::SetState(S::InitWait))
    );
    let s = r.table.frontend_changed(r.id, S::Initialised, fe());
    assert!(matches!(s.actions[0], Action::MapRing { order: 0, .. }));
    let mut bad = rw(BlkifOp::Read, 1, 0, &[seg(1, 0, 0)]);
    bad[0] = 200;
    let p = r.one(&bad).0;
    assert!(matches!(p.halted, Some(HaltReason::Malformed(_))));
    assert_eq!(p.step.actions, [Action::SetState(S::Closing)]);
    r.table.frontend_changed(r.id, S::Closing, fe());
    let s = r.table.frontend_changed(r.id, S::Closed, fe());
    assert_eq!(s.actions, [Action::Disconnect, Action::SetState(S::Closed)]);
    let v = r.table.get(r.id).unwrap();
    assert_eq!(
        (v.state(), v.ring().is_none()),
        (VbdState::Disconnected, true)
    );
    assert!(
        v.last_halt.is_some(),
        "the halt stays on record for reporting"
    );
    // Reinitialised frontend, fresh ring: served again.
    r.table.frontend_changed(r.id, S::Initialising, fe());
    r.table.frontend_changed(r.id, S::Initialised, fe());
    r.ring = FakeRing::new(0);
    r.front = Front::new(0);
    r.table.connect(r.id, 0, &mut r.ring).unwrap();
    r.grants.grant(1, vec![0; 4096], false);
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 2, 0, &[seg(1, 0, 0)])).1,
        [(2, 0, 0)]
    );
    // A ring the shell could not map closes the vbd and is not served.
    let s = r.table.connect_failed(r.id);
    assert_eq!(s.actions, [Action::SetState(S::Closing)]);
    assert_eq!(r.table.get(r.id).unwrap().state(), VbdState::Disconnected);
    r.front
        .send(&mut r.ring, &rw(BlkifOp::Read, 3, 0, &[seg(1, 0, 0)]));
    assert_eq!(r.poll(), crate::Poll::default());
}

#[test]
fn a_replaced_vbd_starts_fresh_under_the_same_id() {
    use super::fakes::*;
    use crate::{VbdConfig, VbdState};
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    let other = r.table.add(
        VbdConfig {
            frontend: 9,
            devid: 51728,
            disk: 0,
            read_only: true,
        },
        FakeDisk::new(64).info,
    );
    r.table.get_mut(r.id).unwrap().counters.errors = 3;
    let config = VbdConfig {
        frontend: 4,
        devid: 51712,
        disk: 0,
        read_only: false,
    };
    r.table.replace(r.id, config, FakeDisk::new(128).info);
    let v = r.table.get(r.id).unwrap();
    assert_eq!(v.config, config);
    assert_eq!(v.counters.errors, 0);
    assert_eq!(v.sectors(), 128);
    assert_eq!(
        (v.state(), v.ring().is_none()),
        (VbdState::Disconnected, true)
    );
    // The other vbd is untouched and the table did not grow.
    assert_eq!(r.table.get(other).unwrap().config.frontend, 9);
    assert_eq!(r.table.iter().count(), 2);
}

#[test]
fn persistent_grants_need_both_sides() {
    let on = Published {
        persistent: true,
        ..publish()
    };
    let mut h = Handshake::new(on);
    assert!(h.start().actions.contains(&w("feature-persistent", "1")));
    let base = [("ring-ref", "8"), ("event-channel", "5")];
    // Only a clean 1 from the frontend turns them on; each connection decides afresh.
    for (value, want) in [
        (Some("1"), true),
        (Some("0"), false),
        (Some("yes"), false),
        (None, false),
    ] {
        let mut kv = base.to_vec();
        if let Some(v) = value {
            kv.push(("feature-persistent", v));
        }
        h.frontend_changed(S::Initialised, keys(&kv));
        assert_eq!(h.persistent(), want, "frontend wrote {value:?}");
        h.frontend_changed(S::Closed, keys(&[]));
        assert!(!h.persistent(), "not after the disconnect");
        h.frontend_changed(S::Initialising, keys(&[]));
    }
    // Not offered: never on, whatever the frontend writes.
    let mut h = Handshake::new(publish());
    h.start();
    let mut kv = base.to_vec();
    kv.push(("feature-persistent", "1"));
    h.frontend_changed(S::Initialised, keys(&kv));
    assert!(h.connected() && !h.persistent());
    // A restarted instance reads the frontend's key again when it resumes.
    let mut h = Handshake::new(on);
    h.resume(S::Connected, S::Connected, keys(&kv));
    assert!(h.persistent());
}
