//! Trapped device-register accesses made without the global lock (issue 12).
//!
//! A domain's access to the sub-page registers of a device it holds (a virtio-mmio
//! transport, the management UART) traps, and the microvisor makes it for the domain. The
//! register access itself can take long: under QEMU a virtio queue notify runs the device's
//! emulation before the access completes (measured: 140 µs for a disk request, up to 2 ms
//! for a console one, in virtual time under `-icount`). Made under [`super::HYP`], every
//! other CPU's locked exit waited for it. So the locked pass only checks the access
//! ([`super::Hyp::device_window`]) and leaves it in its CPU's slot
//! ([`super::Hyp::device_access`]); the run loop makes it once the lock is released,
//! completes the guest's instruction, and takes the lock again to schedule.
//!
//! Why the device is still the domain's when the access is made: the exiting vCPU stays
//! loaded on this CPU until that next locked pass, a domain is freed only once no CPU
//! holds one of its vCPUs (`free_if_unloaded`), and a device is released (and reset) only
//! when its holder is freed. The access is ordered as if made just before whatever another
//! CPU did to the domain meanwhile (a pause, a destroy), as it would have been had it
//! completed a moment earlier.

use crate::arch::context::GuestRegs;
use crate::arch::phys::Registers;

/// One checked access, waiting for the lock to be released.
#[derive(Clone, Copy, Debug)]
pub struct DeviceAccess {
    /// The registers, checked.
    pub window: Registers,
    /// Bytes (1, 2, 4 or 8).
    pub width: u8,
    /// The value to write (already cut to `width`), or `None` for a read.
    pub write: Option<u64>,
    /// The guest register a read goes to (31: none).
    pub reg: u8,
    /// A read is sign-extended.
    pub sign_extend: bool,
    /// The guest register is 64 bits wide.
    pub sixty_four: bool,
    /// Length of the trapped instruction.
    pub instr_len: u8,
}

impl DeviceAccess {
    /// Makes the access (call without the global lock) and completes the guest's
    /// instruction in `regs`, those of the vCPU whose exit it was (still loaded here).
    pub fn complete(self, regs: &mut GuestRegs) {
        // The window was checked for this width, so the access cannot fail; if it did, a
        // read gives zero and a write is dropped rather than anything done elsewhere.
        let value = self.window.access(0, self.width, self.write).unwrap_or(0);
        if self.write.is_none() {
            if let Some(x) = regs.x.get_mut(usize::from(self.reg)) {
                *x =
                    super::exits::sign_extend(value, self.width, self.sign_extend, self.sixty_four);
            }
        }
        regs.pc += u64::from(self.instr_len);
    }
}
