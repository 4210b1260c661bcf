//! The hardware side of the event-channel and grant-table cores: their traits implemented
//! with atomics on host-physical memory (shared_info, vcpu_info, grant-table frames).

use crate::arch::mem;
use crate::xen::{EventBits, GrantMemory};
use protocol::addr::PhysAddr;
use protocol::layout::MAX_VCPUS;
use protocol::xen::structs::{EvtchnPort, GrantEntryV1, SharedInfo, EVTCHN_2L_NR_CHANNELS};

/// One domain's event bits: its shared_info frame and registered vcpu_infos.
pub struct DomainBits {
    /// shared_info (microvisor-owned frame).
    pub shared: Option<PhysAddr>,
    /// Each vCPU's vcpu_info, if registered (or defaulted into shared_info).
    pub vcpu_info: [Option<PhysAddr>; MAX_VCPUS],
}

const PENDING: u64 = core::mem::offset_of!(SharedInfo, evtchn_pending) as u64;
const MASK: u64 = core::mem::offset_of!(SharedInfo, evtchn_mask) as u64;
/// `evtchn_pending_sel` within vcpu_info.
const SEL: u64 = 8;

impl DomainBits {
    fn word(&self, base: u64, port: EvtchnPort) -> Option<(u64, u64)> {
        let shared = self.shared?;
        if port as usize >= EVTCHN_2L_NR_CHANNELS {
            return None;
        }
        Some((
            shared.as_u64() + base + u64::from(port / 64) * 8,
            1 << (port % 64),
        ))
    }

    fn info(&self, vcpu: u32) -> Option<u64> {
        self.vcpu_info
            .get(vcpu as usize)
            .copied()
            .flatten()
            .map(|p| p.as_u64())
    }
}

// SAFETY (for every block below): addresses come from `word`/`info`, i.e. inside the
// domain's shared_info frame (a microvisor frame it owns until freed) or a vcpu_info the
// domain registered inside its own RAM (checked at registration, 8-byte aligned fields of a
// 64-byte-aligned-or-not struct: `sel` is at offset 8 of a struct Linux aligns to 64).
impl EventBits for DomainBits {
    fn pending_test_and_set(&mut self, port: EvtchnPort) -> bool {
        let Some((a, bit)) = self.word(PENDING, port) else {
            return true;
        };
        // SAFETY: see above.
        unsafe { mem::atomic_or_u64(a, bit) & bit != 0 }
    }
    fn pending_test(&self, port: EvtchnPort) -> bool {
        let Some((a, bit)) = self.word(PENDING, port) else {
            return false;
        };
        // SAFETY: see above.
        unsafe { mem::atomic_load_u64(a) & bit != 0 }
    }
    fn pending_clear(&mut self, port: EvtchnPort) {
        if let Some((a, bit)) = self.word(PENDING, port) {
            // SAFETY: see above.
            unsafe { mem::atomic_and_u64(a, !bit) };
        }
    }
    fn mask_test(&self, port: EvtchnPort) -> bool {
        let Some((a, bit)) = self.word(MASK, port) else {
            return true;
        };
        // SAFETY: see above.
        unsafe { mem::atomic_load_u64(a) & bit != 0 }
    }
    fn mask_test_and_clear(&mut self, port: EvtchnPort) -> bool {
        let Some((a, bit)) = self.word(MASK, port) else {
            return false;
        };
        // SAFETY: see above.
        unsafe { mem::atomic_and_u64(a, !bit) & bit != 0 }
    }
    fn sel_test_and_set(&mut self, vcpu: u32, word: u32) -> bool {
        let Some(info) = self.info(vcpu) else {
            return true;
        };
        let bit = 1u64 << (word % 64);
        if info % 8 != 0 {
            return true;
        }
        // SAFETY: see above (alignment checked).
        unsafe { mem::atomic_or_u64(info + SEL, bit) & bit != 0 }
    }
    fn upcall_test_and_set(&mut self, vcpu: u32) -> bool {
        let Some(info) = self.info(vcpu) else {
            return true;
        };
        // SAFETY: see above.
        unsafe { mem::atomic_swap_u8(info, 1) != 0 }
    }
    fn upcall_pending(&self, vcpu: u32) -> bool {
        let Some(info) = self.info(vcpu) else {
            return false;
        };
        // SAFETY: see above.
        unsafe { mem::atomic_load_u8(info) != 0 }
    }
}

/// Grant-table frames in host memory.
pub struct HostGrants;

fn entry_pa(frame: PhysAddr, index: usize) -> u64 {
    frame.as_u64() + (index as u64 % 512) * 8
}

// SAFETY (for every block below): `frame` is a grant-table frame the microvisor allocated
// for a live domain (the core only passes frames from its tables) and `index` addresses an
// 8-byte entry inside it (reduced modulo the 512 entries of a frame).
impl GrantMemory for HostGrants {
    fn read_entry(&self, frame: PhysAddr, index: usize) -> GrantEntryV1 {
        // SAFETY: see above.
        let raw = unsafe { mem::atomic_load_u64(entry_pa(frame, index)) };
        GrantEntryV1 {
            flags: raw as u16,
            domid: (raw >> 16) as u16,
            frame: (raw >> 32) as u32,
        }
    }
    fn cas_flags_domid(&mut self, frame: PhysAddr, index: usize, old: u32, new: u32) -> u32 {
        // SAFETY: see above.
        unsafe { mem::atomic_cas_u32(entry_pa(frame, index), old, new) }
    }
    fn clear_flags(&mut self, frame: PhysAddr, index: usize, bits: u16) {
        // SAFETY: see above.
        unsafe { mem::atomic_clear_u16(entry_pa(frame, index), bits) }
    }
    fn write_entry(&mut self, frame: PhysAddr, index: usize, e: GrantEntryV1) {
        let raw = u64::from(e.flags) | (u64::from(e.domid) << 16) | (u64::from(e.frame) << 32);
        // SAFETY: see above; an 8-byte aligned plain store of the whole entry.
        unsafe { mem::write_u64(entry_pa(frame, index), raw) }
    }
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: usize) {
        // SAFETY: the core validated both pages (granted or the caller's own RAM) and that
        // offset + len stays inside each.
        unsafe { mem::move_bytes(src.as_u64(), dst.as_u64(), len) }
    }
}
