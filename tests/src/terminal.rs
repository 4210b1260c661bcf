//! Drives `ctl console` as a user at a terminal does: keys typed over time (Ctrl-C,
//! Ctrl-] included) and the guest's raw output collected as it is shown.

use crate::connect;
use protocol::mgmt::DomainRef;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Keys handed to the session as the test "types" them.
struct Keys {
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Read for Keys {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv() {
                Ok(keys) => self.pending = keys,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// What the session shows, shared with the test.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("screen").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `ctl console NAME` session running on its own management connection.
pub struct Terminal {
    keys: mpsc::Sender<Vec<u8>>,
    screen: Screen,
    session: JoinHandle<anyhow::Result<()>>,
}

impl Terminal {
    /// Attaches to `name`'s console from now on.
    pub fn attach(name: &str) -> Self {
        let (keys, rx) = mpsc::channel();
        let screen = Screen::default();
        let mut shown = screen.clone();
        let domain = DomainRef::Name(name.into());
        let session = std::thread::spawn(move || {
            let mut c = connect();
            let input = Box::new(Keys {
                rx,
                pending: Vec::new(),
            });
            bulkhead_tools::ctl::console::attach_with(&mut c, &domain, None, input, &mut shown)
        });
        Self {
            keys,
            screen,
            session,
        }
    }

    /// Types `bytes`.
    pub fn type_keys(&self, bytes: &[u8]) {
        self.keys
            .send(bytes.to_vec())
            .expect("the session took no more keys");
    }

    /// Everything shown so far.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen.0.lock().expect("screen")).into_owned()
    }

    /// Waits (at most `secs`) until the screen shows `needle`; the screen.
    pub fn wait_for(&self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.shown();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "ctl console never showed {needle:?}; it showed:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Presses Ctrl-] and waits for the session to end; what it returned.
    pub fn detach(self) -> anyhow::Result<()> {
        self.type_keys(&[0x1d]);
        self.session.join().expect("console thread")
    }
}
