//! `ctl info NAME`: one domain's row and the virtual block devices it uses or serves.

use protocol::mgmt::VbdRow;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// XenbusState names, as Xen's tools print them.
pub(super) fn state_name(s: u8) -> &'static str {
    match s {
        1 => "Initialising",
        2 => "InitWait",
        3 => "Initialised",
        4 => "Connected",
        5 => "Closing",
        6 => "Closed",
        7 => "Reconfiguring",
        8 => "Reconfigured",
        _ => "Unknown",
    }
}

/// The vbd table (empty string if there are none).
pub fn vbds_text(rows: &[VbdRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{:>8} {:>7} {:<6} {:<8} {:<4} {:<12} {:<12} {:>9} {:>9} {:>7}\n",
        "Frontend",
        "Backend",
        "Vdev",
        "Disk",
        "Mode",
        "BE state",
        "FE state",
        "Reads",
        "Writes",
        "Errors"
    );
    for r in rows {
        let c = r.counters.unwrap_or_default();
        let _ = writeln!(
            s,
            "{:>8} {:>7} {:<6} {:<8} {:<4} {:<12} {:<12} {:>9} {:>9} {:>7}",
            format!("d{}", r.frontend),
            format!("d{}", r.backend),
            r.vdev,
            r.disk,
            if r.read_only { "r" } else { "w" },
            state_name(r.backend_state),
            state_name(r.frontend_state),
            c.reads,
            c.writes,
            c.errors,
        );
    }
    s
}

/// The vbds as JSON.
pub fn vbds_json(rows: &[VbdRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "frontend": r.frontend,
                    "backend": r.backend,
                    "devid": r.devid,
                    "vdev": r.vdev,
                    "disk": r.disk,
                    "read_only": r.read_only,
                    "backend_state": state_name(r.backend_state),
                    "frontend_state": state_name(r.frontend_state),
                    "counters": r.counters.map(|c| json!({
                        "reads": c.reads,
                        "writes": c.writes,
                        "flushes": c.flushes,
                        "discards": c.discards,
                        "errors": c.errors,
                        "sectors_read": c.sectors_read,
                        "sectors_written": c.sectors_written,
                    })),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::mgmt::VbdCounters;

    fn row() -> VbdRow {
        VbdRow {
            frontend: 3,
            backend: 2,
            devid: 51712,
            vdev: "xvda".into(),
            disk: "bkd0".into(),
            read_only: false,
            backend_state: 4,
            frontend_state: 4,
            counters: Some(VbdCounters {
                reads: 120,
                writes: 7,
                errors: 1,
                ..VbdCounters::default()
            }),
        }
    }

    #[test]
    fn vbd_table_and_json() {
        assert_eq!(vbds_text(&[]), "");
        assert_eq!(
            vbds_text(&[row()]),
            "\
Frontend Backend Vdev   Disk     Mode BE state     FE state         Reads    Writes  Errors
      d3      d2 xvda   bkd0     w    Connected    Connected          120         7       1
"
        );
        let j = vbds_json(&[row()]);
        assert_eq!(j[0]["frontend_state"], "Connected");
        assert_eq!(j[0]["counters"]["reads"], 120);
    }
}
