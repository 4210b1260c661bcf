//! Capabilities as a holder sees them: handles, kinds, rights and the listing format.
//!
//! A handle is `{index, generation}` local to its holder. The microvisor bumps a slot's
//! generation whenever the slot is freed or its target is replaced (a destroyed or restarted
//! domain), so an old handle fails with `CapError::Stale` instead of reaching a new object.

use alloc::string::String;
use bitflags::bitflags;
use serde::{Deserialize, Serialize};

/// A capability handle as passed in a register: index in bits 0..16, generation in bits
/// 32..64; bits 16..32 are reserved and must be zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapHandle {
    /// Slot index in the holder's table.
    pub index: u16,
    /// Generation of the slot when the handle was issued.
    pub generation: u32,
}

impl CapHandle {
    /// Packs the handle into one register.
    pub const fn to_raw(self) -> u64 {
        (self.index as u64) | ((self.generation as u64) << 32)
    }

    /// Unpacks a register; `None` if reserved bits are set.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        if raw & 0xFFFF_0000 != 0 {
            return None;
        }
        Some(Self {
            index: (raw & 0xFFFF) as u16,
            generation: (raw >> 32) as u32,
        })
    }
}

/// Label of the Device capability of a management UART (`boot::MGMT_PORT_PROP`) that is a
/// Cadence UART (Xilinx Zynq / ZynqMP).
pub const MGMT_UART_CADENCE: &str = "mgmt-uart cadence";
/// Label of a management UART that is a PL011.
pub const MGMT_UART_PL011: &str = "mgmt-uart pl011";
/// Label of a management UART that is 16550-compatible.
pub const MGMT_UART_16550: &str = "mgmt-uart 16550";

/// What a capability designates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u32)]
#[non_exhaustive]
pub enum CapKind {
    /// Control of a child domain (start, pause, destroy, query).
    Domain = 1,
    /// A quota of RAM from which child domains are built.
    Memory = 2,
    /// An MMIO range and interrupts of a host device.
    Device = 3,
    /// A boot module (an image or data blob loaded by the boot loader).
    Module = 4,
    /// The right to write the microvisor's debug console.
    Console = 5,
}

bitflags! {
    /// Rights carried by a capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Rights: u32 {
        /// Read or query the object.
        const READ = 1 << 0;
        /// Write or modify the object.
        const WRITE = 1 << 1;
        /// Lifecycle control (start, pause, destroy).
        const CONTROL = 1 << 2;
        /// Pass the capability on to another domain.
        const DELEGATE = 1 << 3;
    }
}

/// Kind-specific facts shown in a capability listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CapDetail {
    /// A child domain.
    Domain {
        /// Its id.
        domid: u16,
    },
    /// A RAM quota.
    Memory {
        /// Pages still available to allocate: the quota left, or the free pool if that is
        /// smaller.
        free_pages: u64,
        /// Pages in the longest physically contiguous free run (at most `free_pages`): the
        /// most a domain that needs contiguous RAM can get.
        largest_free_pages: u64,
    },
    /// A host device.
    Device {
        /// Base of its MMIO range (host physical).
        mmio_base: u64,
        /// Size of its MMIO range in bytes.
        mmio_size: u64,
        /// Its interrupts (GIC INTIDs).
        irqs: alloc::vec::Vec<u32>,
        /// virtio device type behind the transport (1 net, 2 block, 3 console, …).
        virtio_id: u32,
        /// The domain the device is assigned to, if it was delegated.
        assigned: Option<u16>,
    },
    /// A boot module.
    Module {
        /// Size in bytes.
        size: u64,
    },
    /// The debug console.
    Console,
}

/// One entry of `CapOp::CapList`'s reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapInfo {
    /// The handle to use.
    pub handle: CapHandle,
    /// What it designates.
    pub kind: CapKind,
    /// What it allows.
    pub rights: Rights,
    /// A human name: module label, device compatible, domain name.
    pub label: String,
    /// Kind-specific facts.
    pub detail: CapDetail,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn handle_round_trips(index: u16, generation: u32) {
            let h = CapHandle { index, generation };
            prop_assert_eq!(CapHandle::from_raw(h.to_raw()), Some(h));
        }

        #[test]
        fn reserved_bits_are_rejected(raw: u64) {
            let decoded = CapHandle::from_raw(raw);
            prop_assert_eq!(decoded.is_none(), raw & 0xFFFF_0000 != 0);
        }
    }
}
