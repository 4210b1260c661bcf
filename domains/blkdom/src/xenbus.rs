//! The backend half of the blkif xenbus handshake, as pure logic.
//!
//! dom0's toolstack creates `backend/vbd/<domid>/<devid>/` (for us) and
//! `device/vbd/<devid>/` (for the frontend) in state Initialising. This module decides what
//! blkdom writes under its backend directory and when, and turns the frontend's keys into
//! ring and event-channel parameters. It returns [`Action`]s; the shell performs them in
//! order (keys are relative to the backend directory) and reports back by calling the
//! method the action names.
//!
//! States (ours, driven by the frontend's):
//! * start → features published → `InitWait`.
//! * frontend `Initialised`/`Connected` while we are not connected → read `ring-page-order`,
//!   `ring-ref` or `ring-ref0..N`, `event-channel`, `protocol` → map the ring, bind the port,
//!   publish the device properties → `Connected`.
//! * frontend `Closing` → `Closing`; frontend `Closed` or gone (`Unknown`) → disconnect →
//!   `Closed`; frontend `Initialising`/`InitWait` after that, or while connected (it
//!   reinitialised) → disconnect, features published again → `InitWait`, and the cycle
//!   repeats with fresh rings.
//! * a halted ring ([`Handshake::halt`]) → `Closing`, then the frontend's close as above.
//!
//! `feature-persistent` is offered unless configured off; a frontend that writes its own
//! `feature-persistent` = 1 gets its grants kept mapped (see [`crate::persist`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use protocol::xen::blkif::{vdisk, XEN_IO_PROTO_ABI_ARM};
use protocol::xen::structs::{EvtchnPort, GrantRef};
use protocol::xen::xenbus::XenbusState;

/// What the backend publishes, fixed when the vbd is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// Physical sector size in bytes.
    pub physical_sector_size: u32,
    /// The vbd is read-only.
    pub read_only: bool,
    /// Flushes are offered (`feature-flush-cache` and `feature-barrier`).
    pub flush: bool,
    /// Discard is offered: (granularity, alignment, secure).
    pub discard: Option<(u32, u32, bool)>,
    /// `max-ring-page-order`.
    pub max_ring_page_order: u32,
    /// `feature-max-indirect-segments` (0: not written).
    pub max_indirect_segments: u16,
    /// `feature-persistent` is offered.
    pub persistent: bool,
}

/// One step for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `value` to `key` under the backend directory.
    Write {
        /// Key, relative to `backend/vbd/<domid>/<devid>`.
        key: &'static str,
        /// Decimal or string value.
        value: String,
    },
    /// Map the frontend's ring pages (in this order), then call
    /// [`crate::VbdTable::connect`] with `order`, or [`crate::VbdTable::connect_failed`].
    MapRing {
        /// Page order of the ring (`grefs.len() == 1 << order`).
        order: u32,
        /// The frontend's grant refs, page 0 first.
        grefs: Vec<GrantRef>,
    },
    /// Bind an interdomain event channel to this port of the frontend.
    BindEvtchn {
        /// The frontend's port (`event-channel`).
        port: EvtchnPort,
    },
    /// Unbind the event channel and unmap the ring pages, if any.
    Disconnect,
    /// Write our `state` key.
    SetState(XenbusState),
}

/// Why a frontend's transport parameters were refused (the vbd goes to Closing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// a required frontend key is missing
    Missing(String),
    /// a frontend key does not hold a valid number
    BadNumber(String),
    /// the frontend asked for a larger ring than we offered
    RingOrder(u32),
    /// the frontend uses a ring layout other than the native Arm one
    Protocol(String),
    /// the frontend asked for several queues (we offer one)
    Queues(u32),
}

impl core::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing(k) => write!(f, "frontend key {k} is missing"),
            Self::BadNumber(k) => write!(f, "frontend key {k} is not a number"),
            Self::RingOrder(o) => write!(f, "frontend ring-page-order {o} exceeds our maximum"),
            Self::Protocol(p) => write!(f, "frontend protocol {p} is not supported"),
            Self::Queues(q) => write!(f, "frontend asked for {q} queues; one is offered"),
        }
    }
}

/// What one call decided: the actions to perform, and an error to log (once) if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// The frontend's fault that led to these actions, if any.
    pub error: Option<HandshakeError>,
}

/// Ring parameters read from the frontend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendRing {
    /// Page order.
    pub order: u32,
    /// Grant refs of the ring pages.
    pub grefs: Vec<GrantRef>,
    /// The frontend's event channel port.
    pub port: EvtchnPort,
}

fn number<F: FnMut(&str) -> Option<String>>(
    read: &mut F,
    key: &str,
) -> Result<Option<u32>, HandshakeError> {
    match read(key) {
        None => Ok(None),
        Some(v) => v
            .trim_end_matches('\0')
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| HandshakeError::BadNumber(key.to_string())),
    }
}

fn required<F: FnMut(&str) -> Option<String>>(
    read: &mut F,
    key: &str,
) -> Result<u32, HandshakeError> {
    number(read, key)?.ok_or_else(|| HandshakeError::Missing(key.to_string()))
}

/// Reads the frontend's transport parameters; `read(key)` returns the value of
/// `device/vbd/<devid>/<key>` in the frontend's tree, if present.
pub fn read_frontend_ring<F: FnMut(&str) -> Option<String>>(
    read: &mut F,
    max_order: u32,
) -> Result<FrontendRing, HandshakeError> {
    if let Some(q) = number(read, "multi-queue-num-queues")? {
        if q != 1 {
            return Err(HandshakeError::Queues(q));
        }
    }
    if let Some(p) = read("protocol") {
        let p = p.trim_end_matches('\0');
        if p != XEN_IO_PROTO_ABI_ARM {
            return Err(HandshakeError::Protocol(p.to_string()));
        }
    }
    let order = number(read, "ring-page-order")?.unwrap_or(0);
    if order > max_order {
        return Err(HandshakeError::RingOrder(order));
    }
    let mut grefs = Vec::with_capacity(1 << order);
    if order == 0 {
        // A one-page ring is `ring-ref`; accept `ring-ref0` as some frontends write it.
        let r = match number(read, "ring-ref")? {
            Some(r) => r,
            None => required(read, "ring-ref0")?,
        };
        grefs.push(r);
    } else {
        for i in 0..1u32 << order {
            grefs.push(required(read, &format!("ring-ref{i}"))?);
        }
    }
    let port = required(read, "event-channel")?;
    Ok(FrontendRing { order, grefs, port })
}

/// The backend's xenbus state machine for one vbd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    publish: Published,
    state: XenbusState,
    connected: bool,
    /// Persistent grants were negotiated for the current connection.
    persistent: bool,
}

fn write(key: &'static str, value: impl ToString) -> Action {
    Action::Write {
        key,
        value: value.to_string(),
    }
}

impl Handshake {
    /// A handshake that has not started (state Initialising).
    pub fn new(publish: Published) -> Self {
        Self {
            publish,
            state: XenbusState::Initialising,
            connected: false,
            persistent: false,
        }
    }

    /// Our current state.
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Whether a ring is (to be) mapped.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Whether the current connection uses persistent grants: we offered them and the
    /// frontend's `feature-persistent` reads 1.
    pub fn persistent(&self) -> bool {
        self.connected && self.persistent
    }

    fn set(&mut self, s: XenbusState, actions: &mut Vec<Action>) {
        self.state = s;
        actions.push(Action::SetState(s));
    }

    /// Publishes the features and transport limits and enters InitWait.
    pub fn start(&mut self) -> Step {
        let p = self.publish;
        let mut a = Vec::new();
        a.push(write("max-ring-page-order", p.max_ring_page_order));
        if p.max_indirect_segments != 0 {
            a.push(write(
                "feature-max-indirect-segments",
                p.max_indirect_segments,
            ));
        }
        a.push(write("feature-flush-cache", u8::from(p.flush)));
        a.push(write("feature-barrier", u8::from(p.flush)));
        a.push(write("feature-persistent", u8::from(p.persistent)));
        if let Some((granularity, alignment, secure)) = p.discard {
            a.push(write("feature-discard", 1));
            a.push(write("discard-granularity", granularity));
            a.push(write("discard-alignment", alignment));
            a.push(write("discard-secure", u8::from(secure)));
        }
        a.push(write("mode", if p.read_only { "r" } else { "w" }));
        self.set(XenbusState::InitWait, &mut a);
        Step {
            actions: a,
            error: None,
        }
    }

    fn connect<F: FnMut(&str) -> Option<String>>(&mut self, read: &mut F, publish: bool) -> Step {
        let mut step = Step::default();
        let ring = match read_frontend_ring(read, self.publish.max_ring_page_order) {
            Ok(r) => r,
            Err(e) => {
                step.error = Some(e);
                self.set(XenbusState::Closing, &mut step.actions);
                return step;
            }
        };
        // Anything but a clean 1 (absent, 0, garbage) means the frontend ends its grants
        // after each request, so nothing may be kept.
        self.persistent =
            self.publish.persistent && matches!(number(read, "feature-persistent"), Ok(Some(1)));
        let a = &mut step.actions;
        a.push(Action::MapRing {
            order: ring.order,
            grefs: ring.grefs,
        });
        a.push(Action::BindEvtchn { port: ring.port });
        self.connected = true;
        if publish {
            let p = self.publish;
            a.push(write("sectors", p.sectors));
            let info = if p.read_only { vdisk::READONLY } else { 0 };
            a.push(write("info", info));
            a.push(write("sector-size", p.sector_size));
            a.push(write("physical-sector-size", p.physical_sector_size));
            self.set(XenbusState::Connected, a);
        }
        step
    }

    /// Reacts to the frontend's `state` changing to `fe`; `read` reads the frontend's keys.
    pub fn frontend_changed<F: FnMut(&str) -> Option<String>>(
        &mut self,
        fe: XenbusState,
        mut read: F,
    ) -> Step {
        let mut step = Step::default();
        let a = &mut step.actions;
        match fe {
            XenbusState::Initialising | XenbusState::InitWait => {
                if self.state != XenbusState::InitWait && self.state != XenbusState::Initialising {
                    // The frontend reinitialised (after a close, a kexec, or a restart in
                    // place that the toolstack's rewrite of our directory raced with): offer
                    // a fresh connection with every feature published again. The directory
                    // may be a fresh one without them, and a frontend that read no
                    // `feature-persistent` from us ends its grants after each request.
                    if self.connected {
                        self.connected = false;
                        a.push(Action::Disconnect);
                    }
                    a.extend(self.start().actions);
                }
            }
            XenbusState::Initialised | XenbusState::Connected => {
                if self.state == XenbusState::InitWait {
                    return self.connect(&mut read, true);
                }
            }
            XenbusState::Closing => {
                if self.state != XenbusState::Closing && self.state != XenbusState::Closed {
                    self.set(XenbusState::Closing, a);
                }
            }
            XenbusState::Closed | XenbusState::Unknown => {
                if self.connected {
                    self.connected = false;
                    a.push(Action::Disconnect);
                }
                if self.state != XenbusState::Closed {
                    self.set(XenbusState::Closed, a);
                }
            }
            XenbusState::Reconfiguring | XenbusState::Reconfigured => {}
        }
        step
    }

    /// The ring was halted, or could not be mapped: ask the frontend to close.
    pub fn halt(&mut self) -> Step {
        let mut step = Step::default();
        if self.state != XenbusState::Closing && self.state != XenbusState::Closed {
            self.set(XenbusState::Closing, &mut step.actions);
        }
        step
    }

    /// Restart in place (issue 11): a new blkdom instance finds our `state` already
    /// `backend` in xenstore. A connected vbd whose frontend is still connected gets its ring
    /// re-mapped and its port re-bound without any key or state being written; anything else
    /// starts over as a fresh vbd would.
    pub fn resume<F: FnMut(&str) -> Option<String>>(
        &mut self,
        backend: XenbusState,
        fe: XenbusState,
        mut read: F,
    ) -> Step {
        let live = matches!(fe, XenbusState::Initialised | XenbusState::Connected);
        if backend == XenbusState::Connected && live {
            self.state = XenbusState::Connected;
            return self.connect(&mut read, false);
        }
        let mut step = self.start();
        let next = self.frontend_changed(fe, read);
        step.actions.extend(next.actions);
        step.error = next.error;
        step
    }
}
