//! netdom's core: the netif backend (netback) that serves stock Linux `xen-netfront`, and
//! the L2 switch joining the vifs and the uplink NIC.
//!
//! The shell (`main.rs`) owns the virtio-net NIC, maps rings, binds event channels and
//! talks to xenstore; everything it decides is decided here, host-tested:
//!
//! * [`io`]: what the shell provides ([`RingMem`], [`Io`]).
//! * [`ring`]: the back half of a netif ring (indexes, notify rules, restart attach).
//! * [`tx`]: each TX packet's slots copied out once and validated; [`tx_batch`]: the TX
//!   path, packets brought in by one grant copy per batch.
//! * [`checksum`]: completing a checksum netfront left blank.
//! * [`switch`]: the learning switch.
//! * [`vif`]: per-vif state and counters; [`netback`]: the TX and RX paths.
//! * [`xenbus`]: the backend xenbus handshake as [`Action`]s for the shell.
//!
//! A shell's loop: for each vif dom0 wrote, [`Netback::add`] then perform
//! [`Netback::start`] (or, for one whose `state` reads Connected because a previous
//! instance of netdom served it, [`Netback::resume`], then log [`Netback::take_resumed`]
//! once [`Netback::connect`] took its rings up); on a frontend `state` watch perform [`Netback::frontend_changed`]
//! (calling [`Netback::connect`] after mapping the rings); when a vif's own `state` reads
//! [`Netback::rewritten`] (dom0 wrote it afresh for a guest restarted in place) perform
//! [`Netback::reincarnate`]; on an event call
//! [`Netback::poll_tx`] for each vif, on NIC frames [`Netback::from_uplink_batch`]; then send an
//! event to every vif of [`Netback::take_notify`] and log and perform each
//! [`Netback::take_halts`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod checksum;
pub mod flush;
pub mod io;
pub mod netback;
pub mod ring;
mod rx;
pub mod switch;
pub mod tx;
pub mod tx_batch;
pub mod vif;
pub mod xenbus;

pub use io::{GrantError, GrantSeg, Io, RingMem, Which};
pub use netback::{Config, Netback, Poll};
pub use protocol::mgmt::UplinkCounters;
pub use ring::{BackRing, RingError};
pub use rx::RUN_FRAMES;
pub use switch::{Mac, Port, Route, Switch};
pub use tx::Malformed;
pub use vif::{parse_mac, HaltReason, MacText, Resumed, Vif, VifConfig, VifId, VifState};
pub use xenbus::{Action, Handshake, HandshakeError, Step};

#[cfg(test)]
mod tests;
