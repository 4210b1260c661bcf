//! `mode=netfront`: an adversarial netif frontend for netdom (issue 10). It drives its own
//! vif by hand, written from netif.h: a valid frame and a runt first (answered OKAY and
//! ERROR, the vif goes on), then one malformed TX request per connection, each of which
//! must get no response and move the backend to Closing (netdom halts that vif and logs
//! it once): a grant ref never granted, a chain of more slots than
//! XEN_NETBK_LEGACY_SLOTS_MAX, a chain whose every slot says "more data" (it never ends
//! before `req_prod`), a fragment crossing its page, and `req_prod` far ahead of the ring.
//! After each it closes and reconnects as netfront does, and a last valid frame on a
//! fresh connection must be answered OKAY.
//!
//! Last, an event storm at netdom itself: back-to-back `EVTCHNOP_send`s on the vif's
//! channel (every one must be answered) until anything is typed on our console, then one
//! more valid frame that must be answered OKAY. Meanwhile the test checks that a stock
//! Linux guest on the same switch keeps pinging and that netdom keeps its heartbeat.
//! (20 000 back-to-back sends once stalled a Linux guest on another vCPU for minutes: the
//! microvisor's ticket lock on a host with fewer cores than QEMU CPUs, microvisor/src/
//! sync.rs; `evtchn_storm` storms dom0's channels.)
//!
//! It starts when anything is typed on its console. Markers: `netfront: waiting for go`,
//! one `netfront: <check> PASS` or `netfront: <check> FAIL got <g> want <w>` per check,
//! `netfront: storming port <p>` and `netfront: storm <n> sends` every [`STORM_REPORT`]
//! sends, then `netfront: done <N> checks, <M> failures`.

use crate::frontend_attack::{wait_for_go, Console, Report};
use alloc::format;
use alloc::string::String;
use bulkhead_runtime::frontend;
use bulkhead_runtime::xen::{self, MappedPage};
use bulkhead_runtime::xenstore::XsClient;
use bulkhead_runtime::{println, timer, StartInfo};
use protocol::xen::netif::{
    tx_slot_offset, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETTXF_MORE_DATA, NET_TX_RING_SIZE,
    XEN_NETBK_LEGACY_SLOTS_MAX,
};

/// Sends between two progress lines of the storm.
const STORM_REPORT: u64 = 20_000;

/// Shared ring header offsets (`req_prod`, `req_event`, `rsp_prod`, `rsp_event`).
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
/// XenbusState values.
const INITIALISING: u32 = 1;
const INIT_WAIT: u32 = 2;
const CONNECTED: u32 = 4;
const CLOSING: u32 = 5;
const CLOSED: u32 = 6;
/// How long a halting request is given to (wrongly) draw a response.
const QUIET_MS: u64 = 1500;
/// A grant reference we never fill.
const UNUSED_GREF: u32 = 400;

/// Our vif as dom0 described it, and the pages we share with netdom.
struct Vif {
    dir: String,
    backend: String,
    backend_id: u16,
    mac: [u8; 6],
    tx: MappedPage,
    rx: MappedPage,
    tx_gref: u32,
    rx_gref: u32,
    /// The frame page (granted read-only: netdom only reads TX data).
    data: MappedPage,
    data_gref: u32,
}

/// One connection: our port and ring positions.
struct Conn {
    port: u32,
    req_prod: u32,
    rsp_cons: u32,
}

fn ticks(ms: u64) -> u64 {
    timer::ms_to_ticks(ms, timer::freq())
}

impl Vif {
    fn state(&self, xs: &mut XsClient) -> u32 {
        let s = xs.read_str(&format!("{}/state", self.backend));
        s.ok().flatten().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// Waits up to `ms` for the backend to reach `want`; the last state seen. The callers
    /// allow 30 s: netdom answers within milliseconds, but a loaded host can stall it.
    fn wait(&self, xs: &mut XsClient, want: u32, ms: u64) -> u32 {
        let deadline = timer::now().saturating_add(ticks(ms));
        loop {
            let s = self.state(xs);
            if s == want || timer::now() >= deadline {
                return s;
            }
            timer::sleep_ms(10);
        }
    }

    fn set_state(&self, xs: &mut XsClient, s: u32) {
        let _ = xs.write(&format!("{}/state", self.dir), format!("{s}").as_bytes());
    }

    /// Connects as netfront does: fresh rings, a fresh port, the keys, then Connected
    /// straight from Initialising; waits for the backend's Connected.
    fn connect(&self, xs: &mut XsClient) -> Result<Conn, String> {
        for p in [self.tx, self.rx] {
            for off in (0..4096).step_by(4) {
                p.store_u32(off, 0);
            }
            p.store_u32(REQ_EVENT, 1);
            p.store_u32(RSP_EVENT, 1);
        }
        let port = frontend::evtchn_alloc_unbound(self.backend_id)
            .map_err(|e| format!("alloc_unbound: {e}"))?;
        let keys = [
            ("tx-ring-ref", format!("{}", self.tx_gref)),
            ("rx-ring-ref", format!("{}", self.rx_gref)),
            ("event-channel", format!("{port}")),
            ("request-rx-copy", String::from("1")),
        ];
        for (k, v) in keys {
            xs.write(&format!("{}/{k}", self.dir), v.as_bytes())
                .map_err(|e| format!("write {k}: {e:?}"))?;
        }
        self.set_state(xs, CONNECTED);
        let s = self.wait(xs, CONNECTED, 30_000);
        if s != CONNECTED {
            return Err(format!("backend state {s} after our Connected"));
        }
        Ok(Conn {
            port,
            req_prod: 0,
            rsp_cons: 0,
        })
    }

    /// Closes after the backend's Closing and starts over as netfront does: Closed, wait
    /// for Closed, close the port, Initialising, wait for InitWait.
    fn close_and_reinit(&self, xs: &mut XsClient, c: Conn) -> (u32, u32) {
        self.set_state(xs, CLOSED);
        let closed = self.wait(xs, CLOSED, 30_000);
        let _ = xen::evtchn_close(c.port);
        self.set_state(xs, INITIALISING);
        (closed, self.wait(xs, INIT_WAIT, 30_000))
    }

    /// Writes a TX slot at our `req_prod` (not yet published).
    fn put(&self, c: &mut Conn, gref: u32, offset: u16, flags: u16, size: u16) {
        let at = tx_slot_offset(c.req_prod);
        let id = (c.req_prod % NET_TX_RING_SIZE) as u16;
        self.tx.store_u32(at, gref);
        self.tx
            .store_u32(at + 4, u32::from(offset) | u32::from(flags) << 16);
        self.tx
            .store_u32(at + 8, u32::from(id) | u32::from(size) << 16);
        c.req_prod = c.req_prod.wrapping_add(1);
    }

    fn publish(&self, c: &Conn, req_prod: u32) {
        self.tx.store_u32(REQ_PROD, req_prod);
        let _ = xen::evtchn_send(c.port);
    }

    fn rsp_prod(&self) -> u32 {
        self.tx.load_u32(RSP_PROD)
    }

    /// The next TX response's status, waiting up to `ms`.
    fn response(&self, c: &mut Conn, ms: u64) -> Option<i16> {
        let deadline = timer::now().saturating_add(ticks(ms));
        while self.rsp_prod() == c.rsp_cons {
            if timer::now() >= deadline {
                return None;
            }
            timer::sleep_ms(2);
        }
        let w = self.tx.load_u32(tx_slot_offset(c.rsp_cons));
        c.rsp_cons = c.rsp_cons.wrapping_add(1);
        Some((w >> 16) as u16 as i16)
    }

    /// A broadcast frame of `len` bytes from our MAC in the data page.
    fn frame(&self, len: usize) {
        for i in 0..len {
            let b = match i {
                0..6 => 0xff,
                6..12 => self.mac[i - 6],
                12 => 0x88,
                13 => 0xb5, // local experimental EtherType
                _ => i as u8,
            };
            self.data.write_u8(i, b);
        }
    }
}

fn vif(xs: &mut XsClient) -> Result<Vif, String> {
    let dir = String::from("device/vif/0");
    let mut read = |k: &str| {
        xs.read_str(&format!("{dir}/{k}"))
            .ok()
            .flatten()
            .ok_or(format!("no {dir}/{k}"))
    };
    let backend = read("backend")?;
    let id = read("backend-id")?;
    let mac_text = read("mac")?;
    let backend_id: u16 = id.parse().map_err(|_| format!("backend-id {id:?}"))?;
    let mac = bulkhead_runtime::netfront::device::parse_mac(&mac_text)
        .ok_or(format!("mac {mac_text:?}"))?;
    let page = |ro| {
        let addr = frontend::alloc_page();
        frontend::grant(backend_id, addr, ro)
            .map(|g| (MappedPage::new(addr), g.gref))
            .map_err(|e| format!("grant: {e}"))
    };
    let (tx, tx_gref) = page(false)?;
    let (rx, rx_gref) = page(false)?;
    let (data, data_gref) = page(true)?;
    Ok(Vif {
        dir,
        backend,
        backend_id,
        mac,
        tx,
        rx,
        tx_gref,
        rx_gref,
        data,
        data_gref,
    })
}

/// Runs the attack and reports; then idles.
pub fn run(_info: &StartInfo) -> ! {
    crate::frontend_attack::run("netfront", attack)
}

/// Sends one valid 60-byte frame; checks it is answered `want`.
fn send(rep: &mut Report, v: &Vif, c: &mut Conn, what: &str, size: u16, want: i16) {
    v.frame(60);
    v.put(c, v.data_gref, 0, 0, size);
    v.publish(c, c.req_prod);
    let got = v.response(c, 5000);
    rep.check(what, got == Some(want), got, &format!("Some({want})"));
}

fn attack(rep: &mut Report, xs: &mut XsClient) {
    let v = match vif(xs) {
        Ok(v) => v,
        Err(e) => return rep.check("our vif in xenstore", false, e, "device/vif/0"),
    };
    let s = v.wait(xs, INIT_WAIT, 30_000);
    rep.check("backend InitWait", s == INIT_WAIT, s, "2");
    wait_for_go("netfront");
    let mut c = match v.connect(xs) {
        Ok(c) => c,
        Err(e) => return rep.check("vif connects", false, e, "Connected"),
    };
    rep.check("vif connects", true, "", "");
    send(rep, &v, &mut c, "valid frame", 60, NETIF_RSP_OKAY);
    send(rep, &v, &mut c, "runt frame", 10, NETIF_RSP_ERROR);
    let s = v.state(xs);
    rep.check("still Connected after the runt", s == CONNECTED, s, "4");

    type Build = fn(&Vif, &mut Conn);
    let cases: [(&str, Build); 5] = [
        ("grant ref never granted", |v, c| {
            v.put(c, UNUSED_GREF, 0, 0, 60);
            v.publish(c, c.req_prod);
        }),
        ("oversized slot chain", |v, c| {
            let n = XEN_NETBK_LEGACY_SLOTS_MAX as u16 + 1;
            v.put(c, v.data_gref, 0, NETTXF_MORE_DATA, 60 * n);
            for i in 1..n {
                let flags = if i + 1 < n { NETTXF_MORE_DATA } else { 0 };
                v.put(c, v.data_gref, 0, flags, 60);
            }
            v.publish(c, c.req_prod);
        }),
        ("slot chain that never ends", |v, c| {
            v.put(c, v.data_gref, 0, NETTXF_MORE_DATA, 600);
            for _ in 0..7 {
                v.put(c, v.data_gref, 0, NETTXF_MORE_DATA, 60);
            }
            v.publish(c, c.req_prod);
        }),
        ("fragment crossing its page", |v, c| {
            v.put(c, v.data_gref, 4000, 0, 200);
            v.publish(c, c.req_prod);
        }),
        ("req_prod far ahead of the ring", |v, c| {
            v.publish(c, v.rsp_prod().wrapping_add(NET_TX_RING_SIZE * 40));
        }),
    ];
    for (what, build) in cases {
        v.frame(60);
        let before = v.rsp_prod();
        build(&v, &mut c);
        let s = v.wait(xs, CLOSING, 30_000);
        rep.check(&format!("{what}: backend Closing"), s == CLOSING, s, "5");
        let got = v.response(&mut c, QUIET_MS);
        let after = v.rsp_prod();
        rep.check(
            &format!("{what}: no response"),
            got.is_none() && after == before,
            (got, before, after),
            "no response, rsp_prod unchanged",
        );
        let states = v.close_and_reinit(xs, c);
        rep.check(
            &format!("after {what}: backend Closed then InitWait"),
            states == (CLOSED, INIT_WAIT),
            states,
            "(6, 2)",
        );
        c = match v.connect(xs) {
            Ok(c) => c,
            Err(e) => return rep.check(&format!("after {what}: reconnect"), false, e, "4"),
        };
    }

    send(
        rep,
        &v,
        &mut c,
        "valid frame after it all",
        60,
        NETIF_RSP_OKAY,
    );
    storm(rep, &v, &mut c);
}

/// Sends on our vif's channel back to back until anything is typed on our console; every
/// send must be answered, and the vif must still work after it.
fn storm(rep: &mut Report, v: &Vif, c: &mut Conn) {
    println!("netfront: storming port {}", c.port);
    let console = Console::find();
    let (mut sent, mut refused) = (0u64, 0u64);
    loop {
        for _ in 0..STORM_REPORT {
            refused += u64::from(xen::evtchn_send(c.port).is_err());
        }
        sent += STORM_REPORT;
        println!("netfront: storm {sent} sends");
        if console.typed() {
            break;
        }
    }
    rep.check("storm: every send answered", refused == 0, refused, "0");
    send(rep, v, c, "valid frame after the storm", 60, NETIF_RSP_OKAY);
}
