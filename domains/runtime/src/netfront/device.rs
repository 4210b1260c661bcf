//! The frontend half of the vif handshake (as Linux's xen-netfront does it): read what the
//! toolstack wrote in `device/vif/<devid>/`, allocate and grant the rings and buffers,
//! offer an unbound event channel, publish them and wait for the backend to connect.
//!
//! Notifications from the backend are not taken as interrupts: the owner polls
//! ([`Netfront::poll`]) from a thread of its choosing, which keeps the real-time threads'
//! interrupt path free of network work.

use super::{Buffer, NetCore, SendError};
use crate::frontend::{self, Granted};
use crate::xen::{self, MappedPage, XenError};
use crate::xenstore::{XsClient, XsError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use protocol::xen::ring_io::RingError;
use protocol::xen::xenbus::XenbusState;

/// Why the vif did not connect.
#[derive(Debug)]
pub enum NetfrontError {
    /// The toolstack gave us no such vif.
    NoVif,
    /// A node the toolstack should have written is missing or malformed.
    BadNode(String),
    /// The backend did not reach `state` in time.
    Timeout {
        /// The state the backend was last seen in.
        state: u32,
    },
    /// A xenstore request failed.
    Xenstore(XsError),
    /// A hypercall failed.
    Xen(XenError),
    /// The backend corrupted a ring.
    Ring(RingError),
}

impl fmt::Display for NetfrontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVif => write!(f, "no vif given to this domain"),
            Self::BadNode(p) => write!(f, "xenstore node {p} is missing or malformed"),
            Self::Timeout { state } => write!(f, "backend did not connect (state {state})"),
            Self::Xenstore(e) => write!(f, "xenstore: {e:?}"),
            Self::Xen(e) => write!(f, "hypercall: {e}"),
            Self::Ring(e) => write!(f, "ring: {e}"),
        }
    }
}

impl From<XsError> for NetfrontError {
    fn from(e: XsError) -> Self {
        Self::Xenstore(e)
    }
}

impl From<XenError> for NetfrontError {
    fn from(e: XenError) -> Self {
        Self::Xen(e)
    }
}

/// A connected vif.
pub struct Netfront {
    core: NetCore<MappedPage>,
    port: u32,
    /// The MAC address the toolstack gave this vif.
    pub mac: [u8; 6],
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn backend_state(xs: &mut XsClient, backend: &str) -> Result<u32, NetfrontError> {
    Ok(xs
        .read_str(&format!("{backend}/state"))?
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0))
}

/// Waits (calling `wait` between looks, at most `tries` times) for the backend to reach at
/// least `want`.
fn await_backend(
    xs: &mut XsClient,
    backend: &str,
    want: XenbusState,
    tries: u32,
    wait: &mut impl FnMut(),
) -> Result<(), NetfrontError> {
    let mut state = 0;
    for _ in 0..tries {
        state = backend_state(xs, backend)?;
        if state >= want as u32 && state <= XenbusState::Connected as u32 {
            return Ok(());
        }
        wait();
    }
    Err(NetfrontError::Timeout { state })
}

fn granted_pages(
    backend: u16,
    n: usize,
    readonly: bool,
) -> Result<Vec<Buffer<MappedPage>>, XenError> {
    (0..n)
        .map(|_| {
            let Granted { gref, addr } =
                frontend::grant(backend, frontend::alloc_page(), readonly)?;
            Ok(Buffer {
                page: MappedPage::new(addr),
                gref,
            })
        })
        .collect()
}

impl Netfront {
    /// Connects vif `devid` with `tx_bufs`/`rx_bufs` one-page buffers, calling `wait`
    /// (e.g. a 10 ms sleep) between looks at the backend, at most `tries` times per step.
    pub fn connect(
        xs: &mut XsClient,
        devid: u32,
        tx_bufs: usize,
        rx_bufs: usize,
        tries: u32,
        mut wait: impl FnMut(),
    ) -> Result<Self, NetfrontError> {
        let dir = format!("device/vif/{devid}");
        let node = |xs: &mut XsClient, key: &str| -> Result<String, NetfrontError> {
            let path = format!("{dir}/{key}");
            xs.read_str(&path)?.ok_or(NetfrontError::BadNode(path))
        };
        let backend_id = match xs.read_str(&format!("{dir}/backend-id"))? {
            None => return Err(NetfrontError::NoVif),
            Some(s) => s
                .trim()
                .parse::<u16>()
                .map_err(|_| NetfrontError::BadNode(format!("{dir}/backend-id")))?,
        };
        let backend = node(xs, "backend")?;
        let mac_text = node(xs, "mac")?;
        let mac = parse_mac(&mac_text).ok_or(NetfrontError::BadNode(format!("{dir}/mac")))?;
        await_backend(xs, &backend, XenbusState::InitWait, tries, &mut wait)?;

        let ring = |readonly: bool| -> Result<Granted, XenError> {
            frontend::grant(backend_id, frontend::alloc_page(), readonly)
        };
        let (tx_ring, rx_ring) = (ring(false)?, ring(false)?);
        let core = NetCore::new(
            MappedPage::new(tx_ring.addr),
            MappedPage::new(rx_ring.addr),
            granted_pages(backend_id, tx_bufs, true)?,
            granted_pages(backend_id, rx_bufs, false)?,
        );
        let port = frontend::evtchn_alloc_unbound(backend_id)?;
        for (key, value) in [
            ("tx-ring-ref", format!("{}", tx_ring.gref)),
            ("rx-ring-ref", format!("{}", rx_ring.gref)),
            ("event-channel", format!("{port}")),
            ("request-rx-copy", String::from("1")),
            ("feature-rx-notify", String::from("1")),
            // We check every checksum: the backend must complete partial ones for us.
            ("feature-no-csum-offload", String::from("1")),
            ("feature-sg", String::from("0")),
            ("state", format!("{}", XenbusState::Connected as u32)),
        ] {
            xs.write(&format!("{dir}/{key}"), value.as_bytes())?;
        }
        await_backend(xs, &backend, XenbusState::Connected, tries, &mut wait)?;
        Ok(Self { core, port, mac })
    }

    fn kick(&self, notify: bool) -> Result<(), NetfrontError> {
        if notify {
            xen::evtchn_send(self.port)?;
        }
        Ok(())
    }

    /// Sends one complete frame (checksums filled in). `Busy` when every TX buffer is
    /// still with the backend: poll and retry.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        let notify = self.core.send(frame)?;
        // A failed notify only delays the frame until the backend's next look.
        let _ = self.kick(notify);
        Ok(())
    }

    /// Reclaims sent buffers and collects received frames.
    pub fn poll(&mut self) -> Result<(), NetfrontError> {
        self.core.reap_tx().map_err(NetfrontError::Ring)?;
        let notify = self.core.poll_rx().map_err(NetfrontError::Ring)?;
        self.kick(notify)
    }

    /// The oldest received frame.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.core.recv()
    }

    /// Whether a frame can be sent now.
    pub fn can_send(&self) -> bool {
        self.core.can_send()
    }

    /// What the frontend has seen.
    pub fn counters(&self) -> super::NetCounters {
        self.core.counters
    }
}
