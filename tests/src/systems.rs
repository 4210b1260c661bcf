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
        self.domain(&METRONOME_BLOCK.replace("3-4", &format!("{}-{}", cpus.0, cpus.1)))
    }

    /// Writes it to `dir/file`; its path.
    pub fn write(self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.0).expect("system TOML");
        path
    }
}

/// The metronome's `[[domain]]` on pCPUs 3-4 (see [`SystemToml::metronome`]); the static
/// system files carry the same block.
pub const METRONOME_BLOCK: &str = "[[domain]]\nname = \"metronome\"\nimage = \"testguest\"\nmemory = 8\nvcpus = 2\ncpus = \"3-4\"\nexclusive = true\ncmdline = \"mode=metronome\"\n";

/// The metronome of a machine with one pCPU to spare for it (the four-CPU ZCU102's
/// `rtos_load_4cpus.toml` carries this block): one vCPU, pinned exclusive on pCPU 3, its
/// timer due every 40 µs. One timer is not due while its vCPU re-arms it, but that vCPU is
/// the next to run once it fired, and it re-arms it first thing. (Tried and dropped: the two
/// vCPUs shared on dom0's pCPU at a priority above dom0's. Every switch of a shared vCPU
/// takes the microvisor's global lock, 50,000 a second, and the RTOS's own locked exits
/// then waited behind them: 2 of 3 runs missed a release.)
#[cfg(test)]
const METRONOME_ONE_BLOCK: &str = "[[domain]]\nname = \"metronome\"\nimage = \"testguest\"\nmemory = 8\nvcpus = 1\ncpus = \"3\"\nexclusive = true\ncmdline = \"mode=metronome\"\n";

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
            text.contains(&METRONOME_BLOCK.replace("3-4", "4-5")),
            "{file}"
        );
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/rtos_load_4cpus.toml");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(METRONOME_ONE_BLOCK), "{file}");
        let moved = SystemToml::new("m", 6, "").metronome((4, 5)).0;
        assert!(moved.contains("cpus = \"4-5\"") && moved.contains("mode=metronome"));
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
