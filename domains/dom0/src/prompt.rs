//! dom0's console prompt: the management verbs typed on dom0's own console (boards without
//! a host link). A line becomes the same [`Request`] the host CLI sends; the reply is
//! printed as text.

use crate::mgmt::{serve, DomainOps};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::lock_holds::LockHolds;
use protocol::mgmt::{state_word, DomainRef, Request, Response};

/// The help text.
pub const HELP: &str =
    "commands: list, info, pause NAME, unpause NAME, destroy NAME, restart NAME, help";

/// The request a typed line asks for, or the text to print instead.
pub fn parse(line: &str) -> Result<Request, String> {
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or("");
    let domain = words.next().map(DomainRef::parse);
    if words.next().is_some() {
        return Err(format!("too many words; {HELP}"));
    }
    let need = |d: Option<DomainRef>| d.ok_or_else(|| format!("{verb} needs a domain name"));
    Ok(match verb {
        "list" => Request::List,
        "info" => Request::Info,
        "pause" => Request::Pause {
            domain: need(domain)?,
        },
        "unpause" => Request::Unpause {
            domain: need(domain)?,
        },
        "destroy" => Request::Destroy {
            domain: need(domain)?,
        },
        "restart" => Request::Restart {
            domain: need(domain)?,
        },
        "help" | "" => return Err(HELP.into()),
        other => return Err(format!("unknown command `{other}`; {HELP}")),
    })
}

/// Runs one typed line; returns the lines to print.
pub fn run(line: &str, ops: &mut impl DomainOps) -> Vec<String> {
    let req = match parse(line) {
        Ok(r) => r,
        Err(text) => return alloc::vec![text],
    };
    let hz = ops.counter_hz().max(1);
    match serve(&req, ops) {
        Response::Domains(rows) => {
            let mut out = alloc::vec![String::from(
                "Name             ID   Mem VCPUs State      Time(s)"
            )];
            for r in rows {
                out.push(format!(
                    "{:<16} {:>2} {:>5} {:>5} {:<10} {:>7}",
                    r.name,
                    r.id,
                    r.mem_mib,
                    r.vcpus,
                    state_word(&r.state),
                    r.cpu_ticks / hz
                ));
            }
            out
        }
        Response::System(s) => {
            let mut out = alloc::vec![format!(
                "domains {} free {} MiB (largest block {} MiB) counter {} Hz protocol {}.{}",
                s.domains,
                s.free_pages / 256,
                s.largest_free_pages / 256,
                s.counter_hz,
                s.protocol_version.major,
                s.protocol_version.minor
            )];
            if let Response::LockHolds(h) = serve(&Request::LockHolds { reset: false }, ops) {
                out.push(holds_line(&h));
            }
            out
        }
        Response::Done => alloc::vec![format!("{}: done", req.verb())],
        Response::Error(e) => alloc::vec![format!("{}: {e}", req.verb())],
        other => alloc::vec![format!("{other:?}")],
    }
}

/// The lock-hold record in one line: passes, and the longest hold of any CPU.
pub fn holds_line(h: &LockHolds) -> String {
    let since = if h.since_reset { "reset" } else { "boot" };
    let mut line = format!("lock holds: {} passes since {since}", h.passes());
    if let Some((cpu, l)) = h.longest() {
        line.push_str(&format!(
            ", longest {}.{} us on cpu{cpu}: {}",
            l.ns / 1000,
            l.ns % 1000 / 100,
            l.pass
        ));
    }
    line
}

/// Collects typed bytes into lines (CR or LF ends one).
#[derive(Default)]
pub struct LineReader {
    buf: String,
}

impl LineReader {
    /// Feeds bytes; returns the complete lines.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            match b {
                b'\r' | b'\n' if !self.buf.is_empty() => {
                    lines.push(core::mem::take(&mut self.buf));
                }
                b'\r' | b'\n' => {}
                0x08 | 0x7f => {
                    self.buf.pop();
                }
                b if (0x20..0x7f).contains(&b) && self.buf.len() < 120 => self.buf.push(b as char),
                _ => {}
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_the_hosts_requests() {
        assert_eq!(parse("list"), Ok(Request::List));
        assert_eq!(
            parse("  pause rtos "),
            Ok(Request::Pause {
                domain: DomainRef::Name("rtos".into())
            })
        );
        assert_eq!(
            parse("destroy 3"),
            Ok(Request::Destroy {
                domain: DomainRef::Id(3)
            })
        );
        assert!(parse("pause").unwrap_err().contains("needs a domain"));
        assert!(parse("frobnicate")
            .unwrap_err()
            .contains("unknown command `frobnicate`"));
        assert!(parse("pause a b").unwrap_err().contains("too many words"));
    }

    #[test]
    fn line_reader_handles_cr_backspace_and_junk() {
        let mut r = LineReader::default();
        assert!(r.feed(b"lis").is_empty());
        assert_eq!(r.feed(b"tx\x7f\r"), alloc::vec![String::from("list")]);
        assert_eq!(
            r.feed(b"\x1b\x01info\n\r"),
            alloc::vec![String::from("info")]
        );
    }
}
