//! What each xl.cfg key means to Bulkhead: used, not implemented yet (warned about once),
//! x86/HVM-only (an error on Arm) or unknown (an error).

pub use super::groups::USED;

use super::groups::{LATER, X86_ONLY};
use super::passthru::{dtdevs, iomem, irqs, XlPassthrough};
use super::syntax::{Setting, Value};
use super::{XlCpus, XlDomain};
use crate::system::disks::{self, Disk};
use crate::system::images::{effective_cmdline, ramdisk_problem};
use crate::system::nics;
use crate::system::{
    self, image_names, At, ConfigError, ConfigWarning, DebianArtifact, Image, MAX_DOMAIN_MIB,
    MAX_VCPUS,
};
use crate::xlcfg::vif::{self, VifSpec};
use protocol::layout::GicVersion;
use protocol::manifest::Action;
use std::path::Path;

/// xl's default when `memory` is absent.
pub const DEFAULT_MEMORY_MIB: u32 = 32;

const CPUS_EXPECTED: &str = "a pCPU list such as \"2\", \"1-3\", \"0,2\", \"all\" or \"all,^1\"";

pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    warnings: Vec<ConfigWarning>,
}

impl Cx<'_> {
    pub(super) fn err(&self, s: &Setting, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.display().to_string(),
            line: s.line,
            key: s.key.clone(),
            problem: problem.into(),
        }
    }

    fn warn(&mut self, s: &Setting, problem: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            file: self.file.display().to_string(),
            line: s.first_line,
            key: s.key.clone(),
            problem: problem.into(),
        });
    }

    fn string(&self, s: &Setting, what: &str) -> Result<String, ConfigError> {
        match &s.value {
            Value::Atom { text, .. } => Ok(text.clone()),
            v => Err(self.err(s, format!("found {}, expected {what}", v.kind()))),
        }
    }

    /// A number as xl reads one (C `strtol` base 0: `0x` hex, leading `0` octal), quoted or
    /// not, in `lo..=hi`.
    fn int(&self, s: &Setting, lo: u64, hi: u64, what: &str) -> Result<u64, ConfigError> {
        let expected = format!("expected {what} in {lo}..={hi}");
        let text = match &s.value {
            Value::Atom { text, .. } => text,
            v => return Err(self.err(s, format!("found {}, {expected}", v.kind()))),
        };
        let n = number(text)
            .ok_or_else(|| self.err(s, format!("{text:?} is not a number, {expected}")))?;
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(self.err(s, format!("{n} is out of range, {expected}")))
        }
    }

    fn action(&mut self, s: &Setting) -> Result<Action, ConfigError> {
        let expected = "expected destroy, restart or preserve (or rename-restart, coredump-destroy, coredump-restart)";
        let text = self.string(s, "an action")?;
        let (action, lossy) = match text.as_str() {
            "destroy" => (Action::Destroy, None),
            "restart" => (Action::Restart, None),
            "preserve" => (Action::Preserve, None),
            "rename-restart" => (
                Action::Restart,
                Some("restart\" (the new instance keeps the name and the domain id)"),
            ),
            "coredump-destroy" => (Action::Destroy, Some("destroy\" (no core dumps yet)")),
            "coredump-restart" => (Action::Restart, Some("restart\" (no core dumps yet)")),
            "soft-reset" => {
                return Err(self.err(s, format!("\"soft-reset\" is not supported, {expected}")))
            }
            _ => return Err(self.err(s, format!("{text:?} is not an action, {expected}"))),
        };
        if let Some(what) = lossy {
            self.warn(s, format!("{text:?} is treated as \"{what}"));
        }
        Ok(action)
    }
}

/// `strtol(text, 0)` over the whole text, non-negative.
pub fn number(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if t.len() > 1 && t.starts_with('0') {
        return u64::from_str_radix(&t[1..], 8).ok();
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Parses an xl CPULIST: comma-separated `N`, `N-M`, `all`, and `^N`/`^N-M` exclusions.
pub fn cpulist(text: &str) -> Option<XlCpus> {
    let mut all = false;
    let mut list: Vec<u16> = Vec::new();
    let mut except: Vec<u16> = Vec::new();
    // Which pCPUs each list has: a range can name all 65536, so no search per entry (the
    // `xlcfg` fuzz target found "0-51615" taking seconds that way).
    let mut in_list = vec![false; usize::from(u16::MAX) + 1];
    let mut in_except = vec![false; usize::from(u16::MAX) + 1];
    for part in text.split(',') {
        let part = part.trim();
        if part == "all" {
            all = true;
            continue;
        }
        let (neg, range) = match part.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, part),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((lo, hi)) => (cpu(lo)?, cpu(hi)?),
            None => (cpu(range)?, cpu(range)?),
        };
        if lo > hi {
            return None;
        }
        let (target, seen) = if neg {
            (&mut except, &mut in_except)
        } else {
            (&mut list, &mut in_list)
        };
        for c in lo..=hi {
            if !std::mem::replace(&mut seen[usize::from(c)], true) {
                target.push(c);
            }
        }
    }
    if all {
        return Some(XlCpus::Any { except });
    }
    list.retain(|&c| !in_except[usize::from(c)]);
    (!list.is_empty()).then_some(XlCpus::List(list))
}

fn cpu(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn cpus(cx: &Cx<'_>, s: &Setting) -> Result<XlCpus, ConfigError> {
    let numa = |t: &str| t.contains("node");
    match &s.value {
        Value::Atom { text, .. } if numa(text) => Err(cx.err(
            s,
            format!("{text:?} names NUMA nodes, which Bulkhead does not model, expected {CPUS_EXPECTED}"),
        )),
        Value::Atom { text, .. } => cpulist(text)
            .ok_or_else(|| cx.err(s, format!("{text:?} is not a pCPU list, expected {CPUS_EXPECTED}"))),
        Value::List(items) => {
            // xl's per-vCPU form: vCPU i may use the i-th set. We pin each vCPU to one pCPU.
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let one = match item {
                    Value::Atom { text, .. } => match cpulist(text) {
                        Some(XlCpus::List(l)) if l.len() == 1 => l[0],
                        _ => {
                            return Err(cx.err(
                                s,
                                format!("vCPU {i}'s entry {text:?} is not a single pCPU, expected one pCPU per vCPU such as [\"2\", \"3\"] (each vCPU is pinned to one pCPU)"),
                            ))
                        }
                    },
                    v => {
                        return Err(cx.err(
                            s,
                            format!("found {} in the list, expected one pCPU string per vCPU", v.kind()),
                        ))
                    }
                };
                out.push(one);
            }
            if out.is_empty() {
                return Err(cx.err(s, format!("found an empty list, expected {CPUS_EXPECTED}")));
            }
            Ok(XlCpus::List(out))
        }
    }
}

/// Resolves `kernel`: a file relative to the .cfg's folder (as xl reads it), else a built-in
/// image's name. Returns the text as written too, for later messages.
fn kernel(cx: &Cx<'_>, s: &Setting) -> Result<(Image, String), ConfigError> {
    let text = cx.string(s, "a kernel path")?;
    let path = cx.file.parent().unwrap_or(Path::new(".")).join(&text);
    if path.is_file() {
        return Ok((Image::File(path), text));
    }
    match Image::named(&text) {
        Some(image) => Ok((image, text)),
        None => Err(cx.err(
            s,
            format!(
                "{text:?} is neither an existing file ({}) nor a built-in image, expected a path relative to the .cfg file or one of {}",
                path.display(),
                image_names()
            ),
        )),
    }
}

/// Resolves `ramdisk` like `kernel`; the one name is `"debian-initramfs"`.
fn ramdisk(cx: &Cx<'_>, s: &Setting) -> Result<Image, ConfigError> {
    let text = cx.string(s, "an initramfs path")?;
    let path = cx.file.parent().unwrap_or(Path::new(".")).join(&text);
    if path.is_file() {
        return Ok(Image::File(path));
    }
    let initramfs = DebianArtifact::Initramfs.name();
    Image::named_ramdisk(&text).ok_or_else(|| {
        cx.err(
            s,
            format!(
                "{text:?} is neither an existing file ({}) nor {initramfs}, expected a path relative to the .cfg file or \"{initramfs}\"",
                path.display()
            ),
        )
    })
}

/// Reads `disk`: a list of xl disk specifications, targets relative to the .cfg's folder.
fn disk_lines(cx: &Cx<'_>, s: &Setting) -> Result<Vec<At<Disk>>, ConfigError> {
    let dir = cx.file.parent().unwrap_or(Path::new("."));
    let Value::List(items) = &s.value else {
        return Err(cx.err(
            s,
            format!("found {}, expected a list of strings", s.value.kind()),
        ));
    };
    items
        .iter()
        .map(|v| match v {
            Value::Atom { text, quoted: true } => disks::resolve(text, dir)
                .map(|d| At::in_file(d, s.line, cx.file))
                .map_err(|problem| cx.err(s, problem)),
            v => Err(cx.err(
                s,
                format!("found {} in the list, expected a list of strings", v.kind()),
            )),
        })
        .collect()
}

/// Reads `vif`: a list of xl vif specifications; what a line ignores is one warning each.
fn vif_lines(cx: &mut Cx<'_>, s: &Setting) -> Result<Vec<At<VifSpec>>, ConfigError> {
    let Value::List(items) = &s.value else {
        return Err(cx.err(
            s,
            format!("found {}, expected a list of strings", s.value.kind()),
        ));
    };
    let mut out = Vec::new();
    for v in items {
        let Value::Atom { text, quoted: true } = v else {
            return Err(cx.err(
                s,
                format!("found {} in the list, expected a list of strings", v.kind()),
            ));
        };
        let parsed = vif::parse(text).map_err(|problem| cx.err(s, problem))?;
        for w in parsed.warnings {
            cx.warn(s, w);
        }
        out.push(At::in_file(parsed.spec, s.line, cx.file));
    }
    Ok(out)
}

/// Turns the settings of `file` into a domain.
pub fn interpret(file: &Path, settings: &[Setting]) -> Result<XlDomain, ConfigError> {
    let mut cx = Cx {
        file,
        warnings: Vec::new(),
    };
    let mut name = None;
    let mut image = None;
    let mut initrd = None;
    let mut memory = None;
    let mut maxmem = None;
    let mut vcpus = 1;
    let mut cpu_list = None;
    let (mut cmdline, mut extra, mut root) = (None, None, None);
    let mut on_poweroff = Action::Destroy;
    let mut on_reboot = Action::Restart;
    let mut on_crash = Action::Destroy;
    let mut disk_list = Vec::new();
    let mut vif_list = Vec::new();
    let mut passthrough = XlPassthrough::default();
    let mut gic_version = None;
    for s in settings {
        let key = s.key.as_str();
        match key {
            "name" => {
                let v = cx.string(s, "a domain name")?;
                if !system::valid_name(&v) {
                    return Err(cx.err(s, format!("{v:?} is not a valid domain name, expected 1..=31 bytes of [A-Za-z0-9_.-], not \"dom0\"")));
                }
                name = Some(At::in_file(v, s.line, file));
            }
            "type" => match cx.string(s, "a guest type")?.as_str() {
                "pvh" => {}
                t @ ("pv" | "hvm") => return Err(cx.err(s, format!("{t:?} guests do not exist on Arm, expected \"pvh\" (the only Arm guest type, as on Xen) or no `type`"))),
                t => return Err(cx.err(s, format!("{t:?} is not a guest type, expected \"pvh\" or no `type`"))),
            },
            "memory" => memory = Some((cx.int(s, 1, u64::from(MAX_DOMAIN_MIB), "MiB")? as u32, s)),
            "vcpus" => vcpus = cx.int(s, 1, u64::from(MAX_VCPUS), "a vCPU count")? as u16,
            "cpus" => cpu_list = Some(At::in_file(cpus(&cx, s)?, s.line, file)),
            "kernel" => image = Some((kernel(&cx, s)?, s.line)),
            "ramdisk" => initrd = Some((At::in_file(ramdisk(&cx, s)?, s.line, file), s)),
            "cmdline" => cmdline = Some(cx.string(s, "the guest's command line")?),
            "extra" => extra = Some((cx.string(s, "command-line arguments")?, s)),
            "root" => root = Some((cx.string(s, "a root device")?, s)),
            "on_poweroff" => on_poweroff = cx.action(s)?,
            "on_reboot" => on_reboot = cx.action(s)?,
            "on_crash" => on_crash = cx.action(s)?,
            "disk" => disk_list = disk_lines(&cx, s)?,
            "vif" => vif_list = vif_lines(&mut cx, s)?,
            "iomem" => passthrough.iomem = iomem(&cx, s)?,
            "irqs" => passthrough.irqs = irqs(&cx, s)?,
            "dtdev" => passthrough.dtdevs = dtdevs(&cx, s)?,
            "device_tree" => {
                let text = cx.string(s, "a path")?;
                let dir = file.parent().unwrap_or(Path::new("."));
                passthrough.device_tree = Some(At::in_file(dir.join(text), s.line, file));
            }
            "gic_version" => {
                let version = match cx.string(s, "a GIC version")?.as_str() {
                    "default" => None,
                    "v2" => Some(GicVersion::V2),
                    "v3" => Some(GicVersion::V3),
                    v => return Err(cx.err(s, format!("{v:?} is not a GIC version, expected \"v2\", \"v3\" or \"default\" (the host's)"))),
                };
                gic_version = version.map(|v| At::in_file(v, s.line, file));
            }
            _ => {
                if let Some((_, why)) = LATER.iter().find(|(k, _)| *k == key) {
                    match key {
                        "maxmem" => maxmem = Some((cx.int(s, 1, 1 << 20, "MiB")?, s)),
                        "maxvcpus" => {
                            cx.int(s, 1, u64::from(MAX_VCPUS), "a vCPU count")?;
                        }
                        // xl's default for on_soft_reset is "soft-reset" itself.
                        "on_soft_reset"
                            if matches!(&s.value, Value::Atom { text, .. } if text == "soft-reset") => {}
                        "on_watchdog" | "on_soft_reset" => {
                            cx.action(s)?;
                        }
                        "driver_domain" => {
                            cx.int(s, 0, u64::MAX, "a boolean (0 or 1)")?;
                        }
                        _ => {}
                    }
                    cx.warn(s, format!("not implemented yet ({why}), ignored"));
                } else if X86_ONLY.contains(&key) {
                    return Err(cx.err(s, "is an x86 PV/HVM option, which makes no sense for an Arm guest, expected it removed"));
                } else {
                    return Err(cx.err(
                        s,
                        format!("unknown key, expected an xl.cfg(5) key; Bulkhead uses {}", USED.join(", ")),
                    ));
                }
            }
        }
    }
    let missing = |key: &str, expected: &str| ConfigError {
        file: file.display().to_string(),
        line: 1,
        key: key.into(),
        problem: format!("missing, expected {expected}"),
    };
    let memory_mib = match memory {
        Some((m, _)) => m,
        None => DEFAULT_MEMORY_MIB,
    };
    if let Some((max, s)) = maxmem {
        if max < u64::from(memory_mib) {
            return Err(cx.err(
                s,
                format!("{max} is less than memory ({memory_mib}), expected maxmem >= memory"),
            ));
        }
    }
    if cmdline.is_some() {
        for (_, s) in [&extra, &root].into_iter().flatten() {
            cx.warn(s, "ignored because `cmdline` is set (as xl does)");
        }
    }
    let cmdline = cmdline.unwrap_or_else(|| {
        let root = root.map(|(r, _)| format!("root={r}"));
        [root, extra.map(|(e, _)| e)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let name = name.ok_or_else(|| missing("name", "name = \"NAME\" (xl.cfg(5) requires it)"))?;
    let ((image, shown), line) = image.ok_or_else(|| {
        missing(
            "kernel",
            &format!(
                "kernel = \"PATH\" to a Bulkhead flat image or an arm64 Linux Image, or one of {}",
                image_names()
            ),
        )
    })?;
    if let Some((_, s)) = &initrd {
        if let Some(problem) = ramdisk_problem(&image, "kernel", &shown) {
            return Err(cx.err(s, problem));
        }
    }
    let vifs = nics::settle(&name.value, vif_list);
    Ok(XlDomain {
        file: file.to_path_buf(),
        name,
        cmdline: effective_cmdline(&image, cmdline),
        image: At::in_file(image, line, file),
        ramdisk: initrd.map(|(r, _)| r),
        memory_mib,
        vcpus,
        cpus: cpu_list,
        on_poweroff,
        on_reboot,
        on_crash,
        vifs,
        disks: disk_list,
        passthrough,
        gic_version,
        warnings: cx.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_strtol() {
        assert_eq!(number("512"), Some(512));
        assert_eq!(number("0x20"), Some(32));
        assert_eq!(number("010"), Some(8));
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("08"), None);
        assert_eq!(number("12a"), None);
        assert_eq!(number(""), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpulist("2"), Some(XlCpus::List(vec![2])));
        assert_eq!(cpulist("1-3"), Some(XlCpus::List(vec![1, 2, 3])));
        assert_eq!(cpulist("0,2"), Some(XlCpus::List(vec![0, 2])));
        assert_eq!(cpulist("0-3,^1"), Some(XlCpus::List(vec![0, 2, 3])));
        assert_eq!(cpulist("all"), Some(XlCpus::Any { except: vec![] }));
        assert_eq!(
            cpulist("all,^1-2"),
            Some(XlCpus::Any { except: vec![1, 2] })
        );
        for bad in ["", "x", "1-", "3-1", "^1", "1,,2", "-1"] {
            assert_eq!(cpulist(bad), None, "{bad:?}");
        }
        assert_eq!(cpulist("2,1-3,2"), Some(XlCpus::List(vec![2, 1, 3])));
    }

    #[test]
    fn a_list_of_every_pcpu_less_all_but_one() {
        // The `xlcfg` fuzz target's slow unit: "0-51615" took 9 s with a search per entry.
        let all = cpulist("0-65535,^0-65534,0-65535").expect("a valid list");
        assert_eq!(all, XlCpus::List(vec![65535]));
        assert_eq!(
            cpulist("all,^0-65535"),
            Some(XlCpus::Any {
                except: (0..=u16::MAX).collect()
            })
        );
    }
}
