//! Acknowledging a passed-through virtio-mmio device's interrupt from the IRQ handler.
//!
//! A virtio-mmio device holds its SPI (level-triggered) high until `InterruptStatus` is
//! acknowledged. The microvisor masks the physical SPI while the virtual one is in flight and
//! unmasks it when we deactivate it (our EOI), so a line still high at the EOI interrupts
//! again at once: the handler must lower it first. Doing that in the handler itself (two
//! trapped MMIO accesses) is cheaper than masking the SPI at the distributor there and
//! unmasking it from the driver after acknowledging (four trapped accesses per interrupt),
//! and the driver's wait needs nothing from the handler but the wake-up.
//!
//! Devices register here ([`register`]); the domain's handler calls [`ack`] for every INTID
//! it does not know. Touching only `InterruptStatus`/`InterruptACK`, which the driver proper
//! never uses, the handler cannot disturb an operation it interrupted.

use core::ptr::{read_volatile, write_volatile};

/// virtio-mmio register offsets (virtio 1.x, §4.2.2).
const INTERRUPT_STATUS: usize = 0x60;
const INTERRUPT_ACK: usize = 0x64;

/// Devices whose interrupts [`ack`] handles: `(intid, transport base)`.
const SLOTS: usize = 8;
static DEVICES: spin::Mutex<[(u32, usize); SLOTS]> = spin::Mutex::new([(0, 0); SLOTS]);

/// Records that SPI `intid` belongs to the virtio-mmio transport at `base`. Returns false if
/// every slot is taken (the caller then keeps the device's interrupts off and polls).
///
/// # Safety
/// `base` is a virtio-mmio transport this domain was given (`DeviceMap`) and that stays
/// mapped for the domain's life; nothing else uses its interrupt status registers.
pub(super) unsafe fn register(intid: u32, base: usize) -> bool {
    crate::arch::without_interrupts(|| {
        let mut d = DEVICES.lock();
        match d.iter_mut().find(|(i, _)| *i == 0 || *i == intid) {
            Some(slot) => {
                *slot = (intid, base);
                true
            }
            None => false,
        }
    })
}

/// Lowers the interrupt of the virtio device registered for `intid`; false if none is.
/// Call from the IRQ handler, before the interrupt is ended.
pub fn ack(intid: u32) -> bool {
    if intid == 0 {
        return false;
    }
    let base = {
        let d = DEVICES.lock();
        match d.iter().find(|(i, _)| *i == intid) {
            Some(&(_, base)) => base,
            None => return false,
        }
    };
    // SAFETY: `register`'s contract: a mapped virtio-mmio transport of ours; these two
    // registers are 32-bit, aligned, and used by nobody else (see the module doc). Each
    // access traps to the microvisor, which performs it inside our window only.
    unsafe {
        let status = read_volatile((base + INTERRUPT_STATUS) as *const u32);
        if status != 0 {
            write_volatile((base + INTERRUPT_ACK) as *mut u32, status);
        }
    }
    true
}
