//! Typed addresses. Arithmetic is checked and explicit: there is no `Add` on purpose, so an
//! overflow or a mix-up between address spaces is a compile error or a `None`, never a wrap.

use serde::{Deserialize, Serialize};

/// Size of a translation granule / small page.
pub const PAGE_SIZE: u64 = 4096;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Wraps a raw address.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            /// The raw address.
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            /// `self + bytes`, or `None` on overflow.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// `self - bytes`, or `None` on underflow.
            pub const fn checked_sub(self, bytes: u64) -> Option<Self> {
                match self.0.checked_sub(bytes) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// Distance from `base` to `self`, or `None` if `self` is below `base`.
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }
            /// Rounds down to `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
            /// Rounds up to `align` (a power of two), or `None` on overflow.
            pub const fn align_up(self, align: u64) -> Option<Self> {
                match self.0.checked_add(align - 1) {
                    Some(v) => Some(Self(v & !(align - 1))),
                    None => None,
                }
            }
            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// Offset within its 4 KiB page.
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A host physical address (what the microvisor's stage-2 tables point at).
    PhysAddr
);
address_type!(
    /// An intermediate physical address as a guest sees it (input to stage 2).
    GuestPhysAddr
);
address_type!(
    /// A guest virtual address (input to the guest's own stage 1).
    GuestVirtAddr
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        let a = PhysAddr::new(0x4000_1234);
        assert_eq!(a.align_down(0x1000), PhysAddr::new(0x4000_1000));
        assert_eq!(a.align_up(0x1000), Some(PhysAddr::new(0x4000_2000)));
        assert_eq!(PhysAddr::new(u64::MAX).align_up(0x1000), None);
        assert!(!a.is_aligned(0x1000));
        assert_eq!(a.page_offset(), 0x234);
    }

    #[test]
    fn checked_arithmetic_refuses_overflow() {
        assert_eq!(GuestPhysAddr::new(u64::MAX).checked_add(1), None);
        assert_eq!(GuestPhysAddr::new(0).checked_sub(1), None);
        assert_eq!(
            GuestPhysAddr::new(10).offset_from(GuestPhysAddr::new(4)),
            Some(6)
        );
        assert_eq!(
            GuestPhysAddr::new(4).offset_from(GuestPhysAddr::new(10)),
            None
        );
    }
}
