//! The vif nodes: both halves' exact layout (netdom's contract), ownership, ordering, and
//! which vifs and devices a domain gets.

use super::*;
use protocol::cap::Rights;
use protocol::manifest::{Action, ManifestVif};

fn guest(vifs: Vec<ManifestVif>) -> ManifestDomain {
    ManifestDomain {
        name: "linux".into(),
        image: "debian-linux".into(),
        ramdisk: None,
        mem_mib: 64,
        vcpus: Vec::new(),
        auto_cpus: false,
        cmdline: String::new(),
        depends_on: Vec::new(),
        on_poweroff: Action::Destroy,
        on_reboot: Action::Restart,
        on_crash: Action::Restart,
        vbds: Vec::new(),
        vifs,
        devices: Vec::new(),
        device_tree: None,
        pmu: protocol::control::PmuAccess::Off,
    }
}

fn mvif(devid: u32, last: u8, backend: &str) -> ManifestVif {
    ManifestVif {
        devid,
        mac: [0x00, 0x16, 0x3e, 0x00, 0x00, last],
        bridge: "xenbr0".into(),
        backend: backend.into(),
    }
}

#[test]
fn a_guests_vifs_name_their_backend() {
    let g = guest(alloc::vec![mvif(0, 1, "netdom"), mvif(1, 2, "netdom")]);
    let got = vifs_of(&g, 4, |n| (n == "netdom").then_some(2));
    assert_eq!(
        got,
        [
            Vif {
                frontend: 4,
                backend: 2,
                devid: 0,
                mac: [0, 0x16, 0x3e, 0, 0, 1],
                bridge: "xenbr0".into(),
            },
            Vif {
                frontend: 4,
                backend: 2,
                devid: 1,
                mac: [0, 0x16, 0x3e, 0, 0, 2],
                bridge: "xenbr0".into(),
            },
        ]
    );
    // No backend running yet: nothing to write.
    assert!(vifs_of(&g, 4, |_| None).is_empty());
}

fn device(index: u16, virtio_id: u32, assigned: Option<u16>) -> CapInfo {
    CapInfo {
        handle: CapHandle {
            index,
            generation: 1,
        },
        kind: CapKind::Device,
        rights: Rights::READ | Rights::WRITE | Rights::DELEGATE,
        label: String::new(),
        detail: CapDetail::Device {
            mmio_base: 0x0a00_0000 + u64::from(index) * 0x200,
            mmio_size: 0x200,
            irqs: alloc::vec![48 + u32::from(index)],
            virtio_id,
            assigned,
        },
    }
}

#[test]
fn the_network_backend_gets_every_free_network_device_and_nothing_else() {
    let caps = [
        device(1, 1, None),
        device(2, 2, None),
        device(3, 1, Some(5)),
        device(4, 3, None),
    ];
    let nics = [ManifestNic {
        index: 0,
        backend: "netdom".into(),
        name: "user,id=net0".into(),
    }];
    let got = backend_devices("netdom", &nics, &caps);
    assert_eq!(got.iter().map(|h| h.index).collect::<Vec<_>>(), [1]);
    assert!(backend_devices("blkdom", &nics, &caps).is_empty());
    assert!(backend_devices("netdom", &[], &caps).is_empty());
}

fn eth1() -> Vif {
    Vif {
        frontend: 3,
        backend: 2,
        devid: 1,
        mac: [0x00, 0x16, 0x3e, 0x0a, 0xbc, 0xde],
        bridge: "xenbr1".into(),
    }
}

#[test]
fn the_layout_is_libxls() {
    let be = "/local/domain/2/backend/vif/3/1";
    let fe = "/local/domain/3/device/vif/1";
    let got: Vec<(String, String)> = nodes(&eth1())
        .into_iter()
        .map(|w| (w.path, w.value))
        .collect();
    let want: Vec<(String, String)> = [
        (be.to_string(), ""),
        (format!("{be}/frontend"), fe),
        (format!("{be}/frontend-id"), "3"),
        (format!("{be}/online"), "1"),
        (format!("{be}/handle"), "1"),
        (format!("{be}/mac"), "00:16:3e:0a:bc:de"),
        (format!("{be}/bridge"), "xenbr1"),
        (format!("{be}/type"), "vif"),
        (format!("{be}/state"), "1"),
        (fe.to_string(), ""),
        (format!("{fe}/backend"), be),
        (format!("{fe}/backend-id"), "2"),
        (format!("{fe}/handle"), "1"),
        (format!("{fe}/mac"), "00:16:3e:0a:bc:de"),
        (format!("{fe}/state"), "1"),
    ]
    .into_iter()
    .map(|(p, v)| (p, v.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn each_half_is_owned_by_its_end_and_readable_by_the_other() {
    for w in nodes(&eth1()) {
        let (owner, reader) = if w.path.starts_with("/local/domain/2/") {
            (2, 3)
        } else {
            (3, 2)
        };
        assert_eq!(w.perms[0], Perm::new(owner, Access::None), "{}", w.path);
        assert_eq!(w.perms[1], Perm::new(reader, Access::Read), "{}", w.path);
    }
}

#[test]
fn macs_are_written_as_netfront_parses_them() {
    assert_eq!(
        mac_text(&[0, 0x16, 0x3e, 0xff, 0x0a, 1]),
        "00:16:3e:ff:0a:01"
    );
}
