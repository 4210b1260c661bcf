//! `ctl console NAME`: follows one domain's lines in the microvisor's console history and
//! sends what you type to it through dom0.

use super::client::Client;
use anyhow::{bail, Result};
use protocol::mgmt::{DomainRef, Request, Response};
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Ctrl-]: detaches, as `xl console` does.
const DETACH: u8 = 0x1d;
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

/// Attaches to `domain`'s console until detach or end of input.
pub fn attach(c: &mut Client, domain: &DomainRef, out: &mut dyn Write) -> Result<()> {
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
    // Start at the end of the history: show what comes from now on.
    let mut from = match c.call(&Request::Dmesg { from: u64::MAX })? {
        Response::Log { end, .. } => end,
        _ => bail!("unexpected reply from dom0 to dmesg"),
    };
    eprintln!("bulkhead: connected to {name}'s console; detach with Ctrl-] then Enter, or Ctrl-D");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_input(tx));
    let mut partial = String::new();
    loop {
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

fn read_input(tx: mpsc::Sender<Input>) {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
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
