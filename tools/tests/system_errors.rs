//! Every system-description error has a fixture here and an exact expected message; the one
//! valid fixture checks the manifest the tools produce from it.

mod common;

use bulkhead_tools::image::manifest;
use bulkhead_tools::system::{DebianArtifact, Image, Overrides, System};
use protocol::control::{PmuAccess, VcpuPlacement};
use protocol::manifest::Action;
use std::path::{Path, PathBuf};

fn error(name: &str) -> String {
    let path = Path::new("tests/fixtures").join(format!("{name}.toml"));
    common::error_of(&path, |p| System::load(p, Overrides::default()))
}

macro_rules! fixture {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            let file = concat!("tests/fixtures/", stringify!($name), ".toml");
            assert_eq!(error(stringify!($name)), format!("{file}:{}", $msg));
        }
    };
}

fixture!(unknown_key, "9: key `colour`: unknown key in [[domain]], expected one of name, image, ramdisk, memory, vcpus, cpus, exclusive, priority, cmdline, depends_on, config, on_poweroff, on_reboot, on_crash, watchdog, crash_limit, disk, vif, pmu, budget_us, period_us");
fixture!(
    missing_name,
    "5: key `name`: missing in [[domain]], expected a domain name (or `config`, an xl.cfg file)"
);
fixture!(missing_image, "5: key `image`: missing in [[domain]], expected one of rtos, testguest, blkdom, netdom, debian-linux or a path to a flat binary or an arm64 Linux Image");
fixture!(
    missing_memory,
    "5: key `memory`: missing in [[domain]], expected MiB in 1..=2048"
);
fixture!(bad_name, "6: key `name`: \"My RTOS\" is not a valid domain name, expected 1..=31 bytes of [A-Za-z0-9_.-], not \"dom0\"");
fixture!(dom0_name, "6: key `name`: \"dom0\" is not a valid domain name, expected 1..=31 bytes of [A-Za-z0-9_.-], not \"dom0\"");
fixture!(
    duplicate_name,
    "12: key `name`: duplicate domain name \"rtos\" (first on line 6), expected unique names"
);
fixture!(
    watchdog_range,
    "8: key `watchdog`: 7200 is out of range, expected seconds without a heartbeat (0: off) in 0..=3600"
);
fixture!(
    watchdog_type,
    "8: key `watchdog`: found a string, expected seconds without a heartbeat (0: off) in 0..=3600"
);
fixture!(
    watchdog_linux,
    "9: key `watchdog`: 5 on a Linux guest, which sends no heartbeat (it would be restarted once the first-beat wait ran out), expected 0 or no `watchdog`"
);
fixture!(crash_limit_syntax, "8: key `crash_limit`: \"10 per 60s\" is not a crash limit, expected \"RESTARTS/WINDOWs\" such as \"10/60s\" (restarts 0..=1000, window 1..=3600 s)");
fixture!(crash_limit_range, "9: key `crash_limit`: \"10/0s\" is not a crash limit, expected \"RESTARTS/WINDOWs\" such as \"10/60s\" (restarts 0..=1000, window 1..=3600 s)");
fixture!(crash_limit_type, "8: key `crash_limit`: found an integer, expected \"RESTARTS/WINDOWs\" such as \"10/60s\" (restarts 0..=1000, window 1..=3600 s)");
fixture!(
    memory_range,
    "8: key `memory`: 4096 is out of range, expected MiB in 1..=2048"
);
fixture!(
    vcpus_range,
    "9: key `vcpus`: 9 is out of range, expected a vCPU count in 1..=8"
);
fixture!(
    bad_cpus,
    "9: key `cpus`: \"1-\" is not a pCPU list, expected a list such as \"2\", \"1-3\" or \"0,2\""
);
fixture!(
    pcpu_missing,
    "9: key `cpus`: pCPU 4 does not exist, expected pCPUs in 0..=3 (smp = 4)"
);
fixture!(exclusive_shared, "17: key `cpus`: pCPU 1 is shared by \"rtos\" (vCPU 0) and \"guest\" (vCPU 0) but \"rtos\" is exclusive, expected an exclusive vCPU to be alone on its pCPU");
fixture!(exclusive_pcpu0, "9: key `cpus`: exclusive domain \"rtos\" uses pCPU 0, which dom0 runs on, expected exclusive pCPUs in 1..=3");
fixture!(
    unknown_dependency,
    "9: key `depends_on`: unknown domain \"netdom\", expected names of domains in this file"
);
fixture!(
    dependency_cycle,
    "9: key `depends_on`: dependency cycle a -> c -> b -> a, expected dependencies without cycles"
);
fixture!(
    smp_range,
    "2: key `smp`: 9 is out of range, expected a physical CPU count in 1..=8"
);
fixture!(memory_small, "3: key `memory`: 256 MiB is too little, expected at least 512 (boot modules load at RAM + 256 MiB)");
fixture!(image_missing, "7: key `image`: \"no-such-guest.bin\" is neither a built-in image nor an existing file, expected one of rtos, testguest, blkdom, netdom, debian-linux or a path relative to the file");
fixture!(ramdisk_missing, "8: key `ramdisk`: \"no-such-initramfs.cpio\" is neither debian-initramfs nor an existing file, expected \"debian-initramfs\" or a path to an initramfs relative to the file");
fixture!(ramdisk_builtin, "8: key `ramdisk`: only Linux kernels take an initramfs, but image \"rtos\" is a built-in Bulkhead domain, expected no ramdisk or image = \"debian-linux\" or a path to an arm64 Linux Image");
fixture!(ramdisk_flat, "8: key `ramdisk`: only Linux kernels take an initramfs, but image \"blob.bin\" is not an arm64 Linux Image (no \"ARM\\x64\" magic at byte 56), expected no ramdisk or image = \"debian-linux\" or a path to an arm64 Linux Image");

fixture!(
    bad_action,
    "9: key `on_crash`: \"reboot\" is not an action, expected \"destroy\", \"restart\" or \"preserve\""
);
fixture!(
    config_bad_action,
    "7: key `on_reboot`: \"rename-restart\" is not an action, expected \"destroy\", \"restart\" or \"preserve\""
);
fixture!(
    pmu_bad,
    "9: key `pmu`: \"on\" is not a PMU access, expected \"off\", \"guest\" (its own counters) or \"el2\" (also counting the microvisor, for benchmarks)"
);
fixture!(config_missing, "6: key `config`: \"xl/no-such.cfg\" does not exist (tests/fixtures/xl/no-such.cfg), expected a path to an xl.cfg file relative to this file");
fixture!(config_with_memory, "7: key `memory`: comes from the xl.cfg file when `config` is set, expected it in xl/guest.cfg (beside `config`, a [[domain]] may set cpus, exclusive, priority, depends_on, on_poweroff, on_reboot, on_crash, crash_limit, pmu, budget_us, period_us)");

/// Errors about values from an xl.cfg name the .cfg file and line, not the TOML.
macro_rules! cfg_fixture {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            assert_eq!(error(stringify!($name)), $msg);
        }
    };
}

cfg_fixture!(config_duplicate_name, "tests/fixtures/xl/guest.cfg:1: key `name`: duplicate domain name \"guest\" (first on tests/fixtures/config_duplicate_name.toml:6), expected unique names");
cfg_fixture!(config_exclusive_conflict, "tests/fixtures/xl/guest.cfg:5: key `cpus`: pCPU 1 is shared by \"rtos\" (vCPU 0) and \"guest\" (vCPU 0) but \"rtos\" is exclusive, expected an exclusive vCPU to be alone on its pCPU");
cfg_fixture!(config_error_inside, "tests/fixtures/xl/gic_bad.cfg:3: key `gic_version`: \"v4\" is not a GIC version, expected \"v2\", \"v3\" or \"default\" (the host's)");

/// Driver domains get a 10 s watchdog unless they say otherwise; `0` turns it off; other
/// domains have none. The first-beat wait is six timeouts, at least 60 s.
#[test]
fn watchdogs_flow_into_the_manifest() {
    common::stand_ins();
    let system = System::load(
        Path::new("tests/fixtures/watchdog_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let (m, _) = manifest(&system).unwrap();
    let got: Vec<(&str, u32, u32)> = m
        .watchdogs
        .iter()
        .map(|w| (w.domain.as_str(), w.timeout_ms, w.first_beat_ms))
        .collect();
    assert_eq!(
        got,
        [("blkdom", 10_000, 60_000), ("netdom", 30_000, 180_000)]
    );
    let xl = System::load(
        Path::new("tests/fixtures/config_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    assert!(
        manifest(&xl).unwrap().0.watchdogs.is_empty(),
        "xl.cfg guests do not beat"
    );
}

#[test]
fn xl_domains_flow_into_the_manifest() {
    common::stand_ins();
    let system = System::load(
        Path::new("tests/fixtures/config_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let (m, images) = manifest(&system).unwrap();
    let names: Vec<&str> = m.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rtos", "guest", "full", "free", "warned"]);
    let d = |n: &str| m.domains.iter().find(|d| d.name == n).unwrap();
    let rtos = d("rtos");
    assert_eq!(
        (rtos.on_poweroff, rtos.on_reboot, rtos.on_crash),
        (Action::Destroy, Action::Restart, Action::Restart),
        "TOML on_crash, xl defaults otherwise"
    );
    let guest = d("guest");
    assert_eq!(
        (guest.on_poweroff, guest.on_reboot, guest.on_crash),
        (Action::Preserve, Action::Restart, Action::Restart),
        "TOML on_poweroff overrides the xl.cfg; on_crash from the xl.cfg"
    );
    assert_eq!((guest.image.as_str(), guest.mem_mib), ("testguest", 8));
    assert_eq!(guest.cmdline, "mode=smp");
    assert_eq!(guest.depends_on, ["rtos"]);
    assert_eq!(
        guest.vcpus,
        [VcpuPlacement {
            pcpu: 2,
            priority: 30,
            exclusive: false
        }],
        "TOML cpus and priority override the xl.cfg's cpus = \"1\""
    );
    let pcpus = |n: &str| d(n).vcpus.iter().map(|v| v.pcpu).collect::<Vec<_>>();
    assert_eq!(pcpus("full"), [2, 3]);
    assert_eq!(
        pcpus("free"),
        [2],
        "all,^3 minus dom0's pCPU 0 and the RTOS's exclusive pCPU 1"
    );
    assert_eq!(pcpus("warned"), [3]);
    assert_eq!(d("full").cmdline, "root=/dev/xvda mode=smp");
    let labels: Vec<&str> = images.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["rtos", "testguest"]);
    assert_eq!(system.warnings.len(), 9, "warnings.cfg's, once each");
    assert!(system
        .warnings
        .iter()
        .all(|w| w.file == "tests/fixtures/xl/warnings.cfg"));
}

#[test]
fn linux_domains_flow_into_the_manifest() {
    common::stand_ins();
    let system = System::load(
        Path::new("tests/fixtures/linux_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let own = &system.domains[1];
    assert_eq!(
        own.image.value,
        Image::File("tests/fixtures/xl/Image".into()),
        "a Linux Image file is a domain image"
    );
    assert_eq!(
        own.ramdisk.as_ref().map(|r| (&r.value, r.line)),
        Some((
            &Image::File("tests/fixtures/xl/xen-example/rootfs.cpio.gz".into()),
            17
        ))
    );
    let (m, images) = manifest(&system).unwrap();
    let d = |n: &str| m.domains.iter().find(|d| d.name == n).unwrap();
    let debian = d("debian");
    assert_eq!(
        (debian.image.as_str(), debian.ramdisk.as_deref()),
        ("debian-linux", Some("debian-initramfs"))
    );
    assert_eq!(debian.cmdline, "console=hvc0 loglevel=4", "given: kept");
    assert_eq!(
        (d("own").image.as_str(), d("own").ramdisk.as_deref()),
        ("image", Some("rootfs_cpio"))
    );
    assert_eq!(d("own").cmdline, "console=hvc0", "a Linux kernel's default");
    assert_eq!(
        (d("bare").image.as_str(), d("bare").ramdisk.as_deref()),
        ("debian-linux", None),
        "shares the first domain's kernel module"
    );
    let labels: Vec<(&str, &Image)> = images.iter().map(|(l, i)| (l.as_str(), i)).collect();
    assert_eq!(
        labels,
        [
            ("debian-linux", &Image::Debian(DebianArtifact::Kernel)),
            (
                "debian-initramfs",
                &Image::Debian(DebianArtifact::Initramfs)
            ),
            ("image", &own.image.value),
            ("rootfs_cpio", &own.ramdisk.as_ref().unwrap().value),
        ]
    );
    let bytes = m.encode().unwrap();
    assert_eq!(
        protocol::manifest::SystemManifest::decode(&bytes).unwrap(),
        m
    );
}

#[test]
fn xl_ramdisks_reach_the_manifest() {
    common::stand_ins();
    let text = "[[domain]]\nconfig = \"xl/linux.cfg\"\n";
    let s = System::parse(
        Path::new("tests/fixtures/x.toml"),
        text,
        Overrides::default(),
    )
    .unwrap();
    let (m, _) = manifest(&s).unwrap();
    assert_eq!(m.domains[0].ramdisk.as_deref(), Some("debian-initramfs"));
    assert_eq!(m.domains[0].cmdline, "root=/dev/ram0 console=hvc0 rw");
    // `ramdisk` comes from the xl.cfg, never beside `config`.
    let text = "[[domain]]\nconfig = \"xl/linux.cfg\"\nramdisk = \"debian-initramfs\"\n";
    let e = System::parse(
        Path::new("tests/fixtures/x.toml"),
        text,
        Overrides::default(),
    );
    assert_eq!(
        e.unwrap_err().to_string(),
        "tests/fixtures/x.toml:3: key `ramdisk`: comes from the xl.cfg file when `config` is set, expected it in xl/linux.cfg (beside `config`, a [[domain]] may set cpus, exclusive, priority, depends_on, on_poweroff, on_reboot, on_crash, crash_limit, pmu, budget_us, period_us)"
    );
}

#[test]
fn command_line_domains_are_added() {
    common::stand_ins();
    let extra: &'static [PathBuf] =
        Vec::leak(vec![PathBuf::from("tests/fixtures/xl/unpinned.cfg")]);
    let system = System::load(
        Path::new("tests/fixtures/valid.toml"),
        Overrides {
            domains: extra,
            ..Overrides::default()
        },
    )
    .unwrap();
    let free = system.domains.last().unwrap();
    assert_eq!(free.name.value, "free");
    assert_eq!(
        free.config.as_deref(),
        Some(Path::new("tests/fixtures/xl/unpinned.cfg"))
    );
    // app (2-3, shared) and rtos (1, exclusive) are pinned: free avoids 1 and, by ^3, 3.
    assert_eq!(free.cpus.value, [2]);
    // A bad --domain file is reported in its own name.
    let bad: &'static [PathBuf] = Vec::leak(vec![PathBuf::from("tests/fixtures/xl/gic_bad.cfg")]);
    let e = System::load(
        Path::new("tests/fixtures/valid.toml"),
        Overrides {
            domains: bad,
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "tests/fixtures/xl/gic_bad.cfg:3: key `gic_version`: \"v4\" is not a GIC version, expected \"v2\", \"v3\" or \"default\" (the host's)"
    );
}

#[test]
fn unpinned_domains_avoid_exclusive_pcpus() {
    common::stand_ins();
    let text = "[[domain]]\nname = \"r\"\nimage = \"rtos\"\nmemory = 8\ncpus = \"1\"\nexclusive = true\n\n[[domain]]\nname = \"g\"\nimage = \"testguest\"\nmemory = 8\nvcpus = 2\n";
    let s = System::parse(Path::new("x.toml"), text, Overrides::default()).unwrap();
    assert_eq!(s.domains[1].cpus.value, [2, 3]);
    assert_eq!(
        (
            s.domains[1].on_poweroff,
            s.domains[1].on_reboot,
            s.domains[1].on_crash
        ),
        (Action::Destroy, Action::Restart, Action::Destroy),
        "xl's defaults"
    );
}

#[test]
fn exclusive_domain_with_more_vcpus_than_pcpus() {
    common::stand_ins();
    let text = "[[domain]]\nname = \"r\"\nimage = \"rtos\"\nmemory = 8\nvcpus = 2\ncpus = \"1\"\nexclusive = true\n";
    let e = System::parse(Path::new("x.toml"), text, Overrides::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.toml:6: key `cpus`: pCPU 1 is shared by vCPUs 0 and 1 of \"r\" but \"r\" is exclusive, expected an exclusive vCPU to be alone on its pCPU"
    );
}

#[test]
fn command_line_overrides_are_checked() {
    common::stand_ins();
    let path = Path::new("tests/fixtures/valid.toml");
    let e = System::load(
        path,
        Overrides {
            smp: Some(2),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/valid.toml:10: key `cpus`: pCPU 2 does not exist, expected pCPUs in 0..=1 (smp = 2)");
    let e = System::load(
        path,
        Overrides {
            memory_mib: Some(256),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/valid.toml:3: key `memory`: --mem 256 is too small, expected at least 512 MiB");
}

/// `pmu` reaches the manifest per domain, off unless asked for, also beside `config`.
#[test]
fn pmu_access_reaches_the_manifest() {
    common::stand_ins();
    let system = System::load(
        Path::new("tests/fixtures/pmu_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let (m, _) = manifest(&system).unwrap();
    let got: Vec<(&str, PmuAccess)> = m.domains.iter().map(|d| (d.name.as_str(), d.pmu)).collect();
    assert_eq!(
        got,
        [
            ("plain", PmuAccess::Off),
            ("counted", PmuAccess::Guest),
            ("bench", PmuAccess::El2),
            ("guest", PmuAccess::Guest),
        ]
    );
}

#[test]
fn valid_system_yields_manifest_in_dependency_order() {
    common::stand_ins();
    let system =
        System::load(Path::new("tests/fixtures/valid.toml"), Overrides::default()).unwrap();
    assert_eq!(
        (system.smp, system.memory_mib, system.name.as_str()),
        (4, 1024, "valid")
    );
    let (m, images) = manifest(&system).unwrap();
    let names: Vec<&str> = m.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rtos", "app"], "rtos first: app depends on it");
    let app = &m.domains[1];
    assert_eq!(app.image, "blob");
    assert_eq!((app.mem_mib, app.cmdline.as_str()), (16, "x=1"));
    let pcpus: Vec<u16> = app.vcpus.iter().map(|v| v.pcpu).collect();
    assert_eq!(
        pcpus,
        [2, 3, 2],
        "vCPU i runs on the i-th listed pCPU, wrapping"
    );
    assert!(app.vcpus.iter().all(|v| v.priority == 20 && !v.exclusive));
    assert!(m.domains[0].vcpus[0].exclusive);
    let labels: Vec<&str> = images.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["rtos", "blob"]);
    let bytes = m.encode().unwrap();
    assert_eq!(
        protocol::manifest::SystemManifest::decode(&bytes).unwrap(),
        m
    );
}

#[test]
fn shipped_systems_are_valid() {
    common::stand_ins();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in [
        "systems/default.toml",
        "tests/systems/default_boot.toml",
        "tests/systems/oob.toml",
        "tests/systems/badcap.toml",
        "tests/systems/bench.toml",
        "tests/systems/bench_rt.toml",
        "tests/systems/pmu.toml",
        "tests/systems/crash_loop.toml",
        "tests/systems/xl_domains.toml",
    ] {
        let system = System::load(&root.join(file), Overrides::default());
        assert!(system.is_ok(), "{file}: {}", system.unwrap_err());
    }
}

/// `crash_limit` reaches the manifest in milliseconds, also beside `config`; a domain
/// without it has no entry (dom0's default applies).
#[test]
fn crash_limits_flow_into_the_manifest() {
    common::stand_ins();
    let system = System::load(
        Path::new("tests/fixtures/crash_limit_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let (m, _) = manifest(&system).unwrap();
    let got: Vec<(&str, u32, u32)> = m
        .crash_limits
        .iter()
        .map(|l| (l.domain.as_str(), l.max_restarts, l.window_ms))
        .collect();
    assert_eq!(got, [("netdom", 10, 60_000), ("guest", 0, 1_000)]);
}

fixture!(
    budget_alone,
    "8: key `period_us`: is given without `budget_us`, expected both (a budget per period) or neither"
);
fixture!(
    budget_over_period,
    "8: key `budget_us`: 20000 us per 10000 us, expected 100 <= budget_us <= period_us <= 10000000"
);
fixture!(
    budget_range,
    "9: key `period_us`: 20000000 is out of range, expected microseconds in 0..=10000000"
);
fixture!(budget_exclusive, "10: key `budget_us`: is set on an exclusive domain, whose vCPUs have their pCPUs to themselves (nothing to protect), expected no budget or `exclusive = false`");

#[test]
fn budgets_reach_the_manifest() {
    let system = System::load(
        Path::new("tests/fixtures/budget_valid.toml"),
        Overrides::default(),
    )
    .unwrap();
    let (m, _) = manifest(&system).unwrap();
    let got: Vec<(&str, u32, u32)> = m
        .budgets
        .iter()
        .map(|b| (b.domain.as_str(), b.budget_us, b.period_us))
        .collect();
    assert_eq!(got, [("netdom", 2_000, 10_000), ("guest", 500, 1_000)]);
}

fixture!(mgmt_port_bad, "4: key `mgmt_port`: \"serial2\" is not a management port, expected \"serial1\" (the ZCU102's second UART, the default there) or \"none\" (no management port: the UART is free for a guest)");
fixture!(
    mgmt_port_type,
    "3: key `mgmt_port`: found a boolean, expected \"serial1\" or \"none\""
);
