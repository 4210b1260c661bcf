//! Virtual network interfaces as the management protocol reports them (`ctl info NAME`),
//! and the counters a network backend publishes in xenstore for each.

use alloc::string::String;
use serde::{Deserialize, Serialize};

/// The key under a vif's backend directory where the network backend publishes its
/// [`VifCounters`] (text form, [`VifCounters::encode`]).
pub const VIF_COUNTERS_KEY: &str = "bulkhead-counters";

/// One virtual network interface: who serves it to whom, and how it is going.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifRow {
    /// The guest using it.
    pub frontend: u16,
    /// The network backend domain serving it.
    pub backend: u16,
    /// Xen's device id (0 for the guest's first vif, `eth0` in Linux).
    pub devid: u32,
    /// Its MAC address (`00:16:3e:..`).
    pub mac: String,
    /// The switch it is plugged into (xl's `bridge`, default `xenbr0`).
    pub bridge: String,
    /// The backend's XenbusState (4 is Connected).
    pub backend_state: u8,
    /// The frontend's XenbusState.
    pub frontend_state: u8,
    /// What the backend has moved, if it published counters.
    pub counters: Option<VifCounters>,
}

/// Packets a network backend moved on one vif, as it publishes them in xenstore (under
/// [`VIF_COUNTERS_KEY`]). `rx` is towards the guest, `tx` from it (Xen's naming, as the
/// frontend sees its rings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifCounters {
    /// Frames delivered to the guest.
    pub rx_packets: u64,
    /// Bytes delivered to the guest.
    pub rx_bytes: u64,
    /// Frames for the guest dropped (its RX ring had no buffer posted).
    pub rx_drops: u64,
    /// Frames sent by the guest and forwarded.
    pub tx_packets: u64,
    /// Bytes sent by the guest and forwarded.
    pub tx_bytes: u64,
    /// Frames sent by the guest and dropped (no destination could take them).
    pub tx_drops: u64,
    /// Malformed TX requests (the vif is cut off at the first one).
    pub tx_errors: u64,
}

impl VifCounters {
    /// Field names, in the order [`VifCounters::encode`] writes them.
    const KEYS: [&'static str; 7] = [
        "rx_packets",
        "rx_bytes",
        "rx_drops",
        "tx_packets",
        "tx_bytes",
        "tx_drops",
        "tx_errors",
    ];

    fn fields(&self) -> [u64; 7] {
        [
            self.rx_packets,
            self.rx_bytes,
            self.rx_drops,
            self.tx_packets,
            self.tx_bytes,
            self.tx_drops,
            self.tx_errors,
        ]
    }

    /// The xenstore value: `key=value` pairs separated by spaces.
    pub fn encode(&self) -> String {
        super::counters::encode(&Self::KEYS, &self.fields())
    }

    /// Reads [`VifCounters::encode`]'s text back; unknown keys are skipped, a malformed
    /// value (the backend is not trusted) is `None`.
    pub fn decode(text: &str) -> Option<Self> {
        let [rx_packets, rx_bytes, rx_drops, tx_packets, tx_bytes, tx_drops, tx_errors] =
            super::counters::decode(text, &Self::KEYS)?;
        Some(Self {
            rx_packets,
            rx_bytes,
            rx_drops,
            tx_packets,
            tx_bytes,
            tx_drops,
            tx_errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::VifCounters;

    #[test]
    fn counters_round_trip_and_hostile_text_is_refused() {
        let c = VifCounters {
            rx_packets: 1,
            rx_bytes: 2,
            rx_drops: 3,
            tx_packets: 4,
            tx_bytes: 5,
            tx_drops: 6,
            tx_errors: u64::MAX,
        };
        assert_eq!(VifCounters::decode(&c.encode()), Some(c));
        assert_eq!(
            VifCounters::decode("tx_errors=2 later=9").map(|c| c.tx_errors),
            Some(2)
        );
        assert_eq!(VifCounters::decode("rx_packets=x"), None);
        assert_eq!(VifCounters::decode("rx_packets"), None);
    }
}
