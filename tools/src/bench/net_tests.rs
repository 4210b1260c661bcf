//! Host tests of `bench net`'s guest script, result parsing, figures and table.

use super::*;

/// A result line as the guest prints it, every byte received, with tick sums `t`.
fn line(t: [u64; 2]) -> String {
    format!(
        "NETBENCH-RESULT dhcp=0 passes=3 send_rc=0 received={} ticks={},{}",
        PASSES * BYTES,
        t[0],
        t[1]
    )
}

#[test]
fn the_script_never_echoes_its_own_tags() {
    for native in [false, true] {
        let s = script(native, 40001, 40002);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, crate::guest::initramfs::MARKER);
        assert_eq!(s[1].0, "NETBENCH-STEP-1");
        for (i, (_, text)) in s.iter().enumerate() {
            assert!(!text.contains(TAG), "line {i} echoes {TAG}: {text}");
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
            assert!(text.len() < 512, "line {i} is {} bytes", text.len());
        }
        assert!(s[0].1.contains("NET\"\"BENCH-STEP-1"));
        assert!(s[0].1.contains("udhcpc -i eth0"));
        assert_eq!(s[0].1.contains("insmod"), native, "{}", s[0].1);
        assert!(s[1].1.contains("| nc 10.0.2.2 40001 "), "{}", s[1].1);
        assert!(s[1].1.contains("nc 10.0.2.2 40002 | wc -c"), "{}", s[1].1);
        assert!(s[1].1.contains(&format!("bs={BLOCK} count={BLOCKS}")));
    }
    // virtio-net's dependencies load first.
    let load = &script(true, 1, 2)[0].1;
    let at = |m: &str| load.find(m).unwrap();
    assert!(at("/failover.ko") < at("/net_failover.ko"));
    assert!(at("/net_failover.ko") < at("/virtio_net.ko"));
}

#[test]
fn parses_the_result_line_not_its_echo() {
    let typed = &script(false, 1, 2)[1].1;
    let log = format!(
        "[linux] / # {typed}[linux] {}\r\n[linux] / # \n",
        line([7, 9])
    );
    assert_eq!(
        parse(&log),
        Some(Raw {
            dhcp: 0,
            passes: 3,
            send_rc: 0,
            received: PASSES * BYTES,
            ticks: [7, 9],
        })
    );
    assert!(Regex::new(&format!(r"\[linux\] {}", result_re()))
        .unwrap()
        .is_match(&log));
    assert_eq!(parse(&format!("[linux] / # {typed}")), None);
    // A counter that failed to print, or went back, leaves the line unparsable.
    assert_eq!(parse(&line([7, 9]).replace(",9", ",")), None);
    assert_eq!(parse(&line([7, 9]).replace(",9", ",-9")), None);
}

#[test]
fn figures_and_ratios_from_counter_ticks() {
    // 16 ns per tick: 62.5M ticks = 1 s; 48 MiB each way.
    let s = 62_500_000;
    let all = PASSES * BYTES;
    let native = parse(&line([s, 2 * s])).unwrap();
    let bulkhead = parse(&line([2 * s, 2 * s])).unwrap();
    let r = report((&bulkhead, all), (&native, all)).unwrap();
    assert_eq!(r.native.send_mib_s, 48.0);
    assert_eq!(r.native.receive_mib_s, 24.0);
    assert_eq!(r.native.interval_ns, [1_000_000_000, 2_000_000_000]);
    assert_eq!(r.bulkhead.send_mib_s, 24.0);
    assert_eq!(r.ratios.send, 0.5);
    assert_eq!(r.ratios.receive, 1.0);
    let t = table(&r);
    assert!(t.contains("0.500x below goal"), "{t}");
    assert!(t.contains("1.000x ok"), "{t}");
    assert!(t.contains("3 x 16 MiB each way"), "{t}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["benchmark"], "net");
    assert_eq!(json["goal"], 0.7);
    assert_eq!(json["ratios"]["send"], 0.5);
}

#[test]
fn failed_or_short_runs_are_errors() {
    let all = PASSES * BYTES;
    let ok = parse(&line([1, 2])).unwrap();
    let err = |raw: Raw, sunk: u64| format!("{:#}", report((&raw, sunk), (&ok, all)).unwrap_err());
    let e = err(
        Raw {
            dhcp: 1,
            ..ok.clone()
        },
        all,
    );
    assert!(e.contains("udhcpc failed"), "{e}");
    let e = err(ok.clone(), all - 1);
    assert!(e.contains(&format!("received {} of {all}", all - 1)), "{e}");
    let e = err(
        Raw {
            send_rc: 1,
            ..ok.clone()
        },
        all,
    );
    assert!(e.contains("nc status 1"), "{e}");
    let e = err(
        Raw {
            received: 5,
            ..ok.clone()
        },
        all,
    );
    assert!(e.contains("guest received 5 of"), "{e}");
    let e = err(
        Raw {
            passes: 2,
            ..ok.clone()
        },
        all,
    );
    assert!(e.contains("2 of 3 passes"), "{e}");
    let e = err(
        Raw {
            ticks: [1, 0],
            ..ok.clone()
        },
        all,
    );
    assert!(e.contains("bad counter interval 1"), "{e}");
}

#[test]
fn the_generated_system_has_netdom_and_a_vif() {
    let toml = super::super::net_run::system_toml();
    assert!(toml.contains("image = \"netdom\""), "{toml}");
    assert!(toml.contains("vif = [\"\"]"), "{toml}");
    assert!(toml.contains(&format!("name = \"{}\"", super::super::net_run::DOMAIN)));
}

#[test]
fn the_generated_system_is_valid() {
    use crate::system::{Overrides, System};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.toml");
    let text = super::super::net_run::system_toml();
    std::fs::write(&file, &text).unwrap();
    let sys =
        System::parse(&file, &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(sys.warnings.is_empty(), "{:?}", sys.warnings);
    let linux = sys
        .domains
        .iter()
        .find(|d| d.name.value == "linux")
        .unwrap();
    assert_eq!(linux.vifs.len(), 1, "{text}");
}
