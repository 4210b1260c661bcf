//! Transactions: isolation, commit, abort, conflicts, ids, and their quotas.

use super::*;

#[test]
fn commit_applies_and_abort_discards() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.watch(0, "/local/domain/3", "w"), okr());
    h.events(0);
    let t = h.start(3);
    assert_ne!(t, 0);
    assert_eq!(h.write_tx(3, t, "a", "1"), okr());
    assert_eq!(h.call(3, XsType::Read, t, &args(&["a"])), Ok(b"1".to_vec()));
    assert_eq!(
        h.read(3, "a"),
        err("ENOENT"),
        "invisible outside the transaction"
    );
    assert_eq!(h.events(0), vec![], "no events before commit");
    assert_eq!(h.end(3, t, true), okr());
    assert_eq!(h.read(3, "a"), Ok(b"1".to_vec()));
    assert_eq!(h.events(0), vec![ev("/local/domain/3/a", "w")]);
    assert_eq!(h.end(3, t, true), err("ENOENT"), "the id is gone after END");

    let t = h.start(3);
    assert_eq!(h.write_tx(3, t, "b", "2"), okr());
    let rm = h.call(3, XsType::Rm, t, &args(&["a"]));
    assert_eq!(rm, okr());
    assert_eq!(h.call(3, XsType::Read, t, &args(&["a"])), err("ENOENT"));
    assert_eq!(h.end(3, t, false), okr());
    assert_eq!(h.read(3, "a"), Ok(b"1".to_vec()));
    assert_eq!(h.read(3, "b"), err("ENOENT"));
    assert_eq!(h.events(0), vec![]);
    assert_eq!(h.xs.nodes_owned(3), 2);
}

#[test]
fn conflicting_change_makes_commit_eagain() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.write(3, "state", "1"), okr());
    // Read-then-write conflict.
    let t = h.start(3);
    assert_eq!(
        h.call(3, XsType::Read, t, &args(&["state"])),
        Ok(b"1".to_vec())
    );
    assert_eq!(h.write(0, "/local/domain/3/state", "2"), okr());
    assert_eq!(h.write_tx(3, t, "other", "x"), okr());
    assert_eq!(h.end(3, t, true), err("EAGAIN"));
    assert_eq!(h.read(3, "other"), err("ENOENT"), "nothing of it applied");
    // Retrying succeeds.
    let t = h.start(3);
    assert_eq!(
        h.call(3, XsType::Read, t, &args(&["state"])),
        Ok(b"2".to_vec())
    );
    assert_eq!(h.write_tx(3, t, "state", "3"), okr());
    assert_eq!(h.end(3, t, true), okr());
    assert_eq!(h.read(0, "/local/domain/3/state"), Ok(b"3".to_vec()));
    // A node read as missing and then created by someone else conflicts too.
    let t = h.start(3);
    assert_eq!(h.call(3, XsType::Read, t, &args(&["new"])), err("ENOENT"));
    assert_eq!(h.write(3, "new", "n"), okr());
    assert_eq!(h.end(3, t, true), err("EAGAIN"));
    // Unrelated changes do not.
    let t = h.start(3);
    assert_eq!(h.write_tx(3, t, "mine", "m"), okr());
    assert_eq!(h.write(0, "/elsewhere", "e"), okr());
    assert_eq!(h.end(3, t, true), okr());
}

#[test]
fn transaction_ids_and_errors() {
    let mut h = Harness::new(&[3, 4]);
    let a = h.start(3);
    let b = h.start(3);
    assert_ne!(a, b);
    // Ids are per connection: 4 cannot use 3's.
    assert_eq!(h.write_tx(4, a, "x", "1"), err("ENOENT"));
    assert_eq!(h.write_tx(3, 0xDEAD_BEEF, "x", "1"), err("ENOENT"));
    assert_eq!(h.end(3, 0, true), err("ENOENT"));
    assert_eq!(
        h.call(3, XsType::TransactionEnd, a, &args(&["X"])),
        err("EINVAL")
    );
    assert_eq!(h.call(3, XsType::TransactionStart, a, b"\0"), err("EBUSY"));
    // WATCH ignores tx_id, even a bogus one.
    assert_eq!(h.call(3, XsType::Watch, 0xDEAD, &args(&["w", "t"])), okr());
    // RESET_WATCHES drops transactions too.
    h.ok(3, XsType::ResetWatches, 0, b"\0");
    assert_eq!(h.end(3, b, true), err("ENOENT"));
}

#[test]
fn transaction_events_and_perms_apply_on_commit() {
    let mut h = Harness::new(&[3, 4]);
    assert_eq!(h.write(0, "/shared", ""), okr());
    assert_eq!(h.set_perms(0, "/shared", &["n0", "b3", "r4"]), okr());
    assert_eq!(h.watch(4, "/shared", "w"), okr());
    h.events(4);
    let t = h.start(3);
    assert_eq!(h.write_tx(3, t, "/shared/x", "1"), okr());
    let sp = args(&["/shared/x", "n3", "r4"]);
    assert_eq!(h.call(3, XsType::SetPerms, t, &sp), okr());
    h.ok(3, XsType::Rm, t, &args(&["/shared/x"]));
    h.ok(3, XsType::Mkdir, t, &args(&["/shared/y"]));
    assert_eq!(h.events(4), vec![]);
    assert_eq!(h.end(3, t, true), okr());
    let got = h.events(4);
    assert!(got.contains(&ev("/shared/x", "w")));
    assert!(got.contains(&ev("/shared/y", "w")));
    assert_eq!(h.dir(0, "/shared"), Ok(vec!["y".into()]));
    assert_eq!(
        h.get_perms(0, "/shared/y"),
        Ok(vec!["n3".into(), "b3".into(), "r4".into()])
    );
}

#[test]
fn transaction_quotas() {
    let q = Quotas {
        transactions: 2,
        transaction_nodes: 8,
        nodes: 5,
        ..Quotas::default()
    };
    let mut h = Harness::with_quotas(&[3], q);
    let a = h.start(3);
    let _b = h.start(3);
    assert_eq!(h.call(3, XsType::TransactionStart, 0, b"\0"), err("ENOSPC"));
    for _ in 0..20 {
        h.start(0); // dom0 is exempt
    }
    // Too many distinct nodes touched: the operation fails and the transaction cannot commit.
    for i in 0..7 {
        let p = alloc::format!("missing{i}");
        assert_eq!(h.call(3, XsType::Read, a, &args(&[&p])), err("ENOENT"));
    }
    let r = h.call(3, XsType::Read, a, &args(&["missing9"]));
    assert_eq!(r, err("ENOSPC"));
    assert_eq!(h.end(3, a, true), err("ENOSPC"));
    // Node quota counts nodes created inside the transaction.
    let t = h.start(3);
    assert_eq!(h.write_tx(3, t, "n1/n2/n3", "v"), okr()); // home + 3 = 4 owned
    assert_eq!(h.write_tx(3, t, "n4/n5", "v"), err("ENOSPC"));
    assert_eq!(h.write_tx(3, t, "n4", "v"), okr());
    assert_eq!(h.end(3, t, true), okr());
    assert_eq!(h.xs.nodes_owned(3), 5);
}

#[test]
fn read_sets_watches_and_nodes_are_charged_to_the_memory_quota() {
    let q = Quotas {
        memory: 8 * 1024,
        ..Quotas::default()
    };
    let mut h = Harness::with_quotas(&[3], q);
    let base = h.xs.memory_used(3);
    let t = h.start(3);
    // Each missing READ notes its path: the read set grows until the quota says ENOMEM.
    let mut first_error = None;
    for i in 0..200 {
        let p = alloc::format!("missing-node-with-a-long-name-{i}");
        match h.call(3, XsType::Read, t, &args(&[&p])) {
            Err(e) if e != "ENOENT" => {
                first_error = Some(e);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(first_error.as_deref(), Some("ENOMEM"));
    assert!(h.xs.memory_used(3) <= q.memory);
    assert_eq!(
        h.end(3, t, true),
        err("ENOMEM"),
        "the transaction is poisoned"
    );
    assert_eq!(h.xs.memory_used(3), base, "ending it frees its read set");
    // Nodes and watches share the same quota; dom0 is exempt.
    let big = "v".repeat(2000);
    let mut i = 0;
    while h.write(3, &alloc::format!("n{i}"), &big) == okr() {
        i += 1;
    }
    assert!(i > 0);
    assert_eq!(h.write(3, &alloc::format!("n{i}"), &big), err("ENOMEM"));
    assert_eq!(h.watch(3, "w", &"t".repeat(2000)), err("ENOMEM"));
    assert_eq!(h.write(0, "/local/domain/3/dom0", &big), okr());
    h.call(3, XsType::Rm, 0, &args(&["n0"])).unwrap();
    assert_eq!(
        h.watch(3, "w", &"t".repeat(1000)),
        okr(),
        "removal frees quota"
    );
}

#[test]
fn changes_held_for_commit_are_charged_too() {
    let q = Quotas {
        memory: 16 * 1024,
        ..Quotas::default()
    };
    let mut h = Harness::with_quotas(&[3], q);
    let t = h.start(3);
    // Rewriting one node keeps one overlay copy, but each write queues an announcement.
    let mut refused = None;
    for _ in 0..2000 {
        if let Err(e) = h.write_tx(3, t, "same", "v") {
            refused = Some(e);
            break;
        }
    }
    assert!(
        matches!(refused.as_deref(), Some("ENOMEM" | "ENOSPC")),
        "{refused:?}"
    );
    assert!(h.xs.memory_used(3) <= q.memory);
}
