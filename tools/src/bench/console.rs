//! Driving a benchmark's running system over dom0's management port: reading the console
//! history and typing lines into domains' consoles once their triggers appear, while QEMU
//! runs on another thread.

use crate::ctl::client::Client;
use crate::ctl::default_socket;
use crate::qemu::{self, Outcome, RunOptions, RunOutcome};
use anyhow::{anyhow, bail, Result};
use protocol::mgmt::{DomainRef, Request, Response};
use std::time::{Duration, Instant};

/// How long typing may wait for its triggers in all.
const TYPING_TIMEOUT: Duration = Duration::from_secs(600);

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
pub fn boot_typing(label: &str, opts: &RunOptions, steps: &[Step]) -> Result<RunOutcome> {
    boot_driving(label, opts, |done| type_steps(steps, done)).map(|(out, _)| out)
}

/// Boots `opts` under the microvisor (with `label` on the spinner) while `drive` works the
/// running system (it is told when the boot has ended); the run's outcome and what `drive`
/// returned. A failure of `drive` is the error only when the boot nevertheless matched:
/// otherwise the boot's own report says more, and `drive`'s result is `T::default()`.
pub fn boot_driving<T: Default>(
    label: &str,
    opts: &RunOptions,
    drive: impl FnOnce(&dyn Fn() -> bool) -> Result<T>,
) -> Result<(RunOutcome, T)> {
    let mut result = T::default();
    let out = super::boot_with_spinner(label, || {
        std::thread::scope(|s| {
            let boot = s.spawn(|| qemu::run(opts));
            let driven = drive(&|| boot.is_finished());
            let out = boot
                .join()
                .map_err(|_| anyhow!("the QEMU thread panicked"))??;
            match driven {
                Ok(t) => result = t,
                Err(e) if out.outcome == Outcome::Matched => return Err(e),
                Err(e) => eprintln!("driving the run: {e:#}"),
            }
            Ok(out)
        })
    })?;
    Ok((out, result))
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
    let deadline = Instant::now() + TYPING_TIMEOUT;
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
        type_line(&mut client, &s.domain, &s.line)?;
    }
    Ok(())
}

/// Types `line` (as given: add its newline) on domain `domain`'s console.
pub fn type_line(client: &mut Client, domain: &str, line: &str) -> Result<()> {
    let r = client.call(&Request::ConsoleInput {
        domain: DomainRef::Name(domain.into()),
        bytes: line.as_bytes().to_vec(),
    })?;
    if r != Response::Done {
        bail!("console input answered {r:?}");
    }
    Ok(())
}

/// The console history read incrementally: dom0's ring keeps only its latest output, which a
/// long run overruns, so [`history`] alone would forget early lines (dom0's reports).
#[derive(Default)]
pub struct Tail {
    from: u64,
    text: String,
}

impl Tail {
    /// Reads what is new; the whole history since the first read. Output the ring dropped
    /// between two reads is an error (the caller counts lines in it).
    pub fn poll(&mut self, c: &mut Client) -> Result<&str> {
        loop {
            match c.call(&Request::Dmesg { from: self.from })? {
                Response::Log { bytes, start, end } => {
                    if !self.text.is_empty() && start != self.from {
                        bail!(
                            "console output {}..{start} was lost between reads",
                            self.from
                        );
                    }
                    self.from = start + bytes.len() as u64;
                    self.text.push_str(&String::from_utf8_lossy(&bytes));
                    if bytes.is_empty() || self.from >= end {
                        return Ok(&self.text);
                    }
                }
                other => bail!("dmesg answered {other:?}"),
            }
        }
    }
}
