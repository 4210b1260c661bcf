//! [`Block`]'s requests that run alone (the serial, flushes, discards): queued after every
//! transfer in flight and waited for before returning.

use super::wire::{DiscardRange, Header, QUEUE, S_OK, S_PENDING, T_DISCARD, T_FLUSH, T_GET_ID};
use super::{Block, DeviceError};
use alloc::vec::Vec;
use virtio_drivers::transport::Transport;
use zerocopy::IntoBytes;

impl Block {
    /// The device's serial (`VIRTIO_BLK_T_GET_ID`), as the host named it.
    pub fn serial(&mut self) -> Result<alloc::string::String, DeviceError> {
        let mut id = [0u8; 20];
        let header = Header {
            kind: T_GET_ID,
            ..Header::default()
        };
        self.request_sync(header, &[], Some(&mut id))?;
        let n = id.iter().position(|&b| b == 0).unwrap_or(id.len());
        Ok(alloc::string::String::from_utf8_lossy(&id[..n]).into())
    }

    /// Sends one request alone (after every transfer in flight) and waits for it: the
    /// header, `input` (if not empty) for the device to read, `output` (if any) for it to
    /// fill, and the status.
    fn request_sync(
        &mut self,
        header: Header,
        input: &[u8],
        output: Option<&mut [u8]>,
    ) -> Result<(), DeviceError> {
        self.wait_all();
        // Slot 0's status byte: free, since nothing is in flight.
        let status_ptr = self.statuses.as_ptr();
        // SAFETY: slot 0's status byte, used by no transfer (none in flight) and
        // referenced only by this slice until the request is popped.
        let status = unsafe {
            status_ptr.write(S_PENDING);
            core::slice::from_raw_parts_mut(status_ptr, 1)
        };
        let mut inputs: Vec<&[u8]> = alloc::vec![header.as_bytes()];
        if !input.is_empty() {
            inputs.push(input);
        }
        let mut outputs: Vec<&mut [u8]> = Vec::with_capacity(2);
        if let Some(o) = output {
            outputs.push(o);
        }
        outputs.push(status);
        // SAFETY: the buffers are ours (stack and caller's memory, which our stage 1 maps
        // 1:1 into RAM the HAL translates) and stay untouched until `pop_used` below,
        // which this function waits for before returning.
        let token =
            unsafe { self.queue.add(&inputs, &mut outputs) }.map_err(|_| DeviceError::Device)?;
        if self.queue.should_notify() {
            self.transport.notify(QUEUE);
        }
        loop {
            match self.next_used() {
                Some(t) if t == token => break,
                // Nothing else is in flight (waited for above).
                Some(t) => panic!("virtio-blk completed unknown token {t}"),
                None => continue,
            }
        }
        // SAFETY: the same buffers as queued; the device is done with them.
        unsafe { self.queue.pop_used(token, &inputs, &mut outputs) }
            .map_err(|_| DeviceError::Device)?;
        // SAFETY: the device wrote it before the used entry was published; read through
        // the pointer since the slice stays borrowed by the queue's signature.
        if unsafe { status_ptr.read_volatile() } == S_OK {
            Ok(())
        } else {
            Err(DeviceError::Device)
        }
    }

    /// Makes completed writes durable (a no-op if the device has no write cache).
    pub fn flush(&mut self) -> Result<(), DeviceError> {
        if !self.has_flush() {
            self.wait_all();
            return Ok(());
        }
        let header = Header {
            kind: T_FLUSH,
            ..Header::default()
        };
        self.request_sync(header, &[], None)
    }

    /// Discards `count` sectors from `sector` (`VIRTIO_BLK_T_DISCARD`), in as many requests
    /// as the device's limit needs, after every transfer in flight.
    pub fn discard(&mut self, sector: u64, count: u64) -> Result<(), DeviceError> {
        let limits = self.discard.ok_or(DeviceError::Device)?;
        let (mut sector, mut left) = (sector, count);
        while left > 0 {
            let n = left.min(u64::from(limits.max_sectors));
            let range = DiscardRange {
                sector,
                num_sectors: n as u32,
                flags: 0,
            };
            let header = Header {
                kind: T_DISCARD,
                ..Header::default()
            };
            self.request_sync(header, range.as_bytes(), None)?;
            sector += n;
            left -= n;
        }
        Ok(())
    }
}
