//! Restart in place of the network driver domain (DESIGN §6.2, issue 11): a stock Linux
//! guest fetches a large file from an HTTP server this test runs on the host, and pings the
//! gateway, while the test restarts netdom mid-transfer, politely (`ctl restart netdom`) and
//! by a genuine fault (`ctl crash netdom`: an Undefined Instruction exception, handled by
//! dom0's `on_crash = "restart"` policy). dom0 keeps the vif's xenstore nodes; each new
//! netdom instance finds the vif Connected at both ends, re-maps its rings, re-binds its
//! channel and resumes it. The guest must see a pause, not a reset: the file arrives whole
//! (size and checksum), netfront logs nothing (its dmesg is cleared once the link is up and
//! must hold no netfront, eth0 or vif line at the end), the vif never leaves Connected at
//! either end, and netdom logs the resume marker once per restart.

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, dhcp_address, linux_failures, scratch_dir, type_line, value_after, wait_for_text,
    wait_until, Boot, Expect,
};
use bulkhead_tools::ctl::client::Client;
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request, Response};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The file's size: the part sent before the server holds, and the rest.
const BODY: usize = 12 << 20;
/// The server holds after this much until both events happened (so the transfer is still
/// open when netdom dies the second time).
const HOLD_AT: usize = BODY - (2 << 20);
/// Bytes per write, and the pause between writes (keeps the transfer long under TCG).
const CHUNK: usize = 16 << 10;
const PAUSE: Duration = Duration::from_millis(5);

fn system(dir: &Path) -> PathBuf {
    SystemToml::new("netdom_restart", 4, "")
        .driver("netdom", 1, "on_crash = \"restart\"\n")
        .linux("linux", 2, "vif = [\"\"]\n")
        .write(dir, "netdom-restart-in-place.toml")
}

/// What the server thread shares with the test.
#[derive(Default)]
struct Progress {
    /// Body bytes written to the socket so far.
    sent: AtomicUsize,
    /// The test lets the server send past [`HOLD_AT`].
    release: AtomicBool,
}

/// Serves `body` to one GET at a time, paced, holding at [`HOLD_AT`] until released.
fn serve(body: Vec<u8>, progress: Arc<Progress>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                body.len()
            );
            if s.write_all(head.as_bytes()).is_err() {
                continue;
            }
            progress.sent.store(0, Ordering::SeqCst);
            for (n, chunk) in body.chunks(CHUNK).enumerate() {
                if n * CHUNK >= HOLD_AT {
                    while !progress.release.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                if s.write_all(chunk).is_err() {
                    break;
                }
                progress.sent.fetch_add(chunk.len(), Ordering::SeqCst);
                std::thread::sleep(PAUSE);
            }
        }
    });
    port
}

/// Waits (bounded) until the server has sent at least `n` bytes.
fn wait_sent(p: &Progress, n: usize, what: &str, c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while p.sent.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            let h = bulkhead_tests::history(c);
            panic!(
                "{what}: the server sent only {} bytes; history tail:\n{}",
                p.sent.load(Ordering::SeqCst),
                h.lines().rev().take(60).collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The guest's vif rows as dom0 sees them: (backend state, frontend state) per vif.
fn vif_states(c: &mut Client) -> Vec<(u8, u8)> {
    match c
        .call(&Request::Vifs {
            domain: DomainRef::Name("linux".into()),
        })
        .expect("vifs")
    {
        Response::Vifs(rows) => rows
            .iter()
            .map(|r| (r.backend_state, r.frontend_state))
            .collect(),
        other => panic!("vifs answered {other:?}"),
    }
}

/// The bytes netdom delivered to the guest's vif, as it last published them (its counters
/// start from zero with each instance).
fn rx_bytes(c: &mut Client) -> u64 {
    match c
        .call(&Request::Vifs {
            domain: DomainRef::Name("linux".into()),
        })
        .expect("vifs")
    {
        Response::Vifs(rows) => rows
            .first()
            .and_then(|r| r.counters)
            .map_or(0, |k| k.rx_bytes),
        other => panic!("vifs answered {other:?}"),
    }
}

/// Waits (bounded) until `ok` holds of the guest's received bytes; returns them.
fn wait_rx(c: &mut Client, ok: impl Fn(u64) -> bool, what: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = rx_bytes(c);
        if ok(n) {
            return n;
        }
        if Instant::now() > deadline {
            let h = bulkhead_tests::history(c);
            panic!(
                "{what}: the guest's vif shows {n} bytes received; history tail:\n{}",
                h.lines().rev().take(60).collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Lines of `h` that are netdom's resume markers.
fn resumes(h: &str) -> usize {
    h.lines()
        .filter(|l| l.starts_with("[netdom] vif ") && l.contains(" resumed tx at "))
        .count()
}

#[test]
fn a_linux_transfer_survives_netdom_restarts() {
    let dir = scratch_dir("netdom-restart-in-place");
    let body: Vec<u8> = (0..BODY as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let file = dir.join("served.bin");
    std::fs::write(&file, &body).expect("served file");
    let host_sum = String::from_utf8_lossy(
        &Command::new("sha256sum")
            .arg(&file)
            .output()
            .expect("sha256sum")
            .stdout,
    )
    .split_whitespace()
    .next()
    .expect("host sum")
    .to_owned();
    let progress = Arc::new(Progress::default());
    let http = serve(body, progress.clone());

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[netdom\] ready nic=52:54:")
        .and_then(|e| e.then(r"\[netdom\] vif \d+/0 connected mac=00:16:3e"))
        .and_then(|e| e.then(r"\[netdom\] vif \d+/0 resumed tx at \d+ rx at \d+"))
        .and_then(|e| e.then(r"\[netdom\] vif \d+/0 resumed tx at \d+ rx at \d+"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .and_then(|e| e.forbid(r"\[netdom\] .*(vif stopped|cannot)"))
        .expect("markers");
    let sys = system(&dir);
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(1200)));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        300,
    );
    assert_eq!(dhcp_address(&mut c, "linux"), "10.0.2.15");
    // From here on the kernel must have nothing to say about the network.
    type_line(&mut c, "linux", "dmesg -c >/dev/null; echo DMESG-CLEARED");
    wait_for_text(&mut c, "[linux] DMESG-CLEARED", "dmesg -c", 60);
    type_line(
        &mut c,
        "linux",
        "ping -i 0.5 10.0.2.2 >/tmp/ping.log 2>&1 & echo PING-STARTED",
    );
    wait_for_text(&mut c, "[linux] PING-STARTED", "ping", 60);
    type_line(
        &mut c,
        "linux",
        &format!(
            "(wget -q -O /tmp/f http://10.0.2.2:{http}/served.bin; echo WGET-RC=$? SIZE=$(wc -c < /tmp/f) SUM=$(sha256sum /tmp/f | cut -d' ' -f1)) &"
        ),
    );

    // A polite restart while the guest receives (the host's socket buffers hold megabytes,
    // so progress is measured at netdom), then a crash once it receives again.
    wait_sent(&progress, 1 << 20, "transfer start", &mut c);
    let got = wait_rx(&mut c, |n| n >= 2 << 20, "transfer start");
    let domain = || DomainRef::Name("netdom".into());
    let r = c
        .call(&Request::Restart { domain: domain() })
        .expect("restart");
    assert_eq!(r, Response::Done);
    eprintln!(
        "netdom restarted with {got} bytes received, {} sent",
        progress.sent.load(Ordering::SeqCst)
    );
    wait_until(&mut c, |h| resumes(h) >= 1, "resumed", "first resume", 300);
    assert_eq!(vif_states(&mut c), vec![(4, 4)], "after the restart");
    // The new instance publishes its (zeroed) counters first, then the new traffic.
    wait_rx(&mut c, |n| n < 1 << 20, "the new instance's counters");
    let got = wait_rx(&mut c, |n| n >= 1 << 20, "transfer after the restart");
    let r = c.call(&Request::Crash { domain: domain() }).expect("crash");
    assert_eq!(r, Response::Done);
    eprintln!(
        "netdom crashed with {got} bytes received since the restart, {} sent",
        progress.sent.load(Ordering::SeqCst)
    );
    wait_until(&mut c, |h| resumes(h) >= 2, "resumed", "second resume", 300);
    assert_eq!(vif_states(&mut c), vec![(4, 4)], "after the crash");
    progress.release.store(true, Ordering::SeqCst);

    // The background job's line may follow the shell's prompt on the same line.
    let done = |l: &str| l.starts_with("[linux]") && l.contains("WGET-RC=") && !l.contains("$?");
    let h = wait_until(
        &mut c,
        |h| h.lines().any(done),
        "WGET-RC=",
        "the transfer",
        600,
    );
    assert!(h.contains("WGET-RC=0 "), "wget failed\n{h}");
    assert_eq!(value_after(&h, "WGET-RC=0 SIZE="), BODY.to_string(), "{h}");
    assert_eq!(
        value_after(&h, " SUM="),
        host_sum,
        "the fetched file differs"
    );
    type_line(
        &mut c,
        "linux",
        "kill $(pidof ping) 2>/dev/null; sleep 1; echo PING-REPLIES=$(grep -c 'bytes from' /tmp/ping.log) NETLOG=$(dmesg | grep -c -i -E 'netfront|xennet|eth0|vif'); dmesg | grep -i -E 'netfront|xennet|eth0|vif' | sed 's/^/NETLINE /'",
    );
    let h = wait_for_text(&mut c, "[linux] PING-REPLIES=", "ping summary", 60);
    let replies: u32 = value_after(&h, "[linux] PING-REPLIES=")
        .parse()
        .expect("reply count");
    assert!(replies > 0, "the gateway never answered\n{h}");
    assert_eq!(
        value_after(&h, " NETLOG="),
        "0",
        "the guest's kernel logged about its network:\n{}",
        h.lines()
            .filter(|l| l.contains("NETLINE"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Each instance resumed the vif rather than starting a handshake over, and the crash
    // was a real fault handled by dom0's on_crash policy.
    assert_eq!(resumes(&h), 2, "{h}");
    // No instance dropped the connection or started the handshake over (the guest's
    // poweroff below disconnects it, legitimately).
    let dropped: Vec<&str> = h
        .lines()
        .filter(|l| l.starts_with("[netdom] vif "))
        .filter(|l| l.contains("disconnected") || l.contains("written afresh"))
        .collect();
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(h.matches("[netdom] ready nic=").count(), 3, "{h}");
    assert_eq!(
        h.matches("[netdom] vcpu0: unexpected sync exception")
            .count(),
        1,
        "{h}"
    );
    assert_eq!(
        h.matches("[dom0] netdom (d1): crashed (code ").count(),
        1,
        "{h}"
    );
    assert_eq!(vif_states(&mut c), vec![(4, 4)], "at the end");
    eprintln!("ping replies: {replies}");
    type_line(&mut c, "linux", "poweroff -f");

    boot.finish("system netdom_restart");
}
