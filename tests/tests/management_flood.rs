//! A management client that floods dom0 with requests and never reads the answers cannot
//! hold dom0 (security review F10): dom0 reads a bounded amount per poll, its transmit
//! never waits for the host, and the next client is served as usual.
//!
//! QEMU's `virtconsole` drops output its chardev cannot take rather than holding the
//! transmit queue, so on QEMU this flood never stalls dom0's transmit even without the
//! non-blocking console; what this boot checks is that dom0 survives the flood and keeps
//! serving. The stall policy itself (drop a client whose output the device stops taking) is
//! host-tested in `dom0::mgmt::link`.

use bulkhead_tests::{connect, last_call, Boot, Expect, BOOT_TIMEOUT};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{frame, DomainRef, Request, Response, MGMT_VERSION};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Requests the flooding client sends (their answers are far more than the socket and
/// QEMU buffer).
const FLOOD_REQUESTS: usize = 20_000;

#[test]
fn a_client_that_never_reads_cannot_hold_dom0() {
    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[dom0\] management port ready")
        .and_then(|e| e.then(r"\[dom0\] mgmt: pause rtos: done"))
        .expect("markers");
    let sys = bulkhead_tests::system("mgmt_flood");
    let boot = Boot::start(RunOptions::test(sys, expect, BOOT_TIMEOUT * 3));

    // Wait until dom0 answers, then let go of that session.
    drop(connect());
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
    for _ in 0..FLOOD_REQUESTS {
        bytes.extend_from_slice(&list);
    }
    let started = Instant::now();
    let written = flood.write(&bytes).unwrap_or(0);
    let _ = flood.write_all(&bytes[written..]);
    eprintln!(
        "flooding client wrote {} requests' worth in {:?}, reads nothing",
        FLOOD_REQUESTS,
        started.elapsed()
    );

    // The flooding client goes away without ever having read a byte; the next one must
    // be served.
    drop(flood);
    let mut c = connect();
    let rows = match c.call(&Request::List).expect("list after the flood") {
        Response::Domains(rows) => rows,
        other => panic!("list answered {other:?}"),
    };
    assert!(rows.iter().any(|r| r.name == "rtos"), "{rows:?}");
    // The boot ends at dom0's audit line for this pause.
    last_call(
        &mut c,
        &Request::Pause {
            domain: DomainRef::Name("rtos".into()),
        },
    );

    boot.finish("system management_flood");
}
