//! The QEMU machine a system boots on (`--machine`): QEMU's `virt` board with a GICv3 (the
//! default) or a GICv2, or the Xilinx ZCU102 model (`xlnx-zcu102`: four Cortex-A53, a
//! GIC-400, Cadence UARTs, DRAM from 0) with the board's own device tree from Debian's
//! kernel package. Everything that differs between them is here: QEMU's `-M`/`-cpu`, the
//! most CPUs and RAM, where the host DTB comes from, the management port and whether the
//! board has virtio-mmio transports for the driver domains' disks and NICs.

use anyhow::{bail, Context, Result};
use protocol::layout::GicVersion;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A machine `run`, `image` and `bench` can target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// QEMU `virt` with a GICv3: the reference platform.
    #[default]
    Virt,
    /// QEMU `virt` with a GICv2 (GIC-400-like; at most 8 CPUs).
    #[value(name = "virt-gicv2")]
    VirtGicv2,
    /// QEMU's Xilinx ZCU102 (Zynq UltraScale+) with the board's DTB.
    Zcu102,
}

/// The ZCU102's device tree inside Debian's kernel package
/// (`usr/lib/linux-image-<version>/<this>`).
pub const ZCU102_DTB: &str = "xilinx/zynqmp-zcu102-rev1.0.dtb";

/// RAM QEMU's ZCU102 maps at 0 (its low DDR window); more would go to 0x8_0000_0000, but
/// QEMU's direct kernel boot describes all of `-m` as one bank at 0, so more than this
/// would be a device tree that lies.
pub const ZCU102_MAX_MEM_MIB: u32 = 2048;

/// The host's device tree as QEMU gives it, kept in the image directory: `ctl create`
/// checks passthrough against the tree the running system was packed with.
pub const HOST_DTB: &str = "host.dtb";

/// The file in the image directory naming the machine the image was packed for.
pub const MACHINE_FILE: &str = "machine";

/// The environment every QEMU run gets: no audio back end. The ZCU102's DisplayPort has an
/// audio device, and without this QEMU fills the console log with ALSA's complaints on a
/// host without a sound card (QEMU 7.2 still reads this variable; later ones ignore it).
pub const QEMU_ENV: [(&str, &str); 1] = [("QEMU_AUDIO_DRV", "none")];

/// The management port's host end: a unix socket in `target/bulkhead/` (QEMU runs in
/// `target/bulkhead/image/`).
pub const MGMT_SOCKET_ARG: &str = "socket,id=mgmt,path=../mgmt.sock,server=on,wait=off";

/// The ZCU102's second UART's host end when it is not the management port
/// (`[system] mgmt_port = "none"`): a unix socket `target/bulkhead/serial1.sock`, which a
/// guest given the UART (`dtdev`) talks on.
pub const SERIAL1_SOCKET_ARG: &str = "socket,id=serial1,path=../serial1.sock,server=on,wait=off";

/// [`SERIAL1_SOCKET_ARG`]'s socket, relative to `target/bulkhead/`.
pub const SERIAL1_SOCKET: &str = "serial1.sock";

impl Machine {
    /// Its `--machine` name.
    pub fn name(self) -> &'static str {
        match self {
            Machine::Virt => "virt",
            Machine::VirtGicv2 => "virt-gicv2",
            Machine::Zcu102 => "zcu102",
        }
    }

    /// QEMU's `-M` value: always with EL2 (`virtualization=on`).
    pub fn qemu_machine(self) -> &'static str {
        match self {
            Machine::Virt => "virt,virtualization=on,gic-version=3",
            Machine::VirtGicv2 => "virt,virtualization=on,gic-version=2",
            Machine::Zcu102 => "xlnx-zcu102,virtualization=on",
        }
    }

    /// The `-cpu` arguments: `max` on virt; the ZCU102's CPUs are fixed (Cortex-A53).
    pub fn cpu_args(self) -> &'static [&'static str] {
        match self {
            Machine::Virt | Machine::VirtGicv2 => &["-cpu", "max"],
            Machine::Zcu102 => &[],
        }
    }

    /// Most physical CPUs: the microvisor's 8 (and GICv2's 8 targets) on virt, the
    /// ZCU102's four A53s (its other two QEMU CPUs are 32-bit Cortex-R5s).
    pub fn max_cpus(self) -> u16 {
        match self {
            Machine::Virt | Machine::VirtGicv2 => 8,
            Machine::Zcu102 => 4,
        }
    }

    /// Its interrupt controller, which is also every domain's (`gic_version` in xl.cfg).
    pub fn gic_version(self) -> GicVersion {
        match self {
            Machine::Virt => GicVersion::V3,
            Machine::VirtGicv2 | Machine::Zcu102 => GicVersion::V2,
        }
    }

    /// An error naming `at`'s file, line and key if a domain asks for a GIC (xl.cfg
    /// `gic_version`) other than this machine's.
    pub fn check_gic(
        self,
        at: &crate::system::At<GicVersion>,
        file: &str,
    ) -> Result<(), crate::system::ConfigError> {
        let (want, have) = (at.value, self.gic_version());
        if want != have {
            return Err(crate::system::ConfigError {
                file: file.to_string(),
                line: at.line,
                key: "gic_version".into(),
                problem: format!(
                    "{} asked for, but --machine {} has a {} and every domain gets the \
                     host's interrupt controller; expected {:?} or \"default\"",
                    gic_name(want),
                    self.name(),
                    gic_name(have),
                    gic_key(have)
                ),
            });
        }
        Ok(())
    }

    /// Whether the machine has virtio-mmio transports (disks, NICs, the virtio console).
    pub fn has_virtio_mmio(self) -> bool {
        !matches!(self, Machine::Zcu102)
    }

    /// The system `run` and `image` boot without `--system`.
    pub fn default_system(self) -> PathBuf {
        let systems = crate::paths::workspace_root().join("systems");
        match self {
            Machine::Virt | Machine::VirtGicv2 => systems.join("default.toml"),
            Machine::Zcu102 => systems.join("zcu102.toml"),
        }
    }

    /// An error if a system with `smp` CPUs, `mem_mib` MiB and `disks` disks and `nics`
    /// NICs cannot run on this machine.
    pub fn check(self, smp: u16, mem_mib: u32, disks: usize, nics: usize) -> Result<()> {
        let name = self.name();
        if smp > self.max_cpus() {
            bail!(
                "--machine {name} has at most {} CPUs, the system asks for {smp} (--smp or [system] smp)",
                self.max_cpus()
            );
        }
        if self == Machine::Zcu102 && mem_mib > ZCU102_MAX_MEM_MIB {
            bail!(
                "--machine zcu102 takes at most {ZCU102_MAX_MEM_MIB} MiB (its DDR below 2 GiB), the system asks for {mem_mib} (--mem or [system] memory)"
            );
        }
        if !self.has_virtio_mmio() && disks + nics > 0 {
            bail!(
                "--machine {name} has no virtio-mmio transports, and the driver domains have no drivers for its own SDHCI and GEM yet: the system's {disks} disk(s) and {nics} NIC(s) cannot be attached; boot a system without disks and netdom, such as {}",
                self.default_system().display()
            );
        }
        Ok(())
    }

    /// QEMU's arguments for dom0's management port (`mgmt`: the system has one). On virt a
    /// virtio console whose host end is the socket; on the ZCU102 (no virtio) its second
    /// UART (serial1) on that same socket, the first staying the console on stdio. Without
    /// a management port the ZCU102's serial1 is still wired, to [`SERIAL1_SOCKET_ARG`],
    /// for the guest that may be given it.
    pub fn mgmt_args(self, mgmt: bool) -> Vec<String> {
        let args: &[&str] = match self {
            Machine::Virt | Machine::VirtGicv2 if !mgmt => &[],
            Machine::Zcu102 if !mgmt => &[
                "-chardev",
                SERIAL1_SOCKET_ARG,
                "-serial",
                "mon:stdio",
                "-serial",
                "chardev:serial1",
            ],
            Machine::Virt | Machine::VirtGicv2 => &[
                "-device",
                "virtio-serial-device",
                "-chardev",
                MGMT_SOCKET_ARG,
                "-device",
                "virtconsole,chardev=mgmt",
            ],
            Machine::Zcu102 => &[
                "-chardev",
                MGMT_SOCKET_ARG,
                "-serial",
                "mon:stdio",
                "-serial",
                "chardev:mgmt",
            ],
        };
        args.iter().map(|s| s.to_string()).collect()
    }

    /// The UART dom0 serves the management port on, as the packed DTB's
    /// `/chosen/bulkhead,mgmt-port` names it (an alias of the board's tree); `None` where
    /// the port is a virtio console. The ZCU102's is its second Cadence UART, the one
    /// [`Self::mgmt_args`] wires to the socket (QEMU's serial1).
    pub fn mgmt_port(self) -> Option<&'static str> {
        match self {
            Machine::Zcu102 => Some("serial1"),
            Machine::Virt | Machine::VirtGicv2 => None,
        }
    }

    /// The management UART of `system` on this machine: `[system] mgmt_port` if given
    /// (`"none"`: no management port at all), else [`Self::mgmt_port`]. `Ok(None)` also when
    /// the port is a virtio console; [`Self::has_mgmt`] says whether there is one.
    pub fn mgmt_port_of(
        self,
        system: &crate::system::System,
    ) -> Result<Option<&'static str>, crate::system::ConfigError> {
        use crate::system::MgmtPort;
        match &system.mgmt_port {
            None => Ok(self.mgmt_port()),
            Some(at) if at.value == MgmtPort::None => Ok(None),
            Some(at) => match self.mgmt_port() {
                Some(port) => Ok(Some(port)),
                None => Err(system.error_at(
                    at,
                    "mgmt_port",
                    format!(
                        "\"serial1\" asked for, but --machine {} has one UART (the microvisor's) and serves the management port on a virtio console; expected \"none\" or no `mgmt_port`",
                        self.name()
                    ),
                )),
            },
        }
    }

    /// Whether `system` has a management port on this machine (not `mgmt_port = "none"`).
    pub fn has_mgmt(self, system: &crate::system::System) -> bool {
        !matches!(
            system.mgmt_port.as_ref().map(|a| a.value),
            Some(crate::system::MgmtPort::None)
        )
    }

    /// The machine the packed image in `target/bulkhead/image/` is for ([`MACHINE_FILE`]),
    /// if there is one.
    pub fn packed() -> Option<Machine> {
        let text = std::fs::read_to_string(crate::paths::image_dir().join(MACHINE_FILE)).ok()?;
        <Machine as clap::ValueEnum>::from_str(text.trim(), false).ok()
    }

    /// What `run` says before booting, if anything is not what the user may expect.
    pub fn notice(self) -> Option<&'static str> {
        match self {
            Machine::Zcu102 => Some(
                "zcu102: the management port is the board's second UART (serial1, on target/bulkhead/mgmt.sock; a system with `mgmt_port = \"none\"` has none, and serial1 is on target/bulkhead/serial1.sock for a guest given the UART); the system runs without blkdom/netdom (no drivers for the board's SDHCI and GEM yet)",
            ),
            Machine::Virt | Machine::VirtGicv2 => None,
        }
    }

    /// QEMU's own device tree for this machine with `smp` CPUs and `mem_mib` MiB, written to
    /// `out`: what the boot loader (QEMU's direct boot) hands the microvisor, with `/memory`
    /// and `/psci` as QEMU fills them. The ZCU102's starts from the board DTB in Debian's
    /// kernel package (fetched into the cache if needed).
    pub fn dump_dtb(self, smp: u16, mem_mib: u32, out: &Path) -> Result<Vec<u8>> {
        let board = match self {
            Machine::Zcu102 => Some(board_dtb(ZCU102_DTB)?),
            Machine::Virt | Machine::VirtGicv2 => None,
        };
        let _ = std::fs::remove_file(out);
        let output = Command::new(crate::deps::QEMU)
            .args(self.dump_args(smp, mem_mib, board.as_deref(), out))
            .envs(QEMU_ENV)
            .output()
            .with_context(|| format!("cannot run {}", crate::deps::QEMU))?;
        let bytes = std::fs::read(out).ok().filter(|b| !b.is_empty());
        match bytes {
            Some(bytes) => {
                let clean = crate::dtb::without_nops(&bytes)
                    .with_context(|| format!("the DTB {} dumped", crate::deps::QEMU))?;
                std::fs::write(out, &clean)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                Ok(clean)
            }
            None => bail!(
                "{} did not write a DTB for --machine {} ({}): {}",
                crate::deps::QEMU,
                self.name(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
    }

    /// The arguments of [`Self::dump_dtb`]'s QEMU run (`board`: the DTB QEMU starts from).
    pub fn dump_args(
        self,
        smp: u16,
        mem_mib: u32,
        board: Option<&Path>,
        out: &Path,
    ) -> Vec<String> {
        let mut args = vec![
            "-M".to_string(),
            format!("{},dumpdtb={}", self.qemu_machine(), out.display()),
        ];
        args.extend(self.cpu_args().iter().map(|s| s.to_string()));
        args.extend([
            "-smp".into(),
            smp.to_string(),
            "-m".into(),
            mem_mib.to_string(),
            "-display".into(),
            "none".into(),
        ]);
        if let Some(dtb) = board {
            args.extend(["-dtb".into(), dtb.display().to_string()]);
        }
        args
    }
}

/// A board DTB shipped in Debian's kernel package (`rel` under
/// `usr/lib/linux-image-<version>/`), from the cache, fetching the package if needed.
pub fn board_dtb(rel: &str) -> Result<PathBuf> {
    let cache = crate::guest::cache::Cache::from_env()?;
    let debs = crate::guest::fetch::fetch_debs(&cache)?;
    let tree = crate::guest::fetch::extracted(&cache, &debs.kernel.package, &debs.kernel_deb)?;
    let path = tree
        .join("usr/lib")
        .join(format!("linux-image-{}", debs.kernel.version))
        .join(rel);
    if !path.is_file() {
        bail!(
            "{} has no {rel} ({} does not exist)",
            debs.kernel.package,
            path.display()
        );
    }
    Ok(path)
}

/// How the README and errors name a GIC version.
fn gic_name(v: GicVersion) -> &'static str {
    match v {
        GicVersion::V2 => "GICv2",
        GicVersion::V3 => "GICv3",
    }
}

/// The xl.cfg `gic_version` value naming `v`.
fn gic_key(v: GicVersion) -> &'static str {
    match v {
        GicVersion::V2 => "v2",
        GicVersion::V3 => "v3",
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
