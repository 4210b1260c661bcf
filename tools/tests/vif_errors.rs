//! Network interfaces in xl.cfg files and system descriptions: every error has a fixture
//! and an exact expected message; the valid fixture checks warnings, the manifest's vifs
//! and NIC, and the uplink on QEMU's command line.

mod common;

use bulkhead_tools::image::{manifest, qemu_args, Boot};
use bulkhead_tools::system::nics::host_nics;
use bulkhead_tools::system::{Overrides, System};
use bulkhead_tools::xlcfg::{self, vif};
use protocol::manifest::{ManifestNic, ManifestVif};
use std::path::{Path, PathBuf};

fn xl_error(name: &str) -> String {
    let path = Path::new("tests/fixtures/xl").join(format!("{name}.cfg"));
    common::error_of(&path, xlcfg::load)
}

fn system_error(name: &str) -> String {
    let path = Path::new("tests/fixtures").join(format!("{name}.toml"));
    common::error_of(&path, |p| System::load(p, Overrides::default()))
}

/// An xl.cfg fixture `tests/fixtures/xl/NAME.cfg` and its error after `FILE:`.
macro_rules! xl {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            let file = concat!("tests/fixtures/xl/", stringify!($name), ".cfg");
            assert_eq!(xl_error(stringify!($name)), format!("{file}:{}", $msg));
        }
    };
}

/// A system fixture `tests/fixtures/NAME.toml` and its error after `FILE:`.
macro_rules! toml {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            let file = concat!("tests/fixtures/", stringify!($name), ".toml");
            assert_eq!(system_error(stringify!($name)), format!("{file}:{}", $msg));
        }
    };
}

xl!(vif_ioemu, "4: key `vif`: vif \"type=ioemu, bridge=xenbr0\": `type=ioemu` is not supported (it asks for an emulated NIC, which only x86 HVM guests have), expected type=vif or no type");
xl!(vif_mac, "4: key `vif`: vif \"mac=00:16:3e:00:01\": `mac=00:16:3e:00:01` is not a MAC address, expected six pairs of hex digits such as 00:16:3e:01:02:03");
xl!(vif_multicast, "4: key `vif`: vif \"mac=01:16:3e:00:00:01\": `mac=01:16:3e:00:00:01` is a multicast address, expected a unicast one (the first octet even, such as 00:16:3e:…)");
xl!(
    vif_string,
    "4: key `vif`: found a string, expected a list of strings"
);
// A list spanning lines is located at its key, as every other xl.cfg list error.
xl!(vif_rate, "5: key `vif`: vif \"rate=10Mb/s@20ms\": `rate` is not supported (netdom does not limit a vif's rate), expected it removed");

toml!(vif_unknown_backend, "11: key `vif`: backend \"net2\" is not a domain of this system, expected a [[domain]] named \"net2\" (image = \"netdom\") or `backend=NAME` naming one");
toml!(vif_self_backend, "6: key `vif`: backend \"guest\" is this domain itself, expected the network backend domain (default netdom)");
toml!(
    vif_duplicate_devid,
    "12: key `vif`: device id 1 is already \"guest\"'s vif (line 11), expected one vif per devid"
);
toml!(vif_duplicate_mac, "17: key `vif`: MAC 00:16:3e:00:00:01 is already \"a\"'s vif 0 (line 11), expected one MAC per vif (give one with mac=)");
toml!(vif_two_backends, "22: key `vif`: backend \"net2\" differs from \"net1\" (line 16), expected one network backend domain per system");
toml!(
    vif_uplink_mac,
    "11: key `vif`: MAC 52:54:00:12:34:56 is the uplink NIC's, expected another MAC"
);
toml!(vif_bad, "11: key `vif`: vif \"ip=10.0.2.20\": `ip` is not supported (netdom does not filter a vif's addresses; the guest gets one by DHCP), expected it removed");
toml!(hostfwd_no_network, "4: key `hostfwd`: \"tcp::8080-:80\" forwards to a network that does not exist, expected a network backend domain in the system (image = \"netdom\")");
toml!(hostfwd_bad, "4: key `hostfwd`: \"tcp::80808-:80\" has port \"80808\", not in 1..=65535, expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport such as tcp::8080-:80 (QEMU's hostfwd syntax)");

#[test]
fn a_backend_missing_for_an_xl_guest_is_reported_in_the_xl_file() {
    common::stand_ins();
    let extra: &'static [PathBuf] =
        Vec::leak(vec![PathBuf::from("tests/fixtures/xl/vif_no_backend.cfg")]);
    let e = System::load(
        Path::new("tests/fixtures/valid.toml"),
        Overrides {
            domains: extra,
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/xl/vif_no_backend.cfg:5: key `vif`: backend \"mynet\" is not a domain of this system, expected a [[domain]] named \"mynet\" (image = \"netdom\") or `backend=NAME` naming one");
}

#[test]
fn a_bad_hostfwd_flag_names_the_flag() {
    let rules: &'static [String] = Vec::leak(vec!["tcp::8080".to_string()]);
    let e = System::load(
        Path::new("tests/fixtures/vif_valid.toml"),
        Overrides {
            hostfwd: rules,
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/vif_valid.toml:3: key `hostfwd`: --hostfwd \"tcp::8080\" has no `-` between the host and the guest side, expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport such as tcp::8080-:80 (QEMU's hostfwd syntax)");
}

#[test]
fn vifs_and_the_uplink_flow_into_the_manifest_and_qemu() {
    common::stand_ins();
    let rules: &'static [String] = Vec::leak(vec!["udp::5353-:53".to_string()]);
    let system = System::load(
        Path::new("tests/fixtures/vif_valid.toml"),
        Overrides {
            hostfwd: rules,
            ..Overrides::default()
        },
    )
    .unwrap();
    let warnings: Vec<String> = system.warnings.iter().map(|w| w.to_string()).collect();
    let f = "tests/fixtures/xl/vif_guest.cfg:5: key `vif`: vif \"mac=00:16:3E:74:34:32,bridge=xenbr1,script=vif-bridge,vifname=web0\":";
    assert_eq!(
        warnings,
        [
            format!("{f} `script` is ignored (there are no hotplug scripts: netdom's own switch joins the vif to its bridge)"),
            format!("{f} `vifname` is ignored (the backend's interfaces are inside netdom and are not named on a host)"),
        ]
    );
    let (m, _) = manifest(&system).unwrap();
    let d = |n: &str| m.domains.iter().find(|d| d.name == n).unwrap();
    let vif = |devid, mac, bridge: &str| ManifestVif {
        devid,
        mac,
        bridge: bridge.into(),
        backend: "netdom".into(),
    };
    assert_eq!(
        d("web").vifs,
        [
            vif(0, vif::derived_mac("web", 0), "xenbr0"),
            vif(5, [2, 0, 0, 0, 0, 9], "xenbr1"),
        ]
    );
    assert_eq!(
        d("xlnet").vifs,
        [
            vif(0, vif::derived_mac("xlnet", 0), "xenbr0"),
            vif(1, [0x00, 0x16, 0x3e, 0x74, 0x34, 0x32], "xenbr1"),
        ]
    );
    // Guests start after the domain serving their vifs.
    assert_eq!(d("web").depends_on, ["netdom"]);
    assert_eq!(d("xlnet").depends_on, ["netdom"]);
    assert!(d("netdom").vifs.is_empty());
    assert_eq!(
        m.nics,
        [ManifestNic {
            index: 0,
            backend: "netdom".into(),
            name: "user,id=net0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53".into(),
        }]
    );
    let args = qemu_args(
        bulkhead_tools::machine::Machine::Virt,
        4,
        1024,
        Boot::Direct(&[]),
        &[],
        &host_nics(&system),
    );
    let at = args.iter().position(|a| a == "-netdev").unwrap();
    assert_eq!(
        args[at..at + 4],
        [
            "-netdev",
            "user,id=net0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53",
            "-device",
            "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56",
        ]
    );
}

#[test]
fn a_guests_derived_mac_is_the_same_at_every_load() {
    common::stand_ins();
    let load = || {
        let system = System::load(
            Path::new("tests/fixtures/vif_valid.toml"),
            Overrides::default(),
        )
        .unwrap();
        manifest(&system).unwrap().0
    };
    let (a, b) = (load(), load());
    let macs = |m: &protocol::manifest::SystemManifest| -> Vec<[u8; 6]> {
        m.domains
            .iter()
            .flat_map(|d| d.vifs.iter().map(|v| v.mac))
            .collect()
    };
    assert_eq!(macs(&a), macs(&b));
    assert_eq!(macs(&a).len(), 4);
}
