//! How domains are booted: the device-tree binding of boot modules and the start info a
//! domain finds at entry.
//!
//! Boot modules follow Xen's `multiboot,module` binding: one `/chosen/module@<addr>` node per
//! blob, `reg = <addr size>` (two cells each), `compatible = "multiboot,module"`, plus our
//! [`LABEL_PROP`] naming it. The microvisor builds dom0 from the module labelled
//! [`DOM0_LABEL`] and hands dom0 a Module capability for every other module.
//!
//! vCPU 0 of every domain enters at the first byte of its RAM (the flat image is loaded
//! there) at EL1h with the MMU off and: `x0` = guest-physical address of a postcard
//! [`StartInfo`], `x1` = its length, `x2` = RAM size in bytes. The start info lives in the
//! last [`START_INFO_RESERVE`] bytes of RAM; the domain must read it before reusing them.
//! Secondary vCPUs start through PSCI `CPU_ON` with `x0` = the caller's context id.

use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Compatible string of a boot module node.
pub const MODULE_COMPATIBLE: &str = "multiboot,module";
/// Property naming a module (a string).
pub const LABEL_PROP: &str = "bulkhead,label";
/// `/chosen` property naming the UART that is dom0's management port on a board (a path or
/// an alias, like `stdout-path`); the microvisor hands that UART to dom0 as a Device
/// capability labelled `protocol::cap::MGMT_UART_*`.
pub const MGMT_PORT_PROP: &str = "bulkhead,mgmt-port";
/// Label of dom0's image.
pub const DOM0_LABEL: &str = "dom0";
/// Label of the postcard [`crate::manifest::SystemManifest`].
pub const MANIFEST_LABEL: &str = "manifest";
/// Bytes at the end of a domain's RAM reserved for its start info.
pub const START_INFO_RESERVE: u64 = 64 * 1024;
/// Longest domain name.
pub const MAX_NAME_LEN: usize = 31;

/// What a domain learns about itself at entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartInfo {
    /// Capability-protocol version of the microvisor that built it.
    pub version: crate::control::Version,
    /// Its domain id.
    pub domid: u16,
    /// Its name.
    pub name: String,
    /// Guest-physical base of its RAM.
    pub ram_base: u64,
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Number of vCPUs.
    pub vcpus: u16,
    /// Counter frequency in Hz (CNTFRQ), for domains that cannot trust their own.
    pub counter_hz: u64,
    /// Free-form arguments from the domain's description.
    pub cmdline: String,
    /// Physical CPUs the machine has: where a domain that creates others may place them.
    pub pcpus: u16,
}
