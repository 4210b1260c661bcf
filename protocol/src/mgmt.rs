//! The management protocol: what the host CLI (`cargo bulkhead ctl`) asks dom0 and what dom0
//! answers, over a byte stream (a virtio-console port in QEMU, a UART on boards).
//!
//! Every message is one postcard-encoded [`Request`] or [`Response`], COBS-encoded and ended
//! by a `0x00` byte ([`frame`]). A session is: the client sends `0x00` (flushes any partial
//! frame a previous client left behind; empty frames are ignored), then
//! [`Request::Hello`] and [`Request::Session`] with a fresh token, then any number of
//! requests. Each request gets exactly one response, in order. The client skips every
//! response until [`Response::Session`] echoes its token, so answers a previous client left
//! unread (it was killed, or flooded the port) are never taken for its own. The server keeps no other per-session state: requests are idempotent reads or
//! single lifecycle operations.
//!
//! Versioning: majors must match and the client's minor may be at most the server's
//! ([`Version::accepts`]); a new request variant is a minor bump, appended at the end of the
//! enum so older variants keep their postcard index.

pub mod frame;
pub mod xenstore;

use crate::control::{CapError, DomainInfo, DomainState, StopReason, Version};
use crate::lock_holds::LockHolds;
use crate::manifest::ManifestDomain;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

pub use frame::{decode, encode, FrameDecoder, FrameError, MAX_FRAME};
pub use upload::{UploadOp, UPLOAD_CHUNK};
pub use xenstore::{XenstoreAnswer, XenstoreNode, XenstoreOp};

/// The management-protocol version this tree speaks. 5.0: [`Response::LockHolds`]'
/// per-CPU record gained its waits for the lock (its encoding changed); 4.0:
/// [`Request::Create`] carries a
/// budget (its encoding changed); 3.1: [`Request::Uplink`]; 3.0: [`Response::LockHolds`]'
/// interrupt passes name their INTID and its per-CPU record counts them by INTID; 2.0: its
/// per-CPU record gained its passes by reason (each changed its encoding, so an older
/// client could not decode it).
pub const MGMT_VERSION: Version = Version { major: 5, minor: 0 };

/// Bytes per page in [`SystemInfo::free_pages`].
pub const PAGE_SIZE: u64 = 4096;

/// A domain as the user names it: by name, or by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainRef {
    /// Its name, e.g. `rtos`.
    Name(String),
    /// Its domain id, e.g. `1` (`0` is dom0).
    Id(u16),
}

impl DomainRef {
    /// Reads what a user typed: all ASCII digits is an id, anything else a name. Like `xl`,
    /// a name made only of digits is therefore taken as an id.
    pub fn parse(s: &str) -> Self {
        match s.parse::<u16>() {
            Ok(id) if s.bytes().all(|b| b.is_ascii_digit()) => Self::Id(id),
            _ => Self::Name(s.into()),
        }
    }
}

impl fmt::Display for DomainRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Id(id) => write!(f, "{id}"),
        }
    }
}

/// One request; one variant per CLI verb. Append new variants at the end (minor bump).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Opens a session. Answer: [`Response::Hello`] with the server's version, or
    /// [`MgmtError::VersionMismatch`].
    Hello {
        /// The client's version.
        version: Version,
    },
    /// Every domain, dom0 included. Answer: [`Response::Domains`].
    List,
    /// The system as a whole (`xl info`). Answer: [`Response::System`].
    Info,
    /// Stops scheduling a running domain. Answer: [`Response::Done`].
    Pause {
        /// Which domain.
        domain: DomainRef,
    },
    /// Resumes a paused domain. Answer: [`Response::Done`].
    Unpause {
        /// Which domain.
        domain: DomainRef,
    },
    /// Stops a domain and frees its memory; its id and name are gone afterwards.
    Destroy {
        /// Which domain.
        domain: DomainRef,
    },
    /// Rebuilds a domain in place from its description (same id, fresh memory).
    Restart {
        /// Which domain.
        domain: DomainRef,
    },
    /// Asks a domain to power off cleanly (a PV shutdown request).
    Shutdown {
        /// Which domain.
        domain: DomainRef,
    },
    /// Asks a domain to reboot cleanly (a PV shutdown request with reason reboot).
    Reboot {
        /// Which domain.
        domain: DomainRef,
    },
    /// Per-domain counters for a refreshing view. Answer: [`Response::Domains`].
    Top,
    /// Builds and starts a domain from an image already loaded as a boot module, then
    /// supervises it with its lifecycle policies (`xl create`). Answer: [`Response::Done`].
    Create {
        /// The domain, as the tools resolved it from an xl.cfg file (boxed: it is by far
        /// the largest request; the encoding is the same).
        domain: Box<ManifestDomain>,
        /// The budget of each of its shared vCPUs, `(budget_us, period_us)` (`ctl create
        /// --budget-us/--period-us`), kept across its restarts in place like one given in
        /// the system description. Since 4.0.
        budget: Option<(u32, u32)>,
    },
    /// The microvisor's console history (`xl dmesg`): its own log and every domain's lines,
    /// from byte offset `from`. Answer: [`Response::Log`].
    Dmesg {
        /// Offset to read from (0: the oldest byte still kept).
        from: u64,
    },
    /// Console input for a domain, as if typed on its console (`ctl console`). Answer:
    /// [`Response::Done`].
    ConsoleInput {
        /// Which domain.
        domain: DomainRef,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The virtual block devices a domain uses as a frontend or serves as a backend
    /// (`ctl info NAME`). Answer: [`Response::Vbds`].
    Vbds {
        /// Which domain.
        domain: DomainRef,
    },
    /// The virtual network interfaces a domain uses as a frontend or serves as a backend
    /// (`ctl info NAME`). Answer: [`Response::Vifs`].
    Vifs {
        /// Which domain.
        domain: DomainRef,
    },
    /// Marks where this client's answers start. Answer: [`Response::Session`] with the
    /// same token.
    Session {
        /// A value the client chose (fresh per connection).
        token: u64,
    },
    /// A test capability: makes a running domain take a genuine fault (an Undefined
    /// Instruction exception on its vCPU 0), so its `on_crash` policy applies.
    Crash {
        /// Which domain.
        domain: DomainRef,
    },
    /// Supervision facts of every domain (restarts, last restart reason and recovery time,
    /// watchdog, hold). Answer: [`Response::Health`]. Since 1.7.
    Health,
    /// A test capability: makes a running domain genuinely hang (the microvisor makes its
    /// vCPUs spin with interrupts masked and tells nobody), so only its heartbeat watchdog
    /// can notice. Answer:
    /// [`Response::Done`]. Since 1.7.
    Hang {
        /// Which domain.
        domain: DomainRef,
    },
    /// Reads or changes dom0's xenstore with the toolstack's rights (`ctl xenstore`). Since 1.8.
    /// Answer: [`Response::Xenstore`] for a listing or read, [`Response::Done`] otherwise.
    Xenstore {
        /// What to do.
        op: XenstoreOp,
    },
    /// The host devices a domain holds by passthrough; for dom0, every device the
    /// microvisor hands out, free or held (`ctl info NAME`). Answer: [`Response::Devices`].
    /// Since 1.9 (some 1.8 servers lack it: it came without a version bump).
    Devices {
        /// Which domain.
        domain: DomainRef,
    },
    /// Each vCPU of one domain, or of every domain (dom0 included) with `None`
    /// (`xl vcpu-list`). Answer: [`Response::Vcpus`]. Since 1.9.
    Vcpus {
        /// Which domain (`None`: all).
        domain: Option<DomainRef>,
    },
    /// Keeps the first `online` vCPUs of a guest online and asks it to take the rest
    /// offline, through its xenstore `cpu/N/availability` nodes as `xl vcpu-set` does (a
    /// Linux guest's Xen CPU-hotplug watcher acts on them). Answer: [`Response::Done`].
    /// Since 1.9.
    VcpuSet {
        /// Which domain.
        domain: DomainRef,
        /// How many vCPUs stay online (1 to the domain's count).
        online: u16,
    },
    /// One step of uploading a file for a later [`Request::Create`] (see [`UploadOp`]).
    /// Since 1.10.
    Upload {
        /// The step.
        op: UploadOp,
    },
    /// Re-pins one vCPU of a guest to another pCPU at run time (`xl vcpu-pin`), keeping
    /// its priority unless `priority` is given. Answer: [`Response::Done`]. Since 1.10.
    VcpuPin {
        /// Which domain.
        domain: DomainRef,
        /// Which vCPU.
        vcpu: u16,
        /// The pCPU it goes to.
        pcpu: u16,
        /// Its new fixed priority (`None`: unchanged).
        priority: Option<u8>,
    },
    /// Gives one shared vCPU of a guest a budget per period, in microseconds (`0`/`0`: no
    /// budget), as `CapOp::DomainVcpuBudget` describes. Answer: [`Response::Done`]. Since
    /// 1.11.
    VcpuBudget {
        /// Which domain.
        domain: DomainRef,
        /// Which vCPU.
        vcpu: u16,
        /// Guest time it may use at its priority per period.
        budget_us: u32,
        /// The period.
        period_us: u32,
    },
    /// The raw bytes a PV-console guest (Linux's hvc0) wrote, from byte offset `from` of
    /// its output since it was attached (`u64::MAX`: just where the end is), for `ctl
    /// console` as a terminal. Answer: [`Response::Log`]; `NotSupported` for a domain whose
    /// console is line-based (our own domains: follow their lines in `Dmesg`). Since 1.10.
    ConsoleOutput {
        /// Which domain.
        domain: DomainRef,
        /// Offset to read from.
        from: u64,
    },
    /// The microvisor's global-lock holds: each physical CPU's locked passes and longest
    /// hold with what it was for (`ctl info`). With `reset`, the record starts again once
    /// read (`ctl info --reset-holds`). Answer: [`Response::LockHolds`]. Since 1.12.
    LockHolds {
        /// Start the record again after reading it.
        reset: bool,
    },
    /// The uplink counters a network backend domain published (`ctl info NAME`). Answer:
    /// [`Response::Uplink`]. Since 3.1.
    Uplink {
        /// Which domain.
        domain: DomainRef,
    },
}

impl Request {
    /// The CLI verb this request implements.
    pub const fn verb(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::List => "list",
            Self::Info => "info",
            Self::Pause { .. } => "pause",
            Self::Unpause { .. } => "unpause",
            Self::Destroy { .. } => "destroy",
            Self::Restart { .. } => "restart",
            Self::Shutdown { .. } => "shutdown",
            Self::Reboot { .. } => "reboot",
            Self::Top => "top",
            Self::Create { .. } => "create",
            Self::Dmesg { .. } => "dmesg",
            Self::ConsoleInput { .. } | Self::ConsoleOutput { .. } => "console",
            Self::Vbds { .. } | Self::Vifs { .. } | Self::Devices { .. } => "info",
            Self::Session { .. } => "session",
            Self::Crash { .. } | Self::Hang { .. } => "crash",
            Self::Health => "list",
            Self::Xenstore { .. } => "xenstore",
            Self::Vcpus { .. } => "vcpu-list",
            Self::VcpuSet { .. } => "vcpu-set",
            Self::VcpuPin { .. } => "vcpu-pin",
            Self::VcpuBudget { .. } => "sched-fp",
            Self::Upload { .. } => "create",
            Self::LockHolds { .. } | Self::Uplink { .. } => "info",
        }
    }

    /// The domain the request is about, if any.
    pub const fn domain(&self) -> Option<&DomainRef> {
        match self {
            Self::Pause { domain }
            | Self::Unpause { domain }
            | Self::Destroy { domain }
            | Self::Restart { domain }
            | Self::Crash { domain }
            | Self::Hang { domain }
            | Self::Shutdown { domain }
            | Self::Reboot { domain }
            | Self::ConsoleInput { domain, .. }
            | Self::ConsoleOutput { domain, .. }
            | Self::Vbds { domain }
            | Self::Vifs { domain }
            | Self::Uplink { domain }
            | Self::Devices { domain }
            | Self::VcpuSet { domain, .. }
            | Self::VcpuPin { domain, .. }
            | Self::VcpuBudget { domain, .. }
            | Self::Vcpus {
                domain: Some(domain),
            } => Some(domain),
            Self::Hello { .. }
            | Self::Session { .. }
            | Self::List
            | Self::Info
            | Self::Health
            | Self::Top
            | Self::Create { .. }
            | Self::Dmesg { .. }
            | Self::Xenstore { .. }
            | Self::Upload { .. }
            | Self::LockHolds { .. }
            | Self::Vcpus { domain: None } => None,
        }
    }
}

/// One response. Append new variants at the end (minor bump).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The session is open; the server's version.
    Hello {
        /// The server's version.
        version: Version,
    },
    /// Every domain, in id order.
    Domains(Vec<DomainRow>),
    /// The system as a whole.
    System(SystemInfo),
    /// The operation was carried out.
    Done,
    /// The request failed.
    Error(MgmtError),
    /// A piece of console history.
    Log {
        /// The bytes (console text; not necessarily whole lines or valid UTF-8).
        bytes: Vec<u8>,
        /// Offset of the first byte.
        start: u64,
        /// Bytes written in total so far (read again from `start + bytes.len()` while it
        /// is below this).
        end: u64,
    },
    /// Virtual block devices, in (frontend, device) order.
    Vbds(Vec<VbdRow>),
    /// Virtual network interfaces, in (frontend, device) order.
    Vifs(Vec<VifRow>),
    /// The answer to [`Request::Session`]: its token.
    Session {
        /// The client's token.
        token: u64,
    },
    /// Supervision facts, in id order (dom0 included).
    Health(Vec<HealthRow>),
    /// The answer to a [`Request::Xenstore`] listing or read.
    Xenstore(XenstoreAnswer),
    /// Host devices, in MMIO-address order.
    Devices(Vec<DeviceRow>),
    /// vCPUs, in (domain id, vCPU index) order. Since 1.9.
    Vcpus(Vec<VcpuRow>),
    /// The answer to [`UploadOp::Begin`]. Since 1.10.
    Upload {
        /// dom0 already holds this module whole: send nothing more.
        have: bool,
    },
    /// The answer to [`Request::LockHolds`] (what it read, before any reset). Since 1.12.
    LockHolds(LockHolds),
    /// The answer to [`Request::Uplink`]: the counters, if the domain published any (it is
    /// a network backend with a NIC). Since 3.1.
    Uplink(Option<UplinkCounters>),
}

/// One domain in a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRow {
    /// Domain id (0 is dom0).
    pub id: u16,
    /// Name.
    pub name: String,
    /// RAM in MiB.
    pub mem_mib: u32,
    /// Number of vCPUs.
    pub vcpus: u16,
    /// vCPUs powered on.
    pub vcpus_online: u16,
    /// Lifecycle state.
    pub state: DomainState,
    /// Time spent running guest code, summed over vCPUs, in counter ticks
    /// ([`SystemInfo::counter_hz`] per second).
    pub cpu_ticks: u64,
    /// Traps to the microvisor, summed over vCPUs.
    pub exits: u64,
    /// Virtual interrupts injected, summed over vCPUs.
    pub irqs_injected: u64,
    /// Times the domain was restarted in place (counters restart from 0 each time).
    pub restarts: u32,
}

impl From<DomainInfo> for DomainRow {
    fn from(i: DomainInfo) -> Self {
        Self {
            id: i.domid,
            name: i.name,
            mem_mib: i.mem_mib,
            vcpus: i.vcpus,
            vcpus_online: i.vcpus_online,
            state: i.state,
            cpu_ticks: i.cpu_ticks,
            exits: i.exits,
            irqs_injected: i.irqs_injected,
            restarts: i.restarts,
        }
    }
}

/// The system as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The capability-protocol version the microvisor speaks.
    pub protocol_version: Version,
    /// Frequency of the generic timer's counter (the unit of [`DomainRow::cpu_ticks`]).
    pub counter_hz: u64,
    /// Number of domains, dom0 included.
    pub domains: u32,
    /// Free pages ([`PAGE_SIZE`] bytes each) for new domains: dom0's memory quota, or the
    /// microvisor's free pool if that is smaller.
    pub free_pages: u64,
    /// Pages in the largest physically contiguous free block (what a domain that needs
    /// contiguous RAM, such as a flat Bulkhead image, can get; Linux guests take any pages).
    pub largest_free_pages: u64,
}

/// Why a request failed. Carried in [`Response::Error`]; `code()` gives a stable number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u32)]
#[non_exhaustive]
pub enum MgmtError {
    /// no such domain
    UnknownDomain = 1,
    /// not allowed while the domain is in this state
    WrongState {
        /// The state it is in.
        state: DomainState,
    } = 2,
    /// not supported yet
    NotSupported {
        /// What is missing, in words.
        what: String,
    } = 3,
    /// the microvisor refused the operation
    Capability(CapError) = 4,
    /// malformed request
    BadRequest = 5,
    /// management protocol version mismatch
    VersionMismatch {
        /// The server's version.
        ours: Version,
    } = 6,
    /// dom0 cannot be paused, destroyed or restarted: it runs the management service
    Dom0Protected = 7,
    /// message larger than the frame limit
    TooLarge = 8,
    /// refused (the reason says why)
    Refused {
        /// Why, in words.
        why: String,
    } = 9,
}

impl MgmtError {
    /// The stable wire code (never 0).
    pub const fn code(&self) -> u32 {
        match self {
            Self::UnknownDomain => 1,
            Self::WrongState { .. } => 2,
            Self::NotSupported { .. } => 3,
            Self::Capability(_) => 4,
            Self::BadRequest => 5,
            Self::VersionMismatch { .. } => 6,
            Self::Dom0Protected => 7,
            Self::TooLarge => 8,
            Self::Refused { .. } => 9,
        }
    }
}

impl fmt::Display for MgmtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDomain => f.write_str("no such domain"),
            Self::WrongState { state } => {
                write!(f, "not allowed while the domain is {}", state_word(state))
            }
            Self::NotSupported { what } => write!(f, "not supported yet: {what}"),
            Self::Capability(e) => write!(f, "the microvisor refused: {e}"),
            Self::BadRequest => f.write_str("malformed request"),
            Self::VersionMismatch { ours } => write!(
                f,
                "management protocol version mismatch: dom0 speaks {}.{}",
                ours.major, ours.minor
            ),
            Self::Dom0Protected => f.write_str(
                "dom0 cannot be paused, destroyed or restarted: it runs the management service",
            ),
            Self::TooLarge => write!(f, "message larger than the {MAX_FRAME}-byte frame limit"),
            Self::Refused { why } => f.write_str(why),
        }
    }
}

impl From<CapError> for MgmtError {
    fn from(e: CapError) -> Self {
        Self::Capability(e)
    }
}

impl From<FrameError> for MgmtError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge => Self::TooLarge,
            FrameError::BadEncoding | FrameError::BadMessage => Self::BadRequest,
        }
    }
}

/// A state as one word for tables: `created`, `running`, `paused`, `shutdown`,
/// `rebooting`, `crashed`.
pub fn state_word(s: &DomainState) -> &'static str {
    match s {
        DomainState::Created => "created",
        DomainState::Running => "running",
        DomainState::Paused => "paused",
        DomainState::Stopped(StopReason::PowerOff) => "shutdown",
        DomainState::Stopped(StopReason::Reboot) => "rebooting",
        DomainState::Stopped(_) => "crashed",
    }
}

mod counters;
mod device;
mod health;
mod uplink;
mod upload;
mod vbd;
mod vcpu;
mod vif;
pub use device::DeviceRow;
pub use health::{crash_code_text, HealthRow, RestartReason, RestartRecord};
pub use uplink::{UplinkCounters, UPLINK_COUNTERS_KEY};
pub use vbd::{VbdCounters, VbdRow, VBD_COUNTERS_KEY};
pub use vcpu::{state_letter, VcpuRow};
pub use vif::{VifCounters, VifRow, VIF_COUNTERS_KEY};

#[cfg(test)]
mod tests;
