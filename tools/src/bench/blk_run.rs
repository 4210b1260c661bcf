//! Runs `bench blk`: the Linux guest beside blkdom under the microvisor (the script typed
//! through dom0's management port, as `ctl console` would), then the same kernel natively
//! with a virtio-blk disk (the script written to QEMU's stdin, the PL011), each with a fresh
//! raw image, and prints and writes the report of [`super::blk`].

use super::blk::{self, BlkReport, Raw, BULKHEAD_DEV, DISK_MIB, NATIVE_DEV, TAG};
use crate::ctl::client::Client;
use crate::ctl::default_socket;
use crate::markers::Expect;
use crate::qemu::{self, RunOptions};
use anyhow::{anyhow, bail, Context, Result};
use protocol::mgmt::{DomainRef, Request, Response};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The system booted under the microvisor: dom0, blkdom and the Linux guest with one disk.
pub const SYSTEM: &str = "tests/systems/bench_blk.toml";
/// The guest's disk image, as [`SYSTEM`] names it (relative to the file's folder).
pub const DISK: &str = "../../target/bulkhead/bench/blk-bulkhead.img";
/// The Linux domain's name in [`SYSTEM`].
pub const DOMAIN: &str = "linux";
/// The native run's disk image, in `target/bulkhead/bench/`.
pub const NATIVE_DISK: &str = "blk-native.img";
/// Hard limit per boot, benchmark included.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// What makes either run fail early.
const FORBIDDEN: &str = r"(Kernel panic|BUG:|Oops|blk_update_request|I/O error)";

/// A fresh, all-zero (sparse) raw image of [`DISK_MIB`] MiB at `path`.
fn fresh_disk(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.set_len(DISK_MIB << 20)
        .with_context(|| format!("cannot size {}", path.display()))
}

fn expect(prefix: &str) -> Result<Expect> {
    Expect::new()
        .then(&format!("{prefix}{}", blk::result_re()))?
        .forbid(&format!("{prefix}.*{FORBIDDEN}"))
}

fn options(system: PathBuf, expect: Expect, build: bool) -> RunOptions {
    RunOptions::bench(system, expect, TIMEOUT, build)
}

/// The console history so far, as `ctl dmesg` shows it.
pub fn history(c: &mut Client) -> Result<String> {
    let (mut from, mut text) = (0, Vec::new());
    loop {
        match c.call(&Request::Dmesg { from })? {
            Response::Log { bytes, start, end } => {
                from = start + bytes.len() as u64;
                text.extend_from_slice(&bytes);
                if bytes.is_empty() || from >= end {
                    return Ok(String::from_utf8_lossy(&text).into_owned());
                }
            }
            other => bail!("dmesg answered {other:?}"),
        }
    }
}

/// `script` (trigger, line) as steps typed on `domain`'s console (see [`type_steps`]).
pub fn steps_for(domain: &str, script: &[(String, String)]) -> Vec<Step> {
    script
        .iter()
        .map(|(trigger, line)| Step {
            trigger: trigger.clone(),
            domain: domain.to_owned(),
            line: line.clone(),
        })
        .collect()
}

/// Boots `opts` under the microvisor (with `label` on the spinner) while typing `steps`
/// over the management port; the run's outcome. A typing failure is the error only when
/// the boot nevertheless matched (otherwise the boot's own report says more).
pub fn boot_typing(label: &str, opts: &RunOptions, steps: &[Step]) -> Result<qemu::RunOutcome> {
    super::boot_with_spinner(label, || {
        std::thread::scope(|s| {
            let boot = s.spawn(|| qemu::run(opts));
            let typed = type_steps(steps, &|| boot.is_finished());
            let out = boot
                .join()
                .map_err(|_| anyhow!("the QEMU thread panicked"))??;
            if let Err(e) = typed {
                if out.outcome == qemu::Outcome::Matched {
                    return Err(e);
                }
                eprintln!("typing the script: {e:#}");
            }
            Ok(out)
        })
    })
}

/// One line typed on one domain's console once `trigger` is in the console history.
pub struct Step {
    /// Text the history must contain first (the console lines carry `[domain] ` prefixes).
    pub trigger: String,
    /// Whose console.
    pub domain: String,
    /// What to type (with its newline).
    pub line: String,
}

/// Types each step, in order, once its trigger is in the console history, over one
/// management connection; gives up when `done` says the boot ended.
pub fn type_steps(steps: &[Step], done: &dyn Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    let socket = default_socket();
    let mut client = loop {
        match Client::connect(&socket, Duration::from_secs(5)) {
            Ok(c) => break c,
            Err(e) if done() || Instant::now() > deadline => {
                return Err(e.context("the management port never answered"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    for s in steps {
        while !history(&mut client)?.contains(s.trigger.as_str()) {
            if done() || Instant::now() > deadline {
                bail!("no {:?} on the console", s.trigger);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let r = client.call(&Request::ConsoleInput {
            domain: DomainRef::Name(s.domain.clone()),
            bytes: s.line.clone().into_bytes(),
        })?;
        if r != Response::Done {
            bail!("console input answered {r:?}");
        }
    }
    Ok(())
}

/// The run under the microvisor.
fn bulkhead(build: bool) -> Result<Raw> {
    let system = crate::paths::workspace_root().join(SYSTEM);
    let disk = system.parent().unwrap_or(Path::new(".")).join(DISK);
    fresh_disk(&disk)?;
    let _ = std::fs::remove_file(default_socket());
    let opts = options(system, expect(&format!(r"\[{DOMAIN}\] "))?, build);
    let steps = steps_for(DOMAIN, &blk::script(BULKHEAD_DEV));
    let out = boot_typing("Linux on blkdom under the microvisor", &opts, &steps)?;
    blk::parse(&out.log).with_context(|| format!("no {TAG} result in {}", out.log_path.display()))
}

/// The native run: the script goes to QEMU's stdin, each line on its trigger.
fn native() -> Result<Raw> {
    let linux = crate::guest::linux_artifacts_for_console(super::boot::NATIVE_CONSOLE)
        .context("cannot get the native Linux kernel and initramfs")?;
    let disk = crate::paths::out_dir().join("bench").join(NATIVE_DISK);
    fresh_disk(&disk)?;
    let mut e = expect("")?;
    for (trigger, line) in blk::script(NATIVE_DEV) {
        e = e.send_when(&regex::escape(&trigger), line.as_bytes())?;
    }
    let opts = options(PathBuf::from("blk_native"), e, false);
    // As the microvisor's QEMU command line attaches a disk; QEMU doubles a comma in a value.
    let drive = format!(
        "file={},if=none,format=raw,id=bkd0",
        disk.display().to_string().replace(',', ",,")
    );
    let out = super::boot_with_spinner("Linux native on virtio-blk", || {
        qemu::run_native_linux_with(
            &linux.image,
            &linux.initramfs,
            super::boot::NATIVE_CMDLINE,
            1,
            super::boot::NATIVE_MEM_MIB,
            &[
                "-drive".into(),
                drive,
                "-device".into(),
                "virtio-blk-device,drive=bkd0,serial=bkd0".into(),
            ],
            &opts,
        )
    })?;
    blk::parse(&out.log).with_context(|| format!("no {TAG} result in {}", out.log_path.display()))
}

/// Runs both, prints the table and writes `target/bulkhead/bench/blk.json`.
pub fn bench(build: bool) -> Result<BlkReport> {
    let b = bulkhead(build)?;
    let n = native()?;
    let r = blk::report(&b, &n)?;
    println!("{}", blk::table(&r));
    super::write_json("blk", &r)?;
    Ok(r)
}
