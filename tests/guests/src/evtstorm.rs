//! An event-channel storm: back-to-back `EVTCHNOP_send`s, forever, on every channel this
//! guest has: its xenstore and console channels (both to dom0) and a loopback channel to
//! itself. Sending on one's own channels is allowed, so the microvisor must answer every
//! send and keep everyone else running: the hypercall path is the attacker's only lever on
//! the lock the other CPUs need.
//!
//! Markers: `evtstorm: storming ports <a> <b> <c>`, then `evtstorm: <N> sends` every
//! [`REPORT_EVERY`] sends, or `evtstorm: FAIL ...` if a send is refused or a port cannot be
//! set up.

use super::xenbad::loopback_port;
use bulkhead_runtime::println;
use bulkhead_runtime::xen;
use protocol::xen::structs::DOMID_SELF;
use protocol::xen::HvmParam;

/// Sends between two progress lines.
const REPORT_EVERY: u64 = 200_000;

/// Runs the storm (never returns).
pub fn run() {
    let param = |p| xen::hvm_get_param(DOMID_SELF, p).map(|v| v as u32);
    let ports = match (
        param(HvmParam::StoreEvtchn),
        param(HvmParam::ConsoleEvtchn),
        loopback_port(),
    ) {
        (Ok(a), Ok(b), Some(c)) if a != 0 && b != 0 => [a, b, c],
        (a, b, c) => {
            println!("evtstorm: FAIL no ports: store {a:?} console {b:?} loopback {c:?}");
            return;
        }
    };
    println!(
        "evtstorm: storming ports {} {} {}",
        ports[0], ports[1], ports[2]
    );
    let mut sent: u64 = 0;
    loop {
        for p in ports {
            if let Err(e) = xen::evtchn_send(p) {
                println!("evtstorm: FAIL send on port {p}: {e:?}");
                return;
            }
        }
        sent += ports.len() as u64;
        if sent % REPORT_EVERY < ports.len() as u64 {
            println!("evtstorm: {sent} sends");
        }
    }
}
