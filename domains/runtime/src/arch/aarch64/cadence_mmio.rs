//! The Cadence UART's registers as MMIO ([`crate::cadence_uart::Regs`]).

use crate::cadence_uart::Regs;

/// Size of the register window the driver touches (up to the TX trigger register).
const WINDOW: u64 = 0x48;

/// A Cadence UART's register window mapped at `base` (identity: `DeviceMap`'s answer).
pub struct Mmio {
    base: u64,
}

impl Mmio {
    /// The window at `base` of `size` bytes; `None` if it is too small for the registers
    /// or not 4-byte aligned.
    ///
    /// # Safety
    /// `[base, base + size)` must be a Cadence UART's registers, mapped into this domain
    /// (`DeviceMap` on its Device capability), and used by nothing else.
    pub unsafe fn new(base: u64, size: u64) -> Option<Self> {
        (size >= WINDOW && base.is_multiple_of(4)).then_some(Self { base })
    }
}

impl Regs for Mmio {
    fn read(&mut self, offset: usize) -> u32 {
        debug_assert!((offset as u64) < WINDOW && offset.is_multiple_of(4));
        // SAFETY: `new`'s contract: the UART's registers are mapped at `base`; every offset
        // the driver uses is an aligned register inside the window checked there. The
        // stage-2 mapping is Device memory, which (without FWB) wins over the runtime's
        // Normal stage-1 attributes above 1 GiB, so the access is neither cached nor
        // speculated.
        unsafe { core::ptr::read_volatile((self.base + offset as u64) as *const u32) }
    }

    fn write(&mut self, offset: usize, value: u32) {
        debug_assert!((offset as u64) < WINDOW && offset.is_multiple_of(4));
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset as u64) as *mut u32, value) }
    }
}
