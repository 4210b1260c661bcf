//! The network keys of a system description: a `[[domain]]`'s `vif = [...]` (xl vif lines,
//! whose ignored options become warnings) and `[system] hostfwd = [...]`.

use super::{kind, Ctx, Value};
use crate::system::{At, ConfigError, ConfigWarning, System};
use crate::xlcfg::vif::{self, VifSpec};
use toml::de::DeValue;

/// `vif = ["…"]`: xl vif specifications; what a line ignores is one warning each.
pub(super) fn vif_lines(
    cx: &Ctx<'_>,
    v: &Value<'_>,
    system: &mut System,
) -> Result<Vec<At<VifSpec>>, ConfigError> {
    let expected = "expected an array of xl vif specifications such as \"\" or \"mac=00:16:3e:01:02:03,bridge=xenbr0\"";
    let DeValue::Array(items) = v.get_ref() else {
        return Err(cx.err(
            v.span(),
            "vif",
            format!("found {}, {expected}", kind(v.get_ref())),
        ));
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let DeValue::String(s) = item.get_ref() else {
            return Err(cx.err(
                item.span(),
                "vif",
                format!("found {}, {expected}", kind(item.get_ref())),
            ));
        };
        let parsed = vif::parse(s).map_err(|problem| cx.err(item.span(), "vif", problem))?;
        for problem in parsed.warnings {
            let e = cx.err(item.span(), "vif", problem);
            system.warnings.push(ConfigWarning {
                file: e.file,
                line: e.line,
                key: e.key,
                problem: e.problem,
            });
        }
        out.push(At::new(parsed.spec, cx.line(item.span())));
    }
    Ok(out)
}

/// `[system] hostfwd = ["…"]`: QEMU user-network port forwards, each checked.
pub(super) fn hostfwd_rules(cx: &Ctx<'_>, v: &Value<'_>) -> Result<Vec<At<String>>, ConfigError> {
    let expected = "expected an array of port forwards such as \"tcp::8080-:80\"";
    let DeValue::Array(items) = v.get_ref() else {
        return Err(cx.err(
            v.span(),
            "hostfwd",
            format!("found {}, {expected}", kind(v.get_ref())),
        ));
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) => crate::system::nics::hostfwd(s)
                .map(|r| At::new(r, cx.line(item.span())))
                .map_err(|problem| cx.err(item.span(), "hostfwd", problem)),
            other => Err(cx.err(
                item.span(),
                "hostfwd",
                format!("found {}, {expected}", kind(other)),
            )),
        })
        .collect()
}
