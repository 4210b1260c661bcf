//! `bulkhead bench net`: TCP throughput between the stock Debian Linux guest and the host,
//! both ways, with `xen-netfront` served by the netdom driver domain (its uplink QEMU's
//! user network) against the same kernel and initramfs booted natively in the same QEMU
//! with a virtio-net device on the same user network, and the ratios.
//!
//! The host side is the bench tool itself: a TCP sink and a TCP source on 127.0.0.1, which
//! the guest reaches as [`HOST`] through QEMU's NAT. The guest measures itself with busybox:
//! `dd if=/dev/zero bs=64k | nc HOST SINK` (guest to host) and `nc HOST SOURCE | wc -c` (host
//! to guest), [`PASSES`] times each, every pipeline timed by the guest's virtual counter
//! (`/bin/cntvct`, CNTVCT_EL0) as in `bench blk`, so host wall-clock never enters. Both runs
//! are under [`crate::qemu::ICOUNT_ARGS`]: the guest's CPU work counts the same on any host,
//! but the slirp side runs on QEMU's host threads and an idle CPU skips to its next timer
//! deadline, so the figures vary between runs.

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;

/// Where the guest reaches the host on QEMU's user network.
pub const HOST: &str = "10.0.2.2";
/// 64 KiB blocks sent each way per pass.
pub const BLOCKS: u64 = 256;
/// Size of one block.
pub const BLOCK: u64 = 65536;
/// Bytes per transfer.
pub const BYTES: u64 = BLOCKS * BLOCK;
/// Transfers each way, summed.
pub const PASSES: u64 = 3;
/// DESIGN's target for each ratio.
pub const GOAL: f64 = 0.7;

/// The result line's tag; the scripts print it as `NET""BENCH` so that the echo of the
/// typed line never matches.
pub const TAG: &str = "NETBENCH";

/// The modules a native boot loads before it has `eth0`: virtio-net and what it needs,
/// which Debian builds as modules and the shared initramfs does not carry (the native run
/// appends them in a second cpio under [`NATIVE_MODULE_DIR`]).
pub const NATIVE_MODULES: [&str; 3] = [
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
];
/// Where the native initramfs's extra archive puts [`NATIVE_MODULES`].
pub const NATIVE_MODULE_DIR: &str = "benchnet";

/// The shell lines typed on the guest's console, each with the console line that must
/// appear before it is typed. `native` loads virtio-net first. `sink` and `source` are the
/// host's ports. Each measured interval starts and ends inside one line.
pub fn script(native: bool, sink: u16, source: u16) -> Vec<(String, String)> {
    let tag = format!("{}\"\"{}", &TAG[..3], &TAG[3..]);
    let load: String = if native {
        NATIVE_MODULES
            .iter()
            .map(|m| {
                let file = m.rsplit('/').next().unwrap_or(m);
                format!("insmod /{NATIVE_MODULE_DIR}/{file}; ")
            })
            .collect()
    } else {
        String::new()
    };
    let lines = [
        format!(
            "{load}ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; d=$?; \
             s=0; S=0; R=0; G=0; echo {tag}-STEP-1"
        ),
        format!(
            "k=0; while [ $k -lt {PASSES} ]; do t0=$(cntvct); dd if=/dev/zero bs={BLOCK} \
             count={BLOCKS} 2>/dev/null | nc {HOST} {sink} || s=$?; t1=$(cntvct); \
             b=$(nc {HOST} {source} | wc -c); t2=$(cntvct); S=$((S+t1-t0)); R=$((R+t2-t1)); \
             G=$((G+b)); k=$((k+1)); done; echo {tag}-RESULT dhcp=$d passes=$k \
             send_rc=$s received=$G ticks=$S,$R"
        ),
    ];
    let triggers = [
        crate::guest::initramfs::MARKER.to_owned(),
        format!("{TAG}-STEP-1"),
    ];
    triggers
        .into_iter()
        .zip(lines)
        .map(|(t, l)| (t, l + "\n"))
        .collect()
}

/// The regex of the result line.
pub fn result_re() -> String {
    format!(r"{TAG}-RESULT dhcp=(\d+) passes=(\d+) send_rc=(\d+) received=(\d+) ticks=(\d+),(\d+)")
}

/// The guest's result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// Exit status of `udhcpc`.
    pub dhcp: u32,
    /// Passes run.
    pub passes: u64,
    /// Exit status of the last failed send pipeline (0: none failed).
    pub send_rc: u32,
    /// Bytes the guest received from the host over all passes.
    pub received: u64,
    /// Counter ticks: all sends, all receives (a negative difference fails to parse).
    pub ticks: [u64; 2],
}

/// Finds the (last) result line in a console log.
pub fn parse(log: &str) -> Option<Raw> {
    let re = Regex::new(&result_re()).expect("static regex");
    let c = re.captures_iter(log).last()?;
    let n = |i: usize| c[i].parse::<u64>().ok();
    Some(Raw {
        dhcp: c[1].parse().ok()?,
        passes: n(2)?,
        send_rc: c[3].parse().ok()?,
        received: n(4)?,
        ticks: [n(5)?, n(6)?],
    })
}

/// One run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetRun {
    /// Bytes sent each way over all passes.
    pub bytes: u64,
    /// Guest to host, MiB/s of guest time.
    pub send_mib_s: f64,
    /// Host to guest, MiB/s of guest time.
    pub receive_mib_s: f64,
    /// Guest ns: all sends, all receives.
    pub interval_ns: [u64; 2],
}

impl NetRun {
    /// The figures of `raw`, with `ns_per_tick` virtual ns per counter tick; `sunk` is what
    /// the host's sink received from this run.
    pub fn new(raw: &Raw, sunk: u64, ns_per_tick: u64) -> Result<Self> {
        if raw.dhcp != 0 {
            bail!("udhcpc failed (status {})", raw.dhcp);
        }
        if raw.passes != PASSES {
            bail!("{} of {PASSES} passes ran", raw.passes);
        }
        let bytes = PASSES * BYTES;
        if raw.send_rc != 0 || sunk != bytes {
            bail!(
                "guest to host: the host received {sunk} of {bytes} bytes (nc status {})",
                raw.send_rc
            );
        }
        if raw.received != bytes {
            bail!(
                "host to guest: the guest received {} of {bytes} bytes",
                raw.received
            );
        }
        let mut interval_ns = [0u64; 2];
        for (i, (t, ns)) in raw.ticks.iter().zip(interval_ns.iter_mut()).enumerate() {
            if *t == 0 {
                bail!("bad counter interval {i}: 0 ticks");
            }
            *ns = t.checked_mul(ns_per_tick).context("counter overflow")?;
        }
        let mib_s = |ns: u64| bytes as f64 / (1 << 20) as f64 / (ns as f64 / 1e9);
        Ok(Self {
            bytes,
            send_mib_s: mib_s(interval_ns[0]),
            receive_mib_s: mib_s(interval_ns[1]),
            interval_ns,
        })
    }
}

/// bulkhead / native.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    /// Guest to host.
    pub send: f64,
    /// Host to guest.
    pub receive: f64,
}

/// The benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetReport {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// How QEMU ran (`-icount shift=0,sleep=off -seed 1`).
    pub clock: String,
    /// The guest kernel's counter frequency assumed.
    pub counter_hz: u64,
    /// Bytes per transfer.
    pub transfer_bytes: u64,
    /// Transfers each way per run.
    pub passes: u64,
    /// xen-netfront on netdom under the microvisor.
    pub bulkhead: NetRun,
    /// virtio-net, same kernel at EL1 on bare QEMU.
    pub native: NetRun,
    /// bulkhead / native.
    pub ratios: Ratios,
    /// The goal for every ratio.
    pub goal: f64,
    /// Between two Linux guests through netdom's switch (no native counterpart).
    pub guest_to_guest: Option<super::net_g2g::G2gRun>,
}

/// Builds the report from the two result lines and what the host's sink got in each run.
pub fn report(bulkhead: (&Raw, u64), native: (&Raw, u64)) -> Result<NetReport> {
    let hz = super::boot::COUNTER_HZ;
    let ns = super::boot::ns_per_tick(hz).context("the counter period is not a whole ns")?;
    let bulkhead = NetRun::new(bulkhead.0, bulkhead.1, ns).context("under the microvisor")?;
    let native = NetRun::new(native.0, native.1, ns).context("native")?;
    Ok(NetReport {
        benchmark: "net",
        clock: crate::qemu::ICOUNT_ARGS.join(" "),
        counter_hz: hz,
        transfer_bytes: BYTES,
        passes: PASSES,
        ratios: Ratios {
            send: bulkhead.send_mib_s / native.send_mib_s,
            receive: bulkhead.receive_mib_s / native.receive_mib_s,
        },
        goal: GOAL,
        bulkhead,
        native,
        guest_to_guest: None,
    })
}

/// The table `bench net` prints.
pub fn table(r: &NetReport) -> String {
    let b = &r.bulkhead;
    let n = &r.native;
    let verdict = |x: f64| if x >= r.goal { "ok" } else { "below goal" };
    let mut rows = vec![
        format!(
            "net: TCP to and from the host, {} x {} MiB each way; guest-measured (CNTVCT) under {}",
            r.passes,
            r.transfer_bytes >> 20,
            r.clock
        ),
        format!(
            "{:<34} {:>12} {:>12} {:>8}",
            "",
            "bulkhead",
            "native",
            format!("ratio (goal >= {})", r.goal)
        ),
        format!("{:<34} {:>12} {:>12}", "device", "netfront", "virtio-net"),
    ];
    for (name, x, y, ratio) in [
        (
            "guest -> host MiB/s (dd | nc)",
            b.send_mib_s,
            n.send_mib_s,
            r.ratios.send,
        ),
        (
            "host -> guest MiB/s (nc | wc)",
            b.receive_mib_s,
            n.receive_mib_s,
            r.ratios.receive,
        ),
    ] {
        rows.push(format!(
            "{name:<34} {x:>12.1} {y:>12.1} {ratio:>8.3}x {}",
            verdict(ratio)
        ));
    }
    if let Some(g) = &r.guest_to_guest {
        rows.push(format!(
            "{:<34} {:>12.1} {:>12}  (no native counterpart)",
            "guest -> guest MiB/s (httpd/wget)", g.mib_s, "-"
        ));
    }
    rows.push(
        "note: the host end is QEMU's user network (slirp) on host threads; under -icount an \
         idle guest CPU skips to its next timer, so figures vary between runs."
            .to_owned(),
    );
    rows.join("\n")
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
