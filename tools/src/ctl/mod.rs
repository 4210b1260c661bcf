//! `cargo bulkhead ctl <verb>`: manage a running system over dom0's management port
//! (`protocol::mgmt`, a unix socket QEMU exposes under `target/bulkhead/`).
//!
//! Every verb opens a session (Hello, version check), sends one typed request per verb and
//! prints the reply as a table, or as JSON with `--json`. Failures are one line on stderr
//! and a non-zero exit (the caller prints the returned error).

pub mod client;
pub mod console;
mod disks;
mod packed;
mod passthru;
mod sched;
pub mod show;
pub mod show_dev;
pub mod show_health;
pub mod show_holds;
pub mod show_vbd;
pub mod show_vcpu;
pub mod show_vif;
pub mod show_xs;
mod terminal;
pub mod top;
mod upload;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use client::{Client, REPLY_TIMEOUT};
use protocol::mgmt::{DomainRef, Request, Response};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The management socket of the system `cargo bulkhead run` boots.
pub fn default_socket() -> PathBuf {
    crate::paths::out_dir().join("mgmt.sock")
}

/// `ctl`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct CtlArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// dom0's management socket [default: target/bulkhead/mgmt.sock].
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub verb: CtlVerb,
}

impl CtlArgs {
    /// Parses `ctl`'s words as its command line would, for programs that drive `ctl`
    /// (the QEMU tests).
    pub fn from_words(words: &[&str]) -> Result<Self> {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            ctl: CtlArgs,
        }
        <Cmd as clap::Parser>::try_parse_from(std::iter::once("ctl").chain(words.iter().copied()))
            .map(|c| c.ctl)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// One verb per management request.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum CtlVerb {
    /// Every domain: name, id, memory, vCPUs, state, CPU time (like `xl list`).
    List,
    /// The system: protocol versions, timer frequency, domains, free memory (like `xl info`)
    /// and the microvisor's global-lock holds; with a domain, that domain and the virtual
    /// block devices it uses or serves.
    Info(InfoArgs),
    /// Stop scheduling a running domain.
    Pause(Target),
    /// Resume a paused domain.
    Unpause(Target),
    /// Stop a domain and free its memory.
    Destroy(Target),
    /// Rebuild a domain in place (same id, fresh memory).
    Restart(Target),
    /// Test capability: make a running domain take a genuine fault (an exception on its
    /// vCPU 0), so its `on_crash` policy applies (a driver domain restarts in place); with
    /// `--hang`, make it stop answering instead (its vCPUs spin with interrupts masked,
    /// nobody is told), so
    /// only its heartbeat watchdog notices.
    Crash(CrashArgs),
    /// Ask a domain to power off cleanly.
    Shutdown(Target),
    /// Ask a domain to reboot cleanly.
    Reboot(Target),
    /// Build and start a domain from an xl.cfg file (`xl create`). Its kernel must be an
    /// image the running system already has as a boot module (a built-in domain such as
    /// `testguest`, or the very file packed into this system: a different file of the same
    /// name is refused).
    Create {
        /// The xl.cfg file.
        #[arg(value_name = "FILE.cfg")]
        file: PathBuf,
        /// Attach to the new domain's console, from its first line (`xl create -c`).
        #[arg(short = 'c')]
        console: bool,
        /// Guest time each of its shared vCPUs may use at its priority per period, in µs,
        /// from its start and again after each restart in place (as `budget_us` in a system
        /// description; `sched-fp` changes it later). Needs --period-us.
        #[arg(long, requires = "period_us")]
        budget_us: Option<u32>,
        /// The budget's period in µs. Needs --budget-us.
        #[arg(long, requires = "budget_us")]
        period_us: Option<u32>,
        /// The fixed priority of its shared vCPUs (higher runs first; default 10), from
        /// its start and again after each restart in place (as `priority` in a system
        /// description; `sched-fp` changes it later).
        #[arg(long)]
        priority: Option<u8>,
    },
    /// The microvisor's console history: its log and every domain's lines (`xl dmesg`).
    Dmesg,
    /// Follow a domain's console and type into it (`xl console`). Input is sent a line at
    /// a time; detach with Ctrl-] (then Enter) or end of input (Ctrl-D).
    Console(Target),
    /// Per-domain CPU time, memory, exits and interrupts, refreshing.
    Top {
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2.0, value_name = "SECS")]
        interval: f64,
        /// Refresh this many times, then exit [default: until Ctrl-C].
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Read or change dom0's xenstore with the toolstack's rights (`xenstore-ls`, `-read`,
    /// `-write`, `-rm`).
    Xenstore {
        /// What to do.
        #[command(subcommand)]
        op: show_xs::XsVerb,
    },
    /// Each vCPU: its pCPU, state (r running, b blocked, - off), CPU time and how it is
    /// pinned (like `xl vcpu-list`); every domain's, or one domain's.
    VcpuList(InfoTarget),
    /// Keep the first N vCPUs of a Linux (Xen-ABI) guest online and take the rest offline
    /// through its xenstore `cpu/N/availability` (like `xl vcpu-set`); the guest's kernel
    /// does the hotplug.
    VcpuSet {
        /// Domain name, or numeric domain id.
        #[arg(value_name = "NAME")]
        domain: String,
        /// How many vCPUs stay online.
        #[arg(value_name = "N")]
        online: u16,
    },
    /// Show or set the fixed priority of a domain's vCPUs on their shared pCPUs (xl's
    /// `sched-*` for Bulkhead's fixed-priority scheduler); higher runs first.
    SchedFp {
        /// Domain name, or numeric domain id.
        #[arg(value_name = "NAME")]
        domain: String,
        /// Only this vCPU (default: every vCPU of the domain).
        #[arg(long)]
        vcpu: Option<u16>,
        /// The new priority (default: show the current ones).
        #[arg(long)]
        priority: Option<u8>,
        /// Guest time the vCPU may use at its priority per period, in µs; once used it runs
        /// only when nothing within its budget on its pCPU wants to (0 with a 0 period:
        /// no budget). Needs --period-us.
        #[arg(long, requires = "period_us")]
        budget_us: Option<u32>,
        /// The budget's period in µs. Needs --budget-us.
        #[arg(long, requires = "budget_us")]
        period_us: Option<u32>,
    },
    /// Move one vCPU of a guest to another pCPU while it runs (like `xl vcpu-pin`): a shared
    /// vCPU onto a pCPU nobody holds exclusively, an exclusive one onto a pCPU no vCPU uses.
    VcpuPin {
        /// Domain name, or numeric domain id.
        #[arg(value_name = "NAME")]
        domain: String,
        /// The vCPU's index.
        #[arg(value_name = "VCPU")]
        vcpu: u16,
        /// The pCPU it moves to.
        #[arg(value_name = "CPU")]
        pcpu: u16,
        /// Its fixed priority there (default: unchanged); higher runs first.
        #[arg(long)]
        priority: Option<u8>,
    },
}

/// The optional domain of `ctl info`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct InfoTarget {
    /// Domain name, or numeric domain id.
    #[arg(value_name = "NAME")]
    pub domain: Option<String>,
}

/// `ctl info`'s arguments.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct InfoArgs {
    /// Domain name, or numeric domain id.
    #[arg(value_name = "NAME")]
    pub domain: Option<String>,
    /// After showing them, start the record of global-lock holds (each CPU's locked passes
    /// and longest hold) again.
    #[arg(long, conflicts_with = "domain")]
    pub reset_holds: bool,
}

/// `ctl crash`'s arguments.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CrashArgs {
    /// Domain name, or numeric domain id.
    #[arg(value_name = "NAME")]
    pub domain: String,
    /// Hang the domain instead of faulting it.
    #[arg(long)]
    pub hang: bool,
}

/// The domain a verb acts on.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct Target {
    /// Domain name, or numeric domain id.
    #[arg(value_name = "NAME")]
    pub domain: String,
}

impl CtlVerb {
    /// The request for a verb that acts on one domain.
    fn request(&self) -> Option<Request> {
        let d = |t: &Target| DomainRef::parse(&t.domain);
        Some(match self {
            Self::Pause(t) => Request::Pause { domain: d(t) },
            Self::Unpause(t) => Request::Unpause { domain: d(t) },
            Self::Destroy(t) => Request::Destroy { domain: d(t) },
            Self::Restart(t) => Request::Restart { domain: d(t) },
            Self::Crash(c) => {
                let domain = DomainRef::parse(&c.domain);
                if c.hang {
                    Request::Hang { domain }
                } else {
                    Request::Crash { domain }
                }
            }
            Self::Shutdown(t) => Request::Shutdown { domain: d(t) },
            Self::Reboot(t) => Request::Reboot { domain: d(t) },
            Self::VcpuSet { domain, online } => Request::VcpuSet {
                domain: DomainRef::parse(domain),
                online: *online,
            },
            Self::VcpuPin {
                domain,
                vcpu,
                pcpu,
                priority,
            } => Request::VcpuPin {
                domain: DomainRef::parse(domain),
                vcpu: *vcpu,
                pcpu: *pcpu,
                priority: *priority,
            },
            Self::List
            | Self::Info(_)
            | Self::Top { .. }
            | Self::Create { .. }
            | Self::Dmesg
            | Self::Xenstore { .. }
            | Self::VcpuList(_)
            | Self::SchedFp { .. }
            | Self::Console(_) => return None,
        })
    }
}

/// Runs `ctl` against the socket in `args`, printing to stdout.
pub fn ctl(args: &CtlArgs) -> Result<()> {
    let socket = args.socket.clone().unwrap_or_else(default_socket);
    let stdout = std::io::stdout();
    let clear = !args.json && stdout.is_terminal();
    run(args, &socket, REPLY_TIMEOUT, clear, &mut stdout.lock())
}

/// Runs `ctl` against `socket`, printing to `out`. `clear`: `top` may clear the screen.
pub fn run(
    args: &CtlArgs,
    socket: &Path,
    timeout: Duration,
    clear: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if let CtlVerb::Top { interval, .. } = args.verb {
        if !(interval.is_finite() && interval > 0.0 && interval <= 3600.0) {
            bail!("--interval {interval}: expected seconds between 0 and 3600");
        }
    }
    let mut c = Client::connect(socket, timeout)?;
    match &args.verb {
        CtlVerb::List => {
            let hz = system(&mut c)?.counter_hz;
            let Response::Domains(rows) = c.call(&Request::List)? else {
                bail!("unexpected reply from dom0 to list");
            };
            let health = health(&mut c)?;
            if args.json {
                writeln!(out, "{:#}", show::list_json(&rows, &health, hz))?;
            } else {
                write!(out, "{}", show::list_table(&rows, &health, hz))?;
            }
        }
        CtlVerb::Info(InfoArgs {
            domain: None,
            reset_holds,
        }) => {
            let info = system(&mut c)?;
            let holds = match c.call(&Request::LockHolds {
                reset: *reset_holds,
            })? {
                Response::LockHolds(h) => h,
                _ => bail!("unexpected reply from dom0 to info"),
            };
            if args.json {
                writeln!(out, "{:#}", show::info_json(&info, &holds, *reset_holds))?;
            } else {
                write!(out, "{}", show::info_text(&info, &holds, *reset_holds))?;
            }
        }
        CtlVerb::Info(InfoArgs {
            domain: Some(d), ..
        }) => {
            let hz = system(&mut c)?.counter_hz;
            let Response::Domains(rows) = c.call(&Request::List)? else {
                bail!("unexpected reply from dom0 to list");
            };
            let target = DomainRef::parse(d);
            let row = rows
                .iter()
                .find(|r| match &target {
                    DomainRef::Id(id) => r.id == *id,
                    DomainRef::Name(n) => &r.name == n,
                })
                .with_context(|| format!("no domain {d}"))?;
            let vbds = match c.call(&Request::Vbds {
                domain: target.clone(),
            })? {
                Response::Vbds(v) => v,
                Response::Error(e) => bail!("{e}"),
                _ => bail!("unexpected reply from dom0 to info"),
            };
            let vifs = match c.call(&Request::Vifs {
                domain: target.clone(),
            })? {
                Response::Vifs(v) => v,
                Response::Error(e) => bail!("{e}"),
                _ => bail!("unexpected reply from dom0 to info"),
            };
            let uplink = match c.call(&Request::Uplink {
                domain: target.clone(),
            })? {
                Response::Uplink(u) => u,
                Response::Error(e) => bail!("{e}"),
                _ => bail!("unexpected reply from dom0 to info"),
            };
            let devices = match c.call(&Request::Devices { domain: target })? {
                Response::Devices(d) => d,
                _ => bail!("unexpected reply from dom0 to info"),
            };
            let health = health(&mut c)?;
            let h = show_health::find(&health, row.id);
            if args.json {
                let mut j = show::row_json(row, hz);
                show_health::merge(&mut j, h);
                j["vbds"] = show_vbd::vbds_json(&vbds);
                j["vifs"] = show_vif::vifs_json(&vifs);
                j["uplink"] = show_vif::uplink_json(uplink.as_ref());
                j["devices"] = show_dev::devices_json(&devices);
                writeln!(out, "{j:#}")?;
            } else {
                let one = std::slice::from_ref(row);
                write!(out, "{}", show::list_table(one, &health, hz))?;
                if let Some(h) = h {
                    write!(out, "{}", show_health::health_text(h))?;
                }
                write!(out, "{}", show_vbd::vbds_text(&vbds))?;
                write!(out, "{}", show_vif::vifs_text(&vifs))?;
                write!(out, "{}", show_vif::uplink_text(uplink.as_ref()))?;
                write!(out, "{}", show_dev::devices_text(&devices))?;
            }
        }
        CtlVerb::Console(t) => console::attach(&mut c, &DomainRef::parse(&t.domain), out)?,
        CtlVerb::Dmesg => {
            let mut from = 0;
            let mut text = Vec::new();
            loop {
                let Response::Log { bytes, start, end } = c.call(&Request::Dmesg { from })? else {
                    bail!("unexpected reply from dom0 to dmesg");
                };
                if bytes.is_empty() {
                    break;
                }
                from = start + bytes.len() as u64;
                text.extend_from_slice(&bytes);
                if from >= end {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&text);
            if args.json {
                writeln!(out, "{}", json!({ "log": text }))?;
            } else {
                write!(out, "{text}")?;
            }
        }
        CtlVerb::Create {
            file,
            console,
            budget_us,
            period_us,
            priority,
        } => {
            let dir = crate::paths::image_dir();
            let given = CreateOptions {
                budget: budget_us.zip(*period_us),
                priority: *priority,
            };
            let (mut req, images) = create_parts(file, &dir, &given)?;
            let Request::Create { domain, .. } = &mut req else {
                bail!("internal error: not a create request");
            };
            upload::send_new_files(&mut c, domain, &images, &dir)?;
            let name = domain.name.clone();
            // Where the console history stands before the domain exists: `-c` shows its
            // boot from its first line.
            let since = if *console {
                Some(console::history_end(&mut c)?)
            } else {
                None
            };
            let Response::Done = c.call(&req)? else {
                bail!("unexpected reply from dom0 to create");
            };
            if args.json {
                writeln!(
                    out,
                    "{}",
                    json!({ "ok": true, "verb": "create", "domain": name })
                )?;
            } else {
                writeln!(out, "create {name}: started")?;
            }
            if since.is_some() {
                console::attach_since(&mut c, &DomainRef::Name(name), since, out)?;
            }
        }
        CtlVerb::Xenstore { op } => xenstore(&mut c, op, args.json, out)?,
        CtlVerb::VcpuList(t) => {
            let hz = system(&mut c)?.counter_hz;
            let domain = t.domain.as_deref().map(DomainRef::parse);
            let rows = match c.call(&Request::Vcpus { domain })? {
                Response::Vcpus(rows) => rows,
                Response::Error(e) => bail!("{e}"),
                _ => bail!("unexpected reply from dom0 to vcpu-list"),
            };
            if args.json {
                writeln!(out, "{:#}", show_vcpu::vcpus_json(&rows, hz))?;
            } else {
                write!(out, "{}", show_vcpu::vcpus_table(&rows, hz))?;
            }
        }
        CtlVerb::SchedFp {
            domain,
            vcpu,
            priority,
            budget_us,
            period_us,
        } => {
            let domain = DomainRef::parse(domain);
            let rows = match c.call(&Request::Vcpus {
                domain: Some(domain.clone()),
            })? {
                Response::Vcpus(rows) => rows,
                _ => bail!("unexpected reply from dom0 to sched-fp"),
            };
            let budget = budget_us.zip(*period_us);
            if priority.is_none() && budget.is_none() {
                write!(out, "{}", sched::show(&rows, args.json))?;
                return Ok(());
            }
            for req in sched::requests(&rows, *vcpu, *priority, budget)? {
                let Response::Done = c.call(&req)? else {
                    bail!("unexpected reply from dom0 to sched-fp");
                };
            }
            if args.json {
                let budget = budget.map(|(b, p)| json!({ "budget_us": b, "period_us": p }));
                writeln!(
                    out,
                    "{}",
                    json!({ "ok": true, "verb": "sched-fp", "domain": domain.to_string(), "priority": priority, "budget": budget })
                )?;
            } else {
                writeln!(out, "{}", sched::done_line(&domain, *priority, budget))?;
            }
        }
        CtlVerb::Top { interval, count } => {
            let opts = top::TopOptions {
                every: Duration::from_secs_f64(*interval),
                count: *count,
                json: args.json,
                clear,
            };
            top::run(&mut c, opts, out)?;
        }
        verb => {
            let Some(req) = verb.request() else {
                bail!("internal error: no request for {verb:?}");
            };
            let Response::Done = c.call(&req)? else {
                bail!("unexpected reply from dom0 to {}", req.verb());
            };
            if args.json {
                let domain = req.domain().map(ToString::to_string);
                writeln!(
                    out,
                    "{}",
                    json!({ "ok": true, "verb": req.verb(), "domain": domain })
                )?;
            } else if let Some(d) = req.domain() {
                writeln!(out, "{} {d}: done", req.verb())?;
            }
        }
    }
    Ok(())
}

/// `ctl xenstore`: one request, printed as the matching `xenstore-*` tool prints it.
fn xenstore(c: &mut Client, verb: &show_xs::XsVerb, json: bool, out: &mut dyn Write) -> Result<()> {
    use protocol::mgmt::XenstoreAnswer;
    let op = verb.op();
    let path = op.path().to_string();
    match (c.call(&Request::Xenstore { op })?, verb) {
        (Response::Xenstore(XenstoreAnswer::Nodes { nodes, truncated }), _) => {
            if json {
                writeln!(out, "{:#}", show_xs::tree_json(&path, &nodes, truncated))?;
            } else {
                write!(out, "{}", show_xs::tree_text(&path, &nodes, truncated))?;
            }
        }
        (Response::Xenstore(XenstoreAnswer::Value(v)), _) => {
            if json {
                let value = String::from_utf8_lossy(&v);
                writeln!(out, "{}", json!({ "path": path, "value": value }))?;
            } else {
                writeln!(out, "{}", String::from_utf8_lossy(&v))?;
            }
        }
        (Response::Done, _) if json => {
            writeln!(
                out,
                "{}",
                json!({ "ok": true, "verb": "xenstore", "path": path })
            )?;
        }
        (Response::Done, _) => {}
        (Response::Error(e), _) => bail!("{e}"),
        _ => bail!("unexpected reply from dom0 to xenstore"),
    }
    Ok(())
}

/// The `Create` request for an xl.cfg file, validated exactly as a system description's
/// `config = "…"` domain (errors name the .cfg file, line and key).
pub fn create_request(file: &Path) -> Result<Request> {
    create_parts(file, &crate::paths::image_dir(), &CreateOptions::default()).map(|(req, _)| req)
}

/// What `ctl create` adds to the xl.cfg for the domain's shared vCPUs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateOptions {
    /// `(budget_us, period_us)`: `--budget-us B --period-us P`.
    pub budget: Option<(u32, u32)>,
    /// `--priority P`.
    pub priority: Option<u8>,
}

/// [`create_request`] with what `ctl create`'s options give the domain's shared vCPUs
/// (`given`), and the (label, image) of each boot module the request names; the devices
/// it is given are checked against the running system packed in `dir`.
fn create_parts(
    file: &Path,
    dir: &Path,
    given: &CreateOptions,
) -> Result<(Request, Vec<(String, crate::system::Image)>)> {
    if let Some((b, p)) = given
        .budget
        .filter(|&(b, p)| !protocol::control::budget_givable(b, p))
    {
        bail!(
            "--budget-us {b} --period-us {p}: expected {} <= budget <= period <= {} (µs)",
            protocol::control::BUDGET_MIN_US,
            protocol::control::BUDGET_PERIOD_MAX_US
        );
    }
    let file =
        std::fs::canonicalize(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // Checked before the system is resolved: its disks' backend is not part of a one-domain
    // system, and that error would not say what is wrong.
    let mut backends: Vec<(String, &str)> = Vec::new();
    let mut running = Vec::new();
    if let Ok(xl) = crate::xlcfg::load(&file) {
        if let (Some(at), Some(machine)) = (&xl.gic_version, crate::machine::Machine::packed()) {
            machine.check_gic(at, &file.display().to_string())?;
        }
        if !xl.disks.is_empty() {
            running = disks::running_disks(dir)?;
            disks::check(&file, &xl.disks, &running)?;
        }
        // The running backends stand in here so the one-domain system checks out; dom0
        // refuses the domain if no domain of that name runs (its `depends_on`). Vifs need
        // no host device (the network backend serves them once dom0 writes their nodes);
        // disks are the running system's own (checked above).
        let wanted = xl
            .disks
            .iter()
            .map(|d| (d.value.spec.backend.clone(), "blkdom"))
            .chain(xl.vifs.iter().map(|v| {
                (
                    v.value.spec.backend.clone(),
                    crate::system::nics::NETDOM_IMAGE,
                )
            }));
        for (name, image) in wanted {
            if name != xl.name.value && !backends.iter().any(|(b, _)| *b == name) {
                backends.push((name, image));
            }
        }
    }
    let holder = file.with_extension("ctl-create.toml");
    let mut text = format!("[[domain]]\nconfig = {:?}\n", file.display().to_string());
    if let Some((b, p)) = given.budget {
        // Checked with the domain as a system description's would be (an exclusive
        // domain is refused one).
        text.push_str(&format!("budget_us = {b}\nperiod_us = {p}\n"));
    }
    if let Some(priority) = given.priority {
        // Overrides the xl.cfg's default, as beside `config` in a system description.
        text.push_str(&format!("priority = {priority}\n"));
    }
    for (b, image) in &backends {
        text.push_str(&format!(
            "[[domain]]\nname = {b:?}\nimage = \"{image}\"\nmemory = 16\n"
        ));
    }
    let system = crate::system::System::parse(&holder, &text, crate::system::Overrides::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut manifest, mut images) =
        crate::image::manifest(&system).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((label, tree)) = passthru::give_devices(&system, &mut manifest, &images, dir)? {
        // A partial tree the system was not packed with: sent like a new kernel file.
        let held = crate::paths::out_dir().join("ctl-create");
        std::fs::create_dir_all(&held).with_context(|| held.display().to_string())?;
        let path = held.join(format!("{label}.dtb"));
        std::fs::write(&path, tree).with_context(|| path.display().to_string())?;
        images.push((label, crate::system::Image::File(path)));
    }
    let created_disks = std::mem::take(&mut manifest.disks);
    let mut domain = manifest
        .domains
        .into_iter()
        .find(|d| !backends.iter().any(|(b, _)| *b == d.name))
        .ok_or_else(|| anyhow::anyhow!("{}: no domain", file.display()))?;
    disks::renumber(&mut domain, &created_disks, &running)?;
    let budget = manifest
        .budgets
        .iter()
        .find(|b| b.domain == domain.name)
        .map(|b| (b.budget_us, b.period_us));
    Ok((
        Request::Create {
            domain: Box::new(domain),
            budget,
        },
        images,
    ))
}

fn health(c: &mut Client) -> Result<Vec<protocol::mgmt::HealthRow>> {
    match c.call(&Request::Health)? {
        Response::Health(rows) => Ok(rows),
        _ => bail!("unexpected reply from dom0 to list"),
    }
}

fn system(c: &mut Client) -> Result<protocol::mgmt::SystemInfo> {
    match c.call(&Request::Info)? {
        Response::System(info) => Ok(info),
        _ => bail!("unexpected reply from dom0 to info"),
    }
}

#[cfg(test)]
mod tests;
