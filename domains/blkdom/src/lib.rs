//! blkdom's core: the blkif backend (blkback) that serves stock Linux `xen-blkfront`.
//!
//! The shell (`main.rs`) owns the virtio-blk disks, maps rings, binds event channels and talks
//! to xenstore; everything it decides is decided here, host-tested:
//!
//! * [`io`]: the traits the shell implements ([`RingMem`], [`Disk`], [`Grants`]).
//! * [`ring`]: the back half of the shared ring (indexes, notify rules, restart attach).
//! * [`request`]: each request copied out once and fully validated into a typed [`Request`].
//! * [`exec`]: performing a batch of requests together: the data pages device-mapped (kept
//!   for the connection with persistent grants, else in one batch) and transferred by the
//!   disk directly (grant copy through the staging buffer where that is refused), every
//!   transfer in flight on the disk at once.
//! * [`persist`]: persistent grants, the device maps kept for a whole connection.
//! * [`vbd`]: the vbd table, per-vbd state and counters, and [`VbdTable::poll`].
//! * [`xenbus`]: the backend xenbus handshake as [`Action`]s for the shell.
//!
//! A shell's loop: for each vbd, [`VbdTable::add`] then perform [`VbdTable::start`]; on a
//! frontend `state` watch, perform
//! [`VbdTable::frontend_changed`] (calling [`VbdTable::connect`] after mapping the ring);
//! on an event (or `Poll::more`), call [`VbdTable::poll`], send an event if `notify`, and
//! on `halted` log once and perform `step`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod counters;
pub mod exec;
pub mod io;
pub mod persist;
pub mod request;
pub mod ring;
pub mod vbd;
pub mod xenbus;

pub use io::{
    DiscardInfo, Disk, DiskError, DiskInfo, DmaSeg, GrantError, GrantSeg, Grants, Kept, RingMem,
};
pub use persist::PersistentGrants;
pub use request::{Kind, Malformed, Refusal, Request};
pub use ring::{BackRing, RingError};
pub use vbd::{
    Config, Counters, HaltReason, Poll, Vbd, VbdConfig, VbdId, VbdState, VbdTable,
    DEFAULT_MAX_INDIRECT_SEGMENTS,
};
pub use xenbus::{Action, Handshake, HandshakeError, Published, Step};

#[cfg(test)]
mod tests;
