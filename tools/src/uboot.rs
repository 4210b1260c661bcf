//! The U-Boot script (`boot.cmd`, compiled to `boot.scr`) that boots a packed system from a
//! boot partition: load the microvisor where U-Boot keeps kernels (`${kernel_addr_r}`; it
//! runs wherever it is put), the modules and the DTB at addresses computed from the board's
//! memory map (the RAM banks of the DTB the tools were given), add the `/chosen/module@…`
//! nodes with `fdt` commands and `booti` the microvisor with that DTB.
//!
//! U-Boot's distro boot runs it with `devtype`, `devnum` and `distro_bootpart` set; by hand,
//! set the first two yourself (see the README).
//!
//! The TFTP variant (`boot-tftp.cmd`/`boot-tftp.scr`, [`Source::Tftp`]) is the same script
//! loading each file with `tftpboot` from `${serverip}` instead; without `${ipaddr}` it asks
//! DHCP for one first (`autoload no`, so DHCP loads nothing itself).

pub mod disk;
pub mod tftp;

use crate::dtb::{Module, RamBank};
use anyhow::{bail, Result};
use protocol::boot::{LABEL_PROP, MODULE_COMPATIBLE};
use std::fmt::Write;

/// The DTB file next to the script: the board's device tree the tools packed for (QEMU's,
/// with the devices given to guests marked). Without it the script uses U-Boot's own DTB.
pub const DTB_FILE: &str = "bulkhead.dtb";
/// Room kept for the DTB after the last module: its own size, `fdt resize` and the padding
/// U-Boot adds for its fixups.
pub const DTB_ROOM: u64 = 2 << 20;
/// Room kept above `${kernel_addr_r}` besides the image: `booti` may move the image up to
/// the next 2 MiB boundary.
const BOOTI_SLACK: u64 = 2 << 20;

/// Where things go in RAM, from the board's memory map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The RAM bank the modules are in.
    pub ram: RamBank,
    /// Where the DTB is loaded (after the last module, 2 MiB aligned).
    pub fdt_addr: u64,
    /// The microvisor's `image_size` (BSS included), to check `${kernel_addr_r}` against
    /// the modules.
    pub image_size: u64,
}

impl Plan {
    /// The plan for `modules` (laid out in `ram`) and a microvisor of `image_size` bytes; an
    /// error if the DTB would not fit in the bank after them.
    pub fn new(ram: RamBank, modules: &[Module], image_size: u64) -> Result<Self> {
        let end = modules
            .iter()
            .map(|m| m.addr.saturating_add(m.size))
            .max()
            .unwrap_or(ram.base);
        let fdt_addr = end.next_multiple_of(crate::image::MODULE_ALIGN);
        if fdt_addr.saturating_add(DTB_ROOM) > ram.end() {
            bail!(
                "no room for the DTB after the boot modules: they end at {end:#x}, {} MiB of RAM ends at {:#x}",
                ram.size >> 20,
                ram.end()
            );
        }
        Ok(Self {
            ram,
            fdt_addr,
            image_size,
        })
    }

    /// The window the script fills: the first module up to the end of the DTB's room.
    pub fn window(&self, modules: &[Module]) -> (u64, u64) {
        let lo = modules
            .iter()
            .map(|m| m.addr)
            .min()
            .unwrap_or(self.fdt_addr);
        (lo, self.fdt_addr + DTB_ROOM)
    }
}

/// Where the script loads its files from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A partition of a block device: `load ${devtype} ${devnum}:${distro_bootpart}`.
    Disk,
    /// The TFTP server at `${serverip}`: `tftpboot`.
    Tftp,
}

impl Source {
    /// The script's file name (`.cmd`; `mkimage` makes the `.scr` of the same stem).
    pub fn file(self) -> &'static str {
        match self {
            Source::Disk => "boot.cmd",
            Source::Tftp => "boot-tftp.cmd",
        }
    }

    /// The command that loads a file: it is followed by the address and the file name.
    fn load(self) -> &'static str {
        match self {
            Source::Disk => "load ${devtype} ${devnum}:${distro_bootpart}",
            Source::Tftp => "tftpboot",
        }
    }

    /// The checks before anything is loaded (each clears `bh_ok` when it fails).
    fn checks(self) -> &'static [&'static str] {
        match self {
            Source::Disk => &[
                "if test -z \"${devtype}\" || test -z \"${devnum}\"; then echo \"bulkhead: set devtype and devnum first (e.g. setenv devtype mmc; setenv devnum 0)\"; setenv bh_ok 0; fi",
                "if test -z \"${distro_bootpart}\"; then setenv distro_bootpart 1; fi",
            ],
            Source::Tftp => &[
                "if test -z \"${ipaddr}\"; then setenv autoload no; dhcp || echo \"bulkhead: DHCP failed: setenv ipaddr and serverip by hand\"; fi",
                "if test -z \"${serverip}\" || test -z \"${ipaddr}\"; then echo \"bulkhead: set ipaddr and serverip first (or run dhcp)\"; setenv bh_ok 0; fi",
            ],
        }
    }

    /// Where the files are, for the script's header comment.
    fn origin(self) -> &'static str {
        match self {
            Source::Disk => "beside it",
            Source::Tftp => "at the root of the TFTP server ${serverip}",
        }
    }
}

/// The SD-card script text (compile with `mkimage -A arm64 -T script -C none -d boot.cmd
/// boot.scr`).
pub fn script(system: &str, modules: &[Module], plan: &Plan) -> String {
    script_for(Source::Disk, system, modules, plan)
}

/// The script that loads its files from `source`, with the same placement and checks.
pub fn script_for(source: Source, system: &str, modules: &[Module], plan: &Plan) -> String {
    let mut s = String::new();
    let load = source.load();
    let (lo, hi) = plan.window(modules);
    let fdt = plan.fdt_addr;
    // Writing to a String cannot fail.
    let mut line = |text: String| {
        let _ = writeln!(s, "{text}");
    };
    line(format!(
        "# Boots Bulkhead system `{system}`; generated by `cargo bulkhead image`."
    ));
    line(format!(
        "# Files {}: microvisor.bin, one .bin per boot module and {DTB_FILE} (the board DTB;",
        source.origin()
    ));
    line("# without it, the DTB U-Boot runs with is used).".into());
    line(format!(
        "# Memory map: RAM {:#x}..{:#x} (from the DTB); modules and DTB at {lo:#x}..{hi:#x};",
        plan.ram.base,
        plan.ram.end()
    ));
    line(
        "# the microvisor at ${kernel_addr_r}, which must be free RAM outside that window.".into(),
    );
    let cmd = source.file();
    let scr = cmd.replace(".cmd", ".scr");
    line(format!(
        "# Compile: mkimage -A arm64 -T script -C none -d {cmd} {scr}"
    ));
    // `exit` inside an `if` does not end a U-Boot script: a flag guards each step instead.
    line("setenv bh_ok 1".into());
    for check in source.checks() {
        line((*check).into());
    }
    line("if test -z \"${kernel_addr_r}\"; then echo \"bulkhead: U-Boot sets no kernel_addr_r: setenv kernel_addr_r to a free RAM address\"; setenv bh_ok 0; fi".into());
    line("if test \"${bh_ok}\" = 1; then".into());
    line(format!(
        "setexpr bh_kend ${{kernel_addr_r}} + {:#x}",
        plan.image_size + BOOTI_SLACK
    ));
    line(format!(
        "if itest.q ${{bh_kend}} -gt {lo:#x} && itest.q ${{kernel_addr_r}} -lt {hi:#x}; then echo \"bulkhead: kernel_addr_r ${{kernel_addr_r}} overlaps the modules at {lo:#x}..{hi:#x}: setenv kernel_addr_r elsewhere\"; setenv bh_ok 0; fi"
    ));
    line("fi".into());
    line("if test \"${bh_ok}\" = 1; then".into());
    line(format!(
        "{load} ${{kernel_addr_r}} microvisor.bin || setenv bh_ok 0"
    ));
    for m in modules {
        line(format!(
            "{load} {:#x} {}.bin || setenv bh_ok 0",
            m.addr, m.label
        ));
    }
    // The DTB is touched only once everything else is loaded.
    line("fi".into());
    line("if test \"${bh_ok}\" = 1; then".into());
    line(format!("if {load} {fdt:#x} {DTB_FILE}; then echo \"bulkhead: DTB from {DTB_FILE}\"; else echo \"bulkhead: the DTB U-Boot runs with\"; fdt move ${{fdtcontroladdr}} {fdt:#x} 0x100000; fi"));
    line(format!("fdt addr {fdt:#x}"));
    line("fdt resize 4096".into());
    line("fdt chosen".into());
    line("fdt set /chosen \\#address-cells <2>".into());
    line("fdt set /chosen \\#size-cells <2>".into());
    for m in modules {
        let node = format!("/chosen/module@{:x}", m.addr);
        line(format!("fdt mknode /chosen module@{:x}", m.addr));
        line(format!("fdt set {node} compatible \"{MODULE_COMPATIBLE}\""));
        line(format!(
            "fdt set {node} reg <{:#x} {:#x} {:#x} {:#x}>",
            m.addr >> 32,
            m.addr & 0xffff_ffff,
            m.size >> 32,
            m.size & 0xffff_ffff
        ));
        line(format!("fdt set {node} {LABEL_PROP} \"{}\"", m.label));
    }
    line("fi".into());
    // Use the DTB where it is: U-Boot would otherwise move it to memory of its choosing,
    // which nothing here reserved.
    line(format!("if test \"${{bh_ok}}\" = 1; then setenv fdt_high 0xffffffffffffffff; booti ${{kernel_addr_r}} - {fdt:#x}; else echo \"bulkhead: not booting (see above)\"; fi"));
    s
}

/// The `image_size` field of an arm64 `Image` header (bytes 16..24), if `image` has one.
pub fn image_size(image: &[u8]) -> Option<u64> {
    if image.get(56..60)? != b"ARM\x64" {
        return None;
    }
    Some(u64::from_le_bytes(image.get(16..24)?.try_into().ok()?))
}

#[cfg(test)]
#[path = "uboot/tftp_tests.rs"]
mod tftp_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn dom0() -> Module {
        Module {
            label: "dom0".into(),
            addr: 0x5000_0000,
            size: 0x1234,
        }
    }

    const VIRT: RamBank = RamBank {
        base: 0x4000_0000,
        size: 0x4000_0000,
    };

    #[test]
    fn script_loads_and_describes_each_module() {
        let plan = Plan::new(VIRT, &[dom0()], 0xcb000).unwrap();
        assert_eq!(plan.fdt_addr, 0x5020_0000);
        let s = script("default", &[dom0()], &plan);
        // A load that fails stops the boot (`bh_ok`), as a failed check does.
        assert!(s.contains(
            "load ${devtype} ${devnum}:${distro_bootpart} 0x50000000 dom0.bin || setenv bh_ok 0\n"
        ));
        assert!(s.contains(
            "load ${devtype} ${devnum}:${distro_bootpart} ${kernel_addr_r} microvisor.bin || setenv bh_ok 0\n"
        ));
        assert!(s.contains("-lt 0x50400000; then echo \"bulkhead: kernel_addr_r ${kernel_addr_r} overlaps the modules at 0x50000000..0x50400000: setenv kernel_addr_r elsewhere\"; setenv bh_ok 0; fi\n"));
        assert!(s.contains("fdt mknode /chosen module@50000000\n"));
        assert!(s.contains("fdt set /chosen/module@50000000 compatible \"multiboot,module\"\n"));
        assert!(s.contains("fdt set /chosen/module@50000000 reg <0x0 0x50000000 0x0 0x1234>\n"));
        assert!(s.contains("fdt set /chosen/module@50000000 bulkhead,label \"dom0\"\n"));
        assert!(s.contains(
            "if load ${devtype} ${devnum}:${distro_bootpart} 0x50200000 bulkhead.dtb; then"
        ));
        assert!(s.contains("fdt addr 0x50200000\n"));
        // The microvisor (plus booti's 2 MiB) is checked against the window it must not hit.
        assert!(s.contains("setexpr bh_kend ${kernel_addr_r} + 0x2cb000\n"));
        assert!(s.contains(
            "itest.q ${bh_kend} -gt 0x50000000 && itest.q ${kernel_addr_r} -lt 0x50400000;"
        ));
        assert!(s.ends_with(
            "if test \"${bh_ok}\" = 1; then setenv fdt_high 0xffffffffffffffff; booti ${kernel_addr_r} - 0x50200000; else echo \"bulkhead: not booting (see above)\"; fi\n"
        ));
        // Every multi-line `if` is closed.
        let opened = s.lines().filter(|l| l.ends_with("; then")).count();
        assert_eq!(opened, s.lines().filter(|l| *l == "fi").count());
        // U-Boot's hush takes a ' even inside "…" as a quote: one makes the whole script
        // a syntax error.
        assert!(!s.contains('\''), "{s}");
    }

    #[test]
    fn the_dtb_must_fit_after_the_modules() {
        let small = RamBank {
            base: 0,
            size: 0x5030_0000,
        };
        let err = Plan::new(small, &[dom0()], 0).unwrap_err().to_string();
        assert!(err.contains("no room for the DTB"), "{err}");
        // A 64-bit address is split into cells.
        let high = Module {
            label: "x".into(),
            addr: 0x8_1000_0000,
            size: 0x1_0000_0001,
        };
        let bank = RamBank {
            base: 0x8_0000_0000,
            size: 0x2_0000_0000,
        };
        let plan = Plan::new(bank, std::slice::from_ref(&high), 0).unwrap();
        assert_eq!(plan.fdt_addr, 0x9_1020_0000);
        let s = script("s", &[high], &plan);
        assert!(s.contains("reg <0x8 0x10000000 0x1 0x1>\n"), "{s}");
    }

    #[test]
    fn image_size_is_read_from_the_header() {
        let mut img = vec![0u8; 64];
        img[16..24].copy_from_slice(&0xcb000u64.to_le_bytes());
        assert_eq!(image_size(&img), None, "no magic");
        img[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(image_size(&img), Some(0xcb000));
        assert_eq!(image_size(&img[..40]), None);
    }
}
