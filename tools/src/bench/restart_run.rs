//! Runs `bench restart`: its blkdom half (boots blkdom and the Linux guest under the
//! microvisor, types the guest's read loop through dom0's management port, crashes blkdom
//! between its reads; the report of [`super::restart`]), its netdom half
//! ([`super::restart_net_run`]) or both, and prints and writes their reports.

use super::restart::{
    self, Combined, RestartReport, Target, DOMAIN, MAX_CRASHES, PER_CRASH, TAG, WAIT_READY,
};
use super::restart_net::{self, MAX_CRASHES as NET_MAX_CRASHES};
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
/// Size of the guest's disk image.
const DISK_MIB: u64 = 16;
/// What makes the run fail early.
const FORBIDDEN: &str = r"(Kernel panic|BUG:|Oops|blk_update_request|I/O error)";

/// Writes the system (blkdom restarted in place on a crash, the Linux guest with one disk,
/// a fresh image) into `dir` and returns its path.
fn system(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let disk = dir.join("restart.img");
    let f = std::fs::File::create(&disk)
        .with_context(|| format!("cannot create {}", disk.display()))?;
    f.set_len(DISK_MIB << 20)?;
    // As bench blk: dom0 and blkdom on pCPU 0, the guest alone on pCPU 1.
    let toml = format!(
        r#"# Written by `cargo bulkhead bench restart`.
[system]
smp = 2
memory = 1024

[[domain]]
name = "blkdom"
image = "blkdom"
memory = 16
vcpus = 1
cpus = "0"
on_crash = "restart"

[[domain]]
name = "{DOMAIN}"
image = "debian-linux"
ramdisk = "debian-initramfs"
memory = 192
vcpus = 1
cpus = "1"
cmdline = "console=hvc0 quiet"
disk = ["{},raw,xvda,rw"]
"#,
        disk.display()
    );
    let path = dir.join("restart.toml");
    std::fs::write(&path, toml).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Drives the run: types the loop, then crashes blkdom `crashes` times, each once the
/// guest's reads moved well past the previous crash (they cannot without blkdom) and dom0
/// reported the previous recovery (it does at blkdom's first heartbeat, later), or
/// [`WAIT_READY`] reads after it. Returns the last loop index seen before each crash.
fn drive(crashes: u32, done: &dyn Fn() -> bool) -> Result<Vec<u64>> {
    let deadline = Instant::now() + TIMEOUT;
    let script = [(
        crate::guest::initramfs::MARKER.to_owned(),
        restart::script(crashes),
    )];
    super::console::type_steps(&super::console::steps_for(DOMAIN, &script), done)?;
    let mut c = Client::connect(&default_socket(), Duration::from_secs(5))?;
    let mut crash_at: Vec<u64> = Vec::new();
    while crash_at.len() < crashes as usize {
        let k = crash_at.len() as u64;
        let want = crash_at
            .last()
            .map_or(PER_CRASH, |&p| (p + PER_CRASH / 2).max((k + 1) * PER_CRASH));
        // dom0 may close an idle connection; connect again.
        let h = match super::console::history(&mut c) {
            Ok(h) => h,
            Err(_) if !done() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500));
                c = Client::connect(&default_socket(), Duration::from_secs(5))?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let at = restart::last_index(&h);
        let ready = restart::recovered_of(&h, "blkdom").len() as u64 >= k
            || at
                .zip(crash_at.last())
                .is_some_and(|(i, &p)| i >= p + WAIT_READY);
        if h.contains(&format!("[{DOMAIN}] {TAG}-DONE")) {
            bail!("the guest's loop ended after {} crashes", k);
        }
        match at {
            Some(i) if ready && i >= want => {
                let r = c.call(&Request::Crash {
                    domain: DomainRef::Name("blkdom".into()),
                })?;
                if r != Response::Done {
                    bail!("crash blkdom answered {r:?}");
                }
                crash_at.push(i);
            }
            _ if done() || Instant::now() > deadline => {
                bail!("crash {}: the guest's reads stalled at {at:?}", k + 1)
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Ok(crash_at)
}

/// Runs the halves `targets` names (blkdom's, then netdom's), each with `count` crashes
/// (default [`restart::DEFAULT_CRASHES`]), prints each table and writes
/// `target/bulkhead/bench/restart.json`.
pub fn run(build: bool, targets: &[Target], count: Option<u32>) -> Result<Combined> {
    let crashes = count.unwrap_or(restart::DEFAULT_CRASHES);
    if targets.contains(&Target::Blkdom) && targets.len() > 1 && crashes > MAX_CRASHES {
        bail!(
            "--count {crashes}: blkdom's half allows at most {MAX_CRASHES}; pass \
             --target netdom to crash netdom more often"
        );
    }
    let mut out = Combined {
        benchmark: "restart",
        blkdom: None,
        netdom: None,
    };
    // Checked before either boots, so that a bad --count costs no boot.
    if targets.contains(&Target::Netdom) && !(1..=NET_MAX_CRASHES).contains(&crashes) {
        bail!("--count must be 1 to {NET_MAX_CRASHES} for netdom");
    }
    for (n, t) in targets.iter().enumerate() {
        // The first boot builds the images if asked; the second reuses them.
        let build = build && n == 0;
        match t {
            Target::Blkdom => {
                let r = bench(build, crashes)?;
                println!("{}", restart::table(&r));
                out.blkdom = Some(r);
            }
            Target::Netdom => {
                let r = super::restart_net_run::bench(build, crashes)?;
                println!("{}", restart_net::table(&r));
                out.netdom = Some(r);
            }
        }
        if n + 1 < targets.len() {
            println!();
        }
    }
    super::write_json("restart", &out)?;
    Ok(out)
}

/// Runs the blkdom half with `crashes` crashes; its report.
pub fn bench(build: bool, crashes: u32) -> Result<RestartReport> {
    if !(1..=MAX_CRASHES).contains(&crashes) {
        bail!(
            "--count must be 1 to {MAX_CRASHES}: dom0 holds a domain that stops more than \
             {MAX_CRASHES} times within 30 s"
        );
    }
    let dir = crate::paths::out_dir().join("bench");
    let system = system(&dir)?;
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(&format!(r"\[{DOMAIN}\] {TAG}-DONE \d+"))?
        .forbid(&format!(r"\[{DOMAIN}\] .*{FORBIDDEN}"))?;
    let opts = RunOptions::bench(system, expect, TIMEOUT, build);
    let (out, crash_at) =
        super::console::boot_driving("Linux I/O across blkdom crashes", &opts, |done| {
            drive(crashes, done)
        })?;
    restart::report(&out.log, &crash_at).with_context(|| format!("in {}", out.log_path.display()))
}
