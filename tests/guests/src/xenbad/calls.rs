//! Unknown hypercalls and sub-ops, and the misuse of the simple calls: hvm_op, vcpu_op,
//! sched_op, console_io and memory_op's add_to_physmap.

use super::{addr, hv, op, Ctx};
use alloc::format;
use bulkhead_runtime::xen::{self, MappedPage};
use bulkhead_runtime::{arch, println};
use protocol::layout::GUEST_GNTTAB_BASE;
use protocol::xen::structs::{
    SchedPoll, SchedShutdown, VcpuRegisterRunstateMemoryArea, VcpuRegisterVcpuInfo,
    XenAddToPhysmap, XenHvmParam, DOMID_SELF,
};
use protocol::xen::{
    ConsoleIoOp, EvtchnOp, GnttabOp, HvmOp, HvmParam, Hypercall as H, MapSpace, MemoryOp, SchedOp,
    ShutdownReason, VcpuOp, XenErrno, XenVersionOp, XENMAPIDX_GRANT_TABLE_STATUS,
};
use testguest::xencheck::Want;

const EINVAL: XenErrno = XenErrno::EINVAL;
const EPERM: XenErrno = XenErrno::EPERM;

/// Hypercall numbers nobody serves, and unknown commands of the ones we do: -ENOSYS.
pub fn unknown_ops(cx: &mut Ctx) {
    for n in [0u64, 1, 21, 33, 40, 100, 1 << 32 | 17, u64::MAX] {
        let x0 = arch::xen_hvc(n, [0; 5]);
        cx.err(&format!("enosys hypercall {n:#x}"), x0, XenErrno::ENOSYS);
    }
    // Commands with high bits set must not be truncated into a valid one.
    let sub: [(&str, H, u64); 13] = [
        ("xen_version 99", H::XenVersion, 99),
        ("xen_version 2^32+version", H::XenVersion, 1 << 32),
        ("memory_op increase_reservation", H::MemoryOp, 0),
        ("memory_op 63", H::MemoryOp, 63),
        ("hvm_op 99", H::HvmOp, 99),
        ("vcpu_op 99", H::VcpuOp, 99),
        ("sched_op 99", H::SchedOp, 99),
        ("sched_op 2^32+yield", H::SchedOp, 1 << 32),
        ("evtchn 99", H::EventChannelOp, 99),
        (
            "evtchn init_control",
            H::EventChannelOp,
            EvtchnOp::InitControl as u64,
        ),
        (
            "evtchn 2^32+send",
            H::EventChannelOp,
            1 << 32 | EvtchnOp::Send as u64,
        ),
        ("gnttab 99", H::GrantTableOp, 99),
        ("console_io 99", H::ConsoleIo, 99),
    ];
    // A real buffer behind every pointer, so only the command can be wrong.
    let mut scratch = [0u64; 8];
    let p = addr(&mut scratch);
    for (what, n, cmd) in sub {
        // vcpu_op's second argument is the vCPU (0 exists), console_io's a count (0).
        let args = match n {
            H::VcpuOp => [cmd, 0, p, 0, 0],
            H::GrantTableOp => [cmd, p, 1, 0, 0],
            H::ConsoleIo => [cmd, 0, p, 0, 0],
            _ => [cmd, p, 0, 0, 0],
        };
        cx.err(&format!("enosys {what}"), hv(n, args), XenErrno::ENOSYS);
    }
}

/// hvm_op, vcpu_op, sched_op and console_io refuse what they must.
pub fn hvm_vcpu_sched_console(cx: &mut Ctx) {
    let param = |domid, index| XenHvmParam {
        domid,
        pad: 0,
        index,
        value: 0,
    };
    let mut p = param(DOMID_SELF, HvmParam::StoreEvtchn as u32);
    cx.err(
        "hvm set_param",
        op(H::HvmOp, HvmOp::SetParam as u32, &mut p),
        EPERM,
    );
    let mut p = param(DOMID_SELF, HvmParam::ConsoleEvtchn as u32);
    let x0 = op(H::HvmOp, HvmOp::GetParam as u32, &mut p);
    cx.ret("hvm get_param own console evtchn", x0, Want::Ok(0));
    cx.truth("own console evtchn is a port", p.value != 0, p.value, "!=0");
    let cases = [
        ("hvm get_param index 99", DOMID_SELF, 99, EINVAL),
        ("hvm get_param of dom0", 0, HvmParam::StorePfn as u32, EPERM),
        (
            "hvm get_param of d100",
            100,
            HvmParam::StorePfn as u32,
            EPERM,
        ),
    ];
    for (what, domid, index, e) in cases {
        let mut p = param(domid, index);
        cx.err(what, op(H::HvmOp, HvmOp::GetParam as u32, &mut p), e);
    }

    // vcpu_op: a vCPU we do not have, then bad registrations on vCPU 0.
    let mut info = VcpuRegisterVcpuInfo {
        mfn: cx.ram_end / 4096 - 1,
        offset: 0,
        rsvd: 0,
    };
    let mut area = VcpuRegisterRunstateMemoryArea { addr: 0 };
    let (vi, rs) = (
        VcpuOp::RegisterVcpuInfo as u64,
        VcpuOp::RegisterRunstateMemoryArea as u64,
    );
    for vcpu in [1, 8, u64::MAX] {
        let x0 = hv(H::VcpuOp, [vi, vcpu, addr(&mut info), 0, 0]);
        cx.err(
            &format!("vcpu_op vcpu_info vcpu {vcpu:#x}"),
            x0,
            XenErrno::ENOENT,
        );
        let x0 = hv(H::VcpuOp, [rs, vcpu, addr(&mut area), 0, 0]);
        cx.err(
            &format!("vcpu_op runstate vcpu {vcpu:#x}"),
            x0,
            XenErrno::ENOENT,
        );
    }
    let bad_info = [
        ("vcpu_info frame past RAM", cx.ram_end / 4096 + 16, 0),
        ("vcpu_info frame 0", 0, 0),
        ("vcpu_info frame u64::MAX", u64::MAX, 0),
        ("vcpu_info offset 4090", cx.ram_end / 4096 - 1, 4090),
    ];
    for (what, mfn, offset) in bad_info {
        let mut info = VcpuRegisterVcpuInfo {
            mfn,
            offset,
            rsvd: 0,
        };
        let x0 = hv(H::VcpuOp, [vi, 0, addr(&mut info), 0, 0]);
        cx.err(&format!("vcpu_op {what}"), x0, EINVAL);
    }
    // Xen accepts a runstate area it cannot write (yet); so must we, and take it back.
    let mut area = VcpuRegisterRunstateMemoryArea {
        addr: 0xdead_0000_0000,
    };
    let x0 = hv(H::VcpuOp, [rs, 0, addr(&mut area), 0, 0]);
    cx.ret("vcpu_op runstate area unmapped accepted", x0, Want::Ok(0));
    let mut area = VcpuRegisterRunstateMemoryArea { addr: 0 };
    let x0 = hv(H::VcpuOp, [rs, 0, addr(&mut area), 0, 0]);
    cx.ret("vcpu_op runstate area cleared", x0, Want::Ok(0));

    // sched_op: shutdowns that must not stop us, polls that must not block.
    let shutdowns = [
        ("reason 99", 99, EINVAL),
        (
            "suspend",
            ShutdownReason::Suspend as u32,
            XenErrno::EOPNOTSUPP,
        ),
        (
            "soft_reset",
            ShutdownReason::SoftReset as u32,
            XenErrno::EOPNOTSUPP,
        ),
    ];
    for (what, reason, e) in shutdowns {
        let mut s = SchedShutdown { reason };
        let x0 = op(H::SchedOp, SchedOp::Shutdown as u32, &mut s);
        cx.err(&format!("sched_op shutdown {what}"), x0, e);
    }
    let mut ports = [4096u32, 0];
    let polls = [
        ("129 ports", addr(&mut ports), 129, EINVAL),
        (
            "ports array unmapped",
            0xdead_0000_0000,
            1,
            XenErrno::EFAULT,
        ),
        ("ports array past RAM", cx.ram_end, 1, XenErrno::EFAULT),
        ("port 4096", addr(&mut ports), 1, EINVAL),
    ];
    for (what, ports, nr_ports, e) in polls {
        let mut poll = SchedPoll {
            ports,
            nr_ports,
            _pad0: 0,
            timeout: 0,
        };
        let x0 = op(H::SchedOp, SchedOp::Poll as u32, &mut poll);
        cx.err(&format!("sched_op poll {what}"), x0, e);
    }

    let w = ConsoleIoOp::Write as u64;
    let x0 = hv(H::ConsoleIo, [w, 1 << 40, 0xdead_0000_0000, 0, 0]);
    cx.err("console_io write 2^40 bytes unmapped", x0, XenErrno::EFAULT);
    let x0 = hv(H::ConsoleIo, [w, 1024, cx.ram_end - 512, 0, 0]);
    cx.err("console_io write across RAM end", x0, XenErrno::EFAULT);
    let x0 = hv(H::ConsoleIo, [ConsoleIoOp::Read as u64, 16, 0, 0, 0]);
    cx.ret("console_io read", x0, Want::Ok(0));
    let x0 = hv(H::XenVersion, [XenVersionOp::Version as u64, 0, 0, 0, 0]);
    cx.ret("xen_version version", x0, Want::Ok(4 << 16 | 17));
}

/// add_to_physmap refuses foreign domains, unknown spaces and out-of-window frames.
pub fn physmap(cx: &mut Ctx) {
    let window = GUEST_GNTTAB_BASE.as_u64() / 4096;
    let ram_gfn = cx.ram_end / 4096 - 1;
    let (si, gt) = (MapSpace::SharedInfo as u32, MapSpace::GrantTable as u32);
    let cases: [(&str, u16, u32, u64, u64, XenErrno); 14] = [
        ("shared_info idx 1", DOMID_SELF, si, 1, ram_gfn, EINVAL),
        (
            "shared_info past RAM",
            DOMID_SELF,
            si,
            0,
            cx.ram_end / 4096,
            EINVAL,
        ),
        (
            "shared_info in grant window",
            DOMID_SELF,
            si,
            0,
            window,
            EINVAL,
        ),
        (
            "shared_info gfn u64::MAX",
            DOMID_SELF,
            si,
            0,
            u64::MAX,
            EINVAL,
        ),
        ("grant frame in RAM", DOMID_SELF, gt, 0, ram_gfn, EINVAL),
        (
            "grant frame below window",
            DOMID_SELF,
            gt,
            0,
            window - 1,
            EINVAL,
        ),
        (
            "grant frame past window",
            DOMID_SELF,
            gt,
            0,
            window + 4096,
            EINVAL,
        ),
        (
            "grant frame idx 32 (max)",
            DOMID_SELF,
            gt,
            32,
            window,
            EINVAL,
        ),
        (
            "grant frame idx 2^32",
            DOMID_SELF,
            gt,
            1 << 32,
            window,
            EINVAL,
        ),
        (
            "grant status frame",
            DOMID_SELF,
            gt,
            XENMAPIDX_GRANT_TABLE_STATUS,
            window,
            EINVAL,
        ),
        (
            "space gmfn",
            DOMID_SELF,
            MapSpace::Gmfn as u32,
            0,
            ram_gfn,
            EINVAL,
        ),
        ("space 99", DOMID_SELF, 99, 0, ram_gfn, EINVAL),
        ("for dom0", 0, si, 0, ram_gfn, EPERM),
        ("for d100", 100, gt, 0, window, EPERM),
    ];
    for (what, domid, space, idx, gpfn, e) in cases {
        let mut x = XenAddToPhysmap {
            domid,
            size: 0,
            space,
            idx,
            gpfn,
        };
        let x0 = op(H::MemoryOp, MemoryOp::AddToPhysmap as u32, &mut x);
        cx.err(&format!("add_to_physmap {what}"), x0, e);
    }
    // Any count is served (by continuation, as Xen does); a bad array faults, and a count
    // Xen's `(int)count` sees as negative is refused.
    let x0 = hv(H::GrantTableOp, [GnttabOp::Copy as u64, 0, 257, 0, 0]);
    cx.err("gnttab batch of 257 at NULL", x0, XenErrno::EFAULT);
    let x0 = hv(H::GrantTableOp, [GnttabOp::Copy as u64, 0, 1 << 31, 0, 0]);
    cx.err("gnttab batch of 2^31", x0, EINVAL);
    let ok = xen::map_shared_info();
    cx.truth(
        "add_to_physmap shared_info",
        ok.is_ok(),
        format!("{ok:?}"),
        "Ok",
    );
}

/// A hypercall argument inside our shared_info page is read and written where we see it
/// (the shared_info frame), as Xen's copy_to_guest does, not in the RAM page it hides.
pub fn arg_in_shared_info(cx: &mut Ctx) {
    const AT: usize = 3072; // past the 1088 bytes of struct shared_info
    let page = MappedPage::new(arch::shared_info_addr());
    for i in 0..16 {
        page.write_u8(AT + i, 0);
    }
    let va = arch::shared_info_addr() + AT as u64;
    let x0 = hv(
        H::XenVersion,
        [XenVersionOp::Extraversion as u64, va, 0, 0, 0],
    );
    cx.ret("extraversion into shared_info page", x0, Want::Ok(0));
    let mut got = [0u8; 9];
    for (i, b) in got.iter_mut().enumerate() {
        *b = page.read_u8(AT + i);
    }
    let shown = core::str::from_utf8(&got).unwrap_or("?");
    cx.truth(
        "extraversion visible in shared_info page",
        &got == b"-bulkhead",
        format!("{shown:?}"),
        "\"-bulkhead\"",
    );
    println!("xenbad: shared_info checks done");
}
