//! How `ctl info` shows the microvisor's global-lock holds (`protocol::lock_holds`): the
//! longest hold of any CPU and each CPU's passes (in all, by reason, and its interrupt
//! passes by INTID), longest hold and waits for the lock, as text and JSON.

use protocol::lock_holds::{CpuHolds, Hold, IntidWord, LockHolds, Reason, NO_INTID};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// A hold's length as `269.0 us` (to a tenth of a microsecond, rounded down).
fn us_text(h: &Hold) -> String {
    ns_text(h.ns)
}

/// `ns` nanoseconds as `269.0 us` (to a tenth of a microsecond, rounded down).
fn ns_text(ns: u64) -> String {
    format!("{}.{} us", ns / 1000, ns % 1000 / 100)
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
            .map(|(r, n)| match r {
                Reason::Interrupt => format!("{} {n} ({})", r.word(), intids_text(c)),
                _ => format!("{} {n}", r.word()),
            })
            .collect();
        if !reasons.is_empty() {
            let _ = writeln!(s, "  {:<17} : {}", "  by reason", reasons.join(", "));
        }
        // Waits that would read `0.0 us` in all are left out.
        if let Some(w) = c.longest_wait.filter(|_| c.waited_ns >= 100) {
            let _ = writeln!(
                s,
                "  {:<17} : {} in all, longest {} before: {}",
                "  lock waits",
                ns_text(c.waited_ns),
                us_text(&w),
                w.pass
            );
        }
    }
    if reset {
        s.push_str("lock-hold record    : reset (the figures above were read just before)\n");
    }
    s
}

/// A CPU's interrupt passes by INTID, most first: `INTID 78: 3987, no INTID: 2, others: 1`.
fn intids_text(c: &CpuHolds) -> String {
    let (tracked, others) = c.intids();
    let mut parts: Vec<String> = tracked
        .iter()
        .map(|e| format!("{}: {}", IntidWord(e.intid), e.passes))
        .collect();
    if others != 0 {
        parts.push(format!("others: {others}"));
    }
    parts.join(", ")
}

/// A CPU's interrupt passes by INTID as JSON, most first (`intid` null: none acknowledged),
/// and the passes of INTIDs not tracked.
fn by_intid_json(c: &CpuHolds) -> Value {
    let (tracked, others) = c.intids();
    let list: Vec<Value> = tracked
        .iter()
        .map(|e| {
            json!({
                "intid": (e.intid != NO_INTID).then_some(e.intid),
                "passes": e.passes,
            })
        })
        .collect();
    json!({ "tracked": list, "others": others })
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
                "interrupts_by_intid": by_intid_json(c),
                "longest": c.longest.as_ref().map(hold_json),
                "waited_ns": c.waited_ns,
                "longest_wait": c.longest_wait.as_ref().map(hold_json),
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
