//! The management-flood check shared by `management_flood` (virtio console on `virt`) and
//! `zcu102_flood` (Cadence UART on the ZCU102): a client floods dom0's port with requests
//! and never reads the answers, then goes away; the next client must be served (security
//! review F10: dom0 reads a bounded amount per poll and its transmit never waits for the
//! host).

use crate::{connect, last_call, Boot, Expect, Machine, BOOT_TIMEOUT};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{frame, DomainRef, Request, Response, MGMT_VERSION};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Boots `tests/systems/mgmt_flood.toml` on `machine`, floods its port with `requests`
/// `List` requests from a client that reads nothing and stays connected for `hold` (so
/// dom0 works through the flood and its replies back up), and checks that the next client
/// is answered (its pause of the RTOS ends the boot).
pub fn flood_then_serve(machine: Machine, requests: usize, hold: Duration) {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[dom0\] management port ready")
        .and_then(|e| e.then(r"\[dom0\] mgmt: pause rtos: done"))
        .expect("markers");
    let sys = crate::system("mgmt_flood");
    let mut options = RunOptions::test(sys, expect, BOOT_TIMEOUT * 3);
    options.overrides.machine = machine;
    let boot = Boot::start(options);

    // Wait until dom0 answers, then let go of that session.
    let booted = Instant::now();
    drop(connect());
    eprintln!(
        "dom0 answered {:?} after the boot started",
        booted.elapsed()
    );
    let mut flood = UnixStream::connect(default_socket()).expect("socket");
    // Writes block once dom0 stops reading: give up on them after a while, never read.
    flood
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let hello = frame::encode(&Request::Hello {
        version: MGMT_VERSION,
    })
    .expect("hello");
    let list = frame::encode(&Request::List).expect("list");
    let mut bytes = hello;
    for _ in 0..requests {
        bytes.extend_from_slice(&list);
    }
    let started = Instant::now();
    let written = flood.write(&bytes).unwrap_or(0);
    let _ = flood.write_all(&bytes[written..]);
    eprintln!(
        "flooding client wrote {requests} requests' worth in {:?}, reads nothing",
        started.elapsed()
    );

    std::thread::sleep(hold);
    // The flooding client goes away without ever having read a byte; the next one must
    // be served.
    drop(flood);
    let served = Instant::now();
    let mut c = connect();
    let rows = match c.call(&Request::List).expect("list after the flood") {
        Response::Domains(rows) => rows,
        other => panic!("list answered {other:?}"),
    };
    eprintln!("served again {:?} after the flood", served.elapsed());
    assert!(rows.iter().any(|r| r.name == "rtos"), "{rows:?}");
    // The boot ends at dom0's audit line for this pause.
    last_call(
        &mut c,
        &Request::Pause {
            domain: DomainRef::Name("rtos".into()),
        },
    );

    boot.finish(&format!(
        "system management_flood on --machine {}",
        machine.name()
    ));
}
