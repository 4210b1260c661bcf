//! Seeds and regressions replayed on a plain build; the committed seeds kept in step with
//! their generators (`BULKHEAD_FUZZ_WRITE_SEEDS=1 cargo test` rewrites them).

use super::*;
use std::path::{Path, PathBuf};

fn dir(parts: &[&str]) -> PathBuf {
    parts
        .iter()
        .fold(PathBuf::from(env!("CARGO_MANIFEST_DIR")), |p, s| p.join(s))
}

fn files(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

/// `(target, file name)` of the reproducers `regressions/known-crashes.txt` lists: crashes
/// found in code this crate may not fix, replayed only once they are fixed.
fn known_crashes() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(dir(&["regressions", "known-crashes.txt"])).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn targets_are_the_binaries() {
    let manifest = std::fs::read_to_string(dir(&["Cargo.toml"])).unwrap();
    let bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("name = ")))
        .map(|n| n.trim_matches('"'))
        .collect();
    assert_eq!(bins, TARGETS);
    for t in TARGETS {
        assert!(dir(&["fuzz_targets", &format!("{t}.rs")]).is_file(), "{t}");
        assert!(!files(&dir(&["corpus", t])).is_empty(), "no seeds for {t}");
    }
    assert!(!run("nope", b""));
}

#[test]
fn seeds_are_the_generated_ones() {
    let write = std::env::var_os("BULKHEAD_FUZZ_WRITE_SEEDS").is_some();
    for t in TARGETS {
        let Some(seeds) = generated_seeds(t) else {
            continue;
        };
        let d = dir(&["corpus", t]);
        if write {
            std::fs::create_dir_all(&d).unwrap();
            for f in files(&d) {
                std::fs::remove_file(f).unwrap();
            }
        }
        for (name, bytes) in &seeds {
            let path = d.join(name);
            if write {
                std::fs::write(&path, bytes).unwrap();
            }
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert!(
                on_disk == *bytes,
                "{} is stale: rerun with BULKHEAD_FUZZ_WRITE_SEEDS=1",
                path.display()
            );
        }
        assert_eq!(
            files(&d).len(),
            seeds.len(),
            "stray files in {}",
            d.display()
        );
    }
}

#[test]
fn seeds_and_regressions_replay() {
    let known = known_crashes();
    for t in TARGETS {
        let mut inputs = files(&dir(&["corpus", t]));
        inputs.extend(files(&dir(&["regressions", t])));
        for f in inputs {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if known.iter().any(|(kt, kf)| kt == t && *kf == name) {
                continue;
            }
            let data = std::fs::read(&f).unwrap();
            assert!(run(t, &data), "{}", f.display());
        }
    }
}

#[test]
fn every_generated_seed_reaches_its_harness() {
    // The scripts are not vacuous: a xenstore seed produces replies, a mgmt seed frames.
    let mut xs = dom0::xenstore::Xenstore::new(dom0::xenstore::Quotas::default());
    xs.introduce(1).unwrap();
    let (_, nodes) = &xenstore::seeds()[0];
    // Replay the first FEED step by hand: op, conn, u16 length, message.
    assert_eq!(nodes[1], xenstore::op::FEED);
    let len = usize::from(u16::from_le_bytes([nodes[3], nodes[4]]));
    xs.feed(1, &nodes[5..5 + len]).unwrap();
    assert!(!xs.output(1).is_empty());
    for (name, bytes) in mgmt::seeds() {
        assert!(bytes.len() > 8, "{name}");
    }
}
