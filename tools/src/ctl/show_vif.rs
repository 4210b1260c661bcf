//! `ctl info NAME`: the virtual network interfaces a domain uses or serves, with both ends'
//! xenbus states and the counters the network backend publishes, and a network backend's
//! uplink.

use super::show_vbd::state_name;
use protocol::mgmt::{UplinkCounters, VifRow};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The vif table (empty string if there are none). `rx` is towards the guest, `tx` from it.
pub fn vifs_text(rows: &[VifRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{:>8} {:>7} {:>5} {:<17} {:<8} {:<12} {:<12} {:>8} {:>10} {:>7} {:>8} {:>10} {:>7} {:>7}\n",
        "Frontend",
        "Backend",
        "Devid",
        "MAC",
        "Bridge",
        "BE state",
        "FE state",
        "RX pkts",
        "RX bytes",
        "RX drop",
        "TX pkts",
        "TX bytes",
        "TX drop",
        "TX err"
    );
    for r in rows {
        let c = r.counters.unwrap_or_default();
        let _ = writeln!(
            s,
            "{:>8} {:>7} {:>5} {:<17} {:<8} {:<12} {:<12} {:>8} {:>10} {:>7} {:>8} {:>10} {:>7} {:>7}",
            format!("d{}", r.frontend),
            format!("d{}", r.backend),
            r.devid,
            r.mac,
            r.bridge,
            state_name(r.backend_state),
            state_name(r.frontend_state),
            c.rx_packets,
            c.rx_bytes,
            c.rx_drops,
            c.tx_packets,
            c.tx_bytes,
            c.tx_drops,
            c.tx_errors,
        );
    }
    s
}

/// The vifs as JSON.
pub fn vifs_json(rows: &[VifRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "frontend": r.frontend,
                    "backend": r.backend,
                    "devid": r.devid,
                    "mac": r.mac,
                    "bridge": r.bridge,
                    "backend_state": state_name(r.backend_state),
                    "frontend_state": state_name(r.frontend_state),
                    "counters": r.counters.map(|c| json!({
                        "rx_packets": c.rx_packets,
                        "rx_bytes": c.rx_bytes,
                        "rx_drops": c.rx_drops,
                        "tx_packets": c.tx_packets,
                        "tx_bytes": c.tx_bytes,
                        "tx_drops": c.tx_drops,
                        "tx_errors": c.tx_errors,
                    })),
                })
            })
            .collect(),
    )
}

/// A network backend's uplink line (empty string if it published none): `rx` is from the
/// wire, `tx` to it.
pub fn uplink_text(uplink: Option<&UplinkCounters>) -> String {
    uplink.map_or_else(String::new, |u| {
        format!(
            "Uplink NIC: RX {} frames, TX {} frames, TX drop {}, {} interrupts\n",
            u.rx_frames, u.tx_frames, u.tx_drops, u.interrupts
        )
    })
}

/// The uplink as JSON (null if the domain published none).
pub fn uplink_json(uplink: Option<&UplinkCounters>) -> Value {
    uplink.map_or(Value::Null, |u| {
        json!({
            "rx_frames": u.rx_frames,
            "tx_frames": u.tx_frames,
            "tx_drops": u.tx_drops,
            "interrupts": u.interrupts,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::mgmt::VifCounters;

    fn row() -> VifRow {
        VifRow {
            frontend: 3,
            backend: 2,
            devid: 0,
            mac: "00:16:3e:8e:73:5a".into(),
            bridge: "xenbr0".into(),
            backend_state: 4,
            frontend_state: 4,
            counters: Some(VifCounters {
                rx_packets: 12,
                rx_bytes: 3400,
                rx_drops: 1,
                tx_packets: 10,
                tx_bytes: 980,
                tx_drops: 2,
                tx_errors: 0,
            }),
        }
    }

    #[test]
    fn vif_table_and_json() {
        assert_eq!(vifs_text(&[]), "");
        assert_eq!(
            vifs_text(&[row()]),
            "\
Frontend Backend Devid MAC               Bridge   BE state     FE state      RX pkts   RX bytes RX drop  TX pkts   TX bytes TX drop  TX err
      d3      d2     0 00:16:3e:8e:73:5a xenbr0   Connected    Connected          12       3400       1       10        980       2       0
"
        );
        let j = vifs_json(&[row()]);
        assert_eq!(j[0]["mac"], "00:16:3e:8e:73:5a");
        assert_eq!(j[0]["backend_state"], "Connected");
        assert_eq!(j[0]["counters"]["tx_drops"], 2);
        // No counters published yet: zeros in the table, null in JSON.
        let quiet = VifRow {
            counters: None,
            ..row()
        };
        assert!(vifs_text(std::slice::from_ref(&quiet)).contains(" 0       0\n"));
        assert!(vifs_json(&[quiet])[0]["counters"].is_null());
    }

    #[test]
    fn uplink_line_and_json() {
        let u = UplinkCounters {
            rx_frames: 5,
            tx_frames: 7,
            tx_drops: 1,
            interrupts: 4,
        };
        assert_eq!(
            uplink_text(Some(&u)),
            "Uplink NIC: RX 5 frames, TX 7 frames, TX drop 1, 4 interrupts\n"
        );
        assert_eq!(uplink_json(Some(&u))["interrupts"], 4);
        assert_eq!(uplink_text(None), "");
        assert!(uplink_json(None).is_null());
    }
}
