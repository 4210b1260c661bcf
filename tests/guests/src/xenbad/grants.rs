//! Grant-table attacks that need no grant of ours: foreign and missing tables, refs past
//! the table, entries not granted to us, bad flags, bogus handles and bad copies. Each must
//! come back as the `GNTST_*` status the microvisor's grant core documents (Xen's).

use super::{gnt, hv, Ctx, Page};
use alloc::format;
use bulkhead_runtime::xen::map_slot_addr;
use core::sync::atomic::Ordering;
use protocol::xen::structs::{
    gntcopy, gntmap, gntst, GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef, GnttabQuerySize,
    GnttabSetVersion, GnttabUnmapGrantRef, DOMID_INVALID, DOMID_SELF,
};
use protocol::xen::{GnttabOp, Hypercall, XenErrno};
use testguest::xencheck::Want;

/// Grant-map slot the failing maps aim at (nothing must ever appear there).
pub const BAD_SLOT: u32 = 90;
/// A grant ref past any table (32 frames of 512 entries).
const FAR_REF: u32 = 1 << 20;

/// `map_grant_ref` of `dom`'s `gref` at `host_addr`: `(x0, status, handle)`.
pub fn map(dom: u16, gref: u32, flags: u32, host_addr: u64) -> (u64, i16, u32) {
    let mut m = GnttabMapGrantRef {
        host_addr,
        flags,
        gref,
        dom,
        status: i16::MIN,
        handle: u32::MAX,
        dev_bus_addr: u64::MAX,
    };
    let x0 = gnt(GnttabOp::MapGrantRef, &mut m);
    (x0, m.status, m.handle)
}

/// `unmap_grant_ref`: `(x0, status)`.
pub fn unmap(handle: u32, host_addr: u64) -> (u64, i16) {
    let mut u = GnttabUnmapGrantRef {
        host_addr,
        dev_bus_addr: 0,
        handle,
        status: i16::MIN,
        _pad0: 0,
    };
    (gnt(GnttabOp::UnmapGrantRef, &mut u), u.status)
}

/// One side of a copy: a grant ref of `domid`'s table, or a frame of ours (which must be
/// named with `domid` = `DOMID_SELF`; anything else is the refusal test).
#[derive(Clone, Copy)]
pub struct Side {
    /// `GnttabCopyPtr::u`: a grant ref or a frame number.
    pub u: u64,
    /// The domid written in the pointer.
    pub domid: u16,
    /// Whether `u` is a grant ref.
    pub gref: bool,
    /// Byte offset in the page.
    pub offset: u16,
}

/// A grant side.
pub const fn gref(dom: u16, r: u32, offset: u16) -> Side {
    Side {
        u: r as u64,
        domid: dom,
        gref: true,
        offset,
    }
}

/// A frame side (`DOMID_SELF`).
pub const fn frame(gfn: u64, offset: u16) -> Side {
    Side {
        u: gfn,
        domid: DOMID_SELF,
        gref: false,
        offset,
    }
}

/// `GNTTABOP_copy` of one element: `(x0, status)`.
pub fn copy(src: Side, dst: Side, len: u16) -> (u64, i16) {
    let mut c = copy_op(src, dst, len);
    (gnt(GnttabOp::Copy, &mut c), c.status)
}

/// One `gnttab_copy` element, its status unset.
fn copy_op(src: Side, dst: Side, len: u16) -> GnttabCopy {
    let ptr = |s: Side| GnttabCopyPtr {
        u: s.u,
        domid: s.domid,
        offset: s.offset,
        _pad0: 0,
    };
    let flags = if src.gref { gntcopy::SOURCE_GREF } else { 0 }
        | if dst.gref { gntcopy::DEST_GREF } else { 0 };
    GnttabCopy {
        source: ptr(src),
        dest: ptr(dst),
        len,
        flags,
        status: i16::MIN,
        _pad0: 0,
    }
}

/// Copies in one call than the microvisor serves per hypercall entry (32), so the call
/// only completes if the continuation (the HVC re-executed on the rest) works.
const LONG_BATCH: usize = 40;

/// A `GNTTABOP_copy` batch longer than one entry serves: every element done, in order,
/// with its own status, and the call returns 0 once.
fn long_copy_batch(cx: &mut Ctx, a: u64, b: u64) {
    for i in 0..LONG_BATCH {
        SCRATCH_A.0[300 + i].store(0xb0b0_0000 + i as u64, Ordering::Release);
    }
    let mut ops: [GnttabCopy; LONG_BATCH] = core::array::from_fn(|i| {
        let off = ((300 + i) * 8) as u16;
        copy_op(frame(a, off), frame(b, off), 8)
    });
    // The last element is bad: its status alone says so.
    ops[LONG_BATCH - 1] = copy_op(gref(100, 0, 0), frame(b, 0), 8);
    let args = [
        GnttabOp::Copy as u64,
        ops.as_mut_ptr() as u64,
        LONG_BATCH as u64,
        0,
        0,
    ];
    let x0 = hv(Hypercall::GrantTableOp, args);
    cx.ret("gnttab copy batch of 40", x0, Want::Ok(0));
    let ok = ops[..LONG_BATCH - 1]
        .iter()
        .all(|c| c.status == gntst::OKAY)
        && ops[LONG_BATCH - 1].status == gntst::BAD_DOMAIN;
    let got = format!("{} {}", ops[0].status, ops[LONG_BATCH - 2].status);
    cx.truth("gnttab copy batch statuses", ok, got, "0 0 (last -3)");
    let moved = (0..LONG_BATCH - 1).all(|i| SCRATCH_B.word(300 + i) == 0xb0b0_0000 + i as u64);
    let got = format!("{:#x}", SCRATCH_B.word(300 + LONG_BATCH - 2));
    cx.truth(
        "gnttab copy batch moved every element",
        moved,
        got,
        "0xb0b0..",
    );
}

static SCRATCH_A: Page = Page::new();
static SCRATCH_B: Page = Page::new();

/// Every grant operation misused without a grant of our own.
pub fn bad_grants(cx: &mut Ctx) {
    let me = cx.me;
    for (what, dom, want) in [
        ("d100", 100, gntst::BAD_DOMAIN),
        ("dom0", 0, gntst::PERMISSION_DENIED),
        ("self", DOMID_SELF, gntst::OKAY),
    ] {
        let mut q = GnttabQuerySize {
            dom,
            _pad0: 0,
            nr_frames: 0,
            max_nr_frames: 0,
            status: i16::MIN,
            _pad1: 0,
        };
        let x0 = gnt(GnttabOp::QuerySize, &mut q);
        cx.status(&format!("gnttab query_size {what}"), x0, q.status, want);
        if want == gntst::OKAY {
            let ok = q.nr_frames >= 1 && q.max_nr_frames >= q.nr_frames;
            let got = format!("{}/{}", q.nr_frames, q.max_nr_frames);
            cx.truth("gnttab own table has frames", ok, got, "1..=max");
        }
    }
    for (v, want) in [(2, Want::Err(XenErrno::EINVAL)), (1, Want::Ok(0))] {
        let mut s = GnttabSetVersion { version: v };
        let x0 = gnt(GnttabOp::SetVersion, &mut s);
        cx.ret(&format!("gnttab set_version {v}"), x0, want);
    }

    let at = map_slot_addr(BAD_SLOT);
    let host = gntmap::HOST_MAP;
    let maps: [(&str, u16, u32, u32, i16); 14] = [
        ("no map flags", 0, 0, 0, gntst::BAD_GNTREF),
        (
            "device_map",
            0,
            0,
            host | gntmap::DEVICE_MAP,
            gntst::GENERAL_ERROR,
        ),
        (
            "application_map",
            0,
            0,
            host | gntmap::APPLICATION_MAP,
            gntst::GENERAL_ERROR,
        ),
        (
            "contains_pte",
            0,
            0,
            host | gntmap::CONTAINS_PTE,
            gntst::GENERAL_ERROR,
        ),
        ("flag bit 31", 0, 0, host | 1 << 31, gntst::GENERAL_ERROR),
        ("of d100", 100, 0, host, gntst::BAD_DOMAIN),
        ("of DOMID_SELF", DOMID_SELF, 0, host, gntst::BAD_DOMAIN),
        (
            "of DOMID_INVALID",
            DOMID_INVALID,
            0,
            host,
            gntst::BAD_DOMAIN,
        ),
        (
            "dom0 ref past its table",
            0,
            FAR_REF,
            host,
            gntst::BAD_GNTREF,
        ),
        ("dom0 ref u32::MAX", 0, u32::MAX, host, gntst::BAD_GNTREF),
        ("own unused entry", me, 100, host, gntst::GENERAL_ERROR),
        (
            "own entry 0 (dom0's console)",
            me,
            0,
            host,
            gntst::GENERAL_ERROR,
        ),
        (
            "own entry 1 read-only",
            me,
            1,
            host | gntmap::READONLY,
            gntst::GENERAL_ERROR,
        ),
        ("own ref past table", me, FAR_REF, host, gntst::BAD_GNTREF),
    ];
    for (what, dom, r, flags, want) in maps {
        let (x0, status, _) = map(dom, r, flags, at);
        cx.status(&format!("gnttab map {what}"), x0, status, want);
    }
    for h in [0, 12345, u32::MAX] {
        let (x0, status) = unmap(h, at);
        let what = format!("gnttab unmap bogus handle {h:#x}");
        cx.status(&what, x0, status, gntst::BAD_HANDLE);
    }

    SCRATCH_A.fill(0x5a5a_0000_0000_0000);
    let (a, b) = (SCRATCH_A.gfn(), SCRATCH_B.gfn());
    let past_ram = cx.ram_end / 4096 + 16;
    let foreign = Side {
        domid: 0,
        ..frame(a, 0)
    };
    let copies: [(&str, Side, Side, u16, i16); 13] = [
        (
            "frame named as dom0's",
            foreign,
            frame(b, 0),
            8,
            gntst::PERMISSION_DENIED,
        ),
        (
            "into frame named as dom0's",
            frame(a, 0),
            foreign,
            8,
            gntst::PERMISSION_DENIED,
        ),
        (
            "from d100",
            gref(100, 0, 0),
            frame(b, 0),
            8,
            gntst::BAD_DOMAIN,
        ),
        (
            "dom0 ref past its table",
            gref(0, FAR_REF, 0),
            frame(b, 0),
            8,
            gntst::BAD_GNTREF,
        ),
        (
            "into dom0 ref past table",
            frame(a, 0),
            gref(0, FAR_REF, 0),
            8,
            gntst::BAD_GNTREF,
        ),
        (
            "own unused entry",
            gref(me, 100, 0),
            frame(b, 0),
            8,
            gntst::GENERAL_ERROR,
        ),
        (
            "own entry 0 (dom0's)",
            gref(DOMID_SELF, 0, 0),
            frame(b, 0),
            8,
            gntst::GENERAL_ERROR,
        ),
        (
            "frame past RAM",
            frame(past_ram, 0),
            frame(b, 0),
            8,
            gntst::BAD_PAGE,
        ),
        ("into frame 0", frame(a, 0), frame(0, 0), 8, gntst::BAD_PAGE),
        (
            "src offset+len 4200",
            frame(a, 4000),
            frame(b, 0),
            200,
            gntst::BAD_COPY_ARG,
        ),
        (
            "dst offset+len 4097",
            frame(a, 0),
            frame(b, 4095),
            2,
            gntst::BAD_COPY_ARG,
        ),
        (
            "len 65535",
            frame(a, 0),
            frame(b, 0),
            u16::MAX,
            gntst::BAD_COPY_ARG,
        ),
        (
            "len 0 from d100 (a no-op)",
            gref(100, 0, 0),
            frame(b, 0),
            0,
            gntst::OKAY,
        ),
    ];
    for (what, src, dst, len, want) in copies {
        let (x0, status) = copy(src, dst, len);
        cx.status(&format!("gnttab copy {what}"), x0, status, want);
    }
    let untouched = SCRATCH_B
        .0
        .iter()
        .all(|w| w.load(core::sync::atomic::Ordering::Acquire) == 0);
    cx.truth(
        "failed copies wrote nothing",
        untouched,
        "bytes",
        "all zero",
    );
    let (x0, status) = copy(frame(a, 8), frame(b, 800), 64);
    cx.status(
        "gnttab copy own frame to own frame",
        x0,
        status,
        gntst::OKAY,
    );
    let moved = (0..8).all(|i| SCRATCH_B.word(100 + i) == SCRATCH_A.word(1 + i));
    let got = format!("{:#x}", SCRATCH_B.word(100));
    cx.truth(
        "copy moved the bytes",
        moved,
        got,
        format!("{:#x}", SCRATCH_A.word(1)),
    );
    long_copy_batch(cx, a, b);
}
