//! Checks of domains against each other: unique names, pCPUs that exist, exclusive pCPUs
//! that nobody else uses, disks ([`super::disks`]), vifs ([`super::nics`]), dependencies that exist and form no
//! cycle.

use super::{ConfigError, System};
use std::collections::BTreeMap;

pub(super) fn check(system: &System) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, &super::At<String>> = BTreeMap::new();
    for d in &system.domains {
        let name = d.name.value.as_str();
        if let Some(first) = seen.insert(name, &d.name) {
            let at = if first.file == d.name.file {
                format!("line {}", first.line)
            } else {
                format!("{}:{}", system.file_of(first), first.line)
            };
            return Err(system.error_at(
                &d.name,
                "name",
                format!("duplicate domain name {name:?} (first on {at}), expected unique names"),
            ));
        }
    }
    check_cpus(system)?;
    super::disks::check(system)?;
    super::nics::check(system)?;
    for d in &system.domains {
        for dep in &d.depends_on.value {
            if !seen.contains_key(dep.as_str()) {
                return Err(system.error_at(
                    &d.depends_on,
                    "depends_on",
                    format!("unknown domain {dep:?}, expected names of domains in this file"),
                ));
            }
        }
    }
    start_order(system).map(|_| ())
}

fn check_cpus(system: &System) -> Result<(), ConfigError> {
    // Users of each pCPU so far: (domain index, vCPU index). dom0 owns pCPU 0.
    let mut users: BTreeMap<u16, Vec<(usize, usize)>> = BTreeMap::new();
    for (di, d) in system.domains.iter().enumerate() {
        let at = &d.cpus;
        if let Some(&bad) = d.cpus.value.iter().find(|&&c| c >= system.smp) {
            return Err(system.error_at(
                at,
                "cpus",
                format!(
                    "pCPU {bad} does not exist, expected pCPUs in 0..={} (smp = {})",
                    system.smp - 1,
                    system.smp
                ),
            ));
        }
        for (vi, pcpu) in d.placement().enumerate() {
            let name = &d.name.value;
            if d.exclusive && pcpu == 0 {
                return Err(system.error_at(
                    at,
                    "cpus",
                    format!(
                        "exclusive domain {name:?} uses pCPU 0, which dom0 runs on, expected exclusive pCPUs in 1..={}",
                        system.smp - 1
                    ),
                ));
            }
            let list = users.entry(pcpu).or_default();
            if let Some(&(oi, ov)) = list.first() {
                let other = &system.domains[oi];
                if d.exclusive || other.exclusive {
                    let owner = if other.exclusive {
                        &other.name.value
                    } else {
                        name
                    };
                    let who = if oi == di {
                        format!("vCPUs {ov} and {vi} of {name:?}")
                    } else {
                        format!(
                            "{:?} (vCPU {ov}) and {name:?} (vCPU {vi})",
                            other.name.value
                        )
                    };
                    return Err(system.error_at(
                        at,
                        "cpus",
                        format!(
                            "pCPU {pcpu} is shared by {who} but {owner:?} is exclusive, expected an exclusive vCPU to be alone on its pCPU"
                        ),
                    ));
                }
            }
            list.push((di, vi));
        }
    }
    Ok(())
}

/// Domain indices in start order: dependencies first, otherwise file order. A cycle is an
/// error naming it.
pub fn start_order(system: &System) -> Result<Vec<usize>, ConfigError> {
    let doms = &system.domains;
    let index = |name: &str| doms.iter().position(|d| d.name.value == name);
    let mut order = Vec::new();
    let mut placed = vec![false; doms.len()];
    while order.len() < doms.len() {
        let next = (0..doms.len()).find(|&i| {
            !placed[i]
                && doms[i]
                    .depends_on
                    .value
                    .iter()
                    .all(|dep| index(dep).is_none_or(|j| placed[j]))
        });
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                // Every unplaced domain waits on another: walk first dependencies to a repeat.
                let start = (0..doms.len()).find(|&i| !placed[i]).unwrap_or(0);
                let mut path = vec![start];
                loop {
                    let cur = *path.last().unwrap_or(&start);
                    let dep = doms[cur]
                        .depends_on
                        .value
                        .iter()
                        .filter_map(|d| index(d))
                        .find(|&j| !placed[j])
                        .unwrap_or(start);
                    if let Some(pos) = path.iter().position(|&p| p == dep) {
                        // Name the cycle from its domain that comes first in the file.
                        let mut ring = path[pos..].to_vec();
                        let first = ring.iter().copied().min().unwrap_or(dep);
                        let at = ring.iter().position(|&i| i == first).unwrap_or(0);
                        ring.rotate_left(at);
                        ring.push(first);
                        let cycle: Vec<&str> =
                            ring.iter().map(|&i| doms[i].name.value.as_str()).collect();
                        return Err(system.error_at(
                            &doms[first].depends_on,
                            "depends_on",
                            format!(
                                "dependency cycle {}, expected dependencies without cycles",
                                cycle.join(" -> ")
                            ),
                        ));
                    }
                    path.push(dep);
                }
            }
        }
    }
    Ok(order)
}
