//! The `control` target: capability-protocol messages a domain hands the microvisor or the
//! microvisor hands a domain, decoded with postcard (`DomainSpec` of `DomainCreate`, the
//! start info, capability lists, domain queries, the boot manifest and dom0's plan from it),
//! and the register-level decoders (function ids, error codes, handles, shutdown kinds).
//!
//! Checked beyond "no panic": whatever decodes re-encodes and decodes to the same value.

use crate::input::Input;
use protocol::boot::StartInfo;
use protocol::cap::{CapDetail, CapHandle, CapInfo, CapKind, Rights};
use protocol::control::{
    CapError, CapOp, DeviceWindow, DomainInfo, DomainSpec, DomainState, ShutdownKind, StopReason,
    VcpuPlacement, Version, PROTOCOL_VERSION,
};
use protocol::manifest::{Action, ManifestDomain, SystemManifest, MANIFEST_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Message kinds (a script's first byte modulo 6).
pub mod kind {
    /// `CapOp::DomainCreate`'s `DomainSpec` (decoded by the microvisor from any caller).
    pub const DOMAIN_SPEC: u8 = 0;
    /// `StartInfo` (decoded by every domain at entry).
    pub const START_INFO: u8 = 1;
    /// `Vec<CapInfo>` (`CapOp::CapList`'s reply).
    pub const CAP_LIST: u8 = 2;
    /// `DomainInfo` (`CapOp::DomainQuery`'s reply).
    pub const DOMAIN_INFO: u8 = 3;
    /// The boot manifest, through dom0's `decode_manifest` and `plan_domain`.
    pub const MANIFEST: u8 = 4;
    /// Register words: function id, error code, handle, shutdown kind.
    pub const REGISTERS: u8 = 5;
}

/// Decodes `bytes` as `T`; if that works, checks the re-encoding round trip.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) -> Option<T> {
    let v: T = postcard::from_bytes(bytes).ok()?;
    let again = postcard::to_allocvec(&v).expect("a decoded value encodes");
    assert_eq!(postcard::from_bytes::<T>(&again).ok().as_ref(), Some(&v));
    Some(v)
}

/// dom0's capabilities as `plan_domain` sees them.
fn dom0_caps() -> Vec<CapInfo> {
    let cap = |index, kind, label: &str, detail| CapInfo {
        handle: CapHandle {
            index,
            generation: 1,
        },
        kind,
        rights: Rights::READ | Rights::WRITE,
        label: label.into(),
        detail,
    };
    vec![
        cap(
            0,
            CapKind::Memory,
            "ram",
            CapDetail::Memory {
                free_pages: 1000,
                largest_free_pages: 512,
            },
        ),
        cap(1, CapKind::Module, "rtos", CapDetail::Module { size: 4096 }),
        cap(
            2,
            CapKind::Module,
            "initramfs",
            CapDetail::Module { size: 8192 },
        ),
    ]
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let which = inp.u8() % 6;
    let body = inp.rest();
    match which {
        kind::DOMAIN_SPEC => {
            let _ = round_trip::<DomainSpec>(body);
        }
        kind::START_INFO => {
            let _ = round_trip::<StartInfo>(body);
        }
        kind::CAP_LIST => {
            let _ = round_trip::<Vec<CapInfo>>(body);
        }
        kind::DOMAIN_INFO => {
            let _ = round_trip::<DomainInfo>(body);
        }
        kind::MANIFEST => {
            let _ = round_trip::<SystemManifest>(body);
            if let Ok(m) = dom0::decode_manifest(body) {
                let caps = dom0_caps();
                let mut running = Vec::new();
                for d in &m.domains {
                    if let Ok(spec) = dom0::plan_domain(d, &caps, &running) {
                        // What dom0 sends must be what the microvisor decodes.
                        let bytes = postcard::to_allocvec(&spec).expect("a spec encodes");
                        assert_eq!(round_trip::<DomainSpec>(&bytes), Some(spec));
                        running.push(d.name.clone());
                    }
                }
            }
        }
        _ => {
            let mut regs = Input::new(body);
            let word = |r: &mut Input<'_>| u64::from(r.u32()) | (u64::from(r.u32()) << 32);
            let fid = word(&mut regs);
            if let Some(Ok(op)) = CapOp::from_function_id(fid) {
                assert_eq!(u64::from(op.function_id()) & 0xffff, fid & 0xffff);
            }
            let code = word(&mut regs);
            if let Some(e) = CapError::from_code(code) {
                let _ = e.to_string();
            }
            if let Some(h) = CapHandle::from_raw(word(&mut regs)) {
                assert_eq!(CapHandle::from_raw(h.to_raw()), Some(h));
            }
            let _ = ShutdownKind::from_raw(word(&mut regs));
            let v = Version::from_raw(word(&mut regs));
            assert_eq!(Version::from_raw(v.to_raw()), v);
        }
    }
}

/// Seed inputs: real encodings of each message kind.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |k: u8, bytes: Vec<u8>| [vec![k], bytes].concat();
    let enc = |v: &dyn erased::Encode| v.encode();
    let vcpu = |pcpu| VcpuPlacement {
        pcpu,
        priority: 10,
        exclusive: pcpu == 1,
    };
    let spec = DomainSpec {
        name: "linux".into(),
        image: CapHandle {
            index: 3,
            generation: 1,
        },
        ramdisk: Some(CapHandle {
            index: 4,
            generation: 2,
        }),
        memory: CapHandle {
            index: 1,
            generation: 1,
        },
        mem_mib: 256,
        vcpus: vec![vcpu(2), vcpu(3)],
        cmdline: "console=hvc0 loglevel=4".into(),
        devices: vec![CapHandle {
            index: 9,
            generation: 1,
        }],
        windows: vec![DeviceWindow {
            host: 0x0901_0000,
            guest: 0x0901_0000,
            size: 0x1000,
        }],
        device_tree: None,
        pmu: protocol::control::PmuAccess::Off,
        budgets: vec![(2_000, 10_000)],
    };
    let start = StartInfo {
        version: PROTOCOL_VERSION,
        domid: 2,
        name: "linux".into(),
        ram_base: 0x4000_0000,
        ram_size: 256 << 20,
        vcpus: 2,
        counter_hz: 62_500_000,
        cmdline: "hz=1000".into(),
        pcpus: 4,
    };
    let mut caps = dom0_caps();
    caps.push(CapInfo {
        handle: CapHandle {
            index: 9,
            generation: 3,
        },
        kind: CapKind::Device,
        rights: Rights::READ,
        label: "virtio,mmio".into(),
        detail: CapDetail::Device {
            mmio_base: 0x0a00_0000,
            mmio_size: 0x200,
            irqs: vec![48, 49],
            virtio_id: 2,
            assigned: Some(3),
        },
    });
    let info = DomainInfo {
        domid: 3,
        name: "crashy".into(),
        state: DomainState::Stopped(StopReason::Stage2Fault {
            ipa: 0x8000_0000,
            esr: 0x9200_0046,
        }),
        vcpus: 1,
        vcpus_online: 0,
        mem_mib: 8,
        cpu_ticks: 12345,
        exits: 77,
        irqs_injected: 5,
        restarts: 2,
    };
    let domain = |name: &str, image: &str, deps: &[&str]| ManifestDomain {
        name: name.into(),
        image: image.into(),
        ramdisk: (image == "rtos").then(|| "initramfs".into()),
        mem_mib: 8,
        auto_cpus: false,
        vcpus: vec![vcpu(1)],
        cmdline: "hz=1000".into(),
        depends_on: deps.iter().map(|d| (*d).into()).collect(),
        on_poweroff: Action::Destroy,
        on_reboot: Action::Restart,
        on_crash: Action::Preserve,
        vbds: Vec::new(),
        vifs: Vec::new(),
        devices: Vec::new(),
        device_tree: None,
        pmu: protocol::control::PmuAccess::Off,
    };
    let manifest = SystemManifest {
        version: MANIFEST_VERSION,
        domains: vec![
            domain("rtos", "rtos", &[]),
            domain("app", "rtos", &["rtos"]),
            domain("bad", "missing", &[]),
        ],
        disks: vec![],
        nics: vec![],
        watchdogs: vec![],
        crash_limits: vec![],
        budgets: vec![],
    };
    let mut regs = Vec::new();
    for w in [
        u64::from(CapOp::DomainCreate.function_id()),
        CapError::NoMemory as u64,
        CapHandle {
            index: 5,
            generation: 7,
        }
        .to_raw(),
        1,
        PROTOCOL_VERSION.to_raw(),
    ] {
        regs.extend_from_slice(&w.to_le_bytes());
    }
    vec![
        ("domain-spec", with(kind::DOMAIN_SPEC, enc(&spec))),
        ("start-info", with(kind::START_INFO, enc(&start))),
        ("cap-list", with(kind::CAP_LIST, enc(&caps))),
        ("domain-info", with(kind::DOMAIN_INFO, enc(&info))),
        ("manifest", with(kind::MANIFEST, enc(&manifest))),
        ("registers", with(kind::REGISTERS, regs)),
    ]
}

/// Encoding any seed value through one closure.
mod erased {
    /// A value postcard can encode.
    pub trait Encode {
        /// Its postcard bytes.
        fn encode(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            postcard::to_allocvec(self).expect("seed values encode")
        }
    }
}
