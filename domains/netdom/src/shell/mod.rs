//! The event loop: the NIC, xenstore watches, the vifs' rings.
//!
//! Wake-ups come from the event-channel upcall (a frontend posted TX packets or RX
//! buffers, or xenstore has news), the NIC's interrupt (frames arrived), and timers for
//! what the loop owes: a NIC flush, held-back counters, a heartbeat, a rare rescan.
//! The NIC's SPI is level-triggered: the handler acknowledges the device (lowering the
//! line, [`virtio_irq`]) and the loop drains the receive queue, so an idle netdom sleeps
//! in WFI.

mod conn;
mod hw;

use alloc::vec::Vec;
use bulkhead_runtime::arch::virtio_net::Net;
use bulkhead_runtime::arch::{virtio, virtio_irq};
use bulkhead_runtime::xenstore::{XsClient, XsError};
use bulkhead_runtime::{self as rt, cap, gic, irq, println, timer, xen, StartInfo};
use conn::Conns;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use hw::{GrantCopier, ShellIo};
use netdom::flush::{flush_step, FlushStep};
use netdom::{Config, MacText, Netback, VifId};
use protocol::cap::{CapDetail, CapKind};
use protocol::control::CapOp;
use protocol::layout::{EVTCHN_PPI, VTIMER_PPI};
use protocol::mgmt::VIF_COUNTERS_KEY;

/// virtio device type of a network card.
const VIRTIO_NET: u32 = 1;
/// How soon buffers added to the NIC's queues are made sure of ([`Net::flush`]): a
/// notification the device missed holds a frame up this long at most.
const FLUSH_MS: u64 = 50;
/// How often `backend/vif` is listed again without a watch firing: a last resort. dom0's
/// xenstore drops a watch event only when the watcher's queue is over its quota, and then
/// owes the watch one event on its own path once the queue drains, which sets off the same
/// scan. A scan is several xenstore round trips per vif (each a switch to dom0 on a shared
/// pCPU); it was every 5 s. Otherwise an idle netdom wakes only to beat once a second
/// (`irq::idle_until`), to flush the NIC and to publish counters it held back.
const SCAN_MS: u64 = 60_000;
/// How often the rings are polled when no event can wake us (shared_info unmapped).
const FALLBACK_POLL_MS: u64 = 50;
/// Seconds a learned MAC address stays without being seen.
const AGING_S: u64 = 300;
/// Bytes per page.
const PAGE: usize = 4096;
/// NIC frames handled per loop turn (then the vifs get their turn).
const RX_BATCH: usize = 64;

/// Set by the event-channel upcall: a ring or the store has news.
static EVENT: AtomicBool = AtomicBool::new(false);
/// Set by the NIC's interrupt: frames arrived.
static NIC_EVENT: AtomicBool = AtomicBool::new(false);
/// The NIC's SPI (0: none).
static NIC_IRQ: AtomicU32 = AtomicU32::new(0);
/// The NIC's interrupts taken (published with the uplink's counters).
static NIC_IRQS: AtomicU64 = AtomicU64::new(0);

rt::entry!(main);

fn main(_info: &'static StartInfo) {
    println!("up");
    let fallback = xen::events_or_poll(FALLBACK_POLL_MS);
    let mut nic = open_nic();
    let mut xs = match XsClient::open() {
        Ok(x) => x,
        Err(e) => return println!("cannot reach xenstore: {e:?}"),
    };
    // dom0 serves our xenstore ring once it has created every domain: keep asking.
    let mut said = false;
    loop {
        let e = match xs.watch("backend/vif", "vif") {
            Ok(()) => break,
            Err(XsError::Store(e)) if e == "EEXIST" => break,
            Err(e) => e,
        };
        if !said {
            println!("waiting for xenstore ({e:?})");
            said = true;
        }
    }
    irq::init_primary();
    gic::enable(VTIMER_PPI);
    gic::enable(EVTCHN_PPI);
    irq::set_handler(on_irq);
    irq::enable_irqs();
    xs.sleep_while_waiting();
    let nic_irq = NIC_IRQ.load(Ordering::Acquire);
    if nic.is_some() && nic_irq != 0 {
        gic::enable_spi(nic_irq);
    }
    match &nic {
        Some(n) => println!("ready nic={}", MacText(n.mac())),
        None => println!("ready nic=none"),
    }
    let hz = timer::freq();
    let mut nb = Netback::new(Config {
        mac_capacity: 256,
        aging: AGING_S.saturating_mul(hz),
        tx_budget: 64,
    });
    let mut conns = Conns::default();
    let mut grants = GrantCopier::default();
    // Received frames are staged a page each, each at the start of its page, so that its
    // grant copy to a guest is one piece, never two (NIC frames are at most 2 KiB); a run
    // of them for one vif then goes by one grant copy (`Netback::from_uplink_batch`).
    let mut rx_buf = alloc::vec![0u8; (netdom::RUN_FRAMES + 1) * PAGE];
    let rx_at = (PAGE - rx_buf.as_ptr() as usize % PAGE) % PAGE;
    let mut staged: Vec<core::ops::Range<usize>> = Vec::with_capacity(netdom::RUN_FRAMES);
    let flush_period = timer::ms_to_ticks(FLUSH_MS, hz);
    let scan = timer::ms_to_ticks(SCAN_MS, hz);
    let mut next_scan = 0;
    let mut next_flush = 0;
    loop {
        EVENT.store(false, Ordering::Release);
        let events = xs.events().unwrap_or_else(|e| {
            println!("xenstore: {e:?}");
            Vec::new()
        });
        let now = timer::now();
        // Not for our own counters' publication: rescanning for it cost several round trips
        // to dom0 a second under load.
        if events.iter().any(|e| e.is_news("vif", VIF_COUNTERS_KEY)) || now >= next_scan {
            conns.scan(&mut xs, &mut nb, &mut grants);
            next_scan = now.saturating_add(scan);
        }
        for e in events.iter().filter(|e| e.token != "vif") {
            conns.frontend_event(&e.token, &mut xs, &mut nb, &mut grants);
        }
        let mut more = false;
        for i in 0..conns.conns.len() {
            if !conns.live(i, &nb) {
                continue;
            }
            let mut io = ShellIo {
                conns: &mut conns.conns,
                grants: &mut grants,
                nic: nic.as_mut(),
            };
            more |= nb.poll_tx(VifId(i), &mut io, now).more;
        }
        if let Some(n) = nic.as_mut() {
            // The handler lowered the line; looking for frames reads our own memory, so
            // every turn does, interrupt or not.
            NIC_EVENT.store(false, Ordering::Release);
            let mut taken = 0;
            while taken < RX_BATCH {
                staged.clear();
                let stage = &mut rx_buf[rx_at..];
                while staged.len() < netdom::RUN_FRAMES {
                    let at = staged.len() * PAGE;
                    let Some(len) = n.receive(|f| {
                        let len = f.len().min(PAGE);
                        stage[at..at + len].copy_from_slice(&f[..len]);
                        len
                    }) else {
                        break;
                    };
                    staged.push(at..at + len);
                }
                if staged.is_empty() {
                    break;
                }
                taken += staged.len();
                let mut io = ShellIo {
                    conns: &mut conns.conns,
                    grants: &mut grants,
                    nic: None,
                };
                nb.from_uplink_batch(&rx_buf[rx_at..], &staged, &mut io, now);
                if staged.len() < netdom::RUN_FRAMES {
                    break;
                }
            }
            more |= taken == RX_BATCH;
        }
        conns.after(&mut nb, &mut xs, &mut grants);
        nb.uplink.interrupts = NIC_IRQS.load(Ordering::Relaxed);
        let publish = conns.publish(&nb, nic.is_some(), &mut xs);
        if more {
            continue;
        }
        let mut wake = publish.min(next_scan).min(now.saturating_add(fallback));
        // A notification the NIC missed (see `Net::flush`) holds a frame up for one flush
        // period at most; flushing at every sleep would cost a trap per queue each time, and
        // with nothing added since the last flush there is nothing to wake for.
        if let Some(n) = nic.as_mut() {
            match flush_step(n.owes_flush(), now, next_flush, flush_period) {
                FlushStep::Now { next } => {
                    n.flush();
                    next_flush = next;
                }
                FlushStep::WakeAt(t) => wake = wake.min(t),
                FlushStep::Nothing => {}
            }
        }
        irq::idle_until(wake, || {
            EVENT.load(Ordering::Acquire) || NIC_EVENT.load(Ordering::Acquire)
        });
    }
}

fn on_irq(intid: u32) {
    match intid {
        EVTCHN_PPI => {
            xen::take_pending_ports(|_| {});
            EVENT.store(true, Ordering::Release);
        }
        VTIMER_PPI => timer::stop(),
        i if i != 0 && i == NIC_IRQ.load(Ordering::Acquire) => {
            // Level-triggered: lowered here; the loop drains the queues after this, so a
            // frame that arrives later raises the line again.
            let _ = virtio_irq::ack(i);
            NIC_IRQS.fetch_add(1, Ordering::Relaxed);
            NIC_EVENT.store(true, Ordering::Release);
        }
        _ => {}
    }
}

/// Maps and opens the first virtio-net device we hold (the uplink).
fn open_nic() -> Option<Net> {
    let caps = match cap::cap_list() {
        Ok(c) => c,
        Err(e) => {
            println!("cannot list capabilities: {e}");
            return None;
        }
    };
    for c in caps.iter().filter(|c| c.kind == CapKind::Device) {
        let CapDetail::Device {
            virtio_id: VIRTIO_NET,
            irqs,
            ..
        } = &c.detail
        else {
            continue;
        };
        let (base, size) = match cap::call(CapOp::DeviceMap, [c.handle.to_raw(), 0, 0, 0, 0, 0]) {
            Ok(r) => {
                // The same RAM for every device: the last answer is as good as any.
                virtio::set_phys_offset(r[2]);
                (r[0], r[1])
            }
            Err(e) => {
                println!("cannot map {}: {e}", c.label);
                continue;
            }
        };
        let mut net = match Net::open(base, size) {
            Ok(n) => n,
            Err(e) => {
                println!("cannot open the virtio-net device at {base:#x}: {e:?}");
                continue;
            }
        };
        match irqs.first() {
            Some(&irq) if net.use_interrupt(irq) => NIC_IRQ.store(irq, Ordering::Release),
            Some(&irq) => println!("no room to register SPI {irq}: polling the NIC"),
            None => {}
        }
        println!("nic {} at {base:#x}", MacText(net.mac()));
        return Some(net);
    }
    println!("no network device was given to this domain: vifs switch among themselves");
    None
}
