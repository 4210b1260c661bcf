//! `--machine zcu102`, the Xen ZynqMP guide's "UART passthrough": the board's second
//! Cadence UART (`/axi/serial@ff010000`, SPI 22 = INTID 54) is freed from dom0's
//! management port (`[system] mgmt_port = "none"`) and given to a stock Debian Linux guest
//! with `dtdev`, a 1:1 `iomem`, `irqs` and a partial device tree describing it (with a
//! `fixed-clock` for its `uart_clk`/`pclk`, which the board's clock controller would
//! otherwise provide). The guest's own `xuartps` driver runs it as `ttyPS0`, its console:
//! QEMU wires the UART to `target/bulkhead/serial1.sock`, where this test reads the kernel's
//! log and a shell's answer to a line it typed (`rdinit=/bin/sh` puts a shell on the
//! console, so receive and its interrupt are exercised as well as transmit). The shell's
//! last answer goes to the guest's `hvc0`, whose line on the board's first UART ends the
//! run.

use bulkhead_tests::{linux_failures, scratch_dir, Boot, Expect, Machine};
use bulkhead_tools::qemu::RunOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vm_fdt::FdtWriter;

/// The partial tree: a 1/1-cell root with a GIC of its own (phandle 1, fixed up to the
/// guest's) and under `/passthrough` a 100 MHz fixed clock and the UART as the board's tree
/// describes it, without its power domain and pin control (the firmware's, not the guest's).
fn partial_dt() -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let gic = w.begin_node("gic").unwrap();
    w.property_u32("phandle", 1).unwrap();
    w.end_node(gic).unwrap();
    let bus = w.begin_node("passthrough").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_null("ranges").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let clk = w.begin_node("uart-clk").unwrap();
    w.property_string("compatible", "fixed-clock").unwrap();
    w.property_u32("#clock-cells", 0).unwrap();
    w.property_u32("clock-frequency", 100_000_000).unwrap();
    w.property_u32("phandle", 2).unwrap();
    w.end_node(clk).unwrap();
    let uart = w.begin_node("serial@ff010000").unwrap();
    w.property_string_list(
        "compatible",
        vec!["xlnx,zynqmp-uart".into(), "cdns,uart-r1p12".into()],
    )
    .unwrap();
    w.property_array_u32("reg", &[0xff01_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 22, 4]).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    w.property_array_u32("clocks", &[2, 2]).unwrap();
    w.property_string_list("clock-names", vec!["uart_clk".into(), "pclk".into()])
        .unwrap();
    w.property_string("status", "okay").unwrap();
    w.end_node(uart).unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn system(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("ps.dtb"), partial_dt()).expect("write ps.dtb");
    let cfg = r#"# Written by tests/tests/zcu102_uart_passthrough.rs: the ZCU102's second UART for Linux.
name = "psguest"
kernel = "debian-linux"
ramdisk = "debian-initramfs"
extra = "console=hvc0 console=ttyPS0,115200 loglevel=6 rdinit=/bin/sh"
memory = 192
vcpus = 1
cpus = "1"
on_poweroff = "destroy"
on_reboot = "destroy"
iomem = [ "0xff010,1" ]
irqs = [ 54 ]
dtdev = [ "/axi/serial@ff010000" ]
device_tree = "ps.dtb"
"#;
    std::fs::write(dir.join("psguest.cfg"), cfg).expect("write the xl.cfg");
    let toml = "# Written by tests/tests/zcu102_uart_passthrough.rs.\n[system]\nsmp = 2\nmemory = 1024\nmgmt_port = \"none\"\n\n[[domain]]\nconfig = \"psguest.cfg\"\n";
    let path = dir.join("zcu102_uart_passthrough.toml");
    std::fs::write(&path, toml).expect("write system");
    path
}

/// What the guest's UART said so far, read from QEMU's serial1 socket.
struct Serial1 {
    stream: UnixStream,
    seen: String,
}

impl Serial1 {
    /// Connects once QEMU listens (it creates the socket as it starts).
    fn connect(path: &Path, secs: u64) -> Self {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_millis(500)))
                        .expect("timeout");
                    return Self {
                        stream,
                        seen: String::new(),
                    };
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("QEMU's serial1 socket {}: {e}", path.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Reads until `needle` was seen, typing `input` (if any) every few seconds meanwhile
    /// (the shell may not be up yet); panics with what was read after `secs`.
    fn wait_for(&mut self, needle: &str, input: Option<&str>, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut next_input = Instant::now();
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} from the guest's ttyPS0 in {secs} s; it said:\n{}",
                self.tail()
            );
            if let Some(line) = input.filter(|_| Instant::now() >= next_input) {
                self.stream
                    .write_all(line.as_bytes())
                    .expect("write to serial1");
                next_input = Instant::now() + Duration::from_secs(5);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("QEMU closed serial1; the guest said:\n{}", self.tail()),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading serial1: {e}"),
            }
        }
    }

    fn tail(&self) -> String {
        let lines: Vec<&str> = self.seen.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

#[test]
fn a_linux_guest_runs_the_zcu102s_second_uart_as_its_console() {
    let dir = scratch_dir("zcu102_uart_passthrough");
    let socket = bulkhead_tools::paths::out_dir().join(bulkhead_tools::machine::SERIAL1_SOCKET);
    let _ = std::fs::remove_file(&socket);
    let expect = Expect::new()
        .then(r"^bulkhead: console: Cadence UART at 0xff000000$")
        // No management port: the UART is a passthrough node the microvisor can quiesce.
        .and_then(|e| {
            e.then(
                r"device: passthrough node at 0xff010000 \(IRQ Some\(54\), reset Some\(Cadence\)\)",
            )
        })
        .and_then(|e| e.then(r"d\d+: device 0xff010000 at guest 0xff010000 \(IRQ Some\(54\)\)"))
        // Typed on ttyPS0 by this test once it has the answer there; printed on hvc0.
        .and_then(|e| e.then(r"\[psguest\] PS-END-7"))
        .and_then(|e| e.forbid(&linux_failures("psguest", &[])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(psguest\) stopped"))
        .expect("markers");
    let mut options = RunOptions::test(system(&dir), expect, Duration::from_secs(900));
    options.overrides.machine = Machine::Zcu102;
    let boot = Boot::start(options);

    let mut uart = Serial1::connect(&socket, 300);
    // The guest's kernel log on its own console (replayed from its start once the driver
    // registered ttyPS0): the driver found the device where the partial tree put it.
    uart.wait_for("Linux version 6.", None, 600);
    // A shell reads what was typed on the UART (receive interrupts forwarded to the guest)
    // and answers on it; only its answer has 42 (the echo of the typed line has `$((6*7))`).
    uart.wait_for("PS-ROUNDTRIP-42", Some("echo PS-ROUNDTRIP-$((6*7))\n"), 300);
    uart.stream
        .write_all(b"mount -t devtmpfs devtmpfs /dev; echo PS-END-$((3+4)) > /dev/hvc0\n")
        .expect("write to serial1");
    let out = boot.finish("the zcu102 UART passthrough system");
    // Kept beside the system for a reader (the boot log has only the board's first UART).
    let _ = std::fs::write(dir.join("serial1.log"), &uart.seen);
    let log = std::fs::read_to_string(&out.log_path).unwrap_or_default();
    assert!(
        !log.contains("[dom0] management port ready"),
        "dom0 still has the port"
    );
}
