//! What the misbehaving-frontend modes (`blkfront`, `netfront`) share: their check
//! counter and marker lines, waiting for the test's "go" on the console, and the run that
//! opens xenstore, attacks, reports and idles.

use bulkhead_runtime::xen::{self, MappedPage};
use bulkhead_runtime::xenstore::XsClient;
use bulkhead_runtime::{arch, cap, gic, irq, println, timer};
use protocol::layout::VTIMER_PPI;
use protocol::xen::ring_io::CONS_IN;
use protocol::xen::structs::DOMID_SELF;
use protocol::xen::HvmParam;

/// Counts the checks and prints one `<mode>: <what> PASS|FAIL …` marker per check.
pub struct Report {
    mode: &'static str,
    checks: u32,
    failures: u32,
}

impl Report {
    /// Records a check whose outcome is `ok`, with what was seen and what was wanted.
    pub fn check(&mut self, what: &str, ok: bool, got: impl core::fmt::Debug, want: &str) {
        self.checks += 1;
        if ok {
            println!("{}: {what} PASS", self.mode);
        } else {
            self.failures += 1;
            println!("{}: {what} FAIL got {got:?} want {want}", self.mode);
        }
    }
}

/// Prints `<mode>: waiting for go` and waits for a byte on our console. dom0 forwards
/// typed input into a PV-attached domain's Xen console ring, but a byte may also still
/// wait in the microvisor's queue if we ask first, so both are polled.
pub fn wait_for_go(mode: &str) {
    println!("{mode}: waiting for go");
    let console = Console::find();
    while !console.typed() {
        timer::sleep_ms(50);
    }
}

/// Where typed input reaches us: the microvisor's queue, and our Xen console ring if we
/// have one (looked up once).
#[derive(Clone, Copy, Debug)]
pub struct Console {
    ring: Option<MappedPage>,
}

impl Console {
    /// Our console, its ring looked up from the `CONSOLE_PFN` parameter.
    pub fn find() -> Self {
        let ring = xen::hvm_get_param(DOMID_SELF, HvmParam::ConsolePfn)
            .ok()
            .filter(|&pfn| pfn != 0)
            .map(|pfn| MappedPage::new(pfn * 4096));
        Self { ring }
    }

    /// Whether anything was typed since the last look (never waits): see [`wait_for_go`]
    /// for where it can be.
    pub fn typed(&self) -> bool {
        let mut buf = [0u8; 16];
        if matches!(cap::console_read(&mut buf), Ok(n) if n > 0) {
            return true;
        }
        self.ring
            .is_some_and(|mut page| matches!(CONS_IN.consume(&mut page, &mut buf), Ok(n) if n > 0))
    }
}

/// Runs `attack` with a xenstore client, prints `<mode>: done N checks, M failures`,
/// then idles.
pub fn run(mode: &'static str, attack: fn(&mut Report, &mut XsClient)) -> ! {
    irq::init_primary();
    gic::enable(VTIMER_PPI);
    irq::enable_irqs();
    let mut rep = Report {
        mode,
        checks: 0,
        failures: 0,
    };
    match XsClient::open() {
        Ok(mut xs) => attack(&mut rep, &mut xs),
        Err(e) => rep.check("xenstore open", false, e, "a client"),
    }
    println!(
        "{mode}: done {} checks, {} failures",
        rep.checks, rep.failures
    );
    loop {
        arch::wfi();
    }
}
