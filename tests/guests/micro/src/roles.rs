//! The roles: what each instance measures, and the interrupt handler that takes the
//! timestamps (the vector reads `CNTVCT_EL0` first and passes it in).

use crate::{arch, gic, hv, say};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use micro::{
    metric, parse_cmdline, per_call, subtract, summarize, ticks_to_instructions, Config, Role,
};
use protocol::layout::{EVTCHN_PPI, GUEST_RAM_BASE, VTIMER_PPI};
use protocol::xen::structs::SharedInfo;

/// Calls per timed batch: one counter tick is then one instruction per call.
const BATCH: u32 = 16;
/// SGI vCPU 0 sends to vCPU 1 (the measured one).
const SGI_PING: u32 = 1;
/// SGI vCPU 1 sends back so that vCPU 0 wakes.
const SGI_ACK: u32 = 2;
/// Timer deadlines are this many ticks ahead (~32 µs of virtual time).
const TIMER_AHEAD: u64 = 2000;
/// Event-channel send grid in ticks (~131 µs): the ping side sends when the counter
/// reaches a multiple, so the pong side's latency is its counter modulo the period.
const GRID: u64 = 8192;
/// The ping side arms its timer this far before each grid point, then spins to it.
const GRID_LEAD: u64 = 2048;
/// Upcalls the pong side ignores after binding (the bind's own and one maybe in flight).
const PONG_SKIP: u32 = 2;
/// "Nothing yet" in the latency mailboxes.
const NONE: u64 = u64::MAX;
/// `XENVER_extraversion` prefix of Bulkhead.
const BULKHEAD_EXTRA: &[u8] = b"-bulkhead";
/// Bulkhead's capability null call (`FN_BASE + NullCall`).
fn null_call_fid() -> u64 {
    u64::from(protocol::control::CapOp::NullCall.function_id())
}

/// Timer latency in ticks, written by the handler.
static TIMER_LAT: AtomicU64 = AtomicU64::new(NONE);
/// vCPU 0's counter just before sending [`SGI_PING`].
static IPI_T0: AtomicU64 = AtomicU64::new(0);
/// vCPU 1's handler-entry counter minus [`IPI_T0`].
static IPI_LAT: AtomicU64 = AtomicU64::new(NONE);
/// vCPU 0 got [`SGI_ACK`].
static IPI_ACKED: AtomicBool = AtomicBool::new(false);
/// vCPU 1 is up with its interrupts on.
static CPU1_UP: AtomicBool = AtomicBool::new(false);
/// The pong side's latest upcall latency (counter modulo [`GRID`]).
static EVT_LAT: AtomicU64 = AtomicU64::new(NONE);
/// Upcalls the pong side took.
static EVT_SEEN: AtomicU32 = AtomicU32::new(0);
/// The shared-info page, once mapped (event roles only).
static SHARED_INFO: AtomicU64 = AtomicU64::new(0);

/// RAM page the shared-info page is mapped over.
static mut SHARED_PAGE: hv::Page = hv::Page([0; 4096]);

/// Sample buffer (vCPU 0 only).
static mut SAMPLES: [u64; micro::MAX_SAMPLES] = [0; micro::MAX_SAMPLES];

#[no_mangle]
extern "C" fn micro_main(dtb: u64, loaded_at: u64) -> ! {
    if loaded_at != GUEST_RAM_BASE.as_u64() {
        say!("MICRO error loaded at {loaded_at:#x}, linked at the start of guest RAM");
        halt();
    }
    let cmdline = bootargs(dtb);
    let cfg = match parse_cmdline(cmdline) {
        Ok(c) => c,
        Err(e) => {
            say!("MICRO error {e} (bootargs {cmdline:?})");
            halt();
        }
    };
    let extra = hv::extraversion();
    let bulkhead = extra.starts_with(BULKHEAD_EXTRA);
    let end = extra.iter().position(|&b| b == 0).unwrap_or(extra.len());
    say!(
        "MICRO start role={} n={} hv={} extraversion={}",
        cfg.role.name(),
        cfg.samples,
        if bulkhead { "bulkhead" } else { "xen" },
        core::str::from_utf8(&extra[..end]).unwrap_or("?")
    );
    gic::dist_init();
    gic::cpu_init(&[SGI_PING, SGI_ACK, VTIMER_PPI, EVTCHN_PPI]);
    arch::irq_enable();
    // SAFETY: only vCPU 0 runs this function and it never re-enters; the handler does not
    // touch the buffer.
    let samples = unsafe { &mut *core::ptr::addr_of_mut!(SAMPLES) };
    let samples = &mut samples[..cfg.samples];
    match cfg.role {
        Role::Main => {
            round_trips(samples, bulkhead);
            timer(samples, metric::TIMER_EXCLUSIVE);
            vipi(samples, metric::VIPI);
        }
        Role::VipiShared => {
            // As `timer`: let dom0 finish attaching this domain first.
            sleep_ticks(200_000);
            vipi(samples, metric::VIPI_SHARED);
        }
        Role::Exclusive => timer(samples, metric::TIMER_EXCLUSIVE),
        Role::Timer => {
            // Let the busy neighbour get going first.
            sleep_ticks(200_000);
            timer(samples, metric::TIMER_SHARED);
        }
        Role::TimerSpin => {
            // As `timer`: let dom0 finish attaching this domain first, so its work on
            // another CPU (counted by `-icount`'s one clock) lands in no sample.
            sleep_ticks(200_000);
            timer_running(samples);
        }
        Role::Busy => loop {
            core::hint::spin_loop();
        },
        Role::Ping => ping(&cfg),
        Role::Pong => pong(&cfg, samples, metric::EVTCHN),
        Role::PongShared => pong(&cfg, samples, metric::EVTCHN_SHARED),
        Role::PongSwitch => pong(&cfg, samples, metric::EVTCHN_SWITCH),
        Role::PongSame => pong(&cfg, samples, metric::EVTCHN_SAME),
        Role::LazyRam => lazy_ram(),
    }
    say!("MICRO done role={}", cfg.role.name());
    halt();
}

/// `role=lazy_ram`, on an 8 MiB domain: its image fills block 0 (of 2 MiB) and its device
/// tree block 3, which the build scrubbed; blocks 1 and 2 nobody has touched. Reports
/// `MICRO lazy_ram ok` or a `MICRO error`.
fn lazy_ram() {
    const BLOCK: u64 = 2 << 20;
    const PATTERN: u64 = 0x5a5a_1234_5678_a5a5;
    let base = GUEST_RAM_BASE.as_u64();
    // A first load: a block scrubbed on the spot reads as zero, then keeps what is stored.
    let word = (base + BLOCK + 0x1000) as *mut u64;
    // SAFETY: an aligned word of this domain's RAM that nothing of the guest uses.
    let (first, back) = unsafe {
        let first = word.read_volatile();
        word.write_volatile(PATTERN);
        (first, word.read_volatile())
    };
    if first != 0 || back != PATTERN {
        say!("MICRO error lazy_ram first touch read {first:#x}, then {back:#x}");
        return;
    }
    // The hypervisor writes into block 2 before the guest ever touches it...
    let text = base + 2 * BLOCK + 0x80;
    let rc = hv::extraversion_into(text);
    // ... and so does a grant copy, a `ret` at the start of another page of it, which the
    // call below is the block's first fetch of.
    static RET: [u32; 1] = [0xd65f_03c0];
    let code = base + 2 * BLOCK + 0x1000;
    let copied = hv::copy_own(RET.as_ptr() as u64, code, 4);
    if rc < 0 || copied.is_err() {
        say!("MICRO error lazy_ram xen_version {rc}, grant copy {copied:?}");
        return;
    }
    arch::sync_icache();
    // SAFETY: `code` holds one `ret` (copied above); with the MMU off RAM is executable.
    let call: extern "C" fn() = unsafe { core::mem::transmute(code as usize) };
    call();
    // SAFETY: 16 bytes of this domain's RAM the hypervisor wrote above.
    let got = unsafe { core::slice::from_raw_parts(text as *const u8, 16) };
    if !got.starts_with(BULKHEAD_EXTRA) {
        say!("MICRO error lazy_ram the hypervisor's write read back as {got:?}");
        return;
    }
    say!("MICRO lazy_ram ok: first load, hypervisor write, grant copy and first fetch");
}

/// `/chosen/bootargs`, or "" if there is none.
fn bootargs(dtb: u64) -> &'static str {
    // SAFETY: both hypervisors pass a valid, unmoving device tree in x0; `from_ptr` reads
    // only as far as its header's total size.
    let fdt = match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
        Ok(f) => f,
        Err(_) => return "",
    };
    let args = fdt.chosen().bootargs().unwrap_or("");
    // SAFETY: the device tree stays where it is for the guest's lifetime (nothing reuses
    // its RAM), so a borrow of it may be 'static.
    unsafe { core::mem::transmute::<&str, &'static str>(args) }
}

fn halt() -> ! {
    loop {
        arch::wfi();
    }
}

/// Sleeps until the counter passed `ticks` from now.
fn sleep_ticks(ticks: u64) {
    TIMER_LAT.store(NONE, Ordering::Relaxed);
    arch::timer_arm(arch::counter() + ticks);
    while TIMER_LAT.load(Ordering::Acquire) == NONE {
        arch::wfi();
    }
}

/// Summarises and prints `samples` (instructions) as `metric`.
fn report(metric: &str, samples: &mut [u64]) {
    if let Some(s) = summarize(samples) {
        let mut line = hv::Line::new();
        let _ = micro::write_line(&mut line, metric, &s);
        line.flush();
    }
}

/// `xen_version` and (on Bulkhead) the capability null call, per call, own loop subtracted.
fn round_trips(samples: &mut [u64], bulkhead: bool) {
    for s in samples.iter_mut() {
        *s = per_call(arch::batch_empty(BATCH), u64::from(BATCH));
    }
    let base = summarize(samples).map_or(0, |s| s.p50);
    say!("MICRO loop instructions_per_turn={base}");
    for s in samples.iter_mut() {
        *s = per_call(arch::batch_xen_version(BATCH), u64::from(BATCH));
    }
    subtract(samples, base);
    report(metric::XEN_VERSION, samples);
    if bulkhead {
        let fid = null_call_fid();
        for s in samples.iter_mut() {
            *s = per_call(arch::batch_smccc(fid, BATCH), u64::from(BATCH));
        }
        subtract(samples, base);
        report(metric::CAP_NULL, samples);
    }
}

/// Virtual timer interrupt latency: `CNTVCT - CVAL` at handler entry, vCPU waiting in WFI.
fn timer(samples: &mut [u64], metric: &str) {
    timer_waiting_with(samples, metric, arch::wfi);
}

/// The same with the vCPU spinning instead of waiting in WFI: it is running when its
/// timer fires.
fn timer_running(samples: &mut [u64]) {
    timer_waiting_with(samples, metric::TIMER_SHARED_RUNNING, core::hint::spin_loop);
}

/// Timer latency samples, `wait` called while the interrupt has not come.
fn timer_waiting_with(samples: &mut [u64], metric: &str, wait: fn()) {
    for s in samples.iter_mut() {
        TIMER_LAT.store(NONE, Ordering::Relaxed);
        arch::timer_arm(arch::counter() + TIMER_AHEAD);
        let lat = loop {
            let v = TIMER_LAT.load(Ordering::Acquire);
            if v != NONE {
                break v;
            }
            wait();
        };
        *s = ticks_to_instructions(lat);
    }
    report(metric, samples);
}

/// Virtual IPI: vCPU 0's counter before `ICC_SGI1R` to vCPU 1's handler entry, reported
/// as `name`.
fn vipi(samples: &mut [u64], name: &str) {
    let r = hv::cpu_on(1);
    if r != 0 {
        say!("MICRO error PSCI CPU_ON of vCPU 1 returned {r}");
        return;
    }
    while !CPU1_UP.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    for s in samples.iter_mut() {
        IPI_LAT.store(NONE, Ordering::Relaxed);
        IPI_ACKED.store(false, Ordering::Relaxed);
        let t0 = arch::counter();
        IPI_T0.store(t0, Ordering::Release);
        gic::send_sgi(SGI_PING, 1);
        while !IPI_ACKED.load(Ordering::Acquire) {
            arch::wfi();
        }
        *s = ticks_to_instructions(IPI_LAT.load(Ordering::Acquire));
    }
    report(name, samples);
}

/// vCPU 1: answers [`SGI_PING`] forever.
#[no_mangle]
extern "C" fn micro_secondary() -> ! {
    gic::cpu_init(&[SGI_PING, SGI_ACK]);
    arch::irq_enable();
    CPU1_UP.store(true, Ordering::Release);
    halt();
}

/// Maps shared info and returns it.
fn shared_info() -> Option<*mut SharedInfo> {
    let page = core::ptr::addr_of_mut!(SHARED_PAGE);
    // SAFETY: the page is ours and nothing else references it.
    if let Err(e) = hv::map_shared_info(unsafe { &*page }) {
        say!("MICRO error mapping shared info: {e}");
        return None;
    }
    SHARED_INFO.store(page as u64, Ordering::Release);
    Some(page.cast())
}

/// Event-channel sender: an unbound port for `peer`, then a send at every grid point.
fn ping(cfg: &Config) {
    let Some(_) = shared_info() else { return };
    let peer = cfg.peer.unwrap_or(0);
    let port = match hv::alloc_unbound(peer) {
        Ok(p) => p,
        Err(e) => {
            say!("MICRO error alloc_unbound for d{peer}: {e}");
            return;
        }
    };
    say!("MICRO ping port={port} peer={peer}");
    loop {
        let next = (arch::counter() / GRID + 1) * GRID;
        sleep_ticks(next - GRID_LEAD - arch::counter().min(next - GRID_LEAD));
        while arch::counter() < next {}
        let _ = hv::send(port);
    }
}

/// Event-channel receiver: binds `peer`'s port (found by trying ports in turn), then times
/// each upcall against the grid, reported as `name`.
fn pong(cfg: &Config, samples: &mut [u64], name: &str) {
    let Some(_) = shared_info() else { return };
    let peer = cfg.peer.unwrap_or(0);
    let local = 'found: loop {
        for port in 1..64 {
            if let Ok(local) = hv::bind_interdomain(peer, port) {
                break 'found local;
            }
        }
        sleep_ticks(1000);
    };
    let _ = hv::unmask(local);
    say!("MICRO pong port={local} peer={peer}");
    let mut got = 0;
    while got < samples.len() {
        EVT_LAT.store(NONE, Ordering::Relaxed);
        let lat = loop {
            let v = EVT_LAT.load(Ordering::Acquire);
            if v != NONE {
                break v;
            }
            arch::wfi();
        };
        if EVT_SEEN.load(Ordering::Relaxed) > PONG_SKIP {
            samples[got] = ticks_to_instructions(lat);
            got += 1;
        }
    }
    report(name, samples);
}

/// Called by the IRQ vector with the counter read at entry.
#[no_mangle]
extern "C" fn micro_irq(now: u64) {
    let ack = gic::ack();
    let intid = gic::intid(ack);
    match intid {
        VTIMER_PPI => {
            let cval = arch::timer_cval();
            arch::timer_stop();
            TIMER_LAT.store(now.saturating_sub(cval), Ordering::Release);
        }
        SGI_PING => {
            IPI_LAT.store(
                now.saturating_sub(IPI_T0.load(Ordering::Acquire)),
                Ordering::Release,
            );
            gic::send_sgi(SGI_ACK, 0);
        }
        SGI_ACK => IPI_ACKED.store(true, Ordering::Release),
        EVTCHN_PPI => {
            let si = SHARED_INFO.load(Ordering::Acquire);
            if si != 0 {
                hv::clear_pending(si as *mut SharedInfo);
            }
            EVT_SEEN.store(EVT_SEEN.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            EVT_LAT.store(now % GRID, Ordering::Release);
        }
        // Spurious (1023) or nothing of ours.
        _ => {}
    }
    if intid < 1020 {
        gic::eoi(ack);
    }
}

/// Called by the vector table on any exception but an IRQ.
#[no_mangle]
extern "C" fn micro_fault_report(esr: u64, elr: u64, far: u64) {
    say!("MICRO error exception esr={esr:#x} elr={elr:#x} far={far:#x}");
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("MICRO error panic: {}", info.message());
    halt();
}
