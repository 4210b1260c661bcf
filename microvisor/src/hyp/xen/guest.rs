//! Guest-virtual memory of the vCPU being served, for Xen-ABI pointer arguments.

use crate::arch::{self, phys::Window};
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

    // `translate` returned `pa` inside this domain's RAM and the chunk does not cross the
    // page it validated; the doorway checks again (a refused chunk reads as zeroes and is
    // not written, which only the guest itself could have caused).
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) {
        let read = window(pa, buf.len()).and_then(|w| w.read(0, buf).ok());
        if read.is_none() {
            buf.fill(0);
        }
    }

    fn write_phys(&mut self, pa: u64, buf: &[u8]) {
        if let Some(w) = window(pa, buf.len()) {
            let _ = w.write(0, buf);
        }
    }
}

fn window(pa: u64, len: usize) -> Option<Window> {
    Window::new(protocol::addr::PhysAddr::new(pa), len as u64)
}
