//! The L2 learning switch that joins the vifs and the uplink.
//!
//! Ports are small integers ([`Port`]); port 0 is the uplink NIC. The switch learns which
//! port each source MAC sits behind, forgets entries not refreshed within the aging time,
//! floods broadcast, multicast and unknown unicast to every other port, and never sends a
//! frame back out of the port it came in on (no hairpin). The table has a fixed capacity:
//! when it is full a new address replaces the stalest entry of its own port if that port
//! has one, else the stalest overall, so a port spraying source addresses mostly churns
//! its own entries; an address that is not in the table is simply flooded.
//!
//! Time is whatever monotonic tick the caller passes (the shell uses the counter).

use alloc::vec::Vec;

/// A MAC address.
pub type Mac = [u8; 6];

/// A switch port: 0 is the uplink, vif `n` is port `n + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(pub usize);

/// The uplink's port.
pub const UPLINK: Port = Port(0);

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this one port.
    One(Port),
    /// To every port except the one it came in on.
    Flood,
    /// Nowhere: the destination sits behind the ingress port.
    Hairpin,
}

/// True for broadcast and multicast addresses (the group bit).
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: Mac,
    port: Port,
    seen: u64,
}

/// The MAC table.
#[derive(Clone, Debug)]
pub struct Switch {
    entries: Vec<Entry>,
    capacity: usize,
    aging: u64,
}

impl Switch {
    /// A switch remembering at most `capacity` addresses for `aging` ticks each.
    pub fn new(capacity: usize, aging: u64) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
            aging,
        }
    }

    fn live(&self, e: &Entry, now: u64) -> bool {
        now.saturating_sub(e.seen) < self.aging
    }

    /// Records that `src` was seen on `port` at `now`. Group addresses are never learned.
    pub fn learn(&mut self, src: &Mac, port: Port, now: u64) {
        if is_group(src) {
            return;
        }
        if let Some(e) = self.entries.iter_mut().find(|e| e.mac == *src) {
            e.port = port;
            e.seen = now;
            return;
        }
        let fresh = Entry {
            mac: *src,
            port,
            seen: now,
        };
        if self.entries.len() < self.capacity {
            self.entries.push(fresh);
            return;
        }
        // Full: an expired entry first, else the stalest of this port, else the stalest.
        let victim = self
            .entries
            .iter()
            .position(|e| !self.live(e, now))
            .or_else(|| stalest(&self.entries, |e| e.port == port))
            .or_else(|| stalest(&self.entries, |_| true));
        if let Some(i) = victim {
            self.entries[i] = fresh;
        }
    }

    /// Where a frame for `dst` arriving on `ingress` goes at `now`.
    pub fn route(&self, dst: &Mac, ingress: Port, now: u64) -> Route {
        if is_group(dst) {
            return Route::Flood;
        }
        match self
            .entries
            .iter()
            .find(|e| e.mac == *dst && self.live(e, now))
        {
            Some(e) if e.port == ingress => Route::Hairpin,
            Some(e) => Route::One(e.port),
            None => Route::Flood,
        }
    }

    /// Forgets every address behind `port` (its vif went away).
    pub fn forget_port(&mut self, port: Port) {
        self.entries.retain(|e| e.port != port);
    }

    /// Addresses currently remembered (expired ones included until replaced).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn stalest(entries: &[Entry], pick: impl Fn(&Entry) -> bool) -> Option<usize> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| pick(e))
        .min_by_key(|(_, e)| e.seen)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0, 0x16, 0x3e, 0, 0, 1];
    const B: Mac = [0, 0x16, 0x3e, 0, 0, 2];
    const C: Mac = [0, 0x16, 0x3e, 0, 0, 3];
    const BCAST: Mac = [0xFF; 6];

    #[test]
    fn learns_forwards_and_never_hairpins() {
        let mut s = Switch::new(8, 100);
        assert_eq!(s.route(&A, Port(2), 0), Route::Flood);
        s.learn(&A, Port(1), 0);
        assert_eq!(s.route(&A, Port(2), 1), Route::One(Port(1)));
        assert_eq!(s.route(&A, Port(1), 1), Route::Hairpin);
        // A moves to another port.
        s.learn(&A, Port(3), 2);
        assert_eq!(s.route(&A, Port(2), 3), Route::One(Port(3)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn group_addresses_flood_and_are_not_learned() {
        let mut s = Switch::new(8, 100);
        s.learn(&BCAST, Port(1), 0);
        s.learn(&[0x01, 0, 0x5e, 0, 0, 1], Port(1), 0);
        assert!(s.is_empty());
        assert_eq!(s.route(&BCAST, Port(1), 0), Route::Flood);
        assert_eq!(s.route(&[0x33, 0x33, 0, 0, 0, 1], UPLINK, 0), Route::Flood);
    }

    #[test]
    fn entries_age_out() {
        let mut s = Switch::new(8, 100);
        s.learn(&A, Port(1), 10);
        assert_eq!(s.route(&A, UPLINK, 109), Route::One(Port(1)));
        assert_eq!(s.route(&A, UPLINK, 110), Route::Flood);
        s.learn(&A, Port(1), 110);
        assert_eq!(s.route(&A, UPLINK, 111), Route::One(Port(1)));
    }

    #[test]
    fn a_full_table_evicts_expired_then_own_port_then_stalest() {
        let mut s = Switch::new(2, 100);
        s.learn(&A, Port(1), 0);
        s.learn(&B, Port(2), 50);
        // A expired at 100: C takes its place.
        s.learn(&C, Port(3), 120);
        assert_eq!(s.route(&A, UPLINK, 120), Route::Flood);
        assert_eq!(s.route(&B, UPLINK, 120), Route::One(Port(2)));
        assert_eq!(s.route(&C, UPLINK, 120), Route::One(Port(3)));
        // Nothing expired: port 3 sprays a new address, and replaces its own entry.
        let d = [2, 0, 0, 0, 0, 4];
        s.learn(&d, Port(3), 130);
        assert_eq!(s.route(&B, UPLINK, 130), Route::One(Port(2)));
        assert_eq!(s.route(&C, UPLINK, 130), Route::Flood);
        // A port with no entry replaces the stalest.
        s.learn(&A, Port(4), 140);
        assert_eq!(s.route(&B, UPLINK, 140), Route::Flood);
        assert_eq!(s.route(&d, UPLINK, 140), Route::One(Port(3)));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn forgetting_a_port_drops_its_addresses() {
        let mut s = Switch::new(8, 100);
        s.learn(&A, Port(1), 0);
        s.learn(&B, Port(2), 0);
        s.forget_port(Port(1));
        assert_eq!(s.route(&A, Port(2), 1), Route::Flood);
        assert_eq!(s.route(&B, Port(1), 1), Route::One(Port(2)));
    }
}
