//! `management_flood` over the ZCU102's management UART: a client that floods dom0 with
//! requests and never reads the answers cannot hold dom0. Unlike QEMU's virtconsole, the
//! Cadence UART's transmit really stalls when the host stops reading (its 16-byte FIFO
//! fills behind the socket), so this exercises dom0's stall policy on a real device: the
//! driver masks the receive interrupt while the link leaves bytes unread, arms the
//! TX-empty interrupt while the FIFO is full, and the link drops the stalled client's
//! output; the next client is served.

use bulkhead_tests::{flood::flood_then_serve, Machine};

/// Requests the flooding client sends: their answers are far more than the socket and
/// QEMU buffer.
const FLOOD_REQUESTS: usize = 20_000;

/// How long the flooding client stays connected: long enough for dom0 to fill the
/// socket with replies and stall its transmit, longer than the link's stall limit (50
/// polls of at most 200 ms).
const HOLD: std::time::Duration = std::time::Duration::from_secs(15);

#[test]
fn a_client_that_never_reads_cannot_hold_dom0_over_the_uart() {
    flood_then_serve(Machine::Zcu102, FLOOD_REQUESTS, HOLD);
}
