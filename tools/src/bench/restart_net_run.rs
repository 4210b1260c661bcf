//! Runs `bench restart`'s netdom half: boots netdom and the Linux guest under the
//! microvisor, types the guest's DHCP and ping loop through dom0's management port, crashes
//! netdom while the replies flow, stops the loop, and builds the report of
//! [`super::restart_net`].

use super::console::Tail;
use super::restart_net::{
    self, NetRestartReport, CRASH_LIMIT, DOMAIN, DRIVER, MAX_CRASHES, PER_CRASH, TAG, TAIL,
};
use crate::ctl::client::Client;
use crate::ctl::default_socket;
use crate::markers::Expect;
use crate::qemu::RunOptions;
use anyhow::{bail, Context, Result};
use protocol::mgmt::{DomainRef, Request, Response};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Hard limit for the boot, the loop and every crash.
pub const TIMEOUT: Duration = Duration::from_secs(1200);
/// What makes the run fail early: the guest's kernel failing, or dom0 holding netdom.
const FORBIDDEN: &str =
    r"(\[linux\] .*(Kernel panic|BUG:|Oops)|\[dom0\] netdom \(d\d+\): crash loop)";

/// Writes the system (netdom restarted in place on a crash under a raised crash-loop limit,
/// the Linux guest with one vif) into `dir` and returns its path.
fn system(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // As bench net and the blkdom half: dom0 and netdom on pCPU 0, the guest alone on 1.
    let toml = format!(
        r#"# Written by `cargo bulkhead bench restart`.
[system]
smp = 2
memory = 1024

[[domain]]
name = "{DRIVER}"
image = "netdom"
memory = 16
vcpus = 1
cpus = "0"
on_crash = "restart"
crash_limit = "{CRASH_LIMIT}"

[[domain]]
name = "{DOMAIN}"
image = "debian-linux"
ramdisk = "debian-initramfs"
memory = 192
vcpus = 1
cpus = "1"
cmdline = "console=hvc0 quiet"
vif = [""]
"#
    );
    let path = dir.join("restart-netdom.toml");
    std::fs::write(&path, toml).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// What the drive saw: the last sequence number before each crash and before the stop.
#[derive(Default)]
struct Driven {
    crash_at: Vec<u64>,
    stop_at: u64,
}

/// Drives the run: types the script, waits for DHCP, then crashes netdom `crashes` times,
/// each once dom0 reported the previous recovery (its watchdog saw the new instance's first
/// heartbeat, so no crash counts as a crash loop) and the guest's replies moved
/// [`PER_CRASH`] sequence numbers on; after the last recovery and [`TAIL`] more, stops the
/// loop.
fn drive(crashes: u32, done: &dyn Fn() -> bool) -> Result<Driven> {
    let deadline = Instant::now() + TIMEOUT;
    let script = [(
        crate::guest::initramfs::MARKER.to_owned(),
        restart_net::script(),
    )];
    super::console::type_steps(&super::console::steps_for(DOMAIN, &script), done)?;
    let mut c = Client::connect(&default_socket(), Duration::from_secs(5))?;
    let mut tail = Tail::default();
    let mut d = Driven::default();
    loop {
        if done() || Instant::now() > deadline {
            bail!(
                "after {} crashes: the run ended or timed out (last crash at seq {:?})",
                d.crash_at.len(),
                d.crash_at.last()
            );
        }
        let h = tail.poll(&mut c)?;
        match restart_net::parse_dhcp(h) {
            None => {
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
            Some(0) => {}
            Some(rc) => bail!("the guest's udhcpc failed ({rc})"),
        }
        if h.contains(&format!("[{DOMAIN}] {TAG}-DONE")) {
            bail!("the guest's loop ended after {} crashes", d.crash_at.len());
        }
        let k = d.crash_at.len();
        let recovered = super::restart::recovered_of(h, DRIVER).len();
        let at = restart_net::last_seq(h);
        let from = d.crash_at.last().map_or(0, |&p| p + 1);
        let ready = recovered >= k && at.is_some_and(|i| i + 1 >= from + PER_CRASH);
        match at {
            Some(i) if ready && k < crashes as usize => {
                let r = c.call(&Request::Crash {
                    domain: DomainRef::Name(DRIVER.into()),
                })?;
                if r != Response::Done {
                    bail!("crash {DRIVER} answered {r:?}");
                }
                d.crash_at.push(i);
            }
            Some(i) if k == crashes as usize && recovered >= k && i + 1 >= from + TAIL => {
                super::console::type_line(&mut c, DOMAIN, &restart_net::stop_line())?;
                d.stop_at = i;
                return Ok(d);
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Runs the netdom half with `crashes` crashes; its report.
pub fn bench(build: bool, crashes: u32) -> Result<NetRestartReport> {
    if !(1..=MAX_CRASHES).contains(&crashes) {
        bail!(
            "--count must be 1 to {MAX_CRASHES} for netdom: its system allows {CRASH_LIMIT} \
             crash restarts"
        );
    }
    let dir = crate::paths::out_dir().join("bench");
    let system = system(&dir)?;
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(&format!(r"\[{DOMAIN}\] {TAG}-DONE \d+"))?
        .forbid(FORBIDDEN)?;
    let opts = RunOptions::bench(system, expect, TIMEOUT, build);
    let (out, d) =
        super::console::boot_driving("Linux pings across netdom crashes", &opts, |done| {
            drive(crashes, done)
        })?;
    restart_net::report(&out.log, &d.crash_at, d.stop_at)
        .with_context(|| format!("in {}", out.log_path.display()))
}
