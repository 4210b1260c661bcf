//! The event loop: disks, xenstore watches, rings.

mod conn;
mod hw;

use alloc::string::String;
use alloc::vec::Vec;
use blkdom::io::Disk as _;
use blkdom::{Config, VbdTable};
use bulkhead_runtime::arch::virtio::{self, Block};
use bulkhead_runtime::arch::virtio_irq;
use bulkhead_runtime::xenstore::{XsClient, XsError};
use bulkhead_runtime::{self as rt, cap, gic, irq, println, timer, xen, StartInfo};
use conn::Conns;
use core::sync::atomic::{AtomicBool, Ordering};
use hw::VirtioDisk;
use protocol::cap::{CapDetail, CapKind};
use protocol::control::CapOp;
use protocol::layout::{EVTCHN_PPI, VTIMER_PPI};
use protocol::mgmt::VBD_COUNTERS_KEY;

/// virtio device type of a block device.
const VIRTIO_BLOCK: u32 = 2;
/// How often `backend/vbd` is listed again without its watch firing: a last resort. dom0's
/// xenstore drops a watch event only when the watcher's queue is over its quota, and then
/// owes the watch one event on its own path once the queue drains, which sets off the same
/// scan. A scan is several xenstore round trips per vbd (each a switch to dom0 on a shared
/// pCPU); it was every 5 s. Otherwise an idle blkdom wakes only to beat once a second
/// (`irq::idle_until`) and to publish counters it held back.
const SCAN_MS: u64 = 60_000;
/// How often the rings are polled when no event can wake us (shared_info unmapped).
const FALLBACK_POLL_MS: u64 = 100;

/// Set by the event-channel upcall: a ring or the store has news.
static EVENT: AtomicBool = AtomicBool::new(false);

/// One disk: its serial (how dom0's toolstack names it in `params`), the device and its
/// SPI (if the capability names one).
pub struct OwnedDisk {
    pub serial: String,
    pub disk: VirtioDisk,
    pub irq: Option<u32>,
}

rt::entry!(main);

fn main(_info: &'static StartInfo) {
    println!("blkdom up");
    let fallback = xen::events_or_poll(FALLBACK_POLL_MS);
    let config = Config::default();
    // Room for a full batch of the largest requests the table accepts.
    let staging = VbdTable::new(config).max_request_bytes() * virtio::BLOCK_DEPTH;
    let mut disks = open_disks(staging);
    if disks.is_empty() {
        println!("no block devices were given to this domain");
    }
    let mut xs = match XsClient::open() {
        Ok(x) => x,
        Err(e) => return println!("cannot reach xenstore: {e:?}"),
    };
    // dom0 serves our xenstore ring once it has created every domain of the system: until
    // then requests time out, so keep asking.
    let mut said = false;
    loop {
        let e = match xs.watch("backend/vbd", "vbd") {
            // A request that timed out earlier may have registered it after all.
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
    let woken = disks.iter_mut().map(use_interrupt).filter(|&on| on).count();
    println!(
        "blkdom ready: {} disk(s), {woken} interrupt-driven",
        disks.len()
    );
    let mut table = VbdTable::new(config);
    let mut conns = Conns::default();
    let scan = timer::ms_to_ticks(SCAN_MS, timer::freq());
    let mut next_scan = 0;
    loop {
        EVENT.store(false, Ordering::Release);
        let events = match xs.events() {
            Ok(e) => e,
            Err(e) => {
                println!("xenstore: {e:?}");
                Vec::new()
            }
        };
        let now = timer::now();
        // Not for our own counters' publication: rescanning for it cost several round trips
        // to dom0 a second under I/O.
        if events.iter().any(|e| e.is_news("vbd", VBD_COUNTERS_KEY)) || now >= next_scan {
            conns.scan(&mut xs, &mut table, &disks);
            next_scan = now.saturating_add(scan);
        }
        for e in events.iter().filter(|e| e.token != "vbd") {
            conns.frontend_event(&e.token, &mut xs, &mut table);
        }
        let more = conns.serve(&mut table, &mut disks, &mut xs);
        let publish = conns.publish(&table, &mut xs);
        if more {
            continue;
        }
        let wake = publish.min(next_scan).min(now.saturating_add(fallback));
        irq::idle_until(wake, || EVENT.load(Ordering::Acquire));
    }
}

fn on_irq(intid: u32) {
    match intid {
        EVTCHN_PPI => {
            xen::take_pending_ports(|_| {});
            EVENT.store(true, Ordering::Release);
        }
        VTIMER_PPI => timer::stop(),
        // A disk's completion: lowering its line is all; the wait that slept re-reads the
        // used ring.
        i => {
            let _ = virtio_irq::ack(i);
        }
    }
}

/// Lets `d`'s completions interrupt (registered for acknowledgement before the SPI is
/// enabled, since a completion of the serial read may already be asserting the line).
/// Returns whether its waits now sleep.
fn use_interrupt(d: &mut OwnedDisk) -> bool {
    let Some(intid) = d.irq else {
        return false;
    };
    if !d.disk.dev.use_interrupt(intid) {
        println!(
            "disk {}: no room to register SPI {intid}: polling",
            d.serial
        );
        return false;
    }
    gic::enable_spi(intid);
    true
}

/// Maps every virtio-blk device we hold and opens it with a staging buffer of `staging`
/// bytes. Its interrupt is enabled later ([`use_interrupt`]), once the IRQ handler is in
/// place; until then waits (the serial read) spin.
fn open_disks(staging: usize) -> Vec<OwnedDisk> {
    let caps = match cap::cap_list() {
        Ok(c) => c,
        Err(e) => {
            println!("cannot list capabilities: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for c in caps.iter().filter(|c| c.kind == CapKind::Device) {
        let CapDetail::Device {
            virtio_id: VIRTIO_BLOCK,
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
        let mut dev = match Block::open(base, size, staging) {
            Ok(d) => d,
            Err(e) => {
                println!("cannot open the virtio-blk device at {base:#x}: {e:?}");
                continue;
            }
        };
        let serial = match dev.serial() {
            Ok(s) => s,
            Err(e) => {
                println!("virtio-blk at {base:#x}: cannot read its serial: {e:?}");
                continue;
            }
        };
        let disk = VirtioDisk::new(dev, false);
        let info = disk.info();
        println!(
            "disk {serial}: {} sectors ({} MiB){} at {base:#x}",
            info.sectors,
            info.sectors / 2048,
            if info.read_only { ", read-only" } else { "" }
        );
        out.push(OwnedDisk {
            serial,
            disk,
            irq: irqs.first().copied(),
        });
    }
    out
}
