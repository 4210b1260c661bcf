//! `mode=neighbour`: a block backend that reaches past its own virtio-mmio transport
//! (DESIGN §6.1). QEMU packs eight 0x200-byte transports into one 4 KiB page, so our window
//! shares its page with other devices; the microvisor leaves such a window unmapped and
//! performs only the accesses that fall inside it. We map our delegated virtio-blk Device
//! cap, read our own MagicValue, then read the neighbouring transport in the same page.
//! That read must stop this domain with a stage-2 fault, never return a value.
//!
//! Markers: `neighbour: own MagicValue <v> at <addr>`, `neighbour: touching <addr>`, and
//! on failure `neighbour: FAIL <what>`.

use bulkhead_runtime::{arch, cap, println, StartInfo};
use protocol::cap::{CapDetail, CapKind};
use protocol::control::CapOp;
use testguest::neighbour_of;

/// virtio device id of a block device.
const VIRTIO_BLOCK: u32 = 2;

/// Maps our virtio-blk window, checks it, then touches the neighbour.
pub fn run(info: &StartInfo) {
    let (ram, end) = (info.ram_base, info.ram_base.saturating_add(info.ram_size));
    let caps = match cap::cap_list() {
        Ok(c) => c,
        Err(e) => return println!("neighbour: FAIL CapList: {e:?}"),
    };
    let Some(dev) = caps.iter().find(|c| {
        c.kind == CapKind::Device
            && matches!(
                c.detail,
                CapDetail::Device {
                    virtio_id: VIRTIO_BLOCK,
                    ..
                }
            )
    }) else {
        return println!(
            "neighbour: FAIL no virtio-blk Device cap among {} caps",
            caps.len()
        );
    };
    let (base, size) = match cap::call(CapOp::DeviceMap, [dev.handle.to_raw(), 0, 0, 0, 0, 0]) {
        Ok(r) => (r[0], r[1]),
        Err(e) => return println!("neighbour: FAIL DeviceMap: {e:?}"),
    };
    let Some(magic) = arch::probe_read32(base, ram, end) else {
        return println!("neighbour: FAIL window {base:#x} is inside our RAM or misaligned");
    };
    println!("neighbour: own MagicValue {magic:#x} at {base:#x} (window {size:#x})");
    if magic != 0x7472_6976 {
        return println!("neighbour: FAIL own MagicValue {magic:#x}, want 0x74726976");
    }
    let Some(next) = neighbour_of(base, size) else {
        return println!("neighbour: FAIL window {base:#x}+{size:#x} has no neighbour in its page");
    };
    println!("neighbour: touching {next:#x}");
    let v = arch::probe_read32(next, ram, end);
    println!("neighbour: FAIL survived, read {v:x?} at {next:#x}");
}
