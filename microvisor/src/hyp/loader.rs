//! Planning how a domain's image goes into its freshly allocated RAM: a Bulkhead flat image
//! (start info at the top of RAM) or a stock arm64 Linux `Image` (Linux's boot protocol:
//! kernel at RAM + text_offset, initramfs and a generated device tree at the top of RAM).
//! The copies themselves are [`Op`]s, run outside the global lock (see [`super::bulk`]).

use super::bulk::Op;
use crate::guest_dt::{self, GuestDtParams};
use crate::linux_image;
use crate::mm::ram::RamMap;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::boot::{StartInfo, START_INFO_RESERVE};
use protocol::control::{CapError, PROTOCOL_VERSION};
use protocol::ids::DomainId;
use protocol::layout::GUEST_RAM_BASE;

/// Where vCPU 0 starts and what it finds in its first registers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Entry {
    /// Guest-physical entry point.
    pub pc: u64,
    /// `x0..x2` at entry.
    pub args: [u64; 3],
    /// The image is a Linux kernel (it speaks the Xen ABI and boots from a device tree).
    pub linux: bool,
}

/// What the loader needs to know about the domain.
pub struct LoadSpec<'a> {
    /// Domain id.
    pub id: DomainId,
    /// Name.
    pub name: &'a str,
    /// Image bytes.
    pub image: &'a [u8],
    /// Initramfs for a Linux kernel.
    pub ramdisk: Option<&'a [u8]>,
    /// Device-tree fragment for a Linux kernel's tree (xl `device_tree`); empty for none.
    pub extra_dt: &'a [u8],
    /// Flat image: start-info arguments. Linux: the kernel command line.
    pub cmdline: &'a str,
    /// vCPU count.
    pub vcpus: u16,
    /// The domain's virtual GIC (the host's version).
    pub gic: guest_dt::GicVersion,
    /// Physical CPUs of the machine (told to the domain in its start info).
    pub pcpus: u16,
    /// A Linux kernel's `rng-seed` and `kaslr-seed` ([`crate::seeds`]).
    pub seed: Option<crate::seeds::GuestSeed>,
}

/// Whether a domain built from `image` must get physically contiguous RAM (one extent).
///
/// This is the one place the rule lives. Our own Rust domains (dom0, the RTOS, the test
/// guests, the driver domains) are flat Bulkhead images whose runtime turns guest-physical
/// addresses into DMA addresses by adding the offset `DeviceMap` reports, which is only
/// meaningful over contiguous RAM; they get one 2 MiB-aligned block. A Linux `Image`
/// translates nothing itself (it speaks the Xen ABI and uses grants), so its RAM is built
/// from whatever free extents exist: 2 MiB blocks where possible, pages otherwise.
pub fn needs_contiguous_ram(image: &[u8]) -> bool {
    linux_image::parse_header(image).is_err()
}

/// The ops writing `len` bytes at guest-physical `ipa`, split where the RAM's extents are;
/// `op(dst, offset_in_source, len)` builds each piece. The layout checked the range.
fn split_ops(
    ram: &RamMap,
    ipa: u64,
    len: u64,
    mut op: impl FnMut(u64, u64, u64) -> Op,
) -> impl Iterator<Item = Op> {
    let off = ipa - GUEST_RAM_BASE.as_u64();
    ram.pieces(off, len)
        .into_iter()
        .map(move |(pa, at, n)| op(pa.as_u64(), at, n))
}

/// Copying boot-module bytes (`bytes` lies in a boot module) to guest-physical `ipa`.
fn copy_module(ram: &RamMap, ipa: u64, bytes: &[u8]) -> impl Iterator<Item = Op> {
    let src = bytes.as_ptr() as u64;
    split_ops(ram, ipa, bytes.len() as u64, move |dst, at, len| Op::Copy {
        dst,
        src: src + at,
        len,
    })
}

/// Writing `bytes` at guest-physical `ipa`.
fn write_bytes(ram: &RamMap, ipa: u64, bytes: &[u8]) -> impl Iterator<Item = Op> {
    split_ops(ram, ipa, bytes.len() as u64, |dst, at, len| Op::Bytes {
        dst,
        bytes: bytes[at as usize..(at + len) as usize].to_vec(),
    })
    .collect::<Vec<_>>()
    .into_iter()
}

/// Plans loading `spec` into `ram`: the copies, in order (after the RAM is zeroed and
/// before it is cleaned), and how to enter it. `spec.image` and `spec.ramdisk` must be boot
/// modules (they are copied later, by address). A flat image needs contiguous RAM (see
/// [`needs_contiguous_ram`]); a Linux kernel takes any extents.
pub fn load(ram: &RamMap, spec: &LoadSpec<'_>) -> Result<(Entry, Vec<Op>), CapError> {
    let ram_base = GUEST_RAM_BASE.as_u64();
    let ram_size = ram.size();
    if let Ok(hdr) = linux_image::parse_header(spec.image) {
        let ramdisk = spec.ramdisk.unwrap_or(&[]);
        let dt = |initrd: Option<(u64, u64)>| {
            guest_dt::build(&GuestDtParams {
                ram_base,
                ram_size,
                vcpus: u32::from(spec.vcpus),
                gic: spec.gic,
                bootargs: spec.cmdline,
                initrd,
                extra: spec.extra_dt,
                seed: spec.seed,
            })
            .map_err(|_| CapError::InvalidArgument)
        };
        // Plan with the largest tree Linux accepts (the tree needs the initrd's address,
        // the plan the tree's size); the real tree is far smaller.
        let layout = linux_image::plan_layout(
            ram_base,
            ram_size,
            &hdr,
            spec.image.len() as u64,
            ramdisk.len() as u64,
            linux_image::MAX_DTB_LEN,
        )
        .map_err(|_| CapError::InvalidArgument)?;
        let blob = dt(layout.initrd)?;
        if blob.len() as u64 > linux_image::MAX_DTB_LEN {
            return Err(CapError::InvalidArgument);
        }
        let mut ops: Vec<Op> = copy_module(ram, layout.kernel, spec.image).collect();
        if let Some((start, _)) = layout.initrd {
            ops.extend(copy_module(ram, start, ramdisk));
        }
        ops.extend(write_bytes(ram, layout.dtb, &blob));
        let entry = Entry {
            pc: layout.kernel,
            args: [layout.dtb, 0, 0],
            linux: true,
        };
        return Ok((entry, ops));
    }
    if spec.ramdisk.is_some() || !spec.extra_dt.is_empty() {
        // Only a Linux kernel knows what to do with an initramfs or a device tree.
        return Err(CapError::InvalidArgument);
    }
    if spec.image.len() as u64 > ram_size.saturating_sub(START_INFO_RESERVE) {
        return Err(CapError::InvalidArgument);
    }
    // Our runtime's DMA addressing (the offset `DeviceMap` reports) needs one run.
    ram.contiguous_base().ok_or(CapError::InvalidArgument)?;
    let mut ops: Vec<Op> = copy_module(ram, ram_base, spec.image).collect();
    let info = StartInfo {
        version: PROTOCOL_VERSION,
        domid: spec.id.0,
        name: String::from(spec.name),
        ram_base,
        ram_size,
        vcpus: spec.vcpus,
        counter_hz: crate::arch::counter_hz(),
        cmdline: String::from(spec.cmdline),
        pcpus: spec.pcpus,
    };
    let bytes = postcard::to_allocvec(&info).map_err(|_| CapError::InvalidArgument)?;
    if bytes.len() as u64 > START_INFO_RESERVE {
        return Err(CapError::InvalidArgument);
    }
    let info_ipa = ram_base + ram_size - START_INFO_RESERVE;
    let entry = Entry {
        pc: ram_base,
        args: [info_ipa, bytes.len() as u64, ram_size],
        linux: false,
    };
    ops.extend(write_bytes(ram, info_ipa, &bytes));
    Ok((entry, ops))
}
