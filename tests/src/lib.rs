//! Helpers for the QEMU integration tests: boot one system from `tests/systems/`, wait for
//! markers, and fail with the log path and the console's last lines.
//!
//! Boots are serialized (one image directory, two cores): run with `--test-threads=1`, and a
//! lock makes parallel runs safe anyway. The images must have been built by
//! `cargo bulkhead build` (`cargo bulkhead test` does it); tests never run cargo themselves.
#![forbid(unsafe_code)]

use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::{self, Outcome, RunOptions, RunOutcome};
use protocol::mgmt::{Request, Response};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod flood;
pub mod lock_holds;
pub mod rtos_load;
pub mod rtos_reports;
mod systems;
pub mod terminal;
pub use systems::{check_rtos_placement, disk_xvda, PlacementError, SystemToml};

pub use bulkhead_tools::machine::Machine;
pub use bulkhead_tools::markers::Expect;

/// Hard limit for one boot.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Console lines shown when a test fails.
pub const TAIL_LINES: usize = 40;

/// A regex for the lines of Linux console `console` (a regex such as `linux\d`) that mean
/// the guest failed: a panic, an Oops, a `BUG:`, or any of `extra`. Not the soft-lockup
/// watchdog's "BUG: soft lockup" warning: under TCG on a busy 2-core host a vCPU thread
/// the host does not run for 20 s trips it, and the kernel carries on. A vCPU the
/// hypervisor really lost still fails the test, by never finishing its work.
pub fn linux_failures(console: &str, extra: &[&str]) -> String {
    let mut alternatives = vec!["Kernel panic", "Oops", "BUG: ([^s]|s[^o]|so[^f])"];
    alternatives.extend_from_slice(extra);
    format!(r"\[{console}\] .*({})", alternatives.join("|"))
}

static QEMU_LOCK: Mutex<()> = Mutex::new(());

/// A system booting in QEMU on a thread of its own, while the test drives it through the
/// management port.
pub struct Boot(std::thread::JoinHandle<RunOutcome>);

impl Boot {
    /// Starts QEMU with `options`; it runs until its markers are met or its time is up.
    pub fn start(options: RunOptions) -> Self {
        Self(std::thread::spawn(move || {
            qemu::run(&options).unwrap_or_else(|e| panic!("cannot boot: {e:#}"))
        }))
    }

    /// As [`Boot::start`], booting through Debian's U-Boot from a boot disk
    /// (`run --firmware u-boot`).
    pub fn start_uboot(options: RunOptions) -> Self {
        Self(std::thread::spawn(move || {
            qemu::run_uboot(&options).unwrap_or_else(|e| panic!("cannot boot: {e:#}"))
        }))
    }

    /// Waits for QEMU to end; panics with the log's path and last lines unless every
    /// marker was met. `what` names the system in that message.
    pub fn finish(self, what: &str) -> RunOutcome {
        let out = self.0.join().expect("boot thread");
        assert!(
            out.outcome == Outcome::Matched,
            "{what}: {}",
            out.report(TAIL_LINES)
        );
        out
    }
}

/// `tests/systems/<name>.toml`.
pub fn system(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("systems")
        .join(format!("{name}.toml"))
}

/// The default system's boot, after whatever `before` awaits: the microvisor up, then dom0
/// starting every domain, the RTOS ready and the stock Linux guest in userspace with both
/// vCPUs, then `uptimes` RTOS uptime reports; the RTOS and Linux must not stop.
pub fn default_system_boots(before: Expect, uptimes: usize) -> Expect {
    let uptime = r"\[rtos\] uptime \d+s ticks \d+";
    let mut e = before
        .then("bulkhead: microvisor up")
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] all domains started",
                r"\[rtos\] ready",
                r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
            ])
        })
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(rtos\) stopped"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(linux\) stopped"))
        .expect("markers");
    for _ in 0..uptimes {
        e = e.then(uptime).expect("marker");
    }
    e
}

/// Boots `tests/systems/<name>.toml` until `expect` is met; panics with the log path and
/// its last lines otherwise.
pub fn boot_expect(name: &str, expect: Expect) -> RunOutcome {
    let _guard = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = qemu::run(&RunOptions::test(system(name), expect, BOOT_TIMEOUT));
    matched(name, out)
}

/// Boots the system file `system` on QEMU machine `machine` until `expect` is met; panics
/// with the log path and its last lines otherwise.
pub fn boot_machine_expect(
    machine: Machine,
    system: &std::path::Path,
    expect: Expect,
) -> RunOutcome {
    let _guard = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut options = RunOptions::test(system, expect, BOOT_TIMEOUT);
    options.overrides.machine = machine;
    let name = format!("{} on --machine {}", system.display(), machine.name());
    matched(&name, qemu::run(&options))
}

/// A boot's outcome, which must have met its markers; panics with `name`, the log path and
/// its last lines otherwise.
fn matched<E: std::fmt::Display>(name: &str, out: Result<RunOutcome, E>) -> RunOutcome {
    let out = out.unwrap_or_else(|e| panic!("cannot boot {name}: {e:#}"));
    assert!(
        out.outcome == Outcome::Matched,
        "system `{name}`: {}",
        out.report(TAIL_LINES)
    );
    out
}

/// Packs `tests/systems/<name>.toml`, lets `edit` change the image directory and QEMU's
/// arguments (e.g. load the microvisor elsewhere), then boots it until `expect` is met;
/// panics with the log path and its last lines otherwise.
pub fn boot_edited_expect(
    name: &str,
    expect: Expect,
    edit: impl FnOnce(&std::path::Path, &mut Vec<String>),
) -> RunOutcome {
    let _guard = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let packed = bulkhead_tools::image::image(&bulkhead_tools::image::ImageOptions {
        system: system(name),
        overrides: Default::default(),
        build: false,
    })
    .unwrap_or_else(|e| panic!("cannot pack {name}: {e:#}"));
    let mut args = packed.qemu_args.clone();
    edit(&packed.dir, &mut args);
    let out = qemu::run_args(
        args,
        &packed.dir,
        &RunOptions::test(system(name), expect, BOOT_TIMEOUT),
    );
    matched(name, out)
}

/// Connects to dom0's management port once it answers (the system is still booting at
/// first); panics after two minutes.
pub fn connect() -> Client {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // dom0 answers nothing while the microvisor rebuilds or scrubs a domain for it (a
        // 256 MiB Linux takes seconds under TCG, more on a loaded host): allow for it.
        match Client::connect(&default_socket(), Duration::from_secs(30)) {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("management port never answered: {e:#}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The console history so far (what `ctl dmesg` shows and `ctl console` follows).
pub fn history(c: &mut Client) -> String {
    let (mut from, mut text) = (0, Vec::new());
    loop {
        match c.call(&Request::Dmesg { from }).expect("dmesg") {
            Response::Log { bytes, start, end } => {
                from = start + bytes.len() as u64;
                text.extend_from_slice(&bytes);
                if bytes.is_empty() || from >= end {
                    return String::from_utf8_lossy(&text).into_owned();
                }
            }
            other => panic!("dmesg answered {other:?}"),
        }
    }
}

/// Polls the console history until `done` holds for it; panics after `secs` seconds with
/// `what`, the awaited `needle` and the history's last lines. Returns the history.
pub fn wait_until(
    c: &mut Client,
    done: impl Fn(&str) -> bool,
    needle: &str,
    what: &str,
    secs: u64,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = history(c);
        if done(&h) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no {needle}; history tail:\n{}\n{}",
            h.lines().rev().take(60).collect::<Vec<_>>().join("\n"),
            system_state(c)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Types `line` (and Enter) on domain `domain`'s console through the management port.
pub fn type_line(c: &mut Client, domain: &str, line: &str) {
    let r = c
        .call(&Request::ConsoleInput {
            domain: protocol::mgmt::DomainRef::Name(domain.into()),
            bytes: format!("{line}\n").into_bytes(),
        })
        .expect("console input");
    assert_eq!(r, Response::Done);
}

/// Asks Linux guest `domain` (after running `first`) for its online CPUs until they are
/// `want` (its CPU-hotplug watcher acts asynchronously); panics after 90 s.
pub fn wait_until_online(c: &mut Client, domain: &str, want: &str, first: &str) {
    let marker = format!("[{domain}] ONLINE={want}\n");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        type_line(
            c,
            domain,
            &format!("{first}echo ONLINE=$(cat /sys/devices/system/cpu/online)"),
        );
        std::thread::sleep(Duration::from_secs(2));
        let h = history(c);
        if h.contains(&marker) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "CPUs online never became {want}; history tail:\n{}",
            history_tail(&h)
        );
    }
}

/// `target/bulkhead/<name>`, created empty: where a test writes its system and disk images
/// (kept after the run for the log's sake, removed at the next run's start so that a file
/// an earlier run left cannot stand in for one this run forgot to write).
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bulkhead")
        .join(name);
    match std::fs::remove_dir_all(&d) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            panic!("cannot empty {}: {e}", d.display())
        }
        _ => {}
    }
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Waits (at most `secs`) until the console history contains `needle`; see [`wait_until`].
pub fn wait_for_text(c: &mut Client, needle: &str, what: &str, secs: u64) -> String {
    wait_until(
        c,
        |h| h.contains(needle),
        &format!("{needle:?}"),
        what,
        secs,
    )
}

/// Waits (at most `secs`) until the console history contains `needle` `n` times in all.
pub fn wait_count(c: &mut Client, needle: &str, n: usize, what: &str, secs: u64) -> String {
    wait_until(
        c,
        |h| h.matches(needle).count() >= n,
        &format!("{needle:?} x{n}"),
        what,
        secs,
    )
}

/// The last 60 lines of a console history, for a failure message.
pub fn history_tail(h: &str) -> String {
    let mut lines: Vec<&str> = h.lines().rev().take(60).collect();
    lines.reverse();
    lines.join("\n")
}

/// What a wait that timed out adds to its message: every vCPU's state, CPU time and exits
/// (`ctl vcpu-list`, twice: the counts are published without the lock, every 100 ms to a
/// second, so exits that stand still across the readings point at a vCPU that stopped) and
/// the lock's passes by reason and INTID (`ctl info`).
/// Best effort: a management port that does not answer is said so, not a second panic.
fn system_state(c: &mut Client) -> String {
    let mut out = String::from("system state at the timeout:\n");
    for words in [&["vcpu-list"][..], &["info"], &["vcpu-list"]] {
        match try_ctl(c, words) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("ctl {words:?}: {e:#}\n")),
        }
    }
    out
}

/// `cargo bulkhead ctl WORDS` as a user runs it, on the default socket; its standard
/// output. `c` lets go of the port first (QEMU serves one connection at a time; `c`
/// reconnects at its next call).
pub fn ctl(c: &mut Client, words: &[&str]) -> String {
    try_ctl(c, words).unwrap_or_else(|e| panic!("ctl {words:?}: {e:#}"))
}

/// [`ctl`], with its error returned.
fn try_ctl(c: &mut Client, words: &[&str]) -> anyhow::Result<String> {
    c.release();
    let args = bulkhead_tools::ctl::CtlArgs::from_words(words).expect("ctl words");
    let mut out = Vec::new();
    bulkhead_tools::ctl::run(
        &args,
        &bulkhead_tools::ctl::default_socket(),
        bulkhead_tools::ctl::client::REPLY_TIMEOUT,
        false,
        &mut out,
    )?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

/// Sends the request whose audit line ends the boot (its console marker is the test's last
/// one): QEMU stops as soon as dom0 prints it, so the reply may never arrive. A reply must
/// be `Done`; a connection closed under it is the expected end; any other error fails.
pub fn last_call(c: &mut Client, req: &Request) {
    match c.call(req) {
        Ok(r) => assert_eq!(r, Response::Done, "{req:?}"),
        Err(e) => assert!(
            format!("{e:#}").contains("closed the management connection"),
            "{req:?}: {e:#}"
        ),
    }
}

/// Drives three lives of the Linux guest `linux` (its console prints the userspace marker
/// at each boot): the first boot, a restart by its own `reboot` (its frontends close first),
/// and one by the host's `ctl restart` (they never close). `life(c, n)` runs in each life
/// `n` = 1, 2, 3; the guest is powered off at the end.
pub fn three_lives(c: &mut Client, mut life: impl FnMut(&mut Client, u32)) {
    let up = "[linux] BULKHEAD-LINUX-USERSPACE";
    wait_count(c, up, 1, "first boot", 420);
    life(c, 1);
    type_line(c, "linux", "reboot");
    wait_count(c, up, 2, "boot after reboot", 420);
    life(c, 2);
    let r = c
        .call(&Request::Restart {
            domain: protocol::mgmt::DomainRef::Name("linux".into()),
        })
        .expect("restart");
    assert_eq!(r, Response::Done);
    wait_count(c, up, 3, "boot after ctl restart", 420);
    life(c, 3);
    type_line(c, "linux", "poweroff -f");
}

/// Domain `domain`'s vbds as dom0 sees them: (backend state, frontend state) per vbd.
pub fn vbd_states(c: &mut Client, domain: &str) -> Vec<(u8, u8)> {
    match c
        .call(&Request::Vbds {
            domain: protocol::mgmt::DomainRef::Name(domain.into()),
        })
        .expect("vbds")
    {
        Response::Vbds(rows) => rows
            .iter()
            .map(|r| (r.backend_state, r.frontend_state))
            .collect(),
        other => panic!("vbds answered {other:?}"),
    }
}

/// The word printed right after `key` on the last history line that has it.
pub fn value_after(history: &str, key: &str) -> String {
    let line = history
        .lines()
        .rev()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no {key} in the history"));
    let at = line.find(key).expect("the line has the key") + key.len();
    line[at..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Brings Linux guest `domain`'s `eth0` up with busybox `udhcpc` and the event script the
/// guest image carries (the user's own path); returns the IPv4 address it got.
pub fn dhcp_address(c: &mut Client, domain: &str) -> String {
    type_line(
        c,
        domain,
        "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; echo DHCP-RC=$? ADDR=$(ip -4 -o addr show eth0 | grep -o 'inet [0-9.]*' | cut -d' ' -f2)",
    );
    let h = wait_for_text(c, &format!("[{domain}] DHCP-RC="), "dhcp", 240);
    assert!(
        h.contains(&format!("[{domain}] DHCP-RC=0 ")),
        "{domain}: udhcpc failed\n{h}"
    );
    let addr = value_after(&h, &format!("[{domain}] DHCP-RC=0 ADDR="));
    assert!(
        addr.starts_with("10.0.2."),
        "{domain}: address {addr:?}\n{h}"
    );
    addr
}

#[cfg(test)]
mod tests {
    use super::linux_failures;
    use regex::Regex;

    #[test]
    fn linux_failures_are_every_bug_but_the_soft_lockup_warning() {
        let re = Regex::new(&linux_failures(r"linux\d", &["I/O error"])).unwrap();
        for bad in [
            "[linux1] [ 3.1] Kernel panic - not syncing: VFS",
            "[linux2] Internal error: Oops: 96000004",
            "[linux1] BUG: scheduling while atomic: swapper/0",
            "[linux1] BUG: sleeping function called from invalid context",
            "[linux1] BUG: spinlock bad magic on CPU#0",
            "[linux1] BUG: unable to handle page fault",
            "[linux1] blk: I/O error, dev xvda",
        ] {
            assert!(re.is_match(bad), "{bad}");
        }
        for fine in [
            "[linux1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]",
            "[linux1] ready",
            "[rtos] BUG: not a Linux line",
        ] {
            assert!(!re.is_match(fine), "{fine}");
        }
    }
}
