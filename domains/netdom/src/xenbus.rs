//! The backend half of the vif xenbus handshake, as pure logic.
//!
//! dom0's toolstack creates `backend/vif/<domid>/<devid>/` (ours) and
//! `device/vif/<devid>/` (the frontend's) in state Initialising. This module decides what
//! netdom writes under its backend directory and when, and turns the frontend's keys into
//! ring and event-channel parameters. It returns [`Action`]s; the shell performs them in
//! order (keys relative to the backend directory).
//!
//! States (ours, driven by the frontend's):
//! * start → features published → `InitWait`.
//! * frontend `Initialised`/`Connected` while we are in InitWait → read `tx-ring-ref`,
//!   `rx-ring-ref`, `event-channel`, `request-rx-copy`, `feature-sg` → map the rings, bind
//!   the port → `Connected`. (netfront goes straight from Initialising to Connected.)
//! * frontend `Closing` → `Closing`; frontend `Closed` or gone → disconnect → `Closed`;
//!   frontend `Initialising`/`InitWait` after that → features again, `InitWait` again.
//! * frontend `Initialising`/`InitWait` while we are connected or closing (it started over
//!   without closing: a guest restarted in place, a kexec) → disconnect, features again,
//!   `InitWait`. We do not pass through `Closing`/`Closed` on the way: a fresh netfront
//!   that sees either takes it as the backend closing it, and closes for good.
//! * our own `state` found back at `Initialising` while we are past it: the toolstack
//!   wrote the vif afresh (the guest was restarted in place, its old rings and channel
//!   are dead) → [`Handshake::reincarnate`]: disconnect, start over, follow the frontend.
//! * a halted vif ([`Handshake::halt`]) → `Closing`, then the frontend's close as above.
//!
//! Offered: `feature-sg`, `feature-rx-copy` (the only receive mode; `feature-rx-flip` is 0),
//! `multi-queue-max-queues` 1. Not offered: split event channels, GSO, multicast control,
//! the control ring, IPv6 checksum offload (IPv4 partial checksums are always allowed by
//! netfront and are completed in software).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use protocol::xen::structs::{EvtchnPort, GrantRef};
use protocol::xen::xenbus::XenbusState;

/// One step for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `value` to `key` under the backend directory.
    Write {
        /// Key, relative to `backend/vif/<domid>/<devid>`.
        key: &'static str,
        /// Value.
        value: String,
    },
    /// Map the frontend's two ring pages, then call [`crate::Netback::connect`] (or
    /// [`crate::Netback::connect_failed`]).
    MapRings {
        /// Grant of the TX ring page.
        tx: GrantRef,
        /// Grant of the RX ring page.
        rx: GrantRef,
    },
    /// Bind an interdomain event channel to this port of the frontend.
    BindEvtchn {
        /// The frontend's port (`event-channel`).
        port: EvtchnPort,
    },
    /// Unbind the event channel and unmap the rings, if any.
    Disconnect,
    /// Write our `state` key.
    SetState(XenbusState),
}

/// Why a frontend's transport parameters were refused (the vif goes to Closing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// a required frontend key is missing
    Missing(String),
    /// a frontend key does not hold a valid number
    BadNumber(String),
    /// the frontend wants page flipping (`request-rx-copy` is not 1)
    NoRxCopy,
    /// the frontend asked for several queues (we offer one)
    Queues(u32),
    /// the frontend uses split event channels (not offered)
    SplitEvtchn,
}

impl core::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing(k) => write!(f, "frontend key {k} is missing"),
            Self::BadNumber(k) => write!(f, "frontend key {k} is not a number"),
            Self::NoRxCopy => write!(f, "frontend does not use the copying receive path"),
            Self::Queues(q) => write!(f, "frontend asked for {q} queues; one is offered"),
            Self::SplitEvtchn => write!(f, "frontend uses split event channels (not offered)"),
        }
    }
}

/// What one call decided: the actions, and the frontend's fault to log (once) if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// The frontend's fault that led to these actions, if any.
    pub error: Option<HandshakeError>,
}

/// The frontend's transport parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendRings {
    /// TX ring grant.
    pub tx: GrantRef,
    /// RX ring grant.
    pub rx: GrantRef,
    /// The frontend's event channel.
    pub port: EvtchnPort,
    /// The frontend takes frames split over several RX slots (`feature-sg`).
    pub sg: bool,
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

/// Reads the frontend's transport parameters; `read(key)` returns `device/vif/<devid>/<key>`.
pub fn read_frontend<F: FnMut(&str) -> Option<String>>(
    read: &mut F,
) -> Result<FrontendRings, HandshakeError> {
    if let Some(q) = number(read, "multi-queue-num-queues")? {
        if q != 1 {
            return Err(HandshakeError::Queues(q));
        }
    }
    if read("event-channel-tx").is_some() || read("event-channel-rx").is_some() {
        return Err(HandshakeError::SplitEvtchn);
    }
    if number(read, "request-rx-copy")? != Some(1) {
        return Err(HandshakeError::NoRxCopy);
    }
    let tx = required(read, "tx-ring-ref")?;
    let rx = required(read, "rx-ring-ref")?;
    let port = required(read, "event-channel")?;
    let sg = number(read, "feature-sg")?.unwrap_or(0) != 0;
    Ok(FrontendRings { tx, rx, port, sg })
}

/// The backend's xenbus state machine for one vif.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    state: XenbusState,
    connected: bool,
    sg: bool,
}

fn write(key: &'static str, value: impl ToString) -> Action {
    Action::Write {
        key,
        value: value.to_string(),
    }
}

impl Default for Handshake {
    fn default() -> Self {
        Self::new()
    }
}

impl Handshake {
    /// A handshake that has not started (state Initialising).
    pub fn new() -> Self {
        Self {
            state: XenbusState::Initialising,
            connected: false,
            sg: false,
        }
    }

    /// Our current state.
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Whether rings are (to be) mapped.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Whether the frontend accepts multi-slot frames (`feature-sg`), once connected.
    pub fn sg(&self) -> bool {
        self.sg
    }

    fn set(&mut self, s: XenbusState, actions: &mut Vec<Action>) {
        self.state = s;
        actions.push(Action::SetState(s));
    }

    /// Publishes the features and enters InitWait.
    pub fn start(&mut self) -> Step {
        let mut step = Step::default();
        self.offer(&mut step.actions);
        step
    }

    /// Features, then InitWait. Written again on every new offer: the toolstack may have
    /// rewritten our directory without them, and netfront reads them when it connects.
    fn offer(&mut self, a: &mut Vec<Action>) {
        a.extend([
            write("feature-sg", 1),
            write("feature-rx-copy", 1),
            write("feature-rx-flip", 0),
            write("multi-queue-max-queues", 1),
        ]);
        self.set(XenbusState::InitWait, a);
    }

    /// Drops the connection, if any.
    fn drop_connection(&mut self, a: &mut Vec<Action>) {
        if self.connected {
            self.connected = false;
            self.sg = false;
            a.push(Action::Disconnect);
        }
    }

    /// Whether our `state` key reading `found` means the toolstack wrote this vif afresh:
    /// it reads `Initialising` (only the toolstack writes that) while we are past it.
    pub fn rewritten(&self, found: XenbusState) -> bool {
        found == XenbusState::Initialising && self.state != XenbusState::Initialising
    }

    /// The toolstack wrote this vif afresh ([`Handshake::rewritten`]): the frontend is a
    /// new instance and the old rings and channel are dead. Disconnects, publishes the
    /// features and InitWait again, then follows the frontend's current state `fe`.
    pub fn reincarnate<F: FnMut(&str) -> Option<String>>(
        &mut self,
        fe: XenbusState,
        read: F,
    ) -> Step {
        let mut step = Step::default();
        self.drop_connection(&mut step.actions);
        self.offer(&mut step.actions);
        let next = self.frontend_changed(fe, read);
        step.actions.extend(next.actions);
        step.error = next.error;
        step
    }

    fn connect<F: FnMut(&str) -> Option<String>>(&mut self, read: &mut F, announce: bool) -> Step {
        let mut step = Step::default();
        let rings = match read_frontend(read) {
            Ok(r) => r,
            Err(e) => {
                step.error = Some(e);
                self.set(XenbusState::Closing, &mut step.actions);
                return step;
            }
        };
        self.sg = rings.sg;
        let a = &mut step.actions;
        a.push(Action::MapRings {
            tx: rings.tx,
            rx: rings.rx,
        });
        a.push(Action::BindEvtchn { port: rings.port });
        self.connected = true;
        if announce {
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
                // Waiting already, or not started (the shell starts every vif first).
                if self.state != XenbusState::InitWait && self.state != XenbusState::Initialising {
                    self.drop_connection(a);
                    self.offer(a);
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
                self.drop_connection(a);
                if self.state != XenbusState::Closed {
                    self.set(XenbusState::Closed, a);
                }
            }
            XenbusState::Reconfiguring | XenbusState::Reconfigured => {}
        }
        step
    }

    /// The vif was halted, or its rings could not be mapped: ask the frontend to close.
    pub fn halt(&mut self) -> Step {
        let mut step = Step::default();
        if self.state != XenbusState::Closing && self.state != XenbusState::Closed {
            self.set(XenbusState::Closing, &mut step.actions);
        }
        step
    }

    /// Restart in place: a new netdom instance finds our `state` already `backend` in
    /// xenstore. A connected vif whose frontend is still connected gets its rings re-mapped
    /// and its port re-bound without any key or state written; anything else starts over.
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
