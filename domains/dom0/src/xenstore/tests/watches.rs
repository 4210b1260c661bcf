//! Watches: registration, matching, permissions, relative paths, removal of watches.

use super::*;

#[test]
fn initial_event_then_changes_to_the_path_and_below() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.watch(0, "/a", "tok"), okr());
    assert_eq!(
        h.events(0),
        vec![ev("/a", "tok")],
        "fires once on registration"
    );
    assert_eq!(h.write(0, "/a", "1"), okr());
    assert_eq!(h.write(0, "/a/b/c", "2"), okr());
    assert_eq!(h.write(0, "/other", "3"), okr());
    assert_eq!(
        h.write(0, "/ab", "4"),
        okr(),
        "a sibling with a common prefix"
    );
    assert_eq!(h.events(0), vec![ev("/a", "tok"), ev("/a/b/c", "tok")]);
    // Removing an ancestor fires with the watched path; removing inside fires the root.
    assert_eq!(h.watch(0, "/a/b/c", "deep"), okr());
    assert_eq!(h.watch(0, "/a/b/c/never", "gone"), okr());
    h.events(0);
    h.ok(0, XsType::Rm, 0, &args(&["/a/b"]));
    let mut got = h.events(0);
    got.sort();
    let mut want = vec![
        ev("/a/b", "tok"),
        ev("/a/b/c", "deep"),
        ev("/a/b/c/never", "gone"),
    ];
    want.sort();
    assert_eq!(got, want);
    // Permission changes fire too.
    assert_eq!(h.set_perms(0, "/a", &["n0", "r3"]), okr());
    assert_eq!(h.events(0), vec![ev("/a", "tok")]);
}

#[test]
fn duplicate_watch_is_eexist_and_unwatch_needs_exact_match() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.watch(3, "device", "t1"), okr());
    assert_eq!(h.watch(3, "device", "t1"), err("EEXIST"));
    assert_eq!(h.watch(3, "/local/domain/3/device", "t1"), err("EEXIST"));
    assert_eq!(h.watch(3, "device", "t2"), okr());
    let unwatch = |h: &mut Harness, p: &str, t: &str| h.call(3, XsType::Unwatch, 0, &args(&[p, t]));
    assert_eq!(unwatch(&mut h, "device", "t3"), err("ENOENT"));
    assert_eq!(unwatch(&mut h, "devic", "t1"), err("ENOENT"));
    assert_eq!(unwatch(&mut h, "device", "t1"), okr());
    assert_eq!(unwatch(&mut h, "device", "t1"), err("ENOENT"));
    h.events(3);
    assert_eq!(h.write(3, "device/x", "1"), okr());
    assert_eq!(h.events(3), vec![ev("device/x", "t2")]);
    assert_eq!(h.call(3, XsType::Watch, 0, b"onlypath\0"), err("EINVAL"));
    assert_eq!(
        h.call(3, XsType::Watch, 0, &args(&["p", "t", "1"])),
        err("EINVAL"),
        "watch depth is not offered"
    );
    assert_eq!(h.watch(3, "bad//path", "t"), err("EINVAL"));
    // RESET_WATCHES drops them all.
    h.ok(3, XsType::ResetWatches, 0, b"\0");
    assert_eq!(h.write(3, "device/x", "2"), okr());
    assert_eq!(h.events(3), vec![]);
}

#[test]
fn relative_watches_report_relative_paths() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.watch(3, "device", "rel"), okr());
    assert_eq!(h.watch(3, "/local/domain/3/device", "abs"), okr());
    assert_eq!(
        h.events(3),
        vec![ev("device", "rel"), ev("/local/domain/3/device", "abs")]
    );
    assert_eq!(h.write(0, "/local/domain/3/device/vbd/1/state", "4"), okr());
    assert_eq!(
        h.events(3),
        vec![
            ev("device/vbd/1/state", "rel"),
            ev("/local/domain/3/device/vbd/1/state", "abs")
        ]
    );
    h.xs.remove_node("/local/domain/3").unwrap();
    assert_eq!(
        h.events(3),
        vec![ev("device", "rel"), ev("/local/domain/3/device", "abs")]
    );
}

#[test]
fn no_event_without_read_permission() {
    let mut h = Harness::new(&[3, 4]);
    assert_eq!(h.write(0, "/be/3", "x"), okr());
    assert_eq!(h.set_perms(0, "/be", &["n0", "r3"]), okr());
    assert_eq!(h.set_perms(0, "/be/3", &["n0", "r3"]), okr());
    for d in [3, 4] {
        assert_eq!(h.watch(d, "/be", "t"), okr());
        assert_eq!(h.events(d), vec![ev("/be", "t")], "initial event always");
    }
    assert_eq!(h.write(0, "/be/3/state", "1"), okr());
    assert_eq!(h.events(3), vec![ev("/be/3/state", "t")]);
    assert_eq!(h.events(4), vec![], "4 cannot read the node or its parent");
    // Readable parent is enough (xenstored's rule).
    assert_eq!(h.write(0, "/be/3/secret", "s"), okr());
    assert_eq!(h.set_perms(0, "/be/3/secret", &["n0"]), okr());
    h.events(3);
    assert_eq!(h.write(0, "/be/3/secret", "t"), okr());
    assert_eq!(h.events(3), vec![ev("/be/3/secret", "t")]);
    // Losing access by a permission change is still announced.
    assert_eq!(h.set_perms(0, "/be", &["n0", "r4"]), okr());
    assert_eq!(h.events(3), vec![ev("/be", "t")]);
    assert_eq!(h.events(4), vec![ev("/be", "t")]);
}

#[test]
fn special_watches_need_privilege_or_permission() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.watch(0, "@introduceDomain", "in"), okr());
    assert_eq!(h.watch(0, "@releaseDomain", "out"), okr());
    assert_eq!(h.watch(3, "@releaseDomain", "out3"), okr());
    assert_eq!(
        h.events(0),
        vec![ev("@introduceDomain", "in"), ev("@releaseDomain", "out")]
    );
    assert_eq!(h.events(3), vec![ev("@releaseDomain", "out3")]);
    h.xs.introduce(7).unwrap();
    assert_eq!(h.events(0), vec![ev("@introduceDomain", "in")]);
    h.xs.release(7).unwrap();
    assert_eq!(h.events(0), vec![ev("@releaseDomain", "out")]);
    assert_eq!(
        h.events(3),
        vec![],
        "3 may not see @releaseDomain by default"
    );
    assert_eq!(h.set_perms(0, "@releaseDomain", &["n0", "r3"]), okr());
    assert_eq!(h.events(3), vec![ev("@releaseDomain", "out3")]);
    h.xs.introduce(7).unwrap();
    h.xs.release(7).unwrap();
    assert_eq!(h.events(3), vec![ev("@releaseDomain", "out3")]);
    // A watch on "/" sees the new home but not the special event, and vice versa.
    assert_eq!(h.watch(0, "/", "root"), okr());
    h.events(0);
    h.xs.introduce(8).unwrap();
    assert_eq!(
        h.events(0),
        vec![ev("/local/domain/8", "root"), ev("@introduceDomain", "in")]
    );
}

#[test]
fn queued_duplicate_events_collapse_and_overflow_drops_events() {
    let mut h = Harness::with_quotas(
        &[3],
        Quotas {
            output_bytes: 200,
            ..Quotas::default()
        },
    );
    assert_eq!(h.watch(3, "x", "t"), okr());
    h.events(3);
    for _ in 0..3 {
        assert_eq!(h.write(0, "/local/domain/3/x", "v"), okr());
    }
    assert_eq!(
        h.events(3),
        vec![ev("x", "t")],
        "identical pending events collapse"
    );
    for i in 0..20 {
        let p = alloc::format!("/local/domain/3/x/{i}");
        assert_eq!(h.write(0, &p, "v"), okr());
    }
    let got = h.events(3);
    assert!(got.len() < 20 && !got.is_empty());
    assert_eq!(h.xs.dropped_events(3), 20 - got.len() as u64);
    // What was dropped is not lost on the watcher: once its queue drained, one event on
    // the watch's own path tells it to look again (once, however many were dropped).
    assert_eq!(h.events(3), vec![ev("x", "t")]);
    assert_eq!(h.events(3), vec![]);
}

#[test]
fn a_dropped_event_is_owed_per_watch_until_there_is_room() {
    let mut h = Harness::with_quotas(
        &[3],
        Quotas {
            output_bytes: 200,
            ..Quotas::default()
        },
    );
    assert_eq!(h.watch(3, "a", "ta"), okr());
    assert_eq!(h.watch(3, "b", "tb"), okr());
    h.events(3);
    for i in 0..20 {
        for w in ["a", "b"] {
            let p = alloc::format!("/local/domain/3/{w}/{i}");
            assert_eq!(h.write(0, &p, "v"), okr());
        }
    }
    assert!(h.xs.dropped_events(3) > 2);
    let first = h.events(3);
    assert!(!first.is_empty());
    // Each watch that lost events is owed one catch-up on its own path, in order.
    assert_eq!(h.events(3), vec![ev("a", "ta"), ev("b", "tb")]);
    assert_eq!(h.events(3), vec![]);
}

#[test]
fn is_watched_by_sees_the_path_and_its_ancestors_only() {
    let mut h = Harness::new(&[3]);
    let path = "/local/domain/3/control/shutdown";
    assert!(!h.xs.is_watched_by(3, path));
    assert_eq!(h.watch(3, "device", "t"), okr());
    assert!(!h.xs.is_watched_by(3, path), "a watch elsewhere");
    assert_eq!(h.watch(3, "control/shutdown", "t"), okr());
    assert!(
        h.xs.is_watched_by(3, path),
        "relative watch on the node itself"
    );
    assert!(!h.xs.is_watched_by(0, path), "another connection");
    let mut h = Harness::new(&[3]);
    assert_eq!(h.watch(3, "/local/domain/3/control", "t"), okr());
    assert!(
        h.xs.is_watched_by(3, path),
        "a watch on an ancestor fires for it"
    );
    assert!(!h.xs.is_watched_by(7, path), "an unknown connection");
}
