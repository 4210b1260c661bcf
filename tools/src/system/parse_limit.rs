//! `crash_limit = "N/Ws"`: how many restarts after crashes a domain gets within a sliding
//! window before dom0 holds it (a crash loop). Without the key dom0's default applies
//! ([`super::super::DEFAULT_CRASH_LIMIT`]).

use super::super::{CrashLimit, MAX_CRASH_RESTARTS, MAX_CRASH_WINDOW_S};
use super::{kind, ConfigError, Ctx, Value};
use toml::de::DeValue;

/// Parses `crash_limit`'s value.
pub(super) fn crash_limit(cx: &Ctx<'_>, v: &Value<'_>) -> Result<CrashLimit, ConfigError> {
    let expected = format!(
        "expected \"RESTARTS/WINDOWs\" such as \"10/60s\" (restarts 0..={MAX_CRASH_RESTARTS}, window 1..={MAX_CRASH_WINDOW_S} s)"
    );
    let s = match v.get_ref() {
        DeValue::String(s) => s.to_string(),
        other => {
            return Err(cx.err(
                v.span(),
                "crash_limit",
                format!("found {}, {expected}", kind(other)),
            ))
        }
    };
    parse(&s).ok_or_else(|| {
        cx.err(
            v.span(),
            "crash_limit",
            format!("{s:?} is not a crash limit, {expected}"),
        )
    })
}

/// `"N/Ws"` with N and W in range; `None` for anything else.
fn parse(s: &str) -> Option<CrashLimit> {
    let (n, w) = s.split_once('/')?;
    let w = w.strip_suffix('s')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(n) || !digits(w) {
        return None;
    }
    let max_restarts: u32 = n.parse().ok()?;
    let window_s: u32 = w.parse().ok()?;
    let ok = max_restarts <= MAX_CRASH_RESTARTS && (1..=MAX_CRASH_WINDOW_S).contains(&window_s);
    ok.then_some(CrashLimit {
        max_restarts,
        window_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_in_range_only() {
        let l = |max_restarts, window_s| {
            Some(CrashLimit {
                max_restarts,
                window_s,
            })
        };
        assert_eq!(parse("10/60s"), l(10, 60));
        assert_eq!(parse("0/1s"), l(0, 1));
        assert_eq!(parse("1000/3600s"), l(1000, 3600));
        for bad in [
            "10/60",
            "10/0s",
            "1001/60s",
            "10/3601s",
            "/60s",
            "10/s",
            "-1/60s",
            "10 / 60s",
            "10/60m",
            "10",
            "1e1/60s",
            "99999999999/60s",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
