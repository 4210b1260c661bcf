//! Devices passed through to an ordinary guest (xl `dtdev`/`iomem`/`irqs`, issue 16): the
//! manifest names each host device by its first MMIO window; dom0 finds the matching Device
//! capability (one the microvisor made of a node the boot DTB marks `xen,passthrough`),
//! delegates it in `DomainSpec::devices` and says where the guest sees it in
//! `DomainSpec::windows`.

use crate::PlanError;
use alloc::vec::Vec;
use protocol::cap::{CapDetail, CapHandle, CapInfo, CapKind};
use protocol::control::DeviceWindow;
use protocol::manifest::ManifestDevice;
use protocol::mgmt::DeviceRow;

/// The Device caps and guest windows for `devices`; an error names the first device no free
/// Device cap matches: [`PlanError::DeviceHeld`] with its holder when another domain has
/// it, [`PlanError::NoDevice`] when the host has no such passthrough device.
pub fn plan(
    devices: &[ManifestDevice],
    caps: &[CapInfo],
) -> Result<(Vec<CapHandle>, Vec<DeviceWindow>), PlanError> {
    let mut handles = Vec::new();
    let mut windows = Vec::new();
    for dev in devices {
        let mut held_by = None;
        let cap = caps
            .iter()
            .filter(|c| c.kind == CapKind::Device)
            .find(|c| match c.detail {
                CapDetail::Device {
                    mmio_base,
                    assigned,
                    ..
                } if mmio_base == dev.mmio_base => {
                    held_by = held_by.or(assigned);
                    assigned.is_none()
                }
                _ => false,
            })
            .ok_or_else(|| match held_by {
                Some(by) => PlanError::DeviceHeld {
                    path: dev.path.clone(),
                    by,
                },
                None => PlanError::NoDevice {
                    path: dev.path.clone(),
                },
            })?;
        handles.push(cap.handle);
        windows.extend(dev.windows.iter().map(|w| DeviceWindow {
            host: w.host,
            guest: w.guest,
            size: w.size,
        }));
    }
    Ok((handles, windows))
}

/// The devices `domid` holds, as `ctl info` shows them, from dom0's capability list (dom0
/// holds a Device cap for every device the microvisor hands out, and each says who it is
/// assigned to). For dom0 itself: every device, free or held. In MMIO-address order.
pub fn device_rows(caps: &[CapInfo], domid: u16) -> Vec<DeviceRow> {
    let mut rows: Vec<DeviceRow> = caps
        .iter()
        .filter_map(|c| match &c.detail {
            CapDetail::Device {
                mmio_base,
                mmio_size,
                irqs,
                virtio_id,
                assigned,
            } if domid == 0 || *assigned == Some(domid) => Some(DeviceRow {
                mmio_base: *mmio_base,
                mmio_size: *mmio_size,
                irqs: irqs.clone(),
                virtio_id: *virtio_id,
                holder: *assigned,
            }),
            _ => None,
        })
        .collect();
    rows.sort_by_key(|r| r.mmio_base);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use protocol::cap::Rights;
    use protocol::manifest::ManifestWindow;

    fn device(index: u16, mmio_base: u64, assigned: Option<u16>) -> CapInfo {
        CapInfo {
            handle: CapHandle {
                index,
                generation: 1,
            },
            kind: CapKind::Device,
            rights: Rights::READ | Rights::WRITE | Rights::DELEGATE,
            label: "device".into(),
            detail: CapDetail::Device {
                mmio_base,
                mmio_size: 0x1000,
                irqs: vec![34],
                virtio_id: 0,
                assigned,
            },
        }
    }

    fn rtc() -> ManifestDevice {
        ManifestDevice {
            path: "/pl031@9010000".into(),
            mmio_base: 0x0901_0000,
            windows: vec![ManifestWindow {
                host: 0x0901_0000,
                guest: 0x2000_0000,
                size: 0x1000,
            }],
            irqs: vec![34],
        }
    }

    #[test]
    fn the_free_device_at_the_base_is_delegated() {
        let caps = [device(5, 0x0903_0000, None), device(6, 0x0901_0000, None)];
        let (handles, windows) = plan(&[rtc()], &caps).unwrap();
        assert_eq!(handles, [caps[1].handle]);
        assert_eq!(
            windows,
            [DeviceWindow {
                host: 0x0901_0000,
                guest: 0x2000_0000,
                size: 0x1000
            }]
        );
        assert_eq!(plan(&[], &caps).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn an_assigned_or_absent_device_is_named() {
        let held = [device(6, 0x0901_0000, Some(3))];
        let e = plan(&[rtc()], &held).unwrap_err();
        assert_eq!(
            e,
            PlanError::DeviceHeld {
                path: "/pl031@9010000".into(),
                by: 3
            }
        );
        assert!(e.to_string().contains("held by domain 3"), "{e}");
        assert_eq!(
            plan(&[rtc()], &[]).unwrap_err(),
            PlanError::NoDevice {
                path: "/pl031@9010000".into()
            }
        );
        // Freed (its holder destroyed): the next domain gets it.
        let freed = [device(6, 0x0901_0000, None)];
        assert_eq!(plan(&[rtc()], &freed).unwrap().0, [freed[0].handle]);
    }

    #[test]
    fn a_domain_sees_its_own_devices_and_dom0_sees_all() {
        let caps = [
            device(7, 0x0a00_3e00, Some(2)),
            device(6, 0x0901_0000, Some(3)),
            device(5, 0x0903_0000, None),
        ];
        let mine = device_rows(&caps, 3);
        assert_eq!(mine.len(), 1);
        assert_eq!(
            (mine[0].mmio_base, mine[0].holder, mine[0].irqs.clone()),
            (0x0901_0000, Some(3), vec![34])
        );
        assert!(device_rows(&caps, 4).is_empty());
        let all: Vec<u64> = device_rows(&caps, 0).iter().map(|r| r.mmio_base).collect();
        assert_eq!(
            all,
            [0x0901_0000, 0x0903_0000, 0x0a00_3e00],
            "address order"
        );
    }
}
