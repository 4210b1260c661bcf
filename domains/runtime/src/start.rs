//! vCPU 0's Rust start: heap, start info, then the domain's main; and the fatal-exception
//! report.

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use crate::{arch, console, psci};
    use protocol::boot::{StartInfo, START_INFO_RESERVE};
    use protocol::layout::{GUEST_RAM_BASE, GUEST_RAM_MAX};

    static INFO: spin::Once<StartInfo> = spin::Once::new();

    /// The start info (available once the domain's main runs).
    pub fn start_info() -> &'static StartInfo {
        INFO.get()
            .expect("start info is read before the domain's main runs")
    }

    /// Guest-physical `[start, end)` of this domain's RAM.
    pub fn ram_range() -> (u64, u64) {
        let info = start_info();
        (info.ram_base, info.ram_base.saturating_add(info.ram_size))
    }

    fn fatal(args: core::fmt::Arguments<'_>) -> ! {
        console::emergency(args);
        psci::system_off()
    }

    /// Called by `_start` on CPU 0 of the `native` build: no boot registers and no start
    /// info, so the heap spans the image end to `board::NATIVE_RAM` and the start info is
    /// made up (name `native`, command line from `board::NATIVE_CMDLINE_ADDR`).
    #[cfg(feature = "native")]
    pub(crate) fn primary(_x0: u64, _x1: u64, _x2: u64, heap_start: u64) {
        use alloc::string::String;
        let ram_base = GUEST_RAM_BASE.as_u64();
        let ram_size = crate::board::NATIVE_RAM;
        let _ = (START_INFO_RESERVE, GUEST_RAM_MAX);
        if heap_start.saturating_add(64 * 1024) > ram_base + ram_size {
            fatal(format_args!("runtime: image too large for native RAM\n"));
        }
        crate::HEAP.init(heap_start, ram_base + ram_size);
        let info = StartInfo {
            version: protocol::control::PROTOCOL_VERSION,
            domid: 0,
            name: String::from("native"),
            ram_base,
            ram_size,
            vcpus: 1,
            counter_hz: arch::cntfrq(),
            cmdline: arch::native_cmdline(),
            pcpus: 1,
        };
        arch::call_domain_main(INFO.call_once(|| info));
        psci::system_off()
    }

    /// Called by `_start` on vCPU 0 with the boot registers and the linker's heap start.
    #[cfg(not(feature = "native"))]
    pub(crate) fn primary(info_ipa: u64, info_len: u64, ram_size: u64, heap_start: u64) {
        let ram_base = GUEST_RAM_BASE.as_u64();
        if !(START_INFO_RESERVE..=GUEST_RAM_MAX).contains(&ram_size) {
            fatal(format_args!("runtime: bad RAM size {ram_size:#x}\n"));
        }
        let ram_end = ram_base + ram_size;
        let reserve = ram_end - START_INFO_RESERVE;
        // Leave the heap at least 64 KiB or refuse to run.
        if heap_start.saturating_add(64 * 1024) > reserve {
            fatal(format_args!(
                "runtime: image ends at {heap_start:#x}, too close to RAM end {ram_end:#x}\n"
            ));
        }
        crate::HEAP.init(heap_start, reserve);
        let Some(bytes) = arch::copy_start_info(info_ipa, info_len, reserve, ram_end) else {
            fatal(format_args!(
                "runtime: start info {info_ipa:#x}+{info_len:#x} outside the reserve\n"
            ));
        };
        let info = match postcard::from_bytes::<StartInfo>(&bytes) {
            Ok(i) => i,
            Err(e) => fatal(format_args!("runtime: cannot decode start info: {e}\n")),
        };
        arch::call_domain_main(INFO.call_once(|| info));
        psci::system_off()
    }

    /// Called by the vector table for every exception but an EL1h IRQ.
    pub(crate) fn fatal_exception(vector: u64) {
        const KINDS: [&str; 4] = ["sync", "irq", "fiq", "serror"];
        const FROM: [&str; 4] = ["EL1t", "EL1h", "EL0/64", "EL0/32"];
        let v = vector as usize % 16;
        console::emergency(format_args!(
            "vcpu{}: unexpected {} exception from {}: ESR={:#x} ELR={:#x} FAR={:#x}\n",
            crate::smp::current_vcpu(),
            KINDS[v % 4],
            FROM[v / 4],
            arch::esr(),
            arch::elr(),
            arch::far()
        ));
        // A crash, not a power-off: the microvisor reports it and dom0 applies on_crash
        // (a driver domain is restarted in place).
        crate::cap::crash(arch::esr())
    }
}
