//! Host tests: argument parsing, the target list, the known-crash list and libFuzzer output.

use super::libfuzzer::Reader;
use super::*;
use clap::Parser;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    fuzz: FuzzArgs,
}

fn parse(args: &[&str]) -> Result<FuzzArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("fuzz").chain(args.iter().copied())).map(|c| c.fuzz)
}

#[test]
fn arguments() {
    let a = parse(&[]).unwrap();
    assert_eq!((a.target, a.time, a.list), (None, DEFAULT_SECS, false));
    let a = parse(&["xenstore", "--time", "30"]).unwrap();
    assert_eq!((a.target.as_deref(), a.time), (Some("xenstore"), 30));
    assert!(parse(&["--list"]).unwrap().list);
    assert!(parse(&["--list", "xenstore"]).is_err());
    assert!(parse(&["--time", "0"]).is_err());
    assert!(parse(&["--time", "x"]).is_err());
    assert!(parse(&["a", "b"]).is_err());
}

#[test]
fn the_targets_are_the_fuzz_projects_binaries() {
    let all = targets().unwrap();
    assert_eq!(
        all,
        ["xenstore", "rings", "mgmt", "control", "xlcfg", "system", "blkif", "netif"]
    );
    for t in &all {
        let dir = project_dir();
        assert!(
            dir.join("fuzz_targets").join(format!("{t}.rs")).is_file(),
            "{t}"
        );
        assert!(dir.join("corpus").join(t).is_dir(), "{t} has no seeds");
    }
    let one = |t: &str| FuzzArgs {
        target: Some(t.into()),
        time: 1,
        list: false,
    };
    assert_eq!(selected(&one("mgmt"), &all).unwrap(), ["mgmt"]);
    let e = selected(&one("nope"), &all).unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown fuzz target `nope`; the targets are xenstore, rings, mgmt, control, xlcfg, system, blkif, netif"
    );
    let every = FuzzArgs {
        target: None,
        time: 1,
        list: false,
    };
    assert_eq!(selected(&every, &all).unwrap(), all);
    assert!(bin_names("[package]\nname = \"x\"\n").is_err());
    assert!(bin_names("[[bin]]\npath = \"a.rs\"\n").is_err());
}

#[test]
fn known_crash_list() {
    let k = KnownCrashes::parse(
        "# target file location\n\nxenstore crash-12ab domains/dom0/src/xenstore/txn.rs:40 # why\n",
    )
    .unwrap();
    assert!(k.lists_file("xenstore", "crash-12ab"));
    assert!(!k.lists_file("rings", "crash-12ab"));
    assert!(k
        .matching("xenstore", "domains/dom0/src/xenstore/txn.rs:40:13")
        .is_some());
    assert!(k
        .matching("xenstore", "domains/dom0/src/xenstore/txn.rs:401:13")
        .is_none());
    assert!(k
        .matching("mgmt", "domains/dom0/src/xenstore/txn.rs:40:13")
        .is_none());
    assert!(KnownCrashes::parse("xenstore only-two").is_err());
    // The committed list parses.
    KnownCrashes::load(&project_dir()).unwrap();
}

#[test]
fn reads_a_clean_run() {
    let mut r = Reader::default();
    for l in [
        "INFO: Seed: 123",
        "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb",
        "#4096\tpulse  cov: 812 ft: 2048 corp: 120/3410b lim: 43 exec/s: 2048 rss: 31Mb",
        "#60312\tDONE   cov: 900 ft: 2500 corp: 1187/40Kb lim: 4096 exec/s: 3769 rss: 33Mb",
        "Done 60312 runs in 16 second(s)",
        "stat::number_of_executed_units: 60312",
        "stat::average_exec_per_sec:     3769",
        "stat::peak_rss_mb:              30",
    ] {
        r.line(l);
    }
    let s = &r.stats;
    assert_eq!(
        (s.runs, s.exec_per_sec, s.cov, s.ft, s.corpus, s.peak_rss_mb),
        (
            Some(60312),
            Some(3769),
            Some(900),
            Some(2500),
            Some(1187),
            Some(30)
        )
    );
    let known = KnownCrashes::default();
    assert_eq!(r.outcome("x", true, &known), Outcome::Clean);
    // A non-zero exit without evidence is still a failure.
    assert!(matches!(r.outcome("x", false, &known), Outcome::Crashed(_)));
}

#[test]
fn reads_a_crash() {
    let mut r = Reader::default();
    for l in [
        "thread '<unnamed>' panicked at domains/dom0/src/xenstore/txn.rs:40:13:",
        "attempt to add with overflow",
        "==4242== ERROR: libFuzzer: deadly signal",
        "MS: 1 ChangeBit-; base unit: 0000",
        "artifact_prefix='target/fuzz/artifacts/xenstore/'; Test unit written to target/fuzz/artifacts/xenstore/crash-abc",
    ] {
        r.line(l);
    }
    let crash = Crash {
        kind: Some("deadly signal".into()),
        artifact: Some("target/fuzz/artifacts/xenstore/crash-abc".into()),
        panic_at: Some("domains/dom0/src/xenstore/txn.rs:40:13".into()),
    };
    let none = KnownCrashes::default();
    assert_eq!(r.outcome("xenstore", false, &none), Outcome::Crashed(crash));
    let listed =
        KnownCrashes::parse("xenstore crash-abc domains/dom0/src/xenstore/txn.rs:40").unwrap();
    assert_eq!(
        r.outcome("xenstore", false, &listed),
        Outcome::Known("domains/dom0/src/xenstore/txn.rs:40:13".into())
    );
}
