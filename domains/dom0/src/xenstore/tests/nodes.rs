//! Node operations: values, directories, removal, paths and permissions.

use super::*;

#[test]
fn initial_tree_and_homes() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.dir(0, "/"), Ok(vec!["local".into(), "tool".into()]));
    assert_eq!(h.dir(0, "/local/domain"), Ok(vec!["3".into()]));
    assert_eq!(h.get_perms(0, "/local/domain/3"), Ok(vec!["n3".into()]));
    assert_eq!(h.get_perms(0, "@releaseDomain"), Ok(vec!["n0".into()]));
    // Guests cannot see the root, but can see their home.
    assert_eq!(h.dir(3, "/"), Err("EACCES".into()));
    assert_eq!(h.read(3, "/local/domain/3"), Ok(vec![]));
    assert_eq!(h.read(3, "/local/domain"), err("EACCES"));
    assert_eq!(h.xs.nodes_owned(3), 1);
}

#[test]
fn write_read_directory_mkdir_rm() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.write(0, "/a/b/c", "hello"), okr());
    assert_eq!(h.read(0, "/a/b/c"), Ok(b"hello".to_vec()));
    assert_eq!(h.read(0, "/a/b"), Ok(vec![]), "parents are created empty");
    assert_eq!(h.write(0, "/a/b/d", "x\0y"), okr(), "values may hold NULs");
    assert_eq!(h.read(0, "/a/b/d"), Ok(b"x\0y".to_vec()));
    assert_eq!(h.dir(0, "/a/b"), Ok(vec!["c".into(), "d".into()]));
    assert_eq!(h.write(0, "/a/b/c", ""), okr());
    assert_eq!(h.read(0, "/a/b/c"), Ok(vec![]));
    // MKDIR leaves an existing value alone.
    h.ok(0, XsType::Mkdir, 0, &args(&["/a/b/d"]));
    assert_eq!(h.read(0, "/a/b/d"), Ok(b"x\0y".to_vec()));
    h.ok(0, XsType::Mkdir, 0, &args(&["/m/n"]));
    assert_eq!(h.dir(0, "/m"), Ok(vec!["n".into()]));
    // RM removes the subtree; removing a missing child of an existing node is fine.
    h.ok(0, XsType::Rm, 0, &args(&["/a/b"]));
    assert_eq!(h.read(0, "/a/b/c"), err("ENOENT"));
    assert_eq!(h.dir(0, "/a"), Ok(vec![]));
    h.ok(0, XsType::Rm, 0, &args(&["/a/zz"]));
    assert_eq!(h.call(0, XsType::Rm, 0, &args(&["/a/zz/y"])), err("ENOENT"));
    assert_eq!(h.call(0, XsType::Rm, 0, &args(&["/"])), err("EINVAL"));
    assert_eq!(h.read(0, "/nope"), err("ENOENT"));
}

#[test]
fn relative_paths_resolve_below_home() {
    let mut h = Harness::new(&[3, 4]);
    assert_eq!(h.write(3, "device/vif/0/state", "1"), okr());
    assert_eq!(
        h.read(3, "/local/domain/3/device/vif/0/state"),
        Ok(b"1".to_vec())
    );
    assert_eq!(
        h.read(0, "/local/domain/3/device/vif/0/state"),
        Ok(b"1".to_vec())
    );
    assert_eq!(h.dir(3, "device"), Ok(vec!["vif".into()]));
    // Domain 4's relative path is its own home, where "device" does not exist.
    assert_eq!(h.read(4, "device/vif/0/state"), err("ENOENT"));
    let gdp = h.call(3, XsType::GetDomainPath, 0, &args(&["7"]));
    assert_eq!(gdp, Ok(b"/local/domain/7\0".to_vec()));
    assert_eq!(
        h.call(3, XsType::GetDomainPath, 0, &args(&["70000"])),
        err("EINVAL")
    );
    assert_eq!(
        h.call(3, XsType::GetDomainPath, 0, &args(&["x"])),
        err("EINVAL")
    );
}

#[test]
fn invalid_paths_are_einval() {
    let mut h = Harness::new(&[3]);
    for bad in ["", "/a/", "/a//b", "a b", "/a.b", "@introduceDomain", "/é"] {
        assert_eq!(h.write(0, bad, "v"), err("EINVAL"), "{bad:?}");
        assert_eq!(h.read(3, bad), err("EINVAL"), "{bad:?}");
    }
    let long = alloc::format!("/{}", "a".repeat(3072));
    assert_eq!(h.write(0, &long, "v"), err("EINVAL"));
    // Guests are limited to path_max below their home; dom0 only by the absolute limit.
    let rel = alloc::format!("a/{}", "x".repeat(2047));
    assert_eq!(h.write(3, &rel, "v"), err("EINVAL"));
    assert_eq!(h.write(3, &rel[..2048], "v"), okr());
    assert_eq!(h.write(0, &alloc::format!("/{rel}"), "v"), okr());
    // Payload shapes: READ needs exactly one NUL at the end; WRITE at least one.
    assert_eq!(h.call(3, XsType::Read, 0, b"x"), err("EINVAL"));
    assert_eq!(h.call(3, XsType::Read, 0, b"x\0y\0"), err("EINVAL"));
    assert_eq!(h.call(3, XsType::Write, 0, b"novalue"), err("EINVAL"));
    assert_eq!(h.call(3, XsType::Read, 0, b"\xff\xfe\0"), err("EINVAL"));
}

#[test]
fn permissions_deny_and_are_inherited() {
    let mut h = Harness::new(&[3, 4]);
    // dom0 writes a backend area readable by 3 only.
    assert_eq!(h.write(0, "/be/vif/3", "x"), okr());
    assert_eq!(h.set_perms(0, "/be/vif/3", &["n0", "r3"]), okr());
    assert_eq!(h.read(3, "/be/vif/3"), Ok(b"x".to_vec()));
    assert_eq!(h.read(4, "/be/vif/3"), err("EACCES"));
    assert_eq!(h.write(3, "/be/vif/3", "y"), err("EACCES"));
    // A missing node under a readable parent is ENOENT; under an unreadable one EACCES.
    assert_eq!(h.read(3, "/be/vif/3/missing"), err("ENOENT"));
    assert_eq!(h.read(4, "/be/vif/3/missing"), err("EACCES"));
    // Children created by dom0 inherit the parent's permissions unchanged.
    assert_eq!(h.write(0, "/be/vif/3/state", "1"), okr());
    assert_eq!(
        h.get_perms(3, "/be/vif/3/state"),
        Ok(vec!["n0".into(), "r3".into()])
    );
    // A guest with write access creates nodes it owns, with the parent's other entries.
    assert_eq!(h.set_perms(0, "/be/vif/3", &["n0", "b3", "r4"]), okr());
    assert_eq!(h.write(3, "/be/vif/3/new/leaf", "z"), okr());
    let want: Vec<String> = vec!["n3".into(), "b3".into(), "r4".into()];
    assert_eq!(h.get_perms(0, "/be/vif/3/new/leaf"), Ok(want.clone()));
    assert_eq!(h.get_perms(0, "/be/vif/3/new"), Ok(want));
    assert_eq!(h.read(4, "/be/vif/3/new/leaf"), Ok(b"z".to_vec()));
    // The owner entry's letter is the default for others.
    assert_eq!(h.set_perms(0, "/pub", &["r0"]), err("ENOENT"));
    assert_eq!(h.write(0, "/pub", "p"), okr());
    assert_eq!(h.set_perms(0, "/pub", &["r0"]), okr());
    assert_eq!(h.read(4, "/pub"), Ok(b"p".to_vec()));
    assert_eq!(h.write(4, "/pub", "q"), err("EACCES"));
    assert_eq!(h.call(4, XsType::Rm, 0, &args(&["/pub"])), err("EACCES"));
}

#[test]
fn set_perms_only_by_owner_and_owner_change_only_by_dom0() {
    let mut h = Harness::new(&[3, 4]);
    assert_eq!(h.write(3, "data", "v"), okr());
    assert_eq!(h.get_perms(3, "data"), Ok(vec!["n3".into()]));
    // Non-owner, even with write access: EACCES.
    assert_eq!(h.set_perms(3, "data", &["n3", "b4"]), okr());
    assert_eq!(h.write(4, "/local/domain/3/data", "w"), okr());
    assert_eq!(
        h.set_perms(4, "/local/domain/3/data", &["b4"]),
        err("EACCES")
    );
    // The owner may not give the node away.
    assert_eq!(h.set_perms(3, "data", &["n4"]), err("EPERM"));
    assert_eq!(h.set_perms(3, "data", &["x3"]), err("EINVAL"));
    assert_eq!(h.set_perms(3, "data", &["n70000"]), err("EINVAL"));
    assert_eq!(
        h.call(3, XsType::SetPerms, 0, &args(&["data"])),
        err("EINVAL")
    );
    // dom0 may.
    assert_eq!(h.set_perms(0, "/local/domain/3/data", &["n4"]), okr());
    assert_eq!(h.xs.nodes_owned(4), 2);
    assert_eq!(h.read(3, "data"), err("EACCES"));
    // Special nodes: only dom0 by default; set_perms opens them up.
    assert_eq!(h.get_perms(3, "@releaseDomain"), Err("EACCES".into()));
    assert_eq!(h.set_perms(0, "@releaseDomain", &["n0", "r3"]), okr());
    assert_eq!(
        h.get_perms(3, "@releaseDomain"),
        Ok(vec!["n0".into(), "r3".into()])
    );
}

#[test]
fn directory_part_pages_long_lists() {
    let mut h = Harness::new(&[]);
    for i in 0..400 {
        let name = alloc::format!("/big/child-number-{i:04}");
        assert_eq!(h.write(0, &name, ""), okr());
    }
    assert_eq!(h.dir(0, "/big"), Err("E2BIG".into()));
    let mut all = Vec::new();
    let mut offset = 0usize;
    let mut generation = None;
    loop {
        let off = alloc::format!("{offset}");
        let raw = h
            .call(0, XsType::DirectoryPart, 0, &args(&["/big", &off]))
            .unwrap();
        assert!(raw.len() <= 4096);
        let gen_end = raw.iter().position(|&b| b == 0).unwrap();
        let g = raw[..gen_end].to_vec();
        assert!(
            generation.get_or_insert(g.clone()) == &g,
            "generation is stable"
        );
        let body = &raw[gen_end + 1..];
        if body == b"\0" || body.is_empty() {
            break;
        }
        let (list, done) = match body.strip_suffix(b"\0\0") {
            Some(l) => (l, true),
            None => (body.strip_suffix(b"\0").unwrap(), false),
        };
        all.extend(strings(&[list, b"\0"].concat()));
        offset += list.len() + 1;
        if done {
            break;
        }
    }
    assert_eq!(all.len(), 400);
    assert_eq!(all[399], "child-number-0399");
}

#[test]
fn dom0_helpers() {
    let mut h = Harness::new(&[5]);
    let perms = [Perm::new(5, Access::None), Perm::new(0, Access::Read)];
    h.xs.set_node("/local/domain/5/device/vbd/51712/backend", b"/be", &perms)
        .unwrap();
    assert_eq!(
        h.xs.read_node("/local/domain/5/device/vbd/51712/backend"),
        Some(&b"/be"[..])
    );
    assert_eq!(h.read(5, "device/vbd/51712/backend"), Ok(b"/be".to_vec()));
    assert_eq!(h.xs.set_node("bad/", b"", &[]), Err(XsError::Invalid));
    h.xs.remove_node("/local/domain/5/device").unwrap();
    assert_eq!(h.xs.children("/local/domain/5"), Some(&[][..]));
    assert_eq!(XsError::Again.to_string(), "EAGAIN");
    assert!(XsError::ALL.iter().all(|e| e.name().starts_with('E')));
}
