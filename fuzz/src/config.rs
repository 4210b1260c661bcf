//! The `xlcfg` and `system` targets: the host tools' parsers for Xen `xl.cfg` domain files
//! and system TOML descriptions, given arbitrary text (files a user may have been handed).
//!
//! Paths in the text resolve against a directory that does not exist, so a run reads no file
//! unless the input names an absolute path. Checked beyond "no panic": every error and
//! warning formats, and the pCPU list parsers agree with their own output.

use bulkhead_tools::system::{self, Overrides, System};
use bulkhead_tools::xlcfg;
use std::path::Path;

/// Where the parsed text claims to come from (relative paths resolve below it).
const XL_FILE: &str = "/nonexistent/bulkhead-fuzz/domain.cfg";
/// The same for system descriptions.
const SYSTEM_FILE: &str = "/nonexistent/bulkhead-fuzz/system.toml";

/// The `xlcfg` target: `xlcfg::parse`, then the list and number helpers on each line.
pub fn run_xlcfg(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match xlcfg::parse(Path::new(XL_FILE), text) {
        Ok(d) => {
            for w in &d.warnings {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    for line in text.lines().take(64) {
        let _ = xlcfg::keys::number(line);
        let _ = xlcfg::keys::cpulist(line);
        let _ = xlcfg::vif::parse(line);
    }
}

/// The `system` target: `System::parse` with and without command-line overrides, and the
/// system file's pCPU list syntax.
pub fn run_system(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cli = Overrides {
        smp: Some(2),
        memory_mib: Some(512),
        domains: &[],
        hostfwd: &[],
        ..Overrides::default()
    };
    for overrides in [Overrides::default(), cli] {
        match System::parse(Path::new(SYSTEM_FILE), text, overrides) {
            Ok(s) => {
                let _ = system::start_order(&s).map_err(|e| e.to_string());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    for line in text.lines().take(64) {
        if let Some(cpus) = system::cpus::parse(line) {
            // A parsed list printed back as a comma list means the same pCPUs.
            let joined: Vec<String> = cpus.iter().map(u16::to_string).collect();
            assert_eq!(
                system::cpus::parse(&joined.join(",")).as_ref(),
                Some(&cpus),
                "{line:?}"
            );
        }
        // A checked port forward is exactly what QEMU gets: never a `,` that would add
        // another netdev option.
        if let Ok(rule) = system::nics::hostfwd(line) {
            assert!(!rule.contains(','), "{line:?}");
        }
    }
}
