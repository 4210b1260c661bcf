//! Boot's decisions, in safe code: read the device tree, take over memory, plan the EL2 map,
//! build dom0 with every capability, start the other CPUs and enter the run loop. The steps
//! that hand the hardware a raw address (heap, MMU, GIC, per-CPU blocks) and the entry
//! points are `arch::aarch64::bringup`'s, which calls these in order.

use super::domain::BuildRequest;
use super::tables::FrameTables;
use super::{Hyp, HYP, MAX_DOMAINS};
use crate::arch::boot::MAX_CPUS;
use crate::arch::{self, gic};
use crate::captable::{Capability, Object};
use crate::mm::frames::FrameAllocator;
use crate::mm::pagetable::{Attrs, MemType, PageTable, Stage};
use crate::platform::{heapless_vec, Platform, Region, MAX_MODULES};
use crate::sched::RunQueue;
use crate::seeds::Seeds;
use crate::timer_earliest::EarliestTimer;
use alloc::vec::Vec;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::boot::{DOM0_LABEL, MANIFEST_LABEL};
use protocol::cap::Rights;
use protocol::control::VcpuPlacement;
use protocol::ids::DomainId;
use zerocopy::FromBytes;

/// dom0's RAM.
const DOM0_MEM_MIB: u32 = 32;
/// dom0's priority on its (shared) CPU.
const DOM0_PRIORITY: u8 = 200;
/// Memory kept back from dom0's quota for page tables.
const TABLE_RESERVE_PAGES: u64 = 2048;

/// What bring-up learnt before the heap and the EL2 MMU: the platform, the frame
/// allocator, and where the device tree and the frame bitmap lie (`(base, len)`).
pub struct Early {
    /// What the device tree describes.
    pub platform: Platform,
    /// All free RAM.
    pub frames: FrameAllocator,
    /// The boot device tree.
    pub dtb: (u64, u64),
    /// The frame allocator's bitmap.
    pub bitmap: (u64, u64),
}

/// Reads the device tree and takes over memory. `console` is the console UART the tree
/// names (found before, to log with); `claim(base, len)` turns the pages chosen for the
/// frame bitmap into its storage (`arch` does, as the MMU is still off).
pub fn early(
    blob: &[u8],
    dtb: u64,
    console: Option<crate::console_uart::ConsoleUart>,
    claim: impl FnOnce(u64, usize) -> &'static mut [u8],
) -> Early {
    // The console the boot CPU already found in this same tree (`console_uart::find_in`).
    let platform = match Platform::from_fdt_with(blob, |_| console) {
        Ok(p) => p,
        Err(e) => panic!("unusable device tree at {dtb:#x}: {e:?}"),
    };
    let ram_mib: u64 = platform.ram.as_slice().iter().map(|r| r.size >> 20).sum();
    crate::info!(
        "microvisor {} starting: {} CPUs, {} MiB RAM, {} boot modules",
        env!("CARGO_PKG_VERSION"),
        platform.cpus.len(),
        ram_mib,
        platform.modules.len()
    );
    let (frames, bitmap) = take_memory(&platform, dtb, blob.len() as u64, claim);
    Early {
        platform,
        frames,
        dtb: (dtb, blob.len() as u64),
        bitmap,
    }
}

/// The rest of the boot CPU's bring-up, with the heap, the EL2 MMU and the GIC distributor
/// on: builds the global state and dom0 and starts the other CPUs. It returns before the
/// boot CPU runs guests, so its frame (and its caller's, which holds `early`) are not left
/// under the run loop: CPU 0's deepest path, a restart in place, came within 704 bytes of
/// the 64 KiB stack while they were.
#[inline(never)]
pub fn start(early: Early, el2_map: PageTable, guest_gicc: Option<Region>) {
    if let Some(w) = guest_gicc {
        crate::info!(
            "GICv2: distributor {}, guests' CPU interface {} ({} list registers)",
            early.platform.gicd.base,
            w.base,
            gic::nr_lrs()
        );
    }
    let Early {
        platform, frames, ..
    } = early;
    super::xen::event_state::init();
    super::xen::grant_state::init();
    let mut hyp = Hyp {
        platform,
        frames,
        domains: (0..MAX_DOMAINS).map(|_| None).collect(),
        runqueues: [const { RunQueue::new() }; MAX_CPUS],
        placed: [0; MAX_CPUS],
        loaded: [None; MAX_CPUS],
        guest_loaded: [const { None }; MAX_CPUS],
        resched: [false; MAX_CPUS],
        timer_earliest: [EarliestTimer::UNKNOWN; MAX_CPUS],
        poll_timed: 0,
        instances: [0; MAX_DOMAINS],
        // dom0 (id 0) is built first; children start after it.
        last_domid: (MAX_DOMAINS - 1) as u16,
        nr_lrs: gic::nr_lrs(),
        guest_gicc,
        focus: DomainId::DOM0,
        switch_presses: 0,
        devices: Vec::new(),
        guest_dts: [None; MAX_DOMAINS],
        el2_map,
        bulk: core::array::from_fn(|_| Default::default()),
        uploads: Default::default(),
        holds: crate::lock_holds::Record::new(crate::arch::counter_hz()),
        seeds: None,
    };
    let (boot_entropy, cpu_entropy) = (hyp.platform.boot_entropy.take(), arch::rng::random_32());
    hyp.seeds = Seeds::new(boot_entropy, cpu_entropy);
    let sources = Seeds::describe(boot_entropy.is_some(), cpu_entropy.is_some());
    crate::info!("guest seeds: {sources}");
    hyp.devices = probe_devices(&mut hyp);
    // Console input arrives on CPU 0 and goes to the focused domain.
    if let Some(irq) = hyp.platform.uart_irq {
        gic::enable_spi(irq, arch::mpidr());
        arch::uart::enable_rx_irq();
    }
    build_dom0(&mut hyp);
    let cpus: Vec<u64> = hyp.platform.cpus.as_slice().to_vec();
    super::percpu::publish_cpus(&cpus);
    *HYP.lock() = Some(hyp);

    for (i, &mpidr) in cpus.iter().enumerate().skip(1).take(MAX_CPUS - 1) {
        let status = arch::psci_cpu_on(mpidr, arch::boot::secondary_entry_addr(), i as u64);
        if status != 0 {
            crate::info!("CPU {i} (MPIDR {mpidr:#x}) did not start: PSCI {status}");
        }
    }
    crate::info!("microvisor up");
}

/// Builds the frame allocator: all RAM minus the DT's reserved ranges, this image (wherever
/// the boot loader put it), the DT, the boot modules and the allocator's own bitmap (carved
/// from the highest free RAM with the boot-time range list).
fn take_memory(
    p: &Platform,
    dtb: u64,
    dtb_len: u64,
    claim: impl FnOnce(u64, usize) -> &'static mut [u8],
) -> (FrameAllocator, (u64, u64)) {
    let (start, end) = (arch::boot::image_start(), arch::boot::image_end());
    let image = Region {
        base: PhysAddr::new(start),
        size: end - start,
    };
    if !p.is_mapped_ram(image.base, image.size) {
        panic!("the microvisor is loaded at {start:#x}..{end:#x}, outside the RAM the device tree describes");
    }
    crate::info!(
        "microvisor image at {start:#x}..{end:#x}; {} reserved memory ranges",
        p.reserved.len()
    );
    // No heap yet: a fixed list of the image, the DT and each module.
    let mut taken: heapless_vec::Vec<Region, { MAX_MODULES + 2 }> = Default::default();
    taken.push(image);
    taken.push(Region {
        base: PhysAddr::new(dtb),
        size: dtb_len,
    });
    for m in p.modules.as_slice() {
        taken.push(m.region);
    }
    let mut ranges = p
        .free_ram(taken.as_slice())
        .expect("RAM banks and reservations fit the boot range list");
    let lo = p.ram.as_slice().iter().map(|r| r.base.as_u64()).min();
    let hi = p
        .ram
        .as_slice()
        .iter()
        .map(|r| r.base.as_u64() + r.size)
        .max();
    let (lo, hi) = (
        PhysAddr::new(lo.unwrap_or(0)),
        PhysAddr::new(hi.unwrap_or(0)),
    );
    let words = FrameAllocator::storage_words(lo, hi);
    let bytes = (words as u64 * 8).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let at = ranges
        .alloc(bytes / PAGE_SIZE, PAGE_SIZE)
        .expect("RAM for the frame bitmap");
    let raw = claim(at.as_u64(), bytes as usize);
    let storage = <[u64]>::mut_from_bytes(raw).expect("page-aligned bitmap storage");
    let mut frames = FrameAllocator::new(lo, hi, storage).expect("bitmap covers RAM");
    for (base, pages) in ranges.ranges() {
        frames
            .add_free(base, pages * PAGE_SIZE)
            .expect("boot ranges are disjoint and inside RAM");
    }
    (frames, (at.as_u64(), bytes))
}

/// Identity-maps RAM (normal memory, except `no-map` reserved ranges and the `holes`) and
/// the devices EL2 uses. The microvisor's own image is in that RAM wherever it was loaded
/// (checked in `take_memory`), so the identity map covers it; the holes are its stacks'
/// guard pages ([`crate::el2_stack`]), left out so that an overflow faults.
pub fn build_el2_map(
    p: &Platform,
    frames: &mut FrameAllocator,
    holes: impl Iterator<Item = (u64, u64)>,
) -> PageTable {
    let mut tables = FrameTables(frames);
    let mut pt = PageTable::new(&mut tables, Stage::El2Stage1).expect("EL2 root table");
    let normal = Attrs {
        mem: MemType::Normal,
        read: true,
        write: true,
        exec: true,
    };
    let device = Attrs {
        mem: MemType::Device,
        read: true,
        write: true,
        exec: false,
    };
    let ram = p.mapped_ram().expect("RAM banks fit the boot range list");
    for (base, pages) in ram.ranges() {
        pt.map(&mut tables, base.as_u64(), base, pages * PAGE_SIZE, normal)
            .expect("map RAM");
    }
    // The table is not live yet (the MMU is off), so cutting blocks needs no TLB care.
    for (base, len) in holes {
        pt.unmap(&mut tables, base, len)
            .expect("a stack guard lies in mapped RAM, and table frames are free at boot");
    }
    let mut map_device = |r: Region| {
        if r.size == 0 {
            return;
        }
        let base = r.base.align_down(PAGE_SIZE);
        let size = (r.base.as_u64() + r.size).next_multiple_of(PAGE_SIZE) - base.as_u64();
        pt.map(&mut tables, base.as_u64(), base, size, device)
            .expect("map device");
    };
    map_device(p.gicd);
    map_device(p.gicr);
    if let Some(v2) = p.gicv2 {
        // GICV too: its IIDR tells whether the GIC-400's pages are aliased.
        for r in [v2.gicc, v2.gich, v2.gicv] {
            map_device(r);
        }
    }
    if let Some(u) = p.uart {
        map_device(u);
    }
    arch::dsb_sy();
    pt
}

/// Maps `size` bytes of device memory at `base` into the EL2 map, identity, read/write;
/// a page already mapped (shared with another device) is left as it is. False if it could
/// not be mapped (no frames for tables).
fn map_el2_device(hyp: &mut Hyp, base: PhysAddr, size: u64) -> bool {
    let device = Attrs {
        mem: MemType::Device,
        read: true,
        write: true,
        exec: false,
    };
    let mapped = hyp.el2_map.map(
        &mut FrameTables(&mut hyp.frames),
        base.as_u64(),
        base,
        size,
        device,
    );
    arch::dsb_sy();
    matches!(
        mapped,
        Ok(()) | Err(crate::mm::pagetable::MapError::AlreadyMapped)
    )
}

/// Maps every virtio-mmio transport at EL2 and keeps those with a device behind them.
fn probe_devices(hyp: &mut Hyp) -> Vec<super::devices::Device> {
    let nodes: Vec<_> = hyp.platform.virtio.as_slice().to_vec();
    // Several transports share a page: an existing mapping is fine.
    let mut found = super::devices::probe(&nodes, |base, size| {
        map_el2_device(hyp, base, size);
    });
    for d in &found {
        crate::info!(
            "device: virtio type {} at {} (IRQ {:?})",
            d.virtio_id,
            d.node.region.base,
            d.node.irq
        );
    }
    // Marked xen,passthrough by the tools: for ordinary guests. Mapped at EL2 only so
    // that a device the microvisor knows how to quiesce can be, between owners.
    let mut passthrough: Vec<_> = hyp.platform.passthrough.as_slice().to_vec();
    for p in &mut passthrough {
        if p.reset.is_some() {
            let (base, size) = p.node.page_span();
            // Unmapped, it is not touched: returned as-is rather than fault EL2.
            if !map_el2_device(hyp, base, size) {
                p.reset = None;
            }
        }
        crate::info!(
            "device: passthrough node at {} (IRQ {:?}, reset {:?})",
            p.node.region.base,
            p.node.irq,
            p.reset
        );
    }
    found.extend(passthrough.iter().map(|p| super::devices::Device {
        node: p.node,
        virtio_id: 0,
        mgmt_uart: None,
        reset: p.reset,
        holding: Default::default(),
        guest: None,
    }));
    if let Some(e) = hyp.platform.mgmt_refused {
        crate::info!("device: the management UART the tree names is not handed out: {e:?}");
    }
    if let Some(uart) = hyp.platform.mgmt_uart {
        // Mapped at EL2 too, so a sub-page window can be trapped and performed for dom0.
        let node = crate::mgmt_port::device_node(&uart);
        let (base, size) = node.page_span();
        map_el2_device(hyp, base, size);
        crate::info!("device: management port {uart} (IRQ {:?})", uart.irq);
        found.push(super::devices::Device {
            node,
            virtio_id: 0,
            mgmt_uart: Some(uart.kind),
            reset: None,
            holding: Default::default(),
            guest: None,
        });
    }
    found
}

/// Builds dom0 from the `dom0` module and hands it every capability.
fn build_dom0(hyp: &mut Hyp) {
    let Some(index) = hyp
        .platform
        .modules
        .as_slice()
        .iter()
        .position(|m| m.label() == DOM0_LABEL)
    else {
        panic!("no boot module labelled `{DOM0_LABEL}`: nothing to run");
    };
    let mut caps = Vec::new();
    // dom0 may also read the console history back (`ctl dmesg`).
    caps.push(Capability {
        object: Object::Console,
        rights: Rights::READ | Rights::WRITE,
    });
    for (i, m) in hyp.platform.modules.as_slice().iter().enumerate() {
        if m.label() != DOM0_LABEL {
            caps.push(Capability {
                object: Object::Module { index: i as u16 },
                rights: Rights::READ | Rights::DELEGATE,
            });
        }
    }
    for i in 0..hyp.devices.len() {
        caps.push(Capability {
            object: Object::Device { index: i as u16 },
            rights: Rights::READ | Rights::WRITE | Rights::DELEGATE,
        });
    }
    if hyp.platform.module(MANIFEST_LABEL).is_none() {
        crate::info!("no `{MANIFEST_LABEL}` module: dom0 will have nothing to build");
    }
    let image = hyp.module(index).expect("the index was just found");
    let placement = [VcpuPlacement {
        pcpu: 0,
        priority: DOM0_PRIORITY,
        exclusive: false,
    }];
    let dom0_pages = u64::from(DOM0_MEM_MIB) * 256;
    let quota = hyp
        .frames
        .free_pages()
        .saturating_sub(dom0_pages + TABLE_RESERVE_PAGES);
    caps.insert(
        1,
        Capability {
            object: Object::Memory { quota_pages: quota },
            rights: Rights::READ | Rights::WRITE,
        },
    );
    let req = BuildRequest {
        name: "dom0",
        image,
        mem_mib: DOM0_MEM_MIB,
        vcpus: &placement,
        cmdline: "",
        parent: None,
        caps: &caps,
        module: None,
        ramdisk: None,
        extra_dt: &[],
        pmu: protocol::control::PmuAccess::Off,
        budgets: &[],
    };
    let id = hyp
        .build_domain(&req, 0)
        .unwrap_or_else(|e| panic!("cannot build dom0: {e}"));
    assert_eq!(id, DomainId::DOM0, "dom0 must be the first domain");
    hyp.start_domain(id, 0)
        .unwrap_or_else(|e| panic!("cannot start dom0: {e}"));
    crate::info!(
        "dom0 started ({} MiB, {} pages for children)",
        DOM0_MEM_MIB,
        quota
    );
}
