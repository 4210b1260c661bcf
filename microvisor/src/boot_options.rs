//! The microvisor's own boot options: words `bulkhead.<name>=<value>` in the device tree's
//! `/chosen/bootargs` (QEMU's `-append`, U-Boot's `bootargs`). Words without the
//! `bulkhead.` prefix belong to someone else and are left alone; a `bulkhead.` word the
//! microvisor does not know is reported at boot and otherwise ignored, so a typo never
//! stops a board from booting.
//!
//! Today there is one option, `bulkhead.selftest=<test>`: a check of the microvisor's own
//! protections that a test boot asks for, which ends the boot (see [`SelfTest`]). Only the
//! boot loader's configuration can set it, which already decides everything a self-test
//! could touch.
#![forbid(unsafe_code)]

/// The `/chosen` property holding the command line.
pub const BOOTARGS_PROP: &str = "bootargs";
/// The prefix of the words that are ours.
const PREFIX: &str = "bulkhead.";

/// A self-test of the microvisor's own protections, run on CPU 0 once the EL2 MMU is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// `el2-stack-overflow`: recurse until CPU 0's stack reaches its guard, which must end
    /// in a panic that names the overflow (not in a hang or a corrupted neighbour).
    El2StackOverflow,
}

impl SelfTest {
    /// The option value naming each test.
    const NAMES: [(&'static str, SelfTest); 1] =
        [("el2-stack-overflow", SelfTest::El2StackOverflow)];

    fn parse(value: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == value)
            .map(|&(_, t)| t)
    }
}

/// What the command line asked of the microvisor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootOptions<'a> {
    /// The self-test to run instead of booting, if any.
    pub selftest: Option<SelfTest>,
    /// The first `bulkhead.` word not understood (unknown name, or a value the name does
    /// not take), to report.
    pub not_understood: Option<&'a str>,
}

/// Reads the options out of a command line.
pub fn parse(cmdline: &str) -> BootOptions<'_> {
    let mut options = BootOptions::default();
    for word in cmdline.split_ascii_whitespace() {
        let Some(option) = word.strip_prefix(PREFIX) else {
            continue;
        };
        let selftest = match option.split_once('=') {
            Some(("selftest", value)) => SelfTest::parse(value),
            _ => None,
        };
        match selftest {
            Some(t) => options.selftest = Some(t),
            None => options.not_understood = options.not_understood.or(Some(word)),
        }
    }
    options
}

/// Reads the options out of a device tree's `/chosen/bootargs`; none without one.
pub fn from_fdt<'a>(fdt: &fdt::Fdt<'a>) -> BootOptions<'a> {
    fdt.find_node("/chosen")
        .and_then(|c| c.property(BOOTARGS_PROP))
        .and_then(|p| p.as_str())
        .map(parse)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "boot_options_tests.rs"]
mod tests;
