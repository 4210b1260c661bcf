//! Typed wrappers for every capability-protocol operation (`protocol::control::CapOp`).
//!
//! Negotiation and message-page registration are lazy: the first wrapper that needs them
//! (every one but [`console_write`], [`null_call`], [`who_am_i`] and [`negotiate`] itself)
//! negotiates [`PROTOCOL_VERSION`] once per domain and registers the calling vCPU's page
//! once per vCPU. So a domain that never calls them (the adversarial tests) can still probe
//! the microvisor un-negotiated through the raw [`crate::hvc`]. Transactions through the
//! message page run with IRQs masked so a handler on the same vCPU cannot clobber it.

use protocol::control::{CapError, MSG_PAGE_SIZE, SMCCC_NOT_SUPPORTED};
use serde::de::DeserializeOwned;

/// Decodes the status in `x0`: 0 is success, SMCCC "not supported" is
/// [`CapError::UnknownCall`]. A code this runtime does not know is reported as
/// [`CapError::BadMessage`] (the reply cannot be understood).
pub fn status(x0: u64) -> Result<(), CapError> {
    match x0 {
        0 => Ok(()),
        SMCCC_NOT_SUPPORTED => Err(CapError::UnknownCall),
        code => Err(CapError::from_code(code).unwrap_or(CapError::BadMessage)),
    }
}

/// Checks a reply length from a register against the message page.
pub fn reply_len(len: u64) -> Result<usize, CapError> {
    usize::try_from(len)
        .ok()
        .filter(|&n| n <= MSG_PAGE_SIZE)
        .ok_or(CapError::TooLarge)
}

/// Decodes a postcard reply; malformed bytes are [`CapError::BadMessage`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CapError> {
    postcard::from_bytes(bytes).map_err(|_| CapError::BadMessage)
}

/// Short name of a raw `x0` status, for test output (`Ok`, `InvalidHandle`, `code 0x..`).
pub fn status_name(x0: u64) -> alloc::string::String {
    use alloc::format;
    match (x0, CapError::from_code(x0)) {
        (0, _) => "Ok".into(),
        (_, Some(e)) => format!("{e:?}"),
        (SMCCC_NOT_SUPPORTED, None) => "NotSupported(-1)".into(),
        (c, None) => format!("code {c:#x}"),
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::{decode, reply_len, status};
    use crate::arch;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, Ordering};
    use protocol::cap::{CapHandle, CapInfo};
    use protocol::control::{
        Beats, BeatsReading, CapError, CapOp, DomainInfo, DomainSpec, FaultKind, ShutdownKind,
        VcpuInfo, Version, CONSOLE_FOR_BYTES, CONSOLE_READ_BYTES, CONSOLE_REG_BYTES, MSG_PAGE_SIZE,
        PROTOCOL_VERSION, SELF_DOMAIN,
    };
    use protocol::layout::MAX_VCPUS;

    static NEGOTIATED: AtomicBool = AtomicBool::new(false);
    static PAGE_SET: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];

    /// Issues `op` with `args`; `Ok(x1..x3)` on success.
    pub fn call(op: CapOp, args: [u64; 6]) -> Result<[u64; 3], CapError> {
        let r = arch::hvc(u64::from(op.function_id()), args);
        status(r[0]).map(|()| [r[1], r[2], r[3]])
    }

    fn ready() -> Result<(), CapError> {
        if !NEGOTIATED.load(Ordering::Acquire) {
            negotiate()?;
        }
        if !PAGE_SET[crate::smp::current_vcpu()].load(Ordering::Acquire) {
            register_msg_page()?;
        }
        Ok(())
    }

    /// `Negotiate` with [`PROTOCOL_VERSION`]; returns the microvisor's version.
    pub fn negotiate() -> Result<Version, CapError> {
        let r = call(CapOp::Negotiate, [PROTOCOL_VERSION.to_raw(), 0, 0, 0, 0, 0])?;
        NEGOTIATED.store(true, Ordering::Release);
        Ok(Version::from_raw(r[0]))
    }

    /// `ConsoleWrite` of up to 40 bytes (longer input is `InvalidArgument`).
    pub fn console_write(bytes: &[u8]) -> Result<(), CapError> {
        if bytes.len() > CONSOLE_REG_BYTES {
            return Err(CapError::InvalidArgument);
        }
        let p = crate::console::pack(bytes);
        call(
            CapOp::ConsoleWrite,
            [bytes.len() as u64, p[0], p[1], p[2], p[3], p[4]],
        )
        .map(drop)
    }

    /// `MsgPageSet` with an arbitrary address (adversarial use; see [`register_msg_page`]).
    pub fn msg_page_set(ipa: u64) -> Result<(), CapError> {
        call(CapOp::MsgPageSet, [ipa, 0, 0, 0, 0, 0]).map(drop)
    }

    /// Registers the calling vCPU's own message page.
    pub fn register_msg_page() -> Result<(), CapError> {
        msg_page_set(arch::msg_page_ipa())?;
        PAGE_SET[crate::smp::current_vcpu()].store(true, Ordering::Release);
        Ok(())
    }

    /// Runs `op` and decodes the postcard reply whose length comes back in `x1`.
    /// `value` encoded for the message page (postcard): `TooLarge` if it does not fit.
    fn message<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CapError> {
        let bytes = postcard::to_allocvec(value).map_err(|_| CapError::InvalidArgument)?;
        if bytes.len() > MSG_PAGE_SIZE {
            return Err(CapError::TooLarge);
        }
        Ok(bytes)
    }

    fn query<T: serde::de::DeserializeOwned>(op: CapOp, args: [u64; 6]) -> Result<T, CapError> {
        ready()?;
        let bytes = arch::without_interrupts(|| {
            let r = call(op, args)?;
            Ok::<_, CapError>(arch::msg_read(reply_len(r[0])?))
        })?;
        decode(&bytes)
    }

    /// Acts on a pending clean-shutdown request (`ShutdownPending`): powers off or resets
    /// through PSCI, so the controller sees an orderly power-off or reboot. Returns if there
    /// is none.
    pub fn honour_shutdown_request() {
        let pending = call(CapOp::ShutdownPending, [0; 6]).map(|r| ShutdownKind::from_raw(r[0]));
        match pending {
            Ok(Some(ShutdownKind::PowerOff)) => {
                crate::println!("shutdown requested: powering off");
                crate::psci::system_off()
            }
            Ok(Some(ShutdownKind::Reboot)) => {
                crate::println!("reboot requested: resetting");
                crate::psci::system_reset()
            }
            _ => {}
        }
    }

    /// `DomainShutdown`: asks a child domain to power off or reboot cleanly.
    pub fn domain_shutdown(domain: CapHandle, kind: ShutdownKind) -> Result<(), CapError> {
        ready()?;
        call(
            CapOp::DomainShutdown,
            [domain.to_raw(), kind as u64, 0, 0, 0, 0],
        )
        .map(drop)
    }

    /// `DomainFault` (a test capability): makes `domain`'s vCPU 0 take an Undefined
    /// Instruction exception the next time it runs, or ([`FaultKind::Hang`]) makes every
    /// vCPU of it spin with interrupts masked for good.
    pub fn domain_fault(domain: CapHandle, kind: FaultKind) -> Result<(), CapError> {
        ready()?;
        call(
            CapOp::DomainFault,
            [domain.to_raw(), kind as u64, 0, 0, 0, 0],
        )
        .map(drop)
    }

    /// `DomainBeats`: the heartbeats of `domain`'s current incarnation.
    pub fn domain_beats(domain: CapHandle) -> Result<Beats, CapError> {
        ready()?;
        let [count, first, last] = call(CapOp::DomainBeats, [domain.to_raw(), 0, 0, 0, 0, 0])?;
        Ok(Beats { count, first, last })
    }

    /// `DomainBeatsMany`: each domain's beats and CPU time, in `domains`' order, in one call
    /// (an entry is the error for its handle alone).
    pub fn domain_beats_many(
        domains: &[CapHandle],
    ) -> Result<Vec<Result<BeatsReading, CapError>>, CapError> {
        ready()?;
        let raw: Vec<u64> = domains.iter().map(|h| h.to_raw()).collect();
        let bytes = message(&raw)?;
        let reply = arch::without_interrupts(|| {
            arch::msg_write(&bytes);
            let r = call(CapOp::DomainBeatsMany, [bytes.len() as u64, 0, 0, 0, 0, 0])?;
            Ok::<_, CapError>(arch::msg_read(reply_len(r[0])?))
        })?;
        decode(&reply)
    }

    /// `Heartbeat`: tells the microvisor (and so our controller) we are alive. Needs no
    /// negotiation, so it never allocates nor waits; an error is ignored (a beat is advice).
    pub fn heartbeat() {
        #[cfg(not(feature = "native"))]
        let _ = arch::hvc(u64::from(CapOp::Heartbeat.function_id()), [0; 6]);
    }

    /// `IdleReport`: the calling vCPU has spent `ticks` counter ticks idle in WFI so far (a
    /// running total), for the CPU time `ctl list` shows of a pinned-exclusive vCPU, whose
    /// WFI the microvisor does not see. Needs no negotiation; an error is ignored.
    pub fn idle_report(ticks: u64) {
        #[cfg(not(feature = "native"))]
        let _ = arch::hvc(
            u64::from(CapOp::IdleReport.function_id()),
            [ticks, 0, 0, 0, 0, 0],
        );
        #[cfg(feature = "native")]
        let _ = ticks;
    }

    /// `ConsoleInject`: queues up to 16 bytes of console input for a child domain.
    pub fn console_inject(domain: CapHandle, bytes: &[u8]) -> Result<(), CapError> {
        if bytes.len() > CONSOLE_READ_BYTES {
            return Err(CapError::InvalidArgument);
        }
        let mut b = [0u8; CONSOLE_READ_BYTES];
        b[..bytes.len()].copy_from_slice(bytes);
        let lo = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(b[8..].try_into().unwrap_or_default());
        ready()?;
        call(
            CapOp::ConsoleInject,
            [domain.to_raw(), bytes.len() as u64, lo, hi, 0, 0],
        )
        .map(drop)
    }

    /// `ConsoleWriteFor`: appends up to 32 bytes to `domain`'s console output (dom0's PV
    /// console backend).
    pub fn console_write_for(domain: CapHandle, bytes: &[u8]) -> Result<(), CapError> {
        if bytes.len() > CONSOLE_FOR_BYTES {
            return Err(CapError::InvalidArgument);
        }
        let mut b = [0u8; CONSOLE_FOR_BYTES];
        b[..bytes.len()].copy_from_slice(bytes);
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        ready()?;
        call(
            CapOp::ConsoleWriteFor,
            [domain.to_raw(), bytes.len() as u64, w(0), w(1), w(2), w(3)],
        )
        .map(drop)
    }

    /// `ConsoleReadFor`: takes up to `buf.len()` (≤ 16) bytes of `domain`'s queued console
    /// input; returns how many.
    pub fn console_read_for(domain: CapHandle, buf: &mut [u8]) -> Result<usize, CapError> {
        ready()?;
        let want = buf.len().min(CONSOLE_READ_BYTES);
        let r = call(
            CapOp::ConsoleReadFor,
            [domain.to_raw(), want as u64, 0, 0, 0, 0],
        )?;
        let n = (r[0] as usize).min(want);
        let mut bytes = [0u8; CONSOLE_READ_BYTES];
        bytes[..8].copy_from_slice(&r[1].to_le_bytes());
        bytes[8..].copy_from_slice(&r[2].to_le_bytes());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    /// `LogRead`: the microvisor's console history from offset `from` (up to a page).
    /// Returns the bytes, the offset of the first one (later than `from` if that part was
    /// overwritten) and the total written so far.
    pub fn log_read(from: u64) -> Result<(Vec<u8>, u64, u64), CapError> {
        ready()?;
        arch::without_interrupts(|| {
            let r = call(CapOp::LogRead, [from, 0, 0, 0, 0, 0])?;
            Ok((arch::msg_read(reply_len(r[0])?), r[1], r[2]))
        })
    }

    /// `CapList`: every capability this domain holds.
    pub fn cap_list() -> Result<Vec<CapInfo>, CapError> {
        query(CapOp::CapList, [0; 6])
    }

    /// `ModuleInfo`: the module's size in bytes.
    pub fn module_info(module: CapHandle) -> Result<u64, CapError> {
        ready()?;
        call(CapOp::ModuleInfo, [module.to_raw(), 0, 0, 0, 0, 0]).map(|r| r[0])
    }

    /// `ModuleRead`: copies up to a page of the module at `offset` into `buf`; returns the
    /// number of bytes copied.
    pub fn module_read(module: CapHandle, offset: u64, buf: &mut [u8]) -> Result<usize, CapError> {
        ready()?;
        let want = buf.len().min(MSG_PAGE_SIZE);
        let bytes = arch::without_interrupts(|| {
            let r = call(
                CapOp::ModuleRead,
                [module.to_raw(), offset, want as u64, 0, 0, 0],
            )?;
            let got = reply_len(r[0])?;
            if got > want {
                return Err(CapError::BadMessage);
            }
            Ok(arch::msg_read(got))
        })?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    /// Reads a whole module (`ModuleInfo`, then `ModuleRead` page by page).
    pub fn module_read_all(module: CapHandle) -> Result<Vec<u8>, CapError> {
        let size = usize::try_from(module_info(module)?).map_err(|_| CapError::TooLarge)?;
        let mut out = Vec::new();
        out.try_reserve_exact(size)
            .map_err(|_| CapError::NoMemory)?;
        let mut chunk = [0u8; MSG_PAGE_SIZE];
        while out.len() < size {
            let want = (size - out.len()).min(MSG_PAGE_SIZE);
            let n = module_read(module, out.len() as u64, &mut chunk[..want])?;
            if n == 0 {
                // The module is shorter than ModuleInfo said: a microvisor inconsistency.
                return Err(CapError::BadMessage);
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(out)
    }

    /// `ModuleCreate`: an empty module of `size` bytes labelled `label`, paid from the
    /// `memory` quota; its Module cap (READ, WRITE).
    pub fn module_create(memory: CapHandle, label: &str, size: u64) -> Result<CapHandle, CapError> {
        ready()?;
        let bytes = message(label)?;
        let r = arch::without_interrupts(|| {
            arch::msg_write(&bytes);
            call(
                CapOp::ModuleCreate,
                [memory.to_raw(), size, bytes.len() as u64, 0, 0, 0],
            )
        })?;
        CapHandle::from_raw(r[0]).ok_or(CapError::BadMessage)
    }

    /// `ModuleWrite`: writes `bytes` at `offset`, a page at a time.
    pub fn module_write(module: CapHandle, offset: u64, bytes: &[u8]) -> Result<(), CapError> {
        ready()?;
        let mut at = offset;
        for chunk in bytes.chunks(MSG_PAGE_SIZE) {
            arch::without_interrupts(|| {
                arch::msg_write(chunk);
                call(
                    CapOp::ModuleWrite,
                    [module.to_raw(), at, chunk.len() as u64, 0, 0, 0],
                )
            })?;
            at += chunk.len() as u64;
        }
        Ok(())
    }

    /// `ModuleFree`: gives up an uploaded module (kept while a domain built from it lives).
    pub fn module_free(module: CapHandle) -> Result<(), CapError> {
        ready()?;
        call(CapOp::ModuleFree, [module.to_raw(), 0, 0, 0, 0, 0]).map(drop)
    }

    /// `DomainCreate`: builds a paused domain; returns its Domain cap and domain id.
    pub fn domain_create(spec: &DomainSpec) -> Result<(CapHandle, u16), CapError> {
        ready()?;
        let bytes = message(spec)?;
        let r = arch::without_interrupts(|| {
            arch::msg_write(&bytes);
            call(CapOp::DomainCreate, [bytes.len() as u64, 0, 0, 0, 0, 0])
        })?;
        let handle = CapHandle::from_raw(r[0]).ok_or(CapError::BadMessage)?;
        Ok((handle, r[1] as u16))
    }

    fn on_domain(op: CapOp, domain: CapHandle) -> Result<(), CapError> {
        ready()?;
        call(op, [domain.to_raw(), 0, 0, 0, 0, 0]).map(drop)
    }

    /// `DomainStart`.
    pub fn domain_start(domain: CapHandle) -> Result<(), CapError> {
        on_domain(CapOp::DomainStart, domain)
    }
    /// `DomainPause`.
    pub fn domain_pause(domain: CapHandle) -> Result<(), CapError> {
        on_domain(CapOp::DomainPause, domain)
    }
    /// `DomainUnpause`.
    pub fn domain_unpause(domain: CapHandle) -> Result<(), CapError> {
        on_domain(CapOp::DomainUnpause, domain)
    }
    /// `DomainDestroy`.
    pub fn domain_destroy(domain: CapHandle) -> Result<(), CapError> {
        on_domain(CapOp::DomainDestroy, domain)
    }

    /// `DomainQuery`.
    pub fn domain_query(domain: CapHandle) -> Result<DomainInfo, CapError> {
        query(CapOp::DomainQuery, [domain.to_raw(), 0, 0, 0, 0, 0])
    }

    /// `DomainQuery` about ourselves (needs no capability).
    pub fn self_query() -> Result<DomainInfo, CapError> {
        query(CapOp::DomainQuery, [SELF_DOMAIN, 0, 0, 0, 0, 0])
    }

    /// `DomainVcpus`: each vCPU of the domain behind `domain`, or of ourselves with `None`.
    pub fn domain_vcpus(domain: Option<CapHandle>) -> Result<Vec<VcpuInfo>, CapError> {
        let raw = domain.map_or(SELF_DOMAIN, CapHandle::to_raw);
        query(CapOp::DomainVcpus, [raw, 0, 0, 0, 0, 0])
    }

    /// `DomainVcpuPin`: moves vCPU `vcpu` of the domain to `pcpu` with `priority`.
    pub fn domain_vcpu_pin(
        domain: CapHandle,
        vcpu: u16,
        pcpu: u16,
        priority: u8,
    ) -> Result<(), CapError> {
        ready()?;
        let args = [
            domain.to_raw(),
            u64::from(vcpu),
            u64::from(pcpu),
            u64::from(priority),
            0,
            0,
        ];
        call(CapOp::DomainVcpuPin, args).map(drop)
    }

    /// `DomainVcpuBudget`: gives vCPU `vcpu` of the domain `budget_us` µs of guest time per
    /// `period_us` µs at its priority (`0`/`0`: no budget).
    pub fn domain_vcpu_budget(
        domain: CapHandle,
        vcpu: u16,
        budget_us: u32,
        period_us: u32,
    ) -> Result<(), CapError> {
        ready()?;
        let args = [
            domain.to_raw(),
            u64::from(vcpu),
            u64::from(budget_us),
            u64::from(period_us),
            0,
            0,
        ];
        call(CapOp::DomainVcpuBudget, args).map(drop)
    }

    /// `NullCall` (no negotiation needed).
    pub fn null_call() -> Result<(), CapError> {
        call(CapOp::NullCall, [0; 6]).map(drop)
    }

    /// `WhoAmI`: (domain id, vCPU index). No negotiation needed.
    pub fn who_am_i() -> Result<(u16, u16), CapError> {
        call(CapOp::WhoAmI, [0; 6]).map(|r| (r[0] as u16, r[1] as u16))
    }

    /// `ConsoleRead`: copies pending console input (typed while this domain had the focus)
    /// into `buf`, at most [`CONSOLE_READ_BYTES`]; returns the count (0: nothing waiting).
    /// Never blocks. Bytes beyond `buf.len()` are lost, so pass a 16-byte buffer.
    pub fn console_read(buf: &mut [u8]) -> Result<usize, CapError> {
        #[cfg(feature = "native")]
        {
            // Bare metal: the PL011's receive FIFO is ours.
            let mut n = 0;
            while n < buf.len().min(CONSOLE_READ_BYTES) {
                match arch::uart_getc() {
                    Some(b) => buf[n] = b,
                    None => break,
                }
                n += 1;
            }
            Ok(n)
        }
        #[cfg(not(feature = "native"))]
        {
            console_read_hvc(buf)
        }
    }

    #[cfg(not(feature = "native"))]
    fn console_read_hvc(buf: &mut [u8]) -> Result<usize, CapError> {
        ready()?;
        let r = call(
            CapOp::ConsoleRead,
            [buf.len().min(CONSOLE_READ_BYTES) as u64, 0, 0, 0, 0, 0],
        )?;
        let n = (r[0] as usize).min(buf.len()).min(CONSOLE_READ_BYTES);
        let mut bytes = [0u8; CONSOLE_READ_BYTES];
        bytes[..8].copy_from_slice(&r[1].to_le_bytes());
        bytes[8..].copy_from_slice(&r[2].to_le_bytes());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    /// `Crash`: reports an unrecoverable error; the microvisor stops this domain.
    pub fn crash(code: u64) -> ! {
        // Bare metal has no microvisor to report to: power off.
        #[cfg(not(feature = "native"))]
        let _ = arch::hvc(u64::from(CapOp::Crash.function_id()), [code, 0, 0, 0, 0, 0]);
        #[cfg(feature = "native")]
        let _ = code;
        // Only reached if the microvisor refused (it never should): stop anyway.
        crate::psci::system_off()
    }

    /// `DomainRestart`: rebuilds the domain in place; returns its new handle.
    pub fn domain_restart(domain: CapHandle) -> Result<CapHandle, CapError> {
        ready()?;
        let r = call(CapOp::DomainRestart, [domain.to_raw(), 0, 0, 0, 0, 0])?;
        CapHandle::from_raw(r[0]).ok_or(CapError::BadMessage)
    }

    /// `DomainEvents`: bit n set = domain n changed state since the last call.
    pub fn domain_events() -> Result<u64, CapError> {
        ready()?;
        call(CapOp::DomainEvents, [0; 6]).map(|r| r[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cap::{CapDetail, CapHandle, CapInfo, CapKind, Rights};

    #[test]
    fn statuses() {
        assert_eq!(status(0), Ok(()));
        assert_eq!(status(4), Err(CapError::InvalidHandle));
        assert_eq!(status(SMCCC_NOT_SUPPORTED), Err(CapError::UnknownCall));
        assert_eq!(status(999), Err(CapError::BadMessage));
        assert_eq!(status_name(0), "Ok");
        assert_eq!(status_name(6), "WrongKind");
        assert_eq!(status_name(999), "code 0x3e7");
    }

    #[test]
    fn reply_lengths() {
        assert_eq!(reply_len(0), Ok(0));
        assert_eq!(reply_len(4096), Ok(4096));
        assert_eq!(reply_len(4097), Err(CapError::TooLarge));
        assert_eq!(reply_len(u64::MAX), Err(CapError::TooLarge));
    }

    #[test]
    fn decodes_cap_lists() {
        let caps = vec![CapInfo {
            handle: CapHandle {
                index: 2,
                generation: 1,
            },
            kind: CapKind::Module,
            rights: Rights::READ,
            label: "manifest".into(),
            detail: CapDetail::Module { size: 77 },
        }];
        let bytes = postcard::to_allocvec(&caps).unwrap();
        assert_eq!(decode::<Vec<CapInfo>>(&bytes), Ok(caps));
        assert_eq!(
            decode::<Vec<CapInfo>>(&bytes[..3]),
            Err(CapError::BadMessage)
        );
    }
}
