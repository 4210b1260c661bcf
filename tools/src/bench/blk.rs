//! `bulkhead bench blk`: disk throughput of the stock Debian Linux guest on `/dev/xvda`
//! (xen-blkfront, served by the blkdom driver domain from a virtio-blk disk) against the
//! same kernel and initramfs booted natively in the same QEMU on `/dev/vda` (virtio-blk
//! straight to Linux), each disk a fresh raw image file of [`DISK_MIB`] MiB, and the ratios.
//!
//! The guest measures itself: busybox `dd` with `oflag=direct`/`iflag=direct` (no page
//! cache) writes then reads the whole disk in 1 MiB blocks, then reads [`RANDOM_READS`] 4 KiB
//! blocks at pseudo-random offsets (one `dd` each, offsets from a fixed LCG so both runs
//! read the same blocks), then runs the same loop on `/dev/zero` as a control for the cost
//! of the shell loop and of starting `dd`. Every interval is read from the guest's virtual
//! counter (`/bin/cntvct`, CNTVCT_EL0) before and after, so host wall-clock never enters.
//!
//! Both runs are under [`crate::qemu::ICOUNT_IO_ARGS`]: one instruction is 1 ns of virtual
//! time, so the CPU side of each figure is emulated work (DESIGN §8), not the speed of a
//! shared, busy host; without icount the counter runs at host speed and the same run varied
//! several-fold between tries. The disk side cannot be counted: QEMU completes I/O on host
//! threads. Unlike the other benches (`sleep=off`, where an idle CPU jumps to its next timer
//! deadline), an idle CPU's time here runs at the host's pace (`sleep=on`): with `sleep=off`
//! a wait for the disk costs nothing if the host finishes before QEMU notices the idle CPU
//! and the distance to the guest's next timer otherwise, so the native `dd` read measured
//! 5770 MiB/s in one run and 2 MiB/s in the next. With `sleep=on` each side pays the time its
//! waits really took on the host, so the figures still vary with the host's load (least
//! when it is quiet), but within the run-to-run noise of a shared machine, not by orders of
//! magnitude.

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;

/// Size of each raw disk image, all of it written and read sequentially.
pub const DISK_MIB: u64 = 64;
/// Sequential passes (write then read the whole disk), summed: one pass's figure varies
/// with when the host completes the I/O.
pub const PASSES: u64 = 3;
/// Random 4 KiB reads (and control iterations) per run.
pub const RANDOM_READS: u64 = 200;
/// Block size of the random reads.
pub const RANDOM_BLOCK: u64 = 4096;

/// The device the guest's disk shows up as, per run.
pub const BULKHEAD_DEV: &str = "/dev/xvda";
/// ... and natively (virtio-blk).
pub const NATIVE_DEV: &str = "/dev/vda";

/// The result line's tag; the scripts print it as `BLK""BENCH` so that the echo of the
/// typed line never matches.
pub const TAG: &str = "BLKBENCH";

/// The shell lines typed on the guest's console for `dev`, each with the console line that
/// must appear before it is typed: the userspace marker, then the previous line's
/// acknowledgement. Each measured interval starts and ends inside one line, so the pauses
/// between lines are not measured.
pub fn script(dev: &str) -> Vec<(String, String)> {
    let name = dev.trim_start_matches("/dev/");
    let ack = |n: u32| format!("echo {}\"\"{}-STEP-{n}", &TAG[..3], &TAG[3..]);
    // One 4 KiB block index per iteration from x: a 31-bit LCG, seeded 1 in both loops.
    let next = "x=$(((x*1103515245+12345)%2147483648))";
    let lines = [
        format!(
            "D={dev}; M={DISK_MIB}; N={RANDOM_READS}; P={PASSES}; \
             B=$(($(cat /sys/block/{name}/size)/8)); w=0; r=0; W=0; R=0; bw=0; br=0; {}",
            ack(1)
        ),
        format!(
            "k=0; while [ $k -lt $P ]; do t0=$(cntvct); dd if=/dev/zero of=$D bs=1048576 \
             count=$M oflag=direct 2>/dev/null || w=$?; t1=$(cntvct); dd if=$D of=/dev/null \
             bs=1048576 count=$M iflag=direct 2>/dev/null || r=$?; t2=$(cntvct); \
             a=$((t1-t0)); b=$((t2-t1)); W=$((W+a)); R=$((R+b)); \
             [ $k -eq 0 -o $a -lt $bw ] && bw=$a; [ $k -eq 0 -o $b -lt $br ] && br=$b; \
             k=$((k+1)); done; {}",
            ack(2)
        ),
        format!(
            "x=1; i=0; t3=$(cntvct); while [ $i -lt $N ]; do {next}; dd if=$D of=/dev/null \
             bs={RANDOM_BLOCK} count=1 skip=$((x%B)) iflag=direct 2>/dev/null || break; \
             i=$((i+1)); done; n=$i; t4=$(cntvct); {}",
            ack(3)
        ),
        format!(
            "x=1; i=0; t5=$(cntvct); while [ $i -lt $N ]; do {next}; dd if=/dev/zero \
             of=/dev/null bs={RANDOM_BLOCK} count=1 skip=$((x%B)) 2>/dev/null || break; \
             i=$((i+1)); done; c=$i; t6=$(cntvct); echo {}\"\"{}-RESULT dev=$D mib=$M \
             passes=$P blocks=$B write_rc=$w read_rc=$r random=$n control=$c \
             ticks=$W,$R,$((t4-t3)),$((t6-t5)) best=$bw,$br",
            &TAG[..3],
            &TAG[3..]
        ),
    ];
    let triggers = [
        crate::guest::initramfs::MARKER.to_owned(),
        format!("{TAG}-STEP-1"),
        format!("{TAG}-STEP-2"),
        format!("{TAG}-STEP-3"),
    ];
    triggers
        .into_iter()
        .zip(lines)
        .map(|(t, l)| (t, l + "\n"))
        .collect()
}

/// The regex of the result line.
pub fn result_re() -> String {
    let fields = r"dev=(\S+) mib=(\d+) passes=(\d+) blocks=(\d+) write_rc=(\d+) read_rc=(\d+)";
    let times = r"random=(\d+) control=(\d+) ticks=(\d+),(\d+),(\d+),(\d+) best=(\d+),(\d+)";
    format!("{TAG}-RESULT {fields} {times}")
}

/// The guest's result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// The device measured.
    pub dev: String,
    /// MiB written and read sequentially per pass.
    pub mib: u64,
    /// Sequential passes.
    pub passes: u64,
    /// 4 KiB blocks on the disk as the guest sees it.
    pub blocks: u64,
    /// Exit status of the sequential write.
    pub write_rc: u32,
    /// Exit status of the sequential read.
    pub read_rc: u32,
    /// Random reads that succeeded (the loop stops at the first failure).
    pub random: u64,
    /// Control iterations that succeeded.
    pub control: u64,
    /// Counter ticks: all sequential writes, all sequential reads, the random reads, the
    /// control loop (a negative difference fails to parse).
    pub ticks: [u64; 4],
    /// Counter ticks of the fastest sequential write pass and the fastest read pass.
    pub best: [u64; 2],
}

/// Finds the (last) result line in a console log.
pub fn parse(log: &str) -> Option<Raw> {
    let re = Regex::new(&result_re()).expect("static regex");
    let c = re.captures_iter(log).last()?;
    let n = |i: usize| c[i].parse::<u64>().ok();
    let mut ticks = [0u64; 4];
    for (k, v) in ticks.iter_mut().enumerate() {
        *v = n(9 + k)?;
    }
    let best = [n(13)?, n(14)?];
    Some(Raw {
        dev: c[1].to_owned(),
        mib: n(2)?,
        passes: n(3)?,
        blocks: n(4)?,
        write_rc: c[5].parse().ok()?,
        read_rc: c[6].parse().ok()?,
        random: n(7)?,
        control: n(8)?,
        ticks,
        best,
    })
}

/// One run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlkRun {
    /// The device measured.
    pub device: String,
    /// Bytes written, then read, sequentially over all passes.
    pub sequential_bytes: u64,
    /// Sequential write (1 MiB O_DIRECT blocks), MiB/s of guest time.
    pub write_mib_s: f64,
    /// Sequential read (1 MiB O_DIRECT blocks), MiB/s of guest time.
    pub read_mib_s: f64,
    /// The fastest write pass alone, MiB/s: the least disturbed by the host's load, which
    /// only ever slows a pass (waits for the disk count host time).
    pub best_write_mib_s: f64,
    /// The fastest read pass alone, MiB/s.
    pub best_read_mib_s: f64,
    /// Random 4 KiB O_DIRECT reads per second of guest time, one `dd` each.
    pub random_read_iops: f64,
    /// Guest µs per random read, the `dd` start-up included.
    pub random_read_us: f64,
    /// Guest µs per control iteration (same loop and `dd`, on /dev/zero).
    pub control_us: f64,
    /// `random_read_us - control_us`: the I/O's share of a random read.
    pub random_read_io_us: f64,
    /// Guest ns: all writes, all reads, the random reads, the control loop.
    pub interval_ns: [u64; 4],
    /// Guest ns: the fastest write pass, the fastest read pass.
    pub best_ns: [u64; 2],
}

impl BlkRun {
    /// The figures of `raw`, with `ns_per_tick` virtual ns per counter tick.
    pub fn new(raw: &Raw, ns_per_tick: u64) -> Result<Self> {
        if raw.write_rc != 0 || raw.read_rc != 0 {
            bail!(
                "dd failed on {} (write status {}, read status {})",
                raw.dev,
                raw.write_rc,
                raw.read_rc
            );
        }
        if raw.random != RANDOM_READS || raw.control != RANDOM_READS {
            bail!(
                "{} of {RANDOM_READS} random reads and {} control iterations succeeded on {}",
                raw.random,
                raw.control,
                raw.dev
            );
        }
        if raw.passes == 0 {
            bail!("no sequential passes on {}", raw.dev);
        }
        let to_ns = |i: usize, ticks: u64| {
            Some(ticks)
                .filter(|&d| d > 0)
                .and_then(|d| d.checked_mul(ns_per_tick))
                .with_context(|| format!("bad counter interval {i}: {ticks} ticks"))
        };
        let mut ns = [0u64; 4];
        for (i, (out, ticks)) in ns.iter_mut().zip(raw.ticks).enumerate() {
            *out = to_ns(i, ticks)?;
        }
        let best_ns = [to_ns(4, raw.best[0])?, to_ns(5, raw.best[1])?];
        let mib = raw.mib * raw.passes;
        let bytes = mib << 20;
        let mib_s = |ns: u64| mib as f64 / (ns as f64 / 1e9);
        let pass_mib_s = |ns: u64| raw.mib as f64 / (ns as f64 / 1e9);
        let per_us = |ns: u64| ns as f64 / 1e3 / RANDOM_READS as f64;
        Ok(Self {
            device: raw.dev.clone(),
            sequential_bytes: bytes,
            write_mib_s: mib_s(ns[0]),
            read_mib_s: mib_s(ns[1]),
            best_write_mib_s: pass_mib_s(best_ns[0]),
            best_read_mib_s: pass_mib_s(best_ns[1]),
            random_read_iops: RANDOM_READS as f64 / (ns[2] as f64 / 1e9),
            random_read_us: per_us(ns[2]),
            control_us: per_us(ns[3]),
            random_read_io_us: per_us(ns[2]) - per_us(ns[3]),
            interval_ns: ns,
            best_ns,
        })
    }
}

/// bulkhead / native for each throughput figure (the goal is ≥ [`GOAL`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    /// Sequential write MiB/s.
    pub write: f64,
    /// Sequential read MiB/s.
    pub read: f64,
    /// Fastest write pass.
    pub best_write: f64,
    /// Fastest read pass.
    pub best_read: f64,
    /// Random-read IOPS.
    pub random_read_iops: f64,
}

/// DESIGN's target for each ratio.
pub const GOAL: f64 = 0.8;

/// The benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlkReport {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// How QEMU ran (`-icount shift=0,sleep=on -seed 1`).
    pub clock: String,
    /// The guest kernel's counter frequency assumed.
    pub counter_hz: u64,
    /// Size of each disk image.
    pub disk_mib: u64,
    /// Sequential passes per run.
    pub passes: u64,
    /// Random reads per run.
    pub random_reads: u64,
    /// xen-blkfront on blkdom under the microvisor.
    pub bulkhead: BlkRun,
    /// virtio-blk, same kernel at EL1 on bare QEMU.
    pub native: BlkRun,
    /// bulkhead / native.
    pub ratios: Ratios,
    /// The goal for every ratio.
    pub goal: f64,
}

/// Builds the report from the two result lines.
pub fn report(bulkhead: &Raw, native: &Raw) -> Result<BlkReport> {
    let hz = super::boot::COUNTER_HZ;
    let ns = super::boot::ns_per_tick(hz).context("the counter period is not a whole ns")?;
    let bulkhead = BlkRun::new(bulkhead, ns).context("under the microvisor")?;
    let native = BlkRun::new(native, ns).context("native")?;
    Ok(BlkReport {
        benchmark: "blk",
        clock: crate::qemu::ICOUNT_IO_ARGS.join(" "),
        counter_hz: hz,
        disk_mib: DISK_MIB,
        passes: PASSES,
        random_reads: RANDOM_READS,
        ratios: Ratios {
            write: bulkhead.write_mib_s / native.write_mib_s,
            read: bulkhead.read_mib_s / native.read_mib_s,
            best_write: bulkhead.best_write_mib_s / native.best_write_mib_s,
            best_read: bulkhead.best_read_mib_s / native.best_read_mib_s,
            random_read_iops: bulkhead.random_read_iops / native.random_read_iops,
        },
        goal: GOAL,
        bulkhead,
        native,
    })
}

/// The table `bench blk` prints.
pub fn table(r: &BlkReport) -> String {
    let b = &r.bulkhead;
    let n = &r.native;
    let verdict = |x: f64| if x >= r.goal { "ok" } else { "below goal" };
    let mut rows = vec![
        format!(
            "blk: {} MiB raw image per disk, {} sequential passes; guest-measured (CNTVCT) under {}",
            r.disk_mib, r.passes, r.clock
        ),
        format!(
            "{:<34} {:>12} {:>12} {:>8}",
            "",
            "bulkhead",
            "native",
            format!("ratio (goal >= {})", r.goal)
        ),
        format!("{:<34} {:>12} {:>12}", "device", b.device, n.device),
    ];
    for (name, x, y, ratio) in [
        (
            "sequential write MiB/s (1 MiB)",
            b.write_mib_s,
            n.write_mib_s,
            r.ratios.write,
        ),
        (
            "sequential read MiB/s (1 MiB)",
            b.read_mib_s,
            n.read_mib_s,
            r.ratios.read,
        ),
        (
            "  fastest write pass MiB/s",
            b.best_write_mib_s,
            n.best_write_mib_s,
            r.ratios.best_write,
        ),
        (
            "  fastest read pass MiB/s",
            b.best_read_mib_s,
            n.best_read_mib_s,
            r.ratios.best_read,
        ),
        (
            "random 4 KiB read IOPS",
            b.random_read_iops,
            n.random_read_iops,
            r.ratios.random_read_iops,
        ),
    ] {
        rows.push(format!(
            "{name:<34} {x:>12.1} {y:>12.1} {ratio:>8.3}x {}",
            verdict(ratio)
        ));
    }
    for (name, x, y) in [
        ("  us per random read", b.random_read_us, n.random_read_us),
        (
            "  us per control (dd on /dev/zero)",
            b.control_us,
            n.control_us,
        ),
        (
            "  us of I/O per random read",
            b.random_read_io_us,
            n.random_read_io_us,
        ),
    ] {
        rows.push(format!("{name:<34} {x:>12.1} {y:>12.1}"));
    }
    rows.push(format!(
        "note: {} random reads, one busybox dd each (its start-up is in the IOPS; the control \
         row is that cost alone). Under -icount one instruction is 1 ns, so CPU work counts \
         the same on any host; waits for the disk (QEMU's host threads) count the host time \
         they took (sleep=on), so figures vary with the host's load.",
        r.random_reads
    ));
    rows.join("\n")
}

#[cfg(test)]
#[path = "blk_tests.rs"]
mod tests;
