//! Key-by-key parsing of a system description, with every value's line kept for later
//! errors. We walk toml's spanned document ourselves rather than derive `Deserialize` so
//! that each message names the key and says what was expected.

use super::disks::{self, Disk};
use super::images::{effective_cmdline, ramdisk_problem};
use super::xl::{from_xl, place_unpinned};
use super::{
    image_names, At, ConfigError, DebianArtifact, Domain, Image, MgmtPort, Overrides, System,
    DEFAULT_WATCHDOG_S, MAX_DOMAIN_MIB, MAX_SMP, MAX_VCPUS, MAX_WATCHDOG_S, MIN_MEMORY_MIB,
};
use crate::xlcfg;
use protocol::control::PmuAccess;
use protocol::manifest::Action;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

#[path = "parse_net.rs"]
mod net;
use net::{hostfwd_rules, vif_lines};
#[path = "parse_budget.rs"]
mod budget;
#[path = "parse_limit.rs"]
mod limit;

const SYSTEM_KEYS: &[&str] = &["smp", "memory", "hostfwd", "passthrough", "mgmt_port"];
const DOMAIN_KEYS: &[&str] = &[
    "name",
    "image",
    "ramdisk",
    "memory",
    "vcpus",
    "cpus",
    "exclusive",
    "priority",
    "cmdline",
    "depends_on",
    "config",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "watchdog",
    "crash_limit",
    "disk",
    "vif",
    "pmu",
    "budget_us",
    "period_us",
];
/// Keys a `[[domain]]` with `config` may still set (they override the xl.cfg).
const CONFIG_KEYS: &[&str] = &[
    "config",
    "cpus",
    "exclusive",
    "priority",
    "depends_on",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "crash_limit",
    "pmu",
    "budget_us",
    "period_us",
];
const DEFAULT_SMP: u16 = 4;
const DEFAULT_MEMORY_MIB: u32 = 1024;
pub(super) const DEFAULT_PRIORITY: u8 = 10;

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Ctx<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    fn err(&self, span: Range<usize>, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.display().to_string(),
            line: self.line(span),
            key: key.into(),
            problem: problem.into(),
        }
    }

    fn int(
        &self,
        key: &str,
        v: &Value<'_>,
        range: Range<i128>,
        what: &str,
    ) -> Result<i128, ConfigError> {
        let expected = format!("expected {what} in {}..={}", range.start, range.end - 1);
        match v.get_ref() {
            DeValue::Integer(i) => {
                let n = i128::from_str_radix(i.as_str(), i.radix()).map_err(|_| {
                    self.err(v.span(), key, format!("{i} is not an integer, {expected}"))
                })?;
                if range.contains(&n) {
                    Ok(n)
                } else {
                    Err(self.err(v.span(), key, format!("{n} is out of range, {expected}")))
                }
            }
            other => Err(self.err(v.span(), key, format!("found {}, {expected}", kind(other)))),
        }
    }

    fn string(&self, key: &str, v: &Value<'_>, what: &str) -> Result<String, ConfigError> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            other => Err(self.err(
                v.span(),
                key,
                format!("found {}, expected {what}", kind(other)),
            )),
        }
    }

    fn boolean(&self, key: &str, v: &Value<'_>) -> Result<bool, ConfigError> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            other => Err(self.err(
                v.span(),
                key,
                format!("found {}, expected true or false", kind(other)),
            )),
        }
    }

    fn action(&self, key: &str, v: &Value<'_>) -> Result<Action, ConfigError> {
        let expected = "expected \"destroy\", \"restart\" or \"preserve\"";
        match self.string(key, v, "an action")?.as_str() {
            "destroy" => Ok(Action::Destroy),
            "restart" => Ok(Action::Restart),
            "preserve" => Ok(Action::Preserve),
            other => Err(self.err(
                v.span(),
                key,
                format!("{other:?} is not an action, {expected}"),
            )),
        }
    }

    fn pmu(&self, key: &str, v: &Value<'_>) -> Result<PmuAccess, ConfigError> {
        let s = self.string(key, v, "a PMU access")?;
        PmuAccess::from_name(&s).ok_or_else(|| {
            self.err(
                v.span(),
                key,
                format!("{s:?} is not a PMU access, expected \"off\", \"guest\" (its own counters) or \"el2\" (also counting the microvisor, for benchmarks)"),
            )
        })
    }

    fn strings(&self, key: &str, v: &Value<'_>, what: &str) -> Result<Vec<String>, ConfigError> {
        let expected = format!("expected an array of {what}");
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok(s.to_string()),
                    other => Err(self.err(
                        item.span(),
                        key,
                        format!("found {}, {expected}", kind(other)),
                    )),
                })
                .collect(),
            other => Err(self.err(v.span(), key, format!("found {}, {expected}", kind(other)))),
        }
    }

    /// The table's keys in file order; an unknown one is an error.
    fn keys<'t, 'i>(
        &self,
        table: &'t DeTable<'i>,
        known: &[&str],
        section: &str,
    ) -> Result<Vec<(&'t str, &'t Value<'i>)>, ConfigError> {
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
            .into_iter()
            .map(|(k, v)| {
                let name: &str = k.get_ref();
                if known.contains(&name) {
                    Ok((name, v))
                } else {
                    Err(self.err(
                        k.span(),
                        name,
                        format!(
                            "unknown key in {section}, expected one of {}",
                            known.join(", ")
                        ),
                    ))
                }
            })
            .collect()
    }
}

/// An array of host device-tree node paths (`"/pl061@9030000"`); which nodes exist is
/// checked against the host tree when the system is packed.
fn node_paths(cx: &Ctx<'_>, key: &str, v: &Value<'_>) -> Result<Vec<At<String>>, ConfigError> {
    let expected = "expected an array of host device-tree nodes such as \"/pl061@9030000\"";
    let DeValue::Array(items) = v.get_ref() else {
        return Err(cx.err(
            v.span(),
            key,
            format!("found {}, {expected}", kind(v.get_ref())),
        ));
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) if s.starts_with('/') && s.len() > 1 => {
                Ok(At::new(s.to_string(), cx.line(item.span())))
            }
            DeValue::String(s) => Err(cx.err(
                item.span(),
                key,
                format!("{s:?} is not a node path, {expected}"),
            )),
            other => Err(cx.err(
                item.span(),
                key,
                format!("found {}, {expected}", kind(other)),
            )),
        })
        .collect()
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Parses `text` (from `file`) without cross-domain checks.
pub(super) fn parse(file: &Path, text: &str, overrides: Overrides) -> Result<System, ConfigError> {
    let cx = Ctx { file, text };
    let doc = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().replace('\n', " ");
        cx.err(span, "(syntax)", format!("{msg}, expected valid TOML"))
    })?;
    let mut system = System {
        file: file.to_path_buf(),
        name: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "system".into()),
        smp: DEFAULT_SMP,
        memory_mib: DEFAULT_MEMORY_MIB,
        domains: Vec::new(),
        hostfwd: Vec::new(),
        passthrough: Vec::new(),
        mgmt_port: None,
        warnings: Vec::new(),
    };
    // Per domain: pCPUs its xl.cfg excluded with `cpus = "all,^N"` (only when unpinned).
    let mut excepts: Vec<Vec<u16>> = Vec::new();
    let mut smp_line = 1;
    let mut mem_line = 1;
    let mut hostfwd_line = 1;
    for (key, value) in cx.keys(doc.get_ref(), &["system", "domain"], "the file")? {
        match (key, value.get_ref()) {
            ("system", DeValue::Table(table)) => {
                for (key, v) in cx.keys(table, SYSTEM_KEYS, "[system]")? {
                    if key == "hostfwd" {
                        system.hostfwd = hostfwd_rules(&cx, v)?;
                        hostfwd_line = cx.line(v.span());
                    } else if key == "passthrough" {
                        system.passthrough = node_paths(&cx, key, v)?;
                    } else if key == "mgmt_port" {
                        let port = match cx.string(key, v, "\"serial1\" or \"none\"")?.as_str() {
                            "serial1" => MgmtPort::Serial1,
                            "none" => MgmtPort::None,
                            other => {
                                return Err(cx.err(
                                    v.span(),
                                    key,
                                    format!("{other:?} is not a management port, expected \"serial1\" (the ZCU102's second UART, the default there) or \"none\" (no management port: the UART is free for a guest)"),
                                ))
                            }
                        };
                        system.mgmt_port = Some(At::new(port, cx.line(v.span())));
                    } else if key == "smp" {
                        let n =
                            cx.int(key, v, 1..i128::from(MAX_SMP) + 1, "a physical CPU count")?;
                        system.smp = n as u16;
                        smp_line = cx.line(v.span());
                    } else {
                        let n = cx.int(key, v, 1..1 << 20, "MiB of host RAM")?;
                        if n < i128::from(MIN_MEMORY_MIB) {
                            return Err(cx.err(
                                v.span(),
                                key,
                                format!("{n} MiB is too little, expected at least {MIN_MEMORY_MIB} (boot modules load at RAM + 256 MiB)"),
                            ));
                        }
                        system.memory_mib = n as u32;
                        mem_line = cx.line(v.span());
                    }
                }
            }
            ("domain", DeValue::Array(items)) => {
                for item in items.iter() {
                    let DeValue::Table(table) = item.get_ref() else {
                        return Err(cx.err(
                            item.span(),
                            key,
                            "found a value, expected [[domain]] tables",
                        ));
                    };
                    let (d, except) = domain(&cx, table, cx.line(item.span()), &mut system)?;
                    system.domains.push(d);
                    excepts.push(except);
                }
            }
            (_, other) => {
                let expected = if key == "system" {
                    "a [system] table"
                } else {
                    "[[domain]] tables"
                };
                return Err(cx.err(
                    value.span(),
                    key,
                    format!("found {}, expected {expected}", kind(other)),
                ));
            }
        }
    }
    if let Some(smp) = overrides.smp {
        if !(1..=MAX_SMP).contains(&smp) {
            let mut e = cx.err(
                0..0,
                "smp",
                format!("--smp {smp} is out of range, expected 1..={MAX_SMP}"),
            );
            e.line = smp_line;
            return Err(e);
        }
        system.smp = smp;
    }
    if let Some(mem) = overrides.memory_mib {
        if mem < MIN_MEMORY_MIB {
            let mut e = cx.err(
                0..0,
                "memory",
                format!("--mem {mem} is too small, expected at least {MIN_MEMORY_MIB} MiB"),
            );
            e.line = mem_line;
            return Err(e);
        }
        system.memory_mib = mem;
    }
    for rule in overrides.hostfwd {
        let checked = super::nics::hostfwd(rule).map_err(|problem| {
            let mut e = cx.err(0..0, "hostfwd", format!("--hostfwd {problem}"));
            e.line = hostfwd_line;
            e
        })?;
        system.hostfwd.push(At::new(checked, hostfwd_line));
    }
    for path in overrides.domains {
        let xl = xlcfg::load(path)?;
        let line = xl.name.line;
        let (d, except) = from_xl(xl, line, &mut system);
        system.domains.push(d);
        excepts.push(except);
    }
    place_unpinned(&mut system, &excepts);
    super::disks::add_backend_dependencies(&mut system);
    super::nics::add_backend_dependencies(&mut system);
    Ok(system)
}

fn domain(
    cx: &Ctx<'_>,
    table: &DeTable<'_>,
    line: usize,
    system: &mut System,
) -> Result<(Domain, Vec<u16>), ConfigError> {
    let entries = cx.keys(table, DOMAIN_KEYS, "[[domain]]")?;
    if let Some((_, cfg)) = entries.iter().find(|(k, _)| *k == "config") {
        let s = cx.string("config", cfg, "a path to an xl.cfg file")?;
        let path = cx.file.parent().unwrap_or(Path::new(".")).join(&s);
        if !path.is_file() {
            return Err(cx.err(
                cfg.span(),
                "config",
                format!(
                    "{s:?} does not exist ({}), expected a path to an xl.cfg file relative to this file",
                    path.display()
                ),
            ));
        }
        if let Some((key, v)) = entries.iter().find(|(k, _)| !CONFIG_KEYS.contains(k)) {
            return Err(cx.err(
                v.span(),
                key,
                format!(
                    "comes from the xl.cfg file when `config` is set, expected it in {s} (beside `config`, a [[domain]] may set {})",
                    CONFIG_KEYS[1..].join(", ")
                ),
            ));
        }
        let xl = xlcfg::load(&path)?;
        let (mut d, mut except) = from_xl(xl, line, system);
        for (key, v) in &entries {
            let at = cx.line(v.span());
            match *key {
                "cpus" => {
                    d.cpus = At::new(cpu_list(cx, key, v)?, at);
                    except.clear();
                }
                "exclusive" => d.exclusive = cx.boolean(key, v)?,
                "priority" => d.priority = cx.int(key, v, 0..256, "a priority")? as u8,
                "depends_on" => d.depends_on = At::new(cx.strings(key, v, "domain names")?, at),
                "on_poweroff" => d.on_poweroff = cx.action(key, v)?,
                "on_reboot" => d.on_reboot = cx.action(key, v)?,
                "on_crash" => d.on_crash = cx.action(key, v)?,
                "crash_limit" => d.crash_limit = Some(limit::crash_limit(cx, v)?),
                "pmu" => d.pmu = cx.pmu(key, v)?,
                _ => {}
            }
        }
        d.budget_us = budget::budget(cx, &entries, d.exclusive)?;
        return Ok((d, except));
    }
    let mut name = None;
    let mut image = None;
    let mut ramdisk = None;
    let mut memory = None;
    let mut vcpus = 1;
    let mut cpus = None;
    let mut exclusive = false;
    let mut priority = DEFAULT_PRIORITY;
    let mut cmdline = String::new();
    let mut depends_on = At::new(Vec::new(), line);
    let mut on_poweroff = Action::Destroy;
    let mut on_reboot = Action::Restart;
    let mut on_crash = Action::Destroy;
    let mut watchdog = None;
    let mut crash_limit = None;
    let mut disks = Vec::new();
    let mut vifs = Vec::new();
    let mut pmu = PmuAccess::Off;
    for &(key, v) in &entries {
        let at = cx.line(v.span());
        match key {
            "name" => {
                let s = cx.string(key, v, "a domain name")?;
                if !valid_name(&s) {
                    return Err(cx.err(
                        v.span(),
                        key,
                        format!("{s:?} is not a valid domain name, expected 1..=31 bytes of [A-Za-z0-9_.-], not \"dom0\""),
                    ));
                }
                name = Some(At::new(s, at));
            }
            "image" => {
                let s = cx.string(key, v, "a built-in image or a path")?;
                let img = Image::named(&s)
                    .or_else(|| resolve_file(cx, &s))
                    .ok_or_else(|| {
                        cx.err(
                            v.span(),
                            key,
                            format!(
                                "{s:?} is neither a built-in image nor an existing file, expected one of {} or a path relative to the file",
                                image_names()
                            ),
                        )
                    })?;
                image = Some((At::new(img, at), s));
            }
            "ramdisk" => {
                let initramfs = DebianArtifact::Initramfs.name();
                let s = cx.string(key, v, "an initramfs")?;
                let img = Image::named_ramdisk(&s)
                    .or_else(|| resolve_file(cx, &s))
                    .ok_or_else(|| {
                        cx.err(
                            v.span(),
                            key,
                            format!(
                                "{s:?} is neither {initramfs} nor an existing file, expected \"{initramfs}\" or a path to an initramfs relative to the file"
                            ),
                        )
                    })?;
                ramdisk = Some((At::new(img, at), v.span()));
            }
            "memory" => {
                memory = Some(cx.int(key, v, 1..i128::from(MAX_DOMAIN_MIB) + 1, "MiB")? as u32)
            }
            "vcpus" => vcpus = cx.int(key, v, 1..i128::from(MAX_VCPUS) + 1, "a vCPU count")? as u16,
            "cpus" => cpus = Some(At::new(cpu_list(cx, key, v)?, at)),
            "exclusive" => exclusive = cx.boolean(key, v)?,
            "priority" => priority = cx.int(key, v, 0..256, "a priority")? as u8,
            "cmdline" => cmdline = cx.string(key, v, "a string of arguments")?,
            "on_poweroff" => on_poweroff = cx.action(key, v)?,
            "on_reboot" => on_reboot = cx.action(key, v)?,
            "on_crash" => on_crash = cx.action(key, v)?,
            "watchdog" => watchdog = Some((watchdog_seconds(cx, v)?, v.span())),
            "crash_limit" => crash_limit = Some(limit::crash_limit(cx, v)?),
            "disk" => disks = disk_lines(cx, v)?,
            "vif" => vifs = vif_lines(cx, v, system)?,
            "pmu" => pmu = cx.pmu(key, v)?,
            // Read together below: each needs the other.
            "budget_us" | "period_us" => {}
            _ => depends_on = At::new(cx.strings(key, v, "domain names")?, at),
        }
    }
    let missing = |key: &str, expected: &str| ConfigError {
        file: cx.file.display().to_string(),
        line,
        key: key.into(),
        problem: format!("missing in [[domain]], expected {expected}"),
    };
    let name =
        name.ok_or_else(|| missing("name", "a domain name (or `config`, an xl.cfg file)"))?;
    let (image, shown) = image.ok_or_else(|| {
        missing(
            "image",
            &format!(
                "one of {} or a path to a flat binary or an arm64 Linux Image",
                image_names()
            ),
        )
    })?;
    if let Some((_, span)) = &ramdisk {
        if let Some(problem) = ramdisk_problem(&image.value, "image", &shown) {
            return Err(cx.err(span.clone(), "ramdisk", problem));
        }
    }
    let budget_us = budget::budget(cx, &entries, exclusive)?;
    let vifs = super::nics::settle(&name.value, vifs);
    let watchdog_s = match watchdog {
        Some((0, _)) => None,
        Some((s, span)) if image.value == Image::Debian(DebianArtifact::Kernel) => {
            return Err(cx.err(
                span,
                "watchdog",
                format!("{s} on a Linux guest, which sends no heartbeat (it would be restarted once the first-beat wait ran out), expected 0 or no `watchdog`"),
            ));
        }
        Some((s, _)) => Some(s),
        None => default_watchdog(&image.value),
    };
    let d = Domain {
        vifs,
        name,
        cmdline: effective_cmdline(&image.value, cmdline),
        image,
        ramdisk: ramdisk.map(|(r, _)| r),
        memory_mib: memory.ok_or_else(|| missing("memory", "MiB in 1..=2048"))?,
        vcpus,
        cpus: cpus.unwrap_or(At::new(Vec::new(), line)),
        auto_cpus: false,
        exclusive,
        priority,
        budget_us,
        depends_on,
        on_poweroff,
        on_reboot,
        on_crash,
        watchdog_s,
        crash_limit,
        disks,
        passthrough: Default::default(),
        gic_version: None,
        pmu,
        config: None,
        line,
    };
    Ok((d, Vec::new()))
}

/// `watchdog = N`: seconds of silence before a restart, 0 for off.
fn watchdog_seconds(cx: &Ctx<'_>, v: &Value<'_>) -> Result<u32, ConfigError> {
    let n = cx.int(
        "watchdog",
        v,
        0..i128::from(MAX_WATCHDOG_S) + 1,
        "seconds without a heartbeat (0: off)",
    )?;
    // In range, so it fits.
    Ok(u32::try_from(n).unwrap_or(MAX_WATCHDOG_S))
}

/// The watchdog a domain gets without a `watchdog` key: on for the built-in driver domains
/// (their runtime beats from its idle wait), off for the rest.
fn default_watchdog(image: &Image) -> Option<u32> {
    let driver = ["blkdom", super::nics::NETDOM_IMAGE];
    match image {
        Image::Builtin(name) if driver.contains(&name.as_str()) => Some(DEFAULT_WATCHDOG_S),
        _ => None,
    }
}

/// `disk = ["…"]`: xl disk specifications, targets relative to this file.
fn disk_lines(cx: &Ctx<'_>, v: &Value<'_>) -> Result<Vec<At<Disk>>, ConfigError> {
    let expected = "expected an array of xl disk specifications such as \"disk.img,raw,xvda,rw\"";
    let DeValue::Array(items) = v.get_ref() else {
        return Err(cx.err(
            v.span(),
            "disk",
            format!("found {}, {expected}", kind(v.get_ref())),
        ));
    };
    let dir = cx.file.parent().unwrap_or(Path::new("."));
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) => disks::resolve(s, dir)
                .map(|d| At::new(d, cx.line(item.span())))
                .map_err(|problem| cx.err(item.span(), "disk", problem)),
            other => Err(cx.err(
                item.span(),
                "disk",
                format!("found {}, {expected}", kind(other)),
            )),
        })
        .collect()
}

fn cpu_list(cx: &Ctx<'_>, key: &str, v: &Value<'_>) -> Result<Vec<u16>, ConfigError> {
    let s = cx.string(key, v, "a pCPU list such as \"2\", \"1-3\" or \"0,2\"")?;
    super::cpus::parse(&s).ok_or_else(|| {
        cx.err(
            v.span(),
            key,
            format!("{s:?} is not a pCPU list, expected a list such as \"2\", \"1-3\" or \"0,2\""),
        )
    })
}

/// `[A-Za-z0-9_.-]{1,31}`, not `dom0`: xl's names (`domU`, `guest.1`) fit, and every name
/// is safe in a console prefix and a file name.
pub fn valid_name(s: &str) -> bool {
    (1..=protocol::boot::MAX_NAME_LEN).contains(&s.len())
        && s != protocol::boot::DOM0_LABEL
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// `s` as a path relative to the file, if it names a file.
fn resolve_file(cx: &Ctx<'_>, s: &str) -> Option<Image> {
    let dir = cx.file.parent().unwrap_or(Path::new("."));
    let path = dir.join(s);
    path.is_file().then_some(Image::File(path))
}
