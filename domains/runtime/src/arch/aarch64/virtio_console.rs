//! A virtio console (port 0) whose transmit never waits for the host: a write is queued
//! and the call returns; the buffer is reclaimed by a later call once the device used it.
//! `virtio-drivers`' own console waits for every buffer, so a host client that stops
//! reading would hold dom0 in its management port (security review F10). Receive is the
//! usual single buffer kept posted.

use super::virtio::{DeviceError, RuntimeHal};
use alloc::boxed::Box;
use core::ptr::NonNull;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{InterruptStatus, Transport};

/// Queue indexes of port 0.
const RECEIVEQ: u16 = 0;
const TRANSMITQ: u16 = 1;
/// Descriptors per queue: one buffer in flight each way.
const QUEUE_SIZE: usize = 2;
/// Most bytes one transmit carries.
pub const TX_BYTES: usize = 4096;
/// Bytes one receive can take: a whole management frame, so a file upload (`ctl create`)
/// costs one interrupt per frame rather than one per page.
pub const RX_BYTES: usize = 16 * 1024;

bitflags::bitflags! {
    /// The feature bits we accept (none of the console's own: no size, no multiport).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        /// `VIRTIO_F_VERSION_1`: a modern device must be accepted as one.
        const VERSION_1 = 1 << 32;
    }
}

/// The console.
pub struct Console {
    transport: MmioTransport<'static>,
    rxq: VirtQueue<RuntimeHal, QUEUE_SIZE>,
    txq: VirtQueue<RuntimeHal, QUEUE_SIZE>,
    rx_buf: Box<[u8; RX_BYTES]>,
    rx_token: Option<u16>,
    rx_len: usize,
    rx_at: usize,
    tx_buf: Box<[u8; TX_BYTES]>,
    /// The transmit the device has not used yet: its token and length.
    tx_inflight: Option<(u16, usize)>,
}

impl Console {
    /// Opens the virtio console whose transport `DeviceMap` mapped at `base` (`size` bytes).
    pub fn open(base: u64, size: u64) -> Result<Self, DeviceError> {
        let header =
            NonNull::new(base as usize as *mut VirtIOHeader).ok_or(DeviceError::Transport)?;
        // SAFETY: `DeviceMap` gave us this transport (mapped, or trapped and performed in
        // our window only); nothing else in this domain touches it.
        let mut transport = unsafe { MmioTransport::new(header, size as usize) }
            .map_err(|_| DeviceError::Transport)?;
        // Nothing console-specific is negotiated: port 0 only, no size reports.
        let _ = transport.begin_init(Features::VERSION_1);
        let rxq = VirtQueue::new(&mut transport, RECEIVEQ, false, false)
            .map_err(|_| DeviceError::Device)?;
        let txq = VirtQueue::new(&mut transport, TRANSMITQ, false, false)
            .map_err(|_| DeviceError::Device)?;
        transport.finish_init();
        let mut c = Self {
            transport,
            rxq,
            txq,
            rx_buf: Box::new([0; RX_BYTES]),
            rx_token: None,
            rx_len: 0,
            rx_at: 0,
            tx_buf: Box::new([0; TX_BYTES]),
            tx_inflight: None,
        };
        c.post_receive();
        Ok(c)
    }

    /// Keeps the receive buffer with the device once its bytes are consumed.
    fn post_receive(&mut self) {
        if self.rx_token.is_some() || self.rx_at < self.rx_len {
            return;
        }
        // SAFETY: `rx_buf` lives as long as the queue, and nothing touches it until
        // `pop_used` returns it (`rx_token` guards every access below).
        let token = unsafe { self.rxq.add(&[], &mut [self.rx_buf.as_mut_slice()]) };
        if let Ok(t) = token {
            self.rx_token = Some(t);
            if self.rxq.should_notify() {
                self.transport.notify(RECEIVEQ);
            }
        }
    }

    fn finish_receive(&mut self) {
        let Some(t) = self.rx_token else { return };
        if self.rxq.peek_used() != Some(t) {
            return;
        }
        // SAFETY: the same buffer `post_receive` added with this token.
        let used = unsafe { self.rxq.pop_used(t, &[], &mut [self.rx_buf.as_mut_slice()]) };
        self.rx_token = None;
        self.rx_at = 0;
        self.rx_len = used.map_or(0, |n| (n as usize).min(RX_BYTES));
    }

    /// The next received byte, if any (never waits).
    pub fn read_byte(&mut self) -> Option<u8> {
        self.finish_receive();
        if self.rx_at == self.rx_len {
            self.post_receive();
            return None;
        }
        let b = self.rx_buf[self.rx_at];
        self.rx_at += 1;
        self.post_receive();
        Some(b)
    }

    /// Reclaims the in-flight transmit if the device used it; true when none is left.
    fn reclaim(&mut self) -> bool {
        let Some((t, n)) = self.tx_inflight else {
            return true;
        };
        if self.txq.peek_used() != Some(t) {
            return false;
        }
        // SAFETY: the same buffer (and length) `try_write` added with this token.
        let _ = unsafe { self.txq.pop_used(t, &[&self.tx_buf[..n]], &mut []) };
        self.tx_inflight = None;
        true
    }

    /// Queues up to [`TX_BYTES`] of `bytes` for the host and returns how many it took: 0
    /// while the previous transmit is still with the device (the host is not reading).
    pub fn try_write(&mut self, bytes: &[u8]) -> usize {
        if bytes.is_empty() || !self.reclaim() {
            return 0;
        }
        let n = bytes.len().min(TX_BYTES);
        self.tx_buf[..n].copy_from_slice(&bytes[..n]);
        // SAFETY: `tx_buf` lives as long as the queue and is not written again until
        // `reclaim` has popped this token.
        let token = unsafe { self.txq.add(&[&self.tx_buf[..n]], &mut []) };
        let Ok(t) = token else { return 0 };
        self.tx_inflight = Some((t, n));
        if self.txq.should_notify() {
            self.transport.notify(TRANSMITQ);
        }
        n
    }

    /// Acknowledges the device's interrupt; true if it had raised one for a queue.
    pub fn ack_interrupt(&mut self) -> bool {
        let status = self.transport.ack_interrupt();
        self.finish_receive();
        self.reclaim();
        status.contains(InterruptStatus::QUEUE_INTERRUPT)
    }
}
