//! How `ctl info` shows the microvisor's global-lock holds (`protocol::lock_holds`): the
//! longest hold of any CPU and each CPU's passes (in all and by reason) and longest, as text
//! and JSON.

use protocol::lock_holds::{CpuHolds, Hold, LockHolds, Reason};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// A hold's length as `269.0 us` (to a tenth of a microsecond, rounded down).
fn us_text(h: &Hold) -> String {
    format!("{}.{} us", h.ns / 1000, h.ns % 1000 / 100)
}

fn since_word(h: &LockHolds) -> &'static str {
    if h.since_reset {
        "reset"
    } else {
        "boot"
    }
}

/// The lines `ctl info` adds (`key : value`, as the rest of it); `reset`: this command
/// started the record again after reading it.
pub fn holds_text(h: &LockHolds, reset: bool) -> String {
    let since = if h.since_reset {
        "since the last reset"
    } else {
        "since boot"
    };
    let mut s = format!("locked passes       : {} {since}\n", h.passes());
    let _ = match h.longest() {
        Some((cpu, l)) => writeln!(
            s,
            "longest lock hold   : {} on cpu{cpu}: {}",
            us_text(&l),
            l.pass
        ),
        None => writeln!(s, "longest lock hold   : -"),
    };
    for c in &h.cpus {
        let cpu = format!("cpu{}", c.cpu);
        let _ = match &c.longest {
            Some(l) => writeln!(
                s,
                "  {cpu:<17} : {} passes, longest {}: {}",
                c.passes,
                us_text(l),
                l.pass
            ),
            None => writeln!(s, "  {cpu:<17} : {} passes", c.passes),
        };
        let reasons: Vec<String> = c
            .reasons()
            .iter()
            .map(|(r, n)| format!("{} {n}", r.word()))
            .collect();
        if !reasons.is_empty() {
            let _ = writeln!(s, "  {:<17} : {}", "  by reason", reasons.join(", "));
        }
    }
    if reset {
        s.push_str("lock-hold record    : reset (the figures above were read just before)\n");
    }
    s
}

/// One hold as JSON: its length, what it was for in words and as a kind, and the domain
/// and vCPU it served, if any.
fn hold_json(l: &Hold) -> Value {
    let vcpu = l.pass.vcpu();
    json!({
        "us": l.us(),
        "ns": l.ns,
        "kind": l.pass.kind(),
        "what": l.pass.to_string(),
        "domain": vcpu.map(|v| v.0),
        "vcpu": vcpu.map(|v| v.1),
    })
}

/// A CPU's passes by reason as JSON: every reason's word, with its count (0 included).
fn by_reason_json(c: &CpuHolds) -> Value {
    let map: serde_json::Map<String, Value> = Reason::ALL
        .iter()
        .zip(c.by_reason)
        .map(|(r, n)| (r.word().to_string(), json!(n)))
        .collect();
    Value::Object(map)
}

/// `ctl info --json`'s `lock_holds`.
pub fn holds_json(h: &LockHolds, reset: bool) -> Value {
    let longest = h.longest().map(|(cpu, l)| {
        let mut j = hold_json(&l);
        j["cpu"] = json!(cpu);
        j
    });
    let cpus: Vec<Value> = h
        .cpus
        .iter()
        .map(|c| {
            json!({
                "cpu": c.cpu,
                "passes": c.passes,
                "by_reason": by_reason_json(c),
                "longest": c.longest.as_ref().map(hold_json),
            })
        })
        .collect();
    json!({
        "since": since_word(h),
        "passes": h.passes(),
        "longest": longest,
        "cpus": cpus,
        "reset": reset,
    })
}
