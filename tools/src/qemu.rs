//! Boots a packed system in QEMU, tees the console to the terminal and a log file, and
//! watches it for markers.
//!
//! Threads: one reader per QEMU output pipe (stdout, stderr) forwards bytes to the log and
//! (optionally) our stdout and sends complete lines to the caller's thread, which alone
//! matches markers, writes scripted console input (QEMU's stdin) and decides when to stop
//! QEMU.

use crate::image::{self, ImageOptions};
use crate::markers::{Event, Expect};
use crate::paths;
use crate::system::Overrides;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How to run a system.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// System description.
    pub system: PathBuf,
    /// `--smp` / `--mem`.
    pub overrides: Overrides,
    /// Run `cargo build` first; otherwise reuse the built ELFs.
    pub build: bool,
    /// Stop QEMU after this long.
    pub timeout: Option<Duration>,
    /// Markers; when non-empty the run ends as soon as all matched.
    pub expect: Expect,
    /// Deterministic instruction counting ([`ICOUNT_ARGS`]).
    pub icount: bool,
    /// With `icount`: idle time passes at the host's pace ([`ICOUNT_IO_ARGS`]) instead of
    /// being skipped, for benchmarks that wait on QEMU's host-side I/O.
    pub icount_io: bool,
    /// With `icount`: QEMU hands its one emulating thread from CPU to CPU at least every
    /// [`TICK_US`] µs of virtual time ([`TICK_ARGS`]), closer to real CPUs side by side.
    pub tick: bool,
    /// Hand our stdin to QEMU (Ctrl-A x quits); otherwise QEMU gets /dev/null.
    pub interactive: bool,
    /// Copy the console to our stdout.
    pub echo: bool,
}

impl RunOptions {
    /// Non-interactive, silent run of `system` with prebuilt images: what tests use.
    pub fn test(system: impl Into<PathBuf>, expect: Expect, timeout: Duration) -> Self {
        Self {
            system: system.into(),
            overrides: Overrides::default(),
            build: false,
            timeout: Some(timeout),
            expect,
            icount: false,
            icount_io: false,
            tick: false,
            interactive: false,
            echo: false,
        }
    }

    /// Non-interactive, silent run of `system` under [`ICOUNT_ARGS`]: what benchmarks use.
    /// `build`: build the images first.
    pub fn bench(
        system: impl Into<PathBuf>,
        expect: Expect,
        timeout: Duration,
        build: bool,
    ) -> Self {
        Self {
            build,
            icount: true,
            ..Self::test(system, expect, timeout)
        }
    }

    /// [`Self::test`] under [`ICOUNT_ARGS`] with the [`TICK_ARGS`] tick: what tests of
    /// real-time behaviour (an RTOS that must miss nothing) use.
    pub fn realtime_test(system: impl Into<PathBuf>, expect: Expect, timeout: Duration) -> Self {
        Self {
            icount: true,
            tick: true,
            ..Self::test(system, expect, timeout)
        }
    }
}

/// QEMU's arguments for a deterministic run: one instruction per ns of virtual time, idle
/// time skipped, and a fixed seed for everything QEMU randomizes for the guest (FEAT_RNG's
/// RNDR, which Linux uses for KASLR and its entropy pool, and the DTB's `kaslr-seed` and
/// `rng-seed`): without it two Linux boots differ by some thousands of instructions.
pub const ICOUNT_ARGS: [&str; 4] = ["-icount", "shift=0,sleep=off", "-seed", "1"];

/// [`ICOUNT_ARGS`] for runs whose CPUs wait for QEMU's host-side I/O (a disk): an idle CPU's
/// virtual time runs at the host's pace until the next timer deadline instead of jumping to
/// it. With `sleep=off` a wait for a disk completion costs whatever the guest's next timer
/// happens to be (a tickless Linux may sleep for hundreds of ms) whenever QEMU notices the
/// idle CPU before its I/O thread finishes: the same native `dd` measured 5770 and 2 MiB/s
/// in two runs. Here it costs the time the host really took, on both sides of a comparison.
pub const ICOUNT_IO_ARGS: [&str; 4] = ["-icount", "shift=0,sleep=on", "-seed", "1"];

/// The [`TICK_US`] literal, for [`TICK_ARGS`] to spell into its `const` strings.
macro_rules! tick_us {
    () => {
        100
    };
}

/// How often, in µs of virtual time, the [`TICK_ARGS`] timer fires.
pub const TICK_US: u32 = tick_us!();

/// A timer on QEMU's virtual clock that re-arms itself every [`TICK_US`] µs: the release
/// timer of a `filter-buffer` on a network backend nothing is attached to (QEMU warns that
/// it has no peer; no guest sees it).
///
/// Why: under `-icount` QEMU 7.2 emulates one CPU at a time and lets each run until the
/// machine's next timer deadline. A guest timer that has fired is no longer a deadline until
/// its CPU runs and re-arms it, so when every CPU with a short timer is waiting for its
/// turn, a busy CPU runs on alone. `rtos_beside_linux` once saw Linux's CPU run 3 ms of
/// virtual time in one turn while the RTOS's timer handler, cut off halfway by the end of
/// its own turn, waited to re-arm: a release 2.1 ms late (traced with a QEMU plugin that
/// logs each CPU's turns). The tests' metronome guest (`tests/src/systems.rs`) lapses the
/// same way, whenever its own timer has fired and waits for its CPU; this timer cannot,
/// because QEMU re-arms it itself.
///
/// Why 100 µs and not the metronome's 20: at 20 µs the wall-clock time of
/// `rtos_across_restarts` went from 63 s to 366 s (QEMU's main loop wakes for every expiry);
/// at 100 µs it took 57 s, and the RTOS's worst release in `rtos_beside_linux` was 41 µs
/// late. The metronome still gives the finer grid while it runs. Not for benchmarks: finer
/// turns change their cross-CPU figures.
pub const TICK_ARGS: [&str; 4] = [
    "-netdev",
    "hubport,id=bulkhead-tick,hubid=255",
    "-object",
    concat!(
        "filter-buffer,id=bulkhead-tick-timer,netdev=bulkhead-tick,interval=",
        tick_us!()
    ),
];

impl RunOptions {
    /// The clock arguments these options add to QEMU's command line.
    pub fn clock_args(&self) -> Vec<&'static str> {
        let clock: &[&str] = match (self.icount, self.icount_io) {
            (false, _) => &[],
            (true, false) => &ICOUNT_ARGS,
            (true, true) => &ICOUNT_IO_ARGS,
        };
        let tick: &[&str] = if self.icount && self.tick {
            &TICK_ARGS
        } else {
            &[]
        };
        [clock, tick].concat()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every marker matched (QEMU was stopped).
    Matched,
    /// The timeout passed first (QEMU was stopped).
    Timeout,
    /// QEMU exited by itself, with this status code.
    QemuExited(Option<i32>),
    /// A forbidden line appeared (QEMU was stopped).
    Forbidden(String),
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// How it ended.
    pub outcome: Outcome,
    /// Everything QEMU printed (stdout and stderr).
    pub log: String,
    /// Where that log was kept.
    pub log_path: PathBuf,
    /// Markers not yet matched when it ended.
    pub waiting_for: String,
}

impl RunOutcome {
    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A failure report: what happened, what was awaited, the log path and its tail.
    pub fn report(&self, lines: usize) -> String {
        let what = match &self.outcome {
            Outcome::Matched => "all markers matched".to_string(),
            Outcome::Timeout => "timed out".to_string(),
            Outcome::QemuExited(code) => format!("QEMU exited first (status {code:?})"),
            Outcome::Forbidden(why) => format!("forbidden output: {why}"),
        };
        format!(
            "{what}; waiting for {}\nlog: {}\n--- last {lines} lines ---\n{}",
            self.waiting_for,
            self.log_path.display(),
            self.tail(lines)
        )
    }
}

enum Msg {
    Line(String),
    Eof,
}

/// Packs and boots `opts.system`, returning when the markers matched, the timeout passed
/// or QEMU exited.
pub fn run(opts: &RunOptions) -> Result<RunOutcome> {
    let packed = image::image(&ImageOptions {
        system: opts.system.clone(),
        overrides: opts.overrides,
        build: opts.build,
    })?;
    let mut args = packed.qemu_args.clone();
    args.extend(opts.clock_args().iter().map(|a| a.to_string()));
    launch(&args, &packed.dir, &packed.system.name, opts)
}

/// Packs `opts.system`, writes the U-Boot boot disk (`target/bulkhead/uboot-disk.img`) from
/// the packed files and boots QEMU with Debian's U-Boot as its firmware, which finds
/// `boot.scr` on that disk, loads everything and `booti`s the microvisor (at an address of
/// its choosing). Installs U-Boot, `mkimage` and `mke2fs` first if needed.
pub fn run_uboot(opts: &RunOptions) -> Result<RunOutcome> {
    let machine = opts.overrides.machine;
    if !machine.has_virtio_mmio() {
        anyhow::bail!(
            "--firmware u-boot boots Debian's U-Boot for QEMU's virt board (qemu_arm64) from a SATA disk on PCIe; --machine {} has neither: use --firmware direct (`image` still writes boot.scr for the real board)",
            machine.name()
        );
    }
    crate::deps::ensure_uboot()?;
    let packed = image::image(&ImageOptions {
        system: opts.system.clone(),
        overrides: opts.overrides,
        build: opts.build,
    })?;
    let disk = paths::out_dir().join("uboot-disk.img");
    crate::uboot::disk::build(&packed.boot_files, &disk)?;
    let mut args = image::qemu_args(
        opts.overrides.machine,
        packed.system.smp,
        packed.system.memory_mib,
        image::Boot::UBoot {
            firmware: Path::new(crate::deps::UBOOT_QEMU_ARM64),
            disk: &disk,
        },
        &crate::system::disks::host_disks(&packed.system),
        &crate::system::nics::host_nics(&packed.system),
    );
    args.extend(opts.clock_args().iter().map(|a| a.to_string()));
    launch(&args, &packed.dir, &packed.system.name, opts)
}

/// Boots a bare-metal ELF `kernel` on QEMU virt without virtualization (it starts at EL1)
/// with `cmdline` at the runtime's native command-line address; `opts.system` only names
/// the log. Used for the native baselines of benchmarks.
pub fn run_native(kernel: &Path, cmdline: &str, smp: u16, opts: &RunOptions) -> Result<RunOutcome> {
    let dir = paths::out_dir().join("native");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let line = dir.join("cmdline.bin");
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    std::fs::write(&line, bytes).with_context(|| format!("cannot write {}", line.display()))?;
    let mut args: Vec<String> = [
        "-M",
        "virt,gic-version=3",
        "-cpu",
        "max",
        "-smp",
        &smp.to_string(),
        "-m",
        "512",
        "-nographic",
        "-kernel",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(kernel.display().to_string());
    args.push("-device".into());
    args.push(format!(
        "loader,file={},addr={NATIVE_CMDLINE_ADDR:#x},force-raw=on",
        line.display()
    ));
    launch_native(args, &dir, opts)
}

/// Starts a native (no microvisor) QEMU with `args`, adding icount if asked; the log is
/// named after `opts.system`.
fn launch_native(mut args: Vec<String>, dir: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    args.extend(opts.clock_args().iter().map(|a| a.to_string()));
    let name = opts
        .system
        .file_stem()
        .map_or("native".into(), |s| s.to_string_lossy().into_owned());
    launch(&args, dir, &name, opts)
}

/// Starts QEMU with exactly `args` (plus icount if asked) in `dir`: for boots the system
/// packer does not make, such as another hypervisor. `opts.system` only names the log.
pub fn run_args(args: Vec<String>, dir: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    launch_native(args, dir, opts)
}

/// Boots a Linux `kernel` (raw arm64 `Image`) with `initrd` on QEMU virt without
/// virtualization, so Linux runs at EL1 on `smp` CPUs with `mem_mib` MiB and `append` as its
/// command line; `opts.system` only names the log. The native baseline of `bench boot`.
pub fn run_native_linux(
    kernel: &Path,
    initrd: &Path,
    append: &str,
    smp: u16,
    mem_mib: u32,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    run_native_linux_with(kernel, initrd, append, smp, mem_mib, &[], opts)
}

/// [`run_native_linux`] with `extra` QEMU arguments (devices, e.g. `bench blk`'s disk).
pub fn run_native_linux_with(
    kernel: &Path,
    initrd: &Path,
    append: &str,
    smp: u16,
    mem_mib: u32,
    extra: &[String],
    opts: &RunOptions,
) -> Result<RunOutcome> {
    let dir = paths::out_dir().join("native");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut args = crate::bench::native::linux_args(
        crate::machine::Machine::Virt,
        None,
        kernel,
        initrd,
        append,
        smp,
        mem_mib,
    );
    args.extend_from_slice(extra);
    launch_native(args, &dir, opts)
}

/// Where the `native` runtime build reads its command line (`board::NATIVE_CMDLINE_ADDR`:
/// 0x4000_0000 plus its 64 MiB of RAM).
pub const NATIVE_CMDLINE_ADDR: u64 = 0x4400_0000;

/// Extra time a bounded QEMU gets past the run's own timeout before `timeout` ends it.
const ORPHAN_GRACE: Duration = Duration::from_secs(60);

/// The command that starts QEMU. A run with a time limit starts it under coreutils'
/// `timeout`: if the process watching it dies without stopping it (a test that panics
/// leaves its boot thread behind when the test binary exits), QEMU still ends shortly after
/// the limit instead of running on and holding its disk images' locks. `timeout` passes
/// our SIGTERM on to QEMU, so [`stop`] works through it.
fn qemu_command(opts: &RunOptions) -> Command {
    let mut c = qemu_program(opts);
    c.envs(crate::machine::QEMU_ENV);
    c
}

/// [`qemu_command`] without its environment.
fn qemu_program(opts: &RunOptions) -> Command {
    match opts.timeout {
        Some(limit) if !opts.interactive => {
            let mut c = ended_with_parent("timeout");
            c.args(["-k", "5"])
                .arg(format!("{}s", (limit + ORPHAN_GRACE).as_secs()))
                .arg(crate::deps::QEMU);
            c
        }
        _ => Command::new(crate::deps::QEMU),
    }
}

/// util-linux's `setpriv` (essential on Debian and Ubuntu).
const SETPRIV: &str = "/usr/bin/setpriv";

/// `program` started so that the kernel sends it SIGTERM when the thread that started it
/// dies (a test binary exiting after a panic); `timeout` passes that on to QEMU, so the
/// machine stops at once instead of at its time limit and cannot hold the management socket
/// or the disk images the next test uses. Without `setpriv`, just `program`.
fn ended_with_parent(program: &str) -> Command {
    if !Path::new(SETPRIV).exists() {
        return Command::new(program);
    }
    let mut c = Command::new(SETPRIV);
    c.args(["--pdeathsig", "TERM", "--", program]);
    c
}

/// Starts QEMU with `args` in `dir` and watches its console (see [`run`]).
/// Extra QEMU arguments from `BULKHEAD_QEMU_DEBUG` (split at whitespace), for looking into a
/// failing boot without changing what the guests run: e.g. `-d int -D /tmp/ints.log`, which
/// under `-icount` leaves the virtual timeline as it was.
fn debug_args() -> Vec<String> {
    std::env::var("BULKHEAD_QEMU_DEBUG")
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn launch(args: &[String], dir: &Path, name: &str, opts: &RunOptions) -> Result<RunOutcome> {
    let log_path = new_log_path(name)?;
    let log =
        Arc::new(Mutex::new(File::create(&log_path).with_context(|| {
            format!("cannot create {}", log_path.display())
        })?));
    let mut child = qemu_command(opts)
        .args(args)
        .args(debug_args())
        .current_dir(dir)
        .stdin(if opts.interactive {
            Stdio::inherit()
        } else if opts.expect.has_input() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", crate::deps::QEMU))?;
    let mut stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    let readers = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| {
        let (tx, log, echo) = (tx.clone(), Arc::clone(&log), opts.echo);
        thread::spawn(move || pump(pipe, &tx, &log, echo))
    })
    .collect::<Vec<_>>();
    drop(tx);

    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut matcher = opts.expect.matcher();
    let watching = !opts.expect.is_empty();
    let mut open = readers.len();
    let outcome = loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(wait) {
            Ok(Msg::Line(line)) if watching => {
                send_input(&mut stdin, &matcher.input(&line));
                match matcher.line(&line) {
                    Event::Done => break Outcome::Matched,
                    Event::Forbidden(why) => break Outcome::Forbidden(why),
                    Event::None => {}
                }
            }
            Ok(Msg::Line(_)) => {}
            Ok(Msg::Eof) => {
                open -= 1;
                if open == 0 {
                    break Outcome::QemuExited(child.wait().ok().and_then(|s| s.code()));
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break Outcome::Timeout;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Outcome::QemuExited(child.wait().ok().and_then(|s| s.code()));
            }
        }
    };
    if !matches!(outcome, Outcome::QemuExited(_)) {
        stop(&mut child);
    }
    let mut captured = Vec::new();
    for r in readers {
        captured.extend(r.join().unwrap_or_default());
        captured.push(b'\n');
    }
    let _ = std::fs::copy(&log_path, paths::out_dir().join("console.log"));
    Ok(RunOutcome {
        outcome,
        log: String::from_utf8_lossy(&captured).into_owned(),
        log_path,
        waiting_for: matcher.waiting_for(),
    })
}

/// Writes guest console input to QEMU's stdin. Bytes go to the guest's UART as they are:
/// with a piped (non-terminal) stdin QEMU's `-nographic` multiplexer passes Ctrl-A through
/// (checked: three 0x01 bytes switch the microvisor's console focus once).
fn send_input(stdin: &mut Option<std::process::ChildStdin>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(s) = stdin.as_mut() {
        let _ = s.write_all(bytes).and_then(|()| s.flush());
    }
}

/// Copies a pipe to the log (and stdout), sends its lines; returns all its bytes.
fn pump(
    mut pipe: Box<dyn Read + Send>,
    tx: &mpsc::Sender<Msg>,
    log: &Mutex<File>,
    echo: bool,
) -> Vec<u8> {
    let mut all = Vec::new();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        all.extend_from_slice(chunk);
        if let Ok(mut f) = log.lock() {
            let _ = f.write_all(chunk);
        }
        if echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(chunk);
            let _ = out.flush();
        }
        for &b in chunk {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                let _ = tx.send(Msg::Line(text));
                line.clear();
            } else {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(Msg::Line(String::from_utf8_lossy(&line).into_owned()));
    }
    let _ = tx.send(Msg::Eof);
    all
}

/// Asks QEMU to quit (SIGTERM restores the terminal), then kills it after 2 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `target/bulkhead/logs/<system>-<unix seconds>[-n].log`, not yet existing.
fn new_log_path(system: &str) -> Result<PathBuf> {
    let dir = paths::logs_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let first = dir.join(format!("{system}-{ts}.log"));
    if !first.exists() {
        return Ok(first);
    }
    Ok((2..)
        .map(|n| dir.join(format!("{system}-{ts}-{n}.log")))
        .find(|p: &PathBuf| !Path::exists(p))
        .unwrap_or(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_run_is_bounded_even_if_its_watcher_dies() {
        let opts = RunOptions::test("x.toml", Expect::new(), Duration::from_secs(120));
        let c = qemu_command(&opts);
        let mut args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // Under `setpriv --pdeathsig TERM --` where util-linux has it.
        if c.get_program() == SETPRIV {
            assert_eq!(args[..3], ["--pdeathsig", "TERM", "--"]);
            args.drain(..3);
        } else {
            assert_eq!(c.get_program(), "timeout");
            args.insert(0, "timeout".into());
        }
        assert_eq!(args, ["timeout", "-k", "5", "180s", crate::deps::QEMU]);
        let interactive = RunOptions {
            interactive: true,
            ..opts
        };
        assert_eq!(qemu_command(&interactive).get_program(), crate::deps::QEMU);
    }

    #[test]
    fn the_clock_is_the_host_s_unless_a_benchmark_counts_instructions() {
        let test = RunOptions::test("x.toml", Expect::new(), Duration::from_secs(1));
        assert!(test.clock_args().is_empty());
        let bench = RunOptions::bench("x.toml", Expect::new(), Duration::from_secs(1), false);
        assert_eq!(
            bench.clock_args(),
            ["-icount", "shift=0,sleep=off", "-seed", "1"]
        );
        let io = RunOptions {
            icount_io: true,
            ..bench
        };
        assert_eq!(
            io.clock_args(),
            ["-icount", "shift=0,sleep=on", "-seed", "1"]
        );
        let realtime = RunOptions::realtime_test("x.toml", Expect::new(), Duration::from_secs(1));
        let args = realtime.clock_args();
        assert_eq!(args[..4], ICOUNT_ARGS);
        assert_eq!(args[4..], TICK_ARGS);
        assert_eq!(
            args[7],
            "filter-buffer,id=bulkhead-tick-timer,netdev=bulkhead-tick,interval=100"
        );
    }
}
