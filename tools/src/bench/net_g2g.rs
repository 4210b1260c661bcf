//! `bench net`'s third run: TCP between two stock Linux guests through netdom's switch,
//! never leaving the machine. `server` (pCPU 2) serves [`BYTES`] of zeros with busybox
//! `httpd` from RAM; `client` (pCPU 1) fetches them [`PASSES`] times with busybox `wget`,
//! each fetch timed by its own virtual counter (`/bin/cntvct`), under `-icount` like the
//! other runs. Both take static addresses on the switch's subnet: no DHCP, no slirp on the
//! path. There is no native counterpart (two machines would be two QEMUs); the figure is
//! printed beside the guest <-> host ones.

use super::console::{boot_typing, Step};
use super::net::{BYTES, PASSES, TAG};
use crate::qemu::RunOptions;
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;
use std::time::Duration;

/// The serving guest's name and address.
pub const SERVER: (&str, &str) = ("server", "10.0.2.200");
/// The fetching guest's name and address.
pub const CLIENT: (&str, &str) = ("client", "10.0.2.201");

/// The system: dom0 and netdom on pCPU 0, each guest alone on its pCPU, one vif each.
pub fn system_toml() -> String {
    let linux = |name: &str, cpu: u32| {
        format!(
            "\n[[domain]]\nname = \"{name}\"\nimage = \"debian-linux\"\n\
             ramdisk = \"debian-initramfs\"\nmemory = 256\nvcpus = 1\ncpus = \"{cpu}\"\n\
             cmdline = \"console=hvc0 quiet\"\nvif = [\"\"]\n"
        )
    };
    format!(
        "# Written by `cargo bulkhead bench net` (guest to guest).\n[system]\nsmp = 3\n\
         memory = 1024\n\n[[domain]]\nname = \"netdom\"\nimage = \"netdom\"\nmemory = 16\n\
         vcpus = 1\ncpus = \"0\"\n{}{}",
        linux(SERVER.0, 2),
        linux(CLIENT.0, 1)
    )
}

/// `NETBENCH` written so that the echo of a typed line never matches it.
fn tag() -> String {
    format!("{}\"\"{}", &TAG[..3], &TAG[3..])
}

/// The lines typed, in order: the server's address, blob and `httpd`; the client's address;
/// then the client's timed fetches once the server said it is up.
pub fn steps() -> Vec<Step> {
    let tag = tag();
    let up = |who: &str| format!("[{who}] {}", crate::guest::initramfs::MARKER);
    let (server, client) = (SERVER, CLIENT);
    let blocks = BYTES / 65536;
    let step = |trigger: String, domain: &str, line: String| Step {
        trigger,
        domain: domain.to_owned(),
        line: line + "\n",
    };
    vec![
        step(
            up(server.0),
            server.0,
            format!(
                "ip addr add {}/24 dev eth0; ip link set eth0 up; mkdir -p /www; \
                 dd if=/dev/zero of=/www/blob bs=65536 count={blocks} 2>/dev/null; \
                 httpd -p 80 -h /www && echo {tag}-SERVER-UP",
                server.1
            ),
        ),
        step(
            up(client.0),
            client.0,
            format!(
                "ip addr add {}/24 dev eth0; ip link set eth0 up; echo {tag}-CLIENT-UP",
                client.1
            ),
        ),
        step(
            format!("[{}] {TAG}-SERVER-UP", server.0),
            client.0,
            format!(
                "k=0; G=0; T=0; while [ $k -lt {PASSES} ]; do t0=$(cntvct); \
                 b=$(wget -q -O - http://{}/blob | wc -c); t1=$(cntvct); T=$((T+t1-t0)); \
                 G=$((G+b)); k=$((k+1)); done; echo {tag}-G2G passes=$k received=$G ticks=$T",
                server.1
            ),
        ),
    ]
}

/// The regex of the client's result line.
pub fn result_re() -> String {
    format!(
        r"\[{}\] {TAG}-G2G passes=(\d+) received=(\d+) ticks=(\d+)",
        CLIENT.0
    )
}

/// Guest-to-guest figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct G2gRun {
    /// Bytes fetched over all passes.
    pub bytes: u64,
    /// Server to client, MiB/s of the client's time.
    pub mib_s: f64,
    /// Client ns over all fetches.
    pub interval_ns: u64,
}

/// The figures from a console log; `ns_per_tick` virtual ns per counter tick.
pub fn parse(log: &str, ns_per_tick: u64) -> Result<G2gRun> {
    let re = Regex::new(&result_re()).expect("static regex");
    let c = re
        .captures_iter(log)
        .last()
        .context("no guest-to-guest result line")?;
    let n = |i: usize| c[i].parse::<u64>().context("a result field overflows");
    let (passes, received, ticks) = (n(1)?, n(2)?, n(3)?);
    let bytes = PASSES * BYTES;
    if passes != PASSES || received != bytes {
        bail!("{passes} of {PASSES} fetches ran and {received} of {bytes} bytes arrived");
    }
    if ticks == 0 {
        bail!("bad counter interval: 0 ticks");
    }
    let interval_ns = ticks.checked_mul(ns_per_tick).context("counter overflow")?;
    Ok(G2gRun {
        bytes,
        mib_s: bytes as f64 / (1 << 20) as f64 / (interval_ns as f64 / 1e9),
        interval_ns,
    })
}

/// Boots the two guests beside netdom and measures (see the module docs).
pub fn run(build: bool, ns_per_tick: u64, timeout: Duration) -> Result<G2gRun> {
    let dir = crate::paths::out_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let system = dir.join("net-g2g.toml");
    std::fs::write(&system, system_toml())
        .with_context(|| format!("cannot write {}", system.display()))?;
    let _ = std::fs::remove_file(crate::ctl::default_socket());
    let expect = crate::markers::Expect::new()
        .then(&result_re())?
        .forbid(r"\[(server|client)\] .*(Kernel panic|BUG:|Oops)")?;
    let opts = RunOptions::bench(system, expect, timeout, build);
    let out = boot_typing("two Linux guests on netdom's switch", &opts, &steps())?;
    parse(&out.log, ns_per_tick).with_context(|| format!("in {}", out.log_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_never_matches_its_own_echo() {
        for s in steps() {
            assert!(!s.line.contains(TAG), "{}", s.line);
        }
        let echo = format!("[client] / # echo {}-G2G passes=$k", tag());
        assert!(!Regex::new(&result_re()).unwrap().is_match(&echo));
    }

    #[test]
    fn figures_from_the_result_line() {
        let bytes = PASSES * BYTES;
        // 62.5 MHz counter: 16 ns a tick; one second of fetching in all.
        let log = format!("[client] {TAG}-G2G passes={PASSES} received={bytes} ticks=62500000\n");
        let r = parse(&log, 16).unwrap();
        assert_eq!(r.interval_ns, 1_000_000_000);
        assert!((r.mib_s - bytes as f64 / 1048576.0).abs() < 1e-9);
        let short = format!("[client] {TAG}-G2G passes={PASSES} received=5 ticks=9\n");
        assert!(parse(&short, 16).is_err());
        let zero = format!("[client] {TAG}-G2G passes={PASSES} received={bytes} ticks=0\n");
        assert!(parse(&zero, 16).is_err());
        assert!(parse("nothing", 16).is_err());
    }

    #[test]
    fn the_generated_system_is_valid() {
        let dir = std::env::temp_dir().join(format!("g2g-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("net-g2g.toml");
        let text = system_toml();
        std::fs::write(&path, &text).unwrap();
        let sys = crate::system::System::parse(&path, &text, Default::default()).expect(&text);
        let names: Vec<&str> = sys.domains.iter().map(|d| d.name.value.as_str()).collect();
        assert_eq!(names, ["netdom", "server", "client"]);
        assert!(sys.domains[1..].iter().all(|d| d.vifs.len() == 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
