//! When the TCP echo service (RFC 862, port 7) closes its side of a connection: pure, so
//! host-tested; the network thread (`wiring/net.rs`) maps smoltcp's socket state onto it.

/// A TCP echo connection's state, as far as closing it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Listening or in the handshake (SYN-RECEIVED): nothing can be received yet.
    Handshake,
    /// ESTABLISHED.
    Open,
    /// CLOSE-WAIT: the client has closed its side.
    PeerClosed,
    /// Closing, closed or anything else: nothing for us to do.
    Other,
}

/// A connection without data for this long is closed by us (a client such as busybox
/// `nc` waits for the server to close).
pub const IDLE_US: u64 = 2_000_000;

/// Whether to close our side now: only once everything received was echoed (`unsent` is
/// 0), and only after the handshake: when the client has closed its side, or when an open
/// connection has carried no data for [`IDLE_US`]. Closing during the handshake would
/// refuse every client whose final ACK comes in a later poll than its SYN.
pub fn should_close(phase: Phase, unsent: usize, idle_us: u64) -> bool {
    unsent == 0
        && match phase {
            Phase::PeerClosed => true,
            Phase::Open => idle_us > IDLE_US,
            Phase::Handshake | Phase::Other => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_in_its_handshake_is_never_closed() {
        // CI's rtos_net failure: SYN-RECEIVED looked like "cannot receive, close it".
        assert!(!should_close(Phase::Handshake, 0, 0));
        assert!(!should_close(Phase::Handshake, 0, 10 * IDLE_US));
    }

    #[test]
    fn closes_after_the_client_or_when_idle_once_echoed() {
        assert!(should_close(Phase::PeerClosed, 0, 0));
        assert!(
            !should_close(Phase::PeerClosed, 5, 0),
            "echo what is left first"
        );
        assert!(!should_close(Phase::Open, 0, IDLE_US));
        assert!(should_close(Phase::Open, 0, IDLE_US + 1));
        assert!(!should_close(Phase::Open, 1, 10 * IDLE_US));
        assert!(!should_close(Phase::Other, 0, 10 * IDLE_US));
    }
}
