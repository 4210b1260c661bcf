//! Networks: each domain's xl vif lines (from its xl.cfg or the TOML's `vif = [...]`) with
//! their device ids and MACs settled, the checks across domains (backends that are domains
//! of the system, one network backend per system for now, one vif per device id in a domain,
//! one guest per MAC, none the uplink's), and the system's uplink: when the system has a network backend, one
//! virtio-net NIC of the QEMU machine on QEMU's user network, handed to that backend, with
//! the host port forwards of `[system] hostfwd` and `--hostfwd`.

use super::{At, ConfigError, Image, System};
use crate::xlcfg::vif::{self, VifSpec};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The built-in image that serves vifs.
pub const NETDOM_IMAGE: &str = "netdom";
/// The uplink NIC's MAC (QEMU's usual first NIC's, given explicitly): a vif with it would
/// collide with the uplink in netdom's switch and in QEMU's DHCP leases.
pub const UPLINK_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A vif line with its device id and MAC settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vif {
    /// The line, read.
    pub spec: VifSpec,
    /// `devid=`, else the line's position in the list.
    pub devid: u32,
    /// `mac=`, else [`vif::derived_mac`] of the domain's name and `devid`.
    pub mac: [u8; 6],
}

/// The system's uplink: a virtio-net device on QEMU's user network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNic {
    /// Its index among the system's NICs.
    pub index: u32,
    /// The network backend domain it is given to.
    pub backend: String,
    /// QEMU `hostfwd` rules, checked (`tcp::8080-:80`).
    pub hostfwd: Vec<String>,
}

impl HostNic {
    /// Its QEMU `-netdev` id: `net<index>`.
    pub fn id(&self) -> String {
        format!("net{}", self.index)
    }

    /// QEMU's `-device` value for it.
    pub fn device(&self) -> String {
        format!(
            "virtio-net-device,netdev={},mac={}",
            self.id(),
            vif::mac_text(&UPLINK_MAC)
        )
    }

    /// QEMU's `-netdev` value for it.
    pub fn netdev(&self) -> String {
        let mut s = format!("user,id={}", self.id());
        for rule in &self.hostfwd {
            s.push_str(",hostfwd=");
            s.push_str(rule);
        }
        s
    }
}

/// Settles the device ids and MACs of domain `name`'s vif lines (in the order written).
pub fn settle(name: &str, specs: Vec<At<VifSpec>>) -> Vec<At<Vif>> {
    specs
        .into_iter()
        .enumerate()
        .map(|(i, at)| {
            let devid = at.value.devid.unwrap_or(i as u32);
            let mac = at
                .value
                .mac
                .unwrap_or_else(|| vif::derived_mac(name, devid));
            At {
                value: Vif {
                    spec: at.value,
                    devid,
                    mac,
                },
                line: at.line,
                file: at.file,
            }
        })
        .collect()
}

/// Checks a QEMU user-network port forward, `[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`
/// (QEMU's own syntax), and returns it as QEMU will get it.
pub fn hostfwd(rule: &str) -> Result<String, String> {
    let expected = "expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport such as tcp::8080-:80 (QEMU's hostfwd syntax)";
    let bad = |why: &str| format!("{rule:?} {why}, {expected}");
    let (host, guest) = rule
        .split_once('-')
        .ok_or_else(|| bad("has no `-` between the host and the guest side"))?;
    let [proto, host_addr, host_port] = split3(host).ok_or_else(|| bad("has no host port"))?;
    let (guest_addr, guest_port) = guest
        .split_once(':')
        .ok_or_else(|| bad("has no guest port"))?;
    if !matches!(proto, "" | "tcp" | "udp") {
        return Err(bad(&format!("has protocol {proto:?}")));
    }
    for addr in [host_addr, guest_addr] {
        if !addr.is_empty() && addr.parse::<Ipv4Addr>().is_err() {
            return Err(bad(&format!("has {addr:?}, which is not an IPv4 address")));
        }
    }
    for port in [host_port, guest_port] {
        if !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(bad(&format!("has port {port:?}, not in 1..=65535")));
        }
    }
    Ok(rule.to_string())
}

fn split3(s: &str) -> Option<[&str; 3]> {
    let mut it = s.split(':');
    let out = [it.next()?, it.next()?, it.next()?];
    it.next().is_none().then_some(out)
}

/// The system's network backend: the domain its vifs name (the checks make it one), else
/// the first domain running the built-in netdom image.
pub fn backend(system: &System) -> Option<&str> {
    let named = system
        .domains
        .iter()
        .flat_map(|d| &d.vifs)
        .map(|v| v.value.spec.backend.as_str())
        .next();
    named.or_else(|| {
        system
            .domains
            .iter()
            .find(|d| matches!(&d.image.value, Image::Builtin(n) if n == NETDOM_IMAGE))
            .map(|d| d.name.value.as_str())
    })
}

/// Adds each domain's vif backends to its dependencies: a guest starts after the domain
/// serving its vifs.
pub(super) fn add_backend_dependencies(system: &mut System) {
    for d in &mut system.domains {
        for v in &d.vifs {
            let backend = &v.value.spec.backend;
            if *backend != d.name.value && !d.depends_on.value.contains(backend) {
                d.depends_on.value.push(backend.clone());
            }
        }
    }
}

/// The checks across domains (see the module doc).
pub(super) fn check(system: &System) -> Result<(), ConfigError> {
    let err = |at: &At<Vif>, problem: String| system.error_at(at, "vif", problem);
    let mut first_backend: Option<(&str, &At<Vif>)> = None;
    let mut macs: BTreeMap<[u8; 6], (&str, &At<Vif>)> = BTreeMap::new();
    for d in &system.domains {
        let name = d.name.value.as_str();
        let mut devids: BTreeMap<u32, &At<Vif>> = BTreeMap::new();
        for at in &d.vifs {
            let v = &at.value;
            if let Some(first) = devids.insert(v.devid, at) {
                return Err(err(
                    at,
                    format!(
                        "device id {} is already {name:?}'s vif ({}), expected one vif per devid",
                        v.devid,
                        place(system, first, at)
                    ),
                ));
            }
            let backend = v.spec.backend.as_str();
            if backend == name {
                return Err(err(at, format!("backend {backend:?} is this domain itself, expected the network backend domain (default {})", vif::DEFAULT_BACKEND)));
            }
            if !system.domains.iter().any(|o| o.name.value == backend) {
                return Err(err(
                    at,
                    format!("backend {backend:?} is not a domain of this system, expected a [[domain]] named {backend:?} (image = \"{NETDOM_IMAGE}\") or `backend=NAME` naming one"),
                ));
            }
            match first_backend {
                Some((other, first)) if other != backend => {
                    return Err(err(
                        at,
                        format!(
                            "backend {backend:?} differs from {other:?} ({}), expected one network backend domain per system",
                            place(system, first, at)
                        ),
                    ))
                }
                Some(_) => {}
                None => first_backend = Some((backend, at)),
            }
            if v.mac == UPLINK_MAC {
                return Err(err(
                    at,
                    format!(
                        "MAC {} is the uplink NIC's, expected another MAC",
                        vif::mac_text(&v.mac)
                    ),
                ));
            }
            if let Some((other, first)) = macs.insert(v.mac, (name, at)) {
                return Err(err(
                    at,
                    format!(
                        "MAC {} is already {other:?}'s vif {} ({}), expected one MAC per vif (give one with mac=)",
                        vif::mac_text(&v.mac),
                        first.value.devid,
                        place(system, first, at)
                    ),
                ));
            }
        }
    }
    if let (Some(rule), None) = (system.hostfwd.first(), backend(system)) {
        return Err(system.error_at(
            rule,
            "hostfwd",
            format!("{:?} forwards to a network that does not exist, expected a network backend domain in the system (image = \"{NETDOM_IMAGE}\")", rule.value),
        ));
    }
    Ok(())
}

/// Where `first` is, seen from `now`: `line N` in the same file, else `FILE:N`.
fn place(system: &System, first: &At<Vif>, now: &At<Vif>) -> String {
    if first.file == now.file {
        format!("line {}", first.line)
    } else {
        format!("{}:{}", system.file_of(first), first.line)
    }
}

/// The system's NICs: its uplink, when it has a network backend.
pub fn host_nics(system: &System) -> Vec<HostNic> {
    backend(system)
        .map(|backend| HostNic {
            index: 0,
            backend: backend.to_string(),
            hostfwd: system.hostfwd.iter().map(|r| r.value.clone()).collect(),
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostfwd_rules_follow_qemus_syntax() {
        for ok in [
            "tcp::8080-:80",
            "udp::5353-:53",
            "::2222-:22",
            "tcp:127.0.0.1:8080-10.0.2.16:80",
        ] {
            assert_eq!(hostfwd(ok).as_deref(), Ok(ok), "{ok}");
        }
        let e = "expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport such as tcp::8080-:80 (QEMU's hostfwd syntax)";
        for (bad, why) in [
            (
                "tcp::8080",
                "has no `-` between the host and the guest side",
            ),
            ("tcp:8080-:80", "has no host port"),
            ("tcp::8080-80", "has no guest port"),
            ("sctp::8080-:80", "has protocol \"sctp\""),
            (
                "tcp:localhost:8080-:80",
                "has \"localhost\", which is not an IPv4 address",
            ),
            ("tcp::0-:80", "has port \"0\", not in 1..=65535"),
            ("tcp::8080-:99999", "has port \"99999\", not in 1..=65535"),
            (
                "tcp::8080-:80,guestfwd=x",
                "has port \"80,guestfwd=x\", not in 1..=65535",
            ),
        ] {
            assert_eq!(hostfwd(bad), Err(format!("{bad:?} {why}, {e}")), "{bad}");
        }
    }

    #[test]
    fn devids_follow_the_list_and_macs_are_derived_once() {
        let spec = |devid, mac| VifSpec {
            mac,
            bridge: "xenbr0".into(),
            backend: "netdom".into(),
            devid,
        };
        let given = [0x02, 0, 0, 0, 0, 1];
        let got = settle(
            "web",
            vec![
                At::new(spec(None, None), 3),
                At::new(spec(Some(7), None), 4),
                At::new(spec(None, Some(given)), 5),
            ],
        );
        assert_eq!(
            got.iter().map(|v| v.value.devid).collect::<Vec<_>>(),
            [0, 7, 2]
        );
        assert_eq!(got[0].value.mac, vif::derived_mac("web", 0));
        assert_eq!(got[1].value.mac, vif::derived_mac("web", 7));
        assert_eq!(got[2].value.mac, given);
        assert_eq!(got[2].line, 5);
    }

    #[test]
    fn the_uplinks_netdev_carries_every_forward() {
        let nic = HostNic {
            index: 0,
            backend: "netdom".into(),
            hostfwd: vec!["tcp::8080-:80".into(), "udp::5353-:53".into()],
        };
        assert_eq!(
            nic.netdev(),
            "user,id=net0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53"
        );
    }
}
