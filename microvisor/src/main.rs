//! The microvisor binary: everything lives in the library; this file only supplies the
//! panic handler for the board build.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use microvisor as _;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    microvisor::log::print_line_now(format_args!("bulkhead: PANIC: {info}"));
    microvisor::arch::psci_system_off()
}

#[cfg(not(target_os = "none"))]
fn main() {}
