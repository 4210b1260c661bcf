//! `ctl info NAME`: the host devices a domain holds by passthrough (a driver domain's NIC
//! or disks, a guest's `dtdev`/`iomem`); for dom0, every device and who holds it.

use protocol::mgmt::DeviceRow;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The host devices a domain holds, one line each (empty string if none).
pub fn devices_text(rows: &[DeviceRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{:<22} {:<14} {:<8} {:<8}\n",
        "Device (MMIO)", "IRQs", "Kind", "Holder"
    );
    for r in rows {
        let irqs: Vec<String> = r.irqs.iter().map(u32::to_string).collect();
        let _ = writeln!(
            s,
            "{:<22} {:<14} {:<8} {:<8}",
            format!("{:#x}+{:#x}", r.mmio_base, r.mmio_size),
            if irqs.is_empty() {
                "-".into()
            } else {
                irqs.join(",")
            },
            device_kind(r.virtio_id),
            r.holder.map_or_else(|| "free".into(), |h| format!("d{h}")),
        );
    }
    s
}

/// What a device is, in a word: its virtio type, or `device` for a non-virtio node.
fn device_kind(virtio_id: u32) -> &'static str {
    match virtio_id {
        0 => "device",
        1 => "net",
        2 => "block",
        3 => "console",
        4 => "rng",
        _ => "virtio",
    }
}

/// The devices as JSON.
pub fn devices_json(rows: &[DeviceRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "mmio_base": r.mmio_base,
                    "mmio_size": r.mmio_size,
                    "irqs": r.irqs,
                    "kind": device_kind(r.virtio_id),
                    "virtio_id": r.virtio_id,
                    "holder": r.holder,
                })
            })
            .collect(),
    )
}
