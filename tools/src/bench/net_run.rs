//! Runs `bench net`: the Linux guest beside netdom under the microvisor (the script typed
//! through dom0's management port, as `ctl console` would), then the same kernel natively
//! with a virtio-net device on QEMU's user network (the script written to QEMU's stdin),
//! each against a TCP sink and source this process serves on 127.0.0.1, and prints and
//! writes the report of [`super::net`].

use super::console::{boot_typing, steps_for};
use super::net::{self, NetReport, Raw, BYTES, NATIVE_MODULES, NATIVE_MODULE_DIR, TAG};
use crate::guest::cpio::CpioWriter;
use crate::markers::Expect;
use crate::qemu::{self, RunOptions};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Linux domain's name in the generated system.
pub const DOMAIN: &str = "linux";
/// Hard limit per boot, benchmark included.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// What makes either run fail early.
const FORBIDDEN: &str = r"(Kernel panic|BUG:|Oops)";

/// The system booted under the microvisor: dom0 and netdom on pCPU 0, the Linux guest alone
/// on pCPU 1 with the native baseline's RAM and one vif.
pub fn system_toml() -> String {
    format!(
        r#"# Written by `cargo bulkhead bench net`.
[system]
smp = 2
memory = 1024

[[domain]]
name = "netdom"
image = "netdom"
memory = 16
vcpus = 1
cpus = "0"

[[domain]]
name = "{DOMAIN}"
image = "debian-linux"
ramdisk = "debian-initramfs"
memory = {}
vcpus = 1
cpus = "1"
cmdline = "console=hvc0 quiet"
vif = [""]
"#,
        super::boot::NATIVE_MEM_MIB
    )
}

/// The host's end: a sink counting what each connection sends until it has [`BYTES`] or
/// the guest closes, and a source writing [`BYTES`] zeros to each connection, on threads
/// that live as long as the process (each run has its own pair).
struct HostEnd {
    sink: u16,
    source: u16,
    sunk: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl HostEnd {
    fn start() -> Result<Self> {
        let sink = TcpListener::bind("127.0.0.1:0").context("cannot bind the sink")?;
        let source = TcpListener::bind("127.0.0.1:0").context("cannot bind the source")?;
        let ports = (sink.local_addr()?.port(), source.local_addr()?.port());
        let sunk = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (total, halt) = (sunk.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in sink.incoming() {
                if halt.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(TIMEOUT));
                let (mut got, mut buf) = (0u64, vec![0u8; 1 << 16]);
                // Closing once all bytes are in ends busybox nc, which may wait for the
                // peer after its stdin ends.
                while got < BYTES {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n as u64,
                    }
                }
                total.fetch_add(got, Ordering::Relaxed);
            }
        });
        let halt = stop.clone();
        std::thread::spawn(move || {
            let block = vec![0u8; 1 << 16];
            for s in source.incoming() {
                if halt.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                let _ = s.set_write_timeout(Some(TIMEOUT));
                let mut left = BYTES;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    if s.write_all(&block[..n]).is_err() {
                        break;
                    }
                    left -= n as u64;
                }
                let _ = s.shutdown(Shutdown::Write);
            }
        });
        Ok(Self {
            sink: ports.0,
            source: ports.1,
            sunk,
            stop,
        })
    }

    /// What the sink received so far.
    fn sunk(&self) -> u64 {
        self.sunk.load(Ordering::Relaxed)
    }
}

impl Drop for HostEnd {
    fn drop(&mut self) {
        // The listener threads see the flag on their next connection; they hold only
        // their sockets.
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn expect(prefix: &str) -> Result<Expect> {
    Expect::new()
        .then(&format!("{prefix}{}", net::result_re()))?
        .forbid(&format!("{prefix}.*{FORBIDDEN}"))
}

fn options(system: PathBuf, expect: Expect, build: bool) -> RunOptions {
    RunOptions::bench(system, expect, TIMEOUT, build)
}

/// The run under the microvisor: the raw result and what the sink got.
fn bulkhead(build: bool) -> Result<(Raw, u64)> {
    let dir = crate::paths::out_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let system = dir.join("net.toml");
    std::fs::write(&system, system_toml())
        .with_context(|| format!("cannot write {}", system.display()))?;
    let host = HostEnd::start()?;
    let script = net::script(false, host.sink, host.source);
    let _ = std::fs::remove_file(crate::ctl::default_socket());
    let opts = options(system, expect(&format!(r"\[{DOMAIN}\] "))?, build);
    let steps = steps_for(DOMAIN, &script);
    let out = boot_typing("Linux on netdom under the microvisor", &opts, &steps)?;
    let raw = net::parse(&out.log)
        .with_context(|| format!("no {TAG} result in {}", out.log_path.display()))?;
    Ok((raw, host.sunk()))
}

/// The shared initramfs with a second newc archive appended that carries
/// [`NATIVE_MODULES`] from the kernel package (Linux unpacks concatenated archives in turn).
fn native_initramfs(base: &Path, version: &str) -> Result<PathBuf> {
    let cache = crate::guest::cache::Cache::from_env()?;
    let modules = cache
        .extract(&format!("linux-image-{version}"))
        .join("lib/modules")
        .join(version);
    let mut bytes =
        std::fs::read(base).with_context(|| format!("cannot read {}", base.display()))?;
    let mut w = CpioWriter::new(Vec::new());
    w.dir(NATIVE_MODULE_DIR, 0o755)?;
    for m in NATIVE_MODULES {
        let path = modules.join(m);
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = m.rsplit('/').next().unwrap_or(m);
        w.file(&format!("{NATIVE_MODULE_DIR}/{file}"), 0o644, &data)?;
    }
    bytes.extend(w.finish()?);
    let out = crate::paths::out_dir()
        .join("bench")
        .join("net-native.cpio");
    std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(out)
}

/// The native run: the script goes to QEMU's stdin, each line on its trigger.
fn native() -> Result<(Raw, u64)> {
    let linux = crate::guest::linux_artifacts_for_console(super::boot::NATIVE_CONSOLE)
        .context("cannot get the native Linux kernel and initramfs")?;
    let initramfs = native_initramfs(&linux.initramfs, &linux.kernel_version)?;
    let host = HostEnd::start()?;
    let mut e = expect("")?;
    for (trigger, line) in net::script(true, host.sink, host.source) {
        e = e.send_when(&regex::escape(&trigger), line.as_bytes())?;
    }
    let opts = options(PathBuf::from("net_native"), e, false);
    let out = super::boot_with_spinner("Linux native on virtio-net", || {
        qemu::run_native_linux_with(
            &linux.image,
            &initramfs,
            super::boot::NATIVE_CMDLINE,
            1,
            super::boot::NATIVE_MEM_MIB,
            &[
                "-netdev".into(),
                "user,id=bnet0".into(),
                "-device".into(),
                "virtio-net-device,netdev=bnet0".into(),
            ],
            &opts,
        )
    })?;
    let raw = net::parse(&out.log)
        .with_context(|| format!("no {TAG} result in {}", out.log_path.display()))?;
    Ok((raw, host.sunk()))
}

/// Runs both, prints the table and writes `target/bulkhead/bench/net.json`.
pub fn bench(build: bool) -> Result<NetReport> {
    let b = bulkhead(build)?;
    let n = native()?;
    let ns = super::boot::ns_per_tick(super::boot::COUNTER_HZ)
        .context("the counter period is not a whole ns")?;
    let g = super::net_g2g::run(false, ns, TIMEOUT)?;
    let mut r = net::report((&b.0, b.1), (&n.0, n.1))?;
    r.guest_to_guest = Some(g);
    println!("{}", net::table(&r));
    super::write_json("net", &r)?;
    Ok(r)
}
