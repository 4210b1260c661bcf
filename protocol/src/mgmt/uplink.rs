//! A network backend's uplink (its NIC) as the management protocol reports it
//! (`ctl info NAME` of the backend), and the counters the backend publishes for it.

use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Where a network backend publishes its [`UplinkCounters`] (text form,
/// [`UplinkCounters::encode`]), relative to its own xenstore home
/// (`/local/domain/<id>/`): under `data`, the one directory a domain may write there.
pub const UPLINK_COUNTERS_KEY: &str = "data/bulkhead-uplink";

/// What a network backend's NIC moved, as it publishes it. `rx` is from the wire (frames
/// the NIC received), `tx` to it. Counts start from zero with each incarnation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkCounters {
    /// Frames received from the NIC.
    pub rx_frames: u64,
    /// Frames sent on the NIC.
    pub tx_frames: u64,
    /// Frames the NIC could not take (its transmit queue was full).
    pub tx_drops: u64,
    /// The NIC's interrupts the backend took.
    pub interrupts: u64,
}

impl UplinkCounters {
    /// Field names, in the order [`UplinkCounters::encode`] writes them.
    const KEYS: [&'static str; 4] = ["rx_frames", "tx_frames", "tx_drops", "interrupts"];

    /// The xenstore value: `key=value` pairs separated by spaces.
    pub fn encode(&self) -> String {
        let values = [
            self.rx_frames,
            self.tx_frames,
            self.tx_drops,
            self.interrupts,
        ];
        super::counters::encode(&Self::KEYS, &values)
    }

    /// Reads [`UplinkCounters::encode`]'s text back; unknown keys are skipped, a malformed
    /// value (the backend is not trusted) is `None`.
    pub fn decode(text: &str) -> Option<Self> {
        let [rx_frames, tx_frames, tx_drops, interrupts] =
            super::counters::decode(text, &Self::KEYS)?;
        Some(Self {
            rx_frames,
            tx_frames,
            tx_drops,
            interrupts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::UplinkCounters;

    #[test]
    fn counters_round_trip_and_hostile_text_is_refused() {
        let c = UplinkCounters {
            rx_frames: 1,
            tx_frames: 2,
            tx_drops: 3,
            interrupts: u64::MAX,
        };
        assert_eq!(UplinkCounters::decode(&c.encode()), Some(c));
        assert_eq!(
            UplinkCounters::decode("interrupts=5 later=1").map(|c| c.interrupts),
            Some(5)
        );
        assert_eq!(UplinkCounters::decode("rx_frames=-1"), None);
        assert_eq!(UplinkCounters::decode("rx_frames"), None);
    }
}
