//! The RTOS on the network: the runtime's netfront under a `smoltcp` stack, in one
//! low-priority thread (`net`) so the real-time threads never wait for it. It takes an
//! address by DHCP, answers ping (smoltcp's automatic echo reply) and runs the echo service
//! of RFC 862 on port 7 over UDP and TCP.
//!
//! Markers: `net: no vif given to this domain` when the system gave the RTOS none (as soon
//! as dom0 has attached our xenstore, see [`connect`]), `net: vif 0 connected mac=…`,
//! `net: address A/P gateway G`, `net: tcp echo <state> [peer A:P]`, `net: <error>`.

use super::os;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use bulkhead_runtime::netfront::device::{Netfront, NetfrontError};
use bulkhead_runtime::xenstore::XsClient;
use bulkhead_runtime::{println, timer};
use rtos::echo;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};

/// The thread's priority: above the shell and logger, below every periodic job.
const PRIORITY: u8 = 4;
/// The echo service's port (UDP and TCP).
const ECHO_PORT: u16 = 7;
/// One-page buffers granted to netdom per direction.
const TX_BUFFERS: usize = 16;
const RX_BUFFERS: usize = 32;
/// How often the thread looks at the rings when nothing asks sooner.
const POLL_US: u64 = 2_000;
/// Looks for the vif at start-up, [`SETUP_RETRY_US`] apart (about 30 s in all).
const SETUP_TRIES: u32 = 60;
const SETUP_RETRY_US: u64 = 500_000;

/// Starts the `net` thread.
pub fn start() -> Result<(), rtos::Error> {
    os::spawn("net", PRIORITY, net_thread).map(drop)
}

/// The netfront as smoltcp's device.
struct Vif(Netfront);

/// A received frame.
struct Rx(Vec<u8>);

/// Room to send one frame.
struct Tx<'a>(&'a mut Netfront);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        // A frame that finds every buffer busy is dropped, as a full NIC queue would.
        let _ = self.0.send(&frame);
        r
    }
}

impl Device for Vif {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.0.recv()?;
        Some((Rx(frame), Tx(&mut self.0)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.0.can_send().then_some(Tx(&mut self.0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = bulkhead_runtime::netfront::MAX_FRAME;
        caps
    }
}

fn now() -> Instant {
    Instant::from_micros((timer::now() / os::ticks_per_us()) as i64)
}

fn idle_forever() -> ! {
    loop {
        os::sleep_us(10_000_000);
    }
}

/// Looks for vif 0 until dom0 has attached our xenstore and written the vif (both happen
/// after we start); `None` once [`SETUP_TRIES`] looks found nothing, or at once when dom0
/// attached us without a `device/vif` directory: it creates one as it attaches a domain the
/// system gives vifs (before it serves our first request), so without it no vif will come.
/// Each look takes Xen hypercalls (the microvisor's locked path) and a xenstore round trip:
/// a domain without a vif must not keep looking for 30 s.
fn connect() -> Option<Netfront> {
    let mut last = None;
    for _ in 0..SETUP_TRIES {
        let attempt = XsClient::open()
            .map_err(NetfrontError::from)
            .and_then(|mut xs| {
                if xs.read_str("device/vif")?.is_none() {
                    return Ok(None);
                }
                Netfront::connect(&mut xs, 0, TX_BUFFERS, RX_BUFFERS, 3_000, || {
                    os::sleep_us(10_000)
                })
                .map(Some)
            });
        match attempt {
            Ok(Some(nf)) => return Some(nf),
            Ok(None) => {
                last = None;
                break;
            }
            // Not attached or not written yet: look again.
            Err(e @ (NetfrontError::NoVif | NetfrontError::Xenstore(_))) => last = Some(e),
            Err(e) => {
                println!("net: {e}");
                return None;
            }
        }
        os::sleep_us(SETUP_RETRY_US);
    }
    match last {
        Some(NetfrontError::NoVif) | None => println!("net: no vif given to this domain"),
        Some(e) => println!("net: {e}"),
    }
    None
}

fn net_thread() {
    let Some(nf) = connect() else { idle_forever() };
    let m = nf.mac;
    println!(
        "net: vif 0 connected mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    serve(Vif(nf))
}

fn serve(mut dev: Vif) -> ! {
    let mac = EthernetAddress(dev.0.mac);
    let mut iface = Box::new(Interface::new(
        Config::new(HardwareAddress::Ethernet(mac)),
        &mut dev,
        now(),
    ));
    let mut sockets = SocketSet::new(Vec::new());
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let udp_buffer =
        || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0u8; 4096]);
    let echo = sockets.add(udp::Socket::new(udp_buffer(), udp_buffer()));
    if let Err(e) = sockets.get_mut::<udp::Socket>(echo).bind(ECHO_PORT) {
        println!("net: cannot bind UDP {ECHO_PORT}: {e:?}");
    }
    let tcp_buffer = || tcp::SocketBuffer::new(vec![0u8; 4096]);
    let tcp_echo = sockets.add(tcp::Socket::new(tcp_buffer(), tcp_buffer()));
    let mut tcp_last = now();
    let mut tcp_seen = tcp::State::Closed;
    let mut reported_ring_error = false;
    loop {
        if let Err(e) = dev.0.poll() {
            if !reported_ring_error {
                println!("net: {e}");
                reported_ring_error = true;
            }
        }
        iface.poll(now(), &mut dev, &mut sockets);
        if let Some(event) = sockets.get_mut::<dhcpv4::Socket>(dhcp).poll() {
            apply_dhcp(&mut iface, event);
        }
        let s = sockets.get_mut::<udp::Socket>(echo);
        while let Ok((data, meta)) = s.recv() {
            let data = data.to_vec();
            let _ = s.send_slice(&data, meta);
        }
        serve_tcp_echo(
            sockets.get_mut::<tcp::Socket>(tcp_echo),
            &mut tcp_last,
            &mut tcp_seen,
        );
        iface.poll(now(), &mut dev, &mut sockets);
        let wait = iface
            .poll_delay(now(), &sockets)
            .map_or(POLL_US, |d| d.total_micros().clamp(100, POLL_US));
        os::sleep_us(wait);
    }
}

/// One connection at a time on TCP port 7: what arrives is sent back. We close our side
/// when the client closes its own, or after [`echo::IDLE_US`] without data (a client such
/// as busybox `nc` waits for the server to close), and listen again once it is gone.
/// `last` is when the connection last carried data. Each state change is logged
/// (`net: tcp echo <state>`): one connection at a time keeps that short, and it is what
/// tells a refused connection from a lost echo.
fn serve_tcp_echo(s: &mut tcp::Socket<'_>, last: &mut Instant, seen: &mut tcp::State) {
    if s.state() != *seen {
        *seen = s.state();
        match s.remote_endpoint() {
            Some(peer) => println!("net: tcp echo {} peer {peer}", *seen),
            None => println!("net: tcp echo {}", *seen),
        }
    }
    if !s.is_open() {
        let _ = s.listen(ECHO_PORT);
        *last = now();
        return;
    }
    if matches!(s.state(), tcp::State::Listen | tcp::State::SynReceived) {
        // Idle time counts from the end of the handshake.
        *last = now();
        return;
    }
    while s.can_recv() && s.can_send() {
        let mut chunk = [0u8; 512];
        let Ok(n) = s.recv_slice(&mut chunk) else {
            break;
        };
        if n == 0 {
            break;
        }
        let _ = s.send_slice(&chunk[..n]);
        *last = now();
    }
    let phase = match s.state() {
        tcp::State::Listen | tcp::State::SynReceived => echo::Phase::Handshake,
        tcp::State::Established => echo::Phase::Open,
        tcp::State::CloseWait => echo::Phase::PeerClosed,
        _ => echo::Phase::Other,
    };
    let idle_us = (now() - *last).total_micros();
    if echo::should_close(phase, s.send_queue(), idle_us) {
        s.close();
    }
}

fn apply_dhcp(iface: &mut Interface, event: dhcpv4::Event<'_>) {
    match event {
        dhcpv4::Event::Configured(cfg) => {
            iface.update_ip_addrs(|addrs| {
                addrs.clear();
                let _ = addrs.push(IpCidr::Ipv4(cfg.address));
            });
            match cfg.router {
                Some(gw) => {
                    let _ = iface.routes_mut().add_default_ipv4_route(gw);
                    println!("net: address {} gateway {gw}", cfg.address);
                }
                None => {
                    iface.routes_mut().remove_default_ipv4_route();
                    println!("net: address {} (no gateway)", cfg.address);
                }
            }
        }
        dhcpv4::Event::Deconfigured => {
            // Also reported once at start, before any lease: only a real loss is news.
            let had = !iface.ip_addrs().is_empty();
            iface.update_ip_addrs(|addrs| addrs.clear());
            iface.routes_mut().remove_default_ipv4_route();
            if had {
                println!("net: address lost");
            }
        }
    }
}
