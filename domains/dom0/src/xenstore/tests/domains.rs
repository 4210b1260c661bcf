//! Domain management: introduce/release, privileged requests, domain paths.

use super::*;

#[test]
fn introduce_creates_home_and_release_keeps_nodes() {
    let mut h = Harness::new(&[]);
    assert_eq!(h.xs.introduce(0), Err(AdminError::InvalidDomain(0)));
    assert_eq!(
        h.xs.introduce(DOMID_SELF),
        Err(AdminError::InvalidDomain(DOMID_SELF))
    );
    assert_eq!(h.xs.release(5), Err(AdminError::NotIntroduced(5)));
    h.xs.introduce(5).unwrap();
    assert!(h.xs.is_introduced(5));
    assert_eq!(h.write(5, "data", "1"), okr());
    assert_eq!(h.watch(5, "data", "t"), okr());
    assert_eq!(h.events(5), vec![ev("data", "t")]);
    // Re-introducing resets the connection: no more watches or queued output.
    h.xs.introduce(5).unwrap();
    assert!(h.xs.output(5).is_empty());
    assert_eq!(h.write(0, "/local/domain/5/data", "2"), okr());
    assert_eq!(h.events(5), vec![]);
    h.xs.release(5).unwrap();
    assert!(!h.xs.is_introduced(5));
    assert_eq!(h.xs.read_node("/local/domain/5/data"), Some(&b"2"[..]));
    assert!(h.xs.take_output(5, 100).is_empty());
    // A restart in place finds its nodes untouched.
    h.xs.introduce(5).unwrap();
    assert_eq!(h.read(5, "data"), Ok(b"2".to_vec()));
}

#[test]
fn privileged_requests_are_dom0_only() {
    let mut h = Harness::new(&[3]);
    for (ty, payload) in [
        (XsType::Introduce, args(&["4", "123", "7"])),
        (XsType::Release, args(&["3"])),
        (XsType::IsDomainIntroduced, args(&["3"])),
        (XsType::Resume, args(&["3"])),
        (XsType::Control, args(&["check"])),
    ] {
        assert_eq!(h.call(3, ty, 0, &payload), err("EACCES"), "{ty:?}");
    }
    assert!(!h.xs.is_introduced(4));
    let yes = |h: &mut Harness, d: &str| h.call(0, XsType::IsDomainIntroduced, 0, &args(&[d]));
    assert_eq!(yes(&mut h, "3"), Ok(b"T\0".to_vec()));
    assert_eq!(yes(&mut h, "4"), Ok(b"F\0".to_vec()));
    assert_eq!(yes(&mut h, "0"), Ok(b"T\0".to_vec()));
    assert_eq!(yes(&mut h, "x"), err("EINVAL"));
    assert_eq!(h.watch(0, "@introduceDomain", "i"), okr());
    assert_eq!(h.watch(0, "@releaseDomain", "r"), okr());
    h.events(0);
    h.ok(0, XsType::Introduce, 0, &args(&["4", "-123", "7"]));
    assert_eq!(yes(&mut h, "4"), Ok(b"T\0".to_vec()));
    assert_eq!(h.events(0), vec![ev("@introduceDomain", "i")]);
    assert_eq!(h.read(4, "/local/domain/4"), Ok(vec![]));
    h.ok(0, XsType::Resume, 0, &args(&["4"]));
    h.ok(0, XsType::Release, 0, &args(&["4"]));
    assert_eq!(h.events(0), vec![ev("@releaseDomain", "r")]);
    assert_eq!(
        h.xs.take_domain_events(),
        vec![
            DomainEvent::Introduced {
                domid: 4,
                gfn: -123,
                port: 7
            },
            DomainEvent::Released { domid: 4 }
        ]
    );
    assert_eq!(h.call(0, XsType::Release, 0, &args(&["4"])), err("ENOENT"));
    assert_eq!(h.call(0, XsType::Release, 0, &args(&["0"])), err("EINVAL"));
    assert_eq!(
        h.call(0, XsType::Introduce, 0, &args(&["4", "1"])),
        err("EINVAL")
    );
    assert_eq!(
        h.call(0, XsType::Introduce, 0, &args(&["4", "1", "0"])),
        err("EINVAL")
    );
    assert_eq!(
        h.call(0, XsType::Introduce, 0, &args(&["0", "1", "5"])),
        err("EINVAL")
    );
    assert_eq!(
        h.call(0, XsType::Control, 0, &args(&["check"])),
        err("EINVAL")
    );
}
