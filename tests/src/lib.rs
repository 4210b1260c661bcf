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

pub use bulkhead_tools::markers::Expect;

/// Hard limit for one boot.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Console lines shown when a test fails.
pub const TAIL_LINES: usize = 40;

static QEMU_LOCK: Mutex<()> = Mutex::new(());

/// `tests/systems/<name>.toml`.
pub fn system(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("systems")
        .join(format!("{name}.toml"))
}

/// Boots `tests/systems/<name>.toml` until `expect` is met; panics with the log path and
/// its last lines otherwise.
pub fn boot_expect(name: &str, expect: Expect) -> RunOutcome {
    let _guard = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = qemu::run(&RunOptions::test(system(name), expect, BOOT_TIMEOUT))
        .unwrap_or_else(|e| panic!("cannot boot {name}: {e:#}"));
    assert!(
        out.outcome == Outcome::Matched,
        "system `{name}`: {}",
        out.report(TAIL_LINES)
    );
    out
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
            "{what}: no {needle}; history tail:\n{}",
            h.lines().rev().take(60).collect::<Vec<_>>().join("\n")
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
