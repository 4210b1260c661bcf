//! The hardware side of the event-channel and grant-table cores: their traits implemented
//! with atomics on host-physical memory (shared_info, vcpu_info, grant-table frames).

use crate::arch::phys::Window;
use crate::xen::{EventBits, GrantMemory};
use core::cell::Cell;
use protocol::addr::PhysAddr;
use protocol::layout::MAX_VCPUS;
use protocol::xen::structs::{EvtchnPort, GrantEntryV1, SharedInfo, EVTCHN_2L_NR_CHANNELS};

/// One domain's event bits: its shared_info frame and registered vcpu_infos (borrowed from
/// its record: the event path builds one per operation).
pub struct DomainBits<'a> {
    /// shared_info (microvisor-owned frame).
    pub shared: Option<&'a Window>,
    /// Each vCPU's vcpu_info, if registered (or defaulted into shared_info).
    pub vcpu_info: &'a [Option<Window>; MAX_VCPUS],
}

const PENDING: u64 = core::mem::offset_of!(SharedInfo, evtchn_pending) as u64;
const MASK: u64 = core::mem::offset_of!(SharedInfo, evtchn_mask) as u64;
/// `evtchn_pending_sel` within vcpu_info.
const SEL: u64 = 8;

impl DomainBits<'_> {
    /// The shared_info window, the offset of `port`'s word in its `base` array and its bit.
    fn word(&self, base: u64, port: EvtchnPort) -> Option<(&Window, u64, u64)> {
        let shared = self.shared?;
        if port as usize >= EVTCHN_2L_NR_CHANNELS {
            return None;
        }
        Some((shared, base + u64::from(port / 64) * 8, 1 << (port % 64)))
    }

    fn info(&self, vcpu: u32) -> Option<&Window> {
        self.vcpu_info.get(vcpu as usize)?.as_ref()
    }
}

// Every access goes through the doorway's windows (bounds and alignment checked there): a
// failed access reads as "set"/"masked" or does nothing, so a vcpu_info the guest placed
// badly only loses that guest its own events.
impl EventBits for DomainBits<'_> {
    fn pending_test_and_set(&mut self, port: EvtchnPort) -> bool {
        let Some((w, off, bit)) = self.word(PENDING, port) else {
            return true;
        };
        w.fetch_or_u64(off, bit).map_or(true, |v| v & bit != 0)
    }
    fn pending_test(&self, port: EvtchnPort) -> bool {
        let Some((w, off, bit)) = self.word(PENDING, port) else {
            return false;
        };
        w.load_u64(off).is_ok_and(|v| v & bit != 0)
    }
    fn pending_clear(&mut self, port: EvtchnPort) {
        if let Some((w, off, bit)) = self.word(PENDING, port) {
            let _ = w.fetch_and_u64(off, !bit);
        }
    }
    fn mask_test(&self, port: EvtchnPort) -> bool {
        let Some((w, off, bit)) = self.word(MASK, port) else {
            return true;
        };
        w.load_u64(off).map_or(true, |v| v & bit != 0)
    }
    fn mask_test_and_clear(&mut self, port: EvtchnPort) -> bool {
        let Some((w, off, bit)) = self.word(MASK, port) else {
            return false;
        };
        w.fetch_and_u64(off, !bit).is_ok_and(|v| v & bit != 0)
    }
    fn sel_test_and_set(&mut self, vcpu: u32, word: u32) -> bool {
        let Some(info) = self.info(vcpu) else {
            return true;
        };
        let bit = 1u64 << (word % 64);
        info.fetch_or_u64(SEL, bit).map_or(true, |v| v & bit != 0)
    }
    fn upcall_test_and_set(&mut self, vcpu: u32) -> bool {
        let Some(info) = self.info(vcpu) else {
            return true;
        };
        !matches!(info.swap_u8(0, 1), Ok(0))
    }
    fn upcall_pending(&self, vcpu: u32) -> bool {
        let Some(info) = self.info(vcpu) else {
            return false;
        };
        info.load_u8(0).is_ok_and(|v| v != 0)
    }
}

/// Grant-table frames in host memory, for one hypercall (made fresh by each, under the
/// grant lock, [`super::grant_state`]).
#[derive(Default)]
pub struct HostGrants {
    /// The grant-table page opened last. One operation reads, claims and releases entries
    /// of the same page, and a batch's entries mostly share pages; opening a window is a
    /// search of the memory layout and the sealed set (about 70 instructions), four times
    /// an operation before. A window stays good while the grant lock that was held when it
    /// opened is: the layout is fixed at boot, grant frames are freed only after their
    /// table closed under that lock, and a grant frame is never sealed (only uploads are).
    last: Cell<Option<Window>>,
}

impl HostGrants {
    /// The window onto grant-table frame `frame` and the offset of entry `index` in it.
    /// `frame` is a grant-table frame the microvisor allocated for a live domain (the core
    /// only passes frames from its tables); `index` is reduced modulo the 512 entries.
    fn entry(&self, frame: PhysAddr, index: usize) -> Option<(Window, u64)> {
        let window = match self.last.get() {
            Some(w) if w.base() == frame => w,
            _ => {
                let w = Window::page(frame)?;
                self.last.set(Some(w));
                w
            }
        };
        Some((window, (index as u64 % 512) * 8))
    }
}

// A grant frame the doorway refuses would be a microvisor bug: its entries read as empty
// (no access granted) and writes to it are dropped.
impl GrantMemory for HostGrants {
    fn read_entry(&self, frame: PhysAddr, index: usize) -> GrantEntryV1 {
        let raw = self
            .entry(frame, index)
            .map_or(0, |(w, off)| w.load_u64(off).unwrap_or(0));
        GrantEntryV1 {
            flags: raw as u16,
            domid: (raw >> 16) as u16,
            frame: (raw >> 32) as u32,
        }
    }
    fn cas_flags_domid(&mut self, frame: PhysAddr, index: usize, old: u32, new: u32) -> u32 {
        // A refused frame reads as an entry that changed under us: the core gives up.
        self.entry(frame, index)
            .map_or(!old, |(w, off)| w.cas_u32(off, old, new).unwrap_or(!old))
    }
    fn clear_flags(&mut self, frame: PhysAddr, index: usize, bits: u16) {
        if let Some((w, off)) = self.entry(frame, index) {
            let _ = w.clear_u16(off, bits);
        }
    }
    fn write_entry(&mut self, frame: PhysAddr, index: usize, e: GrantEntryV1) {
        let raw = u64::from(e.flags) | (u64::from(e.domid) << 16) | (u64::from(e.frame) << 32);
        if let Some((w, off)) = self.entry(frame, index) {
            let _ = w.write_u64(off, raw);
        }
    }
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: usize) {
        // The core validated both ranges (granted or the caller's own RAM, inside a page).
        let len = len as u64;
        if let (Some(s), Some(d)) = (Window::new(src, len), Window::new(dst, len)) {
            let _ = Window::copy(&d, &s);
        }
    }
}
