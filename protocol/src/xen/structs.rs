//! Fixed-layout hypercall argument and shared-page structures, in their AArch64 layout.
//!
//! On Arm `xen_ulong_t` and `xen_pfn_t` are 64-bit and every guest handle is a 64-bit,
//! 8-byte-aligned value, so these layouts are the same for 32- and 64-bit guests. C's implicit
//! padding is spelled out as `_pad*` fields (zero them when writing); sizes and offsets are
//! checked at compile time against the values computed from Xen's public headers.

/// Domain id (`domid_t`).
pub type DomId = u16;
/// Event channel port (`evtchn_port_t`).
pub type EvtchnPort = u32;
/// Grant reference (`grant_ref_t`).
pub type GrantRef = u32;
/// Grant mapping handle (`grant_handle_t`).
pub type GrantHandle = u32;

/// The calling domain, wherever a [`DomId`] is accepted.
pub const DOMID_SELF: DomId = 0x7FF0;
/// No domain.
pub const DOMID_INVALID: DomId = 0x7FF4;
/// Event channel words per bitmap (`xen_ulong_t` bits), so 64 × 64 = 4096 2-level ports.
pub const EVTCHN_WORDS: usize = 64;
/// Number of event channels the 2-level ABI can address.
pub const EVTCHN_2L_NR_CHANNELS: usize = EVTCHN_WORDS * 64;
/// `vcpu_info` slots embedded in shared_info on Arm; other vCPUs must register theirs.
pub const LEGACY_MAX_VCPUS: usize = 1;

wire! {
    /// `vcpu_time_info`: per-vCPU system time, updated under a seqlock on `version`.
    pub struct VcpuTimeInfo {
        /// Odd while an update is in progress.
        pub version: u32,
        /// Padding.
        pub _pad0: u32,
        /// Counter value at the last update.
        pub tsc_timestamp: u64,
        /// Nanoseconds since boot at the last update.
        pub system_time: u64,
        /// Counter-to-nanoseconds multiplier (32.32 fixed point).
        pub tsc_to_system_mul: u32,
        /// Shift applied to the counter delta before multiplying.
        pub tsc_shift: i8,
        /// `XEN_PVCLOCK_*` flags.
        pub flags: u8,
        /// Padding.
        pub _pad1: [u8; 2],
    }
}
layout!(
    VcpuTimeInfo,
    32,
    version = 0,
    tsc_timestamp = 8,
    system_time = 16,
    tsc_to_system_mul = 24,
    tsc_shift = 28,
    flags = 29
);

wire! {
    /// `vcpu_info`: per-vCPU event state. The Arm arch part is empty.
    pub struct VcpuInfo {
        /// Set by the hypervisor when an unmasked port becomes pending; cleared by the guest.
        pub evtchn_upcall_pending: u8,
        /// Guest's upcall mask (Arm guests leave it alone; the PPI is masked in the GIC).
        pub evtchn_upcall_mask: u8,
        /// Padding.
        pub _pad0: [u8; 6],
        /// Bit `i` set: word `i` of `evtchn_pending` may hold a pending unmasked port.
        pub evtchn_pending_sel: u64,
        /// System time.
        pub time: VcpuTimeInfo,
    }
}
layout!(
    VcpuInfo,
    48,
    evtchn_upcall_pending = 0,
    evtchn_upcall_mask = 1,
    evtchn_pending_sel = 8,
    time = 16
);

wire! {
    /// `shared_info`: the page mapped with [`super::MapSpace::SharedInfo`]. The Arm arch part is
    /// empty; the rest of the 4 KiB page is unused.
    pub struct SharedInfo {
        /// vCPU 0's default `vcpu_info`.
        pub vcpu_info: [VcpuInfo; LEGACY_MAX_VCPUS],
        /// 2-level pending bitmap, one bit per port.
        pub evtchn_pending: [u64; EVTCHN_WORDS],
        /// 2-level mask bitmap, one bit per port (written only by the guest).
        pub evtchn_mask: [u64; EVTCHN_WORDS],
        /// Wallclock seqlock version.
        pub wc_version: u32,
        /// Wallclock seconds (low 32 bits) since the epoch at system time 0.
        pub wc_sec: u32,
        /// Wallclock nanoseconds.
        pub wc_nsec: u32,
        /// Wallclock seconds, high 32 bits.
        pub wc_sec_hi: u32,
    }
}
layout!(
    SharedInfo,
    1088,
    vcpu_info = 0,
    evtchn_pending = 48,
    evtchn_mask = 560,
    wc_version = 1072,
    wc_sec = 1076,
    wc_nsec = 1080,
    wc_sec_hi = 1084
);

/// `RUNSTATE_*` values of [`VcpuRunstateInfo::state`].
pub mod runstate {
    /// Running on a physical CPU.
    pub const RUNNING: i32 = 0;
    /// Runnable, waiting for a CPU.
    pub const RUNNABLE: i32 = 1;
    /// Blocked.
    pub const BLOCKED: i32 = 2;
    /// Offline or preempted by the hypervisor.
    pub const OFFLINE: i32 = 3;
    /// Set in `state_entry_time` while the area is being updated.
    pub const UPDATE: u64 = 1 << 63;
}

wire! {
    /// `vcpu_runstate_info`: time spent in each [`runstate`].
    pub struct VcpuRunstateInfo {
        /// Current state.
        pub state: i32,
        /// Padding.
        pub _pad0: u32,
        /// System time the current state was entered.
        pub state_entry_time: u64,
        /// Nanoseconds spent in each state, indexed by state.
        pub time: [u64; 4],
    }
}
layout!(
    VcpuRunstateInfo,
    48,
    state = 0,
    state_entry_time = 8,
    time = 16
);

wire! {
    /// `vcpu_register_vcpu_info`: where a vCPU's [`VcpuInfo`] lives from now on.
    pub struct VcpuRegisterVcpuInfo {
        /// Guest frame number of the page.
        pub mfn: u64,
        /// Byte offset within the page (the whole struct must fit in the page).
        pub offset: u32,
        /// Reserved.
        pub rsvd: u32,
    }
}
layout!(VcpuRegisterVcpuInfo, 16, mfn = 0, offset = 8, rsvd = 12);

wire! {
    /// `vcpu_register_runstate_memory_area`: guest virtual address of a [`VcpuRunstateInfo`].
    pub struct VcpuRegisterRunstateMemoryArea {
        /// Guest virtual address (a guest handle).
        pub addr: u64,
    }
}
layout!(VcpuRegisterRunstateMemoryArea, 8, addr = 0);

wire! {
    /// `xen_feature_info`: one 32-bit submap of `XENFEAT_*` bits.
    pub struct XenFeatureInfo {
        /// Submap index (only 0 exists).
        pub submap_idx: u32,
        /// Feature bits.
        pub submap: u32,
    }
}
layout!(XenFeatureInfo, 8, submap_idx = 0, submap = 4);

wire! {
    /// `xen_add_to_physmap`: map a hypervisor-provided page at a guest frame.
    pub struct XenAddToPhysmap {
        /// Target domain (usually [`DOMID_SELF`]).
        pub domid: DomId,
        /// Page count, for ranges only.
        pub size: u16,
        /// A [`super::MapSpace`].
        pub space: u32,
        /// Index within the space (grant frame number).
        pub idx: u64,
        /// Guest frame to map it at.
        pub gpfn: u64,
    }
}
layout!(
    XenAddToPhysmap,
    24,
    domid = 0,
    size = 2,
    space = 4,
    idx = 8,
    gpfn = 16
);

wire! {
    /// `xen_hvm_param`: argument of [`super::HvmOp`].
    pub struct XenHvmParam {
        /// Target domain.
        pub domid: DomId,
        /// Padding.
        pub pad: u16,
        /// A [`super::HvmParam`].
        pub index: u32,
        /// Value read or written.
        pub value: u64,
    }
}
layout!(XenHvmParam, 16, domid = 0, pad = 2, index = 4, value = 8);

wire! {
    /// `sched_shutdown`: argument of [`super::SchedOp::Shutdown`].
    pub struct SchedShutdown {
        /// A [`super::ShutdownReason`].
        pub reason: u32,
    }
}
layout!(SchedShutdown, 4, reason = 0);

wire! {
    /// `sched_poll`: argument of [`super::SchedOp::Poll`].
    pub struct SchedPoll {
        /// Guest virtual address of an array of [`EvtchnPort`].
        pub ports: u64,
        /// Number of ports in the array.
        pub nr_ports: u32,
        /// Padding.
        pub _pad0: u32,
        /// Absolute system-time timeout in ns; 0 waits forever.
        pub timeout: u64,
    }
}
layout!(SchedPoll, 24, ports = 0, nr_ports = 8, timeout = 16);

pub use super::evtchn::*;
pub use super::grant::*;
