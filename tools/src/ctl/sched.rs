//! `ctl sched-fp` (xl's `sched-*` verbs for our fixed-priority scheduler): shows or sets
//! the priority of a domain's vCPUs on their shared pCPUs, without moving them. The
//! scheduler's only parameter is the priority (higher runs first, round-robin among
//! equals); a pinned-exclusive vCPU has none, being alone on its pCPU.

use anyhow::{bail, Result};
use protocol::mgmt::{DomainRef, Request, VcpuRow};
use serde_json::json;

/// The `VcpuPin` requests that give `priority` to vCPU `only` (or every vCPU) of the
/// domain whose vCPUs are `rows`, each staying on its pCPU.
pub fn requests(rows: &[VcpuRow], only: Option<u16>, priority: u8) -> Result<Vec<Request>> {
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
            "{} vCPU {} holds pCPU {} exclusively: it has no priority (nothing else runs there)",
            r.name,
            r.vcpu,
            r.pcpu
        );
    }
    let domain = DomainRef::Id(first.id);
    Ok(chosen
        .iter()
        .map(|r| Request::VcpuPin {
            domain: domain.clone(),
            vcpu: r.vcpu,
            pcpu: r.pcpu,
            priority: Some(priority),
        })
        .collect())
}

/// The priorities of `rows`, as a table (`vCPU pCPU priority`) or JSON.
pub fn show(rows: &[VcpuRow], json_out: bool) -> String {
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name, "vcpu": r.vcpu, "cpu": r.pcpu,
                    "exclusive": r.exclusive,
                    "priority": if r.exclusive { None } else { Some(r.priority) },
                })
            })
            .collect();
        return format!("{:#}\n", serde_json::Value::from(v));
    }
    let mut out = format!(
        "{:<16} {:>4} {:>4}  {}\n",
        "Name", "VCPU", "CPU", "Priority"
    );
    for r in rows {
        let prio = if r.exclusive {
            "- (exclusive)".to_string()
        } else {
            r.priority.to_string()
        };
        out.push_str(&format!(
            "{:<16} {:>4} {:>4}  {prio}\n",
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
        }
    }

    #[test]
    fn sets_each_vcpu_where_it_is_and_refuses_exclusive_ones() {
        let rows = [row(0, 2, false), row(1, 3, false)];
        let reqs = requests(&rows, None, 20).unwrap();
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
        assert_eq!(requests(&rows, Some(1), 5).unwrap().len(), 1);
        let e = requests(&rows, Some(7), 5).unwrap_err().to_string();
        assert!(e.contains("no vCPU 7"), "{e}");
        let e = requests(&[row(0, 1, true)], None, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exclusively") && e.contains("pCPU 1"), "{e}");
        let t = show(&[row(0, 2, false), row(1, 1, true)], false);
        assert!(t.contains("guest               0    2  10"), "{t}");
        assert!(t.contains("- (exclusive)"), "{t}");
    }
}
