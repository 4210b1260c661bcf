//! `--machine zcu102`, end to end: the board's default system (systems/zcu102.toml: dom0,
//! the RTOS, stock Linux) boots to Linux userspace and the RTOS reports, and the host
//! manages it through dom0's management port over a real UART path: QEMU wires the board's
//! second Cadence UART (serial1, `/axi/serial@ff010000`, named by the packed tree's
//! `/chosen/bulkhead,mgmt-port`) to `target/bulkhead/mgmt.sock`, the microvisor hands that
//! UART to dom0, and dom0's Cadence driver serves the link. `ctl list`, console input typed
//! into Linux with its answer read back from the console history, and a last request (a
//! pause of the RTOS, whose audit line ends the run) go over it.
//!
//! Bounded: QEMU stops at the last marker or after its timeout (the log is kept), and
//! every wait on the port has its own deadline.

use bulkhead_tests::{
    connect, ctl, default_system_boots, last_call, type_line, wait_count, wait_for_text, Boot,
    Expect, Machine, BOOT_TIMEOUT,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request};

#[test]
fn zcu102_default_system_is_managed_over_its_second_uart() {
    let _ = std::fs::remove_file(default_socket());
    // dom0 opens the port after the microvisor's "up" line: that one is checked in the
    // history read over the port itself, below.
    let before = Expect::new()
        .then(r"^bulkhead: console: Cadence UART at 0xff000000$")
        .and_then(|e| e.then(r"bulkhead: device: management port Cadence UART at 0xff010000"))
        .expect("markers");
    let expect = default_system_boots(before, 1)
        // Typed through the port; the answer is computed by Linux's shell, so the typed
        // line (echoed with its quotes) cannot stand in for it.
        .then(r"\[linux\] UART-ROUNDTRIP-42")
        // The last request's audit line ends the run (after the answer was read back).
        .and_then(|e| e.then(r"\[dom0\] mgmt: pause rtos: done"))
        .expect("markers");
    let mut options = RunOptions::test(Machine::Zcu102.default_system(), expect, BOOT_TIMEOUT * 5);
    options.overrides.machine = Machine::Zcu102;
    let boot = Boot::start(options);

    let mut c = connect();
    let list = ctl(&mut c, &["list"]);
    for name in ["dom0", "rtos", "linux"] {
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().any(|w| w == name)),
            "no {name} in ctl list:\n{list}"
        );
    }
    wait_for_text(
        &mut c,
        "[dom0] management port ready (Cadence UART at 0xff010000)",
        "dom0's port",
        10,
    );
    let h = wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "Linux's boot",
        480,
    );
    // The RTOS reports after Linux is up (the boot's markers want one then), before the
    // round trip and the pause that ends the run.
    let reports = h.matches("[rtos] uptime").count();
    wait_count(
        &mut c,
        "[rtos] uptime",
        reports + 1,
        "the RTOS's report",
        60,
    );
    type_line(&mut c, "linux", "echo UART\"\"-ROUNDTRIP-$((6*7))");
    wait_for_text(&mut c, "[linux] UART-ROUNDTRIP-42", "Linux's answer", 120);
    last_call(
        &mut c,
        &Request::Pause {
            domain: DomainRef::Name("rtos".into()),
        },
    );
    boot.finish("the zcu102 default system");
}
