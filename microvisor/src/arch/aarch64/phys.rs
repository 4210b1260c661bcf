//! The doorway to physical memory and device registers for everything outside `arch/`
//! (DESIGN §2): typed windows, checked when opened, so `hyp/` needs no `unsafe`.
//!
//! - [`Window`]: a range of RAM that is neither private to the microvisor (image, boot
//!   device tree, frame bitmap, heap, boot modules — memory Rust references point into) nor
//!   a sealed module ([`crate::mm::reach`] holds the rules). Guest RAM, shared_info and
//!   grant frames, translation tables and uploads are reached this way. Every access is
//!   bounds-checked against the window.
//! - [`Registers`]: device registers, which must lie outside RAM, so forwarding a
//!   guest's trapped MMIO access can never become a RAM access.
//! - Module bytes ([`module_bytes`], [`copy_module`]): boot modules and sealed uploads read
//!   as byte slices; no window can be opened onto them while they are readable.
//!
//! # Releasing a sealed upload
//!
//! A sealed upload's frames go back to the allocator in the end, so a slice of it is good
//! only until its seal is lifted. [`Sealed`] is the one owner of a seal (neither `Clone`
//! nor `Copy`), and [`Sealed::release`] consumes it. What keeps a slice from outliving it:
//! - Copies made outside the lock go through [`copy_module`], which keeps its slice inside
//!   the call and counts itself in progress while it holds it; a release lifts the seal,
//!   then waits until no copy is in progress on any CPU. A copy that started before the
//!   seal went finishes first; one that starts after finds the range unsealed and is
//!   refused (a bug report, not a read of freed memory). On top of that, `hyp::bulk`
//!   releases a seal only after every copy its own CPU queued, so the refusal does not
//!   happen there.
//! - The seal lives in the upload table (`crate::uploads`) and leaves it only when the
//!   table removes an upload nobody keeps, so the locked pass (`Hyp::module`) can no
//!   longer find it: no slice of it can be taken after that.
//! - Not carried by a type: [`module_bytes`]'s slices are `'static`, so that a slice taken
//!   by a locked pass is not kept past that pass is a rule of its callers (`Hyp::module`
//!   and the build it feeds), not something the compiler checks. Borrowing them from an
//!   owned module handle instead would close this, at the price of reshaping the build.
//!
//! The layout is fixed once by [`crate::arch::aarch64::bringup`] before the first window.

use super::mem;
use crate::mm::reach::{Layout, SealedSet};
use core::sync::atomic::{fence, AtomicUsize, Ordering};
use protocol::addr::{PhysAddr, PAGE_SIZE};

static LAYOUT: spin::Once<Layout> = spin::Once::new();
static SEALED: SealedSet = SealedSet::new();
/// [`copy_module`] calls in progress on any CPU (see [`Sealed::release`]).
static COPIES: AtomicUsize = AtomicUsize::new(0);

/// Fixes what windows may reach. Only the boot sequence calls it, once, with every range
/// that Rust references point into marked private.
pub(super) fn set_layout(mut layout: Layout) {
    layout.finish();
    LAYOUT.call_once(|| layout);
}

fn layout() -> Option<&'static Layout> {
    LAYOUT.get()
}

/// An access fell outside its window (or was misaligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfWindow;

/// A checked range of RAM the microvisor or a domain owns (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    base: u64,
    len: u64,
}

impl Window {
    /// Opens `[base, base + len)`: `None` unless it is reachable RAM.
    #[inline]
    pub fn new(base: PhysAddr, len: u64) -> Option<Self> {
        let (b, l) = (base.as_u64(), len);
        (layout()?.memory_ok(b, l) && !SEALED.overlaps(b, l)).then_some(Self { base: b, len: l })
    }

    /// Opens the page at `base` (page-aligned).
    pub fn page(base: PhysAddr) -> Option<Self> {
        if !base.as_u64().is_multiple_of(PAGE_SIZE) {
            return None;
        }
        Self::new(base, PAGE_SIZE)
    }

    /// Its first byte.
    pub fn base(&self) -> PhysAddr {
        PhysAddr::new(self.base)
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty (never: windows are opened non-empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of `[off, off + len)` inside the window, aligned to `align`.
    #[inline]
    fn at(&self, off: u64, len: u64, align: u64) -> Result<u64, OutOfWindow> {
        let end = off.checked_add(len).ok_or(OutOfWindow)?;
        let pa = self.base + off;
        if end > self.len || !pa.is_multiple_of(align) {
            return Err(OutOfWindow);
        }
        Ok(pa)
    }

    /// The part `[off, off + len)` of this window.
    pub fn sub(&self, off: u64, len: u64) -> Option<Window> {
        let pa = self.at(off, len, 1).ok()?;
        (len > 0).then_some(Window { base: pa, len })
    }

    /// Copies `buf.len()` bytes at `off` out (one copy: what the caller validates afterwards
    /// is what it uses, whatever a guest writes meanwhile).
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutOfWindow> {
        let pa = self.at(off, buf.len() as u64, 1)?;
        // SAFETY: `pa..pa + buf.len()` is reachable RAM (checked at open, bounds above): not
        // memory any Rust reference covers, so it cannot overlap `buf`.
        unsafe { mem::copy_from(pa, buf) };
        Ok(())
    }

    /// Copies `buf` in at `off`.
    pub fn write(&self, off: u64, buf: &[u8]) -> Result<(), OutOfWindow> {
        let pa = self.at(off, buf.len() as u64, 1)?;
        // SAFETY: as in `read`.
        unsafe { mem::copy_to(pa, buf) };
        Ok(())
    }

    /// Zeroes the whole window.
    pub fn zero(&self) {
        // SAFETY: the window is reachable RAM no reference covers (checked at open).
        unsafe { mem::zero(self.base, self.len) };
    }

    /// Zeroes the whole window and cleans it to the point of coherency
    /// ([`mem::zero_to_poc`]).
    pub fn zero_to_poc(&self) {
        // SAFETY: as for `zero`.
        unsafe { mem::zero_to_poc(self.base, self.len) };
    }

    /// Reads the aligned 64-bit word at `off` (translation-table entries).
    #[inline]
    pub fn read_u64(&self, off: u64) -> Result<u64, OutOfWindow> {
        let pa = self.at(off, 8, 8)?;
        // SAFETY: an aligned word inside the window (checked).
        Ok(unsafe { mem::read_u64(pa) })
    }

    /// Writes the aligned 64-bit word at `off`.
    #[inline]
    pub fn write_u64(&self, off: u64, value: u64) -> Result<(), OutOfWindow> {
        let pa = self.at(off, 8, 8)?;
        // SAFETY: as in `read_u64`.
        unsafe { mem::write_u64(pa, value) };
        Ok(())
    }

    /// Atomic OR into the aligned 64-bit word at `off`; the previous value.
    #[inline]
    pub fn fetch_or_u64(&self, off: u64, mask: u64) -> Result<u64, OutOfWindow> {
        let pa = self.at(off, 8, 8)?;
        // SAFETY: an aligned word of reachable Normal RAM (checked); guests touch shared
        // words only with atomics or accesses they synchronise themselves.
        Ok(unsafe { mem::atomic_or_u64(pa, mask) })
    }

    /// Atomic AND into the aligned 64-bit word at `off`; the previous value.
    #[inline]
    pub fn fetch_and_u64(&self, off: u64, mask: u64) -> Result<u64, OutOfWindow> {
        let pa = self.at(off, 8, 8)?;
        // SAFETY: as in `fetch_or_u64`.
        Ok(unsafe { mem::atomic_and_u64(pa, mask) })
    }

    /// Atomic load of the aligned 64-bit word at `off`.
    #[inline]
    pub fn load_u64(&self, off: u64) -> Result<u64, OutOfWindow> {
        let pa = self.at(off, 8, 8)?;
        // SAFETY: as in `fetch_or_u64`.
        Ok(unsafe { mem::atomic_load_u64(pa) })
    }

    /// Atomic swap of the byte at `off`; the previous byte.
    #[inline]
    pub fn swap_u8(&self, off: u64, value: u8) -> Result<u8, OutOfWindow> {
        let pa = self.at(off, 1, 1)?;
        // SAFETY: as in `fetch_or_u64`.
        Ok(unsafe { mem::atomic_swap_u8(pa, value) })
    }

    /// Atomic load of the byte at `off`.
    #[inline]
    pub fn load_u8(&self, off: u64) -> Result<u8, OutOfWindow> {
        let pa = self.at(off, 1, 1)?;
        // SAFETY: as in `fetch_or_u64`.
        Ok(unsafe { mem::atomic_load_u8(pa) })
    }

    /// Compare-and-swap of the aligned 32-bit word at `off`; the value found.
    #[inline]
    pub fn cas_u32(&self, off: u64, old: u32, new: u32) -> Result<u32, OutOfWindow> {
        let pa = self.at(off, 4, 4)?;
        // SAFETY: as in `fetch_or_u64`.
        Ok(unsafe { mem::atomic_cas_u32(pa, old, new) })
    }

    /// Atomically clears `bits` in the aligned 16-bit word at `off`.
    #[inline]
    pub fn clear_u16(&self, off: u64, bits: u16) -> Result<(), OutOfWindow> {
        let pa = self.at(off, 2, 2)?;
        // SAFETY: as in `fetch_or_u64`.
        unsafe { mem::atomic_clear_u16(pa, bits) };
        Ok(())
    }

    /// Copies all of `src` to the start of `dst` (which may overlap it).
    #[inline]
    pub fn copy(dst: &Window, src: &Window) -> Result<(), OutOfWindow> {
        if src.len > dst.len {
            return Err(OutOfWindow);
        }
        // SAFETY: both are reachable RAM (checked at open) and `src.len` fits in `dst`;
        // `move_bytes` handles overlap.
        unsafe { mem::move_bytes(src.base, dst.base, src.len as usize) };
        Ok(())
    }
}

/// The bytes of a module: inside a boot module (reserved at boot, never written, never
/// freed) or a sealed upload. No window reaches either, so a shared slice is sound for as
/// long as the module stays: for ever for a boot module, until [`Sealed::release`] for an
/// upload (see the module docs for who may keep one how long).
pub fn module_bytes(base: PhysAddr, len: u64) -> Option<&'static [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    let (b, l) = (base.as_u64(), len);
    if !(layout()?.is_module(b, l) || SEALED.contains(b, l)) {
        return None;
    }
    // SAFETY: the range is a boot module or a sealed upload (checked): mapped RAM that no
    // window can write, until its seal is released (module docs).
    Some(unsafe { mem::boot_blob(b, l as usize) })
}

/// Copies `len` bytes of a module (as [`module_bytes`]) at `src` to the start of `dst`; the
/// module's slice does not outlive the call, during which a release of its seal waits.
/// `None` if either range is refused.
pub fn copy_module(dst: PhysAddr, src: PhysAddr, len: u64) -> Option<()> {
    COPIES.fetch_add(1, Ordering::SeqCst);
    // Counted before the seal is checked (against the release's lift, then count).
    fence(Ordering::SeqCst);
    let done = module_bytes(src, len).and_then(|bytes| Window::new(dst, len)?.write(0, bytes).ok());
    COPIES.fetch_sub(1, Ordering::Release);
    done
}

/// A sealed module (an upload domains are built from): the one owner of its seal, by its
/// slot in the sealed set. Neither `Clone` nor `Copy`; dropping it without
/// [`Self::release`] leaves the range sealed (its frames then never go back).
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed {
    slot: usize,
}

impl Sealed {
    /// Seals `w`: no window can be opened onto it until [`Self::release`] (and none is open
    /// now, as windows are opened per use and never kept across a lock release).
    pub fn new(w: Window) -> Option<Sealed> {
        let slot = SEALED.seal(w.base, w.len).ok()?;
        Some(Sealed { slot })
    }

    /// Lifts the seal, so windows (the scrub, then the frames' next owner) reach the range
    /// again. Only the seal's owner can, once; it returns once no [`copy_module`] that may
    /// have found the range sealed is still reading it (see the module docs for the other
    /// slices). Called outside the global lock: the wait is for copies on other CPUs.
    pub fn release(self) {
        SEALED.release(self.slot);
        // Lifted before the count is read (against `copy_module`'s count, then check).
        fence(Ordering::SeqCst);
        while COPIES.load(Ordering::Acquire) != 0 {
            core::hint::spin_loop();
        }
    }
}

/// A checked range of device registers (outside RAM, mapped Device at EL2 by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    base: u64,
    len: u64,
}

impl Registers {
    /// Opens `[base, base + len)`: `None` if any of it is RAM.
    pub fn new(base: PhysAddr, len: u64) -> Option<Self> {
        let (b, l) = (base.as_u64(), len);
        layout()?
            .device_ok(b, l)
            .then_some(Self { base: b, len: l })
    }

    fn at(&self, off: u64, width: u64) -> Result<u64, OutOfWindow> {
        let end = off.checked_add(width).ok_or(OutOfWindow)?;
        let pa = self.base + off;
        if end > self.len || !pa.is_multiple_of(width) {
            return Err(OutOfWindow);
        }
        Ok(pa)
    }

    /// Reads the 32-bit register at `off`.
    pub fn read32(&self, off: u64) -> Result<u32, OutOfWindow> {
        let pa = self.at(off, 4)?;
        // SAFETY: an aligned register inside a device window (outside RAM, checked).
        Ok(unsafe { mem::mmio_read32(pa) })
    }

    /// Writes the 32-bit register at `off`.
    pub fn write32(&self, off: u64, value: u32) -> Result<(), OutOfWindow> {
        let pa = self.at(off, 4)?;
        // SAFETY: as in `read32`.
        unsafe { mem::mmio_write32(pa, value) };
        Ok(())
    }

    /// One access of `width` bytes (1, 2, 4 or 8) at `off` for a domain whose access
    /// trapped: a write of `write`'s low bytes, or a read returned zero-extended.
    pub fn access(&self, off: u64, width: u8, write: Option<u64>) -> Result<u64, OutOfWindow> {
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(OutOfWindow);
        }
        let pa = self.at(off, u64::from(width))?;
        // SAFETY: an access of the guest's own width, aligned, inside a device window.
        Ok(unsafe { mem::mmio_access(pa, width, write) })
    }
}
