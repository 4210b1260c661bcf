//! The pure half of `mode=xenbad` (XTF-style attacks on the Xen-compatible ABI): the check
//! recorder and its marker lines, the bad guest addresses, and the table of pointer-taking
//! calls every bad address is thrown at.
//!
//! Markers (after the `[<domain>] ` prefix): `xenbad: <check> ok`,
//! `xenbad: <check> FAIL got <x> want <y>`, then `xenbad: done <N> checks, <M> failures`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::structs::gntst;
use protocol::xen::{
    ConsoleIoOp, EvtchnOp, GnttabOp, HvmOp, Hypercall, MemoryOp, SchedOp, VcpuOp, XenErrno,
    XenVersionOp,
};

/// What a hypercall's `x0` must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Exactly this non-negative value.
    Ok(u64),
    /// Any non-negative value.
    AnyOk,
    /// This errno (negated in `x0`).
    Err(XenErrno),
}

/// `x0` as a reader wants it: a number, or `-ENAME`.
pub fn ret_name(x0: u64) -> String {
    match XenErrno::from_ret(x0) {
        Some(e) => format!("-{e:?}"),
        None => format!("{}", x0 as i64),
    }
}

/// A `GNTST_*` status by name.
pub fn gntst_name(s: i16) -> String {
    let name = match s {
        gntst::OKAY => "GNTST_okay",
        gntst::GENERAL_ERROR => "GNTST_general_error",
        gntst::BAD_DOMAIN => "GNTST_bad_domain",
        gntst::BAD_GNTREF => "GNTST_bad_gntref",
        gntst::BAD_HANDLE => "GNTST_bad_handle",
        gntst::BAD_VIRT_ADDR => "GNTST_bad_virt_addr",
        gntst::PERMISSION_DENIED => "GNTST_permission_denied",
        gntst::BAD_PAGE => "GNTST_bad_page",
        gntst::BAD_COPY_ARG => "GNTST_bad_copy_arg",
        gntst::NO_SPACE => "GNTST_no_space",
        other => return format!("status {other}"),
    };
    name.into()
}

impl Want {
    fn accepts(self, x0: u64) -> bool {
        match self {
            Self::Ok(v) => x0 == v,
            Self::AnyOk => (x0 as i64) >= 0,
            Self::Err(e) => x0 == e.to_ret(),
        }
    }
}

impl core::fmt::Display for Want {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ok(v) => write!(f, "{v}"),
            Self::AnyOk => write!(f, ">=0"),
            Self::Err(e) => write!(f, "-{e:?}"),
        }
    }
}

/// Counts checks and failures and formats one marker line per check.
#[derive(Debug, Default)]
pub struct Report {
    /// Checks made.
    pub checks: u32,
    /// Checks that failed.
    pub failures: u32,
}

impl Report {
    /// Records a check whose outcome is `ok`, with what was seen and what was wanted.
    pub fn truth(
        &mut self,
        what: &str,
        ok: bool,
        got: impl core::fmt::Display,
        want: impl core::fmt::Display,
    ) -> String {
        self.checks += 1;
        if ok {
            format!("xenbad: {what} ok")
        } else {
            self.failures += 1;
            format!("xenbad: {what} FAIL got {got} want {want}")
        }
    }

    /// Records that a call returned `x0` where `want` was required.
    pub fn ret(&mut self, what: &str, x0: u64, want: Want) -> String {
        self.truth(what, want.accepts(x0), ret_name(x0), want)
    }

    /// Records that a grant operation returned `x0` with per-entry `status` where the call
    /// had to succeed and the entry to end with `want`.
    pub fn status(&mut self, what: &str, x0: u64, status: i16, want: i16) -> String {
        let got = if x0 == 0 {
            gntst_name(status)
        } else {
            format!("x0={}", ret_name(x0))
        };
        self.truth(what, x0 == 0 && status == want, got, gntst_name(want))
    }

    /// The closing line.
    pub fn summary(&self) -> String {
        format!(
            "xenbad: done {} checks, {} failures",
            self.checks, self.failures
        )
    }
}

/// Guest virtual addresses no hypercall may read or write, by name:
/// - `unmapped-va`: outside our stage 1 (the runtime maps only the low 4 GiB);
/// - `low-hole`: mapped by our stage 1 (Device, `[0, 1G)`) but nothing at stage 2;
/// - `past-ram`: 64 MiB past our RAM, mapped Normal at stage 1 but not at stage 2 (a real
///   access there is a stage-2 fault that stops the guest; a hypercall must say -EFAULT);
/// - `straddle`: the last 2 bytes of RAM, so every structure runs into the page after it.
pub fn bad_pointers(ram_end: u64) -> Vec<(&'static str, u64)> {
    let mut v = alloc::vec![("unmapped-va", 0xdead_0000_0000), ("low-hole", 0x1000)];
    if let Some(a) = crate::oob_address(ram_end) {
        v.push(("past-ram", a));
    }
    v.push(("straddle", ram_end - 2));
    v
}

/// A call taking a guest pointer: `args[ptr]` is replaced by the address under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtrCall {
    /// Name in the markers.
    pub name: &'static str,
    /// The hypercall.
    pub number: Hypercall,
    /// `x0..x4`.
    pub args: [u64; 5],
    /// Which argument is the pointer.
    pub ptr: usize,
}

impl PtrCall {
    /// The arguments with the pointer set to `va`.
    pub fn with(&self, va: u64) -> [u64; 5] {
        let mut a = self.args;
        a[self.ptr] = va;
        a
    }
}

const fn pc(name: &'static str, number: Hypercall, cmd: u32, ptr: usize, extra: u64) -> PtrCall {
    // The pointer goes in x1 (x2 for vcpu_op and console_io); `extra` is the other argument
    // those two take (vCPU 0, byte count) or grant_table_op's count.
    let mut args = [cmd as u64, 0, 0, 0, 0];
    if ptr == 1 {
        args[2] = extra;
    } else {
        args[1] = extra;
    }
    PtrCall {
        name,
        number,
        args,
        ptr,
    }
}

/// Every pointer-taking call the microvisor serves, each of which must answer -EFAULT to a
/// pointer it cannot copy (and touch nothing).
pub fn pointer_calls() -> [PtrCall; 20] {
    use Hypercall as H;
    [
        pc(
            "xen_version/get_features",
            H::XenVersion,
            XenVersionOp::GetFeatures as u32,
            1,
            0,
        ),
        pc(
            "xen_version/extraversion",
            H::XenVersion,
            XenVersionOp::Extraversion as u32,
            1,
            0,
        ),
        pc("hvm_op/get_param", H::HvmOp, HvmOp::GetParam as u32, 1, 0),
        pc(
            "vcpu_op/register_vcpu_info",
            H::VcpuOp,
            VcpuOp::RegisterVcpuInfo as u32,
            2,
            0,
        ),
        pc(
            "vcpu_op/runstate",
            H::VcpuOp,
            VcpuOp::RegisterRunstateMemoryArea as u32,
            2,
            0,
        ),
        pc(
            "memory_op/add_to_physmap",
            H::MemoryOp,
            MemoryOp::AddToPhysmap as u32,
            1,
            0,
        ),
        pc(
            "evtchn/alloc_unbound",
            H::EventChannelOp,
            EvtchnOp::AllocUnbound as u32,
            1,
            0,
        ),
        pc(
            "evtchn/bind_interdomain",
            H::EventChannelOp,
            EvtchnOp::BindInterdomain as u32,
            1,
            0,
        ),
        pc(
            "evtchn/send",
            H::EventChannelOp,
            EvtchnOp::Send as u32,
            1,
            0,
        ),
        pc(
            "evtchn/close",
            H::EventChannelOp,
            EvtchnOp::Close as u32,
            1,
            0,
        ),
        pc(
            "evtchn/status",
            H::EventChannelOp,
            EvtchnOp::Status as u32,
            1,
            0,
        ),
        pc(
            "evtchn/unmask",
            H::EventChannelOp,
            EvtchnOp::Unmask as u32,
            1,
            0,
        ),
        pc(
            "evtchn/bind_vcpu",
            H::EventChannelOp,
            EvtchnOp::BindVcpu as u32,
            1,
            0,
        ),
        pc(
            "gnttab/query_size",
            H::GrantTableOp,
            GnttabOp::QuerySize as u32,
            1,
            1,
        ),
        pc(
            "gnttab/map",
            H::GrantTableOp,
            GnttabOp::MapGrantRef as u32,
            1,
            1,
        ),
        pc(
            "gnttab/unmap",
            H::GrantTableOp,
            GnttabOp::UnmapGrantRef as u32,
            1,
            1,
        ),
        pc("gnttab/copy", H::GrantTableOp, GnttabOp::Copy as u32, 1, 1),
        pc(
            "sched_op/shutdown",
            H::SchedOp,
            SchedOp::Shutdown as u32,
            1,
            0,
        ),
        pc("sched_op/poll", H::SchedOp, SchedOp::Poll as u32, 1, 0),
        pc(
            "console_io/write",
            H::ConsoleIo,
            ConsoleIoOp::Write as u32,
            2,
            16,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_counts() {
        let mut r = Report::default();
        assert_eq!(
            r.ret("a", XenErrno::EFAULT.to_ret(), Want::Err(XenErrno::EFAULT)),
            "xenbad: a ok"
        );
        assert_eq!(
            r.ret("b", 0, Want::Err(XenErrno::EINVAL)),
            "xenbad: b FAIL got 0 want -EINVAL"
        );
        assert_eq!(r.ret("c", 7, Want::AnyOk), "xenbad: c ok");
        assert_eq!(
            r.status("d", 0, gntst::BAD_PAGE, gntst::BAD_GNTREF),
            "xenbad: d FAIL got GNTST_bad_page want GNTST_bad_gntref"
        );
        assert_eq!(
            r.status("e", XenErrno::EFAULT.to_ret(), 0, 0),
            "xenbad: e FAIL got x0=-EFAULT want GNTST_okay"
        );
        assert_eq!((r.checks, r.failures), (5, 3));
        assert_eq!(r.summary(), "xenbad: done 5 checks, 3 failures");
        assert_eq!(ret_name(u64::MAX), "-EPERM");
        assert_eq!(ret_name(-6i64 as u64), "-6");
    }

    #[test]
    fn addresses_and_calls() {
        let b = bad_pointers(0x4080_0000);
        assert_eq!(b.len(), 4);
        assert_eq!(b[2], ("past-ram", 0x4480_0000));
        assert_eq!(b[3].1 % 4096, 4094);
        // Near 4 GiB there is no "past RAM" below the stage-1 limit.
        assert_eq!(bad_pointers(0xFF00_0000).len(), 3);
        let calls = pointer_calls();
        let vcpu = calls
            .iter()
            .find(|c| c.number == Hypercall::VcpuOp)
            .unwrap();
        assert_eq!(vcpu.with(0x1000), [10, 0, 0x1000, 0, 0]);
        let console = calls
            .iter()
            .find(|c| c.number == Hypercall::ConsoleIo)
            .unwrap();
        assert_eq!(console.with(0x1000), [0, 16, 0x1000, 0, 0]);
        let gmap = calls.iter().find(|c| c.name == "gnttab/map").unwrap();
        assert_eq!(gmap.with(0x1000), [0, 0x1000, 1, 0, 0]);
        let mut names: Vec<_> = calls.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), calls.len());
    }
}
