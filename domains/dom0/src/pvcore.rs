//! The PV backends' byte moving, host-testable: one pass over every served child's console
//! and xenstore rings, generic over the mapped page ([`SharedRing`]) and the hypercalls
//! ([`PvHost`]). The shell (`main.rs`'s `pv` module) maps the pages, binds the channels and
//! calls [`Pv::poll`] once per loop iteration, asking for console input only when some may
//! have arrived.
//!
//! Invariants (security review F2, F3):
//! - **Bounded passes.** One pass moves at most one ring's worth of bytes per ring and child
//!   ([`CONSOLE_OUT_PER_PASS`], [`CONSOLE_IN_PER_PASS`], [`STORE_PER_PASS`]), however fast a
//!   guest re-arms its indexes, so dom0's loop always gets back to everyone else.
//! - **Faults stay with their child.** A child whose ring indexes are corrupt is stopped:
//!   its xenstore connection is shut down, `XENSTORE_ERROR_RINGIDX` is set in its page (as
//!   xenstored does), the pass reports it once ([`Event::Failed`]) and it is skipped from
//!   then on. Every other child is served in the same pass.

use crate::xenstore::{FeedError, Xenstore};
use alloc::vec::Vec;
use core::mem::offset_of;
use protocol::control::{CONSOLE_FOR_BYTES, CONSOLE_READ_BYTES};
use protocol::xen::ring::{
    XenstoreDomainInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE, XENSTORE_ERROR_PROTO,
    XENSTORE_ERROR_RINGIDX, XENSTORE_RING_SIZE,
};
use protocol::xen::ring_io::{RingError, SharedRing, CONS_IN, CONS_OUT, XS_REQ, XS_RSP};

/// Console output bytes taken from one child per pass: one ring's worth.
pub const CONSOLE_OUT_PER_PASS: usize = XENCONS_OUT_SIZE;
/// Console input bytes given to one child per pass: one ring's worth.
pub const CONSOLE_IN_PER_PASS: usize = XENCONS_IN_SIZE;
/// Xenstore bytes read from, and written to, one child per pass: one ring's worth each way.
pub const STORE_PER_PASS: usize = XENSTORE_RING_SIZE;

/// Where the xenstore page's `error` field is.
const ERROR_OFFSET: usize = offset_of!(XenstoreDomainInterface, error);

/// Which of a child's two rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    /// The PV console page.
    Console,
    /// The xenstore page.
    Store,
}

/// What the core needs from the hypervisor for one child; `X` is the shell's per-child data
/// (capability handle, event-channel ports).
pub trait PvHost<X> {
    /// Writes console output of the child to its console; false if the microvisor refused.
    fn console_write(&mut self, child: &X, bytes: &[u8]) -> bool;
    /// Takes console input typed for the child, at most `buf.len()` bytes.
    fn console_read(&mut self, child: &X, buf: &mut [u8]) -> usize;
    /// Signals the child that `ring` changed.
    fn notify(&mut self, child: &X, ring: Ring);
}

/// Something a pass wants the shell to say or do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The child's `ring` is corrupt; the child is no longer served (reported once).
    Failed {
        /// The child.
        domid: u16,
        /// The ring found corrupt.
        ring: Ring,
        /// What was wrong.
        error: RingError,
    },
    /// The microvisor refused the child's console output (reported once per child).
    ConsoleRefused {
        /// The child.
        domid: u16,
    },
}

/// One served child: its two mapped pages and the shell's data.
#[derive(Debug)]
pub struct Child<R, X> {
    /// Its domain id (its xenstore connection).
    pub domid: u16,
    /// The console page.
    pub console: R,
    /// The xenstore page.
    pub store: R,
    /// The shell's data (handles, ports).
    pub extra: X,
    /// It has spoken xenstore: a PV frontend (Linux) runs there.
    pub frontend: bool,
    /// It has written to its PV console: console input typed for it goes into its ring (a
    /// domain that never uses the PV console, like our own, reads its input itself).
    pub console_used: bool,
    /// A ring was corrupt: no longer served.
    pub failed: bool,
    /// Console output refusal was reported.
    refused_reported: bool,
    /// Requests were taken from its xenstore ring in this pass: it is notified once, with
    /// the replies ([`Pv::poll`]), not once for each.
    consumed_requests: bool,
    /// The last pass stopped writing its xenstore replies at [`STORE_PER_PASS`] with more
    /// to write and room perhaps left: the next pass must come without waiting for it
    /// (a client tells us it made room only when it found its ring full, as Linux's does).
    output_left: bool,
    /// The last pass gave it a whole pass's worth of typed input (or filled its ring), so
    /// more may be queued: the next pass reads its input without being told of any.
    input_left: bool,
    /// Its raw console output, for `ctl console` as a terminal.
    pub output: crate::bytelog::ByteLog,
}

impl<R, X> Child<R, X> {
    /// A child just attached.
    pub fn new(domid: u16, console: R, store: R, extra: X) -> Self {
        Self {
            domid,
            console,
            store,
            extra,
            frontend: false,
            console_used: false,
            failed: false,
            refused_reported: false,
            consumed_requests: false,
            output_left: false,
            input_left: false,
            output: crate::bytelog::ByteLog::default(),
        }
    }
}

/// Every child's rings and the xenstore they talk to.
#[derive(Debug)]
pub struct Pv<R, X> {
    /// The served children, in attach order.
    pub children: Vec<Child<R, X>>,
    /// The store.
    pub xs: Xenstore,
}

impl<R: SharedRing, X> Pv<R, X> {
    /// No children yet.
    pub fn new(xs: Xenstore) -> Self {
        Self {
            children: Vec::new(),
            xs,
        }
    }

    /// One bounded pass over every child (see the module docs); returns what to report.
    /// Typed console input is asked of the microvisor (`ConsoleReadFor`, a locked call)
    /// only when `input` says some may have arrived (its event, an injection, the safety
    /// poll) or the last pass left some behind ([`Pv::input_left`]).
    pub fn poll(&mut self, host: &mut impl PvHost<X>, input: bool) -> Vec<Event> {
        let mut events = Vec::new();
        for i in 0..self.children.len() {
            if self.children[i].failed {
                continue;
            }
            let r = self.console_pass(i, host, input, &mut events);
            if let Err(error) = r {
                self.fail(i, Ring::Console, error, &mut events);
                continue;
            }
            if let Err(error) = self.store_input(i) {
                self.fail(i, Ring::Store, error, &mut events);
            }
        }
        // Replies and watch events, after every child's requests so one pass carries the
        // events a request of a later child caused for an earlier one.
        for i in 0..self.children.len() {
            if self.children[i].failed {
                continue;
            }
            if let Err(error) = self.store_output(i, host) {
                self.fail(i, Ring::Store, error, &mut events);
            }
        }
        events
    }

    /// Whether a child's replies stopped at the per-pass bound with more to write: poll
    /// again without waiting for an event.
    pub fn output_left(&self) -> bool {
        self.children.iter().any(|c| !c.failed && c.output_left)
    }

    /// Whether a child may have typed input left behind the last pass's bound: poll again
    /// with its input read.
    pub fn input_left(&self) -> bool {
        self.children.iter().any(|c| !c.failed && c.input_left)
    }

    fn fail(&mut self, i: usize, ring: Ring, error: RingError, events: &mut Vec<Event>) {
        let c = &mut self.children[i];
        c.failed = true;
        self.xs.shut_down(c.domid);
        c.store.store_index(ERROR_OFFSET, XENSTORE_ERROR_RINGIDX);
        events.push(Event::Failed {
            domid: c.domid,
            ring,
            error,
        });
    }

    fn console_pass(
        &mut self,
        i: usize,
        host: &mut impl PvHost<X>,
        input: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), RingError> {
        let c = &mut self.children[i];
        let mut notify = false;
        let mut buf = [0u8; CONSOLE_FOR_BYTES];
        let mut moved = 0;
        while moved < CONSOLE_OUT_PER_PASS {
            let want = buf.len().min(CONSOLE_OUT_PER_PASS - moved);
            let n = CONS_OUT.consume(&mut c.console, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            moved += n;
            notify = true;
            c.console_used = true;
            c.output.push(&buf[..n]);
            if !host.console_write(&c.extra, &buf[..n]) && !c.refused_reported {
                c.refused_reported = true;
                events.push(Event::ConsoleRefused { domid: c.domid });
            }
        }
        // Typed input goes into the PV ring only for a guest that uses its PV console (it has
        // written to it, as Linux's hvc0 does from boot). Speaking xenstore is no sign of
        // that: our Rust domains speak it (netfront, backends) and read their input with
        // `ConsoleRead`, which this pass would otherwise starve.
        if c.console_used && (input || c.input_left) {
            let room = CONS_IN.space(&c.console)?.min(CONSOLE_IN_PER_PASS);
            let mut typed = [0u8; CONSOLE_READ_BYTES];
            let mut left = room;
            while left > 0 {
                let want = left.min(typed.len());
                let n = host.console_read(&c.extra, &mut typed[..want]);
                if n == 0 {
                    break;
                }
                // `room` was checked: the ring takes all `n` unless the guest moved its
                // indexes meanwhile, which only loses the guest its own input.
                CONS_IN.produce(&mut c.console, &typed[..n])?;
                left -= n;
                notify = true;
            }
            // Stopped by the bound or by filling the ring rather than by running dry. Not
            // for a ring that was full already: a guest that never reads its input must
            // not keep dom0 polling (its next notification says it made room).
            c.input_left = room > 0 && left == 0;
        }
        if notify {
            host.notify(&c.extra, Ring::Console);
        }
        Ok(())
    }

    fn store_input(&mut self, i: usize) -> Result<(), RingError> {
        let c = &mut self.children[i];
        let mut buf = [0u8; XENSTORE_RING_SIZE];
        let mut moved = 0;
        while moved < STORE_PER_PASS && self.xs.accepts_input(c.domid) {
            let n = XS_REQ.consume(&mut c.store, &mut buf[..STORE_PER_PASS - moved])?;
            if n == 0 {
                break;
            }
            moved += n;
            c.frontend = true;
            match self.xs.feed(c.domid, &buf[..n]) {
                Ok(()) => {}
                Err(FeedError::PayloadTooLong { .. }) => {
                    // The store shut the connection down; tell the guest, as xenstored does.
                    c.store.store_index(ERROR_OFFSET, XENSTORE_ERROR_PROTO);
                    break;
                }
                Err(_) => break,
            }
        }
        // Told with the replies, in the second half of the pass (`store_output`): a send
        // to a domain on dom0's own pCPU is a locked pass of the microvisor, and one
        // notification says "look at both rings" as well as two.
        c.consumed_requests |= moved > 0;
        Ok(())
    }

    fn store_output(&mut self, i: usize, host: &mut impl PvHost<X>) -> Result<(), RingError> {
        let c = &mut self.children[i];
        let mut moved = 0;
        while moved < STORE_PER_PASS {
            let out = self.xs.output(c.domid);
            if out.is_empty() {
                break;
            }
            let out = &out[..out.len().min(STORE_PER_PASS - moved)];
            let n = XS_RSP.produce(&mut c.store, out)?;
            if n == 0 {
                break;
            }
            self.xs.advance_output(c.domid, n);
            moved += n;
        }
        c.output_left = moved == STORE_PER_PASS && !self.xs.output(c.domid).is_empty();
        let consumed = core::mem::take(&mut c.consumed_requests);
        if moved > 0 || consumed {
            host.notify(&c.extra, Ring::Store);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
