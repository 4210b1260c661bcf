//! The Rust side of boot: the entry points `boot.rs` jumps to, and every step of bring-up
//! that hands the hardware a raw address (the boot device tree, the heap, the EL2 MMU, the
//! GIC, the per-CPU blocks). The decisions between those steps — what the device tree
//! says, which memory is free, what EL2 maps, how dom0 is built — are `hyp::boot`'s, in
//! safe code; this file sequences them and fixes the physical-memory layout
//! ([`super::phys`]) before anything else can open a window.

use super::context::GuestRegs;
use super::{boot::MAX_CPUS, gic, mem, phys};
use crate::boot_options::SelfTest;
use crate::hyp::boot::{self as hyp_boot, Early};
use crate::mm::pagetable::{MAIR_EL2_VALUE, TCR_EL2_VALUE, VTCR_EL2_VALUE};
use crate::mm::reach::Layout;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use protocol::addr::PAGE_SIZE;

/// Microvisor heap (capability tables, domain records, message decoding).
const HEAP_BYTES: u64 = 8 * 1024 * 1024;

#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// Root of the EL2 identity map, shared by all CPUs.
static EL2_ROOT: AtomicU64 = AtomicU64::new(0);

/// Per-CPU blocks: the loaded vCPU's registers.
struct PerCpu {
    regs: GuestRegs,
}

struct PerCpuArray([PerCpu; MAX_CPUS]);

// SAFETY: each element is used by exactly one CPU (its index), handed out once by `take`.
unsafe impl Sync for PerCpuArray {}

static mut PERCPU: PerCpuArray = PerCpuArray(
    [const {
        PerCpu {
            regs: GuestRegs {
                x: [0; 31],
                pc: 0,
                pstate: 0,
            },
        }
    }; MAX_CPUS],
);
static PERCPU_TAKEN: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Hands CPU `cpu` its block, once.
fn take_percpu(cpu: usize) -> &'static mut PerCpu {
    assert!(cpu < MAX_CPUS, "CPU index {cpu} beyond MAX_CPUS");
    let first = !PERCPU_TAKEN[cpu].swap(true, Ordering::AcqRel);
    assert!(first, "per-CPU block {cpu} taken twice");
    // SAFETY: the flag above guarantees this is the only reference ever made to element
    // `cpu`, and only CPU `cpu` calls this with its own index.
    unsafe { &mut (*core::ptr::addr_of_mut!(PERCPU)).0[cpu] }
}

/// Boot CPU entry from `boot.rs` (MMU off, BSS zeroed, on CPU 0's stack): brings the
/// system up in frames that are gone before CPU 0 runs guests (see `hyp::boot::start`).
#[unsafe(no_mangle)]
extern "C" fn rust_boot_primary(dtb: u64) -> ! {
    let pc = bring_up(dtb);
    crate::hyp::fastpath::run_cpu(0, &mut pc.regs)
}

/// Everything the boot CPU does before it runs guests; its per-CPU state.
#[inline(never)]
fn bring_up(dtb: u64) -> &'static mut PerCpu {
    // SAFETY: the boot protocol passes a device tree in x0; its header says its size. We
    // own it from here on: `take_memory` keeps it out of the allocator and the layout
    // below makes it private.
    let blob = unsafe {
        let header = mem::boot_blob(dtb, 8);
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        mem::boot_blob_mut(dtb, size.min(2 * 1024 * 1024))
    };
    let len = crate::fdt_compact::compact(blob).unwrap_or(blob.len());
    let blob: &'static mut [u8] = &mut blob[..len];
    // The console first, so that a device tree the microvisor cannot use is reported.
    let console = crate::console_uart::find_in(&*blob);
    if let Some(uart) = console {
        // SAFETY: the DT names this UART; the MMU is off, so its address is reachable, and
        // `build_el2_map` maps `platform.uart` (the same registers) before the MMU goes on.
        unsafe { super::uart::init(uart) };
        crate::info!("console: {uart}");
    }
    let mut early = hyp_boot::early(&*blob, dtb, console, |at, bytes| {
        // SAFETY: the pages were just taken from the boot range list, which never hands
        // them out again, and are identity-mapped (the MMU is off); they hold the frame
        // bitmap for ever and the layout makes them private.
        unsafe { mem::boot_blob_mut(at, bytes) }
    });
    // Read into the platform: gone from the tree the microvisor keeps.
    crate::seeds::wipe(blob, &early.platform.seed_spans);
    let blob: &'static [u8] = blob;
    let heap = early
        .frames
        .alloc(HEAP_BYTES / PAGE_SIZE, PAGE_SIZE)
        .expect("RAM for the microvisor heap");
    // SAFETY: the range was just taken from the allocator and is used only by the heap
    // (the layout makes it private).
    unsafe {
        HEAP.lock()
            .init(heap.as_u64() as *mut u8, HEAP_BYTES as usize)
    };
    phys::set_layout(layout(&early, heap.as_u64()));

    let el2_map = hyp_boot::build_el2_map(
        &early.platform,
        &mut early.frames,
        super::boot::stack_guards(),
    );
    let root = el2_map.root().as_u64();
    EL2_ROOT.store(root, Ordering::Release);
    // SAFETY: `root` identity-maps all RAM (this image, stacks, heap) and the devices.
    unsafe { super::enable_el2_mmu(root, TCR_EL2_VALUE, MAIR_EL2_VALUE) };
    // SAFETY: the DT names the GIC's ranges, mapped as device memory above.
    let guest_gicc = unsafe { gic::init_distributor(&early.platform) };
    let pc = init_this_cpu(0);
    run_selftest(blob);
    hyp_boot::start(early, el2_map, guest_gicc);
    pc
}

/// Runs the self-test the command line asks for ([`crate::boot_options`]), which ends the
/// boot one way or another; reports an option it does not understand and goes on.
fn run_selftest(blob: &[u8]) {
    let Ok(fdt) = fdt::Fdt::new(blob) else {
        return;
    };
    let options = crate::boot_options::from_fdt(&fdt);
    if let Some(word) = options.not_understood {
        crate::info!("boot option `{word}` not understood; ignored");
    }
    match options.selftest {
        None => {}
        Some(SelfTest::El2StackOverflow) => {
            crate::info!("self-test: overflowing CPU 0's EL2 stack into its guard");
            let depth = super::boot::overflow_stack(0);
            panic!("self-test failed: CPU 0's EL2 stack grew {depth} KiB without a fault");
        }
    }
}

/// What windows may reach: all mapped RAM except this image, the device tree, the frame
/// bitmap, the heap and the boot modules (see [`crate::mm::reach`]).
fn layout(early: &Early, heap: u64) -> Layout {
    let mut l = Layout::new();
    let ram = early
        .platform
        .mapped_ram()
        .expect("RAM banks fit the boot range list");
    for (base, pages) in ram.ranges() {
        l.add_ram(base.as_u64(), pages * PAGE_SIZE)
            .expect("RAM ranges fit the layout");
    }
    let (start, end) = (super::boot::image_start(), super::boot::image_end());
    let private = [
        (start, end - start),
        (early.dtb.0, early.dtb.1),
        (early.bitmap.0, early.bitmap.1),
        (heap, HEAP_BYTES),
    ];
    for (base, len) in private {
        l.add_private(base, len)
            .expect("private ranges fit the layout");
    }
    for m in early.platform.modules.as_slice() {
        l.add_module(m.region.base.as_u64(), m.region.size)
            .expect("boot modules fit the layout");
    }
    l
}

/// Secondary CPU entry from `boot.rs`.
#[unsafe(no_mangle)]
extern "C" fn rust_boot_secondary(cpu: u64) -> ! {
    let root = EL2_ROOT.load(Ordering::Acquire);
    // SAFETY: the boot CPU built and published the identity map before starting us.
    unsafe { super::enable_el2_mmu(root, TCR_EL2_VALUE, MAIR_EL2_VALUE) };
    let pc = init_this_cpu(cpu as usize);
    crate::hyp::fastpath::run_cpu(cpu as usize, &mut pc.regs)
}

/// Per-CPU EL2 set-up shared by all CPUs.
fn init_this_cpu(cpu: usize) -> &'static mut PerCpu {
    let pc = take_percpu(cpu);
    // SAFETY: once per CPU, before it runs any guest.
    unsafe { super::init_el2(VTCR_EL2_VALUE) };
    if !gic::init_cpu(super::mpidr()) {
        panic!("no GIC redistributor for CPU {cpu}");
    }
    pc
}
