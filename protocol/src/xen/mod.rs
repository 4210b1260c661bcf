//! The Xen-compatible guest ABI (DESIGN §3.2), the subset a stock arm64 Linux DomU needs.
//!
//! A guest issues `HVC #0xEA1` ([`HYPERCALL_IMM`]) with the hypercall number in `x16` and its
//! arguments in `x0..x4`; the result comes back in `x0`: zero or a positive value on success,
//! a negated [`XenErrno`] on failure. Pointer arguments are guest virtual addresses of the
//! fixed-layout structures in [`structs`]. The xenstore and PV console shared pages are in
//! [`ring`]. Numbers and layouts follow Xen's public headers (`xen/include/public`); all
//! multi-byte fields are little-endian, as both AArch64 and the host tools are.
//!
//! Every number space is a `#[repr]` enum with `TryFrom` its raw width (the `Err` is the raw
//! value, so a dispatcher can report it), plus `from_reg` to decode a 64-bit register.

/// Declares an ABI number enum with `TryFrom<$repr>` and `from_reg(u64)`.
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ident {
            $( $(#[$vmeta:meta])* $var:ident = $val:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $var = $val, )+
        }

        impl TryFrom<$repr> for $name {
            type Error = $repr;
            fn try_from(raw: $repr) -> Result<Self, $repr> {
                $( if raw == $val { return Ok(Self::$var); } )+
                Err(raw)
            }
        }

        impl $name {
            /// Decodes a full 64-bit register; values that do not fit the raw width are unknown.
            #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
            pub fn from_reg(reg: u64) -> Option<Self> {
                let raw = <$repr>::try_from(reg).ok()?;
                Self::try_from(raw).ok()
            }
        }
    };
}

/// Declares the shared derive set for a wire struct.
macro_rules! wire {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)+ }) => {
        $(#[$m])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq,
            zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
        )]
        #[repr(C)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)+ }
    };
}

/// Asserts a struct's size and the offsets of the named fields.
macro_rules! layout {
    ($t:ty, $size:expr $(, $f:ident = $off:expr)* $(,)?) => {
        static_assertions::const_assert_eq!(core::mem::size_of::<$t>(), $size);
        $( static_assertions::const_assert_eq!(core::mem::offset_of!($t, $f), $off); )*
    };
}

pub mod blkif;
pub mod copy;
mod errno;
mod evtchn;
mod grant;
pub mod netif;
pub mod ring;
pub mod ring_io;
pub mod structs;
pub mod xenbus;

pub use errno::XenErrno;

/// The `HVC` immediate that marks a Xen hypercall.
pub const HYPERCALL_IMM: u16 = 0xEA1;

abi_enum! {
    /// Hypercall numbers (passed in `x16`). Anything else is answered with `-ENOSYS`.
    pub enum Hypercall: u64 {
        /// `memory_op`: [`MemoryOp`] in `x0`.
        MemoryOp = 12,
        /// `xen_version`: [`XenVersionOp`] in `x0`.
        XenVersion = 17,
        /// `console_io`: [`ConsoleIoOp`] in `x0`, byte count in `x1`, buffer in `x2`.
        ConsoleIo = 18,
        /// `grant_table_op`: [`GnttabOp`] in `x0`, argument array in `x1`, count in `x2`.
        GrantTableOp = 20,
        /// `vcpu_op`: [`VcpuOp`] in `x0`, vCPU id in `x1`, argument in `x2`.
        VcpuOp = 24,
        /// `vm_assist`: not offered (Linux probes it for the runstate update flag and copes
        /// with `-ENOSYS`); listed so it is refused without a log line.
        VmAssist = 21,
        /// `sched_op`: [`SchedOp`] in `x0`, argument in `x1`.
        SchedOp = 29,
        /// `event_channel_op`: [`EvtchnOp`] in `x0`, argument in `x1`.
        EventChannelOp = 32,
        /// `physdev_op`: not offered; listed so it is recognised and refused with `-ENOSYS`.
        PhysdevOp = 33,
        /// `hvm_op`: [`HvmOp`] in `x0`, argument in `x1`.
        HvmOp = 34,
    }
}

abi_enum! {
    /// `sched_op` sub-operations.
    pub enum SchedOp: u32 {
        /// Give up the CPU, stay runnable.
        Yield = 0,
        /// Block until an event is pending.
        Block = 1,
        /// Shut the domain down; argument is [`structs::SchedShutdown`].
        Shutdown = 2,
        /// Block until one of a set of ports is pending; argument is [`structs::SchedPoll`].
        Poll = 3,
    }
}

abi_enum! {
    /// `SHUTDOWN_*` reasons carried by [`structs::SchedShutdown`].
    pub enum ShutdownReason: u32 {
        /// Normal exit.
        Poweroff = 0,
        /// Restart requested.
        Reboot = 1,
        /// Suspend (save state, then stop).
        Suspend = 2,
        /// The guest crashed.
        Crash = 3,
        /// Watchdog expired.
        Watchdog = 4,
        /// Soft reset.
        SoftReset = 5,
    }
}

abi_enum! {
    /// `memory_op` sub-operations.
    pub enum MemoryOp: u32 {
        /// `XENMEM_add_to_physmap`; argument is [`structs::XenAddToPhysmap`].
        AddToPhysmap = 7,
    }
}

abi_enum! {
    /// `XENMAPSPACE_*`: what [`structs::XenAddToPhysmap`] maps.
    pub enum MapSpace: u32 {
        /// The shared_info page (`idx` must be 0).
        SharedInfo = 0,
        /// A grant-table frame (`idx` is the frame number).
        GrantTable = 1,
        /// A guest frame (not offered).
        Gmfn = 2,
        /// A range of guest frames (not offered).
        GmfnRange = 3,
        /// A foreign domain's frame (not offered).
        GmfnForeign = 4,
        /// Device MMIO (not offered).
        DevMmio = 5,
    }
}

/// Bit in a [`MapSpace::GrantTable`] index selecting a v2 status frame (never valid for v1).
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

abi_enum! {
    /// `vcpu_op` sub-operations.
    pub enum VcpuOp: u32 {
        /// Place the vCPU's runstate; argument is [`structs::VcpuRegisterRunstateMemoryArea`].
        RegisterRunstateMemoryArea = 5,
        /// Move the vCPU's vcpu_info; argument is [`structs::VcpuRegisterVcpuInfo`].
        RegisterVcpuInfo = 10,
    }
}

abi_enum! {
    /// `hvm_op` sub-operations; argument is [`structs::XenHvmParam`].
    pub enum HvmOp: u32 {
        /// Set a parameter.
        SetParam = 0,
        /// Read a parameter.
        GetParam = 1,
    }
}

abi_enum! {
    /// `HVM_PARAM_*` indices.
    pub enum HvmParam: u32 {
        /// Guest frame of the xenstore ring page.
        StorePfn = 1,
        /// Event channel of the xenstore ring.
        StoreEvtchn = 2,
        /// Guest frame of the PV console ring page.
        ConsolePfn = 17,
        /// Event channel of the PV console ring.
        ConsoleEvtchn = 18,
    }
}

abi_enum! {
    /// `event_channel_op` sub-operations (2-level ABI).
    pub enum EvtchnOp: u32 {
        /// Connect to a remote domain's unbound port.
        BindInterdomain = 0,
        /// Close a port.
        Close = 3,
        /// Notify the remote end.
        Send = 4,
        /// Query a port.
        Status = 5,
        /// Allocate a port for a remote domain to bind.
        AllocUnbound = 6,
        /// Route a port's upcalls to a vCPU.
        BindVcpu = 8,
        /// Unmask a port, re-raising it if pending.
        Unmask = 9,
        /// FIFO ABI setup; refused with `-ENOSYS` so guests fall back to 2-level.
        InitControl = 11,
    }
}

abi_enum! {
    /// `EVTCHNSTAT_*`: the state [`structs::EvtchnStatus`] reports.
    pub enum EvtchnStat: u32 {
        /// Not in use.
        Closed = 0,
        /// Allocated, waiting for the remote domain to bind.
        Unbound = 1,
        /// Connected to a remote domain.
        Interdomain = 2,
        /// Bound to a physical IRQ.
        Pirq = 3,
        /// Bound to a virtual IRQ.
        Virq = 4,
        /// Bound to an IPI.
        Ipi = 5,
    }
}

abi_enum! {
    /// `grant_table_op` sub-operations (v1).
    pub enum GnttabOp: u32 {
        /// Map foreign grants; arguments are [`structs::GnttabMapGrantRef`].
        MapGrantRef = 0,
        /// Unmap; arguments are [`structs::GnttabUnmapGrantRef`].
        UnmapGrantRef = 1,
        /// Copy through grants; arguments are [`structs::GnttabCopy`].
        Copy = 5,
        /// Grant table size; argument is [`structs::GnttabQuerySize`].
        QuerySize = 6,
        /// Choose the table version (only 1); argument is [`structs::GnttabSetVersion`].
        SetVersion = 8,
    }
}

abi_enum! {
    /// `xen_version` sub-operations.
    pub enum XenVersionOp: u32 {
        /// Returns `major << 16 | minor`.
        Version = 0,
        /// Fills a [`XEN_EXTRAVERSION_LEN`]-byte string.
        Extraversion = 1,
        /// Fills a [`structs::XenFeatureInfo`].
        GetFeatures = 6,
    }
}

/// Size of the buffer [`XenVersionOp::Extraversion`] fills (NUL-terminated).
pub const XEN_EXTRAVERSION_LEN: usize = 16;

/// `XENFEAT_*` bit numbers within feature submap 0.
pub mod feature {
    /// Guest page tables are writable.
    pub const WRITABLE_PAGE_TABLES: u32 = 0;
    /// Descriptor tables are writable.
    pub const WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
    /// The guest sees guest-physical frames, translated by the hypervisor (stage 2).
    pub const AUTO_TRANSLATED_PHYSMAP: u32 = 2;
    /// The guest kernel runs in the most privileged mode.
    pub const SUPERVISOR_MODE_KERNEL: u32 = 3;
    /// Grant mappings support available bits.
    pub const GNTTAB_MAP_AVAIL_BITS: u32 = 7;
    /// Events can be delivered through a callback vector.
    pub const HVM_CALLBACK_VECTOR: u32 = 8;
    /// The domain is the control domain.
    pub const DOM0: u32 = 11;
    /// SMCCC 1.1 is supported.
    pub const ARM_SMCCC_SUPPORTED: u32 = 14;
    /// Guest physical memory is not an identity map of host memory.
    pub const NOT_DIRECT_MAPPED: u32 = 16;
    /// Guest physical memory is an identity map of host memory.
    pub const DIRECT_MAPPED: u32 = 17;
}

abi_enum! {
    /// `console_io` sub-operations (the hypervisor's emergency console).
    pub enum ConsoleIoOp: u32 {
        /// Write bytes.
        Write = 0,
        /// Read bytes.
        Read = 1,
    }
}

#[cfg(test)]
mod tests;
