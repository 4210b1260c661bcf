//! `ctl console NAME`: a guest with a PV console (Linux's hvc0) gets a real terminal
//! (`terminal`); for our own domains, whose consoles are line-based, it follows the
//! domain's lines in the microvisor's console history and sends what you type a line at a
//! time through dom0.

use super::client::Client;
use anyhow::{bail, Result};
use protocol::mgmt::{DomainRef, Request, Response};
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

use super::terminal::{self, DETACH};
/// How often the console history is polled.
const POLL: Duration = Duration::from_millis(200);

/// What the input thread hands over.
enum Input {
    Line(Vec<u8>),
    Detach,
}

/// The text of a console-history line that belongs to `name` (`[name] text`), if it does.
pub fn own_line<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.strip_prefix('[')?
        .strip_prefix(name)?
        .strip_prefix("] ")
}

/// Attaches to `domain`'s console until detach or end of input, showing what it prints
/// from now on.
pub fn attach(c: &mut Client, domain: &DomainRef, out: &mut dyn Write) -> Result<()> {
    attach_since(c, domain, None, out)
}

/// Attaches to `domain`'s console, showing its lines from console-history offset `since`
/// (`None`: from now on). `ctl create -c` passes the offset it read before creating the
/// domain, so the first lines of the boot are not lost.
pub fn attach_since(
    c: &mut Client,
    domain: &DomainRef,
    since: Option<u64>,
    out: &mut dyn Write,
) -> Result<()> {
    attach_with(c, domain, since, Box::new(std::io::stdin()), out)
}

/// [`attach_since`] with keys read from `input` instead of standard input.
pub fn attach_with(
    c: &mut Client,
    domain: &DomainRef,
    since: Option<u64>,
    input: Box<dyn std::io::Read + Send>,
    out: &mut dyn Write,
) -> Result<()> {
    let name = match c.call(&Request::List)? {
        Response::Domains(rows) => rows
            .into_iter()
            .find(|r| match domain {
                DomainRef::Name(n) => r.name == *n,
                DomainRef::Id(id) => r.id == *id,
            })
            .map(|r| r.name),
        _ => bail!("unexpected reply from dom0 to list"),
    };
    let Some(name) = name else {
        bail!("console {domain}: no such domain");
    };
    // A domain just created (`create -c`) has no PV console output until its kernel's hvc
    // driver starts: give it a few seconds before settling for lines.
    let tries = if since.is_some() { 25 } else { 1 };
    let mut raw = None;
    for _ in 0..tries {
        raw = terminal::output_end(c, &name)?;
        if raw.is_some() {
            break;
        }
        if tries > 1 {
            std::thread::sleep(POLL);
        }
    }
    if let Some(end) = raw {
        // A new domain's raw output starts at 0: `-c` shows it from its first byte.
        let from = if since.is_some() { 0 } else { end };
        return terminal::session(c, &name, from, input, out);
    }
    // Start at the end of the history unless told otherwise: show what comes from now on.
    let mut from = match since {
        Some(offset) => offset,
        None => history_end(c)?,
    };
    eprintln!("bulkhead: connected to {name}'s console; detach with Ctrl-] then Enter, or Ctrl-D");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_lines(input, tx));
    let mut partial = String::new();
    loop {
        // Between polls dom0's port is free for other clients (`ctl list` elsewhere).
        c.release();
        match rx.recv_timeout(POLL) {
            Ok(Input::Line(bytes)) => {
                let req = Request::ConsoleInput {
                    domain: DomainRef::Name(name.clone()),
                    bytes,
                };
                c.call(&req)?;
            }
            Ok(Input::Detach) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let Response::Log { bytes, start, .. } = c.call(&Request::Dmesg { from })? else {
            bail!("unexpected reply from dom0 to dmesg");
        };
        from = start + bytes.len() as u64;
        partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            if let Some(text) = own_line(line.trim_end_matches(['\r', '\n']), &name) {
                writeln!(out, "{text}")?;
            }
        }
        out.flush()?;
    }
}

/// Bytes written to the console history so far: where "from now on" starts.
pub fn history_end(c: &mut Client) -> Result<u64> {
    match c.call(&Request::Dmesg { from: u64::MAX })? {
        Response::Log { end, .. } => Ok(end),
        _ => bail!("unexpected reply from dom0 to dmesg"),
    }
}

fn read_lines(input: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<Input>) {
    let mut lock = std::io::BufReader::new(input);
    loop {
        let mut line = Vec::new();
        match lock.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Detach);
                return;
            }
            Ok(_) if line.contains(&DETACH) => {
                let _ = tx.send(Input::Detach);
                return;
            }
            Ok(_) => {
                // Terminals send CR for Enter; so does our RTOS shell expect.
                if line.last() == Some(&b'\n') {
                    line.pop();
                    line.push(b'\r');
                }
                if tx.send(Input::Line(line)).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::own_line;

    #[test]
    fn only_the_domains_own_lines_are_shown() {
        assert_eq!(own_line("[rtos] ready", "rtos"), Some("ready"));
        assert_eq!(own_line("[rtos2] ready", "rtos"), None);
        assert_eq!(own_line("bulkhead: microvisor up", "rtos"), None);
        assert_eq!(own_line("[dom0] started rtos (d1)", "rtos"), None);
    }
}
