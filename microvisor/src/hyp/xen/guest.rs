//! Guest-virtual memory of the vCPU being served, for Xen-ABI pointer arguments.

use crate::arch::{self, mem};
use crate::guestcopy::GuestMemory;
use crate::hyp::domain::Domain;

/// The memory of the domain whose vCPU trapped on this CPU. Valid only while handling that
/// exit: translation uses the EL1 context loaded in the hardware.
pub struct Loaded<'a>(pub &'a Domain);

impl GuestMemory for Loaded<'_> {
    fn translate(&mut self, va: u64, write: bool) -> Option<u64> {
        let ipa = arch::translate_guest_va(va, write)?;
        self.0.own_page(ipa).map(|pa| pa.as_u64())
    }

    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) {
        // SAFETY: `translate` returned `pa` inside this domain's RAM, and the chunk does not
        // cross the page `translate` validated.
        unsafe { mem::copy_from(pa, buf) };
    }

    fn write_phys(&mut self, pa: u64, buf: &[u8]) {
        // SAFETY: as in `read_phys`.
        unsafe { mem::copy_to(pa, buf) };
    }
}
