//! Grants to ourselves: with our grant-table frame mapped in the grant window we grant one
//! of our pages to our own domid and attack the mapping and copy paths around a grant that
//! is valid — mapped over RAM, beyond the IPA space, twice, writable when read-only, of a
//! frame outside RAM, unmapped at the wrong address — then check that no failed attempt
//! left a pin (`GTF_reading`/`GTF_writing`) behind.

use super::grants::{copy, frame, gref, map, unmap};
use super::{hv, op, Ctx, Page};
use alloc::format;
use bulkhead_runtime::xen::{map_slot_addr, MappedPage};
use protocol::layout::{GUEST_GNTTAB_BASE, GUEST_MAGIC_BASE};
use protocol::xen::structs::{
    gntmap, gntst, gtf, GnttabUnmapGrantRef, XenAddToPhysmap, DOMID_SELF,
};
use protocol::xen::{GnttabOp, Hypercall as H, MapSpace, MemoryOp, XenErrno, XenVersionOp};
use testguest::xencheck::Want;

/// Grant-map slots of the good mappings.
const SLOT: u32 = 100;
const SLOT_RO: u32 = 101;
/// Our entries: writable, read-only, and one naming a frame outside our RAM.
const E_RW: usize = 8;
const E_RO: usize = 9;
const E_BAD: usize = 10;

static SRC: Page = Page::new();
static DST: Page = Page::new();

/// Our grant-table frame 0, as mapped in the grant window.
fn table() -> MappedPage {
    MappedPage::new(GUEST_GNTTAB_BASE.as_u64())
}

/// Entry `i`: `(flags, domid, frame)`.
fn entry(i: usize) -> (u16, u16, u32) {
    let t = table();
    let w = t.load_u32(i * 8);
    (w as u16, (w >> 16) as u16, t.load_u32(i * 8 + 4))
}

/// Writes entry `i`, frame first so the grant is never live with a stale frame.
fn grant(i: usize, flags: u16, domid: u16, frame: u64) {
    let t = table();
    t.store_u32(i * 8 + 4, frame as u32);
    t.store_u32(i * 8, u32::from(flags) | u32::from(domid) << 16);
}

fn flags_are(cx: &mut Ctx, what: &str, i: usize, want: u16) {
    let f = entry(i).0;
    cx.truth(what, f == want, format!("{f:#x}"), format!("{want:#x}"));
}

/// Runs the self-grant attacks.
pub fn run(cx: &mut Ctx) {
    let mut x = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: MapSpace::GrantTable as u32,
        idx: 0,
        gpfn: GUEST_GNTTAB_BASE.as_u64() / 4096,
    };
    let x0 = op(H::MemoryOp, MemoryOp::AddToPhysmap as u32, &mut x);
    cx.ret("add_to_physmap grant frame 0", x0, Want::Ok(0));
    if x0 != 0 {
        return;
    }
    // The builder's reserved entries grant dom0 our console and xenstore pages.
    let magic = GUEST_MAGIC_BASE.as_u64() / 4096;
    for (i, name) in [(0, "console"), (1, "xenstore")] {
        let (f, d, fr) = entry(i);
        let got = (f & !(gtf::READING | gtf::WRITING), d, u64::from(fr));
        let want = (gtf::PERMIT_ACCESS, 0, magic + i as u64);
        let what = format!("gnttab reserved {name} entry");
        cx.truth(
            &what,
            got == want,
            format!("{got:x?}"),
            format!("{want:x?}"),
        );
    }

    let me = cx.me;
    SRC.fill(0x1234_5678_0000_0000);
    grant(E_RW, gtf::PERMIT_ACCESS, me, SRC.gfn());
    grant(E_RO, gtf::PERMIT_ACCESS | gtf::READONLY, me, SRC.gfn());
    grant(E_BAD, gtf::PERMIT_ACCESS, me, cx.ram_end / 4096 + 16);
    let (rw, ro) = (E_RW as u32, E_RO as u32);
    let (at, at_ro) = (map_slot_addr(SLOT), map_slot_addr(SLOT_RO));
    let host = gntmap::HOST_MAP;

    let (x0, st, h) = map(me, rw, host, at);
    cx.status("gnttab map own grant", x0, st, gntst::OKAY);
    if x0 != 0 || st != gntst::OKAY {
        return;
    }
    let page = MappedPage::new(at);
    let (w0, w511) = (SRC.word(0), SRC.word(511));
    let ok = page.load_u32(0) == w0 as u32 && page.load_u32(4092) == (w511 >> 32) as u32;
    cx.truth(
        "mapped grant shows the page",
        ok,
        format!("{:#x}", page.load_u32(0)),
        w0 as u32,
    );
    let pinned = gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING;
    flags_are(cx, "mapped entry is reading|writing", E_RW, pinned);
    page.store_u32(16, 0x00C0_FFEE);
    let w2 = SRC.word(2) as u32;
    cx.truth(
        "write through the mapping lands",
        w2 == 0x00C0_FFEE,
        w2,
        0x00C0_FFEE,
    );
    let x0 = hv(
        H::XenVersion,
        [XenVersionOp::GetFeatures as u64, at, 0, 0, 0],
    );
    cx.err("efault pointer into a grant mapping", x0, XenErrno::EFAULT);

    let bad_maps: [(&str, u32, u32, u64, i16); 7] = [
        ("over our RAM", rw, host, SRC.addr(), gntst::GENERAL_ERROR),
        (
            "beyond the IPA space",
            rw,
            host,
            1 << 40,
            gntst::GENERAL_ERROR,
        ),
        ("at u64::MAX", rw, host, u64::MAX, gntst::GENERAL_ERROR),
        (
            "over our grant frame",
            rw,
            host,
            GUEST_GNTTAB_BASE.as_u64(),
            gntst::GENERAL_ERROR,
        ),
        ("twice at one address", rw, host, at, gntst::GENERAL_ERROR),
        (
            "read-only grant writable",
            ro,
            host,
            at_ro,
            gntst::GENERAL_ERROR,
        ),
        (
            "frame outside granter RAM",
            E_BAD as u32,
            host,
            at_ro,
            gntst::BAD_PAGE,
        ),
    ];
    for (what, r, flags, addr, want) in bad_maps {
        let (x0, st, _) = map(me, r, flags, addr);
        cx.status(&format!("gnttab map {what}"), x0, st, want);
    }
    flags_are(
        cx,
        "bad-page entry left unpinned",
        E_BAD,
        gtf::PERMIT_ACCESS,
    );
    flags_are(
        cx,
        "read-only entry left unpinned",
        E_RO,
        gtf::PERMIT_ACCESS | gtf::READONLY,
    );

    let (x0, st, h2) = map(me, ro, host | gntmap::READONLY, at_ro);
    cx.status("gnttab map read-only grant read-only", x0, st, gntst::OKAY);
    if x0 == 0 && st == gntst::OKAY {
        let w = MappedPage::new(at_ro).load_u32(8);
        cx.truth(
            "read-only mapping shows the page",
            w == SRC.word(1) as u32,
            w,
            "word 1",
        );
        let (x0, st) = unmap(h2, at_ro);
        cx.status("gnttab unmap read-only mapping", x0, st, gntst::OKAY);
    }
    flags_are(
        cx,
        "read-only entry unpinned",
        E_RO,
        gtf::PERMIT_ACCESS | gtf::READONLY,
    );

    let (x0, st) = copy(gref(me, rw, 0), frame(DST.gfn(), 0), 64);
    cx.status("gnttab copy from own grant", x0, st, gntst::OKAY);
    let moved = (0..8).all(|i| DST.word(i) == SRC.word(i));
    cx.truth(
        "grant copy moved the bytes",
        moved,
        format!("{:#x}", DST.word(0)),
        "SRC",
    );
    DST.0[20].store(0xFEED_FACE, core::sync::atomic::Ordering::Release);
    let (x0, st) = copy(frame(DST.gfn(), 160), gref(me, rw, 24), 8);
    cx.status("gnttab copy into own grant", x0, st, gntst::OKAY);
    let w = page.load_u32(24);
    cx.truth(
        "copied bytes visible in the mapping",
        w == 0xFEED_FACE,
        w,
        0xFEED_FACE_u32,
    );
    let bad_copies = [
        (
            "into read-only grant",
            frame(DST.gfn(), 0),
            gref(me, ro, 0),
            8,
            gntst::GENERAL_ERROR,
        ),
        (
            "grant offset+len 4200",
            gref(me, rw, 4000),
            frame(DST.gfn(), 0),
            200,
            gntst::BAD_COPY_ARG,
        ),
        (
            "from bad-page grant",
            gref(me, E_BAD as u32, 0),
            frame(DST.gfn(), 0),
            8,
            gntst::BAD_PAGE,
        ),
    ];
    for (what, src, dst, len, want) in bad_copies {
        let (x0, st) = copy(src, dst, len);
        cx.status(&format!("gnttab copy {what}"), x0, st, want);
    }
    flags_are(cx, "copies leave the pins as they were", E_RW, pinned);
    maptrack_exhaustion(cx);

    let (x0, st) = unmap(h, at_ro);
    cx.status(
        "gnttab unmap at the wrong address",
        x0,
        st,
        gntst::GENERAL_ERROR,
    );
    let (x0, st) = unmap(h, at);
    cx.status("gnttab unmap own grant", x0, st, gntst::OKAY);
    let (x0, st) = unmap(h, at);
    cx.status("gnttab unmap twice", x0, st, gntst::BAD_HANDLE);
    flags_are(cx, "no pin left behind", E_RW, gtf::PERMIT_ACCESS);

    for i in [E_RW, E_RO, E_BAD] {
        grant(i, 0, 0, 0);
    }
    let (x0, st) = copy(gref(me, rw, 0), frame(DST.gfn(), 0), 8);
    cx.status(
        "gnttab copy from a revoked entry",
        x0,
        st,
        gntst::GENERAL_ERROR,
    );
    let (x0, st, _) = map(me, rw, host, at);
    cx.status("gnttab map a revoked entry", x0, st, gntst::GENERAL_ERROR);
}

/// First grant-map slot of the exhaustion run (past the slots used above).
const MANY_BASE: u32 = 200;
/// Mappings one domain may hold (`MAX_MAPTRACK` in the microvisor's hyp/xen/events.rs).
const MAPTRACK: usize = 1024;

/// Mapping the read-only grant again and again ends in `GNTST_no_space` at the maptrack
/// limit (we already hold one mapping), and unmapping every one drops every pin.
fn maptrack_exhaustion(cx: &mut Ctx) {
    let flags = gntmap::HOST_MAP | gntmap::READONLY;
    let mut held = alloc::vec::Vec::new();
    let mut last = (0, gntst::OKAY);
    for slot in MANY_BASE..MANY_BASE + 2 * MAPTRACK as u32 {
        let at = map_slot_addr(slot);
        let (x0, st, h) = map(cx.me, E_RO as u32, flags, at);
        last = (x0, st);
        if x0 != 0 || st != gntst::OKAY {
            break;
        }
        held.push((h, at));
    }
    cx.status(
        "gnttab maptrack exhaustion",
        last.0,
        last.1,
        gntst::NO_SPACE,
    );
    let n = held.len();
    cx.truth(
        "gnttab mappings before no_space",
        n == MAPTRACK - 1,
        n,
        MAPTRACK - 1,
    );
    let ro = gtf::PERMIT_ACCESS | gtf::READONLY;
    flags_are(cx, "many mappings pin the entry", E_RO, ro | gtf::READING);
    // All of them in one call: the microvisor serves it 32 at a time by continuation, with
    // one TLB invalidation per 32, and drops the pin only after the last one's.
    let mut ops: alloc::vec::Vec<GnttabUnmapGrantRef> = held
        .iter()
        .map(|&(handle, host_addr)| GnttabUnmapGrantRef {
            host_addr,
            dev_bus_addr: 0,
            handle,
            status: i16::MIN,
            _pad0: 0,
        })
        .collect();
    let args = [
        GnttabOp::UnmapGrantRef as u64,
        ops.as_mut_ptr() as u64,
        ops.len() as u64,
        0,
        0,
    ];
    let x0 = hv(H::GrantTableOp, args);
    cx.ret("gnttab unmap batch of 1023", x0, Want::Ok(0));
    let failed = ops.iter().filter(|u| u.status != gntst::OKAY).count();
    cx.truth("gnttab every mapping unmaps", failed == 0, failed, 0);
    flags_are(cx, "last unmap drops the pin", E_RO, ro);
    // The batch freed every handle: unmapping the first again is a bad handle.
    if let Some(&(h, at)) = held.first() {
        let (x0, st) = unmap(h, at);
        cx.status("gnttab unmap after the batch", x0, st, gntst::BAD_HANDLE);
    }
}
