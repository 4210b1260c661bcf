//! Adversarial and measurement micro-guests: mode selection, the bad-capability probe
//! table and the out-of-RAM address, all pure so they are tested on the host.
//!
//! Output markers (matched by the QEMU tests after the `[<domain>] ` prefix): `PASS`,
//! `FAIL: <what>: expected <e> got <g>`, `touching <addr>`, `FAIL: survived`,
//! `vcpu1 online`, `vcpu0 got SGI 1 from vcpu1`, `FAIL: no SGI`,
//! `null-hypercall n=<N> el2_instructions=<X> guest_instructions=<Y>`, `done`,
//! `load vcpu<N> running`; `xenbad: …` (see [`xencheck`]); `blkfront: …`,
//! `netfront: …` and `neighbour: …` (see those modes in the binary); `hotplug: <N> rounds…`
//! then `PASS`, or `FAIL: hotplug round <r>: …` ([`hotplug_judge`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use bulkhead_runtime::cap::status_name;
use protocol::cap::CapHandle;
use protocol::control::{CapError, CapOp, Version, FN_BASE, PROTOCOL_VERSION};

pub mod xencheck;

/// What this boot of the test guest does (`mode=<x>` on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Two vCPUs exchange an SGI.
    Smp,
    /// Touch memory past the end of RAM.
    Oob,
    /// Misuse the capability protocol and expect typed errors.
    Badcap,
    /// Count instructions per null hypercall.
    Bench,
    /// Panic on purpose after a short while (exercises on_crash policies).
    Crash,
    /// Print console lines as fast as possible (the microvisor must rate-limit them).
    Flood,
    /// CPU-and-interrupt-heavy load on every vCPU: busy arithmetic, a fast virtual timer
    /// and SGIs to the next vCPU (the neighbour of `bench rt` and the RTOS tests).
    Load,
    /// Attack the Xen-compatible hypercall surface and check every answer
    /// ([`xencheck`] has its markers).
    Xenbad,
    /// An adversarial blkif frontend for blkdom (valid, refused and malformed requests).
    Blkfront,
    /// A block backend that reads its neighbour's virtio-mmio transport.
    Neighbour,
    /// An adversarial netif frontend for netdom (valid, refused and malformed TX requests,
    /// an event storm).
    Netfront,
    /// vCPU 1 powered off and on again [`HOTPLUG_ROUNDS`] times, each time at a new entry
    /// point with a new context id (PSCI CPU_OFF/CPU_ON hotplug).
    Hotplug,
    /// Back-to-back event-channel sends on every channel it has, forever (its neighbours
    /// must not notice).
    Evtstorm,
    /// vCPU 0's virtual timer expires with its PPI disabled while it waits in WFI: not
    /// delivered, not firing again and again, and delivered once when enabled.
    Timeroff,
    /// A busy loop forever that makes no calls and enables no interrupt: pure CPU demand
    /// (the scheduler's budget test shares a pCPU between two of them).
    Spin,
    /// What it sees of the PMU and the debug registers (`expect=off|guest|el2`, its
    /// system entry's `pmu`).
    Pmu,
    /// Idle vCPUs whose virtual timers fire in turn at fixed absolute times, so some timer
    /// of the machine is always due within [`METRONOME_US`] / vCPUs. Not a workload: under
    /// `-icount` QEMU runs one CPU at a time, each for a share of the time to the machine's
    /// next timer deadline, and this bounds those shares (see `SystemToml::metronome` in
    /// `tests/src/systems.rs`).
    Metronome,
}

/// Each metronome vCPU's timer period, in µs (its vCPUs are staggered across it).
pub const METRONOME_US: u64 = 40;

/// The mode from the command line, or the offending value.
pub fn parse_mode(cmdline: &str) -> Result<Mode, &str> {
    match bulkhead_runtime::cmdline::get(cmdline, "mode") {
        Some("smp") => Ok(Mode::Smp),
        Some("oob") => Ok(Mode::Oob),
        Some("badcap") => Ok(Mode::Badcap),
        Some("bench") => Ok(Mode::Bench),
        Some("crash") => Ok(Mode::Crash),
        Some("flood") => Ok(Mode::Flood),
        Some("load") => Ok(Mode::Load),
        Some("metronome") => Ok(Mode::Metronome),
        Some("xenbad") => Ok(Mode::Xenbad),
        Some("blkfront") => Ok(Mode::Blkfront),
        Some("neighbour") => Ok(Mode::Neighbour),
        Some("netfront") => Ok(Mode::Netfront),
        Some("hotplug") => Ok(Mode::Hotplug),
        Some("evtstorm") => Ok(Mode::Evtstorm),
        Some("spin") => Ok(Mode::Spin),
        Some("timeroff") => Ok(Mode::Timeroff),
        Some("pmu") => Ok(Mode::Pmu),
        Some(other) => Err(other),
        None => Err(""),
    }
}

/// The SGI the smp test sends.
pub const SMP_SGI: u32 = 1;

/// The vCPU a load vCPU sends its SGIs to: the next one, wrapping (itself if alone).
pub fn load_peer(vcpu: usize, vcpus: usize) -> usize {
    (vcpu + 1) % vcpus.max(1)
}

/// CPU_OFF/CPU_ON rounds of the hotplug mode.
pub const HOTPLUG_ROUNDS: u32 = 1000;
/// Entry points the hotplug mode alternates between (the binary has one stub per index).
pub const HOTPLUG_ENTRIES: u64 = 2;
/// Tag in the high half of every hotplug context id (a zeroed or stale register is not one).
const HOTPLUG_TAG: u64 = 0x4850_4c47 << 32;

/// The context id CPU_ON passes to vCPU 1 in `round`: different every round.
pub fn hotplug_context(round: u32) -> u64 {
    HOTPLUG_TAG | u64::from(round)
}

/// The entry point (stub index) vCPU 1 is started at in `round`: alternating.
pub fn hotplug_entry(round: u32) -> u64 {
    u64::from(round) % HOTPLUG_ENTRIES
}

/// What vCPU 1 reported in `round` (the context id it found in `x0` and the stub it
/// entered through), judged: `None` if it started fresh where and as it was told, else the
/// failure line.
pub fn hotplug_judge(round: u32, context: u64, entered: u64) -> Option<String> {
    let want = (hotplug_context(round), hotplug_entry(round));
    (want != (context, entered)).then(|| {
        alloc::format!(
            "FAIL: hotplug round {round}: expected context {:#x} at entry {} got context {context:#x} at entry {entered}",
            want.0, want.1
        )
    })
}

/// Null hypercalls the bench times.
pub const BENCH_CALLS: u32 = 10_000;
/// How far past the end of RAM the oob test reads.
pub const OOB_DISTANCE: u64 = 64 << 20;

/// The address the oob test reads: 64 MiB past the end of RAM, if still below 4 GiB
/// (our stage-1 map covers only that, so the fault must come from stage 2).
pub fn oob_address(ram_end: u64) -> Option<u64> {
    ram_end.checked_add(OOB_DISTANCE).filter(|&a| a < 1 << 32)
}

/// Tag of the blkfront test's read-write disk image (see [`disk_word`]).
pub const BLK_TAG_RW: u8 = 0xA1;
/// Tag of the blkfront test's read-only disk image.
pub const BLK_TAG_RO: u8 = 0xB2;

/// Every little-endian 32-bit word of 512-byte sector `sector` of the blkfront test's
/// image tagged `tag` (the host test writes the same).
pub fn disk_word(tag: u8, sector: u64) -> u32 {
    u32::from(tag) << 24 | (sector as u32 & 0x00FF_FFFF)
}

/// Size of a virtio-mmio transport on QEMU's virt board.
pub const VIRTIO_MMIO_STRIDE: u64 = 0x200;

/// A neighbouring virtio-mmio transport in the same 4 KiB page as the window
/// `base..base+size`: the one above if it is in the page, else the one below.
pub fn neighbour_of(base: u64, size: u64) -> Option<u64> {
    let page = base & !0xFFF;
    let above = base.checked_add(size.max(VIRTIO_MMIO_STRIDE))?;
    let below = base.checked_sub(VIRTIO_MMIO_STRIDE);
    if above & !0xFFF == page {
        Some(above)
    } else {
        below.filter(|b| b & !0xFFF == page)
    }
}

/// One hypercall that must fail with a defined error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// What is checked (printed on failure).
    pub what: &'static str,
    /// `x0`.
    pub fid: u64,
    /// `x1..x6`.
    pub args: [u64; 6],
    /// The error the microvisor must return.
    pub expect: CapError,
}

fn probe(what: &'static str, op: u64, a: [u64; 3], expect: CapError) -> Probe {
    Probe {
        what,
        fid: op,
        args: [a[0], a[1], a[2], 0, 0, 0],
        expect,
    }
}

fn fid(op: CapOp) -> u64 {
    u64::from(op.function_id())
}

/// Probes issued before any Negotiate (in this order).
pub fn pre_negotiate_probes() -> [Probe; 2] {
    let newer = Version {
        major: PROTOCOL_VERSION.major + 1,
        minor: 0,
    };
    [
        probe(
            "call before Negotiate",
            fid(CapOp::CapList),
            [0; 3],
            CapError::NotNegotiated,
        ),
        probe(
            "Negotiate major+1",
            fid(CapOp::Negotiate),
            [newer.to_raw(), 0, 0],
            CapError::VersionMismatch,
        ),
    ]
}

/// What the post-negotiation probes need to know about the guest.
#[derive(Clone, Copy, Debug)]
pub struct ProbeContext {
    /// This domain's Console cap.
    pub console: CapHandle,
    /// First byte past this domain's RAM.
    pub ram_end: u64,
    /// This vCPU's (page-aligned) message page.
    pub msg_page: u64,
}

/// Probes issued after a successful Negotiate.
pub fn probes(cx: &ProbeContext) -> alloc::vec::Vec<Probe> {
    let c = cx.console;
    let query = fid(CapOp::DomainQuery);
    let h = |index, generation| CapHandle { index, generation }.to_raw();
    alloc::vec![
        probe(
            "DomainQuery index 63",
            query,
            [h(63, 1), 0, 0],
            CapError::InvalidHandle
        ),
        probe(
            "DomainQuery on the Console cap",
            query,
            [c.to_raw(), 0, 0],
            CapError::WrongKind
        ),
        probe(
            "DomainQuery generation+1",
            query,
            [h(c.index, c.generation.wrapping_add(1)), 0, 0],
            CapError::InvalidHandle
        ),
        probe(
            "DomainQuery generation 0",
            query,
            [h(c.index, 0), 0, 0],
            CapError::InvalidHandle
        ),
        probe(
            "unknown op FN_BASE+999",
            u64::from(FN_BASE + 999),
            [0; 3],
            CapError::UnknownCall
        ),
        probe(
            "MsgPageSet outside RAM",
            fid(CapOp::MsgPageSet),
            [cx.ram_end.saturating_add(OOB_DISTANCE), 0, 0],
            CapError::Fault
        ),
        probe(
            "MsgPageSet misaligned",
            fid(CapOp::MsgPageSet),
            [cx.msg_page + 8, 0, 0],
            CapError::InvalidArgument
        ),
        probe(
            "ModuleRead bogus handle",
            fid(CapOp::ModuleRead),
            [h(0xFFFF, 0xDEAD), 0, 16],
            CapError::InvalidHandle
        ),
        probe(
            "handle with reserved bits",
            query,
            [c.to_raw() | 1 << 16, 0, 0],
            CapError::InvalidHandle
        ),
    ]
}

/// `None` if `got` (a raw `x0`) is the expected error, else the failure line.
pub fn judge(p: &Probe, got: u64) -> Option<String> {
    (got != p.expect as u64).then(|| {
        alloc::format!(
            "FAIL: {}: expected {} got {}",
            p.what,
            status_name(p.expect as u64),
            status_name(got)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("mode=smp"), Ok(Mode::Smp));
        assert_eq!(parse_mode("x=1 mode=badcap"), Ok(Mode::Badcap));
        assert_eq!(parse_mode("mode=load"), Ok(Mode::Load));
        assert_eq!(parse_mode("mode=xenbad"), Ok(Mode::Xenbad));
        assert_eq!(parse_mode("mode=blkfront"), Ok(Mode::Blkfront));
        assert_eq!(parse_mode("mode=neighbour"), Ok(Mode::Neighbour));
        assert_eq!(parse_mode("mode=netfront"), Ok(Mode::Netfront));
        assert_eq!(parse_mode("mode=hotplug"), Ok(Mode::Hotplug));
        assert_eq!(parse_mode("mode=evtstorm"), Ok(Mode::Evtstorm));
        assert_eq!(parse_mode("mode=spin"), Ok(Mode::Spin));
        assert_eq!(parse_mode("mode=timeroff"), Ok(Mode::Timeroff));
        assert_eq!(parse_mode("mode=zzz"), Err("zzz"));
        assert_eq!(
            (load_peer(0, 2), load_peer(1, 2), load_peer(0, 1)),
            (1, 0, 0)
        );
        assert_eq!(parse_mode(""), Err(""));
    }

    #[test]
    fn blk_helpers() {
        assert_eq!(disk_word(BLK_TAG_RW, 9), 0xA100_0009);
        assert_eq!(neighbour_of(0x0a00_3e00, 0x200), Some(0x0a00_3c00));
        assert_eq!(neighbour_of(0x0a00_3000, 0x200), Some(0x0a00_3200));
        assert_eq!(neighbour_of(0x0a00_3000, 0x1000), None);
    }

    #[test]
    fn oob_stays_below_4g() {
        assert_eq!(oob_address(0x4100_0000), Some(0x4500_0000));
        assert_eq!(oob_address(0xFF00_0000), None);
    }

    #[test]
    fn probe_table() {
        let cx = ProbeContext {
            console: CapHandle {
                index: 0,
                generation: 1,
            },
            ram_end: 0x4100_0000,
            msg_page: 0x4008_0000,
        };
        let ps = probes(&cx);
        assert_eq!(ps.len(), 9);
        assert!(ps.iter().all(|p| p.expect != CapError::NotNegotiated));
        let reserved = ps.iter().find(|p| p.what.contains("reserved")).unwrap();
        assert_eq!(CapHandle::from_raw(reserved.args[0]), None);
        assert_eq!(judge(&ps[0], 4), None);
        assert_eq!(
            judge(&ps[0], 0).as_deref(),
            Some("FAIL: DomainQuery index 63: expected InvalidHandle got Ok")
        );
        let pre = pre_negotiate_probes();
        assert_eq!(pre[1].args[0] >> 16, u64::from(PROTOCOL_VERSION.major) + 1);
    }

    #[test]
    fn hotplug_rounds_differ_and_are_judged() {
        // Consecutive rounds differ in both context and entry point, so a vCPU that kept
        // the previous round's state cannot pass.
        for r in 1..HOTPLUG_ROUNDS {
            assert_ne!(hotplug_context(r), hotplug_context(r + 1));
            assert_ne!(hotplug_entry(r), hotplug_entry(r + 1));
            assert!(hotplug_entry(r) < HOTPLUG_ENTRIES);
            assert_eq!(hotplug_judge(r, hotplug_context(r), hotplug_entry(r)), None);
        }
        let r = 7;
        let stale = hotplug_judge(r, hotplug_context(r - 1), hotplug_entry(r - 1)).unwrap();
        assert_eq!(
            stale,
            "FAIL: hotplug round 7: expected context 0x48504c4700000007 at entry 1 got context 0x48504c4700000006 at entry 0"
        );
        assert!(hotplug_judge(r, hotplug_context(r), hotplug_entry(r + 1)).is_some());
        assert!(hotplug_judge(r, 0, hotplug_entry(r)).is_some());
    }
}
