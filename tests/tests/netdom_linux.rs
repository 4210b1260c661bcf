//! netdom serves stock Linux `xen-netfront`: a Linux guest with `vif = ['']` gets an address
//! from QEMU's user network with busybox `udhcpc`, pings the gateway, fetches a file from an
//! HTTP server this test runs on the host (its checksum must match), and answers the host
//! through a forwarded port with busybox `httpd`. Every frame crosses netdom's switch and
//! its virtio-net uplink.

use bulkhead_tests::SystemToml;
use bulkhead_tests::{
    connect, dhcp_address, linux_failures, scratch_dir, type_line, value_after, wait_for_text,
    Boot, Expect,
};
use bulkhead_tools::ctl::default_socket;
use bulkhead_tools::qemu::RunOptions;
use protocol::mgmt::{DomainRef, Request, Response};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A host port nobody listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn system(dir: &Path, fwd: u16) -> PathBuf {
    SystemToml::new(
        "netdom_linux",
        4,
        &format!("hostfwd = [\"tcp:127.0.0.1:{fwd}-:80\"]\n"),
    )
    .driver("netdom", 1, "")
    .linux("linux", 2, "vif = [\"\"]\n")
    .write(dir, "netdom.toml")
}

/// Serves `body` to every GET on a thread; returns the port.
fn serve(body: Vec<u8>) -> u16 {
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
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

/// A GET of `http://127.0.0.1:port/` from the host; the response, or why not.
fn host_get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: guest\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn stock_linux_reaches_the_host_through_netdom() {
    let dir = scratch_dir("netdom-test");
    // 1 MiB the guest fetches; the pattern is not periodic in any small stride.
    let body: Vec<u8> = (0u32..1 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
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
    let http = serve(body);
    let fwd = free_port();

    let _ = std::fs::remove_file(default_socket());
    let expect = Expect::new()
        .then(r"\[netdom\] ready nic=52:54:")
        .and_then(|e| e.then(r"\[netdom\] vif \d+/0 connected mac=00:16:3e"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(&linux_failures(r"linux", &[])))
        .and_then(|e| e.forbid(r"\[netdom\] .*(vif stopped|cannot)"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(netdom\) stopped"))
        .expect("markers");
    let sys = system(&dir, fwd);
    let boot = Boot::start(RunOptions::test(sys, expect, Duration::from_secs(420)));

    let mut c = connect();
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "linux boot",
        240,
    );
    // The user's path: busybox udhcpc with the event script the guest image carries.
    assert_eq!(dhcp_address(&mut c, "linux"), "10.0.2.15");
    type_line(
        &mut c,
        "linux",
        "ping -c 3 -W 5 10.0.2.2 >/dev/null; echo PING-RC=$?",
    );
    let h = wait_for_text(&mut c, "[linux] PING-RC=", "ping", 240);
    assert!(h.contains("[linux] PING-RC=0"), "{h}");
    type_line(
        &mut c,
        "linux",
        &format!("wget -q -O /tmp/f http://10.0.2.2:{http}/served.bin; echo WGET-RC=$? SUM=$(sha256sum /tmp/f)"),
    );
    let h = wait_for_text(&mut c, "[linux] WGET-RC=", "wget", 240);
    assert!(h.contains("[linux] WGET-RC=0"), "{h}");
    assert_eq!(
        value_after(&h, "[linux] WGET-RC=0 SUM="),
        host_sum,
        "the fetched file differs"
    );
    // The host reaches busybox httpd in the guest through the forwarded port.
    type_line(
        &mut c,
        "linux",
        "mkdir -p /www && echo served-by-the-guest > /www/index.html && httpd -p 80 -h /www && echo HTTPD-UP",
    );
    wait_for_text(&mut c, "[linux] HTTPD-UP", "httpd", 240);
    let got = host_get(fwd).expect("GET through hostfwd");
    assert!(got.contains("served-by-the-guest"), "{got}");
    // `ctl info netdom`: the vif, connected, with the counters netdom published (at most
    // once a second, so wait for the megabyte to show).
    let mut rows = Vec::new();
    for _ in 0..20 {
        rows = match c
            .call(&Request::Vifs {
                domain: DomainRef::Name("netdom".into()),
            })
            .expect("vifs")
        {
            Response::Vifs(rows) => rows,
            other => panic!("vifs answered {other:?}"),
        };
        if rows
            .first()
            .and_then(|r| r.counters)
            .is_some_and(|k| k.rx_bytes >= 1 << 20)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((row.backend_state, row.frontend_state), (4, 4), "{row:?}");
    assert!(row.mac.starts_with("00:16:3e:"), "{row:?}");
    let k = row.counters.expect("netdom publishes counters");
    assert!(k.rx_bytes >= 1 << 20 && k.tx_packets > 0, "{k:?}");
    assert_eq!((k.tx_errors, k.tx_drops), (0, 0), "{k:?}");
    // The uplink's side of the same traffic: the megabyte came in over the NIC (at least
    // one frame per 1,514 bytes), each burst announced by the NIC's interrupt, and the
    // guest's requests went out on it. A guest has no uplink.
    let uplink = |c: &mut bulkhead_tools::ctl::client::Client, name: &str| match c
        .call(&Request::Uplink {
            domain: DomainRef::Name(name.into()),
        })
        .expect("uplink")
    {
        Response::Uplink(u) => u,
        other => panic!("uplink answered {other:?}"),
    };
    let mut u = None;
    for _ in 0..20 {
        u = uplink(&mut c, "netdom");
        if u.is_some_and(|u| u.rx_frames >= (1 << 20) / 1514) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let u = u.expect("netdom publishes its uplink's counters");
    assert!(u.rx_frames >= (1 << 20) / 1514 && u.tx_frames > 0, "{u:?}");
    assert!(
        u.interrupts > 0 && u.interrupts <= u.rx_frames + u.tx_frames + 8,
        "{u:?}"
    );
    assert_eq!(uplink(&mut c, "linux"), None);
    type_line(&mut c, "linux", "poweroff -f");

    boot.finish("system netdom_linux");
}
