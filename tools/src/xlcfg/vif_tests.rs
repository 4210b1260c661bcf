//! The vifspec parser: defaults, every accepted parameter, every error and warning, and
//! the derived MAC's stability.

use super::{derived_mac, mac, mac_text, parse, VifSpec, DEFAULT_BACKEND, DEFAULT_BRIDGE};

fn default_spec() -> VifSpec {
    VifSpec {
        mac: None,
        bridge: DEFAULT_BRIDGE.into(),
        backend: DEFAULT_BACKEND.into(),
        devid: None,
    }
}

#[test]
fn the_empty_spec_takes_every_default() {
    for text in ["", " ", ",", "type=vif", " type = vif , "] {
        let got = parse(text).unwrap();
        assert_eq!(got.spec, default_spec(), "{text:?}");
        assert!(got.warnings.is_empty(), "{text:?}");
    }
}

#[test]
fn mac_bridge_backend_devid() {
    let got =
        parse("mac=00:16:3E:01:02:0a, bridge=xenbr1,backend=net2, devid=3, mtu=1500").unwrap();
    assert_eq!(
        got.spec,
        VifSpec {
            mac: Some([0x00, 0x16, 0x3e, 0x01, 0x02, 0x0a]),
            bridge: "xenbr1".into(),
            backend: "net2".into(),
            devid: Some(3),
        }
    );
    assert!(got.warnings.is_empty());
    // The issue's own example.
    let got = parse("mac=00:16:3e:01:02:03, bridge=xenbr0").unwrap();
    assert_eq!(got.spec.mac, Some([0, 0x16, 0x3e, 1, 2, 3]));
    assert_eq!(got.spec.bridge, "xenbr0");
}

#[test]
fn host_side_options_are_warnings() {
    let text = "script=vif-bridge,vifname=web0,gatewaydev=eth0,accel=x,untrusted";
    let got = parse(text).unwrap();
    assert_eq!(got.spec, default_spec());
    let q = format!("vif {text:?}: ");
    assert_eq!(
        got.warnings,
        [
            format!("{q}`script` is ignored (there are no hotplug scripts: netdom's own switch joins the vif to its bridge)"),
            format!("{q}`vifname` is ignored (the backend's interfaces are inside netdom and are not named on a host)"),
            format!("{q}`gatewaydev` is ignored (it configures a host's routing for Xen's vif-route and vif-nat scripts; netdom switches)"),
            format!("{q}`accel` is ignored (xl ignores it too)"),
            format!("{q}`untrusted` is ignored (netdom treats every frontend as untrusted)"),
        ]
    );
}

fn err(text: &str) -> String {
    parse(text).unwrap_err()
}

#[test]
fn unsupported_and_malformed_parameters_are_errors() {
    let cases: [(&str, &str); 17] = [
        ("type=ioemu", "`type=ioemu` is not supported (it asks for an emulated NIC, which only x86 HVM guests have), expected type=vif or no type"),
        ("type=tap", "`type=tap` is not a vif type, expected type=vif or no type"),
        ("model=e1000", "`model` is not supported (it picks an emulated NIC, which only x86 HVM guests have), expected it removed (the guest sees a Xen PV vif)"),
        ("rate=10Mb/s", "`rate` is not supported (netdom does not limit a vif's rate), expected it removed"),
        ("ip=10.0.2.15", "`ip` is not supported (netdom does not filter a vif's addresses; the guest gets one by DHCP), expected it removed"),
        ("mtu=9000", "`mtu=9000` is not supported, expected mtu=1500 or no mtu (netdom forwards Ethernet frames of up to 1500 bytes of payload)"),
        ("colo_sock_mirror_id=1", "`colo_sock_mirror_id` is not supported (there is no COLO replication), expected it removed"),
        ("speed=10", "`speed` is not a vif parameter, expected mac, bridge, backend, type, devid, mtu or script, vifname, gatewaydev (ignored)"),
        ("mac=00:16:3e:01:02", "`mac=00:16:3e:01:02` is not a MAC address, expected six pairs of hex digits such as 00:16:3e:01:02:03"),
        ("mac=00:16:3e:01:02:0g", "`mac=00:16:3e:01:02:0g` is not a MAC address, expected six pairs of hex digits such as 00:16:3e:01:02:03"),
        ("mac=0:16:3e:01:02:03", "`mac=0:16:3e:01:02:03` is not a MAC address, expected six pairs of hex digits such as 00:16:3e:01:02:03"),
        ("mac=01:00:5e:00:00:01", "`mac=01:00:5e:00:00:01` is a multicast address, expected a unicast one (the first octet even, such as 00:16:3e:…)"),
        ("mac=00:00:00:00:00:00", "`mac=00:00:00:00:00:00` is all zeros, expected a NIC's address such as 00:16:3e:01:02:03"),
        ("bridge=", "`bridge=` is not a bridge name, expected 1..=15 bytes of [A-Za-z0-9_.-] such as xenbr0"),
        ("bridge=a/b", "`bridge=a/b` is not a bridge name, expected 1..=15 bytes of [A-Za-z0-9_.-] such as xenbr0"),
        ("backend=dom0", "`backend=dom0` is not a domain name, expected the name of the network backend domain (default netdom)"),
        ("devid=-1", "`devid=-1` is not a device id, expected a number in 0..=255 (or no devid: the vif's position in the list)"),
    ];
    for (text, problem) in cases {
        assert_eq!(err(text), format!("vif {text:?}: {problem}"), "{text:?}");
    }
}

#[test]
fn a_parameter_given_twice_is_an_error() {
    assert_eq!(
        err("bridge=a,bridge=b"),
        "vif \"bridge=a,bridge=b\": `bridge` is given twice, expected each parameter at most once"
    );
    // libxl's alias counts as the same parameter.
    assert_eq!(
        err("gatewaydev=eth0,netdev=eth1"),
        "vif \"gatewaydev=eth0,netdev=eth1\": `netdev` is given twice, expected each parameter at most once"
    );
}

#[test]
fn derived_macs_are_stable_xen_unicast_and_distinct() {
    // FNV-1a of "linux\0" and devid 0 (little-endian), computed apart; a change here
    // changes every guest's address (and DHCP lease).
    assert_eq!(mac_text(&derived_mac("linux", 0)), "00:16:3e:8e:73:5a");
    assert_eq!(derived_mac("linux", 0), derived_mac("linux", 0));
    let mut seen = std::collections::BTreeSet::new();
    for name in ["linux", "linux1", "linux2", "web", "db"] {
        for devid in 0..4 {
            let m = derived_mac(name, devid);
            assert_eq!(m[..3], [0x00, 0x16, 0x3e]);
            // What `mac=` would accept.
            assert_eq!(mac(&mac_text(&m)), Ok(m));
            assert!(seen.insert(m), "{name} {devid}");
        }
    }
}
