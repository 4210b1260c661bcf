//! xl network interface specifications (`vif = ['…']`), as Xen's
//! `docs/misc/xl-network-configuration.markdown` specifies them: comma-separated
//! `key=value` parameters, every one optional, so `''` is a valid vif. A vif's device id is
//! its position in the list unless `devid=` says otherwise.
//!
//! Bulkhead serves vifs from a network driver domain (`backend`, default
//! [`DEFAULT_BACKEND`]) whose built-in switch joins each vif to its `bridge`. Parameters
//! that configure the host side of Xen's hotplug scripts (`script`, `vifname`,
//! `gatewaydev`, ...) have no host to act on here: they are warnings, never silently
//! dropped. Parameters that would change what the guest sees or is allowed to do and that
//! netdom does not honour (an emulated NIC, a rate limit, an address filter, another MTU)
//! are errors. This module reads the text only; backends and MAC collisions are checked
//! where the system is put together.

/// The network backend domain a spec without `backend=` names.
pub const DEFAULT_BACKEND: &str = "netdom";
/// The bridge a spec without `bridge=` plugs into (libxl's default).
pub const DEFAULT_BRIDGE: &str = "xenbr0";
/// Xen's Organizationally Unique Identifier: generated MACs start with it.
pub const XEN_OUI: [u8; 3] = [0x00, 0x16, 0x3e];
/// Longest bridge name (a Linux interface name: `IFNAMSIZ` - 1).
const MAX_BRIDGE_LEN: usize = 15;
/// The only MTU netdom's frames have (Ethernet without jumbo frames).
const MTU: u64 = 1500;
/// Largest `devid` (Xen's vif device ids are small non-negative integers).
const MAX_DEVID: u64 = 255;

/// One vif line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VifSpec {
    /// `mac`, if given (checked: unicast, not all zero).
    pub mac: Option<[u8; 6]>,
    /// `bridge`, or [`DEFAULT_BRIDGE`].
    pub bridge: String,
    /// `backend`, or [`DEFAULT_BACKEND`].
    pub backend: String,
    /// `devid`, if given; otherwise the vif's position in the list.
    pub devid: Option<u32>,
}

/// A vif line read, and what in it is accepted but ignored (one message per parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The line.
    pub spec: VifSpec,
    /// Warnings, each `vif "…": `key` … ignored`.
    pub warnings: Vec<String>,
}

/// Reads `spec`; an error says what is wrong with it and what is expected.
pub fn parse(spec: &str) -> Result<Parsed, String> {
    let q = quote(spec);
    let mut out = VifSpec {
        mac: None,
        bridge: DEFAULT_BRIDGE.into(),
        backend: DEFAULT_BACKEND.into(),
        devid: None,
    };
    let mut warnings = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for param in spec.split(',') {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (param, ""),
        };
        // libxl's alias of gatewaydev.
        let canonical = if key == "netdev" { "gatewaydev" } else { key };
        if seen.contains(&canonical) {
            return Err(format!(
                "{q}: `{key}` is given twice, expected each parameter at most once"
            ));
        }
        seen.push(canonical);
        let mut ignore = |why: &str| warnings.push(format!("{q}: `{key}` is ignored ({why})"));
        match key {
            "mac" => out.mac = Some(mac(value).map_err(|e| format!("{q}: {e}"))?),
            "bridge" => {
                if !valid_bridge(value) {
                    return Err(format!("{q}: `bridge={value}` is not a bridge name, expected 1..={MAX_BRIDGE_LEN} bytes of [A-Za-z0-9_.-] such as {DEFAULT_BRIDGE}"));
                }
                out.bridge = value.into();
            }
            "backend" => {
                if !crate::system::valid_name(value) {
                    return Err(format!("{q}: `backend={value}` is not a domain name, expected the name of the network backend domain (default {DEFAULT_BACKEND})"));
                }
                out.backend = value.into();
            }
            "devid" => {
                let n = crate::xlcfg::keys::number(value)
                    .filter(|n| *n <= MAX_DEVID)
                    .ok_or_else(|| format!("{q}: `devid={value}` is not a device id, expected a number in 0..={MAX_DEVID} (or no devid: the vif's position in the list)"))?;
                out.devid = Some(n as u32);
            }
            "type" => match value {
                "vif" | "" => {}
                "ioemu" => return Err(format!("{q}: `type=ioemu` is not supported (it asks for an emulated NIC, which only x86 HVM guests have), expected type=vif or no type")),
                v => return Err(format!("{q}: `type={v}` is not a vif type, expected type=vif or no type")),
            },
            "model" => return Err(format!("{q}: `model` is not supported (it picks an emulated NIC, which only x86 HVM guests have), expected it removed (the guest sees a Xen PV vif)")),
            "rate" => return Err(format!("{q}: `rate` is not supported (netdom does not limit a vif's rate), expected it removed")),
            "ip" => return Err(format!("{q}: `ip` is not supported (netdom does not filter a vif's addresses; the guest gets one by DHCP), expected it removed")),
            "mtu" => match crate::xlcfg::keys::number(value) {
                Some(MTU) => {}
                _ => return Err(format!("{q}: `mtu={value}` is not supported, expected mtu={MTU} or no mtu (netdom forwards Ethernet frames of up to {MTU} bytes of payload)")),
            },
            "script" => ignore("there are no hotplug scripts: netdom's own switch joins the vif to its bridge"),
            "vifname" => ignore("the backend's interfaces are inside netdom and are not named on a host"),
            "gatewaydev" | "netdev" | "forwarddev" => ignore("it configures a host's routing for Xen's vif-route and vif-nat scripts; netdom switches"),
            "accel" => ignore("xl ignores it too"),
            "trusted" | "untrusted" => ignore("netdom treats every frontend as untrusted"),
            k if k.starts_with("colo") => return Err(format!("{q}: `{k}` is not supported (there is no COLO replication), expected it removed")),
            _ => return Err(format!("{q}: `{key}` is not a vif parameter, expected mac, bridge, backend, type, devid, mtu or script, vifname, gatewaydev (ignored)")),
        }
    }
    Ok(Parsed {
        spec: out,
        warnings,
    })
}

/// Reads a MAC address: six colon-separated pairs of hex digits, either case. A group
/// address (multicast bit set) or all zeros is refused: a NIC cannot have one.
pub fn mac(text: &str) -> Result<[u8; 6], String> {
    let expected = "expected six pairs of hex digits such as 00:16:3e:01:02:03";
    let mut out = [0u8; 6];
    let groups: Vec<&str> = text.split(':').collect();
    if groups.len() != 6 {
        return Err(format!("`mac={text}` is not a MAC address, {expected}"));
    }
    for (byte, g) in out.iter_mut().zip(&groups) {
        if g.len() != 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`mac={text}` is not a MAC address, {expected}"));
        }
        *byte = u8::from_str_radix(g, 16)
            .map_err(|_| format!("`mac={text}` is not a MAC address, {expected}"))?;
    }
    if out[0] & 1 != 0 {
        return Err(format!("`mac={text}` is a multicast address, expected a unicast one (the first octet even, such as 00:16:3e:…)"));
    }
    if out == [0; 6] {
        return Err(format!(
            "`mac={text}` is all zeros, expected a NIC's address such as 00:16:3e:01:02:03"
        ));
    }
    Ok(out)
}

/// The MAC of vif `devid` of domain `name` when the line gives none: Xen's OUI and three
/// bytes of a hash of both, so the same guest gets the same address at every boot and
/// restart (and so the same DHCP lease), and different guests almost surely different ones.
/// FNV-1a, written here, because std's hasher may change between Rust releases.
pub fn derived_mac(name: &str, devid: u32) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([0]).chain(devid.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let [a, b, c, ..] = h.to_be_bytes();
    [XEN_OUI[0], XEN_OUI[1], XEN_OUI[2], a, b, c]
}

/// `mac` in xenstore's and Linux's form: lowercase, colon-separated.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// A bridge name: what Linux allows for an interface, restricted to safe characters.
fn valid_bridge(s: &str) -> bool {
    (1..=MAX_BRIDGE_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The spec, quoted, to start a message with.
fn quote(spec: &str) -> String {
    format!("vif {spec:?}")
}

#[cfg(test)]
#[path = "vif_tests.rs"]
mod tests;
