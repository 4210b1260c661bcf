//! Host tests for the capability table.

use super::*;

fn console() -> Capability {
    Capability {
        object: Object::Console,
        rights: Rights::WRITE,
    }
}

fn domain(domid: u16, instance: u32) -> Capability {
    Capability {
        object: Object::Domain {
            domid: DomainId(domid),
            instance,
        },
        rights: Rights::READ | Rights::CONTROL,
    }
}

#[test]
fn insert_then_get() {
    let mut t = CapTable::new();
    let h = t.insert(console()).unwrap();
    assert_eq!(
        h,
        CapHandle {
            index: 0,
            generation: 1
        }
    );
    let h2 = t.insert(domain(3, 0)).unwrap();
    assert_eq!(h2.index, 1);
    assert_eq!(t.get(h), Ok(&console()));
    assert_eq!(t.get(h2), Ok(&domain(3, 0)));
    // Handles survive the register round trip.
    assert_eq!(
        t.get(CapHandle::from_raw(h2.to_raw()).unwrap()),
        Ok(&domain(3, 0))
    );
}

#[test]
fn get_mut_edits_in_place() {
    let mut t = CapTable::new();
    let h = t
        .insert(Capability {
            object: Object::Memory { quota_pages: 10 },
            rights: Rights::WRITE,
        })
        .unwrap();
    let cap = t.lookup_mut(h, CapKind::Memory, Rights::WRITE).unwrap();
    if let Object::Memory { quota_pages } = &mut cap.object {
        *quota_pages -= 4;
    }
    assert_eq!(t.get(h).unwrap().object, Object::Memory { quota_pages: 6 });
    assert_eq!(
        t.lookup_mut(h, CapKind::Device, Rights::empty()).err(),
        Some(CapError::WrongKind)
    );
    assert_eq!(
        t.lookup_mut(h, CapKind::Memory, Rights::READ).err(),
        Some(CapError::NoRights)
    );
}

#[test]
fn removed_handles_are_stale_and_slot_reuse_gets_a_new_generation() {
    let mut t = CapTable::new();
    let h = t.insert(console()).unwrap();
    assert_eq!(t.remove(h), Ok(console()));
    assert_eq!(t.get(h), Err(CapError::Stale));
    assert_eq!(t.remove(h), Err(CapError::Stale));
    let h2 = t.insert(domain(1, 0)).unwrap();
    assert_eq!(
        h2,
        CapHandle {
            index: 0,
            generation: 2
        }
    );
    // The old handle must not reach the new object.
    assert_eq!(t.get(h), Err(CapError::Stale));
    assert_eq!(t.get_mut(h).err(), Some(CapError::Stale));
    assert_eq!(t.get(h2), Ok(&domain(1, 0)));
}

#[test]
fn generations_never_repeat_for_a_slot() {
    let mut t = CapTable::new();
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let h = t.insert(console()).unwrap();
        assert_eq!(h.index, 0);
        assert!(!seen.contains(&h.generation));
        seen.push(h.generation);
        t.remove(h).unwrap();
    }
    for &g in &seen {
        assert_eq!(
            t.get(CapHandle {
                index: 0,
                generation: g
            }),
            Err(CapError::Stale)
        );
    }
}

#[test]
fn exhausted_generation_retires_the_slot() {
    let mut t = CapTable::new();
    t.slots[0].generation = u32::MAX - 1;
    let h = t.insert(console()).unwrap();
    assert_eq!(h.generation, u32::MAX - 1);
    t.remove(h).unwrap();
    // Slot 0 is never handed out again; slot 1 is.
    assert_eq!(t.insert(console()).unwrap().index, 1);
    assert_eq!(t.get(h), Err(CapError::Stale));
    assert_eq!(
        t.get(CapHandle {
            index: 0,
            generation: u32::MAX
        }),
        Err(CapError::InvalidHandle)
    );
}

#[test]
fn revoke_removes_matching_and_makes_them_stale() {
    let mut t = CapTable::new();
    let old = t.insert(domain(4, 1)).unwrap();
    let other = t.insert(domain(5, 1)).unwrap();
    let old2 = t.insert(domain(4, 1)).unwrap();
    let con = t.insert(console()).unwrap();
    // Domain 4 restarted: everything naming its first incarnation dies.
    let n = t.revoke(|c| {
        matches!(
            c.object,
            Object::Domain {
                domid: DomainId(4),
                instance: 1
            }
        )
    });
    assert_eq!(n, 2);
    assert_eq!(t.get(old), Err(CapError::Stale));
    assert_eq!(t.get(old2), Err(CapError::Stale));
    assert!(t.get(other).is_ok());
    assert!(t.get(con).is_ok());
    assert_eq!(t.revoke(|_| false), 0);
    let listed: Vec<_> = t.iter().map(|(h, _)| h).collect();
    assert_eq!(listed, [other, con]);
}

#[test]
fn kind_then_rights() {
    let mut t = CapTable::new();
    let h = t.insert(domain(2, 0)).unwrap();
    assert!(t.lookup(h, CapKind::Domain, Rights::CONTROL).is_ok());
    assert!(t.lookup(h, CapKind::Domain, Rights::empty()).is_ok());
    assert_eq!(
        t.lookup(h, CapKind::Console, Rights::READ),
        Err(CapError::WrongKind)
    );
    // Kind is checked before rights.
    assert_eq!(
        t.lookup(h, CapKind::Console, Rights::DELEGATE),
        Err(CapError::WrongKind)
    );
    assert_eq!(
        t.lookup(h, CapKind::Domain, Rights::CONTROL | Rights::WRITE),
        Err(CapError::NoRights)
    );
    assert_eq!(
        t.lookup(h, CapKind::Domain, Rights::DELEGATE),
        Err(CapError::NoRights)
    );
}

#[test]
fn object_kinds() {
    let cases = [
        (
            Object::Domain {
                domid: DomainId::DOM0,
                instance: 0,
            },
            CapKind::Domain,
        ),
        (Object::Memory { quota_pages: 1 }, CapKind::Memory),
        (Object::Device { index: 2 }, CapKind::Device),
        (Object::Module { index: 3 }, CapKind::Module),
        (Object::Console, CapKind::Console),
    ];
    for (o, k) in cases {
        assert_eq!(o.kind(), k);
    }
}

#[test]
fn full_table() {
    let mut t = CapTable::new();
    let handles: Vec<_> = (0..CAP_SLOTS)
        .map(|_| t.insert(console()).unwrap())
        .collect();
    assert_eq!(t.insert(console()), Err(CapError::NoSlots));
    t.remove(handles[17]).unwrap();
    assert_eq!(
        t.insert(console()),
        Ok(CapHandle {
            index: 17,
            generation: 2
        })
    );
    assert_eq!(t.iter().count(), CAP_SLOTS);
}

#[test]
fn forged_handles_are_invalid() {
    let mut t = CapTable::new();
    let h = t.insert(console()).unwrap();
    let forged = [
        CapHandle {
            index: CAP_SLOTS as u16,
            generation: 1,
        },
        CapHandle {
            index: u16::MAX,
            generation: 1,
        },
        CapHandle {
            index: 0,
            generation: 0,
        },
        CapHandle {
            index: 0,
            generation: 2,
        },
        CapHandle {
            index: 0,
            generation: u32::MAX,
        },
        // Right generation, empty slot.
        CapHandle {
            index: 1,
            generation: 1,
        },
        CapHandle {
            index: 1,
            generation: 0,
        },
    ];
    for f in forged {
        assert_eq!(t.get(f), Err(CapError::InvalidHandle), "{f:?}");
        assert_eq!(t.get_mut(f).err(), Some(CapError::InvalidHandle), "{f:?}");
        assert_eq!(t.remove(f), Err(CapError::InvalidHandle), "{f:?}");
        assert_eq!(
            t.lookup(f, CapKind::Console, Rights::empty()),
            Err(CapError::InvalidHandle)
        );
    }
    assert_eq!(t.get(h), Ok(&console()));
}

/// F13: DomainCreate asks `holds(Memory, WRITE)` before decoding the message, so a domain
/// with only a console (any guest) is refused without any decoding.
#[test]
fn holds_needs_a_capability_of_the_kind_with_the_rights() {
    let mut t = CapTable::new();
    t.insert(console()).unwrap();
    assert_eq!(
        t.holds(CapKind::Memory, Rights::WRITE),
        Err(CapError::NoRights)
    );
    t.insert(Capability {
        object: Object::Memory { quota_pages: 1 },
        rights: Rights::READ,
    })
    .unwrap();
    assert_eq!(
        t.holds(CapKind::Memory, Rights::WRITE),
        Err(CapError::NoRights)
    );
    t.insert(Capability {
        object: Object::Memory { quota_pages: 1 },
        rights: Rights::READ | Rights::WRITE,
    })
    .unwrap();
    assert_eq!(t.holds(CapKind::Memory, Rights::WRITE), Ok(()));
}
