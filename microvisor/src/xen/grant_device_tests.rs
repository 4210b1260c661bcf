//! Host tests for device maps (`GNTMAP_device_map`, [`GrantTables::map_dma`]): who gets a
//! device address, that the pin lasts until the unmap, and that a granter's memory is
//! reported busy while a device may write it.

use super::fake::{host, ram, Env};
use super::*;
use protocol::xen::structs::{gntmap, GnttabMapGrantRef, GnttabUnmapGrantRef};

const RW: u16 = gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING;
const RO: u16 = gtf::PERMIT_ACCESS | gtf::READING;

fn op(granter: DomId, gref: GrantRef, flags: u32, host_addr: u64) -> GnttabMapGrantRef {
    GnttabMapGrantRef {
        host_addr,
        flags,
        gref,
        dom: granter,
        status: 0,
        handle: 0,
        dev_bus_addr: 0,
    }
}

fn map_dma(env: &mut Env, flags: u32, dma: bool) -> Result<Mapped, i16> {
    env.gt
        .map_dma(&mut env.mem, 0, &op(1, 3, flags, 0), dma, ram)
}

fn unmap(env: &mut Env, handle: GrantHandle, host_addr: u64, bus: u64) -> Result<Unmapped, i16> {
    let u = GnttabUnmapGrantRef {
        host_addr,
        dev_bus_addr: bus,
        handle,
        status: 0,
        _pad0: 0,
    };
    env.gt.unmap(&mut env.mem, 0, &u)
}

#[test]
fn device_map_needs_dma_permission() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 3, 0, 9, false);
    for flags in [gntmap::DEVICE_MAP, gntmap::DEVICE_MAP | gntmap::HOST_MAP] {
        assert_eq!(map_dma(&mut env, flags, false), Err(gntst::GENERAL_ERROR));
    }
    assert_eq!(
        env.flags(1, 3),
        gtf::PERMIT_ACCESS,
        "a refused map pins nothing"
    );
    assert!(!env.gt.device_mapped(1));
}

#[test]
fn device_only_map_pins_until_unmapped() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 3, 0, 9, false);
    let m = map_dma(&mut env, gntmap::DEVICE_MAP, true).unwrap();
    assert_eq!(m.frame_pa, ram(1, 9).unwrap());
    assert!(m.device && !m.host);
    assert_eq!(m.host_addr.as_u64(), 0, "nothing goes into stage 2");
    assert_eq!(env.flags(1, 3), RW);
    assert!(env.gt.device_mapped(1));
    assert!(!env.gt.device_mapped(0));
    // A wrong device address changes nothing; the host address is not looked at.
    let wrong = ram(1, 10).unwrap().as_u64();
    assert_eq!(
        unmap(&mut env, m.handle, 0x1234_5000, wrong),
        Err(gntst::GENERAL_ERROR)
    );
    assert_eq!(env.flags(1, 3), RW);
    let bus = m.frame_pa.as_u64();
    let u = unmap(&mut env, m.handle, 0x1234_5000, bus).unwrap();
    assert!(!u.host && !u.revoked);
    assert_eq!(env.flags(1, 3), gtf::PERMIT_ACCESS);
    assert!(!env.gt.device_mapped(1));
    assert_eq!(unmap(&mut env, m.handle, 0, 0), Err(gntst::BAD_HANDLE));
}

#[test]
fn readonly_and_combined_device_maps() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 3, 0, 9, true);
    assert_eq!(
        map_dma(&mut env, gntmap::DEVICE_MAP, true),
        Err(gntst::GENERAL_ERROR)
    );
    let ro = map_dma(&mut env, gntmap::DEVICE_MAP | gntmap::READONLY, true).unwrap();
    assert_eq!(env.flags(1, 3), RO | gtf::READONLY);
    assert!(!unmap(&mut env, ro.handle, 0, 0).unwrap().host);
    assert_eq!(env.flags(1, 3), gtf::PERMIT_ACCESS | gtf::READONLY);
    env.grant(1, 4, 0, 11, false);
    let both = env
        .gt
        .map_dma(
            &mut env.mem,
            0,
            &op(
                1,
                4,
                gntmap::DEVICE_MAP | gntmap::HOST_MAP,
                host(2).as_u64() + 8,
            ),
            true,
            ram,
        )
        .unwrap();
    assert!(both.host && both.device);
    assert_eq!(both.host_addr, host(2));
    // A host map is still unmapped at its page.
    assert_eq!(
        unmap(&mut env, both.handle, host(3).as_u64(), 0),
        Err(gntst::GENERAL_ERROR)
    );
    assert!(
        unmap(&mut env, both.handle, host(2).as_u64(), 0)
            .unwrap()
            .host
    );
    assert_eq!(env.flags(1, 4), gtf::PERMIT_ACCESS);
}

#[test]
fn the_mappers_death_releases_its_device_maps() {
    // A driver domain restarted in place (DESIGN §6.2): its devices were reset first, then
    // closing it drops every pin, device maps included.
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 3, 0, 9, false);
    let m = map_dma(&mut env, gntmap::DEVICE_MAP, true).unwrap();
    assert!(env.gt.device_mapped(1));
    let closed = env.gt.close_domain(&mut env.mem, 0).unwrap();
    assert_eq!(closed.released.len(), 1);
    assert!(closed.released[0].device && !closed.released[0].host);
    assert_eq!(closed.released[0].handle, m.handle);
    assert_eq!(env.flags(1, 3), gtf::PERMIT_ACCESS);
    assert!(!env.gt.device_mapped(1));
}
