//! `ctl console NAME` as a real terminal for a guest with a PV console (Linux's hvc0): the
//! local terminal is put in raw mode, every key goes to the guest as it is typed (Ctrl-C,
//! arrows and other escape sequences included), the guest's raw output (prompts without a
//! newline, carriage returns, colours) is shown as it comes, and Ctrl-] detaches at once,
//! as `xl console` does. The terminal is restored however the session ends.

use super::client::{request_error, Client};
use anyhow::{bail, Result};
use protocol::mgmt::{DomainRef, MgmtError, Request, Response};
use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Ctrl-]: detaches, as `xl console` does.
pub const DETACH: u8 = 0x1d;
/// How often the guest's output is polled (and typed keys are sent, if none came sooner).
const POLL: Duration = Duration::from_millis(100);

/// What the input thread hands over.
enum Input {
    Bytes(Vec<u8>),
    Detach,
}

/// The keys of one read up to the detach key, and whether it came.
pub fn split_detach(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.iter().position(|&b| b == DETACH) {
        Some(at) => (&bytes[..at], true),
        None => (bytes, false),
    }
}

/// Raw mode on standard input while it lives, if that is a terminal.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return Self(None);
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return Self(None);
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if tcsetattr(&stdin, OptionalActions::Now, &raw).is_err() {
            return Self(None);
        }
        Self(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// Whether `name` has raw console output (a PV console): where it ends now, if it has.
pub fn output_end(c: &mut Client, name: &str) -> Result<Option<u64>> {
    let req = Request::ConsoleOutput {
        domain: DomainRef::Name(name.to_string()),
        from: u64::MAX,
    };
    match c.ask(&req)? {
        Ok(Response::Log { end, .. }) => Ok(Some(end)),
        // Line-based (our own domains), or a dom0 older than 1.10 (which cannot decode it).
        Err(MgmtError::NotSupported { .. } | MgmtError::BadRequest) => Ok(None),
        Err(e) => Err(request_error(&req, &e)),
        Ok(_) => bail!("unexpected reply from dom0 to console"),
    }
}

/// Runs the terminal session on `name`'s raw output from offset `from`, with keys read
/// from `input` (standard input for the CLI), until Ctrl-] or the end of the input.
pub fn session(
    c: &mut Client,
    name: &str,
    mut from: u64,
    input: Box<dyn Read + Send>,
    out: &mut dyn Write,
) -> Result<()> {
    let _raw = RawMode::enter();
    // Raw mode: the terminal no longer turns \n into \r\n for us.
    eprint!("bulkhead: connected to {name}'s console; detach with Ctrl-]\r\n");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_keys(input, tx));
    let domain = DomainRef::Name(name.to_string());
    loop {
        // Between polls dom0's port is free for other clients (`ctl list` elsewhere).
        c.release();
        let mut detach = false;
        let mut typed = Vec::new();
        match rx.recv_timeout(POLL) {
            Ok(Input::Bytes(b)) => typed = b,
            Ok(Input::Detach) | Err(mpsc::RecvTimeoutError::Disconnected) => detach = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // Keys typed meanwhile go in the same request.
        while let Ok(more) = rx.try_recv() {
            match more {
                Input::Bytes(b) => typed.extend(b),
                Input::Detach => detach = true,
            }
        }
        if !typed.is_empty() {
            let req = Request::ConsoleInput {
                domain: domain.clone(),
                bytes: typed,
            };
            c.call(&req)?;
        }
        if detach {
            eprint!("\r\nbulkhead: detached from {name}'s console\r\n");
            return Ok(());
        }
        loop {
            let req = Request::ConsoleOutput {
                domain: domain.clone(),
                from,
            };
            let Response::Log { bytes, start, end } = c.call(&req)? else {
                bail!("unexpected reply from dom0 to console");
            };
            out.write_all(&bytes)?;
            from = start + bytes.len() as u64;
            if bytes.is_empty() || from >= end {
                break;
            }
        }
        out.flush()?;
    }
}

/// Reads keys as they come and hands them over, up to the detach key or the end.
fn read_keys(mut input: Box<dyn Read + Send>, tx: mpsc::Sender<Input>) {
    let mut buf = [0u8; 256];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Detach);
                return;
            }
            Ok(n) => n,
        };
        let (keys, detach) = split_detach(&buf[..n]);
        if !keys.is_empty() && tx.send(Input::Bytes(keys.to_vec())).is_err() {
            return;
        }
        if detach {
            let _ = tx.send(Input::Detach);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_bracket_detaches_and_every_other_key_is_sent() {
        // Ctrl-C, an arrow key's escape sequence and Enter are the guest's.
        let keys = [0x03, 0x1b, b'[', b'A', b'\r'];
        assert_eq!(split_detach(&keys), (&keys[..], false));
        // Keys before Ctrl-] still go; what follows it is not sent.
        assert_eq!(split_detach(b"ls\x1dreboot\r"), (&b"ls"[..], true));
        assert_eq!(split_detach(&[DETACH]), (&[][..], true));
    }
}
