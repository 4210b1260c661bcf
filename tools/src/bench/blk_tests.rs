//! Host tests of `bench blk`'s guest script, result parsing, figures and table.

use super::*;

/// A result line as the guest prints it, with tick sums `t`, one sequential pass.
fn line(dev: &str, t: [u64; 4]) -> String {
    format!(
        "BLKBENCH-RESULT dev={dev} mib=64 passes=1 blocks=16384 write_rc=0 read_rc=0 \
         random=200 control=200 ticks={},{},{},{} best={},{}",
        t[0], t[1], t[2], t[3], t[0], t[1]
    )
}

#[test]
fn the_script_never_echoes_its_own_tags() {
    for dev in [BULKHEAD_DEV, NATIVE_DEV] {
        let s = script(dev);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].0, crate::guest::initramfs::MARKER);
        assert_eq!(s[3].0, "BLKBENCH-STEP-3");
        for (i, (trigger, text)) in s.iter().enumerate() {
            // The echo of a typed line must match neither a trigger nor the result.
            assert!(!text.contains(TAG), "line {i} echoes {TAG}: {text}");
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
            // Well inside a tty line and the PV console's 1 KiB input ring.
            assert!(text.len() < 512, "line {i} is {} bytes", text.len());
            if i > 0 {
                assert!(s[i - 1].1.contains(&trigger.replace(TAG, "BLK\"\"BENCH")));
            }
        }
        assert!(s[0].1.starts_with(&format!("D={dev};")));
        assert!(s[0].1.contains(&format!("/sys/block/{}/size", &dev[5..])));
        assert!(s[1].1.contains("oflag=direct") && s[1].1.contains("iflag=direct"));
        assert!(s[2].1.contains("bs=4096 count=1") && s[2].1.contains("iflag=direct"));
    }
}

#[test]
fn parses_the_result_line_not_its_echo() {
    let typed = &script(BULKHEAD_DEV)[3].1;
    let t = [10, 20, 30, 40];
    let log = format!(
        "[linux] / # {typed}[linux] {}\r\n[linux] / # \n",
        line("/dev/xvda", t)
    );
    let raw = parse(&log).unwrap();
    assert_eq!(
        raw,
        Raw {
            dev: "/dev/xvda".into(),
            mib: 64,
            passes: 1,
            blocks: 16384,
            write_rc: 0,
            read_rc: 0,
            random: 200,
            control: 200,
            ticks: t,
            best: [10, 20],
        }
    );
    assert!(Regex::new(&format!(r"\[linux\] {}", result_re()))
        .unwrap()
        .is_match(&log));
    // Only the echo: no result.
    assert_eq!(parse(&format!("[linux] / # {typed}")), None);
    // A counter that failed to print, or went back, leaves the line unparsable.
    assert_eq!(parse(&line("/dev/vda", t).replace(",40", ",")), None);
    assert_eq!(parse(&line("/dev/vda", t).replace(",40", ",-40")), None);
}

#[test]
fn figures_and_ratios_from_counter_ticks() {
    // 16 ns per tick: 62.5M ticks = 1 s.
    let s = 62_500_000;
    let native = parse(&line("/dev/vda", [s, s, s, s / 2])).unwrap();
    // Twice as slow everywhere, over three passes of the sequential part.
    // Its fastest passes take a third of the total (so 2 s for 64 MiB each way).
    let slow = line("/dev/xvda", [6 * s, 6 * s, 2 * s, s])
        .replace("passes=1", "passes=3")
        .replace(
            &format!("best={},{}", 6 * s, 6 * s),
            &format!("best={},{}", 2 * s, 2 * s),
        );
    let bulkhead = parse(&slow).unwrap();
    let r = report(&bulkhead, &native).unwrap();
    assert_eq!(r.native.write_mib_s, 64.0);
    assert_eq!(r.native.read_mib_s, 64.0);
    assert_eq!(r.native.random_read_iops, 200.0);
    assert_eq!(r.native.random_read_us, 5000.0);
    assert_eq!(r.native.control_us, 2500.0);
    assert_eq!(r.native.random_read_io_us, 2500.0);
    assert_eq!(
        r.native.interval_ns,
        [1_000_000_000, 1_000_000_000, 1_000_000_000, 500_000_000]
    );
    assert_eq!(r.native.sequential_bytes, 64 << 20);
    assert_eq!(r.bulkhead.write_mib_s, 32.0);
    assert_eq!(r.bulkhead.sequential_bytes, 3 * (64 << 20));
    assert_eq!(r.ratios.write, 0.5);
    assert_eq!(r.ratios.read, 0.5);
    assert_eq!(r.ratios.random_read_iops, 0.5);
    // A pass is one disk's worth, not the sum over passes.
    assert_eq!(r.native.best_write_mib_s, 64.0);
    assert_eq!(r.bulkhead.best_write_mib_s, 32.0);
    assert_eq!(r.bulkhead.best_read_mib_s, 32.0);
    assert_eq!(r.bulkhead.best_ns, [2_000_000_000, 2_000_000_000]);
    assert_eq!(r.ratios.best_write, 0.5);
    assert_eq!(r.ratios.best_read, 0.5);
    assert_eq!(r.clock, "-icount shift=0,sleep=on -seed 1");
    let t = table(&r);
    assert!(t.contains("/dev/xvda") && t.contains("/dev/vda"), "{t}");
    assert!(t.contains("0.500x below goal"), "{t}");
    assert!(!t.contains(" ok"), "{t}");
    let same = report(&native, &native).unwrap();
    assert!(table(&same).contains("1.000x ok"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["benchmark"], "blk");
    assert_eq!(json["ratios"]["write"], 0.5);
}

#[test]
fn failed_or_short_runs_are_errors() {
    let ok = parse(&line("/dev/vda", [1, 2, 3, 4])).unwrap();
    let err = |raw: Raw| report(&raw, &ok).unwrap_err();
    let e = err(Raw {
        write_rc: 1,
        ..ok.clone()
    });
    assert!(format!("{e:#}").contains("dd failed"), "{e:#}");
    let e = err(Raw {
        random: 17,
        ..ok.clone()
    });
    assert!(format!("{e:#}").contains("17 of 200 random reads"), "{e:#}");
    let e = err(Raw {
        passes: 0,
        ..ok.clone()
    });
    assert!(format!("{e:#}").contains("no sequential passes"), "{e:#}");
    // A counter that did not advance cannot give a rate.
    let e = err(Raw {
        ticks: [1, 0, 3, 4],
        ..ok.clone()
    });
    assert!(format!("{e:#}").contains("bad counter interval 1"), "{e:#}");
    let e = err(Raw {
        best: [1, 0],
        ..ok.clone()
    });
    assert!(format!("{e:#}").contains("bad counter interval 5"), "{e:#}");
}

#[test]
fn the_system_file_names_the_disk_the_runner_makes() {
    let root = crate::paths::workspace_root();
    let toml = std::fs::read_to_string(root.join(super::super::blk_run::SYSTEM)).unwrap();
    assert!(
        toml.contains(&format!("\"{},raw,xvda,rw\"", super::super::blk_run::DISK)),
        "{toml}"
    );
    assert!(toml.contains(&format!("name = \"{}\"", super::super::blk_run::DOMAIN)));
    assert!(toml.contains("image = \"blkdom\""));
}
