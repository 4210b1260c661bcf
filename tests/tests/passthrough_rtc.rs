//! Device passthrough to an ordinary guest with Xen's configuration language (issue 16): a
//! stock Debian Linux guest's xl.cfg gives it QEMU `virt`'s PL031 RTC and PL061 GPIO
//! controller with `iomem`, `irqs`, `dtdev` and a partial device tree (`device_tree`, Xen's
//! `/passthrough` node, written here in 1/1 cells with the partial tree's own GIC as
//! `interrupt-parent`, which the tools fix up). Linux's own `rtc-pl031` driver finds the device in its generated tree and reads the
//! clock through the mapped registers: the guest's `rtc0` must read the host's time, and
//! again after the guest reboots (on_reboot = "restart"). Its `gpio-pl061` driver (built into
//! Debian's kernel) probes the PL061: a gpiochip of 8 lines appears, and a line exported
//! through sysfs reads as an input (the PL061's direction register after reset). While it
//! holds them, `ctl create` of a second guest naming the PL061 is refused naming the
//! holder; once it is destroyed, a guest created at run time (`ctl create`, with the same
//! partial tree) gets both devices and uses them the same way. The first guest leaves a
//! PL061 line driven as an output; the microvisor quiesces the PL061 when that guest is
//! destroyed (all lines inputs, interrupts masked), so the next owner reads the line as an
//! input (Linux's `gpio-pl061` does not reset the direction register at probe).

use bulkhead_tests::{
    connect, ctl, linux_failures, scratch_dir, type_line, value_after, wait_for_text, wait_until,
    Boot, Expect,
};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vm_fdt::FdtWriter;

/// The partial tree as a user writes it: a 1/1-cell root, a GIC of its own (phandle 1), and
/// under `/passthrough` the PL031 and the PL061 (as QEMU describes them) with the APB clock
/// the AMBA bus asks for, running at `clock_hz`.
fn partial_dt(clock_hz: u32) -> Vec<u8> {
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
    let clk = w.begin_node("apb-pclk").unwrap();
    w.property_string("compatible", "fixed-clock").unwrap();
    w.property_u32("#clock-cells", 0).unwrap();
    w.property_u32("clock-frequency", clock_hz).unwrap();
    w.property_string("clock-output-names", "clk24mhz").unwrap();
    w.property_u32("phandle", 2).unwrap();
    w.end_node(clk).unwrap();
    let rtc = w.begin_node("pl031@9010000").unwrap();
    w.property_string_list(
        "compatible",
        vec!["arm,pl031".into(), "arm,primecell".into()],
    )
    .unwrap();
    w.property_array_u32("reg", &[0x0901_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 2, 4]).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    w.property_u32("clocks", 2).unwrap();
    w.property_string("clock-names", "apb_pclk").unwrap();
    w.end_node(rtc).unwrap();
    let gpio = w.begin_node("pl061@9030000").unwrap();
    w.property_string_list(
        "compatible",
        vec!["arm,pl061".into(), "arm,primecell".into()],
    )
    .unwrap();
    w.property_array_u32("reg", &[0x0903_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 7, 4]).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    w.property_u32("#gpio-cells", 2).unwrap();
    w.property_null("gpio-controller").unwrap();
    w.property_u32("clocks", 2).unwrap();
    w.property_string("clock-names", "apb_pclk").unwrap();
    w.end_node(gpio).unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// The passthrough keys giving a guest the PL031 and the PL061 where the host has them.
const PASSTHROUGH: &str = r#"iomem = [ "0x9010,1@0x9010", "0x9030,1@0x9030" ]
irqs = [ 34, 39 ]
dtdev = [ "/pl031@9010000", "/pl061@9030000" ]
"#;

/// Writes `dir/NAME.cfg`, a Debian Linux guest with the passthrough `keys`; its path.
fn guest_cfg(dir: &Path, name: &str, keys: &str) -> String {
    let cfg = format!(
        r#"# Written by tests/tests/passthrough_rtc.rs: QEMU virt's devices for a Linux guest.
name = "{name}"
kernel = "debian-linux"
ramdisk = "debian-initramfs"
extra = "console=hvc0 loglevel=4"
memory = 192
vcpus = 1
cpus = "1"
on_poweroff = "destroy"
on_reboot = "restart"
{keys}"#
    );
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, cfg).expect("write the xl.cfg");
    path.display().to_string()
}

/// `ctl WORDS`, its error as text instead of a panic.
fn try_ctl(c: &mut Client, words: &[&str]) -> Result<String, String> {
    c.release();
    let args = bulkhead_tools::ctl::CtlArgs::from_words(words).expect("ctl words");
    let mut out = Vec::new();
    bulkhead_tools::ctl::run(
        &args,
        &default_socket(),
        bulkhead_tools::ctl::client::REPLY_TIMEOUT,
        false,
        &mut out,
    )
    .map_err(|e| format!("{e:#}"))?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

fn system(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("rtc.dtb"), partial_dt(24_000_000)).expect("write rtc.dtb");
    guest_cfg(
        dir,
        "rtcguest",
        &format!("{PASSTHROUGH}device_tree = \"rtc.dtb\"\n"),
    );
    let toml = "# Written by tests/tests/passthrough_rtc.rs.\n[system]\nsmp = 2\nmemory = 1024\n\n[[domain]]\nconfig = \"rtcguest.cfg\"\n";
    let path = dir.join("passthrough_rtc.toml");
    std::fs::write(&path, toml).expect("write system");
    path
}

/// Has the guest print its `rtc0`'s name and time followed by `RTC-DONE-<mark>`, and checks
/// them against the PL031 and the host's clock.
fn read_rtc(c: &mut Client, guest: &str, mark: u32) {
    type_line(
        c,
        guest,
        &format!("echo RTC-NAME=$(cat /sys/class/rtc/rtc0/name) RTC-EPOCH=$(cat /sys/class/rtc/rtc0/since_epoch) RTC-DONE-$(({mark}-1+1))"),
    );
    // The shell echoes the typed line: wait for what only its output has.
    let done = format!("RTC-DONE-{mark}");
    let h = wait_for_text(c, &done, "the guest's rtc0", 120);
    // Read as soon as the line is seen: the console path adds well under a second.
    let host = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let line = h
        .lines()
        .rev()
        .find(|l| l.contains(&done))
        .expect("the answer line");
    let name = value_after(line, "RTC-NAME=");
    let guest: i64 = value_after(line, "RTC-EPOCH=")
        .parse()
        .unwrap_or_else(|_| panic!("no RTC reading in the guest (is rtc0 there?): {line}"));
    // Its driver's name, then the device's ("rtc-pl031 9010000.pl031").
    assert_eq!(name, "rtc-pl031", "rtc0 is not the PL031");
    assert!(
        (host - guest).abs() <= 3,
        "the guest's PL031 reads {guest}, the host's clock {host}"
    );
}

/// Has the guest count its gpiochips and name the one (label, line count), export the first
/// line of the chip and read its direction and value through the PL061's registers.
fn read_gpio(c: &mut Client, guest: &str, mark: u32) {
    type_line(
        c,
        guest,
        &format!("b=$(cat /sys/class/gpio/gpiochip*/base); echo $b > /sys/class/gpio/export; echo GPIO-CHIPS=$(ls -d /sys/class/gpio/gpiochip* | wc -l) GPIO-LABEL=$(cat /sys/class/gpio/gpiochip*/label) GPIO-NGPIO=$(cat /sys/class/gpio/gpiochip*/ngpio) GPIO-LINE=$(cat /sys/class/gpio/gpio$b/direction),$(cat /sys/class/gpio/gpio$b/value) GPIO-DONE-$(({mark}-1+1))"),
    );
    let done = format!("GPIO-DONE-{mark}");
    let h = wait_for_text(c, &done, "the guest's gpiochip", 120);
    let line = h
        .lines()
        .rev()
        .find(|l| l.contains(&done))
        .expect("the answer line");
    // The guest's only gpiochip, which the driver names after the device.
    assert_eq!(value_after(line, "GPIO-CHIPS="), "1", "{line}");
    assert_eq!(value_after(line, "GPIO-LABEL="), "9030000.pl061", "{line}");
    assert_eq!(value_after(line, "GPIO-NGPIO="), "8", "{line}");
    let read = value_after(line, "GPIO-LINE=");
    assert!(
        read == "in,0" || read == "in,1",
        "line 0 of the PL061 reads {read:?} (direction,value): {line}"
    );
}

/// Has the guest drive line 0 of its PL061 high (an output: the direction register's bit
/// set) and read back what it set: the state the next owner must not inherit.
fn drive_gpio(c: &mut Client, guest: &str, mark: u32) {
    type_line(
        c,
        guest,
        &format!("b=$(cat /sys/class/gpio/gpiochip*/base); echo $b > /sys/class/gpio/export; echo out > /sys/class/gpio/gpio$b/direction; echo 1 > /sys/class/gpio/gpio$b/value; echo GPIO-SET=$(cat /sys/class/gpio/gpio$b/direction),$(cat /sys/class/gpio/gpio$b/value) GPIO-SET-DONE-$(({mark}-1+1))"),
    );
    let done = format!("GPIO-SET-DONE-{mark}");
    let h = wait_for_text(c, &done, "the guest driving its GPIO line", 120);
    let line = h
        .lines()
        .rev()
        .find(|l| l.contains(&done))
        .expect("the answer line");
    assert_eq!(value_after(line, "GPIO-SET="), "out,1", "{line}");
}

#[test]
fn a_linux_guest_uses_the_passed_through_pl031_and_pl061() {
    let _ = std::fs::remove_file(default_socket());
    let dir = scratch_dir("passthrough_rtc");
    let expect = Expect::new()
        // The microvisor knows how to quiesce both between owners.
        .then(r"device: passthrough node at 0x9010000 \(IRQ Some\(34\), reset Some\(Pl031\)\)")
        .and_then(|e| e.then(r"\[rtcguest\] RTC-NAME=rtc-pl031 \S+ RTC-EPOCH=\d+ RTC-DONE-42"))
        .and_then(|e| e.then(r"\[rtcguest\] GPIO-CHIPS=1 GPIO-LABEL=9030000\.pl061 GPIO-NGPIO=8 GPIO-LINE=in,[01] GPIO-DONE-6"))
        .and_then(|e| e.then(r"\[rtcguest\] RTC-NAME=rtc-pl031 \S+ RTC-EPOCH=\d+ RTC-DONE-43"))
        .and_then(|e| e.then(r"\[rtcguest\] GPIO-SET=out,1 GPIO-SET-DONE-8"))
        .and_then(|e| e.then(r"\[rtclate\] RTC-NAME=rtc-pl031 \S+ RTC-EPOCH=\d+ RTC-DONE-44"))
        .and_then(|e| e.then(r"\[rtclate\] GPIO-CHIPS=1 GPIO-LABEL=9030000\.pl061 GPIO-NGPIO=8 GPIO-LINE=in,[01] GPIO-DONE-7"))
        // Typed once the test has read the history: QEMU stops only then.
        .and_then(|e| e.then(r"\[rtclate\] RTC-TEST-END-7"))
        .and_then(|e| e.forbid(&linux_failures(r"(rtcguest|rtclate)", &[])))
        // Its own `reboot` stops it too ("asked to reboot"); a fault on the device must not.
        .and_then(|e| {
            e.forbid(r"bulkhead: d\d+ \((rtcguest|rtclate)\) stopped: (stage-2|crashed|unhandled)")
        })
        .expect("markers");
    let options = RunOptions::test(system(&dir), expect, Duration::from_secs(900));
    let boot = Boot::start(options);

    let mut c = connect();
    wait_for_text(&mut c, "[rtcguest] BULKHEAD-LINUX-USERSPACE", "boot", 400);
    read_rtc(&mut c, "rtcguest", 42);
    read_gpio(&mut c, "rtcguest", 6);
    // `reboot` in the guest (on_reboot = "restart"): the next incarnation gets the device
    // again, mapped and described as before.
    type_line(&mut c, "rtcguest", "reboot");
    wait_until(
        &mut c,
        |h| h.matches("[rtcguest] BULKHEAD-LINUX-USERSPACE").count() >= 2,
        "a second userspace marker",
        "reboot",
        400,
    );
    read_rtc(&mut c, "rtcguest", 43);
    // This incarnation leaves line 0 driven high; the next owner must find it an input
    // again (the PL061's reset state), which its driver does not restore by itself: the
    // microvisor quiesced the device when this guest was destroyed.
    drive_gpio(&mut c, "rtcguest", 8);
    // `ctl info` names the device the guest holds, and dom0's view lists it as held.
    let info = ctl(&mut c, &["info", "rtcguest"]);
    let line = info
        .lines()
        .find(|l| l.starts_with("0x9010000+0x1000"))
        .unwrap_or_else(|| panic!("no PL031 in ctl info:\n{info}"));
    assert!(line.contains("34") && line.contains("device"), "{line}");
    let json = ctl(&mut c, &["--json", "info", "dom0"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let held = v["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["mmio_base"] == 0x0901_0000)
        .cloned()
        .unwrap_or_else(|| panic!("dom0 does not list the PL031: {json}"));
    let holder = held["holder"]
        .as_u64()
        .unwrap_or_else(|| panic!("held by the guest: {held}"));
    // `ctl create` of a second claimant of the PL061 while rtcguest holds it: dom0 refuses,
    // naming the holder.
    let claimant = guest_cfg(&dir, "claimant", "dtdev = [ \"/pl061@9030000\" ]\n");
    let e = try_ctl(&mut c, &["create", &claimant]).expect_err("a second claimant is refused");
    assert!(
        e.contains(&format!("device /pl061@9030000 is held by domain {holder}")),
        "{e}"
    );
    // Destroyed, rtcguest's devices return to the pool: a guest created at run time from an
    // xl.cfg naming them gets both, and its drivers use them. Its partial tree is not the
    // one packed at boot (another clock rate), so `ctl create` uploads it.
    ctl(&mut c, &["destroy", "rtcguest"]);
    std::fs::write(dir.join("rtc-late.dtb"), partial_dt(25_000_000)).expect("write rtc-late.dtb");
    let late = guest_cfg(
        &dir,
        "rtclate",
        &format!("{PASSTHROUGH}device_tree = \"rtc-late.dtb\"\n"),
    );
    ctl(&mut c, &["create", &late]);
    wait_for_text(
        &mut c,
        "[dom0] mgmt: upload complete and checked",
        "the new partial tree uploaded",
        60,
    );
    wait_for_text(
        &mut c,
        "[rtclate] BULKHEAD-LINUX-USERSPACE",
        "ctl create",
        400,
    );
    read_rtc(&mut c, "rtclate", 44);
    read_gpio(&mut c, "rtclate", 7);
    let info = ctl(&mut c, &["info", "rtclate"]);
    assert!(
        info.lines().any(|l| l.starts_with("0x9030000+0x1000")),
        "no PL061 in ctl info:\n{info}"
    );
    type_line(&mut c, "rtclate", "echo RTC-TEST-END-$((3+4))");
    boot.finish("system passthrough_rtc");
}
