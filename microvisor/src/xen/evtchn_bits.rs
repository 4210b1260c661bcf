//! 2-level event delivery on guest memory: the pending/mask bitmaps in shared_info and the
//! selector/upcall flags in each vcpu_info, behind the [`EventBits`] trait.
//!
//! The guest clears pending bits, selector bits and the upcall flag while the microvisor
//! sets them, so delivery is a fixed order of single atomic operations (Xen's
//! `evtchn_2l_set_pending` / `evtchn_2l_unmask`): set the port's pending bit, and only if it
//! was clear and the port is unmasked set the word's selector bit, and only if that was
//! clear set the upcall flag; only the 0→1 change of the upcall flag needs an interrupt.
//! Anything the guest has not yet consumed is found by its handler when it runs.
#![forbid(unsafe_code)]

use protocol::xen::structs::{EvtchnPort, EVTCHN_2L_NR_CHANNELS};

/// Bits per pending/mask word and per selector (`xen_ulong_t` on Arm is 64-bit).
const BITS_PER_WORD: u32 = 64;

/// One domain's 2-level event bits: its shared_info bitmaps and its vCPUs' vcpu_infos.
///
/// On the target every method is one atomic read-modify-write (or load) with full-barrier
/// ordering, because [`raise`] and [`unmask`] rely on their order against the guest's own
/// atomics. Callers pass ports below `EVTCHN_2L_NR_CHANNELS` and vCPUs the domain has; an
/// implementation still treats anything else as a no-op (`false`), never a fault, and a
/// vCPU whose vcpu_info is not registered likewise.
pub trait EventBits {
    /// Sets `evtchn_pending[port]`, returning its old value.
    fn pending_test_and_set(&mut self, port: EvtchnPort) -> bool;
    /// Reads `evtchn_pending[port]`.
    fn pending_test(&self, port: EvtchnPort) -> bool;
    /// Clears `evtchn_pending[port]`.
    fn pending_clear(&mut self, port: EvtchnPort);
    /// Reads `evtchn_mask[port]`.
    fn mask_test(&self, port: EvtchnPort) -> bool;
    /// Clears `evtchn_mask[port]`, returning its old value.
    fn mask_test_and_clear(&mut self, port: EvtchnPort) -> bool;
    /// Sets bit `word` of `vcpu`'s `evtchn_pending_sel`, returning its old value.
    fn sel_test_and_set(&mut self, vcpu: u32, word: u32) -> bool;
    /// Sets `vcpu`'s `evtchn_upcall_pending` to 1, returning whether it was already non-zero.
    fn upcall_test_and_set(&mut self, vcpu: u32) -> bool;
    /// Whether `vcpu`'s `evtchn_upcall_pending` is non-zero (for `SCHEDOP_block` and for
    /// keeping PPI 31 asserted while it is set).
    fn upcall_pending(&self, vcpu: u32) -> bool;
}

/// What [`raise`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "an upcall that is set but never injected leaves the guest waiting"]
pub struct Raised {
    /// The pending bit went from 0 to 1: wake a vCPU of this domain blocked in
    /// `SCHEDOP_poll` on this port (masked or not, as Xen's `evtchn_check_pollers`).
    pub newly_pending: bool,
    /// The upcall flag went from 0 to 1: inject the event PPI on the target vCPU.
    pub inject: bool,
}

/// Marks `port` pending and propagates it to `vcpu`'s selector and upcall flag unless it
/// is masked or already pending (Xen's 2-level `set_pending`).
pub fn raise(bits: &mut impl EventBits, port: EvtchnPort, vcpu: u32) -> Raised {
    if port as usize >= EVTCHN_2L_NR_CHANNELS || bits.pending_test_and_set(port) {
        return Raised {
            newly_pending: false,
            inject: false,
        };
    }
    // Short-circuit order matters: a masked port touches neither flag, and a selector
    // already set means the guest's handler has not run yet and will see this port.
    let inject = !bits.mask_test(port)
        && !bits.sel_test_and_set(vcpu, port / BITS_PER_WORD)
        && !bits.upcall_test_and_set(vcpu);
    Raised {
        newly_pending: true,
        inject,
    }
}

/// `EVTCHNOP_unmask` on `port`, whose notify vCPU is `vcpu`: clears the mask bit and, if
/// it was set and the port is pending, propagates as [`raise`] would have. Returns `true`
/// when the event PPI must be injected on `vcpu`.
pub fn unmask(bits: &mut impl EventBits, port: EvtchnPort, vcpu: u32) -> bool {
    if port as usize >= EVTCHN_2L_NR_CHANNELS {
        return false;
    }
    bits.mask_test_and_clear(port)
        && bits.pending_test(port)
        && !bits.sel_test_and_set(vcpu, port / BITS_PER_WORD)
        && !bits.upcall_test_and_set(vcpu)
}

#[cfg(test)]
#[path = "evtchn_bits_tests.rs"]
mod tests;
