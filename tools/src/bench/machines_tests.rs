use super::*;
use crate::bench::boot::{self, Marker};
use crate::bench::micro;
use anyhow::anyhow;

fn micro_report(machine: Machine, p50: u64) -> MicroReport {
    let log: String = METRICS
        .iter()
        .map(|(n, _)| {
            format!(
                "MICRO metric={n} n=1000 min=1 p50={p50} p99={} max=9 unit=instructions\n",
                p50 + 1
            )
        })
        .collect();
    micro::report(machine, &micro::parse(&log), None).unwrap()
}

#[test]
fn micro_prints_a_column_per_machine_and_says_why_one_is_missing() {
    let cols = vec![
        Column::new(Machine::Virt, Ok(micro_report(Machine::Virt, 700))),
        Column::new(
            Machine::VirtGicv2,
            Ok(micro_report(Machine::VirtGicv2, 900)),
        ),
        Column::new(
            Machine::Zcu102,
            Err(anyhow!("micro_evtchn failed: timeout")),
        ),
    ];
    let t = micro_table(&cols);
    assert!(
        t.contains("virt (GICv3)") && t.contains("virt-gicv2 (GICv2)"),
        "{t}"
    );
    assert!(t.contains("zcu102 (GIC-400 v2)"), "{t}");
    let row = t
        .lines()
        .find(|l| l.starts_with("xen_version round trip"))
        .unwrap();
    let cells: Vec<_> = row[LABEL..]
        .split("  ")
        .filter(|c| !c.trim().is_empty())
        .collect();
    assert_eq!(
        cells.iter().map(|c| c.trim()).collect::<Vec<_>>(),
        ["700 / 701", "900 / 901", "n/a"],
        "{t}"
    );
    assert!(
        t.contains("n/a on zcu102: micro_evtchn failed: timeout"),
        "{t}"
    );
    assert_eq!(t.lines().filter(|l| l.contains("n/a on")).count(), 1);
}

#[test]
fn boot_prints_both_runs_and_the_ratio_per_machine() {
    let m = |counter| Marker {
        kernel: "6.1".into(),
        cpus: 1,
        counter: Some(counter),
    };
    let cols = vec![
        Column::new(
            Machine::Virt,
            boot::report(Machine::Virt, m(3_000), m(2_000)),
        ),
        Column::new(
            Machine::Zcu102,
            boot::report(Machine::Zcu102, m(5_000), m(4_000)),
        ),
    ];
    let t = boot_table(&cols);
    let ratio = t.lines().find(|l| l.starts_with("ratio")).unwrap();
    assert!(ratio.contains("1.500x") && ratio.contains("1.250x"), "{t}");
    let native = t.lines().find(|l| l.starts_with("native")).unwrap();
    assert!(native.contains("32000") && native.contains("64000"), "{t}");
    assert!(!t.contains("n/a"), "{t}");
}
