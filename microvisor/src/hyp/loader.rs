//! Planning how a domain's image goes into its freshly allocated RAM: a Bulkhead flat image
//! (start info at the top of RAM) or a stock arm64 Linux `Image` (Linux's boot protocol:
//! kernel at RAM + text_offset, initramfs and a generated device tree at the top of RAM).
//! The copies themselves are [`Op`]s, run outside the global lock (see [`super::bulk`]).

use super::bulk::Op;
use crate::guest_dt::{self, GuestDtParams};
use crate::linux_image;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::addr::PhysAddr;
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
    /// Flat image: start-info arguments. Linux: the kernel command line.
    pub cmdline: &'a str,
    /// vCPU count.
    pub vcpus: u16,
}

/// Host address of guest-physical `ipa` in RAM at `ram_pa` (the layout checked the range).
fn host(ram_pa: PhysAddr, ipa: u64) -> u64 {
    ram_pa.as_u64() + (ipa - GUEST_RAM_BASE.as_u64())
}

/// Copying boot-module bytes (`bytes` lies in a boot module) to guest-physical `ipa`.
fn copy_module(ram_pa: PhysAddr, ipa: u64, bytes: &[u8]) -> Op {
    Op::Copy {
        dst: host(ram_pa, ipa),
        src: bytes.as_ptr() as u64,
        len: bytes.len() as u64,
    }
}

/// Plans loading `spec` into `[ram_pa, ram_pa + ram_size)`: the copies, in order (after the
/// RAM is zeroed and before it is cleaned), and how to enter it. `spec.image` and
/// `spec.ramdisk` must be boot modules (they are copied later, by address).
pub fn load(
    ram_pa: PhysAddr,
    ram_size: u64,
    spec: &LoadSpec<'_>,
) -> Result<(Entry, Vec<Op>), CapError> {
    let ram_base = GUEST_RAM_BASE.as_u64();
    if let Ok(hdr) = linux_image::parse_header(spec.image) {
        let ramdisk = spec.ramdisk.unwrap_or(&[]);
        let dt = |initrd: Option<(u64, u64)>| {
            guest_dt::build(&GuestDtParams {
                ram_base,
                ram_size,
                vcpus: u32::from(spec.vcpus),
                bootargs: spec.cmdline,
                initrd,
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
        let mut ops = alloc::vec![copy_module(ram_pa, layout.kernel, spec.image)];
        if let Some((start, _)) = layout.initrd {
            ops.push(copy_module(ram_pa, start, ramdisk));
        }
        ops.push(Op::Bytes {
            dst: host(ram_pa, layout.dtb),
            bytes: blob,
        });
        let entry = Entry {
            pc: layout.kernel,
            args: [layout.dtb, 0, 0],
            linux: true,
        };
        return Ok((entry, ops));
    }
    if spec.ramdisk.is_some() {
        // Only a Linux kernel knows what to do with an initramfs.
        return Err(CapError::InvalidArgument);
    }
    if spec.image.len() as u64 > ram_size.saturating_sub(START_INFO_RESERVE) {
        return Err(CapError::InvalidArgument);
    }
    let image = copy_module(ram_pa, ram_base, spec.image);
    let info = StartInfo {
        version: PROTOCOL_VERSION,
        domid: spec.id.0,
        name: String::from(spec.name),
        ram_base,
        ram_size,
        vcpus: spec.vcpus,
        counter_hz: crate::arch::counter_hz(),
        cmdline: String::from(spec.cmdline),
        phys_offset: ram_pa.as_u64().wrapping_sub(ram_base),
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
    let info = Op::Bytes {
        dst: host(ram_pa, info_ipa),
        bytes,
    };
    Ok((entry, alloc::vec![image, info]))
}
