//! The test guest's shell: runs the mode named on the command line against the real
//! microvisor (the probe tables and markers live in `lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod blkfront;
#[cfg(target_os = "none")]
mod evtstorm;
#[cfg(target_os = "none")]
mod frontend_attack;
#[cfg(target_os = "none")]
mod hotplug;
#[cfg(target_os = "none")]
mod neighbour;
#[cfg(target_os = "none")]
mod netfront;
#[cfg(target_os = "none")]
mod pmu;
#[cfg(target_os = "none")]
mod timeroff;
#[cfg(target_os = "none")]
mod xenbad;

#[cfg(target_os = "none")]
mod shell {
    use bulkhead_runtime::{self as rt, arch, cap, gic, irq, pmu, println, smp, timer, StartInfo};
    use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
    use protocol::cap::CapKind;
    use protocol::control::CapOp;
    use protocol::layout::VTIMER_PPI;
    use testguest::{
        judge, load_peer, oob_address, parse_mode, pre_negotiate_probes, probes, Mode, Probe,
        ProbeContext, BENCH_CALLS, SMP_SGI,
    };

    rt::entry!(main);

    fn main(info: &'static StartInfo) {
        match parse_mode(&info.cmdline) {
            Ok(Mode::Smp) => smp_test(),
            Ok(Mode::Oob) => oob_test(info),
            Ok(Mode::Badcap) => badcap_test(info),
            Ok(Mode::Bench) => bench(),
            Ok(Mode::Load) => load(info),
            Ok(Mode::Metronome) => metronome(info),
            Ok(Mode::Xenbad) => crate::xenbad::run(info),
            Ok(Mode::Blkfront) => crate::blkfront::run(info),
            Ok(Mode::Neighbour) => crate::neighbour::run(info),
            Ok(Mode::Netfront) => crate::netfront::run(info),
            Ok(Mode::Hotplug) => crate::hotplug::run(),
            Ok(Mode::Timeroff) => crate::timeroff::run(),
            Ok(Mode::Evtstorm) => crate::evtstorm::run(),
            Ok(Mode::Spin) => {
                println!("spinning");
                loop {
                    core::hint::spin_loop();
                }
            }
            Ok(Mode::Pmu) => crate::pmu::run(&info.cmdline),
            Ok(Mode::Flood) => {
                let mut i: u64 = 0;
                loop {
                    println!("flood {i}");
                    i = i.wrapping_add(1);
                }
            }
            Ok(Mode::Crash) => {
                println!("crashing on purpose");
                panic!("deliberate crash");
            }
            Err(m) => println!("FAIL: unknown mode '{m}'"),
        }
    }

    // ---- smp ----------------------------------------------------------------------------

    const NO_SGI: u32 = u32::MAX;
    static SGI_SEEN: AtomicU32 = AtomicU32::new(NO_SGI);
    static SGI_SENDER: AtomicUsize = AtomicUsize::new(usize::MAX);

    fn on_irq_vcpu0(intid: u32) {
        match intid {
            SMP_SGI => SGI_SEEN.store(intid, Ordering::Release),
            VTIMER_PPI => timer::stop(),
            _ => {}
        }
    }

    fn vcpu1() {
        println!("vcpu1 online");
        irq::init_secondary();
        // GICv3 SGIs carry no source id, so the sender is published before sending.
        SGI_SENDER.store(smp::current_vcpu(), Ordering::Release);
        gic::send_sgi(SMP_SGI, 0);
        loop {
            arch::wfi();
        }
    }

    fn smp_test() {
        irq::init_primary();
        gic::enable(SMP_SGI);
        gic::enable(VTIMER_PPI);
        irq::set_handler(on_irq_vcpu0);
        irq::enable_irqs();
        if let Err(e) = smp::start_vcpu(1, vcpu1) {
            println!("FAIL: CPU_ON vcpu1: {e:?}");
            return;
        }
        let deadline = timer::now().saturating_add(5 * timer::freq());
        timer::set_deadline(deadline);
        irq::wait_until(|| SGI_SEEN.load(Ordering::Acquire) != NO_SGI || timer::now() >= deadline);
        timer::stop();
        match SGI_SEEN.load(Ordering::Acquire) {
            NO_SGI => println!("FAIL: no SGI"),
            sgi => {
                let from = SGI_SENDER.load(Ordering::Acquire);
                println!("vcpu0 got SGI {sgi} from vcpu{from}");
                println!("PASS");
            }
        }
    }

    // ---- load ---------------------------------------------------------------------------

    static LOAD_VCPUS: AtomicUsize = AtomicUsize::new(1);

    fn load(info: &StartInfo) {
        let vcpus = usize::from(info.vcpus.max(1));
        LOAD_VCPUS.store(vcpus, Ordering::Release);
        irq::init_primary();
        irq::set_handler(rt::load::on_irq);
        for v in 1..vcpus {
            if let Err(e) = smp::start_vcpu(v, load_vcpu) {
                println!("FAIL: CPU_ON vcpu{v}: {e:?}");
            }
        }
        load_loop()
    }

    fn load_vcpu() {
        irq::init_secondary();
        load_loop()
    }

    fn load_loop() {
        let me = smp::current_vcpu();
        rt::load::run(load_peer(me, LOAD_VCPUS.load(Ordering::Acquire)))
    }

    // ---- metronome ----------------------------------------------------------------------

    /// Each vCPU's next deadline (absolute counter value).
    static NEXT: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
    /// The metronome's vCPUs (at most `NEXT.len()`), and when the first one's grid starts.
    static METRONOME_VCPUS: AtomicUsize = AtomicUsize::new(1);
    static METRONOME_START: AtomicU64 = AtomicU64::new(0);

    fn metronome_period() -> u64 {
        (testguest::METRONOME_US * timer::freq() / 1_000_000).max(1)
    }

    fn metronome(info: &StartInfo) {
        let vcpus = usize::from(info.vcpus.max(1)).min(NEXT.len());
        METRONOME_VCPUS.store(vcpus, Ordering::Release);
        METRONOME_START.store(timer::now() + 4 * metronome_period(), Ordering::Release);
        irq::init_primary();
        irq::set_handler(metronome_irq);
        for v in 1..vcpus {
            if let Err(e) = smp::start_vcpu(v, metronome_vcpu) {
                println!("FAIL: CPU_ON vcpu{v}: {e:?}");
            }
        }
        metronome_loop()
    }

    fn metronome_vcpu() {
        irq::init_secondary();
        metronome_loop()
    }

    /// Arms this vCPU's first deadline at its phase and idles: the timer does the work.
    fn metronome_loop() -> ! {
        let me = smp::current_vcpu();
        let vcpus = METRONOME_VCPUS.load(Ordering::Acquire).max(1) as u64;
        let period = metronome_period();
        let first = METRONOME_START.load(Ordering::Acquire) + me as u64 * period / vcpus;
        NEXT[me].store(first, Ordering::Release);
        gic::enable(VTIMER_PPI);
        timer::set_deadline(first);
        irq::enable_irqs();
        println!("metronome vcpu{me} running");
        loop {
            irq::wait_until(|| false);
        }
    }

    /// The next deadline on this vCPU's fixed grid (never drifting, skipping missed ones).
    fn metronome_irq(intid: u32) {
        if intid != VTIMER_PPI {
            return;
        }
        let me = smp::current_vcpu();
        let period = metronome_period();
        let now = timer::now();
        let mut next = NEXT[me].load(Ordering::Relaxed) + period;
        if next <= now {
            next += (now - next) / period * period + period;
        }
        NEXT[me].store(next, Ordering::Relaxed);
        timer::set_deadline(next);
    }

    // ---- oob ----------------------------------------------------------------------------

    fn oob_test(info: &StartInfo) {
        let (base, end) = (info.ram_base, info.ram_base.saturating_add(info.ram_size));
        let Some(addr) = oob_address(end) else {
            println!("FAIL: no address 64 MiB past RAM end {end:#x} below 4 GiB");
            return;
        };
        println!("touching {addr:#x}");
        let v = arch::probe_read32(addr, base, end);
        println!("FAIL: survived");
        println!("(read {v:x?})");
    }

    // ---- badcap -------------------------------------------------------------------------

    fn run(p: &Probe) -> bool {
        let got = rt::hvc(p.fid, p.args)[0];
        match judge(p, got) {
            None => true,
            Some(line) => {
                println!("{line}");
                false
            }
        }
    }

    fn badcap_test(info: &StartInfo) {
        // The runtime negotiates lazily, so nothing has been negotiated yet.
        let mut ok = pre_negotiate_probes()
            .iter()
            .fold(true, |ok, p| run(p) & ok);
        if let Err(e) = cap::negotiate() {
            println!("FAIL: Negotiate: expected Ok got {e:?}");
            return;
        }
        let caps = match cap::cap_list() {
            Ok(c) => c,
            Err(e) => {
                println!("FAIL: CapList: expected Ok got {e:?}");
                return;
            }
        };
        let Some(console) = caps.iter().find(|c| c.kind == CapKind::Console) else {
            println!("FAIL: CapList: no Console cap among {} caps", caps.len());
            return;
        };
        let cx = ProbeContext {
            console: console.handle,
            ram_end: info.ram_base.saturating_add(info.ram_size),
            msg_page: arch::msg_page_ipa(),
        };
        ok = probes(&cx).iter().fold(ok, |ok, p| run(p) & ok);
        // The protocol still works for us afterwards.
        if let Err(e) = cap::register_msg_page().and_then(|()| cap::cap_list().map(drop)) {
            println!("FAIL: CapList after probes: expected Ok got {e:?}");
            ok = false;
        }
        if ok {
            println!("PASS");
        }
    }

    // ---- bench --------------------------------------------------------------------------

    fn bench() {
        let null = u64::from(CapOp::NullCall.function_id());
        if let Err(e) = cap::null_call() {
            println!("FAIL: NullCall: expected Ok got {e:?}");
            return;
        }
        pmu::start();
        let before = pmu::sample();
        for _ in 0..BENCH_CALLS {
            rt::hvc(null, [0; 6]);
        }
        let d = before.until(pmu::sample());
        println!(
            "null-hypercall n={BENCH_CALLS} el2_instructions={} guest_instructions={}",
            d.el2, d.guest
        );
        println!("done");
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
