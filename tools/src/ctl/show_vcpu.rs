//! `ctl vcpu-list`: one line per vCPU, as `xl vcpu-list` prints it (Bulkhead pins every
//! vCPU to one pCPU, so the affinity column is that pCPU and how it holds it).

use protocol::mgmt::{state_letter, VcpuRow};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Seconds of CPU time, one decimal, from counter ticks at `hz`.
fn seconds(ticks: u64, hz: u64) -> f64 {
    ticks as f64 / hz.max(1) as f64
}

/// How a vCPU holds its pCPU: alone (`exclusive`) or shared at a fixed priority.
fn pinning(r: &VcpuRow) -> String {
    if r.exclusive {
        format!("{} exclusive", r.pcpu)
    } else {
        format!("{} prio {}", r.pcpu, r.priority)
    }
}

/// The table.
pub fn vcpus_table(rows: &[VcpuRow], hz: u64) -> String {
    let mut s = format!(
        "{:<16} {:>4} {:>5} {:>4} {:<5} {:>10} {:>12}  {}\n",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Exits", "Pinned"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<16} {:>4} {:>5} {:>4} {:<5} {:>10.1} {:>12}  {}",
            r.name,
            r.id,
            r.vcpu,
            r.pcpu,
            state_letter(r.state),
            seconds(r.cpu_ticks, hz),
            r.exits,
            pinning(r),
        );
    }
    s
}

/// The rows as JSON.
pub fn vcpus_json(rows: &[VcpuRow], hz: u64) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "id": r.id,
                    "vcpu": r.vcpu,
                    "cpu": r.pcpu,
                    "exclusive": r.exclusive,
                    "priority": r.priority,
                    "state": format!("{:?}", r.state).to_lowercase(),
                    "cpu_seconds": seconds(r.cpu_ticks, hz),
                    "exits": r.exits,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::VcpuState;

    fn row(name: &str, id: u16, vcpu: u16, exclusive: bool, state: VcpuState) -> VcpuRow {
        VcpuRow {
            id,
            name: name.into(),
            vcpu,
            pcpu: id + vcpu,
            exclusive,
            priority: 2,
            state,
            cpu_ticks: 125_000_000,
            exits: 42,
            budget_us: (0, 0),
        }
    }

    #[test]
    fn table_shows_each_vcpu_like_xl() {
        let rows = [
            row("rtos", 1, 0, true, VcpuState::Running),
            row("linux", 2, 0, false, VcpuState::Blocked),
            row("linux", 2, 1, false, VcpuState::Off),
        ];
        let t = vcpus_table(&rows, 62_500_000);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("Name") && lines[0].contains("VCPU"));
        let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            words(lines[1]),
            ["rtos", "1", "0", "1", "r", "2.0", "42", "1", "exclusive"]
        );
        assert_eq!(words(lines[2])[4], "b");
        assert_eq!(words(lines[3])[..6], ["linux", "2", "1", "3", "-", "2.0"]);
        assert!(lines[3].ends_with("3 prio 2"));
        let j = vcpus_json(&rows, 62_500_000);
        assert_eq!(j[1]["state"], "blocked");
        assert_eq!(j[0]["exclusive"], true);
        assert_eq!(j[2]["cpu_seconds"], 2.0);
    }
}
