//! How management replies look: tables like `xl list` / `xl info`, and their JSON.

use super::{show_health, show_holds};
use protocol::control::{DomainState, StopReason, Version};
use protocol::lock_holds::LockHolds;
use protocol::mgmt::{state_word, DomainRow, HealthRow, SystemInfo, MGMT_VERSION, PAGE_SIZE};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Seconds of CPU time `ticks` is, if the counter frequency is known.
pub fn cpu_seconds(ticks: u64, counter_hz: u64) -> Option<f64> {
    // u64 -> f64 loses precision only beyond 2^53 ticks (years of CPU time).
    #[allow(clippy::cast_precision_loss)] // see above
    (counter_hz != 0).then(|| ticks as f64 / counter_hz as f64)
}

fn seconds_text(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{s:.1}"))
}

fn version_text(v: Version) -> String {
    format!("{}.{}", v.major, v.minor)
}

/// Why a stopped domain stopped, in words; `None` unless it is stopped.
pub fn stop_reason(s: &DomainState) -> Option<String> {
    let DomainState::Stopped(r) = s else {
        return None;
    };
    Some(match r {
        StopReason::PowerOff => "powered off".into(),
        StopReason::Reboot => "reboot requested".into(),
        StopReason::Crashed { code } => format!("crashed (code {code})"),
        StopReason::Stage2Fault { ipa, esr } => {
            format!("stage-2 fault at {ipa:#x} (esr {esr:#x})")
        }
        StopReason::UnhandledTrap { esr, pc } => {
            format!("unhandled trap esr {esr:#x} at pc {pc:#x}")
        }
        other => format!("{other:?}"),
    })
}

/// `vcpus`, or `online/vcpus` while not all are online.
fn vcpus_text(r: &DomainRow) -> String {
    if r.vcpus_online == r.vcpus {
        r.vcpus.to_string()
    } else {
        format!("{}/{}", r.vcpus_online, r.vcpus)
    }
}

fn name_width(rows: &[DomainRow]) -> usize {
    rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4)
}

/// `ctl list`: Name, ID, Mem, VCPUs, State, Time(s), Restarts and the last restart (its
/// reason and recovery time, or why dom0 holds the domain), one domain per line.
pub fn list_table(rows: &[DomainRow], health: &[HealthRow], counter_hz: u64) -> String {
    let w = name_width(rows);
    let mut s = format!(
        "{:<w$} {:>5} {:>6} {:>5}  {:<9} {:>9} {:>8}  {}\n",
        "Name", "ID", "Mem", "VCPUs", "State", "Time(s)", "Restarts", "Last restart"
    );
    for r in rows {
        let h = show_health::find(health, r.id);
        let state = if h.is_some_and(|h| h.held.is_some()) {
            "held"
        } else {
            state_word(&r.state)
        };
        let _ = writeln!(
            s,
            "{:<w$} {:>5} {:>6} {:>5}  {:<9} {:>9} {:>8}  {}",
            r.name,
            r.id,
            r.mem_mib,
            vcpus_text(r),
            state,
            seconds_text(cpu_seconds(r.cpu_ticks, counter_hz)),
            h.map_or(r.restarts, |h| h.incarnation),
            show_health::last_restart_cell(h),
        );
    }
    s
}

/// One domain as JSON (`list --json`, and the base of `top --json`).
pub fn row_json(r: &DomainRow, counter_hz: u64) -> Value {
    json!({
        "name": r.name,
        "id": r.id,
        "mem_mib": r.mem_mib,
        "vcpus": r.vcpus,
        "vcpus_online": r.vcpus_online,
        "state": state_word(&r.state),
        "stop_reason": stop_reason(&r.state),
        "cpu_seconds": cpu_seconds(r.cpu_ticks, counter_hz),
        "cpu_ticks": r.cpu_ticks,
        "exits": r.exits,
        "irqs_injected": r.irqs_injected,
        "restarts": r.restarts,
    })
}

/// `ctl list --json`: each domain's [`row_json`] with its supervision facts.
pub fn list_json(rows: &[DomainRow], health: &[HealthRow], counter_hz: u64) -> Value {
    let domains: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut j = row_json(r, counter_hz);
            show_health::merge(&mut j, show_health::find(health, r.id));
            j
        })
        .collect();
    json!({ "domains": domains })
}

/// `ctl info`: one `key : value` line each, like `xl info`, then the microvisor's
/// global-lock holds; `reset`: this command started their record again.
pub fn info_text(i: &SystemInfo, holds: &LockHolds, reset: bool) -> String {
    let free = i.free_pages.saturating_mul(PAGE_SIZE) >> 20;
    let largest = i.largest_free_pages.saturating_mul(PAGE_SIZE) >> 20;
    let mut s = format!(
        "management protocol : {}\n\
         capability protocol : {}\n\
         counter frequency   : {} Hz\n\
         domains             : {}\n\
         free memory         : {free} MiB ({} pages)\n\
         largest free block  : {largest} MiB ({} pages)\n",
        version_text(MGMT_VERSION),
        version_text(i.protocol_version),
        i.counter_hz,
        i.domains,
        i.free_pages,
        i.largest_free_pages,
    );
    s.push_str(&show_holds::holds_text(holds, reset));
    s
}

/// `ctl info --json`.
pub fn info_json(i: &SystemInfo, holds: &LockHolds, reset: bool) -> Value {
    json!({
        "mgmt_version": version_text(MGMT_VERSION),
        "protocol_version": version_text(i.protocol_version),
        "counter_hz": i.counter_hz,
        "domains": i.domains,
        "free_pages": i.free_pages,
        "free_mib": i.free_pages.saturating_mul(PAGE_SIZE) >> 20,
        "largest_free_pages": i.largest_free_pages,
        "largest_free_mib": i.largest_free_pages.saturating_mul(PAGE_SIZE) >> 20,
        "lock_holds": show_holds::holds_json(holds, reset),
    })
}
