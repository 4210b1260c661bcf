//! The management port's byte pump, host-testable: reads a bounded number of bytes per
//! poll, serves them frame by frame through [`Server`], and keeps the replies in a bounded
//! queue drained as the device takes them (security review F10).
//!
//! Invariants:
//! - **Bounded input.** At most [`READ_PER_POLL`] bytes are read per poll, and none while
//!   the reply queue is full, so a client that streams bytes cannot keep dom0 in the poll.
//!   A partial frame is bounded by the frame decoder (`MAX_FRAME`; a longer one is dropped
//!   and answered with `Error(TooLarge)`).
//! - **Bounded output, never waited on.** Replies wait in a queue of at most
//!   [`MAX_PENDING`] bytes plus one reply; [`Device::try_write`] must not wait for the host.
//!   A client that stops reading stalls the queue; after [`STALL_POLLS`] polls in which the
//!   device took nothing, its output and any partial request are dropped ([`Polled::dropped`])
//!   and serving starts afresh.

use super::{DomainOps, Server};
use alloc::collections::VecDeque;
use protocol::mgmt::MAX_FRAME;

/// Most bytes read from the device in one poll.
pub const READ_PER_POLL: usize = 16 * 1024;
/// Reply bytes queued before dom0 stops reading requests (a few maximal replies).
pub const MAX_PENDING: usize = 4 * MAX_FRAME;
/// Polls in a row with queued output the device does not take before the output is
/// dropped (dom0 polls the port every 200 ms at least: about 10 s).
pub const STALL_POLLS: u32 = 50;

/// The byte stream to the host.
pub trait Device {
    /// The next received byte, if any; never waits.
    fn read_byte(&mut self) -> Option<u8>;
    /// Hands `bytes` to the device without waiting for the host to read them; returns how
    /// many it took (0 while it is busy).
    fn try_write(&mut self, bytes: &[u8]) -> usize;
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Bytes read from the device.
    pub read: usize,
    /// The client had stopped reading: its queued output was dropped.
    pub dropped: bool,
}

/// The management session over one device.
#[derive(Debug, Default)]
pub struct Link {
    server: Server,
    out: VecDeque<u8>,
    stalled: u32,
    dropped: u64,
}

impl Link {
    /// No session yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reply bytes waiting for the device.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// How many times a client's output was dropped.
    pub fn drops(&self) -> u64 {
        self.dropped
    }

    /// Moves queued replies out, reads and serves what fits (see the module docs).
    pub fn poll(&mut self, dev: &mut impl Device, ops: &mut impl DomainOps) -> Polled {
        let mut polled = Polled::default();
        let stuck = !self.out.is_empty() && self.flush(dev) == 0;
        if stuck {
            self.stalled += 1;
            if self.stalled >= STALL_POLLS {
                self.drop_session();
                polled.dropped = true;
            }
        } else {
            self.stalled = 0;
        }
        while polled.read < READ_PER_POLL && self.out.len() < MAX_PENDING {
            let Some(b) = dev.read_byte() else {
                break;
            };
            polled.read += 1;
            if let Some(reply) = self.server.push(b, ops) {
                self.out.extend(reply);
            }
        }
        self.flush(dev);
        polled
    }

    /// Forgets the session (the host side went away).
    pub fn reset(&mut self) {
        self.server.reset();
        self.out.clear();
        self.stalled = 0;
    }

    fn drop_session(&mut self) {
        self.reset();
        self.dropped += 1;
    }

    /// Hands the device as much queued output as it takes; returns the count.
    fn flush(&mut self, dev: &mut impl Device) -> usize {
        let mut total = 0;
        while !self.out.is_empty() {
            let (head, _) = self.out.as_slices();
            let n = dev.try_write(head).min(head.len());
            if n == 0 {
                break;
            }
            self.out.drain(..n);
            total += n;
        }
        total
    }
}

#[cfg(test)]
mod tests;
