//! Virtual block devices as the management protocol reports them (`ctl info NAME`), and
//! the counters a block backend publishes in xenstore for it.

use alloc::string::String;
use serde::{Deserialize, Serialize};

/// The key under a vbd's backend directory where the block backend publishes its
/// [`VbdCounters`] (its text form, [`VbdCounters::encode`]).
pub const VBD_COUNTERS_KEY: &str = "bulkhead-counters";

/// One virtual block device: who serves what to whom, and how it is going.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VbdRow {
    /// The guest using it.
    pub frontend: u16,
    /// The block backend domain serving it.
    pub backend: u16,
    /// Xen's device number (51712 is xvda).
    pub devid: u32,
    /// The guest's name for it (`xvda`).
    pub vdev: String,
    /// The host disk behind it (its virtio-blk serial).
    pub disk: String,
    /// Read-only for the guest.
    pub read_only: bool,
    /// The backend's XenbusState (4 is Connected, 5 Closing).
    pub backend_state: u8,
    /// The frontend's XenbusState.
    pub frontend_state: u8,
    /// What the backend has served, if it published counters.
    pub counters: Option<VbdCounters>,
}

/// Requests a block backend served on one vbd, as it publishes them in xenstore
/// (under [`VBD_COUNTERS_KEY`], see [`VbdCounters::encode`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VbdCounters {
    /// Read requests.
    pub reads: u64,
    /// Write requests.
    pub writes: u64,
    /// Flush and barrier requests.
    pub flushes: u64,
    /// Discard requests.
    pub discards: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Sectors written.
    pub sectors_written: u64,
}

impl VbdCounters {
    /// Field names, in the order [`VbdCounters::encode`] writes them.
    const KEYS: [&'static str; 7] = [
        "reads",
        "writes",
        "flushes",
        "discards",
        "errors",
        "sectors_read",
        "sectors_written",
    ];

    fn fields(&self) -> [u64; 7] {
        [
            self.reads,
            self.writes,
            self.flushes,
            self.discards,
            self.errors,
            self.sectors_read,
            self.sectors_written,
        ]
    }

    /// The xenstore value: `key=value` pairs separated by spaces.
    pub fn encode(&self) -> String {
        super::counters::encode(&Self::KEYS, &self.fields())
    }

    /// Reads [`VbdCounters::encode`]'s text back; unknown keys are skipped, a malformed
    /// value (the backend is not trusted) is `None`.
    pub fn decode(text: &str) -> Option<Self> {
        let [reads, writes, flushes, discards, errors, sectors_read, sectors_written] =
            super::counters::decode(text, &Self::KEYS)?;
        Some(Self {
            reads,
            writes,
            flushes,
            discards,
            errors,
            sectors_read,
            sectors_written,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::VbdCounters;

    #[test]
    fn counters_round_trip_and_hostile_text_is_refused() {
        let c = VbdCounters {
            reads: 1,
            writes: 2,
            flushes: 3,
            discards: 4,
            errors: 5,
            sectors_read: 6,
            sectors_written: u64::MAX,
        };
        let text = c.encode();
        assert_eq!(
            text,
            "reads=1 writes=2 flushes=3 discards=4 errors=5 sectors_read=6 sectors_written=18446744073709551615"
        );
        assert_eq!(VbdCounters::decode(&text), Some(c));
        assert_eq!(
            VbdCounters::decode("reads=7 future=1"),
            Some(VbdCounters {
                reads: 7,
                ..VbdCounters::default()
            })
        );
        assert_eq!(VbdCounters::decode("reads=-1"), None);
        assert_eq!(VbdCounters::decode("reads"), None);
        assert_eq!(VbdCounters::decode(""), Some(VbdCounters::default()));
    }
}
