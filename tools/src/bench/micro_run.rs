//! The Bulkhead side of `bench micro`: three systems written under
//! `target/bulkhead/bench/micro/` (the guest `Image` is named by absolute path, so they work
//! with any target directory), each booted under `-icount` until its measuring instance says
//! it is done. Separate boots keep the measurements apart: under `-icount` QEMU runs the CPUs
//! round-robin on one thread and the clock counts every CPU's instructions, so a busy domain
//! beside a measurement would be counted in it. A cross-pCPU latency (IPI, event channel) is
//! the sending and the receiving path one after the other: QEMU switches to the other CPUs
//! when the sender raises the receiver's interrupt.
//!
//! - `solo`: one domain, 2 vCPUs on pCPUs 1-2, exclusive (`role=main`): round trips, the
//!   exclusive timer, the virtual IPI.
//! - `vipi_shared`: the same domain's virtual IPI alone (`role=vipi_shared`), its 2 vCPUs
//!   on pCPUs 1-2 placed shared (each alone there, not pinned exclusive).
//! - `shared`: `role=timer` and `role=busy` sharing pCPU 1.
//! - `shared_running`: `role=timer_spin` alone on pCPU 1, placed shared (not exclusive).
//! - `evtchn`: `role=ping` (d1) on pCPU 1 and `role=pong` (d2) on pCPU 2, exclusive; each
//!   names the other with `peer=` (dom0 is d0 and the system's domains are created in order).
//! - `evtchn_shared`: the same pair placed shared (not exclusive), each alone on its pCPU:
//!   the receiver's CPU idles in the microvisor and schedules the woken vCPU, the path a
//!   driver domain and its guests take in the default system.
//! - `evtchn_switch`: `role=ping` on pCPU 1, `role=pong_switch` sharing pCPU 2 with
//!   `role=busy`: each send wakes a switched-out receiver, so its upcall pays a whole switch
//!   that nothing foretold (unlike `shared`'s timer, which its pCPU switches in ahead; see
//!   microvisor/src/hyp/vtimer.rs).
//! - `evtchn_same`: `role=ping` and `role=pong_same` sharing pCPU 1: each send wakes the
//!   receiver, switched out on the sender's own pCPU (dom0 and a driver domain sharing
//!   pCPU 0 in the default system).

use super::micro::Dist;
use crate::machine::Machine;
use crate::markers::Expect;
use crate::qemu::{self, RunOptions, RunOutcome};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One boot: its name and what it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// `role=main`, exclusive, 2 vCPUs.
    Solo,
    /// `role=vipi_shared`, 2 vCPUs placed shared.
    SoloShared,
    /// `role=timer` beside `role=busy` on one pCPU.
    Shared,
    /// `role=timer_spin` on a pCPU placed shared.
    SharedRunning,
    /// `role=ping` and `role=pong` on two pCPUs.
    Evtchn,
    /// `role=ping` and `role=pong_shared` on two pCPUs, placed shared.
    EvtchnShared,
    /// `role=ping` on pCPU 1, `role=pong_switch` beside `role=busy` on pCPU 2.
    EvtchnSwitch,
    /// `role=ping` and `role=pong_same` sharing pCPU 1.
    EvtchnSame,
    /// `role=lazy_ram` alone: no figure, a check of RAM scrubbed on first touch (the
    /// integration tests boot it; not in [`Boot::ALL`]).
    LazyRam,
}

impl Boot {
    /// Every boot, in order.
    pub const ALL: [Boot; 8] = [
        Boot::Solo,
        Boot::SoloShared,
        Boot::Shared,
        Boot::SharedRunning,
        Boot::Evtchn,
        Boot::EvtchnShared,
        Boot::EvtchnSwitch,
        Boot::EvtchnSame,
    ];

    /// The system's file stem.
    pub fn name(self) -> &'static str {
        match self {
            Self::Solo => "micro_solo",
            Self::SoloShared => "micro_vipi_shared",
            Self::Shared => "micro_shared",
            Self::SharedRunning => "micro_shared_running",
            Self::Evtchn => "micro_evtchn",
            Self::EvtchnShared => "micro_evtchn_shared",
            Self::EvtchnSwitch => "micro_evtchn_switch",
            Self::EvtchnSame => "micro_evtchn_same",
            Self::LazyRam => "micro_lazy_ram",
        }
    }

    /// The role whose `MICRO done` ends the boot.
    pub fn measuring_role(self) -> &'static str {
        match self {
            Self::Solo => "main",
            Self::SoloShared => "vipi_shared",
            Self::Shared => "timer",
            Self::SharedRunning => "timer_spin",
            Self::Evtchn => "pong",
            Self::EvtchnShared => "pong_shared",
            Self::EvtchnSwitch => "pong_switch",
            Self::EvtchnSame => "pong_same",
            Self::LazyRam => "lazy_ram",
        }
    }

    /// The system description, with `samples` per metric and `image` the guest.
    pub fn system(self, image: &Path, samples: usize) -> String {
        let img = image.display();
        let dom = |name: &str, cpus: &str, extra: &str, cmdline: &str| {
            format!(
                "\n[[domain]]\nname = \"{name}\"\nimage = \"{img}\"\nmemory = 8\ncpus = \"{cpus}\"\n{extra}cmdline = \"{cmdline}\"\n"
            )
        };
        let (smp, domains) = match self {
            Self::Solo => (
                3,
                dom(
                    "micro",
                    "1-2",
                    "vcpus = 2\nexclusive = true\n",
                    &format!("role=main n={samples}"),
                ),
            ),
            Self::SoloShared => (
                3,
                dom(
                    "micro",
                    "1-2",
                    "vcpus = 2\n",
                    &format!("role=vipi_shared n={samples}"),
                ),
            ),
            Self::Shared => (
                2,
                dom("timer", "1", "", &format!("role=timer n={samples}"))
                    + &dom("busy", "1", "", "role=busy"),
            ),
            Self::SharedRunning => (
                2,
                dom("spin", "1", "", &format!("role=timer_spin n={samples}")),
            ),
            Self::Evtchn => (
                3,
                dom("ping", "1", "exclusive = true\n", "role=ping peer=2")
                    + &dom(
                        "pong",
                        "2",
                        "exclusive = true\n",
                        &format!("role=pong peer=1 n={samples}"),
                    ),
            ),
            Self::EvtchnShared => (
                3,
                dom("ping", "1", "", "role=ping peer=2")
                    + &dom(
                        "pong",
                        "2",
                        "",
                        &format!("role=pong_shared peer=1 n={samples}"),
                    ),
            ),
            Self::EvtchnSwitch => (
                3,
                dom("ping", "1", "exclusive = true\n", "role=ping peer=2")
                    + &dom(
                        "pong",
                        "2",
                        "",
                        &format!("role=pong_switch peer=1 n={samples}"),
                    )
                    + &dom("busy", "2", "", "role=busy"),
            ),
            Self::EvtchnSame => (
                2,
                dom("ping", "1", "", "role=ping peer=2")
                    + &dom(
                        "pong",
                        "1",
                        "",
                        &format!("role=pong_same peer=1 n={samples}"),
                    ),
            ),
            Self::LazyRam => (2, dom("lazy", "1", "", "role=lazy_ram")),
        };
        format!(
            "# Written by `cargo bulkhead bench micro` ({}); see tools/src/bench/micro_run.rs.\n[system]\nsmp = {smp}\nmemory = 512\n{domains}",
            self.name()
        )
    }
}

/// The micro guest's `Image`, which `bulkhead build` makes.
pub fn guest_image() -> Result<PathBuf> {
    let img = crate::build::guest_kernel("micro");
    if !img.is_file() {
        bail!(
            "{} does not exist; run `cargo bulkhead build`",
            img.display()
        );
    }
    Ok(img)
}

/// Writes `boot`'s system file under `target/bulkhead/bench/micro/`; returns its path.
pub fn write_system(boot: Boot, samples: usize) -> Result<PathBuf> {
    let dir = crate::paths::out_dir().join("bench").join("micro");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.toml", boot.name()));
    std::fs::write(&path, boot.system(&guest_image()?, samples))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// What ends a run: the measuring role's `done`; a guest error or a domain killed by a
/// stage-2 fault (an access the hypervisor does not emulate) stops it early.
pub fn expect(role: &str) -> Result<Expect> {
    Expect::new()
        .then(&format!("MICRO done role={role}"))?
        .forbid("MICRO error")?
        .forbid(r"stopped: stage-2 fault")
}

/// Boots `boot` on `machine` under `-icount`; its console log when the measuring role
/// finished.
pub fn run(boot: Boot, samples: usize, timeout: Duration, machine: Machine) -> Result<RunOutcome> {
    let mut opts = RunOptions::bench(
        write_system(boot, samples)?,
        expect(boot.measuring_role())?,
        timeout,
        false,
    );
    opts.overrides.machine = machine;
    super::boot_with_spinner(&format!("micro: {} on Bulkhead", boot.name()), || {
        qemu::run(&opts)
    })
}

/// Every figure from the Bulkhead boots ([`Boot::ALL`]) on `machine`.
pub fn bulkhead(samples: usize, machine: Machine) -> Result<Vec<(String, Dist)>> {
    let mut all = Vec::new();
    for boot in Boot::ALL {
        let out = run(boot, samples, Duration::from_secs(600), machine)?;
        all.extend(super::micro::parse(&out.log));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::System;

    /// Every generated system passes the tools' own validation, gives each instance the
    /// role, placement and peer the benchmark relies on, and names the guest file.
    #[test]
    fn the_generated_systems_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("micro.img");
        let mut head = vec![0u8; 64];
        head[56..60].copy_from_slice(b"ARM\x64");
        std::fs::write(&image, head).unwrap();
        let load = |boot: Boot| {
            let file = dir.path().join(format!("{}.toml", boot.name()));
            let text = boot.system(&image, 20);
            std::fs::write(&file, &text).unwrap();
            let sys = System::parse(&file, &text, Default::default())
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", boot.name()));
            assert!(sys.warnings.is_empty(), "{:?}", sys.warnings);
            sys
        };
        let solo = load(Boot::Solo);
        let main = &solo.domains[0];
        assert_eq!((main.vcpus, main.exclusive), (2, true));
        assert_eq!(main.cpus.value, [1, 2]);
        assert_eq!(main.cmdline, "role=main n=20");
        assert!(main.image.value.is_linux());

        let vs = load(Boot::SoloShared);
        assert_eq!((vs.domains[0].vcpus, vs.domains[0].exclusive), (2, false));
        assert_eq!(vs.domains[0].cpus.value, [1, 2]);
        assert_eq!(vs.domains[0].cmdline, "role=vipi_shared n=20");

        let shared = load(Boot::Shared);
        let cpus: Vec<_> = shared
            .domains
            .iter()
            .map(|d| d.cpus.value.clone())
            .collect();
        assert_eq!(cpus, [vec![1], vec![1]], "the two must share a pCPU");
        assert!(shared.domains.iter().all(|d| !d.exclusive));

        let running = load(Boot::SharedRunning);
        assert_eq!(running.domains.len(), 1);
        assert_eq!(running.domains[0].cmdline, "role=timer_spin n=20");
        assert!(!running.domains[0].exclusive, "placed shared");

        // dom0 is d0 and the domains are created in file order: ping is d1, pong d2.
        let ev = load(Boot::Evtchn);
        let names: Vec<_> = ev.domains.iter().map(|d| d.name.value.as_str()).collect();
        assert_eq!(names, ["ping", "pong"]);
        assert_eq!(ev.domains[0].cmdline, "role=ping peer=2");
        assert_eq!(ev.domains[1].cmdline, "role=pong peer=1 n=20");
        assert_ne!(ev.domains[0].cpus.value, ev.domains[1].cpus.value);
        assert!(ev.domains.iter().all(|d| d.exclusive));

        let evs = load(Boot::EvtchnShared);
        assert_eq!(evs.domains[1].cmdline, "role=pong_shared peer=1 n=20");
        assert_ne!(evs.domains[0].cpus.value, evs.domains[1].cpus.value);
        assert!(evs.domains.iter().all(|d| !d.exclusive));
        let sw = load(Boot::EvtchnSwitch);
        assert_eq!(sw.domains[1].cmdline, "role=pong_switch peer=1 n=20");
        assert_eq!(sw.domains[1].cpus.value, sw.domains[2].cpus.value);
        assert_eq!(sw.domains[2].cmdline, "role=busy");
        let same = load(Boot::EvtchnSame);
        assert_eq!(same.domains[1].cmdline, "role=pong_same peer=1 n=20");
        assert_eq!(same.domains[0].cpus.value, same.domains[1].cpus.value);
        assert!(same.domains.iter().all(|d| !d.exclusive));
        assert!(sw.domains[0].exclusive && !sw.domains[1].exclusive);
    }
}
