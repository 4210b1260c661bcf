//! The `mgmt` target: management-port byte streams (COBS frames of postcard `Request`s) into
//! dom0's management service ([`dom0::mgmt::Server`]) over a model of the domains, and the
//! same requests typed on dom0's console ([`dom0::prompt`]).
//!
//! Checked beyond "no panic": the server answers every frame the stream completes with
//! exactly one frame that decodes as a `Response`, and every request that decodes
//! re-encodes to a frame that decodes to the same request.

use crate::input::{Input, Script};
use dom0::mgmt::{DomainEntry, DomainOps, Server};
use dom0::prompt::{self, LineReader};
use protocol::control::{CapError, DomainInfo, DomainState, ShutdownKind, Version};
use protocol::manifest::{Action, ManifestDomain};
use protocol::mgmt::{
    decode, encode, DomainRef, FrameDecoder, MgmtError, Request, Response, MGMT_VERSION,
};

/// Step opcodes (a step's first byte modulo 4).
pub mod op {
    /// `chunk`: bytes from the management port.
    pub const PORT: u8 = 0;
    /// The host side disconnected: `Server::reset`.
    pub const RESET: u8 = 1;
    /// `chunk`: bytes typed on dom0's console.
    pub const CONSOLE: u8 = 2;
}

/// Most domains [`Model::create`] lets exist (so a script cannot grow the model forever).
const MAX_DOMAINS: usize = 8;

/// The domains dom0 would control, as plain data.
struct Model {
    doms: Vec<DomainInfo>,
    log: Vec<u8>,
}

impl Model {
    fn new() -> Self {
        let dom = |domid: u16, name: &str, state| DomainInfo {
            domid,
            name: name.into(),
            state,
            vcpus: 1,
            vcpus_online: 1,
            mem_mib: 8,
            cpu_ticks: 0,
            exits: 0,
            irqs_injected: 0,
            restarts: 0,
        };
        Self {
            doms: vec![
                dom(0, "dom0", DomainState::Running),
                dom(1, "rtos", DomainState::Running),
                dom(2, "linux", DomainState::Paused),
            ],
            log: b"bulkhead: microvisor up\n[dom0] dom0 up\n".to_vec(),
        }
    }

    fn find(&mut self, id: u16) -> Result<&mut DomainInfo, CapError> {
        self.doms
            .iter_mut()
            .find(|d| d.domid == id)
            .ok_or(CapError::Stale)
    }

    fn set(&mut self, id: u16, from: DomainState, to: DomainState) -> Result<(), CapError> {
        let d = self.find(id)?;
        if d.state != from {
            return Err(CapError::WrongState);
        }
        d.state = to;
        Ok(())
    }
}

impl DomainOps for Model {
    fn domains(&mut self) -> Vec<DomainEntry> {
        self.doms
            .iter()
            .map(|d| DomainEntry {
                name: d.name.clone(),
                id: d.domid,
                handle: None,
            })
            .collect()
    }
    fn query(&mut self, id: u16) -> Result<DomainInfo, CapError> {
        self.find(id).cloned()
    }
    fn pause(&mut self, id: u16) -> Result<(), CapError> {
        self.set(id, DomainState::Running, DomainState::Paused)
    }
    fn unpause(&mut self, id: u16) -> Result<(), CapError> {
        self.set(id, DomainState::Paused, DomainState::Running)
    }
    fn destroy(&mut self, id: u16) -> Result<(), CapError> {
        self.find(id)?;
        self.doms.retain(|d| d.domid != id);
        Ok(())
    }
    fn restart(&mut self, id: u16) -> Result<(), CapError> {
        let d = self.find(id)?;
        d.restarts += 1;
        d.state = DomainState::Running;
        Ok(())
    }
    fn counter_hz(&mut self) -> u64 {
        62_500_000
    }
    fn free_memory(&mut self) -> (u64, u64) {
        (1000, 512)
    }
    fn log_read(&mut self, from: u64) -> Result<(Vec<u8>, u64, u64), CapError> {
        let start = usize::try_from(from).map_or(self.log.len(), |f| f.min(self.log.len()));
        let end = self.log.len() as u64;
        Ok((self.log[start..].to_vec(), start as u64, end))
    }
    fn shutdown(&mut self, id: u16, _kind: ShutdownKind) -> Result<(), CapError> {
        self.find(id).map(|_| ())
    }
    fn console_input(&mut self, id: u16, bytes: &[u8]) -> Result<(), CapError> {
        self.find(id)?;
        self.log.extend_from_slice(&bytes[..bytes.len().min(64)]);
        Ok(())
    }
    fn create(
        &mut self,
        domain: &ManifestDomain,
        budget: Option<(u32, u32)>,
    ) -> Result<u16, MgmtError> {
        let _ = budget;
        if self.doms.len() >= MAX_DOMAINS {
            return Err(MgmtError::Capability(CapError::NoMemory));
        }
        let id = self.doms.iter().map(|d| d.domid).max().unwrap_or(0) + 1;
        let mut info = self.query(0).map_err(MgmtError::Capability)?;
        info.domid = id;
        info.name.clone_from(&domain.name);
        self.doms.push(info);
        Ok(id)
    }
}

/// Checks that `frame` (one complete request frame) re-encodes faithfully if it decodes.
fn round_trip(frame: &[u8]) {
    if let Ok(req) = decode::<Request>(frame) {
        let again = encode(&req).expect("a decoded request fits a frame again");
        assert_eq!(decode::<Request>(&again), Ok(req));
    }
}

/// Runs one script.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut model = Model::new();
    let mut server = Server::new();
    // The harness's own decoders: frames the server must answer, and its replies.
    let mut requests = FrameDecoder::new();
    let mut replies = FrameDecoder::new();
    let mut lines = LineReader::default();
    while !inp.is_empty() {
        match inp.u8() & 3 {
            op::PORT => {
                let bytes = inp.chunk();
                let frames = requests.feed(bytes);
                for f in frames.iter().flatten() {
                    round_trip(f);
                }
                let out = server.input(bytes, &mut model);
                let answers = replies.feed(&out);
                assert_eq!(answers.len(), frames.len(), "one reply per request frame");
                for a in answers {
                    let a = a.expect("a reply frame within the limits");
                    decode::<Response>(&a).expect("a reply that decodes");
                }
                assert_eq!(replies.pending(), 0, "replies are whole frames");
            }
            op::RESET => {
                server.reset();
                requests.reset();
            }
            _ => {
                for line in lines.feed(inp.chunk()) {
                    // Typed requests take the same path as framed ones; only panics matter.
                    let _ = prompt::run(&line, &mut model);
                }
            }
        }
    }
}

/// Seed inputs: every request the CLI sends, framed as `cargo bulkhead ctl` frames them, and
/// a console session.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let name = |n: &str| DomainRef::Name(n.into());
    let domain = ManifestDomain {
        name: "xlguest".into(),
        image: "rtos".into(),
        ramdisk: None,
        mem_mib: 16,
        auto_cpus: true,
        vcpus: vec![protocol::control::VcpuPlacement {
            pcpu: 2,
            priority: 10,
            exclusive: false,
        }],
        cmdline: "hz=100".into(),
        depends_on: vec!["rtos".into()],
        on_poweroff: Action::Destroy,
        on_reboot: Action::Restart,
        on_crash: Action::Preserve,
        vbds: Vec::new(),
        vifs: Vec::new(),
        devices: Vec::new(),
        device_tree: None,
        pmu: protocol::control::PmuAccess::Off,
    };
    let requests = [
        Request::Hello {
            version: MGMT_VERSION,
        },
        Request::Hello {
            version: Version { major: 9, minor: 0 },
        },
        Request::List,
        Request::Info,
        Request::Pause {
            domain: name("rtos"),
        },
        Request::Unpause {
            domain: DomainRef::Id(1),
        },
        Request::Destroy {
            domain: name("linux"),
        },
        Request::Restart {
            domain: name("rtos"),
        },
        Request::Shutdown {
            domain: name("rtos"),
        },
        Request::Reboot {
            domain: name("dom0"),
        },
        Request::Top,
        Request::Create {
            domain: Box::new(domain),
            budget: Some((2_000, 10_000)),
        },
        Request::Dmesg { from: 3 },
        Request::ConsoleInput {
            domain: name("rtos"),
            bytes: b"uptime\n".to_vec(),
        },
        Request::Vbds {
            domain: name("blkdom"),
        },
        Request::Vifs {
            domain: name("netdom"),
        },
        Request::Uplink {
            domain: name("netdom"),
        },
    ];
    let mut out = Vec::new();
    let mut s = Script::new();
    for r in &requests {
        s.u8(op::PORT)
            .chunk(&encode(r).expect("seed requests encode"));
    }
    out.push(("session", s.take()));
    // One frame split in two, a reset, garbage, then a request.
    let list = encode(&Request::List).expect("encodes");
    s.u8(op::PORT).chunk(&list[..1]);
    s.u8(op::RESET);
    s.u8(op::PORT).chunk(&[0x05, 0xff, 0xff, 0x01, 0x00]);
    s.u8(op::PORT).chunk(&list);
    out.push(("stream", s.take()));
    s.u8(op::CONSOLE)
        .chunk(b"help\rlist\npause rtos\nunpause 1\ninfo\rdestroy linux\nrestart nope\n");
    out.push(("console", s.take()));
    out
}
