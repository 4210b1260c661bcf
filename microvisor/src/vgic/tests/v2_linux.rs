//! Linux's GICv2 driver (drivers/irqchip/irq-gic.c) bringing up a two-vCPU guest, replayed
//! through the distributor: `gic_init_bases` sizing the GIC, `gic_dist_init` on the boot
//! CPU, `gic_cpu_init` on each CPU, then what a running kernel does (unmask the timer PPI,
//! send an IPI, move an SPI with `irq_set_affinity`). The CPU interface (GICC) is the
//! hardware GICV frame and is not part of this.

use super::*;
use protocol::layout::VTIMER_PPI;

/// What the driver tracks per CPU: the CPU interface mask `gic_get_cpumask` found.
struct Linux {
    gic_irqs: u32,
    cpu_map: [u64; 2],
}

/// `gic_get_cpumask`: the first non-zero `ITARGETSR0-7` word, folded into one byte.
fn get_cpumask(g: &mut VgicDomain, cpu: usize) -> u64 {
    for i in (0..32).step_by(4) {
        let mut mask = read_as(g, cpu, GICD + 0x800 + i, 4);
        mask |= mask >> 16;
        mask |= mask >> 8;
        if mask != 0 {
            return mask & 0xFF;
        }
    }
    0
}

/// `gic_init_bases` + `gic_dist_init` (with `gic_dist_config`) on CPU 0.
fn dist_init(g: &mut VgicDomain) -> Linux {
    let gic_irqs = ((read_as(g, 0, GICD + 0x004, 4) as u32 & 0x1F) + 1) * 32;
    write_as(g, 0, GICD, 4, 0); // GICD_DISABLE
    let mut cpumask = get_cpumask(g, 0);
    cpumask |= cpumask << 8;
    cpumask |= cpumask << 16;
    for i in (32..gic_irqs).step_by(4) {
        write_as(g, 0, GICD + 0x800 + u64::from(i), 4, cpumask);
    }
    // gic_dist_config: SPIs level, default priority, deactivated and disabled.
    for i in (32..gic_irqs).step_by(16) {
        write_as(g, 0, GICD + 0xC00 + u64::from(i / 4), 4, 0);
    }
    for i in (32..gic_irqs).step_by(4) {
        write_as(g, 0, GICD + 0x400 + u64::from(i), 4, 0xA0A0_A0A0);
    }
    for i in (32..gic_irqs).step_by(32) {
        write_as(g, 0, GICD + 0x380 + u64::from(i / 8), 4, 0xFFFF_FFFF);
        write_as(g, 0, GICD + 0x180 + u64::from(i / 8), 4, 0xFFFF_FFFF);
    }
    write_as(g, 0, GICD, 4, 1); // GICD_ENABLE
    Linux {
        gic_irqs,
        cpu_map: [0; 2],
    }
}

/// `gic_cpu_init` + `gic_cpu_config` on `cpu`.
fn cpu_init(g: &mut VgicDomain, l: &mut Linux, cpu: usize) {
    l.cpu_map[cpu] = get_cpumask(g, cpu);
    write_as(g, cpu, GICD + 0x380, 4, 0xFFFF_FFFF); // deactivate SGIs and PPIs
    write_as(g, cpu, GICD + 0x180, 4, 0xFFFF_0000); // disable PPIs
    write_as(g, cpu, GICD + 0x100, 4, 0x0000_FFFF); // enable SGIs
    for i in (0..32).step_by(4) {
        write_as(g, cpu, GICD + 0x400 + i, 4, 0xA0A0_A0A0);
    }
}

/// `gic_set_type` (level, a no-op for a PPI's ICFGR read back) and `gic_unmask_irq` of the
/// virtual timer PPI on `cpu`.
fn enable_timer(g: &mut VgicDomain, cpu: usize) {
    read_as(g, cpu, GICD + 0xC04, 4);
    write_as(g, cpu, GICD + 0x100, 4, 1 << VTIMER_PPI);
}

#[test]
fn linux_brings_up_two_cpus_and_gets_ipis_timer_and_spis() {
    let mut g = VgicDomain::new(GicVersion::V2, 2);
    let mut l = dist_init(&mut g);
    assert_eq!(l.gic_irqs, NR_IRQS as u32, "every SPI the model has");
    assert_eq!(rd32(&mut g, GICD), 1, "distributor enabled");
    cpu_init(&mut g, &mut l, 0);
    cpu_init(&mut g, &mut l, 1);
    assert_eq!(l.cpu_map, [0b01, 0b10], "each CPU found its own interface");
    for cpu in 0..2 {
        enable_timer(&mut g, cpu);
    }
    // SPIs were routed to CPU 0 by gic_dist_init.
    assert_eq!(read_as(&mut g, 1, GICD + 0x800 + 60, 4), 0x0101_0101);
    assert_eq!(
        g.ignored_accesses(),
        0,
        "Linux only touches implemented registers"
    );

    // gic_ipi_send_mask from CPU 0 to CPU 1 (IPI_RESCHEDULE, SGI 0 or so).
    let kick = write_as(&mut g, 0, GICD + 0xF00, 4, l.cpu_map[1] << 16 | 1);
    assert_eq!(kick, 0b10);
    // The timer fires on CPU 0.
    assert_eq!(g.inject(0, VTIMER_PPI), 0b01);
    // A device SPI moved to CPU 1 (gic_set_affinity: a byte write), then unmasked.
    write_as(&mut g, 0, GICD + 0x800 + 48, 1, l.cpu_map[1]);
    write_as(&mut g, 0, GICD + 0x104, 4, 1 << (48 - 32));
    assert_eq!(g.inject(0, 48), 0b10);

    let mut lrs0 = [0u64; NR_LRS];
    let mut lrs1 = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs0);
    g.flush_lrs(1, &mut lrs1);
    let lr0 = |intid| lr::build(intid, 0xA0, false, false, lr::LrState::Pending);
    assert_eq!(lrs0[0], lr0(VTIMER_PPI));
    assert_eq!(lr_intids(&lrs0), [VTIMER_PPI]);
    assert_eq!(lrs1[..2], [lr0(1), lr0(48)], "IPI and SPI, Group 0");
    assert_eq!(g.take_warning(), None, "a GIC would deliver all of it");

    // CPU 1 takes both and deactivates them; nothing is left.
    for l in lrs1.iter_mut().take(2) {
        ack(l);
        eoi(l);
    }
    assert_eq!(g.sync_lrs(1, &lrs1), CompletedSet::EMPTY);
    assert!(!g.has_deliverable(1, &lrs1));
}

#[test]
fn linux_on_one_cpu_finds_its_mask_too() {
    // Linux warns "GIC CPU mask not found" on SMP if ITARGETSR0-7 read 0; a one-vCPU
    // domain still answers with its bit, as Xen's does.
    let mut g = VgicDomain::new(GicVersion::V2, 1);
    let mut l = dist_init(&mut g);
    cpu_init(&mut g, &mut l, 0);
    assert_eq!(l.cpu_map[0], 1);
    assert_eq!(read_as(&mut g, 0, GICD + 0x800 + 32, 4), 0x0101_0101);
}
