//! dom0's shell: reads the manifest module, creates and starts each domain through the
//! capability protocol, then supervises them (planning and wording live in `lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod shell {
    use alloc::string::String;
    use alloc::vec::Vec;
    use bulkhead_runtime::{self as rt, cap, gic, irq, println, timer, StartInfo};
    use dom0::{decode_manifest, find_module, plan_domain, Supervisor};
    use protocol::boot::MANIFEST_LABEL;
    use protocol::cap::CapInfo;
    use protocol::control::DomainState;
    use protocol::layout::VTIMER_PPI;
    use protocol::manifest::SystemManifest;

    /// How often the supervisor polls its domains.
    const POLL_MS: u64 = 500;

    rt::entry!(main);

    fn main(_info: &'static StartInfo) {
        println!("dom0 up");
        let caps = match cap::cap_list() {
            Ok(c) => c,
            Err(e) => return println!("cannot list capabilities: {e}"),
        };
        let Some(manifest) = load_manifest(&caps) else {
            return;
        };
        let sup = start_all(&manifest, &caps);
        supervise(sup)
    }

    fn load_manifest(caps: &[CapInfo]) -> Option<SystemManifest> {
        let Some(module) = find_module(caps, MANIFEST_LABEL) else {
            println!("cannot read manifest: no boot module labelled \"{MANIFEST_LABEL}\"");
            return None;
        };
        let bytes = cap::module_read_all(module.handle)
            .map_err(|e| println!("cannot read manifest: {e}"))
            .ok()?;
        decode_manifest(&bytes)
            .map_err(|e| println!("cannot read manifest: {e}"))
            .ok()
    }

    fn start_all(manifest: &SystemManifest, caps: &[CapInfo]) -> Supervisor {
        let mut sup = Supervisor::default();
        let mut running: Vec<String> = Vec::new();
        let mut failed = 0;
        for d in &manifest.domains {
            let spec = match plan_domain(d, caps, &running) {
                Ok(s) => s,
                Err(e) => {
                    println!("cannot create {}: {e}", d.name);
                    failed += 1;
                    continue;
                }
            };
            let (handle, domid) = match cap::domain_create(&spec) {
                Ok(r) => r,
                Err(e) => {
                    println!("cannot create {}: {e}", d.name);
                    failed += 1;
                    continue;
                }
            };
            match cap::domain_start(handle) {
                Ok(()) => {
                    println!("started {} (d{domid})", d.name);
                    sup.watch(&d.name, domid, handle, DomainState::Running);
                    running.push(d.name.clone());
                }
                Err(e) => {
                    println!("cannot start {} (d{domid}): {e}", d.name);
                    sup.watch(&d.name, domid, handle, DomainState::Created);
                    failed += 1;
                }
            }
        }
        if failed > 0 {
            println!(
                "{failed} of {} domains failed to start",
                manifest.domains.len()
            );
        }
        println!("all domains started");
        sup
    }

    fn supervise(mut sup: Supervisor) {
        irq::init_primary();
        gic::enable(VTIMER_PPI);
        irq::enable_irqs();
        loop {
            timer::sleep_ms(POLL_MS);
            for i in 0..sup.domains().len() {
                let handle = sup.domains()[i].handle;
                let state = cap::domain_query(handle).map(|info| info.state);
                if let Some(line) = sup.observe(i, state) {
                    println!("{line}");
                }
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
