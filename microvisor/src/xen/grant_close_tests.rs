//! Host tests for closing domains' grant state (DESIGN §6 restarts) and the builder's
//! reserved entries.
// These tests look at the grant entries; the stage-2 half of `Mapped`/`Unmapped` that the
// lint guards belongs to the glue.
#![allow(unused_must_use)]

use super::fake::{host, ram, Env};
use super::*;

const RW: u16 = gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING;

fn h(n: u64) -> u64 {
    host(n).as_u64()
}

#[test]
fn close_of_a_mapper_releases_its_pins() {
    let mut env = Env::new(&[0, 1, 2]);
    env.grant(1, 1, 2, 5, false);
    env.grant(1, 2, 2, 6, false);
    env.grant(1, 3, 0, 7, false);
    let a = env.map(2, 1, 1, false, h(0)).unwrap();
    env.map(2, 1, 2, true, h(1)).unwrap();
    env.map(2, 1, 2, true, h(2)).unwrap();
    env.map(0, 1, 3, false, h(0)).unwrap();
    let closed = env.gt.close_domain(&mut env.mem, 2).unwrap();
    assert_eq!(closed.released.len(), 3);
    assert_eq!(
        closed.released[0],
        HeldMapping {
            mapper: 2,
            handle: a.handle,
            granter: 1,
            gref: 1,
            host_addr: host(0),
            frame_pa: ram(1, 5).unwrap(),
            readonly: false,
            host: true,
            device: false,
        }
    );
    assert!(closed.revoked.is_empty());
    assert_eq!(closed.frames.len(), 1);
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
    assert_eq!(env.flags(1, 2), gtf::PERMIT_ACCESS);
    assert_eq!(env.flags(1, 3), RW, "another mapper's pin stays");
    // The restarted mapper maps the same grants again (DESIGN §6).
    env.gt.open_domain(2, 4, 8).unwrap();
    assert_eq!(env.map(2, 1, 1, false, h(0)).map(|m| m.handle), Ok(0));
}

#[test]
fn close_of_a_granter_revokes_others_mappings() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    env.grant(1, 2, 1, 6, false);
    let m = env.map(0, 1, 1, false, h(0)).unwrap();
    env.map(1, 1, 2, false, h(9)).unwrap(); // its own grant: released, not revoked
    let table_frame = env.gt.table(1).unwrap().frames[0];
    let closed = env.gt.close_domain(&mut env.mem, 1).unwrap();
    assert_eq!(closed.frames, vec![table_frame]);
    assert_eq!(closed.released.len(), 1);
    assert_eq!(closed.revoked.len(), 1);
    assert_eq!(
        (closed.revoked[0].mapper, closed.revoked[0].handle),
        (0, m.handle)
    );
    // Restart with the same id; the tombstone never touches the new table.
    env.gt.open_domain(1, 4, 8).unwrap();
    env.grow(1, 0).unwrap();
    env.grant(1, 1, 0, 5, false);
    let again = env.map(0, 1, 1, false, h(1)).unwrap();
    assert_ne!(again.handle, m.handle);
    let u = env.unmap(0, m.handle, h(0)).unwrap();
    assert!(u.revoked);
    assert_eq!(u.frame_pa, ram(1, 5).unwrap());
    assert_eq!(env.flags(1, 1), RW, "the new mapping's pin is intact");
    assert_eq!(env.unmap(0, m.handle, h(0)), Err(gntst::BAD_HANDLE));
}

#[test]
fn close_of_a_mapper_drops_its_tombstones() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    env.map(0, 1, 1, false, h(0)).unwrap();
    let _ = env.gt.close_domain(&mut env.mem, 1).unwrap();
    let closed = env.gt.close_domain(&mut env.mem, 0).unwrap();
    assert!(closed.released.is_empty() && closed.revoked.is_empty());
}

#[test]
fn reserve_writes_builder_grants() {
    let mut env = Env::new(&[0, 1]);
    env.gt
        .reserve(&mut env.mem, 1, 0, 0, 0x3900, false)
        .unwrap();
    env.gt.reserve(&mut env.mem, 1, 1, 0, 0x3901, true).unwrap();
    assert_eq!(
        env.entry(1, 0),
        GrantEntryV1 {
            flags: gtf::PERMIT_ACCESS,
            domid: 0,
            frame: 0x3900
        }
    );
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS | gtf::READONLY);
    assert_eq!(
        env.gt.reserve(&mut env.mem, 1, 512, 0, 1, false),
        Err(SetupError::BadRef)
    );
    assert_eq!(
        env.gt.reserve(&mut env.mem, 1, 2, 0, 1 << 32, false),
        Err(SetupError::FrameTooLarge)
    );
    assert_eq!(
        env.gt.reserve(&mut env.mem, 4, 0, 0, 1, false),
        Err(SetupError::NotOpen)
    );
    env.gt.reserve(&mut env.mem, 1, 3, 0, 8, false).unwrap();
    env.map(0, 1, 3, true, h(0)).unwrap();
    assert_eq!(
        env.gt.reserve(&mut env.mem, 1, 3, 0, 9, false),
        Err(SetupError::EntryInUse)
    );
}
