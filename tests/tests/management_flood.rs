//! A management client that floods dom0 with requests and never reads the answers cannot
//! hold dom0 (security review F10): dom0 reads a bounded amount per poll, its transmit
//! never waits for the host, and the next client is served as usual.
//!
//! QEMU's `virtconsole` drops output its chardev cannot take rather than holding the
//! transmit queue, so on QEMU this flood never stalls dom0's transmit even without the
//! non-blocking console; what this boot checks is that dom0 survives the flood and keeps
//! serving. The stall policy itself (drop a client whose output the device stops taking) is
//! host-tested in `dom0::mgmt::link`.

use bulkhead_tests::{flood::flood_then_serve, Machine};

/// Requests the flooding client sends (their answers are far more than the socket and
/// QEMU buffer).
const FLOOD_REQUESTS: usize = 20_000;

#[test]
fn a_client_that_never_reads_cannot_hold_dom0() {
    flood_then_serve(Machine::Virt, FLOOD_REQUESTS, std::time::Duration::ZERO);
}
