//! How supervision facts look ([`protocol::mgmt::HealthRow`]): the restart columns of
//! `ctl list`, the supervision lines of `ctl info NAME`, and their JSON.

use protocol::mgmt::HealthRow;
use serde_json::{json, Value};

/// `ms` as seconds with one decimal: `2.5 s`.
fn secs(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, ms % 1000 / 100)
}

/// The facts for domain `id`, if dom0 sent them.
pub fn find(health: &[HealthRow], id: u16) -> Option<&HealthRow> {
    health.iter().find(|h| h.id == id)
}

/// `ctl list`'s last column: `held: why`, or the latest restart's reason and recovery
/// (`watchdog, recovered in 2.5 s`), or `-`.
pub fn last_restart_cell(h: Option<&HealthRow>) -> String {
    let Some(h) = h else { return "-".into() };
    if let Some(why) = &h.held {
        return format!("held: {why}");
    }
    match &h.last_restart {
        None => "-".into(),
        Some(r) => match r.recovery_ms {
            Some(ms) => format!("{}, recovered in {}", r.reason.word(), secs(ms)),
            None => r.reason.word().into(),
        },
    }
}

/// `ctl info NAME`'s supervision lines.
pub fn health_text(h: &HealthRow) -> String {
    let mut s = format!("restarts       : {}\n", h.incarnation);
    if let Some(r) = &h.last_restart {
        s += &format!(
            "last restart   : {} ({} ago)\n",
            r.reason.text(),
            secs(r.ago_ms)
        );
        let recovery = r.recovery_ms.map_or_else(
            || "- (no heartbeat from this incarnation yet, or it sends none)".into(),
            |ms| format!("{} (restart decided -> first heartbeat)", secs(ms)),
        );
        s += &format!("recovery time  : {recovery}\n");
    }
    match (h.watchdog_ms, h.beat_ago_ms) {
        (None, _) => s += "watchdog       : off\n",
        (Some(t), None) => s += &format!("watchdog       : {}, no heartbeat yet\n", secs(t.into())),
        (Some(t), Some(ago)) => {
            s += &format!(
                "watchdog       : {}, last heartbeat {} ago\n",
                secs(t.into()),
                secs(ago)
            );
        }
    }
    if let Some(why) = &h.held {
        s += &format!("held           : {why}\n");
    }
    s
}

/// The supervision facts as JSON fields (merged into a domain's object).
pub fn health_json(h: &HealthRow) -> Value {
    json!({
        "restarts": h.incarnation,
        "last_restart": h.last_restart.as_ref().map(|r| json!({
            "reason": r.reason.word(),
            "detail": r.reason.text(),
            "ago_ms": r.ago_ms,
            "recovery_ms": r.recovery_ms,
        })),
        "watchdog_ms": h.watchdog_ms,
        "heartbeat_ago_ms": h.beat_ago_ms,
        "held": h.held,
    })
}

/// Adds [`health_json`]'s fields to a domain's JSON object.
pub fn merge(j: &mut Value, h: Option<&HealthRow>) {
    if let (Some(obj), Some(Value::Object(extra))) = (j.as_object_mut(), h.map(health_json)) {
        obj.extend(extra);
    }
}
