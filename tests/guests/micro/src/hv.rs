//! What the guest asks of the hypervisor through the Xen ABI only: console output
//! (`console_io`, else Xen's vpl011), `xen_version`, PSCI `CPU_ON`, the GICv3 distributor and
//! redistributors at Xen's guest addresses, the shared-info page and 2-level event channels.

use crate::arch;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use protocol::psci::PsciFn;
use protocol::xen::structs::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnSend, EvtchnUnmask, GnttabCopy, GnttabCopyPtr,
    SharedInfo, XenAddToPhysmap, DOMID_SELF,
};
use protocol::xen::{ConsoleIoOp, EvtchnOp, GnttabOp, Hypercall, MapSpace, MemoryOp, XenVersionOp};
use zerocopy::IntoBytes;

/// Xen's vpl011 for dom0less guests (GUEST_PL011_BASE), used only when `console_io` is
/// refused.
const VPL011_BASE: u64 = 0x2200_0000;
/// PL011 flag register: transmit FIFO full.
const PL011_FR: u64 = 0x18;
const PL011_FR_TXFF: u32 = 1 << 5;

/// Set once `console_io` failed: write to the vpl011 from then on.
static USE_VPL011: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to the console.
pub fn console_write(bytes: &[u8]) {
    if !USE_VPL011.load(Ordering::Relaxed) {
        let r = arch::xen_hypercall(
            Hypercall::ConsoleIo as u64,
            [
                ConsoleIoOp::Write as u64,
                bytes.len() as u64,
                bytes.as_ptr() as u64,
                0,
                0,
            ],
        );
        if r >= 0 {
            return;
        }
        USE_VPL011.store(true, Ordering::Relaxed);
    }
    for &b in bytes {
        // SAFETY: Xen maps its vpl011 here for a dom0less guest given `vpl011`; we only get
        // here on a hypervisor that refused console_io, which is that case.
        unsafe {
            while arch::mmio_read32(VPL011_BASE + PL011_FR) & PL011_FR_TXFF != 0 {}
            arch::mmio_write32(VPL011_BASE, u32::from(b));
        }
    }
}

/// A line buffer: `write!` into it, then [`Line::flush`] sends it in one `console_io`.
pub struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Sends the line with a newline.
    pub fn flush(&mut self) {
        let _ = fmt::Write::write_str(self, "\n");
        console_write(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `println!`-like: one console line.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = $crate::hv::Line::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($arg)*));
        line.flush();
    }};
}

/// `XENVER_extraversion` (e.g. `-bulkhead`, or Debian's `.7+13-g…`-style suffix).
pub fn extraversion() -> [u8; 16] {
    let mut buf = [0u8; 16];
    extraversion_into(buf.as_mut_ptr() as u64);
    buf
}

/// `XENVER_extraversion` written by the hypervisor at `addr` (16 bytes of this guest's RAM).
pub fn extraversion_into(addr: u64) -> i64 {
    arch::xen_hypercall(
        Hypercall::XenVersion as u64,
        [XenVersionOp::Extraversion as u64, addr, 0, 0, 0],
    )
}

/// Why a [`copy_own`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFailed {
    /// The hypercall itself returned this (negative) errno.
    Hypercall(i64),
    /// The operation's `GNTST_*` status.
    Status(i16),
}

/// `GNTTABOP_copy` of `len` bytes between two frames of this guest (addresses inside one
/// page each).
pub fn copy_own(src: u64, dst: u64, len: u16) -> Result<(), CopyFailed> {
    let side = |addr: u64| GnttabCopyPtr {
        u: addr >> 12,
        domid: DOMID_SELF,
        offset: (addr & 0xfff) as u16,
        _pad0: 0,
    };
    let mut op = GnttabCopy {
        source: side(src),
        dest: side(dst),
        len,
        flags: 0,
        status: 1,
        _pad0: 0,
    };
    let rc = arch::xen_hypercall(
        Hypercall::GrantTableOp as u64,
        [
            GnttabOp::Copy as u64,
            op.as_mut_bytes().as_mut_ptr() as u64,
            1,
            0,
            0,
        ],
    );
    if rc != 0 {
        return Err(CopyFailed::Hypercall(rc));
    }
    match op.status {
        0 => Ok(()),
        status => Err(CopyFailed::Status(status)),
    }
}

/// Starts vCPU `mpidr` at [`arch::secondary_entry`] with its stack; the PSCI return code.
pub fn cpu_on(mpidr: u64) -> i64 {
    arch::smccc(
        PsciFn::CpuOn as u64,
        mpidr,
        arch::secondary_entry(),
        arch::secondary_stack(),
    )
}

/// A page-aligned page of our RAM for the shared-info mapping.
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

/// Maps the shared-info page over `page` (Linux does the same with a RAM page).
pub fn map_shared_info(page: &Page) -> Result<(), i64> {
    let xatp = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: MapSpace::SharedInfo as u32,
        idx: 0,
        gpfn: (page as *const Page as u64) >> 12,
    };
    match arch::xen_hypercall(
        Hypercall::MemoryOp as u64,
        [
            MemoryOp::AddToPhysmap as u64,
            xatp.as_bytes().as_ptr() as u64,
            0,
            0,
            0,
        ],
    ) {
        0 => Ok(()),
        e => Err(e),
    }
}

/// `EVTCHNOP_*` with `arg` in and out.
fn evtchn_op<T: IntoBytes + zerocopy::FromBytes>(op: EvtchnOp, arg: &mut T) -> i64 {
    arch::xen_hypercall(
        Hypercall::EventChannelOp as u64,
        [op as u64, arg.as_mut_bytes().as_mut_ptr() as u64, 0, 0, 0],
    )
}

/// A new port of ours that domain `peer` may bind.
pub fn alloc_unbound(peer: u16) -> Result<u32, i64> {
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: peer,
        port: 0,
    };
    match evtchn_op(EvtchnOp::AllocUnbound, &mut a) {
        0 => Ok(a.port),
        e => Err(e),
    }
}

/// Binds `peer`'s unbound `port`; our new local port.
pub fn bind_interdomain(peer: u16, port: u32) -> Result<u32, i64> {
    let mut b = EvtchnBindInterdomain {
        remote_dom: peer,
        _pad0: 0,
        remote_port: port,
        local_port: 0,
    };
    match evtchn_op(EvtchnOp::BindInterdomain, &mut b) {
        0 => Ok(b.local_port),
        e => Err(e),
    }
}

/// Notifies the other end of `port`.
pub fn send(port: u32) -> i64 {
    let mut s = EvtchnSend { port };
    evtchn_op(EvtchnOp::Send, &mut s)
}

/// Unmasks `port`.
pub fn unmask(port: u32) -> i64 {
    let mut u = EvtchnUnmask { port };
    evtchn_op(EvtchnOp::Unmask, &mut u)
}

/// Clears vCPU 0's upcall flags and every pending bit the selector names, in the
/// shared-info page at `si` (the 2-level protocol's consumer side).
pub fn clear_pending(si: *mut SharedInfo) {
    // SAFETY: `si` is the mapped shared-info page; the fields are naturally aligned and only
    // this vCPU consumes them (the hypervisor sets bits concurrently, so the selector is
    // read before being cleared and bits may be set again afterwards: a later upcall).
    unsafe {
        let info = core::ptr::addr_of_mut!((*si).vcpu_info[0]);
        core::ptr::write_volatile(core::ptr::addr_of_mut!((*info).evtchn_upcall_pending), 0);
        let sel = core::ptr::read_volatile(core::ptr::addr_of!((*info).evtchn_pending_sel));
        core::ptr::write_volatile(core::ptr::addr_of_mut!((*info).evtchn_pending_sel), 0);
        for w in 0..64 {
            if sel & (1 << w) != 0 {
                core::ptr::write_volatile(core::ptr::addr_of_mut!((*si).evtchn_pending[w]), 0);
            }
        }
    }
}
