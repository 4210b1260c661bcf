//! `ctl sched-fp` (xl's `sched-*` verbs for our fixed-priority scheduler): shows or sets
//! the priority of a domain's vCPUs on their shared pCPUs, without moving them, and their
//! budget per period (higher priorities run first, round-robin among equals; a vCPU that
//! has used its budget in the current period runs only when nothing within its budget on
//! its pCPU wants to, until its next period). A pinned-exclusive vCPU has neither, being
//! alone on its pCPU.

use anyhow::{bail, Result};
use protocol::mgmt::{DomainRef, Request, VcpuRow};
use serde_json::json;

/// The requests that give `priority` and/or `budget` (µs per µs) to vCPU `only` (or every
/// vCPU) of the domain whose vCPUs are `rows`, each staying on its pCPU.
pub fn requests(
    rows: &[VcpuRow],
    only: Option<u16>,
    priority: Option<u8>,
    budget: Option<(u32, u32)>,
) -> Result<Vec<Request>> {
    let chosen: Vec<&VcpuRow> = rows
        .iter()
        .filter(|r| only.is_none_or(|v| r.vcpu == v))
        .collect();
    let Some(first) = chosen.first() else {
        bail!(
            "no vCPU {}: the domain has {}",
            only.unwrap_or_default(),
            rows.len()
        );
    };
    if let Some(r) = chosen.iter().find(|r| r.exclusive) {
        bail!(
            "{} vCPU {} holds pCPU {} exclusively: it has no priority or budget (nothing else runs there)",
            r.name,
            r.vcpu,
            r.pcpu
        );
    }
    let domain = DomainRef::Id(first.id);
    let mut out = Vec::new();
    for r in &chosen {
        if priority.is_some() {
            out.push(Request::VcpuPin {
                domain: domain.clone(),
                vcpu: r.vcpu,
                pcpu: r.pcpu,
                priority,
            });
        }
        if let Some((budget_us, period_us)) = budget {
            out.push(Request::VcpuBudget {
                domain: domain.clone(),
                vcpu: r.vcpu,
                budget_us,
                period_us,
            });
        }
    }
    Ok(out)
}

/// What `sched-fp` says once it has set something.
pub fn done_line(domain: &DomainRef, priority: Option<u8>, budget: Option<(u32, u32)>) -> String {
    let mut parts = Vec::new();
    if let Some(p) = priority {
        parts.push(format!("priority {p}"));
    }
    match budget {
        Some((0, 0)) => parts.push("no budget".to_string()),
        Some(b) => parts.push(budget_text(b)),
        None => {}
    }
    format!("sched-fp {domain}: {}", parts.join(", "))
}

/// `2000 us / 10000 us (20%)`, or `-` for none.
fn budget_text((budget, period): (u32, u32)) -> String {
    if period == 0 {
        return "-".to_string();
    }
    let pct = u64::from(budget) * 100 / u64::from(period);
    format!("budget {budget} us / {period} us ({pct}%)")
}

/// The priorities and budgets of `rows`, as a table (`vCPU pCPU priority budget`) or JSON.
pub fn show(rows: &[VcpuRow], json_out: bool) -> String {
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                let (b, p) = r.budget_us;
                json!({
                    "name": r.name, "vcpu": r.vcpu, "cpu": r.pcpu,
                    "exclusive": r.exclusive,
                    "priority": if r.exclusive { None } else { Some(r.priority) },
                    "budget_us": b, "period_us": p,
                })
            })
            .collect();
        return format!("{:#}\n", serde_json::Value::from(v));
    }
    let mut out = format!(
        "{:<16} {:>4} {:>4}  {:<13}  {}\n",
        "Name", "VCPU", "CPU", "Priority", "Budget"
    );
    for r in rows {
        let (prio, budget) = if r.exclusive {
            ("- (exclusive)".to_string(), "-".to_string())
        } else {
            let b = budget_text(r.budget_us);
            (
                r.priority.to_string(),
                b.trim_start_matches("budget ").to_string(),
            )
        };
        out.push_str(&format!(
            "{:<16} {:>4} {:>4}  {prio:<13}  {budget}\n",
            r.name, r.vcpu, r.pcpu
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::VcpuState;

    fn row(vcpu: u16, pcpu: u16, exclusive: bool) -> VcpuRow {
        VcpuRow {
            id: 4,
            name: "guest".into(),
            vcpu,
            pcpu,
            exclusive,
            priority: 10,
            state: VcpuState::Running,
            cpu_ticks: 0,
            exits: 0,
            budget_us: (0, 0),
        }
    }

    #[test]
    fn sets_each_vcpu_where_it_is_and_refuses_exclusive_ones() {
        let rows = [row(0, 2, false), row(1, 3, false)];
        let reqs = requests(&rows, None, Some(20), None).unwrap();
        let pins: Vec<(u16, u16, Option<u8>)> = reqs
            .iter()
            .map(|r| match r {
                Request::VcpuPin {
                    vcpu,
                    pcpu,
                    priority,
                    ..
                } => (*vcpu, *pcpu, *priority),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(pins, vec![(0, 2, Some(20)), (1, 3, Some(20))]);
        assert_eq!(requests(&rows, Some(1), Some(5), None).unwrap().len(), 1);
        let e = requests(&rows, Some(7), Some(5), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no vCPU 7"), "{e}");
        let e = requests(&[row(0, 1, true)], None, Some(5), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exclusively") && e.contains("pCPU 1"), "{e}");
        let e = requests(&[row(0, 1, true)], None, None, Some((2000, 10000)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no priority or budget"), "{e}");
        let t = show(&[row(0, 2, false), row(1, 1, true)], false);
        assert!(t.contains("guest               0    2  10"), "{t}");
        assert!(t.contains("- (exclusive)"), "{t}");
    }

    #[test]
    fn budgets_are_sent_per_vcpu_and_shown() {
        let rows = [row(0, 2, false), row(1, 3, false)];
        let reqs = requests(&rows, None, Some(9), Some((2000, 10000))).unwrap();
        let kinds: Vec<String> = reqs
            .iter()
            .map(|r| match r {
                Request::VcpuPin { vcpu, priority, .. } => format!("pin {vcpu} {priority:?}"),
                Request::VcpuBudget {
                    vcpu,
                    budget_us,
                    period_us,
                    ..
                } => format!("budget {vcpu} {budget_us}/{period_us}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "pin 0 Some(9)",
                "budget 0 2000/10000",
                "pin 1 Some(9)",
                "budget 1 2000/10000"
            ]
        );
        assert_eq!(
            requests(&rows, Some(1), None, Some((0, 0))).unwrap().len(),
            1
        );
        let mut budgeted = row(0, 2, false);
        budgeted.budget_us = (2000, 10000);
        let t = show(&[budgeted.clone(), row(1, 3, false)], false);
        assert!(t.contains("2000 us / 10000 us (20%)"), "{t}");
        assert!(t.lines().nth(2).is_some_and(|l| l.ends_with(" -")), "{t}");
        let j = show(&[budgeted], true);
        assert!(
            j.contains("\"budget_us\": 2000") && j.contains("\"period_us\": 10000"),
            "{j}"
        );
        let d = DomainRef::parse("guest");
        assert_eq!(
            done_line(&d, Some(9), Some((2000, 10000))),
            "sched-fp guest: priority 9, budget 2000 us / 10000 us (20%)"
        );
        assert_eq!(
            done_line(&d, None, Some((0, 0))),
            "sched-fp guest: no budget"
        );
    }
}
