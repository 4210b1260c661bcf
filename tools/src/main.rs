//! `cargo bulkhead <verb>`: the project's xtask. Each verb is a module of the library; this
//! file only parses arguments and maps outcomes to exit codes.

use anyhow::Result;
use bulkhead_tools::image::ImageOptions;
use bulkhead_tools::machine::Machine;
use bulkhead_tools::markers::Expect;
use bulkhead_tools::qemu::{self, Outcome, RunOptions};
use bulkhead_tools::system::Overrides;
use bulkhead_tools::{bench, build, image, testcmd};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "bulkhead",
    about = "Build, pack, boot and test Bulkhead systems"
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Cross-build the microvisor and domains and make flat binaries.
    Build,
    /// Build and pack a system into target/bulkhead/image/.
    Image(SystemArgs),
    /// Pack and boot a system in QEMU, console on the terminal.
    Run(RunArgs),
    /// Host unit tests, then the QEMU integration tests.
    Test,
    /// Deterministic instruction-count benchmarks under QEMU -icount.
    Bench {
        /// Which benchmark: hypercall, rt, boot, blk, net, restart or micro.
        #[arg(default_value = "hypercall")]
        which: String,
        /// Also run it on another hypervisor and print the ratios (micro: `xen`).
        #[arg(long, value_name = "HYPERVISOR")]
        against: Option<String>,
        /// How many times to crash each driver domain (restart only; default 3; blkdom 1 to
        /// 3, netdom 1 to 10).
        #[arg(long, value_name = "N")]
        count: Option<u32>,
        /// Which driver domain to crash (restart only): blkdom or netdom; default both.
        #[arg(long, value_name = "blkdom|netdom")]
        target: Option<String>,
        /// Reuse the ELFs already built instead of running cargo.
        #[arg(long)]
        no_build: bool,
        /// The QEMU machine: virt, virt-gicv2 or zcu102 (hypercall, micro and boot; the others
        /// run on virt only); for micro and boot also a comma-separated list or `all`, printed
        /// side by side.
        #[arg(long, default_value = "virt", value_name = "MACHINE[,MACHINE..]|all")]
        machine: String,
    },
    /// Fetch Debian's arm64 kernel and busybox and build the Linux guest's Image and initramfs.
    Fetch,
    /// Manage the running system over dom0's management port: list, info, pause, top, ...
    Ctl(bulkhead_tools::ctl::CtlArgs),
    /// Coverage-guided fuzzing of the decoders that take untrusted bytes (--list: the targets).
    Fuzz(bulkhead_tools::fuzz::FuzzArgs),
}

#[derive(Args)]
struct SystemArgs {
    /// System description (default: systems/default.toml; systems/zcu102.toml on zcu102).
    #[arg(long)]
    system: Option<PathBuf>,
    /// The QEMU machine: virt (GICv3), virt-gicv2 or zcu102 (Xilinx ZCU102 with its own DTB).
    #[arg(long, value_enum, default_value_t = Machine::Virt)]
    machine: Machine,
    /// Physical CPUs (overrides [system] smp).
    #[arg(long)]
    smp: Option<u16>,
    /// Host RAM in MiB (overrides [system] memory).
    #[arg(long)]
    mem: Option<u32>,
    /// Reuse the ELFs already built instead of running cargo.
    #[arg(long)]
    no_build: bool,
    /// Add a domain defined by a Xen xl.cfg file (repeatable).
    #[arg(long = "domain", value_name = "FILE.cfg")]
    domains: Vec<PathBuf>,
    /// Forward a host port into the network (QEMU hostfwd syntax, e.g. tcp::8080-:80;
    /// repeatable; added to [system] hostfwd).
    #[arg(long = "hostfwd", value_name = "RULE")]
    hostfwd: Vec<String>,
}

impl SystemArgs {
    fn image_options(&self) -> ImageOptions {
        ImageOptions {
            system: self
                .system
                .clone()
                .unwrap_or_else(|| self.machine.default_system()),
            overrides: Overrides {
                smp: self.smp,
                memory_mib: self.mem,
                // Leaked once per process: keeps `Overrides` `Copy`.
                domains: Vec::leak(self.domains.clone()),
                hostfwd: Vec::leak(self.hostfwd.clone()),
                machine: self.machine,
            },
            build: !self.no_build,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    system: SystemArgs,
    /// Stop QEMU after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Exit 0 as soon as a console line matches this regex.
    #[arg(long)]
    until: Option<String>,
    /// Deterministic instruction counting (-icount shift=0,sleep=off -seed 1), with QEMU
    /// handing its one emulating thread between CPUs at least every 100 µs of virtual time.
    #[arg(long)]
    icount: bool,
    /// How the microvisor is started: `direct` (QEMU loads everything), `u-boot` (Debian's
    /// U-Boot finds boot.scr on a disk the tools build and boots it) or `u-boot-tftp`
    /// (U-Boot loads boot-tftp.scr and everything else over TFTP from QEMU's user network).
    #[arg(long, value_enum, default_value_t = Firmware::Direct)]
    firmware: Firmware,
}

/// `run --firmware`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Firmware {
    /// QEMU's `-kernel`, `-dtb` and a loader per module.
    Direct,
    /// Debian's U-Boot for QEMU (`u-boot-qemu`) and a boot disk.
    #[value(name = "u-boot")]
    UBoot,
    /// Debian's U-Boot for QEMU booting over TFTP (QEMU's user network serves the files).
    #[value(name = "u-boot-tftp")]
    UBootTftp,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bulkhead: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    match Cli::parse().verb {
        Verb::Build => {
            build::build()?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Image(args) => {
            let packed = image::image(&args.image_options())?;
            for m in &packed.modules {
                println!(
                    "module {:<12} {:#010x} {:>10} bytes",
                    m.label, m.addr, m.size
                );
            }
            println!(
                "image: {} (boot with {}/qemu.sh)",
                packed.dir.display(),
                packed.dir.display()
            );
            let scr = packed.dir.join("boot.scr");
            let uboot_here = if args.machine.has_virtio_mmio() {
                "`run --firmware u-boot` boots them"
            } else {
                "copy them to the board's boot partition (README: Booting through U-Boot)"
            };
            println!(
                "U-Boot: {} and the files it loads ({}); {uboot_here}",
                if scr.is_file() {
                    "boot.scr"
                } else {
                    "boot.cmd (no mkimage: boot.scr not compiled)"
                },
                packed
                    .boot_files
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|f| f.to_string_lossy().into_owned())
                    .filter(|f| !f.starts_with("boot."))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let tftp = if packed.dir.join("boot-tftp.scr").is_file() {
                "boot-tftp.scr"
            } else {
                "boot-tftp.cmd"
            };
            println!(
                "U-Boot over TFTP: {tftp} loads the same files from ${{serverip}} (serve {}; set ipaddr and serverip or let it run dhcp){}",
                packed.dir.display(),
                if args.machine.has_virtio_mmio() {
                    "; `run --firmware u-boot-tftp` boots them"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Verb::Run(args) => run(args),
        Verb::Test => {
            let tally = testcmd::test()?;
            println!("{} passed, {} failed", tally.passed, tally.failed);
            Ok(if tally.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Verb::Fetch => {
            let linux = bulkhead_tools::guest::linux_artifacts()?;
            println!("kernel    {}", linux.kernel_version);
            println!("image     {}", linux.image.display());
            println!("initramfs {}", linux.initramfs.display());
            Ok(ExitCode::SUCCESS)
        }
        Verb::Ctl(args) => {
            bulkhead_tools::ctl::ctl(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Fuzz(args) => Ok(if bulkhead_tools::fuzz::fuzz(&args)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Verb::Bench {
            which,
            no_build,
            against,
            count,
            target,
            machine,
        } => {
            let machines = bench::parse_machines(&machine)?;
            bench::bench(
                &which,
                !no_build,
                against.as_deref(),
                count,
                target.as_deref(),
                &machines,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// dom0's line when some domain of the system could not be started.
const BOOT_FAILED: &str = r"\[dom0\] \d+ of \d+ domains failed to start";

fn run(args: RunArgs) -> Result<ExitCode> {
    let img = args.system.image_options();
    // Waiting for a marker ends at once, with an error, when the boot has already failed.
    let expect = match &args.until {
        Some(re) => Expect::new()
            .then(re)?
            .forbid(BOOT_FAILED)?
            .forbid(r"bulkhead: PANIC")?,
        None => Expect::new(),
    };
    if let Some(notice) = img.overrides.machine.notice() {
        eprintln!("bulkhead: {notice}");
    }
    let opts = RunOptions {
        system: img.system,
        overrides: img.overrides,
        build: img.build,
        timeout: args.timeout.map(Duration::from_secs),
        expect,
        icount: args.icount,
        icount_io: false,
        tick: args.icount,
        interactive: args.until.is_none(),
        echo: true,
    };
    let out = match args.firmware {
        Firmware::Direct => qemu::run(&opts)?,
        Firmware::UBoot => qemu::run_uboot(&opts)?,
        Firmware::UBootTftp => bulkhead_tools::uboot::tftp::run(&opts)?,
    };
    let failed = |code: u8| {
        eprintln!("\nbulkhead: {}", out.report(30));
        Ok(ExitCode::from(code))
    };
    match (&out.outcome, args.until.is_some()) {
        (Outcome::Matched, _) => {
            eprintln!("\nbulkhead: matched; log: {}", out.log_path.display());
            Ok(ExitCode::SUCCESS)
        }
        (Outcome::Timeout, _) | (Outcome::Forbidden(_), _) => failed(1),
        (Outcome::QemuExited(_), true) => failed(2),
        (Outcome::QemuExited(code), false) => {
            eprintln!("bulkhead: QEMU exited; log: {}", out.log_path.display());
            Ok(ExitCode::from(
                code.map_or(1, |c| u8::try_from(c).unwrap_or(1)),
            ))
        }
    }
}
