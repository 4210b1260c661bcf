//! Bare-metal EL1 runtime every Rust domain links: boot and vectors, stage-1 identity map,
//! console, heap, capability-protocol and PSCI wrappers, GIC, timer, PMU and secondary vCPUs.
//!
//! A domain binary calls [`entry!`] with its main function. At entry vCPU 0 has the MMU and
//! caches on, `.bss` zeroed, the heap set up (image end .. start-info reserve) and the start
//! info copied and decoded; IRQs are masked. When main returns the domain powers off.
//! Capability negotiation is lazy (see [`cap`]). Hardware-facing items exist only for
//! `target_os = "none"`; on the host only the pure helpers build, and they are unit-tested.
//! All `unsafe` and asm live in [`arch`].
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)] // the one module allowed asm, system registers and raw pointers
pub mod arch;
pub mod board;
pub mod cadence_uart;
pub mod cap;
pub mod cmdline;
pub mod console;
#[cfg(target_os = "none")]
pub mod frontend;
pub mod gic;
pub mod heartbeat;
pub mod irq;
pub mod load;
pub mod mmu;
pub mod netfront;
pub mod pmu;
pub mod psci;
pub mod publish;
pub mod smp;
pub mod start;
pub mod threads;
pub mod timer;
#[cfg(target_os = "none")]
pub mod xen;
#[cfg(target_os = "none")]
pub mod xenstore;

pub use protocol;
pub use protocol::boot::StartInfo;

#[cfg(target_os = "none")]
pub use arch::hvc;
#[cfg(target_os = "none")]
pub use smp::current_vcpu;

#[cfg(target_os = "none")]
#[global_allocator]
static HEAP: arch::Heap = arch::Heap::empty();

/// Prints to the console (line-buffered per vCPU).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Declares the domain's main function, `fn(&'static StartInfo)`, which the runtime calls
/// on vCPU 0 once the heap and start info are ready.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The symbol the runtime's start code calls.
        #[allow(unsafe_code)] // `export_name` is the single link-level hook to the runtime
        #[export_name = "__bulkhead_main"]
        pub fn __bulkhead_main(info: &'static $crate::StartInfo) {
            let main: fn(&'static $crate::StartInfo) = $main;
            main(info)
        }
    };
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => console::emergency(format_args!(
            "vcpu{}: panic at {}:{}: {}\n",
            smp::current_vcpu(),
            l.file(),
            l.line(),
            info.message()
        )),
        None => console::emergency(format_args!("panic: {}\n", info.message())),
    }
    // A panic is a crash, not a power-off: the microvisor reports it and dom0 applies
    // the domain's on_crash policy.
    cap::crash(0xdead)
}
