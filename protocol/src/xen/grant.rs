//! Grant table v1: entry layout, flags and `grant_table_op` argument structures, re-exported
//! from [`super::structs`].

use super::structs::{DomId, GrantHandle, GrantRef};

/// `GTF_*` bits of [`GrantEntryV1::flags`].
pub mod gtf {
    /// Entry type: unused.
    pub const INVALID: u16 = 0;
    /// Entry type: the granted domain may map or copy the frame.
    pub const PERMIT_ACCESS: u16 = 1;
    /// Entry type: page transfer (not offered).
    pub const ACCEPT_TRANSFER: u16 = 2;
    /// Entry type: transitive grant (v2 only).
    pub const TRANSITIVE: u16 = 3;
    /// Mask of the entry type.
    pub const TYPE_MASK: u16 = 3;
    /// Granted read-only (set by the granter).
    pub const READONLY: u16 = 1 << 2;
    /// The frame is mapped or being copied for reading (set by the hypervisor).
    pub const READING: u16 = 1 << 3;
    /// The frame is mapped or being copied for writing (set by the hypervisor).
    pub const WRITING: u16 = 1 << 4;
    /// Cache attribute: write-through.
    pub const PWT: u16 = 1 << 5;
    /// Cache attribute: cache disable.
    pub const PCD: u16 = 1 << 6;
    /// Cache attribute: PAT.
    pub const PAT: u16 = 1 << 7;
    /// Sub-page grant (v2 only).
    pub const SUB_PAGE: u16 = 1 << 8;
}

/// `GNTMAP_*` bits of [`GnttabMapGrantRef::flags`].
pub mod gntmap {
    /// Map for device (DMA) access.
    pub const DEVICE_MAP: u32 = 1 << 0;
    /// Map into the caller's address space at `host_addr` (a guest frame on Arm).
    pub const HOST_MAP: u32 = 1 << 1;
    /// Map read-only.
    pub const READONLY: u32 = 1 << 2;
    /// Application (user) mapping (x86 PV only).
    pub const APPLICATION_MAP: u32 = 1 << 3;
    /// `host_addr` is a PTE address (x86 PV only).
    pub const CONTAINS_PTE: u32 = 1 << 4;
}

/// `GNTCOPY_*` bits of [`GnttabCopy::flags`].
pub mod gntcopy {
    /// The source is a grant reference, not a local frame.
    pub const SOURCE_GREF: u16 = 1 << 0;
    /// The destination is a grant reference, not a local frame.
    pub const DEST_GREF: u16 = 1 << 1;
}

/// `GNTST_*` per-operation status codes (the `status` field, not the hypercall return).
pub mod gntst {
    /// Success.
    pub const OKAY: i16 = 0;
    /// Unspecified error.
    pub const GENERAL_ERROR: i16 = -1;
    /// Unknown domain.
    pub const BAD_DOMAIN: i16 = -2;
    /// Bad or inappropriate grant reference.
    pub const BAD_GNTREF: i16 = -3;
    /// Bad or inappropriate mapping handle.
    pub const BAD_HANDLE: i16 = -4;
    /// Bad address to map at.
    pub const BAD_VIRT_ADDR: i16 = -5;
    /// Bad device address to unmap.
    pub const BAD_DEV_ADDR: i16 = -6;
    /// No space in the IOMMU.
    pub const NO_DEVICE_SPACE: i16 = -7;
    /// Not permitted.
    pub const PERMISSION_DENIED: i16 = -8;
    /// Bad page.
    pub const BAD_PAGE: i16 = -9;
    /// A copy segment crosses a page boundary.
    pub const BAD_COPY_ARG: i16 = -10;
    /// Transfer address too large.
    pub const ADDRESS_TOO_BIG: i16 = -11;
    /// Not done; retry.
    pub const EAGAIN: i16 = -12;
    /// Out of handles or similar.
    pub const NO_SPACE: i16 = -13;
}

wire! {
    /// `grant_entry_v1`: one entry of the granting domain's table.
    pub struct GrantEntryV1 {
        /// [`gtf`] bits; updated by compare-and-swap.
        pub flags: u16,
        /// Domain being granted access.
        pub domid: DomId,
        /// Granted guest frame number.
        pub frame: u32,
    }
}
layout!(GrantEntryV1, 8, flags = 0, domid = 2, frame = 4);

/// Entries per 4 KiB grant-table frame.
pub const GRANT_ENTRIES_PER_FRAME: usize = 4096 / core::mem::size_of::<GrantEntryV1>();

wire! {
    /// `gnttab_map_grant_ref`.
    pub struct GnttabMapGrantRef {
        /// Where to map (with [`gntmap::HOST_MAP`]: a guest-physical address on Arm).
        pub host_addr: u64,
        /// [`gntmap`] bits.
        pub flags: u32,
        /// Grant reference in `dom`'s table (`ref` in C).
        pub gref: GrantRef,
        /// Granting domain.
        pub dom: DomId,
        /// Out: a [`gntst`] code.
        pub status: i16,
        /// Out: handle for unmapping.
        pub handle: GrantHandle,
        /// Out: bus address for device mappings.
        pub dev_bus_addr: u64,
    }
}
layout!(
    GnttabMapGrantRef,
    32,
    host_addr = 0,
    flags = 8,
    gref = 12,
    dom = 16,
    status = 18,
    handle = 20,
    dev_bus_addr = 24
);

wire! {
    /// `gnttab_unmap_grant_ref`.
    pub struct GnttabUnmapGrantRef {
        /// Address the grant was mapped at.
        pub host_addr: u64,
        /// Device address, for device mappings.
        pub dev_bus_addr: u64,
        /// Handle from the map.
        pub handle: GrantHandle,
        /// Out: a [`gntst`] code.
        pub status: i16,
        /// Padding.
        pub _pad0: u16,
    }
}
layout!(
    GnttabUnmapGrantRef,
    24,
    host_addr = 0,
    dev_bus_addr = 8,
    handle = 16,
    status = 20
);

wire! {
    /// `gnttab_copy_ptr`: one side of a [`GnttabCopy`].
    pub struct GnttabCopyPtr {
        /// A grant reference (low 32 bits) if the matching [`gntcopy`] flag is set, else a
        /// local guest frame number (C union of `grant_ref_t` and `xen_pfn_t`).
        pub u: u64,
        /// Domain owning the grant or frame.
        pub domid: DomId,
        /// Byte offset within the page.
        pub offset: u16,
        /// Padding.
        pub _pad0: u32,
    }
}
layout!(GnttabCopyPtr, 16, u = 0, domid = 8, offset = 10);

impl GnttabCopyPtr {
    /// `u` read as a grant reference.
    pub fn gref(&self) -> GrantRef {
        self.u as GrantRef
    }
}

wire! {
    /// `gnttab_copy`: copy `len` bytes between two pages, either side named by grant or frame.
    pub struct GnttabCopy {
        /// Source.
        pub source: GnttabCopyPtr,
        /// Destination.
        pub dest: GnttabCopyPtr,
        /// Bytes to copy; neither side may cross its page.
        pub len: u16,
        /// [`gntcopy`] bits.
        pub flags: u16,
        /// Out: a [`gntst`] code.
        pub status: i16,
        /// Padding.
        pub _pad0: u16,
    }
}
layout!(
    GnttabCopy,
    40,
    source = 0,
    dest = 16,
    len = 32,
    flags = 34,
    status = 36
);

wire! {
    /// `gnttab_query_size`.
    pub struct GnttabQuerySize {
        /// Domain to query.
        pub dom: DomId,
        /// Padding.
        pub _pad0: u16,
        /// Out: frames in use.
        pub nr_frames: u32,
        /// Out: maximum frames.
        pub max_nr_frames: u32,
        /// Out: a [`gntst`] code.
        pub status: i16,
        /// Padding.
        pub _pad1: u16,
    }
}
layout!(
    GnttabQuerySize,
    16,
    dom = 0,
    nr_frames = 4,
    max_nr_frames = 8,
    status = 12
);

wire! {
    /// `gnttab_set_version`.
    pub struct GnttabSetVersion {
        /// In: requested version (only 1 is offered); out: version in force.
        pub version: u32,
    }
}
layout!(GnttabSetVersion, 4, version = 0);
