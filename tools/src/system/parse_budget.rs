//! `budget_us = B` and `period_us = P`: every vCPU of a domain on a shared pCPU runs at its
//! priority for at most B µs of guest time per P µs (`ctl sched-fp --budget-us B
//! --period-us P`, given at creation and again at each restart in place). Both keys or
//! neither; an exclusive domain has no budget (nothing else runs on its pCPU).

use super::{ConfigError, Ctx, Value};
use protocol::control::{budget_givable, BUDGET_MIN_US, BUDGET_PERIOD_MAX_US};

/// The two keys.
const KEYS: [&str; 2] = ["budget_us", "period_us"];

/// The budget `entries` give (`(0, 0)`: none), for a domain that is `exclusive` or not.
pub(super) fn budget(
    cx: &Ctx<'_>,
    entries: &[(&str, &Value<'_>)],
    exclusive: bool,
) -> Result<(u32, u32), ConfigError> {
    let find = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let alone = |v: &Value<'_>, given: &str, other: &str| {
        cx.err(
            v.span(),
            given,
            format!("is given without `{other}`, expected both (a budget per period) or neither"),
        )
    };
    let (b, p) = match (find(KEYS[0]), find(KEYS[1])) {
        (None, None) => return Ok((0, 0)),
        (Some(b), Some(p)) => (b, p),
        (Some(b), None) => return Err(alone(b, KEYS[0], KEYS[1])),
        (None, Some(p)) => return Err(alone(p, KEYS[1], KEYS[0])),
    };
    let range = 0..i128::from(BUDGET_PERIOD_MAX_US) + 1;
    let budget = cx.int(KEYS[0], b, range.clone(), "microseconds")?;
    let period = cx.int(KEYS[1], p, range, "microseconds")?;
    // In range, so both fit.
    let (budget, period) = (budget as u32, period as u32);
    if !budget_givable(budget, period) {
        return Err(cx.err(
            b.span(),
            KEYS[0],
            format!(
                "{budget} us per {period} us, expected {BUDGET_MIN_US} <= budget_us <= period_us <= {BUDGET_PERIOD_MAX_US}"
            ),
        ));
    }
    if exclusive {
        return Err(cx.err(
            b.span(),
            KEYS[0],
            "is set on an exclusive domain, whose vCPUs have their pCPUs to themselves (nothing to protect), expected no budget or `exclusive = false`",
        ));
    }
    Ok((budget, period))
}
