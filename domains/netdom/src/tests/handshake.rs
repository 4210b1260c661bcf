//! The vif xenbus handshake.

use crate::xenbus::{Action, Handshake, HandshakeError};
use protocol::xen::xenbus::XenbusState as S;
use std::collections::HashMap;

fn keys(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn netfront() -> HashMap<String, String> {
    keys(&[
        ("tx-ring-ref", "8"),
        ("rx-ring-ref", "9"),
        ("event-channel", "5"),
        ("request-rx-copy", "1"),
        ("feature-rx-notify", "1"),
        ("feature-sg", "1"),
        ("feature-gso-tcpv4", "1"),
    ])
}

/// What an offer writes: the features, then InitWait.
fn offer() -> Vec<Action> {
    let mut h = Handshake::new();
    h.start().actions
}

#[test]
fn netfront_connects_after_our_features_and_closes_cleanly() {
    let mut h = Handshake::new();
    let s = h.start();
    let written: Vec<(&str, String)> = s
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Write { key, value } => Some((*key, value.clone())),
            _ => None,
        })
        .collect();
    for (k, v) in [
        ("feature-sg", "1"),
        ("feature-rx-copy", "1"),
        ("feature-rx-flip", "0"),
        ("multi-queue-max-queues", "1"),
    ] {
        assert!(written.contains(&(k, v.to_string())), "{k}");
    }
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::InitWait)));
    let fe = netfront();
    let s = h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
    assert_eq!(
        s.actions,
        vec![
            Action::MapRings { tx: 8, rx: 9 },
            Action::BindEvtchn { port: 5 },
            Action::SetState(S::Connected)
        ]
    );
    assert!(h.sg());
    // A repeated Connected does nothing.
    assert!(h
        .frontend_changed(S::Connected, |k| fe.get(k).cloned())
        .actions
        .is_empty());
    assert_eq!(
        h.frontend_changed(S::Closing, |_| None).actions,
        vec![Action::SetState(S::Closing)]
    );
    assert_eq!(
        h.frontend_changed(S::Closed, |_| None).actions,
        vec![Action::Disconnect, Action::SetState(S::Closed)]
    );
    // The frontend comes back (a reloaded driver): offer a fresh connection, features
    // first.
    let s = h.frontend_changed(S::Initialising, |_| None);
    assert_eq!(s.actions[..4], offer()[..4]);
    assert_eq!(s.actions, offer());
    assert_eq!(
        h.frontend_changed(S::Connected, |k| fe.get(k).cloned())
            .actions
            .len(),
        3
    );
}

#[test]
fn refused_frontends_are_asked_to_close() {
    /// Frontend keys to set (or remove, with `None`).
    type Edits<'a> = Vec<(&'a str, Option<&'a str>)>;
    let cases: Vec<(Edits, HandshakeError)> = vec![
        (vec![("request-rx-copy", None)], HandshakeError::NoRxCopy),
        (
            vec![("request-rx-copy", Some("0"))],
            HandshakeError::NoRxCopy,
        ),
        (
            vec![("tx-ring-ref", None)],
            HandshakeError::Missing("tx-ring-ref".into()),
        ),
        (
            vec![("rx-ring-ref", Some("x"))],
            HandshakeError::BadNumber("rx-ring-ref".into()),
        ),
        (
            vec![("event-channel-tx", Some("3"))],
            HandshakeError::SplitEvtchn,
        ),
        (
            vec![("multi-queue-num-queues", Some("2"))],
            HandshakeError::Queues(2),
        ),
    ];
    for (edits, want) in cases {
        let mut fe = netfront();
        for (k, v) in edits {
            match v {
                Some(v) => fe.insert(k.to_string(), v.to_string()),
                None => fe.remove(k),
            };
        }
        let mut h = Handshake::new();
        h.start();
        let s = h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
        assert_eq!(s.error, Some(want));
        assert_eq!(s.actions, vec![Action::SetState(S::Closing)]);
        assert!(!h.connected());
    }
    // One queue named explicitly is fine; no feature-sg means single-slot frames.
    let mut fe = netfront();
    fe.insert("multi-queue-num-queues".into(), "1".into());
    fe.remove("feature-sg");
    let mut h = Handshake::new();
    h.start();
    let s = h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
    assert_eq!(s.error, None);
    assert!(!h.sg());
}

#[test]
fn resume_remaps_a_live_vif_without_writing_anything() {
    let fe = netfront();
    let mut h = Handshake::new();
    let s = h.resume(S::Connected, S::Connected, |k| fe.get(k).cloned());
    assert_eq!(
        s.actions,
        vec![
            Action::MapRings { tx: 8, rx: 9 },
            Action::BindEvtchn { port: 5 }
        ]
    );
    assert_eq!(h.state(), S::Connected);
    let mut h = Handshake::new();
    let s = h.resume(S::Connected, S::Closed, |_| None);
    assert!(s.actions.contains(&Action::SetState(S::InitWait)));
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::Closed)));
}

/// A guest restarted in place without closing (a crash, `ctl restart`): its new netfront
/// shows up at Initialising while we are still connected to the old one.
#[test]
fn a_frontend_that_starts_over_gets_a_fresh_offer_and_never_sees_a_close() {
    let fe = netfront();
    for closing_first in [false, true] {
        let mut h = Handshake::new();
        h.start();
        h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
        if closing_first {
            // The old guest began a clean reboot and died before reaching Closed.
            h.frontend_changed(S::Closing, |_| None);
        }
        let s = h.frontend_changed(S::Initialising, |_| None);
        let mut want = vec![Action::Disconnect];
        want.extend(offer());
        assert_eq!(s.actions, want, "closing first: {closing_first}");
        // A fresh netfront takes Closing or Closed as being closed for good.
        assert!(!s.actions.contains(&Action::SetState(S::Closing)));
        assert!(!s.actions.contains(&Action::SetState(S::Closed)));
        assert!(!h.connected());
        assert_eq!(h.state(), S::InitWait);
        // Its new rings and channel.
        let mut fe2 = fe.clone();
        fe2.insert("tx-ring-ref".into(), "20".into());
        fe2.insert("rx-ring-ref".into(), "21".into());
        fe2.insert("event-channel".into(), "7".into());
        let s = h.frontend_changed(S::Connected, |k| fe2.get(k).cloned());
        assert_eq!(
            s.actions,
            vec![
                Action::MapRings { tx: 20, rx: 21 },
                Action::BindEvtchn { port: 7 },
                Action::SetState(S::Connected)
            ]
        );
    }
    // A repeated Initialising while we wait writes nothing.
    let mut h = Handshake::new();
    h.start();
    assert!(h
        .frontend_changed(S::Initialising, |_| None)
        .actions
        .is_empty());
}

/// dom0 rewrites a restarted guest's vif (our `state` back at Initialising, our features
/// gone): the old connection is dropped and the new frontend followed from where it is.
#[test]
fn a_vif_written_afresh_is_reincarnated() {
    let fe = netfront();
    let mut h = Handshake::new();
    assert!(
        !h.rewritten(S::Initialising),
        "not started: nothing to redo"
    );
    h.start();
    assert!(h.rewritten(S::Initialising));
    h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
    for ours in [S::InitWait, S::Connected, S::Closing, S::Closed] {
        assert!(!h.rewritten(ours), "{ours:?}");
    }
    assert!(h.rewritten(S::Initialising));
    // The new frontend has not started yet.
    let s = h.reincarnate(S::Initialising, |_| None);
    let mut want = vec![Action::Disconnect];
    want.extend(offer());
    assert_eq!(s.actions, want);
    assert!(!h.rewritten(S::InitWait));
    // The new frontend was quicker than our scan: it is connected already.
    let mut h = Handshake::new();
    h.start();
    h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
    let mut fe2 = fe.clone();
    fe2.insert("tx-ring-ref".into(), "30".into());
    let s = h.reincarnate(S::Connected, |k| fe2.get(k).cloned());
    want.extend([
        Action::MapRings { tx: 30, rx: 9 },
        Action::BindEvtchn { port: 5 },
        Action::SetState(S::Connected),
    ]);
    assert_eq!(s.actions, want);
    assert!(h.connected());
    // A halted vif (Closing, still mapped) of a restarted guest is unmapped too.
    let mut h = Handshake::new();
    h.start();
    h.frontend_changed(S::Connected, |k| fe.get(k).cloned());
    h.halt();
    let s = h.reincarnate(S::Initialising, |_| None);
    assert_eq!(s.actions.first(), Some(&Action::Disconnect));
    assert_eq!(h.state(), S::InitWait);
}
