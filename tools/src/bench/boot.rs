//! `bulkhead bench boot`: how long the stock Debian Linux guest takes from reset to its
//! userspace marker under the microvisor, against the same kernel and initramfs booted
//! natively (at EL1, no virtualization) in the same QEMU, and the ratio. Each
//! `--machine` has its own native baseline on the same board model ([`super::native`]):
//! `virt` (GICv3), `virt-gicv2` (GICv2) and the ZCU102 (GIC-400, console on `ttyPS0`).
//!
//! Both runs are under [`qemu::ICOUNT_ARGS`] (`-icount shift=0,sleep=off -seed 1`), where one
//! instruction is 1 ns of virtual time, the Arm generic counter counts that time from reset,
//! and the figures repeat exactly from run to run. The initramfs's marker line
//! ends in `counter=<CNTVCT_EL0>`, read from EL0 by `/bin/cntvct`; CNTVOFF is 0 in both runs
//! (the microvisor gives guests CNTVOFF_EL2 = 0; a native boot never leaves QEMU's reset
//! value), so the counter is ticks since reset. Ticks × ns per tick is then the instructions
//! every CPU retired up to that point, plus any virtual time skipped while all CPUs idled
//! (`sleep=off` jumps to the next timer deadline), which is boot time as the guest sees it.
//!
//! The Bulkhead figure includes the microvisor's and dom0's own boot and the building of the
//! domain, and its initramfs loads the Xen front-end modules; the native one leaves them
//! out (`guest::initramfs::XEN_FRONTENDS`: their failed loads cost the native boot about
//! 150 ms of virtual time). Both kernels run with `quiet`: every console line
//! costs the PV guest far more than a PL011 write does natively.

use crate::machine::Machine;
use crate::markers::Expect;
use crate::qemu::{self, RunOptions};
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;
use std::time::Duration;

/// The system booted under the microvisor.
pub const SYSTEM: &str = "tests/systems/bench_boot.toml";
/// The native kernel command line on virt (`bench blk` and `net` use it too).
pub const NATIVE_CMDLINE: &str = "console=ttyAMA0 quiet";
/// The native console on virt.
pub const NATIVE_CONSOLE: &str = "ttyAMA0";
/// The native run's RAM, as much as the guest's in [`SYSTEM`].
pub const NATIVE_MEM_MIB: u32 = 512;
/// CNTFRQ_EL0 on all three machines: QEMU 7.2's generic timer runs at 62.5 MHz on every
/// board (the ZCU102's native Linux logs "arch_timer: cp15 timer(s) running at 62.50MHz").
pub const COUNTER_HZ: u64 = 62_500_000;

/// The native run's kernel command line on `machine` (the system's is `console=hvc0 quiet`):
/// its initramfs runs the shell on that console.
pub fn native_cmdline(machine: Machine) -> String {
    format!("console={} quiet", super::native::console(machine))
}
/// Hard limit per boot: a boot takes well under a minute of host time under TCG.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// What waits for the marker line, counter included.
const MARKER_RE: &str = r"BULKHEAD-LINUX-USERSPACE kernel=(\S+) cpus=(\d+) counter=(\d*)";

/// Nanoseconds of virtual time per counter tick at `hz`, if a whole number (16 at 62.5 MHz).
pub fn ns_per_tick(hz: u64) -> Option<u64> {
    const NS_PER_S: u64 = 1_000_000_000;
    (hz != 0 && NS_PER_S.is_multiple_of(hz)).then(|| NS_PER_S / hz)
}

/// The marker line's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// `uname -r`.
    pub kernel: String,
    /// `nproc`.
    pub cpus: u32,
    /// CNTVCT_EL0 as `cntvct` printed it; `None` if it printed nothing (it failed).
    pub counter: Option<u64>,
}

/// Finds the (last) userspace marker line in a console log.
pub fn parse(log: &str) -> Option<Marker> {
    let re = Regex::new(MARKER_RE).expect("static regex");
    let c = re.captures_iter(log).last()?;
    Some(Marker {
        kernel: c[1].to_owned(),
        cpus: c[2].parse().ok()?,
        counter: if c[3].is_empty() {
            None
        } else {
            Some(c[3].parse().ok()?)
        },
    })
}

/// One boot's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootRun {
    /// The guest kernel's `uname -r`.
    pub kernel: String,
    /// CPUs the guest saw.
    pub cpus: u32,
    /// CNTVCT_EL0 at the marker: ticks since reset.
    pub counter: u64,
    /// `counter` × ns per tick: instructions (1 ns each under `-icount shift=0`) since reset.
    pub instructions: u64,
}

impl BootRun {
    /// The figures of `marker`, with `ns_per_tick` virtual ns per counter tick.
    pub fn new(marker: Marker, ns_per_tick: u64) -> Result<Self> {
        let counter = marker
            .counter
            .context("the marker line has an empty `counter=`: /bin/cntvct failed")?;
        let instructions = counter
            .checked_mul(ns_per_tick)
            .with_context(|| format!("counter {counter} x {ns_per_tick} ns overflows"))?;
        Ok(Self {
            kernel: marker.kernel,
            cpus: marker.cpus,
            counter,
            instructions,
        })
    }
}

/// The benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootReport {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// The `--machine` both runs booted on.
    pub machine: &'static str,
    /// The counter frequency assumed (QEMU virt's CNTFRQ_EL0).
    pub counter_hz: u64,
    /// Virtual ns per counter tick.
    pub ns_per_tick: u64,
    /// The Linux guest under the microvisor (whole system: microvisor, dom0, guest).
    pub bulkhead: BootRun,
    /// The same kernel and initramfs at EL1 on bare QEMU.
    pub native: BootRun,
    /// bulkhead / native instructions.
    pub ratio: f64,
}

/// Builds the report from the two markers, both from `machine`.
pub fn report(machine: Machine, bulkhead: Marker, native: Marker) -> Result<BootReport> {
    let ns = ns_per_tick(COUNTER_HZ).context("the counter period is not a whole ns")?;
    let bulkhead = BootRun::new(bulkhead, ns).context("under the microvisor")?;
    let native = BootRun::new(native, ns).context("native")?;
    if native.instructions == 0 {
        bail!("the native boot reported counter=0");
    }
    Ok(BootReport {
        benchmark: "boot",
        machine: machine.name(),
        counter_hz: COUNTER_HZ,
        ns_per_tick: ns,
        ratio: bulkhead.instructions as f64 / native.instructions as f64,
        bulkhead,
        native,
    })
}

fn options(name: &str, build: bool) -> Result<RunOptions> {
    Ok(RunOptions::bench(
        crate::paths::workspace_root().join(name),
        Expect::new().then(MARKER_RE)?,
        TIMEOUT,
        build,
    ))
}

fn one(what: &str, run: impl FnOnce() -> Result<qemu::RunOutcome>) -> Result<Marker> {
    let out = super::boot_with_spinner(what, run)?;
    parse(&out.log).with_context(|| format!("no marker line in {}", out.log_path.display()))
}

/// Boots both on `machine` (building first if `build`) and returns the report.
pub fn measure(build: bool, machine: Machine) -> Result<BootReport> {
    let name = machine.name();
    let bulkhead = one(&format!("{name}: Linux under the microvisor"), || {
        let mut opts = options(SYSTEM, build)?;
        opts.overrides.machine = machine;
        qemu::run(&opts)
    })?;
    let linux = crate::guest::linux_artifacts_for_console(super::native::console(machine))
        .context("cannot get the native Linux kernel and initramfs")?;
    let dtb = super::native::dtb(machine, NATIVE_MEM_MIB)?;
    let args = super::native::linux_args(
        machine,
        dtb.as_deref(),
        &linux.image,
        &linux.initramfs,
        &native_cmdline(machine),
        1,
        NATIVE_MEM_MIB,
    );
    let native = one(&format!("{name}: Linux native"), || {
        let dir = crate::paths::out_dir().join("native");
        qemu::run_args(
            args,
            &dir,
            &options(&format!("linux_native_{name}"), false)?,
        )
    })?;
    report(machine, bulkhead, native)
}

/// Boots both on `machine`, prints the table and writes `target/bulkhead/bench/boot.json`
/// (`boot-<machine>.json` off virt).
pub fn bench(build: bool, machine: Machine) -> Result<BootReport> {
    let r = measure(build, machine)?;
    print_table(&r);
    super::write_json(&super::json_name("boot", machine), &r)?;
    Ok(r)
}

fn print_table(r: &BootReport) {
    println!(
        "boot on {}: reset to the Linux userspace marker ({}, 1 vCPU, {NATIVE_MEM_MIB} MiB)",
        r.machine, r.native.kernel
    );
    println!("{:<34} {:>16} {:>16}", "", "counter ticks", "instructions");
    for (name, run) in [("bulkhead", &r.bulkhead), ("native", &r.native)] {
        println!("{:<34} {:>16} {:>16}", name, run.counter, run.instructions);
    }
    println!("{:<34} {:>33.3}x", "ratio (bulkhead / native)", r.ratio);
    println!(
        "note: instructions = CNTVCT_EL0 x {} ns ({} Hz counter) under -icount shift=0: \
         every CPU's instructions plus virtual time skipped while all were idle.",
        r.ns_per_tick, r.counter_hz
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_ns_per_tick_at_62_5_mhz() {
        assert_eq!(ns_per_tick(COUNTER_HZ), Some(16));
        assert_eq!(ns_per_tick(1_000_000_000), Some(1));
        assert_eq!(ns_per_tick(24_000_000), None);
        assert_eq!(ns_per_tick(0), None);
    }

    #[test]
    fn parses_the_marker_under_bulkhead_and_natively() {
        let hvc = "[dom0] linux (d1): started\n[linux] bulkhead: loaded xen-blkfront\n\
                   [linux] BULKHEAD-LINUX-USERSPACE kernel=6.1.0-56-arm64 cpus=1 counter=98765432\n";
        assert_eq!(
            parse(hvc),
            Some(Marker {
                kernel: "6.1.0-56-arm64".into(),
                cpus: 1,
                counter: Some(98_765_432),
            })
        );
        let native = "BULKHEAD-LINUX-USERSPACE kernel=6.1.0-56-arm64 cpus=1 counter=5\r\n";
        assert_eq!(parse(native).unwrap().counter, Some(5));
        // cntvct missing or failed: the marker is there, the counter is not.
        let empty =
            parse("BULKHEAD-LINUX-USERSPACE kernel=6.1.0-56-arm64 cpus=1 counter=\n").unwrap();
        assert_eq!(empty.counter, None);
        assert!(BootRun::new(empty, 16)
            .unwrap_err()
            .to_string()
            .contains("cntvct failed"));
        // An initramfs from before the counter, or no marker at all.
        assert_eq!(
            parse("BULKHEAD-LINUX-USERSPACE kernel=6.1.0-56-arm64 cpus=1\n"),
            None
        );
        assert_eq!(parse("Kernel panic - not syncing"), None);
    }

    #[test]
    fn reports_instructions_and_ratio() {
        let m = |counter| Marker {
            kernel: "k".into(),
            cpus: 1,
            counter: Some(counter),
        };
        let r = report(Machine::Zcu102, m(3_000_000), m(2_000_000)).unwrap();
        assert_eq!(r.machine, "zcu102");
        assert_eq!(r.ns_per_tick, 16);
        assert_eq!(r.bulkhead.instructions, 48_000_000);
        assert_eq!(r.native.instructions, 32_000_000);
        assert_eq!(r.ratio, 1.5);
        assert!(report(Machine::Virt, m(1), m(0)).is_err());
        assert!(report(Machine::Virt, m(u64::MAX), m(1)).is_err());
        assert_eq!(native_cmdline(Machine::Zcu102), "console=ttyPS0 quiet");
        assert_eq!(native_cmdline(Machine::Virt), NATIVE_CMDLINE);
    }
}
