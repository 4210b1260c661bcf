//! System descriptions the QEMU tests write on the fly (TOML, as a user writes
//! `systems/*.toml`): a driver domain on pCPU 1 and stock Linux guests beside it, each
//! test adding only what is its own (disks, vifs, policies).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A system TOML being written.
#[must_use]
pub struct SystemToml(String);

impl SystemToml {
    /// `[system]` with `smp` pCPUs and 1 GiB, headed by which test wrote it; `extra` is
    /// more `[system]` lines (may be empty).
    pub fn new(test: &str, smp: u32, extra: &str) -> Self {
        let mut s =
            format!("# Written by tests/tests/{test}.rs.\n[system]\nsmp = {smp}\nmemory = 1024\n");
        s.push_str(extra);
        Self(s)
    }

    /// A driver domain `image` (blkdom or netdom) of its own name, 16 MiB, on pCPU `cpu`;
    /// `extra` is more keys of its `[[domain]]` (may be empty).
    pub fn driver(mut self, image: &str, cpu: u32, extra: &str) -> Self {
        let _ = write!(
            self.0,
            "\n[[domain]]\nname = \"{image}\"\nimage = \"{image}\"\nmemory = 16\ncpus = \"{cpu}\"\n{extra}"
        );
        self
    }

    /// A stock Linux guest `name` (192 MiB, one vCPU on pCPU `cpu`, console on hvc0,
    /// destroyed when it powers off); `extra` is more keys (disks, vifs, policies).
    pub fn linux(mut self, name: &str, cpu: u32, extra: &str) -> Self {
        let _ = write!(
            self.0,
            "\n[[domain]]\nname = \"{name}\"\nimage = \"debian-linux\"\nramdisk = \"debian-initramfs\"\nmemory = 192\ncpus = \"{cpu}\"\ncmdline = \"console=hvc0 loglevel=4\"\non_poweroff = \"destroy\"\n{extra}"
        );
        self
    }

    /// Any other `[[domain]]` block, as written.
    pub fn domain(mut self, block: &str) -> Self {
        self.0.push('\n');
        self.0.push_str(block);
        self
    }

    /// The metronome: a test guest whose two vCPUs, pinned exclusive on pCPUs `cpus.0`
    /// and `cpus.1` and otherwise idle, fire their virtual timers in turn on a fixed 20 µs
    /// grid ([`METRONOME_BLOCK`]). Not part of any system under test: under `-icount` QEMU
    /// emulates one CPU at a time, each for a share of the time to the machine's next timer
    /// deadline, so a CPU-bound guest with no near timer of its own runs for milliseconds
    /// while a CPU whose interrupt is pending waits its turn (traced: README, Status). A
    /// timer always due within 20 µs bounds every share, which is what parallel hardware
    /// gives for free; two staggered vCPUs because one timer is not due while it is being
    /// re-armed.
    pub fn metronome(self, cpus: (u32, u32)) -> Self {
        self.domain(&METRONOME_BLOCK.replace("4-5", &format!("{}-{}", cpus.0, cpus.1)))
    }

    /// Writes it to `dir/file`; its path.
    pub fn write(self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.0).expect("system TOML");
        path
    }
}

/// The metronome's `[[domain]]` on pCPUs 4-5 (see [`SystemToml::metronome`]);
/// `rtos_linux.toml` carries the same block, `rtos_load.toml` it on pCPUs 5-6.
pub const METRONOME_BLOCK: &str = "[[domain]]\nname = \"metronome\"\nimage = \"testguest\"\nmemory = 8\nvcpus = 2\ncpus = \"4-5\"\nexclusive = true\ncmdline = \"mode=metronome\"\n";

/// The metronome of a machine with one pCPU to spare for it (the four-CPU ZCU102's
/// `rtos_load_4cpus.toml` carries this block): one vCPU, pinned exclusive on pCPU 1, its
/// timer due every 40 µs. One timer is not due while its vCPU re-arms it, but that vCPU is
/// the next to run once it fired, and it re-arms it first thing. It sits on pCPU 1, just
/// before the RTOS's, because it idles almost all the time ([`check_rtos_placement`]).
/// (Tried and dropped: the two vCPUs shared on dom0's pCPU at a priority above dom0's.
/// Every switch of a shared vCPU takes the microvisor's global lock, 50,000 a second, and
/// the RTOS's own locked exits then waited behind them: 2 of 3 runs missed a release.)
#[cfg(test)]
const METRONOME_ONE_BLOCK: &str = "[[domain]]\nname = \"metronome\"\nimage = \"testguest\"\nmemory = 8\nvcpus = 1\ncpus = \"1\"\nexclusive = true\ncmdline = \"mode=metronome\"\n";

/// Checks the placement rule of every `-icount` test that times the RTOS on the system file
/// `path`: the pCPU just before the RTOS's (in QEMU's CPU order) holds no domain, or only
/// the metronome, which idles almost all the time; pCPU 0 needs no such neighbour. `Err`
/// names what is on that pCPU.
///
/// Why (QEMU 7.2, `accel/tcg/tcg-accel-ops-rr.c` and `tcg-accel-ops-icount.c`, read as a
/// specification): its single TCG thread runs the CPUs in index order, each for the
/// instructions left until the machine's next timer deadline *as it stands when that CPU's
/// turn starts*. A CPU that is busy when a deadline comes ends its turn exactly on it; the
/// next CPU's turn then starts with nothing left (budget 0): QEMU runs the due timers and
/// that CPU executes nothing. It takes a pending interrupt (the exception entry) but not
/// one instruction of its handler. Behind a CPU that stays busy (dom0's or a driver
/// domain's serving I/O, a Linux vCPU), the next CPU therefore gets no turn at all until
/// the busy one idles, however finely the metronome spaces deadlines. The RTOS's timer
/// interrupt then reached the microvisor's exit code 150–2,600 µs after its deadline,
/// several times a second, which were the stress test's misses. (The round's first CPU is
/// spared: the due timers run at the round's start.) A CPU that holds nothing is halted,
/// and a halted CPU's empty turn absorbs the budget-0 turn. Measured with a temporary
/// marker at the microvisor's exit entry in `rtos_beside_stress`: with the RTOS on pCPU 1
/// behind dom0's, 10–20 late entries over 150 µs per run, none of them in the fast path;
/// with pCPU 1 idle and the RTOS on pCPU 2, none during the stress. Real hardware runs its
/// CPUs in parallel; this is about the emulator only.
pub fn check_rtos_placement(path: &Path) -> Result<(), PlacementError> {
    use bulkhead_tools::system::{Domain, Image, Overrides, System};
    let text =
        std::fs::read_to_string(path).map_err(|e| PlacementError::Read(path.to_owned(), e))?;
    let sys = System::parse(path, &text, Overrides::default()).map_err(PlacementError::Parse)?;
    let is_rtos = |d: &&Domain| matches!(&d.image.value, Image::Builtin(n) if n == "rtos");
    for rtos in sys.domains.iter().filter(is_rtos) {
        for &pcpu in rtos.cpus.value.iter().filter(|&&c| c > 0) {
            let holders: Vec<String> = sys
                .domains
                .iter()
                .filter(|d| d.cpus.value.contains(&(pcpu - 1)) && d.cmdline != "mode=metronome")
                .map(|d| d.name.value.clone())
                .collect();
            if !holders.is_empty() {
                return Err(PlacementError::BehindBusy {
                    rtos: rtos.name.value.clone(),
                    pcpu,
                    holders,
                });
            }
        }
    }
    Ok(())
}

/// Why a system file fails [`check_rtos_placement`].
#[derive(Debug)]
pub enum PlacementError {
    /// The file cannot be read.
    Read(PathBuf, std::io::Error),
    /// It is not a valid system (the tools' own error names file, line and key).
    Parse(bulkhead_tools::system::ConfigError),
    /// The pCPU just before an RTOS's holds other domains.
    BehindBusy {
        /// The RTOS domain's name.
        rtos: String,
        /// Its pCPU.
        pcpu: u16,
        /// The domains on `pcpu - 1` (the metronome does not count).
        holders: Vec<String>,
    },
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            Self::Parse(e) => write!(f, "{e}"),
            Self::BehindBusy {
                rtos,
                pcpu,
                holders,
            } => write!(
                f,
                "{rtos} runs on pCPU {pcpu} and pCPU {} holds {holders:?}; under -icount the \
                 pCPU before the RTOS's must be idle",
                pcpu - 1
            ),
        }
    }
}

impl std::error::Error for PlacementError {}

/// The `disk` key of one read-write raw disk `xvda` backed by `image`.
pub fn disk_xvda(image: &Path) -> String {
    format!("disk = [\"{},raw,xvda,rw\"]\n", image.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_systems_carry_the_same_metronomes() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/rtos_linux.toml");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(METRONOME_BLOCK), "{file}");
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/rtos_load.toml");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains(&METRONOME_BLOCK.replace("4-5", "5-6")),
            "{file}"
        );
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/rtos_load_4cpus.toml");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(METRONOME_ONE_BLOCK), "{file}");
        let moved = SystemToml::new("m", 7, "").metronome((5, 6)).0;
        assert!(moved.contains("cpus = \"5-6\"") && moved.contains("mode=metronome"));
    }

    #[test]
    fn every_timed_rtos_runs_behind_an_idle_pcpu() {
        for name in ["rtos_linux", "rtos_load", "rtos_load_4cpus"] {
            check_rtos_placement(&crate::system(name)).unwrap();
        }
    }

    #[test]
    fn an_rtos_behind_a_busy_pcpu_is_refused() {
        let dir = std::env::temp_dir().join(format!("rtosplace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rtos = "[[domain]]\nname = \"rtos\"\nimage = \"rtos\"\nmemory = 8\ncpus = \"2\"\nexclusive = true\n";
        let behind_load = SystemToml::new("demo", 4, "")
            .domain(rtos)
            .domain("[[domain]]\nname = \"load\"\nimage = \"testguest\"\nmemory = 8\ncpus = \"1\"\ncmdline = \"mode=load\"\n")
            .write(&dir, "behind-load.toml");
        match check_rtos_placement(&behind_load) {
            Err(PlacementError::BehindBusy {
                rtos,
                pcpu,
                holders,
            }) => assert_eq!(
                (rtos.as_str(), pcpu, holders),
                ("rtos", 2, vec!["load".into()])
            ),
            other => panic!("{other:?}"),
        }
        let behind_metronome = SystemToml::new("demo", 4, "")
            .domain(rtos)
            .domain(METRONOME_ONE_BLOCK)
            .write(&dir, "behind-metronome.toml");
        check_rtos_placement(&behind_metronome).unwrap();
        let behind_nothing = SystemToml::new("demo", 4, "")
            .domain(rtos)
            .write(&dir, "behind-nothing.toml");
        check_rtos_placement(&behind_nothing).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_written_system_parses_as_the_tools_read_it() {
        use bulkhead_tools::system::{Overrides, System};
        let dir = std::env::temp_dir().join(format!("systoml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let disk = dir.join("d.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let path = SystemToml::new("demo", 3, "")
            .driver("blkdom", 1, "on_crash = \"restart\"\n")
            .linux("linux", 2, &disk_xvda(&disk))
            .write(&dir, "demo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let sys = System::parse(&path, &text, Overrides::default()).expect(&text);
        assert_eq!(sys.smp, 3);
        let names: Vec<&str> = sys.domains.iter().map(|d| d.name.value.as_str()).collect();
        assert_eq!(names, ["blkdom", "linux"]);
        assert_eq!(sys.domains[1].cpus.value, [2]);
        assert_eq!(sys.domains[1].disks.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
