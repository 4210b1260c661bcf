//! Domains from xl.cfg files (before any TOML overrides) and the pCPUs of unpinned domains
//! (xl's `cpus = "all"` or no `cpus`), which depend on every pinned domain of the system.

use super::parse::DEFAULT_PRIORITY;
use super::{At, Domain, System};
use crate::xlcfg::{XlCpus, XlDomain};

/// Gives each domain without `cpus` pCPUs: those but dom0's that no pinned domain holds
/// exclusively (an exclusive one also avoids pCPUs others pinned), minus its `^N`
/// exclusions; failing that, any such pCPU including dom0's. Conflicts left are for
/// `check` to report.
pub(super) fn place_unpinned(system: &mut System, excepts: &[Vec<u16>]) {
    let pinned = |exclusive_only: bool| -> Vec<u16> {
        system
            .domains
            .iter()
            .filter(|d| !d.cpus.value.is_empty() && (d.exclusive || !exclusive_only))
            .flat_map(|d| d.cpus.value.clone())
            .collect()
    };
    let (exclusive, used) = (pinned(true), pinned(false));
    let smp = system.smp;
    for (d, except) in system.domains.iter_mut().zip(excepts) {
        if !d.cpus.value.is_empty() {
            continue;
        }
        let taken = if d.exclusive { &used } else { &exclusive };
        let pick = |from: u16| -> Vec<u16> {
            (from..smp)
                .filter(|c| !taken.contains(c) && !except.contains(c))
                .collect()
        };
        let mut cpus = pick(1);
        if cpus.is_empty() {
            cpus = pick(0);
        }
        if cpus.is_empty() {
            cpus = if smp > 1 { (1..smp).collect() } else { vec![0] };
        }
        d.cpus.value = cpus;
        d.auto_cpus = true;
    }
}

/// A domain from an xl.cfg, before any TOML overrides; its `^N` exclusions if unpinned.
pub(super) fn from_xl(xl: XlDomain, line: usize, system: &mut System) -> (Domain, Vec<u16>) {
    system.warnings.extend(xl.warnings);
    let (cpus, except) = match xl.cpus {
        Some(At {
            value: XlCpus::List(list),
            line,
            file,
        }) => (
            At {
                value: list,
                line,
                file,
            },
            Vec::new(),
        ),
        Some(At {
            value: XlCpus::Any { except },
            line,
            file,
        }) => (
            At {
                value: Vec::new(),
                line,
                file,
            },
            except,
        ),
        None => (At::in_file(Vec::new(), line, &xl.file), Vec::new()),
    };
    let d = Domain {
        name: xl.name,
        image: xl.image,
        ramdisk: xl.ramdisk,
        memory_mib: xl.memory_mib,
        vcpus: xl.vcpus,
        cpus,
        auto_cpus: false,
        exclusive: false,
        priority: DEFAULT_PRIORITY,
        // xl.cfg has no budget key (Xen sets RTDS budgets with `xl sched-rtds` only); the
        // TOML's `budget_us`/`period_us` beside `config` set one.
        budget_us: (0, 0),
        cmdline: xl.cmdline,
        depends_on: At::in_file(Vec::new(), line, &xl.file),
        on_poweroff: xl.on_poweroff,
        on_reboot: xl.on_reboot,
        on_crash: xl.on_crash,
        // An xl.cfg domain is a guest (Linux, Zephyr, ...): none of them beats.
        watchdog_s: None,
        crash_limit: None,
        disks: xl.disks,
        vifs: xl.vifs,
        passthrough: xl.passthrough,
        gic_version: xl.gic_version,
        // xl.cfg has no PMU key for Arm guests; the TOML's `pmu` beside `config` sets it.
        pmu: protocol::control::PmuAccess::Off,
        config: Some(xl.file),
        line,
    };
    (d, except)
}
