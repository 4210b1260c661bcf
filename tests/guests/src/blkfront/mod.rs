//! `mode=blkfront`: an adversarial blkif frontend for blkdom (issue 9, DESIGN §6). It
//! drives its two vbds (`xvda` read-write, `xvdb` read-only) by hand: valid reads first
//! (data checked against the pattern the host wrote), then requests blkdom must answer
//! with an error and keep serving (bad grant refs, a read into a read-only grant, a write
//! to the read-only vbd), then one malformed request per connection, each of which must
//! get no response and move the backend to Closing; after each we close and reconnect
//! as a frontend does, and a last fresh connection must serve a valid read again.
//!
//! It starts when anything is typed on its console (so the host can first get a
//! neighbour's I/O going). Markers: `blkfront: waiting for go`, one
//! `blkfront: <check> PASS` or `blkfront: <check> FAIL got <g> want <w>` per check, then
//! `blkfront: done <N> checks, <M> failures`.

mod front;

use crate::frontend_attack::{wait_for_go, Report};
use alloc::format;
use alloc::string::String;
use bulkhead_runtime::xenstore::XsClient;
use bulkhead_runtime::StartInfo;
use front::{Front, Req, Vbd, DATA, GREF_DATA, GREF_DATA_RO, GREF_UNUSED};
use testguest::{disk_word, BLK_TAG_RO, BLK_TAG_RW};

/// blkif operations and statuses (blkif.h).
const OP_READ: u8 = 0;
const OP_WRITE: u8 = 1;
const RSP_OKAY: i16 = 0;
const RSP_ERROR: i16 = -1;
/// Xen's `devid`s of `xvda` and `xvdb`.
const XVDA: &str = "51712";
const XVDB: &str = "51728";
/// How long a halting request is given to (wrongly) draw a response.
const QUIET_MS: u64 = 1500;

static FULL_PAGE: [(u32, u8, u8); 1] = [(GREF_DATA, 0, 7)];
static MID_PAGE: [(u32, u8, u8); 1] = [(GREF_DATA, 1, 3)];
static UNUSED_REF: [(u32, u8, u8); 1] = [(GREF_UNUSED, 0, 7)];
static FAR_REF: [(u32, u8, u8); 1] = [(1 << 20, 0, 7)];
static RO_REF: [(u32, u8, u8); 1] = [(GREF_DATA_RO, 0, 7)];
static REVERSED: [(u32, u8, u8); 1] = [(GREF_DATA, 5, 2)];
static TWELVE: [(u32, u8, u8); 11] = [(GREF_DATA, 0, 0); 11];

fn read(id: u64, sector: u64, segs: &'static [(u32, u8, u8)]) -> Req {
    Req {
        op: OP_READ,
        nr_segments: segs.len() as u8,
        id,
        sector,
        segs,
    }
}

/// Sends `r` and checks its response is `(id, op, want)`.
fn answered(rep: &mut Report, f: &mut Front, what: &str, r: &Req, want: i16) -> bool {
    f.push(r);
    let got = f.response(5000);
    let ok = got == Some((r.id, r.op, want));
    rep.check(
        what,
        ok,
        got,
        &format!("Some(({}, {}, {want}))", r.id, r.op),
    );
    ok
}

/// A full-page read of `sector` that must succeed and bring the host's pattern.
fn good_read(rep: &mut Report, f: &mut Front, what: &str, id: u64, tag: u8, sector: u64) {
    DATA.fill(0xDEAD_BEEF);
    if answered(rep, f, what, &read(id, sector, &FULL_PAGE), RSP_OKAY) {
        let want = [0, 512, 4092].map(|o| disk_word(tag, sector + o as u64 / 512));
        let got = [0, 512, 4092].map(|o| DATA.word(o));
        rep.check(
            &format!("{what}: data"),
            got == want,
            got,
            &format!("{want:x?}"),
        );
    }
}

fn vbd(xs: &mut XsClient, devid: &str) -> Result<Vbd, String> {
    let dir = format!("device/vbd/{devid}");
    let read = |xs: &mut XsClient, k: &str| {
        xs.read_str(&format!("{dir}/{k}"))
            .ok()
            .flatten()
            .ok_or(format!("no {dir}/{k}"))
    };
    let backend = read(xs, "backend")?;
    let id = read(xs, "backend-id")?;
    let backend_id = id.parse().map_err(|_| format!("backend-id {id:?}"))?;
    Ok(Vbd {
        dir,
        backend,
        backend_id,
    })
}

/// Runs the attack and reports; then idles.
pub fn run(_info: &StartInfo) -> ! {
    crate::frontend_attack::run("blkfront", attack)
}

fn attack(rep: &mut Report, xs: &mut XsClient) {
    let (a, b) = match (vbd(xs, XVDA), vbd(xs, XVDB)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => return rep.check("our vbds in xenstore", false, (a, b), "xvda and xvdb"),
    };
    let gt = front::map_grant_table();
    rep.check("grant table mapped", gt, gt, "true");
    for v in [&a, &b] {
        let s = Front::wait_backend(xs, v, 2, 30_000);
        rep.check(&format!("{} backend InitWait", v.dir), s == 2, s, "2");
    }
    wait_for_go("blkfront");
    front::grant(GREF_DATA, a.backend_id, DATA.gfn(), false);
    front::grant(GREF_DATA_RO, a.backend_id, DATA.gfn(), true);

    // Valid requests and answered errors on the read-write vbd: the ring goes on.
    let mut f = match Front::connect(xs, &a, 0) {
        Ok(f) => f,
        Err(e) => return rep.check("xvda connects", false, e, "Connected"),
    };
    rep.check("xvda connects", true, "", "");
    let sectors: u64 = xs
        .read_str(&format!("{}/sectors", a.backend))
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    rep.check(
        "xvda sectors published at Connected",
        sectors == 2048,
        sectors,
        "2048",
    );
    good_read(rep, &mut f, "read sector 0", 1, BLK_TAG_RW, 0);
    good_read(rep, &mut f, "read sector 9", 2, BLK_TAG_RW, 9);
    DATA.fill(0);
    if answered(
        rep,
        &mut f,
        "read sectors 9..=11 at offset 512",
        &read(3, 9, &MID_PAGE),
        RSP_OKAY,
    ) {
        let got = [0, 512, 1536, 2048].map(|o| DATA.word(o));
        let want = [0, disk_word(BLK_TAG_RW, 9), disk_word(BLK_TAG_RW, 11), 0];
        rep.check(
            "partial-page read: data",
            got == want,
            got,
            &format!("{want:x?}"),
        );
    }
    let errors = [
        ("read with an unused grant ref", read(4, 0, &UNUSED_REF)),
        ("read with a grant ref past the table", read(5, 0, &FAR_REF)),
        ("read into a read-only grant", read(6, 0, &RO_REF)),
    ];
    for (what, r) in &errors {
        answered(rep, &mut f, what, r, RSP_ERROR);
    }
    good_read(rep, &mut f, "read after the errors", 7, BLK_TAG_RW, 1);
    let s = Front::backend_state(xs, &a);
    rep.check("xvda still Connected after errors", s == 4, s, "4");

    // The read-only vbd refuses a write with an error and goes on.
    let ro = match Front::connect(xs, &b, 1) {
        Ok(mut g) => {
            rep.check("xvdb connects", true, "", "");
            good_read(
                rep,
                &mut g,
                "read-only vbd: read sector 3",
                10,
                BLK_TAG_RO,
                3,
            );
            let w = Req {
                op: OP_WRITE,
                ..read(11, 0, &FULL_PAGE)
            };
            answered(rep, &mut g, "read-only vbd: write refused", &w, RSP_ERROR);
            good_read(rep, &mut g, "read-only vbd: read after", 12, BLK_TAG_RO, 0);
            let s = Front::backend_state(xs, &b);
            rep.check("xvdb still Connected", s == 4, s, "4");
            Some(g)
        }
        Err(e) => {
            rep.check("xvdb connects", false, e, "Connected");
            None
        }
    };

    halting(rep, xs, &a, f, sectors);
    // The other vbd of this very frontend never noticed.
    if let Some(mut g) = ro {
        let s = Front::backend_state(xs, &b);
        rep.check("xvdb still Connected after xvda's halts", s == 4, s, "4");
        good_read(
            rep,
            &mut g,
            "xvdb read after xvda's halts",
            40,
            BLK_TAG_RO,
            5,
        );
    }
}

/// One malformed request per connection: no response, backend Closing; then reconnect.
fn halting(rep: &mut Report, xs: &mut XsClient, a: &Vbd, mut f: Front, sectors: u64) {
    let r = |id, nr, sector, segs| Req {
        nr_segments: nr,
        ..read(id, sector, segs)
    };
    let cases: [(&str, Option<Req>); 6] = [
        (
            "unknown operation 200",
            Some(Req {
                op: 200,
                ..read(20, 0, &FULL_PAGE)
            }),
        ),
        ("read with nr_segments 0", Some(r(21, 0, 0, &FULL_PAGE))),
        ("read with nr_segments 12", Some(r(22, 12, 0, &TWELVE))),
        ("first_sect > last_sect", Some(read(23, 0, &REVERSED))),
        (
            "sectors past the end",
            Some(read(24, sectors.saturating_sub(4), &FULL_PAGE)),
        ),
        ("ring index corruption", None),
    ];
    for (i, (what, req)) in cases.into_iter().enumerate() {
        if i > 0 {
            f = match reconnect(rep, xs, a, f, what) {
                Some(f) => f,
                None => return,
            };
        }
        let before = f.rsp_prod();
        match req {
            Some(req) => {
                f.push(&req);
                // After a halting request, even a valid one must go unanswered.
                f.push(&read(99, 0, &FULL_PAGE));
            }
            None => f.publish(f.rsp_prod().wrapping_add(front::ENTRIES * 40)),
        }
        let s = Front::wait_backend(xs, a, 5, 10_000);
        rep.check(&format!("{what}: backend Closing"), s == 5, s, "5");
        let got = f.response(QUIET_MS);
        let after = f.rsp_prod();
        rep.check(
            &format!("{what}: no response"),
            got.is_none() && after == before,
            (got, before, after),
            "no response, rsp_prod unchanged",
        );
    }
    // A fresh connection after all that is served again.
    if let Some(mut f) = reconnect(rep, xs, a, f, "last") {
        good_read(rep, &mut f, "read on a fresh connection", 30, BLK_TAG_RW, 2);
    }
}

fn reconnect(rep: &mut Report, xs: &mut XsClient, a: &Vbd, f: Front, what: &str) -> Option<Front> {
    let (closed, initwait) = f.close_and_reinit(xs, a);
    rep.check(
        &format!("before {what}: backend Closed then InitWait"),
        (closed, initwait) == (6, 2),
        (closed, initwait),
        "(6, 2)",
    );
    match Front::connect(xs, a, 0) {
        Ok(f) => Some(f),
        Err(e) => {
            rep.check(&format!("before {what}: reconnect"), false, e, "Connected");
            None
        }
    }
}
