//! What the board is, read once from the host device tree: RAM banks, CPUs, GICv3, UART,
//! timer and the boot modules. Nothing platform-specific is hard-coded elsewhere.

use protocol::addr::PhysAddr;
use protocol::boot::{LABEL_PROP, MODULE_COMPATIBLE};

/// Most RAM banks recorded.
pub const MAX_RAM_BANKS: usize = 4;
/// Most CPUs recorded.
pub const MAX_CPUS: usize = 8;
/// Most boot modules recorded.
pub const MAX_MODULES: usize = 16;
/// Longest module label kept.
pub const MAX_LABEL: usize = 32;

/// A physical range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// Start.
    pub base: PhysAddr,
    /// Size in bytes.
    pub size: u64,
}

/// A boot module from `/chosen/module@…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootModule {
    /// Where the boot loader put it.
    pub region: Region,
    label: [u8; MAX_LABEL],
    label_len: usize,
}

impl BootModule {
    /// Its `bulkhead,label`.
    pub fn label(&self) -> &str {
        core::str::from_utf8(&self.label[..self.label_len]).unwrap_or("?")
    }
}

/// Why the device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlatformError {
    /// The blob is not a valid flattened device tree.
    BadDeviceTree,
    /// No `memory` node.
    NoMemory,
    /// No `arm,gic-v3` node with distributor and redistributor ranges.
    NoGicV3,
}

/// The board.
#[derive(Clone, Debug, Default)]
pub struct Platform {
    /// RAM banks.
    pub ram: heapless_vec::Vec<Region, MAX_RAM_BANKS>,
    /// CPU affinities (`reg` of each cpu node), in DT order; index = physical CPU number.
    pub cpus: heapless_vec::Vec<u64, MAX_CPUS>,
    /// GIC distributor.
    pub gicd: Region,
    /// GIC redistributor region.
    pub gicr: Region,
    /// PL011 for the microvisor's log, if any.
    pub uart: Option<Region>,
    /// Boot modules.
    pub modules: heapless_vec::Vec<BootModule, MAX_MODULES>,
}

/// A tiny fixed-capacity vector, so the platform needs no heap.
pub mod heapless_vec {
    /// Up to `N` `Copy` items.
    #[derive(Clone, Debug)]
    pub struct Vec<T: Copy + Default, const N: usize> {
        items: [T; N],
        len: usize,
    }
    impl<T: Copy + Default, const N: usize> Default for Vec<T, N> {
        fn default() -> Self {
            Self {
                items: [T::default(); N],
                len: 0,
            }
        }
    }
    impl<T: Copy + Default, const N: usize> Vec<T, N> {
        /// Appends; returns false (dropping the item) when full.
        pub fn push(&mut self, item: T) -> bool {
            if self.len == N {
                return false;
            }
            self.items[self.len] = item;
            self.len += 1;
            true
        }
        /// The items.
        pub fn as_slice(&self) -> &[T] {
            &self.items[..self.len]
        }
        /// Number of items.
        pub fn len(&self) -> usize {
            self.len
        }
        /// Whether empty.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
    }
}

impl Default for BootModule {
    fn default() -> Self {
        Self {
            region: Region::default(),
            label: [0; MAX_LABEL],
            label_len: 0,
        }
    }
}

impl Platform {
    /// Reads the board from a flattened device tree.
    pub fn from_fdt(blob: &[u8]) -> Result<Self, PlatformError> {
        let fdt = fdt::Fdt::new(blob).map_err(|_| PlatformError::BadDeviceTree)?;
        let mut p = Platform::default();
        for node in fdt.all_nodes() {
            let is_memory = node.name.starts_with("memory")
                && node.property("device_type").and_then(|d| d.as_str()) == Some("memory");
            if is_memory {
                for r in node.reg().into_iter().flatten() {
                    let size = r.size.unwrap_or(0) as u64;
                    if size > 0 {
                        p.ram.push(Region {
                            base: PhysAddr::new(r.starting_address as u64),
                            size,
                        });
                    }
                }
            }
        }
        if p.ram.is_empty() {
            return Err(PlatformError::NoMemory);
        }
        for cpu in fdt.cpus() {
            p.cpus.push(cpu.ids().first() as u64);
        }
        let gic = fdt
            .find_compatible(&["arm,gic-v3"])
            .ok_or(PlatformError::NoGicV3)?;
        let mut regs = gic.reg().ok_or(PlatformError::NoGicV3)?;
        let d = regs.next().ok_or(PlatformError::NoGicV3)?;
        let r = regs.next().ok_or(PlatformError::NoGicV3)?;
        p.gicd = Region {
            base: PhysAddr::new(d.starting_address as u64),
            size: d.size.unwrap_or(0x1_0000) as u64,
        };
        p.gicr = Region {
            base: PhysAddr::new(r.starting_address as u64),
            size: r.size.unwrap_or(0) as u64,
        };
        p.uart = fdt
            .chosen()
            .stdout()
            .filter(|n| {
                n.compatible()
                    .is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
            })
            .or_else(|| fdt.find_compatible(&["arm,pl011"]))
            .and_then(|n| n.reg()?.next())
            .map(|r| Region {
                base: PhysAddr::new(r.starting_address as u64),
                size: r.size.unwrap_or(0x1000) as u64,
            });
        if let Some(chosen) = fdt.find_node("/chosen") {
            for child in chosen.children() {
                let is_module = child
                    .compatible()
                    .is_some_and(|c| c.all().any(|s| s == MODULE_COMPATIBLE));
                if !is_module {
                    continue;
                }
                let Some(reg) = child.reg().and_then(|mut r| r.next()) else {
                    continue;
                };
                let mut m = BootModule {
                    region: Region {
                        base: PhysAddr::new(reg.starting_address as u64),
                        size: reg.size.unwrap_or(0) as u64,
                    },
                    ..BootModule::default()
                };
                let label = child
                    .property(LABEL_PROP)
                    .and_then(|l| l.as_str())
                    .unwrap_or("");
                let n = label.len().min(MAX_LABEL);
                m.label[..n].copy_from_slice(&label.as_bytes()[..n]);
                m.label_len = n;
                p.modules.push(m);
            }
        }
        Ok(p)
    }

    /// The module labelled `label`.
    pub fn module(&self, label: &str) -> Option<&BootModule> {
        self.modules.as_slice().iter().find(|m| m.label() == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(
            Platform::from_fdt(&[0u8; 64]).err(),
            Some(PlatformError::BadDeviceTree)
        );
    }
}
