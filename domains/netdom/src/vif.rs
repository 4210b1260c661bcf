//! One virtual interface as the core keeps it: configuration, handshake, rings, counters.

use crate::ring::{BackRing, RingError};
use crate::switch::{Mac, Port};
use crate::tx::Malformed;
use crate::xenbus::Handshake;
use protocol::mgmt::VifCounters;
use protocol::xen::structs::DomId;

/// Index of a vif in its [`crate::Netback`]; its switch port is `id + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VifId(pub usize);

impl VifId {
    /// The vif's switch port.
    pub fn port(self) -> Port {
        Port(self.0 + 1)
    }

    /// The vif behind switch port `p` (none for the uplink).
    pub fn of_port(p: Port) -> Option<Self> {
        p.0.checked_sub(1).map(VifId)
    }
}

/// What the toolstack configured for one vif.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VifConfig {
    /// The frontend domain.
    pub frontend: DomId,
    /// Xen's device id (0 for `eth0`).
    pub devid: u32,
    /// The vif's MAC (the backend's `mac` key); frames from the guest must carry it as
    /// their source address.
    pub mac: Mac,
}

/// Why a vif was halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HaltReason {
    /// the frontend sent a malformed TX request
    Malformed(Malformed),
    /// a ring's indexes are corrupt
    Ring(RingError),
}

impl core::fmt::Display for HaltReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed TX request: {m}"),
            Self::Ring(e) => write!(f, "{e}"),
        }
    }
}

/// How a vif found connected after a restart in place was taken up
/// ([`crate::Netback::take_resumed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The TX ring's response index once the window was answered.
    pub tx_at: u32,
    /// The RX ring's response index once a journalled batch was completed.
    pub rx_at: u32,
    /// TX packets the dead instance left unanswered, dropped.
    pub tx_dropped: u32,
    /// RX slots of a frame the dead instance copied but did not publish, completed.
    pub rx_completed: u32,
}

/// Where a vif is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VifState {
    /// No rings mapped.
    Disconnected,
    /// Forwarding.
    Connected,
    /// Stopped after a frontend fault; waits for the frontend to close.
    Halted(HaltReason),
}

/// One vif.
#[derive(Clone, Debug)]
pub struct Vif {
    /// Its configuration.
    pub config: VifConfig,
    /// Its xenbus state machine.
    pub handshake: Handshake,
    /// Packet counters, as published for `ctl info`.
    pub counters: VifCounters,
    /// The last halt, kept across reconnection for reporting.
    pub last_halt: Option<HaltReason>,
    pub(crate) state: VifState,
    pub(crate) tx: Option<BackRing>,
    pub(crate) rx: Option<BackRing>,
    /// The next [`crate::Netback::connect`] takes up rings a dead instance served.
    pub(crate) resuming: bool,
    /// How the last such connect went, until the shell takes it.
    pub(crate) resumed: Option<Resumed>,
}

impl Vif {
    pub(crate) fn new(config: VifConfig) -> Self {
        Self {
            config,
            handshake: Handshake::new(),
            counters: VifCounters::default(),
            last_halt: None,
            state: VifState::Disconnected,
            tx: None,
            rx: None,
            resuming: false,
            resumed: None,
        }
    }

    /// Its state.
    pub fn state(&self) -> VifState {
        self.state
    }

    /// The TX ring's private indexes, when connected.
    pub fn tx_ring(&self) -> Option<&BackRing> {
        self.tx.as_ref()
    }

    /// The RX ring's private indexes, when connected.
    pub fn rx_ring(&self) -> Option<&BackRing> {
        self.rx.as_ref()
    }
}

/// Parses a MAC address written as six colon-separated hex bytes (`00:16:3e:01:02:03`).
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim_end_matches('\0').trim().split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Formats a MAC address as `parse_mac` reads it.
pub struct MacText(pub Mac);

impl core::fmt::Display for MacText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn macs_parse_and_print() {
        let m = parse_mac("00:16:3e:0A:b2:03").unwrap();
        assert_eq!(m, [0, 0x16, 0x3e, 0x0a, 0xb2, 3]);
        assert_eq!(MacText(m).to_string(), "00:16:3e:0a:b2:03");
        assert_eq!(
            parse_mac("00:16:3e:01:02:03\0"),
            Some([0, 0x16, 0x3e, 1, 2, 3])
        );
        for bad in [
            "",
            "00:16:3e:01:02",
            "00:16:3e:01:02:03:04",
            "00:16:3e:01:02:xyz",
            "0:1:2:3:4:g",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert_eq!(VifId(0).port(), Port(1));
        assert_eq!(VifId::of_port(Port(3)), Some(VifId(2)));
        assert_eq!(VifId::of_port(crate::switch::UPLINK), None);
    }
}
