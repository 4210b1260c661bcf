//! The host end of a management session: connect to dom0's port, say hello, then one
//! framed request and one framed response at a time.
//!
//! QEMU's socket backend serves one connection at a time and queues the others, so a
//! client that polls for long (`ctl console`, `ctl top`) [`Client::release`]s the
//! connection between polls and the next call opens a new session: a `ctl list` in
//! another terminal gets its turn instead of timing out.

use anyhow::{anyhow, bail, Result};
use protocol::control::Version;
use protocol::mgmt::{
    decode, encode, FrameDecoder, FrameError, MgmtError, Request, Response, MGMT_VERSION,
};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long dom0 may take to answer one request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open management session.
#[derive(Debug)]
pub struct Client {
    /// `None` while released: the next call connects again.
    stream: Option<UnixStream>,
    decoder: FrameDecoder,
    /// Frames read but not yet returned (a read may complete more than one).
    frames: VecDeque<Result<Vec<u8>, FrameError>>,
    socket: PathBuf,
    timeout: Duration,
}

/// `path` as the user knows it: relative to the workspace root when it is inside it.
pub fn shown(path: &Path) -> String {
    let root = crate::paths::workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn version_text(v: Version) -> String {
    format!("{}.{}", v.major, v.minor)
}

impl Client {
    /// Connects to `socket` and opens a session (Hello, version check). Each reply must come
    /// within `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Self> {
        let mut client = Self {
            stream: None,
            decoder: FrameDecoder::new(),
            frames: VecDeque::new(),
            socket: socket.to_path_buf(),
            timeout,
        };
        client.open()?;
        Ok(client)
    }

    /// Opens a new session on the socket (Hello, version check, our session token).
    fn open(&mut self) -> Result<()> {
        let shown_path = shown(&self.socket);
        let no_system = |why: &str| {
            anyhow!(
                "no running system: start one with `cargo bulkhead run` (socket {shown_path} {why})"
            )
        };
        // A unix-socket connect never waits: it fails at once if nobody listens.
        let stream = match UnixStream::connect(&self.socket) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(no_system("not found")),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return Err(no_system("has no listener"))
            }
            Err(e) => bail!("cannot connect to {shown_path}: {e}"),
        };
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        self.stream = Some(stream);
        self.decoder = FrameDecoder::new();
        self.frames.clear();
        let client = self;
        let hello = Request::Hello {
            version: MGMT_VERSION,
        };
        let deadline = Instant::now() + client.timeout;
        let mut token = 0;
        let mut resend = Instant::now();
        loop {
            // A UART drops what arrives before its receiver is enabled (the ZCU102's, until
            // dom0 has opened it): the opening is sent again, with a new token, until one is
            // answered. Only the newest token counts, so every answer to an earlier opening
            // has been read (and skipped) by the time it is echoed.
            if Instant::now() >= resend {
                // A lone 0x00 first: dom0 drops whatever partial frame an earlier client
                // left.
                client.send_bytes(&[0])?;
                client.send(&hello)?;
                token = session_token();
                client.send(&Request::Session { token })?;
                resend = (Instant::now() + OPEN_RESEND).min(deadline);
            }
            let reply = match client.receive(resend) {
                Ok(r) => r,
                Err(_) if Instant::now() >= resend && resend < deadline => continue,
                Err(e) => return Err(e),
            };
            match reply {
                // Our own answers end with the echo of our token; everything before it that
                // is not a version refusal may be an earlier client's unread answers.
                Response::Session { token: t } if t == token => return Ok(()),
                Response::Hello { version } if !version.accepts(MGMT_VERSION) => {
                    return Err(version_error(version))
                }
                Response::Error(MgmtError::VersionMismatch { ours: version }) => {
                    return Err(version_error(version))
                }
                _ => continue,
            }
        }
    }

    /// Sends `req` and returns dom0's answer; `Response::Error` becomes an error that names
    /// the verb and the domain.
    pub fn call(&mut self, req: &Request) -> Result<Response> {
        self.ask(req)?.map_err(|e| request_error(req, &e))
    }

    /// Sends `req`; dom0's answer, or its refusal as the typed error it sent (for a caller
    /// that handles some refusals itself). Only the connection's failures are `Err`.
    pub fn ask(&mut self, req: &Request) -> Result<Result<Response, MgmtError>> {
        if self.stream.is_none() {
            self.open()?;
        }
        self.send(req)?;
        Ok(match self.receive(Instant::now() + self.timeout)? {
            Response::Error(e) => Err(e),
            other => Ok(other),
        })
    }

    /// Sends each of `reqs`, keeping up to `window` unanswered so the link never idles on
    /// a round trip; every answer must be `Done` (an error stops at once, naming the verb).
    /// `answered` is called as each answer arrives, in order.
    pub fn call_windowed(
        &mut self,
        reqs: impl IntoIterator<Item = Request>,
        window: usize,
        mut answered: impl FnMut(&Request),
    ) -> Result<()> {
        if self.stream.is_none() {
            self.open()?;
        }
        let mut in_flight = VecDeque::new();
        let mut reqs = reqs.into_iter();
        loop {
            while in_flight.len() < window.max(1) {
                let Some(req) = reqs.next() else { break };
                self.send(&req)?;
                in_flight.push_back(req);
            }
            let Some(req) = in_flight.pop_front() else {
                return Ok(());
            };
            match self.receive(Instant::now() + self.timeout)? {
                Response::Done => answered(&req),
                Response::Error(e) => return Err(request_error(&req, &e)),
                other => bail!("unexpected reply from dom0 to {}: {other:?}", req.verb()),
            }
        }
    }

    fn send(&mut self, req: &Request) -> Result<()> {
        let frame = encode(req).map_err(|e| anyhow!("cannot encode {}: {e}", req.verb()))?;
        self.send_bytes(&frame)
    }

    /// Closes the connection so another client can have dom0's port; the next
    /// [`Client::call`] opens a new session.
    pub fn release(&mut self) {
        self.stream = None;
    }

    fn stream(&mut self) -> Result<&mut UnixStream> {
        self.stream.as_mut().ok_or_else(|| {
            anyhow!(
                "management connection (socket {}) was released",
                shown(&self.socket)
            )
        })
    }

    fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let r = self.stream()?.write_all(bytes);
        r.map_err(|e| self.io_error(e))
    }

    /// Reads until one frame is complete or `deadline` passes.
    fn receive(&mut self, deadline: Instant) -> Result<Response> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return frame
                    .and_then(|f| decode::<Response>(&f))
                    .map_err(|e| anyhow!("malformed reply from dom0: {e}"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.io_error(ErrorKind::TimedOut.into()));
            }
            let stream = self.stream()?;
            stream.set_read_timeout(Some(deadline - now))?;
            match stream.read(&mut buf) {
                Ok(0) => bail!(
                    "dom0 closed the management connection (socket {})",
                    shown(&self.socket)
                ),
                Ok(n) => {
                    let frames = self.decoder.feed(buf.get(..n).unwrap_or_default());
                    self.frames.extend(frames);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    fn io_error(&self, e: std::io::Error) -> anyhow::Error {
        match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => anyhow!(
                "no reply from dom0 within {} s (socket {}): {}",
                self.timeout.as_secs_f64(),
                shown(&self.socket),
                "is the system still booting?"
            ),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => anyhow!(
                "dom0 closed the management connection (socket {})",
                shown(&self.socket)
            ),
            _ => anyhow!(
                "management connection (socket {}): {e}",
                shown(&self.socket)
            ),
        }
    }
}

/// One line saying what failed: `pause rtos: not allowed while the domain is paused`.
pub fn request_error(req: &Request, e: &MgmtError) -> anyhow::Error {
    match req.domain() {
        Some(d) => anyhow!("{} {d}: {e}", req.verb()),
        None => anyhow!("{}: {e}", req.verb()),
    }
}

/// How long an opening waits for its answer before it is sent again.
const OPEN_RESEND: Duration = Duration::from_secs(2);

/// A token no earlier connection used: the clock's nanoseconds mixed with our pid.
fn session_token() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn version_error(theirs: protocol::control::Version) -> anyhow::Error {
    anyhow!(
        "dom0 speaks management protocol {}, this tool speaks {}: rebuild and restart the \
         system with `cargo bulkhead run`",
        version_text(theirs),
        version_text(MGMT_VERSION)
    )
}
