//! dom0's shell: reads the manifest module, creates and starts each domain through the
//! capability protocol, then supervises them (planning and wording live in `lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod ops;
#[cfg(target_os = "none")]
mod port;
#[cfg(target_os = "none")]
mod pv;

#[cfg(target_os = "none")]
mod shell {
    use alloc::string::String;
    use alloc::vec::Vec;
    use bulkhead_runtime::{self as rt, cap, gic, irq, println, timer, StartInfo};
    use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use dom0::{decode_manifest, find_module, plan_domain, Command, Limits, Policy, Supervisor};
    use protocol::boot::MANIFEST_LABEL;
    use protocol::cap::CapInfo;
    use protocol::control::{CapError, DomainState};
    use protocol::layout::{CONTROL_EVENT_PPI, EVTCHN_PPI, VTIMER_PPI};
    use protocol::manifest::SystemManifest;

    /// Safety-net poll of every domain when control events work. `DomainEvents`' answer
    /// is the microvisor's record of which children changed (kept until read), so a lost
    /// event is caught at the next event or `DomainEvents` anyway; this looks at everyone
    /// in case the record itself missed one. It was 2 s: a `DomainEvents` and a
    /// `DomainQuery` per domain, each a locked call, every 2 s of an idle system.
    const POLL_MS: u64 = 10_000;
    /// Poll period when the microvisor has no `DomainEvents`.
    const FALLBACK_POLL_MS: u64 = 250;

    /// Set by the control-event PPI: some child changed state.
    static EVENT: AtomicBool = AtomicBool::new(false);
    /// Set by the management port's interrupt: bytes arrived from the host (or the device
    /// took our output).
    static PORT_INPUT: AtomicBool = AtomicBool::new(false);
    /// Set by the management port's interrupt when it masked the SPI at the distributor:
    /// the loop unmasks it once it has serviced the device, and only then (each
    /// distributor access is a locked exit of the microvisor).
    static PORT_MASKED: AtomicBool = AtomicBool::new(false);
    /// The management port's interrupt (0: none).
    static PORT_IRQ: AtomicU32 = AtomicU32::new(0);
    /// Poll of a management port that has no interrupt (dom0 finds its input only so).
    const PORT_POLL_MS: u64 = 200;
    /// Poll of a management port that has one, in case an interrupt is lost: a safety net,
    /// so rare (each poll is several trapped register accesses, each a locked exit of the
    /// microvisor and a wake-up of an idle system).
    const PORT_SAFETY_POLL_MS: u64 = 1000;
    /// Set by the event-channel upcall: a PV ring has news.
    static PV_EVENT: AtomicBool = AtomicBool::new(false);
    /// Safety poll of the PV rings. Every ring change comes with an event (a guest notifies
    /// after it writes or consumes), and console input typed on the UART raises our
    /// control event (the microvisor tells the focus's controller); this only bounds what a
    /// lost notification could delay (Xen has no such net at all). It was 20 ms while UART
    /// input had no event: 50 idle wake-ups a second, each a `ConsoleReadFor` per guest and
    /// a switch on a shared pCPU; then 200 ms.
    const PV_POLL_MS: u64 = 1000;
    /// How often watched domains' heartbeats are read (`dom0::health::reading_period_ms`
    /// of their timeouts). The microvisor stamps each beat, so this only bounds how late a
    /// silence is noticed, not how it is measured. Most silence one reading may add is two
    /// such periods: a later reading means dom0 itself did not run (the host starved the
    /// machine), which is no evidence against the watched domain (see `dom0::health`).
    fn beat_period_ms(manifest: &SystemManifest) -> u32 {
        dom0::health::reading_period_ms(manifest.watchdogs.iter().map(|w| w.timeout_ms))
    }

    rt::entry!(main);

    fn main(info: &'static StartInfo) {
        println!("dom0 up");
        let caps = match cap::cap_list() {
            Ok(c) => c,
            Err(e) => return println!("cannot list capabilities: {e}"),
        };
        let Some(manifest) = load_manifest(&caps) else {
            return;
        };
        let sup = start_all(&manifest, &caps);
        let port = crate::port::Port::open(&caps);
        if let Some(irq) = port.as_ref().and_then(|p| p.irq) {
            PORT_IRQ.store(irq, Ordering::Release);
        }
        supervise(sup, port, info, &manifest)
    }

    fn load_manifest(caps: &[CapInfo]) -> Option<SystemManifest> {
        let Some(module) = find_module(caps, MANIFEST_LABEL) else {
            println!("cannot read manifest: no boot module labelled \"{MANIFEST_LABEL}\"");
            return None;
        };
        let bytes = cap::module_read_all(module.handle)
            .map_err(|e| println!("cannot read manifest: {e}"))
            .ok()?;
        decode_manifest(&bytes)
            .map_err(|e| println!("cannot read manifest: {e}"))
            .ok()
    }

    fn start_all(manifest: &SystemManifest, caps: &[CapInfo]) -> Supervisor {
        let mut sup = Supervisor::new(Limits::for_hz(timer::freq()));
        let mut running: Vec<String> = Vec::new();
        let mut failed = 0;
        for d in &manifest.domains {
            let policy = Policy::of(d);
            let spec = match plan_domain(d, caps, &running) {
                Ok(mut s) => {
                    // plan_domain already listed the passthrough devices; the backends'
                    // disks and NICs join them.
                    s.devices
                        .extend(dom0::vbd::backend_devices(&d.name, &manifest.disks, caps));
                    s.devices
                        .extend(dom0::vif::backend_devices(&d.name, &manifest.nics, caps));
                    s.budgets = dom0::vcpu_budgets(&manifest.budgets, d);
                    s
                }
                Err(e) => {
                    println!("cannot create {}: {e}", d.name);
                    failed += 1;
                    continue;
                }
            };
            let (handle, domid) = match cap::domain_create(&spec) {
                Ok(r) => r,
                Err(e) => {
                    println!("cannot create {}: {e}", d.name);
                    failed += 1;
                    continue;
                }
            };
            match cap::domain_start(handle) {
                Ok(()) => {
                    println!("started {} (d{domid})", d.name);
                    sup.watch(&d.name, domid, handle, DomainState::Running, policy);
                    sup.placed(&d.vcpus);
                    if let Some(w) = manifest.watchdogs.iter().find(|w| w.domain == d.name) {
                        let hz = timer::freq();
                        let ticks = |ms: u32| timer::ms_to_ticks(u64::from(ms), hz);
                        let step = ticks(2 * beat_period_ms(manifest));
                        let (timeout, first) = (ticks(w.timeout_ms), ticks(w.first_beat_ms));
                        sup.guard(timeout, first, step, timer::now());
                        println!(
                            "watchdog on {}: {} ms (first beat within {} ms)",
                            d.name, w.timeout_ms, w.first_beat_ms
                        );
                    }
                    running.push(d.name.clone());
                }
                Err(e) => {
                    println!("cannot start {} (d{domid}): {e}", d.name);
                    sup.watch(&d.name, domid, handle, DomainState::Created, policy);
                    sup.placed(&d.vcpus);
                    failed += 1;
                }
            }
            // Both arms above watched it.
            limit_crashes(&mut sup, manifest, &d.name);
        }
        // Only a complete start says so: tests and `run --until` wait for this line, and a
        // failure must not look like success.
        if failed > 0 {
            println!(
                "{failed} of {} domains failed to start",
                manifest.domains.len()
            );
        } else {
            println!("all domains started");
        }
        sup
    }

    /// Gives the domain just watched its own crash-loop limit, if the system sets one.
    fn limit_crashes(sup: &mut Supervisor, manifest: &SystemManifest, name: &str) {
        let Some(l) = manifest.crash_limits.iter().find(|l| l.domain == name) else {
            return;
        };
        let window = timer::ms_to_ticks(u64::from(l.window_ms), timer::freq());
        let max = usize::try_from(l.max_restarts).unwrap_or(usize::MAX);
        if !sup.limit_crashes(max, window) {
            return println!("crash limit on {name} ignored: its window is empty");
        }
        println!(
            "crash limit on {name}: {} restarts within {} ms",
            l.max_restarts, l.window_ms
        );
    }

    fn on_irq(intid: u32) {
        match intid {
            CONTROL_EVENT_PPI => EVENT.store(true, Ordering::Release),
            EVTCHN_PPI => {
                // The upcall follows evtchn_upcall_pending like a level: clear it here.
                // Which ports fired does not matter: the loop polls every ring.
                bulkhead_runtime::xen::take_pending_ports(|_| {});
                PV_EVENT.store(true, Ordering::Release);
            }
            VTIMER_PPI => timer::stop(),
            i if i == PORT_IRQ.load(Ordering::Acquire) => {
                // Level-triggered: keep it masked until the loop has serviced the device.
                gic::disable_spi(i);
                PORT_MASKED.store(true, Ordering::Release);
                PORT_INPUT.store(true, Ordering::Release);
            }
            _ => {}
        }
    }

    /// Waits for a control event, the next restart or the safety poll, whichever is first,
    /// and applies each domain's policy. Every call here is non-blocking: dom0 never waits
    /// on a domain.
    fn supervise(
        mut sup: Supervisor,
        mut port: Option<crate::port::Port>,
        info: &'static StartInfo,
        manifest: &SystemManifest,
    ) {
        irq::init_primary();
        gic::enable(VTIMER_PPI);
        gic::enable(CONTROL_EVENT_PPI);
        gic::enable(EVTCHN_PPI);
        let mut pv = crate::pv::Backends::new();
        let mut uploads = dom0::upload::Uploads::default();
        pv.set_disks(&manifest.disks);
        for d in &manifest.domains {
            pv.describe(d);
        }
        pv.sync(&sup);
        irq::set_handler(on_irq);
        irq::enable_irqs();
        let hz = timer::freq();
        let mut poll = timer::ms_to_ticks(POLL_MS, hz);
        let mut events_ok = true;
        let mut events_error: Option<CapError> = None;
        let mut next_poll = timer::now().saturating_add(poll);
        let port_poll = match port.as_ref().and_then(|p| p.irq) {
            Some(_) => timer::ms_to_ticks(PORT_SAFETY_POLL_MS, hz),
            None => timer::ms_to_ticks(PORT_POLL_MS, hz),
        };
        let mut next_port_poll = timer::now();
        let pv_poll = timer::ms_to_ticks(PV_POLL_MS, hz);
        let mut next_pv_poll = timer::now();
        let beat_poll = timer::ms_to_ticks(u64::from(beat_period_ms(manifest)), hz);
        let mut next_beats = timer::now();
        let mut prompt = dom0::prompt::LineReader::default();
        loop {
            let mut wake = sup.next_deadline().map_or(next_poll, |t| t.min(next_poll));
            wake = wake.min(next_beats);
            // The management port and the console prompt are polled at least this often.
            wake = wake.min(timer::now().saturating_add(port_poll));
            if pv.any() {
                wake = wake.min(next_pv_poll);
            }
            let woken = || {
                EVENT.load(Ordering::Acquire)
                    || PORT_INPUT.load(Ordering::Acquire)
                    || PV_EVENT.load(Ordering::Acquire)
            };
            if !woken() && timer::now() < wake {
                timer::set_deadline(wake);
                irq::wait_until(|| woken() || timer::now() >= wake);
                timer::stop();
            }
            let mut typed = [0u8; protocol::control::CONSOLE_READ_BYTES];
            while let Ok(n @ 1..) = cap::console_read(&mut typed) {
                for line in prompt.feed(&typed[..n]) {
                    let mut ops = crate::ops::Ops {
                        sup: &mut sup,
                        info,
                        pv: &mut pv,
                        uploads: &mut uploads,
                    };
                    for out in dom0::prompt::run(&line, &mut ops) {
                        println!("{out}");
                    }
                }
            }
            if let Some(p) = port.as_mut() {
                // Only when it has something for us, owes the host output, or the safety
                // poll is due: reading an idle port is several trapped register accesses,
                // each a locked exit of the microvisor, at every turn of this loop.
                let input = PORT_INPUT.swap(false, Ordering::AcqRel);
                let now = timer::now();
                if input || p.pending() != 0 || now >= next_port_poll {
                    next_port_poll = now.saturating_add(port_poll);
                    let mut ops = crate::ops::Ops {
                        sup: &mut sup,
                        info,
                        pv: &mut pv,
                        uploads: &mut uploads,
                    };
                    if p.poll(&mut ops, input) >= dom0::mgmt::link::READ_PER_POLL {
                        // Input left behind the bound raises no new interrupt: go round.
                        PORT_INPUT.store(true, Ordering::Release);
                    }
                }
                if PORT_MASKED.swap(false, Ordering::AcqRel) {
                    if let Some(irq) = p.irq {
                        gic::unmask_spi(irq);
                    }
                }
            }
            let now = timer::now();
            let mut mask = 0;
            let event = EVENT.swap(false, Ordering::AcqRel);
            if event {
                // It may be console input for a guest whose PV console we serve.
                pv.input_arrived();
            }
            if now >= next_pv_poll {
                pv.input_arrived();
                next_pv_poll = now.saturating_add(pv_poll);
            }
            if event || now >= next_poll {
                mask = match cap::domain_events() {
                    Ok(m) => m,
                    Err(CapError::UnknownCall) if events_ok => {
                        println!("no DomainEvents: polling every {FALLBACK_POLL_MS} ms");
                        events_ok = false;
                        poll = timer::ms_to_ticks(FALLBACK_POLL_MS, hz);
                        u64::MAX
                    }
                    Err(e) => {
                        if events_ok && events_error != Some(e) {
                            println!("DomainEvents failed: {e}");
                            events_error = Some(e);
                        }
                        u64::MAX
                    }
                };
            }
            if now >= next_poll {
                // The safety net: look at everyone (ids past 63 have no event bit).
                mask = u64::MAX;
                next_poll = now.saturating_add(poll);
            }
            for i in sup.changed(mask) {
                let h = sup.domains()[i].handle;
                let state = cap::domain_query(h).map(|info| info.state);
                if let Ok(DomainState::Stopped(_)) = state {
                    // Whether it had got ready decides its backoff: read its last beats.
                    if let Some(line) = sup.final_beats(i, cap::domain_beats(h)) {
                        println!("{line}");
                    }
                }
                let (line, command) = sup.observe(i, state, now);
                if let Some(line) = line {
                    println!("{line}");
                }
                if let Some(Command::Destroy(i)) = command {
                    pv.detach(sup.domains()[i].domid);
                    let r = cap::domain_destroy(sup.domains()[i].handle);
                    if let Some(line) = sup.destroyed(i, r) {
                        println!("{line}");
                    }
                }
            }
            if now >= next_beats {
                next_beats = now.saturating_add(beat_poll);
                let watched = sup.beat_watch();
                let handles: Vec<_> = watched.iter().map(|&i| sup.domains()[i].handle).collect();
                // All in one call: one locked pass of the microvisor.
                let readings =
                    dom0::health::readings(handles.len(), cap::domain_beats_many(&handles));
                for (i, reading) in watched.into_iter().zip(readings) {
                    let (line, command) = sup.beats(i, reading, timer::now());
                    if let Some(line) = line {
                        println!("{line}");
                    }
                    if let Some(Command::Destroy(i)) = command {
                        pv.detach(sup.domains()[i].domid);
                        let r = cap::domain_destroy(sup.domains()[i].handle);
                        if let Some(line) = sup.destroyed(i, r) {
                            println!("{line}");
                        }
                    }
                }
            }
            for i in sup.due(timer::now()) {
                pv.detach_restarting(sup.domains()[i].domid);
                let r = cap::domain_restart(sup.domains()[i].handle);
                let (line, old) = sup.restarted(i, r, timer::now());
                println!("{line}");
                if let Some(old) = old {
                    // Self-check of the capability contract: the pre-restart handle is dead.
                    let q = cap::domain_query(old);
                    if let Some(line) = sup.stale_check(i, &q) {
                        println!("{line}");
                    }
                }
            }
            // Last, so a domain destroyed or restarted above is detached before its rings are
            // touched again.
            if PV_EVENT.swap(false, Ordering::AcqRel) {
                // A guest that consumed its console input ring says so this way too.
                pv.input_arrived();
            }
            pv.close_held(&mut sup);
            pv.sync(&sup);
            pv.poll();
            if pv.output_left() {
                PV_EVENT.store(true, Ordering::Release);
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
