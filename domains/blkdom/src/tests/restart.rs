//! Restart in place (DESIGN §6.2): a new blkdom instance, with a fresh table, finds a vbd
//! whose backend and frontend are both Connected, re-maps its ring without writing a key,
//! and replays exactly the requests the dead instance had not answered.

use super::fakes::*;
use crate::{Action, VbdConfig, VbdState, VbdTable};
use protocol::xen::blkif::*;
use protocol::xen::xenbus::XenbusState as S;

const OK: i16 = BlkifStatus::Okay as i16;

fn frontend_keys(k: &str) -> Option<String> {
    match k {
        "ring-ref" => Some("8".into()),
        "event-channel" => Some("5".into()),
        "protocol" => Some("arm-abi".into()),
        _ => None,
    }
}

/// The new instance: a fresh table whose vbd resumes from the states found in xenstore.
fn new_instance(r: &Rig) -> (VbdTable, crate::VbdId) {
    let mut table = VbdTable::new(r.table.config());
    let id = table.add(
        VbdConfig {
            frontend: FRONT,
            devid: 51712,
            disk: 0,
            read_only: false,
        },
        r.disk.info,
    );
    let step = table.resume(id, S::Connected, S::Connected, frontend_keys);
    assert_eq!(step.error, None);
    assert_eq!(
        step.actions,
        [
            Action::MapRing {
                order: 0,
                grefs: vec![8]
            },
            Action::BindEvtchn { port: 5 }
        ],
        "a resumed vbd writes no key and leaves its state alone"
    );
    (table, id)
}

#[test]
fn a_new_instance_replays_exactly_what_the_dead_one_left() {
    const N: u32 = 6;
    // Die after every possible number of ring stores, including before the first and
    // after the last.
    for die_after in 0..48 {
        let mut r = Rig::new(0, FakeDisk::new(128), false);
        let mut model = r.disk.data.clone();
        for i in 0..N + 2 {
            r.grants.grant(100 + i, page(i as u8 * 16), true);
            let at = i as usize * 8 * 512;
            model[at..at + 4096].copy_from_slice(&page(i as u8 * 16));
        }
        for i in 0..N {
            let s = rw(
                BlkifOp::Write,
                u64::from(i),
                u64::from(i) * 8,
                &[seg(100 + i, 0, 7)],
            );
            r.front.queue(&mut r.ring, &s);
        }
        r.front.push(&mut r.ring);
        r.ring.die_after = Some(r.ring.writes + die_after);
        r.poll();
        // The instance is gone (the fake ring drops stores only while it "dies").
        r.ring.die_after = None;
        let mut got = r.front.responses(&mut r.ring);
        // While blkdom is down the frontend keeps queueing (its notifications are lost).
        for i in N..N + 2 {
            let s = rw(
                BlkifOp::Write,
                u64::from(i),
                u64::from(i) * 8,
                &[seg(100 + i, 0, 7)],
            );
            r.front.send(&mut r.ring, &s);
        }
        let (mut table, id) = new_instance(&r);
        table.connect(id, 0, &mut r.ring).unwrap();
        assert_eq!(table.get(id).unwrap().state(), VbdState::Connected);
        let p = table.poll(id, &mut r.ring, &mut r.disk, &mut r.grants);
        assert!(
            p.halted.is_none() && !p.more,
            "died after {die_after}: {p:?}"
        );
        got.extend(r.front.responses(&mut r.ring));
        let want: Vec<(u64, u8, i16)> = (0..u64::from(N) + 2).map(|i| (i, 1, OK)).collect();
        assert_eq!(got, want, "died after {die_after} stores");
        assert!(r.disk.data == model, "died after {die_after}: disk differs");
    }
}

#[test]
fn a_vbd_found_half_connected_starts_over() {
    let r = Rig::new(0, FakeDisk::new(64), false);
    let mut table = VbdTable::new(r.table.config());
    let id = table.add(
        VbdConfig {
            frontend: FRONT,
            devid: 51712,
            disk: 0,
            read_only: false,
        },
        r.disk.info,
    );
    // The frontend is closing: nothing to resume, the handshake starts from InitWait and
    // follows the frontend.
    let step = table.resume(id, S::Connected, S::Closing, frontend_keys);
    assert!(!step
        .actions
        .iter()
        .any(|a| matches!(a, Action::MapRing { .. })));
    assert_eq!(step.actions.last(), Some(&Action::SetState(S::Closing)));
}

/// The guest's restart in place (same domain id): dom0 rewrites the vbd, so our `state`
/// key reads Initialising while our handshake is past it. Only that reading means "written
/// afresh"; a fresh vbd, or any other state we wrote ourselves, does not.
#[test]
fn a_vbd_rewritten_by_the_toolstack_is_recognised() {
    let r = Rig::new(0, FakeDisk::new(64), false);
    let (table, id) = new_instance(&r);
    assert!(table.rewritten(id, S::Initialising));
    for own in [S::InitWait, S::Connected, S::Closing, S::Closed] {
        assert!(!table.rewritten(id, own), "{own:?} is ours, not a rewrite");
    }
    let mut fresh = VbdTable::new(r.table.config());
    let fid = fresh.add(
        VbdConfig {
            frontend: FRONT,
            devid: 51712,
            disk: 0,
            read_only: false,
        },
        r.disk.info,
    );
    assert!(
        !fresh.rewritten(fid, S::Initialising),
        "not started yet: Initialising is where it is"
    );
    assert!(
        !table.rewritten(crate::VbdId(7), S::Initialising),
        "no such vbd"
    );
    fresh.start(fid);
    assert!(fresh.rewritten(fid, S::Initialising));
}

/// The dead instance published responses and died before notifying: the frontend's event
/// index is still below them. The new instance's first pass notifies regardless (the
/// index test alone would not, and the frontend would wait for ever); later passes follow
/// the index again.
#[test]
fn a_new_instance_always_notifies_once() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(100, page(1), true);
    let s = rw(BlkifOp::Read, 1, 0, &[seg(100, 0, 7)]);
    r.front.send(&mut r.ring, &s);
    r.poll();
    // The frontend never looked at that response: no new event index was written.
    let (mut table, id) = new_instance(&r);
    table.connect(id, 0, &mut r.ring).unwrap();
    let first = table.poll(id, &mut r.ring, &mut r.disk, &mut r.grants);
    assert!(
        first.notify,
        "the first pass after a resume wakes the frontend"
    );
    let second = table.poll(id, &mut r.ring, &mut r.disk, &mut r.grants);
    assert!(!second.notify, "nothing new: no event");
}
