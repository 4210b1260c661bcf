//! The engine: every vif, the switch between them and the uplink, and the TX and RX paths.
//!
//! TX (from a guest): [`Netback::poll_tx`] reads whole packets out of a vif's TX ring
//! ([`crate::tx::parse`]), grant-copies the data of up to [`crate::tx_batch::TX_BATCH`] of
//! them into one bounce buffer at once, answers every slot, completes a blank checksum
//! ([`crate::checksum`]), and hands each frame to the switch. A malformed packet halts that vif only (counted in `tx_errors`, reported once
//! through [`Netback::take_halts`]). Anti-spoofing: a frame whose source MAC is not the
//! vif's configured `mac` is dropped and counted in `tx_drops`.
//!
//! RX (to a guest): [`Netback::from_uplink`] and the TX path deliver frames through the
//! switch into the buffers the frontends posted (`rx.rs`).
//!
//! Each vif's event channel serves both its rings; [`Netback::take_notify`] lists the vifs
//! that asked to hear of new responses.

use crate::io::{Io, Which};
use crate::ring::{BackRing, Kind};
use crate::rx::{self, RxPlan};
use crate::switch::{Mac, Port, Route, Switch, UPLINK};
use crate::tx::{self, TxPacket};
use crate::tx_batch::TxBatch;
use crate::vif::{HaltReason, Resumed, Vif, VifConfig, VifId, VifState};
use crate::xenbus::Step;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use protocol::mgmt::UplinkCounters;
use protocol::xen::blkif::XEN_PAGE_BYTES;
use protocol::xen::netif::XEN_NETIF_MAX_TX_SIZE;
use protocol::xen::xenbus::XenbusState;

/// Bytes from `address` to the next page boundary (0 on a boundary).
pub(crate) fn page_gap(address: usize) -> usize {
    (XEN_PAGE_BYTES - address % XEN_PAGE_BYTES) % XEN_PAGE_BYTES
}

/// Backend-wide settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// MAC addresses the switch remembers.
    pub mac_capacity: usize,
    /// Ticks an address stays learned without being seen.
    pub aging: u64,
    /// TX packets served per vif per [`Netback::poll_tx`] (fairness between vifs).
    pub tx_budget: u32,
}

/// The outcome of one [`Netback::poll_tx`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Packets are still waiting (the budget ran out): poll again.
    pub more: bool,
}

/// Every vif, the switch and the shared buffers.
#[derive(Debug)]
pub struct Netback {
    pub(crate) config: Config,
    pub(crate) switch: Switch,
    pub(crate) vifs: Vec<Vif>,
    /// What the uplink moved (published for `ctl info`; the shell counts the NIC's
    /// interrupts).
    pub uplink: UplinkCounters,
    pub(crate) pkt: TxPacket,
    pub(crate) batch: TxBatch,
    pub(crate) frame: Vec<u8>,
    pub(crate) rx_plan: RxPlan,
    /// Uplink frames held for one grant copy (see `rx`).
    pub(crate) run: Vec<Range<usize>>,
    pub(crate) notify: Vec<VifId>,
    pub(crate) halts: Vec<(VifId, HaltReason, Step)>,
}

impl Netback {
    /// No vifs yet.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            switch: Switch::new(config.mac_capacity, config.aging),
            vifs: Vec::new(),
            uplink: UplinkCounters::default(),
            pkt: TxPacket::default(),
            batch: TxBatch::default(),
            // One page more than a packet, so that it can start on a page (see `poll_tx`).
            frame: vec![0; XEN_NETIF_MAX_TX_SIZE + XEN_PAGE_BYTES],
            rx_plan: RxPlan::default(),
            run: Vec::new(),
            notify: Vec::new(),
            halts: Vec::new(),
        }
    }

    /// Adds a vif (Disconnected; start its handshake with [`Netback::start`]).
    pub fn add(&mut self, config: VifConfig) -> VifId {
        self.vifs.push(Vif::new(config));
        VifId(self.vifs.len() - 1)
    }

    /// Reinitialises entry `id` for a new vif (the old one's guest went away): fresh
    /// handshake, counters and rings, same id and port.
    pub fn replace(&mut self, id: VifId, config: VifConfig) {
        self.switch.forget_port(id.port());
        if let Some(v) = self.vifs.get_mut(id.0) {
            *v = Vif::new(config);
        }
    }

    /// Stops serving vif `id` (its directory vanished); the shell releases its rings.
    pub fn remove(&mut self, id: VifId) {
        self.switch.forget_port(id.port());
        if let Some(v) = self.vifs.get_mut(id.0) {
            v.tx = None;
            v.rx = None;
            v.state = VifState::Disconnected;
        }
    }

    /// The vif `id`.
    pub fn get(&self, id: VifId) -> Option<&Vif> {
        self.vifs.get(id.0)
    }

    /// Every vif with its id.
    pub fn iter(&self) -> impl Iterator<Item = (VifId, &Vif)> {
        self.vifs.iter().enumerate().map(|(i, v)| (VifId(i), v))
    }

    /// Starts vif `id`'s handshake: publish features, enter InitWait.
    pub fn start(&mut self, id: VifId) -> Step {
        self.vifs[id.0].handshake.start()
    }

    /// After a restart in place: picks vif `id` up from the states found in xenstore. When
    /// both ends were connected the step maps the rings and binds the port without writing
    /// anything, and the [`Netback::connect`] that follows takes the rings up where the
    /// dead instance left them (see [`crate::ring`]); otherwise the vif starts over.
    pub fn resume<F: FnMut(&str) -> Option<String>>(
        &mut self,
        id: VifId,
        backend: XenbusState,
        fe: XenbusState,
        read: F,
    ) -> Step {
        let step = self.vifs[id.0].handshake.resume(backend, fe, read);
        let announces = step
            .actions
            .iter()
            .any(|a| matches!(a, crate::Action::SetState(_)));
        let maps = step
            .actions
            .iter()
            .any(|a| matches!(a, crate::Action::MapRings { .. }));
        self.vifs[id.0].resuming = maps && !announces;
        step
    }

    /// How vif `id`'s rings were taken up after a restart in place, once (none if it was
    /// not resumed, or was told already).
    pub fn take_resumed(&mut self, id: VifId) -> Option<Resumed> {
        self.vifs.get_mut(id.0).and_then(|v| v.resumed.take())
    }

    /// The frontend's `state` changed to `fe`; a disconnect in the returned actions also
    /// stops serving the rings here.
    pub fn frontend_changed<F: FnMut(&str) -> Option<String>>(
        &mut self,
        id: VifId,
        fe: XenbusState,
        read: F,
    ) -> Step {
        let step = self.vifs[id.0].handshake.frontend_changed(fe, read);
        self.disconnected(id, &step);
        step
    }

    /// Whether vif `id`'s own `state` key reading `found` shows the toolstack wrote the
    /// vif afresh (its guest was restarted in place): then call [`Netback::reincarnate`].
    pub fn rewritten(&self, id: VifId, found: XenbusState) -> bool {
        self.vifs
            .get(id.0)
            .is_some_and(|v| v.handshake.rewritten(found))
    }

    /// Vif `id` was written afresh for a new instance of its guest, whose frontend is in
    /// state `fe`: stop serving the old rings and offer a new connection (see
    /// [`crate::Handshake::reincarnate`]). Counters and the last halt are kept.
    pub fn reincarnate<F: FnMut(&str) -> Option<String>>(
        &mut self,
        id: VifId,
        fe: XenbusState,
        read: F,
    ) -> Step {
        let step = self.vifs[id.0].handshake.reincarnate(fe, read);
        self.disconnected(id, &step);
        step
    }

    /// A disconnect in `step` also stops serving vif `id`'s rings here.
    fn disconnected(&mut self, id: VifId, step: &Step) {
        if step.actions.contains(&crate::Action::Disconnect) {
            let v = &mut self.vifs[id.0];
            v.tx = None;
            v.rx = None;
            v.state = VifState::Disconnected;
            self.switch.forget_port(id.port());
        }
    }

    /// The shell mapped vif `id`'s rings ([`crate::Action::MapRings`]): start serving them.
    pub fn connect<I: Io + ?Sized>(&mut self, id: VifId, io: &mut I) -> bool {
        let (Some(tx), Some(rx)) = (
            io.ring(id, Which::Tx)
                .map(|m| BackRing::attach(Kind::Tx, m)),
            io.ring(id, Which::Rx)
                .map(|m| BackRing::attach(Kind::Rx, m)),
        ) else {
            return false;
        };
        let v = &mut self.vifs[id.0];
        v.tx = Some(tx);
        v.rx = Some(rx);
        v.state = VifState::Connected;
        if core::mem::take(&mut v.resuming) {
            self.take_up(id, io);
        }
        true
    }

    /// Restart in place: answers the TX window, completes a journalled RX batch, and
    /// notifies the frontend (its events to the dead instance were lost). A corrupt ring
    /// halts the vif, as it would have the dead instance.
    fn take_up<I: Io + ?Sized>(&mut self, id: VifId, io: &mut I) {
        let (Some(ring), Some(mem)) = (self.vifs[id.0].tx.as_mut(), io.ring(id, Which::Tx)) else {
            return;
        };
        let dropped = match tx::drop_window(ring, mem) {
            Ok(d) => d,
            Err(e) => return self.halt(id, HaltReason::Ring(e)),
        };
        let tx_at = ring.rsp_prod_pvt();
        let (Some(ring), Some(mem)) = (self.vifs[id.0].rx.as_mut(), io.ring(id, Which::Rx)) else {
            return;
        };
        let completed = match rx::finish_journal(ring, mem) {
            Ok(n) => n,
            Err(e) => return self.halt(id, HaltReason::Ring(e)),
        };
        let rx_at = ring.rsp_prod_pvt();
        let v = &mut self.vifs[id.0];
        v.counters.tx_drops += u64::from(dropped.packets);
        v.resumed = Some(Resumed {
            tx_at,
            rx_at,
            tx_dropped: dropped.packets,
            rx_completed: completed,
        });
        self.wants_notify(id);
    }

    /// The shell could not map the rings or bind the port: close the vif.
    pub fn connect_failed(&mut self, id: VifId) -> Step {
        let v = &mut self.vifs[id.0];
        v.tx = None;
        v.rx = None;
        v.state = VifState::Disconnected;
        v.handshake.halt()
    }

    /// The vifs to notify since the last call (each once).
    pub fn take_notify(&mut self) -> Vec<VifId> {
        core::mem::take(&mut self.notify)
    }

    /// The vifs halted since the last call, with why and the xenbus actions to perform.
    pub fn take_halts(&mut self) -> Vec<(VifId, HaltReason, Step)> {
        core::mem::take(&mut self.halts)
    }

    pub(crate) fn wants_notify(&mut self, id: VifId) {
        if !self.notify.contains(&id) {
            self.notify.push(id);
        }
    }

    pub(crate) fn halt(&mut self, id: VifId, reason: HaltReason) {
        let v = &mut self.vifs[id.0];
        if matches!(v.state, VifState::Halted(_)) {
            return;
        }
        if matches!(reason, HaltReason::Malformed(_)) {
            v.counters.tx_errors += 1;
        }
        v.state = VifState::Halted(reason);
        v.last_halt = Some(reason);
        let step = v.handshake.halt();
        self.switch.forget_port(id.port());
        self.halts.push((id, reason, step));
    }

    /// A frame arrived on the uplink NIC.
    pub fn from_uplink<I: Io + ?Sized>(&mut self, frame: &[u8], io: &mut I, now: u64) {
        let whole = 0..frame.len();
        self.from_uplink_batch(frame, core::slice::from_ref(&whole), io, now);
    }

    /// Learns the source and sends `frame` where the switch says; true if at least one
    /// destination took it.
    pub(crate) fn forward<I: Io + ?Sized>(
        &mut self,
        ingress: Port,
        frame: &[u8],
        io: &mut I,
        now: u64,
    ) -> bool {
        let route = self.learn_route(ingress, frame, now);
        self.send_routed(ingress, route, frame, io)
    }

    /// Learns `frame`'s source MAC on `ingress` and asks the switch where it goes. The frame
    /// is at least an Ethernet header (the callers drop shorter ones).
    pub(crate) fn learn_route(&mut self, ingress: Port, frame: &[u8], now: u64) -> Route {
        let mac = |b: &[u8]| -> Mac { [b[0], b[1], b[2], b[3], b[4], b[5]] };
        let (dst, src) = (mac(&frame[0..6]), mac(&frame[6..12]));
        self.switch.learn(&src, ingress, now);
        self.switch.route(&dst, ingress, now)
    }

    /// Sends `frame`, which came in on `ingress`, along `route`; true if at least one
    /// destination took it.
    pub(crate) fn send_routed<I: Io + ?Sized>(
        &mut self,
        ingress: Port,
        route: Route,
        frame: &[u8],
        io: &mut I,
    ) -> bool {
        match route {
            Route::Hairpin => false,
            Route::One(p) => self.send_to(p, frame, io),
            Route::Flood => {
                let mut any = false;
                if ingress != UPLINK {
                    any |= self.send_to(UPLINK, frame, io);
                }
                for i in 0..self.vifs.len() {
                    let p = VifId(i).port();
                    if p != ingress && self.vifs[i].state == VifState::Connected {
                        any |= self.send_to(p, frame, io);
                    }
                }
                any
            }
        }
    }
}
