//! The capability protocol: operations a domain asks of the microvisor over `HVC #0`.
//!
//! Calling convention (SMCCC, fast call, vendor-specific hypervisor service range):
//! `x0` = function id (`FN_BASE + op`), `x1..x6` = arguments; on return `x0` = 0 or a
//! [`CapError`] code, `x1..x3` = results. Variable-size requests and replies are postcard
//! bytes in the calling vCPU's message page (registered with [`CapOp::MsgPageSet`]); the byte
//! length travels in a register. Every operation below documents who may call it, what
//! capability it needs and whether it is idempotent.

use crate::cap::CapHandle;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Base of our function ids: SMC64 fast call, owner 6 (vendor-specific hypervisor service).
pub const FN_BASE: u32 = 0xC600_0000;
/// Owning-entity mask of an SMCCC function id (bits 24..30) plus the call-type bits.
pub const FN_OWNER_MASK: u32 = 0xFF00_0000;
/// SMCCC "not supported" return, used for ids outside our range.
pub const SMCCC_NOT_SUPPORTED: u64 = u64::MAX; // -1
/// Size of a per-vCPU message page.
pub const MSG_PAGE_SIZE: usize = 4096;
/// Bytes of console text carried in registers `x2..x6` by [`CapOp::ConsoleWrite`].
pub const CONSOLE_REG_BYTES: usize = 40;
/// Bytes of console input returned in registers `x2..x3` by [`CapOp::ConsoleRead`].
pub const CONSOLE_READ_BYTES: usize = 16;
/// Bytes one `ConsoleWriteFor` carries (four registers).
pub const CONSOLE_FOR_BYTES: usize = 32;

/// A protocol version. Majors must match exactly; a caller's minor may be at most ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Incompatible changes.
    pub major: u16,
    /// Compatible additions.
    pub minor: u16,
}

impl Version {
    /// Packs into a register.
    pub const fn to_raw(self) -> u64 {
        ((self.major as u64) << 16) | self.minor as u64
    }
    /// Unpacks from a register (upper bits ignored).
    pub const fn from_raw(raw: u64) -> Self {
        Self {
            major: (raw >> 16) as u16,
            minor: raw as u16,
        }
    }
    /// Whether a caller speaking `client` may talk to a server speaking `self`.
    pub const fn accepts(self, client: Version) -> bool {
        self.major == client.major && client.minor <= self.minor
    }
}

/// The version this tree speaks. 8.0: `LockHolds`' per-CPU record gained its waits for
/// the lock (its encoding changed); 7.1: `DomainBeatsMany`; 7.0: `DomainSpec` gained
/// `budgets` (its encoding changed); 6.0: `LockHolds`' interrupt passes name their INTID,
/// and its per-CPU record counts them by INTID (its encoding changed); 5.0: `LockHolds`'
/// per-CPU record gained its passes by reason (its encoding changed); 4.1: `LockHolds`; 4.0: `DomainSpec` gained `pmu` (its
/// encoding changed, so a 3.x caller's `DomainCreate` would not decode); 3.4:
/// `DomainVcpuBudget`.
pub const PROTOCOL_VERSION: Version = Version { major: 8, minor: 0 };

/// Capability-protocol operations (`x0 = FN_BASE + op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum CapOp {
    /// Any domain. `x1` = caller's [`Version`]. Must precede every other call but
    /// `ConsoleWrite`/`NullCall`. Returns `x1` = our version. Idempotent.
    Negotiate = 0,
    /// Any domain holding a Console cap (every domain gets one). `x1` = byte count
    /// (≤ [`CONSOLE_REG_BYTES`]), `x2..x6` = bytes, little-endian. Not idempotent (prints).
    ConsoleWrite = 1,
    /// Any domain. `x1` = guest-physical address of a 4 KiB page in the caller's RAM; it
    /// becomes the calling vCPU's message page. Idempotent.
    MsgPageSet = 2,
    /// Any domain. Writes `Vec<CapInfo>` to the message page; `x1` = length. Idempotent.
    CapList = 3,
    /// Holder of a Module cap (READ). `x1` = handle. Returns `x1` = size. Idempotent.
    ModuleInfo = 4,
    /// Holder of a Module cap (READ). `x1` = handle, `x2` = offset, `x3` = length
    /// (≤ page). Copies module bytes into the message page; `x1` = bytes copied. Idempotent.
    ModuleRead = 5,
    /// Holder of Module (READ) and Memory (WRITE) caps. Message page holds a postcard
    /// [`DomainSpec`] of `x1` bytes. Creates a paused domain; returns `x1` = Domain cap
    /// handle, `x2` = domain id. Not idempotent.
    DomainCreate = 6,
    /// Holder of a Domain cap (CONTROL). `x1` = handle. Starts vCPU 0 of a created domain.
    DomainStart = 7,
    /// Holder of a Domain cap (CONTROL). `x1` = handle. Idempotent.
    DomainPause = 8,
    /// Holder of a Domain cap (CONTROL). `x1` = handle. Idempotent.
    DomainUnpause = 9,
    /// Holder of a Domain cap (CONTROL). `x1` = handle. Stops the domain, scrubs and frees
    /// its memory and revokes the handle (later use: `Stale`). Not idempotent.
    DomainDestroy = 10,
    /// Holder of a Domain cap (READ). `x1` = handle, or [`SELF_DOMAIN`] (any domain, about
    /// itself). Writes a postcard [`DomainInfo`] to the message page; `x1` = length.
    /// Idempotent.
    DomainQuery = 11,
    /// Any domain. Does nothing; the benchmark's round trip. Idempotent.
    NullCall = 12,
    /// Any domain. Returns `x1` = calling domain id, `x2` = calling vCPU index. Idempotent.
    WhoAmI = 13,
    /// Holder of a Console cap. `x1` = most bytes wanted (≤ [`CONSOLE_READ_BYTES`]). Takes
    /// console input typed while this domain had the console focus: `x1` = count, bytes in
    /// `x2..x3` (little-endian). Never blocks; 0 bytes when there is none. Not idempotent.
    ConsoleRead = 14,
    /// Any domain, about itself: an unrecoverable error (a panic). `x1` = a code for the
    /// log. Stops the caller with [`StopReason::Crashed`]; does not return.
    Crash = 15,
    /// Holder of a Domain cap (CONTROL). `x1` = handle. Rebuilds a stopped (or running)
    /// domain in place from the same spec: same domain id, fresh memory, vCPU 0 started.
    /// The old handle becomes `Stale`; returns `x1` = the new handle. Not idempotent.
    DomainRestart = 16,
    /// Any domain. Returns `x1` = bit mask of domain ids (bit n = domain n) whose state
    /// changed since the caller last asked, among the domains it holds Domain caps for, and
    /// clears it. The microvisor raises [`crate::layout::CONTROL_EVENT_PPI`] on the
    /// controller's vCPU 0 when a bit gets set. Not idempotent.
    DomainEvents = 17,
    /// Holder of a Device cap (WRITE), about itself. `x1` = handle. Maps the device's MMIO
    /// page(s) into the caller at the same guest-physical address as the host-physical one
    /// and routes its interrupts to the caller's vCPU 0 as virtual SPIs with the same
    /// INTIDs. Returns `x1` = MMIO base, `x2` = size, `x3` = the holder's DMA offset
    /// (host-physical minus guest-physical address of its RAM, which a device without an
    /// IOMMU needs; 0 if its RAM is not one contiguous run). Idempotent for the same holder; a
    /// device already mapped by another domain is `WrongState`.
    DeviceMap = 18,
    /// Holder of a Console cap with READ (dom0). `x1` = offset in the console history.
    /// Copies up to a page of the microvisor's console output (its own log and every
    /// domain's lines) into the message page: `x1` = bytes copied, `x2` = offset of the first
    /// byte copied (later than asked if that part was overwritten), `x3` = bytes written so
    /// far in total. Idempotent.
    LogRead = 19,
    /// Holder of a Domain cap (WRITE). `x1` = handle, `x2` = byte count (≤
    /// [`CONSOLE_READ_BYTES`]), bytes in `x3..x4` (little-endian). Queues console input for
    /// the domain, as if typed while it had the focus (`ctl console`). Not idempotent.
    ConsoleInject = 20,
    /// Holder of a Domain cap (CONTROL). `x1` = handle, `x2` = a [`ShutdownKind`]. Asks the
    /// domain to power off or reboot cleanly: the microvisor records the request and raises
    /// [`crate::layout::SHUTDOWN_PPI`] on its vCPU 0; the domain reads it with
    /// `ShutdownPending` and stops itself. Idempotent.
    DomainShutdown = 21,
    /// Any domain, about itself: `x1` = the pending [`ShutdownKind`] as a number, 0 if none.
    /// Idempotent.
    ShutdownPending = 22,
    /// Holder of a Domain cap (WRITE): the console backend (dom0) of a PV-console guest.
    /// `x1` = handle, `x2` = byte count (≤ [`CONSOLE_FOR_BYTES`]), bytes in `x3..x6`
    /// (little-endian). Appends the bytes to that domain's console output, as if it had
    /// written them itself (its name prefix, its rate limit). Not idempotent.
    ConsoleWriteFor = 23,
    /// Holder of a Domain cap (WRITE): the console backend. `x1` = handle, `x2` = most bytes
    /// wanted (≤ [`CONSOLE_READ_BYTES`]). Takes that domain's queued console input (typed
    /// while it had the focus, or injected): `x1` = count, bytes in `x2..x3`. Never blocks.
    /// Not idempotent.
    ConsoleReadFor = 24,
    /// Holder of a Domain cap (CONTROL); a test capability (`ctl crash`). `x1` = handle.
    /// Makes the domain's vCPU 0 take an Undefined Instruction exception at EL1 the next
    /// time it runs, exactly as if it had executed one: a genuine fault that its own
    /// exception handling meets (ours report a crash). `WrongState` unless it is running.
    /// `x2` = a [`FaultKind`] (0, the exception, for callers that predate hangs);
    /// [`FaultKind::Hang`] instead makes every vCPU of the domain spin, from its next HVC or
    /// WFI on, on that instruction with interrupts masked, without changing its state or
    /// telling its controller: it stays busy and never gets back to its work, as a wedged
    /// domain does. Only a restart (or destroy) ends a hang.
    DomainFault = 25,
    /// Any domain, about itself: a heartbeat (the runtime sends one at most once a second
    /// from its idle wait once the domain is ready). The microvisor only stamps the time
    /// (`CNTPCT`, which every domain reads unoffset as `CNTVCT`) and counts; deciding
    /// that a silent domain is hung is its controller's business ([`CapOp::DomainBeats`]).
    /// Idempotent apart from the count.
    Heartbeat = 26,
    /// Holder of a Domain cap (READ). `x1` = handle. The current incarnation's heartbeats:
    /// `x1` = how many, `x2` = counter value of the first, `x3` = of the latest (both 0
    /// while none). A domain restarting in place reports none. Idempotent.
    DomainBeats = 27,
    /// Holder of a Domain cap (READ). `x1` = handle, or [`SELF_DOMAIN`] (any domain, about
    /// itself). Writes a postcard `Vec<`[`VcpuInfo`]`>` (one per vCPU, in index order) to the
    /// message page; `x1` = length. Idempotent. (Protocol 3.2.)
    DomainVcpus = 28,
    /// Holder of a Memory cap (WRITE). `x1` = its handle, `x2` = size in bytes (> 0). The
    /// message page holds the module's label as postcard `String` (≤ 31 bytes) of `x3`
    /// bytes. Allocates an empty (zeroed) module of that size, charged to the quota, and
    /// returns `x1` = a Module cap with READ and WRITE (`xl create` of a file from the host:
    /// the toolstack fills it with [`CapOp::ModuleWrite`]). Not idempotent. (Protocol 3.3.)
    ModuleCreate = 29,
    /// Holder of a Module cap (WRITE). `x1` = handle, `x2` = offset, `x3` = length (≤ a
    /// page): copies that many bytes from the start of the message page into the module.
    /// `WrongState` once a domain was created from it (it is then sealed). Idempotent.
    ModuleWrite = 30,
    /// Holder of a Module cap (WRITE). `x1` = handle. Revokes the cap; the module's memory
    /// goes back to the quota it came from once no domain built from it is left (a domain
    /// keeps its modules for restarts in place). Not idempotent.
    ModuleFree = 31,
    /// Holder of a Domain cap (CONTROL). `x1` = handle, `x2` = vCPU index, `x3` = pCPU,
    /// `x4` = priority. Re-pins a shared vCPU at run time (`xl vcpu-pin`): it moves to that
    /// pCPU's run queue (once its old CPU has let go of it) with that priority.
    /// `CpuUnavailable` for a pCPU that does not exist or is held exclusively, `WrongState`
    /// for an exclusive vCPU or a domain holding passthrough devices. Idempotent.
    /// (Protocol 3.3.)
    DomainVcpuPin = 32,
    /// Any domain, about its calling vCPU. `x1` = counter ticks this vCPU has spent idle in
    /// WFI since it started (a running total). A pinned-exclusive vCPU's WFI is not
    /// trapped, so the microvisor cannot see its idle time: `DomainQuery`/`DomainVcpus`
    /// report its CPU time less this. Affects only the caller's own accounting.
    /// Idempotent. (Protocol 3.3.)
    IdleReport = 33,
    /// Holder of a Domain cap (CONTROL). `x1` = handle, `x2` = vCPU index, `x3` = budget
    /// and `x4` = period, in microseconds: the shared vCPU may run at its priority for
    /// that much guest time per period, and below every vCPU within its budget once that is
    /// used (a deferrable server, see the microvisor's `sched` module). `0`/`0` removes the
    /// budget. `InvalidArgument` unless `BUDGET_MIN_US <= budget <= period <=
    /// BUDGET_PERIOD_MAX_US` (or both 0), `WrongState` for an exclusive vCPU. The periods
    /// start when it is set. Kept while the vCPU is re-pinned; a restart in place gives it
    /// its configured budget again ([`DomainSpec::budgets`]).
    /// Idempotent (setting it again restarts the windows). (Protocol 3.4.)
    DomainVcpuBudget = 34,
    /// Holder of a Console cap with READ (dom0), as for [`CapOp::LogRead`]. `x1` = 0 to
    /// read, 1 to read and then start the record again. Writes a postcard
    /// [`crate::lock_holds::LockHolds`] to the message page (each CPU's locked passes and its
    /// longest global-lock hold with what it was for, since boot or the last reset); `x1` =
    /// length. `InvalidArgument` for another `x1`. Idempotent with `x1` = 0. (Protocol 4.1.)
    LockHolds = 35,
    /// Holder of Domain caps (READ): [`CapOp::DomainBeats`] for several domains in one call,
    /// each with its CPU time, so a controller's watchdog reads all it watches in one exit.
    /// The message page holds a postcard `Vec<u64>` of raw handles (at most
    /// [`BEATS_MANY_MAX`]) of `x1` bytes; writes a postcard `Vec<Result<`[`BeatsReading`]`,
    /// CapError>>` (one per handle, in order: a handle that is no Domain cap with READ, or
    /// names a gone incarnation, gets its error) to the message page; `x1` = length.
    /// `TooLarge` for more handles, `BadMessage` for an undecodable list. Idempotent.
    /// (Protocol 7.1.)
    DomainBeatsMany = 36,
}

/// Most handles one [`CapOp::DomainBeatsMany`] takes.
pub const BEATS_MANY_MAX: usize = 32;

/// One domain's answer in [`CapOp::DomainBeatsMany`]: its current incarnation's beats (as
/// [`CapOp::DomainBeats`]) and its CPU time (as [`DomainInfo::cpu_ticks`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeatsReading {
    /// Its heartbeats.
    pub beats: Beats,
    /// Time spent running guest code, summed over vCPUs, in counter ticks.
    pub cpu_ticks: u64,
}

/// The smallest budget [`CapOp::DomainVcpuBudget`] takes: 100 µs, well above the cost of
/// the exits that enforce it.
pub const BUDGET_MIN_US: u32 = 100;

/// The longest period [`CapOp::DomainVcpuBudget`] takes: 10 s.
pub const BUDGET_PERIOD_MAX_US: u32 = 10_000_000;

/// Whether `budget_us`/`period_us` is a budget [`CapOp::DomainVcpuBudget`] takes (`0`/`0`
/// being none).
pub const fn budget_valid(budget_us: u32, period_us: u32) -> bool {
    (budget_us == 0 && period_us == 0)
        || (budget_us >= BUDGET_MIN_US
            && budget_us <= period_us
            && period_us <= BUDGET_PERIOD_MAX_US)
}

/// Whether `budget_us`/`period_us` is a budget a domain may be given at creation (the
/// system description's `budget_us`/`period_us`, `ctl create --budget-us/--period-us`): one
/// [`budget_valid`] takes, and not `0`/`0` (giving none is leaving the keys out).
pub const fn budget_givable(budget_us: u32, period_us: u32) -> bool {
    budget_us != 0 && budget_valid(budget_us, period_us)
}

/// Whether `budgets` fits `vcpus` as [`DomainSpec::budgets`] must: empty, or one valid
/// budget per vCPU ([`budget_valid`]) with none on an exclusive one.
pub fn budgets_valid(vcpus: &[VcpuPlacement], budgets: &[(u32, u32)]) -> bool {
    budgets.is_empty()
        || (budgets.len() == vcpus.len()
            && vcpus
                .iter()
                .zip(budgets)
                .all(|(v, &(b, p))| budget_valid(b, p) && (!v.exclusive || (b, p) == (0, 0))))
}

/// In `x1` of [`CapOp::DomainQuery`] and [`CapOp::DomainVcpus`]: the caller itself. It has
/// reserved bits set, so it is never a capability handle.
pub const SELF_DOMAIN: u64 = u64::MAX;

/// What a vCPU is doing, as `xl vcpu-list` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VcpuState {
    /// Powered off (never started, or PSCI CPU_OFF).
    Off,
    /// Runnable or running guest code.
    Running,
    /// Waiting in a trapped WFI for an interrupt.
    Blocked,
}

impl VcpuState {
    /// The state of a vCPU that is powered on or not and waiting in WFI or not (a vCPU
    /// powered off is off, whatever it was waiting for).
    pub const fn of(powered_on: bool, in_wfi: bool) -> Self {
        match (powered_on, in_wfi) {
            (false, _) => Self::Off,
            (true, true) => Self::Blocked,
            (true, false) => Self::Running,
        }
    }
}

/// One vCPU, for [`CapOp::DomainVcpus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuInfo {
    /// Its index in the domain.
    pub vcpu: u16,
    /// Where it runs, and how.
    pub placement: VcpuPlacement,
    /// What it is doing.
    pub state: VcpuState,
    /// Time spent running guest code, in counter ticks: idle time in WFI is not counted
    /// (a pinned-exclusive vCPU that does not trap WFI reports its own, `IdleReport`).
    pub cpu_ticks: u64,
    /// Traps to the microvisor.
    pub exits: u64,
    /// Its budget per period in microseconds (`CapOp::DomainVcpuBudget`); `(0, 0)` for
    /// none. Since 3.4.
    pub budget_us: (u32, u32),
}

/// What `CapOp::DomainFault` does to the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u64)]
pub enum FaultKind {
    /// An Undefined Instruction exception on vCPU 0.
    Exception = 0,
    /// Every vCPU spins with interrupts masked; nobody is told.
    Hang = 1,
}

impl FaultKind {
    /// Decodes a register; `None` for anything else.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        match raw {
            0 => Some(Self::Exception),
            1 => Some(Self::Hang),
            _ => None,
        }
    }
}

/// `CapOp::DomainBeats`' reply: one incarnation's heartbeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beats {
    /// Heartbeats so far.
    pub count: u64,
    /// Counter value of the first (0: none yet).
    pub first: u64,
    /// Counter value of the latest (0: none yet).
    pub last: u64,
}

impl Beats {
    /// Records a beat at counter value `now`.
    pub fn beat(&mut self, now: u64) {
        // A zero stamp means "none"; a beat at counter 0 is recorded as 1 tick later.
        let now = now.max(1);
        if self.count == 0 {
            self.first = now;
        }
        self.count = self.count.saturating_add(1);
        self.last = now;
    }
}

/// What a shutdown request asks for (`CapOp::DomainShutdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u64)]
pub enum ShutdownKind {
    /// Power off.
    PowerOff = 1,
    /// Reboot.
    Reboot = 2,
}

impl ShutdownKind {
    /// Decodes a register; `None` for anything else.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        match raw {
            1 => Some(Self::PowerOff),
            2 => Some(Self::Reboot),
            _ => None,
        }
    }
}

impl TryFrom<u32> for CapOp {
    type Error = CapError;
    fn try_from(op: u32) -> Result<Self, CapError> {
        Ok(match op {
            0 => Self::Negotiate,
            1 => Self::ConsoleWrite,
            2 => Self::MsgPageSet,
            3 => Self::CapList,
            4 => Self::ModuleInfo,
            5 => Self::ModuleRead,
            6 => Self::DomainCreate,
            7 => Self::DomainStart,
            8 => Self::DomainPause,
            9 => Self::DomainUnpause,
            10 => Self::DomainDestroy,
            11 => Self::DomainQuery,
            12 => Self::NullCall,
            13 => Self::WhoAmI,
            14 => Self::ConsoleRead,
            15 => Self::Crash,
            16 => Self::DomainRestart,
            17 => Self::DomainEvents,
            18 => Self::DeviceMap,
            19 => Self::LogRead,
            20 => Self::ConsoleInject,
            21 => Self::DomainShutdown,
            22 => Self::ShutdownPending,
            23 => Self::ConsoleWriteFor,
            24 => Self::ConsoleReadFor,
            25 => Self::DomainFault,
            26 => Self::Heartbeat,
            27 => Self::DomainBeats,
            28 => Self::DomainVcpus,
            29 => Self::ModuleCreate,
            30 => Self::ModuleWrite,
            31 => Self::ModuleFree,
            32 => Self::DomainVcpuPin,
            33 => Self::IdleReport,
            34 => Self::DomainVcpuBudget,
            35 => Self::LockHolds,
            36 => Self::DomainBeatsMany,
            _ => return Err(CapError::UnknownCall),
        })
    }
}

impl CapOp {
    /// The SMCCC function id for this operation.
    pub const fn function_id(self) -> u32 {
        FN_BASE + self as u32
    }
    /// Decodes an `x0` value in our range; `None` if it is not one of our function ids.
    pub fn from_function_id(fid: u64) -> Option<Result<Self, CapError>> {
        let fid = u32::try_from(fid).ok()?;
        if fid & FN_OWNER_MASK != FN_BASE & FN_OWNER_MASK {
            return None;
        }
        Some(Self::try_from(fid & !FN_OWNER_MASK))
    }
}

/// Errors of the capability protocol. Wire code in `x0`; 0 means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u32)]
#[non_exhaustive]
pub enum CapError {
    /// unknown capability-protocol operation
    UnknownCall = 1,
    /// protocol version mismatch (x1 holds the microvisor's version)
    VersionMismatch = 2,
    /// the caller has not negotiated a protocol version yet
    NotNegotiated = 3,
    /// no capability at that handle
    InvalidHandle = 4,
    /// the handle refers to an object that has since been destroyed or replaced
    Stale = 5,
    /// the capability is of the wrong kind for this operation
    WrongKind = 6,
    /// the capability lacks the rights this operation needs
    NoRights = 7,
    /// an argument is out of range or malformed
    InvalidArgument = 8,
    /// not enough memory in the pool or quota
    NoMemory = 9,
    /// the calling vCPU has no message page registered
    NoMsgPage = 10,
    /// a guest address is not in the caller's RAM
    Fault = 11,
    /// the message page does not hold a valid encoded request
    BadMessage = 12,
    /// the object is not in a state that allows the operation
    WrongState = 13,
    /// the caller's capability table or the domain table is full
    NoSlots = 14,
    /// the reply does not fit in the message page
    TooLarge = 15,
    /// the requested physical CPU does not exist or is already exclusively owned
    CpuUnavailable = 16,
}

impl CapError {
    /// Decodes a wire code; `None` for 0 (success) and unknown codes.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::UnknownCall,
            2 => Self::VersionMismatch,
            3 => Self::NotNegotiated,
            4 => Self::InvalidHandle,
            5 => Self::Stale,
            6 => Self::WrongKind,
            7 => Self::NoRights,
            8 => Self::InvalidArgument,
            9 => Self::NoMemory,
            10 => Self::NoMsgPage,
            11 => Self::Fault,
            12 => Self::BadMessage,
            13 => Self::WrongState,
            14 => Self::NoSlots,
            15 => Self::TooLarge,
            16 => Self::CpuUnavailable,
            _ => return None,
        })
    }

    /// The message for this error (its doc comment).
    pub const fn message(self) -> &'static str {
        match self {
            Self::UnknownCall => "unknown capability-protocol operation",
            Self::VersionMismatch => "protocol version mismatch",
            Self::NotNegotiated => "protocol version not negotiated",
            Self::InvalidHandle => "no capability at that handle",
            Self::Stale => "stale handle: the object was destroyed or replaced",
            Self::WrongKind => "capability of the wrong kind",
            Self::NoRights => "capability lacks the needed rights",
            Self::InvalidArgument => "invalid argument",
            Self::NoMemory => "out of memory",
            Self::NoMsgPage => "no message page registered",
            Self::Fault => "guest address outside the caller's RAM",
            Self::BadMessage => "malformed request in the message page",
            Self::WrongState => "object in the wrong state",
            Self::NoSlots => "table full",
            Self::TooLarge => "reply too large for the message page",
            Self::CpuUnavailable => "physical CPU unavailable",
        }
    }
}

impl core::fmt::Display for CapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// Where and how one vCPU of a new domain runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuPlacement {
    /// Physical CPU index (order of the host DT's cpu nodes).
    pub pcpu: u16,
    /// Fixed priority; higher runs first. Ignored when `exclusive`.
    pub priority: u8,
    /// The only vCPU on its pCPU: no scheduler on the path, WFI not trapped.
    pub exclusive: bool,
}

/// How much of the CPU's performance monitors (PMU) a domain gets: the system TOML's `pmu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PmuAccess {
    /// None (the default): `ID_AA64DFR0_EL1.PMUVer` reads 0 and every PMU register access
    /// is an Undefined Instruction exception.
    #[default]
    Off,
    /// Its own counters, saved and restored with each vCPU; they do not count while the
    /// microvisor runs (`MDCR_EL2.HPMD`, and `HCCD` where the CPU has it).
    Guest,
    /// As `Guest`, and the counters may also count at EL2, i.e. the microvisor's work on
    /// the domain's behalf: for benchmarks only (it is a side channel on the microvisor).
    El2,
}

impl PmuAccess {
    /// The TOML spellings, in declaration order.
    pub const NAMES: [&'static str; 3] = ["off", "guest", "el2"];

    /// Parses a TOML spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "off" => Some(Self::Off),
            "guest" => Some(Self::Guest),
            "el2" => Some(Self::El2),
            _ => None,
        }
    }
}

/// `CapOp::DomainCreate`'s request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSpec {
    /// Name shown in logs and listings (≤ 31 bytes).
    pub name: String,
    /// Module cap of the image: a Bulkhead flat image (loaded at the start of guest RAM,
    /// start info at the top) or an arm64 Linux `Image` (booted per Linux's protocol with a
    /// generated device tree, as a Xen-ABI guest). The microvisor tells them apart by the
    /// Linux header's magic, as Xen's toolstack does.
    pub image: CapHandle,
    /// Module cap of an initramfs (Linux images only).
    pub ramdisk: Option<CapHandle>,
    /// Memory cap the RAM is drawn from.
    pub memory: CapHandle,
    /// RAM size in MiB.
    pub mem_mib: u32,
    /// One entry per vCPU.
    pub vcpus: Vec<VcpuPlacement>,
    /// Free-form arguments handed to the domain in its start info.
    pub cmdline: String,
    /// Device caps (with `DELEGATE`) whose devices the new domain receives: it gets its own
    /// Device cap for each, keeps it across restarts in place, and is the only domain that
    /// may map the device until it is destroyed (DESIGN §6.1).
    pub devices: Vec<CapHandle>,
    /// Where an ordinary guest (one that does not map its devices itself, as driver domains
    /// do with `DeviceMap`) sees them: each window is mapped into its stage 2 at creation and
    /// described in its generated device tree, and the device's SPIs are forwarded. Every
    /// window must be whole pages of a device in `devices` (xl `iomem`/`dtdev`).
    pub windows: Vec<DeviceWindow>,
    /// Module cap of a device-tree fragment (xl `device_tree`, merged by the tools): the
    /// children of its root are added to the root of a Linux guest's generated tree.
    pub device_tree: Option<CapHandle>,
    /// Its access to the performance monitors. Since 4.0.
    pub pmu: PmuAccess,
    /// Each vCPU's budget per period in µs (`(0, 0)`: none), as [`CapOp::DomainVcpuBudget`]
    /// gives one, and given again at each restart in place (the domain comes back as it was
    /// configured); empty: none. Otherwise one per vCPU, each valid ([`budget_valid`]) and
    /// none on an exclusive vCPU, or `DomainCreate` fails with `InvalidArgument`. Since 7.0.
    pub budgets: Vec<(u32, u32)>,
}

/// Host pages of a passed-through device and the guest address they appear at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceWindow {
    /// Host physical address, page aligned.
    pub host: u64,
    /// Guest physical address, page aligned.
    pub guest: u64,
    /// Bytes, whole pages.
    pub size: u64,
}

/// Why a domain stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StopReason {
    /// It asked to power off (PSCI SYSTEM_OFF).
    PowerOff,
    /// It asked to reboot (PSCI SYSTEM_RESET).
    Reboot,
    /// It touched guest-physical memory it does not have.
    Stage2Fault {
        /// The faulting guest-physical address.
        ipa: u64,
        /// Its exception syndrome.
        esr: u64,
    },
    /// It reported a crash (`CapOp::Crash`, e.g. a panic).
    Crashed {
        /// The code it passed.
        code: u64,
    },
    /// It took an exception the microvisor cannot emulate or reflect.
    UnhandledTrap {
        /// Exception syndrome.
        esr: u64,
        /// Guest PC.
        pc: u64,
    },
}

/// Lifecycle state of a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DomainState {
    /// Built, not yet started.
    Created,
    /// At least one vCPU may run.
    Running,
    /// Paused by its controller.
    Paused,
    /// Stopped; memory kept until destroyed.
    Stopped(StopReason),
}

/// `CapOp::DomainQuery`'s reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    /// Domain id.
    pub domid: u16,
    /// Name.
    pub name: String,
    /// State.
    pub state: DomainState,
    /// Number of vCPUs.
    pub vcpus: u16,
    /// vCPUs powered on.
    pub vcpus_online: u16,
    /// RAM in MiB.
    pub mem_mib: u32,
    /// Time spent running guest code, summed over vCPUs, in counter ticks.
    pub cpu_ticks: u64,
    /// Traps to the microvisor, summed over vCPUs.
    pub exits: u64,
    /// Virtual interrupts injected, summed over vCPUs.
    pub irqs_injected: u64,
    /// Times the domain was restarted in place (`DomainRestart`).
    pub restarts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_state_from_power_and_wfi() {
        assert_eq!(VcpuState::of(false, true), VcpuState::Off);
        assert_eq!(VcpuState::of(true, true), VcpuState::Blocked);
        assert_eq!(VcpuState::of(true, false), VcpuState::Running);
        assert_eq!(CapOp::try_from(28), Ok(CapOp::DomainVcpus));
        assert_eq!(CapOp::try_from(31), Ok(CapOp::ModuleFree));
        assert_eq!(CapOp::try_from(32), Ok(CapOp::DomainVcpuPin));
        assert_eq!(CapOp::try_from(33), Ok(CapOp::IdleReport));
        assert_eq!(CapOp::try_from(34), Ok(CapOp::DomainVcpuBudget));
        assert!(budget_valid(0, 0) && budget_valid(2_000, 10_000));
        assert!(!budget_givable(0, 0) && budget_givable(2_000, 10_000));
        assert!(!budget_givable(99, 10_000) && !budget_givable(0, 10_000));
        assert!(budget_valid(BUDGET_MIN_US, BUDGET_MIN_US));
        assert!(!budget_valid(0, 10_000) && !budget_valid(99, 10_000));
        assert!(!budget_valid(20_000, 10_000) && !budget_valid(1_000, 10_000_001));
        assert_eq!(CapOp::try_from(35), Ok(CapOp::LockHolds));
        assert_eq!(CapOp::try_from(36), Ok(CapOp::DomainBeatsMany));
        assert_eq!(CapOp::try_from(37), Err(CapError::UnknownCall));
    }

    #[test]
    fn function_ids_round_trip() {
        for op in [CapOp::Negotiate, CapOp::DomainCreate, CapOp::WhoAmI] {
            let fid = u64::from(op.function_id());
            assert_eq!(CapOp::from_function_id(fid), Some(Ok(op)));
        }
        assert_eq!(
            CapOp::from_function_id(u64::from(FN_BASE + 999)),
            Some(Err(CapError::UnknownCall))
        );
        // PSCI ids belong to another owner.
        assert_eq!(CapOp::from_function_id(0x8400_0000), None);
        assert_eq!(
            CapOp::from_function_id(u64::from(FN_BASE) | (1 << 40)),
            None
        );
    }

    #[test]
    fn version_check() {
        assert!(PROTOCOL_VERSION.accepts(PROTOCOL_VERSION));
        assert!(!PROTOCOL_VERSION.accepts(Version {
            major: PROTOCOL_VERSION.major + 1,
            minor: 0
        }));
        assert!(!PROTOCOL_VERSION.accepts(Version {
            major: 1,
            minor: PROTOCOL_VERSION.minor + 1
        }));
        assert_eq!(
            Version::from_raw(PROTOCOL_VERSION.to_raw()),
            PROTOCOL_VERSION
        );
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 1..=16u64 {
            let e = CapError::from_code(code).expect("known code");
            assert_eq!(e as u64, code);
        }
        assert_eq!(CapError::from_code(0), None);
        assert_eq!(CapError::from_code(999), None);
    }

    #[test]
    fn budgets_fit_their_vcpus_or_are_refused() {
        let at = |exclusive| VcpuPlacement {
            pcpu: 1,
            priority: 10,
            exclusive,
        };
        let (shared, exclusive) = ([at(false), at(false)], [at(true)]);
        assert!(budgets_valid(&shared, &[]));
        assert!(budgets_valid(&shared, &[(2_000, 10_000), (0, 0)]));
        assert!(!budgets_valid(&shared, &[(2_000, 10_000)]), "one per vCPU");
        assert!(!budgets_valid(&shared, &[(20_000, 10_000), (0, 0)]));
        assert!(!budgets_valid(&shared, &[(0, 10_000), (0, 0)]));
        assert!(budgets_valid(&exclusive, &[(0, 0)]));
        assert!(!budgets_valid(&exclusive, &[(2_000, 10_000)]));
    }

    #[test]
    fn domain_spec_encodes() {
        let spec = DomainSpec {
            name: "rtos".into(),
            image: CapHandle {
                index: 3,
                generation: 1,
            },
            ramdisk: None,
            memory: CapHandle {
                index: 1,
                generation: 1,
            },
            mem_mib: 16,
            vcpus: alloc::vec![VcpuPlacement {
                pcpu: 1,
                priority: 10,
                exclusive: true
            }],
            cmdline: "hz=1000".into(),
            devices: alloc::vec![CapHandle {
                index: 7,
                generation: 2,
            }],
            windows: alloc::vec![DeviceWindow {
                host: 0x0901_0000,
                guest: 0x2000_0000,
                size: 0x1000,
            }],
            device_tree: Some(CapHandle {
                index: 9,
                generation: 1,
            }),
            pmu: PmuAccess::Guest,
            budgets: alloc::vec![(0, 0)],
        };
        let bytes = postcard::to_allocvec(&spec).unwrap();
        assert_eq!(postcard::from_bytes::<DomainSpec>(&bytes).unwrap(), spec);
        // Truncated input is an error, never a panic.
        assert!(postcard::from_bytes::<DomainSpec>(&bytes[..bytes.len() / 2]).is_err());
    }
}
