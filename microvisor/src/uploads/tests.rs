use super::*;

/// A table whose seals are plain numbers (the board's are the memory doorway's).
type Table = Uploads<u32>;

fn upload(label: &str, size: u64) -> Upload {
    let owner = (DomainId(0), CapHandle::from_raw(1).unwrap());
    Upload::new(label, PhysAddr::new(0x4800_0000), size, owner).unwrap()
}

#[test]
fn labels_are_bounded_and_kept() {
    let owner = (DomainId(0), CapHandle::from_raw(1).unwrap());
    let base = PhysAddr::new(0x4800_0000);
    assert!(Upload::new("", base, 1, owner).is_none());
    assert!(Upload::new(&"x".repeat(MAX_LABEL), base, 1, owner).is_none());
    let u = upload("up-0123456789ab", 4097);
    assert_eq!(u.label(), "up-0123456789ab");
    assert_eq!(u.pages(), 2);
    assert_eq!(pages_for(0), Err(CapError::InvalidArgument));
    assert_eq!(pages_for(1), Ok(1));
}

#[test]
fn indices_never_collide_with_boot_modules() {
    let mut t = Table::default();
    let i = t.insert(upload("a", 10)).unwrap();
    assert_eq!(i, UPLOAD_INDEX_BASE);
    assert!(t.get(0).is_none(), "boot module 0 is not an upload");
    assert!(t.get(usize::from(i)).is_some());
    assert_eq!(slot_of(usize::from(UPLOAD_INDEX_BASE) + MAX_UPLOADS), None);
    for n in 1..MAX_UPLOADS {
        assert_eq!(t.insert(upload("b", 10)), Ok(UPLOAD_INDEX_BASE + n as u16));
    }
    assert!(!t.has_room());
    assert_eq!(t.insert(upload("c", 10)), Err(CapError::NoSlots));
}

#[test]
fn writes_stay_inside_and_stop_at_seal() {
    let mut t = Table::default();
    let i = usize::from(t.insert(upload("a", 5000)).unwrap());
    assert_eq!(t.write_target(i, 0, 4096), Ok(0x4800_0000));
    assert_eq!(t.write_target(i, 4096, 904), Ok(0x4800_1000));
    assert_eq!(t.write_target(i, 4096, 905), Err(CapError::InvalidArgument));
    assert_eq!(
        t.write_target(i, u64::MAX, 2),
        Err(CapError::InvalidArgument)
    );
    assert_eq!(t.write_target(i + 1, 0, 1), Err(CapError::InvalidHandle));
    t.seal(i, |_| Some(7));
    assert_eq!(t.write_target(i, 0, 1), Err(CapError::WrongState));
}

#[test]
fn a_seal_is_made_once_and_leaves_only_with_the_freed_upload() {
    let mut t = Table::default();
    let i = usize::from(t.insert(upload("a", 5000)).unwrap());
    let mut made = 0;
    t.seal(i, |u| {
        made += 1;
        assert_eq!(u.base, PhysAddr::new(0x4800_0000));
        Some(7)
    });
    // Sealing again (a second domain built from it) keeps the first seal.
    t.seal(i, |_| {
        made += 1;
        Some(8)
    });
    assert_eq!(made, 1);
    // Not while a domain uses it, nor while its creator holds it.
    assert!(t.drop_holder(i, |x| x == i).is_none());
    assert!(t.reclaim(|x| x == i).is_empty());
    let freed = t.reclaim(|_| false);
    assert_eq!(freed.len(), 1);
    assert_eq!(freed[0].seal, Some(7));
    assert_eq!(freed[0].upload.size, 5000);
    // The slot's next upload starts unsealed, with no seal.
    let j = usize::from(t.insert(upload("b", 10)).unwrap());
    assert_eq!(j, i);
    let freed = t.drop_holder(j, |_| false).unwrap();
    assert_eq!(freed.seal, None);
    // A boot module's index seals nothing.
    t.seal(0, |_| unreachable!("boot modules have no seal"));
}

#[test]
fn freed_only_when_neither_held_nor_used() {
    let mut t = Table::default();
    let i = usize::from(t.insert(upload("a", 10)).unwrap());
    // Nothing is reclaimed while the creator holds it.
    assert!(t.reclaim(|_| false).is_empty());
    // Dropped while a domain uses it: kept, then reclaimed when the domain is gone.
    assert!(t.drop_holder(i, |x| x == i).is_none());
    assert!(t.get(i).is_some());
    assert!(t.reclaim(|x| x == i).is_empty());
    let freed = t.reclaim(|_| false);
    assert_eq!(freed.len(), 1);
    assert!(t.get(i).is_none());
    // Dropped while unused: freed at once; a second drop finds nothing.
    let j = usize::from(t.insert(upload("b", 10)).unwrap());
    assert!(t.drop_holder(j, |_| false).is_some());
    assert!(t.drop_holder(j, |_| false).is_none());
}
